"""The files of import and export jobs, under the data directory.

An upload that an import job is to read waits in ``DATA_DIR/uploads/<token>`` from its
arrival until its job ends (the job deletes it: done, failed for good or cancelled). An
export job writes ``DATA_DIR/exports/<project>/<job>.<ext>`` (as ``<job>.<ext>.part`` until
it is complete), kept ``LABELFARM_EXPORT_KEEP_HOURS`` after it was written.

:func:`sweep` removes what no job needs any more: an upload whose import job has ended or is
gone (one not yet queued is left an hour, the time between its arrival and its job), an
export past its keeping time, and an export whose job is gone or did not finish. Import and
export jobs sweep when they end, and so do the routes that start them. The worker reading
an upload must see the server's data directory (the same machine, or a shared volume).
"""

from __future__ import annotations

import re
import secrets
import time
from pathlib import Path

from labelfarm.db.engine import Database
from labelfarm.errors import NotFound
from labelfarm.services import job_queue
from labelfarm.settings import Settings

UPLOADS = "uploads"
EXPORTS = "exports"
UPLOAD_GRACE_SECONDS = 3600.0  # an upload with no open job is kept this long
_TOKEN = re.compile(r"[0-9a-f]{32}")
_EXPORT_NAME = re.compile(r"(\d+)\.[a-z0-9.-]+?(\.part)?")


def new_upload(settings: Settings) -> tuple[str, Path]:
    """A fresh place for an upload: its token (what a job's parameters name) and path."""
    token = secrets.token_hex(16)
    folder = settings.data_dir / UPLOADS
    folder.mkdir(parents=True, exist_ok=True)
    return token, folder / token


def upload_path(settings: Settings, token: str) -> Path:
    """Where the upload ``token`` is stored; a token of another shape names nothing."""
    if not _TOKEN.fullmatch(token):
        raise NotFound(f"no upload {token!r}")
    return settings.data_dir / UPLOADS / token


def export_path(settings: Settings, project_id: int, job_id: int, ext: str) -> Path:
    """Where the export job ``job_id`` of a project writes its file."""
    return settings.data_dir / EXPORTS / str(int(project_id)) / f"{int(job_id)}.{ext}"


def remove(path: Path) -> None:
    path.unlink(missing_ok=True)


def sweep(db: Database, settings: Settings, now: float | None = None) -> int:
    """Remove the uploads and exports no job needs any more (see the module's text); how
    many files were removed. ``now`` is wall-clock time, as files' ages are."""
    now = time.time() if now is None else now
    removed = _sweep_uploads(db, settings, now)
    root = settings.data_dir / EXPORTS
    if root.is_dir():
        for folder in root.iterdir():
            if folder.is_dir():
                removed += _sweep_exports(db, settings, folder, now)
    return removed


def _sweep_uploads(db: Database, settings: Settings, now: float) -> int:
    folder = settings.data_dir / UPLOADS
    if not folder.is_dir():
        return 0
    recent = db.run(job_queue.list_jobs, kinds=["import"], limit=1000)
    waiting = db.run(job_queue.list_jobs, kinds=["import"], states=job_queue.OPEN_STATES)
    needed = {str(job.params.get("upload")) for job in waiting}
    ended = {str(job.params.get("upload")) for job in recent if job.ended}
    removed = 0
    for path in folder.iterdir():
        if path.name in needed or not path.is_file():
            continue
        if path.name in ended or path.stat().st_mtime < now - UPLOAD_GRACE_SECONDS:
            remove(path)
            removed += 1
    return removed


def _sweep_exports(db: Database, settings: Settings, folder: Path, now: float) -> int:
    keep = settings.export_keep_hours * 3600
    removed = 0
    for path in folder.iterdir():
        match = _EXPORT_NAME.fullmatch(path.name)
        if match is None or not path.is_file():
            continue
        try:
            job = db.run(job_queue.get_job, int(match.group(1)))
        except NotFound:
            job = None
        partial = match.group(2) is not None
        if job is not None and not job.ended:
            continue  # being written
        if job is None or partial or job.state != "done" or path.stat().st_mtime < now - keep:
            remove(path)
            removed += 1
    return removed
