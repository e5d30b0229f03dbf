"""Gold scoring that cannot be gamed: a skipped gold item is a miss, only work one was given
is scored, the control set is never revealed (training items teach, during qualification
only), and the standing an annotator sees never tells which task was gold."""

from __future__ import annotations

import uuid
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import text

from labelfarm.jsonutil import dumps
from labelfarm.services import review
from labelfarm.services.imports import import_items

SCHEMA = {"fields": [{"name": "label", "type": "choice", "options": ["a", "b", "c", "d"]}]}


def _load(world: Any, project: Any, tmp_path: Path, rows: list[dict[str, Any]]) -> None:
    path = tmp_path / f"{uuid.uuid4().hex}.jsonl"
    path.write_text("".join(dumps(r) + "\n" for r in rows))
    import_items(
        world.db, project, path, "jsonl", media=world.ctx.media, now=world.clock(), user_id=None
    )


def _items(n: int, prefix: str = "plain", **extra: Any) -> list[dict[str, Any]]:
    return [{"data": {"text": f"{prefix} {i}"}, **extra} for i in range(n)]


def _gold(n: int, prefix: str = "gold", kind: str | None = None) -> list[dict[str, Any]]:
    rows = _items(n, prefix, gold={"label": "a"})
    if kind is not None:
        for r in rows:
            r["gold_kind"] = kind
    return rows


def _submit(client: Any, project_id: int, tasks: list[dict], label: str = "a") -> list[dict]:
    entries = [
        {"id": uuid.uuid4().hex, "task": t["task"], "value": {"label": label}} for t in tasks
    ]
    return client.submit(project_id, entries)


def _results(world: Any, user_id: int) -> list[tuple[int | None, float]]:
    with world.db.begin("read") as conn:
        rows = conn.execute(
            text("SELECT annotation_id, score FROM gold_results WHERE user_id = :u ORDER BY id"),
            {"u": user_id},
        ).all()
    return [(r[0], float(r[1])) for r in rows]


@pytest.fixture
def ws(world: Any) -> dict[str, Any]:
    return world.workspace()


def test_skipping_gold_one_was_given_is_a_miss(world, ws, tmp_path):
    """Skipping every gold task is no way out: each skip scores 0, enough of them pause the
    annotator; an answer sent after the skip changes nothing, and skipping an item one was
    never given scores nothing."""
    project = world.project(ws, schema=SCHEMA, gold_rate=1.0, accuracy_floor=0.6)
    _load(world, project, tmp_path, _gold(8))
    ann = world.user("skipper", role="annotator", workspace=ws)
    tasks = ann["client"].next(project.id, n=6)
    assert len(tasks) == 6
    for t in tasks[:5]:
        ann["client"].skip(project.id, t["task"], "too hard")
    assert _results(world, ann["id"]) == [(None, 0.0)] * 5
    # a miss for the annotator, but no answer for a reviewer to look at
    assert world.db.run(review.review_queue, project)["counts"]["gold_failure"] == 0
    _submit(ann["client"], project.id, tasks[:1])  # a right answer after the skip
    assert len(_results(world, ann["id"])) == 5
    reply = ann["client"].request("POST", f"/projects/{project.id}/next", json={"n": 1})
    assert reply["annotator"]["state"] == "paused"
    assert "below the floor" in reply["annotator"]["reason"]

    from labelfarm.services.tasks import skip

    other = world.user("other", role="annotator", workspace=ws)
    with world.db.begin("read") as conn:
        never_given = conn.execute(text("SELECT MAX(id) FROM items WHERE is_gold")).scalar_one()
    world.db.run(skip.skip, project, other["id"], never_given, "not mine", world.clock())
    assert _results(world, other["id"]) == []


def test_only_gold_one_was_given_is_scored(world, ws, tmp_path):
    """An annotator who answers gold items it was never given (7 right of 9 given, then 6
    more right answers to gold it was not given) keeps its 7/9: the 6 are stored, not
    scored."""
    project = world.project(ws, schema=SCHEMA, gold_rate=1.0)
    _load(world, project, tmp_path, _gold(19))
    ann = world.user("eager", role="annotator", workspace=ws)
    tasks = ann["client"].next(project.id, n=9)
    given = set(world.item_ids(project.id, ann, tasks))
    _submit(ann["client"], project.id, tasks[:7], "a")
    _submit(ann["client"], project.id, tasks[7:], "b")
    assert [s for _a, s in _results(world, ann["id"])] == [1.0] * 7 + [0.0] * 2
    with world.db.begin("read") as conn:
        gold_ids = conn.execute(text("SELECT id FROM items WHERE is_gold ORDER BY id")).scalars()
        others = [i for i in gold_ids if i not in given][:6]
    handles = [{"task": world.handle(project.id, ann, i)} for i in others]
    stored = _submit(ann["client"], project.id, handles, "a")
    assert [r["late_reason"] for r in stored] == ["no_lease"] * 6  # kept, marked
    assert [s for _a, s in _results(world, ann["id"])] == [1.0] * 7 + [0.0] * 2
    # work checked out for offline use was given: scored, even when it comes back late
    tasks = ann["client"].checkout(project.id, 4, hours=2)
    assert len(tasks) == 4
    world.clock.advance(3 * 3600)
    stored = _submit(ann["client"], project.id, tasks, "a")
    assert {r["late_reason"] for r in stored} == {"lease_expired"}
    assert [s for _a, s in _results(world, ann["id"])] == [1.0] * 7 + [0.0] * 2 + [1.0] * 4


def test_training_items_teach_control_items_measure(world, ws, tmp_path):
    """Training items come first and only while qualifying, with their answers; control
    answers are never revealed, during the qualification or after, and alone decide it."""
    project = world.project(
        ws, schema=SCHEMA, qualification_n=2, qualification_pass=1.0, training=True, gold_rate=1.0
    )
    _load(world, project, tmp_path, _items(3) + _gold(4) + _gold(3, "train", "training"))
    ann = world.user("learner", role="annotator", workspace=ws)

    def take(n: int) -> tuple[dict, list[str]]:
        reply = ann["client"].request("POST", f"/projects/{project.id}/next", json={"n": n})
        return reply, [t["data"]["text"] for t in reply["tasks"]]

    first, texts = take(20)
    assert first["annotator"]["qualification"] == {"done": 0, "of": 5}
    assert sorted(texts) == ["train 0", "train 1", "train 2"]  # training first, alone
    # every training answer wrong: each answer comes back, and nothing is scored
    results = _submit(ann["client"], project.id, first["tasks"], "b")
    assert [r["feedback"] for r in results] == [
        {"correct": False, "score": 0.0, "answer": {"label": "a"}, "guidelines": ""}
    ] * 3
    assert _results(world, ann["id"]) == []
    second, texts = take(20)
    assert second["annotator"]["qualification"] == {"done": 3, "of": 5}
    assert len(texts) == 2 and all(x.startswith("gold") for x in texts)
    # every control answer right: passes (training is not scored); no answer comes back
    results = _submit(ann["client"], project.id, second["tasks"], "a")
    assert all("feedback" not in r for r in results)
    assert [s for _a, s in _results(world, ann["id"])] == [1.0, 1.0]
    after, later = take(20)
    assert after["annotator"]["state"] == "active"
    assert later and not any(x.startswith("train") for x in later)
    results = _submit(ann["client"], project.id, after["tasks"], "b")
    assert all("feedback" not in r for r in results)  # control gold after qualification too


def test_a_training_only_project_lets_annotators_start_once_trained(world, ws, tmp_path):
    project = world.project(ws, schema=SCHEMA, training=True)
    _load(world, project, tmp_path, _items(2) + _gold(2, "train", "training"))
    ann = world.user("trainee", role="annotator", workspace=ws)
    first = ann["client"].request("POST", f"/projects/{project.id}/next", json={"n": 5})
    assert first["annotator"]["qualification"] == {"done": 0, "of": 2}
    assert sorted(t["data"]["text"] for t in first["tasks"]) == ["train 0", "train 1"]
    ann["client"].skip(project.id, first["tasks"][0]["task"], "unsure")
    _submit(ann["client"], project.id, first["tasks"][1:])
    after = ann["client"].request("POST", f"/projects/{project.id}/next", json={"n": 5})
    assert after["annotator"]["state"] == "active"
    assert sorted(t["data"]["text"] for t in after["tasks"]) == ["plain 0", "plain 1"]
    assert _results(world, ann["id"]) == []  # training is not scored


KEYS = {"state", "reason", "qualification", "quality", "reason_key"}


def test_standing_is_aggregated_and_delayed(world, ws, tmp_path):
    """What an annotator sees of their quality never moves with one task: it counts gold
    answers older than the delay, in whole blocks, as of a whole hour."""
    project = world.project(ws, schema=SCHEMA, gold_rate=1.0, accuracy_floor=0.5)
    _load(world, project, tmp_path, _gold(40))
    ann = world.user("steady", role="annotator", workspace=ws)

    def answer(k: int, label: str = "a") -> list[dict]:
        seen = []
        for _ in range(k):
            reply = ann["client"].request("POST", f"/projects/{project.id}/next", json={"n": 1})
            assert set(reply["annotator"]) == KEYS and len(reply["tasks"]) == 1
            seen.append(reply["annotator"])
            _submit(ann["client"], project.id, reply["tasks"], label)
            world.clock.advance(10)
        return seen

    def mine() -> dict:
        got = ann["client"].request("GET", f"/projects/{project.id}/standing")
        assert set(got) == KEYS
        return got

    seen = answer(12)  # within the first hour nothing is counted yet, whatever happens
    assert all(
        s
        == {
            "state": "active",
            "reason": None,
            "qualification": None,
            "quality": None,
            "reason_key": None,
        }
        for s in seen
    )
    world.clock.advance(2 * 3600)
    first = mine()["quality"]
    assert first["checked"] == 10 and first["band"] == "good"
    assert first["as_of"].endswith(":00:00.000+00:00")  # a whole hour
    # one wrong answer after another: nothing moves at once, nor once they are counted,
    # until a block is whole
    seen = answer(7, "b")
    assert all(s["quality"] == first for s in seen) and mine()["quality"] == first
    world.clock.advance(2 * 3600)
    assert mine()["quality"]["checked"] == 10  # 19 answers counted: one block
    answer(1, "b")
    world.clock.advance(2 * 3600)
    second = mine()["quality"]
    assert second["checked"] == 20 and second["band"] == "watch"  # 12 of 20 right


def test_quality_bands(world, ws, tmp_path):
    # the bar is the pass mark without a floor (no one is paused, so each sees a band)
    project = world.project(ws, schema=SCHEMA, gold_rate=1.0, qualification_pass=0.7)
    _load(world, project, tmp_path, _gold(30))
    for name, right in (("good", 10), ("watch", 8), ("low", 4)):
        ann = world.user(name, role="annotator", workspace=ws)
        tasks = ann["client"].next(project.id, n=10)
        _submit(ann["client"], project.id, tasks[:right], "a")
        if right < 10:
            _submit(ann["client"], project.id, tasks[right:], "b")
        world.clock.advance(2 * 3600)
        mine = ann["client"].request("GET", f"/projects/{project.id}/standing")
        assert mine["quality"]["band"] == name, mine
        assert mine["quality"]["checked"] == 10


def test_standing_of_a_qualifying_or_unmeasured_annotator(world, ws, tmp_path):
    plain = world.project(ws, schema=SCHEMA, name="plain")
    ann = world.user("new", role="annotator", workspace=ws)
    assert ann["client"].request("GET", f"/projects/{plain.id}/standing") == {
        "state": "active",
        "reason": None,
        "qualification": None,
        "quality": None,
        "reason_key": None,
    }
    world.add_items(plain, 2, tmp_path)
    reply = ann["client"].request("POST", f"/projects/{plain.id}/next", json={"n": 1})
    assert reply["annotator"]["state"] == "active"
    exam = world.project(ws, schema=SCHEMA, name="exam", qualification_n=3)
    _load(world, exam, tmp_path, _gold(5))
    assert ann["client"].request("GET", f"/projects/{exam.id}/standing")["qualification"] == {
        "done": 0,
        "of": 3,
    }
