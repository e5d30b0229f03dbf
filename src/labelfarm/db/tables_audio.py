"""The tables of audio work: what was derived from each stored audio file at import
(:mod:`labelfarm.services.audio_media`) and the measured error of speech-recognition
pre-fill per language tag (:mod:`labelfarm.services.asr_quality`). Declared here, on the
metadata :mod:`labelfarm.db.tables` passes in (which also exports them).
"""

from sqlalchemy import (
    Boolean,
    Column,
    Float,
    ForeignKey,
    Index,
    Integer,
    MetaData,
    String,
    Table,
    Text,
)


def audio_tables(metadata: MetaData) -> tuple[Table, Table]:
    """``media_audio`` and ``asr_measurements``, on ``metadata``."""
    # One row per stored audio file (by the sha of its bytes), written when it is imported:
    # its facts, its waveform peaks (one flat file per zoom level, stored content-addressed
    # like the media) and its low-bitrate listening copy.
    media_audio = Table(
        "media_audio",
        metadata,
        Column("sha256", String(64), ForeignKey("media.sha256"), primary_key=True),
        Column("duration", Float, nullable=False),  # seconds
        Column("sample_rate", Integer, nullable=False),
        Column("channels", Integer, nullable=False),
        Column("format", String(16), nullable=False),  # WAV, FLAC, OGG, MP3 (libsndfile's)
        # [{"seconds": s, "sha256": …, "buckets": n}] per level, finest first; each file is
        # int8 (min, max) per channel per bucket, channels interleaved
        Column("peaks", Text, nullable=False),
        Column("stream_sha256", String(64), nullable=True),  # the listening copy
        Column("stream_mime", String(100), nullable=True),
        Column("created_at", Float, nullable=False),
    )
    # One row per transcript measured against the pre-fill the ASR made for the item: the
    # word errors of the pre-fill against what the transcriber finally submitted, under the
    # language tag of the item. ``shadow``: the transcriber did not see the pre-fill (the
    # fair measure, and the only one while pre-fill is off for the tag).
    asr_measurements = Table(
        "asr_measurements",
        metadata,
        Column("id", Integer, primary_key=True),
        Column("project_id", Integer, ForeignKey("projects.id"), nullable=False),
        Column("item_id", Integer, ForeignKey("items.id"), nullable=False),
        Column("annotation_id", Integer, ForeignKey("annotations.id"), nullable=False),
        Column("model_version", String(200), nullable=False),
        Column("language", String(35), nullable=False),
        Column("words", Integer, nullable=False),  # words in the submitted transcript
        Column("errors", Integer, nullable=False),  # substitutions + deletions + insertions
        Column("shadow", Boolean, nullable=False),
        Column("measured_at", Float, nullable=False),
        Column("note", Text, nullable=True),
        Index("ix_asr_measurements_project_language", "project_id", "language", "measured_at"),
        Index("ux_asr_measurements_annotation", "annotation_id", unique=True),
    )
    return media_audio, asr_measurements
