"""Load management as staff see it: each group's limit now, and per running session the share the planner gave
(what the charger accepted last) against what the car draws."""

from dataclasses import dataclass
from decimal import Decimal

from cpo.models import LoadGroup
from ocpp_gateway.models import ChargingProfile, Transaction
from ocpp_gateway.services.load_management import load_group_evses, load_group_limit


@dataclass
class LoadRow:
    transaction: Transaction
    planned_amps: Decimal | None
    planned_status: str
    drawn_amps: Decimal | None


def load_group_list():
    return LoadGroup.objects.select_related("location").order_by("location_id", "name")


def load_group_rows(*, group: LoadGroup) -> tuple[Decimal, list[LoadRow]]:
    """The limit now and the running sessions under it, in start order."""
    transactions = list(
        Transaction.objects.filter(status=Transaction.Status.ACTIVE, evse__in=load_group_evses(group=group))
        .select_related("station", "evse")
        .order_by("started_at", "pk")
    )
    latest: dict[int, tuple[Decimal, str]] = {}
    for tx_pk, limit, status in (
        ChargingProfile.objects.filter(transaction__in=transactions, source=ChargingProfile.Source.PLANNER)
        .order_by("created_at", "id")
        .values_list("transaction_id", "limit", "status")
    ):
        latest[tx_pk] = (limit, status)
    volts = Decimal(group.voltage * group.phases)
    rows = []
    for tx in transactions:
        planned, status = latest.get(tx.pk, (None, ""))
        drawn = (tx.power_last / volts).quantize(Decimal("0.1")) if tx.power_last is not None else None
        rows.append(LoadRow(tx, planned, status, drawn))
    return load_group_limit(group=group), rows
