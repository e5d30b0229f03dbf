"""Zip uploads (path traversal, bombs), the API routes for the new formats, and the
Parquet / Hugging Face exports."""

from __future__ import annotations

import io
import json
import zipfile

import pytest
from PIL import Image
from sqlalchemy import text

from labelfarm.client import LabelfarmAPIError

SCHEMA = {
    "fields": [{"name": "boxes", "type": "rectangle", "labels": ["cat", "dog"], "required": False}]
}


def _yolo_zip(extra: dict[str, bytes] | None = None) -> bytes:
    buf = io.BytesIO()
    img = io.BytesIO()
    Image.new("RGB", (10, 10)).save(img, "PNG")
    with zipfile.ZipFile(buf, "w", zipfile.ZIP_DEFLATED) as zf:
        zf.writestr("data.yaml", "names: [cat, dog]\n")
        zf.writestr("images/train/a.png", img.getvalue())
        zf.writestr("labels/train/a.txt", "1 0.5 0.5 0.2 0.2\n")
        for name, data in (extra or {}).items():
            zf.writestr(name, data)
    return buf.getvalue()


@pytest.fixture
def manager(world):
    ws = world.workspace()
    return ws, world.user("boss", role="manager", workspace=ws)["client"]


def test_yolo_zip_through_the_api_and_back(world, manager):
    ws, client = manager
    project = world.project(ws, schema=SCHEMA)
    result = client.import_bytes(project.id, _yolo_zip(), format="yolo", filename="ds.zip")
    assert (result["n_items"], result["n_annotations"]) == (1, 1)
    data = b"".join(client.export_stream(project.id, format="yolo"))
    with zipfile.ZipFile(io.BytesIO(data)) as zf:
        assert zf.read("labels/train/a.txt") == b"1 0.5 0.5 0.2 0.2\n"  # as it was read
        assert "images/train/a.png" in zf.namelist()
        manifest = json.loads(zf.read("manifest.json"))
    assert manifest["format"] == "yolo" and manifest["counts"]["images"] == 1


@pytest.mark.parametrize("name", ["../evil.txt", "/etc/evil.txt", "a/../../evil.txt"])
def test_zip_with_escaping_paths_is_refused(world, manager, name):
    ws, client = manager
    project = world.project(ws, schema=SCHEMA)
    with pytest.raises(LabelfarmAPIError) as info:
        client.import_bytes(project.id, _yolo_zip({name: b"x"}), format="yolo")
    assert info.value.status == 422
    assert any(name in d["location"] for d in info.value.details)
    with world.db.begin("read") as conn:
        assert conn.execute(text("SELECT COUNT(*) FROM items")).scalar_one() == 0


def test_zip_bomb_is_refused(world, manager):
    ws, client = manager
    project = world.project(ws, schema=SCHEMA)
    bomb = _yolo_zip({"labels/train/big.txt": b"\0" * (64 << 20)})
    assert len(bomb) < 1 << 20
    with pytest.raises(LabelfarmAPIError) as info:
        client.import_bytes(project.id, bomb, format="yolo")
    assert "zip bomb" in info.value.details[0]["reason"]


def test_unknown_upload_format_lists_the_valid_ones(world, manager):
    ws, client = manager
    project = world.project(ws, schema=SCHEMA)
    with pytest.raises(LabelfarmAPIError) as info:
        client.import_bytes(project.id, b"{}", format="nope")
    assert "coco" in info.value.message


def test_parquet_and_hf_exports(lab, interop, tmp_path):
    pq = pytest.importorskip("pyarrow.parquet")
    path = interop / "labelstudio/label-studio/tasks_annotations_predictions.json"
    project = lab.project(lab.guess("labelstudio", path))
    lab.import_(project, path, "labelstudio")
    (tmp_path / "x.parquet").write_bytes(lab.export(project, "parquet"))
    table = pq.read_table(tmp_path / "x.parquet")
    assert table.num_rows == 6
    assert table.column("text_class").to_pylist()[0] == "class_A"
    datasets = pytest.importorskip("datasets")
    folder = lab.unzip(lab.export(project, "hf"), tmp_path / "hf")
    ds = datasets.load_dataset(str(folder), split="train")
    assert ds.num_rows == 6 and "text_class" in ds.column_names
