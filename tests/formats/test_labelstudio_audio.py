"""Label Studio audio both ways: regions with speakers and events, per-region transcription,
a whole-file transcription and a dialogue's paragraph labels come in as ``segments``,
``text`` and ``spans`` fields and go back out as the results they were."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from labelfarm.formats.labelstudio_config import (
    label_config_from_schema,
    schema_from_label_config,
)
from labelfarm.formats.labelstudio_regions import RegionWriter
from labelfarm.formats.labelstudio_results import ResultConverter
from labelfarm.schema import compile_schema
from labelfarm.services.exports import export_stream

AUDIO = "labelstudio_audio/label-studio-frontend"

CONFIG = """<View>
  <Labels name="speaker" toName="audio">
    <Label value="Asha"/>
    <Label value="Ravi"/>
    <Label value="Noise"/>
  </Labels>
  <AudioPlus name="audio" value="$audio"/>
  <TextArea name="transcription" toName="audio" perRegion="true" editable="true" rows="2"/>
  <TextArea name="summary" toName="audio"/>
  <ParagraphLabels name="acts" toName="dialogue">
    <Label value="greeting"/>
    <Label value="question"/>
  </ParagraphLabels>
  <Paragraphs name="dialogue" value="$dialogue" layout="dialogue"/>
</View>
"""

DIALOGUE = [
    {"author": "Asha", "text": "வணக்கம் ரவி", "start": 0.5, "end": 2.25},
    {"author": "Ravi", "text": "Hello! How are you?", "start": 2.5, "end": 4.0},
]


def _region(rid: str, start: float, end: float, **value: Any) -> list[dict[str, Any]]:
    """A labels result and, with ``text``, the textarea result of one region."""
    geo = {"start": start, "end": end, "channel": value.pop("channel", 0)}
    out = [
        {
            "id": rid,
            "from_name": "speaker",
            "to_name": "audio",
            "type": "labels",
            "origin": "manual",
            "value": {**geo, "labels": value["labels"]},
        }
    ]
    if "text" in value:
        out.append(
            {
                "id": rid,
                "from_name": "transcription",
                "to_name": "audio",
                "type": "textarea",
                "origin": "manual",
                "value": {**geo, "text": value["text"]},
            }
        )
    return out


TASK = {
    "id": 41,
    "data": {"audio": "https://example.org/call.wav", "dialogue": DIALOGUE},
    "annotations": [
        {
            "id": 7,
            "result": [
                *_region("a1", 0.512345678, 2.2501, labels=["Asha"], text=["வணக்கம் ரவி"]),
                *_region("a2", 2.5, 4.0, labels=["Ravi"], text=["Hello!", "How are you?"]),
                *_region("a3", 4.1, 4.9, labels=["Noise"]),
                *_region("a4", 1.0, 3.0, labels=["Ravi"], text=["mm"], channel=1),
                {
                    "id": "s1",
                    "from_name": "summary",
                    "to_name": "audio",
                    "type": "textarea",
                    "value": {"text": ["a greeting"]},
                },
                {
                    "id": "p1",
                    "from_name": "acts",
                    "to_name": "dialogue",
                    "type": "paragraphlabels",
                    "value": {
                        "start": "0",
                        "end": "0",
                        "startOffset": 0,
                        "endOffset": 7,
                        "text": "வணக்கம்",
                        "paragraphlabels": ["greeting"],
                    },
                },
                {
                    "id": "p2",
                    "from_name": "acts",
                    "to_name": "dialogue",
                    "type": "paragraphlabels",
                    "value": {
                        "start": "0",
                        "end": "1",
                        "startOffset": 8,
                        "endOffset": 6,
                        "text": "ரவி\nHello!",
                        "paragraphlabels": ["question"],
                    },
                },
            ],
        }
    ],
    "predictions": [],
}


def _write(tmp: Path, tasks: Any) -> Path:
    path = tmp / "tasks.json"
    path.write_text(json.dumps(tasks, ensure_ascii=False), encoding="utf-8")
    return path


def _export(lab: Any, project: Any) -> list[dict[str, Any]]:
    chunks, _ = export_stream(
        lab.world.db, project, "labelstudio", now=lab.world.clock(), actor_id=None
    )
    return json.loads(b"".join(chunks))


def _by_key(results: list[dict[str, Any]]) -> dict[tuple[str, str], dict[str, Any]]:
    return {(str(r.get("id")), str(r.get("from_name"))): r for r in results}


def test_regions_text_and_dialogue_come_back_as_they_were(lab, tmp_path):
    schema = schema_from_label_config(CONFIG)
    types = {f["name"]: f["type"] for f in schema["fields"]}
    assert types == {"speaker": "segments", "summary": "text", "acts": "spans"}
    seg_spec = next(f for f in schema["fields"] if f["name"] == "speaker")
    assert seg_spec["speakers"] == ["Asha", "Ravi"] and seg_spec["events"] == ["Noise"]
    assert schema["data"] == {"audio": "audio", "dialogue": "json"}
    project = lab.project(schema)
    lab.import_(project, _write(tmp_path, [TASK]), "labelstudio")

    [value] = lab.values(project)["41"]
    assert value["summary"] == "a greeting"
    assert [(s["channel"], s["start"], s["end"]) for s in value["speaker"]] == [
        (0, 0.512, 2.25),
        (0, 2.5, 4.0),
        (0, 4.1, 4.9),
        (1, 1.0, 3.0),
    ]
    first, second, noise, _ = value["speaker"]
    assert (first["speaker"], first["text"]) == ("Asha", "வணக்கம் ரவி")
    assert second["text"] == "Hello!\nHow are you?"
    assert (noise["speaker"], noise["events"], noise["text"]) == (None, ["Noise"], "")
    spans = {s["label"]: (s["start"], s["end"]) for s in value["acts"]}
    assert spans == {"greeting": (0, 7), "question": (8, 18)}  # "ரவி\nHello!" across the break

    [task] = _export(lab, project)
    assert task["data"] == TASK["data"] and task["id"] == 41
    [ann] = task["annotations"]
    given = TASK["annotations"][0]["result"]
    assert _by_key(ann["result"]) == _by_key(given)  # every result, to the last digit
    assert [(r["id"], r["from_name"]) for r in ann["result"]] == [
        (r["id"], r["from_name"]) for r in given
    ]


def test_segments_and_spans_made_in_labelfarm_are_written_from_their_values():
    compiled = compile_schema(schema_from_label_config(CONFIG))
    value = {  # a segment and a span of the second utterance, made in labelfarm
        "speaker": [{"start": 0.25, "end": 1.5, "text": "வணக்கம்", "speaker": "Asha"}],
        "acts": [{"label": "question", "start": 19, "end": 31}],
    }
    results = RegionWriter(compiled).results(compiled.validate(value), TASK["data"])
    by_type = {r["type"]: r for r in results}
    assert by_type["labels"]["value"] == {
        "start": 0.25,
        "end": 1.5,
        "channel": 0,
        "labels": ["Asha"],
    }
    assert by_type["textarea"]["value"]["text"] == ["வணக்கம்"]
    assert by_type["textarea"]["id"] == by_type["labels"]["id"]
    assert by_type["textarea"]["from_name"] == "transcription"
    assert by_type["paragraphlabels"]["value"] == {
        "start": "1",
        "end": "1",
        "startOffset": 7,
        "endOffset": 19,
        "paragraphlabels": ["question"],
    }


def test_label_config_round_trips():
    schema = schema_from_label_config(CONFIG)
    again = schema_from_label_config(label_config_from_schema(schema))
    assert again == schema


def test_label_studio_frontend_fixtures_import(lab, interop, tmp_path):
    folder = interop / AUDIO
    if not folder.is_dir():
        pytest.skip(f"no Label Studio audio fixtures at {folder}")
    regions = folder / "audio_regions_annotation_1.json"
    project = lab.project(lab.guess("labelstudio", regions))
    lab.import_(project, regions, "labelstudio")
    [value] = lab.values(project)["1"]
    assert value["choice"] == "Lo-Fi"
    assert [(s["start"], s["end"], s["events"], s["text"]) for s in value["label"]] == [
        (12.778, 28.506, ["Beat"], ""),
        (55.748, 59.399, ["Other"], ""),
    ]
    [task] = _export(lab, project)
    source = json.loads(regions.read_text())
    assert task["data"] == source["data"] and task["task_path"] == source["task_path"]
    assert task["annotations"][0]["id"] == "1001"
    assert _by_key(task["annotations"][0]["result"]) == _by_key(source["annotations"][0]["result"])

    whole = folder / "transcribe_audio_tasks.json"
    project = lab.project(lab.guess("labelstudio", whole))
    lab.import_(project, whole, "labelstudio")
    [task] = _export(lab, project)
    [pred] = task["predictions"]
    assert pred["model_version"] == "model 1"
    assert pred["result"] == json.loads(whole.read_text())[0]["predictions"][0]["result"]


def test_a_schema_guessed_from_tasks_keeps_them_too(lab, tmp_path):
    path = _write(tmp_path, [TASK])
    schema = lab.guess("labelstudio", path)
    fields = {f["name"]: f for f in schema["fields"]}
    assert {n: f["type"] for n, f in fields.items()} == {
        "speaker": "segments",
        "summary": "text",
        "acts": "spans",
    }
    # labels of regions with text are speakers, of regions without are events
    assert fields["speaker"]["speakers"] == ["Asha", "Ravi"]
    assert fields["speaker"]["events"][0] == "Noise"
    [audio] = schema["labelstudio"]["objects"]
    assert audio["regions"] == {"field": "speaker", "labels": "speaker", "text": "transcription"}
    assert schema["labelstudio"]["controls"] == {"acts": "ParagraphLabels"}
    project = lab.project(schema)
    lab.import_(project, path, "labelstudio")
    [task] = _export(lab, project)
    given = TASK["annotations"][0]["result"]
    assert _by_key(task["annotations"][0]["result"]) == _by_key(given)


def test_a_segments_field_of_labelfarm_goes_to_label_studio_and_back():
    schema = compile_schema(
        {
            "fields": [{"name": "transcript", "type": "segments", "speakers": ["A", "B"]}],
            "data": {"audio": "audio"},
        }
    )
    config = label_config_from_schema(schema)
    assert '<TextArea name="transcript_text" toName="audio" perRegion="true"' in config
    value = schema.validate(
        {
            "transcript": [
                {"start": 0, "end": 1.5, "text": "hi", "speaker": "A", "channel": 1},
                {"start": 2, "end": 3, "text": "", "events": ["noise"]},
            ]
        }
    )
    data = {"audio": "x.wav"}
    results = RegionWriter(schema).results(value, data)
    assert [(r["id"], r["from_name"], r["type"]) for r in results] == [
        ("lf-transcript-1", "transcript", "labels"),  # channel 0 first: the noise
        ("lf-transcript-2", "transcript", "labels"),
        ("lf-transcript-2", "transcript_text", "textarea"),
    ]
    assert results[2]["value"] == {"start": 0.0, "end": 1.5, "channel": 1, "text": ["hi"]}
    back = ResultConverter(schema).value(results, "here", data)
    assert not isinstance(back, list) and back.value == value
    # the config written reads back into the same field
    [field] = schema_from_label_config(config)["fields"]
    assert field["speakers"] == ["A", "B"] and field["events"] == schema.fields[0].events
