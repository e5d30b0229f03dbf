"""The audio routes under both signed media URLs: facts, peaks and the listening copy for an
annotator by lease and a manager by role, HTTP ranges, URLs that end with their grant; and
audio named by URL in a JSON Lines import, fetched only from the allowed hosts."""

from __future__ import annotations

import json
import threading
import uuid
from collections.abc import Iterator
from http.server import SimpleHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import httpx
import numpy as np
import pytest
from clips import tone

from labelfarm.client import LabelfarmAPIError
from labelfarm.errors import ImportFailed
from labelfarm.formats.registry import ImportLimits
from labelfarm.services.audio_backfill import derive_missing_audio
from labelfarm.services.audio_media import STREAM_MIME, audio_facts, file_sha256
from labelfarm.services.imports import import_items
from labelfarm.services.media import register_media
from labelfarm.services.media_check import ATTACHMENT, check_file
from labelfarm.settings import Settings
from labelfarm.web.routes.media import MEDIA_CSP
from media_files import png as make_png

SCHEMA = {
    "data": {"audio": "audio"},
    "fields": [{"name": "label", "type": "choice", "options": ["a", "b"]}],
}


def audio_url(media_url: str, tail: str = "") -> str:
    """``/audio{tail}`` inserted before the query of a signed media URL, as the page does."""
    path, query = media_url.split("?")
    return f"{path}/audio{tail}?{query}"


def web(world: Any) -> httpx.Client:
    return httpx.Client(transport=world.transport, base_url="http://testserver")


@pytest.fixture
def media_root() -> str:
    return ""


@pytest.fixture
def settings(settings: Settings, media_root: str) -> Settings:
    return settings.model_copy(update={"audio_url_hosts": ["127.0.0.1"], "media_root": media_root})


@pytest.fixture
def files_server(tmp_path: Path) -> Iterator[tuple[str, Path]]:
    """A plain HTTP server on 127.0.0.1 serving a folder; ``/away/NAME`` redirects to the
    same file on ``localhost`` (a host not allowed)."""
    folder = tmp_path / "served"
    folder.mkdir()

    class Handler(SimpleHTTPRequestHandler):
        def __init__(self, *args: Any, **kwargs: Any) -> None:
            super().__init__(*args, directory=str(folder), **kwargs)

        def do_GET(self) -> None:
            if self.path.startswith("/away/"):
                self.send_response(302)
                port = self.server.server_address[1]
                self.send_header("Location", f"http://localhost:{port}/{self.path[6:]}")
                self.end_headers()
                return
            super().do_GET()

        def log_message(self, *args: Any) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}", folder
    server.shutdown()
    server.server_close()


def _project_with_audio(
    world: Any, tmp_path: Path, **settings: Any
) -> tuple[dict, dict, Any, Path]:
    ws = world.workspace()
    manager = world.user("boss", role="manager", workspace=ws)
    project = world.project(ws, schema=SCHEMA, **settings)
    clip = tone(tmp_path, "wav", seconds=3.0, rate=44100, channels=2)
    rows = json.dumps({"data": {"audio": clip.name}, "media": clip.name})
    (tmp_path / "items.jsonl").write_text(rows + "\n")
    import_items(
        world.db,
        project,
        tmp_path / "items.jsonl",
        "jsonl",
        media=world.ctx.media,
        now=world.clock(),
        user_id=None,
        base_dir=tmp_path,
    )
    return ws, manager, project, clip


def _check_audio_routes(world: Any, media_url: str, clip: Path) -> None:
    http = web(world)
    facts = http.get(audio_url(media_url))
    assert facts.status_code == 200, facts.text
    body = facts.json()
    assert body == {
        "duration": 3.0,
        "sample_rate": 44100,
        "channels": 2,
        "levels": [
            {"seconds": 0.01, "buckets": 300},
            {"seconds": 0.04, "buckets": 75},
            {"seconds": 0.16, "buckets": 19},
            {"seconds": 0.64, "buckets": 5},
        ],
        "stream": STREAM_MIME,
    }
    for level, entry in enumerate(body["levels"]):
        peaks = http.get(audio_url(media_url, f"/peaks/{level}"))
        assert peaks.status_code == 200 and peaks.headers["content-type"] == ATTACHMENT
        assert peaks.headers["content-security-policy"] == MEDIA_CSP
        values = np.frombuffer(peaks.content, dtype=np.int8).reshape(-1, 2, 2)
        assert len(values) == entry["buckets"]
        # channel 0 is a tone of amplitude 0.8, channel 1 of 0.4
        assert values[1, 0, 1] == pytest.approx(102, abs=1)
        assert values[1, 1, 1] == pytest.approx(51, abs=1)
        assert values[1, 0, 0] == pytest.approx(-102, abs=1)
    assert http.get(audio_url(media_url, "/peaks/4")).status_code == 422
    stream = http.get(audio_url(media_url, "/stream"))
    assert stream.status_code == 200
    assert stream.headers["content-type"] == STREAM_MIME
    assert stream.headers["accept-ranges"] == "bytes"
    assert stream.content[:4] == b"OggS" and b"OpusHead" in stream.content[:100]
    part = http.get(audio_url(media_url, "/stream"), headers={"Range": "bytes=100-1099"})
    assert part.status_code == 206
    assert part.content == stream.content[100:1100]
    assert part.headers["content-range"] == f"bytes 100-1099/{len(stream.content)}"
    tail = http.get(audio_url(media_url, "/peaks/0"), headers={"Range": "bytes=-8"})
    assert tail.status_code == 206 and len(tail.content) == 8


def test_an_annotator_by_lease_and_a_manager_by_role(world, tmp_path, clock):
    ws, manager, project, clip = _project_with_audio(world, tmp_path, lease_seconds=600)
    ann = world.user("ann", role="annotator", workspace=ws)
    project_id = project.id
    (task,) = ann["client"].next(project_id, 1)
    assert "/media/tasks/" in task["media_url"]
    _check_audio_routes(world, task["media_url"], clip)
    # by role: a manager's URL names the file
    sha = file_sha256(clip)
    by_role = world.ctx.media.sign(sha, manager["id"], clock() + 600, workspace=ws["id"])
    _check_audio_routes(world, by_role, clip)
    # the URLs end with what grants them
    http = web(world)
    ann["client"].submit(project_id, [{"task": task["task"], "value": {"label": "a"}}])
    for tail in ("", "/peaks/0", "/stream"):
        assert http.get(audio_url(task["media_url"], tail)).status_code == 403
        assert http.get(audio_url(by_role, tail)).status_code == 200
    clock.advance(601)  # the by-role URL has expired
    for tail in ("", "/peaks/2", "/stream"):
        assert http.get(audio_url(by_role, tail)).status_code == 403
    forged = audio_url(by_role.replace("signature=", "signature=0"))
    assert http.get(forged).status_code == 403


@pytest.mark.parametrize("media_root", [f"memory://labelfarm-{uuid.uuid4().hex[:8]}"])
def test_a_remote_store_serves_ranges_from_a_local_copy(world, tmp_path, clock):
    assert not world.ctx.media.is_local
    ws, _, project, clip = _project_with_audio(world, tmp_path)
    ann = world.user("ann", role="annotator", workspace=ws)
    (task,) = ann["client"].next(project.id, 1)
    _check_audio_routes(world, task["media_url"], clip)
    cached = list((world.ctx.settings.data_dir / "cache" / "audio").rglob("*"))
    assert len([p for p in cached if p.is_file()]) == 5  # four peaks files and the stream


def test_a_file_that_is_not_audio_has_no_audio(world, tmp_path, clock):
    ws = world.workspace()
    manager = world.user("boss", role="manager", workspace=ws)
    project = world.project(ws)
    world.add_items(project, 1, tmp_path)
    png = tmp_path / "x.png"
    png.write_bytes(make_png())
    sha, size = world.ctx.media.put_file(png)
    with world.db.begin("write") as tx:
        register_media(tx, [(sha, size, check_file(png))], clock())
    url = world.ctx.media.sign(sha, manager["id"], clock() + 600, workspace=ws["id"])
    for tail in ("", "/peaks/0", "/stream"):
        r = web(world).get(audio_url(url, tail))
        assert r.status_code == 422, r.text
        assert r.json()["error"]["message"].startswith("only checked audio files have audio")
    # audio stored before facts were derived at import has none (yet)
    wav = tone(tmp_path, "wav", seconds=0.5)
    sha, size = world.ctx.media.put_file(wav)
    with world.db.begin("write") as tx:
        register_media(tx, [(sha, size, check_file(wav))], clock())
    url = world.ctx.media.sign(sha, manager["id"], clock() + 600, workspace=ws["id"])
    for tail in ("", "/peaks/0", "/stream"):
        r = web(world).get(audio_url(url, tail))
        assert r.status_code == 404 and r.json()["error"]["message"].startswith("no such audio")


def test_audio_by_url_from_an_allowed_host_only(world, tmp_path, files_server):
    base, folder = files_server
    ws = world.workspace()
    manager = world.user("boss", role="manager", workspace=ws)
    project = world.project(ws, schema=SCHEMA)
    clip = tone(folder, "flac", seconds=2.0, rate=22050, channels=1)
    rows = [{"data": {"audio": "remote"}, "media": f"{base}/{clip.name}"}]
    content = "".join(json.dumps(r) + "\n" for r in rows).encode()
    result = manager["client"].import_bytes(project.id, content, format="jsonl")
    assert result["n_items"] == 1
    with world.db.begin("read") as tx:
        facts = audio_facts(tx, [file_sha256(clip)])
    (got,) = facts.values()
    assert (got.duration, got.sample_rate, got.channels, got.format) == (2.0, 22050, 1, "FLAC")
    # another host: refused at its line, naming the setting
    other = [*rows, {"data": {"audio": "x"}, "media": f"http://localhost:1/{clip.name}"}]
    with pytest.raises(LabelfarmAPIError) as refused:
        body = "".join(json.dumps(r) + "\n" for r in other).encode()
        manager["client"].import_bytes(project.id, body, format="jsonl")
    (problem,) = refused.value.details
    assert (problem["location"], problem["field"]) == ("line 2", "media")
    assert "'localhost' is not a host of the audio_url_hosts setting" in problem["reason"]
    # a redirect off the allowed hosts, and a missing file: refused with the URL
    for url, reason in (
        (f"{base}/away/{clip.name}", "'localhost' is not a host of audio_url_hosts"),
        (f"{base}/missing.wav", "the server answered 404"),
    ):
        body = (json.dumps({"data": {"audio": "y"}, "media": url}) + "\n").encode()
        with pytest.raises(LabelfarmAPIError) as refused:
            manager["client"].import_bytes(project.id, body, format="jsonl")
        assert refused.value.details == [{"location": url, "field": "media", "reason": reason}]


def test_a_fetch_stops_at_the_byte_cap(world, tmp_path, files_server):
    base, folder = files_server
    project = world.project(world.workspace(), schema=SCHEMA)
    clip = tone(folder, "wav", seconds=1.0)
    path = tmp_path / "items.jsonl"
    path.write_text(json.dumps({"data": {"audio": "a"}, "media": f"{base}/{clip.name}"}) + "\n")
    limits = ImportLimits(audio_url_hosts=("127.0.0.1",), audio_url_max_bytes=1000)
    with pytest.raises(ImportFailed) as failed:
        import_items(
            world.db,
            project,
            path,
            "jsonl",
            media=world.ctx.media,
            now=0,
            user_id=None,
            limits=limits,
        )
    (problem,) = failed.value.details
    assert problem["reason"] == f"{clip.stat().st_size:,} bytes; audio_url_max_bytes is 1,000"


def test_audio_stored_before_facts_existed_is_derived_by_the_backfill(world, tmp_path, clock):
    ws = world.workspace()
    manager = world.user("boss", role="manager", workspace=ws)
    wav = tone(tmp_path, "wav", seconds=1.0, rate=8000, channels=2)
    sha, size = world.ctx.media.put_file(wav)
    with world.db.begin("write") as tx:  # as an import stored audio before facts existed
        register_media(tx, [(sha, size, check_file(wav))], clock())
    url = world.ctx.media.sign(sha, manager["id"], clock() + 600, workspace=ws["id"])
    assert web(world).get(audio_url(url)).status_code == 404
    report = derive_missing_audio(world.db, world.ctx.media, now=clock())
    assert report.to_dict() == {"derived": 1, "failed": 0, "missing": 0}
    facts = web(world).get(audio_url(url)).json()
    assert (facts["duration"], facts["sample_rate"], facts["channels"]) == (1.0, 8000, 2)
    assert derive_missing_audio(world.db, world.ctx.media, now=clock()).derived == 0
