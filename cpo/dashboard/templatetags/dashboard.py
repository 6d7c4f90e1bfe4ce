"""Template filters for the dashboard: status names as words, a charger's answer as a sentence."""

import json

from django import template
from django.template.defaultfilters import floatformat

from cpo.dashboard.selectors.commands import command_answer_text

register = template.Library()

# Words for names that do not split on their own (enum values written as one word).
STATUS_WORDS = {
    "OUTOFORDER": "Out of order",
    "NOT_SENT": "Not sent",
    "EMSP": "eMSP",
    "CPO": "CPO",
    "HUB": "Hub",
    "NSP": "NSP",
    "NAP": "NAP",
    "SCSP": "SCSP",
}


@register.filter
def words(value) -> str:
    """OUTOFORDER -> "Out of order", CHARGING -> "Charging", PARKING_TIME -> "Parking time"."""
    if value is None or value == "":
        return ""
    text = str(value)
    if text in STATUS_WORDS:
        return STATUS_WORDS[text]
    if text.isupper() or "_" in text:
        text = text.replace("_", " ").lower()
        return text[:1].upper() + text[1:]
    return text


@register.filter
def answer_text(entry) -> str:
    """An audit entry's outcome as staff read it."""
    return command_answer_text(action=entry.action, answer=entry.answer)


@register.filter
def payload_text(payload) -> str:
    """A request's fields as "key: value, key: value" (nested values as JSON), not Python's repr of a dict."""
    if not payload:
        return "–"
    if not isinstance(payload, dict):
        return json.dumps(payload, sort_keys=True, default=str)
    return ", ".join(
        f"{key}: {value if isinstance(value, str | int | float) else json.dumps(value, sort_keys=True, default=str)}"
        for key, value in payload.items()
    )


@register.filter
def kwh(value, decimals: int = 2) -> str:
    """Energy in kWh with two decimals in the reader's number format ("2.40" in English, "2,40" in German; thousands
    grouped): three decimals read as thousands to European staff ("2.400")."""
    if value is None or value == "":
        return "–"
    return floatformat(value, f"{decimals}g")
