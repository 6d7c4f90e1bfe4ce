"""CSV files that staff open in spreadsheets.

A text cell that starts with `=`, `+`, `-`, `@`, a tab or a carriage return is a formula to Excel and LibreOffice:
a partner-controlled token uid such as `=HYPERLINK(...)` would run when staff open an export. Such text cells are
prefixed with a single quote (OWASP's advice), which spreadsheets show as text. Numbers stay numbers, negative
ones included (a credit's "-8.0000"), whether given as numbers or as plain decimal text."""

import csv
import re
from collections.abc import Iterable
from typing import Any

FORMULA_STARTS = ("=", "+", "-", "@", "\t", "\r")
PLAIN_NUMBER = re.compile(r"-?\d+(\.\d+)?")


def spreadsheet_safe(value: Any) -> Any:
    if isinstance(value, str) and value.startswith(FORMULA_STARTS) and not PLAIN_NUMBER.fullmatch(value):
        return "'" + value
    return value


class SafeCsvWriter:
    """csv.writer whose text cells cannot become formulas. Lines end in CRLF (RFC 4180), so a carriage return inside
    a cell is quoted with it rather than read as the end of a row."""

    def __init__(self, out: Any, **kwargs: Any) -> None:
        self._writer = csv.writer(out, lineterminator="\r\n", **kwargs)

    def writerow(self, row: Iterable[Any]) -> Any:
        return self._writer.writerow([spreadsheet_safe(value) for value in row])
