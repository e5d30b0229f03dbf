"""The format registry and the records formats exchange with the services."""

from __future__ import annotations

import importlib
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from labelfarm.errors import InvalidInput
from labelfarm.schema import Schema

BUILTIN = ("jsonl", "csv_tsv", "folder")


@dataclass
class ImportSource:
    """What an importer reads: a local file or folder, and the name the user gave it."""

    path: Path
    filename: str
    schema: Schema
    options: dict[str, Any] = field(default_factory=dict)
    bytes_read: int = 0  # advanced by readers, for progress bars


@dataclass
class ItemRecord:
    """One item to create. ``media_path`` is a local file to store content-addressed."""

    data: dict[str, Any]
    external_id: str | None = None
    priority: int = 0
    deadline: float | None = None
    media_path: Path | None = None
    predictions: list[dict[str, Any]] = field(default_factory=list)
    annotations: list[dict[str, Any]] = field(default_factory=list)


@dataclass
class RowProblem:
    """A located problem: where (``line 12``, ``cats/3.jpg``), which field, and why."""

    location: str
    field: str
    reason: str

    def to_dict(self) -> dict[str, str]:
        return {"location": self.location, "field": self.field, "reason": self.reason}


@dataclass
class ExportRecord:
    """One item as exported: its data, every annotation, and its current label."""

    item_id: int
    external_id: str | None
    data: dict[str, Any]
    media_sha256: str | None
    annotations: list[dict[str, Any]]
    label: dict[str, Any] | None


ReadResult = tuple[str, "ItemRecord | list[RowProblem]"]
Reader = Callable[[ImportSource], Iterator[ReadResult]]
Writer = Callable[[Iterable[ExportRecord], Schema], Iterator[bytes]]

_READERS: dict[str, Reader] = {}
_WRITERS: dict[str, Writer] = {}
_MEDIA_TYPES: dict[str, str] = {}


def register_reader(name: str) -> Callable[[Reader], Reader]:
    def deco(fn: Reader) -> Reader:
        _READERS[name] = fn
        return fn

    return deco


def register_writer(name: str, media_type: str) -> Callable[[Writer], Writer]:
    def deco(fn: Writer) -> Writer:
        _WRITERS[name] = fn
        _MEDIA_TYPES[name] = media_type
        return fn

    return deco


def load_builtin() -> None:
    for module in BUILTIN:
        importlib.import_module(f"labelfarm.formats.{module}")


def reader(name: str) -> Reader:
    load_builtin()
    if name not in _READERS:
        raise InvalidInput(
            f"unknown import format {name!r}; valid formats: {reader_names()}",
            [{"field": "format", "reason": f"unknown format {name!r}"}],
        )
    return _READERS[name]


def writer(name: str) -> tuple[Writer, str]:
    load_builtin()
    if name not in _WRITERS:
        raise InvalidInput(
            f"unknown export format {name!r}; valid formats: {writer_names()}",
            [{"field": "format", "reason": f"unknown format {name!r}"}],
        )
    return _WRITERS[name], _MEDIA_TYPES[name]


def reader_names() -> list[str]:
    load_builtin()
    return sorted(_READERS)


def writer_names() -> list[str]:
    load_builtin()
    return sorted(_WRITERS)
