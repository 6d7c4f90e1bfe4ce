"""The pricing engine: an OCPI 2.2.1 Tariff applied to what happened in a session (mod_tariffs, mod_cdrs).

One public entry point, `price_session(*, tariff, usage)`, prices a running session (usage up to now) and a
finished one (the CDR) with the same code, so the running cost a partner sees and the CDR never disagree.
Everything is `Decimal` (money, kWh, kW, A) or integer microseconds (time); no float is ever used. Money is
rounded to 2 decimals (ROUND_HALF_UP) only at the very end, once per reported total; every total is rounded
from the exact amounts, so `total_cost` is not the sum of the rounded dimension totals (the spec's complex
example needs this: 2.875 + 3.30 + 4.125 = 10.30 incl. VAT).

How a session is cut up
-----------------------
The session is split at every instant where something a restriction looks at can change: meter samples,
the end of charging, local times of day and midnights named by the tariff (in the location's time zone, DST
transitions included), the instants `min_duration`/`max_duration` are reached, and the instants the energy
crosses a `min_kwh`/`max_kwh` (interpolated linearly between samples, as mod_cdrs allows: "it can be
interpolated by the CPO using the metering information before and after that moment"). Inside each piece every
input is constant or linear, so the restrictions are evaluated once per piece (at its middle). Consecutive
pieces with the same active price components form one OCPI ChargingPeriod: "When another Price Component
becomes active, the CPO SHALL add a new Charging Period" (mod_cdrs).

Interpretations (each quoted from the spec it rests on)
-------------------------------------------------------
* Active component: "the first Tariff Element with a Price Component for that dimension in the list with
  matching Tariff Restrictions will be used" and "When more than one restriction is set, they are to be
  treated as a logical AND" (mod_tariffs). Without a matching element a dimension is free.
* start_time/end_time: "If end_time < start_time then the period wraps around to the next day. To stop at end
  of the day use: 00:00." An `end_time` of 00:00 therefore means 24:00; start == end (other than 00:00) is
  read as the whole day. start_time is inclusive, end_time exclusive; end_date is "exclusive".
* min_/max_kwh, min_/max_duration: "valid from this amount (inclusive)" / "until this amount (exclusive)";
  energy is the energy consumed in the session so far; duration is time since the session started.
* Power: `MeterSample.power_kw` holds from its sample until the next one; without it the power of a stretch is
  its average, energy / time. Current: `MeterSample.current_a`, held the same way; when no current is known a
  min_/max_current restriction does not hold (we cannot show that it does), so a fallback element applies.
* Parking: PARKING_TIME is "Time in this ChargingPeriod during which the vehicle is not requesting power"
  (mod_cdrs, errata). The errata note says a pause where "the EVSE is not offering energy to the vehicle while
  the vehicle is still requesting power" is not parking, so a power of 0 alone is not parking: parking is the
  time after `charging_end_date_time` and the stretches after a sample with `charging=False` (OCPP
  SuspendedEV). Power and current are 0 while parking.
* TIME is "Time charging": the session minus parking. FLAT: charged once per session, at the price of the
  first FLAT component that is active during the session (normally at its start). With a reservation, the
  reservation is priced on its own (see below) and may carry its own FLAT, as in the spec's example 16
  (reservation fee 2.00 plus start fee 0.50).
* step_size (mod_cdrs): "SHALL only be taken into account once per session for ... ENERGY and once for
  PARKING_TIME and TIME combined"; "The step_size for the PriceComponent that is used to calculate the cost of
  such a 'last' ChargingPeriod SHALL be used"; "The step_size uses the total amount of a certain unit used
  during a session". So: ENERGY: the billable energy (energy in periods with an ENERGY component) is rounded
  up to the step of the last such period's component, and the extra is billed at that period's price.
  TIME/PARKING_TIME: "In the cases that TIME and PARKING_TIME Tariff Elements are both used, step_size is
  only taken into account for the total parking duration": when parking was billed (a parking period with a
  PARKING_TIME component), the session's billed parking time is rounded up to the step of the last such
  period's component and the extra is billed at its price ("The extra 7 minutes are then added to the last
  period with a Price Component with a time-based dimension"); charging time is then not rounded. Otherwise
  the billed charging time is rounded the same way on the last TIME period. In every example of the spec
  parking comes last, where this agrees with "the step_size of the last time-based period"; when charging
  resumes after parking we still round parking only, as the sentence above says, so a moment of charging at
  the end cannot cancel the rounding of the parking before it. `step_size` 0 means no rounding (the spec's
  free-of-charge tariff uses it). ChargingPeriods report measured volumes; the extra is only in the cost.
* Reservations: "When this field is present, the TariffElement describes reservation costs. A reservation
  starts when the reservation is made, and ends when the driver starts charging ... or when the reservation
  expires." The reservation is priced with RESERVATION elements only (TIME = reservation time); an expired
  reservation with RESERVATION_EXPIRES elements first, then RESERVATION ones ("the time based cost of an
  expired reservation will be calculated based on the RESERVATION_EXPIRES Tariff Element"). Elements with a
  `reservation` restriction never apply to charging. The reservation's time is rounded on its own step_size.
  Its costs are reported in `total_reservation_cost` (CDR field), not in fixed/time costs.
* min_price/max_price: "they both apply" to excl. and incl. VAT separately; they clamp `total_cost` only (the
  spec says nothing about spreading a clamp over the dimension totals, which therefore stay as computed). A bound
  given with one part only (incl_vat is optional in Price) applies to the other part at the session's own VAT
  (incl/excl of the computed total; the tariff's highest VAT rate when that total is zero), so a minimum of 5.00
  excl. VAT on a 21 % session is also 6.05 incl. VAT and incl_vat never ends below excl_vat.
* Tariff validity (`start_date_time`/`end_date_time`) is not checked here: choosing the tariff that was valid
  when the session started ("a driver accepts the tariff which is valid when they start their charging
  session") is the caller's job.
* VAT: "If omitted, no VAT is applicable", so incl_vat == excl_vat for such a component.
* Reported quantities (volumes, total_energy, total_time, total_parking_time) are rounded to 4 decimals
  ("numbers use 4 decimals", types.asciidoc); costs use the exact values.
"""

from __future__ import annotations

import datetime as dt
from bisect import bisect_left, bisect_right
from collections.abc import Sequence
from dataclasses import dataclass, field, replace
from decimal import ROUND_CEILING, ROUND_HALF_EVEN, ROUND_HALF_UP, Decimal, localcontext
from typing import Any
from zoneinfo import ZoneInfo

from billing.checks import as_decimal, check_tariff_elements
from billing.encoding import ocpi_datetime
from billing.enums import WEEKDAYS, CdrDimensionType, ReservationRestrictionType, TariffDimensionType

ENERGY = TariffDimensionType.ENERGY.value
FLAT = TariffDimensionType.FLAT.value
TIME = TariffDimensionType.TIME.value
PARKING_TIME = TariffDimensionType.PARKING_TIME.value

CHARGING = "CHARGING"
PARKING = "PARKING"
RESERVING = "RESERVING"
# The dimensions that accrue in each kind of stretch.
DIMENSIONS = {CHARGING: (ENERGY, TIME, FLAT), PARKING: (ENERGY, PARKING_TIME, FLAT), RESERVING: (TIME, FLAT)}

US_PER_SECOND = 1_000_000
US_PER_HOUR = 3_600 * US_PER_SECOND
US_PER_DAY = 24 * US_PER_HOUR
CENT = Decimal("0.01")
QUANTITY = Decimal("0.0001")  # OCPI numbers: 4 decimals
ENERGY_RESOLUTION = Decimal("1e-12")  # kWh, for interpolated meter values
ZERO = Decimal(0)
UTC = dt.UTC
PRECISION = 50  # significant digits of the Decimal context the engine computes in


# --- Input
# ----------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class MeterSample:
    """One meter reading. `energy_kwh` is the energy charged since the session started (not the register), so
    it is 0 at the start and never decreases; between samples it grows linearly. `power_kw`/`current_a` (sum
    over phases) are instantaneous values that hold until the next sample. `charging=False` marks that, from
    this sample on, the vehicle does not request power (OCPP SuspendedEV): that time is parking."""

    timestamp: dt.datetime
    energy_kwh: Decimal
    power_kw: Decimal | None = None
    current_a: Decimal | None = None
    charging: bool = True


@dataclass(frozen=True)
class ReservationUsage:
    """A reservation made at `start_date_time`, ended at `end_date_time` by the driver starting to charge
    (`expired=False`) or by its expiry (`expired=True`, no charging session followed). `cancelled=True`: it ended
    (or, for a running reservation, is priced up to now) without a charging session and without expiring: priced
    with RESERVATION elements only, like one the driver used, but with no charging part."""

    start_date_time: dt.datetime
    end_date_time: dt.datetime
    expired: bool = False
    cancelled: bool = False

    @property
    def without_charging(self) -> bool:
        return self.expired or self.cancelled


@dataclass(frozen=True)
class SessionUsage:
    """What happened in a session, up to `end_date_time` (the end, or now for a running session).

    `time_zone` is the Location's IANA time zone, in which restrictions on time of day, date and day of week
    are read. `charging_end_date_time`, when set, is when charging ended while the vehicle stayed connected:
    from then on it is parking. For an expired reservation (`reservation.expired`), no charging session took
    place: `start_date_time == end_date_time` and there are no samples."""

    start_date_time: dt.datetime
    end_date_time: dt.datetime
    time_zone: str
    samples: Sequence[MeterSample] = ()
    charging_end_date_time: dt.datetime | None = None
    reservation: ReservationUsage | None = None


# --- Output
# ---------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Price:
    """OCPI Price."""

    excl_vat: Decimal
    incl_vat: Decimal

    def __add__(self, other: Price) -> Price:
        return Price(self.excl_vat + other.excl_vat, self.incl_vat + other.incl_vat)

    def divided(self, divisor: int) -> Price:
        return Price(self.excl_vat / divisor, self.incl_vat / divisor)

    def rounded(self) -> Price:
        return Price(_money(self.excl_vat), _money(self.incl_vat))

    def as_ocpi(self) -> dict:
        return {"excl_vat": self.excl_vat, "incl_vat": self.incl_vat}


FREE = Price(ZERO, ZERO)


@dataclass(frozen=True)
class ExactCosts:
    """The same totals before rounding. `before_limits` is fixed + energy + time + parking + reservation;
    `total` is that after min_price/max_price."""

    fixed: Price
    energy: Price
    time: Price
    parking: Price
    reservation: Price
    before_limits: Price
    total: Price


@dataclass(frozen=True)
class PricedSession:
    """The OCPI CDR/Session cost fields. `charging_periods` are OCPI ChargingPeriod dicts: `start_date_time`
    (aware UTC datetime), `dimensions` ([{"type": CdrDimensionType, "volume": Decimal}]), `tariff_id`.
    `total_energy` in kWh, `total_time` (the whole session, charging and parking) and `total_parking_time` in
    hours. Reservation time is not in `total_time`; its periods come first in `charging_periods`."""

    tariff_id: str
    currency: str
    charging_periods: list[dict]
    total_cost: Price
    total_fixed_cost: Price
    total_energy_cost: Price
    total_time_cost: Price
    total_parking_cost: Price
    total_reservation_cost: Price
    total_energy: Decimal
    total_time: Decimal
    total_parking_time: Decimal
    exact: ExactCosts


def priced_session_as_ocpi(*, priced: PricedSession) -> dict:
    """The cost fields of an OCPI CDR (or Session, which uses the same names where it has them) with datetimes
    as UTC `Z` strings; numbers stay Decimal (DRF renders them as JSON numbers)."""
    return {
        "currency": priced.currency,
        "charging_periods": [
            {**period, "start_date_time": ocpi_datetime(period["start_date_time"])}
            for period in priced.charging_periods
        ],
        "total_cost": priced.total_cost.as_ocpi(),
        "total_fixed_cost": priced.total_fixed_cost.as_ocpi(),
        "total_energy": priced.total_energy,
        "total_energy_cost": priced.total_energy_cost.as_ocpi(),
        "total_time": priced.total_time,
        "total_time_cost": priced.total_time_cost.as_ocpi(),
        "total_parking_time": priced.total_parking_time,
        "total_parking_cost": priced.total_parking_cost.as_ocpi(),
        "total_reservation_cost": priced.total_reservation_cost.as_ocpi(),
    }


# --- The tariff, parsed
# -----------------------------------------------------------------------------------------


@dataclass(frozen=True)
class _Component:
    type: str
    price: Decimal
    vat: Decimal | None
    step_size: int
    key: tuple[int, int]  # (element index, component index)

    def cost(self, quantity: Decimal) -> Price:
        excl = self.price * quantity
        incl = excl if self.vat is None else excl * (1 + self.vat / 100)
        return Price(excl, incl)


@dataclass(frozen=True)
class _Restrictions:
    start_minute: int | None = None
    end_minute: int | None = None  # 00:00 is stored as 24:00
    start_date: dt.date | None = None
    end_date: dt.date | None = None
    min_kwh: Decimal | None = None
    max_kwh: Decimal | None = None
    min_current: Decimal | None = None
    max_current: Decimal | None = None
    min_power: Decimal | None = None
    max_power: Decimal | None = None
    min_duration: int | None = None
    max_duration: int | None = None
    days: frozenset[int] | None = None  # datetime.weekday() values
    reservation: str | None = None


@dataclass(frozen=True)
class _Element:
    components: dict[str, _Component]
    restrictions: _Restrictions


@dataclass(frozen=True)
class _Tariff:
    id: str
    currency: str
    elements: tuple[_Element, ...]
    min_price: dict[str, Decimal]
    max_price: dict[str, Decimal]


def _minute(text: str | None) -> int | None:
    if text is None:
        return None
    hours, minutes = text.split(":")
    return int(hours) * 60 + int(minutes)


def _parse_restrictions(raw: dict | None) -> _Restrictions:
    if not raw:
        return _Restrictions()
    numbers = {
        key: as_decimal(raw[key])
        for key in ("min_kwh", "max_kwh", "min_current", "max_current", "min_power", "max_power")
        if raw.get(key) is not None
    }
    end_minute = _minute(raw.get("end_time"))
    return _Restrictions(
        start_minute=_minute(raw.get("start_time")),
        end_minute=24 * 60 if end_minute == 0 else end_minute,
        start_date=dt.date.fromisoformat(raw["start_date"]) if raw.get("start_date") else None,
        end_date=dt.date.fromisoformat(raw["end_date"]) if raw.get("end_date") else None,
        min_duration=raw.get("min_duration"),
        max_duration=raw.get("max_duration"),
        days=frozenset(WEEKDAYS.index(day) for day in raw["day_of_week"]) if raw.get("day_of_week") else None,
        reservation=raw.get("reservation"),
        **numbers,
    )


def _read(tariff: Any, name: str) -> Any:
    return tariff.get(name) if isinstance(tariff, dict) else getattr(tariff, name, None)


def _parse_tariff(tariff: Any) -> _Tariff:
    """A `billing.models.Tariff` or an OCPI Tariff dict (as parsed from JSON), checked, with exact numbers."""
    elements = _read(tariff, "elements")
    check_tariff_elements(elements=elements)
    parsed = []
    for e_index, element in enumerate(elements):
        components: dict[str, _Component] = {}
        for c_index, raw in enumerate(element["price_components"]):
            components.setdefault(
                raw["type"],
                _Component(
                    type=raw["type"],
                    price=as_decimal(raw["price"]),
                    vat=as_decimal(raw["vat"]) if raw.get("vat") is not None else None,
                    step_size=raw["step_size"],
                    key=(e_index, c_index),
                ),
            )
        parsed.append(_Element(components, _parse_restrictions(element.get("restrictions"))))
    limits = {}
    for name in ("min_price", "max_price"):
        price = _read(tariff, name) or {}
        limits[name] = {part: as_decimal(value) for part, value in price.items() if value is not None}
    return _Tariff(
        id=str(_read(tariff, "id")),
        currency=_read(tariff, "currency"),
        elements=tuple(parsed),
        min_price=limits["min_price"],
        max_price=limits["max_price"],
    )


# --- Checking the usage
# -----------------------------------------------------------------------------------------


def _check_aware(name: str, value: Any) -> None:
    if not isinstance(value, dt.datetime) or value.utcoffset() is None:
        raise ValueError(f"{name} must be a timezone-aware datetime, got {value!r}")


def _check_decimal(name: str, value: Any, *, optional: bool = False) -> None:
    if value is None and optional:
        return
    if isinstance(value, bool) or not isinstance(value, (Decimal, int)):
        raise TypeError(f"{name} must be a Decimal (never a float), got {value!r}")


def _utc(value: Any) -> Any:
    if isinstance(value, dt.datetime) and value.utcoffset() is not None:
        return value.astimezone(UTC)
    return value


def _in_utc(usage: SessionUsage) -> SessionUsage:
    """The usage with every aware datetime in UTC. Python subtracts and compares two datetimes of the same
    zone by their wall clocks, which is wrong across a DST change; in UTC it is right."""
    reservation = usage.reservation
    if reservation is not None:
        reservation = replace(
            reservation,
            start_date_time=_utc(reservation.start_date_time),
            end_date_time=_utc(reservation.end_date_time),
        )
    return replace(
        usage,
        start_date_time=_utc(usage.start_date_time),
        end_date_time=_utc(usage.end_date_time),
        charging_end_date_time=_utc(usage.charging_end_date_time),
        samples=[replace(sample, timestamp=_utc(sample.timestamp)) for sample in usage.samples],
        reservation=reservation,
    )


def check_session_usage(*, usage: SessionUsage) -> None:
    """Raises ValueError/TypeError when the usage cannot be priced: naive datetimes, an end before the start,
    samples out of order or outside the session, energy that decreases, floats."""
    usage = _in_utc(usage)
    _check_aware("start_date_time", usage.start_date_time)
    _check_aware("end_date_time", usage.end_date_time)
    if usage.end_date_time < usage.start_date_time:
        raise ValueError("end_date_time is before start_date_time")
    try:
        ZoneInfo(usage.time_zone)
    except Exception as exc:
        raise ValueError(f"time_zone {usage.time_zone!r} is not an IANA time zone") from exc
    if usage.charging_end_date_time is not None:
        _check_aware("charging_end_date_time", usage.charging_end_date_time)
        if not usage.start_date_time <= usage.charging_end_date_time:
            raise ValueError("charging_end_date_time is before start_date_time")
    previous: MeterSample | None = None
    for index, sample in enumerate(usage.samples):
        name = f"samples[{index}]"
        _check_aware(f"{name}.timestamp", sample.timestamp)
        _check_decimal(f"{name}.energy_kwh", sample.energy_kwh)
        _check_decimal(f"{name}.power_kw", sample.power_kw, optional=True)
        _check_decimal(f"{name}.current_a", sample.current_a, optional=True)
        if not usage.start_date_time <= sample.timestamp <= usage.end_date_time:
            raise ValueError(f"{name} at {sample.timestamp.isoformat()} is outside the session")
        if sample.energy_kwh < 0:
            raise ValueError(f"{name}.energy_kwh is negative: energy is counted from the session start")
        if previous is not None:
            if sample.timestamp <= previous.timestamp:
                raise ValueError(f"{name} is not after the sample before it")
            if sample.energy_kwh < previous.energy_kwh:
                raise ValueError(f"{name}.energy_kwh decreases")
        previous = sample
    reservation = usage.reservation
    if reservation is not None:
        _check_aware("reservation.start_date_time", reservation.start_date_time)
        _check_aware("reservation.end_date_time", reservation.end_date_time)
        if reservation.end_date_time < reservation.start_date_time:
            raise ValueError("the reservation ends before it starts")
        if reservation.end_date_time > usage.start_date_time:
            raise ValueError("the reservation ends after the charging session started")
        if reservation.without_charging and (usage.end_date_time != usage.start_date_time or usage.samples):
            raise ValueError("an expired or cancelled reservation has no charging session: start == end, no samples")


# --- Cutting a phase into pieces
# --------------------------------------------------------------------------------


@dataclass(frozen=True)
class _Stretch:
    """A stretch between two meter samples (or the session edges) where power, current and kind are constant
    and energy is linear."""

    start: int  # microseconds since the phase origin
    end: int
    energy_start: Decimal
    energy_end: Decimal
    power: Decimal
    current: Decimal | None
    kind: str


@dataclass
class _Piece:
    start: int
    end: int
    energy_start: Decimal
    energy_end: Decimal
    power: Decimal
    current: Decimal | None
    kind: str
    active: dict[str, _Component] = field(default_factory=dict)

    @property
    def key(self) -> tuple:
        return (
            self.kind,
            tuple(self.active[d].key if d in self.active else None for d in DIMENSIONS[self.kind]),
        )


@dataclass
class _Period:
    pieces: list[_Piece]

    @property
    def first(self) -> _Piece:
        return self.pieces[0]

    @property
    def kind(self) -> str:
        return self.first.kind

    @property
    def active(self) -> dict[str, _Component]:
        return self.first.active

    @property
    def duration(self) -> int:
        return self.pieces[-1].end - self.first.start

    @property
    def energy(self) -> Decimal:
        return self.pieces[-1].energy_end - self.first.energy_start


def _us(delta: dt.timedelta) -> int:
    return delta // dt.timedelta(microseconds=1)


def _stretches(usage: SessionUsage, end: int) -> list[_Stretch]:
    origin = usage.start_date_time
    charging_end = None if usage.charging_end_date_time is None else _us(usage.charging_end_date_time - origin)
    points: list[tuple[int, Decimal, MeterSample | None]] = [(0, ZERO, None)]
    for sample in usage.samples:
        t = _us(sample.timestamp - origin)
        if t == 0:
            points[0] = (0, Decimal(sample.energy_kwh), sample)
        else:
            points.append((t, Decimal(sample.energy_kwh), sample))
    if points[-1][0] < end or end == 0:
        points.append((end, points[-1][1], None))
    stretches = []
    for (a, e_a, sample), (b, e_b, _) in zip(points, points[1:], strict=False):
        if sample is not None and sample.power_kw is not None:
            power = Decimal(sample.power_kw)
        else:
            power = (e_b - e_a) * US_PER_HOUR / (b - a) if b > a else ZERO
        current = None if sample is None or sample.current_a is None else Decimal(sample.current_a)
        charging = sample is None or sample.charging
        if charging_end is not None and a < charging_end < b:
            e_c = _interpolate(a, e_a, b, e_b, charging_end)
            pieces = [(a, charging_end, e_a, e_c, charging), (charging_end, b, e_c, e_b, False)]
        else:
            pieces = [(a, b, e_a, e_b, charging and (charging_end is None or a < charging_end or a == b == 0))]
        for x, y, e_x, e_y, is_charging in pieces:
            if is_charging:
                stretches.append(_Stretch(x, y, e_x, e_y, power, current, CHARGING))
            else:
                stretches.append(_Stretch(x, y, e_x, e_y, ZERO, ZERO, PARKING))
    return stretches


def _interpolate(a: int, e_a: Decimal, b: int, e_b: Decimal, t: int) -> Decimal:
    if t <= a or e_a == e_b:
        return e_a
    if t >= b:
        return e_b
    return (e_a + (e_b - e_a) * (t - a) / (b - a)).quantize(ENERGY_RESOLUTION, ROUND_HALF_EVEN)


def _offset_changes(zone: ZoneInfo, start: dt.datetime, end: dt.datetime) -> list[dt.datetime]:
    """UTC instants in [start - 1 day, end + 1 day] where the zone's UTC offset changes (DST), to the
    second."""
    changes = []
    t = start - dt.timedelta(days=1)
    limit = end + dt.timedelta(days=1)
    while t < limit:
        nxt = min(t + dt.timedelta(days=1), limit)
        if t.astimezone(zone).utcoffset() != nxt.astimezone(zone).utcoffset():
            low, high = t, nxt
            while high - low > dt.timedelta(seconds=1):
                mid = low + (high - low) / 2
                if mid.astimezone(zone).utcoffset() == low.astimezone(zone).utcoffset():
                    low = mid
                else:
                    high = mid
            changes.append(high)
        t = nxt
    return changes


def _breakpoints(
    tariff: _Tariff,
    elements: Sequence[_Element],
    origin: dt.datetime,
    end: int,
    zone: ZoneInfo,
    stretches: list[_Stretch],
) -> tuple[set[int], dict[int, Decimal]]:
    """Every instant in (0, end) where a restriction of `elements` may change its verdict, and the exact
    energy at the instants where the energy crosses a min_kwh/max_kwh."""
    points: set[int] = {s.start for s in stretches} | {s.end for s in stretches}
    minutes = {0}
    energy_levels: set[Decimal] = set()
    for element in elements:
        r = element.restrictions
        minutes |= {m % (24 * 60) for m in (r.start_minute, r.end_minute) if m is not None}
        points |= {seconds * US_PER_SECOND for seconds in (r.min_duration, r.max_duration) if seconds is not None}
        energy_levels |= {level for level in (r.min_kwh, r.max_kwh) if level is not None}
    end_at = origin + dt.timedelta(microseconds=end)
    day = origin.astimezone(zone).date() - dt.timedelta(days=1)
    last_day = end_at.astimezone(zone).date() + dt.timedelta(days=1)
    while day <= last_day:
        for minute in minutes:
            for fold in (0, 1):
                local = dt.datetime.combine(day, dt.time(minute // 60, minute % 60, fold=fold), tzinfo=zone)
                points.add(_us(local.astimezone(UTC) - origin))
        day += dt.timedelta(days=1)
    points |= {_us(change - origin) for change in _offset_changes(zone, origin, end_at)}
    exact_energy: dict[int, Decimal] = {}
    for s in stretches:
        for level in energy_levels:
            if s.energy_start < level < s.energy_end:
                offset = (level - s.energy_start) * (s.end - s.start) / (s.energy_end - s.energy_start)
                t = s.start + int(offset.to_integral_value(ROUND_HALF_EVEN))
                if s.start < t < s.end:
                    points.add(t)
                    exact_energy[t] = level
    return {p for p in points if 0 < p < end}, exact_energy


def _holds(r: _Restrictions, piece: _Piece, origin: dt.datetime, zone: ZoneInfo) -> bool:
    """Whether all restrictions hold inside `piece` (checked at its middle; nothing changes inside a
    piece)."""
    middle = piece.start + (piece.end - piece.start) // 2
    local = (origin + dt.timedelta(microseconds=middle)).astimezone(zone)
    if r.start_minute is not None or r.end_minute is not None:
        minute = (
            local.hour * 60
            + local.minute
            + Decimal(local.second * US_PER_SECOND + local.microsecond) / (60 * US_PER_SECOND)
        )
        start = 0 if r.start_minute is None else r.start_minute
        stop = 24 * 60 if r.end_minute is None else r.end_minute
        if start < stop:
            inside = start <= minute < stop
        elif start > stop:
            inside = minute >= start or minute < stop
        else:
            inside = True
        if not inside:
            return False
    if r.start_date is not None and local.date() < r.start_date:
        return False
    if r.end_date is not None and local.date() >= r.end_date:
        return False
    if r.days is not None and local.weekday() not in r.days:
        return False
    if r.min_duration is not None and middle < r.min_duration * US_PER_SECOND:
        return False
    if r.max_duration is not None and middle >= r.max_duration * US_PER_SECOND:
        return False
    energy = (piece.energy_start + piece.energy_end) / 2
    if r.min_kwh is not None and energy < r.min_kwh:
        return False
    if r.max_kwh is not None and energy >= r.max_kwh:
        return False
    if r.min_power is not None and piece.power < r.min_power:
        return False
    if r.max_power is not None and piece.power >= r.max_power:
        return False
    if r.min_current is not None and (piece.current is None or piece.current < r.min_current):
        return False
    if r.max_current is not None and (piece.current is None or piece.current >= r.max_current):
        return False
    return True


def _pieces(
    tariff: _Tariff,
    elements: Sequence[_Element],
    origin: dt.datetime,
    end: int,
    zone: ZoneInfo,
    stretches: list[_Stretch],
) -> list[_Piece]:
    points, exact_energy = _breakpoints(tariff, elements, origin, end, zone, stretches)
    ordered = sorted(points)
    pieces = []
    for s in stretches:
        inside = ordered[bisect_right(ordered, s.start) : bisect_left(ordered, s.end)]
        cuts = [s.start, *inside, s.end]
        for a, b in zip(cuts, cuts[1:], strict=False):
            e_a = (
                exact_energy[a] if a in exact_energy else _interpolate(s.start, s.energy_start, s.end, s.energy_end, a)
            )
            e_b = (
                exact_energy[b] if b in exact_energy else _interpolate(s.start, s.energy_start, s.end, s.energy_end, b)
            )
            piece = _Piece(a, b, e_a, e_b, s.power, s.current, s.kind)
            for dimension in DIMENSIONS[s.kind]:
                for element in elements:
                    if dimension in element.components and _holds(element.restrictions, piece, origin, zone):
                        piece.active[dimension] = element.components[dimension]
                        break
            pieces.append(piece)
    return pieces


def _periods(pieces: list[_Piece]) -> list[_Period]:
    periods: list[_Period] = []
    for piece in pieces:
        if periods and periods[-1].pieces[-1].key == piece.key:
            periods[-1].pieces.append(piece)
        else:
            periods.append(_Period([piece]))
    return periods


# --- Costs
# ------------------------------------------------------------------------------------------------------


def _round_up(quantity: Decimal | int, step: int) -> Decimal | int:
    """The smallest multiple of `step` that is >= quantity ("Consumed amounts are rounded up to the smallest
    multiple of step_size that is greater than the consumed amount"); step 0: no rounding."""
    if step <= 0:
        return quantity
    return (Decimal(quantity) / step).to_integral_value(ROUND_CEILING) * step


@dataclass
class _PhaseCost:
    fixed: Price = FREE
    energy: Price = FREE
    time: Price = FREE
    parking: Price = FREE


def _phase_cost(periods: list[_Period]) -> _PhaseCost:
    cost = _PhaseCost()
    # FLAT: once, from the first period where a FLAT component is active.
    for period in periods:
        if FLAT in period.active:
            cost.fixed = period.active[FLAT].cost(Decimal(1))
            break
    # ENERGY: billable energy rounded up once, on the step of the last billed period; the extra at its price.
    billed = [p for p in periods if ENERGY in p.active and p.energy > 0]
    if billed:
        last = billed[-1]
        total_wh = sum((p.energy for p in billed), ZERO) * 1000
        extra_kwh = (Decimal(_round_up(total_wh, last.active[ENERGY].step_size)) - total_wh) / 1000
        for period in billed:
            quantity = period.energy + (extra_kwh if period is last else ZERO)
            cost.energy += period.active[ENERGY].cost(quantity)
    # TIME and PARKING_TIME: rounded once, combined: parking when parking was billed, else charging time.
    timed = [(p, TIME if p.kind in (CHARGING, RESERVING) else PARKING_TIME) for p in periods if p.duration > 0]
    timed = [(p, d) for p, d in timed if d in p.active]
    if timed:
        parked = [(p, d) for p, d in timed if d == PARKING_TIME]
        last, last_dimension = parked[-1] if parked else timed[-1]
        total = sum(p.duration for p, d in timed if d == last_dimension)
        extra = int(_round_up(total, last.active[last_dimension].step_size * US_PER_SECOND)) - total
        # Summed as price x microseconds and divided once per dimension, so equal time costs the same however
        # many periods it is split into (one division, one rounding at the working precision).
        scaled = {TIME: FREE, PARKING_TIME: FREE}
        for period, dimension in timed:
            duration = period.duration + (extra if period is last else 0)
            scaled[dimension] += period.active[dimension].cost(Decimal(duration))
        cost.time = scaled[TIME].divided(US_PER_HOUR)
        cost.parking = scaled[PARKING_TIME].divided(US_PER_HOUR)
    return cost


def _money(amount: Decimal) -> Decimal:
    return amount.quantize(CENT, ROUND_HALF_UP)


def _quantity(amount: Decimal) -> Decimal:
    return amount.quantize(QUANTITY, ROUND_HALF_UP)


def _vat_factor(total: Price, tariff: _Tariff) -> Decimal:
    """incl_vat / excl_vat of this session (of the tariff's highest VAT when the session cost nothing)."""
    if total.excl_vat:
        return total.incl_vat / total.excl_vat
    rates = [c.vat for e in tariff.elements for c in e.components.values() if c.vat is not None]
    return 1 + max(rates, default=Decimal(0)) / 100


def _both_parts(bound: dict[str, Decimal], factor: Decimal) -> dict[str, Decimal]:
    """A bound given with one part only gets the other at the session's VAT, so that clamping one part moves the
    other with it and incl_vat never ends below excl_vat."""
    if "excl_vat" in bound and "incl_vat" not in bound:
        return {**bound, "incl_vat": bound["excl_vat"] * factor}
    if "incl_vat" in bound and "excl_vat" not in bound:
        return {**bound, "excl_vat": bound["incl_vat"] / factor}
    return bound


def _clamp(total: Price, tariff: _Tariff) -> Price:
    """min_price and max_price, each on excl. and incl. VAT separately ("So as a rule, they both apply"); a bound
    given with only one part applies to the other at the session's VAT."""
    factor = _vat_factor(total, tariff)
    min_price, max_price = _both_parts(tariff.min_price, factor), _both_parts(tariff.max_price, factor)
    parts = {"excl_vat": total.excl_vat, "incl_vat": total.incl_vat}
    for part in parts:
        if part in min_price:
            parts[part] = max(parts[part], min_price[part])
        if part in max_price:
            parts[part] = min(parts[part], max_price[part])
    return Price(**parts)


def _ocpi_periods(
    periods: list[_Period], origin: dt.datetime, tariff: _Tariff, elements: Sequence[_Element]
) -> list[dict]:
    watch_power = any(e.restrictions.min_power is not None or e.restrictions.max_power is not None for e in elements)
    watch_current = any(
        e.restrictions.min_current is not None or e.restrictions.max_current is not None for e in elements
    )
    result = []
    for period in periods:
        hours = _quantity(Decimal(period.duration) / US_PER_HOUR)
        dimensions = []
        if period.kind == RESERVING:
            dimensions.append({"type": CdrDimensionType.RESERVATION_TIME.value, "volume": hours})
        else:
            if period.kind == CHARGING or period.energy:
                dimensions.append({"type": CdrDimensionType.ENERGY.value, "volume": _quantity(period.energy)})
            kind = CdrDimensionType.TIME if period.kind == CHARGING else CdrDimensionType.PARKING_TIME
            dimensions.append({"type": kind.value, "volume": hours})
            if watch_power:
                powers = [p.power for p in period.pieces]
                dimensions += [
                    {"type": CdrDimensionType.MIN_POWER.value, "volume": _quantity(min(powers))},
                    {"type": CdrDimensionType.MAX_POWER.value, "volume": _quantity(max(powers))},
                ]
            currents = [p.current for p in period.pieces]
            if watch_current and None not in currents:
                dimensions += [
                    {"type": CdrDimensionType.MIN_CURRENT.value, "volume": _quantity(min(currents))},
                    {"type": CdrDimensionType.MAX_CURRENT.value, "volume": _quantity(max(currents))},
                ]
        result.append(
            {
                "start_date_time": (origin + dt.timedelta(microseconds=period.first.start)).astimezone(UTC),
                "dimensions": dimensions,
                "tariff_id": tariff.id,
            }
        )
    return result


def _reservation_elements(tariff: _Tariff, expired: bool) -> list[_Element]:
    reserved = [e for e in tariff.elements if e.restrictions.reservation == ReservationRestrictionType.RESERVATION]
    if not expired:
        return reserved
    expiring = [
        e for e in tariff.elements if e.restrictions.reservation == ReservationRestrictionType.RESERVATION_EXPIRES
    ]
    return expiring + reserved


def price_session(*, tariff: Any, usage: SessionUsage) -> PricedSession:
    """Price `usage` with `tariff` (a `billing.models.Tariff` or an OCPI Tariff dict) per OCPI 2.2.1; see the
    module docstring for the rules and the interpretations. Raises ValidationError for a bad tariff and
    ValueError/TypeError for unusable usage."""
    parsed = _parse_tariff(tariff)
    usage = _in_utc(usage)
    check_session_usage(usage=usage)
    zone = ZoneInfo(usage.time_zone)
    with localcontext() as context:
        context.prec = PRECISION
        charging_periods: list[dict] = []
        reservation_cost = FREE
        if usage.reservation is not None:
            reservation = usage.reservation
            elements = _reservation_elements(parsed, reservation.expired)
            end = _us(reservation.end_date_time - reservation.start_date_time)
            stretch = _Stretch(0, end, ZERO, ZERO, ZERO, ZERO, RESERVING)
            periods = _periods(_pieces(parsed, elements, reservation.start_date_time, end, zone, [stretch]))
            phase = _phase_cost(periods)
            reservation_cost = phase.fixed + phase.time
            charging_periods += _ocpi_periods(periods, reservation.start_date_time, parsed, elements)
        session = _PhaseCost()
        total_energy = ZERO
        parking_us = 0
        session_us = _us(usage.end_date_time - usage.start_date_time)
        if usage.reservation is None or not usage.reservation.without_charging:
            elements = [e for e in parsed.elements if e.restrictions.reservation is None]
            stretches = _stretches(usage, session_us)
            periods = _periods(_pieces(parsed, elements, usage.start_date_time, session_us, zone, stretches))
            session = _phase_cost(periods)
            charging_periods += _ocpi_periods(periods, usage.start_date_time, parsed, elements)
            total_energy = stretches[-1].energy_end
            parking_us = sum(s.end - s.start for s in stretches if s.kind == PARKING)
        before_limits = session.fixed + session.energy + session.time + session.parking + reservation_cost
        total = _clamp(before_limits, parsed)
        exact = ExactCosts(
            fixed=session.fixed,
            energy=session.energy,
            time=session.time,
            parking=session.parking,
            reservation=reservation_cost,
            before_limits=before_limits,
            total=total,
        )
        return PricedSession(
            tariff_id=parsed.id,
            currency=parsed.currency,
            charging_periods=charging_periods,
            total_cost=total.rounded(),
            total_fixed_cost=session.fixed.rounded(),
            total_energy_cost=session.energy.rounded(),
            total_time_cost=session.time.rounded(),
            total_parking_cost=session.parking.rounded(),
            total_reservation_cost=reservation_cost.rounded(),
            total_energy=_quantity(total_energy),
            total_time=_quantity(Decimal(session_us) / US_PER_HOUR),
            total_parking_time=_quantity(Decimal(parking_us) / US_PER_HOUR),
            exact=exact,
        )
