"""A folder of files: each image, audio or text file becomes one item.

Images and audio are stored content-addressed; the item's data names the file by its
path relative to the folder (``{"image": "shirts/0001.jpg"}``); a ``.txt`` file's content
becomes ``{"text": ...}``. Hidden files are passed over; any other file is a located error.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

from labelfarm.formats.registry import (
    ImportSource,
    ItemRecord,
    ReadResult,
    RowProblem,
    register_reader,
)
from labelfarm.formats.transcript_files import load_sidecars
from labelfarm.formats.transcripts import EXTENSIONS as TRANSCRIPTS

IMAGE = frozenset({".jpg", ".jpeg", ".png", ".webp", ".gif", ".bmp", ".tif", ".tiff"})
AUDIO = frozenset({".wav", ".mp3", ".flac", ".ogg", ".opus", ".m4a"})
TEXT = frozenset({".txt"})


def _files(root: Path) -> Iterator[Path]:
    for dirpath, dirnames, filenames in os.walk(root):
        dirnames[:] = sorted(d for d in dirnames if not d.startswith("."))
        for name in sorted(filenames):
            if not name.startswith("."):
                yield Path(dirpath) / name


@register_reader("folder")
def read_folder(source: ImportSource) -> Iterator[ReadResult]:
    root = source.path
    if not root.is_dir():
        yield str(root), [RowProblem(str(root), "", "not a folder")]
        return
    yield from read_files(root, source)


def read_files(root: Path, source: ImportSource) -> Iterator[ReadResult]:
    """The items of the files under ``root``; audio files get the transcripts beside them
    (:mod:`labelfarm.formats.transcript_files`)."""
    data_keys = source.schema.data
    transcripts = [p for p in _files(root) if p.suffix.lower() in TRANSCRIPTS]
    sidecars = load_sidecars(root, transcripts, source)
    for problem in sidecars.problems:
        yield problem.location, [problem]
    for path in _files(root):
        rel = path.relative_to(root).as_posix()
        source.bytes_read += 1  # progress counts files for a folder
        ext = path.suffix.lower()
        if path.is_symlink():
            yield rel, [RowProblem(rel, "", "symbolic links are not followed")]
            continue
        if ext in TEXT:
            limit = source.limits.item_bytes
            if path.stat().st_size > limit:
                reason = f"a text larger than {limit / (1 << 20):g} MiB (the largest item)"
                yield rel, [RowProblem(rel, "text", reason)]
                continue
            try:
                text = path.read_text(encoding="utf-8")
            except UnicodeDecodeError:
                yield rel, [RowProblem(rel, "text", "not UTF-8 text")]
                continue
            key = _key(data_keys, "text")
            yield rel, ItemRecord(data={key: text}, external_id=rel)
        elif ext in IMAGE or ext in AUDIO:
            key = _key(data_keys, "image" if ext in IMAGE else "audio")
            rec = ItemRecord(data={key: rel}, external_id=rel, media_path=path)
            yield rel, sidecars.attach(rec, rel, source) if ext in AUDIO and sidecars else rec
        elif ext in TRANSCRIPTS:
            continue  # given to the audio files it names
        else:
            yield rel, [RowProblem(rel, "", f"unsupported file type {ext or '(none)'}")]
    yield from sidecars.unused()


def _key(data_keys: dict[str, str], kind: str) -> str:
    """The schema's data key of this kind, or the kind's own name."""
    for key, k in data_keys.items():
        if k == kind:
            return key
    return kind
