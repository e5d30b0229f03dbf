"""Reading untrusted XML (through defusedxml: no entities, no external references) with
located errors, and small helpers shared by the XML formats."""

from __future__ import annotations

import xml.etree.ElementTree as ET
from collections.abc import Iterator
from pathlib import Path
from typing import IO, Any

import defusedxml.ElementTree as DET
from defusedxml import DefusedXmlException

from labelfarm.formats.registry import RowProblem

READ_ERRORS = (DefusedXmlException, ET.ParseError, OSError, UnicodeDecodeError)


def problem(exc: Exception, name: str) -> RowProblem:
    """The located problem for an error of :data:`READ_ERRORS` met reading file ``name``."""
    if isinstance(exc, DefusedXmlException):
        return RowProblem(
            name,
            "",
            f"refused: {type(exc).__name__} ({exc}): XML entities and "
            "external references are not allowed",
        )
    if isinstance(exc, ET.ParseError):
        line, col = exc.position
        return RowProblem(
            f"{name} line {line}",
            "",
            f"not well-formed XML (column {col}): {str(exc).split(':')[0]}",
        )
    return RowProblem(name, "", f"cannot read: {exc}")


def parse(path: Path, name: str) -> ET.Element | RowProblem:
    """The root element, or a located problem (a syntax error, an entity, a DTD)."""
    try:
        return DET.parse(str(path), forbid_dtd=False).getroot()
    except READ_ERRORS as exc:
        return problem(exc, name)


def iterparse(source: Path | IO[bytes]) -> Iterator[tuple[str, ET.Element]]:
    """``(event, element)`` pairs, ``start`` and ``end``, read a piece at a time. Raises
    one of :data:`READ_ERRORS` while iterating; :func:`problem` turns it into a row problem.
    Elements are built as usual: clear what has been handled to keep memory flat."""
    events: Iterator[tuple[str, ET.Element]] = DET.iterparse(
        source if not isinstance(source, Path) else str(source),
        events=("start", "end"),
        forbid_dtd=False,
    )
    return events


def num(text: str | None) -> int | float:
    """A number as written: whole numbers stay whole. Raises ValueError."""
    if text is None:
        raise ValueError("missing")
    t = text.strip()
    try:
        return int(t)
    except ValueError:
        v = float(t)
        if v != v or v in (float("inf"), float("-inf")):
            raise ValueError(t) from None
        return v


def scalar(text: str | None) -> Any:
    """Text as a number when it is one and writes back the same ('7', '2.5'), else the
    text ('1.50', '1e3' and 'left' stay text)."""
    if text is None:
        return None
    t = text.strip()
    try:
        v = num(t)
    except ValueError:
        return t
    return v if fmt(v) == t else t


def fmt(v: Any) -> str:
    """A number or value written back as text (2.4 → '2.4', True → 'true')."""
    if isinstance(v, bool):
        return "true" if v else "false"
    if isinstance(v, float) and v.is_integer() and abs(v) < 1e15:
        return repr(v)
    return str(v)


def sub(parent: ET.Element, tag: str, text: Any = None, **attrs: str) -> ET.Element:
    el = ET.SubElement(parent, tag, attrs)
    if text is not None:
        el.text = fmt(text)
    return el
