"""A small convolutional network in PyTorch (CPU), for images; the ``torch`` extra.

Two 3×3 convolution + max-pool stages (16 and 32 channels), a 64-unit hidden layer, and one
linear output per field: softmax for a ``choice`` field, one sigmoid per option for a
``multichoice`` one. Images are decoded as for the scikit-learn image predictors (grey or
colour, resized to ``size``). Training runs ``epochs`` passes of Adam over shuffled batches,
seeded (``torch.manual_seed`` and a seeded shuffle) with deterministic algorithms; it stops
early after ``max_seconds`` (then two runs may differ: leave the time bound wide for
reproducible versions). ``embed`` answers the 64 hidden units. torch is imported only when
this predictor is used. Needs ``pip install 'labelfarm[torch]'`` (pins torch 2.13.0).
"""

from __future__ import annotations

import importlib.util
import time
from collections.abc import Mapping, Sequence
from typing import Any, ClassVar

import numpy as np

from labelfarm.errors import InvalidInput
from labelfarm.ml.predictors.base import (
    FieldSpec,
    ItemInput,
    Param,
    PredictorUnavailable,
    float_in,
    int_in,
    one_of,
    read_blob,
    write_blob,
)
from labelfarm.ml.predictors.heads import choice_targets, multi_targets
from labelfarm.ml.predictors.imaging import decode_images
from labelfarm.ml.predictors.linear import LinearPredictor

PREDICT_BATCH = 1024


def _build(torch: Any, size: int, channels: int, fields: Sequence[FieldSpec]) -> Any:
    """The network: ``body`` (to the 64 hidden units) and one linear ``heads`` entry per field."""
    nn = torch.nn
    body = nn.Sequential(
        nn.Conv2d(channels, 16, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2),
        nn.Conv2d(16, 32, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2),
        nn.Flatten(), nn.Linear(32 * (size // 4) ** 2, 64), nn.ReLU(),
    )  # fmt: skip
    heads = nn.ModuleList([nn.Linear(64, len(f.options)) for f in fields])
    return nn.ModuleDict({"body": body, "heads": heads})


def _forward(net: Any, x: Any) -> tuple[Any, list[Any]]:
    h = net["body"](x)
    return h, [head(h) for head in net["heads"]]


class ImageCnnTorch(LinearPredictor):
    name: ClassVar[str] = "image-cnn-torch.v1"
    input: ClassVar[str] = "image"
    extra: ClassVar[str | None] = "torch"
    summary: ClassVar[str] = "a small CNN trained with PyTorch on the CPU"
    embedding: ClassVar[str] = "the network's 64 hidden units"
    params_spec: ClassVar[dict[str, Param]] = {
        "size": Param(28, "side in pixels the images are resized to", int_in(8, 128),
                      "an integer in [8, 128]"),
        "colour": Param(False, "use RGB pixels instead of grey", one_of(True, False),
                        "true or false"),
        "epochs": Param(3, "passes over the training set", int_in(1, 100),
                        "an integer in [1, 100]"),
        "batch_size": Param(128, "images per optimiser step", int_in(1, 4096),
                            "an integer in [1, 4096]"),
        "lr": Param(0.002, "Adam learning rate", float_in(1e-6, 1.0), "a number in [1e-6, 1]"),
        "max_seconds": Param(600, "stop training after this long", int_in(1, 86_400),
                             "an integer in [1, 86400]"),
        "seed": Param(0, "random seed", int_in(0, 2**31 - 1), "a non-negative integer"),
        "threads": Param(1, "CPU threads torch uses", int_in(1, 64), "an integer in [1, 64]"),
    }  # fmt: skip

    @classmethod
    def unavailable_message(cls) -> str:
        return f"predictor {cls.name} needs PyTorch: pip install 'labelfarm[torch]'"

    @classmethod
    def available(cls) -> str | None:
        return None if importlib.util.find_spec("torch") else cls.unavailable_message()

    def __init__(self, fields: Any, params: Any = None) -> None:
        reason = self.available()
        if reason:
            raise PredictorUnavailable(reason)
        super().__init__(fields, params)
        self._net: Any = None

    def _torch(self) -> Any:
        import torch

        torch.set_num_threads(self.params["threads"])
        torch.use_deterministic_algorithms(True)
        return torch

    def _pixels(self, items: Sequence[ItemInput]) -> np.ndarray:
        p = self.params
        x = decode_images(items, p["size"], p["colour"]).astype(np.float32) / 255.0
        return x.transpose(0, 3, 1, 2) if x.ndim == 4 else x[:, None]

    def _targets(self, labels: Mapping[str, Sequence[Any]], n: int) -> list[np.ndarray]:
        out = []
        for spec in self.fields:
            values = labels.get(spec.name)
            if values is None or len(values) != n:
                raise InvalidInput(f"field {spec.name!r}: expected {n} labels")
            if spec.type == "choice":
                rows, y = choice_targets(spec, values)
                t = np.full(n, -100, dtype=np.int64)  # -100: no label, ignored by the loss
                t[rows] = y
            else:
                rows, ym = multi_targets(spec, values)
                t = np.full((n, len(spec.options)), np.nan, dtype=np.float32)
                t[rows] = ym
            out.append(t)
        return out

    def _loss(self, torch: Any, outs: list[Any], targets: list[Any]) -> Any:
        nnf = torch.nn.functional
        total = outs[0].sum() * 0.0
        for spec, out, t in zip(self.fields, outs, targets, strict=True):
            if spec.type == "choice":
                if bool((t != -100).any()):
                    total = total + nnf.cross_entropy(out, t, ignore_index=-100)
            else:
                mask = ~torch.isnan(t)
                if bool(mask.any()):
                    total = total + nnf.binary_cross_entropy_with_logits(out[mask], t[mask])
        return total

    def fit(self, items: Sequence[ItemInput], labels: Mapping[str, Sequence[Any]]) -> Any:
        if not items:
            raise InvalidInput(f"{self.name}: no items to learn from")
        torch, p = self._torch(), self.params
        x = torch.from_numpy(self._pixels(items))
        targets = [torch.from_numpy(t) for t in self._targets(labels, len(items))]
        torch.manual_seed(p["seed"])
        net = _build(torch, p["size"], x.shape[1], self.fields)
        opt = torch.optim.Adam(net.parameters(), lr=p["lr"])
        rng = np.random.RandomState(p["seed"])
        deadline = time.monotonic() + p["max_seconds"]
        net.train()
        for _ in range(p["epochs"]):
            order = torch.from_numpy(rng.permutation(len(items)))
            for start in range(0, len(items), p["batch_size"]):
                idx = order[start : start + p["batch_size"]]
                _, outs = _forward(net, x[idx])
                loss = self._loss(torch, outs, [t[idx] for t in targets])
                opt.zero_grad()
                loss.backward()
                opt.step()
            if time.monotonic() > deadline:
                break
        net.eval()
        self._net = net
        self._heads = {}
        return self

    def _run(self, items: Sequence[ItemInput]) -> tuple[np.ndarray, list[np.ndarray]]:
        if self._net is None:
            raise InvalidInput(f"{self.name}: the model is not trained yet")
        torch = self._torch()
        hidden: list[np.ndarray] = []
        outs: list[list[np.ndarray]] = [[] for _ in self.fields]
        with torch.no_grad():
            for start in range(0, len(items), PREDICT_BATCH):
                x = torch.from_numpy(self._pixels(items[start : start + PREDICT_BATCH]))
                h, heads = _forward(self._net, x)
                hidden.append(h.numpy())
                for spec, out, o in zip(self.fields, outs, heads, strict=True):
                    o = o.double()  # rows sum to 1 in float64
                    out.append(
                        (torch.softmax(o, 1) if spec.type == "choice" else torch.sigmoid(o)).numpy()
                    )
        width = [len(f.options) for f in self.fields]
        if not items:
            return np.zeros((0, 64), np.float32), [np.zeros((0, w)) for w in width]
        return np.concatenate(hidden), [np.concatenate(o) for o in outs]

    def predict_proba(self, items: Sequence[ItemInput]) -> dict[str, np.ndarray]:
        _, outs = self._run(items)
        return {spec.name: out for spec, out in zip(self.fields, outs, strict=True)}

    def embed(self, items: Sequence[ItemInput]) -> np.ndarray | None:
        return self._run(items)[0].astype(np.float32)

    def save(self) -> bytes:
        if self._net is None:
            raise InvalidInput(f"{self.name}: the model is not trained yet")
        state = {k: v.detach().numpy().copy() for k, v in self._net.state_dict().items()}
        return write_blob(self.name, self.version, self.fields, self.params, {"net": state})

    @classmethod
    def load(cls, blob: bytes) -> ImageCnnTorch:
        header, state = read_blob(cls.name, cls.version, blob)
        fields = [FieldSpec.from_dict(f) for f in header["fields"]]
        predictor = cls(fields, header["params"])
        torch = predictor._torch()
        channels = 3 if predictor.params["colour"] else 1
        net = _build(torch, predictor.params["size"], channels, predictor.fields)
        net.load_state_dict({k: torch.from_numpy(v) for k, v in state["net"].items()})
        net.eval()
        predictor._net = net
        predictor._heads = {}
        return predictor
