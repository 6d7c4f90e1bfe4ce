"""A period of whole UTC days, the unit the analytics aggregate over."""

from dataclasses import dataclass
from datetime import UTC, datetime, time, timedelta
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


def seconds_exact(value: timedelta | Decimal | float | None) -> Decimal:
    """An interval (timedelta) or a number of seconds, exactly (to the microsecond), as a Decimal."""
    if value is None:
        return Decimal(0)
    if isinstance(value, timedelta):
        return Decimal(value.days * 86400 + value.seconds) + Decimal(value.microseconds) / 1_000_000
    return Decimal(value)
