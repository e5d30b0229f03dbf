"""Make the screenshots in docs/screenshots/: ``python tests/browser/screenshots.py``.

A fresh world on a temporary server; the annotate page with boxes on a photo, the text task
with a right-to-left review, and the project's progress page after some work.
"""

from __future__ import annotations

import json
import sys
import tempfile
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path[:0] = [str(HERE), str(HERE.parent / "pages")]

from lf_browser import CHROMIUM, CHROMIUM_ARGS, Server, login  # noqa: E402
from lf_world import build_world  # noqa: E402


def settle(page, expr: str) -> None:  # type: ignore[no-untyped-def]
    for _ in range(300):
        if page.evaluate(f"() => Boolean({expr})"):
            return
        time.sleep(0.05)
    raise TimeoutError(expr)


def main(out: Path) -> None:
    from playwright.sync_api import sync_playwright

    out.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory() as tmp:
        world = build_world(Path(tmp) / "data", n_images=8, n_choice=40, image_size=(960, 640))
        server = Server(world, Path(tmp) / "data")
        try:
            with sync_playwright() as p:
                browser = p.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
                page = browser.new_page(viewport={"width": 1280, "height": 760})
                pid = world.projects["boxes"]
                login(page, server.url, "annotator", f"/projects/{pid}/annotate")
                page.wait_for_selector("svg.overlay")
                x0, y0, w = page.eval_on_selector(
                    "svg.overlay",
                    "s => { const r = s.getBoundingClientRect(); return [r.x, r.y, r.width] }",
                )
                k = w / 960
                for (a, b, c, d), cls in (
                    ((40, 60, 250, 220), "1"),
                    ((330, 200, 520, 330), "2"),
                    ((600, 380, 820, 560), "1"),
                ):
                    page.keyboard.press("Escape")  # deselect: the digit sets the next box's class
                    page.keyboard.press(cls)
                    page.mouse.move(x0 + a * k, y0 + b * k)
                    page.mouse.down()
                    page.mouse.move(x0 + c * k, y0 + d * k, steps=4)
                    page.mouse.up()
                page.screenshot(path=str(out / "annotate-boxes.png"))
                # a text task, in Tamil, with a right-to-left review on screen
                texts = world.projects["texts"]
                page.goto(f"{server.url}/projects/{texts}/annotate?lang=ta")
                settle(page, "window.lfPage && lfPage.current() !== null")
                for _ in range(4):
                    item = page.evaluate("lfPage.current()")
                    page.keyboard.press("1")
                    page.keyboard.press("Enter")
                    settle(page, f"lfPage.current() !== {json.dumps(item)}")
                page.keyboard.press("2")
                page.keyboard.press("f")
                page.keyboard.press("1")
                page.screenshot(path=str(out / "annotate-text.png"))
                page.goto(f"{server.url}/projects/{texts}/annotate?lang=en")
                # some work on the animals project, then its progress page as the manager
                animals = world.projects["animals"]
                page.goto(f"{server.url}/projects/{animals}/annotate")
                settle(page, "window.lfPage && lfPage.current() !== null")
                for i in range(14):
                    item = page.evaluate("lfPage.current()")
                    page.keyboard.press(str(1 + i % 3))
                    page.keyboard.press("Enter")
                    settle(page, f"lfPage.current() !== {json.dumps(item)}")
                settle(page, "lfPage.pending() === 0")
                manager = browser.new_page(viewport={"width": 1100, "height": 820})
                login(manager, server.url, "manager", f"/projects/{animals}")
                manager.screenshot(path=str(out / "project-progress.png"), full_page=True)
                browser.close()
        finally:
            server.stop()


if __name__ == "__main__":
    main(Path(sys.argv[1]) if len(sys.argv) > 1 else Path("docs/screenshots"))
