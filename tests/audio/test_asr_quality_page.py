"""The quality page's speech-recognition section (WER per language over time, the switch and
its evidence), ``GET …/asr/quality`` for the roles of the quality report, and the review
page's word differences (``GET …/review/{item}/diff``)."""

from __future__ import annotations

import re
import uuid
from pathlib import Path
from typing import Any

import httpx
import pytest
from asr_studio import add_audio, make_studio, measure, transcribe

from labelfarm import i18n
from labelfarm.services import asr_quality
from labelfarm.web.pages.assets import static_url

ROLES = ("manager", "reviewer", "client", "annotator")


def _get(world: Any, token: str, path: str) -> httpx.Response:
    http = httpx.Client(transport=world.transport, base_url="http://testserver")
    return http.get(path, headers={"Authorization": f"Bearer {token}"})


def _strict(html: str) -> None:
    assert not re.search(r"\sstyle\s*=", html)
    for tag in re.findall(r"<script[^>]*>", html):
        assert "src=" in tag or 'type="application/json"' in tag, tag


@pytest.fixture
def measured(world: Any, tmp_path: Path) -> dict[str, Any]:
    studio = make_studio(world, tmp_path)
    people = {r: world.user(f"u-{r}", role=r, workspace=studio["ws"]) for r in ROLES}
    tamil = add_audio(world, studio, "ta-IN", 40, "tiny", wrong=20)  # WER 0.5: off
    hindi = add_audio(world, studio, "hi-IN", 40, "tiny", wrong=2)  # WER 0.05: on
    transcribe(world, studio, people["annotator"], {**tamil, **hindi})
    measure(world, studio)
    return {**studio, "people": people}


@pytest.mark.parametrize("lang", ["en", "ta", "hi"])
def test_the_quality_page_shows_wer_per_language_and_the_switch(
    world: Any, measured: dict[str, Any], lang: str
) -> None:
    pid = measured["project"].id
    html = _get(
        world, measured["people"]["reviewer"]["token"], f"/projects/{pid}/quality?lang={lang}"
    )
    assert html.status_code == 200
    text = html.text
    _strict(text)
    t = i18n.catalogue(lang).t
    assert 'id="asr-quality"' in text and t("asr_quality.title") in text
    assert '<tr data-language="ta-IN" data-prefill="off">' in text
    assert '<tr data-language="hi-IN" data-prefill="on">' in text
    assert t("asr_reason.above") in text and t("asr_reason.at_or_below") in text
    assert "50.0%" in text and "5.0%" in text
    # one bar per measured day, above the threshold for Tamil
    bars = re.findall(r'<rect class="bar( over)?" data-day="[\d-]+"', text)
    assert sorted(bars) == ["", " over"]
    assert re.search(r'<tr data-language="ta-IN" data-version="tiny">', text)


def test_a_project_without_transcripts_has_no_speech_section(world: Any, tmp_path: Path) -> None:
    ws = world.workspace("plain")
    manager = world.user("boss", role="manager", workspace=ws)
    project = world.project(ws)
    html = _get(world, manager["token"], f"/projects/{project.id}/quality").text
    assert 'id="asr-quality"' not in html


def test_the_api_answers_the_quality_roles(world: Any, measured: dict[str, Any]) -> None:
    pid, people = measured["project"].id, measured["people"]
    path = f"/api/v1/projects/{pid}/asr/quality"
    for role in ("manager", "reviewer", "client"):
        assert _get(world, people[role]["token"], path).status_code == 200, role
    assert _get(world, people["annotator"]["token"], path).status_code == 403
    body = _get(world, people["client"]["token"], path).json()
    assert body["threshold"] == 0.3 and body["min_words"] == 200
    tags = {t["language"]: t for t in body["tags"]}
    assert tags["ta-IN"]["state"]["on"] is False
    assert tags["ta-IN"]["state"]["wer"] == pytest.approx(0.5)
    assert tags["hi-IN"]["state"]["on"] is True
    version = tags["ta-IN"]["versions"][0]
    assert version["model_version"] == "tiny"
    assert version["shadow"]["wer"] == pytest.approx(0.5)
    assert version["shadow"]["items"] + version["prefilled"]["items"] == 40
    assert len(tags["ta-IN"]["days"]) == 1


def test_the_review_shows_word_differences(world: Any, tmp_path: Path) -> None:
    studio = make_studio(world, tmp_path, overlap=2)
    people = {r: world.user(f"u-{r}", role=r, workspace=studio["ws"]) for r in ROLES}
    ann_b = world.user("u-ann-b", role="annotator", workspace=studio["ws"])
    refs = add_audio(world, studio, "ta-IN", 1, "tiny", wrong=1)
    (item,) = refs
    transcribe(world, studio, people["annotator"], refs)
    other = {item: refs[item].replace("வணக்கம்", "வணக்கமே", 1)}
    transcribe(world, studio, ann_b, other)

    path = f"/api/v1/projects/{studio['project'].id}/review/{item}/diff"
    assert _get(world, people["client"]["token"], path).status_code == 403
    assert _get(world, people["annotator"]["token"], path).status_code == 403
    answer = _get(world, people["reviewer"]["token"], path)
    assert answer.status_code == 200, answer.text
    (field,) = answer.json()["fields"]
    assert field["field"] == "transcript" and field["asr_version"] == "tiny"
    (pair,) = field["annotators"]
    assert pair["a"] == people["annotator"]["pseudonym"] and pair["b"] == ann_b["pseudonym"]
    assert pair["errors"] == 1
    assert {"op": "replace", "a": "வணக்கம்", "b": "வணக்கமே"} in pair["runs"]
    (prefill,) = field["prefill"]  # the ASR against the final text (the combined label)
    assert (prefill["a"], prefill["b"]) == ("asr", "final")
    assert prefill["errors"] >= 1
    assert any(r["op"] == "replace" and r["a"] == "xyzzy" for r in prefill["runs"])

    missing = f"/api/v1/projects/{studio['project'].id}/review/99999/diff"
    assert _get(world, people["reviewer"]["token"], missing).status_code == 404

    page = _get(world, people["reviewer"]["token"], f"/projects/{studio['project'].id}/review")
    assert page.status_code == 200
    _strict(page.text)
    assert 'id="transcript-diff-boot"' in page.text
    module = _get(world, people["reviewer"]["token"], static_url("js/pages/review_diff.js"))
    assert module.status_code == 200 and "export async function showDiffs" in module.text


def test_no_transcript_no_crash(world: Any, tmp_path: Path) -> None:
    """A submitted value without the field, and an ASR prediction without it, are measured
    once as nothing (no words), and stay out of the items counted."""
    optional = {"fields": [{"name": "transcript", "type": "segments", "required": False}]}
    studio = make_studio(world, tmp_path, schema=optional)
    ann = world.user("ann", role="annotator", workspace=studio["ws"])
    refs = add_audio(world, studio, "ta-IN", 3, "tiny", wrong=0)
    tasks = ann["client"].next(studio["project"].id, n=3)
    ann["client"].submit(
        studio["project"].id,
        [{"id": str(uuid.uuid4()), "task": t["task"], "value": {}} for t in tasks],
    )
    assert len(refs) == 3
    project = studio["project"]
    assert asr_quality.measure_pending(world.db, project, world.clock()) == 3
    assert asr_quality.measure_pending(world.db, project, world.clock()) == 0  # once
    state = world.db.run(asr_quality.read_state, project).get("ta-IN")
    assert state is None or (state.items == 0 and state.words == 0)
