"""The overview's money and energy tiles: what the network delivered and earned today and this month (UTC), counting
charging that ended in the period (its CDRs; its priced session while the CDR is not written yet) and the sessions
running now at their current cost, as billing keeps it on the session (`billing.services.sessions.session_sync`).

The period is that of the charging (the transaction's end), not of the CDR's issue: a session that ended at 23:50 and
was billed at 00:10 counts for the day it ended. Credits net out in the day of the charging they correct."""

from dataclasses import dataclass, field
from datetime import datetime, timedelta
from decimal import Decimal

from django.db.models import Count, Q, Sum

from billing.models import Cdr, Session
from cpo.dashboard.selectors.sessions import session_energy_wh
from cpo.dashboard.selectors.stations import FAULT_STATUSES
from cpo.models import EVSE, EvseStatus
from ocpp_gateway.models import Transaction

KWH = Decimal("0.001")


@dataclass(frozen=True)
class Revenue:
    currency: str
    excl_vat: Decimal
    incl_vat: Decimal


@dataclass(frozen=True)
class PeriodTotals:
    start: datetime
    energy_kwh: Decimal
    sessions: int
    revenue: list[Revenue] = field(default_factory=list)


def period_totals(*, start: datetime, end: datetime) -> PeriodTotals:
    """Energy (kWh), sessions started, and revenue by currency of [start, end)."""
    ended = Q(ended_at__gte=start, ended_at__lt=end)
    running = Q(status=Transaction.Status.ACTIVE)
    energy_wh = (
        Transaction.objects.filter(ended | running).annotate(wh=session_energy_wh()).aggregate(total=Sum("wh"))["total"]
        or 0
    )
    sessions = Transaction.objects.filter(started_at__gte=start, started_at__lt=end).count()
    totals: dict[str, list[Decimal]] = {}
    billed = (
        Cdr.objects.filter(session__transaction__ended_at__gte=start, session__transaction__ended_at__lt=end)
        .values("currency")
        .annotate(excl=Sum("total_cost_excl_vat"), incl=Sum("total_cost_incl_vat"))
        .order_by()
    )
    unbilled = (
        Session.objects.filter(
            Q(transaction__ended_at__gte=start, transaction__ended_at__lt=end)
            | Q(transaction__status=Transaction.Status.ACTIVE),
            total_cost_excl_vat__isnull=False,
        )
        .exclude(cdrs__credit=False)
        .values("currency")
        .annotate(excl=Sum("total_cost_excl_vat"), incl=Sum("total_cost_incl_vat"))
        .order_by()
    )
    for row in [*billed, *unbilled]:
        sums = totals.setdefault(row["currency"], [Decimal(0), Decimal(0)])
        sums[0] += row["excl"] or 0
        sums[1] += row["incl"] or 0
    return PeriodTotals(
        start=start,
        energy_kwh=(Decimal(energy_wh) / 1000).quantize(KWH),
        sessions=sessions,
        revenue=[Revenue(currency, excl, incl) for currency, (excl, incl) in sorted(totals.items())],
    )


def today_and_month(*, now: datetime) -> tuple[PeriodTotals, PeriodTotals]:
    """Totals of the UTC day and the UTC month of `now` (an aware datetime)."""
    day = now.replace(hour=0, minute=0, second=0, microsecond=0)
    month = day.replace(day=1)
    return period_totals(start=day, end=day + timedelta(days=1)), period_totals(
        start=month, end=(month + timedelta(days=32)).replace(day=1)
    )


@dataclass(frozen=True)
class Availability:
    total: int
    available: int
    charging: int
    faulted: int

    def share(self, count: int) -> int:
        return round(100 * count / self.total) if self.total else 0

    @property
    def available_pct(self) -> int:
        return self.share(self.available)

    @property
    def charging_pct(self) -> int:
        return self.share(self.charging)

    @property
    def faulted_pct(self) -> int:
        return self.share(self.faulted)


def connector_availability() -> Availability:
    """EVSEs of managed stations: how many are available, charging, faulted (out of order, inoperative, blocked)."""
    counts = EVSE.objects.filter(station__isnull=False).aggregate(
        total=Count("id"),
        available=Count("id", filter=Q(status=EvseStatus.AVAILABLE)),
        charging=Count("id", filter=Q(status=EvseStatus.CHARGING)),
        faulted=Count("id", filter=Q(status__in=FAULT_STATUSES)),
    )
    return Availability(**counts)
