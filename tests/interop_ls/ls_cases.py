"""What the round trip carries: per case a Label Studio label config, its tasks, and the
annotations drawn on them (as Label Studio's labeling page submits them: region ids,
``origin``, image sizes where the page knows them).

Box values are chosen so that any rounding, any swap of percentages and pixels, or any
rotation about the wrong pivot shows beyond 1e-6.
"""

from __future__ import annotations

import io
import math
from dataclasses import dataclass, field
from typing import Any

from PIL import Image

ANA = "ana@example.com"
BEN = "ben@example.com"


@dataclass
class Drawn:
    """One annotation: who drew it, its results, how long it took (seconds)."""

    annotator: str
    result: list[dict[str, Any]]
    lead_time: float


@dataclass
class Task:
    """Text data, or an image of ``size`` uploaded to Label Studio (data then filled in)."""

    data: dict[str, Any] | None = None
    size: tuple[int, int] | None = None
    annotations: list[Drawn] = field(default_factory=list)
    predictions: list[list[dict[str, Any]]] = field(default_factory=list)


@dataclass
class Case:
    name: str
    config: str
    tasks: list[Task]


def png(size: tuple[int, int], seed: int) -> bytes:
    """A small PNG, distinct per seed."""
    out = io.BytesIO()
    Image.new("RGB", size, (seed * 40 % 256, 90, 200 - seed * 30 % 200)).save(out, "PNG")
    return out.getvalue()


def box_corners(x: float, y: float, w: float, h: float, deg: float, pivot: str) -> list[float]:
    """A box's corners (x0, y0, x1, y1, ...), turned ``deg`` clockwise (y down) about its
    centre (labelfarm) or its top-left corner (Label Studio)."""
    t = math.radians(deg)
    px, py = (x + w / 2, y + h / 2) if pivot == "centre" else (x, y)
    out = []
    for cx, cy in ((x, y), (x + w, y), (x + w, y + h), (x, y + h)):
        dx, dy = cx - px, cy - py
        out += [px + dx * math.cos(t) - dy * math.sin(t), py + dx * math.sin(t) + dy * math.cos(t)]
    return out


def _choice(rid: str, name: str, to: str, *choices: str) -> dict[str, Any]:
    return {
        "id": rid,
        "from_name": name,
        "to_name": to,
        "type": "choices",
        "origin": "manual",
        "value": {"choices": list(choices)},
    }


def _box(
    rid: str,
    label: str,
    xywh: tuple[float, float, float, float],
    *,
    size: tuple[int, int] | None,
    rotation: float = 0,
) -> dict[str, Any]:
    x, y, w, h = xywh
    r: dict[str, Any] = {
        "id": rid,
        "from_name": "objects",
        "to_name": "photo",
        "type": "rectanglelabels",
        "origin": "manual",
    }
    if size is not None:  # the labeling page writes the size of the image it showed
        r.update(original_width=size[0], original_height=size[1], image_rotation=0)
    r["value"] = {
        "x": x,
        "y": y,
        "width": w,
        "height": h,
        "rotation": rotation,
        "rectanglelabels": [label],
    }
    return r


def _span(rid: str, text: str, part: str, label: str, nth: int = 0) -> dict[str, Any]:
    start = -1
    for _ in range(nth + 1):
        start = text.index(part, start + 1)
    return {
        "id": rid,
        "from_name": "entities",
        "to_name": "doc",
        "type": "labels",
        "origin": "manual",
        "value": {"start": start, "end": start + len(part), "text": part, "labels": [label]},
    }


def _entries(rid: str, name: str, *entries: str) -> dict[str, Any]:
    """A text area's entries, one per submission (an entry of a text area with several
    rows may hold several lines)."""
    return {
        "id": rid,
        "from_name": name,
        "to_name": "review",
        "type": "textarea",
        "origin": "manual",
        "value": {"text": list(entries)},
    }


# Tag names differ from data keys on purpose (``review`` shows ``$text``, ``photo`` shows
# ``$image``): results name the tag, never the data key.
CLASSIFICATION = Case(
    "classification",
    """<View>
  <Text name="review" value="$text"/>
  <Choices name="sentiment" toName="review" choice="single">
    <Choice value="positive"/><Choice value="negative"/><Choice value="neutral"/>
    <Choice value="never-used"/>
  </Choices>
</View>""",
    [
        Task(
            {"text": "Arrived early and works perfectly."},
            annotations=[
                Drawn(ANA, [_choice("c0Ana01", "sentiment", "review", "positive")], 4.25),
                Drawn(BEN, [_choice("c0Ben01", "sentiment", "review", "neutral")], 7.125),
            ],
            predictions=[[_choice("p0", "sentiment", "review", "positive")]],
        ),
        Task(
            {"text": "The box was crushed; the kettle leaks."},
            annotations=[Drawn(ANA, [_choice("c1Ana01", "sentiment", "review", "negative")], 3.5)],
        ),
    ],
)

_SIZES = [(640, 480), (301, 199)]

BOXES_SIZED = Case(
    "boxes-with-image-size",
    """<View>
  <Image name="photo" value="$image"/>
  <RectangleLabels name="objects" toName="photo">
    <Label value="car"/><Label value="person"/><Label value="bicycle"/>
  </RectangleLabels>
</View>""",
    [
        Task(
            size=_SIZES[0],
            annotations=[
                Drawn(
                    ANA,
                    [
                        _box("b0Ana01", "car", (10.5, 20.25, 30.125, 15.0625), size=_SIZES[0]),
                        _box(
                            "b0Ana02",
                            "person",
                            (100 / 3, 200 / 3, 12.3456789012, 8.7654321098),
                            size=_SIZES[0],
                        ),
                    ],
                    12.375,
                ),
                Drawn(
                    BEN,
                    [_box("b0Ben01", "car", (11.0, 19.75, 29.5, 16.0), size=_SIZES[0])],
                    9.0,
                ),
            ],
            predictions=[[_box("p1", "car", (10.0, 20.0, 30.0, 15.0), size=_SIZES[0])]],
        ),
        Task(
            size=_SIZES[1],
            annotations=[
                Drawn(
                    ANA,
                    [
                        _box(
                            "b1Ana01", "bicycle", (0.0, 0.0, 99.9999999, 37.1234567), size=_SIZES[1]
                        )
                    ],
                    2.5,
                )
            ],
        ),
    ],
)

BOXES_UNSIZED = Case(
    "boxes-without-image-size",
    BOXES_SIZED.config,
    [
        Task(
            size=(512, 384),
            annotations=[
                Drawn(
                    ANA,
                    [
                        _box("u0Ana01", "person", (5.5, 6.25, 40.0, 50.5), size=None),
                        _box("u0Ana02", "car", (1 / 7, 2 / 7, 3 / 7, 4 / 7), size=None),
                    ],
                    6.75,
                )
            ],
        )
    ],
)

BOXES_ROTATED = Case(
    "boxes-rotated",
    BOXES_SIZED.config,
    [
        Task(
            size=(800, 600),
            annotations=[
                Drawn(
                    ANA,
                    [
                        _box(
                            "r0Ana01", "car", (40.0, 30.0, 20.0, 10.0), size=(800, 600), rotation=30
                        ),
                        _box(
                            "r0Ana02",
                            "person",
                            (12.3456, 65.4321, 7.777777, 21.212121),
                            size=(800, 600),
                            rotation=292.5,
                        ),
                    ],
                    21.5,
                )
            ],
        )
    ],
)

_DOC = "Priya Raman met Anil Kumar at Tata Steel in Chennai; சென்னை and नई दिल्ली next."

NER = Case(
    "ner-spans",
    """<View>
  <Text name="doc" value="$text"/>
  <Labels name="entities" toName="doc">
    <Label value="PER"/><Label value="ORG"/><Label value="LOC"/><Label value="MISC"/>
  </Labels>
</View>""",
    [
        Task(
            {"text": _DOC},
            annotations=[
                Drawn(
                    ANA,
                    [
                        _span("n0Ana01", _DOC, "Priya Raman", "PER"),
                        _span("n0Ana02", _DOC, "Anil Kumar", "PER"),
                        _span("n0Ana03", _DOC, "Tata Steel", "ORG"),
                        _span("n0Ana04", _DOC, "Chennai", "LOC"),
                        _span("n0Ana05", _DOC, "சென்னை", "LOC"),
                        _span("n0Ana06", _DOC, "नई दिल्ली", "LOC"),
                    ],
                    30.25,
                ),
                Drawn(BEN, [_span("n0Ben01", _DOC, "Tata Steel", "ORG")], 5.0),
            ],
        )
    ],
)

MULTI_LABEL = Case(
    "multi-label",
    """<View>
  <Text name="review" value="$text"/>
  <Choices name="topics" toName="review" choice="multiple">
    <Choice value="price"/><Choice value="quality"/><Choice value="shipping"/>
    <Choice value="service"/>
  </Choices>
</View>""",
    [
        Task(
            {"text": "Cheap, but it came late and support never answered."},
            annotations=[
                # in the order clicked, not the config's
                Drawn(
                    ANA,
                    [_choice("m0Ana01", "topics", "review", "shipping", "price", "service")],
                    8.5,
                ),
                Drawn(BEN, [_choice("m0Ben01", "topics", "review", "price")], 2.0),
            ],
        )
    ],
)

# ``rows`` is the height of the input; each submission is one entry of ``text``
TEXT_AREA = Case(
    "text-area",
    """<View>
  <Text name="review" value="$text"/>
  <TextArea name="summary" toName="review" rows="3" maxSubmissions="3"/>
  <TextArea name="keywords" toName="review"/>
</View>""",
    [
        Task(
            {"text": "Battery lasts two days. Screen scratches easily."},
            annotations=[
                Drawn(
                    ANA,
                    [
                        _entries(
                            "t0Ana01",
                            "summary",
                            "Long battery life.",
                            "Fragile screen:\nscratches in a week.",
                        ),
                        _entries("t0Ana02", "keywords", "battery", "screen"),
                    ],
                    15.0,
                ),
                Drawn(BEN, [_entries("t0Ben01", "summary", "Good battery; weak screen.")], 11.5),
            ],
        )
    ],
)

CASES = [CLASSIFICATION, BOXES_SIZED, BOXES_UNSIZED, BOXES_ROTATED, NER, MULTI_LABEL, TEXT_AREA]
