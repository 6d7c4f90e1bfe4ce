"""OCPI 2.2.1 roaming partners and the objects they push to us (credentials.asciidoc, mod_tokens,
mod_hub_client_info)."""

from django.db import models
from django.db.models import Q
from django.db.models.functions import Upper

from billing.encoding import DecimalJSONDecoder, DecimalJSONEncoder
from cpo.models import TokenType  # one OCPI TokenType for the whole platform
from ocpi_api.egress import validate_networks


class Role(models.TextChoices):
    """OCPI Role (types.asciidoc)."""

    CPO = "CPO"
    EMSP = "EMSP"
    HUB = "HUB"
    NAP = "NAP"
    NSP = "NSP"
    OTHER = "OTHER"
    SCSP = "SCSP"


class PartnerStatus(models.TextChoices):
    """Where the credentials handshake with a partner stands.

    INVITED: the partner holds a token that is only good for `versions` and `credentials` (our token A, or during
    `ocpi_register` the token B we gave it while we POST our credentials). REGISTERED: credentials exchanged, all
    modules open. UNREGISTERED: credentials deleted by either side; its token no longer works."""

    INVITED = "INVITED"
    REGISTERED = "REGISTERED"
    UNREGISTERED = "UNREGISTERED"


class Partner(models.Model):
    """One OCPI platform connected to us (usually an EMSP; possibly a hub).

    `country_code`/`party_id`/`role`/`business_details` describe its main role; `roles` keeps every
    CredentialsRole it declared (a platform may host several parties). The token it uses to call us is kept only
    as a SHA-256 hash (we never send it back) plus a short prefix for support; the token we send to it is kept
    readable because we must present it."""

    name = models.CharField(max_length=100, blank=True, help_text="Label for staff")
    country_code = models.CharField(max_length=2, blank=True)
    party_id = models.CharField(max_length=3, blank=True)
    role = models.CharField(max_length=5, choices=Role.choices, default=Role.EMSP)
    business_details = models.JSONField(default=dict, blank=True)
    roles = models.JSONField(default=list, blank=True, help_text="CredentialsRole objects the partner declared")
    versions_url = models.URLField(max_length=255, blank=True)
    version = models.CharField(max_length=10, blank=True, help_text="Agreed OCPI version")
    endpoints = models.JSONField(default=list, blank=True, help_text="Endpoint objects of the agreed version")
    outgoing_token = models.CharField(
        max_length=64, blank=True, help_text="Credentials token we send to the partner (its token B or C)"
    )
    encode_outgoing_token = models.BooleanField(
        default=True,
        help_text="Base64-encode our token in the Authorization header (OCPI 2.2.1); off for partners "
        "that expect the plain token",
    )
    incoming_token_hash = models.CharField(
        max_length=64,
        unique=True,
        null=True,
        blank=True,
        editable=False,
        help_text="SHA-256 (hex) of the credentials token the partner uses to call us",
    )
    incoming_token_prefix = models.CharField(
        max_length=8, blank=True, editable=False, help_text="First characters of that token, for support"
    )
    status = models.CharField(max_length=12, choices=PartnerStatus.choices, default=PartnerStatus.INVITED)
    allowed_networks = models.CharField(
        max_length=255,
        blank=True,
        validators=[validate_networks],
        help_text="Non-public networks this partner's URLs may point to, comma-separated (e.g. 10.1.0.0/16 for a lab "
        "EMSP); empty: public addresses only, plus OCPI_PARTNER_ALLOWED_NETWORKS",
    )
    suspended_at = models.DateTimeField(
        null=True,
        blank=True,
        help_text="Set while staff have suspended the partner: its token is refused like an unknown one and pushes "
        "to it wait (pending) until it is resumed",
    )
    last_error = models.TextField(
        blank=True,
        help_text="Why our last call to the partner's versions URL or endpoints during a credentials exchange failed "
        "(staff only: the partner gets a generic message)",
    )
    last_error_at = models.DateTimeField(null=True, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)
    registered_at = models.DateTimeField(null=True, blank=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["country_code", "party_id", "id"]
        constraints = [
            models.UniqueConstraint(
                fields=["country_code", "party_id"],
                condition=Q(status="REGISTERED"),
                name="partner_unique_registered_party",
            )
        ]

    def __str__(self) -> str:
        party = f"{self.country_code}/{self.party_id}" if self.country_code else "?"
        return f"{party} {self.name}".strip()

    @property
    def is_registered(self) -> bool:
        return self.status == PartnerStatus.REGISTERED

    @property
    def is_suspended(self) -> bool:
        return self.suspended_at is not None

    def endpoint_url(self, *, identifier: str, role: str | None = None) -> str | None:
        """URL of the partner's endpoint for a module (and interface role, when given)."""
        for endpoint in self.endpoints or []:
            if endpoint.get("identifier") == identifier and (role is None or endpoint.get("role") == role):
                return endpoint.get("url")
        return None

    def party_ids(self) -> set[tuple[str, str]]:
        """Every (country_code, party_id) this partner holds (PartnerParty), upper-cased: the parties whose tokens,
        sessions and CDRs are its own. Declared roles alone grant nothing."""
        if self.pk is None:
            return set()
        return set(self.parties.values_list("country_code", "party_id"))


class PartnerParty(models.Model):
    """A (country_code, party_id) and the one partner that holds it, whichever role it was declared in. Claimed when
    a partner registers or updates its credentials (ocpi_api.services.partner_parties_claim); another partner's
    claim is refused, so ownership of the party's tokens, sessions and CDRs never moves between partners."""

    partner = models.ForeignKey(Partner, on_delete=models.CASCADE, related_name="parties")
    country_code = models.CharField(max_length=2)
    party_id = models.CharField(max_length=3)

    class Meta:
        ordering = ["country_code", "party_id"]
        constraints = [models.UniqueConstraint(fields=["country_code", "party_id"], name="partner_party_unique")]

    def __str__(self) -> str:
        return f"{self.country_code}/{self.party_id}"


class WhitelistType(models.TextChoices):
    ALWAYS = "ALWAYS"
    ALLOWED = "ALLOWED"
    ALLOWED_OFFLINE = "ALLOWED_OFFLINE"
    NEVER = "NEVER"


class ProfileType(models.TextChoices):
    """mod_sessions ProfileType (Token.default_profile_type)."""

    CHEAP = "CHEAP"
    FAST = "FAST"
    GREEN = "GREEN"
    REGULAR = "REGULAR"


class PartnerToken(models.Model):
    """An OCPI Token an EMSP pushed to us (mod_tokens, Receiver interface): one per (country_code, party_id, uid,
    type). `last_updated` is the EMSP's own timestamp from the object, not ours."""

    partner = models.ForeignKey(Partner, on_delete=models.CASCADE, related_name="tokens")
    country_code = models.CharField(max_length=2)
    party_id = models.CharField(max_length=3)
    uid = models.CharField(max_length=36, db_index=True)
    type = models.CharField(max_length=12, choices=TokenType.choices)
    contract_id = models.CharField(max_length=36)
    visual_number = models.CharField(max_length=64, blank=True)
    issuer = models.CharField(max_length=64)
    group_id = models.CharField(max_length=36, blank=True)
    valid = models.BooleanField()
    whitelist = models.CharField(max_length=16, choices=WhitelistType.choices)
    language = models.CharField(max_length=2, blank=True)
    default_profile_type = models.CharField(max_length=8, choices=ProfileType.choices, blank=True)
    energy_contract = models.JSONField(null=True, blank=True)
    last_updated = models.DateTimeField(db_index=True)
    received_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["country_code", "party_id", "uid"]
        constraints = [
            models.UniqueConstraint(fields=["country_code", "party_id", "uid", "type"], name="partner_token_unique")
        ]
        # Every Authorize and StartTransaction looks a token up by its uid as a CiString (`uid__iexact`, UPPER on
        # PostgreSQL), which the plain index on uid cannot serve: without this, a scan of every pushed token.
        indexes = [models.Index(Upper("uid"), name="partner_token_uid_upper")]

    def __str__(self) -> str:
        return f"{self.country_code}/{self.party_id} {self.uid} ({self.type})"


class ConnectionStatus(models.TextChoices):
    CONNECTED = "CONNECTED"
    OFFLINE = "OFFLINE"
    PLANNED = "PLANNED"
    SUSPENDED = "SUSPENDED"


class ClientInfo(models.Model):
    """A party connected to a hub, as the hub (a partner) pushed it to us (mod_hub_client_info, Receiver)."""

    partner = models.ForeignKey(Partner, on_delete=models.CASCADE, related_name="client_infos")
    country_code = models.CharField(max_length=2)
    party_id = models.CharField(max_length=3)
    role = models.CharField(max_length=5, choices=Role.choices)
    status = models.CharField(max_length=10, choices=ConnectionStatus.choices)
    last_updated = models.DateTimeField(db_index=True)

    class Meta:
        ordering = ["country_code", "party_id"]
        verbose_name = "hub client info"
        constraints = [
            models.UniqueConstraint(fields=["partner", "country_code", "party_id"], name="client_info_unique")
        ]

    def __str__(self) -> str:
        return f"{self.country_code}/{self.party_id} {self.role} {self.status}"


# --- Outbox: every push to a partner (transport_and_format "Client Owned Object Push", mod_sessions, mod_cdrs,
# mod_locations and mod_tariffs Receiver interfaces) -------------------------------------------------------------


class OutboxStatus(models.TextChoices):
    """PENDING: to deliver (now or at `next_attempt_at`). SENT: the partner accepted it. SUPERSEDED: a newer push of
    the same object replaced it before it was delivered (`superseded_by`). FAILED: given up (too old, or the partner
    is gone)."""

    PENDING = "PENDING"
    SENT = "SENT"
    SUPERSEDED = "SUPERSEDED"
    FAILED = "FAILED"


class OutboxMessage(models.Model):
    """One OCPI call we owe a partner, written in the same database transaction as the change it announces and
    delivered by a Celery worker (`ocpi_api.delivery.outbox_deliver`).

    `object_key` names the object a message is about (a session, a CDR, a location with its EVSEs and connectors, a
    tariff): newer pushes of it may replace undelivered ones. `order_key` names the messages that go out one at a
    time, in `id` order: an object's own, and a CDR's with its session's (the session's key). `path` is what follows
    the partner's Receiver endpoint URL of `module`.
    `meta` keeps what the push was computed from (e.g. the Session as last announced), so the next push can be a
    PATCH of the differences. `due_at` is when it was first meant to go (throttling); `next_attempt_at` moves with
    each failed attempt (backoff)."""

    partner = models.ForeignKey(Partner, on_delete=models.CASCADE, related_name="outbox")
    module = models.CharField(max_length=20, help_text="OCPI ModuleID of the partner's Receiver endpoint")
    method = models.CharField(max_length=6)
    path = models.CharField(max_length=255, blank=True, help_text="Appended to the partner's endpoint URL")
    object_key = models.CharField(max_length=120, help_text="The object the message is about")
    order_key = models.CharField(max_length=120, help_text="Messages of one order key go out one at a time, in order")
    to_country_code = models.CharField(max_length=2, blank=True)
    to_party_id = models.CharField(max_length=3, blank=True)
    body = models.JSONField(null=True, blank=True, encoder=DecimalJSONEncoder, decoder=DecimalJSONDecoder)
    meta = models.JSONField(default=dict, blank=True, encoder=DecimalJSONEncoder, decoder=DecimalJSONDecoder)
    coalesce = models.BooleanField(default=False, help_text="A newer push of the same object may replace it")
    status = models.CharField(max_length=10, choices=OutboxStatus.choices, default=OutboxStatus.PENDING)
    superseded_by = models.ForeignKey("self", null=True, blank=True, on_delete=models.SET_NULL, related_name="+")
    attempts = models.PositiveIntegerField(default=0)
    due_at = models.DateTimeField(help_text="When it was first meant to go")
    next_attempt_at = models.DateTimeField()
    dispatched_at = models.DateTimeField(null=True, blank=True, help_text="Last time a delivery task was queued")
    sending_until = models.DateTimeField(
        null=True, blank=True, help_text="A worker is sending it: its lease runs out then (ocpi_api.delivery)"
    )
    give_up_at = models.DateTimeField()
    correlation_id = models.CharField(max_length=36)
    last_http_status = models.PositiveSmallIntegerField(null=True, blank=True)
    last_status_code = models.PositiveIntegerField(null=True, blank=True)
    last_error = models.TextField(blank=True)
    response_location = models.CharField(
        max_length=512, blank=True, help_text="Location header of a CDR POST: where the partner keeps it"
    )
    created_at = models.DateTimeField(auto_now_add=True, db_index=True)
    sent_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["id"]
        indexes = [
            models.Index(fields=["status", "next_attempt_at"], name="outbox_due"),
            models.Index(fields=["partner", "object_key", "status"], name="outbox_object"),
            models.Index(fields=["partner", "order_key", "status"], name="outbox_order"),
        ]
        constraints = [
            # A CDR is POSTed once per partner: a retried or concurrent task finds the row another one wrote.
            models.UniqueConstraint(
                fields=["partner", "object_key"],
                condition=Q(method="POST") & ~Q(status="SUPERSEDED"),
                name="outbox_one_post_per_object",
            ),
            models.CheckConstraint(condition=Q(method__in=["PUT", "PATCH", "POST", "DELETE"]), name="outbox_method"),
        ]

    def __str__(self) -> str:
        return f"{self.method} {self.module}/{self.path} to {self.partner_id} ({self.status})"


class OutboxAttempt(models.Model):
    """One try to deliver a message: what the partner answered (HTTP status, OCPI status_code) or why it failed."""

    message = models.ForeignKey(OutboxMessage, on_delete=models.CASCADE, related_name="attempt_log")
    started_at = models.DateTimeField()
    duration_ms = models.PositiveIntegerField(default=0)
    url = models.CharField(max_length=512)
    request_id = models.CharField(max_length=36)
    ok = models.BooleanField(default=False)
    http_status = models.PositiveSmallIntegerField(null=True, blank=True)
    status_code = models.PositiveIntegerField(null=True, blank=True)
    status_message = models.CharField(max_length=255, blank=True)
    error = models.TextField(blank=True)

    class Meta:
        ordering = ["message_id", "id"]

    def __str__(self) -> str:
        return f"attempt {self.pk} of {self.message_id}: {self.http_status} {self.status_code} {self.error[:40]}"


# --- Commands and charging profiles partners ask us to carry out (mod_commands, mod_charging_profiles) ----------


class CommandType(models.TextChoices):
    """OCPI CommandType, and the three charging profile requests (which answer the same way: at once, then a
    result POSTed to `response_url`)."""

    CANCEL_RESERVATION = "CANCEL_RESERVATION"
    RESERVE_NOW = "RESERVE_NOW"
    START_SESSION = "START_SESSION"
    STOP_SESSION = "STOP_SESSION"
    UNLOCK_CONNECTOR = "UNLOCK_CONNECTOR"
    SET_CHARGING_PROFILE = "SET_CHARGING_PROFILE"
    GET_ACTIVE_CHARGING_PROFILE = "GET_ACTIVE_CHARGING_PROFILE"
    CLEAR_CHARGING_PROFILE = "CLEAR_CHARGING_PROFILE"


class CommandState(models.TextChoices):
    """REFUSED: we answered something else than ACCEPTED; nothing goes to the charger. PENDING: accepted, waiting for
    a worker. SENT: the OCPP call is on its way. ANSWERED: the charger answered (or did not in time) and `result` is
    known. DELIVERED: the result reached the partner's response_url. UNDELIVERED: it could not be delivered."""

    REFUSED = "REFUSED"
    PENDING = "PENDING"
    SENT = "SENT"
    ANSWERED = "ANSWERED"
    DELIVERED = "DELIVERED"
    UNDELIVERED = "UNDELIVERED"


class Command(models.Model):
    """One command (or charging profile request) a partner sent, with what we answered, what went to the charger,
    what it said and whether the partner got the result.

    For START_SESSION and RESERVE_NOW `id_tag` is the idTag / idToken we gave the charger for the command's token
    (the token uid, or a shorter stand-in where OCPP 1.6's 20 characters are too few): the gateway authorizer
    recognises it (auth_method COMMAND). `ocpp_reservation_id` is the reservationId we chose for the charger (the
    partner's own reservation_id is never sent, so partners cannot touch each other's reservations)."""

    partner = models.ForeignKey(Partner, on_delete=models.CASCADE, related_name="commands")
    command = models.CharField(max_length=28, choices=CommandType.choices)
    request = models.JSONField(help_text="The partner's request object, as received")
    response_url = models.URLField(max_length=512)
    response = models.CharField(max_length=16, help_text="CommandResponseType / ChargingProfileResponseType")
    response_message = models.CharField(max_length=255, blank=True)
    state = models.CharField(max_length=12, choices=CommandState.choices, db_index=True)
    station = models.ForeignKey(
        "cpo.ChargingStation", null=True, blank=True, on_delete=models.SET_NULL, related_name="ocpi_commands"
    )
    evse = models.ForeignKey("cpo.EVSE", null=True, blank=True, on_delete=models.SET_NULL, related_name="+")
    connector_id = models.CharField(max_length=36, blank=True)
    transaction = models.ForeignKey(
        "ocpp_gateway.Transaction", null=True, blank=True, on_delete=models.SET_NULL, related_name="ocpi_commands"
    )
    session_id = models.CharField(max_length=36, blank=True)
    reservation_id = models.CharField(max_length=36, blank=True, help_text="The partner's reservation_id")
    ocpp_reservation_id = models.IntegerField(null=True, blank=True)
    id_tag = models.CharField(max_length=36, blank=True, db_index=True)
    token = models.JSONField(null=True, blank=True, help_text="The OCPI Token of START_SESSION / RESERVE_NOW")
    authorization_reference = models.CharField(max_length=36, blank=True)
    ocpp_action = models.CharField(max_length=40, blank=True)
    ocpp_request = models.JSONField(null=True, blank=True)
    ocpp_response = models.JSONField(null=True, blank=True)
    ocpp_error = models.CharField(max_length=255, blank=True)
    result = models.CharField(max_length=24, blank=True, help_text="CommandResultType / ChargingProfileResultType")
    result_body = models.JSONField(null=True, blank=True, help_text="What we POST to response_url")
    delivery_attempts = models.PositiveSmallIntegerField(default=0)
    delivery_error = models.CharField(max_length=255, blank=True)
    created_at = models.DateTimeField(auto_now_add=True, db_index=True)
    answered_at = models.DateTimeField(null=True, blank=True)
    delivered_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-created_at", "-id"]
        indexes = [models.Index(fields=["partner", "command", "reservation_id"], name="command_reservation")]

    def __str__(self) -> str:
        return f"{self.command} #{self.pk} from {self.partner} ({self.state})"


class ChargingPreferencesResponse(models.TextChoices):
    """mod_sessions ChargingPreferencesResponse."""

    ACCEPTED = "ACCEPTED"
    DEPARTURE_REQUIRED = "DEPARTURE_REQUIRED"
    ENERGY_NEED_REQUIRED = "ENERGY_NEED_REQUIRED"
    NOT_POSSIBLE = "NOT_POSSIBLE"
    PROFILE_TYPE_NOT_SUPPORTED = "PROFILE_TYPE_NOT_SUPPORTED"


class ChargingPreferences(models.Model):
    """One ChargingPreferences object a partner PUT for one of its sessions (mod_sessions Sender interface), with what
    we answered. Every PUT is kept; the latest ACCEPTED one of a session is the driver's current preference."""

    partner = models.ForeignKey(Partner, on_delete=models.CASCADE, related_name="charging_preferences")
    session_id = models.CharField(max_length=36, db_index=True)
    transaction = models.ForeignKey(
        "ocpp_gateway.Transaction", null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    evse = models.ForeignKey("cpo.EVSE", null=True, blank=True, on_delete=models.SET_NULL, related_name="+")
    profile_type = models.CharField(max_length=8, choices=ProfileType.choices)
    departure_time = models.DateTimeField(null=True, blank=True)
    energy_need = models.DecimalField(max_digits=12, decimal_places=4, null=True, blank=True, help_text="kWh")
    discharge_allowed = models.BooleanField(default=False)
    response = models.CharField(max_length=26, choices=ChargingPreferencesResponse.choices)
    request = models.JSONField(help_text="The partner's ChargingPreferences object, as received")
    created_at = models.DateTimeField(auto_now_add=True, db_index=True)

    class Meta:
        ordering = ["-created_at", "-id"]
        verbose_name_plural = "charging preferences"
        constraints = [
            models.CheckConstraint(
                condition=Q(energy_need__gte=0) | Q(energy_need__isnull=True),
                name="charging_preferences_energy_need_not_negative",
            ),
        ]

    def __str__(self) -> str:
        return f"{self.profile_type} for session {self.session_id} ({self.response})"
