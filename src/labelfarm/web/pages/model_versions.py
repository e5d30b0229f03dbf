"""The models page of a project: its model versions side by side, and the work on them.

Rendered on the server from :mod:`labelfarm.services.models.versions`: each version's numbers
(training set size, held-out set size, training time, accuracy, macro-F1, calibration error),
its per-class precision and recall and, per ``choice`` field, its confusion matrix drawn as
an SVG, with the options' display names in the reader's language. It says which version
pre-labels (the promoted one). The actions go through the JSON API from
``static/js/pages/models.js``: train a new version with one of the predictors available
here, promote, retire, pre-label now; the model jobs' progress is polled from
``GET /api/v1/jobs/{id}`` until they end.
"""

from __future__ import annotations

from typing import Annotated, Any

import anyio
from fastapi import APIRouter, Depends, Request
from fastapi.responses import Response

from labelfarm.ml.predictors import describe
from labelfarm.services import job_queue, overview
from labelfarm.services.models import versions
from labelfarm.web.context import ctx_of
from labelfarm.web.pages.render import current_user, language, page
from labelfarm.web.pages.route import PageRoute
from labelfarm.web.policies import PROJECT_MANAGE, Access, require

router = APIRouter(tags=["pages"], route_class=PageRoute, include_in_schema=False)

MODEL_JOBS = ("train", "predict", "evaluate")
RECENT_JOBS = 5


def display_name(field: dict[str, Any], name: str, lang: str) -> str:
    """An option (or the field itself) as the reader's language names it: the schema's
    ``display[lang]``, then English, then the canonical name."""
    shown = field.get("display") or {}
    return str((shown.get(lang) or {}).get(name) or (shown.get("en") or {}).get(name) or name)


def _rate(x: Any) -> float | None:
    return float(x) if isinstance(x, int | float) else None


def _confusion(matrix: list[list[int]], labels: list[str]) -> dict[str, Any]:
    """Cells with their share of the row (the right answer's items), for the picture."""
    cells = []
    for r, row in enumerate(matrix):
        total = sum(row)
        for c, n in enumerate(row):
            cells.append(
                {"row": r, "col": c, "n": n, "share": n / total if total else 0.0, "diag": r == c}
            )
    return {"labels": labels, "cells": cells, "size": len(labels)}


def field_evaluation(field: dict[str, Any], ev: dict[str, Any], lang: str) -> dict[str, Any]:
    """One field's evaluation as the page shows it: headline numbers, a row per class
    (precision, recall, F1, items) and, for a ``choice`` field, the confusion matrix."""
    options = list(ev.get("options") or field.get("options") or [])
    labels = [display_name(field, o, lang) for o in options]
    if "per_option" in ev:  # multichoice: each option as a question of its own (chosen or not)
        per = {
            o: (ev["per_option"].get(o) or {}).get("per_class", {}).get("yes", {}) for o in options
        }
    else:
        per = ev.get("per_class") or {}
    classes = [
        {
            "label": label,
            "precision": _rate(per.get(o, {}).get("precision")),
            "recall": _rate(per.get(o, {}).get("recall")),
            "f1": _rate(per.get(o, {}).get("f1")),
            "support": per.get(o, {}).get("support"),
        }
        for o, label in zip(options, labels, strict=True)
    ]
    matrix = ev.get("confusion")
    return {
        "name": field["name"],
        "title": display_name(field, field["name"], lang),
        "n": ev.get("n"),
        "accuracy": _rate(ev.get("accuracy")),
        "macro_f1": _rate(ev.get("macro_f1")),
        "ece": _rate(ev.get("ece")),
        "classes": classes,
        "confusion": _confusion(matrix, labels) if matrix and len(matrix) == len(labels) else None,
    }


def version_view(
    v: versions.ModelVersion, fields: list[dict[str, Any]], lang: str
) -> dict[str, Any]:
    """A version with its evaluation per field, in the order of the project's schema."""
    evaluated = (v.evaluation or {}).get("fields") or {}
    return {
        **v.to_dict(),
        "fields_evaluated": [
            field_evaluation(f, evaluated[f["name"]], lang)
            for f in fields
            if f["name"] in evaluated
        ],
    }


def predictor_choices(
    schema: dict[str, Any], described: list[dict[str, Any]]
) -> list[dict[str, Any]]:
    """The registry's predictors, each ``usable`` when its extra is installed and it reads
    a kind of data the project's items have (images, text), else with the reason why not."""
    kinds = set((schema.get("data") or {}).values())
    out = []
    for p in described:
        wanted = p.get("input")
        fits = not kinds or wanted in kinds or (wanted == "text" and "json" in kinds)
        usable = bool(p.get("available")) and fits
        reason = p.get("reason") or ""
        out.append({**p, "usable": usable, "fits": fits, "reason": reason})
    out.sort(key=lambda p: not p["usable"])  # the registry's order: the quickest first
    return out


@router.get("/projects/{project_id}/models")
async def models_page(
    request: Request,
    project_id: int,
    access: Annotated[Access, Depends(require(PROJECT_MANAGE))],
) -> Response:
    """The versions, their evaluation and confusion matrices, training and pre-labelling."""
    ctx = ctx_of(request)
    frame = await ctx.run(overview.project_frame, project_id)
    found = await ctx.run(versions.list_versions, project_id)
    jobs = await ctx.run(
        job_queue.list_jobs, project_id=project_id, kinds=MODEL_JOBS, limit=RECENT_JOBS
    )
    described = await anyio.to_thread.run_sync(describe)  # may look for optional extras
    user = await current_user(request, access)
    lang = language(request, user)
    schema = frame["project"]["schema"]
    fields = [f for f in schema.get("fields", []) if f.get("type") in ("choice", "multichoice")]
    shown = [version_view(v, fields, lang) for v in reversed(found)]  # newest first
    return await page(
        request,
        "models.html",
        access,
        user=user,
        **frame,
        versions=shown,
        promoted=next((v for v in shown if v["promoted"]), None),
        predictors=predictor_choices(schema, described),
        predicted_fields=fields,
        jobs=[j.to_dict() for j in jobs],
        open_states=job_queue.OPEN_STATES,
    )
