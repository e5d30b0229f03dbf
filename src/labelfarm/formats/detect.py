"""Telling a file's import format from its name and its first bytes.

:func:`guess_format` looks at a file's suffix, then at what it starts with (the root
element of XML, the top-level keys of JSON, the entries of a zip or folder). A file it cannot
place is an error saying so and listing the formats, never a guess that reports every line.
"""

from __future__ import annotations

import re
import zipfile
from pathlib import Path, PurePosixPath

from labelfarm.errors import InvalidInput
from labelfarm.formats.folder import AUDIO
from labelfarm.formats.registry import reader_names

TRANSCRIPTS = (".vtt", ".srt", ".stm", ".ctm")

_PEEK = 64 * 1024


def guess_format(path: Path, filename: str | None = None) -> str:
    """The reader name for ``path`` (named ``filename`` by the user), or InvalidInput."""
    name = filename or path.name
    if path.is_dir():
        fmt = _from_names([p.relative_to(path).as_posix() for p in path.rglob("*")], folder=True)
    elif zipfile.is_zipfile(path):
        with zipfile.ZipFile(path) as zf:
            fmt = _from_names(zf.namelist(), folder=False)
    else:
        fmt = _from_content(path, PurePosixPath(name).suffix.lower())
    if fmt is None:
        raise InvalidInput(
            f"unknown format: cannot tell the format of {name!r} from its name or content; "
            f"give the format, one of {[n for n in reader_names() if n != 'folder']}",
            [{"location": name, "field": "format", "reason": "unknown format"}],
        )
    return fmt


def _from_names(names: list[str], *, folder: bool) -> str | None:
    """The format of a folder or zip, from the names of its entries."""
    base = {PurePosixPath(n).name.lower() for n in names}
    parts = {p.lower() for n in names for p in PurePosixPath(n).parts[:-1]}
    if "data.yaml" in base or "classes.txt" in base or "labels" in parts:
        return "yolo"
    if any(PurePosixPath(n).suffix in TRANSCRIPTS for n in base):
        return "transcripts"  # audio with .vtt/.srt/.stm/.ctm transcripts
    if "annotations.xml" in base:
        return "cvat"
    if "annotations" in parts and any(n.lower().endswith(".xml") for n in names):
        return "voc"
    if any(n.lower().endswith(".jsonl") for n in names) and any(
        PurePosixPath(n).suffix.lower() in AUDIO for n in names
    ):
        return "nemo-manifest"  # a speech manifest beside its audio
    if any(n.lower().endswith(".json") for n in names):
        return "coco"
    return "folder" if folder else None


def _from_content(path: Path, suffix: str) -> str | None:
    with open(path, "rb") as fh:
        head = fh.read(_PEEK)
    text = head.lstrip(b"\xef\xbb\xbf \t\r\n")
    if suffix in (".csv", ".tsv"):
        return suffix[1:]
    if suffix in TRANSCRIPTS:
        return "transcripts"
    if text.startswith(b"<"):
        root = re.search(rb"<([A-Za-z_][\w.-]*)[\s>/]", re.sub(rb"<[?!][^>]*>", b"", text))
        tag = root.group(1) if root else b""
        return {b"annotations": "cvat", b"annotation": "voc"}.get(tag)
    if text.startswith(b"["):
        return "labelstudio"
    if text.startswith(b"{"):
        first = text.split(b"\n", 1)[0]
        keys = set(re.findall(rb'"(\w+)"\s*:', text[:4096]))
        if b"audio_filepath" in keys:
            return "nemo-manifest"  # a NeMo speech manifest
        if suffix in (".jsonl", ".ndjson") or (
            first.rstrip().endswith(b"}") and b"\n{" in text.replace(b"\r", b"")
        ):
            return "jsonl"  # labelfarm's own lines (doccano's are asked for by name)
        if keys & {b"images", b"categories"}:
            return "coco"
        if keys & {b"data", b"annotations", b"predictions"}:
            return "labelstudio"
        return "jsonl"
    return None
