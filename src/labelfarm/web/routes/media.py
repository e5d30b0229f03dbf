"""Media files, served only through signed, short-lived URLs."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, Request
from fastapi.responses import FileResponse, Response, StreamingResponse

from labelfarm.errors import NotFound, PermissionDenied
from labelfarm.services.media import media_mime
from labelfarm.web.context import AppContext, ctx_of
from labelfarm.web.policies import SIGNED, Access, require

router = APIRouter(tags=["media"])


def check_signature(ctx: AppContext, sha: str, user: int, expires: int, signature: str) -> None:
    """Refuse a media link whose signature is wrong or whose time is up."""
    if len(sha) != 64 or not ctx.media.check(sha, user, expires, signature, ctx.now()):
        raise PermissionDenied("the media link is not valid or has expired")


async def stored_mime(ctx: AppContext, sha: str) -> str:
    """The media type of a stored file; NotFound if it is not (or no longer) stored."""
    mime = await ctx.run(media_mime, sha)
    if mime is None or not ctx.media.exists(sha):
        raise NotFound("no such file")
    return mime


@router.get("/media/{sha}")
async def media(
    request: Request,
    sha: str,
    user: int,
    expires: int,
    signature: str,
    _: Annotated[Access, Depends(require(SIGNED))],
) -> Response:
    """A stored file, if the URL's signature is valid and not expired."""
    ctx = ctx_of(request)
    check_signature(ctx, sha, user, expires, signature)
    mime = await stored_mime(ctx, sha)
    headers = {"Cache-Control": "private, max-age=3600, immutable"}
    local = ctx.media.local_path(sha)
    if local is not None:
        return FileResponse(local, media_type=mime, headers=headers)
    return StreamingResponse(ctx.media.open(sha), media_type=mime, headers=headers)
