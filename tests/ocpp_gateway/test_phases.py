"""Which grid phases a session draws on: the charger's phase rotation as OCPP reports it, the car, the meter."""

from decimal import Decimal as D

from ocpp_gateway.phases import (
    STANDARD,
    charger_phases_in_use,
    charger_phases_wired,
    connector_phase_rotation_16,
    grid_phases,
    phase_rotation_compose,
    phase_rotation_parse,
)


def test_rotation_letters_name_the_grid_phase_of_each_charger_phase():
    assert phase_rotation_parse("RST") == (1, 2, 3)
    assert phase_rotation_parse("STR") == (2, 3, 1)  # the charger's L1 is the grid's L2
    assert phase_rotation_parse("TSR") == (3, 2, 1)
    assert phase_rotation_parse("Rxx") == (1, None, None)  # 2.0.1: x is a phase not connected


def test_unknown_and_not_applicable_rotations_are_not_believed():
    for value in ("NotApplicable", "Unknown", "", "RRS", "xxx", "RS", "ABC"):
        assert phase_rotation_parse(value) is None


def test_16_connector_rotation_from_the_comma_separated_key():
    value = "0.RST,1.RST,2.STR,3.TRS"
    assert connector_phase_rotation_16(value, 1) == (1, 2, 3)
    assert connector_phase_rotation_16(value, 2) == (2, 3, 1)
    assert connector_phase_rotation_16(value, 3) == (3, 1, 2)
    assert connector_phase_rotation_16(value, 4) == STANDARD  # not reported: the standard phasing
    assert connector_phase_rotation_16("1.Unknown", 1) == STANDARD


def test_16_connector_rotation_goes_through_the_main_meters_rotation_to_the_grid():
    """0.STR: the main meter's L1 is the grid's L2; a connector wired RST to that meter is on L2, L3, L1 too."""
    assert connector_phase_rotation_16("0.STR,1.RST", 1) == (2, 3, 1)
    assert connector_phase_rotation_16("0.STR,1.STR", 1) == (3, 1, 2)


def test_a_one_connector_charger_may_leave_the_index_out():
    assert connector_phase_rotation_16("TRS", 1) == (3, 1, 2)


def test_201_rotations_compose_from_the_station_down_to_the_connector():
    station, evse, connector = phase_rotation_parse("STR"), phase_rotation_parse("RST"), phase_rotation_parse("Rxx")
    assert phase_rotation_compose(station, phase_rotation_compose(evse, connector)) == (2, None, None)


def test_a_single_phase_evse_uses_the_chargers_first_phase_on_whatever_grid_phase_it_is_wired_to():
    wired = charger_phases_wired(count=1, rotation=(2, 3, 1))
    assert wired == (1,)
    assert grid_phases(rotation=(2, 3, 1), charger_phases=charger_phases_in_use(wired=wired)) == {2}


def test_a_rotation_with_unconnected_phases_narrows_a_three_phase_evse():
    assert charger_phases_wired(count=3, rotation=(3, None, None)) == (1,)


def test_a_car_that_asks_for_one_phase_draws_on_the_chargers_first():
    assert charger_phases_in_use(wired=(1, 2, 3), ev_phases=1) == (1,)
    assert charger_phases_in_use(wired=(1, 2, 3), ev_phases=3) == (1, 2, 3)


def test_the_meter_shows_which_phases_carry_current():
    assert charger_phases_in_use(wired=(1, 2, 3), currents=(D("15.8"), D("0.1"), D(0))) == (1,)
    assert charger_phases_in_use(wired=(1, 2, 3), currents=(D(10), D(10), D("9.6"))) == (1, 2, 3)


def test_the_meter_is_not_believed_when_a_wired_phase_is_missing_or_nothing_flows():
    """A charger reporting L1 only might carry current on L2 and L3 too; a paused car shows nothing at all."""
    assert charger_phases_in_use(wired=(1, 2, 3), currents=(D(16), None, None)) == (1, 2, 3)
    assert charger_phases_in_use(wired=(1, 2, 3), currents=(D(0), D(0), D(0))) == (1, 2, 3)
    assert charger_phases_in_use(wired=(1, 2, 3), ev_phases=1, currents=(D(0), D(0), D(0))) == (1,)
