"""How far a charger's clock was off, in words staff read at a glance."""

from django import template

register = template.Library()


@register.filter
def clock_skew(seconds: int | None) -> str:
    """E.g. 31536000 -> "365 days ahead", -90 -> "2 min behind"."""
    if seconds is None:
        return ""
    size = abs(seconds)
    if size >= 2 * 86400:
        amount = f"{size // 86400} days"
    elif size >= 2 * 3600:
        amount = f"{size // 3600} h"
    else:
        amount = f"{max(size // 60, 1)} min"
    return f"{amount} {'ahead' if seconds > 0 else 'behind'}"
