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
        return cls(datetime.combine(first, time.min, tzinfo=UTC),
                   datetime.combine(last + timedelta(days=1), time.min, tzinfo=UTC))

    @property
    def hours(self) -> Decimal:
        return Decimal((self.end - self.start).total_seconds()) / 3600
