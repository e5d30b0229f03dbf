"""Predictors: a small protocol (fit, predict_proba, embed, save/load) and a registry of
versioned names."""

from labelfarm.ml.predictors.base import (
    BadModelBlob,
    FieldSpec,
    InvalidParams,
    ItemInput,
    Predictor,
    PredictorUnavailable,
    UnknownPredictor,
)
from labelfarm.ml.predictors.compute import FitTask, PredictTask, fit_task, predict_task
from labelfarm.ml.predictors.registry import create, describe, load, names, saved_by

__all__ = [
    "BadModelBlob",
    "FieldSpec",
    "FitTask",
    "InvalidParams",
    "ItemInput",
    "PredictTask",
    "Predictor",
    "PredictorUnavailable",
    "UnknownPredictor",
    "create",
    "describe",
    "fit_task",
    "load",
    "names",
    "predict_task",
    "saved_by",
]
