"""Manager and reviewer pages in a real Chromium against a real server: the reviewer's
override form on a project with a field named ``note``, the import page's error table, the
quality settings on the settings page, and the schema editor's error line."""

from __future__ import annotations

import time
from collections.abc import Iterator
from typing import Any

import pytest
from lf_browser import Server, login
from lf_world import build_world

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def site(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    data_dir = tmp_path_factory.mktemp("manager-pages") / "data"
    srv = Server(build_world(data_dir, n_images=2, n_choice=4), data_dir)
    yield srv
    srv.stop()


def until(check: Any, timeout: float = 15.0) -> Any:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        found = check()
        if found:
            return found
        time.sleep(0.05)
    raise AssertionError("timed out")


def test_the_override_form_keeps_the_review_note_beside_a_field_named_note(
    site: Server, page: Any
) -> None:
    pid = site.world.projects["texts"]
    api = site.api("reviewer")
    item = api.get(f"/api/v1/projects/{pid}/items").json()["items"][0]["id"]
    login(page, site.url, "reviewer", f"/projects/{pid}/review?item={item}")
    page.wait_for_selector("#item-panel h2")
    page.keyboard.press("o")
    form = page.locator("#override form")
    form.locator("select").first.select_option("spam")
    areas = form.locator("textarea")  # stars (JSON), then note (a text field: plain text)
    areas.nth(1).fill("checked by hand")
    form.locator("label:has-text('Note') input").fill("looked twice")  # the review's note
    form.locator("button[type=submit]").click()

    def decided() -> Any:
        reviews = api.get(f"/api/v1/projects/{pid}/review/{item}").json()["reviews"]
        return reviews[-1] if reviews else None

    review = until(decided)
    assert review["note"] == "looked twice"
    assert review["value"] == {"verdict": "spam", "flags": [], "note": "checked by hand"}


def test_the_import_page_shows_where_each_problem_is(site: Server, page: Any) -> None:
    pid = site.world.projects["texts"]
    login(page, site.url, "manager", f"/projects/{pid}/import")
    bad = b'{"data": {"text": "fine"}}\n{"data": {"text": 7\n'
    page.set_input_files(
        "input[name=file]", files=[{"name": "bad.jsonl", "mimeType": "text/plain", "buffer": bad}]
    )
    page.click("#import-form button[type=submit]")
    page.wait_for_selector(".errors-table:not([hidden]) tbody tr")
    first = page.locator(".errors-table tbody tr").first.locator("td").first.inner_text()
    assert "line 2" in first


def test_quality_settings_are_saved_from_the_settings_page(site: Server, page: Any) -> None:
    pid = site.world.projects["animals"]
    login(page, site.url, "manager", f"/projects/{pid}/settings")
    page.fill("input[name=gold_rate]", "0.2")
    page.fill("input[name=qualification_n]", "3")
    page.fill("input[name=qualification_pass]", "0.75")
    page.check("input[name=training]")
    page.fill("input[name=accuracy_floor]", "0.6")
    page.fill("input[name=max_overlap]", "3")
    page.fill("input[name=target_confidence]", "0.95")
    page.click("#project-form button[type=submit]")
    page.wait_for_selector("#project-form .status:has-text('Saved')")
    project = site.api("manager").get(f"/api/v1/projects/{pid}").json()
    assert {k: project[k] for k in ("gold_rate", "qualification_n", "qualification_pass")} == {
        "gold_rate": 0.2,
        "qualification_n": 3,
        "qualification_pass": 0.75,
    }
    assert project["training"] is True and project["accuracy_floor"] == 0.6
    assert (project["max_overlap"], project["target_confidence"]) == (3, 0.95)

    # what only the API can check (settings that must fit together) comes back on the input
    page.fill("input[name=overlap]", "4")
    page.click("#project-form button[type=submit]")
    page.wait_for_selector("input[name=max_overlap][aria-invalid=true]")
    assert "at least the overlap" in page.inner_text("#project-form .errors")
    assert site.api("manager").get(f"/api/v1/projects/{pid}").json()["overlap"] == 1


def test_the_schema_editor_marks_the_line_of_an_unknown_field_type(site: Server, page: Any) -> None:
    pid = site.world.projects["boxes"]
    login(page, site.url, "manager", f"/projects/{pid}/settings")
    schema = (
        "data:\n"
        "  image: image\n"
        "fields:\n"
        "  - name: boxes\n"
        "    type: bbox\n"
        "    labels: [product, logo]\n"
        "  - name: shade\n"
        "    type: colour\n"
    )
    page.fill("#schema", schema)
    page.click("#project-form button[type=submit]")
    page.wait_for_selector(".gutter .bad")
    marked = page.locator(".gutter .bad").all_inner_texts()
    assert [m.strip() for m in marked] == ["8"]
    assert "Line 8" in page.inner_text("#project-form .errors")


def test_the_browser_modules_parse(site: Server, page: Any) -> None:
    """The page modules load without a console error on the pages they drive."""
    errors: list[str] = []
    page.on("console", lambda m: errors.append(m.text) if m.type == "error" else None)
    login(page, site.url, "manager", f"/projects/{site.world.projects['texts']}/settings")
    page.goto(f"{site.url}/projects/{site.world.projects['texts']}/import")
    page.goto(f"{site.url}/projects/{site.world.projects['texts']}/review")
    page.wait_for_load_state("networkidle")
    assert errors == []
