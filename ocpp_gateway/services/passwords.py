"""Security (2.0.1 A01, 1.6 security whitepaper): rotating a station's HTTP Basic password.

The platform generates the new password and sets it on the charger (`requests.BasicAuthPasswordSet`). From the moment
it is sent, the station has two: the current one (`secret_hash`) and the new one (`pending_secret_hash`), both stored
as salted hashes. The first login with the new one makes it the only one; a charger that accepted it but keeps logging
in with the old one loses the old one OCPP_PASSWORD_ROTATION_GRACE_SECONDS after it accepted. A charger that rejects
the new password (or answers with an error) keeps the old one and the new one is forgotten; one that gives no answer
keeps both until it logs in with the new one or staff rotate again (it may have changed it).

The password travels only in the CALL to the charger: the message log and the audit log redact it
(`ocpp_gateway.redaction`), the ocpp library's frame log too, and it is handed back once to the caller.
"""

import logging
import secrets
from dataclasses import dataclass, field
from datetime import timedelta

from django.conf import settings
from django.db.models import Q
from django.utils import timezone

from cpo.models import ChargingStation, SecurityProfile
from cpo.services import station_secret_check, station_secret_hash
from ocpp_gateway.commands import CommandError, check_station_reachable, command_send
from ocpp_gateway.requests import BasicAuthPasswordSet

logger = logging.getLogger(__name__)

ACCEPTED_STATUSES = ("Accepted", "RebootRequired")


class RotationResult:
    ACCEPTED = "accepted"  # the charger took it; the old one works until it logs in with the new one (or grace)
    REJECTED = "rejected"  # the charger refused, or answered with an error: the old password stays, alone
    UNCONFIRMED = "unconfirmed"  # no answer: both work until the charger logs in with the new one


@dataclass(frozen=True)
class PasswordRotation:
    result: str
    detail: str
    password: str = field(repr=False)  # shown once to staff who need it, never stored in the clear


class PasswordRotationRefused(Exception):
    """The station cannot have its password rotated (unknown, offline, no HTTP Basic)."""


def station_password_generate() -> str:
    """40 hexadecimal characters (160 bits): within both 1.6's AuthorizationKey and 2.0.1's passwordString limits
    (16 to 40 characters), and valid for chargers that read the key as the hexadecimal form of 20 bytes."""
    return secrets.token_hex(20)


def check_station_rotatable(*, identity: str) -> ChargingStation:
    try:
        station = check_station_reachable(identity=identity)
    except CommandError as exc:
        raise PasswordRotationRefused(str(exc)) from exc
    if station.security_profile not in (SecurityProfile.BASIC, SecurityProfile.BASIC_TLS):
        profile = station.security_profile
        raise PasswordRotationRefused(f"{identity} does not use HTTP Basic (security profile {profile})")
    return station


def station_password_rotate(*, identity: str, timeout: float | None = None) -> PasswordRotation:
    """Set a new password on the online station and wait for its answer (OCPP_CALL_TIMEOUT). The new password's
    hash is committed before the CALL goes out, so a charger that reconnects with it at once is let in."""
    station = check_station_rotatable(identity=identity)
    password = station_password_generate()
    pending = station_secret_hash(password)
    ChargingStation.objects.filter(pk=station.pk).update(pending_secret_hash=pending, pending_secret_accepted_at=None)
    call = BasicAuthPasswordSet(password=password).for_version(station.ocpp_version)
    this_rotation = ChargingStation.objects.filter(pk=station.pk, pending_secret_hash=pending)
    try:
        answer = command_send(identity=identity, action=call.action, payload=call.payload, timeout=timeout)
    except CommandError as exc:
        if exc.reason == CommandError.TIMEOUT:
            logger.warning("station %s: no answer to the new password; old and new both work", identity)
            return PasswordRotation(RotationResult.UNCONFIRMED, str(exc), password)
        this_rotation.update(pending_secret_hash="", pending_secret_accepted_at=None)
        logger.warning("station %s: new password not set (%s): the old one stays", identity, exc)
        return PasswordRotation(RotationResult.REJECTED, f"{exc.reason}: {exc}", password)
    status = BasicAuthPasswordSet.status(answer)
    if status in ACCEPTED_STATUSES:
        this_rotation.update(pending_secret_accepted_at=timezone.now())
        logger.info("station %s accepted a new password (%s)", identity, status)
        return PasswordRotation(RotationResult.ACCEPTED, status, password)
    this_rotation.update(pending_secret_hash="", pending_secret_accepted_at=None)
    logger.warning("station %s rejected the new password (%s): the old one stays", identity, status)
    return PasswordRotation(RotationResult.REJECTED, status or "no status", password)


def _pending_promote(*, station: ChargingStation, why: str) -> None:
    promoted = ChargingStation.objects.filter(pk=station.pk, pending_secret_hash=station.pending_secret_hash).update(
        secret_hash=station.pending_secret_hash,
        pending_secret_hash="",
        pending_secret_accepted_at=None,
        secret_rotated_at=timezone.now(),
    )
    if promoted:
        logger.info("station %s: the new password replaces the old one (%s)", station.identity, why)


def station_password_check(*, station: ChargingStation, secret: str) -> bool:
    """Whether `secret` is the station's password, during a rotation too. The new one's first use makes it the only
    one; once the grace window after the charger accepted has passed, only the new one counts. `station` needs
    identity, secret_hash, pending_secret_hash and pending_secret_accepted_at."""
    if station.pending_secret_hash:
        if station_secret_check(secret_hash=station.pending_secret_hash, secret=secret):
            _pending_promote(station=station, why="the charger logged in with it")
            return True
        accepted_at = station.pending_secret_accepted_at
        grace = timedelta(seconds=settings.OCPP_PASSWORD_ROTATION_GRACE_SECONDS)
        if accepted_at is not None and accepted_at + grace <= timezone.now():
            _pending_promote(station=station, why="the grace window ended")
            return False
    return station_secret_check(secret_hash=station.secret_hash, secret=secret)


def stations_due_for_rotation() -> list[str]:
    """Identities of online HTTP Basic stations whose password is older than OCPP_PASSWORD_ROTATION_DAYS (none when
    the policy is off) and that are not in the middle of a rotation."""
    days = settings.OCPP_PASSWORD_ROTATION_DAYS
    if days <= 0:
        return []
    cutoff = timezone.now() - timedelta(days=days)
    return list(
        ChargingStation.objects.filter(
            online=True,
            security_profile__in=(SecurityProfile.BASIC, SecurityProfile.BASIC_TLS),
            pending_secret_hash="",
        )
        .exclude(secret_hash="")
        .filter(Q(secret_rotated_at__lt=cutoff) | Q(secret_rotated_at__isnull=True, created_at__lt=cutoff))
        .values_list("identity", flat=True)
    )
