"""The confusion report and correction rounds, on a text project whose first annotator calls
some cherries bananas (so the model learns that confusion): the report's counts, opening a
round (pinned items reopened, the ordering switched, the score job queued), what the score
job is told, the budget closing the round, and the pair's error before and after."""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest
from model_helpers import (
    CLASSES,
    PREDICTOR,
    SCHEMA,
    import_rows,
    item_ids,
    run_jobs,
    start,
    text_of,
    truth,
)
from sqlalchemy import text

from labelfarm.client import LabelfarmAPIError
from labelfarm.db.tx import transaction
from labelfarm.ml.predictors import PredictTask, predict_task
from labelfarm.services import correction_rounds
from labelfarm.services.confusion_report import pair_error
from labelfarm.services.models import inputs, versions
from labelfarm.services.models.outputs import write_outputs
from labelfarm.services.models.store import model_store
from labelfarm.services.models.training import in_held_out

BANANA, CHERRY = CLASSES.index("banana"), CLASSES.index("cherry")


@transaction("write")
def store_outputs(tx: Any, project_id: int, number: int, rows: list) -> None:
    write_outputs(tx, project_id, number, "label", rows)


@transaction("read")
def sampling_of(tx: Any, project_id: int) -> Any:
    return correction_rounds.round_sampling(tx, project_id)


def careless(text_: str) -> str:
    """Half the cherries (the jam and the kirsche) called bananas."""
    return "banana" if "cherry jam" in text_ or "kirsche" in text_ else truth(text_)


def label(world: Any, project_id: int, who: dict, answer: Any, n: int | None = None) -> int:
    """``who`` answers the tasks it is given (at most ``n``): the number answered."""
    done = 0
    while n is None or done < n:
        tasks = who["client"].next(project_id, n=min(50, (n - done) if n else 50))
        if not tasks:
            break
        entries = [
            {"task": t["task"], "value": {"label": answer(t["data"]["text"])}} for t in tasks
        ]
        who["client"].submit(project_id, entries)
        done += len(entries)
    return done


def write_model_outputs(world: Any, project_id: int, number: int, ids: list[int]) -> np.ndarray:
    """What the predict job stores for the loop field: the version's probabilities."""
    version = world.db.run(versions.get_version, project_id, number)
    rows = world.db.run(inputs.input_rows, project_id, ids)
    blob = model_store(world.ctx.settings).get(version.artifact)
    proba = predict_task(
        PredictTask(version.predictor, blob, inputs.to_inputs(world.ctx.media, rows))
    )
    p = np.asarray(proba["label"])
    world.db.run(store_outputs, project_id, number, [(i, p[k], None) for k, i in enumerate(ids)])
    return p


@pytest.fixture
def confused(world: Any, worker: Any, tmp_path: Any) -> dict[str, Any]:
    ws = world.workspace()
    manager = world.user("boss", role="manager", workspace=ws)
    project = world.project(ws, schema=SCHEMA, overlap=1, holdout_share=0.3)
    import_rows(world, project, [{"data": {"text": text_of(i)}} for i in range(96)], tmp_path)
    ann = world.user("ann", role="annotator", workspace=ws)
    assert label(world, project.id, ann, careless) == 96
    job = start(manager, f"/projects/{project.id}/models/train", {"predictor": PREDICTOR})
    (ran,) = run_jobs(world, worker)
    assert ran.state == "done", ran.error
    manager["client"].request("POST", f"/projects/{project.id}/models/1/promote")
    first = item_ids(world, project.id)
    import_rows(world, project, [{"data": {"text": text_of(i)}} for i in range(96, 144)], tmp_path)
    fresh = [i for i in item_ids(world, project.id) if i not in first]
    proba = write_model_outputs(world, project.id, 1, fresh)
    bob = world.user("bob", role="annotator", workspace=ws)
    assert label(world, project.id, bob, truth) == len(fresh)
    texts = {i: text_of(96 + k) for k, i in enumerate(fresh)}
    return {
        "ws": ws, "manager": manager, "project": world.load(project.id), "fresh": fresh,
        "predicted": {i: int(np.argmax(proba[k])) for k, i in enumerate(fresh)},
        "truth": {i: CLASSES.index(truth(texts[i])) for i in fresh}, "job": job,
    }  # fmt: skip


def test_pair_error_is_the_share_of_the_pairs_items_predicted_as_the_other():
    m = [[8, 2, 0], [1, 5, 4], [0, 6, 4]]
    assert pair_error(m, 1, 2) == pytest.approx((4 + 6) / (10 + 10))
    assert pair_error(m, 0, 1) == pytest.approx((2 + 1) / (10 + 10))
    assert pair_error([[0, 0], [0, 0]], 0, 1) is None


def test_the_report_counts_the_promoted_versions_confusions_both_ways(world, worker, confused):
    c, p = confused, confused["project"]
    report = c["manager"]["client"].request("GET", f"/projects/{p.id}/confusion")
    assert (
        report["field"] == "label"
        and report["promoted"] == 1
        and report["options"] == list(CLASSES)
    )
    wrong = {i for i in c["fresh"] if c["predicted"][i] != c["truth"][i]}
    assert wrong, "the careless labels taught the model a confusion"
    ev = c["manager"]["client"].request("GET", f"/projects/{p.id}/models/1")["evaluation"]
    matrix = ev["fields"]["label"]["confusion"]
    pairs = {(r["a"], r["b"]): r for r in report["pairs"]}
    bc = pairs[("banana", "cherry")]
    assert report["pairs"][0] is not None and bc["confusions"] == max(
        r["confusions"] for r in report["pairs"]
    )
    as_banana = sum(
        1 for i in c["fresh"] if c["truth"][i] == CHERRY and c["predicted"][i] == BANANA
    )
    as_cherry = sum(
        1 for i in c["fresh"] if c["truth"][i] == BANANA and c["predicted"][i] == CHERRY
    )
    assert as_banana > 0
    assert bc["labelled"] == {
        "a_as_b": as_cherry,
        "b_as_a": as_banana,
        "n": sum(1 for i in c["fresh"] if c["truth"][i] in (BANANA, CHERRY)),
    }
    assert bc["held_out"]["a_as_b"] == matrix[BANANA][CHERRY]
    assert bc["held_out"]["b_as_a"] == matrix[CHERRY][BANANA]
    assert bc["held_out"]["error"] == pytest.approx(pair_error(matrix, BANANA, CHERRY))
    assert bc["errors"] == {"1": bc["held_out"]["error"]}
    shown = bc["examples"]
    assert 0 < len(shown) <= 4 and {e["item_id"] for e in shown} <= wrong
    assert all(e["truth"] != e["predicted"] for e in shown)
    client = world.user("cli", role="client", workspace=c["ws"])
    assert client["client"].request("GET", f"/projects/{p.id}/confusion")["field"] == "label"
    annotator = world.user("an2", role="annotator", workspace=c["ws"])
    with pytest.raises(LabelfarmAPIError) as refused:
        annotator["client"].request("GET", f"/projects/{p.id}/confusion")
    assert refused.value.status == 403


def test_a_round_pins_what_the_model_got_wrong_and_closes_on_its_budget(world, worker, confused):
    c, p = confused, confused["project"]
    api = c["manager"]["client"]
    assert p.ordering != "score"
    pinnable = sorted(
        i for i in c["fresh"]
        if {c["truth"][i], c["predicted"][i]} == {BANANA, CHERRY}
        and not in_held_out(p.id, i, p.holdout_share)
    )  # fmt: skip
    assert pinnable
    with pytest.raises(LabelfarmAPIError) as bad:
        api.request(
            "POST",
            f"/projects/{p.id}/correction-rounds",
            json={"a": "banana", "b": "kiwi", "budget": 10},
        )
    assert bad.value.status == 422
    opened = api.request(
        "POST",
        f"/projects/{p.id}/correction-rounds",
        json={"a": "banana", "b": "cherry", "budget": 12},
    )
    assert opened["state"] == "open" and opened["from_version"] == 1 and opened["labels_spent"] == 0
    assert opened["pinned"] == min(len(pinnable), 6)
    assert world.load(p.id).ordering == "score"  # switched, and audited
    with world.db.engine.connect() as conn:
        actions = [r[0] for r in conn.execute(text("SELECT action FROM audit_log ORDER BY id"))]
        kinds = [
            r[0]
            for r in conn.execute(text("SELECT kind FROM jobs WHERE project_id = :p"), {"p": p.id})
        ]
        open_now = {
            r[0]
            for r in conn.execute(
                text("SELECT id FROM items WHERE project_id = :p AND is_open"), {"p": p.id}
            )
        }
    assert "project.settings" in actions and "correction_round.open" in actions
    assert "score" in kinds
    sampling = world.db.run(sampling_of, p.id)
    assert sampling.field == "label" and sampling.pair == (BANANA, CHERRY)
    assert len(sampling.pinned) == opened["pinned"] and set(sampling.pinned) <= set(pinnable)
    assert set(sampling.pinned) <= open_now, "the pinned items were reopened for one more label"
    with pytest.raises(LabelfarmAPIError) as twice:
        api.request(
            "POST",
            f"/projects/{p.id}/correction-rounds",
            json={"a": "apple", "b": "cherry", "budget": 5},
        )
    assert twice.value.status == 409
    # a third annotator labels: the round closes when 12 new labels are in
    import_rows_for_budget(world, p, c)
    cat = world.user("cat", role="annotator", workspace=c["ws"])
    assert label(world, p.id, cat, truth, n=11) == 11
    assert api.request("GET", f"/projects/{p.id}/correction-rounds")["rounds"][0]["state"] == "open"
    assert label(world, p.id, cat, truth, n=1) == 1
    (closed,) = api.request("GET", f"/projects/{p.id}/correction-rounds")["rounds"]
    assert closed["state"] == "closed" and closed["closed_reason"] == "budget"
    assert closed["labels_spent"] == 12 and closed["after_version"] is None
    assert world.db.run(sampling_of, p.id) is None
    # the corrections train the next version, then promoted: the report's before and after
    ran = {j.kind: j for j in run_jobs(world, worker)}
    assert ran["train"].state == "done", ran["train"].error
    report = api.request("GET", f"/projects/{p.id}/confusion")
    assert report["promoted"] == 2
    (after,) = report["rounds"]
    m = {
        v: api.request("GET", f"/projects/{p.id}/models/{v}")["evaluation"]["fields"]["label"][
            "confusion"
        ]
        for v in (1, 2)
    }
    assert after["after_version"] == 2
    assert after["before"] == pytest.approx(pair_error(m[1], BANANA, CHERRY))
    assert after["after"] == pytest.approx(pair_error(m[2], BANANA, CHERRY))
    assert [v["version"] for v in report["versions"]] == [1, 2]


def import_rows_for_budget(world: Any, p: Any, c: dict) -> None:
    """More unlabelled items, so there is work beyond the pinned items."""
    import tempfile
    from pathlib import Path

    with tempfile.TemporaryDirectory() as tmp:
        import_rows(world, p, [{"data": {"text": text_of(i)}} for i in range(144, 168)], Path(tmp))


def test_a_manager_closes_a_round(world, worker, confused):
    c, p = confused, confused["project"]
    api = c["manager"]["client"]
    opened = api.request(
        "POST", f"/projects/{p.id}/correction-rounds",
        json={"a": "apple", "b": "banana", "budget": 50, "train_after": False},
    )  # fmt: skip
    closed = api.request("POST", f"/projects/{p.id}/correction-rounds/close")
    assert closed["state"] == "closed" and closed["closed_reason"] == "manager"
    assert set(closed["jobs"]) == {"score"}  # no new version asked for
    with pytest.raises(LabelfarmAPIError) as again:
        api.request("POST", f"/projects/{p.id}/correction-rounds/close")
    assert again.value.status == 404  # none open now
    reviewer = world.user("rev", role="reviewer", workspace=c["ws"])
    with pytest.raises(LabelfarmAPIError) as refused:
        reviewer["client"].request("POST", f"/projects/{p.id}/correction-rounds/close")
    assert refused.value.status == 403
    listed = reviewer["client"].request("GET", f"/projects/{p.id}/correction-rounds")["rounds"]
    assert [r["id"] for r in listed] == [opened["id"]]


def test_without_a_promoted_version_the_report_says_why_and_no_round_opens(world):
    ws = world.workspace()
    manager = world.user("boss", role="manager", workspace=ws)
    project = world.project(ws, schema=SCHEMA)
    report = manager["client"].request("GET", f"/projects/{project.id}/confusion")
    assert report["field"] is None and report["pairs"] == [] and "promote" in report["reason"]
    with pytest.raises(LabelfarmAPIError) as refused:
        manager["client"].request(
            "POST",
            f"/projects/{project.id}/correction-rounds",
            json={"a": "apple", "b": "banana", "budget": 10},
        )
    assert refused.value.status == 409 and "promote" in str(refused.value)
    with pytest.raises(LabelfarmAPIError) as none_open:
        manager["client"].request("POST", f"/projects/{project.id}/correction-rounds/close")
    assert none_open.value.status == 404
