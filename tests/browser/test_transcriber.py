"""The transcriber page in a real Chromium against a real server: a LibriVox speech clip
(Debian's pocketsphinx-testdata) transcribed by keyboard only (two segments, Tamil text, a
speaker and a dialect each, one split), stored with the times the page showed; the same
through a dropped connection and a reload, from the audio kept on the device. Each clip
comes pre-filled with one speech-recognition segment, marked as such until its text is
edited. A long file draws from coarse peaks and byte ranges; a call shows two lanes."""

from __future__ import annotations

import json
import re
import shutil
import sqlite3
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from urllib.parse import urlparse

import numpy as np
import orjson
import pytest
from lf_browser import Link, Server, go_offline, go_online, login, wait_js
from lf_world import World, build_world

from labelfarm.db.engine import Database
from labelfarm.services import audit, projects
from labelfarm.services.imports import import_items
from labelfarm.services.media import MediaStore

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "audio"))
from clips import speech_clips, tone

pytestmark = pytest.mark.slow

SPEAKERS = ["A", "B"]
LANGUAGES = ["ta-IN", "ta-IN-madurai", "hi-IN", "en-IN"]
LONG_MINUTES = 10  # its finest peaks (120 KB) come by byte ranges
MIN_SECONDS = 6.0  # the keys below place segments up to 5 s into the clip, the ASR's after
ASR_WORDS = [
    {"start": 5.2, "end": 5.5, "word": "the", "p": 0.9},
    {"start": 5.5, "end": 6.0, "word": "end", "p": 0.8},
]
ASR = {
    "start": 5.2,
    "end": 6.0,
    "text": "the end",
    "speaker": None,
    "language": ["en-IN"],
    "events": [],
    "channel": 0,
    "asr": True,
    "words": ASR_WORDS,
}


def add_speech_project(
    world: World, data_dir: Path, clips: list[Path], name: str = "Speech"
) -> int:
    """An audio project with a segments field, the clips imported (each derived: facts,
    peaks, the Opus copy); two annotators may transcribe each clip."""
    settings = world.settings
    db = Database(settings.resolved_database_url)
    audit.use_key(db, settings.resolved_audit_key)
    with db.begin("write") as conn:
        row = projects.create_project(
            conn,
            workspace_id=world.workspace_id,
            name=name,
            now=time.time(),
            actor_id=None,
            overlap=2,
            schema={
                "data": {"audio": "audio"},
                "fields": [
                    {
                        "name": "transcript",
                        "type": "segments",
                        "speakers": SPEAKERS,
                        "languages": LANGUAGES,
                    }
                ],
            },
        )
    with db.begin("read") as conn:
        project = projects.load_project(conn, row["id"])
    folder = data_dir / f"audio-{row['id']}"
    folder.mkdir()
    lines = []
    for clip in clips:
        shutil.copy(clip, folder / clip.name)
        prediction = {"model": "toy-asr", "value": {"transcript": [ASR]}, "score": 0.85}
        lines.append(
            orjson.dumps(
                {"data": {"audio": clip.name}, "media": clip.name, "prediction": prediction}
            )
        )
    listing = folder / "speech.jsonl"
    listing.write_bytes(b"\n".join(lines) + b"\n")
    media = MediaStore(settings.resolved_media_root, settings.resolved_secret_key)
    import_items(
        db, project, listing, "jsonl", media=media, now=time.time(), user_id=None, base_dir=folder
    )
    db.engine.dispose()
    return int(row["id"])


def long_recording(folder: Path, minutes: float) -> Path:
    """A tone loud and soft by turns, written a minute at a time."""
    import soundfile as sf

    rate = 16_000
    path = folder / "long.wav"
    with sf.SoundFile(path, "w", rate, 1, "PCM_16") as out:
        for m in range(int(minutes)):
            t = m * 60 + np.arange(60 * rate) / rate
            level = 0.2 + 0.3 * (1 + np.sin(2 * np.pi * t / 7.0))
            out.write((level * np.sin(2 * np.pi * 220 * t)).astype(np.float32))
    return path


@pytest.fixture(scope="module")
def speech_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    import soundfile as sf

    clips = [p for p, _ in speech_clips() if sf.info(str(p)).duration >= MIN_SECONDS]
    if len(clips) < 2:
        pytest.skip("pocketsphinx-testdata (LibriVox clips) is not installed")
    data_dir = tmp_path_factory.mktemp("speech") / "data"
    world = build_world(data_dir, n_images=1, n_choice=1)
    world.projects["speech"] = add_speech_project(world, data_dir, clips[:3])
    long = long_recording(data_dir.parent, LONG_MINUTES)
    world.projects["long"] = add_speech_project(world, data_dir, [long], name="Long")
    call = tone(data_dir.parent, "flac", seconds=8.0, rate=44_100, channels=2, name="call.flac")
    world.projects["call"] = add_speech_project(world, data_dir, [call], name="Calls")
    srv = Server(world, data_dir)
    yield srv
    srv.stop()


def stored(server: Server, username: str) -> list[dict[str, Any]]:
    with sqlite3.connect(server.world.settings.data_dir / "labelfarm.db") as con:
        rows = con.execute(
            "SELECT a.value FROM annotations a JOIN users u ON u.id = a.user_id "
            "WHERE u.username = ? ORDER BY a.id",
            (username,),
        ).fetchall()
    return [json.loads(r[0])["transcript"] for r in rows]


def open_page(page: Any, server: Server, username: str, base: str = "") -> None:
    login(
        page, base or server.url, username, f"/projects/{server.world.projects['speech']}/annotate"
    )
    wait_js(page, "window.lfPage && lfPage.current() !== null")
    wait_js(page, "lfPage.shown() && document.querySelector('.wave canvas')", 30)


def keys(page: Any, *names: str) -> None:
    for name in names:
        page.keyboard.press(name)


def shown_segments(page: Any) -> list[dict[str, Any]]:
    """The segments as the page shows them: times from each row, its text box, speaker."""
    return page.evaluate(
        """() => [...document.querySelectorAll('.segments .seg')].map((li) => ({
          start: Number(li.querySelector('.seg-time').dataset.start),
          end: Number(li.querySelector('.seg-time').dataset.end),
          text: li.querySelector('textarea').value,
          speaker: li.querySelector('.seg-speaker').textContent,
          channel: Number(li.dataset.channel),
          asr: !li.querySelector('.badge.asr').hidden }))"""
    )


def transcribe(page: Any) -> None:
    """Keyboard only: two segments with Tamil text, a speaker and a dialect each; the first
    split at the caret between its two words, at 4 s."""
    keys(page, "Alt+KeyL", "Alt+KeyN")  # playhead 2 s: a segment 2-5 s, its text box open
    page.keyboard.insert_text("வணக்கம் நண்பர்களே")
    keys(page, "Alt+Digit1", "Alt+Shift+Digit2")  # speaker A, dialect ta-IN-madurai
    keys(page, "Alt+KeyJ", "Alt+KeyN")  # playhead 0 s: a segment 0-2 s (up to the next one)
    page.keyboard.insert_text("ஆமாம்")
    keys(page, "Alt+Digit2", "Alt+Shift+Digit1")  # speaker B, ta-IN
    keys(page, "Alt+ArrowDown")  # the 2-5 s segment; playhead to its start, caret at the end
    keys(page, "Alt+KeyL", "Control+ArrowLeft", "Alt+KeyS")  # split at 4 s, at the caret


TYPED = [
    {"start": 0.0, "end": 2.0, "text": "ஆமாம்", "speaker": "B", "language": ["ta-IN"]},
    {"start": 2.0, "end": 4.0, "text": "வணக்கம்", "speaker": "A", "language": ["ta-IN-madurai"]},
    {"start": 4.0, "end": 5.0, "text": "நண்பர்களே", "speaker": "A", "language": ["ta-IN-madurai"]},
]


def check(
    value: list[dict[str, Any]], shown: list[dict[str, Any]], want: list[dict[str, Any]]
) -> None:
    """The stored value has the segments the page showed (times to 1 ms) and wanted."""
    assert len(value) == len(shown) == len(want)
    for got, seen, w in zip(value, shown, want, strict=True):
        assert abs(got["start"] - seen["start"]) <= 0.001 and abs(got["end"] - seen["end"]) <= 0.001
        assert abs(got["start"] - w["start"]) <= 0.001 and abs(got["end"] - w["end"]) <= 0.001
        assert got["text"] == seen["text"] == w["text"]
        assert (got["speaker"], got["language"]) == (w["speaker"], w["language"])
        assert got["events"] == [] and got["channel"] == 0
        assert got.get("asr", False) == seen["asr"] == w.get("asr", False)
        assert got.get("words") == w.get("words")


def submit(page: Any) -> str:
    task = page.evaluate("lfPage.current()")
    keys(page, "Escape", "Enter")  # out of the text box; Enter submits
    wait_js(page, f"lfPage.current() !== {json.dumps(task)}", 15)
    return str(task)


def test_transcribe_a_clip_by_keyboard(speech_server: Server, chromium: Any) -> None:
    context = chromium.new_context(viewport={"width": 1280, "height": 900})
    page = context.new_page()
    errors: list[str] = []
    page.on("pageerror", lambda e: errors.append(str(e)))
    open_page(page, speech_server, "annotator")
    assert [s["asr"] for s in shown_segments(page)] == [True]  # the ASR's segment, marked
    transcribe(page)
    shown = shown_segments(page)
    assert [s["speaker"] for s in shown] == ["B", "A", "A", "no speaker"]
    # Ctrl Z undoes the split, Ctrl Y brings it back
    keys(page, "Control+KeyZ")
    assert len(shown_segments(page)) == 3
    keys(page, "Control+KeyY")
    assert shown_segments(page) == shown
    # a reload brings the work back from the draft kept on the device
    time.sleep(1.5)
    page.reload()
    wait_js(
        page, "window.lfPage && lfPage.shown() && document.querySelectorAll('.seg').length === 4"
    )
    assert shown_segments(page) == shown
    # the ASR's segment edited: no longer marked, its word timings dropped
    keys(page, "Alt+ArrowDown", "Alt+ArrowDown", "Alt+ArrowDown")
    page.keyboard.insert_text(" சரி")
    shown = shown_segments(page)
    assert shown[3]["text"] == "the end சரி" and not shown[3]["asr"]
    submit(page)
    wait_js(page, "lfPage.pending() === 0", 15)
    (value,) = stored(speech_server, "annotator")
    edited = {**ASR, "text": "the end சரி", "asr": False, "words": None}
    check(value, shown, [*TYPED, edited])
    assert errors == []
    context.close()


def test_transcribe_through_a_dropped_connection(speech_server: Server, chromium: Any) -> None:
    context = chromium.new_context(viewport={"width": 1280, "height": 900})
    page = context.new_page()
    errors: list[str] = []
    page.on("pageerror", lambda e: errors.append(str(e)))
    link = Link(speech_server)  # the browser's line to the server, which the test cuts
    open_page(page, speech_server, "anbu", base=link.url)
    wait_js(page, "lfPage.readyAhead() >= 1", 30)  # the next clip's audio kept on the device
    wait_js(page, "navigator.serviceWorker.controller", 30)  # the page itself, for a reload
    go_offline(context, link)
    wait_js(page, "document.getElementById('net').classList.contains('offline')")
    shown = []
    for i in range(2):  # the clip on screen; then, after a reload, the next one from the store
        if i:
            page.reload()
            wait_js(page, "window.lfPage && lfPage.pending() === 1")
        wait_js(page, "lfPage.shown() && document.querySelector('.wave canvas')", 15)
        transcribe(page)
        shown.append(shown_segments(page))
        submit(page)
    wait_js(page, "lfPage.pending() === 2 && lfPage.unsaved() === 0")
    assert stored(speech_server, "anbu") == []
    go_online(context, link)
    wait_js(page, "lfPage.pending() === 0", 20)
    values = stored(speech_server, "anbu")
    assert len(values) == 2
    for value, seen in zip(values, shown, strict=True):
        check(value, seen, [*TYPED, ASR])  # the ASR's segment left as it was
    assert errors == []
    context.close()
    link.close()


def test_a_long_recording_draws_from_peaks_and_ranges_and_streams(
    speech_server: Server, chromium: Any
) -> None:
    context = chromium.new_context(viewport={"width": 1280, "height": 900})
    page = context.new_page()
    seen: list[tuple[str, str | None, int]] = []
    page.on(
        "response",
        lambda r: seen.append((urlparse(r.url).path, r.request.headers.get("range"), r.status)),
    )
    login(
        page,
        speech_server.url,
        "annotator",
        f"/projects/{speech_server.world.projects['long']}/annotate",
    )
    wait_js(page, "window.lfPage && lfPage.shown() && document.querySelector('.wave canvas')", 30)
    media = [p for p, _, _ in seen if p.startswith("/media/")]
    # the original file is never fetched: its facts, a coarse peaks level and the Opus copy
    assert media and all("/audio" in p for p in media), media
    assert not [p for p in media if p.endswith("/audio/peaks/0")]
    for _ in range(7):  # ten minutes to under five seconds: the finest level, a range of it
        page.keyboard.press("Alt+KeyI")
    deadline = time.monotonic() + 15
    while not (ranged := [x for x in seen if x[0].endswith("/audio/peaks/0")]):
        state = page.evaluate(
            "[document.activeElement.tagName, document.querySelector('.audio-time').textContent]"
        )
        assert time.monotonic() < deadline, f"no finest peaks fetched: {seen} {state}"
        time.sleep(0.05)
    for _, header, status in ranged:
        assert header is not None and status == 206
        first, last = (int(v) for v in header.removeprefix("bytes=").split("-"))
        assert last - first + 1 <= 8192  # one chunk of 4096 buckets, not the 120 KB level
    # it plays the Opus copy: streamed, or kept on the device once downloaded
    playing = "[...document.querySelectorAll('audio')].map((a) => a.src).join(' ')"
    assert re.search(r"/audio/stream\?|blob:", page.evaluate(playing))
    context.close()


CENTRE = (
    "e => { const r = e.getBoundingClientRect(); return [r.x + r.width / 2, r.y + r.height / 2] }"
)


def test_two_channels_in_two_lanes_and_a_border_dragged(
    speech_server: Server, chromium: Any
) -> None:
    context = chromium.new_context(viewport={"width": 1280, "height": 900})
    page = context.new_page()
    errors: list[str] = []
    page.on("pageerror", lambda e: errors.append(str(e)))
    pid = speech_server.world.projects["call"]
    login(page, speech_server.url, "annotator", f"/projects/{pid}/annotate")
    wait_js(page, "window.lfPage && lfPage.shown() && document.querySelector('.wave canvas')", 30)
    x, y, width, height = page.eval_on_selector(
        ".wave",
        "w => { const r = w.getBoundingClientRect(); return [r.x, r.y, r.width, r.height] }",
    )

    def at(seconds: float) -> float:  # where a time is on the screen
        return float(x + width * seconds / 8.0)

    page.mouse.click(at(1.0), y + height * 0.75)  # the second lane, at 1 s
    keys(page, "Alt+KeyN")  # a segment there: channel 2, 1-4 s (the ASR's is on channel 1)
    page.keyboard.insert_text("நன்றி")
    edge = page.eval_on_selector(".region.current .edge.end", CENTRE)
    assert abs(edge[0] - at(4.0)) <= 2 and edge[1] > y + height / 2
    page.mouse.move(*edge)
    page.mouse.down()
    page.mouse.move(at(5.0), edge[1], steps=3)
    page.mouse.move(at(6.5), edge[1], steps=3)
    page.mouse.up()
    shown = shown_segments(page)
    assert [s["channel"] for s in shown] == [1, 0]
    px = 8.0 / width  # seconds a pixel
    assert abs(shown[0]["start"] - 1.0) <= 2 * px and abs(shown[0]["end"] - 6.5) <= 2 * px
    submit(page)
    wait_js(page, "lfPage.pending() === 0", 15)
    value = stored(speech_server, "annotator")[-1]
    typed = next(v for v in value if v["channel"] == 1)
    assert typed["text"] == "நன்றி"
    assert abs(typed["start"] - shown[0]["start"]) <= 0.001
    assert abs(typed["end"] - shown[0]["end"]) <= 0.001
    assert [v["channel"] for v in value] == [0, 1]  # sorted by channel, the ASR's kept
    assert errors == []
    context.close()
