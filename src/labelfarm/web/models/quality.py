"""Answers of the quality routes: reports, refitting, the review queue and decisions.

Clients see annotators by pseudonym only: ``user_id`` and ``display_name`` (and a
reviewer's ``reviewer_id`` and ``reviewer_name``) are left out of their answers.
"""

from __future__ import annotations

from typing import Any

from pydantic import Field

from labelfarm.web.models.common import Out

Number = float | None  # a coefficient; None where it is undefined


class Accuracy(Out):
    """Scored gold answers: what was observed, and the gold accuracy estimated from it (a
    Beta(1, 1) posterior with its credible interval)."""

    n: int = Field(description="gold answers scored")
    correct: float = Field(description="the sum of their scores")
    mean: float = Field(description="estimated gold accuracy: the posterior mean")
    lower: float = Field(description="the credible interval's lower end")
    upper: float = Field(description="the credible interval's upper end")
    observed: Number = Field(description="gold answers right: correct / n (None when n = 0)")


class ClassAccuracy(Accuracy):
    class_: str = Field(alias="class")


class ClassAgreement(Out):
    class_: Any = Field(alias="class")
    n: int
    fleiss_kappa: Number = None
    specific_agreement: Number = None
    krippendorff_alpha: Number = None


class Confusion(Out):
    classes: list[Any]
    reference: str = Field(description="where each row's class comes from")
    matrix: list[list[int]]


class Pairwise(Out):
    annotators: list[str]
    agreement: list[list[Number]]
    n_shared: list[list[int]]


class FieldAgreement(Out):
    """A field's agreement; the coefficients that apply to its type."""

    field: str
    type: str
    level: str | None = None
    n_items: int | None = None
    krippendorff_alpha: Number = None
    fleiss_kappa: Number = None
    fleiss_items: int | None = None
    fleiss_raters: int | None = None
    per_class: list[ClassAgreement] | None = None
    confusion: Confusion | None = None
    mean_pairwise_similarity: Number
    n_pairs: int
    pairwise: Pairwise | None = None


class _Person(Out):
    annotator: str = Field(description="the pseudonym")
    user_id: int | None = None
    display_name: str | None = None


class AnnotatorSummary(_Person):
    n_items: int
    agreement: dict[str, Number]
    gold: Accuracy
    model_accuracy: dict[str, Number]
    state: str


class StatusRecord(Out):
    annotator: str | None = None
    state: str
    reason: str
    evidence: dict[str, Any]
    since: str | None
    user_id: int | None = None
    display_name: str | None = None


class AgreementSample(Out):
    """Which labels agreement is measured on (never a sample chosen by agreement)."""

    basis: str = Field(
        description="all: every label; first: each item's first labels_per_item labels "
        "(adaptive overlap asks for more labels where the first disagree); none: not "
        "measurable (adaptive overlap from one label)"
    )
    labels_per_item: int | None
    n_left_out: int = Field(description="labels not compared")


class ProjectQuality(Out):
    project_id: int
    n_items: int
    n_annotations: int
    n_annotators: int
    n_gold_results: int
    gold: Accuracy
    agreement_sample: AgreementSample
    fields: list[FieldAgreement]
    annotators: list[AnnotatorSummary]
    paused: list[StatusRecord]
    models_fitted_at: str | None
    credible: float = Field(description="the mass of each credible interval")


class AnnotatorConfusion(Out):
    classes: list[Any]
    matrix: list[list[float]]


class AnnotatorField(Out):
    field: str
    type: str
    n: int
    agreement: Number
    model_accuracy: Number = None
    confusion: AnnotatorConfusion | None = None
    weight: Number = None


class StandingActor(Out):
    """Who changed a standing: a role and a pseudonym (their name and id except to clients)."""

    role: str
    pseudonym: str | None
    user_id: int | None = None
    display_name: str | None = None


class StandingEvent(Out):
    state: str
    reason: str
    evidence: dict[str, Any] = Field(description="what the change rests on; `kind` says which")
    at: str | None
    by: StandingActor | None = Field(description="none: a rule of the project")


class GoldFailure(Out):
    item_id: int
    gold_class: str | None
    score: float
    qualification: bool
    at: str | None


class AnnotatorQuality(_Person):
    project_id: int
    n_items: int
    state: str
    status: StatusRecord
    gold: Accuracy
    qualification: Accuracy
    gold_per_class: list[ClassAccuracy]
    gold_failures: list[GoldFailure]
    fields: list[AnnotatorField]
    credible: float
    history: list[StandingEvent] = Field(description="changes of standing, newest first")


class Relabelled(Out):
    project_id: int
    user_id: int
    since: str | None
    items: int = Field(description="items whose label by the annotator was sent back")
    annotations_excluded: int
    items_open: int = Field(description="of those items, how many are open for others now")


class FittedField(Out):
    field: str
    kind: str
    n_annotations: int
    n_annotators: int


class Refitted(Out):
    project_id: int
    fitted_at: str | None
    fields: list[FittedField]


class QueueEntry(Out):
    item_id: int
    reasons: list[str] = Field(description="gold_failure, low_confidence, disagreement")
    confidence: Number
    gold_failures: int
    n_annotators: int


class ReviewQueue(Out):
    target_confidence: float
    counts: dict[str, int]
    total: int
    items: list[QueueEntry]


class Label(Out):
    """An item's current label, derived (aggregation, a review or its gold)."""

    value: dict[str, Any]
    confidence: dict[str, float]
    item_confidence: float
    method: str
    methods: dict[str, str]
    n_annotators: int


class ReviewedItem(Out):
    id: int
    external_id: str | None
    data: Any
    is_gold: bool
    gold: Any
    media_url: str | None


class AnnotationView(Out):
    annotation_id: int
    annotator: str
    value: Any
    status: str
    late_reason: str | None
    excluded: str | None = Field(
        default=None, description="why it is left out of labels: paused, failed or relabel"
    )
    corrects: int | None
    current: bool = Field(description="the annotator's newest answer on the item")
    from_prediction: bool
    duration_ms: int | None
    created_at: str | None
    user_id: int | None = None
    display_name: str | None = None
    gold_score: Number = None


class ItemPrediction(Out):
    model: str
    value: Any
    score: float | None
    created_at: str | None


class Decision(Out):
    review_id: int
    reviewer: str
    decision: str
    annotation_id: int | None
    value: Any
    note: str
    at: str | None
    reviewer_id: int | None = None
    reviewer_name: str | None = None


class ReviewView(Out):
    item: ReviewedItem
    fields: list[dict[str, Any]]
    annotations: list[AnnotationView]
    prediction: ItemPrediction | None
    label: Label | None
    reviews: list[Decision]


class StoredDecision(Out):
    review_id: int
    item_id: int
    decision: str
    annotation_id: int | None
    value: Any
    note: str
    at: str | None


class Decided(Out):
    review: StoredDecision
    label: Label | None
