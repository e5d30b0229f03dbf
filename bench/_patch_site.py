"""A labelfarm site for ``bench/patch.py``: SQLite in a temporary folder, the app in process
(``labelfarm.client.AppTransport``), a Fashion-MNIST project per arm, simulated annotators
(``_crowd.py``'s noise model) calling ``next`` and ``submit`` like people, and the model jobs
run by a worker here (train, promote, predict, score, evaluate: the job functions the server
runs)."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import numpy as np
import orjson
from PIL import Image

from _crowd import Annotator
from labelfarm.client import AppTransport, Client
from labelfarm.jobs.worker import Worker
from labelfarm.sample_data import FASHION_CLASSES as CLASSES
from labelfarm.sample_data import load_fashion_mnist
from labelfarm.services import fitting, job_queue, projects, users, workspaces
from labelfarm.services.imports import import_items
from labelfarm.settings import Settings
from labelfarm.web.app import create_app

FIELD = "label"
PREDICTOR = "image-pixels-logreg.v1"


def write_images(folder: Path, split: str, indexes: np.ndarray, gold: bool) -> tuple[Path, dict]:
    """PNGs of a Fashion-MNIST split's images and a JSONL naming them; true class by name."""
    data = load_fashion_mnist("train" if split == "train" else "t10k")
    folder.mkdir(parents=True, exist_ok=True)
    truth, lines = {}, []
    for i in indexes:
        name = f"{split}-{int(i):05d}.png"
        if not (folder / name).exists():
            Image.fromarray(np.ascontiguousarray(data.images[i])).save(folder / name)
        y = int(data.labels[i])
        row: dict[str, Any] = {"data": {"image": name}, "media": name, "external_id": name}
        if gold:
            row["gold"] = {FIELD: data.classes[y]}
            row["gold_kind"] = "control"
        truth[name] = y
        lines.append(orjson.dumps(row))
    path = folder / f"{split}-{len(indexes)}-{time.monotonic_ns()}.jsonl"
    path.write_bytes(b"\n".join(lines) + b"\n")
    return path, truth


class Site:
    """One SQLite site with a workspace, a manager and the simulated annotators."""

    def __init__(self, folder: Path, pool: list[Annotator]) -> None:
        self.folder = folder
        self.settings = Settings(
            data_dir=folder / "data",
            database_url=f"sqlite:///{folder / 'labelfarm.db'}",
            secret_key="bench-patch-secret",
            run_worker=False,
        )
        self.app = create_app(self.settings)
        self.ctx = self.app.state.ctx
        self.db = self.ctx.db
        self.transport = AppTransport(self.app)
        now = time.time()
        self.ws = self.db.run(workspaces.create_workspace, slug="bench", name="Bench", now=now)
        self.manager = self._user("manager", "manager")
        self.pool = pool
        self.people = [self._user(a.name, "annotator") for a in pool]
        self.worker = Worker(self.settings, self.db, self.ctx.media, name="bench-patch")

    def _user(self, name: str, role: str) -> dict[str, Any]:
        now = time.time()
        user = self.db.run(
            users.register,
            username=name,
            password=None,
            now=now,
            workspace_id=self.ws["id"],
            role=role,
        )
        token = self.db.run(users.create_token, user_id=user["id"], name="bench", now=now)
        client = Client("http://bench", token=token["token"], transport=self.transport)
        return {**user, "client": client}

    def project(self, name: str, schema: dict, files: list[tuple[Path, Path]]) -> Any:
        """A project (overlap 3, the held-out set its gold only) with the files imported."""
        made = self.db.run(
            projects.create_project,
            workspace_id=self.ws["id"],
            name=name,
            schema=schema,
            now=time.time(),
            actor_id=None,
            overlap=3,
            holdout_share=0.0,
        )
        project = self.db.run(projects.load_project, made["id"])
        for path, base in files:
            self.db.run(
                import_items,
                project,
                path,
                "jsonl",
                media=self.ctx.media,
                now=time.time(),
                user_id=None,
                base_dir=base,
            )
        return self.load(project.id)

    def load(self, project_id: int) -> Any:
        self.ctx.projects.drop(project_id)
        return self.db.run(projects.load_project, project_id)

    def label(self, project_id: int, truth: dict, labels: int, rng: np.random.Generator,
              seed: int, stop: Any = None) -> int:  # fmt: skip
        """Annotators take turns (the order shuffled each round) until ``labels`` labels are
        in (or ``stop()`` says so after a turn): the labels submitted."""
        done, dry = 0, 0
        counts = [0] * len(self.pool)
        while done < labels and dry < 2:
            dry += 1
            for k in rng.permutation(len(self.pool)):
                a, who = self.pool[k], self.people[k]
                if a.cap is not None and counts[k] >= a.cap:
                    continue
                n = min(a.per_turn, labels - done)
                tasks = who["client"].next(project_id, n=n) if n > 0 else []
                if not tasks:
                    continue
                entries = []
                for t in tasks:
                    name = t["data"]["image"]
                    index = int(name.split("-")[1].split(".")[0])
                    answer = a.answer(truth[name], index, int(k), seed)
                    entries.append({"task": t["task"], "value": {FIELD: CLASSES[answer]}})
                who["client"].submit(project_id, entries)
                done += len(entries)
                counts[k] += len(entries)
                dry = 0
                if done >= labels or (stop is not None and stop()):
                    return done
        return done

    def refit(self, project: Any) -> None:
        self.db.run(fitting.refit_models, project, now=time.time(), actor_id=None)

    def enqueue(self, project: Any, kind: str, params: dict) -> int:
        return int(
            self.db.run(
                job_queue.enqueue,
                kind=kind,
                params=params,
                now=time.time(),
                project_id=project.id,
                workspace_id=project.workspace_id,
                created_by=self.manager["id"],
            )
        )

    def run_jobs(self) -> list[Any]:
        """Run every due job to its end; a model job that failed stops the benchmark."""
        ran = self.worker.run_until_idle()
        jobs = [self.db.run(job_queue.get_job, j.id) for j in ran]
        for j in jobs:
            if j.state != "done" and j.kind in ("train", "predict", "evaluate"):
                raise RuntimeError(f"{j.kind} job {j.id} ended {j.state}: {j.error}")
        return jobs

    def close(self) -> None:
        self.transport.close()
        self.db.dispose()
