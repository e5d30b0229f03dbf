"""Progress is true: items done of the items to label, labels done of the labels wanted,
never above 100 %, gold apart.

Adaptive overlap (2 labels, up to 3) on six items; A and B label all, they disagree on items
3 and 5, C adds a third label to item 3 only. Items 1, 2, 4 and 6 want their 2 labels, item 3
got its 3 (the most), item 5 has 2 and wants a third: 13 labels done of 14 wanted, 5 of 6
items done. The old count read "13 of 12 labels (108.3 %)". Item 6 then becomes gold: it is
counted apart (every annotator answers gold), leaving 11 of 12 labels and 4 of 5 items.
"""

from __future__ import annotations

import uuid
from pathlib import Path

import httpx
import pytest
from sqlalchemy import text

A = {1: "a", 2: "a", 3: "b", 4: "c", 5: "a", 6: "b"}
B = {1: "a", 2: "a", 3: "a", 4: "c", 5: "b", 6: "b"}


@pytest.fixture
def adaptive(world, team, tmp_path: Path, label_all):
    project = world.project(team["ws"], overlap=2, max_overlap=3, target_confidence=0.9)
    world.add_items(project, 6, tmp_path)
    label_all(team["ann-a"]["client"], project.id, A)
    label_all(team["ann-b"]["client"], project.id, B)
    label_all(team["ann-c"]["client"], project.id, {3: "a"})
    return project


def test_adaptive_progress_never_passes_the_labels_wanted(world, team, adaptive):
    progress = team["manager"]["client"].progress(adaptive.id)
    assert progress["items"] == {"total": 6, "done": 5, "in_progress": 1, "not_started": 0}
    assert (progress["labels_done"], progress["labels_wanted"]) == (13, 14)
    assert progress["percent_done"] == pytest.approx(92.9)
    assert (progress["labels_extra"], progress["labels_most"], progress["max_overlap"]) == (
        0,
        18,
        3,
    )


def test_gold_items_are_counted_apart(world, team, adaptive, make_gold):
    make_gold(6, {"label": "b"})
    progress = team["manager"]["client"].progress(adaptive.id)
    assert progress["items"]["total"] == 5 and progress["items"]["done"] == 4
    assert (progress["labels_done"], progress["labels_wanted"]) == (11, 12)
    assert (progress["gold_items"], progress["gold_answers"]) == (1, 2)


def test_labels_beyond_what_items_want_are_extra(world, team, tmp_path, label_all):
    project = world.project(team["ws"], overlap=1)
    world.add_items(project, 2, tmp_path)
    label_all(team["ann-a"]["client"], project.id, {1: "a", 2: "b"})
    with world.db.begin("write") as conn:  # as a late submission would leave it
        conn.execute(text("UPDATE items SET n_submitted = 2 WHERE id = 1"))
    progress = team["manager"]["client"].progress(project.id)
    assert (progress["labels_done"], progress["labels_wanted"], progress["labels_extra"]) == (
        2,
        2,
        1,
    )
    assert progress["percent_done"] == 100.0


def test_the_project_page_shows_the_true_figures(world, team, adaptive):
    http = httpx.Client(transport=world.transport, base_url="http://testserver")
    page = http.get(
        f"/projects/{adaptive.id}", headers={"Authorization": f"Bearer {team['manager']['token']}"}
    )
    assert page.status_code == 200
    assert "13 of 14 labels" in page.text and "(92.9%)" in page.text
    assert "up to 3" in page.text


def test_a_reviewed_item_is_done_and_excluded_work_is_not_counted(world, team, tmp_path):
    """A review decision closes an item with the labels it has; what an annotator submits
    after a manager paused them (tasks taken before) is kept for the record but counts
    nowhere in progress, and a paused annotator gets no new task."""
    project = world.project(team["ws"], overlap=2)
    world.add_items(project, 2, tmp_path)
    a, b = team["ann-a"]["client"], team["ann-b"]["client"]
    for client in (a, b):
        tasks = client.next(project.id, n=5)
        assert len(tasks) == 2
        client.submit(
            project.id,
            [
                {"id": str(uuid.uuid4()), "task": t["task"], "value": {"label": "a"}}
                for t in tasks[:1]
            ],
        )
    manager = team["manager"]["client"]
    manager.request(
        "PUT",
        f"/projects/{project.id}/annotators/{team['ann-b']['id']}",
        json={"state": "paused", "reason": "spot check"},
    )
    assert b.next(project.id, n=5) == []  # not even the lease still held
    b.submit(
        project.id,
        [{"id": str(uuid.uuid4()), "task": t["task"], "value": {"label": "b"}} for t in tasks[1:]],
    )
    a_tasks = a.next(project.id, n=5)
    a.submit(
        project.id,
        [{"id": str(uuid.uuid4()), "task": t["task"], "value": {"label": "a"}} for t in a_tasks],
    )
    second = world.item_ids(project.id, team["ann-b"], tasks[1:])[0]
    team["reviewer"]["client"].request(
        "POST",
        f"/projects/{project.id}/review/{second}",
        json={"decision": "override", "value": {"label": "a"}},
    )
    progress = manager.progress(project.id)
    # b's second label was excluded: its item has one label counted, and is done because
    # the reviewer decided it
    assert progress["items"] == {"total": 2, "done": 2, "in_progress": 0, "not_started": 0}
    assert (progress["labels_done"], progress["labels_wanted"]) == (3, 3)
    assert (progress["annotations"], progress["annotators"]) == (3, 2)
