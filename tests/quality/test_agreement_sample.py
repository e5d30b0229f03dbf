"""Agreement under adaptive overlap is measured on labels no one chose by their agreement.

Adaptive overlap (overlap 2, up to 3) on six items, classes a/b/c. Annotators A and B label
every item; where they disagree (items 3 and 5) the item stays open and C adds a third label:

    item:  1    2    3      4    5      6
    A:     a    a    b      c    a      b
    B:     a    a    a      c    b      b
    C:               a           a

The items with exactly two labels are the four that agreed: Fleiss' kappa over them is 1.
Measured on each item's first two labels (A and B everywhere), by hand:

Fleiss: P_bar = 4/6, p = (6, 4, 2) / 12, P_e = (36 + 16 + 4) / 144 = 7/18,
kappa = (2/3 - 7/18) / (1 - 7/18) = 5/11.
Krippendorff (nominal): o_aa = 4, o_bb = 2, o_cc = 2, o_ab = o_ba = 2; n_a = 6, n_b = 4,
n_c = 2, n = 12; alpha = 1 - (n - 1) * 4 / (2 * (24 + 12 + 8)) = 1 - 44/88 = 0.5.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from labelfarm.services import quality

A = {1: "a", 2: "a", 3: "b", 4: "c", 5: "a", 6: "b"}
B = {1: "a", 2: "a", 3: "a", 4: "c", 5: "b", 6: "b"}
C = {3: "a", 5: "a"}


@pytest.fixture
def adaptive(world, team, tmp_path: Path, label_all):
    project = world.project(team["ws"], overlap=2, max_overlap=3, target_confidence=0.9)
    world.add_items(project, 6, tmp_path)
    label_all(team["ann-a"]["client"], project.id, A)
    label_all(team["ann-b"]["client"], project.id, B)
    label_all(team["ann-c"]["client"], project.id, C)
    return project


def _report(world, project):
    with world.db.begin("read") as conn:
        return quality.project_report(conn, project, identities=True)


def test_adaptive_overlap_agreement_is_measured_on_each_items_first_labels(world, adaptive):
    report = _report(world, adaptive)
    assert report["n_annotations"] == 14  # C's two extra labels were taken
    field = report["fields"][0]
    assert field["fleiss_kappa"] == pytest.approx(5 / 11, abs=1e-6)  # not 1.000
    assert (field["fleiss_items"], field["fleiss_raters"]) == (6, 2)
    assert field["krippendorff_alpha"] == pytest.approx(0.5, abs=1e-6)
    assert report["agreement_sample"] == {"basis": "first", "labels_per_item": 2, "n_left_out": 2}
    assert field["n_items"] == 6
    # the confusion still counts every answer (it is not an agreement figure)
    assert sum(map(sum, field["confusion"]["matrix"])) == 14
    by_name = {a["display_name"]: a for a in report["annotators"]}
    assert by_name["ann-a"]["agreement"]["label"] == pytest.approx(4 / 6)
    assert "label" not in by_name["ann-c"]["agreement"]  # only extra labels: not compared


def test_the_annotator_report_uses_the_same_sample(world, team, adaptive):
    with world.db.begin("read") as conn:
        one = quality.annotator_report(conn, adaptive, str(team["ann-c"]["id"]), identities=True)
    assert one["fields"][0]["n"] == 2 and one["fields"][0]["agreement"] is None


def test_adaptive_overlap_from_one_label_reports_no_agreement(world, team, tmp_path, label_all):
    project = world.project(team["ws"], overlap=1, max_overlap=3)
    world.add_items(project, 4, tmp_path)
    label_all(team["ann-a"]["client"], project.id, {1: "a", 2: "b", 3: "a", 4: "c"})
    label_all(team["ann-b"]["client"], project.id, {1: "a", 2: "a", 3: "a", 4: "c"})
    report = _report(world, project)
    assert report["agreement_sample"]["basis"] == "none"
    field = report["fields"][0]
    assert field["krippendorff_alpha"] is None and field["fleiss_kappa"] is None
    assert field["mean_pairwise_similarity"] is None and field["n_pairs"] == 0


def test_without_adaptive_overlap_every_label_counts(world, team, tmp_path, label_all):
    project = world.project(team["ws"], overlap=3)
    world.add_items(project, 2, tmp_path)
    for name in ("ann-a", "ann-b", "ann-c"):
        label_all(team[name]["client"], project.id, {1: "a", 2: "b"})
    report = _report(world, project)
    assert report["agreement_sample"] == {"basis": "all", "labels_per_item": None, "n_left_out": 0}
    assert report["fields"][0]["fleiss_raters"] == 3


def test_the_page_says_which_labels_were_compared(world, team, adaptive):
    import httpx

    http = httpx.Client(transport=world.transport, base_url="http://testserver")
    page = http.get(
        f"/projects/{adaptive.id}/quality",
        headers={"Authorization": f"Bearer {team['manager']['token']}"},
    )
    assert page.status_code == 200
    assert 'id="agreement-sample"' in page.text
    assert "first 2 labels" in page.text and "2 labels left out" in page.text
