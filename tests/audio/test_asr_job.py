"""The ``asr`` job with the real Whisper tiny.en model on real speech (pocketsphinx-testdata's
LibriVox clips): started through the API, run by a worker, its transcripts written as
predictions close to the reference transcripts; resumable; failing at once, saying why,
where no model is configured."""

from __future__ import annotations

import shutil
from pathlib import Path
from typing import Any

import orjson
import pytest
import soundfile as sf
from clips import speech_clips
from sqlalchemy import text

from labelfarm.client import LabelfarmAPIError
from labelfarm.jobs.worker import Worker
from labelfarm.jsonutil import loads
from labelfarm.ml import asr
from labelfarm.ml.text_metrics import wer
from labelfarm.schema.segments import transcript_text
from labelfarm.services import asr_targets, job_queue
from labelfarm.services.imports import import_items
from labelfarm.settings import Settings

CLIPS = speech_clips()[:2]
SCHEMA = {
    "data": {"audio": "audio"},
    "fields": [{"name": "transcript", "type": "segments", "languages": ["en-IN", "ta-IN"]}],
}
MODEL_MISSING = asr.available(Settings(secret_key="x").asr_model_dir)
needs_model = pytest.mark.skipif(
    bool(MODEL_MISSING) or not CLIPS,
    reason=MODEL_MISSING or "no speech clips: apt-get install pocketsphinx-testdata",
)


def audio_project(world: Any, folder: Path, clips: list[tuple[Path, str]]) -> tuple[Any, dict]:
    """A transcription project of the clips (one item each) and its manager."""
    ws = world.workspace()
    manager = world.user("boss", role="manager", workspace=ws)
    project = world.project(ws, schema=SCHEMA, overlap=1)
    folder.mkdir()
    rows = []
    for wav, _ in clips:
        shutil.copy(wav, folder / wav.name)
        rows.append({"data": {"audio": wav.name}, "media": wav.name})
    path = folder / "items.jsonl"
    path.write_bytes(b"".join(orjson.dumps(r) + b"\n" for r in rows))
    world.db.run(
        import_items, project, path, "jsonl",
        media=world.ctx.media, now=world.clock(), user_id=None, base_dir=folder,
    )  # fmt: skip
    return world.load(project.id), manager


def run(world: Any, settings: Settings, manager: dict, project_id: int, body: dict) -> Any:
    """Start the job through the API and run it to its end; the job's row."""
    started = manager["client"].request("POST", f"/projects/{project_id}/asr", json=body)["job"]
    worker = Worker(settings, world.db, world.ctx.media, name="w-asr", clock=world.clock)
    (ran,) = worker.run_until_idle()
    assert ran.id == started["id"]
    return world.db.run(job_queue.get_job, ran.id)


def predictions(world: Any, project_id: int) -> dict[int, Any]:
    with world.db.engine.connect() as conn:
        rows = conn.execute(
            text(
                "SELECT p.id, p.item_id, p.model, p.model_version, p.value, p.score, i.data, "
                "i.media_sha256 "
                "FROM predictions p JOIN items i ON i.id = p.item_id WHERE p.project_id = :p"
            ),
            {"p": project_id},
        )
        return {r.item_id: r for r in rows}


@needs_model
def test_the_job_transcribes_real_speech_and_resumes(
    world: Any, settings: Settings, tmp_path: Path
) -> None:
    project, manager = audio_project(world, tmp_path / "clips", CLIPS)
    job = run(world, settings, manager, project.id, {})
    assert job.state == "done", job.error
    assert job.result["transcribed"] == 2 and job.result["failed"] == 0
    assert job.progress_done == job.progress_total == 2
    found = predictions(world, project.id)
    references = {wav.name: (reference, sf.info(str(wav)).duration) for wav, reference in CLIPS}
    for row in found.values():
        assert (row.model, row.model_version) == ("asr", "whisper-tiny.en")
        reference, duration = references[loads(row.data)["audio"]]
        segments = loads(row.value)["transcript"]
        project.schema.validate({"transcript": segments})
        hypothesis = transcript_text(segments)
        assert wer(reference, hypothesis) <= 0.35, (reference, hypothesis)
        words = [w for s in segments for w in s["words"]]
        assert len(words) >= len(reference.split()) // 2
        assert all(0 < w["p"] <= 1 for w in words)
        assert row.score == pytest.approx(sum(w["p"] for w in words) / len(words), abs=1e-5)
        for s in segments:
            assert 0 <= s["start"] < s["end"] <= duration + 0.001
            assert s["asr"] is True and s["speaker"] is None and s["channel"] == 0
            # the model detected English; the field lists en-IN, which it becomes
            assert s["language"] == ["en-IN"]
            assert all(s["start"] <= w["start"] <= w["end"] <= s["end"] for w in s["words"])

    # a rerun skips what is done; an item asked for again after losing its transcript is redone
    again = run(world, settings, manager, project.id, {})
    assert again.state == "done" and again.result["transcribed"] == 0
    assert predictions(world, project.id) == found
    first = min(found)
    with world.db.engine.begin() as conn:
        conn.execute(text("DELETE FROM predictions WHERE item_id = :i"), {"i": first})
    redo = run(world, settings, manager, project.id, {"items": sorted(found), "language": "ta-IN"})
    assert redo.state == "done" and redo.result["transcribed"] == 1
    after = predictions(world, project.id)
    assert after[max(found)] == found[max(found)]
    assert {tuple(s["language"]) for s in loads(after[first].value)["transcript"]} == {("ta-IN",)}

    # a stored file that no longer decodes is listed as failed; the job still ends done
    Path(world.ctx.media.path(after[first].media_sha256)).write_bytes(b"RIFF, but not audio")
    with world.db.engine.begin() as conn:
        conn.execute(text("DELETE FROM predictions WHERE item_id = :i"), {"i": first})
    broken = run(world, settings, manager, project.id, {})
    assert broken.state == "done" and broken.result["transcribed"] == 0
    assert broken.result["failed"] == 1
    (failure,) = broken.result["failures"]
    assert failure["item"] == first and failure["reason"].startswith("not readable as audio")


def test_without_a_model_the_job_fails_at_once_saying_why(
    world: Any, settings: Settings, tmp_path: Path
) -> None:
    clips = CLIPS[:1] or [(tmp_path / "silence.wav", "")]
    if not CLIPS:
        sf.write(clips[0][0], [0.0] * 16_000, 16_000)
    project, manager = audio_project(world, tmp_path / "clips", clips)
    bare = settings.model_copy(update={"asr_model_dir": ""})
    job = run(world, bare, manager, project.id, {})
    assert job.state == "failed" and job.attempts == 1
    assert "labelfarm[asr]" in job.error
    if asr.available("/nonexistent") != asr.available(""):  # faster-whisper is installed
        assert "LABELFARM_ASR_MODEL_DIR" in job.error
    assert predictions(world, project.id) == {}


def test_the_route_checks_the_request(world: Any, settings: Settings, tmp_path: Path) -> None:
    ws = world.workspace()
    manager = world.user("boss", role="manager", workspace=ws)
    text_project = world.project(ws)
    audio = world.project(ws, schema=SCHEMA, name="audio")
    for project_id, body, reason in [
        (text_project.id, {}, "no segments field"),
        (audio.id, {"field": "nope"}, "not a segments field"),
        (audio.id, {"language": "english!"}, "not a language tag"),
        (audio.id, {"language": "hi-IN"}, "not a language of the field"),
    ]:
        with pytest.raises(LabelfarmAPIError) as refused:
            manager["client"].request("POST", f"/projects/{project_id}/asr", json=body)
        assert refused.value.status == 422
        assert refused.value.details[0]["reason"] == reason
    started = manager["client"].request(
        "POST", f"/projects/{audio.id}/asr", json={"items": [3, 1, 3], "language": "ta-IN"}
    )["job"]
    assert started["kind"] == "asr"
    assert started["params"] == {"items": [1, 3], "field": "transcript", "language": "ta-IN"}


def test_language_tags_are_fitted_to_the_field() -> None:
    listed = ["ta-IN", "ta-IN-madurai", "en-IN"]
    assert asr_targets.fit_tag("en", listed) == "en-IN"
    assert asr_targets.fit_tag("ta-IN-madurai", listed) == "ta-IN-madurai"
    assert asr_targets.fit_tag("TA", listed) == "ta-IN"
    assert asr_targets.fit_tag("hi-IN", listed) is None
    assert asr_targets.fit_tag("hi-IN", []) == "hi-IN"
    assert asr_targets.fit_tag(None, listed) is None
    assert asr_targets.item_language({"language": "hi-IN"}) == "hi-IN"
    assert asr_targets.item_language({"language": "Hindi, mostly"}) is None
    assert asr_targets.item_language({"language": ["hi-IN"]}) is None
    assert asr_targets.item_language({}) is None
