"""Word-level differences between transcripts, for the review page.

:func:`word_diff` aligns two texts word by word with the alignment the word error rate
counts (:func:`labelfarm.ml.text_metrics.align`: words compared in their normalised form, so
case, punctuation, Unicode composition and zero-width joiners make no difference) and gives
runs of ``equal``, ``replace`` (substituted), ``delete`` (only in the first) and ``insert``
(only in the second) words, each side in its own spelling as written.

:func:`item_diffs` gives a review item's differences: between the current transcripts of
its annotators, pair by pair (the first :data:`MAX_ANNOTATORS`), and between the ASR
pre-fill and the final text (the item's label: the review decision, else the combined
transcript; before any label, each annotator's transcript).
"""

from __future__ import annotations

from difflib import SequenceMatcher
from typing import Any, NamedTuple

from labelfarm.db.tx import CoreTx, Sql, transaction
from labelfarm.errors import NotFound
from labelfarm.jsonutil import loads
from labelfarm.ml.text_metrics import align, normalise_text, word_errors
from labelfarm.schema.segments import transcript_text
from labelfarm.services.aggregation import label_items
from labelfarm.services.asr_quality import ASR_MODEL
from labelfarm.services.projects import Project

OPS = ("equal", "replace", "delete", "insert")
MAX_WORDS = 20_000  # words per side compared; beyond, the rest is left out (``truncated``)
MAX_ANNOTATORS = 4  # annotators compared pairwise (6 pairs)

Run = tuple[str, list[str], list[str]]


class _Token(NamedTuple):
    shown: str  # as written, with any punctuation that followed it
    key: str  # as compared


def tokens(text: str) -> list[_Token]:
    """The words of ``text`` as written, each with its comparison form. A word that is all
    punctuation joins the word before it (or the next one, at the start)."""
    out: list[_Token] = []
    pending = ""
    for raw in text.split():
        key = normalise_text(raw)
        if not key:
            if out:
                out[-1] = _Token(f"{out[-1].shown} {raw}", out[-1].key)
            else:
                pending = f"{pending}{raw} "
            continue
        out.append(_Token(pending + raw, key))
        pending = ""
    return out


Step = tuple[str, int | None, int | None]  # op, index in a, index in b


def _steps(ka: list[str], kb: list[str]) -> list[Step]:
    """A minimum edit alignment of two key lists, one step per word."""
    steps: list[Step] = []
    i = j = 0
    for ref, hyp in align(ka, kb):
        if ref is not None and hyp is not None:
            steps.append(("equal" if ref == hyp else "replace", i, j))
            i, j = i + 1, j + 1
        elif ref is not None:
            steps.append(("delete", i, None))
            i += 1
        else:
            steps.append(("insert", None, j))
            j += 1
    return steps


def _tidy(steps: list[Step], ka: list[str], kb: list[str]) -> list[Step]:
    """Each stretch of substitutions re-aligned to show the words it shares, where that
    costs as many errors (``the mat`` → ``mat today``: a deletion, an equal word and an
    insertion rather than two substitutions)."""
    out: list[Step] = []
    k = 0
    while k < len(steps):
        if steps[k][0] != "replace":
            out.append(steps[k])
            k += 1
            continue
        end = k
        while end < len(steps) and steps[end][0] == "replace":
            end += 1
        ia = [s[1] for s in steps[k:end] if s[1] is not None]
        ib = [s[2] for s in steps[k:end] if s[2] is not None]
        matcher = SequenceMatcher(None, [ka[i] for i in ia], [kb[j] for j in ib], autojunk=False)
        again: list[Step] = []
        for tag, a1, a2, b1, b2 in matcher.get_opcodes():
            pairs = min(a2 - a1, b2 - b1) if tag in ("equal", "replace") else 0
            op = "equal" if tag == "equal" else "replace"
            again.extend((op, ia[a1 + n], ib[b1 + n]) for n in range(pairs))
            again.extend(("delete", ia[n], None) for n in range(a1 + pairs, a2))
            again.extend(("insert", None, ib[n]) for n in range(b1 + pairs, b2))
        errors = sum(op != "equal" for op, _, _ in again)
        out.extend(again if errors <= end - k else steps[k:end])
        k = end
    return out


def word_diff(a: str, b: str) -> list[Run]:
    """Runs ``(op, a_words, b_words)`` turning ``a`` into ``b``: ``equal`` and ``replace``
    carry words of both, ``delete`` of ``a`` only, ``insert`` of ``b`` only. As many words
    differ as the word error rate counts."""
    ta, tb = tokens(a)[:MAX_WORDS], tokens(b)[:MAX_WORDS]
    ka, kb = [t.key for t in ta], [t.key for t in tb]
    runs: list[Run] = []
    for op, i, j in _tidy(_steps(ka, kb), ka, kb):
        left = [ta[i].shown] if i is not None else []
        right = [tb[j].shown] if j is not None else []
        if runs and runs[-1][0] == op:
            runs[-1][1].extend(left)
            runs[-1][2].extend(right)
        else:
            runs.append((op, left, right))
    return runs


def compare(a_name: str, a: str, b_name: str, b: str) -> dict[str, Any]:
    """One comparison as the review page shows it: both names, the word error rate of ``b``
    against ``a``, and the runs."""
    counted = word_errors(a, b)
    return {
        "a": a_name,
        "b": b_name,
        "words": counted.reference,
        "errors": counted.errors,
        "wer": round(counted.rate, 6),
        "truncated": max(len(a.split()), len(b.split())) > MAX_WORDS,
        "runs": [{"op": op, "a": " ".join(x), "b": " ".join(y)} for op, x, y in word_diff(a, b)],
    }


_ANNOTATIONS = Sql(
    "SELECT a.user_id, a.value, u.pseudonym FROM annotations a JOIN users u ON u.id = a.user_id "
    "WHERE a.item_id = :i AND a.project_id = :p AND a.excluded IS NULL ORDER BY a.id"
)
_ASR = Sql(
    "SELECT value, model_version FROM predictions WHERE item_id = :i AND model = :asr "
    "ORDER BY id DESC LIMIT 1"
)
_ITEM = Sql("SELECT id FROM items WHERE id = :i AND project_id = :p AND status = 'ready'")


def _text(value: Any, field: str) -> str | None:
    if isinstance(value, dict) and isinstance(value.get(field), list):
        return transcript_text(value[field])
    return None


@transaction("read")
def item_diffs(tx: CoreTx, project: Project, item_id: int) -> dict[str, Any]:
    """The word differences of a review item per segments field (see the module text)."""
    if tx.one(_ITEM, {"i": item_id, "p": project.id}) is None:
        raise NotFound(f"no item {item_id} in this project", [{"field": "item_id"}])
    names = [f.name for f in project.schema.fields if f.type_name == "segments"]
    if not names:
        return {"item_id": item_id, "fields": []}
    current: dict[int, tuple[str, Any]] = {}
    for user_id, raw, pseudonym in tx.rows(_ANNOTATIONS, {"i": item_id, "p": project.id}):
        current[user_id] = (pseudonym, loads(raw))  # the newest of each annotator wins
    people = list(current.values())[:MAX_ANNOTATORS]
    asr = tx.one(_ASR, {"i": item_id, "asr": ASR_MODEL})
    label = label_items(tx, project, [item_id]).get(item_id) if current else None
    fields = []
    for name in names:
        texts = [(who, t) for who, v in people if (t := _text(v, name)) is not None]
        pairs = [
            compare(a_who, a, b_who, b)
            for k, (a_who, a) in enumerate(texts)
            for b_who, b in texts[k + 1 :]
        ]
        prefill: list[dict[str, Any]] = []
        asr_text = _text(loads(asr[0]), name) if asr is not None else None
        final = _text(label.get("value"), name) if label else None
        if asr_text is not None and final is not None:
            prefill.append(compare("asr", asr_text, "final", final))
        elif asr_text is not None:
            prefill.extend(compare("asr", asr_text, who, t) for who, t in texts)
        fields.append(
            {
                "field": name,
                "asr_version": asr[1] if asr is not None else None,
                "annotators": pairs,
                "prefill": prefill,
            }
        )
    return {"item_id": item_id, "fields": fields}
