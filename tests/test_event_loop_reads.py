"""Large reads stay off the event loop: while managers page through large items, the
annotators' next and submit go on at their usual pace.

An item is at most the largest item (1 MiB of data JSON). A page of items is bounded in
bytes as well as rows, read in a thread, handed on as the stored JSON text (never parsed and
encoded again) and rendered in a thread; so however many large items a manager asks for,
the loop never spends more than a moment on them."""

from __future__ import annotations

import asyncio
import random
import re
import statistics
import time
import uuid
from collections.abc import Callable
from pathlib import Path

import httpx
import orjson
from anyio.from_thread import start_blocking_portal

from labelfarm.services.imports import import_items

N_LARGE = 300
MANAGERS = 2
ANNOTATORS = 4
PACE = 0.25  # seconds between an annotator's cycles
BASELINE_S = 3.0  # seconds of annotators alone, before the managers start
MiB = 1 << 20


def _large_items(path: Path, n: int) -> Path:
    """``n`` items of just under 1 MiB of data each: 50,000 numbers (which cost far more
    to parse and encode than text)."""
    rng = random.Random(7)
    with open(path, "wb") as fh:
        for i in range(n):
            xs = [rng.random() for _ in range(50_000)]
            line = orjson.dumps({"data": {"n": i, "xs": xs}})
            assert 0.9 * MiB < len(line) < MiB
            fh.write(line + b"\n")
    return path


class _Load:
    """Managers paging through every large item (``limit=1000``) and fetching one item of
    each page, over and over, counting the pages and bytes they read."""

    def __init__(self, http: httpx.AsyncClient, token: str, project_id: int) -> None:
        self.http = http
        self.headers = {"Authorization": f"Bearer {token}"}
        self.base = f"/api/v1/projects/{project_id}/items"
        self.done = False
        self.pages = 0
        self.read = 0

    async def manager(self) -> None:
        while not self.done:
            after: int | None = 0
            while after is not None and not self.done:
                params = {"after": after, "limit": 1000}
                r = await self.http.get(self.base, params=params, headers=self.headers)
                assert r.status_code == 200
                self.pages += 1
                self.read += len(r.content)
                # the page's end only: parsing all of it would keep this loop busy
                tail = re.search(rb'"next_after":(\d+|null)}$', r.content[-40:])
                assert tail is not None
                after = None if tail[1] == b"null" else int(tail[1])
                if after is not None:
                    one = await self.http.get(f"{self.base}/{after}", headers=self.headers)
                    self.read += len(one.content)


async def _annotator(
    http: httpx.AsyncClient,
    token: str,
    project_id: int,
    times: list[float],
    more: Callable[[float], bool],
) -> None:
    """A next → submit cycle due every ``PACE`` seconds, while ``more(seconds so far)``. A
    cycle's time runs from the moment it was due, as for requests sent from elsewhere:
    in-process, a request that never waits runs without a break, so a loop held up by other
    work delays the cycles due meanwhile."""
    headers = {"Authorization": f"Bearer {token}"}
    base = f"/api/v1/projects/{project_id}"
    started = due = time.perf_counter()
    while more(due - started):
        await asyncio.sleep(max(0.0, due - time.perf_counter()))
        got = (await http.post(f"{base}/next", json={"n": 1}, headers=headers)).json()
        for task in got["tasks"]:
            entry = {"id": uuid.uuid4().hex, "task": task["task"], "value": {"label": "a"}}
            r = await http.post(f"{base}/submit", json={"annotations": [entry]}, headers=headers)
            assert r.status_code == 200, r.text
        times.append(time.perf_counter() - due)
        due += PACE


def _latencies(app, manager: str, annotators: list[str], large: int, small: int) -> tuple:
    """The annotators' cycle times alone (the baseline: what this machine gives right now),
    then while the managers read; and what the managers read."""

    async def run() -> tuple[list[float], list[float], _Load]:
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://t") as http:
            alone: list[float] = []
            await asyncio.gather(
                *(_annotator(http, t, small, alone, lambda s: s < BASELINE_S) for t in annotators)
            )
            load = _Load(http, manager, large)
            managers = [asyncio.create_task(load.manager()) for _ in range(MANAGERS)]
            await asyncio.sleep(0.2)  # the managers' first reads are under way

            def more(s: float) -> bool:  # a few pages each, and a few seconds at least
                return s < 120 and (s < 5 or load.pages < 3 * MANAGERS)

            times: list[float] = []
            await asyncio.gather(*(_annotator(http, t, small, times, more) for t in annotators))
            pages, read = load.pages, load.read
            load.done = True
            await asyncio.gather(*managers)
            load.pages, load.read = pages, read  # what was read while the annotators worked
            return alone, times, load

    with start_blocking_portal() as portal:
        return portal.call(run)


def _p95(times: list[float]) -> float:
    return sorted(times)[int(len(times) * 0.95)]


def test_annotators_are_not_held_up_by_managers_reading_large_items(world, tmp_path):
    ws = world.workspace()
    boss = world.user("boss", role="manager", workspace=ws)
    tokens = [
        world.user(f"ann{i}", role="annotator", workspace=ws)["token"] for i in range(ANNOTATORS)
    ]
    large = world.project(ws, name="large")
    small = world.project(ws, name="small")
    world.db.run(
        import_items,
        large,
        _large_items(tmp_path / "large.jsonl", N_LARGE),
        "jsonl",
        media=world.ctx.media,
        now=world.clock(),
        user_id=None,
    )
    world.add_items(small, 3000, tmp_path)
    alone, times, load = _latencies(world.app, boss["token"], tokens, large.id, small.id)
    assert load.pages >= 3 * MANAGERS and load.read > 20 * MiB, (load.pages, load.read)
    base, p95 = _p95(alone), _p95(times)
    summary = (
        f"annotators' p50 {statistics.median(times) * 1000:.0f} ms, p95 {p95 * 1000:.0f} ms, "
        f"worst {max(times) * 1000:.0f} ms over {len(times)} cycles while managers read "
        f"{load.read / MiB:.0f} MiB in {load.pages} pages; alone p95 {base * 1000:.0f} ms"
    )
    print(summary)
    # the managers' reads add less than half a second to the annotators' p95, over what
    # this machine gives them alone at the moment (a loaded CI machine slows both)
    assert p95 < base + 0.5, summary
