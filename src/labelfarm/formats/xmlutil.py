"""Reading untrusted XML (through defusedxml: no entities, no external references) with
located errors, and small helpers shared by the XML formats."""

from __future__ import annotations

import xml.etree.ElementTree as ET
from pathlib import Path
from typing import Any

import defusedxml.ElementTree as DET
from defusedxml import DefusedXmlException

from labelfarm.formats.registry import RowProblem


def parse(path: Path, name: str) -> ET.Element | RowProblem:
    """The root element, or a located problem (a syntax error, an entity, a DTD)."""
    try:
        return DET.parse(str(path), forbid_dtd=False).getroot()
    except DefusedXmlException as exc:
        return RowProblem(
            name,
            "",
            f"refused: {type(exc).__name__} ({exc}): XML entities and "
            "external references are not allowed",
        )
    except ET.ParseError as exc:
        line, col = exc.position
        return RowProblem(
            f"{name} line {line}",
            "",
            f"not well-formed XML (column {col}): {str(exc).split(':')[0]}",
        )
    except (OSError, UnicodeDecodeError) as exc:
        return RowProblem(name, "", f"cannot read: {exc}")


def iterparse(path: Path) -> Any:
    return DET.iterparse(str(path), events=("start", "end"), forbid_dtd=False)


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
    """Text as a number when it is one, else the text."""
    if text is None:
        return None
    try:
        return num(text)
    except ValueError:
        return text.strip()


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
