"""Auto-accept: the report per class (threshold, evidence, auto-labelled share, spot checks,
state) and starting a run. Registered on the quality routes' router (same prefix and tag):
``labelfarm.web.routes`` imports this module."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import Depends, Request
from pydantic import Field

from labelfarm.errors import InvalidInput
from labelfarm.services import auto_accept_report
from labelfarm.web.context import ctx_of
from labelfarm.web.job_start import start_job
from labelfarm.web.models.common import Out
from labelfarm.web.policies import PROJECT_MANAGE, PROJECT_QUALITY, Access, require
from labelfarm.web.responses import JSON, documented, ok
from labelfarm.web.routes.quality import router
from labelfarm.web.schemas import Id

__all__ = ["router"]


class Counted(Out):
    n: int
    correct: int
    precision: float | None = Field(description="correct / n (None when n = 0)")
    lower_bound: float = Field(description="one-sided 95% Clopper-Pearson lower bound")


class SpotChecks(Counted):
    pending: int = Field(description="spot checks still waiting for their human label")


class AutoAcceptClass(Out):
    option: str
    state: str = Field(description="active, superseded, withdrawn, or none (evidence too thin)")
    threshold: float | None = Field(description="the model's confidence from which it labels")
    version: int | None = Field(description="the model version the threshold is for")
    evidence: Counted = Field(description="held-out predictions at or above the threshold")
    auto_labelled: int = Field(description="items the model labelled with this class (live)")
    auto_share: float | None = Field(description="of the project's items (gold apart)")
    withdrawn_labels: int
    spot_checks: SpotChecks
    bound: float | None = Field(description="lower bound on evidence and spot checks together")


class AutoAcceptReport(Out):
    target: float = Field(description="the precision target (0: auto-accept is off)")
    spot_check_share: float
    holdout_share: float
    field: str | None = Field(description="the choice field the model labels")
    n_items: int
    auto_labelled: int
    auto_share: float | None
    classes: list[AutoAcceptClass]


class AutoAcceptJob(Out):
    """A job started: follow it at ``GET /api/v1/jobs/{id}``."""

    job: dict[str, Any] = Field(description="the job as GET /api/v1/jobs/{id} answers it")


@router.get("/auto-accept", **documented(AutoAcceptReport, 401, 403, 404, 422))
async def auto_accept_state(
    request: Request,
    project_id: Id,
    access: Annotated[Access, Depends(require(PROJECT_QUALITY))],
) -> JSON:
    """Per class: the threshold, its held-out evidence, the share of items the model labelled,
    the spot checks' precision and bound, and the state."""
    assert access.project is not None
    return ok(await ctx_of(request).run(auto_accept_report.report, access.project))


@router.post("/auto-accept/run", **documented(AutoAcceptJob, 401, 403, 404, 413, 422, status=202))
async def auto_accept_run(
    request: Request,
    project_id: Id,
    access: Annotated[Access, Depends(require(PROJECT_MANAGE))],
) -> JSON:
    """Queue an ``auto_accept`` job: thresholds from the held-out evidence of the promoted
    version, applied to the open items (a 422 when the project's target is 0)."""
    assert access.project is not None
    if access.project.auto_accept_target <= 0:
        raise InvalidInput(
            "auto-accept is off in this project: set auto_accept_target first",
            [{"field": "auto_accept_target", "reason": "0 (off)"}],
        )
    job = await start_job(ctx_of(request), access, "auto_accept", {})
    return ok({"job": job.to_dict()}, 202)
