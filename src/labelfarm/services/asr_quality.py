"""Speech-recognition pre-fill only where it helps: measured per language tag, switched off
where its word error rate is too high.

Post-editing a transcript is slower than typing it from scratch once the pre-fill's word
error rate (WER) is high. So labelfarm measures the WER of the ASR pre-fill (predictions
with ``model = "asr"``, see :mod:`labelfarm.jobs.asr_jobs`) against what transcribers finally
submit, per language tag, and stops showing the pre-fill for a tag whose WER is above the
project's ``asr_wer_threshold``.

**The tag of an item** (:func:`language_of`) is its data's ``language`` when the import gave
one, else the first language tag of the ASR pre-fill's segments, else ``und``. Measuring and
the switch read it the same way from the same inputs, so every measurement counts towards
the tag the switch decides for. (Give items a ``language`` at import for a tag that does not
depend on what the speech model guessed.)

**Shadow items.** A share ``asr_shadow_share`` of the items (:func:`is_shadow`: a hash of the
project and the item, so the same for every process and every lease; each tag's items get the
share in expectation) are transcribed without pre-fill while the ASR runs unseen. Their
transcripts owe nothing to the pre-fill, so the WER measured on them is fair; a transcriber
who post-edits leaves the pre-fill's errors in, and a WER measured on such transcripts is too
low. Only measurements of transcripts made without the pre-fill (``shadow``) decide the
switch; :func:`measurement` says how a transcript is known to be one. :func:`measure_pending`
(run by the worker's periodic ``refit`` job) measures each submitted transcript once.

**The switch** (:func:`prefill_state`). Per tag, the model versions measured are taken newest
first (the version first measured last). The newest one with enough evidence — at least
:data:`MIN_WORDS` reference words over at least :data:`MIN_ITEMS` items, in shadow — decides:
pre-fill is off when its WER (errors / words) is above the threshold, on otherwise. So a tag
goes off once enough shadow transcripts show the model is poor, stays off while a newer
model has too little evidence, and comes back on when a newer version measures at or below
the threshold. A tag without enough evidence for any version keeps its pre-fill.

**Cost on the ``next`` path.** The hook (:func:`hide_asr_prefill`) runs only when a task's
chosen prediction is the ASR's; it reads the project's measurements once per
:data:`STATE_TTL` seconds per process (one grouped query over an index) and otherwise
computes nothing but a hash per item.
"""

from __future__ import annotations

import hashlib
import time
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any, NamedTuple

from labelfarm.db.engine import Database
from labelfarm.db.tx import Sql, Tx, transaction, workflow
from labelfarm.jsonutil import loads
from labelfarm.ml.text_metrics import word_errors
from labelfarm.schema.segments import transcript_text
from labelfarm.services.projects import Project

ASR_MODEL = "asr"  # the ``model`` of the speech-recognition job's predictions
UNDETERMINED = "und"  # BCP 47's tag for an undetermined language
MAX_TAG = 35  # asr_measurements.language
MIN_WORDS = 200  # reference words a model version needs in shadow before it decides
MIN_ITEMS = 5  # ... over at least this many items
STATE_TTL = 30.0  # seconds a process keeps a project's measurements for the switch


def language_of(data: Any, value: Any) -> str:
    """The language tag of an item: its data's ``language`` if a string, else the first
    language tag of ``value``'s segments (in time order), else ``und``."""
    if isinstance(data, Mapping):
        given = data.get("language")
        if isinstance(given, str) and given.strip():
            return given.strip()[:MAX_TAG]
    if isinstance(value, list):
        timed = [s for s in value if isinstance(s, Mapping)]
        timed.sort(key=_start)
        for seg in timed:
            tags = seg.get("language")
            if isinstance(tags, list) and tags and isinstance(tags[0], str) and tags[0]:
                return tags[0][:MAX_TAG]
    return UNDETERMINED


def _start(segment: Mapping[str, Any]) -> float:
    start = segment.get("start")
    return float(start) if isinstance(start, int | float) else 0.0


def is_shadow(project: Project, item_id: int) -> bool:
    """Whether the item is transcribed without pre-fill (a share ``asr_shadow_share`` of the
    project's items, the same in every process)."""
    digest = hashlib.sha256(f"asr-shadow:{project.id}:{item_id}".encode()).digest()
    return int.from_bytes(digest[:8], "big") < project.asr_shadow_share * 2.0**64


def segments_field(project: Project, value: Any) -> str | None:
    """The name of the first segments field of the schema that ``value`` (a prediction's or
    an annotation's value) carries, or None."""
    if not isinstance(value, Mapping):
        return None
    for f in project.schema.fields:
        if f.type_name == "segments" and isinstance(value.get(f.name), list):
            return str(f.name)
    return None


# -- the switch ------------------------------------------------------------------------------
class VersionRow(NamedTuple):
    """Shadow measurements of one model version on one tag."""

    language: str
    model_version: str
    items: int
    words: int
    errors: int
    first_measured: float


SHADOW_BY_VERSION = Sql(
    "SELECT language, model_version, COUNT(DISTINCT CASE WHEN words > 0 THEN item_id END), "
    "COALESCE(SUM(words), 0), COALESCE(SUM(errors), 0), MIN(measured_at) "
    "FROM asr_measurements WHERE project_id = :p AND shadow = :yes "
    "GROUP BY language, model_version",
    row=VersionRow,
)


@dataclass(frozen=True, slots=True)
class PrefillState:
    """Whether a tag's ASR pre-fill is shown, and the evidence that decided it."""

    language: str
    on: bool
    #: the model version that decided (the newest with enough evidence), else None
    model_version: str | None
    wer: float | None  # that version's shadow WER
    words: int  # its reference words in shadow
    items: int  # its items measured in shadow
    #: ``above`` (off), ``at_or_below`` (on) the threshold, or ``too_little_evidence`` (on)
    reason: str
    threshold: float

    def to_dict(self) -> dict[str, Any]:
        return {
            "language": self.language,
            "on": self.on,
            "model_version": self.model_version,
            "wer": self.wer,
            "words": self.words,
            "items": self.items,
            "reason": self.reason,
            "threshold": self.threshold,
        }


def enough(row: VersionRow) -> bool:
    """Whether a version's shadow measurements are evidence enough to decide."""
    return row.words >= MIN_WORDS and row.items >= MIN_ITEMS


def decide(rows: Iterable[VersionRow], threshold: float) -> dict[str, PrefillState]:
    """The state of each tag from its versions' shadow measurements (see the module text)."""
    by_tag: dict[str, list[VersionRow]] = {}
    for r in rows:
        by_tag.setdefault(r.language, []).append(r)
    out = {}
    for tag, versions in by_tag.items():
        versions.sort(key=lambda r: (r.first_measured, r.model_version), reverse=True)
        deciding = next((r for r in versions if enough(r)), None)
        if deciding is None:
            newest = versions[0]
            out[tag] = PrefillState(
                tag, True, None, _rate(newest), newest.words, newest.items,
                "too_little_evidence", threshold,
            )  # fmt: skip
            continue
        wer = _rate(deciding)
        above = wer is not None and wer > threshold
        out[tag] = PrefillState(
            tag, not above, deciding.model_version, wer, deciding.words, deciding.items,
            "above" if above else "at_or_below", threshold,
        )  # fmt: skip
    return out


def _rate(row: VersionRow) -> float | None:
    return row.errors / row.words if row.words else None


_cache: dict[int, tuple[float, list[VersionRow]]] = {}


def prefill_state(tx: Tx, project: Project, *, fresh: bool = False) -> dict[str, PrefillState]:
    """Per tag measured, whether the ASR pre-fill is shown. A tag never measured is absent
    (and shows its pre-fill). Read once per :data:`STATE_TTL` per process unless ``fresh``."""
    now = time.monotonic()
    hit = None if fresh else _cache.get(project.id)
    if hit is None or hit[0] < now:
        rows = tx.rows(SHADOW_BY_VERSION, {"p": project.id, "yes": True})
        hit = (now + STATE_TTL, rows)
        _cache[project.id] = hit
    return decide(hit[1], project.asr_wer_threshold)


@transaction("read")
def read_state(tx: Tx, project: Project) -> dict[str, PrefillState]:
    """:func:`prefill_state` as it is now, in a transaction of its own."""
    return prefill_state(tx, project, fresh=True)


def forget_state(project_id: int) -> None:
    """Drop a project's cached measurements (after measuring in this process)."""
    _cache.pop(project_id, None)


def hide_asr_prefill(
    tx: Tx, project: Project, shown: dict[int, Any], tasks: Mapping[int, Mapping[str, Any]]
) -> None:
    """Remove from ``shown`` (item id → chosen prediction, with ``model`` and ``value``) the
    ASR predictions not to show: on shadow items, and where the item's tag is off. The
    task gets no pre-fill then; the ASR's prediction stays stored and is measured."""
    states: dict[str, PrefillState] | None = None
    for item_id in [i for i, c in shown.items() if c.model == ASR_MODEL]:
        if is_shadow(project, item_id):
            del shown[item_id]
            continue
        if states is None:
            states = prefill_state(tx, project)
            if not any(not s.on for s in states.values()):
                states = {}
        if not states:
            continue
        value = loads(shown[item_id].value)
        name = segments_field(project, value)
        tag = language_of(tasks[item_id].get("data"), value.get(name) if name else None)
        state = states.get(tag)
        if state is not None and not state.on:
            del shown[item_id]


# -- measuring -------------------------------------------------------------------------------
BATCH = 200  # annotations measured per transaction
MAX_PER_RUN = 5000  # per call of measure_pending: the next periodic run goes on


class _Pending(NamedTuple):
    id: int
    item_id: int
    value: str
    created_at: float
    from_prediction: bool
    data: str


class _Prediction(NamedTuple):
    item_id: int
    model_version: str | None
    value: str
    created_at: float


# annotations of items with an ASR prediction, not measured yet (keyset by id); left out of
# labels (a paused or failed annotator's, sent back for relabelling): not measured
PENDING = Sql(
    "SELECT a.id, a.item_id, a.value, a.created_at, a.from_prediction, i.data "
    "FROM annotations a JOIN items i ON i.id = a.item_id "
    "WHERE a.project_id = :p AND a.id > :after AND a.excluded IS NULL "
    "AND EXISTS (SELECT 1 FROM predictions p WHERE p.item_id = a.item_id AND p.model = :asr) "
    "AND NOT EXISTS (SELECT 1 FROM asr_measurements m WHERE m.annotation_id = a.id) "
    "ORDER BY a.id LIMIT :n",
    row=_Pending,
)
ASR_PREDICTIONS = Sql(
    "SELECT item_id, model_version, value, created_at FROM predictions "
    "WHERE item_id IN :ids AND model = :asr ORDER BY id",
    row=_Prediction,
)
INSERT = Sql(
    "INSERT INTO asr_measurements (project_id, item_id, annotation_id, model_version, "
    "language, words, errors, shadow, measured_at, note) VALUES (:p, :item, :a, :version, "
    ":language, :words, :errors, :shadow, :now, :note) ON CONFLICT (annotation_id) DO NOTHING"
)
PROJECTS_WITH_ASR = Sql("SELECT DISTINCT project_id FROM predictions WHERE model = :asr")


@transaction("read")
def projects_with_asr(tx: Tx) -> list[int]:
    """The projects holding ASR predictions."""
    return sorted(int(r[0]) for r in tx.rows(PROJECTS_WITH_ASR, {"asr": ASR_MODEL}))


@transaction("read")
def _pending(
    tx: Tx, project: Project, after: int, n: int
) -> tuple[list[_Pending], dict[int, list[_Prediction]], dict[str, PrefillState]]:
    rows = tx.rows(PENDING, {"p": project.id, "after": after, "asr": ASR_MODEL, "n": n})
    preds: dict[int, list[_Prediction]] = {}
    ids = sorted({r.item_id for r in rows})
    if ids:
        for p in tx.rows(ASR_PREDICTIONS, {"ids": ids, "asr": ASR_MODEL}):
            preds.setdefault(p.item_id, []).append(p)
    return rows, preds, prefill_state(tx, project, fresh=True)


@transaction("write")
def _write(tx: Tx, rows: list[dict[str, Any]]) -> None:
    tx.many(INSERT, rows)


def measurement(
    project: Project,
    a: _Pending,
    preds: list[_Prediction],
    states: Mapping[str, PrefillState],
) -> dict[str, Any]:
    """The row measuring one transcript against the item's ASR pre-fill (``preds``: the
    item's ASR predictions, oldest first). A transcript made without the pre-fill (shadow)
    is measured against the newest prediction, one made with it against the one shown (the
    newest made before the transcript).

    Made without the pre-fill (``shadow``), as far as the server knows: the page does not
    say it showed a pre-fill (``from_prediction``: the annotate page sets it whenever its task
    had one), and the item is a shadow item, or no ASR prediction existed yet when the
    transcript was submitted, or the tag's pre-fill is off. A transcript the page says was
    pre-filled never counts, whatever changed since (the shadow share, the tag's state, the
    ASR job replacing an item's older predictions)."""
    before = [p for p in preds if p.created_at <= a.created_at]
    served = before[-1] if before else preds[-1]
    served_value = loads(served.value)
    name = segments_field(project, served_value)
    tag = language_of(loads(a.data), served_value.get(name) if name else None)
    off = tag in states and not states[tag].on
    if a.from_prediction:  # the page showed a pre-fill (since replaced, if none is older)
        shadow, note = False, "pre-fill shown" if before else "pre-fill replaced since"
    elif is_shadow(project, a.item_id):
        shadow, note = True, "shadow item"
    elif not before:
        shadow, note = True, "predicted after the transcript"
    elif off:
        shadow, note = True, "pre-fill off"
    else:
        shadow, note = False, "pre-fill shown"
    pred = preds[-1] if shadow else served
    value = loads(pred.value) if pred is not served else served_value
    name = segments_field(project, value)
    submitted = loads(a.value)
    words_, errors = 0, 0
    if name is None:
        note = "no segments in the prediction"
    elif not isinstance(submitted, Mapping) or not isinstance(submitted.get(name), list):
        note = "no transcript submitted"
    else:
        counted = word_errors(transcript_text(submitted[name]), transcript_text(value[name]))
        words_, errors = counted.reference, counted.errors
    return {
        "p": project.id,
        "item": a.item_id,
        "a": a.id,
        "version": (pred.model_version or "unknown")[:200],
        "language": tag,
        "words": words_,
        "errors": errors,
        "shadow": shadow,
        "note": note,
    }


@workflow
def measure_pending(db: Database, project: Project, now: float, *, limit: int = MAX_PER_RUN) -> int:
    """Measure the submitted transcripts of the project's items that have an ASR prediction
    and no measurement yet (up to ``limit``, in batches): the rows written."""
    written, after = 0, 0
    while written < limit:
        rows, preds, states = db.run(_pending, project, after, min(BATCH, limit - written))
        if not rows:
            break
        out = [{**measurement(project, a, preds[a.item_id], states), "now": now} for a in rows]
        db.run(_write, out)
        written += len(out)
        after = rows[-1].id
    if written:
        forget_state(project.id)
    return written
