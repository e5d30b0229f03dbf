"""The queue benchmark's score ordering (``bench/queue.py --ordering score``), and the direct
database writes the score benchmark's setup makes.

With ``--ordering score`` every project the benchmark creates orders its queue by
``items.score`` (the active-learning ordering), and every import is followed by a uniform
random score per item: what a score refresh leaves (each item a distinct place in the order).
The scores are written straight to the database with one UPDATE, outside the timed import:
the benchmark measures the queue (``next`` and ``submit``) under that ordering, not the
score job (``bench/scores.py`` does).
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import numpy as np
from sqlalchemy import create_engine, text

from _labelfarm import LabelfarmTarget

# a uniform number in [0, 1) per row, computed by the database
RANDOM_SCORE = {
    "sqlite": "(random() & 4294967295) / 4294967296.0",
    "postgresql": "random()",
}


def fill_random_scores(url: str, project_id: int) -> float:
    """Give every item of the project a uniform random score; the seconds it took."""
    engine = create_engine(url)
    started = time.perf_counter()
    try:
        with engine.begin() as conn:
            expr = RANDOM_SCORE[engine.dialect.name]
            conn.execute(
                text(f"UPDATE items SET score = {expr} WHERE project_id = :p"), {"p": project_id}
            )
        # what autovacuum does after a refresh: on PostgreSQL an UPDATE of every row leaves
        # a dead version of each and a second entry in every index until it is vacuumed
        with engine.connect().execution_options(isolation_level="AUTOCOMMIT") as conn:
            vacuum = "VACUUM ANALYZE items" if engine.dialect.name == "postgresql" else "ANALYZE"
            conn.execute(text(vacuum))
    finally:
        engine.dispose()
    return time.perf_counter() - started


def fill_model_outputs(
    url: str, project_id: int, n_classes: int, *, seed: int = 0, chunk: int = 20_000
) -> float:
    """A model output (Dirichlet class probabilities, float32, no embedding) for every item of
    the project, version 1 of its field ``label``: what a predict job of the promoted version
    leaves, written directly; the seconds it took."""
    engine = create_engine(url)
    rng = np.random.default_rng(seed)
    started = time.perf_counter()
    insert = text(
        "INSERT INTO model_outputs (item_id, project_id, version, field, proba, embedding, "
        "created_at) VALUES (:i, :p, 1, 'label', :proba, NULL, :now)"
    )
    try:
        with engine.connect() as conn:
            ids = [
                int(r[0])
                for r in conn.execute(
                    text("SELECT id FROM items WHERE project_id = :p ORDER BY id"),
                    {"p": project_id},
                )
            ]
        for start in range(0, len(ids), chunk):
            part = ids[start : start + chunk]
            # peaked rows (alpha 0.3), as a trained model's are: a spread of margins
            proba = rng.dirichlet(np.full(n_classes, 0.3), size=len(part)).astype("<f4")
            rows = [
                {"i": i, "p": project_id, "proba": proba[j].tobytes(), "now": time.time()}
                for j, i in enumerate(part)
            ]
            with engine.begin() as conn:
                conn.execute(insert, rows)
    finally:
        engine.dispose()
    return time.perf_counter() - started


class ScoredTarget(LabelfarmTarget):
    """labelfarm whose projects order their queue by score, random scores filled after each
    import (not timed as part of it: ``fill_seconds`` keeps those times)."""

    database_url: str

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.fill_seconds: list[float] = []

    def _env(self, data_dir: Path) -> dict[str, str]:
        env = super()._env(data_dir)
        self.database_url = env["LABELFARM_DATABASE_URL"]
        return env

    def create_project(self, name: str) -> int:
        project_id = super().create_project(name)
        self.api.call("PATCH", f"/api/v1/projects/{project_id}", json={"ordering": "score"})
        return project_id

    def import_items(self, project_id: int, n: int) -> float:
        seconds = super().import_items(project_id, n)
        self.fill_seconds.append(fill_random_scores(self.database_url, project_id))
        return seconds
