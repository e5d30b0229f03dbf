"""The PostgreSQL one-statement fast paths store what the general paths store.

``lease.lease_in_one_statement`` stands for ``lease.lease`` (a project without gold or
standing) and ``submit.submit_in_one_statement`` for ``submit.store`` (the usual batch; any
other batch it must decline, writing nothing). Each test builds two projects ("twins") with
the same settings, the same items in the same order and the same history, each with its own
annotators, by applying every operation to both in turn at the same time; then it runs the
fast path on one twin and the general path on the other with the same inputs and compares
what each returned and every stored row, with item, user and annotation ids made relative
to their twin.
"""

from __future__ import annotations

import random
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import text

from labelfarm.errors import InvalidInput
from labelfarm.jsonutil import dumps, loads
from labelfarm.services import projects
from labelfarm.services.imports import import_items
from labelfarm.services.tasks import lease, skip, submit
from labelfarm.services.tasks.entries import validate_batch

LEASE_SECONDS = 600
ROLES = ("caller", "other1", "other2")

# priorities and deadlines that differ, so that the priority ordering is not the fifo one
PRIORITIES = [0, 3, 1, 3, 0, 2, 3, 1, 0, 2, 3, 0, 1, 2]
DEADLINES = {1: "2030-01-02T00:00:00Z", 3: "2030-01-01T00:00:00Z", 5: "2030-03-01T00:00:00Z"}
# scores (the score job's, set directly here) with ties, in yet another order
SCORES = [0.25, 0.5, 0.75, 0.5, 1.0, 0.0, 0.5, 0.75, 0.25, 1.0, 0.0, 0.5, 0.75, 0.25]
ORDERINGS = ("fifo", "priority", "score")


@pytest.fixture
def pg_world(request: pytest.FixtureRequest, db_url: str) -> Any:
    if not db_url.startswith("postgresql"):
        pytest.skip("the one-statement fast paths exist only on PostgreSQL")
    return request.getfixturevalue("world")


def _item_rows(n: int, *, gold: int = 0) -> list[dict[str, Any]]:
    rows: list[dict[str, Any]] = []
    for i in range(n):
        row: dict[str, Any] = {"data": {"text": f"item {i}"}, "priority": PRIORITIES[i % 14]}
        if i in DEADLINES:
            row["deadline"] = DEADLINES[i]
        rows.append(row)
    rows += [{"data": {"text": f"gold {i}"}, "gold": {"label": "a"}} for i in range(gold)]
    return rows


# -- twins ----------------------------------------------------------------------------------
def _set_scores(world: Any, project_id: int, first: int) -> None:
    """Give the project's items their :data:`SCORES` (by place), as the score job would."""
    with world.db.begin("write") as conn:
        conn.execute(
            text("UPDATE items SET score = :s WHERE project_id = :p AND id = :i AND NOT is_gold"),
            [{"s": SCORES[k % 14], "p": project_id, "i": first + k} for k in range(14)],
        )


@dataclass
class Side:
    """One twin: a project, its annotators by role, and its first item's id."""

    name: str
    project: Any
    users: dict[str, int]
    first_item: int

    def item(self, rel: int) -> int:
        return self.first_item + rel

    def rel(self, item_id: int) -> int:
        return item_id - self.first_item

    def role(self, user_id: int) -> str:
        return {uid: role for role, uid in self.users.items()}[user_id]


class Twins:
    """Two projects in the same state: every operation is applied to both, in turn."""

    def __init__(self, world: Any, tmp_path: Path, rows: list[dict[str, Any]], **settings: Any):
        self.world = world
        ws = world.workspace()
        path = tmp_path / "items.jsonl"
        path.write_text("".join(dumps(r) + "\n" for r in rows))
        self.sides: list[Side] = []
        for name in ("fast", "general"):
            project = world.project(ws, name=f"twin-{name}", **settings)
            world.db.run(
                import_items,
                project,
                path,
                "jsonl",
                media=world.ctx.media,
                now=world.clock(),
                user_id=None,
            )
            users = {
                role: world.user(f"{name}{role}", role="annotator", workspace=ws)["id"]
                for role in ROLES
            }
            with world.db.begin("read") as conn:
                first = conn.execute(
                    text("SELECT MIN(id) FROM items WHERE project_id = :p"), {"p": project.id}
                ).scalar_one()
            self.sides.append(Side(name, project, users, first))
            _set_scores(world, project.id, first)
        self.fast, self.general = self.sides

    @property
    def now(self) -> float:
        return float(self.world.clock())

    def each(self, op: Callable[[Side], Any]) -> list[Any]:
        """Apply ``op`` to both twins; what it returned on each, made relative, must agree."""
        out = [op(side) for side in self.sides]
        assert out[0] == out[1], f"the twins diverged during the setup: {out}"
        return out

    # operations, through the general paths (the same on both twins by construction)
    def lease(self, role: str, n: int) -> list[int]:
        def op(side: Side) -> list[int]:
            with self.world.db.begin("lease") as tx, tx.transaction():
                tasks, _ = lease.lease(
                    tx, side.project, side.users[role], n, self.now, random.Random(0)
                )
            return [side.rel(t["item_id"]) for t in tasks]

        return self.each(op)[0]

    def submit(self, role: str, rel_items: list[int], prefix: str, label: str = "a") -> None:
        def op(side: Side) -> list[tuple[Any, ...]]:
            entries = validate_batch(
                side.project,
                [
                    {"id": f"{prefix}-{r}", "item_id": side.item(r), "value": {"label": label}}
                    for r in rel_items
                ],
            )
            with self.world.db.begin("submit") as tx, tx.transaction():
                out = submit.store(tx, side.project, side.users[role], entries, self.now)
            return [(side.rel(r["item_id"]), r["status"], r["late_reason"]) for r in out]

        self.each(op)

    def skip(self, role: str, rel_item: int, reason: str = "cannot tell") -> None:
        self.each(
            lambda side: self.world.db.run(
                skip.skip, side.project, side.users[role], side.item(rel_item), reason, self.now
            )["status"]
        )

    def change(self, **changes: Any) -> None:
        for side in self.sides:
            self.world.db.run(
                projects.update_settings,
                project_id=side.project.id,
                changes=changes,
                now=self.now,
                actor_id=None,
            )
            side.project = self.world.load(side.project.id)

    def advance(self, seconds: float) -> None:
        self.world.clock.advance(seconds)

    # what is stored
    def state(self, side: Side) -> dict[str, Any]:
        return stored_rows(self.world, side)

    def states(self) -> tuple[dict[str, Any], dict[str, Any]]:
        return self.state(self.fast), self.state(self.general)


def _ranks(conn: Any, side: Side) -> dict[int, int]:
    """Annotation id -> its rank among the twin's annotations (ids made relative)."""
    ids = conn.execute(
        text("SELECT id FROM annotations WHERE project_id = :p ORDER BY id"), {"p": side.project.id}
    ).scalars()
    return {aid: rank for rank, aid in enumerate(ids)}


def stored_rows(world: Any, side: Side) -> dict[str, Any]:
    """Every row of the twin that the task lifecycle writes, ids made relative. Lists keep
    the rows' id order (which decides, e.g., the order live leases come back in)."""
    p = {"p": side.project.id}
    with world.db.begin("read") as conn:
        rank = _ranks(conn, side)
        assignments = [
            (side.rel(r.item_id), side.role(r.user_id), r.state, r.leased_at, r.expires_at,
             r.finished_at, r.skip_reason)
            for r in conn.execute(
                text(
                    "SELECT item_id, user_id, state, leased_at, expires_at, finished_at, "
                    "skip_reason FROM assignments WHERE project_id = :p ORDER BY id"
                ),
                p,
            )
        ]  # fmt: skip
        items = [
            (side.rel(r.id), loads(r.data)["text"], r.n_leased, r.n_submitted, r.is_open)
            for r in conn.execute(
                text(
                    "SELECT id, data, n_leased, n_submitted, is_open FROM items "
                    "WHERE project_id = :p ORDER BY id"
                ),
                p,
            )
        ]
        annotations = [
            (side.rel(r.item_id), side.role(r.user_id), r.client_id, loads(r.value), r.status,
             r.late_reason, None if r.corrects_id is None else rank[r.corrects_id],
             r.from_prediction, r.duration_ms, r.schema_version, r.created_at)
            for r in conn.execute(
                text(
                    "SELECT item_id, user_id, client_id, value, status, late_reason, "
                    "corrects_id, from_prediction, duration_ms, schema_version, created_at "
                    "FROM annotations WHERE project_id = :p ORDER BY id"
                ),
                p,
            )
        ]  # fmt: skip
        gold_results = [
            (side.rel(r.item_id), side.role(r.user_id), rank[r.annotation_id], r.score)
            for r in conn.execute(
                text(
                    "SELECT item_id, user_id, annotation_id, score FROM gold_results "
                    "WHERE project_id = :p ORDER BY id"
                ),
                p,
            )
        ]
    return {
        "assignments": assignments,
        "items": items,
        "annotations": annotations,
        "gold_results": gold_results,
    }


def _counts(world: Any) -> dict[str, int]:
    with world.db.begin("read") as conn:
        return {
            t: conn.execute(text(f"SELECT COUNT(*) FROM {t}")).scalar_one()
            for t in ("assignments", "items", "annotations", "gold_results")
        }


def _tasks(side: Side, tasks: list[dict[str, Any]]) -> list[tuple[Any, ...]]:
    return [
        (side.rel(t["item_id"]), t["data"]["text"], t["media_sha256"], t["lease_expires_at"],
         t["prediction"])
        for t in tasks
    ]  # fmt: skip


def _results(world: Any, side: Side, results: list[dict[str, Any]]) -> list[dict[str, Any]]:
    with world.db.begin("read") as conn:
        rank = _ranks(conn, side)
    return [
        {**r, "item_id": side.rel(r["item_id"]), "annotation_id": rank[r["annotation_id"]]}
        for r in results
    ]


def _differences(fast: Any, general: Any, what: str) -> list[str]:
    """Nothing if equal, else lines naming every differing part and row."""
    if fast == general:
        return []
    lines = [f"{what}: the fast path and the general path disagree"]
    if isinstance(fast, dict) and isinstance(general, dict):
        for key in fast:
            if fast[key] != general[key]:
                lines.append(f"  {key}:")
                lines += [f"    fast    {row}" for row in fast[key] if row not in general[key]]
                lines += [f"    general {row}" for row in general[key] if row not in fast[key]]
                if sorted(map(repr, fast[key])) == sorted(map(repr, general[key])):
                    lines.append("    the same rows, in another id order:")
                    lines += [f"    fast    {fast[key]}", f"    general {general[key]}"]
    else:
        lines += [f"  fast    {fast}", f"  general {general}"]
    return lines


def assert_same(*comparisons: tuple[Any, Any, str]) -> None:
    """Each ``(fast, general, what)`` equal; otherwise one error naming every difference."""
    lines = [line for c in comparisons for line in _differences(*c)]
    if lines:
        raise AssertionError("\n".join(lines))


# -- lease ----------------------------------------------------------------------------------
def lease_history(twins: Twins, *, expire: bool) -> None:
    """Submitted and skipped work, live leases of the caller and of others; with ``expire``,
    leases (the caller's and others') expired and not yet reclaimed."""
    t = twins
    first = t.lease("other1", 3)
    t.submit("other1", first[:1], "o1")
    t.skip("other1", first[1])
    mine = t.lease("caller", 3)
    t.submit("caller", mine[:1], "c")
    t.lease("other2", 2)
    t.advance(400)
    t.lease("caller", 5)  # 2 held (expiring at +600) and 3 new (at +1000)
    t.lease("other1", 1)
    if expire:
        t.advance(300)  # the leases taken at the start are expired, not yet reclaimed


def _run_lease(twins: Twins, n: int) -> tuple[list[Any], list[Any]]:
    """The fast path on one twin, the general path on the other: the tasks, made relative."""
    world, now = twins.world, twins.now
    f, g = twins.fast, twins.general
    with world.db.begin("lease") as tx:
        fast = lease.lease_in_one_statement(tx, f.project, f.users["caller"], n, now)
    with world.db.begin("lease") as tx, tx.transaction():
        general, _ = lease.lease(tx, g.project, g.users["caller"], n, now, random.Random(0))
    return _tasks(f, fast), _tasks(g, general)


def _expired_leases(world: Any, side: Side, now: float) -> int:
    with world.db.begin("read") as conn:
        return conn.execute(
            text(
                "SELECT COUNT(*) FROM assignments WHERE project_id = :p AND state = 'leased' "
                "AND expires_at <= :now"
            ),
            {"p": side.project.id, "now": now},
        ).scalar_one()


def _lease_cases() -> list[Any]:
    cases = []
    for n in (2, 5, 40):
        for expire in (False, True):
            for overlap in (1, 2):
                for ordering in ORDERINGS:
                    name = f"{ordering}-overlap{overlap}-{'expired' if expire else 'live'}-n{n}"
                    cases.append(pytest.param(ordering, overlap, expire, n, id=name))
    return cases


@pytest.mark.parametrize(("ordering", "overlap", "expire", "n"), _lease_cases())
def test_lease_in_one_statement_stores_what_lease_stores(
    pg_world: Any, tmp_path: Path, ordering: str, overlap: int, expire: bool, n: int
) -> None:
    twins = Twins(
        pg_world, tmp_path, _item_rows(14), ordering=ordering, overlap=overlap,
        lease_seconds=LEASE_SECONDS,
    )  # fmt: skip
    lease_history(twins, expire=expire)
    before_fast, before_general = twins.states()
    assert before_fast == before_general  # the twins are in the same state
    assert (_expired_leases(pg_world, twins.fast, twins.now) > 0) == expire
    live = [
        a[0]
        for a in before_fast["assignments"]
        if a[1:3] == ("caller", "leased") and a[4] > twins.now
    ]

    fast_tasks, general_tasks = _run_lease(twins, n)

    after_fast, after_general = twins.states()
    assert_same(
        (fast_tasks, general_tasks, "the tasks returned"),
        (after_fast, after_general, "the stored rows"),
    )
    # what is compared is what a lease does: live leases first, then new ones
    assert [t[0] for t in fast_tasks[: len(live)]] == live[:n]
    assert len(fast_tasks) > len(live) or n <= len(live)
    assert (after_fast != before_fast) == (expire or n > len(live))
    assert _expired_leases(pg_world, twins.fast, twins.now) == 0  # every expired lease reclaimed


def _reclaim_twins(world: Any, tmp_path: Path, ordering: str, overlap: int) -> Twins:
    """Six items; another annotator's leases on the first two (in the project's order)
    expired, not yet reclaimed."""
    twins = Twins(
        world, tmp_path, _item_rows(6), ordering=ordering, overlap=overlap,
        lease_seconds=LEASE_SECONDS,
    )  # fmt: skip
    twins.lease("other1", 2)
    twins.advance(LEASE_SECONDS + 1)
    assert _expired_leases(world, twins.fast, twins.now) == 2
    return twins


@pytest.mark.parametrize("overlap", [1, 2])
@pytest.mark.parametrize("ordering", ORDERINGS)
def test_a_reclaimed_place_is_leased_in_the_same_call(
    pg_world: Any, tmp_path: Path, ordering: str, overlap: int
) -> None:
    """The general path reclaims the expired leases and leases those items, first in the
    queue, in the same call. With n = 3 the fast path is not short without them."""
    twins = _reclaim_twins(pg_world, tmp_path, ordering, overlap)
    fast_tasks, general_tasks = _run_lease(twins, 3)
    assert_same(
        (fast_tasks, general_tasks, "the tasks returned"),
        (*twins.states(), "the stored rows"),
    )


@pytest.mark.parametrize("overlap", [1, 2])
@pytest.mark.parametrize("ordering", ORDERINGS)
def test_a_short_call_after_a_reclaim_keeps_the_order(
    pg_world: Any, tmp_path: Path, ordering: str, overlap: int
) -> None:
    """The same call: the tasks come back, and the leases are stored (their ids decide the
    order live leases come back in on later calls), in the project's order."""
    twins = _reclaim_twins(pg_world, tmp_path, ordering, overlap)
    fast_tasks, general_tasks = _run_lease(twins, 10)
    assert_same(
        (fast_tasks, general_tasks, "the tasks returned"),
        (*twins.states(), "the stored rows"),
    )


# -- submit ---------------------------------------------------------------------------------
@dataclass
class Held:
    """The caller's items (relative ids) by what the caller holds on them."""

    live: list[int]  # live leases, non-gold
    gold: list[int]  # live leases on gold items
    stale: list[int]  # leases past their expiry, not yet reclaimed
    expired: list[int]  # leases reclaimed (state 'expired')
    skipped: list[int]
    submitted: list[int]
    never: list[int]  # never assigned to the caller


def submit_history(twins: Twins) -> None:
    """The caller ends with live leases (gold among them), a lease past its expiry not yet
    reclaimed, reclaimed leases, a skipped item, submitted work; others have work too."""
    t = twins
    t.lease("caller", 4)  # items 0-3, expiring at +600
    t.lease("other1", 2)  # items 0-1
    t.submit("other1", [0], "o1")
    t.submit("caller", [0], "c", label="b")
    t.skip("caller", 3)
    t.advance(700)
    t.lease("other2", 3)  # reclaims the caller's leases on items 1 and 2, and other1's
    t.lease("caller", 1)  # expiring at +1300: past its expiry at the end
    t.advance(300)
    t.change(gold_rate=1.0)
    t.lease("caller", 5)  # the gold item first, then open items; expiring at +1600
    t.lease("other1", 2)
    t.change(gold_rate=0.0)
    t.advance(400)


def _held(world: Any, side: Side, now: float) -> Held:
    with world.db.begin("read") as conn:
        rows = conn.execute(
            text(
                "SELECT a.item_id, a.state, a.expires_at, i.is_gold FROM assignments a "
                "JOIN items i ON i.id = a.item_id WHERE a.project_id = :p AND a.user_id = :u "
                "ORDER BY a.item_id"
            ),
            {"p": side.project.id, "u": side.users["caller"]},
        ).all()
        all_items = conn.execute(
            text("SELECT id FROM items WHERE project_id = :p AND NOT is_gold ORDER BY id"),
            {"p": side.project.id},
        ).scalars()
        assigned = {r.item_id for r in rows}
        never = [side.rel(i) for i in all_items if i not in assigned]

    def pick(cond: Callable[[Any], bool]) -> list[int]:
        return [side.rel(r.item_id) for r in rows if cond(r)]

    return Held(
        live=pick(lambda r: r.state == "leased" and r.expires_at > now and not r.is_gold),
        gold=pick(lambda r: r.state == "leased" and r.expires_at > now and r.is_gold),
        stale=pick(lambda r: r.state == "leased" and r.expires_at <= now),
        expired=pick(lambda r: r.state == "expired"),
        skipped=pick(lambda r: r.state == "skipped"),
        submitted=pick(lambda r: r.state == "submitted"),
        never=never,
    )


@pytest.fixture
def submit_twins(pg_world: Any, tmp_path: Path) -> Iterator[tuple[Twins, Held]]:
    twins = Twins(
        pg_world, tmp_path, _item_rows(10, gold=1), overlap=2, lease_seconds=LEASE_SECONDS
    )
    submit_history(twins)
    held = _held(pg_world, twins.fast, twins.now)
    assert held == _held(pg_world, twins.general, twins.now)
    # the history produced every case the batches below draw on
    assert len(held.live) >= 3 and held.gold and held.stale and held.expired
    assert held.skipped and held.submitted and held.never
    before_fast, before_general = twins.states()
    assert before_fast == before_general  # the twins are in the same state
    yield twins, held


Spec = tuple[str, int, dict[str, Any]]  # client id, relative item id, more of the entry


def _entries(twins: Twins, side: Side, specs: list[Spec]) -> list[Any]:
    """The batch on one twin; ``corrects`` names the client id of the caller's annotation."""
    raw = []
    for cid, rel, extra in specs:
        entry = {"id": cid, "item_id": side.item(rel), "value": {"label": "c"}, **extra}
        if "corrects" in extra:
            with twins.world.db.begin("read") as conn:
                entry["corrects"] = conn.execute(
                    text("SELECT id FROM annotations WHERE user_id = :u AND client_id = :c"),
                    {"u": side.users["caller"], "c": extra["corrects"]},
                ).scalar_one()
        raw.append(entry)
    return validate_batch(side.project, raw)


def _store(twins: Twins, side: Side, specs: list[Spec]) -> list[dict[str, Any]]:
    entries = _entries(twins, side, specs)
    with twins.world.db.begin("submit") as tx, tx.transaction():
        out = submit.store(tx, side.project, side.users["caller"], entries, twins.now)
    return _results(twins.world, side, out)


def _fast_submit(twins: Twins, side: Side, specs: list[Spec]) -> list[dict[str, Any]] | None:
    entries = _entries(twins, side, specs)
    with twins.world.db.begin("submit") as tx:
        out = submit.submit_in_one_statement(
            tx, side.project, side.users["caller"], entries, twins.now
        )
    return None if out is None else _results(twins.world, side, out)


def _compare_submit(twins: Twins, specs: list[Spec]) -> list[dict[str, Any]]:
    """The fast path on one twin (it must take the batch), ``store`` on the other."""
    fast = _fast_submit(twins, twins.fast, specs)
    assert fast is not None, "the fast path declined a batch it must store"
    general = _store(twins, twins.general, specs)
    assert_same(
        (fast, general, "the results returned"),
        (*twins.states(), "the stored rows"),
    )
    return fast


def _declined(twins: Twins, specs: list[Spec]) -> None:
    """The fast path declines the batch on its twin, writing nothing."""
    world, side = twins.world, twins.fast
    before, counts = twins.state(side), _counts(world)
    assert _fast_submit(twins, side, specs) is None
    assert _counts(world) == counts
    assert twins.state(side) == before  # nothing written, nothing changed


def _general_after_decline(twins: Twins, specs: list[Spec]) -> list[dict[str, Any]]:
    """``store`` on the twin where the fast path declined, and on the one where it never
    ran: the same results, the same rows."""
    after_decline = _store(twins, twins.fast, specs)
    general = _store(twins, twins.general, specs)
    assert_same(
        (after_decline, general, "the results returned"),
        (*twins.states(), "the stored rows"),
    )
    return after_decline


def test_a_usual_batch_is_stored_the_same_way(submit_twins: tuple[Twins, Held]) -> None:
    twins, held = submit_twins
    a, b, c = held.live[:3]
    specs: list[Spec] = [
        ("u-1", b, {"duration_ms": 1200, "from_prediction": True}),
        ("u-2", a, {}),  # not in item order: the rows keep the batch's order
        ("u-3", c, {"duration_ms": 0, "corrects": "c-0"}),
    ]
    before = twins.state(twins.fast)
    results = _compare_submit(twins, specs)
    assert [(r["item_id"], r["status"], r["late_reason"]) for r in results] == [
        (b, "accepted", None),
        (a, "accepted", None),
        (c, "accepted", None),
    ]
    after = twins.state(twins.fast)
    assert len(after["annotations"]) == len(before["annotations"]) + 3
    assert after != before
    # a replay of the whole batch (its items are submitted now) is not the usual case: the
    # fast path declines it, and the general path answers the stored rows, storing nothing
    _declined(twins, specs)
    assert _general_after_decline(twins, specs) == results
    assert twins.state(twins.fast) == after


def test_a_reused_client_id_is_answered_alike(submit_twins: tuple[Twins, Held]) -> None:
    """A client id already used (for another item) next to a new entry: the fast path takes
    it (distinct live leases), answers the stored row and leaves that lease open."""
    twins, held = submit_twins
    specs: list[Spec] = [("c-0", held.live[0], {}), ("r-1", held.live[1], {})]
    results = _compare_submit(twins, specs)
    assert results[0]["item_id"] == held.submitted[0]  # the stored row's answer
    assert (held.live[0], "caller", "leased") in [
        a[:3] for a in twins.state(twins.fast)["assignments"]
    ]


Case = tuple[Callable[[Held], list[Spec]], tuple[str, str | None]]

# batches the fast path must decline, and what the general path answers for the last entry
DECLINES: dict[str, Case] = {
    "lease past its expiry": (
        lambda h: [("d-1", h.live[0], {}), ("d-2", h.stale[0], {})],
        ("late", "lease_expired"),
    ),
    "lease reclaimed": (
        lambda h: [("d-1", h.live[0], {}), ("d-2", h.expired[0], {})],
        ("late", "lease_expired"),
    ),
    "item never leased": (
        lambda h: [("d-1", h.live[0], {}), ("d-2", h.never[0], {})],
        ("late", "no_lease"),
    ),
    "item skipped": (
        lambda h: [("d-1", h.live[0], {}), ("d-2", h.skipped[0], {})],
        ("late", "skipped"),
    ),
    "gold item": (
        lambda h: [("d-1", h.live[0], {}), ("d-2", h.gold[0], {})],
        ("accepted", None),
    ),
    "correction of earlier work": (
        lambda h: [("d-1", h.live[0], {}), ("d-2", h.submitted[0], {})],
        ("accepted", None),
    ),
    "replayed client id": (  # the stored row answers: the caller's earlier "c-0"
        lambda h: [("d-1", h.live[0], {}), ("c-0", h.submitted[0], {})],
        ("accepted", None),
    ),
    "correction in the batch": (
        lambda h: [("d-1", h.live[0], {}), ("d-2", h.live[0], {})],
        ("accepted", None),
    ),
    "only a stale lease": (lambda h: [("d-1", h.stale[0], {})], ("late", "lease_expired")),
    "only gold": (lambda h: [("d-1", h.gold[0], {})], ("accepted", None)),
}


@pytest.mark.parametrize("case", list(DECLINES))
def test_the_fast_path_declines_writing_nothing_and_the_general_path_stores(
    submit_twins: tuple[Twins, Held], case: str
) -> None:
    twins, held = submit_twins
    make, (status, late_reason) = DECLINES[case]
    specs = make(held)
    before = twins.state(twins.fast)
    _declined(twins, specs)
    results = _general_after_decline(twins, specs)
    assert (results[-1]["status"], results[-1]["late_reason"]) == (status, late_reason)
    assert [r["item_id"] for r in results] == [rel for _cid, rel, _extra in specs]
    if len(specs) > 1:  # the first entry, on a live lease, is accepted all the same
        assert (results[0]["status"], results[0]["late_reason"]) == ("accepted", None)
    assert len(twins.state(twins.fast)["annotations"]) > len(before["annotations"])


def test_an_item_of_another_project_is_declined_then_refused(
    submit_twins: tuple[Twins, Held],
) -> None:
    twins, held = submit_twins
    world, side = twins.world, twins.fast
    stranger = twins.general.first_item - side.first_item  # an item of the other twin
    specs: list[Spec] = [("x-1", held.live[0], {}), ("x-2", stranger, {})]
    before, counts = twins.states(), _counts(world)
    assert _fast_submit(twins, side, specs) is None
    with pytest.raises(InvalidInput):
        _store(twins, side, specs)
    assert _counts(world) == counts
    assert twins.states() == before
