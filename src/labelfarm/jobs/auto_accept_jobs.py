"""Job kind ``auto_accept``: the promoted model labels the items it is sure of
(:mod:`labelfarm.services.auto_accept`).

Queued by the predict job when a promoted version finished predicting in a project with an
``auto_accept_target`` (or by a manager, ``POST …/auto-accept/run``). It predicts the held-out
evidence with the promoted version (through the job's executor, a batch at a time, as the
``evaluate`` job does), finds the thresholds, applies them to the open items' model outputs in
short write transactions, then updates the spot checks (which may withdraw a threshold).
Params: none (``target`` may override the project's setting, for a trial run).
"""

from __future__ import annotations

from typing import Any

import numpy as np

from labelfarm.errors import InvalidInput
from labelfarm.jobs.context import JobContext
from labelfarm.jobs.kinds import job_kind
from labelfarm.ml import auto_accept as ml
from labelfarm.ml.predictors import compute
from labelfarm.services import auto_accept, auto_accept_spot
from labelfarm.services.models import inputs, training, versions
from labelfarm.services.models.store import model_store
from labelfarm.services.models.versions import ModelVersion
from labelfarm.services.projects import Project, load_project

KIND = "auto_accept"


@job_kind(KIND, heavy=True, title="Auto-accept confident predictions")
def run(ctx: JobContext) -> dict[str, Any]:
    """Thresholds from the held-out evidence, applied to the open items; spot checks updated."""
    if ctx.job.project_id is None:
        raise InvalidInput("an auto_accept job belongs to a project", [{"field": "project_id"}])
    project = ctx.db.run(load_project, ctx.job.project_id)
    target = _target(project, ctx.job.params.get("target"))
    if target == 0:
        return {"skipped": "auto-accept is off in this project (auto_accept_target = 0)"}
    version = ctx.db.run(versions.promoted_version, project.id)
    if version is None or version.state != "ready" or not version.artifact:
        return {"skipped": "no ready model version is promoted in this project"}
    fields = training.version_fields(project, version)
    field = training.loop_field(project, fields)
    if field is None:
        return {"skipped": "the promoted version predicts no choice field"}
    options = tuple(getattr(next(f for f in fields if f.name == field), "options", ()))
    found = _thresholds(ctx, project, version, fields, field, target)
    rows = ctx.db.run(
        auto_accept.record_thresholds,
        project,
        version=version.version,
        field=field,
        options=options,
        found=found,
        target=target,
        job_id=ctx.job.id,
        now=ctx.now(),
    )
    plan = auto_accept.Plan(
        version.version, field, options, {options.index(r.option): r for r in rows}
    )
    accepted, spot = _apply(ctx, project, plan)
    withdrawn = auto_accept_spot.update_project(ctx.db, project, ctx.now())
    summary = {
        "version": version.version,
        "field": field,
        "target": target,
        "thresholds": {
            r.option: None if r.threshold is None else round(r.threshold, 6) for r in rows
        },
        "evidence": sum(c.n for c in found),
        "accepted": accepted,
        "spot_checks": spot,
        "withdrawn": [w["id"] for w in withdrawn],
    }
    ctx.db.run(auto_accept.record_run, project, summary, now=ctx.now())
    return summary


def _target(project: Project, override: Any) -> float:
    if override is None:
        return float(project.auto_accept_target)
    if not isinstance(override, int | float) or not 0.5 <= float(override) < 1:
        raise InvalidInput("target must be a number in [0.5, 1)", [{"field": "target"}])
    return float(override)


def _thresholds(
    ctx: JobContext,
    project: Project,
    version: ModelVersion,
    fields: list[Any],
    field: str,
    target: float,
) -> list[ml.ClassThreshold]:
    """The version's probabilities on the held-out evidence, a batch at a time, and the
    per-class thresholds they support."""
    store = model_store(ctx.settings)
    _header, trained = training.read_training_set(store.get(version.training_set or ""))
    seen = {e.item_id for e in trained}
    ctx.progress(0, None, "reading the held-out evidence")
    evidence = ctx.db.run(auto_accept.evidence_items, project, fields, field, seen)
    truth = dict(evidence)
    blob = store.get(version.artifact or "")
    ids = [i for i, _ in evidence]
    n_options = len(getattr(next(f for f in fields if f.name == field), "options", ()))
    probas, labels = [np.zeros((0, n_options))], []
    step = ctx.settings.predict_batch_items
    for start in range(0, len(ids), step):
        ctx.check_cancelled()
        rows = ctx.db.run(inputs.input_rows, project.id, ids[start : start + step])
        if rows:
            task = compute.PredictTask(version.predictor, blob, inputs.to_inputs(ctx.media, rows))
            proba = ctx.executor.call(compute.predict_task, task, cancelled=ctx.cancelled)
            probas.append(np.asarray(proba[field], dtype=np.float64))
            labels += [truth[r.id] for r in rows]
        ctx.progress(min(start + step, len(ids)), len(ids), "predicting the held-out evidence")
    return ml.search_thresholds(np.concatenate(probas), np.asarray(labels, np.int64), target)


def _apply(ctx: JobContext, project: Project, plan: auto_accept.Plan) -> tuple[int, int]:
    """The plan applied to every open item's model outputs, a page per transaction."""
    accepted = spot = 0
    after: int | None = 0
    if not any(r.threshold is not None for r in plan.rows.values()):
        return 0, 0
    while after is not None:
        ctx.check_cancelled()
        done = ctx.db.run(auto_accept.apply_page, project, plan, after=after, now=ctx.now())
        after, accepted, spot = done.after, accepted + done.accepted, spot + done.spot_checks
        ctx.progress(accepted + spot, None, f"{accepted} auto-labelled, {spot} spot checks")
    return accepted, spot
