"""Label Studio dialogue (``<Paragraphs>`` with ``<ParagraphLabels>``) ↔ a ``spans`` field.

A ``<Paragraphs name="dialogue" value="$dialogue">`` shows a data key holding a list of
utterances (``{"author": "A", "text": "…", "start": 1.5, "end": 3.0}``: the keys named by
its ``nameKey`` and ``textKey``, ``author`` and ``text`` by default); the item's data keeps
the list as it is (a ``json`` data key). A ``paragraphlabels`` result labels a stretch of
it: from paragraph ``start`` at character ``startOffset`` to paragraph ``end`` at character
``endOffset`` (paragraph indexes as strings, as Label Studio writes them). In labelfarm the
stretch is a span of the dialogue's text read as one text, the utterances' texts joined by
line breaks: paragraph ``i`` at offset ``o`` is character ``o`` plus the lengths of the
texts before it, each with its line break. The span keeps the result's ``text`` and, in its
``meta``, the value as written, so an export gives back the same indexes and offsets (and
their strings) while the span is unchanged; a new span is written from its offsets.
"""

from __future__ import annotations

from bisect import bisect_right
from itertools import accumulate
from typing import Any

from labelfarm.formats.labelstudio_schema import objects


class DialogueError(ValueError):
    """A paragraph range that does not fit the item's dialogue: why, and where."""

    def __init__(self, reason: str, path: str = "") -> None:
        super().__init__(reason)
        self.reason = reason
        self.path = path


def dialogue(schema_objects: list[dict[str, Any]], to_name: str, data: dict[str, Any]) -> list[str]:
    """The utterance texts of the dialogue object ``to_name`` in an item's ``data``: the
    object's data key (else the key named as the object, else the only list) and its
    ``textKey`` (``text`` by default)."""
    obj = next((o for o in schema_objects if o.get("name") == to_name), None)
    key = str(obj["value"])[1:] if obj else to_name
    text_key = str(((obj or {}).get("attrs") or {}).get("textKey") or "text")
    found = data.get(key)
    if not isinstance(found, list):
        lists = [v for v in data.values() if isinstance(v, list)]
        found = lists[0] if len(lists) == 1 else None
    if not isinstance(found, list):
        raise DialogueError(
            f"the item has no dialogue for {to_name!r} (a list of utterances in data.{key})",
            "to_name",
        )
    texts = []
    for p in found:
        t = p.get(text_key) if isinstance(p, dict) else None
        texts.append(t if isinstance(t, str) else "")
    return texts


def _starts(texts: list[str]) -> list[int]:
    """The offset each utterance starts at in the joined text."""
    return [0, *accumulate(len(t) + 1 for t in texts)][: len(texts)]


def _index(v: dict[str, Any], key: str, n: int) -> int:
    found = v.get(key)
    if isinstance(found, str) and found.strip().isdigit():
        found = int(found)
    if isinstance(found, bool) or not isinstance(found, int) or not 0 <= found < n:
        raise DialogueError(
            f"{key!r} is the index of one of the {n} utterances, got {v.get(key)!r}",
            f"value.{key}",
        )
    return found


def _offset(v: dict[str, Any], key: str, default: int, longest: int) -> int:
    found = v.get(key, default)
    if isinstance(found, bool) or not isinstance(found, int) or not 0 <= found <= longest:
        raise DialogueError(
            f"{key!r} is a character offset from 0 to {longest} in its utterance, got {found!r}",
            f"value.{key}",
        )
    return found


def span_of(v: dict[str, Any], texts: list[str]) -> dict[str, Any]:
    """The ``start``/``end`` (and ``text``) of a ``paragraphlabels`` value as a span of the
    joined dialogue text; a range without offsets covers its utterances whole."""
    first, last = _index(v, "start", len(texts)), _index(v, "end", len(texts))
    begin = _offset(v, "startOffset", 0, len(texts[first]))
    stop = _offset(v, "endOffset", len(texts[last]), len(texts[last]))
    starts = _starts(texts)
    out: dict[str, Any] = {"start": starts[first] + begin, "end": starts[last] + stop}
    if out["end"] <= out["start"]:
        raise DialogueError(
            f"the range ends (utterance {last}, offset {stop}) before it starts (utterance "
            f"{first}, offset {begin})",
            "value.endOffset",
        )
    if isinstance(v.get("text"), str):
        out["text"] = v["text"]
    return out


def range_of(span: dict[str, Any], texts: list[str]) -> dict[str, Any]:
    """The ``paragraphlabels`` value (without its labels) of a span of the joined text."""
    starts = _starts(texts)

    def place(pos: int) -> tuple[int, int]:
        i = max(0, bisect_right(starts, pos) - 1)
        return i, min(pos - starts[i], len(texts[i]))

    if not texts:
        raise DialogueError("the item's dialogue has no utterances", "start")
    first, begin = place(int(span["start"]))
    last, stop = place(int(span["end"]))
    if stop == 0 and last > first:  # ends where an utterance starts: the end of the one before
        last, stop = last - 1, len(texts[last - 1])
    out: dict[str, Any] = {
        "start": str(first),
        "end": str(last),
        "startOffset": begin,
        "endOffset": stop,
    }
    if "text" in span:
        out["text"] = span["text"]
    return out


def texts_for(schema: Any, to_name: str, data: dict[str, Any]) -> list[str]:
    """:func:`dialogue` with the schema's objects."""
    return dialogue(objects(schema), to_name, data)
