"""Text classification and spans: doccano JSONL and CSV round-trip; bad rows are located."""

from __future__ import annotations

import csv
import io
import json

import pytest


def test_doccano_jsonl_round_trips(lab, interop):
    path = interop / "text_classification/doccano/example.jsonl"
    schema = lab.guess("doccano", path)
    assert schema["fields"][0]["type"] == "multichoice"
    project = lab.project(schema)
    lab.import_(project, path, "doccano")
    out = [json.loads(ln) for ln in lab.export(project, "doccano").splitlines()]
    assert out == [json.loads(ln) for ln in path.read_text().splitlines()]


def test_doccano_csv_round_trips(lab, interop):
    path = interop / "text_classification/doccano/example.csv"
    project = lab.project(lab.guess("doccano-csv", path))
    lab.import_(project, path, "doccano-csv")
    rows = list(csv.reader(io.StringIO(lab.export(project, "doccano-csv").decode())))
    assert rows == list(csv.reader(io.StringIO(path.read_text())))


def test_spans_round_trip(lab, tmp_path):
    path = tmp_path / "ner.jsonl"
    lines = [
        {"text": "Ada Lovelace met Babbage", "label": [[0, 12, "PER"], [17, 24, "PER"]]},
        {"text": "nothing here", "label": []},
    ]
    path.write_text("".join(json.dumps(ln) + "\n" for ln in lines))
    schema = lab.guess("doccano", path)
    assert schema["fields"][0]["type"] == "spans"
    project = lab.project(schema)
    lab.import_(project, path, "doccano")
    out = [json.loads(ln) for ln in lab.export(project, "doccano").splitlines()]
    assert out == lines
    value = lab.values(project)[None][0]
    assert value["label"][1] == {"label": "PER", "start": 17, "end": 24}


@pytest.mark.parametrize(
    ("body", "location", "field"),
    [
        (b'{"text": "a", "label": ["pos"]}\n{"text": "b", "label": ["neg"', "line 2", ""),
        (b'{"text": 5, "label": ["pos"]}\n', "line 1", "text"),
        (b'{"text": "a", "label": ["maybe"]}\n', "line 1", "label[0]"),
        (b'{"text": "abc", "label": [[1, 9, "pos"]]}\n', "line 1", "label[0]"),
    ],
)
def test_doccano_bad_lines_are_located(lab, tmp_path, body, location, field):
    path = tmp_path / "bad.jsonl"
    path.write_bytes(body)
    schema = {
        "fields": [
            {"name": "label", "type": "multichoice", "options": ["pos", "neg"], "required": False},
            {"name": "spans", "type": "spans", "labels": ["pos"], "required": False},
        ]
    }
    details = lab.fails(lab.project(schema), path, "doccano")
    assert (details[0]["location"], details[0]["field"]) == (location, field), details
