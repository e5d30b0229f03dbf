"""The annotate page in a real Chromium against a real server: keyboard-only labelling,
offline work through a reload and a browser restart, boxes, Tamil, page weight and caching."""

from __future__ import annotations

import json
import re
import sqlite3
import time
from pathlib import Path
from typing import Any

import pytest
from lf_browser import CHROMIUM, CHROMIUM_ARGS, Link, Server, go_offline, go_online, login, wait_js

from labelfarm.services.tasks.handles import TaskHandles

pytestmark = pytest.mark.slow


def stored(server: Server, username: str) -> list[dict[str, Any]]:
    db = server.world.settings.data_dir / "labelfarm.db"
    with sqlite3.connect(db) as con:
        con.row_factory = sqlite3.Row
        rows = con.execute(
            "SELECT a.* FROM annotations a JOIN users u ON u.id = a.user_id "
            "WHERE u.username = ? ORDER BY a.id",
            (username,),
        ).fetchall()
    return [dict(r) for r in rows]


def open_annotate(
    page: Any, server: Server, project: str, username: str = "annotator", base: str = ""
) -> None:
    pid = server.world.projects[project]
    login(page, base or server.url, username, f"/projects/{pid}/annotate")
    wait_js(page, "window.lfPage && lfPage.current() !== null")


def item_of(server: Server, project: str, username: str, handle: str) -> int:
    """The item id behind a task handle the page shows (the server knows, the page not)."""
    handles = TaskHandles(server.world.settings.secret_key.encode())
    return handles.decode(server.world.projects[project], server.world.users[username], handle)


def label(page: Any, key: str) -> str:
    """Press ``key`` then Enter; wait for the next task; return the labelled task's handle."""
    wait_js(page, "lfPage.shown()")  # a task is submitted only once its image is on screen
    wait_js(page, "lfPage.shown()")  # a task is submittable once its image is shown
    task = page.evaluate("lfPage.current()")
    page.keyboard.press(key)
    page.keyboard.press("Enter")
    wait_js(page, f"lfPage.current() !== {json.dumps(task)}", 15)
    return str(task)


def test_label_20_tasks_by_keyboard_then_skip_and_correct(server: Server, chromium: Any) -> None:
    context = chromium.new_context(viewport={"width": 1280, "height": 800})
    page = context.new_page()
    errors: list[str] = []
    page.on("pageerror", lambda e: errors.append(str(e)))
    open_annotate(page, server, "animals")
    options = ["cat", "dog", "bird"]
    done = [(label(page, str(1 + i % 3)), options[i % 3]) for i in range(20)]
    # skip with a reason: S, 2 (broken), Enter
    skipped = page.evaluate("lfPage.current()")
    page.keyboard.press("s")
    page.keyboard.press("2")
    page.keyboard.press("Enter")
    wait_js(page, f"lfPage.current() !== {json.dumps(skipped)}")
    # back to the previous task (the 20th), correct it to "cat"
    page.keyboard.press("b")
    wait_js(page, f"lfPage.current() === {json.dumps(done[-1][0])}")
    assert page.is_visible("#banner")
    page.keyboard.press("1")
    page.keyboard.press("Enter")
    # the outbox stores the correction asynchronously (IndexedDB), so an empty outbox right
    # after the key does not mean it was sent: wait for the server to have it
    deadline = time.monotonic() + 15
    while len(rows := stored(server, "annotator")) < 21 and time.monotonic() < deadline:
        time.sleep(0.05)
    wait_js(page, "lfPage.current() !== null && lfPage.pending() === 0", 15)
    assert len(rows) == 21
    first = rows[:20]
    items = [(item_of(server, "animals", "annotator", task), opt) for task, opt in done]
    assert [(r["item_id"], r["value"]) for r in first] == [
        (item, f'{{"kind":"{opt}"}}') for item, opt in items
    ]
    correction = rows[20]
    assert correction["item_id"] == items[-1][0]
    assert correction["value"] == '{"kind":"cat"}'
    assert correction["corrects_id"] == first[-1]["id"]
    with sqlite3.connect(server.world.settings.data_dir / "labelfarm.db") as con:
        state, reason = con.execute(
            "SELECT state, skip_reason FROM assignments WHERE item_id = ? AND user_id = ?",
            (item_of(server, "animals", "annotator", skipped), server.world.users["annotator"]),
        ).fetchone()
    assert (state, reason) == ("skipped", "broken")
    assert errors == []
    context.close()


def test_offline_labels_survive_reload_and_browser_restart(
    server: Server, tmp_path: Path, playwright: Any
) -> None:
    profile = tmp_path / "profile"
    pid = server.world.projects["animals"]
    link = Link(server)  # the browser's line to the server, which the test cuts
    p = playwright

    def launch(offline: bool = False) -> Any:
        return p.chromium.launch_persistent_context(
            str(profile),
            executable_path=CHROMIUM,
            args=CHROMIUM_ARGS,
            viewport={"width": 1280, "height": 800},
            offline=offline,  # from the first moment: a restored page must not sync
        )

    context = launch()
    page = context.pages[0] if context.pages else context.new_page()
    open_annotate(page, server, "animals", base=link.url)
    wait_js(page, "navigator.serviceWorker.controller")
    for i in range(20):
        label(page, str(1 + i % 3))
    wait_js(page, "lfPage.pending() === 0 && lfPage.readyAhead() >= 10")
    go_offline(context, link)
    wait_js(page, "document.getElementById('net').classList.contains('offline')")
    for i in range(10):
        label(page, str(1 + i % 2))
    # the outbox writes to IndexedDB asynchronously: wait until all ten are on disk
    wait_js(page, "lfPage.pending() === 10 && lfPage.unsaved() === 0")
    assert len(stored(server, "annotator")) == 20
    # reload while offline: the service worker serves the page, the outbox is still there
    page.reload()
    wait_js(page, "window.lfPage && lfPage.pending() === 10")
    assert "10" in page.inner_text("#pending")
    context.close()
    # a browser restart, still offline
    context = launch(offline=True)
    go_offline(context, link)
    page = context.pages[0] if context.pages else context.new_page()
    page.goto(f"{link.url}/projects/{pid}/annotate")
    wait_js(page, "window.lfPage && lfPage.pending() === 10")
    assert len(stored(server, "annotator")) == 20
    go_online(context, link)
    wait_js(page, "lfPage.pending() === 0", 20)
    context.close()
    link.close()
    rows = stored(server, "annotator")
    assert len(rows) == 30
    assert len({r["client_id"] for r in rows}) == 30
    assert len({r["item_id"] for r in rows}) == 30


def test_draw_move_resize_box(server: Server, chromium: Any) -> None:
    context = chromium.new_context(viewport={"width": 1280, "height": 800})
    page = context.new_page()
    open_annotate(page, server, "boxes")
    page.wait_for_selector("svg.overlay")
    frame = page.eval_on_selector(
        "svg.overlay", "s => { const r = s.getBoundingClientRect(); return [r.x, r.y, r.width] }"
    )
    x0, y0, width = frame
    k = width / 640  # screen px per image px

    def at(x: float, y: float) -> tuple[float, float]:
        return x0 + x * k, y0 + y * k

    def drag(a: tuple[float, float], b: tuple[float, float]) -> None:
        page.mouse.move(*a)
        page.mouse.down()
        page.mouse.move((a[0] + b[0]) / 2, (a[1] + b[1]) / 2, steps=3)
        page.mouse.move(*b, steps=3)
        page.mouse.up()

    drag(at(100, 80), at(300, 230))  # draw: x 100, y 80, w 200, h 150
    drag(at(200, 150), at(240, 180))  # move by (40, 30)
    drag(at(340, 260), at(360, 270))  # resize the bottom-right corner by (20, 10)
    page.keyboard.press("2")  # class: logo
    page.keyboard.press("ArrowRight")  # nudge one pixel right
    item = page.evaluate("lfPage.current()")
    page.keyboard.press("Enter")
    wait_js(page, f"lfPage.current() !== {json.dumps(item)} && lfPage.pending() === 0")
    (row,) = stored(server, "annotator")
    (box,) = json.loads(row["value"])["boxes"]
    assert box["label"] == "logo"
    for key, want in (("x", 141), ("y", 110), ("w", 220), ("h", 160)):
        assert abs(box[key] - want) <= 1.0 / k + 0.11, (key, box)
    context.close()


_LATIN = re.compile(r"[A-Za-z]{2,}")

_VISIBLE_TEXT = """() => {
  const lang = document.documentElement.lang;
  const out = [];
  const walk = (node) => {
    if (node.nodeType === Node.TEXT_NODE) { out.push(node.textContent); return; }
    if (node.nodeType !== Node.ELEMENT_NODE) return;
    if (node.lang && node.lang !== lang) return;            // marked as another language
    if (['SCRIPT', 'STYLE', 'TITLE'].includes(node.tagName)) return;
    const style = getComputedStyle(node);
    if (node.hidden || style.display === 'none' || style.visibility === 'hidden') return;
    if (node.tagName === 'DIALOG' && !node.open) return;
    for (const a of ['title', 'aria-label', 'placeholder', 'alt']) {
      if (node.getAttribute(a)) out.push(node.getAttribute(a));
    }
    if (node.tagName === 'INPUT' && ['button', 'submit'].includes(node.type)) out.push(node.value);
    node.childNodes.forEach(walk);
  };
  walk(document.body);
  out.push(document.title);
  return out.join(' ');
}"""


def test_tamil_interface_has_no_english_left(server: Server, chromium: Any) -> None:
    context = chromium.new_context(viewport={"width": 1280, "height": 800}, locale="en-US")
    page = context.new_page()
    open_annotate(page, server, "animals", username="anbu")  # anbu's locale is Tamil
    assert page.evaluate("document.documentElement.lang") == "ta"
    texts = [page.evaluate(_VISIBLE_TEXT)]
    for key in ("?", "g", "s"):
        page.keyboard.press(key)
        page.wait_for_selector("dialog[open]")
        texts.append(page.evaluate(_VISIBLE_TEXT))
        page.keyboard.press("Escape")
        page.wait_for_selector("dialog[open]", state="hidden")
    for _ in range(3):  # a task without a model's suggestion: Enter asks for a choice
        page.keyboard.press("Enter")
        if page.evaluate("!document.getElementById('message').hidden"):
            break
        time.sleep(0.2)
    assert page.evaluate("!document.getElementById('message').hidden")
    texts.append(page.evaluate(_VISIBLE_TEXT))
    english = sorted({w for text in texts for w in _LATIN.findall(text)})
    assert english == [], f"English left on the Tamil page: {english}"
    assert "பூனை" in texts[0]  # option names from the project's Tamil display names
    context.close()


def _network_bytes(page: Any, action: Any) -> tuple[int, list[dict[str, Any]]]:
    """Bytes that crossed the network during ``action`` (not media), and every response."""
    cdp = page.context.new_cdp_session(page)
    cdp.send("Network.enable")
    sizes: dict[str, int] = {}
    responses: dict[str, dict[str, Any]] = {}
    cdp.on(
        "Network.responseReceived",
        lambda e: responses.__setitem__(e["requestId"], {**e["response"], "cached": False}),
    )
    cdp.on(
        "Network.requestServedFromCache",
        lambda e: responses.setdefault(e["requestId"], {}).__setitem__("cached", True),
    )
    cdp.on(
        "Network.loadingFinished",
        lambda e: sizes.__setitem__(e["requestId"], int(e["encodedDataLength"])),
    )
    action()
    wait_js(page, "window.lfPage && lfPage.readyAhead() >= 3")
    time.sleep(0.5)
    total = 0
    for rid, size in sizes.items():
        r = responses.get(rid, {})
        if "/media/" in r.get("url", "") or r.get("url", "").startswith(("blob:", "data:")):
            continue
        if r.get("fromDiskCache") or r.get("fromServiceWorker") or r.get("cached"):
            continue
        total += size
    cdp.detach()
    return total, list(responses.values())


def test_first_load_is_light_and_reload_comes_from_cache(server: Server, chromium: Any) -> None:
    context = chromium.new_context(viewport={"width": 1280, "height": 800})
    page = context.new_page()
    pid = server.world.projects["texts"]
    login(page, server.url, "annotator", f"/w/{server.world.workspace_id}")
    url = f"{server.url}/projects/{pid}/annotate"
    first, _ = _network_bytes(page, lambda: page.goto(url))
    assert first <= 150 * 1024, f"first load {first / 1024:.1f} KB"
    again, responses = _network_bytes(page, lambda: page.reload())
    static = [r for r in responses if "/static/" in r.get("url", "")]
    assert static, "no static files requested on reload"
    for r in static:
        assert (
            r.get("fromDiskCache")
            or r.get("fromServiceWorker")
            or r.get("cached")
            or (r.get("status") == 304)
        ), r.get("url")
    assert again < 16 * 1024, f"reload moved {again / 1024:.1f} KB"
    context.close()
