"""The network's assets, shaped after OCPI 2.2.1 (mod_locations) so that serialising them is a projection."""

from datetime import time

from django.core.exceptions import ValidationError
from django.db import models
from django.db.models import Q


class LastUpdatedModel(models.Model):
    """OCPI objects carry `last_updated`; partners filter on it, so it moves on every change."""

    last_updated = models.DateTimeField(auto_now=True, db_index=True)

    class Meta:
        abstract = True


class ParkingType(models.TextChoices):
    ALONG_MOTORWAY = "ALONG_MOTORWAY"
    PARKING_GARAGE = "PARKING_GARAGE"
    PARKING_LOT = "PARKING_LOT"
    ON_DRIVEWAY = "ON_DRIVEWAY"
    ON_STREET = "ON_STREET"
    UNDERGROUND_GARAGE = "UNDERGROUND_GARAGE"


class Location(LastUpdatedModel):
    """OCPI Location. `opening_times` holds the OCPI Hours object as JSON (twentyfourseven, regular_hours...)."""

    id = models.CharField(max_length=36, primary_key=True)
    publish = models.BooleanField(default=True)
    name = models.CharField(max_length=255, blank=True)
    address = models.CharField(max_length=45)
    city = models.CharField(max_length=45)
    postal_code = models.CharField(max_length=10, blank=True)
    state = models.CharField(max_length=20, blank=True)
    country = models.CharField(max_length=3, help_text="ISO 3166-1 alpha-3, e.g. NLD")
    latitude = models.DecimalField(max_digits=9, decimal_places=6)
    longitude = models.DecimalField(max_digits=9, decimal_places=6)
    parking_type = models.CharField(max_length=20, choices=ParkingType.choices, blank=True)
    time_zone = models.CharField(max_length=255, default="Europe/Amsterdam", help_text="IANA tz, e.g. Europe/Oslo")
    opening_times = models.JSONField(null=True, blank=True)
    facilities = models.JSONField(default=list, blank=True)
    charging_when_closed = models.BooleanField(null=True, blank=True)
    # billing.Tariff id (assets do not import billing): what a connector without tariff_ids of its own is priced
    # with and published with; onboarding gives new connectors this one unless told otherwise.
    default_tariff_id = models.CharField(max_length=36, blank=True, help_text="Tariff of connectors without one")

    class Meta:
        ordering = ["id"]

    def __str__(self) -> str:
        return f"{self.id} {self.name}".strip()


class RegistrationStatus(models.TextChoices):
    """OCPP RegistrationStatus: what BootNotification answers."""

    ACCEPTED = "Accepted"
    PENDING = "Pending"
    REJECTED = "Rejected"


class OcppVersion(models.TextChoices):
    V16 = "1.6", "OCPP 1.6J"
    V201 = "2.0.1", "OCPP 2.0.1"
    V21 = "2.1", "OCPP 2.1"


class SecurityProfile(models.IntegerChoices):
    """OCPP security profiles (1.6 security whitepaper, 2.0.1 part 2 A00): how a station proves who it is."""

    NONE = 0, "0: no authentication (lab chargers on a closed network only)"
    BASIC = 1, "1: HTTP Basic"
    BASIC_TLS = 2, "2: HTTP Basic over TLS"
    CLIENT_CERTIFICATE = 3, "3: TLS client certificate"


class ChargingStation(models.Model):
    """One OCPP charge point, identified by the last path segment of its websocket URL."""

    identity = models.CharField(max_length=48, unique=True, help_text="OCPP identity (chargeBoxId)")
    secret_hash = models.CharField(max_length=128, blank=True, help_text="Salted hash of the HTTP Basic password")
    pending_secret_hash = models.CharField(
        max_length=128,
        blank=True,
        editable=False,
        help_text="Salted hash of the new password being set on the charger (password rotation): it works besides "
        "the current one and replaces it when the charger logs in with it",
    )
    pending_secret_accepted_at = models.DateTimeField(
        null=True,
        blank=True,
        editable=False,
        help_text="When the charger accepted the new password; the current one stops working "
        "OCPP_PASSWORD_ROTATION_GRACE_SECONDS later at the latest",
    )
    secret_rotated_at = models.DateTimeField(
        null=True, blank=True, editable=False, help_text="When the charger last changed to a new password"
    )
    security_profile = models.PositiveSmallIntegerField(
        choices=SecurityProfile.choices,
        default=SecurityProfile.BASIC,
        help_text="0 admits the station without credentials; 2 is 1 through the TLS-terminating proxy; "
        "3 is a client certificate (verified by the proxy) whose common name is the identity",
    )
    location = models.ForeignKey(Location, null=True, blank=True, on_delete=models.PROTECT, related_name="stations")
    vendor = models.CharField(max_length=50, blank=True)
    model = models.CharField(max_length=50, blank=True)
    serial_number = models.CharField(max_length=50, blank=True)
    firmware_version = models.CharField(max_length=50, blank=True)
    iccid = models.CharField(max_length=20, blank=True)
    imsi = models.CharField(max_length=20, blank=True)
    meter_type = models.CharField(max_length=25, blank=True)
    meter_serial_number = models.CharField(max_length=25, blank=True)
    ocpp_version = models.CharField(max_length=8, choices=OcppVersion.choices, blank=True)
    registration_status = models.CharField(
        max_length=10, choices=RegistrationStatus.choices, default=RegistrationStatus.ACCEPTED
    )
    online = models.BooleanField(default=False, db_index=True)
    connected_since = models.DateTimeField(null=True, blank=True)
    last_seen = models.DateTimeField(null=True, blank=True)
    last_boot = models.DateTimeField(null=True, blank=True)
    # What the station reports for itself as a whole (1.6 StatusNotification connectorId 0, 2.0.1 evseId 0), e.g.
    # Faulted / PowerMeterFailure, with the vendor's details as sent.
    ocpp_status = models.CharField(max_length=20, blank=True, help_text="Last station-wide status reported")
    ocpp_error_code = models.CharField(max_length=50, blank=True)
    status_info = models.CharField(max_length=50, blank=True, help_text="1.6 StatusNotification info")
    vendor_id = models.CharField(max_length=255, blank=True, help_text="1.6 StatusNotification vendorId")
    vendor_error_code = models.CharField(max_length=50, blank=True)
    status_updated = models.DateTimeField(null=True, blank=True)
    # The last time a charger's timestamp was not believed (ocpp_gateway.services.clock): by how much its clock was
    # off (seconds, positive when ahead of ours) and when we saw it.
    clock_skew = models.IntegerField(null=True, blank=True, help_text="Seconds the clock was off (+ ahead)")
    clock_skew_at = models.DateTimeField(null=True, blank=True)
    # Channel name of the consumer holding the socket: a later connection replaces it, and only the current
    # holder may mark the station offline when its socket closes.
    connection_channel = models.CharField(max_length=200, blank=True)
    # The gateway process holding the socket (its lease, ocpp_gateway.GatewayProcess): when that process dies, its
    # lease runs out and housekeeping marks the station offline (ocpp_gateway/services/liveness.py).
    gateway_process = models.CharField(max_length=32, blank=True, db_index=True)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["identity"]

    def __str__(self) -> str:
        return self.identity


class Capability(models.TextChoices):
    CHARGING_PROFILE_CAPABLE = "CHARGING_PROFILE_CAPABLE"
    CHARGING_PREFERENCES_CAPABLE = "CHARGING_PREFERENCES_CAPABLE"
    CHIP_CARD_SUPPORT = "CHIP_CARD_SUPPORT"
    CONTACTLESS_CARD_SUPPORT = "CONTACTLESS_CARD_SUPPORT"
    CREDIT_CARD_PAYABLE = "CREDIT_CARD_PAYABLE"
    DEBIT_CARD_PAYABLE = "DEBIT_CARD_PAYABLE"
    PED_TERMINAL = "PED_TERMINAL"
    REMOTE_START_STOP_CAPABLE = "REMOTE_START_STOP_CAPABLE"
    RESERVABLE = "RESERVABLE"
    RFID_READER = "RFID_READER"
    START_SESSION_CONNECTOR_REQUIRED = "START_SESSION_CONNECTOR_REQUIRED"
    TOKEN_GROUP_CAPABLE = "TOKEN_GROUP_CAPABLE"  # noqa: S105 - a capability name, not a secret
    UNLOCK_CAPABLE = "UNLOCK_CAPABLE"


class EvseStatus(models.TextChoices):
    """OCPI EVSE Status."""

    AVAILABLE = "AVAILABLE"
    BLOCKED = "BLOCKED"
    CHARGING = "CHARGING"
    INOPERATIVE = "INOPERATIVE"
    OUTOFORDER = "OUTOFORDER"
    PLANNED = "PLANNED"
    REMOVED = "REMOVED"
    RESERVED = "RESERVED"
    UNKNOWN = "UNKNOWN"


class EVSE(LastUpdatedModel):
    """OCPI EVSE. `ocpp_evse_id` is the OCPP 2.0.1 evseId, and the OCPP 1.6 connectorId (one connector per EVSE)."""

    uid = models.CharField(max_length=36, unique=True)
    location = models.ForeignKey(Location, on_delete=models.CASCADE, related_name="evses")
    station = models.ForeignKey(ChargingStation, null=True, blank=True, on_delete=models.SET_NULL, related_name="evses")
    ocpp_evse_id = models.PositiveIntegerField(help_text="OCPP 2.0.1 evseId; OCPP 1.6 connectorId")
    evse_id = models.CharField(max_length=48, blank=True, help_text="eMI3 EVSE ID, e.g. NL*CPO*E12345*1")
    status = models.CharField(max_length=12, choices=EvseStatus.choices, default=EvseStatus.UNKNOWN)
    ocpp_status = models.CharField(max_length=20, blank=True, help_text="Last status the charger reported")
    ocpp_error_code = models.CharField(max_length=50, blank=True)
    status_info = models.CharField(max_length=50, blank=True, help_text="1.6 StatusNotification info")
    vendor_id = models.CharField(max_length=255, blank=True, help_text="1.6 StatusNotification vendorId")
    vendor_error_code = models.CharField(max_length=50, blank=True)
    status_updated = models.DateTimeField(null=True, blank=True)
    capabilities = models.JSONField(default=list, blank=True)
    floor_level = models.CharField(max_length=4, blank=True)
    physical_reference = models.CharField(max_length=16, blank=True)
    parking_restrictions = models.JSONField(default=list, blank=True)
    directions = models.JSONField(default=list, blank=True)
    # False for an EVSE a charger reported that staff never registered: recorded and shown to staff, never published
    # to partners until staff register it (or OCPP_AUTO_ACCEPT_CONNECTORS accepts it on first sight).
    registered = models.BooleanField(default=True, help_text="Unchecked: reported by the charger, not published")

    class Meta:
        ordering = ["location_id", "uid"]
        verbose_name = "EVSE"
        constraints = [
            models.UniqueConstraint(
                fields=["station", "ocpp_evse_id"], condition=Q(station__isnull=False), name="evse_unique_ocpp_id"
            )
        ]

    def __str__(self) -> str:
        return self.evse_id or self.uid


class ConnectorType(models.TextChoices):
    CHADEMO = "CHADEMO"
    CHAOJI = "CHAOJI"
    DOMESTIC_A = "DOMESTIC_A"
    DOMESTIC_B = "DOMESTIC_B"
    DOMESTIC_C = "DOMESTIC_C"
    DOMESTIC_D = "DOMESTIC_D"
    DOMESTIC_E = "DOMESTIC_E"
    DOMESTIC_F = "DOMESTIC_F"
    DOMESTIC_G = "DOMESTIC_G"
    DOMESTIC_H = "DOMESTIC_H"
    DOMESTIC_I = "DOMESTIC_I"
    DOMESTIC_J = "DOMESTIC_J"
    DOMESTIC_K = "DOMESTIC_K"
    DOMESTIC_L = "DOMESTIC_L"
    DOMESTIC_M = "DOMESTIC_M"
    DOMESTIC_N = "DOMESTIC_N"
    DOMESTIC_O = "DOMESTIC_O"
    GBT_AC = "GBT_AC"
    GBT_DC = "GBT_DC"
    IEC_60309_2_single_16 = "IEC_60309_2_single_16"
    IEC_60309_2_three_16 = "IEC_60309_2_three_16"
    IEC_60309_2_three_32 = "IEC_60309_2_three_32"
    IEC_60309_2_three_64 = "IEC_60309_2_three_64"
    IEC_62196_T1 = "IEC_62196_T1"
    IEC_62196_T1_COMBO = "IEC_62196_T1_COMBO"
    IEC_62196_T2 = "IEC_62196_T2"
    IEC_62196_T2_COMBO = "IEC_62196_T2_COMBO"
    IEC_62196_T3A = "IEC_62196_T3A"
    IEC_62196_T3C = "IEC_62196_T3C"
    NEMA_5_20 = "NEMA_5_20"
    NEMA_6_30 = "NEMA_6_30"
    NEMA_6_50 = "NEMA_6_50"
    NEMA_10_30 = "NEMA_10_30"
    NEMA_10_50 = "NEMA_10_50"
    NEMA_14_30 = "NEMA_14_30"
    NEMA_14_50 = "NEMA_14_50"
    PANTOGRAPH_BOTTOM_UP = "PANTOGRAPH_BOTTOM_UP"
    PANTOGRAPH_TOP_DOWN = "PANTOGRAPH_TOP_DOWN"
    TESLA_R = "TESLA_R"
    TESLA_S = "TESLA_S"


class ConnectorFormat(models.TextChoices):
    SOCKET = "SOCKET"
    CABLE = "CABLE"


class PowerType(models.TextChoices):
    AC_1_PHASE = "AC_1_PHASE"
    AC_2_PHASE = "AC_2_PHASE"
    AC_2_PHASE_SPLIT = "AC_2_PHASE_SPLIT"
    AC_3_PHASE = "AC_3_PHASE"
    DC = "DC"


class Connector(LastUpdatedModel):
    """OCPI Connector. `connector_id` is the OCPI Connector.id ("1", "2", ...) and the OCPP 2.0.1 connectorId.
    `power_type` also tells load management how many phases the connector is wired to (see LoadGroup)."""

    evse = models.ForeignKey(EVSE, on_delete=models.CASCADE, related_name="connectors")
    connector_id = models.CharField(max_length=36)
    standard = models.CharField(max_length=30, choices=ConnectorType.choices, default=ConnectorType.IEC_62196_T2)
    format = models.CharField(max_length=6, choices=ConnectorFormat.choices, default=ConnectorFormat.SOCKET)
    power_type = models.CharField(max_length=20, choices=PowerType.choices, default=PowerType.AC_3_PHASE)
    max_voltage = models.PositiveIntegerField(default=230)
    max_amperage = models.PositiveIntegerField(default=32)
    max_electric_power = models.PositiveIntegerField(null=True, blank=True, help_text="W")
    tariff_ids = models.JSONField(default=list, blank=True)
    terms_and_conditions = models.URLField(blank=True)

    class Meta:
        ordering = ["evse_id", "connector_id"]
        constraints = [models.UniqueConstraint(fields=["evse", "connector_id"], name="connector_unique_per_evse")]

    def __str__(self) -> str:
        return f"{self.evse} #{self.connector_id}"


class TokenType(models.TextChoices):
    """OCPI TokenType."""

    AD_HOC_USER = "AD_HOC_USER"
    APP_USER = "APP_USER"
    OTHER = "OTHER"
    RFID = "RFID"


class Token(models.Model):
    """A token issued by this CPO itself (its own RFID cards). Tokens pushed by EMSPs live in `ocpi_api`."""

    uid = models.CharField(max_length=36)
    type = models.CharField(max_length=12, choices=TokenType.choices, default=TokenType.RFID)
    contract_id = models.CharField(max_length=36, blank=True)
    visual_number = models.CharField(max_length=64, blank=True)
    issuer = models.CharField(max_length=64, blank=True)
    group_id = models.CharField(max_length=36, blank=True, help_text="OCPP parentIdTag / groupIdToken")
    valid = models.BooleanField(default=True, help_text="Unchecked: the token is blocked")
    charging_priority = models.SmallIntegerField(
        default=0, help_text="Load management: sessions of higher-priority tokens (a fleet, say) get current first"
    )
    expiry_date = models.DateTimeField(null=True, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)
    last_updated = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["uid"]
        constraints = [models.UniqueConstraint(fields=["uid", "type"], name="token_unique_uid_type")]

    def __str__(self) -> str:
        return f"{self.uid} ({self.type})"


class LoadGroup(models.Model):
    """A grid connection's current limit, shared by the sessions charging under it (load management).

    It covers a location, or only the EVSEs listed (one grid connection of a bigger site). The limit is in amperes
    per phase: `limit_amps` on every phase, unless `limit_amps_l1` / `_l2` / `_l3` give a phase its own (other loads
    sit on L1, say; empty: `limit_amps`). A single-phase group (`phases` 1) has only L1. `schedule` lowers or raises
    the limit at times of day in the location's time zone: `[{"start": "17:00", "end": "21:00", "limit_amps": 40}]`
    (an end before the start runs past midnight); an entry may give a phase its own limit too
    (`"limit_amps_l1": 25`), and a phase it does not name keeps the group's limit for that phase.

    Which phases a session draws on (ocpp_gateway.services.load_management): every EVSE's connectors say how many
    phases it is wired to (OCPI `power_type`: AC_1_PHASE one, AC_2_PHASE two, otherwise three; a 2.0.1 station's
    EVSE `SupplyPhases` when it reported one), and a car may use fewer (2.0.1 NotifyEVChargingNeeds
    `requestedEnergyTransfer` AC_single_phase; or measured: per-phase Current.Import drawn on one phase only). The
    charger's phase 1 is the grid's L1 unless the station reported a phase rotation (1.6 `ConnectorPhaseRotation`,
    e.g. "0.RST,1.RST,2.STR": connector 2's phase 1 is S = L2; 2.0.1 `PhaseRotation` of the ChargingStation, EVSE
    and Connector components, each relative to its parent). In a single-phase group everything draws on L1.
    """

    PHASE_LIMIT_FIELDS = {1: "limit_amps_l1", 2: "limit_amps_l2", 3: "limit_amps_l3"}

    name = models.CharField(max_length=64)
    location = models.ForeignKey(Location, on_delete=models.CASCADE, related_name="load_groups")
    evses = models.ManyToManyField(
        EVSE, blank=True, related_name="load_groups", help_text="None selected: every EVSE of the location"
    )
    limit_amps = models.DecimalField(max_digits=7, decimal_places=1, help_text="A per phase")
    limit_amps_l1 = models.DecimalField(
        "L1 limit", max_digits=7, decimal_places=1, null=True, blank=True, help_text="A; empty: the limit above"
    )
    limit_amps_l2 = models.DecimalField(
        "L2 limit", max_digits=7, decimal_places=1, null=True, blank=True, help_text="A; empty: the limit above"
    )
    limit_amps_l3 = models.DecimalField(
        "L3 limit", max_digits=7, decimal_places=1, null=True, blank=True, help_text="A; empty: the limit above"
    )
    phases = models.PositiveSmallIntegerField(default=3, choices=[(1, "1 phase"), (3, "3 phases")])
    voltage = models.PositiveIntegerField(default=230, help_text="V between phase and neutral")
    min_charging_amps = models.DecimalField(
        max_digits=5, decimal_places=1, default=6, help_text="Below this a car stops charging (IEC 61851: 6 A)"
    )
    schedule = models.JSONField(
        default=list,
        blank=True,
        help_text='Times of day: [{"start": "17:00", "end": "21:00", "limit_amps": 40, "limit_amps_l1": 25}]',
    )
    enabled = models.BooleanField(default=True)

    class Meta:
        ordering = ["location_id", "name"]
        constraints = [
            models.CheckConstraint(condition=Q(limit_amps__gte=0), name="load_group_limit_not_negative"),
            *(
                models.CheckConstraint(
                    condition=Q(**{f"{field}__isnull": True}) | Q(**{f"{field}__gte": 0}),
                    name=f"load_group_{field}_not_negative",
                )
                for field in ("limit_amps_l1", "limit_amps_l2", "limit_amps_l3")
            ),
            models.CheckConstraint(
                condition=~Q(phases=1) | Q(limit_amps_l2__isnull=True, limit_amps_l3__isnull=True),
                name="load_group_single_phase_has_only_l1",
            ),
        ]

    def __str__(self) -> str:
        return f"{self.location_id} {self.name}"

    def clean(self) -> None:
        """What staff enter in the admin: limits per phase not negative, none on L2/L3 of a single-phase group, and
        a schedule whose entries each have a start, an end and at least one limit."""
        errors: dict[str, str] = {}
        for phase, field in self.PHASE_LIMIT_FIELDS.items():
            value = getattr(self, field)
            if value is not None and value < 0:
                errors[field] = "A limit is 0 A or more."
            elif value is not None and self.phases == 1 and phase > 1:
                errors[field] = "A single-phase group has only L1."
        schedule_error = load_group_schedule_error(self.schedule, phases=self.phases)
        if schedule_error:
            errors["schedule"] = schedule_error
        if errors:
            raise ValidationError(errors)


SCHEDULE_LIMIT_KEYS = ("limit_amps", "limit_amps_l1", "limit_amps_l2", "limit_amps_l3")


def load_group_schedule_error(schedule, *, phases: int = 3) -> str | None:
    """Why a LoadGroup schedule is not one the planner can follow, or None."""
    if not isinstance(schedule, list):
        return 'A list of entries: [{"start": "17:00", "end": "21:00", "limit_amps": 40}].'
    for number, entry in enumerate(schedule, start=1):
        if not isinstance(entry, dict):
            return f"Entry {number} is not an object."
        for key in ("start", "end"):
            try:
                time.fromisoformat(str(entry.get(key)))
            except ValueError:
                return f"Entry {number}: {key} is a time of day, like 17:00."
        unknown = set(entry) - {"start", "end", *SCHEDULE_LIMIT_KEYS}
        if unknown:
            return f"Entry {number}: unknown {', '.join(sorted(unknown))}."
        limits = [key for key in SCHEDULE_LIMIT_KEYS if key in entry]
        if not limits:
            return f"Entry {number} gives no limit (limit_amps, or limit_amps_l1 ... limit_amps_l3)."
        for key in limits:
            value = entry[key]
            if isinstance(value, bool) or not isinstance(value, int | float) or value < 0:
                return f"Entry {number}: {key} is a number of amperes, 0 or more."
        if phases == 1 and ({"limit_amps_l2", "limit_amps_l3"} & set(limits)):
            return f"Entry {number}: a single-phase group has only L1."
    return None


class AlertKind(models.TextChoices):
    STATION_OFFLINE = "station_offline"
    STATION_FAULTED = "station_faulted"
    CONNECTOR_FAULTED = "connector_faulted"
    SECURITY_EVENT = "security_event"
    CLOCK_SKEW = "clock_skew"
    CERTIFICATE_EXPIRING = "certificate_expiring"
    AUTH_LOCKOUT = "auth_lockout"
    FIRMWARE_FAILED = "firmware_failed"
    PARTNER_DELIVERY_FAILING = "partner_delivery_failing"
    STATION_LIMIT = "station_limit", "Station over a limit"  # flooding, message log volume (ocpp_gateway.limits)


class Alert(models.Model):
    """Something staff must look at (cpo.alerts). At most one open alert per (kind, subject): raising it again while it
    is open counts the repeat instead of adding a row, so staff and their mailbox see one line per problem."""

    kind = models.CharField(max_length=30, choices=AlertKind.choices)
    subject = models.CharField(max_length=255, help_text="What it is about: station identity, EVSE uid, partner...")
    message = models.TextField()
    first_seen = models.DateTimeField()
    last_seen = models.DateTimeField()
    count = models.PositiveIntegerField(default=1)
    resolved_at = models.DateTimeField(null=True, blank=True, db_index=True)
    resolved_by = models.CharField(max_length=150, blank=True, help_text="The staff member, or empty when resolved")

    class Meta:
        ordering = ["-last_seen"]
        constraints = [
            models.UniqueConstraint(
                fields=["kind", "subject"], condition=Q(resolved_at__isnull=True), name="alert_one_open_per_subject"
            ),
            models.CheckConstraint(condition=Q(last_seen__gte=models.F("first_seen")), name="alert_seen_in_order"),
        ]

    def __str__(self) -> str:
        return f"{self.kind} {self.subject}"
