"""Browser tests: a real ``labelfarm serve`` on a free loopback port, a real Chromium.

Every test here is marked ``browser``; they are skipped when /usr/bin/chromium is missing.
"""

from __future__ import annotations

import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parent))

from lf_browser import CHROMIUM, CHROMIUM_ARGS, Server
from lf_world import build_world


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    here = Path(__file__).resolve().parent
    for item in items:
        if Path(str(item.fspath)).resolve().parent == here:
            item.add_marker(pytest.mark.browser)
            if not Path(CHROMIUM).exists():
                item.add_marker(pytest.mark.skip(reason=f"no Chromium at {CHROMIUM}"))


@pytest.fixture
def server(tmp_path: Path) -> Iterator[Server]:
    data_dir = tmp_path / "data"
    world = build_world(data_dir)
    srv = Server(world, data_dir)
    yield srv
    srv.stop()


@pytest.fixture(scope="session")
def playwright() -> Iterator[object]:
    from playwright.sync_api import sync_playwright

    with sync_playwright() as p:
        yield p


@pytest.fixture(scope="session")
def chromium(playwright: object) -> Iterator[object]:
    browser = playwright.chromium.launch(  # type: ignore[attr-defined]
        executable_path=CHROMIUM, args=CHROMIUM_ARGS
    )
    yield browser
    browser.close()


@pytest.fixture
def page(chromium: object) -> Iterator[object]:
    """A page of its own context (cookies, storage), closed after the test."""
    context = chromium.new_context(viewport={"width": 1280, "height": 900})  # type: ignore[attr-defined]
    yield context.new_page()
    context.close()
