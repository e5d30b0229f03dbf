"""Uploads without a format: told from the name and content, or refused as unknown."""

from __future__ import annotations

import io
import zipfile

import pytest
from PIL import Image

from labelfarm.client import LabelfarmAPIError

SCHEMA = {"fields": [{"name": "label", "type": "choice", "options": ["a", "b"], "required": False}]}
BOXES = {
    "fields": [{"name": "boxes", "type": "rectangle", "labels": ["cat", "dog"], "required": False}]
}
COCO = b"""{"images": [{"id": 1, "file_name": "a.jpg", "width": 10, "height": 10}],
 "annotations": [{"id": 1, "image_id": 1, "category_id": 1, "bbox": [1, 1, 2, 2]}],
 "categories": [{"id": 1, "name": "cat"}]}"""


@pytest.fixture
def client_and_ws(world):
    ws = world.workspace()
    return ws, world.user("boss", role="manager", workspace=ws)["client"]


def _upload(client, project_id, content, filename):
    return client.request(
        "POST",
        f"/projects/{project_id}/imports",
        params={"filename": filename},
        content=content,
        headers={"Content-Type": "application/octet-stream"},
    )


def test_an_upload_without_format_is_read_in_the_format_it_is(world, client_and_ws):
    ws, client = client_and_ws
    project = world.project(ws, schema=BOXES)
    result = _upload(client, project.id, COCO, "instances.json")
    assert (result["n_items"], result["n_annotations"]) == (1, 1)
    [row] = client.request("GET", f"/projects/{project.id}/imports")["imports"]
    assert row["format"] == "coco"
    texts = world.project(ws, schema={"fields": [{"name": "t", "type": "text"}]}, name="t")
    result = _upload(client, texts.id, b'{"data": {"x": 1}}\n{"data": {"x": 2}}\n', "rows.jsonl")
    assert result["n_items"] == 2


def test_a_yolo_zip_without_format_is_told_by_its_entries(world, client_and_ws):
    ws, client = client_and_ws
    project = world.project(ws, schema=BOXES)
    img, buf = io.BytesIO(), io.BytesIO()
    Image.new("RGB", (10, 10)).save(img, "PNG")
    with zipfile.ZipFile(buf, "w") as zf:
        zf.writestr("data.yaml", "names: [cat, dog]\n")
        zf.writestr("images/train/a.png", img.getvalue())
        zf.writestr("labels/train/a.txt", "1 0.5 0.5 0.2 0.2\n")
    assert _upload(client, project.id, buf.getvalue(), "ds.zip")["n_annotations"] == 1


def test_an_unknown_upload_says_unknown_format_not_every_line(world, client_and_ws):
    ws, client = client_and_ws
    project = world.project(ws, schema=SCHEMA)
    content = b"".join(b"just some text, line %d\n" % i for i in range(500))
    with pytest.raises(LabelfarmAPIError) as info:
        _upload(client, project.id, content, "notes.txt")
    assert "unknown format" in info.value.message
    assert len(info.value.details) == 1
