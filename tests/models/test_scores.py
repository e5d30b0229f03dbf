"""Scores and model outputs: the score ordering, the outputs the predict job writes, the score
job, retraining every N labels; on SQLite and PostgreSQL."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pytest
from model_helpers import (
    PREDICTOR,
    SCHEMA,
    Labelled,
    import_rows,
    item_ids,
    run_jobs,
    start,
)
from sqlalchemy import text

from labelfarm.db.tx import CoreTx, transaction
from labelfarm.jobs import score_jobs
from labelfarm.ml import samplers
from labelfarm.services import job_queue, scores
from labelfarm.services.correction_rounds import RoundSampling
from labelfarm.services.models import outputs, training, versions


@transaction("write")
def _write_outputs(tx: CoreTx, project_id: int, rows: list[Any]) -> None:
    outputs.write_outputs(tx, project_id, 3, "label", rows, now=1.0)


@transaction("read")
def _read(tx: CoreTx, project_id: int, ids: list[int]) -> dict[int, outputs.Output]:
    return outputs.read_outputs(tx, project_id, ids)


@transaction("read")
def _page(tx: CoreTx, project_id: int, after: int, open_only: bool) -> list[outputs.Output]:
    return outputs.outputs_page(tx, project_id, after=after, limit=2, open_only=open_only)


@transaction("write")
def _write_scores(tx: CoreTx, project_id: int, pairs: list[tuple[int, float]]) -> int:
    return scores.write_scores(tx, project_id, pairs)


def _ids(world: Any, project_id: int) -> list[int]:
    with world.db.engine.connect() as conn:
        rows = conn.execute(
            text("SELECT id FROM items WHERE project_id = :p ORDER BY id"), {"p": project_id}
        )
        return [r[0] for r in rows]


def test_outputs_round_trip_and_replace(world: Any, tmp_path: Path) -> None:
    ws = world.workspace()
    project = world.project(ws, overlap=1)
    world.add_items(project, 4, tmp_path)
    ids = _ids(world, project.id)
    rows = [
        (i, np.array([0.2, 0.8]), np.arange(3, dtype=np.float32) + k) for k, i in enumerate(ids)
    ]
    world.db.run(_write_outputs, project.id, rows)
    world.db.run(_write_outputs, project.id, [(ids[0], np.array([0.9, 0.1]), None)])
    got = world.db.run(_read, project.id, ids)
    assert sorted(got) == ids
    assert got[ids[0]].embedding is None
    np.testing.assert_allclose(got[ids[0]].proba, [0.9, 0.1], rtol=1e-6)
    np.testing.assert_array_equal(got[ids[1]].embedding, [1, 2, 3])
    assert got[ids[1]].proba.dtype == np.float32 and got[ids[1]].embedding.dtype == np.float16
    page = world.db.run(_page, project.id, ids[0], False)
    assert [o.item_id for o in page] == ids[1:3]
    assert world.db.run(_write_scores, project.id, [(ids[2], 0.5), (ids[1], 0.25)]) == 2
    with pytest.raises(ValueError, match="finite"):
        world.db.run(_write_scores, project.id, [(ids[0], float("nan"))])


# -- the predict job's outputs and the score job ----------------------------------------------
def _outputs(world: Any, project_id: int) -> dict[int, Any]:
    with world.db.engine.connect() as conn:
        rows = conn.execute(
            text(
                "SELECT item_id, version, field, proba, embedding FROM model_outputs "
                "WHERE project_id = :p"
            ),
            {"p": project_id},
        )
        return {r.item_id: r for r in rows}


def _scores(world: Any, project_id: int) -> dict[int, float]:
    with world.db.engine.connect() as conn:
        rows = conn.execute(
            text("SELECT id, score FROM items WHERE project_id = :p AND is_open"),
            {"p": project_id},
        )
        return {r.id: float(r.score) for r in rows}


def _loop(world: Any, worker: Any, lab: Labelled) -> list[Any]:
    """The project orders by score; version 1 trained, promoted and predicting: the jobs."""
    lab.manager["client"].update_project(lab.project.id, ordering="score")
    path = f"/projects/{lab.project.id}/models"
    start(lab.manager, f"{path}/train", {"predictor": PREDICTOR})
    ran = run_jobs(world, worker)
    lab.manager["client"].request("POST", f"{path}/1/promote")
    start(lab.manager, f"{path}/1/predict")
    return ran + run_jobs(world, worker)


def test_the_promoted_versions_predictions_write_outputs_and_queue_the_score_job(
    world, worker, labelled
):
    lab = labelled
    jobs = _loop(world, worker, lab)
    assert [(j.kind, j.state) for j in jobs] == [
        ("train", "done"), ("predict", "done"), ("score", "done")
    ]  # fmt: skip
    assert jobs[1].result["queued"] == {"score": jobs[2].id}
    got = _outputs(world, lab.project.id)
    assert set(got) == set(lab.fresh) | set(lab.gold)  # those the predict job predicted
    for row in got.values():
        assert (row.version, row.field) == (1, "label")
        proba = np.frombuffer(row.proba, dtype="<f4")
        assert proba.shape == (3,) and abs(float(proba.sum()) - 1.0) < 1e-4
        assert len(np.frombuffer(row.embedding, dtype="<f2")) == 3  # the decision function
    # the score job: the margin sampler's score, held-out items random
    project = world.load(lab.project.id)
    scored = _scores(world, lab.project.id)
    assert jobs[2].result["scored"] == len(lab.fresh)  # the open ones (gold is never open)
    for item in lab.fresh:
        proba = np.frombuffer(got[item].proba, dtype="<f4").astype(np.float64)
        if not training.in_held_out(project.id, item, project.holdout_share):
            want = samplers.score("margin", (proba / proba.sum())[None, :], rng=0)[0]
            assert scored[item] == pytest.approx(want, abs=1e-6)
    # next hands the open items out highest score first
    ann = world.user("second", role="annotator", workspace=lab.ws)
    tasks = ann["client"].next(lab.project.id, n=5)
    ids = world.item_ids(lab.project.id, ann, tasks)
    assert ids == sorted(lab.fresh, key=lambda i: (-scored[i], i))[:5]


def test_a_manager_refreshes_the_scores_and_the_job_is_listed(world, worker, labelled):
    lab = labelled
    _loop(world, worker, lab)
    job = start(lab.manager, f"/projects/{lab.project.id}/scores/refresh")
    assert (job["kind"], job["state"]) == ("score", "queued")
    listed = lab.manager["client"].request("GET", f"/projects/{lab.project.id}/jobs")
    assert job["id"] in [j["id"] for j in listed["jobs"]]
    (ran,) = run_jobs(world, worker)
    assert ran.state == "done" and ran.result["sampler"] == "margin"


def test_held_out_items_get_uniform_random_scores(world, tmp_path):
    ws = world.workspace()
    project = world.project(ws, schema=SCHEMA, holdout_share=0.5)
    ids = np.arange(1, 2001, dtype=np.int64)
    proba = np.tile([0.5, 0.5, 0.0], (len(ids), 1))  # a tie: margin scores 1 everywhere
    candidates = scores.Candidates(ids, proba, None, None)
    out = scores.compute_scores(project, candidates, None, np.random.default_rng(1))
    held = np.array([training.in_held_out(project.id, int(i), 0.5) for i in ids])
    assert 800 < held.sum() < 1200
    assert np.all(out[~held] == 1.0)
    assert 0.45 < out[held].mean() < 0.55 and out[held].min() < 0.05 and out[held].max() > 0.95
    # the round's sampler instead, its pinned items above everything
    sampling = RoundSampling("label", (0, 1), (int(ids[3]), int(ids[7])))
    pinned = scores.compute_scores(project, candidates, sampling, np.random.default_rng(1))
    assert list(pinned[[3, 7]]) == [scores.PINNED, scores.PINNED]
    assert pinned[~held].max() == scores.PINNED and np.delete(pinned, [3, 7]).max() <= 1.0


def test_a_rounds_pinned_items_come_first(world, worker, labelled):
    lab = labelled
    _loop(world, worker, lab)
    project = world.load(lab.project.id)
    pinned = (lab.fresh[-1], lab.fresh[-4])
    sampling = RoundSampling("label", (0, 1), pinned)
    result = scores.refresh_scores(
        world.db, project, sampling, rng=np.random.default_rng(0), batch=4
    )
    assert result.sampler == "confusion_pair" and result.pinned == 2
    assert result.batches == -(-result.scored // 4)  # short batches
    ann = world.user("second", role="annotator", workspace=lab.ws)
    ids = world.item_ids(lab.project.id, ann, ann["client"].next(lab.project.id, n=3))
    assert ids[:2] == sorted(pinned)  # score ties: by id


def test_gold_is_mixed_into_the_score_ordering(world, tmp_path):
    ws = world.workspace()
    project = world.project(ws, schema=SCHEMA, ordering="score", gold_rate=0.5)
    rows = [{"data": {"text": f"item {i}"}} for i in range(20)]
    rows += [{"data": {"text": f"gold {i}"}, "gold": {"label": "apple"}} for i in range(20)]
    import_rows(world, project, rows, tmp_path)
    real = item_ids(world, project.id, "AND NOT is_gold")
    world.db.run(_write_scores, project.id, [(i, (k * 7) % 20 / 20) for k, i in enumerate(real)])
    ann = world.user("ann", role="annotator", workspace=ws)
    tasks = ann["client"].next(project.id, n=10)
    got = world.item_ids(project.id, ann, tasks)
    gold = [i for i in got if i not in real]
    best = sorted(real, key=lambda i: (-((real.index(i) * 7) % 20), i))
    assert 0 < len(gold) < 10  # mixed in
    assert sorted(i for i in got if i in real) == sorted(best[: 10 - len(gold)])


# -- retraining every N labels ------------------------------------------------------------------
def _jobs_of(world: Any, project_id: int, kind: str) -> list[Any]:
    return world.db.run(job_queue.list_jobs, project_id=project_id, kinds=[kind])


def test_a_train_job_is_queued_after_retrain_every_new_labels(world, worker, labelled, clock):
    lab = labelled
    lab.manager["client"].update_project(lab.project.id, retrain_every=5)
    start(lab.manager, f"/projects/{lab.project.id}/models/train", {"predictor": PREDICTOR})
    run_jobs(world, worker)
    assert score_jobs.queue_retrains(world.db, now=clock()) == {}  # no new label yet
    clock.advance(1)
    ann = world.user("later", role="annotator", workspace=lab.ws)
    tasks = ann["client"].next(lab.project.id, n=4)
    ann["client"].submit(
        lab.project.id, [{"task": t["task"], "value": {"label": "apple"}} for t in tasks]
    )
    assert score_jobs.queue_retrains(world.db, now=clock()) == {}  # 4 of 5
    tasks = ann["client"].next(lab.project.id, n=1)
    ann["client"].submit(
        lab.project.id, [{"task": t["task"], "value": {"label": "apple"}} for t in tasks]
    )
    queued = score_jobs.queue_retrains(world.db, now=clock())
    assert list(queued) == [str(lab.project.id)]
    assert score_jobs.queue_retrains(world.db, now=clock()) == {}  # one is queued already
    (job,) = [j for j in _jobs_of(world, lab.project.id, "train") if j.state == "queued"]
    assert job.params["then"] == "promote_if_better" and job.params["predictor"] == PREDICTOR
    # it trains version 2; nothing was promoted, so it is, and it predicts
    ran = run_jobs(world, worker)
    assert [(j.kind, j.state) for j in ran] == [("train", "done"), ("predict", "done")]
    assert world.db.run(versions.promoted_version, lab.project.id).version == 2


def test_the_refit_job_queues_the_retrain(world, worker, labelled, clock):
    lab = labelled
    start(lab.manager, f"/projects/{lab.project.id}/models/train", {"predictor": PREDICTOR})
    run_jobs(world, worker)
    clock.advance(1)
    lab.manager["client"].update_project(lab.project.id, retrain_every=1)
    ann = world.user("later", role="annotator", workspace=lab.ws)
    tasks = ann["client"].next(lab.project.id, n=1)
    ann["client"].submit(
        lab.project.id, [{"task": t["task"], "value": {"label": "apple"}} for t in tasks]
    )
    world.db.run(job_queue.enqueue, kind="refit", params={}, now=clock())
    refit = worker.run_one()
    assert refit.kind == "refit" and refit.result["retrain_queued"] == {
        str(lab.project.id): _jobs_of(world, lab.project.id, "train")[0].id
    }


def test_promote_if_better_keeps_a_better_promoted_version():
    def version(accuracy: float | None) -> versions.ModelVersion:
        evaluation = {"fields": {"label": {"accuracy": accuracy}}}
        return versions.ModelVersion(
            1, 1, 1, PREDICTOR, {}, [], 1, "ready", False, "a", "t", "s", 1, 1, 1.0,
            evaluation, None, None, 0.0, None,
        )  # fmt: skip

    assert score_jobs.beats(version(0.8), None, "label")
    assert score_jobs.beats(version(0.8), version(0.8), "label")
    assert not score_jobs.beats(version(0.7), version(0.8), "label")
    assert not score_jobs.beats(version(None), version(0.8), "label")
