"""Zip archives: unpacking uploads safely, and writing exports as a stream.

Unpacking refuses what could harm the server: names that leave the target folder
(``../``, absolute paths, drive letters), links, too many entries, and decompression bombs.
A bomb is caught by the archive's expansion ratio over all its entries together: while
inflating, the bytes written so far are compared with the archive bytes read so far (and
with the archive's size on disk), so neither many small entries nor one large one can
inflate beyond ``archive_ratio`` times what was sent once past a floor of 16 MiB, nor beyond
``archive_bytes`` in all. Sizes are counted, never taken from the archive's own claims, so
an archive of photos (which barely compress) of any size up to the limits is unpacked.

Writing (:class:`ZipStream`) produces the archive chunk by chunk for a streamed response:
entries are written with data descriptors, so nothing needs to seek, and every entry's
SHA-256 and size are collected for the ``manifest.json`` written last.
"""

from __future__ import annotations

import hashlib
import stat
import time
import zipfile
from collections.abc import Callable, Iterable, Iterator
from pathlib import Path, PurePosixPath
from typing import IO, Any

import orjson

from labelfarm.formats.registry import ARCHIVE_RATIO_FLOOR, ImportLimits, ImportSource, RowProblem

MAX_FILES = 500_000
MAX_DIRECTORY = 64 << 20  # the archive's list of entries (parsed into memory before unpacking)
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


class _Counted:
    """The archive file, counting the bytes read from it (what inflating really consumed)."""

    def __init__(self, fh: IO[bytes]) -> None:
        self.fh = fh
        self.n = 0

    def read(self, n: int = -1) -> bytes:
        data = self.fh.read(n)
        self.n += len(data)
        return data

    def seek(self, offset: int, whence: int = 0) -> int:
        return self.fh.seek(offset, whence)

    def tell(self) -> int:
        return self.fh.tell()

    def seekable(self) -> bool:
        return True


def _directory_problem(fh: IO[bytes]) -> str | None:
    """Refuse an archive whose list of entries is too long, before it is parsed."""
    end_record = getattr(zipfile, "_EndRecData", None)
    if end_record is None:
        return None
    rec = end_record(fh)
    if rec is None:
        return None  # not a zip: ZipFile says so
    n_entries, size = rec[4], rec[5]  # _ECD_ENTRIES_TOTAL, _ECD_SIZE
    if n_entries > MAX_FILES:
        return f"{n_entries} entries; at most {MAX_FILES}"
    if size > MAX_DIRECTORY:
        return f"a list of entries of {size >> 20} MiB; at most {MAX_DIRECTORY >> 20} MiB"
    return None


class _Inflation:
    """Bytes written against bytes read, over the whole archive."""

    def __init__(self, src: _Counted, archive_size: int, limits: ImportLimits) -> None:
        self.src = src
        self.start = src.n
        self.size = archive_size
        self.limits = limits
        self.total = 0

    def add(self, n: int) -> str | None:
        """Count ``n`` more bytes written; a reason to stop, if any."""
        self.total += n
        lim = self.limits
        if self.total > lim.archive_bytes:
            return f"inflates to more than {lim.archive_bytes >> 20} MiB in all"
        if self.total > ARCHIVE_RATIO_FLOOR:
            consumed = max(1, min(self.src.n - self.start, self.size))
            if self.total > lim.archive_ratio * consumed:
                ratio = self.total // consumed
                return (
                    f"inflates {ratio}× (at most {lim.archive_ratio}× over the whole archive): "
                    "a zip bomb?"
                )
        return None


def extract(
    archive: Path,
    dest: Path,
    *,
    limits: ImportLimits | None = None,
    check_cancel: Callable[[], None] | None = None,
) -> Path:
    """Unpack ``archive`` into ``dest``; raise ArchiveError listing every refused entry."""
    limits = limits or ImportLimits()
    name = archive.name
    with open(archive, "rb") as raw:
        problem = _directory_problem(raw)
        if problem:
            raise ArchiveError([RowProblem(name, "", problem)])
        counted = _Counted(raw)
        try:
            zf = zipfile.ZipFile(counted)
        except (zipfile.BadZipFile, OSError, ValueError) as exc:
            raise ArchiveError(
                [RowProblem(name, "", f"not a readable zip archive: {exc}")]
            ) from None
        with zf:
            infos = _checked_entries(zf, name)
            inflation = _Inflation(counted, archive.stat().st_size, limits)
            dest.mkdir(parents=True, exist_ok=True)
            root = dest.resolve()
            for info in infos:
                if check_cancel is not None:
                    check_cancel()
                _unpack(zf, info, root, name, inflation, check_cancel)
    return dest


def _checked_entries(zf: zipfile.ZipFile, name: str) -> list[zipfile.ZipInfo]:
    infos = zf.infolist()
    if len(infos) > MAX_FILES:
        raise ArchiveError([RowProblem(name, "", f"{len(infos)} entries; at most {MAX_FILES}")])
    problems: list[RowProblem] = []
    for info in infos:
        reason = _bad_name(info.filename)
        if reason is None and stat.S_ISLNK(info.external_attr >> 16):
            reason = "symbolic links are not allowed"
        if reason:
            problems.append(RowProblem(f"{name}:{info.filename}", "", reason))
    if problems:
        raise ArchiveError(problems)
    return infos


def _unpack(
    zf: zipfile.ZipFile,
    info: zipfile.ZipInfo,
    root: Path,
    name: str,
    inflation: _Inflation,
    check_cancel: Callable[[], None] | None,
) -> None:
    where = f"{name}:{info.filename}"
    target = (root / info.filename).resolve()
    if not target.is_relative_to(root):
        raise ArchiveError([RowProblem(where, "", "leaves the folder")])
    if info.is_dir():
        target.mkdir(parents=True, exist_ok=True)
        return
    target.parent.mkdir(parents=True, exist_ok=True)
    written = 0
    try:
        with zf.open(info) as src, open(target, "wb") as out:
            while chunk := src.read(_COPY):
                written += len(chunk)
                reason = inflation.add(len(chunk))
                if reason is None and written > info.file_size:
                    reason = "inflates beyond its declared size: a zip bomb?"
                if reason:
                    raise ArchiveError([RowProblem(where, "", reason)])
                out.write(chunk)
                if check_cancel is not None:
                    check_cancel()
    except (zipfile.BadZipFile, OSError, EOFError, ValueError) as exc:
        raise ArchiveError([RowProblem(where, "", f"cannot be unpacked: {exc}")]) from None


def unpacked(source: ImportSource) -> Path:
    """The folder to read: ``source.path`` itself, or a zip upload unpacked into the
    import's scratch folder (which lives as long as the import)."""
    if not is_zip(source.path):
        return source.path
    scratch = source.options.get("scratch")
    if scratch is None:
        raise ArchiveError([RowProblem(source.filename, "", "zip archives need a scratch folder")])
    return extract(
        source.path,
        Path(scratch) / "unpacked",
        limits=source.limits,
        check_cancel=source.check_cancel,
    )


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
