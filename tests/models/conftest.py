"""Fixtures of the model tests: a text project whose items people labelled (through the API),
reviewed and gold items, and a worker that runs the model jobs."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from model_helpers import (
    CLASSES,
    SCHEMA,
    Labelled,
    import_rows,
    item_ids,
    label_all,
    text_of,
    truth,
)

from labelfarm.jobs.worker import Worker
from labelfarm.services import review


@pytest.fixture
def labelled(world: Any, tmp_path: Path) -> Labelled:
    ws = world.workspace()
    manager = world.user("boss", role="manager", workspace=ws)
    project = world.project(ws, schema=SCHEMA, overlap=1, holdout_share=0.5)
    import_rows(world, project, [{"data": {"text": text_of(i)}} for i in range(60)], tmp_path)
    gold_rows = [
        {"data": {"text": text_of(i)}, "gold": {"label": CLASSES[i % 3]}} for i in range(60, 72)
    ]
    import_rows(world, project, gold_rows, tmp_path)
    ann = world.user("ann", role="annotator", workspace=ws)
    assert label_all(world, project.id, ann) == 60
    real = item_ids(world, project.id, "AND NOT is_gold")
    reviewer = world.user("rev", role="reviewer", workspace=ws)
    reviewed = real[:20]
    for item in reviewed:
        value = {"label": truth(text_of(real.index(item)))}
        world.db.run(
            review.decide,
            project,
            item,
            reviewer_id=reviewer["id"],
            decision="override",
            value=value,
            now=world.clock(),
        )
    import_rows(world, project, [{"data": {"text": text_of(i)}} for i in range(72, 90)], tmp_path)
    everything = item_ids(world, project.id)
    gold = item_ids(world, project.id, "AND is_gold")
    fresh = [i for i in everything if i not in real and i not in gold]
    return Labelled(ws, world.load(project.id), manager, real, reviewed, gold, fresh)


@pytest.fixture
def worker(world: Any, settings: Any) -> Worker:
    """A worker on the test's database and clock; small batches, so batching is exercised."""
    tuned = settings.model_copy(update={"predict_batch_items": 7, "job_retry_seconds": 0.0})
    return Worker(tuned, world.db, world.ctx.media, name="w-models", clock=world.clock)
