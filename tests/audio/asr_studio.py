"""Helpers of the ASR pre-fill tests: a transcription project whose items carry ASR
predictions written as the ASR job writes them (``model = "asr"``), and transcribers who
submit the reference transcripts through the API."""

from __future__ import annotations

import uuid
from pathlib import Path
from typing import Any

import orjson
import pytest
from sqlalchemy import text

from labelfarm.db.tables import predictions
from labelfarm.jsonutil import dumps
from labelfarm.services import asr_quality
from labelfarm.services.imports import import_items

SCHEMA = {"fields": [{"name": "transcript", "type": "segments"}]}
WORDS = {
    "ta-IN": ["வணக்கம்", "நன்றி", "தமிழ்", "மொழி", "பேசு", "கேள்", "வீடு", "பள்ளி", "நீர்", "மழை"],
    "hi-IN": ["नमस्ते", "धन्यवाद", "हिंदी", "भाषा", "बोलो", "सुनो", "घर", "स्कूल", "पानी", "बारिश"],
}
N_WORDS = 40  # words per transcript
SHADOW_SHARE = 0.25


def reference(tag: str, k: int) -> str:
    words = WORDS[tag]
    return " ".join(words[(k * 7 + i * 3) % len(words)] for i in range(N_WORDS))


def asr_text(tag: str, k: int, wrong: int) -> str:
    """The reference with ``wrong`` words substituted (so ``wrong`` / N_WORDS WER)."""
    words = reference(tag, k).split()
    for i in range(wrong):
        words[(i * 3) % N_WORDS] = "xyzzy"  # 3 is prime to N_WORDS: distinct places
    return " ".join(words)


def segments(text: str, tag: str, *, asr: bool = False) -> list[dict[str, Any]]:
    seg: dict[str, Any] = {"start": 0.0, "end": 9.5, "text": text, "language": [tag]}
    return [{**seg, "asr": True} if asr else seg]


def make_studio(world: Any, tmp_path: Path, **settings: Any) -> dict[str, Any]:
    """A workspace and a transcription project (one segments field ``transcript``)."""
    ws = world.workspace()
    options = {
        "overlap": 1,
        "gold_rate": 0.0,
        "max_live_leases": 1000,
        "asr_wer_threshold": 0.3,
        "asr_shadow_share": SHADOW_SHARE,
        **settings,
    }
    schema = options.pop("schema", SCHEMA)
    project = world.project(ws, schema=schema, **options)
    return {"ws": ws, "project": project, "tmp": tmp_path}


@pytest.fixture
def studio(world: Any, tmp_path: Path) -> dict[str, Any]:
    return make_studio(world, tmp_path)


def add_audio(
    world: Any,
    studio: dict[str, Any],
    tag: str,
    n: int,
    version: str,
    wrong: int,
    *,
    predict: bool = True,
) -> dict[int, str]:
    """``n`` items of language ``tag``, each (with ``predict``) with an ASR prediction of
    ``version`` that gets ``wrong`` of its N_WORDS words wrong. Returns {item id: its
    reference transcript}, in the order of the items."""
    project = studio["project"]
    path = studio["tmp"] / f"{uuid.uuid4().hex[:8]}.jsonl"
    keys = [f"{tag}-{uuid.uuid4().hex[:8]}-{k}" for k in range(n)]
    path.write_text("".join(dumps({"data": {"clip": key, "language": tag}}) + "\n" for key in keys))
    world.db.run(
        import_items, project, path, "jsonl", media=world.ctx.media, now=world.clock(), user_id=None
    )
    with world.db.begin("read") as conn:
        rows = conn.execute(
            text("SELECT id, data FROM items WHERE project_id = :p"), {"p": project.id}
        ).all()
    by_key = {orjson.loads(data)["clip"]: item for item, data in rows}
    refs = {by_key[key]: reference(tag, k) for k, key in enumerate(keys)}
    if predict:
        write_predictions(world, studio, tag, list(refs), version, wrong)
    world.clock.advance(5)
    return refs


def write_predictions(
    world: Any, studio: dict[str, Any], tag: str, items: list[int], version: str, wrong: int
) -> None:
    """The ASR's predictions of ``items`` (the k-th item's reference with ``wrong`` errors)."""
    with world.db.begin("write") as conn:
        for k, item in enumerate(items):
            value = {"transcript": segments(asr_text(tag, k, wrong), tag, asr=True)}
            conn.execute(
                predictions.insert().values(
                    project_id=studio["project"].id, item_id=item, model="asr",
                    model_version=version, value=dumps(value), score=0.8,
                    created_at=world.clock(),
                )
            )  # fmt: skip


def transcribe(world: Any, studio: dict[str, Any], user: dict, refs: dict[int, str]):
    """Lease every open task, submit the reference transcript of each: {item id: whether
    its task showed the ASR pre-fill}."""
    project = studio["project"]
    shown: dict[int, bool] = {}
    while len(shown) < len(refs):
        tasks = user["client"].next(project.id, n=min(50, len(refs) - len(shown)))
        assert tasks, "fewer open tasks than items"
        entries = []
        for item, task in zip(world.item_ids(project.id, user, tasks), tasks, strict=True):
            pred = task["prediction"]
            shown[item] = pred is not None
            if pred is not None:
                assert pred["model"] == "asr" and pred["value"]["transcript"][0]["asr"] is True
            entries.append(
                {
                    "task": task["task"],
                    "value": {"transcript": segments(refs[item], task["data"]["language"])},
                    "from_prediction": pred is not None,
                }
            )
        user["client"].submit(project.id, entries)
    assert sorted(shown) == sorted(refs)
    world.clock.advance(5)
    return shown


def measure(world: Any, studio: dict[str, Any]) -> dict[str, asr_quality.PrefillState]:
    project = studio["project"]
    asr_quality.measure_pending(world.db, project, world.clock())
    world.clock.advance(60)
    return world.db.run(asr_quality.read_state, project)
