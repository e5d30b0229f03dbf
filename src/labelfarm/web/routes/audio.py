"""What the server derived from an audio file, under the same signed URLs as the file:
its facts, its waveform peaks and its listening copy (:mod:`labelfarm.services.audio_media`).

``{base}`` is a signed media URL's path: ``/media/{sha}`` (a manager's, reviewer's or
client's, by role) or ``/media/tasks/{project}/{handle}`` (an annotator's, by lease); the
query is the URL's own (``user``, ``workspace`` by role, ``expires``, ``signature``):

* ``GET {base}/audio``: JSON ``{duration, sample_rate, channels, levels: [{seconds,
  buckets}], stream}``;
* ``GET {base}/audio/peaks/{level}``: the peaks of zoom level 0 to 3 (finest first), int8
  ``(min, max)`` per channel per bucket, channels interleaved;
* ``GET {base}/audio/stream``: the listening copy (Ogg Opus, mono, about 24 kbit/s).

Each goes through :func:`~labelfarm.web.routes.media.authorize_media` or
:func:`~labelfarm.web.routes.media.authorize_task_media` and answers stored bytes with
:func:`~labelfarm.web.routes.media.serve_media`, so the grant, the headers and the audit are
the media routes' own. Byte answers take HTTP ranges (``Accept-Ranges: bytes``, 206 with
``Content-Range``): a player seeks an hour-long file at once. On a remote media store the
derived files are copied once to ``DATA_DIR/cache/audio`` and served from there.
"""

from __future__ import annotations

import os
import shutil
from pathlib import Path
from typing import Annotated

import anyio
from fastapi import APIRouter, Depends, Request
from fastapi import Path as PathParam
from fastapi.responses import Response
from pydantic import Field

from labelfarm.errors import InvalidInput, NotFound
from labelfarm.ml.audio import PEAK_LEVELS
from labelfarm.services.audio_media import STREAM_MIME, AudioFacts, audio_of
from labelfarm.services.media import MediaAccess, MediaStore
from labelfarm.services.media_check import ATTACHMENT, AUDIO_TYPES
from labelfarm.web.context import AppContext, ctx_of
from labelfarm.web.models.common import Out
from labelfarm.web.policies import SIGNED, Access, require
from labelfarm.web.responses import JSON, binary, documented
from labelfarm.web.routes.media import (
    CACHE,
    GrantingRole,
    SignedUser,
    TaskHandle,
    TaskProject,
    authorize_media,
    authorize_task_media,
    serve_media,
    serves_inline,
)

router = APIRouter(tags=["media"])
PEAKS_MIME = "application/octet-stream"
AUDIO_MIMES = frozenset(AUDIO_TYPES.values())
PeakLevel = Annotated[
    int, PathParam(ge=0, le=PEAK_LEVELS - 1, description="zoom level, 0 (finest) to 3")
]


class AudioLevel(Out):
    seconds: float = Field(description="seconds per bucket")
    buckets: int = Field(description="buckets in the level's peaks file")


class AudioOut(Out):
    """What was derived from an audio file at import."""

    duration: float = Field(description="seconds")
    sample_rate: int
    channels: int
    levels: list[AudioLevel] = Field(description="waveform peak levels, finest first")
    stream: str | None = Field(description="the listening copy's type")


FACTS_ANSWERS = documented(AudioOut, 403, 404, 422)
PEAKS_ANSWERS = documented(
    None,
    403,
    404,
    422,
    content=binary(PEAKS_MIME),
    description="int8 (min, max) per channel per bucket, channels interleaved; ranges served",
)
STREAM_ANSWERS = documented(
    None,
    403,
    404,
    422,
    content=binary(STREAM_MIME, ATTACHMENT),
    description="the listening copy, Ogg Opus mono; ranges served",
)


def cache_dir(ctx: AppContext) -> Path:
    return ctx.settings.data_dir.resolve() / "cache" / "audio"


def local_copy(store: MediaStore, sha: str, folder: Path) -> Path:
    """A derived file as a local path: the store's own, or a copy made once in ``folder``
    (a remote store), so that ranges are served from a file."""
    local = store.local_path(sha)
    if local is not None:
        return Path(local)
    path = folder / sha[:2] / sha
    if not path.exists():
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_name(f"{sha}.{os.getpid()}.part")
        with store.open(sha) as fh, open(tmp, "wb") as out:
            shutil.copyfileobj(fh, out, 1 << 20)
        tmp.replace(path)
    return path


async def _facts(ctx: AppContext, sha: str, found: MediaAccess) -> AudioFacts:
    """The facts of a file checked as audio at import (anything else, as for resizing an
    image, is invalid input: HTML or a damaged file has no waveform)."""
    if not serves_inline(found) or found.mime not in AUDIO_MIMES:
        raise InvalidInput("only checked audio files have audio; use the media URL itself")
    facts = await ctx.run(audio_of, sha)
    if facts is None:
        raise NotFound(
            "no such audio: its waveform was not derived (audio stored before this version: "
            "run `labelfarm media check`)"
        )
    return facts


def _headers(ctx: AppContext) -> dict[str, str]:
    out = {"Cache-Control": CACHE, "X-Content-Type-Options": "nosniff"}
    if ctx.media.origin:
        out["Access-Control-Allow-Origin"] = "*"
    return out


async def _derived(
    ctx: AppContext, sha: str, found: MediaAccess, part: str, name: str | None
) -> Response:
    """The peaks of level ``part`` (a digit) or the listening copy (``stream``)."""
    facts = await _facts(ctx, sha, found)
    if part == "stream":
        if facts.stream_sha256 is None:
            raise NotFound("no such audio stream: none was made for this file")
        derived, mime = facts.stream_sha256, facts.stream_mime or STREAM_MIME
    else:
        derived, mime = facts.levels[int(part)].sha256, PEAKS_MIME
    if not ctx.media.exists(derived):
        raise NotFound("no such file: the derived file is missing from the store")
    path = await anyio.to_thread.run_sync(local_copy, ctx.media, derived, cache_dir(ctx))
    headers = {"Accept-Ranges": "bytes"}
    return serve_media(ctx, sha, found, file=path, mime=mime, headers=headers, name=name)


@router.get("/media/{sha}/audio", **FACTS_ANSWERS)
async def media_audio(
    request: Request,
    sha: str,
    user: SignedUser,
    workspace: GrantingRole,
    expires: int,
    signature: str,
    _: Annotated[Access, Depends(require(SIGNED))],
) -> Response:
    """An audio file's duration, sample rate, channels, peak levels and listening copy's
    type, for a manager, reviewer or client."""
    found = await authorize_media(request, sha, user, expires, signature, workspace)
    ctx = ctx_of(request)
    return JSON((await _facts(ctx, sha, found)).public(), headers=_headers(ctx))


@router.get("/media/{sha}/audio/peaks/{level}", **PEAKS_ANSWERS)
async def media_audio_peaks(
    request: Request,
    sha: str,
    level: PeakLevel,
    user: SignedUser,
    workspace: GrantingRole,
    expires: int,
    signature: str,
    _: Annotated[Access, Depends(require(SIGNED))],
) -> Response:
    """An audio file's waveform peaks at zoom ``level``, for a manager, reviewer or client."""
    found = await authorize_media(request, sha, user, expires, signature, workspace)
    return await _derived(ctx_of(request), sha, found, str(level), None)


@router.get("/media/{sha}/audio/stream", **STREAM_ANSWERS)
async def media_audio_stream(
    request: Request,
    sha: str,
    user: SignedUser,
    workspace: GrantingRole,
    expires: int,
    signature: str,
    _: Annotated[Access, Depends(require(SIGNED))],
) -> Response:
    """An audio file's listening copy, for a manager, reviewer or client."""
    found = await authorize_media(request, sha, user, expires, signature, workspace)
    return await _derived(ctx_of(request), sha, found, "stream", None)


@router.get("/media/tasks/{project}/{handle}/audio", **FACTS_ANSWERS)
async def task_audio(
    request: Request,
    project: TaskProject,
    handle: TaskHandle,
    user: SignedUser,
    expires: int,
    signature: str,
    _: Annotated[Access, Depends(require(SIGNED))],
) -> Response:
    """The facts of an annotator's task's audio, while their lease on it is live."""
    found = await authorize_task_media(request, project, handle, user, expires, signature)
    ctx = ctx_of(request)
    return JSON((await _facts(ctx, found.sha, found.access)).public(), headers=_headers(ctx))


@router.get("/media/tasks/{project}/{handle}/audio/peaks/{level}", **PEAKS_ANSWERS)
async def task_audio_peaks(
    request: Request,
    project: TaskProject,
    handle: TaskHandle,
    level: PeakLevel,
    user: SignedUser,
    expires: int,
    signature: str,
    _: Annotated[Access, Depends(require(SIGNED))],
) -> Response:
    """The waveform peaks of an annotator's task's audio at zoom ``level``, while their
    lease on it is live."""
    found = await authorize_task_media(request, project, handle, user, expires, signature)
    return await _derived(ctx_of(request), found.sha, found.access, str(level), handle)


@router.get("/media/tasks/{project}/{handle}/audio/stream", **STREAM_ANSWERS)
async def task_audio_stream(
    request: Request,
    project: TaskProject,
    handle: TaskHandle,
    user: SignedUser,
    expires: int,
    signature: str,
    _: Annotated[Access, Depends(require(SIGNED))],
) -> Response:
    """The listening copy of an annotator's task's audio, while their lease on it is live."""
    found = await authorize_task_media(request, project, handle, user, expires, signature)
    return await _derived(ctx_of(request), found.sha, found.access, "stream", handle)
