"""The one way to the database keeps the event loop free: work that takes long (a password
hash, a large read) runs in a thread and never while holding the SQLite writer, so
annotators' next and submit go on meanwhile."""

from __future__ import annotations

import asyncio
import statistics
import time
import uuid

import httpx
from anyio.from_thread import start_blocking_portal

from labelfarm.services import users

LOGINS = 4


def _annotator_loop_during_logins(app, token: str, project_id: int) -> tuple[list[float], int]:
    """Logins with a wrong password (each hashes) while one annotator loops next → submit;
    the annotator's request times and how many logins were refused."""

    async def run() -> tuple[list[float], int]:
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://t") as http:
            headers = {"Authorization": f"Bearer {token}"}
            base = f"/api/v1/projects/{project_id}"
            logins = [
                asyncio.create_task(
                    http.post("/api/v1/auth/login", json={"username": "ravi", "password": "x" * 9})
                )
                for _ in range(LOGINS)
            ]
            times: list[float] = []
            while not all(t.done() for t in logins):
                t0 = time.perf_counter()
                got = (await http.post(f"{base}/next", json={"n": 1}, headers=headers)).json()
                for task in got["tasks"]:
                    entry = {
                        "id": uuid.uuid4().hex,
                        "task": task["task"],
                        "value": {"label": "a"},
                    }
                    await http.post(
                        f"{base}/submit", json={"annotations": [entry]}, headers=headers
                    )
                times.append(time.perf_counter() - t0)
                await asyncio.sleep(0)  # in-process, a request that never waits never yields
            refused = sum(t.result().status_code == 401 for t in logins)
            return times, refused

    # an event loop of its own, in a thread: the browser tests' driver keeps one in this one
    with start_blocking_portal() as portal:
        return portal.call(run)


def test_a_login_flood_does_not_stall_annotators(world, tmp_path):
    ws = world.workspace()
    world.user("ravi", role="annotator", workspace=ws, password="the right password")
    ann = world.user("anbu", role="annotator", workspace=ws)
    project = world.project(ws)
    world.add_items(project, 2000, tmp_path)
    t0 = time.perf_counter()
    users.hash_password("a password to time")
    one_hash = time.perf_counter() - t0
    times, refused = _annotator_loop_during_logins(world.app, ann["token"], project.id)
    assert refused == LOGINS
    # the hashes take turns (LOGINS x one_hash in all); had they run on the loop or under the
    # writer, every cycle would wait for one of them
    assert len(times) >= 5, f"only {len(times)} cycles during {LOGINS} logins"
    assert statistics.median(times) < one_hash / 2, (statistics.median(times), one_hash)
