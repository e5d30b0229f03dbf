"""Imports are all-or-nothing, locate every bad row, and leave the project as it was."""

from __future__ import annotations

import pytest
from PIL import Image
from sqlalchemy import text

from labelfarm.client import LabelfarmAPIError
from labelfarm.errors import ImportFailed
from labelfarm.services.imports import import_items

TEXT_SCHEMA = {
    "data": {"text": "text", "stars": "number"},
    "fields": [{"name": "label", "type": "choice", "options": ["pos", "neg"]}],
}


def _state(world) -> tuple:
    with world.db.begin("read") as conn:
        return (
            conn.execute(text("SELECT COUNT(*) FROM items")).scalar_one(),
            conn.execute(text("SELECT COUNT(*) FROM predictions")).scalar_one(),
            conn.execute(text("SELECT n_items FROM projects")).scalar_one(),
        )


@pytest.fixture
def manager(world):
    ws = world.workspace()
    m = world.user("mgr", role="manager", workspace=ws)
    project = world.project(ws, schema=TEXT_SCHEMA)
    good = b'{"data": {"text": "fine", "stars": 4}}\n' * 3
    m["client"].import_bytes(project.id, good, format="jsonl")
    return m["client"], project


MALFORMED = {
    "bad_json": (b'{"data": {"text": "a", "stars": 1}}\n{"data": {"text": \n', "line 2"),
    "wrong_types": (b'{"data": {"text": 5, "stars": "many"}}\n', "data.text"),
    "unknown_fields": (b'{"data": {"text": "a", "stars": 1}, "colour": "red"}\n', "colour"),
    "unknown_data_key": (b'{"data": {"text": "a", "stars": 1, "x": 2}}\n', "data.x"),
    "truncated": (b'{"data": {"text": "a", "stars": 1}}\n{"data": {"text": "b", "st', "cut off"),
    "empty": (b"", "empty"),
    "bad_prediction": (
        b'{"data": {"text": "a", "stars": 1}, "prediction": {"value": {"label": "meh"}}}\n',
        "predictions[0].value.label",
    ),
    "bad_deadline": (b'{"data": {"text": "a", "stars": 1}, "deadline": "soon"}\n', "deadline"),
    "not_an_object": (b"[1, 2]\n", "expected a JSON object"),
}


@pytest.mark.parametrize("case", sorted(MALFORMED))
def test_malformed_jsonl_is_refused_whole_and_located(world, manager, case):
    client, project = manager
    before = _state(world)
    content, needle = MALFORMED[case]
    good = b'{"data": {"text": "ok", "stars": 1}}\n' * 5
    with pytest.raises(LabelfarmAPIError) as err:
        client.import_bytes(project.id, good + content if content else b"", format="jsonl")
    assert err.value.status == 422 and err.value.code == "import_failed"
    flat = " ".join(str(v) for d in err.value.details for v in d.values())
    assert needle in flat or needle in err.value.message
    assert _state(world) == before
    imports = client.request("GET", f"/projects/{project.id}/imports")["imports"]
    assert imports[0]["status"] == "failed" and imports[0]["errors"]


def test_every_bad_row_is_reported_with_its_line(world, manager):
    client, project = manager
    rows = b"".join(
        b'{"data": {"text": "x", "stars": "no"}}\n'
        if i % 3 == 0
        else b'{"data": {"text": "x", "stars": 2}}\n'
        for i in range(30)
    )
    with pytest.raises(LabelfarmAPIError) as err:
        client.import_bytes(project.id, rows, format="jsonl")
    lines = [d["location"] for d in err.value.details]
    assert lines == [f"line {i + 1}" for i in range(0, 30, 3)]
    assert all(d["field"] == "data.stars" for d in err.value.details)


def test_failure_after_many_good_batches_leaves_nothing(world, manager, tmp_path):
    _client, project = manager
    before = _state(world)
    path = tmp_path / "big.jsonl"
    with path.open("w") as fh:
        for i in range(12_000):
            fh.write(f'{{"data": {{"text": "t{i}", "stars": {i % 5}}}}}\n')
        fh.write('{"data": {"text": "last", "stars": null}}\n')
    with pytest.raises(ImportFailed) as err:
        import_items(
            world.db,
            world.load(project.id),
            path,
            "jsonl",
            media=world.ctx.media,
            now=world.clock(),
            user_id=None,
            batch_rows=1000,
        )
    assert err.value.details[0]["location"] == "line 12001"
    assert _state(world) == before


def test_duplicate_external_ids_are_refused(world, manager):
    client, project = manager
    rows = b'{"data": {"text": "a", "stars": 1}, "external_id": "x1"}\n' * 2
    before = _state(world)
    with pytest.raises(LabelfarmAPIError) as err:
        client.import_bytes(project.id, rows, format="jsonl")
    assert "duplicate" in str(err.value.details)
    assert _state(world) == before


def test_csv_import_coerces_types_and_locates_errors(world, manager):
    client, project = manager
    ok = 'text,stars,external_id,priority\nhello,5,e1,2\n"with, comma",3,e2,0\n'
    result = client.import_bytes(project.id, ok.encode(), format="csv")
    assert result["n_items"] == 2
    item = client.request("GET", f"/projects/{project.id}/items", params={"after": 3})["items"][0]
    assert item["data"] == {"text": "hello", "stars": 5} and item["priority"] == 2
    bad = "text,stars\nhello,5\nragged,1,extra\nnot-a-number,lots\n"
    with pytest.raises(LabelfarmAPIError) as err:
        client.import_bytes(project.id, bad.encode(), format="csv")
    assert [d["location"] for d in err.value.details] == ["line 3", "line 4"]


def test_folder_import_stores_media_content_addressed(world, tmp_path):
    ws = world.workspace()
    project = world.project(
        ws,
        schema={
            "data": {"image": "image"},
            "fields": [{"name": "label", "type": "choice", "options": ["x", "y"]}],
        },
    )
    folder = tmp_path / "photos"
    (folder / "sub").mkdir(parents=True)
    Image.new("RGB", (8, 8), "red").save(folder / "a.png")
    Image.new("RGB", (8, 8), "red").save(folder / "sub" / "same.png")  # same bytes
    Image.new("RGB", (8, 8), "blue").save(folder / "b.jpg")
    (folder / ".DS_Store").write_bytes(b"junk")
    result = import_items(
        world.db, project, folder, "folder", media=world.ctx.media, now=world.clock(), user_id=None
    )
    assert result.n_items == 3
    with world.db.begin("read") as conn:
        shas = conn.execute(text("SELECT DISTINCT media_sha256 FROM items")).scalars().all()
        assert conn.execute(text("SELECT COUNT(*) FROM media")).scalar_one() == 2
    assert len(shas) == 2 and all(world.ctx.media.exists(s) for s in shas)
    (folder / "notes.docx").write_bytes(b"x")
    with pytest.raises(ImportFailed) as err:
        import_items(
            world.db,
            project,
            folder,
            "folder",
            media=world.ctx.media,
            now=world.clock(),
            user_id=None,
        )
    assert err.value.details[0]["location"] == "notes.docx"


def test_unknown_format_lists_the_valid_ones(world, manager):
    client, project = manager
    with pytest.raises(LabelfarmAPIError) as err:
        client.import_bytes(project.id, b"x", format="xlsx")
    assert "jsonl" in err.value.message


def test_predictions_are_stored_and_prefill_tasks(world, manager, tmp_path):
    client, project = manager
    line = (
        b'{"data": {"text": "p", "stars": 1}, "prediction": {"model": "m1", '
        b'"value": {"label": "neg"}, "score": 0.9}}\n'
    )
    assert client.import_bytes(project.id, line, format="jsonl")["n_predictions"] == 1
    ws_id = project.workspace_id
    ann = world.user("ann", role="annotator", workspace={"id": ws_id})
    tasks = ann["client"].next(project.id, n=10)
    pred = [t["prediction"] for t in tasks if t["prediction"]]
    assert pred == [{"model": "m1", "model_version": None, "value": {"label": "neg"}, "score": 0.9}]


def test_interrupted_import_is_rolled_back_on_start(world, manager, tmp_path):
    from labelfarm.services.imports import recover_imports

    _client, project = manager
    before = _state(world)
    with world.db.begin("write") as conn:
        conn.execute(
            text(
                "INSERT INTO imports (project_id, format, filename, status, n_items, n_errors, "
                "errors, started_at) VALUES (:p, 'jsonl', 'x', 'staging', 0, 0, '[]', 0)"
            ),
            {"p": project.id},
        )
        imp = conn.execute(text("SELECT MAX(id) FROM imports")).scalar_one()
        conn.execute(
            text(
                "INSERT INTO items (project_id, import_id, data, priority, deadline_key, is_open, "
                "status, n_leased, n_submitted, created_at) "
                "VALUES (:p, :i, '{}', 0, 1e18, false, 'staged', 0, 0, 0)"
            ),
            {"p": project.id, "i": imp},
        )
    recover_imports(world.db, world.clock())
    assert _state(world) == before
