"""Files for the formats benchmark: generated COCO, Label Studio and CVAT imports.

Each generator writes ``n`` images (or tasks) with three boxes (and a polygon or a choice)
each, laid out as the tool's own export is, a piece at a time (the files reach hundreds of
megabytes at 100,000).
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

LABELS = ("person", "car", "dog")


def generate(path: Path, n_images: int) -> None:
    """A COCO file of ``n_images`` images with three annotations each, written streaming."""
    with open(path, "w") as out:
        out.write('{"info": {"description": "bench"}, "categories": [')
        out.write(
            ", ".join(
                json.dumps({"id": i + 1, "name": n, "supercategory": ""})
                for i, n in enumerate(["person", "car", "dog"])
            )
        )
        out.write('], "images": [\n')
        for i in range(n_images):
            sep = ",\n" if i else ""
            out.write(
                sep
                + json.dumps(
                    {"id": i + 1, "file_name": f"img/{i:07d}.jpg", "width": 640, "height": 480}
                )
            )
        out.write('\n], "annotations": [\n')
        ann = 0
        for i in range(n_images):
            for k in range(3):
                ann += 1
                x, y = (i * 7 + k * 50) % 500, (i * 3 + k * 40) % 400
                doc: dict[str, Any] = {
                    "id": ann,
                    "image_id": i + 1,
                    "category_id": k + 1,
                    "bbox": [x, y, 60.5, 40.25],
                    "area": 2435.125,
                    "iscrowd": 0,
                }
                if k == 0:
                    doc["segmentation"] = [[x, y, x + 60, y, x + 60, y + 40, x, y + 40]]
                out.write((",\n" if ann > 1 else "") + json.dumps(doc))
        out.write("\n]}\n")


LS_SCHEMA = {
    "fields": [
        {"name": "label", "type": "rectangle", "labels": list(LABELS), "required": False},
        {"name": "quality", "type": "choice", "options": ["good", "blurry"], "required": False},
    ]
}
_LS_TIME = "2024-05-01T10:00:00.000000Z"


def _ls_results(i: int, score: float | None) -> list[dict[str, Any]]:
    out: list[dict[str, Any]] = []
    for k, label in enumerate(LABELS):
        x, y = (i * 7 + k * 50) % 500, (i * 3 + k * 40) % 400
        r: dict[str, Any] = {
            "id": f"r{i}x{k}",
            "type": "rectanglelabels",
            "from_name": "label",
            "to_name": "image",
            "original_width": 640,
            "original_height": 480,
            "image_rotation": 0,
            "origin": "manual",
            "value": {
                "x": x / 6.4,
                "y": y / 4.8,
                "width": 9.453125,
                "height": 8.385416666666666,
                "rotation": 0,
                "rectanglelabels": [label],
            },
        }
        if score is not None:
            r["score"] = score
        out.append(r)
    quality = "good" if i % 5 else "blurry"
    out.append(
        {
            "id": f"q{i}",
            "type": "choices",
            "from_name": "quality",
            "to_name": "image",
            "origin": "manual",
            "value": {"choices": [quality]},
        }
    )
    return out


def generate_labelstudio(path: Path, n_tasks: int) -> None:
    """A Label Studio JSON export of ``n_tasks`` tasks, each with an annotation and a
    prediction, with the keys Label Studio writes; written streaming."""
    with open(path, "w") as out:
        out.write("[")
        for i in range(n_tasks):
            task = {
                "id": i + 1,
                "annotations": [
                    {
                        "id": i + 1,
                        "completed_by": 1 + i % 20,
                        "result": _ls_results(i, None),
                        "was_cancelled": False,
                        "ground_truth": False,
                        "created_at": _LS_TIME,
                        "updated_at": _LS_TIME,
                        "draft_created_at": None,
                        "lead_time": 12.5,
                        "prediction": {},
                        "result_count": 4,
                        "unique_id": f"00000000-0000-4000-8000-{i:012d}",
                        "import_id": None,
                        "last_action": None,
                        "task": i + 1,
                        "project": 1,
                        "updated_by": 1 + i % 20,
                        "parent_prediction": None,
                        "parent_annotation": None,
                        "last_created_by": None,
                    }
                ],
                "predictions": [
                    {
                        "id": i + 1,
                        "model_version": "detector-v3",
                        "score": 0.875,
                        "result": _ls_results(i, 0.875),
                        "created_ago": "2 days",
                        "task": i + 1,
                        "project": 1,
                    }
                ],
                "file_upload": "tasks.json",
                "drafts": [],
                "data": {"image": f"/data/upload/1/{i:07d}.jpg"},
                "meta": {},
                "created_at": _LS_TIME,
                "updated_at": _LS_TIME,
                "inner_id": i + 1,
                "total_annotations": 1,
                "cancelled_annotations": 0,
                "total_predictions": 1,
                "comment_count": 0,
                "unresolved_comment_count": 0,
                "last_comment_updated_at": None,
                "project": 1,
                "updated_by": 1,
                "comment_authors": [],
            }
            out.write(("," if i else "") + "\n" + json.dumps(task))
        out.write("\n]\n")


def generate_cvat(path: Path, n_images: int) -> None:
    """A CVAT for images 1.1 task dump of ``n_images`` images, three boxes (with an
    attribute) and a polygon each; written streaming."""
    with open(path, "w") as out:
        out.write('<?xml version="1.0" encoding="utf-8"?>\n<annotations>\n')
        out.write("  <version>1.1</version>\n  <meta>\n    <task>\n      <id>1</id>\n")
        out.write(f"      <name>bench</name>\n      <size>{n_images}</size>\n      <labels>\n")
        for label in LABELS:
            out.write(
                f"        <label>\n          <name>{label}</name>\n"
                "          <color>#33ddff</color>\n          <type>any</type>\n"
                "          <attributes>\n            <attribute>\n"
                "              <name>visibility</name>\n              <mutable>True</mutable>\n"
                "              <input_type>select</input_type>\n"
                "              <default_value>full</default_value>\n"
                "              <values>full\npartial</values>\n"
                "            </attribute>\n          </attributes>\n        </label>\n"
            )
        out.write("      </labels>\n    </task>\n    <dumped>2024-05-01 10:00:00+00:00</dumped>\n")
        out.write("  </meta>\n")
        for i in range(n_images):
            out.write(f'  <image id="{i}" name="img/{i:07d}.jpg" width="640" height="480">\n')
            for k, label in enumerate(LABELS):
                x, y = (i * 7 + k * 50) % 500, (i * 3 + k * 40) % 400
                out.write(
                    f'    <box label="{label}" source="manual" occluded="0" xtl="{x}" '
                    f'ytl="{y}" xbr="{x + 60.5}" ybr="{y + 40.25}" z_order="0">\n'
                    f'      <attribute name="visibility">{"full" if k else "partial"}'
                    "</attribute>\n    </box>\n"
                )
            x, y = (i * 7) % 500, (i * 3) % 400
            out.write(
                f'    <polygon label="person" source="manual" occluded="0" points="{x},{y};'
                f'{x + 60},{y};{x + 60},{y + 40};{x},{y + 40}" z_order="0">\n    </polygon>\n'
                "  </image>\n"
            )
        out.write("</annotations>\n")


GENERATORS = {"coco": generate, "labelstudio": generate_labelstudio, "cvat": generate_cvat}
FILE_NAMES = {
    "coco": "coco-{n}.json",
    "labelstudio": "labelstudio-{n}.json",
    "cvat": "cvat-{n}.xml",
}
