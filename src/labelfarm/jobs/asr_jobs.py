"""Job kind ``asr``: speech-recognition pre-fill of a project's audio items.

Params: ``items`` (ids, or null: every item still to transcribe), ``field`` (the segments
field to fill; null: the schema's only one), ``language`` (a tag for every item; null: each
item's data ``language``, else the language the model detects). The model is the
``asr_model_dir`` setting's (:mod:`labelfarm.ml.asr`); a missing model or faster-whisper
fails the job at once, saying which setting or extra it needs.

Heavy: each file is one call of :func:`labelfarm.ml.asr.transcribe_task` through the job's
executor (the worker process, or a Ray cluster when ``ray_address`` is set, every node then
needing the model at the same path). The files go out a window at a time (at most
:data:`WINDOW_ITEMS` files or :data:`WINDOW_BYTES` bytes); transcripts are written as they
come back, :data:`WRITE_EVERY` per short transaction (:mod:`labelfarm.services.asr_targets`
keeps the books). An item transcribed already is skipped, so a job run again resumes.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from typing import Any

from labelfarm.errors import InvalidInput
from labelfarm.jobs.context import JobContext
from labelfarm.jobs.kinds import job_kind
from labelfarm.jsonutil import loads
from labelfarm.ml import asr
from labelfarm.schema import FieldType
from labelfarm.services import asr_targets
from labelfarm.services.asr_targets import AsrTarget, Transcript
from labelfarm.services.projects import Project, load_project

WINDOW_ITEMS = 16  # files handed to the executor at once
WINDOW_BYTES = 256 * 2**20  # ... and at most this many bytes of them, unless one is larger
WRITE_EVERY = 8  # transcripts per write
MAX_THREADS = 8  # CPU threads of one transcription in the worker process
MAX_FAILURES_LISTED = 20


@job_kind("asr", heavy=True, title="Transcribe audio (ASR pre-fill)")
def transcribe_items(ctx: JobContext) -> dict[str, Any]:
    """Transcripts of the project's audio items, written as ``asr`` predictions."""
    params = ctx.job.params
    if ctx.job.project_id is None:
        raise InvalidInput("an asr job belongs to a project", [{"field": "project_id"}])
    project = ctx.db.run(load_project, ctx.job.project_id)
    field, language = asr_targets.check_request(project, params)
    chosen = params.get("items")
    ids = sorted({int(i) for i in chosen}) if chosen is not None else None
    settings = ctx.settings
    reason = asr.available(settings.asr_model_dir)
    if reason:
        raise InvalidInput(reason, [{"field": "asr_model_dir", "reason": "unavailable"}])
    name = settings.asr_model_name
    total = ctx.db.run(asr_targets.count_targets, project.id, name, ids)
    ctx.progress(0, total, f"transcribing with {name}")
    run = _Run(ctx, project, field, name, total)
    threads = 1 if ctx.executor.name == "ray" else min(os.cpu_count() or 1, MAX_THREADS)
    for rows in _windows(ctx, project.id, name, ids):
        tasks = []
        for row in rows:
            media = None if run.too_long(row) else run.read(row)
            if media is not None:
                tasks.append(
                    asr.AsrTask(
                        item_id=row.id,
                        media=media,
                        language=language or asr_targets.item_language(loads(row.data)),
                        model_dir=settings.asr_model_dir,
                        compute_type=settings.asr_compute_type,
                        cpu_threads=threads,
                    )
                )
        try:
            ctx.executor.map(
                asr.transcribe_task, tasks, on_result=run.take, cancelled=ctx.cancelled
            )
        finally:
            if not ctx.lost:  # what came back is kept, even when the job stops
                run.flush()
    return run.summary()


class _Run:
    """What one run has transcribed: written in batches, counted, its failures listed."""

    def __init__(
        self, ctx: JobContext, project: Project, field: FieldType, name: str, total: int
    ) -> None:
        self.ctx, self.project, self.field, self.name, self.total = ctx, project, field, name, total
        self.allowed = asr_targets.field_languages(field)
        self.pending: list[Transcript] = []
        self.written = self.failed = 0
        self.failures: list[dict[str, Any]] = []
        self.audio_seconds = self.compute_seconds = 0.0

    def read(self, row: AsrTarget) -> bytes | None:
        """The item's stored file; None (counted as failed) when the store lost it."""
        try:
            with self.ctx.media.open(row.media_sha256) as fh:
                return fh.read()
        except OSError as exc:
            self.take(0, asr.AsrResult(row.id, [], 0.0, 0.0, f"its media file: {exc}"))
            return None

    def too_long(self, row: AsrTarget) -> bool:
        """Whether the item's audio is longer than a transcription takes (when its import
        measured it): it is then counted as failed, unread."""
        error = asr.too_long(row.duration or 0.0, asr.MAX_SECONDS)
        if error:
            self.take(0, asr.AsrResult(row.id, [], 0.0, 0.0, error))
        return error is not None

    def take(self, _i: int, result: asr.AsrResult) -> None:
        self.audio_seconds += result.seconds
        self.compute_seconds += result.compute_seconds
        try:
            if result.error:
                raise ValueError(result.error)
            value = self.field.validate(self._fitted(result.segments))
        except ValueError as exc:  # FieldError is a ValueError too
            self.failed += 1
            if len(self.failures) < MAX_FAILURES_LISTED:
                where = getattr(exc, "path", "")  # a FieldError's place in the value
                reason = f"{self.field.name}{where}: {exc}" if where else str(exc)
                self.failures.append({"item": result.item_id, "reason": reason})
        else:
            score = asr.mean_word_p(result.segments)
            self.pending.append(Transcript(result.item_id, {self.field.name: value}, score))
            if len(self.pending) >= WRITE_EVERY:
                self.flush()
        done = self.written + len(self.pending) + self.failed
        self.ctx.progress(done, max(done, self.total), f"{done} of {self.total} items transcribed")

    def _fitted(self, segments: list[dict[str, Any]]) -> list[dict[str, Any]]:
        """The segments with their language tags as the field can hold them."""
        if not self.allowed:
            return segments
        out = []
        for s in segments:
            tag = asr_targets.fit_tag(s["language"][0] if s["language"] else None, self.allowed)
            out.append({**s, "language": [tag] if tag else []})
        return out

    def flush(self) -> None:
        if self.pending:
            self.written += self.ctx.db.run(
                asr_targets.write_transcripts,
                self.project.id,
                self.name,
                self.pending,
                self.ctx.now(),
            )
            self.pending = []

    def summary(self) -> dict[str, Any]:
        seconds = self.audio_seconds
        return {
            "model": asr_targets.MODEL,
            "model_version": self.name,
            "field": self.field.name,
            "transcribed": self.written,
            "failed": self.failed,
            "failures": self.failures,
            "audio_seconds": round(seconds, 3),
            "real_time_factor": round(self.compute_seconds / seconds, 4) if seconds else None,
        }


def _windows(
    ctx: JobContext, project_id: int, name: str, ids: list[int] | None
) -> Iterator[list[AsrTarget]]:
    """The items still to transcribe, by id, a window at a time: at most
    :data:`WINDOW_ITEMS` of them and :data:`WINDOW_BYTES` bytes of files (a larger file goes
    alone). A window is read after the one before it is written."""
    after = 0
    while True:
        chunk = None
        if ids is not None:
            chunk = [i for i in ids if i > after][:WINDOW_ITEMS]
            if not chunk:
                return
        rows = ctx.db.run(
            asr_targets.next_targets,
            project_id,
            name,
            after=after,
            n=WINDOW_ITEMS,
            item_ids=chunk,
        )
        if chunk is None and not rows:
            return
        window: list[AsrTarget] = []
        size = 0
        for row in rows:
            if window and size + (row.size or 0) > WINDOW_BYTES:
                break
            window.append(row)
            size += row.size or 0
        if len(window) < len(rows):
            after = window[-1].id
        else:
            after = chunk[-1] if chunk is not None else rows[-1].id
        if window:
            yield window
