"""Answers of the ASR pre-fill routes: its word error rate per language tag over time, and a
review item's word-level differences between transcripts."""

from __future__ import annotations

from pydantic import Field

from labelfarm.web.models.common import Out

Rate = float | None  # a word error rate; None where no word was measured


class Counted(Out):
    items: int = Field(description="items measured with at least one reference word")
    words: int = Field(description="words of the submitted transcripts (the reference)")
    errors: int = Field(description="substitutions + deletions + insertions of the pre-fill")
    wer: Rate = Field(description="errors / words")


class PrefillSwitch(Out):
    """Whether the tag's pre-fill is shown, and the evidence that decided it."""

    language: str
    on: bool
    model_version: str | None = Field(description="the version that decided, if any")
    wer: Rate = Field(description="its word error rate on transcripts made without pre-fill")
    words: int
    items: int
    reason: str = Field(description="above | at_or_below (the threshold) | too_little_evidence")
    threshold: float


class VersionMeasured(Out):
    model_version: str
    first: str | None = Field(description="first measured (ISO 8601)")
    last: str | None = Field(description="last measured (ISO 8601)")
    shadow: Counted = Field(description="transcripts made without the pre-fill: the fair measure")
    prefilled: Counted = Field(description="post-edited transcripts: biased towards the pre-fill")


class DayMeasured(Counted):
    day: str = Field(description="UTC date")


class TagQuality(Out):
    language: str
    state: PrefillSwitch
    versions: list[VersionMeasured] = Field(description="newest first")
    days: list[DayMeasured] = Field(description="shadow measurements per day, oldest first")


class AsrQuality(Out):
    threshold: float = Field(description="the project's asr_wer_threshold")
    shadow_share: float = Field(description="the project's asr_shadow_share")
    min_words: int = Field(description="shadow words a version needs to decide")
    min_items: int = Field(description="... over at least this many items")
    days: int = Field(description="days the per-day series covers")
    tags: list[TagQuality]


class DiffRun(Out):
    op: str = Field(description="equal | replace | delete (only in a) | insert (only in b)")
    a: str
    b: str


class Comparison(Out):
    a: str = Field(description="an annotator's pseudonym, or 'asr'")
    b: str = Field(description="an annotator's pseudonym, or 'final' (the item's label)")
    words: int = Field(description="words of a")
    errors: int
    wer: float = Field(description="word error rate of b against a")
    truncated: bool
    runs: list[DiffRun]


class FieldDiffs(Out):
    field: str
    asr_version: str | None
    annotators: list[Comparison] = Field(description="current transcripts, pair by pair")
    prefill: list[Comparison] = Field(description="the ASR pre-fill against the final text")


class TranscriptDiffs(Out):
    item_id: int
    fields: list[FieldDiffs]
