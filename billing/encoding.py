"""JSON that keeps OCPI numbers exact: read as Decimal, written as JSON numbers.

`DecimalJSONDecoder` parses every JSON number with a fraction as `Decimal`, so tariff prices loaded from the
database are never floats. `DecimalJSONEncoder` writes a `Decimal` back as a JSON number (OCPI "number"), not
as a string like Django's encoder does. The standard library can only emit numbers for int and float, so the
encoder goes through `float`: that is exact for the values OCPI carries (4 decimals, well under 15 significant
digits, which `float` round-trips); `checks` refuses prices that would not survive it.
"""

import datetime as dt
import json
from decimal import Decimal


class DecimalJSONDecoder(json.JSONDecoder):
    def __init__(self, *args, **kwargs):
        kwargs.setdefault("parse_float", Decimal)
        super().__init__(*args, **kwargs)


class DecimalJSONEncoder(json.JSONEncoder):
    def default(self, o):
        if isinstance(o, Decimal):
            return float(o)
        return super().default(o)


def ocpi_datetime(value: dt.datetime) -> str:
    """OCPI DateTime: "formatted as string(25) following RFC 3339", "SHALL be in UTC", written with `Z`
    ("+00:00 is not the same as UTC"). Fractions are cut to milliseconds, the longest that fits in 25
    characters (2018-01-01T01:08:01.123Z); cutting, not rounding, keeps a timestamp from moving past a
    `date_to`."""
    value = value.astimezone(dt.UTC)
    text = value.isoformat(timespec="milliseconds" if value.microsecond else "seconds")
    return text.replace("+00:00", "Z")
