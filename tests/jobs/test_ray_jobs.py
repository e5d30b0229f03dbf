"""Train and predict jobs through the job system, once on a real Ray head and once in the
worker process: the same model, the same predicted classes, probabilities within 1e-6."""

from __future__ import annotations

import io
from pathlib import Path
from typing import Any

import numpy as np
import orjson
import pytest
from PIL import Image
from ray_head import SKIP_REASON, RayHead, ray_head  # noqa: F401
from sqlalchemy import text

from labelfarm.jobs import ray_executor
from labelfarm.jobs.worker import Worker
from labelfarm.jsonutil import loads
from labelfarm.ml.predictors import compute
from labelfarm.sample_data import product_images
from labelfarm.services import job_queue
from labelfarm.services.imports import import_items
from labelfarm.services.models import inputs, versions
from labelfarm.services.models.store import model_store
from labelfarm.services.models.training import in_held_out
from labelfarm.settings import Settings

pytest.importorskip("ray", reason=SKIP_REASON)
pytestmark = pytest.mark.slow

PREDICTOR = "image-pixels-logreg.v1"
N_LABELLED, N_GOLD, N_FRESH = 240, 60, 60


def image_project(world: Any, folder: Path) -> tuple[Any, dict[str, Any]]:
    """Real product photos (Fashion-MNIST): some labelled by an annotator through the API,
    some gold (the held-out set), some fresh (what the predict job fills)."""
    images = product_images()
    classes = list(images.classes)
    ws = world.workspace()
    manager = world.user("boss", role="manager", workspace=ws)
    schema = {
        "data": {"image": "image"},
        "fields": [{"name": "label", "type": "choice", "options": classes}],
    }
    project = world.project(ws, schema=schema, overlap=1)
    folder.mkdir()
    truth, rows = {}, []
    for i in range(N_LABELLED + N_GOLD + N_FRESH):
        name = f"img-{i:04d}.png"
        out = io.BytesIO()
        Image.fromarray(np.asarray(images.images[i])).save(out, "PNG")
        (folder / name).write_bytes(out.getvalue())
        truth[name] = classes[int(images.labels[i])]
        row: dict[str, Any] = {"data": {"image": name}, "media": name}
        if N_LABELLED <= i < N_LABELLED + N_GOLD:
            row["gold"] = {"label": truth[name]}
        rows.append(row)
    labelled_rows, rest = rows[:N_LABELLED], rows[N_LABELLED:]
    for part, chunk in (("a", labelled_rows), ("b", rest)):
        path = folder / f"items-{part}.jsonl"
        path.write_bytes(b"".join(orjson.dumps(r) + b"\n" for r in chunk))
        import_items(
            world.db, project, path, "jsonl",
            media=world.ctx.media, now=world.clock(), user_id=None, base_dir=folder,
        )  # fmt: skip
        if part == "a":
            label_everything(world, project.id, ws, truth)
    return world.load(project.id), manager


def label_everything(world: Any, project_id: int, ws: dict, truth: dict[str, str]) -> None:
    annotator = world.user("ann", role="annotator", workspace=ws)["client"]
    answered = 0
    while tasks := annotator.next(project_id, n=50):
        annotator.submit(
            project_id,
            [{"task": t["task"], "value": {"label": truth[t["data"]["image"]]}} for t in tasks],
        )
        answered += len(tasks)
    assert answered == N_LABELLED


def run_job(world: Any, worker: Worker, manager: dict, path: str, body: dict) -> Any:
    started = manager["client"].request("POST", path, json=body)["job"]
    (ran,) = worker.run_until_idle()
    assert ran.id == started["id"]
    job = world.db.run(job_queue.get_job, ran.id)
    assert job.state == "done", job.error
    return job


def train_and_predict(world: Any, settings: Settings, project: Any, manager: dict) -> Any:
    """A train job, then a predict job with the new version; (version, item -> prediction)."""
    worker = Worker(settings, world.db, world.ctx.media, name="w-ray-test", clock=world.clock)
    base = f"/projects/{project.id}/models"
    trained = run_job(world, worker, manager, f"{base}/train", {"predictor": PREDICTOR})
    number = trained.result["version"]
    predicted = run_job(world, worker, manager, f"{base}/{number}/predict", {})
    assert predicted.result["predicted"] == N_GOLD + N_FRESH
    with world.db.engine.connect() as conn:
        rows = conn.execute(
            text(
                "SELECT item_id, value, score FROM predictions "
                "WHERE project_id = :p AND model_version = :v"
            ),
            {"p": project.id, "v": str(number)},
        )
        found = {r.item_id: (loads(r.value)["label"], r.score) for r in rows}
    return world.db.run(versions.get_version, project.id, number), found


def test_train_and_predict_on_ray_equal_the_local_run(
    world: Any,
    settings: Settings,
    ray_head: RayHead,  # noqa: F811
    tmp_path: Path,
) -> None:
    project, manager = image_project(world, tmp_path / "photos")
    small_batches = {"predict_batch_items": 25}
    on_ray = settings.model_copy(update={**small_batches, "ray_address": ray_head.address})
    local = settings.model_copy(update=small_batches)

    ray_executor.disconnect()  # so what follows shows what these jobs did
    ray_version, ray_predictions = train_and_predict(world, on_ray, project, manager)
    # the jobs connected to the cluster and sent their model work there as Ray tasks
    assert ray_executor._connected == ray_head.address
    assert set(ray_executor._remotes) == {compute.fit_task, compute.predict_task}
    local_version, local_predictions = train_and_predict(world, local, project, manager)

    assert (ray_version.version, local_version.version) == (1, 2)
    assert ray_version.training_sha256 is not None
    # the labelled items the held-out set draws evaluate, with the gold; the others train
    with world.db.engine.connect() as conn:
        labelled = conn.execute(
            text("SELECT DISTINCT item_id FROM annotations WHERE project_id = :p"),
            {"p": project.id},
        ).all()
    held = sum(in_held_out(project.id, int(i), project.holdout_share) for (i,) in labelled)
    assert len(labelled) == N_LABELLED and 0 < held < N_LABELLED
    assert ray_version.n_train == local_version.n_train == N_LABELLED - held
    assert ray_version.n_eval == local_version.n_eval == N_GOLD + held
    assert sorted(ray_predictions) == sorted(local_predictions)
    assert len(ray_predictions) == N_GOLD + N_FRESH
    for item, (label, score) in ray_predictions.items():
        assert label == local_predictions[item][0]
        assert score == pytest.approx(local_predictions[item][1], abs=1e-6)
    # the two saved models give the same probabilities for every item
    store = model_store(world.ctx.settings)
    rows = world.db.run(inputs.input_rows, project.id, sorted(ray_predictions))
    items = inputs.to_inputs(world.ctx.media, rows)
    probe = {
        v.version: compute.predict_task(
            compute.PredictTask(PREDICTOR, store.get(v.artifact or ""), items)
        )["label"]
        for v in (ray_version, local_version)
    }
    np.testing.assert_allclose(probe[1], probe[2], rtol=0, atol=1e-6)
    evaluations = [v.evaluation or {} for v in (ray_version, local_version)]
    accuracy = [e["fields"]["label"]["accuracy"] for e in evaluations]
    assert accuracy[0] == pytest.approx(accuracy[1], abs=1e-9) and accuracy[0] > 0.5
