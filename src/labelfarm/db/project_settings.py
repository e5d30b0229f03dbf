"""A project's workflow and quality settings, declared once.

The ``projects`` table's setting columns (:mod:`labelfarm.db.tables`), the API's request
models (:mod:`labelfarm.web.schemas`) and the ``Project`` the services read
(:mod:`labelfarm.services.projects`) are all built from :class:`ProjectSettings`: a new
setting is one field here, with a migration adding its column.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import Field, dataclass, field, fields
from typing import Any, get_type_hints

from labelfarm.db.orderings import ORDERINGS


@dataclass(frozen=True)
class Rule:
    """What values a setting takes: ``check`` and, for error messages, what is valid; a
    number's bounds ``low`` and ``high`` (the settings page's inputs carry them too)."""

    check: Callable[[Any], bool]
    valid: str
    low: float | None = None
    high: float | None = None


def _whole(lo: int, hi: int, valid: str) -> Rule:
    return Rule(
        lambda v: isinstance(v, int) and not isinstance(v, bool) and lo <= v <= hi, valid, lo, hi
    )


def _real(lo: float, hi: float, valid: str) -> Rule:
    return Rule(
        lambda v: isinstance(v, int | float) and not isinstance(v, bool) and lo <= v <= hi,
        valid,
        lo,
        hi,
    )


def setting(default: Any, rule: Rule, meaning: str) -> Any:
    return field(default=default, metadata={"rule": rule, "meaning": meaning})


@dataclass(frozen=True, slots=True, kw_only=True)
class ProjectSettings:
    """How a project's work is handed out and checked."""

    overlap: int = setting(
        1,
        _whole(1, 100, "a whole number from 1 to 100"),
        "labels per item (the minimum, if adaptive)",
    )
    lease_seconds: int = setting(
        600, _whole(10, 30 * 86400, "seconds from 10 to 2,592,000"), "how long a task stays leased"
    )
    ordering: str = setting(
        "fifo",
        Rule(lambda v: v in ORDERINGS, f"one of {list(ORDERINGS)}"),
        f"the order items are handed out in: {', '.join(ORDERINGS)}",
    )
    gold_rate: float = setting(
        0.0, _real(0, 1, "a share of tasks from 0 to 1"), "share of tasks that are gold, blind"
    )
    qualification_n: int = setting(
        0,
        _whole(0, 1000, "gold items to pass first (0: none)"),
        "gold items to pass before real work",
    )
    qualification_pass: float = setting(
        0.8,
        _real(0, 1, "the mean gold score to pass, from 0 to 1"),
        "the qualification's pass mark",
    )
    training: bool = setting(
        False,
        Rule(lambda v: isinstance(v, bool), "true or false"),
        "qualifying annotators first do the training gold items, each answer shown after it",
    )
    accuracy_floor: float = setting(
        0.0,
        _real(0, 1, "gold accuracy below which to pause (0: never)"),
        "pause annotators whose estimated gold accuracy falls below this",
    )
    max_overlap: int = setting(
        0,
        _whole(0, 100, "most labels per item with adaptive overlap (0: off)"),
        "adaptive overlap: most labels per item",
    )
    target_confidence: float = setting(
        0.9,
        _real(0.5, 1, "label confidence to stop at, 0.5 to 1"),
        "adaptive overlap: the label confidence to stop at",
    )
    max_live_leases: int = setting(
        50,
        _whole(1, 1000, "a whole number from 1 to 1,000"),
        "most live leases one annotator may hold in the project (next and checkout together)",
    )
    max_checkout_hours: float = setting(
        24.0,
        _real(1, 720, "hours from 1 to 720"),
        "longest lease an offline checkout may ask for, in hours",
    )
    wrong_prefill_share: float = setting(
        0.25,
        _real(0, 1, "a share of gold tasks from 0 to 1"),
        "share of gold tasks whose model pre-fill is deliberately wrong, so accepting "
        "predictions unseen fails gold",
    )
    holdout_share: float = setting(
        0.2,
        _real(0, 0.9, "a share of labelled items from 0 to 0.9"),
        "share of reviewed items kept out of training to evaluate models (gold never trains)",
    )
    asr_wer_threshold: float = setting(
        0.3,
        _real(0, 1, "a word error rate from 0 to 1"),
        "speech-recognition pre-fill is turned off for a language whose measured word error "
        "rate is above this, and on again when a new model measures below it",
    )
    asr_shadow_share: float = setting(
        0.1,
        _real(0, 1, "a share of items from 0 to 1"),
        "share of each language's audio items transcribed without pre-fill while the speech "
        "model runs unseen, to measure its word error rate fairly",
    )
    sampler: str = setting(
        "margin",
        Rule(lambda v: isinstance(v, str) and v in _sampler_names(), "a sampler's name"),
        "with the score ordering: the active-learning sampler that scores open items after "
        "each model version",
    )
    retrain_every: int = setting(
        0,
        _whole(0, 1_000_000, "new labels between model versions, 0 to 1,000,000 (0: never)"),
        "train a new model version after this many new labels (0: only when asked)",
    )
    auto_accept_target: float = setting(
        0.0,
        Rule(
            lambda v: (
                isinstance(v, int | float) and not isinstance(v, bool) and (v == 0 or 0.5 <= v < 1)
            ),
            "0 (off) or a precision from 0.5 to below 1",
            0,
            0.999,
        ),
        "auto-accept: the precision the model's labels must reach, proved on held-out items "
        "(0: off)",
    )
    spot_check_share: float = setting(
        0.05,
        _real(0, 1, "a share of auto-accepted items from 0 to 1"),
        "auto-accept: share of the items above a threshold still sent blind to annotators",
    )


def _sampler_names() -> tuple[str, ...]:
    from labelfarm.ml.samplers import sampler_names  # the registry (ml/samplers.py)

    return sampler_names()


SETTINGS: tuple[Field[Any], ...] = fields(ProjectSettings)
SETTING_NAMES: tuple[str, ...] = tuple(f.name for f in SETTINGS)
SETTING_TYPES: dict[str, type] = {
    name: hint for name, hint in get_type_hints(ProjectSettings).items() if name in SETTING_NAMES
}
DEFAULTS: dict[str, Any] = {f.name: f.default for f in SETTINGS}


def rule(name: str) -> Rule:
    rule_: Rule = SETTINGS[SETTING_NAMES.index(name)].metadata["rule"]
    return rule_


def meaning(name: str) -> str:
    text: str = SETTINGS[SETTING_NAMES.index(name)].metadata["meaning"]
    return text


def problems(values: Mapping[str, Any]) -> list[dict[str, str]]:
    """Every setting in ``values`` that is not valid, as ``{"field", "reason"}``; with
    ``overlap`` and ``max_overlap`` both given, also whether they fit together."""
    out = [
        {"field": k, "reason": rule(k).valid}
        for k, v in values.items()
        if k in SETTING_TYPES and not rule(k).check(v)
    ]
    max_overlap = values.get("max_overlap", 0)
    if not out and max_overlap and max_overlap < values.get("overlap", 1):
        out.append({"field": "max_overlap", "reason": "must be 0 (off) or at least the overlap"})
    return out


def from_row(row: Mapping[Any, Any]) -> dict[str, Any]:
    """The settings of a ``projects`` row, in their Python types (SQLite keeps booleans as 0/1)."""
    return {name: SETTING_TYPES[name](row[name]) for name in SETTING_NAMES}
