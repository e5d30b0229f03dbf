"""Transcripts in the quality services: agreement between transcribers and gold scores come
from the segments field (1 − word error rate) through the ordinary report and submit paths."""

from __future__ import annotations

import uuid
from pathlib import Path
from typing import Any

import pytest
from asr_studio import N_WORDS, SCHEMA, reference, segments
from sqlalchemy import text

from labelfarm.jsonutil import dumps
from labelfarm.services import quality
from labelfarm.services.imports import import_items


def _import(world: Any, project: Any, tmp: Path, rows: list[dict[str, Any]]) -> None:
    path = tmp / f"{uuid.uuid4().hex[:8]}.jsonl"
    path.write_text("".join(dumps(r) + "\n" for r in rows))
    world.db.run(
        import_items, project, path, "jsonl", media=world.ctx.media, now=world.clock(), user_id=None
    )


def _submit_all(client: Any, project_id: int, texts: list[str]) -> None:
    """Lease every task and submit the transcripts ``texts`` in the order of the tasks."""
    tasks = client.next(project_id, n=len(texts))
    assert len(tasks) == len(texts)
    client.submit(
        project_id,
        [
            {"task": t["task"], "value": {"transcript": segments(s, "ta-IN")}}
            for t, s in zip(tasks, texts, strict=True)
        ],
    )


def test_agreement_between_transcribers_is_one_minus_wer(world: Any, tmp_path: Path) -> None:
    ws = world.workspace()
    project = world.project(ws, schema=SCHEMA, overlap=2, gold_rate=0.0)
    _import(world, project, tmp_path, [{"data": {"clip": "a", "language": "ta-IN"}}])
    ann = world.user("ann", role="annotator", workspace=ws)
    bob = world.user("bob", role="annotator", workspace=ws)
    words = reference("ta-IN", 0).split()
    _submit_all(ann["client"], project.id, [" ".join(words)])
    _submit_all(bob["client"], project.id, [" ".join([*words[:-2], "xyzzy"])])  # 1 sub, 1 del
    report = world.db.run(quality.project_report, world.load(project.id))
    (field,) = report["fields"]
    assert field["type"] == "segments"
    assert field["n_pairs"] == 1
    assert field["mean_pairwise_similarity"] == pytest.approx(1 - 2 / N_WORDS)


def test_gold_transcripts_are_scored_by_wer(world: Any, tmp_path: Path) -> None:
    ws = world.workspace()
    project = world.project(ws, schema=SCHEMA, overlap=1, gold_rate=1.0)
    words = reference("ta-IN", 1).split()
    gold = {"transcript": segments(" ".join(words), "ta-IN")}
    _import(world, project, tmp_path, [{"data": {"clip": "g", "language": "ta-IN"}, "gold": gold}])
    ann = world.user("ann", role="annotator", workspace=ws)
    wrong = list(words)
    for k in range(4):  # 4 substitutions of N_WORDS words
        wrong[k * 7] = "xyzzy"
    _submit_all(ann["client"], project.id, [" ".join(wrong)])
    with world.db.begin("read") as conn:
        scores = conn.execute(
            text("SELECT score FROM gold_results WHERE project_id = :p"), {"p": project.id}
        ).all()
    assert [round(float(s), 4) for (s,) in scores] == [round(1 - 4 / N_WORDS, 4)]
    report = world.db.run(quality.project_report, world.load(project.id))
    (person,) = report["annotators"]
    assert person["gold"]["n"] == 1
    assert person["gold"]["correct"] == pytest.approx(1 - 4 / N_WORDS)
