"""The models page: versions side by side with their evaluation, the confusion matrix as an
SVG labelled in the reader's language, which version pre-labels, the model jobs; managers
only."""

from __future__ import annotations

import re
import time
from collections.abc import Iterator
from typing import Any

import pytest
from lf_site import HTML, Site
from lf_world import TAMIL_NAMES, build_world

from labelfarm.services import job_queue, projects
from labelfarm.services.models import versions

OPTIONS = ["cat", "dog", "bird"]
CONFUSION = [[3, 1, 0], [0, 2, 1], [0, 0, 4]]


def _evaluation() -> dict[str, Any]:
    per_class = {
        "cat": {"precision": 1.0, "recall": 0.75, "f1": 0.857, "support": 4},
        "dog": {"precision": 0.667, "recall": 0.667, "f1": 0.667, "support": 3},
        "bird": {"precision": 0.8, "recall": 1.0, "f1": 0.889, "support": 4},
    }
    kind = {
        "n": 11,
        "accuracy": 9 / 11,
        "macro_f1": 0.804,
        "ece": 0.121,
        "per_class": per_class,
        "confusion": CONFUSION,
        "options": OPTIONS,
    }
    return {"n": 11, "n_gold": 11, "n_reviewed": 0, "left_out": 0, "fields": {"kind": kind}}


@pytest.fixture(scope="module")
def site(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Site]:
    world = build_world(tmp_path_factory.mktemp("models") / "data", n_images=1, n_choice=6)
    s = Site(world)
    db = s.app.state.ctx.db
    pid, now = world.projects["animals"], time.time()
    project = db.run(projects.load_project, pid)

    def job(kind: str, params: dict[str, Any]) -> int:
        return int(db.run(job_queue.enqueue, kind=kind, params=params, now=now, project_id=pid))

    for number in (1, 2):
        made = db.run(
            versions.start_training,
            project,
            job_id=job("train", {"predictor": "image-pixels-logreg.v1"}),
            predictor="image-pixels-logreg.v1",
            params={},
            fields=["kind"],
            created_by=None,
            now=now,
        )
        assert made.version == number
    db.run(
        versions.finish_training,
        pid,
        1,
        artifact="models/1",
        training_set="models/1/training-set.json",
        training_sha256="0" * 64,
        n_train=40,
        n_eval=11,
        train_seconds=2.5,
        evaluation=_evaluation(),
    )
    db.run(versions.promote, project, 1, now=now, actor_id=None)
    yield s
    s.transport.close()


def test_versions_side_by_side_with_their_evaluation(site: Site) -> None:
    pid = site.world.projects["animals"]
    r = site.client("manager").get(f"/projects/{pid}/models", headers=HTML)
    assert r.status_code == 200
    html = r.text
    assert not re.search(r"<script(?![^>]*\bsrc=)(?![^>]*application/json)[^>]*>", html)
    assert not re.search(r"\sstyle\s*=", html)
    rows = re.findall(r'<tr data-version="(\d+)" data-state="(\w+)"', html)
    assert rows == [("2", "training"), ("1", "ready")]  # newest first
    assert "Version 1 (image-pixels-logreg.v1) pre-fills" in html
    assert 'data-action="predict" data-version="1"' in html
    assert 'data-action="promote" data-version="1"' not in html  # promoted already
    assert "81.8%" in html and "0.804" in html and "0.121" in html  # accuracy, macro-F1, ECE
    assert "2.5 s" in html
    # the confusion matrix: one cell per pair, its count, the diagonal marked
    cells = re.findall(
        r'<g class="cell( diag)?" data-row="(\d)" data-col="(\d)" data-n="(\d+)"', html
    )
    assert len(cells) == 9
    assert {(int(r_), int(c)): int(n) for _d, r_, c, n in cells} == {
        (r_, c): CONFUSION[r_][c] for r_ in range(3) for c in range(3)
    }
    assert sorted((int(r_), int(c)) for d, r_, c, _n in cells if d) == [(0, 0), (1, 1), (2, 2)]
    # the training form: available image predictors enabled, text ones not for image items
    assert re.search(r'<option value="image-pixels-logreg.v1">', html)
    assert re.search(r'<option value="text-chargram-logreg.v1" disabled>', html)
    # the two queued training jobs are polled by the page
    assert html.count("data-open") == 2


def test_the_matrix_speaks_the_readers_language(site: Site) -> None:
    pid = site.world.projects["animals"]
    html = site.client("manager").get(f"/projects/{pid}/models?lang=ta", headers=HTML).text
    svg = html[html.index('<svg class="confusion-svg"') : html.index("</svg>")]
    for name in ("cat", "dog", "bird"):
        assert f">{TAMIL_NAMES[name]}</text>" in svg
    assert ">cat</text>" not in svg
    assert "குழப்ப அணி" in html


def test_managers_only_and_linked_from_the_project(site: Site) -> None:
    pid = site.world.projects["animals"]
    path = f"/projects/{pid}/models"
    assert site.client("annotator").get(path, headers=HTML).status_code == 403
    assert site.client("client").get(path, headers=HTML).status_code == 403
    assert site.client("outsider").get(path, headers=HTML).status_code == 404
    assert f'href="{path}"' in site.client("manager").get(f"/projects/{pid}", headers=HTML).text
    assert f'href="{path}"' not in site.client("client").get(f"/projects/{pid}", headers=HTML).text
