"""The learning page of a project: the confusion report and its correction rounds.

Rendered on the server from :mod:`labelfarm.services.confusion_report` and
:mod:`labelfarm.services.correction_rounds_errors`: the promoted version's most confused pairs
(held-out set and labelled items, both ways, with example thumbnails through signed media
URLs), the rounds with their pair's held-out error before and after, a table of each pair's
error per version and the same as a chart (an SVG drawn here). The actions (open a round for
a pair, close it, evaluate every version again) go through the JSON API from
``static/js/pages/learning.js``.
"""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Depends, Request
from fastapi.responses import Response

from labelfarm.services import correction_rounds, overview
from labelfarm.services.confusion_report import confusion_report
from labelfarm.services.correction_rounds_errors import rounds_with_errors
from labelfarm.web.context import ctx_of
from labelfarm.web.pages.render import page
from labelfarm.web.pages.route import PageRoute
from labelfarm.web.policies import PROJECT_MANAGE, Access, require

router = APIRouter(tags=["pages"], route_class=PageRoute, include_in_schema=False)

WIDTH, HEIGHT, LEFT, RIGHT, TOP, BOTTOM = 640, 260, 48, 150, 12, 30
MAX_SERIES = 6


def series_pairs(report: dict[str, Any], rounds: list[dict[str, Any]]) -> list[tuple[str, str]]:
    """The pairs the chart draws: the rounds' pairs, else the report's top three."""
    out: list[tuple[str, str]] = []
    for a, b in [(r["a"], r["b"]) for r in rounds] + [(p["a"], p["b"]) for p in report["pairs"]]:
        key = (a, b) if (a, b) in out or (b, a) not in out else (b, a)
        if key not in out:
            out.append(key)
        if len(out) >= (len({(r["a"], r["b"]) for r in rounds}) or 3):
            break
    return out[:MAX_SERIES]


def error_table(report: dict[str, Any], pairs: list[tuple[str, str]]) -> list[dict[str, Any]]:
    """Per pair, its held-out error at each version (None: not evaluated)."""
    by_pair = {(p["a"], p["b"]): p for p in report["pairs"]}
    rows = []
    for a, b in pairs:
        found = by_pair.get((a, b)) or by_pair.get((b, a))
        errors = (found or {}).get("errors") or {}
        rows.append(
            {"a": a, "b": b, "errors": [errors.get(str(v["version"])) for v in report["versions"]]}
        )
    return rows


def chart(versions: list[int], rows: list[dict[str, Any]], rounds: list[dict]) -> dict[str, Any]:
    """The error table as an SVG line chart: x the versions, y the pair's error."""
    values = [e for r in rows for e in r["errors"] if e is not None]
    top = max([*values, 0.05]) * 1.1
    span_x = WIDTH - LEFT - RIGHT
    span_y = HEIGHT - TOP - BOTTOM

    def x(i: int) -> float:
        return LEFT + (span_x * i / (len(versions) - 1) if len(versions) > 1 else span_x / 2)

    def y(e: float) -> float:
        return TOP + span_y * (1 - e / top)

    series = []
    for k, r in enumerate(rows):
        dots = [
            {"x": round(x(i), 1), "y": round(y(e), 1), "version": versions[i], "error": e}
            for i, e in enumerate(r["errors"])
            if e is not None
        ]
        points = " ".join(f"{d['x']},{d['y']}" for d in dots)
        last = dots[-1] if dots else {"x": LEFT, "y": TOP}
        series.append(
            {"label": f"{r['a']} ↔ {r['b']}", "n": k % MAX_SERIES, "points": points, "dots": dots,
             "label_x": last["x"] + 6, "label_y": last["y"]}
        )  # fmt: skip
    position = {v: i for i, v in enumerate(versions)}
    starts = [
        {"x": round(x(position[r["from_version"]]), 1), "label": f"round {r['id']}"}
        for r in rounds
        if r["from_version"] in position
    ]
    ticks = [
        {"y": round(y(top * q / 4), 1), "label": f"{100 * top * q / 4:.0f}%"} for q in range(5)
    ]
    return {
        "width": WIDTH,
        "height": HEIGHT,
        "left": LEFT,
        "right": WIDTH - RIGHT,
        "bottom": HEIGHT - BOTTOM,
        "top": TOP,
        "x": [{"x": round(x(i), 1), "label": f"v{v}"} for i, v in enumerate(versions)],
        "y": ticks,
        "series": series,
        "starts": starts,
    }


@router.get("/projects/{project_id}/learning")
async def learning_page(
    request: Request,
    project_id: int,
    access: Annotated[Access, Depends(require(PROJECT_MANAGE))],
) -> Response:
    """The confusion report, the correction rounds and their before/after."""
    assert access.project is not None
    ctx = ctx_of(request)
    frame = await ctx.run(overview.project_frame, project_id)
    await ctx.run(correction_rounds.close_spent_rounds, project_id, now=ctx.now())
    report = await ctx.run(confusion_report, access.project)
    rounds = await ctx.run(rounds_with_errors, access.project)
    expires = ctx.now() + ctx.settings.media_url_seconds
    for pair in report["pairs"]:
        for ex in pair["examples"]:
            sha = ex.pop("media_sha256")
            ex["media_url"] = (
                ctx.media.sign(sha, access.user_id, expires, workspace=access.project.workspace_id)
                if sha
                else None
            )
    pairs = series_pairs(report, rounds)
    table = error_table(report, pairs)
    numbers = [v["version"] for v in report["versions"]]
    return await page(
        request,
        "learning.html",
        access,
        **frame,
        report=report,
        rounds=rounds,
        open_round=next((r for r in rounds if r["state"] == "open"), None),
        error_rows=table,
        chart=chart(numbers, table, rounds) if numbers and table else None,
    )
