"""Agreement, gold accuracy and standing on a small project with numbers worked by hand.

Three annotators label four items (choice a/b/c):

    item 1: a a a    item 2: b b b    item 3: a a b    item 4: c c c

Fleiss: P_bar = (1 + 1 + 1/3 + 1) / 4 = 5/6, P_e = (5² + 4² + 3²) / 12² = 50/144,
kappa = (5/6 - 50/144) / (1 - 50/144) = 0.744681.
Krippendorff (nominal): coincidences o_aa = 4, o_bb = 3, o_cc = 3, o_ab = o_ba = 1;
n_a = 5, n_b = 4, n_c = 3, n = 12; alpha = 1 - 11 * 2 / (2 * (20 + 15 + 12)) = 0.765957.
Pairwise: A-B 4/4, A-C 3/4, B-C 3/4, so A and B agree with the others 7/8, C 6/8.
"""

from __future__ import annotations

from pathlib import Path

import pytest
from scipy import stats
from sqlalchemy import text

from labelfarm.client import LabelfarmAPIError
from labelfarm.jsonutil import dumps
from labelfarm.services import quality

ANSWERS = {
    "ann-a": {1: "a", 2: "b", 3: "a", 4: "c"},
    "ann-b": {1: "a", 2: "b", 3: "a", 4: "c"},
    "ann-c": {1: "a", 2: "b", 3: "b", 4: "c"},
}


@pytest.fixture
def labelled(world, team, tmp_path: Path, label_all, gold_result):
    project = world.project(team["ws"], overlap=3)
    world.add_items(project, 4, tmp_path)
    for name, answers in ANSWERS.items():
        label_all(team[name]["client"], project.id, answers)
    for n in range(10):  # ann-a: 8 of 10 gold answers right; 4 of 5 on class a
        gold_result(
            project.id,
            1,
            team["ann-a"]["id"],
            1.0 if n < 8 else 0.0,
            gold_class="a" if n % 2 == 0 else "b",
        )
    with world.db.begin("write") as conn:
        conn.execute(
            text(
                "INSERT INTO annotator_status (project_id, user_id, state, reason, evidence, "
                "updated_at) VALUES (:p, :u, 'paused', 'gold accuracy below the floor', :e, :t)"
            ),
            {
                "p": project.id,
                "u": team["ann-c"]["id"],
                "e": dumps({"n": 10, "correct": 4}),
                "t": world.clock(),
            },
        )
    return project


def test_agreement_gold_confusion_and_paused(world, team, labelled):
    with world.db.begin("read") as conn:
        report = quality.project_report(conn, labelled, identities=True)
    field = report["fields"][0]
    assert field["fleiss_kappa"] == pytest.approx(0.744681, abs=1e-6)
    assert field["krippendorff_alpha"] == pytest.approx(0.765957, abs=1e-6)
    assert field["n_items"] == 4 and field["fleiss_items"] == 4 and field["fleiss_raters"] == 3
    per_class = {c["class"]: c for c in field["per_class"]}
    assert per_class["c"]["specific_agreement"] == pytest.approx(1.0)
    # specific agreement of a: sum n(n-1) = 6 + 2 = 8 over sum n(m-1) = 6 + 4 = 10
    assert per_class["a"]["specific_agreement"] == pytest.approx(0.8)
    assert field["confusion"]["matrix"] == [[5, 1, 0], [0, 3, 0], [0, 0, 3]]
    by_name = {a["display_name"]: a for a in report["annotators"]}
    assert by_name["ann-a"]["agreement"]["label"] == pytest.approx(7 / 8)
    assert by_name["ann-c"]["agreement"]["label"] == pytest.approx(6 / 8)
    gold = by_name["ann-a"]["gold"]
    assert (gold["n"], gold["mean"]) == (10, pytest.approx(9 / 12))
    assert gold["lower"] == pytest.approx(stats.beta.ppf(0.05, 9, 3), abs=1e-6)
    assert gold["upper"] == pytest.approx(stats.beta.ppf(0.95, 9, 3), abs=1e-6)
    assert by_name["ann-b"]["gold"]["n"] == 0
    assert [p["display_name"] for p in report["paused"]] == ["ann-c"]
    assert report["paused"][0]["evidence"] == {"n": 10, "correct": 4}
    assert by_name["ann-c"]["state"] == "paused"
    pairwise = report["fields"][0]["pairwise"]
    assert sorted(x for row in pairwise["agreement"] for x in row if x is not None) == [
        0.75,
        0.75,
        0.75,
        0.75,
        1.0,
        1.0,
        1.0,
        1.0,
        1.0,
    ]


def test_annotator_report_with_per_class_gold(world, team, labelled):
    client = team["manager"]["client"]
    client.request("POST", f"/projects/{labelled.id}/quality/refit")
    one = client.request("GET", f"/projects/{labelled.id}/annotators/{team['ann-a']['id']}/quality")
    assert one["gold"]["n"] == 10 and one["n_items"] == 4
    per_class = {c["class"]: c for c in one["gold_per_class"]}
    assert (per_class["a"]["n"], per_class["a"]["correct"]) == (5, 4.0)
    assert per_class["a"]["mean"] == pytest.approx(5 / 7)
    assert one["fields"][0]["agreement"] == pytest.approx(7 / 8)
    assert len(one["fields"][0]["confusion"]["matrix"]) == 3
    assert one["fields"][0]["model_accuracy"] > 0.5
    assert len(one["gold_failures"]) == 2


def test_clients_see_pseudonyms_only(world, team, labelled):
    client = team["client"]["client"]
    report = client.request("GET", f"/projects/{labelled.id}/quality")
    names = {"ann-a", "ann-b", "ann-c"}
    assert all("user_id" not in a and "display_name" not in a for a in report["annotators"])
    assert all("user_id" not in p for p in report["paused"])
    assert not names & set(dumps(report).replace('"', " ").split())
    pseudonym = report["annotators"][0]["annotator"]
    one = client.request("GET", f"/projects/{labelled.id}/annotators/{pseudonym}/quality")
    assert one["annotator"] == pseudonym and "user_id" not in one
    with pytest.raises(LabelfarmAPIError) as err:  # ids are not for clients
        client.request("GET", f"/projects/{labelled.id}/annotators/{team['ann-a']['id']}/quality")
    assert err.value.status == 404


def test_annotators_may_not_read_quality(world, team, labelled):
    annotator = team["ann-a"]["client"]
    for method, path in (
        ("GET", f"/projects/{labelled.id}/quality"),
        ("GET", f"/projects/{labelled.id}/annotators/{team['ann-a']['id']}/quality"),
        ("POST", f"/projects/{labelled.id}/quality/refit"),
    ):
        with pytest.raises(LabelfarmAPIError) as err:
            annotator.request(method, path)
        assert err.value.status == 403
    with pytest.raises(LabelfarmAPIError) as err:
        team["client"]["client"].request("POST", f"/projects/{labelled.id}/quality/refit")
    assert err.value.status == 403
