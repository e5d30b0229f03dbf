"""Calibration of item confidence: the report per choice field (ECE, reliability bins, the
calibrator in use) as JSON, and its reliability diagram as a server-drawn SVG for the quality
page. Registered on the quality routes' router (same prefix and tag): ``labelfarm.web.routes``
imports this module."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import Depends, Query, Request
from fastapi.responses import Response
from pydantic import Field

from labelfarm.errors import NotFound
from labelfarm.services import calibration_report
from labelfarm.web.context import ctx_of
from labelfarm.web.models.common import Out
from labelfarm.web.policies import PROJECT_QUALITY, Access, require
from labelfarm.web.responses import JSON, binary, documented, ok
from labelfarm.web.routes.quality import router
from labelfarm.web.schemas import Id

__all__ = ["router"]


class ReliabilityBin(Out):
    mean_confidence: float
    accuracy: float
    count: int


class FieldCalibration(Out):
    field: str
    n_gold: int = Field(description="gold items with labels: the evidence")
    accuracy: float | None = Field(description="share of them whose label is right")
    ece_raw: float = Field(description="expected calibration error of the raw confidence")
    ece: float = Field(description="ECE after calibration (each half by the other's fit)")
    bins_raw: list[ReliabilityBin]
    bins: list[ReliabilityBin]
    calibrator: dict[str, Any] = Field(description="the stored calibrator (method, a, b, ...)")


class CalibrationReport(Out):
    project_id: int
    n_bins: int = Field(description="equal-mass bins of the reliability diagram")
    min_gold: int = Field(description="gold items needed before a calibrator is fitted")
    fields: list[FieldCalibration]


@router.get("/quality/calibration", **documented(CalibrationReport, 401, 403, 404, 422))
async def calibration(
    request: Request,
    project_id: Id,
    access: Annotated[Access, Depends(require(PROJECT_QUALITY))],
) -> JSON:
    """Per choice field: ECE and reliability bins of the labels' confidence, raw and
    calibrated, measured on gold out of fit (see docs/calibration.md)."""
    assert access.project is not None
    return ok(await ctx_of(request).run(calibration_report.calibration_report, access.project))


@router.get(
    "/quality/calibration.svg",
    **documented(None, 401, 403, 404, 422, content=binary("image/svg+xml")),
)
async def calibration_svg(
    request: Request,
    project_id: Id,
    access: Annotated[Access, Depends(require(PROJECT_QUALITY))],
    field: Annotated[str, Query(max_length=64, description="a choice field")],
) -> Response:
    """The reliability diagram of one choice field (raw in amber, calibrated in blue)."""
    assert access.project is not None
    report = await ctx_of(request).run(calibration_report.calibration_report, access.project)
    found = [f for f in report["fields"] if f["field"] == field]
    if not found:
        raise NotFound(f"no choice field {field!r} in project {project_id}")
    return Response(
        calibration_report.reliability_svg(found[0]),
        media_type="image/svg+xml",
        headers={"Cache-Control": "no-store", "X-Content-Type-Options": "nosniff"},
    )
