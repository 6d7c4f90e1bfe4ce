"""What the charger reported about a transaction, as billing needs it: the pricing engine's `SessionUsage` (energy,
power, current and charging state over time) and the dimensions measured inside each charging period.

Reads only (meter values and charging states the gateway stored); values in the units the charger used are brought
to base units (Wh, W, A) by the gateway's own scaling (`Sample.in_base_unit`)."""

import datetime as dt
from datetime import datetime
from decimal import ROUND_HALF_UP, Decimal

from django.utils import timezone

from billing.pricing import QUANTITY, MeterSample, SessionUsage
from ocpp_gateway.measurands import CURRENT_IMPORT, ENERGY_REGISTER, POWER_ACTIVE, STATE_OF_CHARGE, value_in_base_unit
from ocpp_gateway.models import ChargingStateChange, MeterValue, Transaction

# ChargingStateEnumType values in which the EV does not request power (PARKING_TIME, mod_cdrs errata). Before
# charging has begun, EVConnected/Idle are the plug-in handshake, not parking; SuspendedEV always is.
PARKING_STATES = {"SuspendedEV", "EVConnected", "Idle"}
CHARGING_BEGUN_STATES = {"Charging", "SuspendedEVSE", "SuspendedEV"}


def _whole_device(rows: list[tuple]) -> dict[datetime, Decimal]:
    """(timestamp, value, phase, location) rows of one measurand -> one value per timestamp: the unphased value
    when there is one, else the sum over the phases L1, L2, L3; outlet side preferred over inlet/EV."""
    outlet = [r for r in rows if r[3] not in ("Inlet", "EV")]
    rows = outlet or rows
    unphased: dict[datetime, Decimal] = {}
    phased: dict[datetime, dict[str, Decimal]] = {}
    for timestamp, value, phase, _location in rows:
        if not phase:
            unphased[timestamp] = max(unphased.get(timestamp, value), value)
        elif phase in ("L1", "L2", "L3"):
            phased.setdefault(timestamp, {})[phase] = value
    result = {t: sum(values.values(), Decimal(0)) for t, values in phased.items()}
    result.update(unphased)
    return result


# The measurands billing reads: one query per billing of a transaction (`transaction_readings`).
BILLED_MEASURANDS = (ENERGY_REGISTER, POWER_ACTIVE, CURRENT_IMPORT, STATE_OF_CHARGE)
Readings = dict[str, list[tuple[datetime, Decimal, str, str]]]


def transaction_readings(*, tx: Transaction) -> Readings:
    """The transaction's readings of the measurands billing uses, read once for pricing and for the measured
    dimensions: per measurand, (timestamp aware UTC, value in base units Wh/W/A/%, phase, location) in the order
    they were taken."""
    rows = (
        MeterValue.objects.filter(transaction=tx, measurand__in=BILLED_MEASURANDS, value__isnull=False)
        .order_by("timestamp", "id")
        .values_list("measurand", "timestamp", "value", "unit", "phase", "location")
    )
    readings: Readings = {measurand: [] for measurand in BILLED_MEASURANDS}
    for measurand, t, value, unit, phase, location in rows:
        readings[measurand].append((t.astimezone(dt.UTC), value_in_base_unit(value=value, unit=unit), phase, location))
    return readings


def _interpolated(points: list[tuple[datetime, Decimal]], at: datetime) -> Decimal:
    before = [(t, e) for t, e in points if t <= at]
    after = [(t, e) for t, e in points if t > at]
    if not before:
        return Decimal(0)
    t0, e0 = before[-1]
    if not after:
        return e0
    t1, e1 = after[0]
    us = dt.timedelta(microseconds=1)
    fraction = Decimal((at - t0) // us) / Decimal((t1 - t0) // us)
    return e0 + (e1 - e0) * fraction


def session_usage(
    *, tx: Transaction, time_zone: str, now: datetime | None = None, readings: Readings | None = None
) -> SessionUsage:
    """What the charger reported, as the pricing engine's `SessionUsage`.

    Energy is the Energy.Active.Import.Register since `meter_start` (kWh, never negative, never decreasing, and
    never above the stop reading once the transaction ended). A running session is priced up to `now` (the
    energy held at the last reading). A sample is marked `charging=False` (parking) while the latest charging
    state is SuspendedEV, or EVConnected/Idle after charging has begun (a Charging, SuspendedEVSE or SuspendedEV
    state, or energy already delivered); `charging_end_date_time` is the start of a final non-charging stretch.
    Power (Power.Active.Import, kW) and current (Current.Import, A, summed over phases) are attached to the
    energy readings taken at the same instant."""
    start = tx.started_at.astimezone(dt.UTC)
    ended = tx.status == Transaction.Status.ENDED and tx.ended_at is not None
    readings = readings if readings is not None else transaction_readings(tx=tx)
    energy_wh = _whole_device(readings[ENERGY_REGISTER])
    states = [
        (change.timestamp.astimezone(dt.UTC), change.charging_state)
        for change in ChargingStateChange.objects.filter(transaction=tx).order_by("timestamp", "id")
    ]
    if ended:
        end = max(tx.ended_at, tx.started_at).astimezone(dt.UTC)
    else:
        latest = list(energy_wh) + [t for t, _ in states]
        end = max([timezone.now() if now is None else now, start, *latest])
    final_kwh = None
    if ended and tx.meter_stop is not None:
        final_kwh = max((tx.meter_stop - tx.meter_start) / 1000, Decimal(0))
    points: list[tuple[datetime, Decimal]] = []
    level = Decimal(0)
    for t in sorted(t for t in energy_wh if start <= t <= end):
        kwh = max((energy_wh[t] - tx.meter_start) / 1000, Decimal(0))
        if final_kwh is not None:
            kwh = min(kwh, final_kwh)
        level = max(level, kwh)
        points.append((t, level))
    if final_kwh is not None:
        points = [(t, e) for t, e in points if t < end] + [(end, max(level, final_kwh))]
    power_w = _whole_device(readings[POWER_ACTIVE])
    current_a = _whole_device(readings[CURRENT_IMPORT])

    begun_at = next((t for t, state in states if state in CHARGING_BEGUN_STATES), None)
    first_energy = next((t for t, e in points if e > 0), None)
    begun_candidates = [t for t in (begun_at, first_energy) if t is not None]
    begun = min(begun_candidates) if begun_candidates else None

    def parking(at: datetime) -> bool:
        current = [state for t, state in states if t <= at]
        if not current or current[-1] not in PARKING_STATES:
            return False
        return current[-1] == "SuspendedEV" or (begun is not None and begun <= at)

    instants = sorted({t for t, _ in points} | {t for t, _ in states if start <= t <= end})
    energy_at = dict(points)
    samples = []
    for t in instants:
        power = power_w.get(t) if t in energy_wh else None
        samples.append(
            MeterSample(
                timestamp=t,
                energy_kwh=energy_at[t] if t in energy_at else _interpolated(points, t),
                power_kw=None if power is None else power / 1000,
                current_a=current_a.get(t) if t in energy_wh else None,
                charging=not parking(t),
            )
        )
    charging_end = None
    for sample in reversed(samples):
        if sample.charging:
            break
        charging_end = sample.timestamp
    return SessionUsage(
        start_date_time=start,
        end_date_time=end,
        time_zone=time_zone,
        samples=samples,
        charging_end_date_time=charging_end,
    )


# --- Measured dimensions of the charging periods


def _period_bounds(*, starts: list[datetime], end: datetime) -> list[tuple[datetime, datetime, bool]]:
    """(start, end, last) per period: "a period ends when the next period starts. The last period ends when the
    session ends" (mod_cdrs ChargingPeriod). The last one includes its end instant."""
    ends = starts[1:] + [max(end, starts[-1])] if starts else []
    return [(a, b, i == len(starts) - 1) for i, (a, b) in enumerate(zip(starts, ends, strict=True))]


def _in_period(t: datetime, a: datetime, b: datetime, last: bool) -> bool:
    return a <= t < b or (last and t == b)


def _volume(value: Decimal) -> Decimal:
    return value.quantize(QUANTITY, ROUND_HALF_UP)


def _phase_extreme(rows: list[tuple], pick) -> Decimal:
    """MAX_CURRENT/MIN_CURRENT: "Sum of the maximum (minimum) current over all phases" (mod_cdrs): the extreme of
    each phase L1-L3 over the period, summed; a whole-device (unphased) value, when the charger sends one, is
    taken as it is instead."""
    unphased = [r[1] for r in rows if not r[2]]
    if unphased:
        return pick(unphased)
    per_phase: dict[str, list[Decimal]] = {}
    for _t, value, phase, _location in rows:
        if phase in ("L1", "L2", "L3"):
            per_phase.setdefault(phase, []).append(value)
    return sum((pick(values) for values in per_phase.values()), Decimal(0))


def charging_periods_measured(
    *, tx: Transaction, periods: list[dict], end: datetime, readings: Readings | None = None
) -> list[dict]:
    """`periods` (the pricing engine's, datetimes in UTC) with the dimensions measured inside each period added,
    from the transaction's meter values taken in [start, next start) (the last period up to and including
    `end`):

    * MIN_POWER / MAX_POWER (kW, W converted) and POWER, the average (Session only): Power.Active.Import as
      whole-device values (the unphased value, else the sum over L1-L3), outlet side preferred;
    * MIN_CURRENT / MAX_CURRENT (A): per phase, summed (see `_phase_extreme`); CURRENT, the average (Session
      only): the whole-device current per reading (unphased, else summed over L1-L3), averaged;
    * STATE_OF_CHARGE (%, Session only): the last SoC value in the period, wherever it was measured (EV side).

    Averages are the mean of the readings in the period. A dimension is left out when the period has no reading
    of its measurand, and never added twice: MIN/MAX_POWER/CURRENT that the engine already reports (when a tariff
    restricts power or current) stay as the engine computed them, since they are what it priced on. Costs and
    totals are not touched."""
    readings = readings if readings is not None else transaction_readings(tx=tx)
    by_measurand = {measurand: readings[measurand] for measurand in (POWER_ACTIVE, CURRENT_IMPORT, STATE_OF_CHARGE)}
    if not any(by_measurand.values()):
        return periods

    def outlet(items: list[tuple]) -> list[tuple]:
        return [r for r in items if r[3] not in ("Inlet", "EV")] or items

    power_rows, current_rows = outlet(by_measurand[POWER_ACTIVE]), outlet(by_measurand[CURRENT_IMPORT])
    bounds = _period_bounds(starts=[p["start_date_time"] for p in periods], end=end)
    result = []
    for period, (a, b, last) in zip(periods, bounds, strict=True):
        dimensions = list(period["dimensions"])
        present = {d["type"] for d in dimensions}

        def add(kind: str, volume: Decimal, dimensions: list = dimensions, present: set = present) -> None:
            if kind not in present:
                dimensions.append({"type": kind, "volume": _volume(volume)})
                present.add(kind)

        power = [r for r in power_rows if _in_period(r[0], a, b, last)]
        if power:
            kw = [w / 1000 for w in _whole_device(power).values()]
            add("MIN_POWER", min(kw))
            add("MAX_POWER", max(kw))
        current = [r for r in current_rows if _in_period(r[0], a, b, last)]
        if current:
            add("MIN_CURRENT", _phase_extreme(current, min))
            add("MAX_CURRENT", _phase_extreme(current, max))
        if power:
            add("POWER", sum(kw, Decimal(0)) / len(kw))
        if current:
            amps = list(_whole_device(current).values())
            add("CURRENT", sum(amps, Decimal(0)) / len(amps))
        soc = [r for r in by_measurand[STATE_OF_CHARGE] if _in_period(r[0], a, b, last)]
        if soc:
            add("STATE_OF_CHARGE", min(max(soc[-1][1], Decimal(0)), Decimal(100)))
        result.append({**period, "dimensions": dimensions})
    return result
