"""What a stored file is, found by decoding it, and so how it may be served.

A file is served inline only when its content decoded as one of a few image or audio types
a browser shows and never runs (:data:`INLINE_TYPES`): images are opened with Pillow (only
the allowed formats; ``verify()`` then a real ``load()``), audio with libsndfile (the header
parsed, then the first and last frames decoded). The served type is the decoded format's,
never the file name's. Anything else (HTML, SVG, scripts, PDFs, video, damaged files) is
served as ``application/octet-stream`` with ``Content-Disposition: attachment``; an import
refuses it outright when the project's schema expects an image or audio
(:func:`refusal`). Decoding is bounded: an image of more than ``PIL.Image.MAX_IMAGE_PIXELS``
pixels (a decompression bomb) is refused everywhere.

Files stored before checks existed are marked unchecked and served as attachments until
:func:`check_media` (``labelfarm media check``, or the server at start) has checked them.
"""

from __future__ import annotations

import shutil
import tempfile
import warnings
from collections.abc import Callable
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import TYPE_CHECKING, NamedTuple

import soundfile
from PIL import Image, UnidentifiedImageError

from labelfarm.db.engine import Database
from labelfarm.db.tx import Sql, workflow
from labelfarm.schema import Schema

if TYPE_CHECKING:
    from labelfarm.services.media import MediaStore

# A decompression bomb is an error here, not a warning: the check refuses the file.
warnings.filterwarnings("error", category=Image.DecompressionBombWarning)

ATTACHMENT = "application/octet-stream"
# Pillow format -> served type (formats outside this map are not even tried)
IMAGE_TYPES = {
    "PNG": "image/png",
    "JPEG": "image/jpeg",
    "MPO": "image/jpeg",  # camera JPEGs with a second picture
    "GIF": "image/gif",
    "WEBP": "image/webp",
    "BMP": "image/bmp",
    "TIFF": "image/tiff",
}
# libsndfile major format -> served type
AUDIO_TYPES = {
    "WAV": "audio/wav",
    "WAVEX": "audio/wav",
    "FLAC": "audio/flac",
    "OGG": "audio/ogg",
    "MP3": "audio/mpeg",
}
Image.init()  # every plugin registered, so that the formats below can be named
PILLOW_FORMATS = tuple(fmt for fmt in IMAGE_TYPES if fmt in Image.OPEN)
INLINE_TYPES = frozenset(IMAGE_TYPES.values()) | frozenset(AUDIO_TYPES.values())
RASTER_TYPES = frozenset(IMAGE_TYPES.values())  # what the resizing route accepts
AUDIO_SAMPLES_CHECKED = 96_000  # samples (frames × channels) decoded at each end of a file
# field types drawn on an image: a schema with one expects every item's media to be an image
IMAGE_FIELDS = frozenset({"bbox", "rectangle", "polygon", "polyline", "keypoints", "mask"})


@dataclass(frozen=True, slots=True)
class Verdict:
    """What a file turned out to be."""

    kind: str | None  # "image" | "audio" when it decoded as one we serve inline
    mime: str  # the type it is served as
    reason: str = ""  # why it is not served inline
    hostile: bool = False  # refused wherever it comes from (a decompression bomb)
    size: tuple[int, int] | None = None  # an image's (width, height) in pixels

    @property
    def inline(self) -> bool:
        return self.kind is not None


def check_file(path: str | Path) -> Verdict:
    """Decode ``path`` as an allowed image, then as allowed audio; the verdict."""
    image = _check_image(path)
    if image.inline or image.hostile or image.reason:
        return image
    audio = _check_audio(path)
    if audio.inline or audio.reason:
        return audio
    return Verdict(None, ATTACHMENT, _what_else(path))


def _what_else(path: str | Path) -> str:
    """A reason for a file that is neither: SVG and HTML are named (both can run scripts)."""
    with open(path, "rb") as fh:
        head = fh.read(1024).lower()
    if b"<svg" in head:
        return "SVG is never served as an image (it can carry scripts); convert it to PNG"
    if b"<html" in head or b"<script" in head or b"<!doctype" in head:
        return "an HTML document, not an image or audio file"
    return "not an image or audio file a browser shows"


def _check_image(path: str | Path) -> Verdict:
    formats = PILLOW_FORMATS
    try:
        with Image.open(path, formats=formats) as im:
            fmt = im.format or ""
            im.verify()  # structure and checksums, without decoding
        with Image.open(path, formats=formats) as im:
            if im.format != fmt:
                raise OSError("the format changed between two reads")
            size = im.size  # before a draft scales it down
            if fmt in ("JPEG", "MPO"):
                im.draft(im.mode, (max(1, im.width // 8), max(1, im.height // 8)))
            im.load()  # the whole pixel stream decodes (a JPEG at 1/8 scale: every block)
    except (Image.DecompressionBombError, Image.DecompressionBombWarning) as exc:
        return Verdict(None, ATTACHMENT, f"refused: {exc}", hostile=True)
    except UnidentifiedImageError:
        return Verdict(None, ATTACHMENT)  # not one of the image formats served inline
    except (OSError, SyntaxError, ValueError, EOFError) as exc:
        return Verdict(None, ATTACHMENT, f"a damaged image: {exc}")
    return Verdict("image", IMAGE_TYPES[fmt], size=size)


def _check_audio(path: str | Path) -> Verdict:
    try:
        with soundfile.SoundFile(str(path)) as sf:
            fmt = sf.format
            if fmt not in AUDIO_TYPES:
                return Verdict(None, ATTACHMENT, f"{fmt} audio is not a type served inline")
            if sf.frames <= 0 or sf.samplerate <= 0 or sf.channels <= 0:
                return Verdict(None, ATTACHMENT, "audio without any samples")
            n = max(1, AUDIO_SAMPLES_CHECKED // sf.channels)
            decoded = len(sf.read(min(sf.frames, n), dtype="int16"))
            if sf.frames > n and sf.seekable():  # and the end: a truncated file fails here
                sf.seek(sf.frames - n)
                decoded = len(sf.read(n, dtype="int16"))
            if decoded == 0:
                return Verdict(None, ATTACHMENT, "the audio could not be decoded")
    except (soundfile.LibsndfileError, RuntimeError, TypeError, ValueError):
        return Verdict(None, ATTACHMENT)  # not audio libsndfile knows
    return Verdict("audio", AUDIO_TYPES[fmt])


def expected_kinds(schema: Schema) -> frozenset[str]:
    """The media kinds a project's items must have: ``image`` when the schema's data names an
    image or a field is drawn on one, ``audio`` when its data names audio."""
    kinds = {kind for kind in schema.data.values() if kind in ("image", "audio")}
    if any(f.type_name in IMAGE_FIELDS for f in schema.fields):
        kinds.add("image")
    return frozenset(kinds)


def refusal(verdict: Verdict, expected: frozenset[str]) -> str | None:
    """Why an import must refuse a file with ``verdict``, or None to store it."""
    if verdict.hostile:
        return verdict.reason
    if not expected or verdict.kind in expected:
        return None
    want = " or ".join(sorted(expected))
    if verdict.kind is not None:
        return f"expected {want}, got {verdict.kind} ({verdict.mime})"
    why = verdict.reason or "its content is not an image or audio a browser shows"
    return f"expected {want} ({', '.join(_names(expected))}): {why}"


def _names(expected: frozenset[str]) -> list[str]:
    out = []
    if "image" in expected:
        out += ["PNG", "JPEG", "GIF", "WebP", "BMP", "TIFF"]
    if "audio" in expected:
        out += ["WAV", "FLAC", "Ogg", "MP3"]
    return out


# -- files stored before checks existed -------------------------------------------------------
class Unchecked(NamedTuple):
    sha256: str


UNCHECKED = Sql(
    "SELECT sha256 FROM media WHERE checked_at IS NULL AND sha256 > :after "
    "ORDER BY sha256 LIMIT :n",
    row=Unchecked,
)
MARK_CHECKED = Sql(
    "UPDATE media SET mime = :m, inline = :i, checked_at = :now "
    "WHERE sha256 = :s AND checked_at IS NULL"
)


@dataclass
class CheckReport:
    checked: int = 0
    inline: int = 0
    attachment: int = 0
    missing: int = 0

    def to_dict(self) -> dict[str, int]:
        return asdict(self)


@workflow
def check_media(
    db: Database,
    media: MediaStore,
    *,
    now: float,
    batch: int = 100,
    on_progress: Callable[[CheckReport], None] | None = None,
) -> CheckReport:
    """Check every file not checked yet (stored before checks existed), a batch at a time:
    decoded outside any transaction, each verdict recorded in a short write. Until its
    turn a file is served as an attachment. Safe to run again, or in several processes."""
    report, after = CheckReport(), ""
    while True:
        with db.begin("read") as tx:
            rows = tx.rows(UNCHECKED, {"after": after, "n": batch})
        if not rows:
            return report
        marks = []
        for (sha,) in rows:
            verdict = _check_stored(media, sha)
            if verdict is None:
                report.missing += 1
                verdict = Verdict(None, ATTACHMENT, "the file is missing from the store")
            report.checked += 1
            report.inline += verdict.inline
            report.attachment += not verdict.inline
            marks.append({"s": sha, "m": verdict.mime, "i": verdict.inline, "now": now})
        with db.begin("write") as tx:
            tx.many(MARK_CHECKED, marks)
        after = rows[-1].sha256
        if on_progress is not None:
            on_progress(report)


def _check_stored(media: MediaStore, sha: str) -> Verdict | None:
    """The verdict on a stored file (a remote store's copied to a temporary file first)."""
    if not media.exists(sha):
        return None
    local = media.local_path(sha)
    if local is not None:
        return check_file(local)
    with tempfile.NamedTemporaryFile(prefix="labelfarm-check-") as tmp:
        with media.open(sha) as fh:
            shutil.copyfileobj(fh, tmp)
        tmp.flush()
        return check_file(tmp.name)
