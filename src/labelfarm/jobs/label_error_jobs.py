"""Job kind ``label_errors``: find the items whose current label is likely wrong.

Params (all optional, checked by :func:`labelfarm.services.label_errors.check_run`):
``folds`` (2..10, default 5), ``top`` (suspects kept, default 100), ``version`` (default: the
promoted version, else the newest ready one).

The project's training items (:func:`labelfarm.services.models.training.split`: items whose
final label comes from their annotations or a review; never gold, whose answer is the truth
by definition, never the held-out set) are dealt into folds; for each fold the version's
predictor, with its parameters, is trained on the others and predicts it
(:func:`labelfarm.services.label_errors_folds.out_of_sample_proba`, through the job's
executor). Those out-of-sample probabilities, the annotators' answers and their fitted
Dawid-Skene confusion matrices are ranked (:mod:`labelfarm.ml.label_errors`); the top of
the list replaces the project's open issues and feeds the review queue. Only items whose
label came from annotations are suspected: a reviewer already decided the others.
"""

from __future__ import annotations

from typing import Any

from labelfarm.errors import InvalidInput
from labelfarm.jobs.context import JobContext
from labelfarm.jobs.kinds import job_kind
from labelfarm.ml.predictors import ItemInput
from labelfarm.schema import FieldType
from labelfarm.services import label_errors
from labelfarm.services.label_errors_folds import fold_numbers, out_of_sample_proba
from labelfarm.services.label_errors_rank import rank_suspects
from labelfarm.services.models import inputs, training
from labelfarm.services.models.training import Example
from labelfarm.services.projects import Project, load_project


@job_kind("label_errors", heavy=True, title="Find label errors")
def find_label_errors(ctx: JobContext) -> dict[str, Any]:
    params = label_errors.check_run(ctx.job.params)
    if ctx.job.project_id is None:
        raise InvalidInput("a label-error job belongs to a project", [{"field": "project_id"}])
    project = ctx.db.run(load_project, ctx.job.project_id)
    version = ctx.db.run(label_errors.choose_version, project.id, params["version"])
    field = _choice_field(training.version_fields(project, version))
    ctx.progress(0, None, "reading the labels")
    examples = _examples(ctx, project, field, params["folds"])
    items = _read(ctx, project.id, examples)
    found = {i.id for i in items}
    examples = [e for e in examples if e.item_id in found]
    folds = fold_numbers([e.item_id for e in examples], params["folds"], salt=str(project.id))
    k, n_items = params["folds"], len(items)

    def run(fn: Any, task: Any) -> Any:
        return ctx.executor.call(fn, task, cancelled=ctx.cancelled)

    def on_fold(done: int, total: int) -> None:
        ctx.progress(n_items + done, n_items + total, f"fold {done} of {total} predicted")

    proba = out_of_sample_proba(
        version.predictor,
        training.field_specs([field]),
        version.params,
        items,
        training.labels_of(examples, [field]),
        folds,
        run=run,
        on_fold=on_fold,
    )
    del items
    ids = [e.item_id for e in examples]
    votes = ctx.db.run(label_errors.votes_of, project.id, ids, field.name)
    model = ctx.db.run(label_errors.class_model, project, field)
    skip = ctx.db.run(label_errors.kept_labels, project.id)
    suspects, ranked = rank_suspects(
        model, field.name, examples, proba[field.name], votes, top=params["top"], skip=skip
    )
    stored = ctx.db.run(
        label_errors.store_run, project, field.name, suspects, job_id=ctx.job.id, now=ctx.now()
    )
    return {
        "version": version.version,
        "predictor": version.predictor,
        "field": field.name,
        "items": len(examples),
        "folds": k,
        "flagged": int(ranked.is_issue.sum()),
        "stored": stored,
        "model_weight": ranked.model_weight,
    }


def _choice_field(fields: list[FieldType]) -> FieldType:
    """The version's first ``choice`` field: the one whose labels are checked."""
    for f in fields:
        if f.type_name == "choice":
            return f
    raise InvalidInput(
        "label-error detection checks a choice field: this model version predicts none",
        [{"field": "version", "reason": "no choice field"}],
    )


def _examples(ctx: JobContext, project: Project, field: FieldType, k: int) -> list[Example]:
    """The training items with a label for ``field``, bounded."""
    options = set(getattr(field, "options", ()))
    data = ctx.db.run(training.split, project, [field])
    examples = [e for e in data.train if e.label.get(field.name) in options]
    if len(examples) < max(2 * k, 10):
        raise InvalidInput(
            f"{len(examples)} labelled items to check: cross-validation in {k} folds needs "
            f"at least {max(2 * k, 10)} (gold and held-out items are not checked)",
            [{"field": "folds", "reason": "too few labelled items"}],
        )
    if len(examples) > label_errors.MAX_ITEMS:
        raise InvalidInput(
            f"{len(examples)} labelled items: one run checks at most {label_errors.MAX_ITEMS}",
            [{"field": "items", "reason": "too many"}],
        )
    if len({e.label[field.name] for e in examples}) < 2:
        raise InvalidInput(
            "every labelled item has the same label: there is nothing to tell apart",
            [{"field": "items", "reason": "one class"}],
        )
    return examples


def _read(ctx: JobContext, project_id: int, examples: list[Example]) -> list[ItemInput]:
    """The predictor inputs of the examples' items, a batch at a time."""
    n, out = ctx.settings.predict_batch_items, []
    total = len(examples) + 1
    for start in range(0, len(examples), n):
        batch = [e.item_id for e in examples[start : start + n]]
        rows = ctx.db.run(inputs.input_rows, project_id, batch)
        out += inputs.to_inputs(ctx.media, rows)
        ctx.progress(len(out), total, "reading items")
    return out
