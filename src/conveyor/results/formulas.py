"""Spreadsheet formula injection: CSV cells that Excel, LibreOffice or Google Sheets would run.

A cell whose text starts with ``= + - @`` (or a tab or carriage return, which some spreadsheets
skip before reading one of those) is taken as a formula when the file is opened, so a file
named ``=HYPERLINK(...).csv`` could run or leak data on the viewer's machine. Such text gets a
leading apostrophe, which spreadsheets read as "this is text" and do not display (OWASP's
advice for CSV injection).

Numbers stay numbers: ints and floats are written as they are (``-1.5`` is a value, not a
formula), and so is text that is exactly a decimal number (``"-2"``, ``"+3.5e-4"``), which a
spreadsheet reads as that number and never evaluates.
"""

from __future__ import annotations

import re
from typing import Any

FORMULA_STARTS = ("=", "+", "-", "@", "\t", "\r")
PLAIN_NUMBER = re.compile(r"[+-]?(\d+(\.\d*)?|\.\d+)([eE][+-]?\d+)?")


def spreadsheet_safe(value: Any) -> Any:
    """``value`` as a CSV cell that no spreadsheet evaluates; non-text values are unchanged."""
    if not isinstance(value, str) or not value.startswith(FORMULA_STARTS):
        return value
    if PLAIN_NUMBER.fullmatch(value):
        return value
    return "'" + value
