"""The review page's word differences in a real Chromium: two transcribers' Tamil
transcripts of one item, and the ASR pre-fill against the final text, words marked."""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import orjson
import pytest
from lf_browser import Server, login, wait_js
from lf_world import World, build_world

from labelfarm.db.engine import Database
from labelfarm.services import audit, projects
from labelfarm.services.imports import import_items
from labelfarm.services.media import MediaStore

pytestmark = pytest.mark.slow

TEXT = "நான் கடல் பார்த்தேன் அது பெரியது"
ASR_TEXT = "நான் xyzzy பார்த்தேன் அது பெரியது"


def _segment(text: str, **extra: Any) -> list[dict[str, Any]]:
    return [{"start": 0.0, "end": 4.0, "text": text, "language": ["ta-IN"], **extra}]


def add_transcripts_project(world: World, data_dir: Path) -> int:
    settings = world.settings
    db = Database(settings.resolved_database_url)
    audit.use_key(db, settings.resolved_audit_key)
    schema = {"fields": [{"name": "transcript", "type": "segments"}]}
    with db.begin("write") as conn:
        row = projects.create_project(
            conn, workspace_id=world.workspace_id, name="Talk", now=time.time(), actor_id=None,
            overlap=2, asr_shadow_share=0.0, schema=schema,
        )  # fmt: skip
    with db.begin("read") as conn:
        project = projects.load_project(conn, row["id"])
    prediction = {"model": "asr", "value": {"transcript": _segment(ASR_TEXT, asr=True)}}
    listing = data_dir / "talk.jsonl"
    listing.write_bytes(orjson.dumps({"data": {"language": "ta-IN"}, "prediction": prediction}))
    media = MediaStore(settings.resolved_media_root, settings.resolved_secret_key)
    import_items(db, project, listing, "jsonl", media=media, now=time.time(), user_id=None)
    db.engine.dispose()
    return int(row["id"])


@pytest.fixture(scope="module")
def site(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    data_dir = tmp_path_factory.mktemp("review-diff") / "data"
    world = build_world(data_dir, n_images=1, n_choice=1)
    world.projects["talk"] = add_transcripts_project(world, data_dir)
    srv = Server(world, data_dir)
    yield srv
    srv.stop()


def test_the_reviewer_sees_which_words_differ(site: Server, page: Any) -> None:
    pid = site.world.projects["talk"]
    for username, text in (("annotator", TEXT), ("anbu", TEXT.replace("கடல்", "கடால்"))):
        api = site.api(username)
        (task,) = api.post(f"/api/v1/projects/{pid}/next", json={"n": 1}).json()["tasks"]
        assert task["prediction"]["model"] == "asr"
        entry = {"id": username, "task": task["task"], "value": {"transcript": _segment(text)}}
        api.post(f"/api/v1/projects/{pid}/submit", json={"annotations": [entry]}).raise_for_status()
    item = site.api("reviewer").get(f"/api/v1/projects/{pid}/items").json()["items"][0]["id"]
    errors: list[str] = []
    page.on("console", lambda m: errors.append(m.text) if m.type == "error" else None)
    login(page, site.url, "reviewer", f"/projects/{pid}/review?item={item}")
    wait_js(page, "document.querySelectorAll('.transcript-diffs .word-diff').length >= 2")
    pairs = page.locator(".transcript-diffs .diff-pair")
    first = pairs.nth(0)
    assert first.locator(".diff-replace del.diff-a").inner_text() == "கடல்"
    assert first.locator(".diff-replace ins.diff-b").inner_text() == "கடால்"
    assert "20.0%" in first.locator(".diff-head").inner_text()  # 1 error in 5 words
    asr = pairs.nth(1)
    assert asr.get_attribute("data-a") == "asr" and asr.get_attribute("data-b") == "final"
    assert asr.locator(".diff-replace del.diff-a").inner_text() == "xyzzy"
    assert asr.locator(".diff-equal").first.inner_text() == "நான்"
    assert errors == []
