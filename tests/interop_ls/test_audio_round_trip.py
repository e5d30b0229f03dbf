"""Label Studio audio → labelfarm → Label Studio, against a real Label Studio 1.23.2.

A project with speaker-labelled audio regions, their per-region transcriptions, a whole-file
transcription and paragraph labels on a dialogue is drawn in Label Studio, exported with the
Export button, imported into labelfarm (which must hold segments, text and spans saying the
same), exported from labelfarm and imported into a fresh Label Studio project made from the
label config labelfarm writes: every result must come back as drawn.
"""

from __future__ import annotations

import json
import uuid
from pathlib import Path
from typing import Any

from ls_cases import ANA
from ls_server import LabelStudioAPI

from labelfarm.formats.labelstudio_config import label_config_from_schema, schema_from_label_config

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

DATA = {
    "audio": "https://example.org/call-7.wav",
    "dialogue": [
        {"author": "Asha", "text": "வணக்கம் ரவி", "start": 0.5, "end": 2.25},
        {"author": "Ravi", "text": "Hello! How are you?", "start": 2.5, "end": 4.0},
    ],
}


def _region(rid: str, start: float, end: float, labels: list[str], text: list[str] | None):
    geo = {"start": start, "end": end, "channel": 0}
    out = [
        {
            "id": rid,
            "from_name": "speaker",
            "to_name": "audio",
            "type": "labels",
            "origin": "manual",
            "value": {**geo, "labels": labels},
        }
    ]
    if text is not None:
        out.append(
            {
                "id": rid,
                "from_name": "transcription",
                "to_name": "audio",
                "type": "textarea",
                "origin": "manual",
                "value": {**geo, "text": text},
            }
        )
    return out


RESULT = [
    *_region("r1", 0.512345678, 2.2501, ["Asha"], ["வணக்கம் ரவி"]),
    *_region("r2", 2.5, 4.0, ["Ravi"], ["Hello!", "How are you?"]),
    *_region("r3", 4.1, 4.9, ["Noise"], None),
    {
        "id": "s1",
        "from_name": "summary",
        "to_name": "audio",
        "type": "textarea",
        "origin": "manual",
        "value": {"text": ["a greeting"]},
    },
    {
        "id": "p1",
        "from_name": "acts",
        "to_name": "dialogue",
        "type": "paragraphlabels",
        "origin": "manual",
        "value": {
            "start": "0",
            "end": "1",
            "startOffset": 8,
            "endOffset": 6,
            "text": "ரவி\nHello!",
            "paragraphlabels": ["question"],
        },
    },
]


def _keyed(results: list[dict[str, Any]]) -> dict[tuple[str, str], dict[str, Any]]:
    return {(str(r.get("id")), str(r.get("from_name"))): r for r in results}


def _labelfarm(world: Any, schema: str, ls_file: bytes, tmp: Path) -> tuple[bytes, Any]:
    """Label Studio's export through a labelfarm project: its Label Studio export and the
    value labelfarm holds."""
    ws = world.workspace()
    lf = world.user("audio-migrator", role="manager", workspace=ws)["client"]
    project = lf.create_project(ws["id"], "calls", schema=schema)
    source = tmp / "label-studio-export.json"
    source.write_bytes(ls_file)
    report = lf.import_file(project["id"], source, format="labelstudio")
    assert (report["n_items"], report["n_annotations"]) == (1, 1), report
    [item] = [
        json.loads(x)
        for x in b"".join(lf.export_stream(project["id"], format="jsonl")).splitlines()
    ]
    back = b"".join(lf.export_stream(project["id"], format="labelstudio", completed_by={}))
    return back, item["annotations"][0]["value"]


def test_audio_regions_and_dialogue_round_trip(
    label_studio: LabelStudioAPI, ls_users: dict[str, int], world: Any, tmp_path: Path
) -> None:
    ls = label_studio
    drawn_in = ls.create_project(f"audio drawn {uuid.uuid4().hex[:6]}", CONFIG)
    ls.upload(drawn_in, [("tasks.json", json.dumps([{"data": DATA}]).encode(), "application/json")])
    [task] = ls.tasks(drawn_in)
    stored = ls.annotate(task["id"], RESULT, completed_by=ls_users[ANA], lead_time=12.5)
    assert stored["result"] == RESULT  # Label Studio keeps what was drawn

    back, value = _labelfarm(world, CONFIG, ls.export(drawn_in), tmp_path)
    assert [
        (s["start"], s["end"], s["speaker"], s["events"], s["text"]) for s in value["speaker"]
    ] == [
        (0.512, 2.25, "Asha", [], "வணக்கம் ரவி"),
        (2.5, 4.0, "Ravi", [], "Hello!\nHow are you?"),
        (4.1, 4.9, None, ["Noise"], ""),
    ]
    assert value["summary"] == "a greeting"
    assert [(s["label"], s["start"], s["end"]) for s in value["acts"]] == [("question", 8, 18)]

    # the config labelfarm writes back makes a project Label Studio accepts
    written = label_config_from_schema(schema_from_label_config(CONFIG))
    target = ls.create_project(f"audio back {uuid.uuid4().hex[:6]}", written)
    ls.upload(target, [("labelfarm.json", back, "application/json")])
    [after] = ls.tasks(target)
    assert after["data"] == DATA
    [annotation] = ls.annotations(after["id"])
    assert _keyed(annotation["result"]) == _keyed(RESULT)
    assert annotation["lead_time"] == 12.5
