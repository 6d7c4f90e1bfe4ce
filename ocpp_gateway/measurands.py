"""Measurands and units of OCPP meter values: the names, and the one way a reading becomes a value in its base unit
(billing reads the gateway's stored samples with the same function)."""

from decimal import Decimal

ENERGY_REGISTER = "Energy.Active.Import.Register"
POWER_ACTIVE = "Power.Active.Import"
CURRENT_IMPORT = "Current.Import"
STATE_OF_CHARGE = "SoC"

# Units chargers report in a multiple of the base unit (1.6 UnitOfMeasure, 2.0.1 UnitOfMeasureType.unit).
KILO_UNITS = {"kWh": "Wh", "kW": "W", "kvarh": "varh", "kvar": "var", "kVA": "VA"}


def value_in_base_unit(*, value: Decimal | None, unit: str) -> Decimal | None:
    """A reading in its base unit: energy in Wh, power in W (reactive in varh/var, apparent in VA), whatever multiple
    the charger used. Other units (A, V, Percent, Celsius, ...) and an empty unit are already base units. 2.0.1's
    `multiplier` (a power of ten) is applied when the sample is read (handlers.v201.samples_201)."""
    if value is None:
        return None
    return value * 1000 if unit in KILO_UNITS else value
