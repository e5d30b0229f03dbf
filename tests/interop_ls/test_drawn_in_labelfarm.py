"""Boxes drawn in labelfarm, on images it stores, land where they were drawn in a real
Label Studio 1.23.2, and come back to labelfarm where they were.

An annotator leases the tasks, reads each image's size from the media labelfarm serves and
draws boxes in pixels (one rotated about its centre); the project's Label Studio export
(media as local-files URLs, the annotator mapped to a Label Studio user) is imported into
Label Studio, whose local files storage holds the same images. Read back through its API,
every box's corners, from its percentages and the image's own size, are the corners drawn
within 1e-6 px; the Export button's file then imports into a new labelfarm project with the
same pixel boxes.
"""

from __future__ import annotations

import io
import json
import uuid
from pathlib import Path
from typing import Any

import httpx
from ls_cases import ANA, BOXES_SIZED, box_corners, png
from ls_server import LabelStudioAPI
from PIL import Image

from labelfarm.services.imports import import_items

TOLERANCE = 1e-6
IMAGES = {"shelf/front.png": (640, 480), "shelf/side.png": (301, 199)}


def _boxes(size: tuple[int, int]) -> list[dict[str, Any]]:
    """What the annotator draws on an image of ``size``, in pixels."""
    w, h = size
    return [
        {"label": "car", "x": w / 7, "y": h / 9, "w": w / 3.3, "h": h / 4.1},
        {"label": "person", "x": w * 0.55, "y": h * 0.4, "w": w / 8.5, "h": h / 3, "rotation": 30},
        {"label": "bicycle", "x": 0.0, "y": h - h / 6, "w": w / 2.25, "h": h / 6},
    ]


def _far(a: list[float], b: list[float]) -> float:
    return max(abs(p - q) for p, q in zip(a, b, strict=True))


def _draw_in_labelfarm(world: Any, tmp: Path) -> tuple[Any, dict[str, Any], dict[str, Any]]:
    """A labelfarm project holding the images, boxes drawn on each by one annotator."""
    ws = world.workspace()
    manager = world.user("migrator", role="manager", workspace=ws)
    annotator = world.user("asha", role="annotator", workspace=ws)
    lf = manager["client"]
    project = lf.create_project(ws["id"], "drawn in labelfarm", schema=BOXES_SIZED.config)
    folder = tmp / "shoot"
    for n, (name, size) in enumerate(IMAGES.items()):
        (folder / name).parent.mkdir(parents=True, exist_ok=True)
        (folder / name).write_bytes(png(size, n + 5))
    world.db.run(  # as `labelfarm import P ./shoot/` does
        import_items,
        world.load(project["id"]),
        folder,
        "folder",
        media=world.ctx.media,
        now=world.clock(),
        user_id=None,
        base_dir=folder,
    )
    tasks = annotator["client"].next(project["id"], n=len(IMAGES))
    assert len(tasks) == len(IMAGES)
    entries = []
    for task in tasks:  # the annotator sees the image labelfarm serves, at its own size
        shown = world.transport.handle_request(
            httpx.Request(
                "GET",
                f"http://testserver{task['media_url']}",
                headers={"Authorization": f"Bearer {annotator['token']}"},
            )
        )
        assert shown.status_code == 200, shown.text
        size = Image.open(io.BytesIO(shown.content)).size
        entries.append({"task": task["task"], "value": {"objects": _boxes(size)}})
    annotator["client"].submit(project["id"], entries)
    return project, manager, annotator


def _size_of(image_url: str) -> tuple[int, int]:
    return next(size for name, size in IMAGES.items() if image_url.endswith(name))


def _in_label_studio(ls: LabelStudioAPI, project: int, annotator: int) -> list[str]:
    """Where the boxes Label Studio holds differ from those drawn."""
    problems = []
    for task in ls.tasks(project):
        image = Image.open(io.BytesIO(ls.media(task["data"]["image"])))
        assert image.size == _size_of(task["data"]["image"])  # Label Studio shows the image
        drawn = {b["label"]: b for b in _boxes(image.size)}
        (annotation,) = ls.annotations(task["id"])
        assert annotation["completed_by"] == annotator
        assert len(annotation["result"]) == len(drawn), annotation["result"]
        for r in annotation["result"]:
            v = r["value"]
            (label,) = v["rectanglelabels"]
            where = f"Label Studio {task['data']['image']} {label}"
            if (r.get("original_width"), r.get("original_height")) != image.size:
                problems.append(
                    f"{where}: image size {r.get('original_width')}x"
                    f"{r.get('original_height')}, the image is {image.size}"
                )
            sx, sy = image.size[0] / 100, image.size[1] / 100
            xywh = (v["x"] * sx, v["y"] * sy, v["width"] * sx, v["height"] * sy)
            got = box_corners(*xywh, v.get("rotation", 0), "corner")
            b = drawn[label]
            want = box_corners(b["x"], b["y"], b["w"], b["h"], b.get("rotation", 0), "centre")
            if _far(got, want) > TOLERANCE:
                problems.append(f"{where}: corners {got}, drawn {want}")
    return problems


def _in_labelfarm(world: Any, ls_file: bytes, tmp: Path) -> list[str]:
    """Where the boxes of Label Studio's export, imported into a new labelfarm project,
    differ from those drawn (pixels, about the centre)."""
    ws = world.workspace("back")
    lf = world.user("returner", role="manager", workspace=ws)["client"]
    project = lf.create_project(ws["id"], "back from Label Studio", schema=BOXES_SIZED.config)
    (tmp / "label-studio.json").write_bytes(ls_file)
    lf.import_file(project["id"], tmp / "label-studio.json", format="labelstudio")
    problems = []
    for line in b"".join(lf.export_stream(project["id"], format="jsonl")).splitlines():
        item = json.loads(line)
        drawn = {b["label"]: b for b in _boxes(_size_of(item["data"]["image"]))}
        (annotation,) = item["annotations"]
        for box in annotation["value"]["objects"]:
            b = drawn[box["label"]]
            got = box_corners(
                box["x"], box["y"], box["w"], box["h"], box.get("rotation", 0), "centre"
            )
            want = box_corners(b["x"], b["y"], b["w"], b["h"], b.get("rotation", 0), "centre")
            if _far(got, want) > TOLERANCE:
                problems.append(
                    f"labelfarm {item['data']['image']} {b['label']}: {got}, drawn {want}"
                )
    return problems


def test_boxes_drawn_in_labelfarm_land_where_drawn(
    label_studio: LabelStudioAPI, ls_users: dict[str, int], world: Any, tmp_path: Path
) -> None:
    ls = label_studio
    project, manager, annotator = _draw_in_labelfarm(world, tmp_path)
    # Label Studio holds the same images below its document root, as a migration copies them
    media = ls.files / f"labelfarm-media-{uuid.uuid4().hex[:6]}"
    for n, (name, size) in enumerate(IMAGES.items()):
        (media / name).parent.mkdir(parents=True, exist_ok=True)
        (media / name).write_bytes(png(size, n + 5))
    exported = b"".join(
        manager["client"].export_stream(
            project["id"],
            format="labelstudio",
            completed_by={annotator["username"]: ls_users[ANA]},
            media_url=f"/data/local-files/?d={media.name}/",
        )
    )
    target = ls.create_project(f"drawn in labelfarm {media.name}", BOXES_SIZED.config)
    ls.serve_folder(target, media)
    ls.upload(target, [("labelfarm.json", exported, "application/json")])

    problems = _in_label_studio(ls, target, ls_users[ANA])
    problems += _in_labelfarm(world, ls.export(target), tmp_path)
    assert not problems, "\n".join(problems)
