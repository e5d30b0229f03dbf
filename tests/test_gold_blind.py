"""Gold is blind in practice: an annotator who tries to tell gold tasks from real ones by
anything the API, the SDK or the media links show them finds nothing to go on.

The tests play the cheating annotator: they take work through the SDK as annotators do
(batches, single tasks), fetch every task's media, submit, and score each signal they can
see (position and order in the batch, the task's handle, its media URL, the timing of each
call, the payload and its size, the prediction, the lease's expiry, the media answer's
size and headers, the submit answer). No signal separates gold from real items with an
area under the ROC curve above 0.6 (a coin is 0.5; either direction counts).

Gold and real items come from separate imports, gold last (as a manager adds them), with
an image each (its own file) and a model prediction each: the platform, not the data,
must keep gold blind. The test knows which items are gold by their names, which it chose
at random from the same pool.
"""

from __future__ import annotations

import base64
import json
import random
import re
import time
import uuid
from datetime import datetime
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

import httpx
import pytest

from labelfarm.client import LabelfarmAPIError
from labelfarm.jsonutil import dumps
from labelfarm.services.imports import import_items
from media_files import png

SCHEMA = {"fields": [{"name": "label", "type": "choice", "options": ["a", "b", "c", "d"]}]}
N_REAL, N_GOLD = 900, 60
GOLD_RATE = 0.2
MAX_AUC = 0.6


def _auc(scores: list[float], gold: list[bool]) -> float:
    """Area under the ROC curve of ``scores`` for telling gold, either direction
    (Mann-Whitney U with ties counted half), so 0.5 is a coin and 1.0 a perfect test."""
    pos = [s for s, g in zip(scores, gold, strict=True) if g]
    neg = [s for s, g in zip(scores, gold, strict=True) if not g]
    assert pos and neg, "the annotators saw both gold and real tasks"
    ranked = sorted(scores)
    first: dict[float, int] = {}
    for i, s in enumerate(ranked):
        first.setdefault(s, i)
    counts = {s: ranked.count(s) for s in first}
    rank_sum = sum(first[s] + (counts[s] + 1) / 2 for s in pos)
    u = rank_sum - len(pos) * (len(pos) + 1) / 2
    auc = u / (len(pos) * len(neg))
    return max(auc, 1 - auc)


def test_auc_by_hand():
    assert _auc([1, 2, 3, 4], [False, False, True, True]) == 1.0
    assert _auc([4, 3, 2, 1], [False, False, True, True]) == 1.0
    assert _auc([1, 1, 1, 1], [False, True, False, True]) == 0.5
    assert _auc([1, 2, 3, 4], [True, False, False, True]) == 0.5


def _names() -> tuple[list[str], set[str]]:
    """Item names from one pool, the gold ones drawn at random: the real ones in import
    order, and the gold ones. Names are random tags, so they carry no import order (data
    that does, under FIFO, shows which tasks came from elsewhere: see docs/quality.md)."""
    rng = random.Random(11)
    pool = [f"photo {rng.getrandbits(32):08x}" for _ in range(N_REAL + N_GOLD)]
    gold = set(rng.sample(pool, N_GOLD))
    return [n for n in pool if n not in gold], gold


def _answer(name: str) -> str:
    return "abcd"[int(name.split()[1], 16) % 4]


def _import(world: Any, project: Any, folder: Path, names: list[str], gold: bool) -> None:
    folder.mkdir(parents=True, exist_ok=True)
    rng = random.Random(len(names))
    rows = []
    for name in names:
        file = f"{name.replace(' ', '_')}.png"
        (folder / file).write_bytes(png((24 + rng.randrange(3), 18)))
        row: dict[str, Any] = {
            "data": {"name": name},
            "media": file,
            "predictions": [{"model": "m1", "value": {"label": "a"}, "score": rng.random()}],
        }
        if gold:
            row["gold"] = {"label": _answer(name)}
        rows.append(dumps(row))
    path = folder / "items.jsonl"
    path.write_text("\n".join(rows) + "\n")
    world.db.run(
        import_items,
        project,
        path,
        "jsonl",
        media=world.ctx.media,
        now=world.clock(),
        user_id=None,
        base_dir=folder,
    )


@pytest.fixture
def gold_project(world, tmp_path):
    ws = world.workspace()
    project = world.project(ws, schema=SCHEMA, gold_rate=GOLD_RATE, overlap=1)
    real, gold = _names()
    _import(world, project, tmp_path / "real", real, gold=False)
    world.clock.advance(3600)  # gold comes in later, from its own import
    _import(world, project, tmp_path / "gold", sorted(gold), gold=True)
    return ws, project, gold


def _number(text: str) -> int:
    """A handle, or any text, as a number (its bytes when it is base64url)."""
    try:
        return int.from_bytes(base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))[:8])
    except ValueError:
        return int.from_bytes(text.encode()[:8])


def _when(iso: str) -> float:
    return datetime.fromisoformat(iso.replace("Z", "+00:00")).timestamp()


def _observe(
    world: Any, ann: dict, project_id: int, gold_names: set[str], n: int, rounds: int
) -> list[dict[str, float]]:
    """Work as an annotator for ``rounds`` calls of ``next`` with ``n``; every signal each
    task shows, with whether it was gold (``is_gold``, known to the test only)."""
    media = httpx.Client(transport=world.transport, base_url="http://testserver")
    seen: list[dict[str, float]] = []
    for _ in range(rounds):
        started = time.perf_counter()
        tasks = ann["client"].next(project_id, n=n)
        next_ms = time.perf_counter() - started
        if not tasks:
            break
        names = [t["data"]["name"] for t in tasks]
        handle_rank = sorted(t["task"] for t in tasks)
        for pos, t in enumerate(tasks):
            url = t["media_url"]
            assert url and not re.search(r"[0-9a-f]{64}", url), "no content hash in a media URL"
            assert "item" not in parse_qs(urlsplit(url).query), "no item id in a media URL"
            started = time.perf_counter()
            got = media.get(url)
            media_ms = time.perf_counter() - started
            assert got.status_code == 200
            assert not re.search(r"[0-9a-f]{64}", str(dict(got.headers))), "nor in its answer"
            started = time.perf_counter()
            answer = ann["client"].submit(
                project_id, [{"id": uuid.uuid4().hex, "task": t["task"], "value": {"label": "a"}}]
            )
            submit_ms = time.perf_counter() - started
            pred = t["prediction"] or {}
            expires = float(parse_qs(urlsplit(url).query)["expires"][0])
            seen.append(
                {
                    "is_gold": t["data"]["name"] in gold_names,
                    "position": pos / max(1, len(tasks) - 1),
                    "order: out of sequence": float(pos > 0 and names[pos] < names[pos - 1]),
                    "order: place among names": abs(pos - sorted(names).index(names[pos])),
                    "handle": _number(t["task"]),
                    "handle: rank in batch": handle_rank.index(t["task"]),
                    "handle: length": len(t["task"]),
                    "media URL": _number(urlsplit(url).path.rsplit("/", 1)[-1]),
                    "media URL: length": len(url),
                    "media URL: expiry": expires - world.clock(),
                    "timing: next": next_ms,
                    "timing: media": media_ms,
                    "timing: submit": submit_ms,
                    "payload: size": len(json.dumps(t)),
                    "payload: keys": len(t) + 10 * len(t.get("data") or {}),
                    "prediction: present": float(bool(pred)),
                    "prediction: score": float(pred.get("score") or 0.0),
                    "lease expiry": _when(t["lease_expires_at"]) - world.clock(),
                    "media: size": len(got.content),
                    "media: headers": len(got.headers)
                    + 100 * ("etag" in got.headers)
                    + 1000 * ("last-modified" in got.headers),
                    "media: last modified": _number(got.headers.get("last-modified", "")),
                    "media: disposition": _number(got.headers.get("content-disposition", "")),
                    "submit: size": len(json.dumps(answer)),
                    "submit: fields": len(answer[0]) + 10 * (answer[0]["status"] == "accepted"),
                }
            )
        world.clock.advance(5)
    return seen


def test_no_signal_an_annotator_sees_tells_gold(world, gold_project):
    ws, project, gold_names = gold_project
    seen: list[dict[str, float]] = []
    for i in range(8):  # batches of 5 (position, order) and single tasks (timing per task)
        ann = world.user(f"ann{i}", role="annotator", workspace=ws)
        n, rounds = (5, 30) if i % 2 else (1, 90)
        seen += _observe(world, ann, project.id, gold_names, n=n, rounds=rounds)
    gold = [bool(s["is_gold"]) for s in seen]
    assert 0.1 < sum(gold) / len(gold) < 0.3, "gold was mixed in at the project's rate"
    aucs = {
        signal: _auc([s[signal] for s in seen], gold) for signal in seen[0] if signal != "is_gold"
    }
    telling = {k: round(v, 3) for k, v in aucs.items() if v > MAX_AUC}
    assert not telling, f"these signals tell gold from real items: {telling}"


def test_handles_are_personal_and_the_item_id_is_refused(world, gold_project):
    ws, project, _gold = gold_project
    a = world.user("ann_a", role="annotator", workspace=ws)
    b = world.user("ann_b", role="annotator", workspace=ws)
    task = a["client"].next(project.id)[0]
    assert set(task) == {"task", "data", "lease_expires_at", "prediction", "media_url"}
    item = world.item_ids(project.id, a, [task])[0]
    assert world.handle(project.id, b, item) != task["task"]  # nothing to compare notes by
    assert a["client"].next(project.id)[0]["task"] == task["task"]  # held: the same handle
    # another annotator's (or another project's) handle is unknown, located per entry
    value = {"label": "a"}
    with pytest.raises(LabelfarmAPIError) as refused:
        b["client"].submit(project.id, [{"task": task["task"], "value": value}])
    assert refused.value.status == 422
    assert refused.value.details == [
        {
            "index": 0,
            "field": "task",
            "reason": "unknown task: not one handed to you in this project",
        }
    ]
    with pytest.raises(LabelfarmAPIError) as old:
        a["client"].submit(project.id, [{"item_id": item, "value": value}])
    assert old.value.status == 422 and {d["field"] for d in old.value.details} == {
        "item_id",
        "task",
    }
    assert "'task'" in next(d["reason"] for d in old.value.details if d["field"] == "item_id")
    with pytest.raises(LabelfarmAPIError) as skip_old:
        a["client"].request(
            "POST", f"/projects/{project.id}/skip", json={"item_id": item, "reason": "x"}
        )
    assert skip_old.value.status == 422 and "'task'" in str(skip_old.value.details)
    stored = a["client"].submit(project.id, [{"task": task["task"], "value": value}])
    assert stored[0]["task"] == task["task"] and "item_id" not in stored[0]


def test_managers_and_exports_keep_item_ids(world, gold_project, tmp_path):
    ws, project, _gold = gold_project
    ann = world.user("ann", role="annotator", workspace=ws)
    manager = world.user("boss", role="manager", workspace=ws)["client"]
    tasks = ann["client"].next(project.id, n=3)
    ann["client"].submit(project.id, [{"task": t["task"], "value": {"label": "b"}} for t in tasks])
    out = manager.export(project.id, tmp_path / "out.jsonl")
    rows = [json.loads(line) for line in out.read_text().splitlines()]
    labelled = {r["id"] for r in rows if r.get("annotations")}
    assert labelled == set(world.item_ids(project.id, ann, tasks))


def test_a_skip_names_the_task(world, gold_project):
    ws, project, _gold = gold_project
    ann = world.user("ann", role="annotator", workspace=ws)
    task = ann["client"].next(project.id)[0]
    assert ann["client"].skip(project.id, task["task"], "blurry") == {
        "task": task["task"],
        "status": "skipped",
    }
    assert task["task"] not in {t["task"] for t in ann["client"].next(project.id, n=5)}
    # errors name the task, never the item behind it
    done = ann["client"].next(project.id)[0]
    ann["client"].submit(project.id, [{"task": done["task"], "value": {"label": "a"}}])
    with pytest.raises(LabelfarmAPIError) as refused:
        ann["client"].skip(project.id, done["task"], "too late")
    (item,) = world.item_ids(project.id, ann, [done])
    assert refused.value.status == 409 and str(item) not in refused.value.message


def test_the_cheating_annotator_is_paused(world, tmp_path):
    """The cheater of the issue: it answers carefully what it takes for gold (the first
    task of each batch, which was gold before), and everything else at random."""
    ws = world.workspace()
    project = world.project(ws, schema=SCHEMA, gold_rate=GOLD_RATE, accuracy_floor=0.6)
    real, gold = _names()
    _import(world, project, tmp_path / "real", real[:300], gold=False)
    _import(world, project, tmp_path / "gold", sorted(gold), gold=True)
    cheat = world.user("cheat", role="annotator", workspace=ws)
    rng = random.Random(5)
    for _ in range(60):
        reply = cheat["client"].request("POST", f"/projects/{project.id}/next", json={"n": 5})
        if not reply["tasks"]:
            break
        entries = []
        for pos, t in enumerate(reply["tasks"]):
            careful = _answer(t["data"]["name"])
            label = careful if pos == 0 else rng.choice("abcd")
            entries.append({"task": t["task"], "value": {"label": label}})
        cheat["client"].submit(project.id, entries)
    assert reply["tasks"] == [] and reply["annotator"]["state"] == "paused"


def test_a_batch_comes_back_in_the_same_order(world, gold_project):
    """Held leases come back in the order they were handed out (shuffled once, then kept),
    so asking again tells nothing new."""
    ws, project, _gold = gold_project
    ann = world.user("ann", role="annotator", workspace=ws)
    first = [t["task"] for t in ann["client"].next(project.id, n=8)]
    again = [t["task"] for t in ann["client"].next(project.id, n=8)]
    checked_out = ann["client"].checkout(project.id, 8, hours=1)
    assert first == again == [t["task"] for t in checked_out]
