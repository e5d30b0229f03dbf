"""COCO: every fixture round-trips; exports load in pycocotools; bad files import nothing."""

from __future__ import annotations

import json
import warnings

import pytest

from conftest import close  # type: ignore[import-not-found]

COCO_FILES = [
    "coco/datumaro/instances_val.json",
    "coco/label-studio-sdk/coco_import_input.json",
    "coco/mmdetection/coco_sample.json",
]


def _by_image(doc: dict) -> dict:
    cats = {c["id"]: c["name"] for c in doc["categories"]}
    out: dict = {}
    for img in doc["images"]:
        out[img["id"]] = {"image": img, "anns": []}
    for ann in doc["annotations"]:
        a = {k: v for k, v in ann.items() if k not in ("category_id", "image_id")}
        a["category"] = cats[ann["category_id"]]
        out[ann["image_id"]]["anns"].append(a)
    return out


@pytest.mark.parametrize("name", COCO_FILES)
def test_coco_fixture_round_trips(lab, interop, name, tmp_path):
    path = interop / name
    project = lab.project(lab.guess("coco", path))
    original = json.loads(path.read_text())
    result = lab.import_(project, path, "coco")
    assert result.n_items == len(original["images"])
    exported = json.loads(lab.export(project, "coco"))
    before, after = _by_image(original), _by_image(exported)
    assert before.keys() == after.keys()
    for image_id, orig in before.items():
        got = after[image_id]
        for key, v in orig["image"].items():
            close(v, got["image"][key], f"image {image_id}.{key}")
        assert len(orig["anns"]) == len(got["anns"])
        by_id = {a["id"]: a for a in got["anns"]}
        for a in orig["anns"]:
            b = by_id[a["id"]]
            for key, v in a.items():
                close(v, b[key], f"annotation {a['id']}.{key}")
    # category ids, names and extra keys survive (ids 1, 2, 4 are not renumbered)
    assert [c["id"] for c in exported["categories"]] == [c["id"] for c in original["categories"]]
    assert exported["info"]["labelfarm"]["counts"]["images"] == len(original["images"])


@pytest.mark.parametrize("name", COCO_FILES)
def test_coco_export_loads_in_pycocotools(lab, interop, name, tmp_path):
    coco_api = pytest.importorskip("pycocotools.coco")
    path = interop / name
    project = lab.project(lab.guess("coco", path))
    lab.import_(project, path, "coco")
    out = tmp_path / "export.json"
    out.write_bytes(lab.export(project, "coco"))
    coco = coco_api.COCO(str(out))
    anns = coco.loadAnns(coco.getAnnIds())
    assert len(anns) == len(json.loads(path.read_text())["annotations"])
    for ann in anns:
        if "segmentation" in ann:
            with warnings.catch_warnings():  # pycocotools' C code and numpy 2
                warnings.simplefilter("ignore", DeprecationWarning)
                mask = coco.annToMask(ann)
            assert mask.shape == (
                coco.imgs[ann["image_id"]]["height"],
                coco.imgs[ann["image_id"]]["width"],
            )


def test_coco_zip_carries_images_and_a_manifest(lab, tmp_path):
    import hashlib

    from PIL import Image

    folder = tmp_path / "ds"
    (folder / "images").mkdir(parents=True)
    Image.new("RGB", (8, 6), "red").save(folder / "images" / "a.jpg")
    doc = {
        "images": [{"id": 7, "file_name": "a.jpg", "width": 8, "height": 6}],
        "annotations": [
            {
                "id": 1,
                "image_id": 7,
                "category_id": 3,
                "bbox": [1, 1, 2, 2],
                "iscrowd": 0,
                "area": 4,
            }
        ],
        "categories": [{"id": 3, "name": "dot"}],
    }
    (folder / "annotations.json").write_text(json.dumps(doc))
    project = lab.project(lab.guess("coco", folder))
    lab.import_(project, folder, "coco")
    dest = lab.unzip(lab.export(project, "coco-zip"), tmp_path / "out")
    manifest = json.loads((dest / "manifest.json").read_text())
    assert manifest["counts"]["images"] == 1 and manifest["counts"]["media"] == 1
    assert manifest["schema_version"] == 1 and manifest["exported_at"]
    for name, facts in manifest["files"].items():
        assert hashlib.sha256((dest / name).read_bytes()).hexdigest() == facts["sha256"]
    assert (dest / "images" / "a.jpg").read_bytes() == (folder / "images" / "a.jpg").read_bytes()
    assert json.loads((dest / "annotations" / "instances.json").read_text())["annotations"][0][
        "bbox"
    ] == [1, 1, 2, 2]


def _valid() -> dict:
    return {
        "images": [{"id": 1, "file_name": "a.jpg", "width": 10, "height": 10}],
        "annotations": [{"id": 1, "image_id": 1, "category_id": 1, "bbox": [0, 0, 2, 2]}],
        "categories": [{"id": 1, "name": "a"}],
    }


SCHEMA = {"fields": [{"name": "boxes", "type": "rectangle", "labels": ["a"], "required": False}]}


@pytest.mark.parametrize(
    ("mutate", "field"),
    [
        (lambda d: d["annotations"][0].update(image_id=99), "image_id"),
        (lambda d: d["annotations"][0].update(category_id=5), "category_id"),
        (lambda d: d["annotations"][0].update(bbox="0 0 2 2"), "bbox"),
        (lambda d: d["annotations"][0].update(segmentation=[[1, 2, 3]]), "segmentation[0]"),
        (lambda d: d["images"].append(dict(d["images"][0])), "id"),
        (lambda d: d["images"][0].update(width="ten"), "width"),
    ],
)
def test_coco_bad_files_are_located_and_import_nothing(lab, tmp_path, mutate, field):
    doc = _valid()
    doc["images"].append({"id": 2, "file_name": "b.jpg", "width": 5, "height": 5})
    mutate(doc)
    path = tmp_path / "bad.json"
    path.write_text(json.dumps(doc, indent=1))
    details = lab.fails(lab.project(SCHEMA), path, "coco")
    assert any(d["field"] == field and "line" in d["location"] for d in details), details


def test_coco_truncated_file(lab, tmp_path):
    path = tmp_path / "cut.json"
    text = json.dumps(_valid(), indent=1)
    path.write_text(text[: len(text) // 2])
    details = lab.fails(lab.project(SCHEMA), path, "coco")
    assert "line" in details[0]["location"] and "truncated" in details[0]["reason"]


def test_coco_segmentation_without_box_field_derives_the_box(lab, tmp_path):
    doc = _valid()
    doc["annotations"][0]["segmentation"] = [[0, 0, 4, 0, 4, 3]]
    doc["annotations"][0]["bbox"] = [0, 0, 4, 3]
    path = tmp_path / "poly.json"
    path.write_text(json.dumps(doc))
    schema = {"fields": [{"name": "polygons", "type": "polygon", "labels": ["a"]}]}
    project = lab.project(schema)
    lab.import_(project, path, "coco")
    ann = json.loads(lab.export(project, "coco"))["annotations"][0]
    assert ann["bbox"] == [0, 0, 4, 3] and ann["segmentation"] == [[0, 0, 4, 0, 4, 3]]


def test_imported_annotations_have_import_users_and_leave_the_queue_alone(lab, interop):
    path = interop / "coco/mmdetection/coco_sample.json"
    project = lab.project(lab.guess("coco", path))
    lab.import_(project, path, "coco")
    from sqlalchemy import text

    with lab.world.db.begin("read") as conn:
        rows = conn.execute(
            text(
                "SELECT u.username, u.password_hash, u.is_active, a.status, a.client_id "
                "FROM annotations a JOIN users u ON u.id = a.user_id WHERE a.project_id = :p"
            ),
            {"p": project.id},
        ).all()
        n_submitted = conn.execute(
            text("SELECT SUM(n_submitted) FROM items WHERE project_id = :p"), {"p": project.id}
        ).scalar_one()
    assert {r.username for r in rows} == {"import:acme:coco"}
    assert all(r.password_hash is None and not r.is_active for r in rows)
    assert {r.status for r in rows} == {"imported"}
    assert all(r.client_id.startswith("import:") for r in rows)
    assert n_submitted == 0
