"""The pre-fill a task shows: which of an item's predictions, and on gold, a deliberate error.

**Which prediction.** An item may carry several predictions (imported ones, an external
model server's, labelfarm's own model versions'). The promoted model version's wins (its
predictor's name as ``model`` and its number as ``model_version``); else the newest.

**Gold.** Predictions are written for gold items like any other (otherwise having one would
tell gold), so an annotator could pass gold by accepting every pre-fill unseen. On a share
of the gold items (the project's ``wrong_prefill_share``) the pre-fill shown is therefore
deliberately wrong: for each ``choice`` field the prediction got right, another option; for
a ``multichoice`` field it got right, one option flipped (within the field's ``min`` and
``max``). Which items, and which wrong answer, are decided by an HMAC of the project and
the item under a key derived from the instance's secret: fixed per item (a lease held over
several calls shows the same pre-fill), and no annotator can compute it. The answer keeps its
shape and its score (the model's, so its distribution is the one real tasks show): nothing
in it tells gold. A pre-fill already wrong is shown as it is.

**Speech recognition.** The ASR's prediction (``model`` ``asr``) is not shown on the share of
items transcribed without pre-fill to measure it, nor for a language tag whose measured word
error rate turned its pre-fill off (:mod:`labelfarm.services.asr_quality`); the task then
shows none.

Costs on the ``next`` path: one indexed read of the tasks' predictions when the project has
any, and in a project that hands out gold one more by primary key (the gold answers).
"""

from __future__ import annotations

import hashlib
import hmac
import os
from typing import Any, NamedTuple

from labelfarm.db.tx import Sql, Tx
from labelfarm.jsonutil import loads
from labelfarm.services import asr_quality
from labelfarm.services.projects import Project

_PURPOSE = b"labelfarm wrong pre-fill v1"
_PROCESS_KEY = os.urandom(32)  # when no key is given: fixed for this process only


class Chosen(NamedTuple):
    """The prediction a task shows for an item (its value as stored, JSON text)."""

    item_id: int
    model: str
    model_version: str | None
    value: str
    score: float | None


class _Row(NamedTuple):
    item_id: int
    model: str
    model_version: str | None
    value: str
    score: float | None
    promoted_predictor: str | None
    promoted_version: int | None


# one promoted version per project at most: the join adds no row
PREDICTIONS = Sql(
    "SELECT p.item_id, p.model, p.model_version, p.value, p.score, mv.predictor, mv.version "
    "FROM predictions p LEFT JOIN model_versions mv ON mv.project_id = p.project_id "
    "AND mv.promoted WHERE p.item_id IN :ids ORDER BY p.id",
    row=_Row,
)
GOLD = Sql("SELECT id, gold FROM items WHERE id IN :ids AND is_gold")


def key_from(secret: bytes) -> bytes:
    """The key deciding wrong pre-fills, derived from the instance's secret key."""
    return hmac.new(secret, _PURPOSE, hashlib.sha256).digest()


def chosen(tx: Tx, item_ids: list[int]) -> dict[int, Chosen]:
    """The prediction each item's task shows (before any gold disguise): the promoted
    version's, else the newest. Items without predictions are absent."""
    out: dict[int, Chosen] = {}
    best: dict[int, bool] = {}
    for r in tx.rows(PREDICTIONS, {"ids": item_ids}):
        promoted = (
            r.promoted_predictor is not None
            and r.model == r.promoted_predictor
            and r.model_version == str(r.promoted_version)
        )
        if promoted or not best.get(r.item_id, False):  # rows come oldest first
            out[r.item_id] = Chosen(r.item_id, r.model, r.model_version, r.value, r.score)
            best[r.item_id] = promoted
    return out


def attach(tx: Tx, project: Project, tasks: list[dict[str, Any]], key: bytes | None) -> None:
    """Set each task's ``prediction`` ({model, model_version, value, score}) to what it
    shows (``model_version`` is None for a prediction made elsewhere)."""
    by_item = {t["item_id"]: t for t in tasks}
    shown = chosen(tx, list(by_item))
    if any(c.model == asr_quality.ASR_MODEL for c in shown.values()):
        asr_quality.hide_asr_prefill(tx, project, shown, by_item)  # only where it helps
    if not shown:
        return
    gold: dict[int, Any] = {}
    if project.hands_out_gold and project.wrong_prefill_share > 0:
        gold = {r[0]: r[1] for r in tx.rows(GOLD, {"ids": list(shown)}) if r[1]}
    for item_id, c in shown.items():
        value = loads(c.value)
        answer = gold.get(item_id)
        if answer is not None:
            value = disguise(key or _PROCESS_KEY, project, item_id, value, loads(answer))
        by_item[item_id]["prediction"] = {
            "model": c.model,
            "model_version": c.model_version,
            "value": value,
            "score": c.score,
        }


def _draw(key: bytes, project_id: int, item_id: int, what: str) -> int:
    msg = f"{what}:{project_id}:{item_id}".encode()
    return int.from_bytes(hmac.new(key, msg, hashlib.sha256).digest()[:8], "big")


def is_wrong(key: bytes, project: Project, item_id: int) -> bool:
    """Whether the gold item's pre-fill is shown wrong (a share ``wrong_prefill_share``)."""
    return _draw(key, project.id, item_id, "wrong") < project.wrong_prefill_share * 2.0**64


def disguise(key: bytes, project: Project, item_id: int, value: Any, gold: Any) -> Any:
    """The pre-fill of a gold item as shown: ``value`` itself, or on the share chosen, with
    every choice or multichoice field it got right made wrong. Same shape, same fields."""
    if not (isinstance(value, dict) and isinstance(gold, dict)) or not is_wrong(
        key, project, item_id
    ):
        return value
    out = dict(value)
    pick = _draw(key, project.id, item_id, "option")
    for f in project.schema.fields:
        if f.name not in out or f.name not in gold:
            continue
        options = list(getattr(f, "options", ()))
        if f.type_name == "choice" and out[f.name] == gold[f.name]:
            others = [o for o in options if o != gold[f.name]]
            if others:
                out[f.name] = others[pick % len(others)]
        elif (
            f.type_name == "multichoice"
            and isinstance(out[f.name], list)
            and set(out[f.name]) == set(gold[f.name] or [])
        ):
            out[f.name] = _flip(out[f.name], options, f, pick)
    return out


def _flip(chosen_: list[str], options: list[str], field: Any, pick: int) -> list[str]:
    """``chosen_`` with one option added or removed, kept within the field's min and max
    (at the bounds: one option swapped for another)."""
    low, high = getattr(field, "min", 0), getattr(field, "max", len(options))
    inside = [o for o in chosen_ if o in options]
    outside = [o for o in options if o not in inside]
    option = options[pick % len(options)]
    if option in inside and len(inside) > low:
        return [o for o in inside if o != option]
    if option in outside and len(inside) < high:
        return [*inside, option]
    if inside and outside:  # at a bound: swap one for another
        gone = inside[pick % len(inside)]
        added = outside[(pick >> 8) % len(outside)]
        return [added if o == gone else o for o in inside]
    return inside
