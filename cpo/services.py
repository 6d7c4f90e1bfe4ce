"""Writes on the network's assets: stations, their secrets, EVSEs and connectors."""

import hashlib
import hmac
import re
import secrets

from django.conf import settings
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
    tariff_id: str | None = None,
) -> tuple[ChargingStation, str]:
    """Create a station with `evses` EVSEs of one Type 2 connector each, on tariff `tariff_id` (None: the location's
    default tariff; ""; none); returns it with its plain secret, which is shown once and never stored. The caller
    checks that the tariff exists (billing's, which assets do not import)."""
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
        tariff_id = location.default_tariff_id if tariff_id is None else tariff_id
        for number in range(1, evses + 1):
            station_evse_add(station=station, ocpp_evse_id=number, tariff_id=tariff_id)
    return station, secret


def station_secret_reset(*, station: ChargingStation, password: str | None = None) -> str:
    secret = password or station_secret_generate()
    check_station_secret(secret)
    station.secret_hash = station_secret_hash(secret)
    station.pending_secret_hash, station.pending_secret_accepted_at = "", None  # a rotation under way is over
    station.save(update_fields=["secret_hash", "pending_secret_hash", "pending_secret_accepted_at"])
    return secret


EVSE_UID_MAX_LENGTH = 36  # OCPI EVSE.uid: CiString(36)
EVSE_ID_MAX_LENGTH = 48  # OCPI EVSE.evse_id: CiString(48), eMI3


def _fitted(text: str, *, suffix: str, max_length: int) -> str:
    """`text` + `suffix` within `max_length`: a text too long is cut and marked with a hash of the whole text, so two
    long texts that share their beginning still differ, and the same text always gives the same result."""
    if len(text) + len(suffix) <= max_length:
        return text + suffix
    digest = hashlib.sha256(text.encode()).hexdigest()[:8]
    return text[: max_length - len(suffix) - len(digest) - 1] + "~" + digest + suffix


def evse_uid_for(*, identity: str, ocpp_evse_id: int) -> str:
    """The OCPI uid of a station's EVSE: `<identity>-<n>`, or, for identities too long for 36 characters (OCPP allows
    48), the identity cut short with a hash of it. Stable: derived from what never changes."""
    return _fitted(identity, suffix=f"-{ocpp_evse_id}", max_length=EVSE_UID_MAX_LENGTH)


def evse_id_for(*, identity: str, ocpp_evse_id: int) -> str:
    """The eMI3 EVSE ID `<country>*<party>*E<identity's letters and digits>*<n>`, within 48 characters."""
    prefix = f"{settings.OCPI_COUNTRY_CODE}*{settings.OCPI_PARTY_ID}*E"
    outlet = re.sub(r"[^A-Za-z0-9]", "", identity)
    return prefix + _fitted(outlet, suffix=f"*{ocpp_evse_id}", max_length=EVSE_ID_MAX_LENGTH - len(prefix))


def station_evse_add(
    *, station: ChargingStation, ocpp_evse_id: int, connectors: int = 1, tariff_id: str = "", registered: bool = True
) -> EVSE:
    """An EVSE at the station's location with its OCPI uid and eMI3 EVSE ID derived from the identity, its
    connectors on `tariff_id` (none when empty). `registered=False` for one only the charger reported: it is not
    published to partners until staff register it (`evse_register`)."""
    assert station.location is not None, "a station needs a location before it gets EVSEs"
    evse = EVSE.objects.create(
        uid=evse_uid_for(identity=station.identity, ocpp_evse_id=ocpp_evse_id),
        location=station.location,
        station=station,
        ocpp_evse_id=ocpp_evse_id,
        evse_id=evse_id_for(identity=station.identity, ocpp_evse_id=ocpp_evse_id),
        capabilities=["REMOTE_START_STOP_CAPABLE", "RFID_READER", "UNLOCK_CAPABLE", "RESERVABLE"],
        physical_reference=str(ocpp_evse_id)[:16],
        registered=registered,
    )
    for number in range(1, connectors + 1):
        Connector.objects.create(
            evse=evse, connector_id=str(number), max_electric_power=22000, tariff_ids=[tariff_id] if tariff_id else []
        )
    return evse


def evse_register(*, evse: EVSE) -> bool:
    """Staff confirm an EVSE the charger reported: from now on it is published to partners (the save announces its
    PUT). False when it was registered already."""
    if evse.registered:
        return False
    evse.registered = True
    evse.save(update_fields=["registered", "last_updated"])
    return True
