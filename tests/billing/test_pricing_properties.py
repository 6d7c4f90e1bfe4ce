"""Properties of the pricing engine over generated tariffs and sessions (hypothesis)."""

import datetime as dt
from decimal import Decimal as D
from decimal import localcontext
from zoneinfo import ZoneInfo

from django.core.exceptions import ValidationError
from hypothesis import assume, given, settings
from hypothesis import strategies as st

from billing.checks import check_tariff_elements
from billing.pricing import FREE, PRECISION, MeterSample, SessionUsage, price_session

TZ = "Europe/Amsterdam"
# Around the spring and autumn DST changes, and an ordinary week.
# Instants are generated in UTC (adding minutes to a local wall clock is not adding elapsed time across DST).
BASES = [
    dt.datetime(2024, 3, 30, 20, tzinfo=ZoneInfo(TZ)).astimezone(dt.UTC),
    dt.datetime(2024, 10, 26, 20, tzinfo=ZoneInfo(TZ)).astimezone(dt.UTC),
    dt.datetime(2024, 1, 15, 6, tzinfo=ZoneInfo(TZ)).astimezone(dt.UTC),
]

money = st.decimals(min_value=0, max_value=5, places=2)
vat = st.one_of(st.none(), st.sampled_from([D("0"), D("5.2"), D("9"), D("20.0"), D("21")]))
steps = {
    "ENERGY": [0, 1, 100, 500],
    "FLAT": [0, 1],
    "TIME": [0, 1, 60, 300, 900],
    "PARKING_TIME": [0, 1, 300, 900],
}
hhmm = st.sampled_from(["00:00", "02:30", "06:00", "09:00", "12:15", "17:00", "20:00", "23:59"])


@st.composite
def components(draw, kinds=("ENERGY", "FLAT", "TIME", "PARKING_TIME"), step_choices=steps):
    chosen = draw(st.lists(st.sampled_from(kinds), min_size=1, max_size=len(kinds), unique=True))
    result = []
    for kind in chosen:
        c = {"type": kind, "price": draw(money), "step_size": draw(st.sampled_from(step_choices[kind]))}
        v = draw(vat)
        if v is not None:
            c["vat"] = v
        result.append(c)
    return result


@st.composite
def restrictions(draw):
    r = {}
    if draw(st.booleans()):
        r["start_time"] = draw(hhmm)
    if draw(st.booleans()):
        r["end_time"] = draw(hhmm)
    if draw(st.booleans()):
        r["day_of_week"] = draw(
            st.lists(
                st.sampled_from(["MONDAY", "SATURDAY", "SUNDAY", "TUESDAY"]),
                min_size=1,
                max_size=3,
                unique=True,
            )
        )
    for name, values in (
        ("kwh", [0, 5, 10, 20, 40]),
        ("power", [0, 7, 11, 22, 50]),
        ("current", [0, 16, 32]),
        ("duration", [0, 600, 1800, 3600, 7200]),
    ):
        if draw(st.booleans()):
            low, high = sorted(draw(st.lists(st.sampled_from(values), min_size=2, max_size=2, unique=True)))
            if draw(st.booleans()):
                r[f"min_{name}"] = low
            else:
                r[f"max_{name}"] = high
    return r


@st.composite
def any_tariff(draw):
    elements = []
    for _ in range(draw(st.integers(1, 4))):
        element = {"price_components": draw(components())}
        if draw(st.booleans()):
            element["restrictions"] = draw(restrictions())
        elements.append(element)
    tariff = {"id": "P", "currency": "EUR", "elements": elements}
    if draw(st.booleans()):
        low, high = sorted(draw(st.lists(st.decimals(0, 60, places=2), min_size=2, max_size=2)))
        if draw(st.booleans()):
            tariff["min_price"] = {"excl_vat": low, "incl_vat": low * D("1.1")}
        if draw(st.booleans()):
            tariff["max_price"] = {"excl_vat": high, "incl_vat": high * D("1.2")}
    try:
        check_tariff_elements(elements=elements)
    except ValidationError:
        assume(False)
    return tariff


@st.composite
def usage(draw, with_power=True):
    start = draw(st.sampled_from(BASES)) + dt.timedelta(minutes=draw(st.integers(0, 600)))
    t, energy, samples = start, D(0), []
    for _ in range(draw(st.integers(0, 6))):
        t += dt.timedelta(seconds=draw(st.integers(1, 7200)))
        energy += draw(st.decimals(0, 30, places=3))
        samples.append(
            MeterSample(
                t,
                energy,
                power_kw=draw(st.one_of(st.none(), st.decimals(0, 60, places=1))) if with_power else None,
                current_a=draw(st.one_of(st.none(), st.decimals(0, 64, places=1))) if with_power else None,
                charging=draw(st.sampled_from([True, True, True, False])),
            )
        )
    charging_end = None
    if draw(st.booleans()):
        charging_end = t + dt.timedelta(seconds=draw(st.integers(0, 3600)))
    end = max(t, charging_end or t) + dt.timedelta(seconds=draw(st.integers(0, 7200)))
    return SessionUsage(
        start_date_time=start,
        end_date_time=end,
        time_zone=TZ,
        samples=samples,
        charging_end_date_time=charging_end,
    )


def prices(priced):
    return [
        priced.total_cost,
        priced.total_fixed_cost,
        priced.total_energy_cost,
        priced.total_time_cost,
        priced.total_parking_cost,
        priced.total_reservation_cost,
    ]


@settings(max_examples=300, deadline=None)
@given(any_tariff(), usage())
def test_no_cost_is_ever_negative(tariff, usage):
    priced = price_session(tariff=tariff, usage=usage)
    for price in prices(priced):
        assert price.excl_vat >= 0 and price.incl_vat >= 0
        assert price.incl_vat >= price.excl_vat  # VAT is never negative


@settings(max_examples=300, deadline=None)
@given(any_tariff(), usage())
def test_min_and_max_price_are_respected_on_both_sides_of_vat(tariff, usage):
    total = price_session(tariff=tariff, usage=usage).total_cost
    for part in ("excl_vat", "incl_vat"):
        if "min_price" in tariff:
            assert getattr(total, part) >= tariff["min_price"][part].quantize(D("0.01"))
        if "max_price" in tariff:
            assert getattr(total, part) <= tariff["max_price"][part].quantize(D("0.01"))


@settings(max_examples=300, deadline=None)
@given(any_tariff(), usage())
def test_dimension_costs_add_up_to_the_total_before_clamping(tariff, usage):
    priced = price_session(tariff=tariff, usage=usage)
    exact = priced.exact
    dimensions = [exact.fixed, exact.energy, exact.time, exact.parking, exact.reservation]
    with localcontext() as context:
        context.prec = PRECISION
        assert sum(dimensions, FREE) == exact.before_limits
    if "min_price" not in tariff and "max_price" not in tariff:
        assert priced.total_cost == exact.before_limits.rounded()
        rounded = sum(prices(priced)[1:], FREE)
        assert abs(rounded.excl_vat - priced.total_cost.excl_vat) <= D("0.02")  # one rounding per dimension


@settings(max_examples=300, deadline=None)
@given(any_tariff(), usage())
def test_charging_periods_account_for_all_time_and_energy(tariff, usage):
    priced = price_session(tariff=tariff, usage=usage)
    volumes = {}
    for period in priced.charging_periods:
        for dim in period["dimensions"]:
            volumes[dim["type"]] = volumes.get(dim["type"], D(0)) + dim["volume"]
    slack = D("0.0001") * len(priced.charging_periods)
    assert abs(volumes.get("TIME", 0) + volumes.get("PARKING_TIME", 0) - priced.total_time) <= slack
    assert abs(volumes.get("PARKING_TIME", 0) - priced.total_parking_time) <= slack
    assert abs(volumes.get("ENERGY", 0) - priced.total_energy) <= slack
    starts = [p["start_date_time"] for p in priced.charging_periods]
    assert starts == sorted(starts) and len(set(starts)) == len(starts)
    assert starts[0] == usage.start_date_time


@st.composite
def non_decreasing_tariff(draw):
    """One unrestricted element: every dimension has one price for the whole session. When both time
    dimensions are priced, a minute of parking's step costs at least what a step of charging time does
    (otherwise the spec's rule, which rounds only the last time dimension, makes stopping to charge cheaper
    than continuing)."""
    cs = draw(components())
    kinds = {c["type"]: c for c in cs}
    if "TIME" in kinds and "PARKING_TIME" in kinds:
        t, p = kinds["TIME"], kinds["PARKING_TIME"]
        assume(
            p["price"] * max(p["step_size"], 1) >= t["price"] * max(t["step_size"], 1)
            and p.get("vat", 0) >= t.get("vat", 0)
        )
        assume(t["step_size"] == 0 or p["step_size"] != 0)
    return {"id": "M", "currency": "EUR", "elements": [{"price_components": cs}]}


@settings(max_examples=300, deadline=None)
@given(non_decreasing_tariff(), usage(), st.decimals(1, 3, places=2))
def test_more_energy_never_costs_less(tariff, usage, factor):
    more = SessionUsage(
        start_date_time=usage.start_date_time,
        end_date_time=usage.end_date_time,
        time_zone=usage.time_zone,
        charging_end_date_time=usage.charging_end_date_time,
        samples=[
            MeterSample(s.timestamp, s.energy_kwh * factor, s.power_kw, s.current_a, s.charging) for s in usage.samples
        ],
    )
    base, bigger = price_session(tariff=tariff, usage=usage), price_session(tariff=tariff, usage=more)
    assert bigger.exact.total.excl_vat >= base.exact.total.excl_vat
    assert bigger.exact.total.incl_vat >= base.exact.total.incl_vat


@settings(max_examples=300, deadline=None)
@given(non_decreasing_tariff(), usage())
def test_a_running_session_never_costs_more_later_on(tariff, usage):
    """Priced at every sample and at the end, as the Session PATCHes and the CDR would be: the cost only
    grows."""
    ends = [s.timestamp for s in usage.samples] + [usage.end_date_time]
    previous = None
    for end in ends:
        charging_end = usage.charging_end_date_time
        running = SessionUsage(
            start_date_time=usage.start_date_time,
            end_date_time=end,
            time_zone=usage.time_zone,
            samples=[s for s in usage.samples if s.timestamp <= end],
            charging_end_date_time=charging_end if charging_end is not None and charging_end <= end else None,
        )
        total = price_session(tariff=tariff, usage=running).exact.total
        if previous is not None:
            assert total.excl_vat >= previous.excl_vat
            assert total.incl_vat >= previous.incl_vat
        previous = total


@settings(max_examples=200, deadline=None)
@given(any_tariff(), usage(with_power=False), st.data())
def test_a_sample_on_the_straight_line_between_two_others_changes_nothing(tariff, usage, data):
    assume(len(usage.samples) >= 2)
    i = data.draw(st.integers(0, len(usage.samples) - 2))
    a, b = usage.samples[i], usage.samples[i + 1]
    assume(a.charging and (b.timestamp - a.timestamp).total_seconds() >= 2)
    middle = MeterSample(a.timestamp + (b.timestamp - a.timestamp) / 2, (a.energy_kwh + b.energy_kwh) / 2)
    midway = (b.timestamp - a.timestamp) / 2
    assume(midway.microseconds == 0 or midway.microseconds % 2 == 0)
    denser = SessionUsage(
        start_date_time=usage.start_date_time,
        end_date_time=usage.end_date_time,
        time_zone=usage.time_zone,
        charging_end_date_time=usage.charging_end_date_time,
        samples=[*usage.samples[: i + 1], middle, *usage.samples[i + 1 :]],
    )
    assert (
        price_session(tariff=tariff, usage=denser).exact.total == price_session(tariff=tariff, usage=usage).exact.total
    )
