"""Exports staff open in a spreadsheet never carry a formula from partner-controlled text."""

import csv
import io
from decimal import Decimal

import pytest

from cpo.spreadsheets import SafeCsvWriter


def write(row) -> list[str]:
    out = io.StringIO()
    SafeCsvWriter(out).writerow(row)
    return next(csv.reader(io.StringIO(out.getvalue(), newline="")))


@pytest.mark.parametrize(
    "cell", ['=2+5*HYPERLINK("http://x")', "+1+1", "-1+cmd|' /C calc'!A0", "@SUM(A1)", "\t=1", "\r=1"]
)
def test_text_that_a_spreadsheet_would_run_is_kept_as_text(cell):
    assert write([cell]) == ["'" + cell]


def test_numbers_and_ordinary_text_are_unchanged():
    assert write([Decimal("-8.0000"), "-8.0000", "12", "NL-EXM-C00000002", "", 3]) == [
        "-8.0000",
        "-8.0000",
        "12",
        "NL-EXM-C00000002",
        "",
        "3",
    ]
