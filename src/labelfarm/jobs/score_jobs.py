"""Job kind ``score``, and the learning loop's links between the model jobs.

- ``score`` (no params): the project's open items scored for the ``score`` ordering
  (:func:`labelfarm.services.scores.refresh_scores`: the project's sampler, or the open
  correction round's confusion pair with its pinned items first; held-out items random),
  written in short batches. Queued by the predict job when the promoted version's
  predictions are done and the project orders by score, by a manager
  (``POST /api/v1/projects/{id}/scores/refresh``) and by correction rounds.
- After the promoted version's predict job (:func:`after_predict`): ``score`` when the
  project's ordering is ``score``, ``auto_accept`` when its ``auto_accept_target`` > 0 (by
  kind name; skipped, with a log line, while that kind is not registered).
- Every ``retrain_every`` labels (:func:`queue_retrains`, run by the periodic ``refit`` job):
  a ``train`` job like the newest version (predictor, parameters, fields) with ``then:
  "promote_if_better"``: promoted when it beats the promoted version on the held-out set,
  then predict, then score.
- :func:`predict_outputs` is what the predict job's executor runs when it writes model
  outputs: the probabilities and the predictor's embedding of a batch.
"""

from __future__ import annotations

import logging
from typing import Any

import numpy as np

from labelfarm.db.engine import Database
from labelfarm.jobs.context import JobContext
from labelfarm.jobs.kinds import job_kind, kind_names
from labelfarm.jsonutil import loads
from labelfarm.ml.predictors import PredictTask
from labelfarm.ml.predictors.registry import load
from labelfarm.services import job_queue, scores
from labelfarm.services.models.versions import ModelVersion
from labelfarm.services.projects import Project, load_project

log = logging.getLogger("labelfarm.jobs")

SCORE, AUTO_ACCEPT, TRAIN = "score", "auto_accept", "train"
PROMOTE_IF_BETTER = "promote_if_better"


@job_kind(SCORE, title="Score the queue")
def score(ctx: JobContext) -> dict[str, Any]:
    """Score the project's open items and write the scores in short batches."""
    if ctx.job.project_id is None:
        raise ValueError("a score job belongs to a project")
    project = ctx.db.run(load_project, ctx.job.project_id)
    sampling = ctx.db.run(scores.current_round, project.id)
    ctx.progress(0, None, "reading the model outputs")

    def progress(done: int, total: int) -> None:
        ctx.progress(done, total, f"{done} of {total} items scored")

    result = scores.refresh_scores(ctx.db, project, sampling, progress=progress)
    return scores.describe(result)


def predict_outputs(task: PredictTask) -> tuple[dict[str, np.ndarray], np.ndarray | None]:
    """The saved model's probabilities for the task's items, field by field, and its
    embedding of them (None when the predictor gives none)."""
    predictor = load(task.name, task.blob)
    return predictor.predict_proba(task.items), predictor.embed(task.items)


def enqueue_kind(
    db: Database, project: Project, kind: str, params: dict[str, Any], *, now: float,
    created_by: int | None,
) -> int | None:  # fmt: skip
    """Queue a job of ``kind`` for the project, if that kind is registered (else a log line
    and None): the job's id."""
    if kind not in kind_names():
        log.info("job kind %r is not registered: not queued for project %s", kind, project.id)
        return None
    return db.run(
        job_queue.enqueue,
        kind=kind,
        params=params,
        now=now,
        project_id=project.id,
        workspace_id=project.workspace_id,
        created_by=created_by,
    )


def after_predict(
    db: Database, project: Project, version: ModelVersion, *, now: float, created_by: int | None
) -> dict[str, int]:
    """The follow-ups of the promoted version's finished predictions: their job ids by kind."""
    queued: dict[str, int] = {}
    current = db.run(load_project, project.id)  # settings as they are now
    wanted = []
    if current.ordering == "score":
        wanted.append(SCORE)
    if current.auto_accept_target > 0:
        wanted.append(AUTO_ACCEPT)
    for kind in wanted:
        job = enqueue_kind(db, current, kind, {"version": version.version}, now=now,
                           created_by=created_by)  # fmt: skip
        if job is not None:
            queued[kind] = job
    return queued


def queue_retrains(db: Database, *, now: float, only: int | None = None) -> dict[str, int]:
    """Queue a ``train`` job in every project due for one (:func:`scores.retrain_due`): the
    job ids by project id."""
    queued: dict[str, int] = {}
    for project_id in db.run(scores.retrain_projects):
        if only is not None and project_id != only:
            continue
        project = db.run(load_project, project_id)
        newest = db.run(scores.retrain_due, project)
        if newest is None:
            continue
        params = {
            "predictor": newest.predictor,
            "params": loads(newest.params),
            "fields": [f["name"] for f in loads(newest.fields)],
            "then": PROMOTE_IF_BETTER,
            "reason": f"retrain_every: {project.retrain_every} new labels since version "
            f"{newest.version}",
        }
        job = enqueue_kind(db, project, TRAIN, params, now=now, created_by=None)
        if job is not None:
            queued[str(project_id)] = job
    return queued


def beats(new: ModelVersion, promoted: ModelVersion | None, field: str | None) -> bool:
    """Whether ``new`` should replace ``promoted``: none promoted, or an accuracy on the
    held-out set (of ``field``, else the mean over fields) at least as high."""
    if promoted is None:
        return True
    a, b = _accuracy(new, field), _accuracy(promoted, field)
    if a is None:
        return False
    return b is None or a >= b


def _accuracy(version: ModelVersion, field: str | None) -> float | None:
    fields = (version.evaluation or {}).get("fields", {})
    if field is not None and field in fields:
        value = fields[field].get("accuracy")
        return None if value is None else float(value)
    values = [float(r["accuracy"]) for r in fields.values() if r.get("accuracy") is not None]
    return sum(values) / len(values) if values else None
