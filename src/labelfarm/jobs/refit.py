"""Job kinds: refitting projects' annotator models (the quality models), scheduled by the worker.

Every ``settings.refit_seconds`` a worker queues one ``refit`` job (unless one is queued or
running); it refits the annotator models of the adaptive projects with annotations newer
than their models (:func:`labelfarm.services.fitting.projects_due_for_refit`), and measures the
speech-recognition pre-fill against the transcripts submitted since
(:func:`labelfarm.services.asr_quality.measure_pending`). Server
processes read the new models within ``adaptive.MODELS_TTL``. A manager's refit by hand
(``POST …/quality/refit``) runs at once, in the request.
"""

from __future__ import annotations

from typing import Any

from labelfarm.db.engine import Database
from labelfarm.jobs.context import JobContext
from labelfarm.jobs.kinds import job_kind
from labelfarm.jobs.score_jobs import queue_retrains
from labelfarm.services import asr_quality, auto_accept_spot, calibration, fitting, job_queue
from labelfarm.services.correction_rounds import close_spent_rounds
from labelfarm.services.projects import load_project

KIND = "refit"


@job_kind(KIND, title="Refit annotator models")
def refit(ctx: JobContext) -> dict[str, Any]:
    """Refit the models of the projects due (params ``every``: seconds since their last
    fit; ``project_id``: only that project, if due)."""
    every = float(ctx.job.params.get("every", ctx.settings.refit_seconds))
    due = ctx.db.run(fitting.projects_due_for_refit, ctx.now(), every)
    only = ctx.job.params.get("project_id")
    if only is not None:
        due = [p for p in due if p == int(only)]
    refitted = []
    for n, project_id in enumerate(due):
        ctx.progress(n, len(due), f"project {project_id}")
        project = ctx.db.run(load_project, project_id)
        ctx.db.run(fitting.refit_models, project, now=ctx.now(), actor_id=None)
        ctx.db.run(calibration.refit_calibration, project, now=ctx.now())  # gold calibrators
        refitted.append(project_id)
    ctx.progress(len(due), len(due), f"{len(due)} projects refitted")
    return {
        "projects": refitted,
        "asr_measured": measure_asr(ctx, only),
        "auto_accept_withdrawn": auto_accept_spot.update_all(ctx.db, ctx.now(), only),
        # retrain_every: train jobs queued in the projects due (jobs/score_jobs.py)
        "retrain_queued": queue_retrains(ctx.db, now=ctx.now(), only=_int_or_none(only)),
        # correction rounds whose budget of labels is spent (services/correction_rounds.py)
        "rounds_closed": ctx.db.run(close_spent_rounds, _int_or_none(only), now=ctx.now()),
    }


def _int_or_none(value: Any) -> int | None:
    return None if value is None else int(value)


def measure_asr(ctx: JobContext, only: Any) -> dict[str, int]:
    """Measure the ASR pre-fill against the transcripts submitted since the last run, in the
    projects holding ASR predictions (:func:`asr_quality.measure_pending`): rows per project."""
    measured = {}
    for project_id in ctx.db.run(asr_quality.projects_with_asr):
        if only is not None and project_id != int(only):
            continue
        ctx.check_cancelled()
        project = ctx.db.run(load_project, project_id)
        n = asr_quality.measure_pending(ctx.db, project, ctx.now())
        if n:
            measured[str(project_id)] = n
    return measured


def schedule(db: Database, *, now: float, every: float) -> int | None:
    """Queue the periodic refit, unless one is queued or running: its job id, or None."""
    return db.run(job_queue.enqueue_once, kind=KIND, params={"every": every}, now=now)
