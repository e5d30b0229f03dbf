"""ASR pre-fill only where it helps: measured per language tag against what transcribers
submit, switched off for a tag whose word error rate is above the threshold, kept on for
another, measured fairly on a shadow share of items, and back on when a newer model
version measures below the threshold. The ASR's predictions are written here as the ASR job
writes them (``model = "asr"``): no speech model is needed."""

from __future__ import annotations

import math
from typing import Any

import pytest
from asr_studio import (
    N_WORDS,
    SHADOW_SHARE,
    add_audio,
    measure,
    studio,
    transcribe,
    write_predictions,
)

from labelfarm.jobs.worker import Worker
from labelfarm.services import asr_quality, job_queue
from labelfarm.services.asr_report import asr_quality_report

__all__ = ["studio"]  # the fixture


def test_the_shadow_share_is_a_fixed_random_share(studio: dict[str, Any]) -> None:
    project = studio["project"]
    n = 4000
    drawn = [asr_quality.is_shadow(project, i) for i in range(1, n + 1)]
    assert drawn == [asr_quality.is_shadow(project, i) for i in range(1, n + 1)]  # fixed
    sd = math.sqrt(n * SHADOW_SHARE * (1 - SHADOW_SHARE))
    assert abs(sum(drawn) - n * SHADOW_SHARE) < 4 * sd


def test_the_switch_goes_off_for_a_poor_tag_and_on_again_for_a_better_model(
    world: Any, studio: dict[str, Any]
) -> None:
    project = studio["project"]
    ann = world.user("ann", role="annotator", workspace=studio["ws"])
    tamil = add_audio(world, studio, "ta-IN", 60, "tiny", wrong=20)  # WER 0.5
    hindi = add_audio(world, studio, "hi-IN", 60, "tiny", wrong=2)  # WER 0.05

    # nothing measured yet: every tag on, the shadow items alone without pre-fill
    shown = transcribe(world, studio, ann, {**tamil, **hindi})
    hidden = [i for i, s in shown.items() if not s]
    assert hidden == [i for i in shown if asr_quality.is_shadow(project, i)]
    n, p = len(shown), SHADOW_SHARE
    assert abs(len(hidden) - n * p) < 4 * math.sqrt(n * p * (1 - p))  # binomial bounds

    states = measure(world, studio)
    assert not states["ta-IN"].on and states["ta-IN"].reason == "above"
    assert states["ta-IN"].model_version == "tiny" and states["ta-IN"].wer == pytest.approx(0.5)
    shadow_ta = [i for i in tamil if asr_quality.is_shadow(project, i)]
    assert states["ta-IN"].items == len(shadow_ta) >= asr_quality.MIN_ITEMS
    assert states["ta-IN"].words == N_WORDS * len(shadow_ta)
    assert states["hi-IN"].on and states["hi-IN"].wer == pytest.approx(0.05)

    # the pre-filled transcripts were measured too, but decide nothing
    report = world.db.run(asr_quality_report, project, world.clock())
    tags = {t["language"]: t for t in report["tags"]}
    tiny = tags["ta-IN"]["versions"][0]
    assert tiny["shadow"]["items"] == len(shadow_ta)
    assert tiny["prefilled"]["items"] == len(tamil) - len(shadow_ta)
    assert tags["ta-IN"]["days"][0]["wer"] == pytest.approx(0.5)
    assert tags["ta-IN"]["state"]["on"] is False

    # new Tamil items get no pre-fill at all; Hindi ones keep theirs (but on shadow items)
    bob = world.user("bob", role="annotator", workspace=studio["ws"])
    more_ta = add_audio(world, studio, "ta-IN", 30, "small", wrong=1)  # a better model
    more_hi = add_audio(world, studio, "hi-IN", 10, "tiny", wrong=2)
    shown = transcribe(world, studio, bob, {**more_ta, **more_hi})
    assert not any(shown[i] for i in more_ta)
    assert all(shown[i] != asr_quality.is_shadow(project, i) for i in more_hi)

    # every Tamil transcript was made without the pre-fill: all measure the newer model
    states = measure(world, studio)
    assert states["ta-IN"].on and states["ta-IN"].reason == "at_or_below"
    assert states["ta-IN"].model_version == "small"
    assert states["ta-IN"].items == len(more_ta)
    assert states["ta-IN"].wer == pytest.approx(1 / N_WORDS)
    assert states["hi-IN"].on

    carol = world.user("carol", role="annotator", workspace=studio["ws"])
    last = add_audio(world, studio, "ta-IN", 10, "small", wrong=1)
    shown = transcribe(world, studio, carol, last)
    assert all(shown[i] != asr_quality.is_shadow(project, i) for i in last)


def test_transcripts_made_before_the_asr_ran_measure_it_fairly(
    world: Any, studio: dict[str, Any]
) -> None:
    """Turning ASR on in a project with transcripts: they owe nothing to the pre-fill."""
    ann = world.user("ann", role="annotator", workspace=studio["ws"])
    tamil = add_audio(world, studio, "ta-IN", 12, "tiny", wrong=0, predict=False)
    shown = transcribe(world, studio, ann, tamil)
    assert not any(shown.values())
    write_predictions(world, studio, "ta-IN", list(tamil), "tiny", wrong=16)
    state = measure(world, studio)["ta-IN"]
    assert (state.on, state.items, state.words) == (False, 12, 12 * N_WORDS)
    assert state.wer == pytest.approx(16 / N_WORDS)


def test_too_little_evidence_keeps_the_pre_fill(world: Any, studio: dict[str, Any]) -> None:
    ann = world.user("ann", role="annotator", workspace=studio["ws"])
    tamil = add_audio(world, studio, "ta-IN", 8, "tiny", wrong=30)  # very poor, but few items
    transcribe(world, studio, ann, tamil)
    states = measure(world, studio)
    state = states.get("ta-IN")
    assert state is None or (state.on and state.reason == "too_little_evidence")


def test_the_refit_job_measures(world: Any, studio: dict[str, Any]) -> None:
    ann = world.user("ann", role="annotator", workspace=studio["ws"])
    transcribe(world, studio, ann, add_audio(world, studio, "hi-IN", 6, "tiny", wrong=4))
    world.db.run(job_queue.enqueue, kind="refit", params={}, now=world.clock())
    worker = Worker(world.ctx.settings, world.db, world.ctx.media, clock=world.clock)
    (job,) = worker.run_until_idle()
    assert job.state == "done", job.error
    assert job.result["asr_measured"] == {str(studio["project"].id): 6}
    world.db.run(job_queue.enqueue, kind="refit", params={}, now=world.clock())
    (again,) = worker.run_until_idle()
    assert again.result["asr_measured"] == {}  # each transcript is measured once
