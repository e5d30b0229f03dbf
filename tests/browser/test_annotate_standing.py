"""The annotate page tells the truth: nothing is labelled unseen (media not loaded, field
types without a browser tool), the annotator sees their standing and training answers,
shortcuts work on a Tamil layout, and the task counts agree."""

from __future__ import annotations

import json
import re
import sqlite3
import time
from pathlib import Path
from typing import Any

import pytest
from lf_browser import Server, login, wait_js

pytestmark = pytest.mark.slow

SHOTS = Path("/tmp/labelfarm-screenshots")


def sql(server: Server, query: str, *args: Any) -> list[tuple[Any, ...]]:
    with sqlite3.connect(server.world.settings.data_dir / "labelfarm.db") as con:
        return con.execute(query, args).fetchall()


def annotations_of(server: Server, username: str) -> int:
    ((n,),) = sql(
        server,
        "SELECT COUNT(*) FROM annotations a JOIN users u ON u.id = a.user_id WHERE u.username = ?",
        username,
    )
    return int(n)


def open_annotate(page: Any, server: Server, pid: int, username: str = "annotator") -> None:
    login(page, server.url, username, f"/projects/{pid}/annotate")
    wait_js(page, "window.lfPage && lfPage.current() !== null")


def current(page: Any) -> str:
    return json.dumps(page.evaluate("lfPage.current()"))


def new_project(
    server: Server, schema: dict[str, Any], rows: list[dict[str, Any]], **settings: Any
) -> int:
    api = server.api("manager")
    ws = server.world.workspace_id
    r = api.post(
        f"/api/v1/workspaces/{ws}/projects", json={"name": "p", "schema": schema, **settings}
    )
    assert r.status_code == 201, r.text
    pid = int(r.json()["id"])
    if rows:
        body = "".join(json.dumps(row) + "\n" for row in rows)
        r = api.post(f"/api/v1/projects/{pid}/imports?format=jsonl", content=body.encode())
        assert r.status_code == 201, r.text
    return pid


def page_of(chromium: Any, errors: list[str] | None = None) -> tuple[Any, Any]:
    context = chromium.new_context(viewport={"width": 1280, "height": 800})
    page = context.new_page()
    if errors is not None:
        page.on("pageerror", lambda e: errors.append(str(e)))
        page.on("console", lambda m: errors.append(m.text) if m.type == "error" else None)
    return context, page


# -- 1. media: shown after a reload, never labelled unseen -------------------------------------


def test_reload_shows_the_first_tasks_image(server: Server, chromium: Any) -> None:
    context, page = page_of(chromium)
    open_annotate(page, server, server.world.projects["animals"])
    wait_js(page, "document.querySelector('#item .stage img') && lfPage.readyAhead() >= 3")
    page.reload()
    wait_js(page, "window.lfPage && lfPage.current() !== null")
    wait_js(page, "document.querySelector('#item .stage img')", 10)
    assert page.query_selector("#item .stage .loading") is None
    context.close()


def test_a_task_cannot_be_submitted_before_its_image_is_shown(
    server: Server, chromium: Any
) -> None:
    context, page = page_of(chromium)
    held: list[Any] = []
    release = False

    def hold(route: Any) -> None:  # images do not arrive until released
        if release:
            route.continue_()
        else:
            held.append(route)

    context.route("**/media/**", hold)
    open_annotate(page, server, server.world.projects["animals"])
    page.keyboard.press("1")
    page.keyboard.press("Enter")
    wait_js(page, "!document.getElementById('message').hidden")
    assert "still loading" in page.inner_text("#message")
    first = current(page)
    time.sleep(0.5)
    assert current(page) == first
    assert page.evaluate("lfPage.pending()") == 0 and annotations_of(server, "annotator") == 0
    release = True
    for route in held:
        route.continue_()
    wait_js(page, "document.querySelector('#item .stage img')")
    page.keyboard.press("1")
    page.keyboard.press("Enter")
    wait_js(page, f"lfPage.current() !== {first} && lfPage.pending() === 0")
    assert annotations_of(server, "annotator") == 1
    context.close()


def test_a_task_whose_image_fails_cannot_be_submitted_but_can_be_skipped(
    server: Server, chromium: Any
) -> None:
    context, page = page_of(chromium)
    context.route("**/media/**", lambda route: route.abort("failed"))
    open_annotate(page, server, server.world.projects["animals"])
    wait_js(page, "document.querySelector('#item .stage .loading')")
    wait_js(page, "/could not be loaded/.test(document.getElementById('item').textContent)")
    page.keyboard.press("1")
    page.keyboard.press("Enter")
    wait_js(page, "!document.getElementById('message').hidden")
    assert "cannot be labelled without its image" in page.inner_text("#message")
    first = current(page)
    page.keyboard.press("s")
    page.keyboard.press("2")  # broken
    page.keyboard.press("Enter")
    wait_js(page, f"lfPage.current() !== {first} && lfPage.pending() === 0")
    assert annotations_of(server, "annotator") == 0
    assert sql(server, "SELECT skip_reason FROM assignments WHERE state = 'skipped'") == [
        ("broken",)
    ]
    context.close()


# -- 1 and 2. what the page cannot show: a clear notice, no tasks, nothing to submit -----------


@pytest.mark.parametrize(
    ("schema", "rows", "named"),
    [
        (
            {
                "fields": [
                    {"name": "kind", "type": "choice", "options": ["a", "b"]},
                    {"name": "regions", "type": "polygon", "labels": ["car"]},
                ]
            },
            [{"data": {"text": f"item {i}"}} for i in range(3)],
            ["regions", "polygon"],
        ),
    ],
    ids=["polygon"],  # audio has its player (tests/browser/test_transcriber.py)
)
def test_what_the_page_cannot_show_is_said_to_annotator_and_manager(
    server: Server,
    chromium: Any,
    schema: dict[str, Any],
    rows: list[dict[str, Any]],
    named: list[str],
) -> None:
    pid = new_project(server, schema, rows)
    errors: list[str] = []
    context, page = page_of(chromium, errors)
    login(page, server.url, "annotator", f"/projects/{pid}/annotate")
    page.wait_for_selector("#gaps", timeout=5000)
    notice = page.inner_text("#gaps")
    assert all(word in notice for word in named), notice
    assert "cannot be labelled here" in notice
    assert page.query_selector("#submit-btn") is None
    page.keyboard.press("1")
    page.keyboard.press("Enter")
    time.sleep(0.5)
    assert errors == []
    assert sql(server, "SELECT COUNT(*) FROM assignments WHERE project_id = ?", pid) == [(0,)]
    assert annotations_of(server, "annotator") == 0
    context.close()
    context, page = page_of(chromium)
    login(page, server.url, "manager", f"/projects/{pid}")
    for path in (f"/projects/{pid}", f"/projects/{pid}/settings", f"/projects/{pid}/import"):
        page.goto(server.url + path)
        warning = page.inner_text("#schema-gaps")
        assert "cannot label this project in the browser" in warning
        assert all(word in warning for word in named), warning
    context.close()


# -- 3. standing and training answers ------------------------------------------------------------


def test_a_paused_annotator_sees_the_state_and_its_reason(server: Server, chromium: Any) -> None:
    pid = server.world.projects["texts"]
    api = server.api("manager")
    r = api.patch(f"/api/v1/projects/{pid}", json={"accuracy_floor": 0.6})
    assert r.status_code == 200, r.text
    user_id = server.world.users["annotator"]
    reason = "Too many answers differ from the checked ones"
    r = api.put(
        f"/api/v1/projects/{pid}/annotators/{user_id}", json={"state": "paused", "reason": reason}
    )
    assert r.status_code == 200, r.text
    context, page = page_of(chromium)
    login(page, server.url, "annotator", f"/projects/{pid}/annotate")
    wait_js(page, "!document.getElementById('empty').hidden")
    empty = page.inner_text("#empty")
    assert "paused" in empty and reason in empty, empty
    assert "Every task you can take is done" not in empty
    assert page.evaluate("lfPage.current()") is None
    assert not page.is_visible("#fields")
    assert not page.is_visible("#submit-btn") and not page.is_visible("#checkout-btn")
    context.close()


def _wait_for_annotations(server: Server, pid: int, n: int, timeout: float = 15.0) -> None:
    deadline = time.monotonic() + timeout
    while sql(server, "SELECT COUNT(*) FROM annotations WHERE project_id = ?", pid)[0][0] < n:
        if time.monotonic() > deadline:
            raise AssertionError(f"the server never held {n} annotations")
        time.sleep(0.05)


def test_qualification_progress_and_the_training_answer_are_shown(
    server: Server, chromium: Any
) -> None:
    schema = {"fields": [{"name": "kind", "type": "choice", "options": ["cat", "dog"]}]}
    rows = [
        {"data": {"text": f"train {i}"}, "gold": {"kind": "dog"}, "gold_kind": "training"}
        for i in range(3)
    ]
    rows += [{"data": {"text": f"check {i}"}, "gold": {"kind": "dog"}} for i in range(6)]
    rows += [{"data": {"text": f"plain {i}"}} for i in range(6)]
    pid = new_project(server, schema, rows, qualification_n=4, training=True, gold_rate=0.2)
    context, page = page_of(chromium)
    open_annotate(page, server, pid)
    wait_js(page, "!document.getElementById('standing').hidden")
    standing = page.inner_text("#standing")
    assert re.search(r"^Qualification: 0 of \d+$", standing), standing
    for n in range(1, 5):  # answer "cat" where the answer is "dog"
        first = current(page)
        page.keyboard.press("1")
        page.keyboard.press("Enter")
        wait_js(page, f"lfPage.current() !== {first} || !document.getElementById('empty').hidden")
        # the answer comes back with the submission's result (the next key press hides it
        # again): wait until the server holds the annotation and the page has its answer
        _wait_for_annotations(server, pid, n)
        wait_js(page, "lfPage.pending() === 0")
        if page.is_visible("#feedback"):
            break
    feedback = page.inner_text("#feedback")
    assert "was not right" in feedback and "dog" in feedback, feedback
    context.close()


# -- 4. shortcuts on a Tamil layout, key caps ----------------------------------------------------

_PRESS = """([key, code, shift]) => (document.activeElement || document.body).dispatchEvent(
  new KeyboardEvent('keydown', {key, code, shiftKey: shift, bubbles: true, cancelable: true}))"""


def test_letter_shortcuts_work_on_a_tamil_layout(server: Server, chromium: Any) -> None:
    context, page = page_of(chromium)
    open_annotate(page, server, server.world.projects["animals"], username="anbu")
    # the keys where S, ? and G sit type Tamil letters on a Tamil layout
    for key, code, shift, dialog in (
        ("ே", "KeyS", False, "#skip-dialog"),
        ("ய", "Slash", True, "#keys-dialog"),
        ("ெ", "KeyG", False, "#guide-dialog"),
    ):
        page.evaluate(_PRESS, [key, code, shift])
        page.wait_for_selector(f"{dialog}[open]", timeout=3000)
        page.keyboard.press("Escape")
        page.wait_for_selector("dialog[open]", state="hidden")
    # and a Tamil digit key picks the option in the skip dialog
    page.evaluate(_PRESS, ["ே", "KeyS", False])
    page.wait_for_selector("#skip-dialog[open]")
    page.evaluate(_PRESS, ["௩", "Digit3", False])
    assert page.evaluate("document.querySelector('#skip-dialog input[value=guidelines]').checked")
    context.close()


def test_keys_show_as_caps_not_words_that_read_like_sign_out(server: Server, chromium: Any) -> None:
    context, page = page_of(chromium)
    open_annotate(page, server, server.world.projects["animals"], username="anbu")
    sign_out = page.inner_text("form[action='/logout'] button").strip()
    body = page.evaluate("document.body.textContent")
    assert body.count(sign_out) == 1, f"{sign_out!r} appears {body.count(sign_out)} times"
    caps = page.eval_on_selector_all("kbd.cap", "ks => [...new Set(ks.map((k) => k.textContent))]")
    assert {"Enter", "Esc"} <= set(caps)
    context.close()


# -- 5. one count of tasks on the device; personal progress from the server ------------------------


def _number(text: str) -> int:
    digits = re.findall(r"\d+", text)
    assert len(digits) == 1, text
    return int(digits[0])


def test_checkout_counts_agree_and_progress_survives_a_reload(
    server: Server, chromium: Any
) -> None:
    context, page = page_of(chromium)
    pid = server.world.projects["animals"]
    open_annotate(page, server, pid)
    for _ in range(2):
        first = current(page)
        wait_js(page, "document.querySelector('#item .stage img')")
        page.keyboard.press("1")
        page.keyboard.press("Enter")
        wait_js(page, f"lfPage.current() !== {first}")
    wait_js(page, "lfPage.pending() === 0")
    page.keyboard.press("o")
    wait_js(
        page, "/ready to label offline/.test(document.getElementById('banner').textContent)", 30
    )
    on_banner = _number(page.inner_text("#banner"))
    in_footer = _number(page.inner_text("#count"))
    ((leased,),) = sql(
        server,
        "SELECT COUNT(*) FROM assignments "
        "WHERE user_id = ? AND project_id = ? AND state = 'leased'",
        server.world.users["annotator"],
        pid,
    )
    assert on_banner == in_footer == leased == 38  # 40 items, 2 labelled
    assert "up to" in page.inner_text("#checkout-btn")  # the button asks, the banner counts
    page.reload()
    wait_js(page, "window.lfPage && /\\d/.test(document.getElementById('progress').textContent)")
    assert page.inner_text("#progress") == "Today: 2 · in this project: 2"
    first = current(page)
    wait_js(page, "document.querySelector('#item .stage img')")
    page.keyboard.press("1")
    page.keyboard.press("Enter")
    wait_js(page, f"lfPage.current() !== {first}")
    assert page.inner_text("#progress") == "Today: 3 · in this project: 3"
    context.close()


def test_screenshot_in_tamil(server: Server, chromium: Any) -> None:
    """A picture of the page in Tamil, with the shortcuts open, to look at."""
    context, page = page_of(chromium)
    open_annotate(page, server, server.world.projects["animals"], username="anbu")
    wait_js(page, "document.querySelector('#item .stage img')")
    wait_js(page, "/\\d/.test(document.getElementById('progress').textContent)")
    SHOTS.mkdir(exist_ok=True)
    page.screenshot(path=str(SHOTS / "annotate-ta.png"))
    page.keyboard.press("?")
    page.wait_for_selector("#keys-dialog[open]")
    page.screenshot(path=str(SHOTS / "annotate-ta-keys.png"))
    assert (SHOTS / "annotate-ta.png").stat().st_size > 10_000
    context.close()
