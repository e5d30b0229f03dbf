"""Helpers for the quality tests: annotate through the API, add gold rows as factories."""

from __future__ import annotations

import uuid
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import text

from labelfarm.jsonutil import dumps


def _label_all(
    world: Any, client: Any, project_id: int, answers: dict[int, Any], field: str = "label"
) -> None:
    """Take every task on offer (next) and submit ``answers[item_id]`` for each (submit)."""
    tasks = client.next(project_id, n=len(answers) + 5)
    items = world.item_ids(project_id, client.me(), tasks)
    batch = [
        {"id": str(uuid.uuid4()), "task": t["task"], "value": {field: answers[item]}}
        for t, item in zip(tasks, items, strict=True)
        if item in answers
    ]
    if batch:
        client.submit(project_id, batch)


def _make_gold(world: Any, item_id: int, value: dict[str, Any]) -> None:
    with world.db.begin("write") as conn:
        conn.execute(
            text("UPDATE items SET is_gold = :yes, gold = :g WHERE id = :i"),
            {"yes": True, "g": dumps(value), "i": item_id},
        )


def _gold_result(
    world: Any,
    project_id: int,
    item_id: int,
    user_id: int,
    score: float,
    gold_class: str | None = None,
    qualification: bool = False,
) -> None:
    """A scored gold answer (as the submit path writes them), pointing at an annotation."""
    with world.db.begin("write") as conn:
        ann = conn.execute(
            text("SELECT id FROM annotations WHERE user_id = :u ORDER BY id LIMIT 1"),
            {"u": user_id},
        ).scalar_one()
        conn.execute(
            text(
                "INSERT INTO gold_results (project_id, item_id, user_id, annotation_id, "
                "gold_class, score, qualification, created_at) VALUES (:p, :i, :u, :a, :c, :s, "
                ":q, :t)"
            ),
            {
                "p": project_id,
                "i": item_id,
                "u": user_id,
                "a": ann,
                "c": gold_class,
                "s": score,
                "q": qualification,
                "t": world.clock(),
            },
        )


@pytest.fixture
def team(world: Any, tmp_path: Path) -> dict[str, Any]:
    ws = world.workspace()
    people = {
        role: world.user(f"u-{role}", role=role, workspace=ws)
        for role in ("admin", "manager", "reviewer", "client")
    }
    for name in ("ann-a", "ann-b", "ann-c"):
        people[name] = world.user(name, role="annotator", workspace=ws)
    return {"ws": ws, **people}


@pytest.fixture
def label_all(world: Any) -> Any:
    return lambda *args, **kwargs: _label_all(world, *args, **kwargs)


@pytest.fixture
def make_gold(world: Any) -> Any:
    return lambda item_id, value: _make_gold(world, item_id, value)


@pytest.fixture
def gold_result(world: Any) -> Any:
    return lambda *args, **kwargs: _gold_result(world, *args, **kwargs)
