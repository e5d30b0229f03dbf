"""Media files, served only through signed, short-lived URLs, and never as something a
browser runs.

Every route that answers with stored bytes (here and :mod:`labelfarm.web.pages.images`)
goes through :func:`authorize_media` (a manager's, reviewer's or client's URL by sha and
role) or :func:`authorize_task_media` (an annotator's URL by task handle and lease): the
signature, then one lookup (is the file stored, how may it be served, is the URL's lease or
role still live); then :func:`serve_media` (the one place that decides the type and the
headers). A file is inline only when its content
was checked as an allowed image or audio type (:mod:`labelfarm.services.media_check`);
anything else, and anything not checked yet, is ``application/octet-stream`` as an
attachment. Every answer carries ``nosniff`` and a sandboxing Content-Security-Policy.
Views by role (managers, reviewers, clients) are audited in aggregate: one row per user,
workspace and day, whatever the number of thumbnails.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path
from typing import IO, Annotated
from urllib.parse import urlsplit

from fastapi import APIRouter, Depends, Query, Request
from fastapi import Path as PathParam
from fastapi.responses import FileResponse, Response, StreamingResponse

from labelfarm.errors import NotFound, PermissionDenied
from labelfarm.services.media import MediaAccess, TaskMedia, media_access, task_media
from labelfarm.services.media_check import ATTACHMENT, INLINE_TYPES
from labelfarm.services.tasks.handles import UnknownTask
from labelfarm.web.context import AppContext, ctx_of
from labelfarm.web.policies import SIGNED, Access, require
from labelfarm.web.responses import binary, documented
from labelfarm.web.schemas import MAX_INT

router = APIRouter(tags=["media"])

# A media answer opened as a page is a sandboxed document that may load nothing at all. An
# image still shows (it is the document itself). The pages show images and play audio in
# their own elements, to which this policy does not apply; opened directly, audio does not
# play in a sandbox (its opaque origin may not load the bytes), and media-src would not help.
MEDIA_CSP = "sandbox; default-src 'none'"
CACHE = "private, max-age=3600, immutable"
DAY = 86_400.0
# the query of a signed media URL, the same on every route that serves stored bytes
SignedUser = Annotated[int, Query(ge=1, le=MAX_INT, description="whom the URL was signed for")]
GrantingRole = Annotated[int, Query(ge=1, le=MAX_INT, description="the role that grants it")]
TaskProject = Annotated[int, PathParam(ge=1, le=MAX_INT, description="the task's project")]
TaskHandle = Annotated[str, PathParam(max_length=64, description="the annotator's task handle")]


def _on_media_origin(request: Request) -> None:
    origin = ctx_of(request).media.origin
    if origin and request.headers.get("host", "").lower() != urlsplit(origin).netloc.lower():
        raise NotFound(f"media is served from {origin}")


async def authorize_media(
    request: Request, sha: str, user: int, expires: int, signature: str, workspace: int
) -> MediaAccess:
    """The stored file a signed URL names, if the URL is genuine, unexpired, on the media
    origin, and the user's role in ``workspace`` still grants it."""
    ctx = ctx_of(request)
    now = ctx.now()
    if len(sha) != 64 or not ctx.media.check(
        sha, user, expires, signature, now, workspace=workspace
    ):
        raise PermissionDenied("the media link is not valid or has expired")
    _on_media_origin(request)
    found = await ctx.run(media_access, sha, user, workspace=workspace)
    if found is None or not ctx.media.exists(sha):
        raise NotFound("no such file")
    if not found.allowed:
        raise PermissionDenied("the media link ended with its lease or the user's access")
    # viewed by role (manager, reviewer, client): one row a day
    ctx.tally.add(
        "media.view", "media", now=now, workspace_id=workspace, actor_id=user, bucket_seconds=DAY
    )
    return found


async def authorize_task_media(
    request: Request, project: int, handle: str, user: int, expires: int, signature: str
) -> TaskMedia:
    """The file of the annotator's task ``handle``, if the URL is genuine, unexpired, on the
    media origin, and the user's lease on the task is still live."""
    ctx = ctx_of(request)
    now = ctx.now()
    if not ctx.media.check(handle, user, expires, signature, now, project=project):
        raise PermissionDenied("the media link is not valid or has expired")
    _on_media_origin(request)
    try:
        item = ctx.handles.decode(project, user, handle)
    except UnknownTask:  # signed by us, so this cannot happen unless the key changed
        raise PermissionDenied("the media link is not valid or has expired") from None
    found = await ctx.run(task_media, project, item, user, now)
    if found is None or not ctx.media.exists(found.sha):
        raise NotFound("no such file")
    if not found.access.allowed:
        raise PermissionDenied("the media link ended with its lease or the user's access")
    return found


def serves_inline(found: MediaAccess) -> bool:
    """Checked content of an allowed type (SVG, HTML, scripts never are)."""
    return bool(found.checked and found.inline) and found.mime in INLINE_TYPES


def serve_media(
    ctx: AppContext,
    sha: str,
    found: MediaAccess,
    *,
    file: Path | None = None,
    mime: str | None = None,
    headers: dict[str, str] | None = None,
    name: str | None = None,
) -> Response:
    """The one answer with stored bytes: ``sha`` itself, or ``file`` (a copy derived from it,
    of type ``mime``) when given. Inline only for checked content of an allowed type; an
    attachment is named ``name`` (default: the sha).

    No ``ETag`` or ``Last-Modified``: the URL is the cache key (immutable), and a file's
    dates would tell an annotator which tasks came in the same import (gold, for one)."""
    inline = serves_inline(found)
    kind = (mime or found.mime) if inline else ATTACHMENT
    out = {
        **(headers or {}),
        "Cache-Control": CACHE,
        "X-Content-Type-Options": "nosniff",
        "Content-Security-Policy": MEDIA_CSP,
        "Content-Disposition": "inline" if inline else f'attachment; filename="{name or sha}"',
    }
    if ctx.media.origin:  # the app's pages fetch from another origin; the URL is the key
        out["Access-Control-Allow-Origin"] = "*"
        out["Access-Control-Expose-Headers"] = "X-Image-Width, X-Image-Height"
    if file is not None:
        return UndatedFileResponse(file, media_type=kind, headers=out)
    local = ctx.media.local_path(sha)
    if local is not None:
        return UndatedFileResponse(local, media_type=kind, headers=out)
    return StreamingResponse(_chunks(ctx.media.open(sha)), media_type=kind, headers=out)


class UndatedFileResponse(FileResponse):
    """A file answer with its length only: no ``ETag`` or ``Last-Modified``."""

    def set_stat_headers(self, stat_result: os.stat_result) -> None:
        self.headers.setdefault("content-length", str(stat_result.st_size))

    def _should_use_range(self, http_if_range: str) -> bool:
        return False  # no validator to match: a conditional range gets the whole file


def _chunks(fh: IO[bytes], size: int = 1 << 16) -> Iterator[bytes]:
    """A remote store's file in fixed chunks (not lines), closed at the end."""
    with fh:
        while chunk := fh.read(size):
            yield chunk


MEDIA_CONTENT = binary(*sorted(INLINE_TYPES), ATTACHMENT)
MEDIA_ANSWERS = documented(
    None,
    403,
    404,
    422,
    content=MEDIA_CONTENT,
    description="the file: inline when its content was checked, else an attachment",
)


@router.get(
    "/media/{sha}",
    **MEDIA_ANSWERS,
)
async def media(
    request: Request,
    sha: str,
    user: SignedUser,
    workspace: GrantingRole,
    expires: int,
    signature: str,
    _: Annotated[Access, Depends(require(SIGNED))],
) -> Response:
    """A stored file for a manager, reviewer or client, if the URL's signature is valid,
    not expired, and their role still holds."""
    found = await authorize_media(request, sha, user, expires, signature, workspace)
    return serve_media(ctx_of(request), sha, found)


@router.get(
    "/media/tasks/{project}/{handle}",
    **MEDIA_ANSWERS,
)
async def task_media_file(
    request: Request,
    project: TaskProject,
    handle: TaskHandle,
    user: SignedUser,
    expires: int,
    signature: str,
    _: Annotated[Access, Depends(require(SIGNED))],
) -> Response:
    """The file of an annotator's task, while their lease on it is live; the URL names
    neither the item nor the file."""
    found = await authorize_task_media(request, project, handle, user, expires, signature)
    return serve_media(ctx_of(request), found.sha, found.access, name=handle)
