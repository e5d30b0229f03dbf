"""Zip archives: unpacking uploads safely, and writing exports as a stream.

Unpacking refuses what could harm the server: names that leave the target folder
(``../``, absolute paths, drive letters), links, and decompression bombs (too many files,
too many bytes in all, or an entry that inflates far beyond its compressed size). Sizes are
counted while inflating, not taken from the archive's own claims.

Writing (:class:`ZipStream`) produces the archive chunk by chunk for a streamed response:
entries are written with data descriptors, so nothing needs to seek, and every entry's
SHA-256 and size are collected for the ``manifest.json`` written last.
"""

from __future__ import annotations

import hashlib
import stat
import time
import zipfile
from collections.abc import Iterable, Iterator
from pathlib import Path, PurePosixPath
from typing import Any

import orjson

from labelfarm.formats.registry import ImportSource, RowProblem

MAX_FILES = 500_000
MAX_TOTAL_BYTES = 50 << 30
MAX_RATIO = 200  # an entry may inflate to at most this many times its compressed size…
RATIO_FLOOR = 1 << 20  # …once it is larger than this
_COPY = 1 << 20


class ArchiveError(Exception):
    def __init__(self, problems: list[RowProblem]) -> None:
        super().__init__("; ".join(p.reason for p in problems))
        self.problems = problems


def is_zip(path: Path) -> bool:
    if not path.is_file():
        return False
    with open(path, "rb") as fh:
        return fh.read(4) == b"PK\x03\x04"


def _bad_name(name: str) -> str | None:
    if "\\" in name:
        return "backslashes are not allowed in names"
    p = PurePosixPath(name)
    if p.is_absolute() or (len(name) > 1 and name[1] == ":"):
        return "absolute paths are not allowed"
    if ".." in p.parts:
        return "'..' would leave the target folder"
    return None


def extract(archive: Path, dest: Path, *, max_total: int = MAX_TOTAL_BYTES) -> Path:
    """Unpack ``archive`` into ``dest``; raise ArchiveError listing every refused entry."""
    name = archive.name
    try:
        zf = zipfile.ZipFile(archive)
    except (zipfile.BadZipFile, OSError) as exc:
        raise ArchiveError([RowProblem(name, "", f"not a readable zip archive: {exc}")]) from None
    problems: list[RowProblem] = []
    with zf:
        infos = zf.infolist()
        if len(infos) > MAX_FILES:
            raise ArchiveError([RowProblem(name, "", f"{len(infos)} entries; at most {MAX_FILES}")])
        for info in infos:
            reason = _bad_name(info.filename)
            mode = info.external_attr >> 16
            if reason is None and stat.S_ISLNK(mode):
                reason = "symbolic links are not allowed"
            if (
                reason is None
                and info.file_size > RATIO_FLOOR
                and (info.file_size > MAX_RATIO * max(info.compress_size, 1))
            ):
                reason = f"inflates {info.file_size // max(info.compress_size, 1)}×: a zip bomb?"
            if reason:
                problems.append(RowProblem(f"{name}:{info.filename}", "", reason))
        if problems:
            raise ArchiveError(problems)
        dest.mkdir(parents=True, exist_ok=True)
        root = dest.resolve()
        total = 0
        for info in infos:
            target = (root / info.filename).resolve()
            if not target.is_relative_to(root):
                raise ArchiveError([RowProblem(f"{name}:{info.filename}", "", "leaves the folder")])
            if info.is_dir():
                target.mkdir(parents=True, exist_ok=True)
                continue
            target.parent.mkdir(parents=True, exist_ok=True)
            limit = max(info.compress_size, 1) * MAX_RATIO + RATIO_FLOOR
            written = 0
            try:
                with zf.open(info) as src, open(target, "wb") as out:
                    while chunk := src.read(_COPY):
                        written += len(chunk)
                        total += len(chunk)
                        if written > limit or written > info.file_size or total > max_total:
                            raise ArchiveError(
                                [
                                    RowProblem(
                                        f"{name}:{info.filename}",
                                        "",
                                        "inflates beyond its declared size: a zip bomb?",
                                    )
                                ]
                            )
                        out.write(chunk)
            except (zipfile.BadZipFile, OSError, EOFError) as exc:
                raise ArchiveError(
                    [RowProblem(f"{name}:{info.filename}", "", f"cannot be unpacked: {exc}")]
                ) from None
    return dest


def unpacked(source: ImportSource) -> Path:
    """The folder to read: ``source.path`` itself, or a zip upload unpacked into the
    import's scratch folder (which lives as long as the import)."""
    if not is_zip(source.path):
        return source.path
    scratch = source.options.get("scratch")
    if scratch is None:
        raise ArchiveError([RowProblem(source.filename, "", "zip archives need a scratch folder")])
    return extract(source.path, Path(scratch) / "unpacked")


class _Sink:
    """A write-only, non-seekable file that hands over what was written."""

    def __init__(self) -> None:
        self.parts: list[bytes] = []
        self.pos = 0

    def write(self, data: bytes) -> int:
        self.parts.append(bytes(data))
        self.pos += len(data)
        return len(data)

    def tell(self) -> int:
        return self.pos

    def flush(self) -> None:
        pass

    def take(self) -> bytes:
        out = b"".join(self.parts)
        self.parts.clear()
        return out


class ZipStream:
    """Build a zip archive as a stream of chunks; ``manifest()`` lists what was written."""

    def __init__(self) -> None:
        self._sink = _Sink()
        self._zf = zipfile.ZipFile(self._sink, "w", allowZip64=True)  # type: ignore[call-overload]
        self.files: dict[str, dict[str, Any]] = {}
        t = time.localtime()
        self._stamp = (t.tm_year, t.tm_mon, t.tm_mday, t.tm_hour, t.tm_min, t.tm_sec)

    def add(self, name: str, chunks: Iterable[bytes], *, compress: bool = True) -> Iterator[bytes]:
        info = zipfile.ZipInfo(name, date_time=self._stamp)
        info.compress_type = zipfile.ZIP_DEFLATED if compress else zipfile.ZIP_STORED
        info.external_attr = 0o644 << 16
        digest = hashlib.sha256()
        size = 0
        with self._zf.open(info, "w", force_zip64=True) as out:
            for chunk in chunks:
                out.write(chunk)
                digest.update(chunk)
                size += len(chunk)
                if self._sink.pos and len(self._sink.parts) > 16:
                    yield self._sink.take()
        self.files[name] = {"sha256": digest.hexdigest(), "size": size}
        yield self._sink.take()

    def finish(self, manifest: dict[str, Any]) -> Iterator[bytes]:
        """Write ``manifest.json`` (with the files' hashes) and the archive's directory."""
        body = {**manifest, "files": dict(self.files)}
        doc = orjson.dumps(body, option=orjson.OPT_INDENT_2)
        yield from self.add("manifest.json", [doc])
        self._zf.close()
        yield self._sink.take()


def read_file_obj(fh: Any, chunk: int = _COPY) -> Iterator[bytes]:
    while data := fh.read(chunk):
        yield data
