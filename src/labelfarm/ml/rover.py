"""Word-level ROVER: combine several transcripts of the same speech into one.

After NIST's ROVER (Fiscus, 1997). The transcripts are aligned into a word transition
network, a list of slots in which each transcript has one word or nothing (a null arc), and
each slot is decided by a weighted vote.

1. The pivot is the medoid: the transcript with the smallest weighted word error distance to
   all the others. The network starts as its words, one slot each.
2. The other transcripts join in order of their distance to the pivot, closest first. Each is
   aligned to the slots' current leading words, keeping the most words matched (longest
   common subsequence; a plain minimum edit alignment would rather substitute two words in
   a row than delete one and insert another, and so put words in the wrong slots): a
   matched word goes into its slot, words between two matches fill the slots skipped there
   in order (substitutions), a word left with no slot opens a new one (every transcript
   already in has a null arc there), and a slot the transcript skips gets its null arc.
3. In every slot the candidates (the words, and "nothing") collect the weights of the
   transcripts that chose them; the heaviest wins, ties going to the pivot's choice. A slot
   won by "nothing" drops out. A slot's support is its winner's share of the total weight;
   the result's support is the mean over the slots.
4. The vote is kept when it is at least as central as the pivot: its weighted sum of word
   edit distances to all the transcripts is no larger than the pivot's. Otherwise (rare: a
   vote that stitched together words no transcript agrees on) the pivot comes back.

Words are compared by ``key`` (for instance :func:`labelfarm.ml.text_metrics.normalise_text`,
so that ``Hello,`` and ``hello`` are one candidate); the word written out for a winning key is
the heaviest spelling among those with that key. With fewer than three transcripts a vote
cannot outvote anyone, and the medoid comes back as it is.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

from rapidfuzz.distance import Indel, Levenshtein

__all__ = ["combine", "medoid"]

Key = Callable[[str], str]


def _identity(word: str) -> str:
    return word


def _weights(n: int, weights: Sequence[float] | None) -> list[float]:
    if weights is None:
        return [1.0] * n
    w = [float(x) for x in weights]
    if len(w) != n:
        raise ValueError(f"{len(w)} weights for {n} transcripts")
    if any(not x >= 0 for x in w):
        raise ValueError("weights must be numbers ≥ 0")
    return w if sum(w) > 0 else [1.0] * n


def _distance(a: Sequence[str], b: Sequence[str]) -> float:
    """Word edit distance over the longer length: 0 same words, 1 nothing in common."""
    longest = max(len(a), len(b))
    if not longest:
        return 0.0
    vocab: dict[str, int] = {}
    ca = [vocab.setdefault(k, len(vocab)) for k in a]
    cb = [vocab.setdefault(k, len(vocab)) for k in b]
    return float(Levenshtein.distance(ca, cb)) / longest


def medoid(
    keyed: Sequence[Sequence[str]], weights: Sequence[float] | None = None
) -> tuple[int, float]:
    """Index of the transcript closest to all the others (weighted mean of 1 − distance),
    and that mean. A single transcript comes back with 0.5 (it agrees only with itself)."""
    n = len(keyed)
    if n == 0:
        raise ValueError("no transcripts")
    if n == 1:
        return 0, 0.5
    w = _weights(n, weights)
    total = sum(w)
    best, best_support = 0, -1.0
    for i, a in enumerate(keyed):
        support = sum(w[j] * (1.0 - _distance(a, b)) for j, b in enumerate(keyed)) / total
        if support > best_support:
            best, best_support = i, support
    return best, best_support


class _Network:
    """Slots of the word transition network: per slot, the word (key) of each transcript."""

    def __init__(self, pivot: Sequence[str], n: int, pivot_index: int) -> None:
        self.n = n
        self.slots: list[list[str | None]] = []
        for word in pivot:
            slot: list[str | None] = [None] * n
            slot[pivot_index] = word
            self.slots.append(slot)

    def leaders(self, weights: Sequence[float]) -> list[str]:
        """Each slot's heaviest word so far (the word new transcripts are aligned to)."""
        out = []
        for slot in self.slots:
            tally: dict[str, float] = {}
            for who, word in enumerate(slot):
                if word is not None:
                    tally[word] = tally.get(word, 0.0) + weights[who]
            out.append(max(tally, key=tally.__getitem__))
        return out

    def add(self, who: int, keys: Sequence[str], weights: Sequence[float]) -> None:
        """Align one more transcript to the slots' leading words and place its words.

        The alignment keeps the most words matched (longest common subsequence); between two
        matches, the slots skipped and the words left over are paired in order (a
        substitution), the rest of the words opening new slots."""
        leaders = self.leaders(weights)
        vocab: dict[str, int] = {}
        a = [vocab.setdefault(k, len(vocab)) for k in leaders]
        b = [vocab.setdefault(k, len(vocab)) for k in keys]
        slots: list[list[str | None]] = []
        skipped: list[list[str | None]] = []
        extra: list[str] = []

        def settle() -> None:
            for slot, word in zip(skipped, extra, strict=False):
                slot[who] = word
            slots.extend(skipped)
            for word in extra[len(skipped) :]:  # words with no slot open one
                slot = [None] * self.n
                slot[who] = word
                slots.append(slot)
            skipped.clear()
            extra.clear()

        for op in Indel.opcodes(a, b):
            here = self.slots[op.src_start : op.src_end]
            said = list(keys[op.dest_start : op.dest_end])
            if op.tag == "equal":
                settle()
                for slot, word in zip(here, said, strict=True):
                    slot[who] = word
                slots.extend(here)
            else:
                skipped.extend(here)
                extra.extend(said)
        settle()
        self.slots = slots


def _vote(
    slot: Sequence[str | None], weights: Sequence[float], pivot: int
) -> tuple[str | None, float]:
    tally: dict[str | None, float] = {}
    for who, word in enumerate(slot):
        tally[word] = tally.get(word, 0.0) + weights[who]
    total = sum(tally.values())
    best = max(tally, key=lambda k: (tally[k], k == slot[pivot]))
    return best, (tally[best] / total if total > 0 else 0.0)


def _spellings(
    transcripts: Sequence[Sequence[str]], keyed: Sequence[Sequence[str]], weights: Sequence[float]
) -> dict[str, str]:
    """For each key, the heaviest spelling of it among the transcripts."""
    tally: dict[str, dict[str, float]] = {}
    for who, (words, keys) in enumerate(zip(transcripts, keyed, strict=True)):
        for word, key in zip(words, keys, strict=True):
            forms = tally.setdefault(key, {})
            forms[word] = forms.get(word, 0.0) + weights[who]
    return {key: max(forms, key=forms.__getitem__) for key, forms in tally.items()}


def combine(
    transcripts: Sequence[Sequence[str]],
    weights: Sequence[float] | None = None,
    *,
    key: Key | None = None,
) -> tuple[list[str], float]:
    """The combined word list of ``transcripts`` (word lists) and its mean support in [0, 1].

    ``weights``: one per transcript (annotator weights; equal when None). ``key``: how words
    are compared (identity when None); a word whose key is empty is dropped.
    """
    n = len(transcripts)
    if n == 0:
        return [], 0.0
    w = _weights(n, weights)
    to_key = key or _identity
    cleaned = [[word for word in t if to_key(word)] for t in transcripts]
    keyed = [[to_key(word) for word in t] for t in cleaned]
    pivot, pivot_support = medoid(keyed, w)
    if n < 3:
        return list(cleaned[pivot]), pivot_support
    network = _Network(keyed[pivot], n, pivot)
    others = sorted(
        (i for i in range(n) if i != pivot), key=lambda i: _distance(keyed[pivot], keyed[i])
    )
    for who in others:
        network.add(who, keyed[who], w)
    spelling = _spellings(cleaned, keyed, w)
    out: list[str] = []
    won: list[str] = []
    supports: list[float] = []
    for slot in network.slots:
        winner, support = _vote(slot, w, pivot)
        supports.append(support)
        if winner is not None:
            won.append(winner)
            out.append(spelling[winner])
    if _spread(won, keyed, w) > _spread(keyed[pivot], keyed, w):
        return list(cleaned[pivot]), pivot_support
    return out, (sum(supports) / len(supports) if supports else 1.0)


def _spread(candidate: Sequence[str], keyed: Sequence[Sequence[str]], w: Sequence[float]) -> float:
    """Weighted sum of the word edit distances from ``candidate`` to every transcript."""
    return sum(
        weight * _distance(candidate, other) * max(len(candidate), len(other))
        for weight, other in zip(w, keyed, strict=True)
    )
