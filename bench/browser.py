"""Browser benchmark: submit key → next task fully drawn, in Chromium, over tasks with photos.

Starts ``labelfarm serve`` on a free 127.0.0.1 port with a fresh SQLite data folder, imports
photo tasks (large JPEGs, a few megabytes each: the server sends them resized for the screen),
signs an annotator in through the login page and labels by keyboard (a digit, then Enter):

* ``loopback``: the server on loopback, no throttling;
* ``slow``: CDP ``Network.emulateNetworkConditions`` at 400 kbit/s and 300 ms latency. The
  annotator presses the key once the next task is prefetched ("the prefetch is warm"), as a
  person who spends a few seconds per photo does.

The time of one task is measured in the page: from the keydown event's timestamp to the
first frame after the next task (its decoded image included) is in the DOM.
Also measured: the annotate page's first load without media (KB over the network), and an
offline drill (label offline, reload offline, reconnect) counting labels lost.

    python bench/browser.py --quick
    python bench/browser.py --json bench/results/browser.json
"""

from __future__ import annotations

import os
import sys

# ``python bench/browser.py`` puts bench/ first on sys.path, where bench/queue.py would shadow
# the standard library's ``queue``; move bench/ behind it (``_common`` is still found).
_HERE = os.path.dirname(os.path.abspath(__file__))
if sys.path and os.path.abspath(sys.path[0] or ".") == _HERE:
    sys.path.append(sys.path.pop(0))

import io  # noqa: E402
import socket  # noqa: E402
import sqlite3  # noqa: E402
import subprocess  # noqa: E402
import tempfile  # noqa: E402
import time  # noqa: E402
from pathlib import Path  # noqa: E402
from typing import Any  # noqa: E402

import httpx  # noqa: E402
import numpy as np  # noqa: E402
import orjson  # noqa: E402
from PIL import Image, ImageDraw, ImageFilter  # noqa: E402

from _common import machine_info, make_parser, percentile, print_report, write_json  # noqa: E402

BENCH = "browser"
CHROMIUM = "/usr/bin/chromium"
ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]
PASSWORD = "bench password 1"
SLOW = {"offline": False, "latency": 300, "downloadThroughput": 50_000, "uploadThroughput": 50_000}


def photo(seed: int, size: tuple[int, int]) -> bytes:
    """A photo-like JPEG: soft gradients, shapes, grain; a few MB at 3000×2000."""
    rng = np.random.default_rng(seed)
    w, h = size
    yy, xx = np.mgrid[0:h, 0:w].astype(np.float32)
    base = np.stack(
        [
            120 + 80 * np.sin(xx / (w / 3) + seed),
            110 + 70 * np.cos(yy / (h / 2.5)),
            130 + 60 * np.sin((xx + yy) / (w / 2)),
        ],
        axis=-1,
    )
    image = Image.fromarray(base.clip(0, 255).astype(np.uint8))
    draw = ImageDraw.Draw(image)
    for _ in range(25):
        x, y = int(rng.integers(0, w - 300)), int(rng.integers(0, h - 300))
        color = tuple(int(c) for c in rng.integers(0, 255, 3))
        draw.ellipse(
            [x, y, x + int(rng.integers(80, 600)), y + int(rng.integers(80, 600))], fill=color
        )
    image = image.filter(ImageFilter.GaussianBlur(2))
    grain = rng.normal(0, 9, (h, w, 3))
    image = Image.fromarray(
        (np.asarray(image, dtype=np.float32) + grain).clip(0, 255).astype(np.uint8)
    )
    out = io.BytesIO()
    image.save(out, "JPEG", quality=95)
    return out.getvalue()


def build(data_dir: Path, n_items: int, n_photos: int, size: tuple[int, int]) -> dict[str, Any]:
    from labelfarm.db.engine import Database, migrate
    from labelfarm.services import audit, projects, users, workspaces
    from labelfarm.services.imports import import_items
    from labelfarm.services.media import MediaStore
    from labelfarm.settings import Settings

    settings = Settings(data_dir=data_dir, secret_key="bench-secret-key")
    db = Database(settings.resolved_database_url)
    audit.use_key(db, settings.resolved_audit_key)
    migrate(db)
    now = time.time()
    ws = db.run(workspaces.create_workspace, slug="bench", name="Bench", now=now)
    for name in ("loopback", "slow", "offline"):
        db.run(
            users.register,
            username=name,
            password=PASSWORD,
            now=now,
            workspace_id=ws["id"],
            role="annotator",
        )
    project = db.run(
        projects.create_project,
        workspace_id=ws["id"],
        name="Shop photos",
        now=now,
        actor_id=None,
        overlap=3,
        schema={
            "data": {"image": "image"},
            "fields": [
                {
                    "name": "product",
                    "type": "choice",
                    "options": ["jacket", "shirt", "shoe", "bag"],
                },
            ],
        },
    )
    folder = data_dir / "incoming"
    folder.mkdir(parents=True)
    sizes = []
    for i in range(n_photos):
        data = photo(i, size)
        sizes.append(len(data))
        (folder / f"p{i}.jpg").write_bytes(data)
    lines = [
        orjson.dumps({"data": {"image": f"p{i % n_photos}.jpg"}, "media": f"p{i % n_photos}.jpg"})
        for i in range(n_items)
    ]
    (folder / "items.jsonl").write_bytes(b"\n".join(lines) + b"\n")
    loaded = db.run(projects.load_project, project["id"])
    media = MediaStore(settings.resolved_media_root, settings.resolved_secret_key)
    db.run(
        import_items,
        loaded,
        folder / "items.jsonl",
        "jsonl",
        media=media,
        now=now,
        user_id=None,
        base_dir=folder,
    )
    db.engine.dispose()
    return {"project": project["id"], "photo_bytes": sum(sizes) / len(sizes)}


class Server:
    def __init__(self, data_dir: Path) -> None:
        with socket.socket() as s:
            s.bind(("127.0.0.1", 0))
            self.port = s.getsockname()[1]
        self.url = f"http://127.0.0.1:{self.port}"
        env = {
            **os.environ,
            "LABELFARM_DATA_DIR": str(data_dir),
            "LABELFARM_PORT": str(self.port),
            "LABELFARM_SECRET_KEY": "bench-secret-key",
            "LABELFARM_HOST": "127.0.0.1",
        }
        self.proc = subprocess.Popen(
            [sys.executable, "-c", "from labelfarm.cli import app; app()", "serve"],
            env=env,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        for _ in range(300):
            try:
                if httpx.get(f"{self.url}/healthz", timeout=1).status_code == 200:
                    return
            except httpx.HTTPError:
                time.sleep(0.1)
        raise RuntimeError("server did not start")

    def stop(self) -> None:
        self.proc.terminate()
        self.proc.wait(10)


def wait_js(page: Any, expr: str, timeout: float = 60.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            if page.evaluate(f"() => Boolean({expr})"):
                return
        except Exception as exc:
            if "context was destroyed" not in str(exc) and "navigat" not in str(exc):
                raise
        time.sleep(0.02)
    raise TimeoutError(expr)


def login(page: Any, base: str, username: str, target: str) -> None:
    page.goto(f"{base}/login?next={target}")
    page.fill("input[name=username]", username)
    page.fill("input[name=password]", PASSWORD)
    page.press("input[name=password]", "Enter")
    page.wait_for_url(f"{base}{target}")


class Meter:
    """Bytes over the network seen by the page (CDP), media counted apart."""

    def __init__(self, page: Any) -> None:
        self.cdp = page.context.new_cdp_session(page)
        self.cdp.send("Network.enable")
        self.urls: dict[str, str] = {}
        self.cached: set[str] = set()
        self.page_bytes = 0
        self.media_bytes = 0
        self.media_count = 0
        self.cdp.on("Network.responseReceived", self._response)
        self.cdp.on("Network.requestServedFromCache", lambda e: self.cached.add(e["requestId"]))
        self.cdp.on("Network.loadingFinished", self._finished)

    def _response(self, e: dict[str, Any]) -> None:
        r = e["response"]
        if r.get("fromDiskCache") or r.get("fromServiceWorker"):
            self.cached.add(e["requestId"])
        self.urls[e["requestId"]] = r["url"]

    def _finished(self, e: dict[str, Any]) -> None:
        url = self.urls.get(e["requestId"], "")
        if e["requestId"] in self.cached or url.startswith(("blob:", "data:")):
            return
        if "/media/" in url:
            self.media_bytes += int(e["encodedDataLength"])
            self.media_count += 1
        else:
            self.page_bytes += int(e["encodedDataLength"])


def run_mode(browser: Any, base: str, project: int, mode: str, n: int) -> dict[str, Any]:
    context = browser.new_context(viewport={"width": 1280, "height": 800})
    page = context.new_page()
    target = f"/projects/{project}/annotate"
    # sign in through the API: the first page load measured starts with an empty cache
    r = context.request.post(
        f"{base}/api/v1/auth/login", data={"username": mode, "password": PASSWORD}
    )
    assert r.ok, r.text()
    meter = Meter(page)
    if mode == "slow":
        meter.cdp.send("Network.emulateNetworkConditions", SLOW)
    t0 = time.perf_counter()
    page.goto(f"{base}{target}")
    wait_js(page, "window.lfPage && lfPage.current() !== null", 120)
    first_task_s = time.perf_counter() - t0
    page_kb = meter.page_bytes / 1024
    wait_js(page, "lfPage.readyAhead() >= 3", 120)
    times: list[float] = []
    for i in range(n):
        wait_js(page, "lfPage.readyAhead() >= 1", 120)  # the prefetch is warm
        before = page.evaluate("lfPage.metrics.length")
        page.keyboard.press(str(1 + i % 4))
        page.keyboard.press("Enter")
        wait_js(page, f"lfPage.metrics.length > {before}", 120)
        ms = page.evaluate("lfPage.metrics[lfPage.metrics.length - 1].ms")
        times.append(float(ms))
    wait_js(page, "lfPage.pending() === 0", 120)
    context.close()
    times.sort()
    return {
        "mode": mode,
        "tasks": n,
        "p50_ms": percentile(times, 50),
        "p95_ms": percentile(times, 95),
        "max_ms": times[-1],
        "first_task_s": first_task_s,
        "page_kb": page_kb,
        "media_kb_per_image": meter.media_bytes / 1024 / max(1, meter.media_count),
    }


def offline_drill(
    playwright: Any, base: str, project: int, n: int, profile: Path, data_dir: Path
) -> int:
    """Label ``n`` tasks offline, reload offline, reconnect; return labels lost."""
    context = playwright.chromium.launch_persistent_context(
        str(profile), executable_path=CHROMIUM, args=ARGS, viewport={"width": 1280, "height": 800}
    )
    page = context.pages[0] if context.pages else context.new_page()
    login(page, base, "offline", f"/projects/{project}/annotate")
    wait_js(page, "navigator.serviceWorker.controller && lfPage.readyAhead() >= 10", 120)
    context.set_offline(True)
    for i in range(n):
        item = page.evaluate("lfPage.current()")
        page.keyboard.press(str(1 + i % 4))
        page.keyboard.press("Enter")
        wait_js(page, f"lfPage.current() !== {item}")
    page.reload()
    wait_js(page, f"window.lfPage && lfPage.pending() === {n}")
    context.set_offline(False)
    wait_js(page, "lfPage.pending() === 0", 60)
    context.close()
    with sqlite3.connect(data_dir / "labelfarm.db") as con:
        (stored,) = con.execute(
            "SELECT COUNT(DISTINCT a.item_id) FROM annotations a JOIN users u ON u.id = a.user_id "
            "WHERE u.username = 'offline'"
        ).fetchone()
    return n - int(stored)


def main() -> None:
    parser = make_parser(__doc__.splitlines()[0])
    args = parser.parse_args()
    if not Path(CHROMIUM).exists():
        sys.exit(f"no Chromium at {CHROMIUM}")
    from playwright.sync_api import sync_playwright

    n_loop, n_slow, n_off = (40, 12, 10) if args.quick else (200, 200, 10)
    size = (2000, 1500) if args.quick else (3000, 2000)
    rows: list[dict[str, Any]] = []
    with tempfile.TemporaryDirectory(prefix="labelfarm-bench-") as tmp:
        data_dir = Path(tmp) / "data"
        facts = build(
            data_dir, n_items=n_loop + n_slow + 60, n_photos=6 if args.quick else 12, size=size
        )
        server = Server(data_dir)
        try:
            with sync_playwright() as p:
                browser = p.chromium.launch(executable_path=CHROMIUM, args=ARGS)
                rows.append(run_mode(browser, server.url, facts["project"], "loopback", n_loop))
                rows.append(run_mode(browser, server.url, facts["project"], "slow", n_slow))
                browser.close()
                lost = offline_drill(
                    p, server.url, facts["project"], n_off, Path(tmp) / "profile", data_dir
                )
        finally:
            server.stop()
    loop, slow = rows
    for row in rows:
        row["photo_kb"] = facts["photo_bytes"] / 1024
    metrics = {
        "next_task_p50_ms.loopback": round(loop["p50_ms"], 1),
        "next_task_p95_ms.loopback": round(loop["p95_ms"], 1),
        "next_task_p50_ms.slow": round(slow["p50_ms"], 1),
        "next_task_p95_ms.slow": round(slow["p95_ms"], 1),
        "annotate_page_kb": round(loop["page_kb"], 1),
        "media_kb_per_image": round(loop["media_kb_per_image"], 1),
        "labels_lost_offline": lost,
    }
    print_report(
        "submit → next task drawn (Chromium)",
        [
            "mode",
            "tasks",
            "p50_ms",
            "p95_ms",
            "max_ms",
            "first_task_s",
            "page_kb",
            "media_kb_per_image",
            "photo_kb",
        ],
        rows,
        f"browser: next task p50 {loop['p50_ms']:.1f} ms / p95 {loop['p95_ms']:.1f} ms loopback, "
        f"p95 {slow['p95_ms']:.1f} ms at 400 kbit/s + 300 ms; page {loop['page_kb']:.0f} KB; "
        f"{loop['media_kb_per_image']:.0f} KB per {facts['photo_bytes'] / 1024:.0f} KB photo; "
        f"labels lost offline: {lost}",
    )
    if args.json:
        write_json(args.json, BENCH, args.quick, machine_info(), metrics, rows)


if __name__ == "__main__":
    main()
