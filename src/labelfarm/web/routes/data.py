"""Bringing items in and labels out: imports (streamed to disk first), exports (streamed).

An upload may be at most ``LABELFARM_MAX_UPLOAD_BYTES`` (the app's body limit counts it as
it arrives: :data:`UPLOAD_PATH`); what it holds is bounded by the import limits. Item pages
are bounded in bytes by the service and rendered in a thread, never on the event loop.
"""

from __future__ import annotations

import re
import shutil
import tempfile
from pathlib import Path
from typing import Annotated, Any, Literal

import anyio.to_thread
import orjson
from fastapi import APIRouter, Depends, Query, Request
from fastapi.responses import StreamingResponse
from starlette.background import BackgroundTask

from labelfarm.db.tables import MAX_INT
from labelfarm.errors import InvalidInput, PermissionDenied
from labelfarm.formats import reader_names, writer, writer_extension, writer_names
from labelfarm.formats.detect import guess_format
from labelfarm.services import exports, imports, items
from labelfarm.web.context import ctx_of
from labelfarm.web.models.projects import ImportDone, ImportList, Item, ItemPage
from labelfarm.web.policies import PROJECT_EXPORT, PROJECT_ITEMS, PROJECT_MANAGE, Access, require
from labelfarm.web.responses import JSON, UPLOAD_BODY, binary, documented, ok
from labelfarm.web.schemas import Id

router = APIRouter(prefix="/api/v1/projects/{project_id}", tags=["data"])

# bodies up to the upload limit: imports (also as jobs), and new projects from a file
UPLOAD_PATH = re.compile(
    r"/api/v1/(projects/[^/]+/(imports(/jobs)?|transcripts)|workspaces/[^/]+/projects/from-file)"
)
UPLOADABLE = ("jsonl", "csv", "tsv", "coco", "yolo", "voc", "cvat", "labelstudio", "doccano")
# the query of every upload route: the file's format (else told from the file) and its name
UploadFormat = Annotated[
    str | None,
    Query(
        json_schema_extra={"enum": list(UPLOADABLE)},
        description="the file's format; when left out, told from its name and content",
    ),
]
UploadName = Annotated[str | None, Query(max_length=500, pattern="^[^\x00]*$")]
TranscriptsAs = Annotated[
    Literal["predictions", "annotations"] | None,
    Query(
        description="transcripts beside audio files (WebVTT, SRT, STM, CTM): a pre-fill "
        "(predictions, the default) or labels (annotations)"
    ),
]


def import_options(transcripts: str | None) -> dict[str, Any]:
    """What an upload's query asks of its reader."""
    return {} if transcripts is None else {"transcripts": transcripts}


def check_upload_format(format: str | None) -> None:
    """A format given with an upload must be one a file can be uploaded in."""
    uploadable = [n for n in reader_names() if n != "folder"]
    if format is not None and format not in uploadable:
        raise InvalidInput(
            f"format {format!r} cannot be uploaded; use one of {uploadable}",
            [{"field": "format"}],
        )


async def spool_upload(request: Request, dest: Path) -> str | None:
    """Write the upload to ``dest``: a raw body, or the ``file`` part of a multipart form."""
    ctype = request.headers.get("content-type", "")
    if ctype.startswith("multipart/form-data"):
        form = await request.form()
        upload = form.get("file")
        if upload is None or isinstance(upload, str):
            raise InvalidInput("the form has no 'file' part", [{"field": "file"}])
        with dest.open("wb") as out:
            await anyio.to_thread.run_sync(shutil.copyfileobj, upload.file, out)
        return upload.filename
    with dest.open("wb") as out:
        async for chunk in request.stream():
            out.write(chunk)
    return None


@router.post(
    "/imports",
    openapi_extra=UPLOAD_BODY,
    **documented(ImportDone, 401, 403, 404, 413, 422, 503, status=201),
)
async def create_import(
    request: Request,
    project_id: Id,
    access: Annotated[Access, Depends(require(PROJECT_MANAGE))],
    format: UploadFormat = None,
    filename: UploadName = None,
    transcripts: TranscriptsAs = None,
) -> JSON:
    """Import items from the request body (or a multipart ``file``), all or nothing."""
    ctx = ctx_of(request)
    project = access.project
    assert project is not None
    check_upload_format(format)
    uploadable = [n for n in reader_names() if n != "folder"]
    with tempfile.TemporaryDirectory(prefix="labelfarm-upload-") as tmp:
        path = Path(tmp) / "upload"
        sent_name = await spool_upload(request, path)
        if format is None:
            format = await anyio.to_thread.run_sync(guess_format, path, filename or sent_name)
            if format not in uploadable:
                raise InvalidInput(
                    f"unknown format: the upload looks like {format!r}, which cannot be "
                    f"uploaded; give the format, one of {uploadable}",
                    [{"field": "format", "reason": "unknown format"}],
                )
        result = await ctx.run(
            imports.import_items,
            project,
            path,
            format,
            media=ctx.media,
            now=ctx.now(),
            user_id=access.user_id,
            filename=filename or sent_name or f"upload.{format}",
            batch_rows=ctx.settings.import_batch_rows,
            analyze=False,
            limits=imports.limits_from(ctx.settings),
            cancel=ctx.stopping,
            options=import_options(transcripts),
        )
    ctx.projects.drop(project_id)  # the project may now have predictions to pre-fill
    response = ok(result.to_dict(), 201)
    # planner statistics are refreshed after the answer, not while the caller waits
    response.background = BackgroundTask(ctx.run, imports.refresh_statistics, result.n_items)
    return response


@router.get("/imports", **documented(ImportList, 401, 403, 404, 422))
async def list_imports(
    request: Request, project_id: Id, access: Annotated[Access, Depends(require(PROJECT_MANAGE))]
) -> JSON:
    return ok({"imports": await ctx_of(request).run(imports.list_imports, project_id)})


def export_file_answers(description: str) -> dict[str, Any]:
    """The OpenAPI answers of a route that sends an export's file: any writer's type."""
    types = sorted({writer(name)[1] for name in writer_names()})
    return documented(None, 401, 403, 404, 422, content=binary(*types), description=description)


@router.get(
    "/export",
    **export_file_answers("the export, as an attachment (its type depends on the format)"),
)
async def export(
    request: Request,
    project_id: Id,
    access: Annotated[Access, Depends(require(PROJECT_EXPORT))],
    format: Annotated[str, Query(json_schema_extra={"enum": writer_names()})] = "jsonl",
    completed_by: Annotated[
        str | None,
        Query(
            max_length=1 << 20,
            description="for a migration: a JSON object mapping labelfarm usernames to the "
            "annotators' user ids (or emails) in Label Studio (its completed_by); annotators "
            "imported from it are carried back too. Default: pseudonyms only",
        ),
    ] = None,
    media_url: Annotated[
        str | None,
        Query(
            max_length=2000,
            description="labelstudio: what goes before the path of media stored in labelfarm "
            "(default /data/local-files/?d=, Label Studio's local files serving)",
        ),
    ] = None,
) -> StreamingResponse:
    """The project's items, annotations and current labels, streamed."""
    ctx = ctx_of(request)
    project = access.project
    assert project is not None
    options: dict[str, Any] = {} if media_url is None else {"media_url": media_url}
    if completed_by is not None:
        if access.role not in PROJECT_MANAGE.roles:  # clients see pseudonyms only
            raise PermissionDenied(
                f"a {access.role} may not export annotators' identities (completed_by); "
                f"it is for: {', '.join(sorted(PROJECT_MANAGE.roles))}",
                [{"field": "completed_by", "reason": "role", "role": access.role}],
            )
        try:
            options["completed_by"] = orjson.loads(completed_by)
        except orjson.JSONDecodeError as exc:
            raise InvalidInput(
                f"completed_by is not JSON: {exc}", [{"field": "completed_by"}]
            ) from None
    chunks, media_type = await ctx.run(
        exports.export_stream,
        project,
        format,
        now=ctx.now(),
        actor_id=access.user_id,
        media=ctx.media,
        options=options,
    )
    ext = writer_extension(format)
    return StreamingResponse(
        chunks,
        media_type=media_type,
        headers={"Content-Disposition": f'attachment; filename="project-{project_id}.{ext}"'},
    )


@router.get("/items", **documented(ItemPage, 401, 403, 404, 422))
async def list_items(
    request: Request,
    project_id: Id,
    access: Annotated[Access, Depends(require(PROJECT_ITEMS))],
    after: Annotated[int, Query(ge=0, le=MAX_INT)] = 0,
    limit: Annotated[int, Query(ge=1, le=items.MAX_PAGE)] = 100,
) -> JSON:
    """Items in id order, a page at a time (``after`` = the last id of the previous page);
    a page stops early once it holds 4 MiB of item data: go on from ``next_after``."""
    page = await ctx_of(request).run(items.items_page, project_id, after, limit)
    return await _rendered({"items": page, "next_after": page[-1]["id"] if page else None})


@router.get("/items/{item_id}", **documented(Item, 401, 403, 404, 422))
async def get_item(
    request: Request,
    project_id: Id,
    item_id: Id,
    access: Annotated[Access, Depends(require(PROJECT_ITEMS))],
) -> JSON:
    return await _rendered(await ctx_of(request).run(items.get_item, project_id, item_id))


class _Rendered(JSON):
    """A JSON answer whose body was rendered already."""

    def render(self, content: Any) -> bytes:
        return bytes(content)


def _render(content: Any) -> bytes:
    return orjson.dumps(content, option=orjson.OPT_NON_STR_KEYS)


async def _rendered(content: Any) -> JSON:
    """``content`` rendered in a thread: a page of large items never holds up the loop."""
    return _Rendered(await anyio.to_thread.run_sync(_render, content))
