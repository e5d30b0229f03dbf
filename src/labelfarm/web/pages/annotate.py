"""The annotate page: where an annotator spends the working day.

The HTML is a small shell; everything else is the boot data (the project's fields, the
interface messages of the chosen language) and the ES modules that draw a task, take the
keys, prefetch the next tasks with their media and keep submissions in an outbox.
"""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Depends, Request
from fastapi.responses import Response

from labelfarm import i18n
from labelfarm.services import projects
from labelfarm.web.context import ctx_of
from labelfarm.web.pages.field_support import schema_gaps
from labelfarm.web.pages.images import SIZES
from labelfarm.web.pages.render import current_user, language, page
from labelfarm.web.pages.route import PageRoute
from labelfarm.web.policies import PROJECT_ANNOTATE, Access, require

router = APIRouter(tags=["pages"], route_class=PageRoute, include_in_schema=False)

PREFETCH = 10  # tasks kept ready ahead of the one on screen (a connection drop's worth)
CHECKOUT_BATCH = 50


@router.get("/projects/{project_id}/annotate")
async def annotate(
    request: Request,
    project_id: int,
    access: Annotated[Access, Depends(require(PROJECT_ANNOTATE))],
) -> Response:
    assert access.project is not None and access.principal is not None
    ctx = ctx_of(request)
    row = await ctx.run(projects.get_project_dict, project_id)
    user = await current_user(request, access)
    lang = language(request, user)
    schema = access.project.schema.to_dict()
    boot: dict[str, Any] = {
        "project": {
            "id": project_id,
            "name": row["name"],
            "guidelines": row["guidelines"],
            "workspace_id": row["workspace_id"],
            **schema,
        },
        "user": {"id": access.user_id, "name": access.principal.username},
        "lang": lang,
        "messages": i18n.catalogue(lang).messages,
        "csrf": access.principal.csrf_token,
        "prefetch": _int_param(request, "prefetch", PREFETCH, 1, 20),
        "checkout": min(CHECKOUT_BATCH, access.project.max_live_leases),
        "sizes": list(SIZES),
        "verify": request.query_params.get("mode") == "verify",  # see static/js/lib/verify.js
    }
    # a field or data kind the page cannot show: a notice instead of tasks (none are leased)
    gaps = schema_gaps(schema)
    return await page(
        request, "annotate.html", access, user=user, project=row, boot=boot, gaps=gaps
    )


def _int_param(request: Request, name: str, default: int, low: int, high: int) -> int:
    try:
        return max(low, min(high, int(request.query_params.get(name, default))))
    except ValueError:
        return default
