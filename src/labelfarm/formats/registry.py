"""The format registry and the records formats exchange with the services."""

from __future__ import annotations

import importlib
import threading
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Any

from labelfarm.errors import InvalidInput, ServerBusy
from labelfarm.schema import Schema

BUILTIN = (
    "jsonl",
    "csv_tsv",
    "folder",
    "coco_reader",
    "coco_writer",
    "yolo",
    "yolo_writer",
    "voc",
    "cvat",
    "cvat_writer",
    "labelstudio",
    "labelstudio_writer",
    "labelstudio_config",
    "textcls",
    "tables",
    "nemo_manifest",
    "audiofolder",
    "transcript_import",
    "transcript_writers",
)


ARCHIVE_RATIO_FLOOR = 16 << 20  # an archive's expansion ratio counts past this many bytes


@dataclass(frozen=True)
class ImportLimits:
    """What one import may hold; each is checked while reading, before anything is stored
    (the server takes them from its settings, see ``docs/settings.md``)."""

    item_bytes: int = 1 << 20  # one item: its line, array element or row, and its data JSON
    columns: int = 1000  # columns of a CSV or TSV file
    archive_bytes: int = 50 << 30  # a zip's entries inflated, all together
    archive_ratio: int = 100  # inflated bytes per archive byte (past ARCHIVE_RATIO_FLOOR)
    audio_url_hosts: tuple[str, ...] = ()  # hosts a JSONL item's media URL may name
    audio_url_max_bytes: int = 2 << 30  # the largest file fetched from a media URL


class ImportInterrupted(ServerBusy):
    """The server is stopping: an import in progress gives up (nothing of it is kept)."""

    def __init__(self) -> None:
        super().__init__(
            "the server is stopping: the import was interrupted and nothing was imported; "
            "send it again",
            retry_after=30,
        )


@dataclass
class ImportSource:
    """What an importer reads: a local file or folder, and the name the user gave it.

    Readers bound what they read by ``limits`` and call :meth:`check_cancel` in long loops
    (between rows, chunks, archive entries), so an import stops soon after ``cancel`` is set.
    """

    path: Path
    filename: str
    schema: Schema
    options: dict[str, Any] = field(default_factory=dict)
    bytes_read: int = 0  # advanced by readers, for progress bars
    limits: ImportLimits = field(default_factory=ImportLimits)
    cancel: threading.Event | None = None
    # what the file holds beside its items, by format (``{"coco": {"info": ...}}``), kept
    # with the import and handed to exports in that format as ``ExportContext.file_meta``
    file_meta: dict[str, Any] = field(default_factory=dict)
    # what the file held that the import leaves out on purpose: reason -> how many times,
    # said in the import's report (see :meth:`note`)
    notes: dict[str, int] = field(default_factory=dict)

    def note(self, reason: str, n: int = 1) -> None:
        """Count something the file holds that the import does not keep. ``reason`` starts
        with the key path of what is left out (``annotations[].reviews: …``)."""
        self.notes[reason] = self.notes.get(reason, 0) + n

    def check_cancel(self) -> None:
        """Raise :class:`ImportInterrupted` once ``cancel`` is set."""
        if self.cancel is not None and self.cancel.is_set():
            raise ImportInterrupted()


@dataclass
class ItemRecord:
    """One item to create. ``media_path`` is a local file to store content-addressed.

    ``annotations`` are labels made in another tool: ``{"annotator": name, "value": {...}}``
    with optional ``created_at`` (epoch seconds) and ``duration_ms``; the value is already
    validated against the schema. They are stored as annotations of a non-login user per
    annotator name (see :func:`labelfarm.services.imports.import_items`).
    """

    data: dict[str, Any]
    external_id: str | None = None
    priority: int = 0
    deadline: float | None = None
    media_path: Path | None = None
    media_url: str | None = None  # media to fetch (from an allowed host) into media_path
    predictions: list[dict[str, Any]] = field(default_factory=list)
    annotations: list[dict[str, Any]] = field(default_factory=list)
    gold: dict[str, Any] | None = None  # the known answer of a gold item
    gold_kind: str = "control"  # of a gold item: "training" (answer shown) or "control"
    data_json: str | None = None  # ``data`` as JSON text, once its size has been checked
    # the image's (width, height) in pixels as the source file gives it; the size decoded
    # from ``media_path`` takes precedence
    image_size: tuple[int | float, int | float] | None = None
    # what the source said of the item beyond its data (kept verbatim for an export in that
    # format); annotations and predictions may carry their own "source_meta" likewise
    source_meta: dict[str, Any] | None = None


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
    predictions: list[dict[str, Any]] = field(default_factory=list)
    image_size: tuple[int | float, int | float] | None = None  # stored at import, in pixels
    source_meta: dict[str, Any] | None = None  # ItemRecord.source_meta, as imported


@dataclass
class ExportContext:
    """What a writer may need beyond the records: the project, the time, the media files."""

    project_id: int = 0
    project_name: str = ""
    schema_version: int = 1
    exported_at: float = 0.0
    open_media: Callable[[str], IO[bytes]] | None = None  # by sha256
    options: dict[str, Any] = field(default_factory=dict)  # e.g. {"media": True}
    file_meta: dict[str, Any] = field(default_factory=dict)  # the imports' file_meta, merged


ReadResult = tuple[str, "ItemRecord | list[RowProblem]"]
Reader = Callable[[ImportSource], Iterator[ReadResult]]
Writer = Callable[[Iterable[ExportRecord], Schema, ExportContext], Iterator[bytes]]
AnyWriter = Callable[..., Iterator[bytes]]

_READERS: dict[str, Reader] = {}
_WRITERS: dict[str, Writer] = {}
_MEDIA_TYPES: dict[str, str] = {}
_EXTENSIONS: dict[str, str] = {}


def register_reader(name: str) -> Callable[[Reader], Reader]:
    def deco(fn: Reader) -> Reader:
        _READERS[name] = fn
        return fn

    return deco


def register_writer(
    name: str, media_type: str, *, extension: str | None = None, context: bool = False
) -> Callable[[AnyWriter], AnyWriter]:
    """Register ``fn(records, schema)``, or ``fn(records, schema, ctx)`` with ``context``."""

    def deco(fn: AnyWriter) -> AnyWriter:
        if context:
            _WRITERS[name] = fn
        else:
            _WRITERS[name] = lambda records, schema, ctx: fn(records, schema)
        _MEDIA_TYPES[name] = media_type
        _EXTENSIONS[name] = extension or name
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


def writer_extension(name: str) -> str:
    """The file name extension of an export in format ``name`` (``zip`` for archives)."""
    writer(name)
    return _EXTENSIONS[name]


def reader_names() -> list[str]:
    load_builtin()
    return sorted(_READERS)


def writer_names() -> list[str]:
    load_builtin()
    return sorted(_WRITERS)
