"""What every export carries about itself, and the media files of zip exports.

The manifest names the format, the project, the schema version, the export time and the
counts; in a zip export it is written last as ``manifest.json`` with the SHA-256 and size
of every other file in the archive (see :class:`labelfarm.formats.archive.ZipStream`).
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from pathlib import PurePosixPath
from typing import Any

from labelfarm.formats.archive import ZipStream, read_file_obj
from labelfarm.formats.registry import ExportContext
from labelfarm.jsonutil import iso

MANIFEST_VERSION = 1


def manifest(fmt: str, ctx: ExportContext, counts: dict[str, int]) -> dict[str, Any]:
    from labelfarm import __version__

    return {
        "manifest_version": MANIFEST_VERSION,
        "generator": f"labelfarm {__version__}",
        "format": fmt,
        "project": {"id": ctx.project_id, "name": ctx.project_name},
        "schema_version": ctx.schema_version,
        "exported_at": iso(ctx.exported_at),
        "counts": dict(counts),
    }


def safe_name(name: str) -> str:
    """A relative path inside an archive: no root, no '..', forward slashes."""
    parts = [p for p in PurePosixPath(name.replace("\\", "/")).parts if p not in ("/", "..", ".")]
    return "/".join(parts) or "unnamed"


def media_entries(
    z: ZipStream, files: Iterable[tuple[str, str]], ctx: ExportContext, counts: dict[str, int]
) -> Iterator[bytes]:
    """Add each (archive name, sha256) media file, once per name; counts ``media`` and
    ``media_missing``."""
    counts.setdefault("media", 0)
    counts.setdefault("media_missing", 0)
    if ctx.open_media is None:
        return
    for name, sha in files:
        if name in z.files:
            continue
        try:
            fh = ctx.open_media(sha)
        except (OSError, FileNotFoundError):
            counts["media_missing"] += 1
            continue
        with fh:
            yield from z.add(name, read_file_obj(fh), compress=False)
        counts["media"] += 1
