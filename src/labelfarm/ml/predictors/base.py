"""The predictor protocol, its inputs, its errors, and the saved-model envelope.

A saved model is ``MAGIC``, one JSON header line naming the predictor and its format
version (plus its fields and parameters), then a pickle of the predictor's state. Pickle is
safe here only because labelfarm alone writes these files (the server, into its model store);
:func:`read_blob` refuses a blob of another predictor before unpickling anything.
"""

from __future__ import annotations

import json
import pickle
import unicodedata
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, ClassVar, Protocol, runtime_checkable

import numpy as np

from labelfarm.errors import InvalidInput

MAGIC = b"LFPRED1\n"
FIELD_TYPES = ("choice", "multichoice")


class UnknownPredictor(InvalidInput):
    """A predictor name that the registry does not know; the message lists the valid names."""

    code = "unknown_predictor"


class PredictorUnavailable(InvalidInput):
    """A predictor whose optional extra is not installed; the message says how to install it."""

    code = "predictor_unavailable"


class InvalidParams(InvalidInput):
    """A predictor parameter is unknown or out of range; the message names it."""

    code = "invalid_predictor_params"


class BadModelBlob(InvalidInput):
    """A saved model that is not this predictor's (or not a saved model at all)."""

    code = "bad_model_blob"


@dataclass(frozen=True)
class ItemInput:
    id: int
    data: Mapping[str, Any]
    media: bytes | None = None


@dataclass(frozen=True)
class FieldSpec:
    name: str
    type: str  # "choice" | "multichoice"
    options: tuple[str, ...]

    def __post_init__(self) -> None:
        if self.type not in FIELD_TYPES:
            raise InvalidInput(
                f"field {self.name!r}: a predictor predicts {' or '.join(FIELD_TYPES)} "
                f"fields, not {self.type!r}"
            )
        if len(self.options) < 1 or len(set(self.options)) != len(self.options):
            raise InvalidInput(f"field {self.name!r}: options must be distinct and not empty")

    def to_dict(self) -> dict[str, Any]:
        return {"name": self.name, "type": self.type, "options": list(self.options)}

    @classmethod
    def from_dict(cls, d: Mapping[str, Any]) -> FieldSpec:
        return cls(str(d["name"]), str(d["type"]), tuple(str(o) for o in d["options"]))


@runtime_checkable
class Predictor(Protocol):
    name: ClassVar[str]
    fields: tuple[FieldSpec, ...]

    def fit(self, items: Sequence[ItemInput], labels: Mapping[str, Sequence[Any]]) -> Predictor: ...

    def predict_proba(self, items: Sequence[ItemInput]) -> dict[str, np.ndarray]: ...

    def embed(self, items: Sequence[ItemInput]) -> np.ndarray | None: ...

    def save(self) -> bytes: ...


@dataclass(frozen=True)
class Param:
    """One parameter a predictor accepts: its default, a check, and what it means."""

    default: Any
    help: str
    check: Callable[[Any], bool] = field(default=lambda v: True)
    expect: str = ""

    def describe(self, name: str) -> dict[str, Any]:
        return {"name": name, "default": self.default, "help": self.help, "expect": self.expect}


def resolve_params(
    predictor: str, spec: Mapping[str, Param], params: Mapping[str, Any] | None
) -> dict[str, Any]:
    """The defaults overlaid with ``params``; an unknown name or a bad value is refused."""
    given = dict(params or {})
    unknown = sorted(set(given) - set(spec))
    if unknown:
        raise InvalidParams(
            f"{predictor}: unknown parameter {unknown[0]!r}; "
            f"valid parameters: {', '.join(sorted(spec)) or 'none'}",
            [{"param": name, "reason": "unknown"} for name in unknown],
        )
    out = {}
    for name, p in spec.items():
        value = given.get(name, p.default)
        ok = False
        try:
            ok = bool(p.check(value))
        except (TypeError, ValueError):
            ok = False
        if not ok:
            raise InvalidParams(
                f"{predictor}: parameter {name!r} must be {p.expect or 'valid'}, got {value!r}",
                [{"param": name, "reason": f"must be {p.expect}"}],
            )
        out[name] = value
    return out


def int_in(lo: int, hi: int) -> Callable[[Any], bool]:
    return lambda v: isinstance(v, int) and not isinstance(v, bool) and lo <= v <= hi


def float_in(lo: float, hi: float) -> Callable[[Any], bool]:
    return lambda v: isinstance(v, int | float) and not isinstance(v, bool) and lo <= v <= hi


def one_of(*values: Any) -> Callable[[Any], bool]:
    return lambda v: v in values


def check_fields(predictor: str, fields: Sequence[FieldSpec]) -> tuple[FieldSpec, ...]:
    fields = tuple(fields)
    if not fields:
        raise InvalidInput(f"{predictor}: no choice or multichoice field to predict")
    names = [f.name for f in fields]
    if len(set(names)) != len(names):
        raise InvalidInput(f"{predictor}: field names must be distinct")
    return fields


def write_blob(
    name: str, version: int, fields: Sequence[FieldSpec], params: Mapping[str, Any], state: Any
) -> bytes:
    header = {
        "predictor": name,
        "format": version,
        "fields": [f.to_dict() for f in fields],
        "params": dict(params),
    }
    head = json.dumps(header, sort_keys=True, ensure_ascii=True).encode()
    return MAGIC + head + b"\n" + pickle.dumps(state, protocol=5)


def read_header(blob: bytes) -> dict[str, Any]:
    if not blob.startswith(MAGIC):
        raise BadModelBlob("not a saved labelfarm model (its header is missing)")
    end = blob.find(b"\n", len(MAGIC))
    try:
        header = json.loads(blob[len(MAGIC) : end])
    except ValueError as e:
        raise BadModelBlob("a saved model's header is not readable") from e
    if not isinstance(header, dict) or "predictor" not in header:
        raise BadModelBlob("a saved model's header names no predictor")
    return header


def read_blob(name: str, version: int, blob: bytes) -> tuple[dict[str, Any], Any]:
    """The header and state of a blob saved by predictor ``name`` at format ``version``."""
    header = read_header(blob)
    if header["predictor"] != name:
        raise BadModelBlob(
            f"this model was saved by predictor {header['predictor']!r}, not {name!r}"
        )
    if header.get("format") != version:
        raise BadModelBlob(
            f"{name}: saved in format {header.get('format')!r}; this version reads {version}"
        )
    end = blob.find(b"\n", len(MAGIC))
    return header, pickle.loads(blob[end + 1 :])


def nfc(text: str) -> str:
    return unicodedata.normalize("NFC", text)


def item_text(item: ItemInput, key: str | None) -> str:
    """The text to classify: ``data[key]``, else ``data["text"]``, else the first string value."""
    data = item.data
    if key:
        value = data.get(key)
        return nfc(value) if isinstance(value, str) else ("" if value is None else str(value))
    value = data.get("text")
    if isinstance(value, str):
        return nfc(value)
    for value in data.values():
        if isinstance(value, str):
            return nfc(value)
    return ""
