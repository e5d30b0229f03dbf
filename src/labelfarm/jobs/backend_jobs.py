"""Job kinds: calls to external model servers in Label Studio's ML-backend shape.

* ``backend_predict`` (params ``backend_id``, ``item_ids``?): ``/setup``, then ``/predict``
  in batches of ``ml_backend_batch_tasks`` tasks; each batch's predictions are written in
  one short transaction, named by the server's title and the model version it answered.
  The items are those given, else every ready item still without a final label (open and
  not reviewed), and gold items (a pre-fill missing on gold would tell annotators which
  items are gold). Resumable:
  a run after a crash passes over the items the job already predicted.
* ``backend_train`` (params ``backend_id``, ``max_annotations``?): ``ANNOTATION_CREATED``
  for each annotation made since the server's last training job (at most
  ``max_annotations``, oldest first; never gold items' nor annotations left out of
  labels), then ``START_TRAINING``. A crash may send an annotation twice.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import orjson

from labelfarm.formats.labelstudio_config import label_config_from_schema
from labelfarm.jobs.context import JobContext
from labelfarm.jobs.kinds import job_kind
from labelfarm.services import ml_backend_tasks as lstasks
from labelfarm.services import ml_backends
from labelfarm.services.job_queue import list_jobs
from labelfarm.services.ml_backend_client import BackendClient, BackendError
from labelfarm.services.projects import Project, get_project_dict, load_project

MEDIA_LINK_SECONDS = 6 * 3600  # how long the media links sent with tasks stay valid
TRAIN_ANNOTATIONS = 100  # annotations one train job sends, unless its params say
TRAIN_ANNOTATIONS_MAX = 1000
PROBLEMS_KEPT = 5
ANSWER_KEPT = 2000  # bytes of START_TRAINING's answer kept in the job's result


class _Server:
    """One run's view of the server and the project it serves."""

    def __init__(self, ctx: JobContext) -> None:
        project_id = ctx.job.project_id
        if project_id is None:
            raise ValueError("a model server job belongs to a project")
        params = ctx.job.params
        self.ctx = ctx
        self.backend = ctx.db.run(
            ml_backends.connection,
            project_id,
            int(params["backend_id"]),
            ctx.settings.resolved_secret_key,
        )
        self.project: Project = ctx.db.run(load_project, project_id)
        created = ctx.db.run(get_project_dict, project_id)["created_at"]
        # as Label Studio names a project to its ML backends: "{id}.{created timestamp}"
        self.ls_project = f"{project_id}.{int(created)}"
        self.label_config = label_config_from_schema(self.project.schema)
        self.client = BackendClient(self.backend, timeout=ctx.settings.ml_backend_timeout_seconds)

    def project_payload(self) -> dict[str, Any]:
        """The ``project`` of a webhook, as Label Studio sends it (the fields servers read)."""
        return {
            "id": self.project.id,
            "title": self.project.name,
            "label_config": self.label_config,
            "model_version": self.backend.model_version,
        }

    def setup(self) -> str | None:
        version = self.client.setup(
            project=self.ls_project,
            schema=self.label_config,
            hostname=self.ctx.settings.public_url,
            access_token="",
            model_version=self.backend.model_version,
        )
        self.ctx.db.run(ml_backends.set_model_version, self.project.id, self.backend.id, version)
        return version

    def media_url(self) -> Callable[[str], str | None]:
        """Signed links to stored media, granted by the role of whoever attached the server."""
        user = self.backend.created_by
        if user is None:
            return lambda sha: None
        expires = self.ctx.now() + MEDIA_LINK_SECONDS
        base = self.ctx.settings.public_url.rstrip("/")
        workspace = self.project.workspace_id

        def url(sha: str) -> str:
            link = self.ctx.media.sign(sha, user, expires, workspace=workspace)
            return base + link if link.startswith("/") else link

        return url


@job_kind("backend_predict", title="Pre-label with a model server")
def backend_predict(ctx: JobContext) -> dict[str, Any]:
    server = _Server(ctx)
    try:
        return _predict(ctx, server)
    finally:
        server.client.close()


def _predict(ctx: JobContext, server: _Server) -> dict[str, Any]:
    params, project, backend = ctx.job.params, server.project, server.backend
    item_ids = params.get("item_ids")
    model, since = backend.title, ctx.job.created_at
    total = ctx.db.run(lstasks.count_items, project.id, item_ids=item_ids)
    left = ctx.db.run(lstasks.count_items, project.id, item_ids=item_ids, model=model, since=since)
    done = total - left
    ctx.progress(done, total, f"setting up {backend.name}")
    version = server.setup()
    media_url = server.media_url()
    written, refused, after = 0, 0, 0
    problems: list[str] = []
    size = ctx.settings.ml_backend_batch_tasks
    while True:
        batch = ctx.db.run(
            lstasks.pending_items,
            project.id,
            model=model,
            since=since,
            after_id=after,
            limit=size,
            item_ids=item_ids,
        )
        if not batch:
            break
        tasks = [lstasks.ls_task(item, project.schema, media_url) for item in batch]
        answers = server.client.predict(
            tasks=tasks,
            project=server.ls_project,
            label_config=server.label_config,
            model_version=version,
            params={"context": None},
        )
        rows, bad = lstasks.prediction_rows(
            project.schema, batch, answers, model=model, fallback_version=version
        )
        written += ctx.db.run(lstasks.write_predictions, project.id, rows, now=ctx.now())
        refused += len(bad)
        problems += bad[: PROBLEMS_KEPT - len(problems)]
        after, done = batch[-1].id, done + len(batch)
        ctx.progress(done, total, f"{written} predicted by {backend.title}")
    if refused and not written:
        raise BackendError(
            f"model server {backend.name}: POST /predict: no prediction fits the project's "
            f"schema ({refused} refused); the first: {problems[0]}",
            [{"backend": backend.id, "reason": p} for p in problems],
        )
    return {
        "backend_id": backend.id,
        "model": model,
        "model_version": version,
        "items": total,
        "predicted": written,
        "refused": refused,
        "problems": problems,
    }


@job_kind("backend_train", title="Train a model server")
def backend_train(ctx: JobContext) -> dict[str, Any]:
    server = _Server(ctx)
    try:
        return _train(ctx, server)
    finally:
        server.client.close()


def _last_sent(ctx: JobContext, backend_id: int) -> int:
    """The newest annotation an earlier train job of this server sent."""
    earlier = ctx.db.run(
        list_jobs,
        project_id=ctx.job.project_id,
        kinds=["backend_train"],
        states=["done"],
        limit=1000,
    )
    for job in earlier:  # newest first
        if job.params.get("backend_id") == backend_id and job.result:
            return int(job.result.get("last_annotation_id") or 0)
    return 0


def _train(ctx: JobContext, server: _Server) -> dict[str, Any]:
    backend, project = server.backend, server.project
    wanted = int(ctx.job.params.get("max_annotations") or TRAIN_ANNOTATIONS)
    limit = max(0, min(wanted, TRAIN_ANNOTATIONS_MAX))
    after = _last_sent(ctx, backend.id)
    ctx.progress(0, None, f"setting up {backend.name}")
    server.setup()
    found = ctx.db.run(
        lstasks.annotations_after,
        project.id,
        after_id=after,
        limit=limit,
        holdout_share=project.holdout_share,
    )
    media_url = server.media_url()
    payload = server.project_payload()
    total = len(found) + 1
    for n, ann in enumerate(found):
        task = lstasks.ls_task(ann.item, project.schema, media_url)
        sent = lstasks.ls_annotation(project.schema, ann, task)
        server.client.webhook("ANNOTATION_CREATED", {"project": payload, **sent})
        after = ann.id
        ctx.progress(n + 1, total, f"sent {n + 1} annotations to {backend.title}")
    answer = server.client.webhook("START_TRAINING", {"project": payload})
    ctx.progress(total, total, f"{backend.title} is training")
    return {
        "backend_id": backend.id,
        "annotations_sent": len(found),
        "last_annotation_id": after,
        "answer": answer if len(orjson.dumps(answer)) <= ANSWER_KEPT else None,
    }
