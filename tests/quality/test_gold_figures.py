"""Gold figures: one meaning per name (the observed share right, the estimated accuracy),
each labelled; gold failures newest first on the annotator's page and in the review queue.

ann-a answers 10 gold items, 8 right: 80 % right observed; the estimated gold accuracy is
the Beta(1, 1) posterior mean (1 + 8) / (2 + 10) = 75 %.
"""

from __future__ import annotations

import re
from html import unescape
from pathlib import Path

import httpx
import pytest

from labelfarm import i18n
from labelfarm.services import quality, review


@pytest.fixture
def graded(world, team, tmp_path: Path, label_all, gold_result):
    project = world.project(team["ws"], overlap=2)
    world.add_items(project, 4, tmp_path)
    label_all(team["ann-a"]["client"], project.id, {1: "a", 2: "b", 3: "a", 4: "c"})
    label_all(team["ann-b"]["client"], project.id, {1: "a", 2: "b", 3: "b", 4: "c"})
    for n in range(10):
        gold_result(project.id, 1 + n % 4, team["ann-a"]["id"], 1.0 if n < 8 else 0.0)
    return project


def _facts(html: str) -> dict[str, str]:
    """Each ``<dt>`` label of the page with the text of its ``<dd>``."""
    pairs = re.findall(r"<dt>(.*?)</dt>\s*<dd>(.*?)</dd>", html, flags=re.S)
    return {
        unescape(k).strip(): re.sub(r"\s+", " ", unescape(re.sub("<[^>]+>", "", v))).strip()
        for k, v in pairs
    }


@pytest.mark.parametrize("lang", ["en", "ta", "hi"])
def test_each_gold_figure_has_its_own_name(world, team, graded, lang):
    cat = i18n.catalogue(lang)
    http = httpx.Client(transport=world.transport, base_url="http://testserver")
    auth = {"Authorization": f"Bearer {team['manager']['token']}"}
    report = _facts(http.get(f"/projects/{graded.id}/quality?lang={lang}", headers=auth).text)
    assert report[cat.t("quality.gold_right")].startswith("80.0%")
    assert cat.t("quality.right_of", right=8, n=10) in report[cat.t("quality.gold_right")]
    assert report[cat.t("quality.gold_accuracy")] == "75.0%"
    pseudonym = team["ann-a"]["pseudonym"]
    person = _facts(
        http.get(f"/projects/{graded.id}/annotators/{pseudonym}?lang={lang}", headers=auth).text
    )
    assert person[cat.t("quality.gold_accuracy")] == "75.0%"
    assert cat.t("quality.gold_accuracy") != cat.t("quality.gold_right")


def test_gold_failures_are_newest_first(world, team, tmp_path, label_all, gold_result):
    project = world.project(team["ws"], overlap=1)
    world.add_items(project, 4, tmp_path)
    label_all(team["ann-a"]["client"], project.id, {1: "a", 2: "b", 3: "a", 4: "c"})
    for item in (3, 1, 4, 2):  # failed in this order, one minute apart
        world.clock.advance(60)
        gold_result(project.id, item, team["ann-a"]["id"], 0.0)
    with world.db.begin("read") as conn:
        person = quality.annotator_report(conn, project, str(team["ann-a"]["id"]), identities=True)
        queue = review.review_queue(conn, project)
    assert [g["item_id"] for g in person["gold_failures"]] == [2, 4, 1, 3]
    assert [e["item_id"] for e in queue["items"]] == [2, 4, 1, 3]
