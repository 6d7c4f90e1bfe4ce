"""Gold tests: every tariff example of OCPI 2.2.1 with a stated total (README of the examples folder), priced
on the scenario mod_tariffs.asciidoc describes next to it, plus the step_size worked cases of mod_tariffs and
mod_cdrs. Expected figures are the spec's; where the spec gives only excl. VAT, incl. VAT is derived from its
VAT rates and noted."""

import datetime as dt
from decimal import Decimal as D

import pytest

from billing.pricing import MeterSample, Price, ReservationUsage, SessionUsage, price_session
from tests.billing.examples import example

TZ = "Europe/Berlin"  # the examples' party is German; the spec gives local times only


def at(text: str) -> dt.datetime:
    """A local time in TZ, e.g. "2024-01-15 09:30"."""
    from zoneinfo import ZoneInfo

    return dt.datetime.fromisoformat(text).replace(tzinfo=ZoneInfo(TZ))


def minutes(start: dt.datetime, n: float) -> dt.datetime:
    return start + dt.timedelta(minutes=n)


def energy_session(kwh: str, *, start="2024-01-15 10:00", charge_minutes=120, park_minutes=0, **kwargs):
    begin = at(start)
    charged = minutes(begin, charge_minutes)
    return SessionUsage(
        start_date_time=begin,
        end_date_time=minutes(charged, park_minutes),
        time_zone=TZ,
        samples=[MeterSample(begin, D(0)), MeterSample(charged, D(kwh))],
        charging_end_date_time=charged if park_minutes else None,
        **kwargs,
    )


def time_session(charge_minutes, park_minutes=0, *, start="2024-01-15 10:00", current=None, kwh="10"):
    begin = at(start)
    charged = minutes(begin, charge_minutes)
    return SessionUsage(
        start_date_time=begin,
        end_date_time=minutes(charged, park_minutes),
        time_zone=TZ,
        samples=[
            MeterSample(begin, D(0), current_a=current),
            MeterSample(charged, D(kwh), current_a=current),
        ],
        charging_end_date_time=charged if park_minutes else None,
    )


def price(excl: str, incl: str) -> Price:
    return Price(D(excl), D(incl))


def test_tariff_8_simple_025_per_kwh_20_kwh():
    priced = price_session(tariff=example("tariff_8_simple_025kwh.json"), usage=energy_session("20"))
    assert priced.total_cost == price("5.00", "5.50")
    assert priced.total_energy_cost == price("5.00", "5.50")
    assert priced.total_energy == D(20)


def test_tariff_9_start_fee_and_energy_20_kwh():
    priced = price_session(tariff=example("tariff_9_025kwh_start.json"), usage=energy_session("20"))
    assert priced.total_cost == price("5.50", "6.10")
    assert priced.total_fixed_cost == price("0.50", "0.60")
    assert priced.total_energy_cost == price("5.00", "5.50")


@pytest.mark.parametrize(
    "kwh, total",
    [("20", price("5.00", "5.50")), ("1.5", price("0.50", "0.55")), ("0", price("0.50", "0.55"))],
)
def test_tariff_12_min_price(kwh, total):
    priced = price_session(tariff=example("tariff_12_025kwh_min_price.json"), usage=energy_session(kwh))
    assert priced.total_cost == total


def test_tariff_12_min_price_leaves_the_energy_cost_as_computed():
    priced = price_session(tariff=example("tariff_12_025kwh_min_price.json"), usage=energy_session("1.5"))
    assert priced.total_energy_cost == price("0.38", "0.41")  # 0.375 and 0.4125


def test_tariff_10_energy_start_fee_and_40_minutes_parking_billed_as_45():
    usage = energy_session("20", park_minutes=40)
    priced = price_session(tariff=example("tariff_10_025kwh_parking_start.json"), usage=usage)
    assert priced.total_cost == price("7.00", "7.90")
    assert priced.total_parking_cost == price("1.50", "1.80")
    assert priced.total_parking_time == D("0.6667")


@pytest.mark.parametrize("kwh, total", [("50", price("10.00", "11.00")), ("30", price("8.00", "8.85"))])
def test_tariff_6_max_price(kwh, total):
    usage = energy_session(kwh, start="2019-05-06 10:00")  # before the tariff's end date
    priced = price_session(tariff=example("tariff_6_025kwh_start_max_price.json"), usage=usage)
    assert priced.total_cost == total


def test_tariff_6_max_price_is_applied_after_the_dimensions_are_added():
    usage = energy_session("50", start="2019-05-06 10:00")
    priced = price_session(tariff=example("tariff_6_025kwh_start_max_price.json"), usage=usage)
    assert priced.exact.before_limits == Price(D("13.00"), D("14.35"))


def test_tariff_1_two_euro_per_hour_for_2_5_hours():
    priced = price_session(tariff=example("tariff_1_simple_2hour.json"), usage=time_session(150))
    assert priced.total_cost == price("5.00", "5.50")
    assert priced.total_time_cost == price("5.00", "5.50")
    assert priced.total_time == D("2.5")


def test_tariff_13_three_euro_per_hour_and_parking_42_minutes_billed_as_45():
    priced = price_session(tariff=example("tariff_13_simple_3hour_5parking.json"), usage=time_session(150, 42))
    assert priced.total_cost == price("11.25", "12.75")
    assert priced.total_time_cost == price("7.50", "8.25")
    assert priced.total_parking_cost == price("3.75", "4.50")


def test_tariff_2_alt_text_1_90_per_hour_for_2_5_hours():
    priced = price_session(tariff=example("tariff_2_alt_text.json"), usage=time_session(150))
    assert priced.total_cost == price("4.75", "5.00")


def test_tariff_3_20_45_kwh_billed_as_20_5_by_step_size():
    priced = price_session(tariff=example("tariff_3_alt_url.json"), usage=energy_session("20.45"))
    assert priced.total_fixed_cost == price("0.50", "0.60")
    assert priced.total_energy_cost == price("5.13", "5.64")
    assert priced.total_cost == price("5.63", "6.24")
    assert priced.total_energy == D("20.45")  # measured, not billed


def test_tariff_4_complex_on_a_monday_165_minutes_at_16_a_and_42_minutes_parking():
    usage = time_session(165, 42, start="2024-01-15 09:30", current=D(16))
    priced = price_session(tariff=example("tariff_4_complex.json"), usage=usage)
    assert priced.total_cost == price("9.00", "10.30")  # 2.875 + 3.30 + 4.125, rounded once
    assert priced.total_fixed_cost == price("2.50", "2.88")
    assert priced.total_time_cost == price("2.75", "3.30")
    assert priced.total_parking_cost == price("3.75", "4.13")
    assert priced.exact.total == Price(D("9.00"), D("10.300"))


def test_tariff_15_reservation_15_minutes_before_charging_20_kwh():
    usage = energy_session("20", reservation=ReservationUsage(at("2024-01-15 09:45"), at("2024-01-15 10:00")))
    priced = price_session(tariff=example("tariff_15_reservation_5_euro_per_hour.json"), usage=usage)
    assert priced.total_cost == price("6.75", "7.60")
    assert priced.total_reservation_cost == price("1.25", "1.50")
    assert priced.total_time_cost == price("0.00", "0.00")  # the RESERVATION TIME element is not charging time
    assert priced.charging_periods[0]["dimensions"] == [{"type": "RESERVATION_TIME", "volume": D("0.25")}]


def test_tariff_15_without_a_reservation_the_reservation_element_does_not_apply():
    priced = price_session(tariff=example("tariff_15_reservation_5_euro_per_hour.json"), usage=energy_session("20"))
    assert priced.total_cost == price("5.50", "6.10")


def test_tariff_16_reservation_fee_and_13_minutes_billed_as_15():
    usage = energy_session("20", reservation=ReservationUsage(at("2024-01-15 09:47"), at("2024-01-15 10:00")))
    priced = price_session(tariff=example("tariff_16_reservation_2_euro_fee_5_euro_per_hour.json"), usage=usage)
    assert priced.total_cost == price("8.75", "10.00")
    assert priced.total_reservation_cost == price("3.25", "3.90")
    assert priced.total_fixed_cost == price("0.50", "0.60")


def expired(reserved_minutes: int) -> SessionUsage:
    begin = at("2024-01-15 09:00")
    end = minutes(begin, reserved_minutes)
    return SessionUsage(
        start_date_time=end,
        end_date_time=end,
        time_zone=TZ,
        reservation=ReservationUsage(begin, end, expired=True),
    )


def test_tariff_17_reservation_used_after_22_minutes_billed_as_30():
    usage = energy_session("20", reservation=ReservationUsage(at("2024-01-15 09:38"), at("2024-01-15 10:00")))
    priced = price_session(tariff=example("tariff_17_reservation_with_expire_fee.json"), usage=usage)
    assert priced.total_cost == price("6.50", "7.30")


def test_tariff_17_reservation_expired_after_an_hour_pays_time_and_expiry_fee():
    priced = price_session(tariff=example("tariff_17_reservation_with_expire_fee.json"), usage=expired(60))
    assert priced.total_cost == price("6.00", "7.20")
    assert priced.total_fixed_cost == price("0.00", "0.00")  # no start fee: there was no charging session
    assert [p["dimensions"][0]["type"] for p in priced.charging_periods] == ["RESERVATION_TIME"]


def test_tariff_18_reservation_used_after_22_minutes_billed_as_30():
    usage = energy_session("20", reservation=ReservationUsage(at("2024-01-15 09:38"), at("2024-01-15 10:00")))
    priced = price_session(tariff=example("tariff_18_reservation_with_expire_time.json"), usage=usage)
    assert priced.total_cost == price("7.00", "7.90")


def test_tariff_18_reservation_expired_after_1_5_hours_uses_the_expiry_time_price():
    priced = price_session(tariff=example("tariff_18_reservation_with_expire_time.json"), usage=expired(90))
    assert priced.total_cost == price("9.00", "10.80")


def test_cdr_example_1_973_hours_in_5_minute_steps():
    cdr = example("cdr_example.json")
    start = dt.datetime.fromisoformat(cdr["start_date_time"])
    end = dt.datetime.fromisoformat(cdr["end_date_time"])
    usage = SessionUsage(
        start_date_time=start,
        end_date_time=end,
        time_zone="Europe/Brussels",
        samples=[MeterSample(start, D(0)), MeterSample(end, D("15.342"))],
    )
    priced = price_session(tariff=cdr["tariffs"][0], usage=usage)
    assert priced.total_cost == price("4.00", "4.40") == priced.total_time_cost
    assert priced.total_time.quantize(D("0.001")) == D("1.973")
    assert priced.total_energy == D("15.342")
    assert [p["tariff_id"] for p in priced.charging_periods] == ["12"]


# --- mod_tariffs: tariff_14_step_size.json, "switching to different Tariff Element"
# ------------------------------

STEP_TARIFF = "tariff_14_step_size.json"  # no VAT in this tariff: incl. VAT equals excl. VAT


def test_tariff_14_example_1_from_1_20_to_2_40_at_17_00_and_2_minutes_parking_billed_as_15():
    priced = price_session(tariff=example(STEP_TARIFF), usage=time_session(10, 2, start="2024-01-15 16:55"))
    assert priced.total_cost == price("0.55", "0.55")
    assert priced.total_time_cost == price("0.30", "0.30")  # 5 min at 1.20 + 5 min at 2.40, not rounded
    assert priced.total_parking_cost == price("0.25", "0.25")
    starts = [p["start_date_time"] for p in priced.charging_periods]
    assert starts == [at("2024-01-15 16:55"), at("2024-01-15 17:00"), at("2024-01-15 17:05")]


def test_tariff_14_example_2_35_minutes_rounded_to_45_on_the_last_elements_step():
    priced = price_session(tariff=example(STEP_TARIFF), usage=time_session(35, start="2024-01-15 16:35"))
    assert priced.total_cost == price("1.30", "1.30")  # 25 min at 1.20 + (10 + 10 extra) min at 2.40


def test_tariff_14_example_3_parking_free_after_20_00():
    priced = price_session(tariff=example(STEP_TARIFF), usage=time_session(12, 20, start="2024-01-15 19:40"))
    assert priced.total_time_cost == price("0.48", "0.48")
    assert priced.total_parking_cost == price("0.25", "0.25")  # 8 billable minutes rounded to 15
    assert priced.total_cost == price("0.73", "0.73")
    assert priced.total_parking_time == D("0.3333")  # 20 minutes measured


# --- mod_tariffs: TariffRestrictions examples
# ---------------------------------------------------------------------


def test_max_power_example_costs_20_30():
    start = at("2024-01-15 10:00")
    usage = SessionUsage(
        start_date_time=start,
        end_date_time=minutes(start, 67.5),
        time_zone=TZ,
        samples=[
            MeterSample(start, D(0), power_kw=D(6)),
            MeterSample(minutes(start, 10), D(1), power_kw=D(48)),
            MeterSample(minutes(start, 60), D(41), power_kw=D(4)),
            MeterSample(minutes(start, 67.5), D("41.5"), power_kw=D(4)),
        ],
    )
    priced = price_session(tariff=example("tariffrestriction_example_max_power.json"), usage=usage)
    assert priced.total_cost == price("20.30", "24.36")  # incl.: the tariff's 20% VAT
    max_power = [[d["volume"] for d in p["dimensions"] if d["type"] == "MAX_POWER"] for p in priced.charging_periods]
    assert max_power == [[D(6)], [D(48)], [D(4)]]


def test_max_power_example_without_power_readings_uses_the_average_power():
    start = at("2024-01-15 10:00")
    usage = SessionUsage(
        start_date_time=start,
        end_date_time=minutes(start, 67.5),
        time_zone=TZ,
        samples=[
            MeterSample(minutes(start, 10), D(1)),
            MeterSample(minutes(start, 60), D(41)),
            MeterSample(minutes(start, 67.5), D("41.5")),
        ],
    )
    priced = price_session(tariff=example("tariffrestriction_example_max_power.json"), usage=usage)
    assert priced.total_cost.excl_vat == D("20.30")


def test_max_duration_example_costs_0_30():
    start = at("2024-01-15 10:00")
    usage = SessionUsage(
        start_date_time=start,
        end_date_time=minutes(start, 40),
        time_zone=TZ,
        samples=[MeterSample(minutes(start, 30), D(5)), MeterSample(minutes(start, 40), D("6.2"))],
    )
    priced = price_session(tariff=example("tariffrestriction_example_max_duration.json"), usage=usage)
    assert priced.total_cost == price("0.30", "0.36")
    assert [p["start_date_time"] for p in priced.charging_periods] == [start, minutes(start, 30)]


# --- mod_cdrs: the step_size section
# --------------------------------------------------------------------------


def component(kind: str, price_: str, step: int) -> dict:
    return {"type": kind, "price": D(price_), "step_size": step}


def tariff(*elements) -> dict:
    return {"id": "S", "currency": "EUR", "elements": list(elements)}


def test_cdrs_step_size_21_minutes_charging_then_7_parking_bills_21_and_10():
    t = tariff({"price_components": [component("TIME", "6.00", 300), component("PARKING_TIME", "6.00", 300)]})
    priced = price_session(tariff=t, usage=time_session(21, 7))
    assert priced.exact.time.excl_vat == D("2.10")  # 21 minutes at 6.00/h
    assert priced.exact.parking.excl_vat == D("1.00")  # 10 minutes at 6.00/h


def test_cdrs_step_size_energy_4_3_before_and_1_1_after_17_00_rounds_the_total_to_5_5():
    t = tariff(
        {"price_components": [component("ENERGY", "0.20", 500)], "restrictions": {"end_time": "17:00"}},
        {"price_components": [component("ENERGY", "0.27", 500)]},
    )
    start = at("2024-01-15 16:00")
    usage = SessionUsage(
        start_date_time=start,
        end_date_time=minutes(start, 120),
        time_zone=TZ,
        samples=[
            MeterSample(start, D(0)),
            MeterSample(minutes(start, 60), D("4.3")),
            MeterSample(minutes(start, 120), D("5.4")),
        ],
    )
    priced = price_session(tariff=t, usage=usage)
    assert priced.exact.energy.excl_vat == D("0.86") + D("1.2") * D("0.27")  # not 1.5 kWh after 17:00
    assert priced.total_energy_cost.excl_vat == D("1.18")


def test_cdrs_step_size_time_6_before_and_22_after_17_00_bills_24_after():
    t = tariff(
        {"price_components": [component("TIME", "5.00", 600)], "restrictions": {"end_time": "17:00"}},
        {"price_components": [component("TIME", "7.00", 600)]},
    )
    priced = price_session(tariff=t, usage=time_session(28, start="2024-01-15 16:54"))
    assert priced.exact.time.excl_vat == D("0.50") + D("2.80")  # 6 min at 5.00 + 24 min at 7.00


def test_cdrs_step_size_time_and_parking_21_then_16_rounds_only_parking_to_20():
    t = tariff({"price_components": [component("TIME", "1.00", 600), component("PARKING_TIME", "2.00", 600)]})
    priced = price_session(tariff=t, usage=time_session(21, 16))
    assert priced.exact.time.excl_vat == D("0.35")  # 21 min at 1.00, not rounded
    assert priced.exact.parking.excl_vat * 3 == D("2.00")  # 20 min at 2.00/h
    assert priced.total_cost.excl_vat == D("1.02")


def test_step_size_note_115_2_wh():
    """mod_tariffs, step_size note: 115.2 Wh at 0.25/kWh is billed as 116 Wh (0.029), 125 Wh with step 25
    (0.031), 500 Wh with step 500 (0.125)."""
    for step, exact in ((1, "0.029"), (25, "0.03125"), (500, "0.125")):
        t = tariff({"price_components": [component("ENERGY", "0.25", step)]})
        priced = price_session(tariff=t, usage=energy_session("0.1152"))
        assert priced.exact.energy.excl_vat == D(exact)


def _energy_tariff_with(**bounds) -> dict:
    """0.25 per kWh + 21 % VAT, with the given min_price / max_price (one part only, as partners send them)."""
    return {
        "id": "BOUNDS",
        "currency": "EUR",
        "country_code": "NL",
        "party_id": "CPO",
        "elements": [{"price_components": [{"type": "ENERGY", "price": 0.25, "vat": 21.0, "step_size": 1}]}],
        **bounds,
    }


def test_min_price_given_only_excl_vat_raises_incl_vat_by_the_same_vat():
    """10 kWh at 0.25 + 21 % VAT is 2.50 / 3.025; a minimum of 5.00 excl. VAT makes it 5.00 / 6.05, never an
    incl_vat below the excl_vat (the errata: both parts of the bound apply)."""
    priced = price_session(tariff=_energy_tariff_with(min_price={"excl_vat": 5.00}), usage=energy_session("10"))
    assert priced.total_cost == price("5.00", "6.05")


def test_min_price_given_only_incl_vat_raises_excl_vat_by_the_same_vat():
    priced = price_session(tariff=_energy_tariff_with(min_price={"incl_vat": 6.05}), usage=energy_session("10"))
    assert priced.total_cost == price("5.00", "6.05")


def test_max_price_given_only_excl_vat_lowers_incl_vat_by_the_same_vat():
    priced = price_session(tariff=_energy_tariff_with(max_price={"excl_vat": 10.00}), usage=energy_session("50"))
    assert priced.total_cost == price("10.00", "12.10")


def test_min_price_given_only_excl_vat_on_a_session_that_cost_nothing_uses_the_tariffs_vat():
    priced = price_session(tariff=_energy_tariff_with(min_price={"excl_vat": 5.00}), usage=energy_session("0"))
    assert priced.total_cost == price("5.00", "6.05")


def test_a_bound_above_the_computed_cost_changes_nothing():
    priced = price_session(tariff=_energy_tariff_with(min_price={"excl_vat": 1.00}), usage=energy_session("10"))
    assert priced.total_cost == price("2.50", "3.03")
