"""Reading text files line by line with bounded memory: JSON Lines and CSV / TSV tables.

A line or row may be at most the largest item (``ImportLimits.item_bytes``): it is read
with a bounded ``readline``, so a file that is one 200 MB line costs at most that much
memory before it is refused, never the whole line. Text is decoded line by line, so bytes
that are not UTF-8 are reported on their own line, with their byte offset in the file.
A table has at most ``ImportLimits.columns`` columns, its names checked in linear time.
"""

from __future__ import annotations

import csv
from collections import Counter
from collections.abc import Iterator
from contextlib import contextmanager
from typing import IO, Any

import orjson

from labelfarm.formats.registry import ImportSource, RowProblem

_SKIP = 1 << 20
_BOM = b"\xef\xbb\xbf"


def _mib(n: int) -> str:
    return f"{n / (1 << 20):g} MiB"


def _not_utf8(raw: bytes, start: int) -> str | None:
    """Why ``raw`` (read from byte ``start`` of the file) is not UTF-8, if it is not."""
    try:
        raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        return f"not UTF-8 (byte {start + exc.start}): {exc.reason}"
    return None


def json_lines(source: ImportSource) -> Iterator[tuple[str, Any]]:
    """``(where, value)`` for each non-blank line of a JSON Lines file, or
    ``(where, problem)`` for a line that is too long or not JSON."""
    limit = source.limits.item_bytes
    with open(source.path, "rb") as fh:
        n = 0
        while raw := fh.readline(limit + 1):
            n += 1
            start = source.bytes_read
            source.bytes_read += len(raw)
            where = f"line {n}"
            if len(raw) > limit and not raw.endswith(b"\n"):
                while raw and not raw.endswith(b"\n"):  # the rest of the line, unkept
                    raw = fh.readline(_SKIP)
                    source.bytes_read += len(raw)
                reason = f"a line larger than {_mib(limit)} (the largest item)"
                yield where, RowProblem(where, "", reason)
                continue
            if not raw.strip():
                continue
            try:
                value = orjson.loads(raw)
            except orjson.JSONDecodeError as exc:
                reason = _not_utf8(raw, start) or (
                    f"not JSON: {exc}"
                    if raw.endswith(b"\n")
                    else "the line is cut off (file truncated?)"
                )
                yield where, RowProblem(where, "", reason)
                continue
            yield where, value


class Unreadable(ValueError):
    """A row that cannot be read: too long, or not UTF-8. Reading stops there."""

    def __init__(self, line: int, reason: str) -> None:
        super().__init__(reason)
        self.where = f"line {line}"
        self.reason = reason


class _Lines:
    """The lines of a binary file as text, for :mod:`csv`; a row (from :meth:`start_row`)
    may take at most ``limit`` bytes."""

    def __init__(self, fh: IO[bytes], limit: int) -> None:
        self.fh = fh
        self.limit = limit
        self.line = 0
        self.bytes = 0
        self.row_start = 0
        self.row_line = 1

    def start_row(self) -> None:
        self.row_start = self.bytes
        self.row_line = self.line + 1

    def __iter__(self) -> _Lines:
        return self

    def __next__(self) -> str:
        room = self.limit - (self.bytes - self.row_start)
        raw = self.fh.readline(room + 1)
        if not raw:
            raise StopIteration
        start = self.bytes
        self.line += 1
        self.bytes += len(raw)
        if self.bytes - self.row_start > self.limit:
            reason = f"larger than {_mib(self.limit)} (the largest item)"
            raise Unreadable(self.row_line, reason)
        if start == 0 and raw.startswith(_BOM):
            raw, start = raw[3:], 3
        try:
            return raw.decode("utf-8")
        except UnicodeDecodeError:
            raise Unreadable(self.line, _not_utf8(raw, start) or "not UTF-8") from None


class Table:
    """A CSV or TSV file: its checked header (``names``, or ``problems``), then its rows."""

    def __init__(self, fh: IO[bytes], source: ImportSource, delimiter: str) -> None:
        self.source = source
        self.lines = _Lines(fh, source.limits.item_bytes)
        self.reader = csv.reader(self.lines, delimiter=delimiter)
        self.names: list[str] = []
        self.problems: list[RowProblem] = []
        try:
            header = next(self.reader)
        except StopIteration:
            return
        except Unreadable as exc:
            self.problems = [RowProblem(exc.where, "", f"unreadable header: {exc.reason}")]
            return
        except csv.Error as exc:
            self.problems = [RowProblem("line 1", "", f"unreadable header: {exc}")]
            return
        self.names = [h.strip() for h in header]
        reason = _header_problem(self.names, source.limits.columns)
        if reason:
            self.problems = [RowProblem("line 1", "", reason)]

    def rows(self) -> Iterator[tuple[str, list[str] | RowProblem]]:
        """``(where, values)`` for each non-empty row with one value per column, or
        ``(where, problem)``; an unreadable row ends the reading."""
        width = len(self.names)
        while True:
            self.lines.start_row()
            try:
                row = next(self.reader)
            except StopIteration:
                return
            except Unreadable as exc:
                yield exc.where, RowProblem(exc.where, "", f"unreadable row: {exc.reason}")
                return
            except csv.Error as exc:
                where = f"line {self.lines.row_line}"
                yield where, RowProblem(where, "", f"unreadable row: {exc}")
                return
            where = f"line {self.reader.line_num}"
            self.source.bytes_read = self.lines.bytes
            if not row:
                continue
            if len(row) != width:
                yield where, RowProblem(where, "", f"{len(row)} values for {width} columns")
                continue
            yield where, row


def _header_problem(names: list[str], max_columns: int) -> str | None:
    if len(names) > max_columns:
        return f"{len(names)} columns; at most {max_columns}"
    dupes = sorted(n for n, k in Counter(names).items() if k > 1)
    if dupes:
        shown = dupes[:20]
        more = f" and {len(dupes) - len(shown)} more" if len(dupes) > len(shown) else ""
        return f"duplicate columns {shown}{more}"
    if "" in names:
        return "a column has no name"
    return None


@contextmanager
def open_table(source: ImportSource, delimiter: str) -> Iterator[Table]:
    with open(source.path, "rb") as fh:
        yield Table(fh, source, delimiter)
