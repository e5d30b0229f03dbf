"""The peer of ``bench/label_errors.py``, run inside ``.bench-envs/label-errors`` (never
labelfarm's environment): cleanlab's ``find_label_issues`` (single labels) and CROWDLAB's
``get_label_quality_multiannotator`` (several annotators), on the benchmark's out-of-sample
probabilities.

    python _label_errors_peer.py INPUT.json OUTPUT.json

INPUT: ``{"runs": {RUN: {"kind": "single"|"crowd", "proba": "p.npy", "labels": "y.npy",
"wide": "w.npy"?}}}``. OUTPUT: ``{RUN: {"flags": [0/1 per item], "scores": [likelihood the
label is wrong], "seconds"}}`` (or ``{"error"}``).

Single labels: the flags are ``cleanlab.filter.find_label_issues`` with its defaults
(prune by noise rate), the scores 1 - ``cleanlab.rank.get_label_quality_scores`` (self
confidence). Crowd: CROWDLAB's consensus label and its quality; an item's label (the plurality
vote) is flagged when CROWDLAB's consensus differs from it, and ranked first by that, then by
the consensus quality (a confident different consensus first, a confident same one last).
"""

from __future__ import annotations

import os
import sys

# bench/queue.py would shadow the standard library's ``queue`` (pandas imports it): move
# bench/ behind the standard library.
_HERE = os.path.dirname(os.path.abspath(__file__))
if sys.path and os.path.abspath(sys.path[0] or ".") == _HERE:
    sys.path.append(sys.path.pop(0))

import json  # noqa: E402
import time  # noqa: E402
import warnings  # noqa: E402
from typing import Any  # noqa: E402

import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402

warnings.filterwarnings("ignore")


def _single(proba: np.ndarray, labels: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    from cleanlab.filter import find_label_issues
    from cleanlab.rank import get_label_quality_scores

    flags = find_label_issues(labels, proba)
    return flags, 1.0 - get_label_quality_scores(labels, proba)


def _crowd(proba: np.ndarray, labels: np.ndarray, wide: np.ndarray) -> tuple[Any, Any]:
    from cleanlab.multiannotator import get_label_quality_multiannotator

    frame = pd.DataFrame(wide, columns=[f"a{j}" for j in range(wide.shape[1])])
    result = get_label_quality_multiannotator(frame, proba, verbose=False)
    table = result["label_quality"]
    consensus = table["consensus_label"].to_numpy().astype(np.int64)
    quality = table["consensus_quality_score"].to_numpy().astype(np.float64)
    differs = consensus != labels
    scores = np.where(differs, 0.5 + 0.5 * quality, 0.5 - 0.5 * quality)
    return differs, scores


def main(src: str, dst: str) -> None:
    with open(src) as fh:
        spec = json.load(fh)
    out: dict[str, Any] = {}
    for run, data in spec["runs"].items():
        proba = np.load(data["proba"])
        labels = np.load(data["labels"])
        t0 = time.perf_counter()
        try:
            if data["kind"] == "single":
                flags, scores = _single(proba, labels)
            else:
                flags, scores = _crowd(proba, labels, np.load(data["wide"]))
            out[run] = {
                "flags": np.asarray(flags, dtype=int).tolist(),
                "scores": np.asarray(scores, dtype=float).tolist(),
            }
        except Exception as exc:  # reported, not fatal: the other runs still count
            out[run] = {"error": f"{type(exc).__name__}: {exc}"[:300]}
        out[run]["seconds"] = round(time.perf_counter() - t0, 3)
    with open(dst, "w") as fh:
        json.dump(out, fh)


if __name__ == "__main__":
    main(sys.argv[1], sys.argv[2])
