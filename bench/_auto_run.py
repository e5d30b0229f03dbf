"""One seed of ``bench/auto_accept.py``, through labelfarm's services on a real database.

The items are imported into a project (SQLite, a fresh file per seed) in the seed's random
order; people have labelled the first ``labelled`` of them (the dataset's labels). The held-out
set is what the service says it is (``training.in_held_out``: the labelled items whose hash is
below the project's ``holdout_share``); the rest of the labelled items train the model. The
model's probabilities on the held-out items are the evidence for
``labelfarm.ml.auto_accept.search_thresholds`` (the function the auto_accept job calls); its
probabilities on the unlabelled items are stored as model outputs
(``services.models.outputs.write_outputs``, as the predict job does) and the thresholds are
recorded and applied by ``services.auto_accept`` (``record_thresholds``, ``apply_page``: what
the auto_accept job runs). The auto labels are then read back from ``auto_labels`` and scored
against the true labels.
"""

from __future__ import annotations

import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import orjson
from sqlalchemy import text

from _auto_data import FIELD, Images, make_model
from labelfarm.db.engine import Database, migrate
from labelfarm.db.tx import transaction
from labelfarm.ml.auto_accept import search_thresholds
from labelfarm.services import audit, auto_accept, projects, workspaces
from labelfarm.services.imports import import_items
from labelfarm.services.media import MediaStore
from labelfarm.services.models import outputs, training

NOW = 1_800_000_000.0


@dataclass(frozen=True)
class Protocol:
    labelled: int  # items people labelled (the first ones of the seed's order)
    target: float = 0.98
    holdout_share: float = 0.2  # the project default
    spot_check_share: float = 0.05  # the project default
    params: tuple[tuple[str, Any], ...] = ()  # the predictor's parameters


def _project(db: Database, images: Images, protocol: Protocol, order: np.ndarray, tmp: Path) -> Any:
    ws = db.run(workspaces.create_workspace, slug="bench", name="Bench", now=NOW)
    options = images.spec.options
    created = db.run(
        projects.create_project,
        workspace_id=ws["id"],
        name="fashion",
        schema={"fields": [{"name": FIELD, "type": "choice", "options": list(options)}]},
        now=NOW,
        actor_id=None,
        overlap=1,
        holdout_share=protocol.holdout_share,
        auto_accept_target=protocol.target,
        spot_check_share=protocol.spot_check_share,
    )
    project = db.run(projects.load_project, created["id"])
    path = tmp / "items.jsonl"
    path.write_bytes(b"".join(orjson.dumps({"data": {"image_no": int(i)}}) + b"\n" for i in order))
    media = MediaStore(str(tmp / "media"), b"bench")
    db.run(import_items, project, path, "jsonl", media=media, now=NOW, user_id=None)
    return project


def _item_ids(db: Database, project_id: int) -> list[int]:
    with db.engine.connect() as conn:
        q = text("SELECT id FROM items WHERE project_id = :p ORDER BY id")
        return [int(r[0]) for r in conn.execute(q, {"p": project_id})]


def _store_outputs(db: Database, project: Any, ids: list[int], proba: np.ndarray) -> None:
    for start in range(0, len(ids), 2000):
        rows = [(ids[k], proba[k], None) for k in range(start, min(start + 2000, len(ids)))]
        db.run(_write, project.id, rows)


@transaction("write")
def _write(tx: Any, project_id: int, rows: list[Any]) -> None:
    """Model outputs, as the predict job writes them (version 1, the loop field)."""
    outputs.write_outputs(tx, project_id, 1, FIELD, rows, now=NOW)


def run_seed(images: Images, protocol: Protocol, seed: int) -> dict[str, Any]:
    """One seed: the figures of its run."""
    order = np.random.default_rng([seed, 2026]).permutation(len(images.truth))
    with tempfile.TemporaryDirectory(prefix="lf-bench-auto-") as folder:
        tmp = Path(folder)
        db = Database(f"sqlite:///{tmp / 'bench.db'}")
        migrate(db)
        audit.use_key(db, b"bench-audit-key")
        project = _project(db, images, protocol, order, tmp)
        ids = _item_ids(db, project.id)
        image_of = dict(zip(ids, order.tolist(), strict=True))
        labelled = ids[: protocol.labelled]
        held = [i for i in labelled if training.in_held_out(project.id, i, project.holdout_share)]
        held_set = set(held)
        train = [i for i in labelled if i not in held_set]
        unlabelled = ids[protocol.labelled :]
        started = time.perf_counter()
        model = make_model(images, dict(protocol.params))
        model.fit(
            [images.items[image_of[i]] for i in train],
            {FIELD: [images.spec.options[images.truth[image_of[i]]] for i in train]},
        )
        fit_s = time.perf_counter() - started
        truth_held = np.array([images.truth[image_of[i]] for i in held])
        proba_held = model.predict_proba([images.items[image_of[i]] for i in held])[FIELD]
        proba_open = model.predict_proba([images.items[image_of[i]] for i in unlabelled])[FIELD]
        started = time.perf_counter()
        found = search_thresholds(proba_held, truth_held, protocol.target)
        _store_outputs(db, project, unlabelled, proba_open)
        rows = db.run(
            auto_accept.record_thresholds,
            project,
            version=1,
            field=FIELD,
            options=images.spec.options,
            found=found,
            target=protocol.target,
            job_id=None,
            now=NOW,
        )
        plan = auto_accept.Plan(1, FIELD, images.spec.options, {k: r for k, r in enumerate(rows)})
        after: int | None = 0
        while after is not None:
            after = db.run(auto_accept.apply_page, project, plan, after=after, now=NOW).after
        apply_s = time.perf_counter() - started
        with db.engine.connect() as conn:
            q = text("SELECT item_id, value, state FROM auto_labels WHERE project_id = :p")
            got = list(conn.execute(q, {"p": project.id}))
        db.engine.dispose()
    options = images.spec.options
    right = [options[images.truth[image_of[r.item_id]]] == r.value for r in got]
    eligible = [
        i for i in unlabelled if not training.in_held_out(project.id, i, protocol.holdout_share)
    ]
    truth_open = np.array([images.truth[image_of[i]] for i in unlabelled])
    return {
        "seed": seed,
        "items": len(ids),
        "labelled": len(labelled),
        "train": len(train),
        "evidence": len(held),
        "unlabelled": len(unlabelled),
        "eligible": len(eligible),
        "accuracy": round(float((proba_open.argmax(1) == truth_open).mean()), 4),
        "classes_with_threshold": sum(f.threshold is not None for f in found),
        "auto_labelled": len(got),
        "spot_checks": sum(r.state == "spot_check" for r in got),
        "auto_share": round(len(got) / max(len(eligible), 1), 4),
        "auto_share_unlabelled": round(len(got) / max(len(unlabelled), 1), 4),
        # none labelled: 0 (a run that labels nothing misses the target visibly)
        "auto_precision": round(float(np.mean(right)) if right else 0.0, 4),
        "errors": int(len(right) - sum(right)),
        "fit_s": round(fit_s, 1),
        "apply_s": round(apply_s, 2),
    }
