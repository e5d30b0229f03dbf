"""The confusion report and correction rounds (:mod:`labelfarm.services.confusion_report`,
:mod:`labelfarm.services.correction_rounds`): read by managers, reviewers and clients; rounds
are opened and closed by managers."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Depends, Request
from pydantic import Field

from labelfarm.services import confusion_report, correction_rounds
from labelfarm.services.correction_rounds_errors import rounds_with_errors
from labelfarm.web.context import AppContext, ctx_of
from labelfarm.web.models.common import Out
from labelfarm.web.policies import PROJECT_MANAGE, PROJECT_QUALITY, Access, require
from labelfarm.web.responses import JSON, documented, ok
from labelfarm.web.schemas import Body, Id

router = APIRouter(prefix="/api/v1/projects/{project_id}", tags=["learning"])
manage = require(PROJECT_MANAGE)
read = require(PROJECT_QUALITY)


class RoundOut(Out):
    """One correction round."""

    id: int
    field: str = Field(description="the choice field (the project's loop field)")
    a: str = Field(description="one option of the pair")
    b: str = Field(description="the other option of the pair")
    budget: int = Field(description="new labels the round may spend")
    state: str = Field(description="open | closed")
    from_version: int = Field(description="the promoted model version it started from")
    pinned: int = Field(description="items the model got wrong, reopened and served first")
    labels_spent: int = Field(description="labels submitted since it opened (gold left out)")
    train_after: bool = Field(description="closing it queues a new model version")
    opened_by: int | None
    opened_at: str | None
    closed_by: int | None
    closed_at: str | None
    closed_reason: str | None = Field(description="budget | manager")
    before: float | None = Field(description="the pair's held-out error at from_version")
    after: float | None = Field(description="the same at the first version after it closed")
    after_version: int | None
    jobs: dict[str, int] | None = Field(default=None, description="jobs queued by closing it")


class RoundList(Out):
    rounds: list[RoundOut]


class ConfusionOut(Out):
    field: str | None = Field(description="the loop field (None: no promoted version)")
    options: list[str]
    promoted: int | None
    versions: list[dict[str, Any]] = Field(description="{version, promoted, state, n, ...}")
    same_set: bool = Field(description="every version evaluated on as many held-out items")
    pairs: list[dict[str, Any]] = Field(
        description="{a, b, held_out: {a_as_b, b_as_a, n, error}, labelled: {a_as_b, b_as_a, "
        "n}, confusions, errors: {version: error}, examples: [{item_id, truth, predicted, "
        "media_url}]}"
    )
    reason: str | None
    rounds: list[RoundOut]


class Evaluations(Out):
    jobs: dict[str, int] = Field(description="{version: evaluate job id}")


class OpenBody(Body):
    a: str = Field(max_length=200, description="an option of the loop field")
    b: str = Field(max_length=200, description="another option of the loop field")
    budget: int = Field(ge=1, le=correction_rounds.MAX_BUDGET, description="new labels")
    train_after: bool = Field(default=True, description="train a new version when it closes")


async def rounds_of(ctx: AppContext, access: Access) -> list[dict[str, Any]]:
    """The project's rounds (closing those whose budget is spent first), with their errors."""
    project = access.project
    assert project is not None
    await ctx.run(correction_rounds.close_spent_rounds, project.id, now=ctx.now())
    return await ctx.run(rounds_with_errors, project)


def _plain(found: dict[str, Any]) -> dict[str, Any]:
    shown = {k: v for k, v in found.items() if not k.endswith("_ts")}
    return {**shown, "before": None, "after": None, "after_version": None}


@router.get("/confusion", **documented(ConfusionOut, 401, 403, 404, 422))
async def confusion(
    request: Request, project_id: Id, access: Annotated[Access, Depends(read)]
) -> JSON:
    """The promoted version's most confused pairs of the loop field (held-out set and
    labelled items, both ways, with examples), each pair's held-out error per version, and
    the correction rounds."""
    ctx = ctx_of(request)
    assert access.project is not None
    report = await ctx.run(confusion_report.confusion_report, access.project)
    expires = ctx.now() + ctx.settings.media_url_seconds
    ws = access.project.workspace_id
    for pair in report["pairs"]:
        for ex in pair["examples"]:
            sha = ex.pop("media_sha256")
            ex["media_url"] = (
                ctx.media.sign(sha, access.user_id, expires, workspace=ws) if sha else None
            )
    for v in report["versions"]:
        v.pop("created_at", None)
    return ok({**report, "rounds": await rounds_of(ctx, access)})


@router.post("/confusion/evaluate", **documented(Evaluations, 401, 403, 404, 413, 422, status=202))
async def evaluate_versions(
    request: Request, project_id: Id, access: Annotated[Access, Depends(manage)]
) -> JSON:
    """Queue an ``evaluate`` job per ready version: every version evaluated again on the
    current held-out set, so that their pair errors compare fairly."""
    ctx = ctx_of(request)
    assert access.project is not None
    jobs = await ctx.run(
        confusion_report.evaluate_all, access.project, now=ctx.now(), actor_id=access.user_id
    )
    return ok({"jobs": jobs}, status_code=202)


@router.get("/correction-rounds", **documented(RoundList, 401, 403, 404, 422))
async def list_rounds(
    request: Request, project_id: Id, access: Annotated[Access, Depends(read)]
) -> JSON:
    """The project's correction rounds, newest first, with their pair's error before and
    after."""
    return ok({"rounds": await rounds_of(ctx_of(request), access)})


@router.post("/correction-rounds", **documented(RoundOut, 401, 403, 404, 409, 413, 422, status=201))
async def open_round(
    request: Request, project_id: Id, body: OpenBody, access: Annotated[Access, Depends(manage)]
) -> JSON:
    """Open a correction round for a pair of the loop field's options: the queue serves the
    items the model is most likely to confuse for the pair, and first those it got wrong. A
    project on another ordering is switched to "score" (audited)."""
    ctx = ctx_of(request)
    assert access.project is not None
    opened = await ctx.run(
        correction_rounds.open_round,
        access.project,
        a=body.a,
        b=body.b,
        budget=body.budget,
        train_after=body.train_after,
        now=ctx.now(),
        actor_id=access.user_id,
    )
    ctx.projects.drop(access.project.id)  # its ordering may have changed
    return ok(_plain(opened), status_code=201)


@router.post("/correction-rounds/close", **documented(RoundOut, 401, 403, 404, 413, 422))
async def close_round(
    request: Request, project_id: Id, access: Annotated[Access, Depends(manage)]
) -> JSON:
    """Close the project's open round now (a project has one at most; 404 when none is
    open): the queue goes back to the project's sampler and, unless the round was opened
    with train_after false, a new model version is trained (then promoted)."""
    ctx = ctx_of(request)
    assert access.project is not None
    closed = await ctx.run(
        correction_rounds.close_round, access.project, now=ctx.now(), actor_id=access.user_id
    )
    return ok(_plain(closed))
