"""Label Studio: tasks import with annotations and predictions, export back, and the export
re-imports into labelfarm identically."""

from __future__ import annotations

import json

import pytest

from conftest import close  # type: ignore[import-not-found]

LS_FILES = [
    "labelstudio/label-studio/tasks_annotations_predictions.json",
    "labelstudio/label-studio-sdk/csv_test.json",
    "labelstudio/label-studio-sdk/data_keypoints.json",
]
RESULT_KEYS = (
    "from_name",
    "to_name",
    "type",
    "value",
    "id",
    "score",
    "origin",
    "parentID",
    "original_width",
    "original_height",
)


def _results(results: list[dict]) -> list[dict]:
    out = []
    for r in results:
        if r.get("type") == "relation":
            out.append({k: r[k] for k in ("type", "from_id", "to_id", "direction") if k in r})
        else:
            out.append({k: r[k] for k in RESULT_KEYS if k in r})
    return sorted(out, key=lambda r: json.dumps(r, sort_keys=True))


def _tasks(doc: list[dict]) -> list[dict]:
    out = []
    for t in doc:
        data = t.get("data", t)
        out.append(
            {
                "data": data,
                "annotations": [
                    _results(a["result"])
                    for a in t.get("annotations", [])
                    if not a.get("was_cancelled")
                ],
                "predictions": [
                    (_results(p["result"]), p.get("score")) for p in t.get("predictions", [])
                ],
            }
        )
    return out


@pytest.mark.parametrize("name", LS_FILES)
def test_labelstudio_fixture_round_trips_and_reimports(lab, interop, name, tmp_path):
    path = interop / name
    schema = lab.guess("labelstudio", path)
    project = lab.project(schema)
    original = json.loads(path.read_text())
    result = lab.import_(project, path, "labelstudio")
    assert result.n_items == len(original)
    exported = lab.export(project, "labelstudio")
    before, after = _tasks(original), _tasks(json.loads(exported))
    for b, a in zip(before, after, strict=True):
        assert b["data"] == a["data"]
        for rb, ra in zip(b["annotations"], a["annotations"], strict=True):
            # ids made up for regions that had none are not compared
            ra = [
                {k: v for k, v in r.items() if not (k == "id" and str(v).startswith("lf"))}
                for r in ra
            ]
            close(_results(rb), _results(ra))
        close(
            b["predictions"],
            [
                (
                    [
                        {k: v for k, v in r.items() if not (k == "id" and str(v).startswith("lf"))}
                        for r in rs
                    ],
                    s,
                )
                for rs, s in a["predictions"]
            ],
        )
    again = tmp_path / "export.json"
    again.write_bytes(exported)
    project2 = lab.project(schema)
    lab.import_(project2, again, "labelstudio")
    close(lab.by_item(project), lab.by_item(project2))
    assert lab.counts(project)[2] == lab.counts(project2)[2]  # predictions too


def test_labelstudio_pixels_and_relations(lab, interop):
    path = interop / LS_FILES[2]
    project = lab.project(lab.guess("labelstudio", path))
    lab.import_(project, path, "labelstudio")
    [value] = lab.values(project)["10764"]
    box = value["bbox"][0]
    close([box["x"], box["w"]], [38.849487785658 * 2.16, 47.304964539007095 * 2.16])
    assert len(box["meta"]["relations"]) == 2  # to a keypoint, and to itself
    assert {p["meta"]["parentID"] for p in value["keypoints"]} == {"hplPm0Szvc"}


def test_labelstudio_predictions_and_annotators(lab, interop):
    path = interop / LS_FILES[0]
    project = lab.project(lab.guess("labelstudio", path))
    result = lab.import_(project, path, "labelstudio")
    assert (result.n_items, result.n_annotations, result.n_predictions) == (6, 4, 3)
    assert lab.values(project)[None][:1] == [{"text_class": "class_A"}]


@pytest.mark.parametrize(
    ("body", "location", "field"),
    [
        (
            b'[{"data": {"text": "a"}, "annotations": [{"result": [{"from_name": "nope", '
            b'"to_name": "text", "type": "choices", "value": {"choices": ["x"]}}]}]}]',
            "upload.json line 1 (task 1) annotations[0]",
            "result[0].from_name",
        ),
        (
            b'[{"data": {"text": "a"}}, {"data": {"text": "b"}, "annotations": [{"result": '
            b'[{"from_name": "label", "to_name": "text", "type": "choices", "value": '
            b'{"choices": ["zzz"]}}]}]}]',
            "upload.json line 1 (task 2) annotations[0]",
            "value.label",
        ),
        (b'[{"data": {"text": "a"}}, {"data": ', "upload.json line 1", ""),
        (b'[{"data": "text"}]', "upload.json line 1 (task 1)", "data"),
    ],
)
def test_labelstudio_bad_files_are_located(lab, tmp_path, body, location, field):
    path = tmp_path / "upload.json"
    path.write_bytes(body)
    schema = {"fields": [{"name": "label", "type": "choice", "options": ["x", "y"]}]}
    details = lab.fails(lab.project(schema), path, "labelstudio")
    assert (details[0]["location"], details[0]["field"]) == (location, field), details
