"""Others' text on its way out: what renderers show of argv, tags, host, cwd, paths, provider
and log text passes through here, for a terminal (`shown`), rich (`rich_text`: never markup)
and a spreadsheet (`csv_cell`). Pure; rich is imported only by `rich_text`."""

from __future__ import annotations

from carbonwrap.errors import shown

TYPE_CHECKING = False  # typing's, without importing typing (start-up: lite.py)
if TYPE_CHECKING:
    import re
    from collections.abc import Sequence
    from typing import TypeVar

    from rich.text import Text

    Row = TypeVar("Row", bound=tuple[str, ...])

__all__ = ["csv_cell", "csv_row", "rich_text", "shown", "shown_row"]

# What makes a spreadsheet read a cell as a formula (OWASP, "CSV Injection"): such a cell gets a
# single quote in front, which Excel, LibreOffice and Google Sheets show as text.
FORMULA_STARTS = ("=", "+", "-", "@", "\t", "\r")
_NUMBER = r"[-+]?(?:\d+\.?\d*|\.\d+)(?:[eE][-+]?\d+)?"  # a number is no formula: -1.5e-05 stays
_number: re.Pattern[str] | None = None


def shown_row(row: Row) -> Row:
    """Each cell of a row `shown`."""
    return tuple(shown(cell) for cell in row)  # type: ignore[return-value]  # the same shape


def rich_text(text: str, style: str = "") -> Text:
    """A rich `Text`: what it holds is shown as it is, never read as markup ("[/x]" would raise,
    "[red]" colour) or emoji codes (":warning:"); its control characters already escaped."""
    from rich.text import Text

    return Text(shown(text), style=style)


def csv_cell(text: str) -> str:
    """One CSV cell: control characters escaped as `shown` does (a line feed or tab inside a
    cell is data: the CSV writer quotes it), and a cell that begins like a formula made text
    with a leading single quote, unless it is a number."""
    global _number
    text = shown(text, keep="\n\t")
    if not text.startswith(FORMULA_STARTS):
        return text
    if _number is None:
        import re  # a formula-like cell only

        _number = re.compile(_NUMBER)
    return text if _number.fullmatch(text) else "'" + text


def csv_row(cells: Sequence[str]) -> list[str]:
    """Each cell through `csv_cell`; a row without a control character anywhere (nearly all)
    is checked for formula starts only (a report's CSV has hundreds of thousands of cells)."""
    joined = "".join(cells)
    if joined.isascii() and joined.isprintable():
        return [csv_cell(c) if c.startswith(FORMULA_STARTS) else c for c in cells]
    return [csv_cell(c) for c in cells]
