"""A period of whole UTC days, the unit the analytics aggregate over."""

from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from decimal import Decimal


@dataclass(frozen=True)
class Period:
    """[start, end) in UTC, from whole days."""

    start: datetime
    end: datetime

    @classmethod
    def of_days(cls, first, last) -> "Period":
        return cls(
            datetime.combine(first, time.min, tzinfo=UTC),
            datetime.combine(last + timedelta(days=1), time.min, tzinfo=UTC),
        )

    @property
    def hours(self) -> Decimal:
        return Decimal((self.end - self.start).total_seconds()) / 3600


class Preset:
    """Periods staff pick by name, in whole UTC days."""

    TODAY = "today"
    THIS_MONTH = "this_month"
    LAST_MONTH = "last_month"

    CHOICES = [(TODAY, "today"), (THIS_MONTH, "this month"), (LAST_MONTH, "last month")]


def preset_days(*, preset: str, today: date) -> tuple[date, date]:
    """The first and last day (inclusive) of a named period around `today`."""
    if preset == Preset.TODAY:
        return today, today
    first_of_month = today.replace(day=1)
    if preset == Preset.THIS_MONTH:
        return first_of_month, today
    if preset == Preset.LAST_MONTH:
        last = first_of_month - timedelta(days=1)
        return last.replace(day=1), last
    raise ValueError(f"unknown period {preset!r}")


def seconds_exact(value: timedelta | Decimal | float | None) -> Decimal:
    """An interval (timedelta) or a number of seconds, exactly (to the microsecond), as a Decimal."""
    if value is None:
        return Decimal(0)
    if isinstance(value, timedelta):
        return Decimal(value.days * 86400 + value.seconds) + Decimal(value.microseconds) / 1_000_000
    return Decimal(value)
