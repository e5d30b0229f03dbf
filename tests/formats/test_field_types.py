"""The shape field types: validation with located errors, agreement, aggregation."""

from __future__ import annotations

import pytest

from labelfarm.schema import FieldError, Schema
from labelfarm.schema.mask import decode_counts, encode_counts

SCHEMA = Schema(
    {
        "fields": [
            {
                "name": "boxes",
                "type": "rectangle",
                "labels": ["a", "b"],
                "required": False,
                "attributes": [
                    {"name": "occluded", "type": "checkbox"},
                    {"name": "color", "type": "radio", "values": ["red", "blue"]},
                ],
            },
            {"name": "polygons", "type": "polygon", "labels": ["a"], "required": False},
            {"name": "lines", "type": "polyline", "labels": ["a"], "required": False},
            {"name": "points", "type": "keypoints", "labels": ["a"], "required": False},
            {"name": "masks", "type": "mask", "labels": ["a"], "required": False},
            {"name": "tags", "type": "tags", "labels": ["a"], "required": False},
            {"name": "spans", "type": "spans", "labels": ["a"], "required": False},
        ]
    }
)


@pytest.mark.parametrize(
    ("value", "path"),
    [
        ({"boxes": [{"label": "c", "x": 0, "y": 0, "w": 1, "h": 1}]}, "boxes[0].label"),
        ({"boxes": [{"label": "a", "x": 0, "y": 0, "w": -1, "h": 1}]}, "boxes[0]"),
        (
            {
                "boxes": [
                    {
                        "label": "a",
                        "x": 0,
                        "y": 0,
                        "w": 1,
                        "h": 1,
                        "attributes": {"occluded": "yes"},
                    }
                ]
            },
            "boxes[0].attributes.occluded",
        ),
        (
            {
                "boxes": [
                    {"label": "a", "x": 0, "y": 0, "w": 1, "h": 1, "attributes": {"color": "green"}}
                ]
            },
            "boxes[0].attributes.color",
        ),
        ({"polygons": [{"label": "a", "points": [[0, 0], [1, 1]]}]}, "polygons[0].points"),
        ({"lines": [{"label": "a", "points": [[0, "x"], [1, 1]]}]}, "lines[0].points[0][1]"),
        (
            {"masks": [{"label": "a", "rle": {"size": [2, 2], "counts": [1, 2]}}]},
            "masks[0].rle.counts",
        ),
        ({"spans": [{"label": "a", "start": 4, "end": 2}]}, "spans[0]"),
        ({"tags": [{"label": "a", "meta": "x"}]}, "tags[0].meta"),
    ],
)
def test_bad_values_are_located(value, path):
    with pytest.raises(FieldError) as info:
        SCHEMA.validate(value)
    assert info.value.path == path


def test_values_are_kept_as_given():
    value = {
        "boxes": [
            {
                "label": "a",
                "x": 1,
                "y": 2.5,
                "w": 3,
                "h": 4,
                "group": 7,
                "attributes": {"occluded": True, "free": "kept"},
                "meta": {"id": 1},
            }
        ],
        "masks": [{"label": "a", "rle": {"size": [2, 2], "counts": "04"}}],
    }
    assert SCHEMA.validate(value) == value


def test_rle_strings_match_pycocotools():
    mask_api = pytest.importorskip("pycocotools.mask")
    import numpy as np

    m = np.zeros((9, 7), dtype=np.uint8, order="F")
    m[2:6, 1:4] = 1
    m[8, 6] = 1
    rle = mask_api.encode(m)
    counts = decode_counts(rle["counts"].decode())
    assert encode_counts(counts) == rle["counts"].decode()
    assert sum(counts) == 63


def test_agreement_and_aggregation():
    f = SCHEMA.by_name["polygons"]
    square = {"label": "a", "points": [[0, 0], [10, 0], [10, 10], [0, 10]]}
    shifted = {"label": "a", "points": [[1, 0], [11, 0], [11, 10], [1, 10]]}
    far = {"label": "a", "points": [[50, 50], [60, 50], [60, 60]]}
    assert f.similarity([square], [shifted]) == 1.0
    assert f.similarity([square], [far]) == 0.0
    value, conf = f.aggregate([[square], [shifted], [far]])
    assert value in ([square], [shifted]) and 0.5 < conf < 1
    spans = SCHEMA.by_name["spans"]
    assert (
        spans.similarity(
            [{"label": "a", "start": 0, "end": 10}], [{"label": "a", "start": 1, "end": 10}]
        )
        == 1.0
    )
    masks = SCHEMA.by_name["masks"]
    rle = {"size": [2, 2], "counts": [1, 3]}
    assert masks.similarity([{"label": "a", "rle": rle}], [{"label": "a", "rle": rle}]) == 1.0
