"""What annotators see of their own standing, without learning which of their tasks was gold.

The summary is ``{"state", "reason", "qualification", "quality"}``: the state (qualifying,
active, paused, failed) and its reason; while qualifying, the progress ``{"done", "of"}``
(every qualification task is gold anyway, so it may move with each task); once active,
``quality``: ``{"band", "checked", "as_of"}`` or null, aggregated and delayed so that it
never moves with one task:

* only control gold answers (and misses) older than :data:`DELAY` count, up to ``as_of``, a
  whole hour: nothing done now shows before then, and the time shown points at no task;
* they count in whole blocks of :data:`BLOCK`: ``checked`` moves :data:`BLOCK` at a time, and
  the band is computed on those answers only (none yet: ``quality`` is null);
* ``band`` compares the Beta(1, 1) posterior mean of their scores, the estimate pausing uses,
  with the project's bar (its ``accuracy_floor``, or its qualification pass mark when it
  has no floor): ``low`` below the bar, ``watch`` less than :data:`WATCH_MARGIN` above it,
  ``good`` otherwise.

Submissions answer with feedback only for training items (:mod:`.gold`).
"""

from __future__ import annotations

import math
from typing import Any

from labelfarm.db.tx import Sql, Tx, transaction
from labelfarm.jsonutil import iso, loads
from labelfarm.services.projects import Project
from labelfarm.services.tasks import standing
from labelfarm.services.tasks.standing import Standing

DELAY = 3600.0  # seconds before a gold answer may count
PERIOD = 3600.0  # as_of is a multiple of this (a whole hour)
BLOCK = 10  # gold answers count in blocks of this many
WATCH_MARGIN = 0.1

COUNTED = Sql(
    "SELECT COUNT(*) FROM gold_results WHERE project_id = :p AND user_id = :u "
    "AND created_at < :as_of"
)
FIRST_SCORES = Sql(
    "SELECT COALESCE(SUM(score), 0) FROM (SELECT score FROM gold_results "
    "WHERE project_id = :p AND user_id = :u AND created_at < :as_of ORDER BY id LIMIT :k) s"
)


def band(project: Project, total: float, n: int) -> str:
    """``good``, ``watch`` or ``low``: the posterior mean of ``n`` scores summing to
    ``total`` against the project's bar."""
    mean = (1.0 + total) / (2.0 + n)
    bar = project.accuracy_floor or project.qualification_pass
    if mean < bar:
        return "low"
    return "watch" if mean < bar + WATCH_MARGIN else "good"


def quality(tx: Tx, project: Project, user_id: int, now: float) -> dict[str, Any] | None:
    """The annotator's quality band, or None before a first whole block of counted answers."""
    as_of = math.floor((now - DELAY) / PERIOD) * PERIOD
    params = {"p": project.id, "u": user_id, "as_of": as_of}
    row = tx.one(COUNTED, params)
    n = int(row[0]) if row else 0
    k = n - n % BLOCK
    if k == 0:
        return None
    total = tx.one(FIRST_SCORES, {**params, "k": k})
    return {
        "band": band(project, float(total[0]) if total else 0.0, k),
        "checked": k,
        "as_of": iso(as_of),
    }


def with_quality(
    tx: Tx, project: Project, user_id: int, current: Standing | None, now: float
) -> Standing | None:
    """The standing ``next`` answers with: ``current`` (None: the project keeps none), with
    the quality band of an active annotator in a project that measures."""
    if not project.hands_out_gold:  # nothing measured
        return current
    if current is None:
        current = Standing("active")
    if current.state == "active":
        current.quality = quality(tx, project, user_id, now)
    return current


def as_dict(current: Standing | None) -> dict[str, Any]:
    """The summary; a project without standing or gold: active, nothing measured."""
    return (current or Standing("active")).to_dict()


@transaction("read")
def own_standing(tx: Tx, project: Project, user_id: int, now: float) -> dict[str, Any]:
    """The annotator's summary, read only (an annotator new to the project is shown the
    standing they will start with)."""
    if not project.hands_out_gold:  # nothing measured
        return as_dict(None)
    row = tx.one(standing.STANDING, {"p": project.id, "u": user_id})
    state = row.state if row else standing.first_state(project)
    current = Standing(state, row.reason, loads(row.evidence or "{}")) if row else Standing(state)
    if state == "qualifying":
        done = standing.progress(tx, project, user_id)
        current.qualification_done, current.qualification_of = done.done, done.of
    elif state == "active":
        current.quality = quality(tx, project, user_id, now)
    return current.to_dict()
