"""The simulated annotator pool of ``bench/aggregation.py`` and its noise model.

Fashion-MNIST classes: 0 tshirt_top, 1 trouser, 2 pullover, 3 dress, 4 coat, 5 sandal,
6 shirt, 7 sneaker, 8 bag, 9 ankle_boot. Two groups of look-alikes: TOPS = {tshirt_top,
pullover, coat, shirt} and SHOES = {sandal, sneaker, ankle_boot}.

An annotator answers an item of true class ``y`` correctly with probability ``p(y)``; a
wrong answer goes to another class of ``y``'s look-alike group with probability ``near``
(uniformly), else to any other class (uniformly). Profiles:

| profile   | n | p(y)                                   | near | items per turn | cap     |
|-----------|---|----------------------------------------|------|----------------|---------|
| reliable  | 5 | 0.93, 0.94, 0.95, 0.96, 0.97           | 0.7  | 8              | —       |
| confuser  | 4 | tops 0.55, shoes 0.75, others 0.95     | 1.0  | 8              | —       |
| biased    | 1 | says "shirt" for every top; others 0.9 | 0.7  | 8              | —       |
| spammer   | 1 | uniform over the 10 classes            | —    | 8              | —       |
| newcomer  | 4 | 0.8                                    | 0.7  | 3              | 15 / 40 |

(newcomers stop after 15 items with ``--quick``, 40 otherwise: "a few with little work").
Each answer is drawn from a generator seeded by (seed, annotator, item), so an annotator
gives the same answer to the same item in every run; who gets which item is up to the
queue. Turns go round the pool in an order shuffled each round.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

TOPS = (0, 2, 4, 6)
SHOES = (5, 7, 9)
SHIRT = 6
N_CLASSES = 10


def _group(y: int) -> tuple[int, ...]:
    for group in (TOPS, SHOES):
        if y in group:
            return group
    return ()


@dataclass(frozen=True)
class Annotator:
    name: str
    profile: str
    accuracy: float
    per_turn: int
    cap: int | None = None
    near: float = 0.7

    def p_correct(self, y: int) -> float:
        if self.profile == "confuser":
            return 0.55 if y in TOPS else 0.75 if y in SHOES else 0.95
        if self.profile == "biased":
            return 1.0 if y == SHIRT else 0.0 if y in TOPS else 0.9
        return self.accuracy

    def answer(self, y: int, item: int, index: int, seed: int) -> int:
        rng = np.random.default_rng([seed, index, item])
        if self.profile == "spammer":
            return int(rng.integers(N_CLASSES))
        if self.profile == "biased" and y in TOPS:
            return SHIRT
        if rng.random() < self.p_correct(y):
            return y
        near = [c for c in _group(y) if c != y]
        if near and rng.random() < self.near:
            return int(rng.choice(near))
        return int(rng.choice([c for c in range(N_CLASSES) if c != y]))


def pool(quick: bool) -> list[Annotator]:
    cap = 15 if quick else 40
    out = [Annotator(f"reliable-{k}", "reliable", 0.93 + 0.01 * k, 8) for k in range(5)]
    out += [Annotator(f"confuser-{k}", "confuser", 0.0, 8, near=1.0) for k in range(4)]
    out.append(Annotator("biased-0", "biased", 0.0, 8))
    out.append(Annotator("spammer-0", "spammer", 0.1, 8))
    out += [Annotator(f"newcomer-{k}", "newcomer", 0.8, 3, cap=cap) for k in range(4)]
    return out
