"""Label Studio JSON and CVAT XML are read a piece at a time: memory stays far below the
size of the file, and a truncated file or a bad row is still located and imports nothing."""

from __future__ import annotations

import tracemalloc
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from labelfarm.errors import InvalidInput
from labelfarm.formats import ImportSource, RowProblem, reader
from labelfarm.schema import Schema

LABELS = ("person", "car", "dog")
BOX_SCHEMA = {
    "fields": [
        {"name": "boxes", "type": "rectangle", "labels": list(LABELS), "required": False},
        {"name": "polygons", "type": "polygon", "labels": list(LABELS), "required": False},
    ]
}
TEXT_SCHEMA = {
    "fields": [
        {"name": "sentiment", "type": "choice", "options": ["positive", "negative"]},
        {"name": "entities", "type": "spans", "labels": ["product"], "required": False},
    ]
}
REVIEW = (
    "the parcel came two days late and the box was torn but the jacket inside fits well "
    "and the colour is exactly as shown on the page so I would order from them again"
)
_LS_TASK = (
    '{{"id": {id}, "annotations": [{{"id": {id}, "completed_by": {who}, "result": ['
    '{{"id": "s{id}", "type": "choices", "from_name": "sentiment", "to_name": "text", '
    '"origin": "manual", "value": {{"choices": ["{mood}"]}}}}, '
    '{{"id": "e{id}", "type": "labels", "from_name": "entities", "to_name": "text", '
    '"origin": "manual", "value": {{"start": 4, "end": 10, "text": "parcel", '
    '"labels": ["product"]}}}}], "was_cancelled": false, "ground_truth": false, '
    '"created_at": "2024-05-01T10:00:00Z", "lead_time": 12.5, "task": {id}, "project": 1}}], '
    '"predictions": [{{"model_version": "v3", "score": 0.875, "result": [{{"type": "choices", '
    '"from_name": "sentiment", "to_name": "text", "value": {{"choices": ["{mood}"]}}}}]}}], '
    '"data": {{"text": "{text}"}}, "meta": {{}}, "created_at": "2024-05-01T10:00:00Z", '
    '"inner_id": {id}, "total_annotations": 1, "total_predictions": 1, "project": 1}}'
)


def write_labelstudio(path: Path, n: int) -> None:
    """A Label Studio export of ``n`` reviews of about 4 KB, each with an annotation (a
    choice and a span) and a prediction, one task per line as Label Studio writes them."""
    words = REVIEW.split()
    with open(path, "w") as out:
        out.write("[\n")
        for i in range(n):
            text = " ".join(words[(i + k) % len(words)] for k in range(800))
            mood = "positive" if i % 3 else "negative"
            task = _LS_TASK.format(id=i + 1, who=1 + i % 7, mood=mood, text=text)
            out.write(task + (",\n" if i < n - 1 else "\n"))
        out.write("]\n")


def write_cvat(path: Path, n: int) -> None:
    """A CVAT for images dump of ``n`` images, three boxes and a polygon each."""
    with open(path, "w") as out:
        out.write('<?xml version="1.0" encoding="utf-8"?>\n<annotations>\n')
        out.write("  <version>1.1</version>\n  <meta><task><labels>\n")
        for label in LABELS:
            out.write(
                f"    <label><name>{label}</name><attributes><attribute>"
                "<name>visibility</name><input_type>select</input_type>"
                "<values>full\npartial</values></attribute></attributes></label>\n"
            )
        out.write("  </labels></task></meta>\n")
        for i in range(n):
            out.write(f'  <image id="{i}" name="img/{i:07d}.jpg" width="640" height="480">\n')
            for k, label in enumerate(LABELS):
                x, y = (i * 7 + k * 50) % 500, (i * 3 + k * 40) % 400
                out.write(
                    f'    <box label="{label}" occluded="0" source="manual" xtl="{x}" '
                    f'ytl="{y}" xbr="{x + 60.5}" ybr="{y + 40.25}" z_order="0">'
                    '<attribute name="visibility">full</attribute></box>\n'
                )
            out.write(
                f'    <polygon label="person" occluded="0" points="{i % 9},1;30,1;30,20" '
                'z_order="0"/>\n  </image>\n'
            )
        out.write("</annotations>\n")


def read_all(fmt: str, path: Path, schema: dict[str, Any]) -> tuple[int, list[RowProblem]]:
    """Run the reader over ``path`` as an import does; the items read and the problems."""
    source = ImportSource(path, path.name, Schema(schema), {"base_dir": path.parent})
    n, problems = 0, []
    for _where, result in reader(fmt)(source):
        if isinstance(result, list):
            problems.extend(result)
        else:
            n += 1
            assert result.annotations, "each item carries its imported annotation"
    return n, problems


def peak_allocated(fn: Callable[[], Any]) -> tuple[Any, int]:
    """What ``fn()`` returns and the peak of Python allocations while it ran, in bytes."""
    tracing = tracemalloc.is_tracing()
    if not tracing:
        tracemalloc.start()
    try:
        base = tracemalloc.get_traced_memory()[0]
        tracemalloc.reset_peak()
        out = fn()
        return out, tracemalloc.get_traced_memory()[1] - base
    finally:
        if not tracing:
            tracemalloc.stop()


@pytest.mark.parametrize(
    ("fmt", "write", "n", "file_name", "schema"),
    [
        ("labelstudio", write_labelstudio, 10_000, "export.json", TEXT_SCHEMA),
        ("cvat", write_cvat, 4_000, "annotations.xml", BOX_SCHEMA),
    ],
)
def test_large_file_is_read_in_bounded_memory(tmp_path, fmt, write, n, file_name, schema):
    """Loaded whole, a file costs more than its size in Python objects (the bytes, then
    the decoded documents or element tree, several times over). Read a piece at a time,
    the peak is a read buffer (1 MiB of JSON, 16 KiB of XML) and the task or image in
    hand, whatever the file's size: here under a quarter of it."""
    path = tmp_path / file_name
    write(path, n)
    size = path.stat().st_size
    small = tmp_path / f"small-{file_name}"
    write(small, 20)
    read_all(fmt, small, schema)  # imports the modules and compiles the schema: not counted
    (count, problems), peak = peak_allocated(lambda: read_all(fmt, path, schema))
    assert (count, problems) == (n, [])
    assert peak < size / 4, f"peak {peak / 2**20:.2f} MiB for a {size / 2**20:.2f} MiB file"


def test_reading_advances_the_progress_counter(tmp_path):
    for fmt, write, name in (
        ("labelstudio", write_labelstudio, "export.json"),
        ("cvat", write_cvat, "annotations.xml"),
    ):
        path = tmp_path / name
        write(path, 300)
        source = ImportSource(
            path, name, Schema(TEXT_SCHEMA if fmt == "labelstudio" else BOX_SCHEMA)
        )
        seen = []
        for _ in reader(fmt)(source):
            seen.append(source.bytes_read)
        assert seen == sorted(seen) and 0 < seen[0] <= seen[-1] <= path.stat().st_size


# -- Label Studio: bad tasks and broken files, located -------------------------------------


def _tasks_file(path: Path, tasks: list[str]) -> Path:
    """One task per line after the opening bracket: task n starts on line n + 1."""
    path.write_text("[\n" + ",\n".join(tasks) + "\n]\n")
    return path


GOOD = '{"data": {"text": "fine"}}'
TEXT_CHOICE = {"fields": [{"name": "label", "type": "choice", "options": ["x", "y"]}]}


@pytest.mark.parametrize(
    ("bad", "location", "field"),
    [
        ('{"id": 30, "data": "text"}', "upload.json line 4 (task 3, id 30)", "data"),
        ('["not", "a", "task"]', "upload.json line 4 (task 3)", ""),
        (
            '{"data": {"text": "c"}, "annotations": [{"result": [{"from_name": "label", '
            '"type": "choices", "value": {"choices": ["zzz"]}}]}]}',
            "upload.json line 4 (task 3) annotations[0]",
            "value.label",
        ),
        (
            '{"data": {"text": "c"}, "predictions": [{"score": "high", "result": '
            '[{"from_name": "label", "type": "choices", "value": {"choices": ["x"]}}]}]}',
            "upload.json line 4 (task 3) predictions[0]",
            "score",
        ),
    ],
)
def test_labelstudio_bad_task_is_located_by_line(lab, tmp_path, bad, location, field):
    path = _tasks_file(tmp_path / "upload.json", [GOOD, GOOD, bad, GOOD])
    details = lab.fails(lab.project(TEXT_CHOICE), path, "labelstudio")
    assert [(d["location"], d["field"]) for d in details] == [(location, field)], details


@pytest.mark.parametrize(
    ("body", "location", "reason"),
    [
        (f"[\n{GOOD},\n{GOOD},\n" + '{"data": {"te', "upload.json line 4", "truncated"),
        (f"[\n{GOOD},\n{GOOD},\n", "upload.json line 4", "truncated"),
        (f"[\n{GOOD},\n{GOOD}\n", "upload.json line 4", "',' or ']'"),
        (f"[\n{GOOD},\n{GOOD},\n" + '{"data": {"text": "a\\ud800"}}\n]', "upload.json line 4", ""),
        (f"[\n{GOOD},\n" + '{"data": {"n": NaN}}\n]', "upload.json line 3", "NaN"),
        (f"{GOOD}\n{GOOD}\n", "upload.json line 2", "text after the end"),
        ('"just a string"', "upload.json", "a Label Studio file is a list of tasks"),
        ("  \n\n", "upload.json line 3", "no JSON value"),
        ("[" * 5000 + "]" * 5000, "upload.json line 1", "nested too deeply"),
    ],
)
def test_labelstudio_broken_file_is_located_and_imports_nothing(
    lab, tmp_path, body, location, reason
):
    path = tmp_path / "upload.json"
    path.write_text(body)
    details = lab.fails(lab.project(TEXT_CHOICE), path, "labelstudio")
    assert details[-1]["location"] == location, details
    assert reason in details[-1]["reason"], details
    assert all(d["location"] == location for d in details), "the good tasks are not reported"


def test_labelstudio_reads_json_as_orjson_does(tmp_path):
    """Huge integers become floats, as ``orjson.loads`` makes them; a byte order mark is
    skipped."""
    path = tmp_path / "tasks.json"
    path.write_bytes(b'\xef\xbb\xbf[{"data": {"text": "a", "n": 123456789012345678901234567890}}]')
    source = ImportSource(path, path.name, Schema(TEXT_CHOICE))
    [(_, record)] = list(reader("labelstudio")(source))
    assert record.data == {"text": "a", "n": 1.2345678901234568e29}


def test_labelstudio_single_task_object_still_imports(lab, tmp_path):
    path = tmp_path / "task.json"
    path.write_text(
        '{\n  "id": 5,\n  "data": {"text": "a"},\n  "annotations": [{"completed_by": 3, '
        '"result": [{"from_name": "label", "type": "choices", "value": {"choices": ["y"]}}]}]\n}'
    )
    project = lab.project(TEXT_CHOICE)
    result = lab.import_(project, path, "labelstudio")
    assert (result.n_items, result.n_annotations) == (1, 1)
    assert lab.values(project) == {"5": [{"label": "y"}]}


def test_labelstudio_guess_reports_where_the_file_breaks(lab, tmp_path):
    path = tmp_path / "upload.json"
    path.write_text(f"[\n{GOOD},\n" + '{"data": ')
    with pytest.raises(InvalidInput, match=r"upload.json line 3: not valid JSON: the file ends"):
        lab.guess("labelstudio", path)


# -- CVAT: broken files and bad shapes, located ---------------------------------------------


def test_cvat_truncated_file_is_located_and_imports_nothing(lab, tmp_path):
    path = tmp_path / "annotations.xml"
    write_cvat(path, 50)
    text = path.read_text()
    cut = text.index('<image id="30"')
    path.write_text(text[: cut + 40])
    details = lab.fails(lab.project(BOX_SCHEMA), path, "cvat")
    line = text[:cut].count("\n") + 1
    assert [d["location"] for d in details] == [f"annotations.xml line {line}"], details
    assert "not well-formed XML" in details[0]["reason"]


def test_cvat_bad_shape_deep_in_a_file_is_located(lab, tmp_path):
    path = tmp_path / "annotations.xml"
    write_cvat(path, 50)
    text = path.read_text()
    start = text.index('<image id="41"')
    bad = text[start:].replace('points="', 'points="1;', 1)
    path.write_text(text[:start] + bad)
    details = lab.fails(lab.project(BOX_SCHEMA), path, "cvat")
    assert [(d["location"], d["field"]) for d in details] == [
        ("annotations.xml <image> #42 ('img/0000041.jpg') <polygon> #4", "points")
    ], details


def test_cvat_labels_declared_before_the_images_reach_the_guessed_schema(lab, tmp_path):
    path = tmp_path / "annotations.xml"
    write_cvat(path, 3)
    schema = lab.guess("cvat", path)
    boxes = next(f for f in schema["fields"] if f["type"] == "rectangle")
    assert boxes["labels"] == list(LABELS)
    assert boxes["attributes"][0]["name"] == "visibility"
