"""The demo's transcription project: the LibriVox clips of pocketsphinx-testdata, Tamil and
Hindi clips spoken by espeak-ng, and the asr job that pre-fills the English ones."""

from __future__ import annotations

import shutil

import orjson
import pytest

from labelfarm.demo_audio import (
    FIELD,
    SPOKEN,
    asr_unavailable,
    build_transcription_project,
    librivox_utterances,
)
from labelfarm.services import items, job_queue

UTTERANCES = librivox_utterances()
ESPEAK = shutil.which("espeak-ng")

pytestmark = pytest.mark.skipif(
    not UTTERANCES and ESPEAK is None,
    reason="neither pocketsphinx-testdata nor espeak-ng is installed",
)


def test_librivox_listing_pairs_clips_with_their_transcripts():
    if not UTTERANCES:
        pytest.skip("pocketsphinx-testdata is not installed")
    first = UTTERANCES[0]
    assert first.name == "sense_and_sensibility_01_austen_64kb-0870"
    assert first.text.startswith("and mister john dashwood had then leisure")
    assert all(u.path.is_file() and u.text for u in UTTERANCES)


def test_demo_builds_the_transcription_project(world, settings):
    ws = world.workspace("demo")
    logged: list[str] = []
    made = build_transcription_project(
        settings, world.db, world.ctx.media, ws["id"], world.clock(), log=logged.append
    )
    assert made is not None
    project = world.load(made["project"]["id"])
    [field] = project.schema.fields
    assert (field.name, field.type_name) == (FIELD, "segments")
    assert project.schema.raw["fields"][0]["languages"] == ["en-IN", "ta-IN", "hi-IN"]

    rows = world.db.run(items.items_page, project.id, 0, items.MAX_PAGE)
    data = {row["external_id"]: orjson.loads(orjson.dumps(row["data"])) for row in rows}
    assert all(row["media_sha256"] for row in rows)  # every clip stored as media
    english = {u.name for u in UTTERANCES}
    assert english <= set(data)
    assert all(data[name]["language"] == "en-IN" for name in english)
    spoken = {name: d["language"] for name, d in data.items() if name.startswith("espeak-")}
    if ESPEAK is not None:
        per_tag = {tag: len(sentences) for tag, (_voice, sentences) in SPOKEN.items()}
        assert sorted(spoken.values()) == sorted(
            tag for tag, n in per_tag.items() for _ in range(n)
        )
        assert {"ta-IN", "hi-IN"} == set(spoken.values())
    else:
        assert spoken == {}
    assert len(data) == len(english) + len(spoken)

    job_id = made["asr_job"]
    if asr_unavailable(settings) is not None or not english:
        assert job_id is None
        return
    job = world.db.run(job_queue.get_job, job_id)
    assert (job.kind, job.state, job.project_id) == ("asr", "queued", project.id)
    assert sorted(job.params["items"]) == sorted(made["items"][n] for n in english)
    assert job.params["field"] == FIELD
    assert any("speech recognition pre-fills" in line for line in logged)
