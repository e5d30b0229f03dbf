"""Quality pages: the project's quality report, one page per annotator, the review queue.

Reports are rendered on the server from :mod:`labelfarm.services.quality`; the review page
lists the queue and draws one item at a time from the JSON API (``static/js/pages/review.js``:
number keys accept annotation N, ``o`` opens the override form). Clients see pseudonyms only.
A project with a segments field also gets, on its quality page, the speech-recognition
pre-fill's word error rate per language (``_asr_quality.html``), and on its review page the
word differences between transcripts (``_transcript_diff.html``, ``review_diff.js``).

The evidence behind a standing (why someone was paused, failed or resumed) is data; the pages
show it as sentences in the reader's language (:func:`evidence_text`), never as a raw dict.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Request
from fastapi.responses import Response

from labelfarm.services import auto_accept_report, overview, quality, review
from labelfarm.services.asr_report import asr_quality_report, has_transcripts
from labelfarm.web.context import ctx_of
from labelfarm.web.pages.render import page
from labelfarm.web.pages.route import PageRoute
from labelfarm.web.policies import PROJECT_MANAGE, PROJECT_QUALITY, PROJECT_REVIEW, Access, require

router = APIRouter(tags=["pages"], route_class=PageRoute, include_in_schema=False)


def _roles(access: Access) -> dict[str, Any]:
    return {
        "can_manage": access.role in PROJECT_MANAGE.roles,
        "can_review": access.role in PROJECT_REVIEW.roles,
        "identities": access.role != "client",
        "evidence_text": evidence_text,
        "reason_text": reason_text,
    }


Translate = Callable[..., str]


def _pct(x: Any) -> str:
    return f"{100 * float(x):.1f}%" if isinstance(x, int | float) else "—"


def _state(t: Translate, state: Any) -> str:
    return t(f"state.{state}") if state else "—"


def evidence_text(evidence: Any, t: Translate) -> list[str]:
    """The evidence of a standing as sentences in the catalogue ``t`` speaks: one per
    fact, in order; facts of unknown kinds as ``name: value``."""
    if not isinstance(evidence, dict) or not evidence:
        return []
    ev, lines = dict(evidence), []
    kind = ev.pop("kind", None)
    previous = ev.pop("previous", None)
    if kind == "manual" or "by_role" in ev:
        role = ev.pop("by_role", None) or "admin"
        lines.append(t("standing.ev.manual", role=t(f"role.{role}"), previous=_state(t, previous)))
    elif previous is not None:
        lines.append(t("standing.ev.previous", previous=_state(t, previous)))
    if "gold_answers" in ev:
        lower, upper = [*(ev.pop("credible_90", None) or []), None, None][:2]
        lines.append(
            t(
                "standing.ev.accuracy",
                mean=_pct(ev.pop("accuracy_mean", None)),
                lower=_pct(lower),
                upper=_pct(upper),
                n=ev.pop("gold_answers"),
                floor=_pct(ev.pop("floor", None)),
            )
        )
    failures = ev.pop("recent_failures", None)
    if failures:
        shown = ", ".join(
            t("standing.ev.failure", item=f.get("item_id"), score=f"{float(f.get('score', 0)):.2f}")
            for f in failures
            if isinstance(f, dict)
        )
        lines.append(t("standing.ev.failures", failures=shown))
    if "qualification_answers" in ev:
        lines.append(
            t(
                "standing.ev.qualification",
                n=ev.pop("qualification_answers"),
                mean=_pct(ev.pop("mean_score", None)),
                mark=_pct(ev.pop("pass_mark", None)),
            )
        )
    if "training_items" in ev:
        lines.append(t("standing.ev.training", n=ev.pop("training_items")))
    lines.extend(f"{key}: {_plain(value)}" for key, value in ev.items())
    return lines


def _plain(value: Any) -> str:
    """A value of an unknown fact as text: lists joined, mappings as ``name value``."""
    if isinstance(value, dict):
        return ", ".join(f"{k} {_plain(v)}" for k, v in value.items())
    if isinstance(value, list | tuple):
        return ", ".join(_plain(v) for v in value)
    return str(value)


def reason_text(status: dict[str, Any], t: Translate) -> str:
    """Why a standing is what it is: a rule's reason in the reader's language, a manager's
    in their own words."""
    evidence = status.get("evidence") or {}
    kind = evidence.get("kind") if isinstance(evidence, dict) else None
    if kind in ("accuracy_floor", "qualification"):
        return t(f"standing.reason.{kind}.{status.get('state')}")
    return str(status.get("reason") or "")


@router.get("/projects/{project_id}/quality")
async def quality_page(
    request: Request,
    project_id: int,
    access: Annotated[Access, Depends(require(PROJECT_QUALITY))],
) -> Response:
    """Agreement per field and class, gold accuracy with intervals, confusion, paused."""
    assert access.project is not None
    ctx = ctx_of(request)
    frame = await ctx.run(overview.project_frame, project_id)
    identities = access.role != "client"
    report = await ctx.run(quality.project_report, access.project, identities=identities)
    asr = None
    if has_transcripts(access.project):  # the ASR pre-fill per language (_asr_quality.html)
        asr = await ctx.run(asr_quality_report, access.project, ctx.now())
    auto = await ctx.run(auto_accept_report.report, access.project)  # _auto_accept.html
    return await page(
        request,
        "quality.html",
        access,
        **_roles(access),
        **frame,
        report=report,
        asr=asr,
        auto_accept=auto,
    )


@router.get("/projects/{project_id}/annotators/{user_id}")
async def annotator_page(
    request: Request,
    project_id: int,
    user_id: str,
    access: Annotated[Access, Depends(require(PROJECT_QUALITY))],
) -> Response:
    """One annotator (by pseudonym, or by id except for clients)."""
    assert access.project is not None
    ctx = ctx_of(request)
    identities = access.role != "client"
    person = await ctx.run(quality.annotator_report, access.project, user_id, identities=identities)
    frame = await ctx.run(overview.project_frame, project_id)
    return await page(request, "annotator.html", access, **_roles(access), **frame, person=person)


@router.get("/projects/{project_id}/review")
async def review_page(
    request: Request,
    project_id: int,
    access: Annotated[Access, Depends(require(PROJECT_REVIEW))],
) -> Response:
    """The review queue; the chosen item side by side (drawn by ``review.js``)."""
    assert access.project is not None
    ctx = ctx_of(request)
    frame = await ctx.run(overview.project_frame, project_id)
    queue = await ctx.run(review.review_queue, access.project, limit=200)
    return await page(request, "review.html", access, **_roles(access), **frame, queue=queue)
