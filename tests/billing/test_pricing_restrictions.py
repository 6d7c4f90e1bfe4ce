"""Each TariffRestriction, read in the location's time zone, and the checks on what the engine is given."""

import datetime as dt
from decimal import Decimal as D
from zoneinfo import ZoneInfo

import pytest
from django.core.exceptions import ValidationError

from billing.pricing import MeterSample, SessionUsage, price_session

AMS = "Europe/Amsterdam"


def local(text: str, tz: str = AMS) -> dt.datetime:
    return dt.datetime.fromisoformat(text).replace(tzinfo=ZoneInfo(tz))


def tariff(*elements) -> dict:
    return {"id": "R", "currency": "EUR", "elements": list(elements)}


def comp(kind: str, price: str, step: int = 1, vat: str | None = None) -> dict:
    c = {"type": kind, "price": D(price), "step_size": step}
    if vat is not None:
        c["vat"] = D(vat)
    return c


def linear(start: dt.datetime, end: dt.datetime, kwh: str, **sample) -> SessionUsage:
    return SessionUsage(
        start_date_time=start,
        end_date_time=end,
        time_zone=AMS,
        samples=[MeterSample(start, D(0), **sample), MeterSample(end, D(kwh), **sample)],
    )


def test_a_night_range_wraps_around_midnight():
    night_day = tariff(
        {
            "price_components": [comp("ENERGY", "0.10")],
            "restrictions": {"start_time": "22:00", "end_time": "06:00"},
        },
        {"price_components": [comp("ENERGY", "0.40")]},
    )
    # 21:00 -> 07:00 local, 1 kWh per hour: 1 h day, 8 h night, 1 h day
    priced = price_session(tariff=night_day, usage=linear(local("2024-01-15 21:00"), local("2024-01-16 07:00"), "10"))
    assert priced.exact.energy.excl_vat == D("0.80") + D("0.80")
    starts = [p["start_date_time"] for p in priced.charging_periods]
    assert starts == [local("2024-01-15 21:00"), local("2024-01-15 22:00"), local("2024-01-16 06:00")]


def test_end_time_00_00_means_until_the_end_of_the_day():
    evening = tariff(
        {
            "price_components": [comp("TIME", "6.00")],
            "restrictions": {"start_time": "18:00", "end_time": "00:00"},
        }
    )
    priced = price_session(tariff=evening, usage=linear(local("2024-01-15 17:00"), local("2024-01-16 01:00"), "8"))
    assert priced.total_time_cost.excl_vat == D("36.00")  # 18:00..24:00 only


def test_time_of_day_is_read_in_the_location_time_zone_not_utc():
    day = tariff(
        {
            "price_components": [comp("TIME", "1.00")],
            "restrictions": {"start_time": "09:00", "end_time": "10:00"},
        }
    )
    usage = SessionUsage(
        start_date_time=local("2024-01-15 08:00", "America/New_York"),
        end_date_time=local("2024-01-15 11:00", "America/New_York"),
        time_zone="America/New_York",
    )
    assert price_session(tariff=day, usage=usage).total_time_cost.excl_vat == D("1.00")


@pytest.mark.parametrize("date, hours", [("2024-03-31", 5), ("2024-10-27", 7)])
def test_a_night_across_a_dst_change_is_priced_by_the_hours_that_passed(date, hours):
    night = tariff({"price_components": [comp("TIME", "1.00")], "restrictions": {"end_time": "06:00"}})
    usage = SessionUsage(start_date_time=local(f"{date} 00:00"), end_date_time=local(f"{date} 08:00"), time_zone=AMS)
    assert price_session(tariff=night, usage=usage).total_time_cost.excl_vat == D(hours)


def test_start_date_inclusive_end_date_exclusive_in_local_time():
    promo = tariff(
        {
            "price_components": [comp("TIME", "0.00")],
            "restrictions": {"start_date": "2024-01-16", "end_date": "2024-01-17"},
        },
        {"price_components": [comp("TIME", "1.00")]},
    )
    usage = SessionUsage(
        start_date_time=local("2024-01-15 23:00"), end_date_time=local("2024-01-17 01:00"), time_zone=AMS
    )
    assert price_session(tariff=promo, usage=usage).total_time_cost.excl_vat == D("2.00")


def test_day_of_week_switches_at_local_midnight():
    weekend = tariff(
        {"price_components": [comp("TIME", "3.00")], "restrictions": {"day_of_week": ["SATURDAY", "SUNDAY"]}},
        {"price_components": [comp("TIME", "1.00")]},
    )
    usage = SessionUsage(
        start_date_time=local("2024-01-19 22:00"), end_date_time=local("2024-01-20 02:00"), time_zone=AMS
    )  # Friday 22:00 -> Saturday 02:00
    assert price_session(tariff=weekend, usage=usage).total_time_cost.excl_vat == D("2.00") + D("6.00")


def test_min_kwh_switches_price_where_the_energy_crosses_it():
    volume = tariff(
        {"price_components": [comp("ENERGY", "0.30")], "restrictions": {"max_kwh": 10}},
        {"price_components": [comp("ENERGY", "0.20")]},
    )
    start = local("2024-01-15 10:00")
    priced = price_session(tariff=volume, usage=linear(start, start + dt.timedelta(minutes=90), "15"))
    assert priced.exact.energy.excl_vat == D("4.00")
    assert [p["start_date_time"] for p in priced.charging_periods] == [start, start + dt.timedelta(hours=1)]
    assert [p["dimensions"][0]["volume"] for p in priced.charging_periods] == [D(10), D(5)]


def test_min_current_without_current_readings_falls_back():
    fast = tariff(
        {"price_components": [comp("TIME", "9.00")], "restrictions": {"min_current": 32}},
        {"price_components": [comp("TIME", "1.00")]},
    )
    start = local("2024-01-15 10:00")
    unknown = linear(start, start + dt.timedelta(hours=1), "20")
    known = linear(start, start + dt.timedelta(hours=1), "20", current_a=D(48))
    assert price_session(tariff=fast, usage=unknown).total_time_cost.excl_vat == D("1.00")
    assert price_session(tariff=fast, usage=known).total_time_cost.excl_vat == D("9.00")


def test_min_duration_starts_an_idle_fee_after_two_hours():
    idle = tariff(
        {"price_components": [comp("TIME", "2.00")], "restrictions": {"min_duration": 7200}},
        {"price_components": [comp("ENERGY", "0.30")]},
    )
    start = local("2024-01-15 10:00")
    priced = price_session(tariff=idle, usage=linear(start, start + dt.timedelta(hours=3), "30"))
    assert priced.total_time_cost.excl_vat == D("2.00")
    assert priced.total_energy_cost.excl_vat == D("9.00")


def test_a_flat_fee_is_counted_once_however_many_periods():
    t = tariff(
        {
            "price_components": [comp("FLAT", "1.00"), comp("TIME", "1.00")],
            "restrictions": {"end_time": "12:00"},
        },
        {"price_components": [comp("FLAT", "1.00"), comp("TIME", "2.00")]},
    )
    usage = SessionUsage(
        start_date_time=local("2024-01-15 11:00"), end_date_time=local("2024-01-15 13:00"), time_zone=AMS
    )
    priced = price_session(tariff=t, usage=usage)
    assert priced.total_fixed_cost.excl_vat == D("1.00")
    assert len(priced.charging_periods) == 2


def test_a_pause_requested_by_the_evse_is_charging_time_a_pause_by_the_ev_is_parking():
    t = tariff({"price_components": [comp("TIME", "1.00"), comp("PARKING_TIME", "4.00")]})
    start = local("2024-01-15 10:00")
    hour = dt.timedelta(hours=1)
    evse_pause = SessionUsage(
        start_date_time=start,
        end_date_time=start + 2 * hour,
        time_zone=AMS,
        samples=[MeterSample(start, D(0)), MeterSample(start + hour, D(10), power_kw=D(0))],
    )
    ev_pause = SessionUsage(
        start_date_time=start,
        end_date_time=start + 2 * hour,
        time_zone=AMS,
        samples=[MeterSample(start, D(0)), MeterSample(start + hour, D(10), power_kw=D(0), charging=False)],
    )
    assert price_session(tariff=t, usage=evse_pause).total_cost.excl_vat == D("2.00")
    assert price_session(tariff=t, usage=ev_pause).total_cost.excl_vat == D("5.00")


def test_a_running_session_is_priced_up_to_now_with_the_same_rules():
    t = tariff({"price_components": [comp("FLAT", "1.00"), comp("ENERGY", "0.35", vat="21")]})
    start = local("2024-01-15 10:00")
    now = start + dt.timedelta(minutes=30)
    running = SessionUsage(
        start_date_time=start,
        end_date_time=now,
        time_zone=AMS,
        samples=[MeterSample(start + dt.timedelta(minutes=20), D("3.3"))],
    )
    priced = price_session(tariff=t, usage=running)
    assert priced.total_cost.excl_vat == D("2.16")  # 1.00 + 3.3 * 0.35 = 2.155
    assert priced.total_cost.incl_vat == D("2.40")  # 1.00 (no VAT given) + 1.155 * 1.21 = 2.39755


def test_a_model_instance_is_priced_like_its_ocpi_dict(db):
    from billing.services import tariff_seed_demo

    model = tariff_seed_demo(tariff_id="DEMO-AC")
    start = local("2024-01-15 10:00")
    usage = linear(start, start + dt.timedelta(hours=1), "11")
    assert (
        price_session(tariff=model, usage=usage).total_cost
        == price_session(
            tariff={"id": "DEMO-AC", "currency": "EUR", "elements": model.elements}, usage=usage
        ).total_cost
    )


@pytest.mark.parametrize(
    "change, error",
    [
        (dict(samples=[MeterSample(local("2024-01-15 10:30"), 1.5)]), TypeError),
        (dict(start_date_time=dt.datetime(2024, 1, 15, 10)), ValueError),
        (
            dict(
                samples=[
                    MeterSample(local("2024-01-15 10:30"), D(2)),
                    MeterSample(local("2024-01-15 10:40"), D(1)),
                ]
            ),
            ValueError,
        ),
        (dict(samples=[MeterSample(local("2024-01-15 12:30"), D(2))]), ValueError),
        (dict(time_zone="Mars/Olympus"), ValueError),
    ],
)
def test_unusable_usage_is_refused(change, error):
    values = dict(start_date_time=local("2024-01-15 10:00"), end_date_time=local("2024-01-15 11:00"), time_zone=AMS)
    values.update(change)
    with pytest.raises(error):
        price_session(tariff=tariff({"price_components": [comp("TIME", "1")]}), usage=SessionUsage(**values))


def test_a_bad_tariff_is_refused_before_pricing():
    usage = SessionUsage(
        start_date_time=local("2024-01-15 10:00"), end_date_time=local("2024-01-15 11:00"), time_zone=AMS
    )
    with pytest.raises(ValidationError, match="TariffDimensionType"):
        price_session(tariff=tariff({"price_components": [comp("KWH", "1")]}), usage=usage)


def test_local_and_utc_datetimes_give_the_same_result_across_dst():
    t = tariff(
        {
            "price_components": [comp("TIME", "1.00"), comp("ENERGY", "0.30", step=500)],
            "restrictions": {"start_time": "02:00", "end_time": "05:00"},
        },
        {"price_components": [comp("TIME", "2.00"), comp("ENERGY", "0.10")]},
    )
    start, middle, end = local("2024-03-31 00:30"), local("2024-03-31 03:30"), local("2024-03-31 06:00")
    as_local = SessionUsage(
        start_date_time=start,
        end_date_time=end,
        time_zone=AMS,
        samples=[MeterSample(middle, D("12.345")), MeterSample(end, D("20"))],
    )
    utc = dt.UTC
    as_utc = SessionUsage(
        start_date_time=start.astimezone(utc),
        end_date_time=end.astimezone(utc),
        time_zone=AMS,
        samples=[MeterSample(middle.astimezone(utc), D("12.345")), MeterSample(end.astimezone(utc), D("20"))],
    )
    local_priced, utc_priced = price_session(tariff=t, usage=as_local), price_session(tariff=t, usage=as_utc)
    assert local_priced == utc_priced
    assert local_priced.total_time == D("4.5")  # 00:30 -> 06:00 local is 4.5 hours on the spring DST night
    # 00:30-02:00 at 2.00 (1.5 h), 03:00-05:00 at 1.00 (02:00-03:00 does not exist), 05:00-06:00 at 2.00
    assert local_priced.total_time_cost.excl_vat == D("7.00")


def test_priced_session_as_ocpi_writes_utc_z_datetimes_and_all_cost_fields():
    from billing.pricing import priced_session_as_ocpi

    t = tariff({"price_components": [comp("FLAT", "1.00"), comp("ENERGY", "0.35", vat="21")]})
    start = local("2024-07-01 10:00")
    data = priced_session_as_ocpi(
        priced=price_session(tariff=t, usage=linear(start, start + dt.timedelta(hours=1), "11"))
    )
    assert data["charging_periods"] == [
        {
            "start_date_time": "2024-07-01T08:00:00Z",
            "tariff_id": "R",
            "dimensions": [{"type": "ENERGY", "volume": D(11)}, {"type": "TIME", "volume": D(1)}],
        }
    ]
    assert data["total_cost"] == {"excl_vat": D("4.85"), "incl_vat": D("5.66")}  # 1 + 3.85, 1 + 4.6585
    assert {
        "total_energy",
        "total_time",
        "total_parking_time",
        "total_fixed_cost",
        "total_energy_cost",
        "total_time_cost",
        "total_parking_cost",
        "total_reservation_cost",
        "currency",
    } <= set(data)
