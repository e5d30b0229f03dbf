"""Images resized for the screen: ``/media/{sha}/fit/{size}?user=&workspace=&expires=&signature=``
(by role) and ``/media/tasks/{project}/{handle}/fit/{size}?user=&expires=&signature=`` (an
annotator's task, by lease).

Same signed URL as the original with ``/fit/{size}`` added (the signature names the file or
task, the user, the lease or role that grants it, and the expiry); only images whose content
was checked at import are resized, with the longest side bounded by ``size``, one of a few
buckets so the disk cache stays small. Resized copies are made once with Pillow (JPEG, or
PNG when the image has transparency) and kept in ``DATA_DIR/cache/resized`` by sha and
size; an image already small enough is served as it is. The response names the original
size (``X-Image-Width`` and ``X-Image-Height``): boxes are stored in pixels of the original.
"""

from __future__ import annotations

import io
import json
import os
from pathlib import Path
from typing import Annotated

import anyio
from fastapi import APIRouter, Depends, Request
from fastapi import Path as PathParam
from fastapi.responses import Response
from PIL import Image, ImageOps, UnidentifiedImageError

from labelfarm.errors import InvalidInput
from labelfarm.services.media import MediaAccess, MediaStore
from labelfarm.services.media_check import RASTER_TYPES
from labelfarm.web.context import AppContext, ctx_of
from labelfarm.web.policies import SIGNED, Access, require
from labelfarm.web.responses import binary, documented
from labelfarm.web.routes.media import (
    GrantingRole,
    SignedUser,
    TaskHandle,
    TaskProject,
    authorize_media,
    authorize_task_media,
    serve_media,
    serves_inline,
)

SIZES = (160, 320, 480, 640, 800, 1024, 1280, 1600, 2048)
_SLOTS = anyio.Semaphore(2)  # resizing is CPU work: at most two at a time per process

router = APIRouter(tags=["media"])


def cache_dir(ctx: AppContext) -> Path:
    return ctx.settings.data_dir.resolve() / "cache" / "resized"


def resized(store: MediaStore, sha: str, size: int, folder: Path) -> tuple[Path | None, dict]:
    """The cached resized copy of ``sha`` (made if missing) and the original's facts.

    Returns ``(None, facts)`` when the original is small enough to serve as it is.
    ``facts`` holds the original's ``width`` and ``height``.
    """
    folder = folder / sha[:2]
    meta_path = folder / f"{sha}.json"
    target = folder / f"{sha}-{size}"
    if meta_path.exists():
        facts = json.loads(meta_path.read_text())
        if max(facts["width"], facts["height"]) <= size or size in facts.get("as_is", ()):
            return None, facts
        for ext in (".jpg", ".png"):
            if target.with_suffix(ext).exists():
                return target.with_suffix(ext), facts
    with store.open(sha) as fh:
        original = fh.read()
        try:
            opened = Image.open(io.BytesIO(original))
            opened.draft("RGB", (size, size))  # JPEG: decode at a reduced scale, much faster
            image = ImageOps.exif_transpose(opened)
        except (UnidentifiedImageError, OSError) as exc:
            raise InvalidInput("the file is not an image that can be resized") from exc
    folder.mkdir(parents=True, exist_ok=True)
    # the size before draft() reduced it: read it again from the header if it changed
    width, height = _original_size(store, sha)
    facts = json.loads(meta_path.read_text()) if meta_path.exists() else {}
    facts.update(width=width, height=height)
    _write_atomic(meta_path, json.dumps(facts).encode())
    if max(width, height) <= size:
        return None, facts
    alpha = image.mode in ("RGBA", "LA") or "transparency" in image.info
    image.thumbnail((size, size), Image.Resampling.LANCZOS)
    out = io.BytesIO()
    if alpha:
        image.convert("RGBA").save(out, "PNG", optimize=True)
        path = target.with_suffix(".png")
    else:
        image.convert("RGB").save(out, "JPEG", quality=80, optimize=True, progressive=True)
        path = target.with_suffix(".jpg")
    if out.tell() >= len(original):  # a flat graphic: the original is smaller, keep it
        facts["as_is"] = sorted({*facts.get("as_is", ()), size})
        _write_atomic(meta_path, json.dumps(facts).encode())
        return None, facts
    _write_atomic(path, out.getvalue())
    return path, facts


def _original_size(store: MediaStore, sha: str) -> tuple[int, int]:
    with store.open(sha) as fh, Image.open(fh) as image:
        width, height = image.size
        orientation = image.getexif().get(0x0112, 1)
    return (height, width) if orientation in (5, 6, 7, 8) else (width, height)


def _write_atomic(path: Path, data: bytes) -> None:
    tmp = path.with_name(f"{path.name}.{os.getpid()}.part")
    tmp.write_bytes(data)
    tmp.replace(path)


FIT_CONTENT = binary(*sorted(RASTER_TYPES))
FIT_SIZE = Annotated[int, PathParam(json_schema_extra={"enum": list(SIZES)})]
FIT_ANSWERS = documented(
    None,
    403,
    404,
    422,
    content=FIT_CONTENT,
    description="the image, its longest side at most `size`",
)


@router.get(
    "/media/{sha}/fit/{size}",
    **FIT_ANSWERS,
)
async def media_resized(
    request: Request,
    sha: str,
    size: FIT_SIZE,
    user: SignedUser,
    workspace: GrantingRole,
    expires: int,
    signature: str,
    _: Annotated[Access, Depends(require(SIGNED))],
) -> Response:
    """An image with its longest side at most ``size`` (one of the buckets in SIZES), for a
    manager, reviewer or client."""
    found = await authorize_media(request, sha, user, expires, signature, workspace)
    return await _fit(ctx_of(request), sha, found, size)


@router.get(
    "/media/tasks/{project}/{handle}/fit/{size}",
    **FIT_ANSWERS,
)
async def task_media_resized(
    request: Request,
    project: TaskProject,
    handle: TaskHandle,
    size: FIT_SIZE,
    user: SignedUser,
    expires: int,
    signature: str,
    _: Annotated[Access, Depends(require(SIGNED))],
) -> Response:
    """The image of an annotator's task with its longest side at most ``size``, while their
    lease on it is live."""
    found = await authorize_task_media(request, project, handle, user, expires, signature)
    return await _fit(ctx_of(request), found.sha, found.access, size, name=handle)


async def _fit(
    ctx: AppContext, sha: str, found: MediaAccess, size: int, *, name: str | None = None
) -> Response:
    """Only images whose content was checked as an allowed raster type are resized; the
    original, when small enough, is served by the same helper as the media routes."""
    if size not in SIZES:
        raise InvalidInput(f"size must be one of {list(SIZES)}", [{"field": "size"}])
    if not serves_inline(found) or found.mime not in RASTER_TYPES:
        raise InvalidInput("only checked images can be resized; use the media URL itself")
    async with _SLOTS:
        path, facts = await anyio.to_thread.run_sync(resized, ctx.media, sha, size, cache_dir(ctx))
    headers = {"X-Image-Width": str(facts["width"]), "X-Image-Height": str(facts["height"])}
    if path is None:
        return serve_media(ctx, sha, found, headers=headers, name=name)
    kind = "image/png" if path.suffix == ".png" else "image/jpeg"
    return serve_media(ctx, sha, found, file=path, mime=kind, headers=headers, name=name)
