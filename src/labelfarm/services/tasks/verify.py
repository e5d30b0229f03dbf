"""Verify mode's accepts: an annotation that is a prediction confirmed unchanged.

The annotate page's verify mode shows a task's prediction and submits it as it is when the
annotator accepts it, with ``verified: true``. The claim is checked here, not trusted: an
entry is stored as verified only when its value equals the model's prediction its task shows
(:func:`.prefill.chosen`: the promoted version's, else the newest), both in their canonical
form. Any other entry, or a prediction the schema no longer accepts, is stored unverified; so
is the acceptance of a gold task's deliberately wrong pre-fill (:mod:`.prefill`): that answer
was never the model's. Only batches with a claim pay for the check (one indexed read).
"""

from __future__ import annotations

from labelfarm.db.tx import Tx
from labelfarm.jsonutil import dumps, loads
from labelfarm.schema import FieldError
from labelfarm.services.projects import Project
from labelfarm.services.tasks import prefill
from labelfarm.services.tasks.entries import Entry


def check_claims(tx: Tx, project: Project, entries: list[Entry]) -> None:
    """Keep ``verified`` on the entries whose value is their task's prediction; clear it on
    the others."""
    claimed = [e for e in entries if e.verified]
    if not claimed:
        return
    shown = prefill.chosen(tx, sorted({e.item_id for e in claimed}))
    for e in claimed:
        c = shown.get(e.item_id)
        e.verified = c is not None and canonical(project, c.value) == e.value


def canonical(project: Project, raw: str) -> str | None:
    """A stored prediction's value as an annotation of it is stored (validated, canonical,
    JSON-encoded); None when the project's schema refuses it."""
    try:
        return dumps(project.schema.validate(loads(raw)))
    except (FieldError, ValueError):
        return None
