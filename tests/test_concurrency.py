"""The queue invariants under real concurrency: 50 threads (and, on PostgreSQL, several
processes) leasing and submitting at once on a project with overlap 2."""

from __future__ import annotations

import multiprocessing
import threading
import time
import uuid
from collections import Counter
from pathlib import Path

import pytest
from sqlalchemy import text

from labelfarm.db.engine import Database
from labelfarm.services import projects
from labelfarm.services.tasks import entries, lease, submit

OVERLAP = 2
N_ITEMS = 300


def _work(db: Database, project_id: int, user_id: int, handed: list, errors: list) -> None:
    """Loop next(2) → submit until the queue has nothing left for this user."""
    try:
        project = db.run(projects.load_project, project_id)
        for _ in range(N_ITEMS):
            tasks = db.run(lease.next_tasks, project, user_id, 2, time.time())
            if not tasks:
                return
            handed.extend((t["item_id"], user_id) for t in tasks)
            batch = entries.validate_batch(
                project,
                [
                    {"id": uuid.uuid4().hex, "item_id": t["item_id"], "value": {"label": "a"}}
                    for t in tasks
                ],
            )
            db.run(submit.submit, project, user_id, batch, time.time())
    except Exception as exc:  # reported to the main thread
        errors.append(repr(exc))


def _threads(
    url: str, project_id: int, user_ids: list[int], connections: int = 16
) -> tuple[list, list]:
    # each thread holds one connection at a time, of one kind: the threads queue for them
    db = Database(url, hot_connections=connections)
    handed: list = []
    errors: list = []
    threads = [
        threading.Thread(target=_work, args=(db, project_id, uid, handed, errors))
        for uid in user_ids
    ]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=120)
    db.dispose()
    return handed, errors


def _process_main(url: str, project_id: int, user_ids: list[int], out: object) -> None:
    # four processes stay well inside the server's connection limit
    handed, errors = _threads(url, project_id, user_ids, connections=6)
    out.put((handed, errors))  # type: ignore[attr-defined]


def _setup(world, tmp_path: Path, n_users: int) -> tuple[int, list[int]]:
    ws = world.workspace()
    users = [world.user(f"w{i}", role="annotator", workspace=ws)["id"] for i in range(n_users)]
    project = world.project(ws, overlap=OVERLAP, lease_seconds=600)
    world.add_items(project, N_ITEMS, tmp_path)
    return project.id, users


def _check(world, handed: list) -> None:
    pairs = Counter(handed)
    assert max(pairs.values()) == 1, "an annotator got the same item twice"
    per_item = Counter(item for item, _user in pairs)
    assert max(per_item.values()) <= OVERLAP, "an item went to more than overlap annotators"
    assert sum(per_item.values()) == N_ITEMS * OVERLAP, "every place was handed out once"
    with world.db.begin("read") as conn:
        bad = conn.execute(
            text(
                "SELECT i.id FROM items i WHERE i.n_submitted <> "
                "(SELECT COUNT(*) FROM assignments a WHERE a.item_id = i.id "
                "AND a.state = 'submitted') OR i.n_leased <> "
                "(SELECT COUNT(*) FROM assignments a WHERE a.item_id = i.id "
                "AND a.state = 'leased') OR i.n_submitted > :o"
            ),
            {"o": OVERLAP},
        ).all()
        assert bad == [], "item counters disagree with the assignments"
        per_item_db = conn.execute(
            text(
                "SELECT MAX(c) FROM (SELECT COUNT(DISTINCT user_id) AS c FROM annotations "
                "GROUP BY item_id) t"
            )
        ).scalar_one()
        assert per_item_db == OVERLAP


@pytest.mark.slow
def test_fifty_threads_never_break_the_invariants(world, tmp_path, db_url):
    project_id, users = _setup(world, tmp_path, 50)
    handed, errors = _threads(db_url, project_id, users)
    assert errors == []
    _check(world, handed)


@pytest.mark.slow
def test_several_processes_on_postgresql(world, tmp_path, db_url):
    if not db_url.startswith("postgresql"):
        pytest.skip("several server processes share one database only on PostgreSQL")
    project_id, users = _setup(world, tmp_path, 40)
    ctx = multiprocessing.get_context("spawn")
    out = ctx.Queue()
    procs = [
        ctx.Process(target=_process_main, args=(db_url, project_id, users[i::4], out))
        for i in range(4)
    ]
    for p in procs:
        p.start()
    handed: list = []
    errors: list = []
    for _ in procs:
        h, e = out.get(timeout=180)
        handed += h
        errors += e
    for p in procs:
        p.join(timeout=30)
    assert errors == []
    _check(world, handed)
