"""A project of short texts with a manager and an annotator, and a job worker, for the
model-server tests."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

from labelfarm.jobs.worker import Worker
from labelfarm.jsonutil import dumps
from labelfarm.services.imports import import_items
from labelfarm.services.job_queue import Job

TEXT_SCHEMA = {
    "data": {"text": "text"},
    "fields": [{"name": "label", "type": "choice", "options": ["fruit", "other"]}],
}
TEXTS = ["an apple a day", "a green apple", "granite", "a pear", "apple pie", "gravel"]


@dataclass
class Farm:
    world: Any
    ws: dict[str, Any]
    manager: dict[str, Any]
    annotator: dict[str, Any]
    project: Any

    @property
    def api(self) -> str:
        return f"/projects/{self.project.id}/ml-backends"

    def attach(self, url: str, **extra: Any) -> dict[str, Any]:
        body = {"url": url, "title": "length model", **extra}
        found: dict[str, Any] = self.manager["client"].request("POST", self.api, json=body)
        return found

    def start(self, backend_id: int, what: str, **body: Any) -> dict[str, Any]:
        path = f"{self.api}/{backend_id}/{what}"
        job: dict[str, Any] = self.manager["client"].request("POST", path, json=body)["job"]
        return job

    def run_jobs(self) -> list[Job]:
        ctx = self.world.ctx
        worker = Worker(ctx.settings, self.world.db, ctx.media, clock=self.world.clock)
        return worker.run_until_idle()

    def next_tasks(self, n: int = 10) -> list[dict[str, Any]]:
        """The annotator's next tasks, read after the servers' caches of the project expire
        (they learn of new predictions then)."""
        self.world.clock.advance(self.world.ctx.settings.auth_cache_seconds + 1)
        path = f"/projects/{self.project.id}/next"
        tasks: list[dict[str, Any]] = self.annotator["client"].request("POST", path, json={"n": n})[
            "tasks"
        ]
        return tasks

    def text_of(self, task: dict[str, Any]) -> str:
        return str(task["data"]["text"])


def make_farm(world: Any, tmp: Path, texts: list[str] = TEXTS) -> Farm:
    ws = world.workspace("fruit")
    manager = world.user("manager", role="manager", workspace=ws)
    annotator = world.user("annie", role="annotator", workspace=ws)
    project = world.project(ws, schema=TEXT_SCHEMA, gold_rate=0.0, overlap=1)
    path = tmp / "texts.jsonl"
    path.write_text("".join(dumps({"data": {"text": t}}) + "\n" for t in texts))
    world.db.run(
        import_items, project, path, "jsonl", media=world.ctx.media, now=world.clock(), user_id=None
    )
    return Farm(world, ws, manager, annotator, world.load(project.id))
