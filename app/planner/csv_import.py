"""Reading a keyword CSV (`keyword[,volume,difficulty,intent]`) into rows to add.

A file that cannot be read as a whole (not UTF-8, binary, no `keyword` column) raises
InvalidInput and nothing is imported; a row that cannot be read is reported with its number.
"""

from __future__ import annotations

import csv
import io
from dataclasses import dataclass

from app.errors import InvalidInput

COLUMNS = ("keyword", "volume", "difficulty", "intent")


@dataclass(frozen=True)
class RawRow:
    """One data row as text, with its row number in the file (the header is row 1)."""

    row: int
    keyword: str
    volume: str | None
    difficulty: str | None
    intent: str | None


def read_csv(data: bytes) -> list[RawRow]:
    try:
        text = data.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        raise InvalidInput(
            f"the file is not UTF-8 text (invalid byte at position {exc.start}); "
            "save it as CSV UTF-8 and upload again",
            code="invalid_file",
        ) from None
    if "\x00" in text:
        raise InvalidInput("the file is not a CSV file (it holds binary data)", code="invalid_file")
    if not text.strip():
        raise InvalidInput("the file is empty", code="invalid_file")
    reader = csv.reader(io.StringIO(text, newline=""), dialect=_dialect(text), strict=True)
    try:
        header = next(reader)
        positions = _positions(header)
        rows: list[RawRow] = []
        for cells in reader:
            if not any(cell.strip() for cell in cells):
                continue
            values = {
                name: (cells[i].strip() if i < len(cells) else "") for name, i in positions.items()
            }
            rows.append(
                RawRow(
                    row=reader.line_num,
                    keyword=values["keyword"],
                    volume=values.get("volume") or None,
                    difficulty=values.get("difficulty") or None,
                    intent=values.get("intent") or None,
                )
            )
    except csv.Error as exc:
        raise InvalidInput(
            f"the file is not valid CSV (line {reader.line_num}: {exc})", code="invalid_file"
        ) from None
    return rows


def _dialect(text: str) -> type[csv.Dialect]:
    """Comma by default; semicolon or tab when the header uses them (spreadsheet exports)."""
    header = text.lstrip().splitlines()[0]
    if "," not in header and ";" in header:
        return _Semicolon
    if "," not in header and "\t" in header:
        return csv.excel_tab
    return csv.excel


class _Semicolon(csv.excel):
    delimiter = ";"


def _positions(header: list[str]) -> dict[str, int]:
    names = [cell.strip().lower() for cell in header]
    if "keyword" not in names:
        found = ", ".join(repr(n) for n in names[:10] if n) or "none"
        raise InvalidInput(
            f"the CSV has no 'keyword' column (the first row must be a header such as "
            f"keyword,volume,difficulty,intent; found {found})",
            code="invalid_file",
        )
    return {name: names.index(name) for name in COLUMNS if name in names}
