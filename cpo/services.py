"""Writes on the network's assets: stations, their secrets, EVSEs and connectors."""

import hashlib
import hmac
import secrets

from django.db import transaction

from cpo.models import EVSE, ChargingStation, Connector, Location, RegistrationStatus, SecurityProfile

SECRET_MIN_LENGTH = 16
SECRET_MAX_LENGTH = 40  # OCPP 1.6 security whitepaper / 2.0.1 BasicAuthPassword: 16..40 characters


def station_secret_generate() -> str:
    """A random secret of 32 URL-safe characters (~190 bits)."""
    return secrets.token_urlsafe(24)


def station_secret_hash(secret: str) -> str:
    """Salted SHA-256. Station secrets are long random strings, not human passwords, so a slow KDF buys nothing
    and would make every reconnect storm (thousands of handshakes at once) CPU-bound."""
    salt = secrets.token_hex(8)
    digest = hashlib.sha256(f"{salt}${secret}".encode()).hexdigest()
    return f"sha256${salt}${digest}"


def station_secret_check(*, secret_hash: str, secret: str) -> bool:
    try:
        algorithm, salt, digest = secret_hash.split("$", 2)
    except ValueError:
        return False
    if algorithm != "sha256":
        return False
    candidate = hashlib.sha256(f"{salt}${secret}".encode()).hexdigest()
    return hmac.compare_digest(candidate, digest)


def check_station_secret(secret: str) -> None:
    if not SECRET_MIN_LENGTH <= len(secret) <= SECRET_MAX_LENGTH:
        raise ValueError(f"a station secret has {SECRET_MIN_LENGTH} to {SECRET_MAX_LENGTH} characters")


@transaction.atomic
def station_create(
    *,
    identity: str,
    location: Location | None,
    evses: int = 1,
    password: str | None = None,
    registration_status: str = RegistrationStatus.ACCEPTED,
    security_profile: int = SecurityProfile.BASIC,
) -> tuple[ChargingStation, str]:
    """Create a station with `evses` EVSEs of one Type 2 connector each; returns it with its plain secret, which
    is shown once and never stored."""
    secret = password or station_secret_generate()
    check_station_secret(secret)
    station = ChargingStation.objects.create(
        identity=identity,
        secret_hash=station_secret_hash(secret),
        location=location,
        registration_status=registration_status,
        security_profile=security_profile,
    )
    if location is not None:
        for number in range(1, evses + 1):
            station_evse_add(station=station, ocpp_evse_id=number)
    return station, secret


def station_secret_reset(*, station: ChargingStation, password: str | None = None) -> str:
    secret = password or station_secret_generate()
    check_station_secret(secret)
    station.secret_hash = station_secret_hash(secret)
    station.pending_secret_hash, station.pending_secret_accepted_at = "", None  # a rotation under way is over
    station.save(update_fields=["secret_hash", "pending_secret_hash", "pending_secret_accepted_at"])
    return secret


def station_evse_add(*, station: ChargingStation, ocpp_evse_id: int, connectors: int = 1) -> EVSE:
    """An EVSE at the station's location with its OCPI uid and eMI3 EVSE ID derived from the identity."""
    from django.conf import settings

    assert station.location is not None, "a station needs a location before it gets EVSEs"
    uid = f"{station.identity}-{ocpp_evse_id}"
    evse = EVSE.objects.create(
        uid=uid,
        location=station.location,
        station=station,
        ocpp_evse_id=ocpp_evse_id,
        evse_id=f"{settings.OCPI_COUNTRY_CODE}*{settings.OCPI_PARTY_ID}*E{station.identity}*{ocpp_evse_id}".replace(
            "-", ""
        ),
        capabilities=["REMOTE_START_STOP_CAPABLE", "RFID_READER", "UNLOCK_CAPABLE", "RESERVABLE"],
        physical_reference=str(ocpp_evse_id),
    )
    for number in range(1, connectors + 1):
        Connector.objects.create(evse=evse, connector_id=str(number), max_electric_power=22000)
    return evse
