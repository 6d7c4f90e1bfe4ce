"""Reads for the CDR pages: the list with each CDR's push to its EMSP, one CDR's costs and push history, the CSV."""

from dataclasses import dataclass
from datetime import UTC, datetime, time, timedelta
from decimal import Decimal

from django.db.models import CharField, Exists, OuterRef, QuerySet, Value
from django.db.models.functions import Concat

from billing.models import Cdr
from cpo.dashboard.selectors.partners import partner_party_q
from cpo.models import Location
from ocpi_api.announce import cdr_object_key
from ocpi_api.models import OutboxMessage, OutboxStatus, Partner
from ocpi_api.modules import ModuleID
from ocpi_api.outbox import outbox_object_key
from ocpp_gateway.models import Transaction

CDRS_MODULE = ModuleID.CDRS


class PushState:
    """Where a CDR's POST to its EMSP stands, from its outbox message."""

    DELIVERED = "delivered"
    PENDING = "pending"
    RETRYING = "retrying"
    FAILED = "failed"
    NOT_SENT = "not sent"  # our own token, or the EMSP has no cdrs Receiver: nobody to send it to

    CHOICES = [(DELIVERED, "delivered"), (PENDING, "pending"), (FAILED, "failed"), (NOT_SENT, "not sent")]


@dataclass(frozen=True)
class CdrPush:
    state: str
    message: OutboxMessage | None = None

    @property
    def error(self) -> str:
        if self.message is None or self.state == PushState.DELIVERED:
            return ""
        parts = [str(v) for v in (self.message.last_http_status, self.message.last_status_code) if v]
        return " ".join(parts + [self.message.last_error]).strip()


def push_state_of(message: OutboxMessage | None) -> CdrPush:
    if message is None:
        return CdrPush(PushState.NOT_SENT)
    if message.status == OutboxStatus.SENT:
        return CdrPush(PushState.DELIVERED, message)
    if message.status == OutboxStatus.FAILED:
        return CdrPush(PushState.FAILED, message)
    return CdrPush(PushState.RETRYING if message.attempts else PushState.PENDING, message)


def cdr_pushes(*, cdrs: list[Cdr]) -> dict[str, CdrPush]:
    """Push state per CDR id, for a page of CDRs: one query on the outbox (partner, object_key) index."""
    keys = {cdr_object_key(cdr): cdr.id for cdr in cdrs}
    messages = (
        OutboxMessage.objects.filter(
            partner_id__in=Partner.objects.values("pk"), object_key__in=list(keys), method="POST"
        )
        .exclude(status=OutboxStatus.SUPERSEDED)
        .order_by("id")
    )
    latest = {message.object_key: message for message in messages}
    return {cdr_id: push_state_of(latest.get(key)) for key, cdr_id in keys.items()}


def _cdr_push_messages(state: str = "") -> QuerySet[OutboxMessage]:
    """The outbox POSTs of the CDR in the outer query (see `cdr_list`), in `state` (any when empty)."""
    messages = OutboxMessage.objects.filter(
        partner_id__in=Partner.objects.values("pk"), object_key=OuterRef("push_key"), method="POST"
    ).exclude(status=OutboxStatus.SUPERSEDED)
    if state == PushState.DELIVERED:
        messages = messages.filter(status=OutboxStatus.SENT)
    elif state == PushState.FAILED:
        messages = messages.filter(status=OutboxStatus.FAILED)
    elif state == PushState.PENDING:
        messages = messages.filter(status=OutboxStatus.PENDING)
    return messages


def _cdr_push_messages_in(state: str) -> QuerySet[OutboxMessage]:
    status = OutboxStatus.FAILED if state == PushState.FAILED else OutboxStatus.PENDING
    return OutboxMessage.objects.filter(status=status, module=CDRS_MODULE, method="POST")


class CdrDate:
    """Which date of a CDR a period selects on: when it was issued (`last_updated`; what billing settles a month
    on) or when the charging started (`start_date_time`; a month's charging, some of it issued the month after)."""

    ISSUED = "issued"
    CHARGING = "charging"

    CHOICES = [(ISSUED, "issue date"), (CHARGING, "charging date")]


# `ended_by` filter value: the transactions we ended without the charger's stop (reboot, new transaction, status,
# housekeeping), whose CDRs stand on the last reading we had.
CLOSED_WITHOUT_STOP = "without_stop"


def cdr_list(
    *,
    partner: Partner | None = None,
    location: Location | None = None,
    issued_from=None,
    issued_to=None,
    by: str = CdrDate.ISSUED,
    push_state: str = "",
    ended_by: str = "",
) -> QuerySet[Cdr]:
    """CDRs newest first. By default the period is when the CDR was written (`last_updated` of an immutable CDR),
    the same as billing's settlement, so an export of a month adds up to the month's settlement; `by=CHARGING`
    selects on when the charging started instead. `issued_to` includes that whole day (UTC). `ended_by` selects
    by how the transaction ended (`Transaction.EndedBy`, or CLOSED_WITHOUT_STOP
    for all the ways but the charger's own stop)."""
    cdrs = Cdr.objects.all()
    if ended_by == CLOSED_WITHOUT_STOP:
        cdrs = cdrs.filter(session__transaction__status=Transaction.Status.ENDED).exclude(
            session__transaction__ended_by__in=["", Transaction.EndedBy.CHARGER]
        )
    elif ended_by:
        cdrs = cdrs.filter(session__transaction__ended_by=ended_by)
    if partner is not None:
        cdrs = cdrs.filter(partner_party_q(partner=partner, prefix="emsp_"))
    if location is not None:
        # Through the station's foreign keys (indexed all the way), not the session's location_id text column.
        cdrs = cdrs.filter(session__transaction__station__location=location)
    date_field = "start_date_time" if by == CdrDate.CHARGING else "last_updated"
    if issued_from:
        cdrs = cdrs.filter(**{f"{date_field}__gte": datetime.combine(issued_from, time.min, tzinfo=UTC)})
    if issued_to:
        end = datetime.combine(issued_to + timedelta(days=1), time.min, tzinfo=UTC)
        cdrs = cdrs.filter(**{f"{date_field}__lt": end})
    if push_state in (PushState.FAILED, PushState.PENDING):
        # Few messages are failed or waiting: read their keys from the outbox (status index), then CDRs by id.
        keys = _cdr_push_messages_in(push_state).values_list("object_key", flat=True)
        cdrs = cdrs.filter(pk__in=[key.split(":", 3)[-1] for key in keys])
    elif push_state:
        cdrs = cdrs.annotate(
            push_key=Concat(
                Value(f"{CDRS_MODULE}:"),
                "country_code",
                Value(":"),
                "party_id",
                Value(":"),
                "id",
                output_field=CharField(),
            )
        )
        if push_state == PushState.NOT_SENT:
            cdrs = cdrs.exclude(Exists(_cdr_push_messages()))
        else:
            cdrs = cdrs.filter(Exists(_cdr_push_messages(push_state)))
    return cdrs.order_by("-last_updated", "-id")


@dataclass(frozen=True)
class CostLine:
    label: str
    quantity: str
    excl_vat: Decimal | None
    incl_vat: Decimal | None


def cost_breakdown(record) -> list[CostLine]:
    """The cost dimensions of a CDR (or anything with the same `total_*` fields), as lines for a table."""
    parking = record.total_parking_time
    return [
        CostLine("Fixed", "", record.total_fixed_cost_excl_vat, record.total_fixed_cost_incl_vat),
        CostLine(
            "Energy",
            f"{record.total_energy.normalize():f} kWh",
            record.total_energy_cost_excl_vat,
            record.total_energy_cost_incl_vat,
        ),
        CostLine(
            "Time",
            f"{record.total_time.normalize():f} h",
            record.total_time_cost_excl_vat,
            record.total_time_cost_incl_vat,
        ),
        CostLine(
            "Parking",
            f"{parking.normalize():f} h" if parking is not None else "",
            record.total_parking_cost_excl_vat,
            record.total_parking_cost_incl_vat,
        ),
        CostLine("Reservation", "", record.total_reservation_cost_excl_vat, record.total_reservation_cost_incl_vat),
    ]


def cdr_push_history(*, cdr: Cdr) -> list[OutboxMessage]:
    return list(
        OutboxMessage.objects.filter(partner_id__in=Partner.objects.values("pk"), object_key=cdr_object_key(cdr))
        .select_related("partner")
        .prefetch_related("attempt_log")
        .order_by("id")
    )


CDR_CSV_COLUMNS = (
    "id",
    "session_id",
    "credit",
    "credit_reference_id",
    "issued",
    "start_date_time",
    "end_date_time",
    "emsp_country_code",
    "emsp_party_id",
    "token_uid",
    "contract_id",
    "location_id",
    "evse_uid",
    "connector_id",
    "currency",
    "total_energy_kwh",
    "total_time_h",
    "total_parking_time_h",
    "fixed_cost_excl_vat",
    "energy_cost_excl_vat",
    "time_cost_excl_vat",
    "parking_cost_excl_vat",
    "reservation_cost_excl_vat",
    "total_cost_excl_vat",
    "total_cost_incl_vat",
    "push_state",
    "push_error",
)
CSV_BATCH = 2000


def csv_value(value) -> str:
    if value is None:
        return ""
    if isinstance(value, datetime):
        return value.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value)


CSV_FIELDS = (
    "id",
    "country_code",
    "party_id",
    "session_id",
    "credit",
    "credit_reference_id",
    "last_updated",
    "start_date_time",
    "end_date_time",
    "emsp_country_code",
    "emsp_party_id",
    "cdr_token__uid",
    "cdr_token__contract_id",
    "cdr_location__id",
    "cdr_location__evse_uid",
    "cdr_location__connector_id",
    "currency",
    "total_energy",
    "total_time",
    "total_parking_time",
    "total_fixed_cost_excl_vat",
    "total_energy_cost_excl_vat",
    "total_time_cost_excl_vat",
    "total_parking_cost_excl_vat",
    "total_reservation_cost_excl_vat",
    "total_cost_excl_vat",
    "total_cost_incl_vat",
)


def cdr_csv_rows(*, cdrs: QuerySet[Cdr]):
    """The header, then one row per CDR (money and quantities exactly as stored), read in batches so an export of
    a year never holds all rows in memory. Only the columns of the CSV are read; the token and location fields
    are taken out of their JSON by the database."""
    yield CDR_CSV_COLUMNS
    batch: list[dict] = []
    for row in cdrs.values(*CSV_FIELDS).iterator(chunk_size=CSV_BATCH):
        batch.append(row)
        if len(batch) == CSV_BATCH:
            yield from _cdr_rows(batch)
            batch = []
    yield from _cdr_rows(batch)


def _cdr_rows(batch: list[dict]):
    if not batch:
        return
    keys = {outbox_object_key(CDRS_MODULE, row["country_code"], row["party_id"], row["id"]): row["id"] for row in batch}
    messages = (
        OutboxMessage.objects.filter(
            partner_id__in=Partner.objects.values("pk"), object_key__in=list(keys), method="POST"
        )
        .exclude(status=OutboxStatus.SUPERSEDED)
        .only("object_key", "status", "attempts", "last_http_status", "last_status_code", "last_error")
        .order_by("id")
    )
    latest = {message.object_key: message for message in messages}
    pushes = {cdr_id: push_state_of(latest.get(key)) for key, cdr_id in keys.items()}
    for row in batch:
        push = pushes[row["id"]]
        yield [csv_value(row[name]) for name in CSV_FIELDS if name not in ("country_code", "party_id")] + [
            push.state,
            push.error,
        ]
