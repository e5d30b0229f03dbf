"""Pure quality-control math on arrays: aggregation, agreement, reliability, boxes.

Functions take numpy arrays (data positional, options keyword-only), validate them first
with a ``ValueError`` that states the expected shape, and never touch the database. Categorical
annotations use the long format of :mod:`labelfarm.ml.labels`: three aligned int arrays
``items``, ``annotators``, ``labels``.
"""

from labelfarm.ml.adaptive import needs_more_labels
from labelfarm.ml.aggregation import (
    DawidSkeneResult,
    dawid_skene,
    get_annotator_accuracy,
    majority_vote,
)
from labelfarm.ml.agreement import (
    FleissKappa,
    PairwiseAgreement,
    cohen_kappa,
    fleiss_kappa,
    get_item_agreement_scores,
    krippendorff_alpha,
    pairwise_agreement,
    specific_agreement,
)
from labelfarm.ml.boxes import BoxClusters, BoxMatch, cluster_boxes, iou, match_boxes
from labelfarm.ml.labels import (
    count_matrix,
    labels_per_item,
    to_reliability_data,
    validate_annotations,
)
from labelfarm.ml.reliability import BetaAccuracy, beta_accuracy, beta_accuracy_per_class

__all__ = [
    "BetaAccuracy",
    "BoxClusters",
    "BoxMatch",
    "DawidSkeneResult",
    "FleissKappa",
    "PairwiseAgreement",
    "beta_accuracy",
    "beta_accuracy_per_class",
    "cluster_boxes",
    "cohen_kappa",
    "count_matrix",
    "dawid_skene",
    "fleiss_kappa",
    "get_annotator_accuracy",
    "get_item_agreement_scores",
    "iou",
    "krippendorff_alpha",
    "labels_per_item",
    "majority_vote",
    "match_boxes",
    "needs_more_labels",
    "pairwise_agreement",
    "specific_agreement",
    "to_reliability_data",
    "validate_annotations",
]
