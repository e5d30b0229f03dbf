"""Job kinds: train, predict and evaluate (:mod:`labelfarm.services.models` keeps the books).

All three are heavy: their model work runs through the job's executor (the worker process,
or a Ray cluster when one is configured), one call per batch of items; reading the items and
writing the results stay here, in short transactions.

- ``train`` (params ``predictor``, ``params``?, ``fields``?, ``then``?): a new model version
  trained on the project's labelled items (:mod:`labelfarm.services.models.training`), stored
  with its exact training set, evaluated on the held-out set; with ``then:
  "promote_and_predict"`` it is promoted and a predict job queued once it is ready; with
  ``then: "promote_if_better"`` (what ``retrain_every`` queues, :mod:`.score_jobs`) only when
  it beats the promoted version on the held-out set (accuracy of the loop field; none
  promoted: always).
- ``predict`` (``version``? (default: the promoted one), ``item_ids``?): the version's
  predictions for the items without a final label (and gold), in batches; resumable. For the
  promoted version it also writes the model outputs of the loop field (probabilities and the
  predictor's embedding) in each batch's transaction, and once done queues the follow-ups
  (:func:`.score_jobs.after_predict`: ``score``, ``auto_accept``).
- ``evaluate`` (``version``): the version evaluated again on the current held-out set.
"""

from __future__ import annotations

import hashlib
import time
from collections.abc import Iterator, Sequence
from typing import Any

import numpy as np

from labelfarm.errors import InvalidInput
from labelfarm.jobs.context import JobContext
from labelfarm.jobs.kinds import job_kind
from labelfarm.jobs.score_jobs import PROMOTE_IF_BETTER, after_predict, beats, predict_outputs
from labelfarm.ml.predictors import compute
from labelfarm.schema import FieldType
from labelfarm.services import job_queue
from labelfarm.services.models import evaluation, inputs, predictions, training, versions
from labelfarm.services.models.store import model_store, version_key
from labelfarm.services.models.training import Example, Split
from labelfarm.services.models.versions import ModelVersion
from labelfarm.services.projects import Project, load_project

MODEL_FILE, TRAINING_SET_FILE = "model.bin", "training-set.json"
WINDOW = 4  # predict batches handed to the executor at once


# -- train --------------------------------------------------------------------------------------
@job_kind("train", heavy=True, title="Train a model")
def train(ctx: JobContext) -> dict[str, Any]:
    """A new model version: trained, stored with its training set, evaluated."""
    params = ctx.job.params
    project = ctx.db.run(load_project, _project_id(ctx))
    name, options, fields = training.check_request(
        project, params.get("predictor"), params.get("params"), params.get("fields")
    )
    version = ctx.db.run(
        versions.start_training,
        project,
        job_id=ctx.job.id,
        predictor=name,
        params=options,
        fields=[s.to_dict() for s in training.field_specs(fields)],
        created_by=ctx.job.created_by,
        now=ctx.now(),
    )
    try:
        result = _train(ctx, project, version, fields)
    except BaseException:
        if not ctx.lost:  # another worker has the job now, and the version
            ctx.db.run(versions.fail_training, project.id, version.version)
        raise
    then = params.get("then")
    if then == "promote_and_predict" or (
        then == PROMOTE_IF_BETTER and _better(ctx, project, version.version)
    ):
        _promote_and_predict(ctx, project, version.version)
    return result


def _better(ctx: JobContext, project: Project, number: int) -> bool:
    """Whether the new version beats the promoted one (``then: promote_if_better``)."""
    new = ctx.db.run(versions.get_version, project.id, number)
    promoted = ctx.db.run(versions.promoted_version, project.id)
    return beats(new, promoted, training.loop_field(project, new.fields))


def _promote_and_predict(ctx: JobContext, project: Project, number: int) -> None:
    """``then: promote_and_predict``: the new version pre-labels, starting now."""
    actor = ctx.job.created_by
    ctx.db.run(versions.promote, project, number, now=ctx.now(), actor_id=actor)
    ctx.db.run(
        job_queue.enqueue,
        kind="predict",
        params={"version": number},
        now=ctx.now(),
        project_id=project.id,
        workspace_id=project.workspace_id,
        created_by=actor,
    )


def _train(
    ctx: JobContext, project: Project, version: ModelVersion, fields: list[FieldType]
) -> dict[str, Any]:
    ctx.progress(0, None, "reading the labels")
    data: Split = ctx.db.run(training.split, project, fields)
    if not data.train:
        raise InvalidInput(
            "no item has a label to train on yet (gold and held-out items never train): "
            "label or review some items first",
            [{"field": "predictor", "reason": "no training items"}],
        )
    total = 2 * len(data.train) + len(data.evaluate)
    items = _read(ctx, project.id, data.train, done=0, total=total, what="reading items")
    found = {i.id for i in items}
    examples = data.train = [e for e in data.train if e.item_id in found]
    ctx.progress(len(items), total, f"training on {len(items)} items")
    specs = training.field_specs(fields)
    task = compute.FitTask(
        version.predictor, specs, version.params, items, training.labels_of(examples, fields)
    )
    started = time.perf_counter()
    blob = ctx.executor.call(compute.fit_task, task, cancelled=ctx.cancelled)
    seconds = time.perf_counter() - started
    del items, task
    store = model_store(ctx.settings)
    record = training.training_set_json(
        project, version.version, version.predictor, version.params, fields, data
    )
    artifact = version_key(project.id, version.version, MODEL_FILE)
    training_set = version_key(project.id, version.version, TRAINING_SET_FILE)
    store.put(artifact, blob)
    store.put(training_set, record)
    done = 2 * len(examples)
    ctx.progress(done, total, "evaluating on the held-out set")
    result = _evaluate(ctx, project, version, blob, fields, data.evaluate, done, total)
    finished = ctx.db.run(
        versions.finish_training,
        project.id,
        version.version,
        artifact=artifact,
        training_set=training_set,
        training_sha256=hashlib.sha256(record).hexdigest(),
        n_train=len(examples),
        n_eval=result["n"],
        train_seconds=round(seconds, 3),
        evaluation=result,
    )
    ctx.progress(total, total, f"version {version.version} ready")
    return _summary(finished)


def _summary(version: ModelVersion) -> dict[str, Any]:
    fields = (version.evaluation or {}).get("fields", {})
    return {
        "version": version.version,
        "predictor": version.predictor,
        "n_train": version.n_train,
        "n_eval": version.n_eval,
        "train_seconds": version.train_seconds,
        "accuracy": {name: r.get("accuracy") for name, r in fields.items()},
    }


# -- reading items and predicting in batches ----------------------------------------------------
def _batches(ctx: JobContext, seq: Sequence[Any]) -> list[Sequence[Any]]:
    n = ctx.settings.predict_batch_items
    return [seq[i : i + n] for i in range(0, len(seq), n)]


def _read(
    ctx: JobContext,
    project_id: int,
    examples: Sequence[Example],
    *,
    done: int,
    total: int,
    what: str,
) -> list[Any]:
    """The predictor inputs of the examples' items, read a batch at a time."""
    items: list[Any] = []
    for batch in _batches(ctx, examples):
        rows = ctx.db.run(inputs.input_rows, project_id, [e.item_id for e in batch])
        items += inputs.to_inputs(ctx.media, rows)
        ctx.progress(done + len(items), total, what)
    return items


def _evaluate(
    ctx: JobContext,
    project: Project,
    version: ModelVersion,
    blob: bytes,
    fields: list[FieldType],
    examples: list[Example],
    done: int,
    total: int,
    left_out: int = 0,
) -> dict[str, Any]:
    """The version's evaluation on ``examples`` (held-out items), predicted a batch at a time."""
    parts: dict[str, list[np.ndarray]] = {f.name: [] for f in fields}
    kept: list[Example] = []
    for batch in _batches(ctx, examples):
        rows = ctx.db.run(inputs.input_rows, project.id, [e.item_id for e in batch])
        found = {r.id for r in rows}
        kept += [e for e in batch if e.item_id in found]
        if rows:
            task = compute.PredictTask(version.predictor, blob, inputs.to_inputs(ctx.media, rows))
            proba = ctx.executor.call(compute.predict_task, task, cancelled=ctx.cancelled)
            for f in fields:
                parts[f.name].append(np.asarray(proba[f.name]))
        done += len(batch)
        ctx.progress(done, total, "evaluating on the held-out set")
    stacked = {
        f.name: np.concatenate(parts[f.name])
        if parts[f.name]
        else np.zeros((0, len(getattr(f, "options", ()))))
        for f in fields
    }
    return evaluation.evaluate(fields, kept, stacked, left_out=left_out)


def _project_id(ctx: JobContext) -> int:
    if ctx.job.project_id is None:
        raise InvalidInput("a model job belongs to a project", [{"field": "project_id"}])
    return ctx.job.project_id


def _version(ctx: JobContext, project: Project, number: Any) -> ModelVersion:
    """The version a job names (or, with none named, the promoted one), ready for use."""
    if number is None:
        found = ctx.db.run(versions.promoted_version, project.id)
        if found is None:
            raise InvalidInput(
                "no model version is promoted in this project: promote one, or name one",
                [{"field": "version", "reason": "none promoted"}],
            )
    else:
        found = ctx.db.run(versions.get_version, project.id, int(number))
    if found.state != "ready" or not found.artifact:
        raise InvalidInput(
            f"model version {found.version} is {found.state}: only a ready version predicts",
            [{"field": "version", "reason": found.state}],
        )
    return found


# -- predict ------------------------------------------------------------------------------------
@job_kind("predict", heavy=True, title="Pre-label with a model")
def predict(ctx: JobContext) -> dict[str, Any]:
    """The version's predictions for the items without a final label (or those named), a
    batch at a time, each batch one short write; items it predicted already are skipped.
    Batches go to the executor :data:`WINDOW` at a time (a Ray cluster predicts them in
    parallel), each one written as it comes back."""
    params = ctx.job.params
    project = ctx.db.run(load_project, _project_id(ctx))
    version = _version(ctx, project, params.get("version"))
    fields = training.version_fields(project, version)
    chosen = params.get("item_ids")
    ids = sorted({int(i) for i in chosen}) if chosen is not None else None
    total = ctx.db.run(predictions.count_targets, project.id, version, ids)
    ctx.progress(0, total, f"predicting with version {version.version}")
    blob = model_store(ctx.settings).get(version.artifact or "")
    # the promoted version's predictions also store the loop field's outputs (the score job's)
    field = training.loop_field(project, fields) if version.promoted else None
    done = 0
    for window in _windows(ctx, project.id, version, ids):
        tasks = [
            compute.PredictTask(version.predictor, blob, inputs.to_inputs(ctx.media, rows))
            for rows in window
        ]

        def write(i: int, result: Any, window: list[Any] = window) -> None:
            nonlocal done
            proba, embedding = result if field is not None else (result, None)
            item_ids = [r.id for r in window[i]]
            batch = predictions.predicted(fields, item_ids, proba)
            out = None
            if field is not None:
                out = predictions.outputs_of(field, item_ids, proba, embedding)
            done += ctx.db.run(predictions.write_batch, project.id, version, batch, ctx.now(), out)
            ctx.progress(done, max(total, done), f"{done} of {total} items predicted")

        run = predict_outputs if field is not None else compute.predict_task
        ctx.executor.map(run, tasks, on_result=write, cancelled=ctx.cancelled)
    queued = {}
    if version.promoted:
        queued = after_predict(
            ctx.db, project, version, now=ctx.now(), created_by=ctx.job.created_by
        )
    return {
        "version": version.version,
        "model": version.predictor,
        "predicted": done,
        "queued": queued,
    }


def _windows(
    ctx: JobContext, project_id: int, version: ModelVersion, ids: list[int] | None
) -> Iterator[list[list[Any]]]:
    """The items still to predict, in batches of ``predict_batch_items``, :data:`WINDOW`
    batches at a time (by id: a window is read before the one before it is written)."""
    n, after = ctx.settings.predict_batch_items, 0
    window: list[list[Any]] = []
    while True:
        if ids is not None:
            chunk = [i for i in ids if i > after][:n]
            if not chunk:
                break
            rows = ctx.db.run(
                predictions.next_targets, project_id, version, after=after, n=n, item_ids=chunk
            )
            after = chunk[-1]
        else:
            rows = ctx.db.run(predictions.next_targets, project_id, version, after=after, n=n)
            if not rows:
                break
            after = rows[-1].id
        if rows:
            window.append(rows)
        if len(window) == WINDOW:
            yield window
            window = []
    if window:
        yield window


# -- evaluate -----------------------------------------------------------------------------------
@job_kind("evaluate", heavy=True, title="Evaluate a model")
def evaluate(ctx: JobContext) -> dict[str, Any]:
    """The version evaluated again on the current held-out set (items it trained on, which
    may have been reviewed into the set since, are left out)."""
    project = ctx.db.run(load_project, _project_id(ctx))
    number = ctx.job.params.get("version")
    if number is None:
        raise InvalidInput("name the version to evaluate", [{"field": "version"}])
    version = _version(ctx, project, number)
    fields = training.version_fields(project, version)
    ctx.progress(0, None, "reading the held-out set")
    store = model_store(ctx.settings)
    _header, trained = training.read_training_set(store.get(version.training_set or ""))
    seen = {e.item_id for e in trained}
    held_out = ctx.db.run(training.split, project, fields).evaluate
    examples = [e for e in held_out if e.item_id not in seen]
    blob = store.get(version.artifact or "")
    result = _evaluate(
        ctx,
        project,
        version,
        blob,
        fields,
        examples,
        0,
        len(examples),
        len(held_out) - len(examples),
    )
    updated = ctx.db.run(
        versions.store_evaluation, project.id, version.version, result, result["n"]
    )
    return _summary(updated)
