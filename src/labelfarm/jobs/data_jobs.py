"""Job kinds: import and export started from the pages, with progress.

``import`` (params ``upload``, ``format``, ``filename``): imports an upload the server stored
(:mod:`labelfarm.services.job_files`) with the import service, all or nothing, reporting
KiB of the file read and, in its message, rows read and items written. Cancelled, it stops
between rows and its staged items are removed at once: nothing of it stays. Run again after
a crash, it first settles what the earlier run left (:mod:`labelfarm.services.import_resume`):
an import that was done answers with its report, one half staged is rolled back and
imported anew, so the file is never imported twice. The upload is removed when the job
ends: done, failed for good, or cancelled (a worker that stops, or loses the job to
another, leaves it for the next run).

``export`` (params ``format``, ``options``): writes the export, streamed, to
``DATA_DIR/exports/<project>/<job>.<ext>`` (``.part`` until complete), reporting items
written of the project's items; ``GET …/exports/{job}/file`` serves it.
"""

from __future__ import annotations

import logging
import os
import threading
from pathlib import Path
from typing import Any

from labelfarm.errors import ImportFailed, LabelfarmError
from labelfarm.formats import writer_extension
from labelfarm.formats.registry import ImportInterrupted
from labelfarm.jobs.context import JobContext
from labelfarm.jobs.errors import JobCancelled
from labelfarm.jobs.kinds import job_kind
from labelfarm.services import job_files
from labelfarm.services.exports import export_stream
from labelfarm.services.import_resume import (
    FoundImport,
    find_import,
    import_report,
    job_filename,
    settle,
)
from labelfarm.services.imports import import_items, limits_from
from labelfarm.services.projects import Project, load_project

log = logging.getLogger("labelfarm.jobs")

KIB = 1024
PROGRESS_ROWS = 200  # rows between progress reports (the context writes at most 2 a second)


class _Stop(threading.Event):
    """Set once the job must stop: the import checks it between rows."""

    def __init__(self, ctx: JobContext) -> None:
        super().__init__()
        self._ctx = ctx

    def is_set(self) -> bool:
        return super().is_set() or self._ctx.cancelled()


@job_kind("import", title="Import")
def run_import(ctx: JobContext) -> dict[str, Any]:
    job = ctx.job
    assert job.project_id is not None
    project = ctx.db.run(load_project, job.project_id)
    fmt = str(job.params["format"])
    filename = job_filename(str(job.params["filename"]))
    origin = (project.id, job.id)
    path = job_files.upload_path(ctx.settings, str(job.params["upload"]))
    ends = True  # whether this run ends the job, so that the upload goes
    try:
        earlier = _earlier(ctx, origin, filename)
        if earlier is not None and earlier.status == "done":
            return ctx.db.run(import_report, earlier.id).to_dict()
        if not path.is_file():
            raise ImportFailed(
                f"the upload of {filename!r} is no longer kept; upload it again",
                [{"location": filename, "field": "", "reason": "upload gone"}],
            )
        return _import(ctx, project, path, fmt, filename)
    except ImportInterrupted:
        ends = ctx.cancel_requested and not ctx.lost
        if ends:  # cancelled: its staged items go now
            found = ctx.db.run(find_import, *origin)
            if found is not None:
                ctx.db.run(settle, found, project.id, ctx.now(), "cancelled")
        raise JobCancelled(f"job {job.id}: the import stopped") from None
    except JobCancelled:
        ends = ctx.cancel_requested and not ctx.lost
        raise
    except Exception as exc:
        final = isinstance(exc, LabelfarmError) and exc.status < 500
        ends = final or job.attempts >= job.max_attempts
        raise
    finally:
        if ends:
            job_files.remove(path)
        _sweep(ctx)


def _earlier(ctx: JobContext, origin: tuple[int, int], filename: str) -> FoundImport | None:
    """What an earlier run of this job left, settled: None when there is nothing to reuse;
    a failure of the file itself is raised again (the job fails as the first run did)."""
    found = ctx.db.run(find_import, *origin)
    if found is None:
        return None
    if found.status in ("staging", "publishing"):
        ctx.db.run(settle, found, origin[0], ctx.now(), "interrupted")
        found = ctx.db.run(find_import, *origin)
        assert found is not None
    if found.status == "failed" and not found.interrupted:
        n = len(found.errors)
        raise ImportFailed(
            f"import of {filename!r} failed: {n} problem(s); nothing was imported",
            found.errors,
        )
    return found if found.status == "done" else None


def _import(
    ctx: JobContext, project: Project, path: Path, fmt: str, filename: str
) -> dict[str, Any]:
    stop = _Stop(ctx)
    written = [0]

    def on_written(n: int) -> None:  # the writer's thread
        written[0] += n

    def on_progress(rows: int, done: int, total: int) -> None:
        message = f"{rows:,} rows read, {written[0]:,} items written"
        try:
            ctx.progress(done // KIB, max(1, -(-total // KIB)), message)
        except JobCancelled:
            stop.set()  # the import stops at its next row, and is rolled back

    result = ctx.db.run(
        import_items,
        project,
        path,
        fmt,
        media=ctx.media,
        now=ctx.now(),
        user_id=ctx.job.created_by,
        job_id=ctx.job.id,  # a later run of the job finds this import by it
        filename=filename,
        batch_rows=ctx.settings.import_batch_rows,
        on_progress=on_progress,
        limits=limits_from(ctx.settings),
        cancel=stop,
        progress_rows=PROGRESS_ROWS,
        on_written=on_written,
        options=dict(ctx.job.params.get("options") or {}),
    )
    return result.to_dict()


@job_kind("export", title="Export")
def run_export(ctx: JobContext) -> dict[str, Any]:
    job = ctx.job
    assert job.project_id is not None
    project = ctx.db.run(load_project, job.project_id)
    fmt = str(job.params["format"])
    dest = job_files.export_path(ctx.settings, project.id, job.id, writer_extension(fmt))
    part = dest.with_name(dest.name + ".part")
    part.parent.mkdir(parents=True, exist_ok=True)

    def on_progress(done: int, total: int) -> None:
        ctx.progress(done, total, f"{done:,} of {total:,} items written")

    try:
        chunks, media_type = ctx.db.run(
            export_stream,
            project,
            fmt,
            now=ctx.now(),
            actor_id=job.created_by,
            media=ctx.media,
            options=dict(job.params.get("options") or {}),
            on_progress=on_progress,
        )
        with part.open("wb") as out:
            for chunk in chunks:
                out.write(chunk)
                ctx.check_cancelled()
        os.replace(part, dest)
    except BaseException:
        job_files.remove(part)
        raise
    finally:
        _sweep(ctx)
    return {
        "format": fmt,
        "media_type": media_type,
        "file": dest.name,
        "bytes": dest.stat().st_size,
        "items": ctx.done,
    }


def _sweep(ctx: JobContext) -> None:
    """Remove the job files no job needs any more; never fails the job."""
    try:
        job_files.sweep(ctx.db, ctx.settings)
    except Exception:
        log.exception("sweeping job files failed")
