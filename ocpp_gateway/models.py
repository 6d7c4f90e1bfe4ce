"""What chargers do, as they told us: transactions, meter values, and every frame in and out."""

import os

from django.conf import settings
from django.core.files.storage import FileSystemStorage
from django.db import models
from django.db.models import Q, Value
from django.db.models.functions import Coalesce

from cpo.models import EVSE, ChargingStation, LoadGroup, Location


class Transaction(models.Model):
    """One charging transaction, OCPP 1.6 (id assigned by us) or 2.0.1 (id chosen by the charger).

    `transaction_id` is the OCPP transactionId as a string, unique per station: for 1.6 we choose it per station
    (1, 2, ... wrapping before it leaves the int32 the 1.6 schema allows); for 2.0.1 the charger chooses it. Times
    are the charger's (offline transactions keep their real times) unless its clock was off (services.clock).
    `ended_by` says who ended it: the charger, or we because it rebooted, started another transaction on the
    connector, reported the connector free, or went silent (housekeeping); those end at the last reading we had.
    """

    class Status(models.TextChoices):
        ACTIVE = "ACTIVE"
        ENDED = "ENDED"

    class EndedBy(models.TextChoices):
        CHARGER = "charger", "the charger (StopTransaction / TransactionEvent)"
        REBOOT = "reboot", "the station booted again"
        NEW_TRANSACTION = "new_transaction", "a new transaction on the connector"
        STATUS = "status", "the connector reported Available / Preparing"
        HOUSEKEEPING = "housekeeping", "housekeeping (silent too long)"

    station = models.ForeignKey(ChargingStation, on_delete=models.PROTECT, related_name="transactions")
    evse = models.ForeignKey(EVSE, null=True, blank=True, on_delete=models.SET_NULL, related_name="transactions")
    transaction_id = models.CharField(max_length=36, blank=True)
    ocpp_version = models.CharField(max_length=8)
    ocpp_evse_id = models.PositiveIntegerField(null=True, blank=True, help_text="2.0.1 evseId / 1.6 connectorId")
    connector_id = models.PositiveIntegerField(null=True, blank=True, help_text="OCPP connectorId")
    id_tag = models.CharField(max_length=36, blank=True, help_text="1.6 idTag / 2.0.1 idToken.idToken")
    id_token_type = models.CharField(max_length=20, blank=True, help_text="2.0.1 IdTokenEnumType; 1.6: empty")
    group_id = models.CharField(max_length=36, blank=True)
    auth_status = models.CharField(max_length=20, blank=True, help_text="AuthorizationStatus we answered")
    auth_source = models.CharField(max_length=40, blank=True, help_text="Who authorised: local, partner:<id>, ...")
    authorization_reference = models.CharField(max_length=36, blank=True)
    auth_method = models.CharField(max_length=12, blank=True, help_text="OCPI AuthMethod")
    token_uid = models.CharField(max_length=36, blank=True, help_text="OCPI Token.uid when the idTag is not it")
    token_type = models.CharField(max_length=12, blank=True, help_text="OCPI TokenType of the token that decided")
    contract_id = models.CharField(max_length=36, blank=True)
    token_country_code = models.CharField(max_length=2, blank=True, help_text="Issuer of the token (EMSP)")
    token_party_id = models.CharField(max_length=3, blank=True)
    reservation_id = models.IntegerField(null=True, blank=True)
    remote_start_id = models.IntegerField(null=True, blank=True)
    status = models.CharField(max_length=8, choices=Status.choices, default=Status.ACTIVE, db_index=True)
    started_at = models.DateTimeField()
    charger_started_at = models.DateTimeField(
        null=True, blank=True, help_text="1.6: the start time the charger sent when its clock was not believed"
    )
    ended_at = models.DateTimeField(null=True, blank=True)
    meter_start = models.DecimalField(max_digits=14, decimal_places=3, help_text="Wh")
    meter_stop = models.DecimalField(max_digits=14, decimal_places=3, null=True, blank=True, help_text="Wh")
    meter_last = models.DecimalField(
        max_digits=14, decimal_places=3, null=True, blank=True, help_text="Latest Energy.Active.Import.Register (Wh)"
    )
    meter_last_at = models.DateTimeField(null=True, blank=True)
    power_last = models.DecimalField(max_digits=12, decimal_places=3, null=True, blank=True, help_text="W")
    charging_state = models.CharField(max_length=20, blank=True, help_text="2.0.1 ChargingStateEnumType")
    # What the car and the driver asked for, for load management: the car's current range (2.0.1
    # NotifyEVChargingNeeds, A per phase) and the driver's preference (an OCPI ChargingPreferences profile_type
    # turned into a planner priority by ocpi_api: FAST +1, CHEAP and GREEN -1).
    ev_min_amps = models.DecimalField(max_digits=6, decimal_places=1, null=True, blank=True)
    ev_max_amps = models.DecimalField(max_digits=6, decimal_places=1, null=True, blank=True)
    ev_departure_time = models.DateTimeField(null=True, blank=True)
    # The phases the car asked for (2.0.1 NotifyEVChargingNeeds requestedEnergyTransfer: AC_single_phase 1,
    # AC_two_phase 2, AC_three_phase 3), and the latest per-phase Current.Import the charger measured, on its own
    # phases 1-3 (before its phase rotation onto the grid's): a car drawing on one phase only charges single-phase.
    ev_phases = models.PositiveSmallIntegerField(null=True, blank=True)
    current_l1_last = models.DecimalField(max_digits=8, decimal_places=2, null=True, blank=True, help_text="A")
    current_l2_last = models.DecimalField(max_digits=8, decimal_places=2, null=True, blank=True, help_text="A")
    current_l3_last = models.DecimalField(max_digits=8, decimal_places=2, null=True, blank=True, help_text="A")
    preference_priority = models.SmallIntegerField(default=0)
    stop_reason = models.CharField(max_length=30, blank=True)
    ended_by = models.CharField(max_length=16, choices=EndedBy.choices, blank=True, db_index=True)
    last_seq_no = models.IntegerField(null=True, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)
    # When housekeeping last asked the charger about this silent transaction (1.6: TriggerMessage MeterValues); still
    # silent since then at its next look, it is ended.
    silence_probed_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-started_at"]
        constraints = [
            models.UniqueConstraint(
                fields=["station", "transaction_id"], condition=~Q(transaction_id=""), name="tx_unique_id_per_station"
            ),
            models.CheckConstraint(
                condition=Q(ended_at__isnull=True) | Q(ended_at__gte=models.F("started_at")),
                name="tx_ends_after_start",
            ),
            # 1.6: a retransmitted StartTransaction finds the row it created and gets the same transactionId.
            models.UniqueConstraint(
                fields=["station", "ocpp_evse_id", "started_at"],
                condition=Q(ocpp_version="1.6"),
                name="tx16_unique_start",
            ),
        ]
        indexes = [
            models.Index(fields=["station", "status"]),
            models.Index(fields=["started_at"]),  # dashboard periods and analytics
            models.Index(fields=["ended_at"]),  # sessions running at a time (analytics of today)
            models.Index(fields=["token_country_code", "token_party_id", "started_at"]),  # per partner
        ]

    def __str__(self) -> str:
        return f"{self.station_id}:{self.transaction_id}"

    @property
    def energy_wh(self):
        """Energy delivered so far (Wh), from the stop value or the latest register reading."""
        end = self.meter_stop if self.meter_stop is not None else self.meter_last
        if end is None:
            return 0
        return max(end - self.meter_start, 0)


class TransactionEvent(models.Model):
    """An OCPP 2.0.1 TransactionEvent, kept once per (transaction, seqNo): a retransmission changes nothing."""

    transaction = models.ForeignKey(Transaction, on_delete=models.CASCADE, related_name="events")
    seq_no = models.IntegerField()
    event_type = models.CharField(max_length=10)
    trigger_reason = models.CharField(max_length=40)
    timestamp = models.DateTimeField()
    offline = models.BooleanField(default=False)
    payload = models.JSONField()

    class Meta:
        ordering = ["transaction_id", "seq_no"]
        constraints = [models.UniqueConstraint(fields=["transaction", "seq_no"], name="tx_event_unique_seq_no")]


class ChargingStateChange(models.Model):
    """When the car took energy and when it did not, for telling charging from parking time.

    `charging_state` uses the OCPP 2.0.1 ChargingStateEnumType names; 1.6 connector statuses are mapped onto them
    (Charging, SuspendedEV, SuspendedEVSE; Preparing and Finishing become EVConnected)."""

    transaction = models.ForeignKey(Transaction, on_delete=models.CASCADE, related_name="charging_states")
    timestamp = models.DateTimeField()
    charging_state = models.CharField(max_length=20)

    class Meta:
        ordering = ["timestamp", "id"]
        constraints = [
            models.UniqueConstraint(fields=["transaction", "timestamp", "charging_state"], name="charging_state_once")
        ]


class MeterValue(models.Model):
    """One sampled value, with the context OCPP gives it. `value` is as sent; `unit` says what it is in."""

    station = models.ForeignKey(ChargingStation, on_delete=models.CASCADE, related_name="meter_values")
    transaction = models.ForeignKey(
        Transaction, null=True, blank=True, on_delete=models.CASCADE, related_name="meter_values"
    )
    ocpp_evse_id = models.PositiveIntegerField(null=True, blank=True)
    timestamp = models.DateTimeField()
    measurand = models.CharField(max_length=50, default="Energy.Active.Import.Register")
    value = models.DecimalField(max_digits=18, decimal_places=6, null=True, blank=True, help_text="Empty if signed")
    unit = models.CharField(max_length=20, blank=True)
    phase = models.CharField(max_length=10, blank=True)
    context = models.CharField(max_length=30, blank=True)
    location = models.CharField(max_length=10, blank=True)
    format = models.CharField(max_length=12, blank=True)
    signed_data = models.JSONField(null=True, blank=True, help_text="1.6 SignedData value / 2.0.1 signedMeterValue")

    class Meta:
        ordering = ["timestamp"]
        constraints = [
            # A retransmitted MeterValues (or a TransactionEvent repeating its samples) stores nothing twice. Samples
            # without a transaction or EVSE are repeats too: the empty ones count as -1 (no row has that id), a
            # unique index on expressions that SQLite enforces as well as PostgreSQL (NULLS NOT DISTINCT is
            # PostgreSQL 15+ only; SQLite silently created nothing).
            models.UniqueConstraint(
                "station",
                Coalesce("transaction", Value(-1), output_field=models.BigIntegerField()),
                Coalesce("ocpp_evse_id", Value(-1), output_field=models.IntegerField()),
                "timestamp",
                "measurand",
                "phase",
                "location",
                "context",
                name="meter_value_unique_sample",
            )
        ]
        indexes = [
            models.Index(fields=["transaction", "timestamp"]),
            models.Index(fields=["station", "timestamp"]),
        ]


class MessageLog(models.Model):
    """Every OCPP frame in and out, for support and audits; pruned after OCPP_MESSAGE_LOG_RETENTION_DAYS."""

    class Direction(models.TextChoices):
        IN = "IN", "charger → CSMS"
        OUT = "OUT", "CSMS → charger"

    station = models.ForeignKey(
        ChargingStation, null=True, blank=True, on_delete=models.CASCADE, related_name="message_log"
    )
    identity = models.CharField(max_length=48, db_index=True)
    direction = models.CharField(max_length=3, choices=Direction.choices)
    message_type = models.PositiveSmallIntegerField(null=True, blank=True, help_text="2 CALL, 3 CALLRESULT, 4 ERROR")
    unique_id = models.CharField(max_length=64, blank=True)
    action = models.CharField(max_length=64, blank=True)
    payload = models.TextField(help_text="The frame as sent on the wire")
    clock_skew = models.IntegerField(
        null=True, blank=True, help_text="A timestamp of this frame was not believed: seconds off (+ ahead)"
    )
    created_at = models.DateTimeField(db_index=True)

    class Meta:
        ordering = ["-created_at", "-id"]
        indexes = [models.Index(fields=["station", "-created_at"])]

    def __str__(self) -> str:
        return f"{self.identity} {self.direction} {self.action or self.message_type}"


class StationAuthFailure(models.Model):
    """A refused charger handshake (bad or missing credentials, unknown identity, or a lockout starting): the audit
    trail staff read in the admin. Rows stop while a lockout holds, so a brute-force run writes a bounded number."""

    class Reason(models.TextChoices):
        UNKNOWN_IDENTITY = "unknown_identity", "unknown identity"
        NO_SECRET = "no_secret", "station has no secret"
        MISSING_CREDENTIALS = "missing_credentials", "missing or foreign credentials"
        BAD_SECRET = "bad_secret", "bad secret"
        LOCKED_OUT = "locked_out", "lockout started"
        NO_TLS = "no_tls", "profile 2 or 3 station connected without TLS"
        NO_CERTIFICATE = "no_certificate", "profile 3 station without a verified client certificate"
        CERTIFICATE_MISMATCH = "certificate_mismatch", "client certificate of another identity"

    station = models.ForeignKey(
        ChargingStation, null=True, blank=True, on_delete=models.CASCADE, related_name="auth_failures"
    )
    identity = models.CharField(max_length=48, db_index=True)
    address = models.CharField(max_length=45, blank=True, help_text="The client address the handshake came from")
    reason = models.CharField(max_length=20, choices=Reason.choices)
    created_at = models.DateTimeField(db_index=True)

    class Meta:
        ordering = ["-created_at", "-id"]

    def __str__(self) -> str:
        return f"{self.identity} from {self.address or '?'}: {self.get_reason_display()}"


class ChargingProfile(models.Model):
    """A charging profile we sent to a station, who asked for it, and what the station answered.

    `source` says whose limit it is: a roaming partner (OCPI chargingprofiles), staff, or the load planner;
    `limit` and `charging_rate_unit` repeat the first period so pages and the planner read it without parsing.
    """

    class Source(models.TextChoices):
        PARTNER = "partner"
        STAFF = "staff"
        PLANNER = "planner"

    station = models.ForeignKey(ChargingStation, on_delete=models.CASCADE, related_name="charging_profiles")
    ocpp_evse_id = models.PositiveIntegerField(help_text="2.0.1 evseId / 1.6 connectorId (0: the whole station)")
    transaction = models.ForeignKey(
        Transaction, null=True, blank=True, on_delete=models.CASCADE, related_name="charging_profiles"
    )
    profile_id = models.IntegerField()
    purpose = models.CharField(max_length=32, default="TxProfile")
    stack_level = models.IntegerField(default=0)
    charging_rate_unit = models.CharField(max_length=1, default="A")
    limit = models.DecimalField(max_digits=10, decimal_places=1)
    profile = models.JSONField(help_text="The profile as sent (the request's payload)")
    source = models.CharField(max_length=8, choices=Source.choices)
    status = models.CharField(max_length=40, blank=True, help_text="The charger's answer, or why there was none")
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["-created_at", "-id"]
        indexes = [
            models.Index(fields=["station", "ocpp_evse_id", "-created_at"]),
            models.Index(fields=["transaction", "source", "-created_at"]),
        ]


class CompositeSchedule(models.Model):
    """A GetCompositeSchedule staff asked for and what the station answered: the limit it will apply on an EVSE (0:
    its grid connection) for `duration` seconds, combining every profile it holds. `status` is the answer's
    (Accepted / Rejected) or why there was none (`timeout`, `offline`, `call_error: NotImplemented`...); an
    accepted answer's schedule is kept as sent (1.6 chargingSchedule, 2.0.1 schedule) and, read once, as
    `schedule_start`, `charging_rate_unit` and `periods` ([{"start_period": s, "limit": x}], seconds from the
    start) for the page's chart."""

    station = models.ForeignKey(ChargingStation, on_delete=models.CASCADE, related_name="composite_schedules")
    ocpp_evse_id = models.PositiveIntegerField(help_text="2.0.1 evseId / 1.6 connectorId (0: the grid connection)")
    duration = models.PositiveIntegerField(help_text="Seconds asked for")
    requested_unit = models.CharField(max_length=1, blank=True, help_text="chargingRateUnit asked for (empty: any)")
    requested_by = models.CharField(max_length=150)
    status = models.CharField(max_length=60, help_text="The charger's answer, or why there was none")
    answer = models.JSONField(null=True, blank=True, help_text="The CALLRESULT payload as received")
    schedule_start = models.DateTimeField(null=True, blank=True)
    charging_rate_unit = models.CharField(max_length=1, blank=True, help_text="A or W, as the charger answered")
    periods = models.JSONField(default=list, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["-created_at", "-id"]
        indexes = [models.Index(fields=["station", "ocpp_evse_id", "-created_at"])]

    def __str__(self) -> str:
        return f"{self.station_id} #{self.ocpp_evse_id} {self.status}"


class LoadSample(models.Model):
    """A load group's state at one moment, kept for its chart: the limit then (time of day applied), what the
    chargers held after the planner ran (`planned_amps`) and what the cars drew (`drawn_amps`, from their last
    measured power), all in A per phase; `connectors` has the same per running session:
    [{"station": identity, "evse": ocpp_evse_id, "transaction": pk, "planned": A, "drawn": A or null}].
    Written each time the planner runs for the group (session start and end, and every
    LOAD_MANAGEMENT_INTERVAL_SECONDS while sessions run); pruned after LOAD_HISTORY_RETENTION_DAYS."""

    load_group = models.ForeignKey(LoadGroup, on_delete=models.CASCADE, related_name="samples")
    taken_at = models.DateTimeField()
    limit_amps = models.DecimalField(max_digits=7, decimal_places=1)
    planned_amps = models.DecimalField(max_digits=8, decimal_places=1)
    drawn_amps = models.DecimalField(max_digits=8, decimal_places=1)
    connectors = models.JSONField(default=list, blank=True)

    class Meta:
        ordering = ["taken_at", "id"]
        indexes = [models.Index(fields=["load_group", "taken_at"]), models.Index(fields=["taken_at"])]

    def __str__(self) -> str:
        return f"{self.load_group_id} {self.taken_at:%Y-%m-%d %H:%M:%S}"


class Reservation(models.Model):
    """A reservation of an EVSE (or of any EVSE of the station: `evse` empty) for one token until `expiry_date`, from
    a partner's RESERVE_NOW or from staff. Its primary key is the OCPP reservationId the charger gets (ours, never a
    partner's: partners cannot replace or cancel each other's reservations; an int well inside int32).

    The lifecycle, as the charger tells it: PENDING until the ReserveNow answer, then ACCEPTED or REJECTED (with
    the charger's `answer_status`: Faulted, Occupied, Rejected, Unavailable, or the command error); an accepted one
    ends EXPIRED (expiry_date passed: our housekeeping, or 2.0.1 ReservationStatusUpdate Expired), CANCELLED
    (CancelReservation accepted, or 2.0.1 ReservationStatusUpdate Removed) or USED (a transaction with its
    reservationId started: `transaction`). `ended_at` is when it ended. The token fields are a Transaction's."""

    class Status(models.TextChoices):
        PENDING = "PENDING"
        ACCEPTED = "ACCEPTED"
        REJECTED = "REJECTED"
        EXPIRED = "EXPIRED"
        CANCELLED = "CANCELLED"
        USED = "USED"

    class Source(models.TextChoices):
        PARTNER = "partner", "a partner's RESERVE_NOW"
        STAFF = "staff", "staff (dashboard, command line)"

    station = models.ForeignKey(ChargingStation, on_delete=models.PROTECT, related_name="reservations")
    evse = models.ForeignKey(EVSE, null=True, blank=True, on_delete=models.SET_NULL, related_name="reservations")
    source = models.CharField(max_length=8, choices=Source.choices)
    status = models.CharField(max_length=10, choices=Status.choices, default=Status.PENDING, db_index=True)
    answer_status = models.CharField(max_length=40, blank=True, help_text="The charger's ReserveNow answer")
    expiry_date = models.DateTimeField()
    id_tag = models.CharField(max_length=36, help_text="1.6 idTag / 2.0.1 idToken.idToken the charger got")
    id_token_type = models.CharField(max_length=20, blank=True)
    token_uid = models.CharField(max_length=36, blank=True, help_text="OCPI Token.uid when the idTag is not it")
    token_type = models.CharField(max_length=12, blank=True, help_text="OCPI TokenType")
    contract_id = models.CharField(max_length=36, blank=True)
    token_country_code = models.CharField(max_length=2, blank=True, help_text="Issuer of the token (EMSP)")
    token_party_id = models.CharField(max_length=3, blank=True)
    authorization_reference = models.CharField(max_length=36, blank=True)
    transaction = models.OneToOneField(
        Transaction, null=True, blank=True, on_delete=models.PROTECT, related_name="reservation"
    )
    created_at = models.DateTimeField(help_text="When it was made (the reservation starts)")
    ended_at = models.DateTimeField(null=True, blank=True)
    updated_at = models.DateTimeField(auto_now=True)

    ENDED = (Status.EXPIRED, Status.CANCELLED, Status.USED)

    class Meta:
        ordering = ["-created_at", "-id"]
        constraints = [
            models.CheckConstraint(
                condition=Q(ended_at__isnull=True) | Q(ended_at__gte=models.F("created_at")),
                name="reservation_ends_after_it_starts",
            ),
            models.CheckConstraint(
                condition=~Q(status="USED") | Q(transaction__isnull=False), name="reservation_used_by_transaction"
            ),
        ]
        indexes = [models.Index(fields=["status", "expiry_date"]), models.Index(fields=["station", "-created_at"])]

    def __str__(self) -> str:
        return f"reservation {self.pk} at {self.station_id} ({self.status})"


class StationCertificate(models.Model):
    """A certificate we signed for a station (SignCertificate -> CertificateSigned), and whether the station
    installed it. The station's current certificate is its newest installed one; a new CSR from the station signs a
    new row (re-signing), older rows stay as history."""

    class Status(models.TextChoices):
        SENT = "sent", "sent, no answer yet"
        INSTALLED = "installed", "installed (CertificateSigned Accepted)"
        REJECTED = "rejected", "rejected by the station"
        FAILED = "failed", "not delivered (offline, no answer, CALLERROR)"

    station = models.ForeignKey(ChargingStation, on_delete=models.CASCADE, related_name="certificates")
    serial_number = models.CharField(max_length=40, unique=True, help_text="Hexadecimal, as openssl prints it")
    subject = models.CharField(max_length=255)
    certificate_type = models.CharField(max_length=30, default="ChargingStationCertificate")
    not_before = models.DateTimeField()
    not_after = models.DateTimeField(db_index=True)
    certificate_pem = models.TextField(help_text="The signed certificate (public: the key never leaves the station)")
    status = models.CharField(max_length=10, choices=Status.choices, default=Status.SENT)
    answer = models.CharField(max_length=255, blank=True, help_text="The station's answer or why none came")
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["-created_at", "-id"]
        constraints = [
            models.CheckConstraint(
                condition=Q(not_after__gt=models.F("not_before")), name="certificate_ends_after_start"
            )
        ]

    def __str__(self) -> str:
        return f"{self.subject} ({self.serial_number})"


class StationVariable(models.Model):
    """One configuration value of a station, as the charger reported it: a 1.6 configuration key (GetConfiguration;
    `component` empty, `variable` the key) or one attribute of a 2.0.1 device-model variable (NotifyReport after
    GetBaseReport). The natural key is unique, so a replayed report changes nothing. Secret values (the Basic-auth
    password) are stored as REDACTED (ocpp_gateway.redaction). `last_set_*` keep staff's last change and the
    charger's answer to it (ChangeConfiguration / SetVariables: Accepted, RebootRequired, Rejected, ...)."""

    class Mutability(models.TextChoices):
        READ_ONLY = "ReadOnly"
        WRITE_ONLY = "WriteOnly"
        READ_WRITE = "ReadWrite"

    station = models.ForeignKey(ChargingStation, on_delete=models.CASCADE, related_name="variables")
    component = models.CharField(max_length=50, blank=True, help_text="2.0.1 component name; empty for 1.6 keys")
    component_instance = models.CharField(max_length=50, blank=True)
    evse_id = models.PositiveIntegerField(default=0, help_text="2.0.1 component's evse.id (0: not EVSE-specific)")
    connector_id = models.PositiveIntegerField(default=0, help_text="2.0.1 component's evse.connectorId (0: none)")
    variable = models.CharField(max_length=50, help_text="2.0.1 variable name / 1.6 configuration key")
    variable_instance = models.CharField(max_length=50, blank=True)
    attribute_type = models.CharField(max_length=8, default="Actual", help_text="Actual, Target, MinSet, MaxSet")
    value = models.CharField(max_length=2500, blank=True)
    mutability = models.CharField(max_length=9, choices=Mutability.choices, default=Mutability.READ_WRITE)
    unit = models.CharField(max_length=16, blank=True)
    data_type = models.CharField(max_length=20, blank=True)
    max_limit = models.DecimalField(
        max_digits=20, decimal_places=6, null=True, blank=True, help_text="2.0.1 variableCharacteristics.maxLimit"
    )
    last_set_value = models.CharField(max_length=2500, blank=True)
    last_set_status = models.CharField(max_length=40, blank=True, help_text="The charger's answer, or why none")
    last_set_at = models.DateTimeField(null=True, blank=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["component", "component_instance", "evse_id", "connector_id", "variable", "variable_instance"]
        constraints = [
            models.UniqueConstraint(
                fields=[
                    "station",
                    "component",
                    "component_instance",
                    "evse_id",
                    "connector_id",
                    "variable",
                    "variable_instance",
                    "attribute_type",
                ],
                name="station_variable_natural_key",
            )
        ]

    def __str__(self) -> str:
        return f"{self.station_id} {self.name}"

    @property
    def name(self) -> str:
        """As staff read it: `HeartbeatInterval` (1.6), `EVSE[1].AvailabilityState`, `OCPPCommCtrlr.Interval[x]`."""
        if not self.component:
            return self.variable
        component = self.component + (f"({self.component_instance})" if self.component_instance else "")
        if self.evse_id:
            component += f"[{self.evse_id}" + (f".{self.connector_id}" if self.connector_id else "") + "]"
        variable = self.variable + (f"({self.variable_instance})" if self.variable_instance else "")
        suffix = "" if self.attribute_type == "Actual" else f" {self.attribute_type}"
        return f"{component}.{variable}{suffix}"


class ConfigurationBaseline(models.Model):
    """The value operators expect for one configuration key on every station of a charger model (vendor and model as
    the BootNotification names them). The station page flags stored values that differ."""

    vendor = models.CharField(max_length=50)
    model = models.CharField(max_length=50)
    name = models.CharField(
        max_length=200,
        help_text="As the station page shows it: a 1.6 key (HeartbeatInterval) or Component.Variable "
        "(OCPPCommCtrlr.HeartbeatInterval, EVSE[1].Power MaxSet)",
    )
    value = models.CharField(max_length=2500, blank=True)

    class Meta:
        ordering = ["vendor", "model", "name"]
        constraints = [models.UniqueConstraint(fields=["vendor", "model", "name"], name="baseline_per_model_key")]

    def __str__(self) -> str:
        return f"{self.vendor} {self.model}: {self.name} = {self.value}"


class LocalAuthList(models.Model):
    """A station's local authorization list as we last had it accepted (1.6 Local Auth List Management, 2.0.1 block
    D): its `version` (1.6 listVersion, 2.0.1 versionNumber; 0: none yet), the entries it holds (LocalAuthListEntry)
    and the state of keeping it in sync (ocpp_gateway.services.local_list).

    `dirty` says the tokens changed since the last sync (a sync under way does another pass); `sync_lease` is held
    while one process talks to the station, so two never send versions concurrently. `station_version` is what
    GetLocalListVersion last said (-1: not supported)."""

    class State(models.TextChoices):
        NEW = "new", "never sent"
        IN_SYNC = "in_sync", "in sync"
        SYNCING = "syncing", "being sent"
        PENDING = "pending", "changes waiting for the station"
        FAILED = "failed", "the station refused it"
        NO_ANSWER = "no_answer", "the station did not answer"
        UNSUPPORTED = "unsupported", "not supported by the station"
        DISABLED = "disabled", "disabled in the station's configuration"

    station = models.OneToOneField(ChargingStation, on_delete=models.CASCADE, related_name="local_auth_list")
    version = models.IntegerField(default=0, help_text="The list version the station last accepted from us")
    station_version = models.IntegerField(null=True, blank=True, help_text="What GetLocalListVersion last answered")
    state = models.CharField(max_length=12, choices=State.choices, default=State.NEW)
    dirty = models.BooleanField(default=True, help_text="Tokens changed since the last sync")
    full_wanted = models.BooleanField(default=True, help_text="The next sync sends the whole list")
    entries_count = models.PositiveIntegerField(default=0)
    wanted_count = models.PositiveIntegerField(default=0, help_text="Tokens the station should hold (before limits)")
    max_entries = models.PositiveIntegerField(null=True, blank=True, help_text="The station's limit, when known")
    last_status = models.CharField(max_length=60, blank=True, help_text="The station's last answer, or why none")
    last_sync_at = models.DateTimeField(null=True, blank=True)
    last_checked_at = models.DateTimeField(null=True, blank=True, help_text="Last GetLocalListVersion")
    sync_lease = models.DateTimeField(null=True, blank=True, editable=False)

    class Meta:
        verbose_name = "local authorization list"

    def __str__(self) -> str:
        return f"{self.station_id} v{self.version} ({self.state})"


class LocalAuthListEntry(models.Model):
    """One idTag / idToken on a station's local list as the station holds it (after an accepted SendLocalList)."""

    station = models.ForeignKey(ChargingStation, on_delete=models.CASCADE, related_name="local_auth_list_entries")
    id_tag = models.CharField(max_length=36, help_text="1.6 idTag / 2.0.1 idToken.idToken")
    id_token_type = models.CharField(max_length=20, blank=True, help_text="2.0.1 IdTokenEnumType; 1.6: empty")
    status = models.CharField(max_length=20, help_text="AuthorizationStatus given with it")
    expiry_date = models.DateTimeField(null=True, blank=True)
    group_id = models.CharField(max_length=36, blank=True)

    class Meta:
        ordering = ["station_id", "id_tag"]
        constraints = [
            models.UniqueConstraint(fields=["station", "id_tag", "id_token_type"], name="local_list_entry_unique")
        ]

    def __str__(self) -> str:
        return f"{self.station_id} {self.id_tag} {self.status}"


class DiagnosticsUpload(models.Model):
    """A station asked to upload its diagnostics (1.6 GetDiagnostics) or a log (2.0.1 GetLog, and 1.6 with the
    security extension) to our upload endpoint, and what became of it (ocpp_gateway.services.diagnostics).

    The station gets a URL with a token of its own (only its hash is kept), valid until `expires_at` and for at
    most `max_bytes`. `status` is the lifecycle as we see it: REQUESTED until the charger answers, then ACCEPTED or
    REJECTED / NO_ANSWER; UPLOADING and UPLOAD_FAILED from its status notifications; RECEIVED once the file is here
    (`file_path`, under settings.OCPP_UPLOADS_DIR); EXPIRED when the token ran out without a file. `charger_status`
    is the last status notification as sent (1.6 DiagnosticsStatus, UploadLogStatusEnumType)."""

    class Kind(models.TextChoices):
        DIAGNOSTICS = "diagnostics", "diagnostics (1.6 GetDiagnostics)"
        DIAGNOSTICS_LOG = "DiagnosticsLog", "diagnostics log (GetLog)"
        SECURITY_LOG = "SecurityLog", "security log (GetLog)"

    class Status(models.TextChoices):
        REQUESTED = "requested"
        ACCEPTED = "accepted", "accepted, upload awaited"
        REJECTED = "rejected", "rejected by the station"
        NO_ANSWER = "no_answer", "the station did not answer"
        UPLOADING = "uploading"
        UPLOAD_FAILED = "upload_failed", "the upload failed"
        RECEIVED = "received", "file received"
        EXPIRED = "expired", "no file before the link expired"

    station = models.ForeignKey(ChargingStation, on_delete=models.CASCADE, related_name="diagnostics_uploads")
    kind = models.CharField(max_length=16, choices=Kind.choices)
    request_id = models.IntegerField(help_text="2.0.1 GetLog requestId (1.6 GetDiagnostics has none: ours)")
    token_hash = models.CharField(max_length=64, unique=True, editable=False)
    expires_at = models.DateTimeField()
    max_bytes = models.PositiveBigIntegerField()
    status = models.CharField(max_length=14, choices=Status.choices, default=Status.REQUESTED, db_index=True)
    answer = models.CharField(max_length=100, blank=True, help_text="The charger's answer, or why none came")
    charger_status = models.CharField(max_length=30, blank=True, help_text="Last status notification")
    file_name = models.CharField(max_length=255, blank=True, help_text="The name the charger gave the file")
    file_path = models.CharField(max_length=500, blank=True, help_text="Relative to OCPP_UPLOADS_DIR")
    size = models.PositiveBigIntegerField(null=True, blank=True)
    received_at = models.DateTimeField(null=True, blank=True)
    requested_by = models.CharField(max_length=150, blank=True)
    created_at = models.DateTimeField(auto_now_add=True, db_index=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["-created_at", "-id"]
        indexes = [models.Index(fields=["station", "-created_at"])]
        constraints = [
            models.UniqueConstraint(fields=["station", "request_id"], name="diagnostics_request_id_per_station")
        ]

    def __str__(self) -> str:
        return f"{self.station_id} {self.kind} {self.request_id} ({self.status})"


class FirmwareStorage(FileSystemStorage):
    """Firmware images live under OCPP_UPLOADS_DIR/firmware, the setting read whenever a file is stored or opened."""

    @property
    def base_location(self) -> str:
        return str(settings.OCPP_UPLOADS_DIR / "firmware")

    @property
    def location(self) -> str:
        return os.path.abspath(self.base_location)


def firmware_storage() -> FileSystemStorage:
    return FirmwareStorage()


class FirmwareImage(models.Model):
    """A firmware image staff uploaded (served to stations through a signed, expiring link) or one they reference
    where it already is (`location`). Signed firmware (2.0.1 L01, 1.6 security extension SignedUpdateFirmware) carries
    the signing certificate and the signature."""

    name = models.CharField(max_length=100)
    version = models.CharField(max_length=50, help_text="The firmware version stations report once installed")
    file = models.FileField(storage=firmware_storage, upload_to="images/", blank=True)
    location = models.URLField(max_length=512, blank=True, help_text="Instead of a file: where stations fetch it")
    signing_certificate = models.TextField(blank=True, help_text="PEM, for signed firmware")
    signature = models.TextField(blank=True, help_text="Base64, for signed firmware")
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["-created_at", "-id"]
        constraints = [
            models.CheckConstraint(condition=~Q(file="") | ~Q(location=""), name="firmware_file_or_location")
        ]

    def __str__(self) -> str:
        return f"{self.name} {self.version}"


class FirmwareCampaign(models.Model):
    """An update of every station matching the filters to one image, `rate` stations per minute (those offline are
    tried again as they come back, failed ones up to `max_attempts`), at most `max_concurrent` updating at once; it
    pauses itself when `pause_failures` stations failed or `pause_failure_percent` of those that finished did, so a
    bad image cannot reach the whole fleet."""

    class Status(models.TextChoices):
        RUNNING = "running"
        PAUSED = "paused"
        DONE = "done"

    image = models.ForeignKey(FirmwareImage, on_delete=models.PROTECT, related_name="campaigns")
    name = models.CharField(max_length=100)
    vendor = models.CharField(max_length=50, blank=True)
    model = models.CharField(max_length=50, blank=True)
    firmware_version = models.CharField(max_length=50, blank=True, help_text="Only stations reporting this version")
    location = models.ForeignKey(Location, null=True, blank=True, on_delete=models.PROTECT, related_name="+")
    rate = models.PositiveIntegerField(default=10, help_text="Stations sent the update per minute")
    max_attempts = models.PositiveSmallIntegerField(default=3)
    max_concurrent = models.PositiveIntegerField(
        null=True, blank=True, help_text="Stations updating at once at most (sent, not yet installed or failed)"
    )
    pause_failures = models.PositiveIntegerField(null=True, blank=True, help_text="Pause once this many failed")
    pause_failure_percent = models.PositiveSmallIntegerField(
        null=True, blank=True, help_text="Pause once this share (%) of the finished updates failed"
    )
    status = models.CharField(max_length=8, choices=Status.choices, default=Status.RUNNING, db_index=True)
    status_reason = models.CharField(max_length=200, blank=True, help_text="Why it is paused: who, or the failures")
    created_by = models.CharField(max_length=150, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["-created_at", "-id"]
        constraints = [
            models.CheckConstraint(
                condition=Q(pause_failure_percent__isnull=True) | Q(pause_failure_percent__range=(1, 100)),
                name="firmware_campaign_pause_percent_range",
            )
        ]

    def __str__(self) -> str:
        return self.name


class FirmwareUpdate(models.Model):
    """One station told (or to be told) to install one image, alone or in a campaign, and how far it got: our
    `status` (PENDING until sent, SENT once the station accepted, then what it reports: DOWNLOADING ... INSTALLED or
    FAILED; REJECTED / NO_ANSWER when the UpdateFirmware got no yes) and its last FirmwareStatusNotification."""

    class Status(models.TextChoices):
        PENDING = "pending"
        SENT = "sent", "accepted, waiting for the station"
        DOWNLOADING = "downloading"
        INSTALLING = "installing"
        INSTALLED = "installed"
        FAILED = "failed"
        REJECTED = "rejected", "rejected by the station"
        NO_ANSWER = "no_answer", "the station did not answer"

    station = models.ForeignKey(ChargingStation, on_delete=models.CASCADE, related_name="firmware_updates")
    image = models.ForeignKey(FirmwareImage, on_delete=models.PROTECT, related_name="updates")
    campaign = models.ForeignKey(
        FirmwareCampaign, null=True, blank=True, on_delete=models.CASCADE, related_name="updates"
    )
    request_id = models.IntegerField(null=True, blank=True, help_text="2.0.1 UpdateFirmware requestId")
    status = models.CharField(max_length=12, choices=Status.choices, default=Status.PENDING, db_index=True)
    charger_status = models.CharField(max_length=30, blank=True, help_text="Last FirmwareStatusNotification")
    answer = models.CharField(max_length=100, blank=True)
    attempts = models.PositiveSmallIntegerField(default=0)
    sent_at = models.DateTimeField(null=True, blank=True)
    updated_at = models.DateTimeField(auto_now=True)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["-created_at", "-id"]
        indexes = [models.Index(fields=["station", "-created_at"]), models.Index(fields=["campaign", "status"])]
        constraints = [
            models.UniqueConstraint(
                fields=["campaign", "station"], condition=Q(campaign__isnull=False), name="firmware_once_per_campaign"
            )
        ]

    def __str__(self) -> str:
        return f"{self.station_id} -> {self.image_id} ({self.status})"


class GatewayProcess(models.Model):
    """The lease of one gateway (daphne) process: renewed every OCPP_GATEWAY_LEASE_RENEW_SECONDS while the process
    lives; once `renewed_at` is older than OCPP_GATEWAY_LEASE_SECONDS the process counts as dead and the stations it
    held go offline (services/liveness.py). `renewed_since` is the start of the current unbroken run of renewals: a
    lease renewed after a gap (a database outage, a paused process) starts a new run."""

    id = models.CharField(primary_key=True, max_length=32)
    host = models.CharField(max_length=255)
    pid = models.PositiveIntegerField()
    started_at = models.DateTimeField()
    renewed_since = models.DateTimeField()
    renewed_at = models.DateTimeField(db_index=True)

    def __str__(self) -> str:
        return f"{self.host}:{self.pid} ({self.id})"
