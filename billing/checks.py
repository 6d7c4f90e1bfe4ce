"""Validation of OCPI 2.2.1 Tariff parts (mod_tariffs.asciidoc, types.asciidoc).

Every `check_*` function raises `django.core.exceptions.ValidationError` with messages that name the offending
path (`elements[1].restrictions.start_time: ...`), so the admin can show them next to the field and an API can
return them as OCPI status 2001. They accept the JSON shapes a partner or a form would give: numbers may be
`int`, `Decimal` or (from `json.load`) `float`; strings are refused where OCPI says number.
"""

import datetime as dt
import re
from decimal import Decimal, InvalidOperation
from typing import Any

from django.core.exceptions import ValidationError

from billing.enums import DayOfWeek, ReservationRestrictionType, TariffDimensionType, TariffType

TIME_RE = re.compile(r"^([0-1][0-9]|2[0-3]):[0-5][0-9]$")
DATE_RE = re.compile(r"^([12][0-9]{3})-(0[1-9]|1[0-2])-(0[1-9]|[12][0-9]|3[01])$")
CURRENCY_RE = re.compile(r"^[A-Z]{3}$")
LANGUAGE_RE = re.compile(r"^[a-z]{2}$")

ELEMENT_KEYS = {"price_components", "restrictions"}
COMPONENT_KEYS = {"type", "price", "vat", "step_size"}
NUMBER_RESTRICTIONS = ("min_kwh", "max_kwh", "min_current", "max_current", "min_power", "max_power")
INT_RESTRICTIONS = ("min_duration", "max_duration")
RESTRICTION_KEYS = {
    "start_time",
    "end_time",
    "start_date",
    "end_date",
    *NUMBER_RESTRICTIONS,
    *INT_RESTRICTIONS,
    "day_of_week",
    "reservation",
}
# "A reservation can only have: FLAT and TIME TariffDimensions" (mod_tariffs, TariffRestrictions.reservation)
RESERVATION_DIMENSIONS = {TariffDimensionType.FLAT, TariffDimensionType.TIME}


def as_decimal(value: Any) -> Decimal:
    """An OCPI number as an exact Decimal. A float (what `json.load` gives) goes through its shortest repr,
    which is the number as written in the JSON text; bools and strings are not numbers."""
    if isinstance(value, bool) or not isinstance(value, (int, float, Decimal)):
        raise TypeError(f"{value!r} is not a number")
    if isinstance(value, float):
        value = repr(value)
    try:
        result = Decimal(value)
    except InvalidOperation as exc:  # pragma: no cover - Decimal(int|str(float)) does not fail
        raise TypeError(f"{value!r} is not a number") from exc
    if not result.is_finite():
        raise TypeError(f"{value!r} is not a finite number")
    return result


def _choices(enum) -> str:
    return ", ".join(enum.values)


def _number(errors: list[str], path: str, value: Any, *, minimum: Decimal | None = Decimal(0)) -> Decimal | None:
    try:
        number = as_decimal(value)
    except TypeError:
        errors.append(f"{path}: must be a number, got {value!r}")
        return None
    if len(number.as_tuple().digits) > 15:
        errors.append(f"{path}: at most 15 significant digits, got {value!r}")
        return None
    if minimum is not None and number < minimum:
        errors.append(f"{path}: must be >= {minimum}, got {value!r}")
        return None
    return number


def _integer(errors: list[str], path: str, value: Any) -> int | None:
    if isinstance(value, bool) or not isinstance(value, int):
        errors.append(f"{path}: must be an integer, got {value!r}")
        return None
    if value < 0:
        errors.append(f"{path}: must be >= 0, got {value!r}")
        return None
    return value


def _check_component(errors: list[str], path: str, component: Any) -> str | None:
    if not isinstance(component, dict):
        errors.append(f"{path}: must be a PriceComponent object, got {component!r}")
        return None
    unknown = set(component) - COMPONENT_KEYS
    if unknown:
        errors.append(f"{path}: unknown field(s) {', '.join(sorted(unknown))}")
    kind = component.get("type")
    if kind not in TariffDimensionType.values:
        errors.append(f"{path}.type: {kind!r} is not a TariffDimensionType ({_choices(TariffDimensionType)})")
        kind = None
    if "price" not in component:
        errors.append(f"{path}.price: required")
    else:
        _number(errors, f"{path}.price", component["price"])
    if component.get("vat") is not None:
        _number(errors, f"{path}.vat", component["vat"])
    if "step_size" not in component:
        errors.append(f"{path}.step_size: required (use 1 for no rounding)")
    else:
        _integer(errors, f"{path}.step_size", component["step_size"])
    return kind


def _check_restrictions(errors: list[str], path: str, restrictions: Any) -> None:
    if not isinstance(restrictions, dict):
        errors.append(f"{path}: must be a TariffRestrictions object, got {restrictions!r}")
        return
    unknown = set(restrictions) - RESTRICTION_KEYS
    if unknown:
        errors.append(f"{path}: unknown field(s) {', '.join(sorted(unknown))}")
    for key in ("start_time", "end_time"):
        value = restrictions.get(key)
        if value is not None and not (isinstance(value, str) and TIME_RE.match(value)):
            errors.append(f"{path}.{key}: must be a time of day HH:MM (24h, leading zeros), got {value!r}")
    dates = {}
    for key in ("start_date", "end_date"):
        value = restrictions.get(key)
        if value is None:
            continue
        if not (isinstance(value, str) and DATE_RE.match(value)):
            errors.append(f"{path}.{key}: must be a date YYYY-MM-DD, got {value!r}")
            continue
        try:
            dates[key] = dt.date.fromisoformat(value)
        except ValueError:
            errors.append(f"{path}.{key}: {value!r} is not a calendar date")
    if len(dates) == 2 and dates["start_date"] >= dates["end_date"]:
        errors.append(f"{path}: start_date must be before end_date (end_date is exclusive)")
    bounds: dict[str, Decimal | int | None] = {}
    for key in NUMBER_RESTRICTIONS:
        if restrictions.get(key) is not None:
            bounds[key] = _number(errors, f"{path}.{key}", restrictions[key])
    for key in INT_RESTRICTIONS:
        if restrictions.get(key) is not None:
            bounds[key] = _integer(errors, f"{path}.{key}", restrictions[key])
    for name in ("kwh", "current", "power", "duration"):
        low, high = bounds.get(f"min_{name}"), bounds.get(f"max_{name}")
        if low is not None and high is not None and low >= high:
            errors.append(f"{path}: min_{name} must be lower than max_{name} (max is exclusive)")
    days = restrictions.get("day_of_week")
    if days is not None:
        if not isinstance(days, list):
            errors.append(f"{path}.day_of_week: must be a list of DayOfWeek, got {days!r}")
        else:
            for day in days:
                if day not in DayOfWeek.values:
                    errors.append(f"{path}.day_of_week: {day!r} is not a DayOfWeek ({_choices(DayOfWeek)})")
            if len(set(map(str, days))) != len(days):
                errors.append(f"{path}.day_of_week: lists a day twice")
    reservation = restrictions.get("reservation")
    if reservation is not None and reservation not in ReservationRestrictionType.values:
        errors.append(
            f"{path}.reservation: {reservation!r} is not a ReservationRestrictionType "
            f"({_choices(ReservationRestrictionType)})"
        )


def check_tariff_elements(*, elements: Any) -> None:
    """`elements` must be a non-empty list of OCPI TariffElement objects, each with at least one
    PriceComponent (type, price, optional vat, step_size) and optional TariffRestrictions, with OCPI enum
    values only."""
    errors: list[str] = []
    if not isinstance(elements, list) or not elements:
        raise ValidationError("elements: must be a non-empty list of TariffElement objects")
    for index, element in enumerate(elements):
        path = f"elements[{index}]"
        if not isinstance(element, dict):
            errors.append(f"{path}: must be a TariffElement object, got {element!r}")
            continue
        unknown = set(element) - ELEMENT_KEYS
        if unknown:
            errors.append(f"{path}: unknown field(s) {', '.join(sorted(unknown))}")
        components = element.get("price_components")
        kinds = []
        if not isinstance(components, list) or not components:
            errors.append(f"{path}.price_components: must be a non-empty list of PriceComponent objects")
        else:
            for c_index, component in enumerate(components):
                kinds.append(_check_component(errors, f"{path}.price_components[{c_index}]", component))
            for kind in sorted({k for k in kinds if k is not None and kinds.count(k) > 1}):
                # "Only one Price Component per dimension can be active at any point in time" (mod_tariffs)
                errors.append(f"{path}.price_components: more than one {kind} component in one element")
        restrictions = element.get("restrictions")
        if restrictions is not None:
            _check_restrictions(errors, f"{path}.restrictions", restrictions)
            if isinstance(restrictions, dict) and restrictions.get("reservation") is not None:
                for kind in kinds:
                    if kind is not None and kind not in RESERVATION_DIMENSIONS:
                        errors.append(
                            f"{path}: a reservation element can only have FLAT and TIME price components, not {kind}"
                        )
    if errors:
        raise ValidationError(errors)


def check_display_texts(*, texts: Any, field: str = "tariff_alt_text") -> None:
    """A list of OCPI DisplayText: {"language": ISO 639-1 (2 letters), "text": at most 512 characters}."""
    if not isinstance(texts, list):
        raise ValidationError(f"{field}: must be a list of DisplayText objects")
    errors = []
    for index, text in enumerate(texts):
        path = f"{field}[{index}]"
        if not isinstance(text, dict) or set(text) != {"language", "text"}:
            errors.append(f"{path}: must be an object with exactly 'language' and 'text'")
            continue
        if not (isinstance(text["language"], str) and LANGUAGE_RE.match(text["language"])):
            errors.append(f"{path}.language: must be a 2-letter ISO 639-1 code, got {text['language']!r}")
        if not isinstance(text["text"], str) or not text["text"] or len(text["text"]) > 512:
            errors.append(f"{path}.text: must be a non-empty string of at most 512 characters")
    if errors:
        raise ValidationError(errors)


def check_tariff_type(*, tariff_type: Any) -> None:
    if tariff_type is not None and tariff_type not in TariffType.values:
        raise ValidationError(f"type: {tariff_type!r} is not a TariffType ({_choices(TariffType)})")


def check_currency(*, currency: Any) -> None:
    if not (isinstance(currency, str) and CURRENCY_RE.match(currency)):
        raise ValidationError(f"currency: must be an ISO 4217 code of 3 capital letters, got {currency!r}")


def check_energy_mix(*, energy_mix: Any) -> None:
    """The OCPI EnergyMix object: only its one required field, `is_green_energy`, is checked."""
    if energy_mix is None:
        return
    if not isinstance(energy_mix, dict) or not isinstance(energy_mix.get("is_green_energy"), bool):
        raise ValidationError("energy_mix: must be an EnergyMix object with a boolean 'is_green_energy'")
