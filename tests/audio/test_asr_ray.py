"""The ``asr`` job on a real Ray head (bound to 127.0.0.1): its tasks transcribe on the
cluster's workers, and the transcripts are those made in this process (the same text, the
same times to a step of the model's timestamps)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from test_asr_job import CLIPS, audio_project, needs_model, predictions, run

from jobs.ray_head import SKIP_REASON, RayHead, ray_head  # noqa: F401
from labelfarm.jsonutil import loads
from labelfarm.ml import asr
from labelfarm.settings import Settings

pytest.importorskip("ray", reason=SKIP_REASON)
pytestmark = [pytest.mark.slow, needs_model]


def test_the_asr_job_on_ray_equals_the_local_transcription(
    world: Any,
    settings: Settings,
    ray_head: RayHead,  # noqa: F811
    tmp_path: Path,
) -> None:
    project, manager = audio_project(world, tmp_path / "clips", CLIPS)
    on_ray = settings.model_copy(update={"ray_address": ray_head.address})
    job = run(world, on_ray, manager, project.id, {})
    assert job.state == "done", job.error
    assert job.result["transcribed"] == len(CLIPS)
    found = predictions(world, project.id)
    for row in found.values():
        with world.ctx.media.open(row.media_sha256) as fh:
            task = asr.AsrTask(row.item_id, fh.read(), None, settings.asr_model_dir)
        local = asr.transcribe_task(task)
        remote = loads(row.value)["transcript"]
        assert [s["text"] for s in remote] == [s["text"] for s in local.segments]
        # times agree to a step of the model's timestamps (20 ms): Ray's worker processes
        # run their native libraries on other thread counts, which moves a word alignment
        for a, b in zip(remote, local.segments, strict=True):
            assert a["start"] == pytest.approx(b["start"], abs=0.041)
            assert a["end"] == pytest.approx(b["end"], abs=0.041)
