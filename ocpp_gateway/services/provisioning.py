"""Provisioning (2.0.1 block B; 1.6 Core): the handshake before the socket opens, connect and disconnect, and what
a charger says it is (BootNotification). EVSEs a located station reports are onboarded on first sight."""

from collections.abc import Sequence
from dataclasses import dataclass, replace
from datetime import datetime

from django.conf import settings
from django.db import IntegrityError, connection, transaction
from django.db.models import Q
from django.utils import timezone

from cpo.models import EVSE, ChargingStation, RegistrationStatus, SecurityProfile
from cpo.services import station_evse_add
from ocpp_gateway import events, sql
from ocpp_gateway.models import StationAuthFailure
from ocpp_gateway.services.liveness import (
    gateway_lease_ensure,
    station_evses_touch,
    station_socket_held,
    station_socket_released,
)
from ocpp_gateway.services.passwords import station_password_check
from ocpp_gateway.services.security import (
    station_auth_failure_record,
    station_auth_lockout,
    station_flood_cooldown,
)


@dataclass(frozen=True)
class StationAuthentication:
    station_pk: int | None
    identity: str
    ocpp_version: str = ""
    registration_status: str = ""
    refusal: str = ""  # why the handshake is refused; empty when admitted
    reason: str = ""  # the refusal's short name (a StationAuthFailure reason, or "locked_out"), for metrics
    registered_at: datetime | None = None  # the station's creation (services.clock)
    retry_after: int = 0  # refused for now only: the charger may come back after this many seconds

    @property
    def admitted(self) -> bool:
        return not self.refusal


IDENTITY_MAX_LENGTH = 48


def station_identity_check(*, identity: str) -> str:
    """Why `identity` (the path segment after /ocpp/, URL-decoded once) cannot be a charging station identity;
    empty when it can.

    OCPP-J and the security whitepaper: at most 48 characters, printable. We also refuse the colon (it ends the
    Basic-auth username, which must equal the identity), the slash and dot-only names (path segments).
    """
    if not identity:
        return "empty identity"
    if len(identity) > IDENTITY_MAX_LENGTH:
        return f"identity longer than {IDENTITY_MAX_LENGTH} characters"
    if not all("!" <= char <= "~" for char in identity):
        return "identity has characters that are not printable ASCII"
    if ":" in identity or "/" in identity:
        return "identity has ':' or '/'"
    if not identity.strip("."):
        return "identity is a path segment"
    return ""


def station_authenticate(
    *,
    identity: str,
    username: str | None,
    secret: str | None,
    address: str = "",
    tls: bool = False,
    certificate_cn: str = "",
) -> StationAuthentication:
    """The station's security profile checked before the socket is accepted, behind the brute-force lockout:
    HTTP Basic for profile 1, HTTP Basic over TLS for 2, over TLS a client certificate whose common name is the
    identity for 3 (`tls` and `certificate_cn` as the trusted proxy says, see consumers.connection_security),
    nothing for 0 (lab chargers).

    Unknown identities are refused, or admitted as Pending when OCPP_ADMIT_UNKNOWN_STATIONS is on (staff accept
    them in the admin). A known station must present its own identity and secret. While the identity or the client
    address is locked out (services.security), the handshake is refused before anything is checked; so it is, for
    a while (`retry_after`), when the charger was closed for flooding.
    """
    cooldown = station_flood_cooldown(identity=identity)
    if cooldown:
        refusal = f"closed for flooding: refused for {cooldown} s more"
        return StationAuthentication(None, identity, refusal=refusal, reason="flood_cooldown", retry_after=cooldown)
    lockout = station_auth_lockout(identity=identity, address=address)
    if lockout:
        return StationAuthentication(None, identity, refusal=lockout, reason=StationAuthFailure.Reason.LOCKED_OUT.value)
    auth, reason = _station_credentials_check(
        identity=identity, username=username, secret=secret, tls=tls, certificate_cn=certificate_cn
    )
    if reason:
        station_auth_failure_record(identity=identity, address=address, station_pk=auth.station_pk, reason=reason)
        auth = replace(auth, reason=str(reason))
    return auth


def _admitted(station: ChargingStation, identity: str) -> StationAuthentication:
    return StationAuthentication(
        station.pk, identity, station.ocpp_version, station.registration_status, registered_at=station.created_at
    )


def _station_credentials_check(
    *, identity: str, username: str | None, secret: str | None, tls: bool = False, certificate_cn: str = ""
) -> tuple[StationAuthentication, str]:
    """The authentication, and the StationAuthFailure reason when refused."""
    Reason = StationAuthFailure.Reason
    row = sql.fetch_one(_STATION_CREDENTIALS, [identity])
    station = None
    if row is not None:
        values = [
            sql.from_db_datetime(value) if name.endswith("_at") else value
            for name, value in zip(_STATION_CREDENTIALS_FIELDS, row, strict=True)
        ]
        station = ChargingStation.from_db(connection.alias, _STATION_CREDENTIALS_FIELDS, values)
    if station is None:
        if not settings.OCPP_ADMIT_UNKNOWN_STATIONS:
            return StationAuthentication(None, identity, refusal="unknown identity"), Reason.UNKNOWN_IDENTITY
        station, _ = ChargingStation.objects.get_or_create(
            identity=identity, defaults={"registration_status": RegistrationStatus.PENDING}
        )
        return _admitted(station, identity), ""
    refusal, reason = _station_transport_check(
        identity=identity, profile=station.security_profile, tls=tls, certificate_cn=certificate_cn
    )
    if refusal:
        return StationAuthentication(station.pk, identity, refusal=refusal), reason
    if station.security_profile == SecurityProfile.CLIENT_CERTIFICATE:
        return _admitted(station, identity), ""
    if station.security_profile != SecurityProfile.NONE:  # 1, and 2 (over TLS, checked above)
        if not station.secret_hash:
            # Admitted as unknown earlier and not given a secret yet: only while unknown stations are admitted.
            if not settings.OCPP_ADMIT_UNKNOWN_STATIONS:
                return StationAuthentication(station.pk, identity, refusal="station has no secret"), Reason.NO_SECRET
        elif username != identity or not secret:
            return (
                StationAuthentication(station.pk, identity, refusal="missing or foreign credentials"),
                Reason.MISSING_CREDENTIALS,
            )
        elif not station_password_check(station=station, secret=secret):  # during a rotation: old or new
            return StationAuthentication(station.pk, identity, refusal="bad secret"), Reason.BAD_SECRET
    return _admitted(station, identity), ""


# Read with a plain statement (ocpp_gateway/sql.py) on every handshake: the ORM's query was most of the check's cost.
# In the model's field order, as Model.from_db takes them.
_STATION_CREDENTIALS_FIELDS = [
    field.attname
    for field in ChargingStation._meta.concrete_fields
    if field.attname
    in {
        "id",
        "identity",
        "secret_hash",
        "pending_secret_hash",
        "pending_secret_accepted_at",
        "security_profile",
        "ocpp_version",
        "registration_status",
        "created_at",
    }
]
_STATION_CREDENTIALS = 'SELECT {} FROM "{}" WHERE "identity" = %s'.format(  # noqa: S608 - the model's names
    ", ".join(f'"{name}"' for name in _STATION_CREDENTIALS_FIELDS), ChargingStation._meta.db_table
)


def _station_transport_check(*, identity: str, profile: int, tls: bool, certificate_cn: str) -> tuple[str, str]:
    """Profiles 2 and 3: the refusal and StationAuthFailure reason when the connection is not TLS or (3) the
    proxy-verified client certificate is missing or names another identity; empty strings when it is fine."""
    Reason = StationAuthFailure.Reason
    if profile not in (SecurityProfile.BASIC_TLS, SecurityProfile.CLIENT_CERTIFICATE):
        return "", ""
    if not tls:
        return f"security profile {profile} needs a TLS connection (through the proxy)", Reason.NO_TLS
    if profile == SecurityProfile.CLIENT_CERTIFICATE:
        if not certificate_cn:
            return "no verified client certificate", Reason.NO_CERTIFICATE
        if certificate_cn != identity:
            return f"client certificate of {certificate_cn[:64]!r}, not of this identity", Reason.CERTIFICATE_MISMATCH
    return "", ""


def station_connected(*, station_pk: int, channel_name: str, ocpp_version: str) -> str:
    """The socket is ours: a later connection of the same identity takes over from an earlier one. Returns the
    channel name of the connection it took over from (empty when none), which the caller tells to step aside. The
    station records this process (its lease, services/liveness.py): if the process dies, the station goes offline.

    The station's row is locked while it changes hands, so of two handshakes of one identity at the same moment the
    later one learns about the earlier one and nobody keeps a socket the station no longer names."""
    now = timezone.now()
    station_socket_held(station_pk=station_pk, channel_name=channel_name)
    process = gateway_lease_ensure()
    with transaction.atomic():
        previous, was_online = sql.fetch_one(_STATION_CONNECTION + sql.for_update(), [station_pk]) or ("", False)
        if not was_online:
            station_evses_touch(station_pks=[station_pk])
        now_db = sql.to_db_datetime(now)
        sql.execute(_STATION_CONNECTED, [True, now_db, now_db, channel_name, process, ocpp_version, station_pk])
    events.announce(events.station_online, station_pk=station_pk)
    return previous if previous and previous != channel_name else ""


# Plain statements on a reconnect storm's path (ocpp_gateway/sql.py): the ORM's cost per handshake was the larger part.
_STATION_CONNECTION = f'SELECT "connection_channel", "online" FROM "{ChargingStation._meta.db_table}" WHERE "id" = %s'  # noqa: S608
_STATION_CONNECTED = (
    f'UPDATE "{ChargingStation._meta.db_table}" SET "online" = %s, "connected_since" = %s, "last_seen" = %s, '  # noqa: S608
    '"connection_channel" = %s, "gateway_process" = %s, "ocpp_version" = %s WHERE "id" = %s'
)


DISCONNECTS_CHUNK = 200  # sockets per statement: (pk, channel) pairs, two parameters each


def stations_disconnected(*, sockets: Sequence[tuple[int, str]]) -> list[int]:
    """Sockets that closed, as (station pk, channel name): each station whose row still names that socket goes
    offline (a replaced connection closing changes nothing); returns those stations. Should writing it fail, this
    process's lease thread writes it later (liveness.stations_reconcile).

    A gateway hands them on in batches (consumers.disconnect_writer): a network cut closes thousands at once, and a
    statement each held the database threads for longer than daphne waits for a closed connection's application
    (10 s) while the same chargers reconnected."""
    for _, channel_name in sockets:
        station_socket_released(channel_name=channel_name)
    offline: list[int] = []
    for start in range(0, len(sockets), DISCONNECTS_CHUNK):
        held = Q()
        for station_pk, channel_name in sockets[start : start + DISCONNECTS_CHUNK]:
            held |= Q(pk=station_pk, connection_channel=channel_name)
        with transaction.atomic():
            # Locked in one order: two processes' batches may name the same station (it moved between them).
            locked = ChargingStation.objects.select_for_update().filter(held).order_by("pk")
            pks = list(locked.values_list("pk", flat=True))
            ChargingStation.objects.filter(pk__in=pks).update(
                online=False, connection_channel="", gateway_process="", last_seen=timezone.now()
            )
        offline += pks
    if offline:
        station_evses_touch(station_pks=offline)
        for station_pk in offline:
            events.announce(events.station_offline, station_pk=station_pk)
    return offline


def station_seen(*, station_pks: list[int]) -> None:
    ChargingStation.objects.filter(pk__in=station_pks).update(last_seen=timezone.now())


def station_boot(
    *,
    station_pk: int,
    vendor: str,
    model: str,
    serial_number: str = "",
    firmware_version: str = "",
    iccid: str = "",
    imsi: str = "",
    meter_type: str = "",
    meter_serial_number: str = "",
) -> str:
    """Record what the charger says it is; returns the RegistrationStatus to answer.

    One UPDATE of these columns only, returning the status: a model loaded and saved whole wrote back every column as
    it was read (a password rotation or a disconnect in between was undone), and cost a tenth of the gateway's CPU in
    a reconnect storm (bench/RESULTS.md)."""
    now = sql.to_db_datetime(timezone.now())
    row = sql.fetch_one(
        _STATION_BOOT,
        [
            vendor[:50],
            model[:50],
            (serial_number or "")[:50],
            (firmware_version or "")[:50],
            (iccid or "")[:20],
            (imsi or "")[:20],
            (meter_type or "")[:25],
            (meter_serial_number or "")[:25],
            now,
            now,
            station_pk,
        ],
    )
    if row is None:
        raise ChargingStation.DoesNotExist(f"station {station_pk} is gone")
    registration_status = row[0]
    if registration_status == RegistrationStatus.ACCEPTED:
        events.announce(events.station_booted, station_pk=station_pk)
    return registration_status


_STATION_BOOT = (
    f'UPDATE "{ChargingStation._meta.db_table}" SET "vendor" = %s, "model" = %s, "serial_number" = %s, '  # noqa: S608
    '"firmware_version" = %s, "iccid" = %s, "imsi" = %s, "meter_type" = %s, "meter_serial_number" = %s, '
    '"last_boot" = %s, "last_seen" = %s WHERE "id" = %s RETURNING "registration_status"'
)


def evse_resolve(*, station: ChargingStation, ocpp_evse_id: int | None) -> EVSE | None:
    """The EVSE behind an OCPP evseId/connectorId; recorded on first sight when the station has a location, so a
    charger with more sockets than registered shows them to staff. Such an EVSE is unregistered (not published to
    partners) until staff register it, unless OCPP_AUTO_ACCEPT_CONNECTORS."""
    if not ocpp_evse_id:
        return None
    evse = EVSE.objects.filter(station=station, ocpp_evse_id=ocpp_evse_id).first()
    if evse is None and station.location is not None:
        try:
            with transaction.atomic():
                evse = station_evse_add(
                    station=station,
                    ocpp_evse_id=ocpp_evse_id,
                    tariff_id=station.location.default_tariff_id,
                    registered=settings.OCPP_AUTO_ACCEPT_CONNECTORS,
                )
        except IntegrityError:
            evse = EVSE.objects.filter(station=station, ocpp_evse_id=ocpp_evse_id).first()
    return evse
