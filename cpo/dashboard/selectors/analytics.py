"""Reads for the analytics page and its CSVs: energy and sessions per day or week, utilisation per location, hour of
the week, revenue per partner; each from the roll-ups of built days plus a live query over the other days."""

from dataclasses import dataclass
from datetime import date, timedelta
from decimal import Decimal
from zoneinfo import ZoneInfo

from django.db.models import Case, Count, DurationField, ExpressionWrapper, F, Q, QuerySet, Sum, Value, When
from django.db.models.functions import (
    Coalesce,
    ExtractHour,
    ExtractIsoWeekDay,
    Greatest,
    Least,
    TruncDay,
    TruncWeek,
)
from django.utils import timezone

from billing.models import Cdr
from cpo.dashboard.models import AnalyticsDay, AnalyticsHour, AnalyticsLocationDay, AnalyticsPartnerDay
from cpo.dashboard.selectors.occupancy import busy_seconds_per_hour_of_week, transactions_overlapping
from cpo.dashboard.selectors.period import Period, seconds_exact
from cpo.dashboard.selectors.sessions import session_energy_wh
from cpo.models import EVSE, Location
from ocpi_api.models import Partner
from ocpp_gateway.models import Transaction

# Every figure is aggregated by the database (GROUP BY over an indexed period); Python only shapes the few rows
# that come back (a row per day, location, partner or hour of the week).


def _kwh(wh) -> Decimal:
    return (Decimal(wh or 0) / 1000).quantize(Decimal("0.001"))


# Closed UTC days that have roll-ups (cpo.dashboard.services.analytics_rebuild) are read from them; every other day
# (today, days not built yet) is computed live from the sessions (`split`: pass one to share it between tables). Each
# figure is a sum over days, so the two parts add up to what a live query over the whole period gives
# (tests/dashboard/test_analytics_rollups.py).


@dataclass(frozen=True)
class Split:
    built: list[tuple[date, date]]  # runs of days [first, last] read from roll-ups
    live: list[Period]  # the rest, computed from sessions

    def q(self, field: str, *, hours: bool = False) -> Q:
        q = Q(pk__in=[])
        for first, last in self.built:
            if hours:
                run = Period.of_days(first, last)
                q |= Q(**{f"{field}__gte": run.start, f"{field}__lt": run.end})
            else:
                q |= Q(**{f"{field}__gte": first, f"{field}__lte": last})
        return q


def _whole_hour_offsets(period: Period, zone: ZoneInfo) -> bool:
    """Hourly roll-ups (UTC hours) regroup exactly into local days and hours only if the zone's offset is whole hours
    throughout the period (checked at each day's start: offsets change at most at a transition inside a day)."""
    moment = period.start
    while moment <= period.end:
        offset = moment.astimezone(zone).utcoffset()
        if offset is None or offset.total_seconds() % 3600:
            return False
        moment += timedelta(days=1)
    return True


def analytics_split(*, period: Period) -> Split:
    """Which days of the period come from roll-ups and which live."""
    first, last = period.start.date(), (period.end - timedelta(days=1)).date()
    built = set(AnalyticsDay.objects.filter(day__gte=first, day__lte=last).values_list("day", flat=True))
    runs: list[list[date]] = []
    live: list[list[date]] = []
    day = first
    while day <= last:
        target = runs if day in built else live
        if target and target[-1][1] == day - timedelta(days=1):
            target[-1][1] = day
        else:
            target.append([day, day])
        day += timedelta(days=1)
    return Split([(a, b) for a, b in runs], [Period.of_days(a, b) for a, b in live])


def _merge(into: dict, key, **values) -> None:
    """Add values into `into[key]` as SQL SUM would: None only while every part is None."""
    row = into.setdefault(key, {})
    for name, value in values.items():
        if value is not None:
            row[name] = (row.get(name) or 0) + value
        else:
            row.setdefault(name, None)


def energy_per_bucket(
    *, period: Period, bucket: str = "day", time_zone: str = "UTC", split: Split | None = None
) -> list[dict]:
    """Sessions started and energy they delivered per day or ISO week (in `time_zone`), oldest first."""
    zone = ZoneInfo(time_zone)
    trunc = TruncWeek if bucket == "week" else TruncDay
    split = split or analytics_split(period=period)
    if split.built and not _whole_hour_offsets(period, zone):
        split = Split([], [period])
    buckets: dict = {}
    for part in split.live:
        for row in (
            Transaction.objects.filter(started_at__gte=part.start, started_at__lt=part.end)
            .annotate(bucket=trunc("started_at", tzinfo=zone))
            .order_by()
            .values("bucket")
            .annotate(sessions=Count("id"), wh=Sum(session_energy_wh()))
        ):
            _merge(buckets, row["bucket"].date(), sessions=row["sessions"], wh=row["wh"])
    if split.built:
        for row in (
            AnalyticsHour.objects.filter(split.q("hour", hours=True), sessions__gt=0)
            .annotate(bucket=trunc("hour", tzinfo=zone))
            .order_by()
            .values("bucket")
            .annotate(sessions=Sum("sessions"), wh=Sum("energy_wh"))
        ):
            _merge(buckets, row["bucket"].date(), sessions=row["sessions"], wh=row["wh"])
    for key in _bucket_keys(period, bucket):
        buckets.setdefault(key, {"sessions": 0, "wh": 0})
    return [
        {"bucket": key, "sessions": row["sessions"] or 0, "kwh": _kwh(row["wh"])}
        for key, row in sorted(buckets.items())
    ]


def _bucket_keys(period: Period, bucket: str) -> list[date]:
    """Every day (or ISO week's Monday) the staff member chose: a day without sessions is a zero on the chart, not a
    gap that joins its neighbours. (A session late on the last day may fall on the next local day: that bucket
    comes with its data.)"""
    first, last = period.start.date(), (period.end - timedelta(microseconds=1)).date()
    step = timedelta(days=1)
    if bucket == "week":
        first, last, step = first - timedelta(days=first.weekday()), last - timedelta(days=last.weekday()), 7 * step
    keys = []
    while first <= last:
        keys.append(first)
        first += step
    return keys


def _overlap_seconds(period: Period):
    """The part of each transaction inside the period (a running one counts until now), as an interval."""
    now = timezone.now()
    return ExpressionWrapper(
        Least(Coalesce(F("ended_at"), Value(now)), Value(period.end)) - Greatest(F("started_at"), Value(period.start)),
        output_field=DurationField(),
    )


def location_stats(*, period: Period) -> dict:
    """Live, per location id: EVSE-seconds in use inside the period, sessions started in it and their energy (Wh)."""
    started = Q(started_at__gte=period.start)
    return {
        row["station__location_id"]: {"busy": seconds_exact(row["busy"]), "sessions": row["sessions"], "wh": row["wh"]}
        for row in transactions_overlapping(period)
        .order_by()
        .values("station__location_id")
        .annotate(
            busy=Sum(_overlap_seconds(period)),
            sessions=Count("id", filter=started),
            wh=Sum(session_energy_wh(), filter=started),
        )
    }


def utilisation_per_location(*, period: Period, split: Split | None = None) -> list[dict]:
    """Per location: EVSEs, sessions, energy, hours in use and the share of EVSE-hours in use over the period,
    busiest first."""
    split = split or analytics_split(period=period)
    stats: dict = {}
    for part in split.live:
        for location_id, row in location_stats(period=part).items():
            _merge(stats, location_id, **row)
    if split.built:
        for row in (
            AnalyticsLocationDay.objects.filter(split.q("day"))
            .order_by()
            .values("location_id")
            .annotate(busy=Sum("busy_seconds"), sessions=Sum("sessions"), wh=Sum("energy_wh"))
        ):
            _merge(stats, row["location_id"], busy=row["busy"], sessions=row["sessions"], wh=row["wh"])
    rows = []
    for location in (
        Location.objects.annotate(evses_count=Count("evses", filter=Q(evses__station__isnull=False)))
        .filter(evses_count__gt=0)
        .values("id", "name", "city", "evses_count")
    ):
        row = stats.get(location["id"], {})
        hours = (row.get("busy") or Decimal(0)) / 3600
        capacity = location["evses_count"] * period.hours
        rows.append(
            {
                "location_id": location["id"],
                "name": location["name"],
                "city": location["city"],
                "evses": location["evses_count"],
                "sessions": row.get("sessions", 0),
                "kwh": _kwh(row.get("wh")),
                "hours_in_use": hours.quantize(Decimal("0.1")),
                "utilisation_pct": (100 * hours / capacity).quantize(Decimal("0.1")) if capacity else Decimal(0),
            }
        )
    rows.sort(key=lambda row: (-row["utilisation_pct"], row["location_id"]))
    return rows


WEEKDAY_NAMES = ["Mon", "Tue", "Wed", "Thu", "Fri", "Sat", "Sun"]


def _hour_occurrences(period: Period, zone: ZoneInfo) -> dict[tuple[int, int], int]:
    """How many times each (ISO weekday, hour) occurs in the period, in local time (at most 24 x days steps)."""
    counts: dict[tuple[int, int], int] = {}
    moment = period.start
    while moment < period.end:
        local = moment.astimezone(zone)
        key = (local.isoweekday(), local.hour)
        counts[key] = counts.get(key, 0) + 1
        moment += timedelta(hours=1)
    return counts


def hour_of_week(*, period: Period, time_zone: str, split: Split | None = None) -> list[dict]:
    """168 rows (Monday 00 to Sunday 23, local time): sessions started, energy they delivered and the share of all
    EVSEs in use in that hour on average over the period (peak hours)."""
    zone = ZoneInfo(time_zone)
    split = split or analytics_split(period=period)
    if split.built and not _whole_hour_offsets(period, zone):
        split = Split([], [period])
    starts: dict = {}
    busy_sum: dict = {}
    for part in split.live:
        for row in (
            Transaction.objects.filter(started_at__gte=part.start, started_at__lt=part.end)
            .annotate(dow=ExtractIsoWeekDay("started_at", tzinfo=zone), hour=ExtractHour("started_at", tzinfo=zone))
            .order_by()
            .values("dow", "hour")
            .annotate(sessions=Count("id"), wh=Sum(session_energy_wh()))
        ):
            _merge(starts, (row["dow"], row["hour"]), sessions=row["sessions"], wh=row["wh"])
        for key, seconds in busy_seconds_per_hour_of_week(period=part, time_zone=time_zone).items():
            _merge(busy_sum, key, seconds=seconds)
    if split.built:
        for row in (
            AnalyticsHour.objects.filter(split.q("hour", hours=True))
            .annotate(dow=ExtractIsoWeekDay("hour", tzinfo=zone), hour_of_day=ExtractHour("hour", tzinfo=zone))
            .order_by()
            .values("dow", "hour_of_day")
            .annotate(sessions=Sum("sessions"), wh=Sum("energy_wh"), seconds=Sum("busy_seconds"))
        ):
            key = (row["dow"], row["hour_of_day"])
            if row["sessions"]:
                _merge(starts, key, sessions=row["sessions"], wh=row["wh"])
            _merge(busy_sum, key, seconds=row["seconds"])
    busy = {key: float(row["seconds"] or 0) for key, row in busy_sum.items()}
    evses = EVSE.objects.filter(station__isnull=False).count()
    occurrences = _hour_occurrences(period, zone)
    rows = []
    for dow in range(1, 8):
        for hour in range(24):
            stats = starts.get((dow, hour), {})
            share = None
            if evses and occurrences.get((dow, hour)):
                share = Decimal(100 * busy.get((dow, hour), 0) / 3600 / (evses * occurrences[(dow, hour)]))
                share = share.quantize(Decimal("0.1"))
            rows.append(
                {
                    "weekday": WEEKDAY_NAMES[dow - 1],
                    "hour": hour,
                    "sessions_started": stats.get("sessions", 0),
                    "kwh": _kwh(stats.get("wh")),
                    "in_use_pct": share,
                }
            )
    return rows


def revenue_stats(*, period: Period) -> QuerySet:
    """Live: CDRs whose last update falls in the period per EMSP party and currency."""
    return (
        Cdr.objects.filter(last_updated__gte=period.start, last_updated__lt=period.end)
        .order_by()
        .values("emsp_country_code", "emsp_party_id", "currency")
        .annotate(
            cdrs=Count("id", filter=Q(credit=False)),
            credits=Count("id", filter=Q(credit=True)),
            # A credited CDR's energy was still delivered, unless a re-issue (a late stop) replaces it.
            kwh=Sum(
                Case(
                    When(credit=False, then=F("total_energy")),
                    When(credit_reference__reissue__isnull=False, then=-F("total_energy")),
                )
            ),
            excl_vat=Sum("total_cost_excl_vat"),
            incl_vat=Sum("total_cost_incl_vat"),
        )
    )


def revenue_per_partner(*, period: Period, split: Split | None = None) -> list[dict]:
    """CDRs issued in the period per EMSP and currency (credits net out): count, energy, revenue excl./incl. VAT,
    largest first. Our own tokens' CDRs are the row with an empty party."""
    names: dict[tuple[str, str], str] = {}
    for partner in Partner.objects.all():
        for party in partner.party_ids():
            names.setdefault(party, partner.name)
    split = split or analytics_split(period=period)
    groups: dict = {}
    for part in split.live:
        for row in revenue_stats(period=part):
            _merge(
                groups,
                (row["emsp_country_code"], row["emsp_party_id"], row["currency"]),
                cdrs=row["cdrs"],
                credits=row["credits"],
                kwh=row["kwh"],
                excl_vat=row["excl_vat"],
                incl_vat=row["incl_vat"],
            )
    if split.built:
        for row in (
            AnalyticsPartnerDay.objects.filter(split.q("day"))
            .order_by()
            .values("emsp_country_code", "emsp_party_id", "currency")
            .annotate(
                cdrs=Sum("cdrs"),
                credits=Sum("credits"),
                kwh=Sum("energy_kwh"),
                excl_vat=Sum("revenue_excl_vat"),
                incl_vat=Sum("revenue_incl_vat"),
            )
        ):
            _merge(
                groups,
                (row["emsp_country_code"], row["emsp_party_id"], row["currency"]),
                cdrs=row["cdrs"],
                credits=row["credits"],
                kwh=row["kwh"],
                excl_vat=row["excl_vat"],
                incl_vat=row["incl_vat"],
            )
    # largest revenue first, as PostgreSQL orders DESC (NULLs first)
    ordered = sorted(
        groups.items(),
        key=lambda item: (item[1]["excl_vat"] is not None, -(item[1]["excl_vat"] or 0), item[0][0], item[0][1]),
    )
    return [
        {
            "country_code": country,
            "party_id": party,
            "name": names.get((country, party), "" if party else "own tokens"),
            "currency": currency,
            "cdrs": row["cdrs"],
            "credits": row["credits"],
            "kwh": (row["kwh"] or Decimal(0)).quantize(Decimal("0.001")),
            "revenue_excl_vat": (row["excl_vat"] or Decimal(0)).quantize(Decimal("0.01")),
            "revenue_incl_vat": (row["incl_vat"] or Decimal(0)).quantize(Decimal("0.01")),
        }
        for (country, party, currency), row in ordered
    ]


def network_time_zone() -> str:
    """The time zone most locations are in (for reading hours of the week), else the default."""
    row = Location.objects.order_by().values("time_zone").annotate(n=Count("id")).order_by("-n").first()
    return row["time_zone"] if row else Location._meta.get_field("time_zone").default
