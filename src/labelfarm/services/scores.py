"""The queue's scores: ``items.score``, which the "score" ordering hands out highest first
(``ix_items_score``; :mod:`labelfarm.db.orderings`), and when a new model version is due.

**Scoring** (:func:`refresh_scores`, run by the ``score`` job): every open item with a model
output (:mod:`labelfarm.services.models.outputs`) gets the project's sampler's score
(:func:`labelfarm.ml.samplers.score`, in [0, 1], higher = label sooner) of its class
probabilities (and embeddings, for samplers that read them). While a correction round is open
(:func:`labelfarm.services.correction_rounds.round_sampling`) the ``confusion_pair`` sampler
on the round's pair scores instead, and the round's pinned items score :data:`PINNED`, above
everything. Held-out items (:func:`labelfarm.services.models.training.in_held_out`) get a
uniform random score: the held-out set stays a uniform sample, never chosen by a sampler.

**Writing** is short batches of :data:`BATCH` rows, each its own transaction: on SQLite the
single writer is held a few milliseconds per batch, on PostgreSQL the rows of a batch are
locked only until it commits, in item-id order (the order submissions and reclaims lock items
in, so none can deadlock with it). ``next`` skips rows a batch holds (``SKIP LOCKED``); a
submission waits at most for one batch. Items without an output keep their score (0 when
never scored: after every scored item).

**Retraining** (:func:`retrain_due`): a project with ``retrain_every`` = N > 0 is due for a
new version when N labels (annotations and reviews) arrived since its newest version was
created. Counted on the ``(project_id, id)`` indexes, reading at most N rows of each table.
"""

from __future__ import annotations

import math
import random
import time
from collections.abc import Callable, Iterator, Sequence
from typing import Any, NamedTuple

import numpy as np

from labelfarm.db.dialect import Dialect
from labelfarm.db.engine import Database
from labelfarm.db.tx import CoreTx, Sql, Tx, transaction, workflow
from labelfarm.errors import InvalidInput
from labelfarm.ml import samplers
from labelfarm.services.correction_rounds import RoundSampling, round_sampling
from labelfarm.services.models import outputs
from labelfarm.services.models.training import in_held_out
from labelfarm.services.projects import Project

#: Rows written per transaction. Measured (docs/scores.md): a row costs SQLite 7-20 us, so a
#: batch of 500 holds its single writer 5-10 ms (2,000 held it 13-45 ms on a busy machine, and
#: annotators' p99 rose during a refresh); on PostgreSQL a batch's rows stay locked as long.
BATCH = 500
MAX_BATCH = 10_000
PAGE = 10_000  # outputs read per read transaction
#: After each batch the job rests this many times the batch's own duration. SQLite: another
#: process waiting for the writer polls (its busy handler sleeps 1 ms, then up to 100 ms
#: between tries); without a rest the job takes the writer again at once and the waiting
#: annotators miss it batch after batch. PostgreSQL: leaves the CPU to the queue's queries.
REST = {Dialect.SQLITE: 2.0, Dialect.POSTGRESQL: 0.5}
PINNED = 2.0  # a correction round's pinned items: above every sampler score (at most 1)

SET_SCORE = Sql("UPDATE items SET score = :s WHERE id = :i AND project_id = :p")
# PostgreSQL: the batch's rows locked in id order (as submissions lock theirs), then one
# set-based update (one round trip instead of one per row)
LOCK_IN_ORDER = Sql(
    "SELECT id FROM items WHERE id IN :ids AND project_id = :p ORDER BY id FOR NO KEY UPDATE",
    postgresql_only=True,
)
SET_SCORES = Sql(
    "UPDATE items SET score = v.s FROM unnest(CAST(:ids AS bigint[]), "
    "CAST(:scores AS double precision[])) AS v(id, s) "
    "WHERE items.id = v.id AND items.project_id = :p",
    postgresql_only=True,
)


def write_scores(tx: Tx, project_id: int, pairs: Sequence[tuple[int, float]]) -> int:
    """Set ``items.score`` of the project's items from ``(item_id, score)`` pairs, in the
    caller's transaction; returns how many pairs were given. At most ``MAX_BATCH`` pairs:
    a refresh is many short transactions, not one long one. Scores must be finite."""
    if len(pairs) > MAX_BATCH:
        raise ValueError(f"at most {MAX_BATCH} scores per transaction, got {len(pairs)}")
    if not pairs:
        return 0
    rows = sorted((int(i), float(s)) for i, s in pairs)
    bad = [i for i, s in rows if not math.isfinite(s)]
    if bad:
        raise ValueError(f"scores must be finite numbers: items {bad[:5]}")
    if tx.dialect is Dialect.POSTGRESQL:
        ids = [i for i, _ in rows]
        tx.run(LOCK_IN_ORDER, {"ids": ids, "p": project_id})
        tx.run(SET_SCORES, {"ids": ids, "scores": [s for _, s in rows], "p": project_id})
    else:  # the single writer: nothing to lock, and a row's update takes microseconds
        tx.many(SET_SCORE, [{"i": i, "s": s, "p": project_id} for i, s in rows])
    return len(rows)


@transaction("write")
def write_batch(tx: CoreTx, project_id: int, pairs: Sequence[tuple[int, float]]) -> int:
    """One batch of scores, in its own short write transaction."""
    return write_scores(tx, project_id, pairs)


@transaction("read")
def current_round(tx: CoreTx, project_id: int) -> RoundSampling | None:
    """The open correction round's sampling, or None."""
    return round_sampling(tx, project_id)


@transaction("read")
def _page(tx: CoreTx, project_id: int, after: int, open_only: bool) -> list[outputs.Output]:
    return outputs.outputs_page(tx, project_id, after=after, limit=PAGE, open_only=open_only)


class Candidates(NamedTuple):
    """The open items with an output of the loop field, as arrays."""

    ids: np.ndarray  # (n,) int64
    proba: np.ndarray  # (n, k) float64, rows summing to 1
    embeddings: np.ndarray | None  # (n, d) float32, when every one has an embedding
    labeled_embeddings: np.ndarray | None  # (m, d) of items no longer open


def read_candidates(db: Database, project: Project, *, embeddings: bool) -> Candidates:
    """Read the open items' outputs of the loop field (a page per read transaction, kept as
    arrays); with ``embeddings``, also the embeddings of the items with outputs that are no
    longer open (labelled)."""
    field, k = _loop_field(project)
    ids: list[np.ndarray] = []
    probas: list[np.ndarray] = []
    embs: list[np.ndarray] | None = [] if embeddings else None
    for page in _pages(db, project.id, open_only=True):
        rows = [o for o in page if o.field == field and len(o.proba) == k]
        if not rows:
            continue
        ids.append(np.array([o.item_id for o in rows], dtype=np.int64))
        probas.append(np.stack([o.proba for o in rows]).astype(np.float64))
        if embs is not None:
            page_embs = _embeddings(rows)
            if page_embs is None:
                embs = None  # not every candidate has one (of one size): no embeddings
            else:
                embs.append(page_embs)
    all_ids = np.concatenate(ids) if ids else np.zeros(0, dtype=np.int64)
    proba = _normalised(np.concatenate(probas)) if probas else np.zeros((0, k))
    if not embs:
        return Candidates(all_ids, proba, None, None)
    emb = np.concatenate(embs)
    open_ids = set(all_ids.tolist())
    done = [
        o.embedding
        for page in _pages(db, project.id, open_only=False)
        for o in page
        if o.item_id not in open_ids
        and o.embedding is not None
        and len(o.embedding) == emb.shape[1]
    ]
    labeled = np.stack(done).astype(np.float32) if done else None
    return Candidates(all_ids, proba, emb, labeled)


def _embeddings(rows: list[outputs.Output]) -> np.ndarray | None:
    found = [o.embedding for o in rows if o.embedding is not None]
    if len(found) < len(rows) or len({len(e) for e in found}) > 1:
        return None
    return np.stack(found).astype(np.float32)


def _pages(db: Database, project_id: int, *, open_only: bool) -> Iterator[list[outputs.Output]]:
    after = 0
    while True:
        page = db.run(_page, project_id, after, open_only)
        if page:
            yield page
        if len(page) < PAGE:
            return
        after = page[-1].item_id


def _loop_field(project: Project) -> tuple[str, int]:
    for f in project.schema.fields:
        if f.type_name == "choice":
            return str(f.name), len(getattr(f, "options", ()))
    raise InvalidInput(
        "this project's schema has no choice field: there is nothing to score by",
        [{"field": "schema", "reason": "no choice field"}],
    )


def _normalised(proba: np.ndarray) -> np.ndarray:
    proba = np.clip(proba, 0.0, None)
    sums = proba.sum(axis=1, keepdims=True)
    k = proba.shape[1] if proba.ndim == 2 and proba.shape[1] else 1
    return np.where(sums > 0, proba / np.where(sums > 0, sums, 1.0), 1.0 / k)


def compute_scores(
    project: Project,
    candidates: Candidates,
    sampling: RoundSampling | None,
    rng: np.random.Generator,
) -> np.ndarray:
    """The candidates' scores: the project's sampler (or the round's confusion_pair), held-out
    items uniform random, a round's pinned items :data:`PINNED`."""
    n = len(candidates.ids)
    out = rng.random(n)  # the held-out items keep these
    held = np.array(
        [in_held_out(project.id, int(i), project.holdout_share) for i in candidates.ids], dtype=bool
    )
    chosen = ~held
    if chosen.any():
        name, pair = (
            (project.sampler, None) if sampling is None else ("confusion_pair", sampling.pair)
        )
        sampler = samplers.get_sampler(name)
        emb = candidates.embeddings
        if sampler.needs_embeddings and emb is None:
            raise InvalidInput(
                f"the sampler {name!r} reads the model's embeddings, and the model outputs "
                "have none: use a predictor that gives embeddings, or another sampler",
                [{"field": "sampler", "reason": "needs embeddings"}],
            )
        out[chosen] = samplers.score(
            name,
            candidates.proba[chosen],
            rng=rng,
            embeddings=emb[chosen] if emb is not None and sampler.needs_embeddings else None,
            labeled_embeddings=candidates.labeled_embeddings if sampler.needs_embeddings else None,
            pair=pair,
        )
    if sampling is not None and sampling.pinned:
        out[np.isin(candidates.ids, np.array(sampling.pinned, dtype=np.int64))] = PINNED
    return out


class Refreshed(NamedTuple):
    scored: int
    held_out: int
    pinned: int
    batches: int
    sampler: str
    read_s: float  # reading the outputs
    score_s: float  # the sampler
    write_s: float  # the batches of scores


@workflow
def refresh_scores(
    db: Database,
    project: Project,
    sampling: RoundSampling | None,
    *,
    rng: np.random.Generator | None = None,
    batch: int = BATCH,
    progress: Callable[[int, int], None] | None = None,
) -> Refreshed:
    """Score the project's open items with outputs (:func:`compute_scores`) and write the
    scores, ``batch`` rows per transaction. ``sampling``: the open correction round's (read
    by the caller: :func:`current_round`), or None. ``progress(done, total)`` after each batch
    (a job raises there to stop)."""
    if not 1 <= batch <= MAX_BATCH:
        raise InvalidInput(f"batch must be from 1 to {MAX_BATCH}", [{"field": "batch"}])
    rng = rng if rng is not None else np.random.default_rng(random.SystemRandom().getrandbits(64))
    name = project.sampler if sampling is None else "confusion_pair"
    wants = samplers.get_sampler(name).needs_embeddings
    started = time.perf_counter()
    candidates = read_candidates(db, project, embeddings=wants)
    read = time.perf_counter()
    values = compute_scores(project, candidates, sampling, rng)
    computed = time.perf_counter()
    pairs = list(zip(candidates.ids.tolist(), values.tolist(), strict=True))
    pinned = set(sampling.pinned) if sampling is not None else set()
    pairs += [(i, PINNED) for i in sorted(pinned - set(candidates.ids.tolist()))]
    pairs.sort()
    n_batches = 0
    rest = REST[db.dialect]
    for start in range(0, len(pairs), batch):
        began = time.perf_counter()
        db.run(write_batch, project.id, pairs[start : start + batch])
        n_batches += 1
        time.sleep(rest * (time.perf_counter() - began))
        if progress is not None:
            progress(min(start + batch, len(pairs)), len(pairs))
    written = time.perf_counter()
    held = sum(in_held_out(project.id, i, project.holdout_share) for i, _ in pairs)
    return Refreshed(
        len(pairs), held, len(pinned), n_batches, name,
        round(read - started, 3), round(computed - read, 3), round(written - computed, 3),
    )  # fmt: skip


# -- retraining every N labels ------------------------------------------------------------------
RETRAIN_PROJECTS = Sql("SELECT id FROM projects WHERE retrain_every > 0 ORDER BY id")
NEWEST_VERSION = Sql(
    "SELECT version, created_at, predictor, params, fields FROM model_versions "
    "WHERE project_id = :p ORDER BY version DESC LIMIT 1"
)
# the newest N labels of the project (by id, on its (project_id, id) index): how many of them
# came after the time asked; ids follow time, so N of N means at least N since then
_NEWEST = (
    "SELECT COUNT(*) FROM (SELECT created_at FROM {table} WHERE project_id = :p "
    "ORDER BY id DESC LIMIT :n) newest WHERE created_at > :since"
)
NEW_ANNOTATIONS = Sql(_NEWEST.format(table="annotations"))
NEW_REVIEWS = Sql(_NEWEST.format(table="reviews"))
OPEN_TRAIN = Sql(
    "SELECT id FROM jobs WHERE project_id = :p AND kind = 'train' "
    "AND state IN ('queued', 'running') LIMIT 1"
)


class Newest(NamedTuple):
    version: int
    created_at: float
    predictor: str
    params: str
    fields: str


@transaction("read")
def retrain_projects(tx: CoreTx) -> list[int]:
    """The projects with ``retrain_every`` set."""
    return [int(r[0]) for r in tx.rows(RETRAIN_PROJECTS, {})]


@transaction("read")
def retrain_due(tx: CoreTx, project: Project) -> Newest | None:
    """Whether the project is due for a new version: ``retrain_every`` labels since its
    newest version was created, and no train job queued or running. The newest version (what
    the new one trains like), or None when not due or there is no version yet (the first is
    trained by hand: it chooses the predictor)."""
    n = project.retrain_every
    if n <= 0 or tx.one(OPEN_TRAIN, {"p": project.id}) is not None:
        return None
    found = tx.one(NEWEST_VERSION, {"p": project.id})
    if found is None:
        return None
    newest = Newest(int(found[0]), float(found[1]), str(found[2]), str(found[3]), str(found[4]))
    params = {"p": project.id, "n": n, "since": newest.created_at}
    labels = 0
    for query in (NEW_ANNOTATIONS, NEW_REVIEWS):
        row = tx.one(query, params)
        labels += int(row[0]) if row else 0
    return newest if labels >= n else None


def describe(result: Refreshed) -> dict[str, Any]:
    """A score job's result, JSON-able."""
    return result._asdict()
