"""Helpers of the model tests: a text project whose classes its words tell, labelling it as
people do (through the API), and shortcuts to the routes and the worker."""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from labelfarm.jobs.worker import Worker
from labelfarm.jsonutil import dumps
from labelfarm.services import job_queue
from labelfarm.services.imports import import_items

CLASSES = ("apple", "banana", "cherry")
WORDS = {
    "apple": ("apple pie", "green apple", "apple juice", "apfel"),
    "banana": ("banana split", "ripe banana", "banana bread", "platano"),
    "cherry": ("cherry tart", "red cherry", "cherry jam", "kirsche"),
}
SCHEMA = {"fields": [{"name": "label", "type": "choice", "options": list(CLASSES)}]}
PREDICTOR = "text-chargram-logreg.v1"


def truth(text: str) -> str:
    """The class a text was written for (what careful annotators answer)."""
    return next(c for c, words in WORDS.items() if any(w in text for w in words))


def text_of(i: int) -> str:
    cls = CLASSES[i % 3]
    return f"{WORDS[cls][(i // 3) % 4]} number {i}"


def import_rows(world: Any, project: Any, rows: list[dict[str, Any]], tmp: Path) -> None:
    path = tmp / f"items-{uuid.uuid4().hex[:6]}.jsonl"
    path.write_text("".join(dumps(r) + "\n" for r in rows))
    world.db.run(
        import_items, project, path, "jsonl", media=world.ctx.media, now=world.clock(), user_id=None
    )


def label_all(world: Any, project_id: int, annotator: dict, answer: Any = None) -> int:
    """The annotator takes and answers every task it is given; the number answered."""
    answered = 0
    while True:
        tasks = annotator["client"].next(project_id, n=50)
        if not tasks:
            return answered
        entries = [
            {"task": t["task"], "value": {"label": (answer or truth)(t["data"]["text"])}}
            for t in tasks
        ]
        annotator["client"].submit(project_id, entries)
        answered += len(entries)


@dataclass
class Labelled:
    """A project with labelled, reviewed, gold and unlabelled items."""

    ws: dict
    project: Any
    manager: dict
    real: list[int]  # labelled by an annotator
    reviewed: list[int]  # of those, decided by a reviewer
    gold: list[int]
    fresh: list[int]  # imported after the labelling: open, without labels


def item_ids(world: Any, project_id: int, where: str = "") -> list[int]:
    from sqlalchemy import text

    with world.db.engine.connect() as conn:
        rows = conn.execute(
            text(f"SELECT id FROM items WHERE project_id = :p {where} ORDER BY id"),
            {"p": project_id},
        )
        return [r[0] for r in rows]


def run_jobs(world: Any, worker: Worker) -> list[Any]:
    """Run every due job to its end; the jobs run, as they ended."""
    done = worker.run_until_idle()
    return [world.db.run(job_queue.get_job, j.id) for j in done]


def start(manager: dict, path: str, body: dict | None = None) -> dict:
    """POST a model route that starts a job; the job's row as answered."""
    answer = manager["client"].request("POST", path, json=body or {})
    return answer["job"]
