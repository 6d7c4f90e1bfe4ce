"""Measured dimensions of charging periods (issue 4): power, current and state of charge as the charger reported
them inside each period, on the Session; on the CDR only the types a CDR may carry (mod_cdrs CdrDimensionType,
"Session Only" column). Transactions are built through the gateway's services, as a charger would."""

import datetime as dt
from decimal import Decimal

from billing.enums import SESSION_ONLY_DIMENSION_TYPES, CdrDimensionType
from billing.selectors import cdr_as_ocpi, session_as_ocpi
from billing.services import cdr_create, session_sync
from cpo.models import Connector
from ocpp_gateway.services.availability import evse_status_update
from ocpp_gateway.services.meter_values import Sample, meter_values_record
from tests.billing.factories import HOUR, T0, component, price, start, stop, tariff_make

MINUTE = dt.timedelta(minutes=1)


def samples(station, tx, at, *values):
    """One MeterValues.req at `at`: (measurand, value, unit, phase, location) tuples."""
    meter_values_record(
        station_pk=station.pk,
        ocpp_evse_id=tx.ocpp_evse_id,
        transaction_pk=tx.pk,
        samples=[
            Sample(timestamp=at, value=Decimal(value), measurand=measurand, unit=unit, phase=phase, location=location)
            for measurand, value, unit, phase, location in values
        ],
    )


def energy(wh):
    return ("Energy.Active.Import.Register", wh, "Wh", "", "Outlet")


def power(value, unit="W"):
    return ("Power.Active.Import", value, unit, "", "Outlet")


def current(value, phase=""):
    return ("Current.Import", value, "A", phase, "Outlet")


def soc(percent):
    return ("SoC", percent, "Percent", "", "EV")


def dims(period):
    return {d["type"]: d["volume"] for d in period["dimensions"]}


def charge_then_park(station, emsp_token):
    """Three-phase charging for an hour (two readings), then SuspendedEV for 30 min; unplugged at 90 min."""
    tx = start(station, emsp_token, meter_start=0)
    evse_status_update(station_pk=station.pk, ocpp_evse_id=1, ocpp_status="Charging", timestamp=T0)
    samples(
        station,
        tx,
        T0 + 15 * MINUTE,
        energy("2750"),
        power("11000"),
        current("16", "L1"),
        current("16", "L2"),
        current("15", "L3"),
        soc("40"),
    )
    samples(
        station,
        tx,
        T0 + 45 * MINUTE,
        energy("8250"),
        power("10.5", "kW"),
        current("15", "L1"),
        current("16", "L2"),
        current("14", "L3"),
        soc("60"),
    )
    samples(station, tx, T0 + HOUR, energy("11000"), power("0"), soc("80"))
    evse_status_update(station_pk=station.pk, ocpp_evse_id=1, ocpp_status="SuspendedEV", timestamp=T0 + HOUR)
    stop(station, tx, T0 + 90 * MINUTE, 11000)
    return tx


def test_session_periods_carry_power_current_and_soc_measured_in_each_period(station, energy_tariff, emsp_token):
    """Period 1 (charging, 10:00-11:00): power 11 and 10.5 kW (a kW reading converted); per phase max 16+16+15 =
    47 A, min 15+16+14 = 45 A; average whole-device current (47 + 45) / 2; the last SoC in it, 60 %. Period 2
    (parking, 11:00-11:30): the 0 W reading at 11:00 and SoC 80 %; no current reading, so no current dimension."""
    tx = charge_then_park(station, emsp_token)
    data = session_as_ocpi(session=session_sync(transaction_pk=tx.pk))
    charging, parking = data["charging_periods"]
    assert dims(charging) == {
        "ENERGY": 11,
        "TIME": 1,
        "MIN_POWER": Decimal("10.5"),
        "MAX_POWER": 11,
        "POWER": Decimal("10.75"),
        "MIN_CURRENT": 45,
        "MAX_CURRENT": 47,
        "CURRENT": 46,
        "STATE_OF_CHARGE": 60,
    }
    assert dims(parking) == {
        "PARKING_TIME": Decimal("0.5"),
        "MIN_POWER": 0,
        "MAX_POWER": 0,
        "POWER": 0,
        "STATE_OF_CHARGE": 80,
    }
    # The measured values change no cost: € 1.00 + 11 kWh x € 0.35.
    assert data["total_cost"] == price(excl="4.85", incl="5.87")
    assert data["kwh"] == 11


def test_the_cdr_carries_only_the_dimension_types_a_cdr_may_carry(station, energy_tariff, emsp_token):
    tx = charge_then_park(station, emsp_token)
    cdr = cdr_create(session=session_sync(transaction_pk=tx.pk))
    data = cdr_as_ocpi(cdr=cdr)
    types = [d["type"] for p in data["charging_periods"] for d in p["dimensions"]]
    assert set(types) <= set(CdrDimensionType.values)
    assert not set(types) & SESSION_ONLY_DIMENSION_TYPES
    assert dims(data["charging_periods"][0]) == {
        "ENERGY": 11,
        "TIME": 1,
        "MIN_POWER": Decimal("10.5"),
        "MAX_POWER": 11,
        "MIN_CURRENT": 45,
        "MAX_CURRENT": 47,
    }
    assert data["total_cost"] == price(excl="4.85", incl="5.87")
    # The session keeps its Session-only dimensions.
    session = session_as_ocpi(session=cdr.session)
    assert "STATE_OF_CHARGE" in dims(session["charging_periods"][0])


def test_an_unphased_current_is_the_whole_device_value(station, energy_tariff, emsp_token):
    """A charger sending Current.Import without phase: its values are taken as they are (not summed with phases
    reported next to it)."""
    tx = start(station, emsp_token, meter_start=0)
    samples(station, tx, T0 + 10 * MINUTE, energy("1000"), current("30"), current("10", "L1"))
    samples(station, tx, T0 + 20 * MINUTE, energy("2000"), current("32"), current("11", "L1"))
    stop(station, tx, T0 + 30 * MINUTE, 3000)
    (period,) = session_as_ocpi(session=session_sync(transaction_pk=tx.pk))["charging_periods"]
    assert (dims(period)["MIN_CURRENT"], dims(period)["MAX_CURRENT"], dims(period)["CURRENT"]) == (30, 32, 31)
    assert "POWER" not in dims(period) and "STATE_OF_CHARGE" not in dims(period)


def test_without_power_current_or_soc_readings_periods_are_as_priced(station, energy_tariff, emsp_token):
    tx = start(station, emsp_token, meter_start=0)
    samples(station, tx, T0 + 30 * MINUTE, energy("5000"))
    stop(station, tx, T0 + HOUR, 10000)
    (period,) = session_as_ocpi(session=session_sync(transaction_pk=tx.pk))["charging_periods"]
    assert [d["type"] for d in period["dimensions"]] == ["ENERGY", "TIME"]


def test_power_the_engine_reports_for_a_power_restriction_is_not_added_twice(station, emsp_token):
    """A tariff restricting on power makes the engine report MIN/MAX_POWER (what it priced on); the measured
    ones are not added a second time, POWER (average) still is."""
    tariff_make(
        "POWER-1",
        elements=[
            {"price_components": [component("ENERGY", "0.50")], "restrictions": {"min_power": Decimal("20")}},
            {"price_components": [component("ENERGY", "0.30")]},
        ],
    )
    Connector.objects.filter(evse__station=station).update(tariff_ids=["POWER-1"])
    tx = start(station, emsp_token, meter_start=0)
    samples(station, tx, T0, energy("0"), power("11000"))
    samples(station, tx, T0 + 30 * MINUTE, energy("5500"), power("11000"))
    stop(station, tx, T0 + HOUR, 11000)
    data = session_as_ocpi(session=session_sync(transaction_pk=tx.pk))
    for period in data["charging_periods"]:
        types = [d["type"] for d in period["dimensions"]]
        assert len(types) == len(set(types))
        assert {"MIN_POWER", "MAX_POWER", "POWER"} <= set(types)
    assert data["total_cost"] == price(excl="3.30", incl="3.99")
