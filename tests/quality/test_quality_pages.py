"""The quality, annotator and review pages render for the right roles, with no inline
script or style (strict CSP), and the catalogues carry their keys in every language."""

from __future__ import annotations

import re
from pathlib import Path

import httpx
import pytest

from labelfarm import i18n


@pytest.fixture
def labelled(world, team, tmp_path: Path, label_all):
    project = world.project(team["ws"], overlap=2)
    world.add_items(project, 2, tmp_path)
    label_all(team["ann-a"]["client"], project.id, {1: "a", 2: "b"})
    label_all(team["ann-b"]["client"], project.id, {1: "b", 2: "b"})
    return project


def _get(world, token: str, path: str) -> httpx.Response:
    http = httpx.Client(transport=world.transport, base_url="http://testserver")  # shares it
    return http.get(path, headers={"Authorization": f"Bearer {token}"})


def _strict(html: str) -> None:
    assert " style=" not in html
    for tag in re.findall(r"<script[^>]*>", html):
        assert "src=" in tag or 'type="application/json"' in tag, tag


@pytest.mark.parametrize("lang", ["en", "ta", "hi"])
def test_pages_render_for_reviewers(world, team, labelled, lang):
    token = team["reviewer"]["token"]
    pseudonym = team["ann-a"]["pseudonym"]
    for path, needle in (
        (f"/projects/{labelled.id}/quality", "confusion"),
        (f"/projects/{labelled.id}/annotators/{pseudonym}", pseudonym),
        (f"/projects/{labelled.id}/review", 'data-item="1"'),
    ):
        response = _get(world, token, f"{path}?lang={lang}")
        assert response.status_code == 200, (path, response.text[:300])
        _strict(response.text)
        assert needle in response.text
        assert i18n.catalogue(lang).t("quality.title") in response.text


def test_clients_get_the_report_but_not_the_queue(world, team, labelled):
    token = team["client"]["token"]
    page = _get(world, token, f"/projects/{labelled.id}/quality")
    assert page.status_code == 200
    assert "ann-a" not in page.text and team["ann-a"]["pseudonym"] in page.text
    assert _get(world, token, f"/projects/{labelled.id}/review").status_code == 403
    annotator = team["ann-a"]["token"]
    assert _get(world, annotator, f"/projects/{labelled.id}/quality").status_code == 403


def test_every_language_has_the_quality_keys():
    keys = {
        k
        for k in i18n.catalogue("en").messages
        if k.split(".")[0] in ("quality", "review", "reason", "state", "annotator")
    }
    assert len(keys) > 60
    for lang in ("ta", "hi"):
        assert keys <= set(i18n.catalogue(lang).messages)
