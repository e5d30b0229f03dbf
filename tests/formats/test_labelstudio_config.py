"""Label Studio label configs into labelfarm schemas (library, CLI, API) and back."""

from __future__ import annotations

import json

import pytest
import yaml
from typer.testing import CliRunner

from labelfarm.errors import SchemaError
from labelfarm.formats.labelstudio_config import (
    label_config_from_schema,
    schema_from_label_config,
)
from labelfarm.schema import compile_schema

EVERY_TAG = """<View>
  <Header value="Look closely"/>
  <Image name="img" value="$image"/>
  <View style="display: flex">
    <Text name="caption" value="$caption"/>
  </View>
  <Choices name="kind" toName="img" required="true">
    <Choice value="indoor"/><Choice value="outdoor" alias="out"/><Choice value="unsure"/>
  </Choices>
  <Choices name="tags" toName="caption" choice="multiple">
    <Choice value="zebra"/><Choice value="apple"/>
  </Choices>
  <RectangleLabels name="boxes" toName="img">
    <Label value="person" background="red"/><Label value="car"/><Label value="bike"/>
  </RectangleLabels>
  <PolygonLabels name="outlines" toName="img"><Label value="road"/></PolygonLabels>
  <KeyPointLabels name="points" toName="img">
    <Label value="eye"/><Label value="nose"/>
  </KeyPointLabels>
  <Labels name="entities" toName="caption"><Label value="PER"/><Label value="LOC"/></Labels>
  <TextArea name="note" toName="img"/>
  <TextArea name="story" toName="caption" rows="4" maxSubmissions="1"/>
  <TextArea name="lines" toName="caption" rows="3" maxSubmissions="3"/>
  <Rating name="stars" toName="img" maxRating="10"/>
  <Number name="count" toName="img" min="0" max="99"/>
  <Relations><Relation value="rides"/><Relation value="owns"/></Relations>
</View>
"""


def test_every_tag_becomes_a_field_keeping_labels_and_their_order():
    schema = schema_from_label_config(EVERY_TAG)
    fields = {f["name"]: f for f in schema["fields"]}
    assert [f["name"] for f in schema["fields"]] == [
        "kind", "tags", "boxes", "outlines", "points", "entities", "note", "story", "lines",
        "stars", "count",
    ]  # fmt: skip
    assert fields["kind"] == {
        "name": "kind", "required": True, "type": "choice",
        "options": ["indoor", "out", "unsure"],
    }  # fmt: skip
    assert fields["tags"]["type"] == "multichoice"
    assert fields["tags"]["options"] == ["zebra", "apple"]  # as listed, not sorted
    assert fields["boxes"]["type"] == "rectangle"
    assert fields["boxes"]["labels"] == ["person", "car", "bike"]  # unused ones too
    assert (fields["outlines"]["type"], fields["points"]["type"]) == ("polygon", "keypoints")
    assert (fields["entities"]["type"], fields["entities"]["labels"]) == ("spans", ["PER", "LOC"])
    assert "multiline" not in fields["note"] and fields["story"]["multiline"] is True
    assert "multiline" not in fields["lines"]  # several entries: each a line of the value
    assert fields["stars"] == {
        "name": "stars", "required": False, "type": "number", "integer": True, "min": 1,
        "max": 10,
    }  # fmt: skip
    assert (fields["count"]["min"], fields["count"]["max"]) == (0, 99)
    assert schema["data"] == {"image": "image", "caption": "text"}
    assert schema["labelstudio"]["to_name"]["entities"] == "caption"
    assert schema["labelstudio"]["relations"] == ["rides", "owns"]
    compile_schema(schema)


def test_a_schema_writes_its_label_config_back():
    schema = schema_from_label_config(EVERY_TAG)
    again = schema_from_label_config(label_config_from_schema(schema))
    assert again == schema


def test_a_hand_written_schema_has_a_label_config():
    schema = {
        "fields": [
            {"name": "label", "type": "choice", "options": ["a", "b"]},
            {"name": "boxes", "type": "bbox", "labels": ["x"]},
        ],
        "data": {"text": "text", "image": "image"},
    }
    config = label_config_from_schema(schema)
    read = schema_from_label_config(config)
    assert read["labelstudio"]["to_name"] == {"label": "text", "boxes": "image"}
    assert [f["type"] for f in read["fields"]] == ["choice", "rectangle"]


@pytest.mark.parametrize(
    ("config", "line", "tag", "words"),
    [
        (
            '<View>\n  <Image name="i" value="$image"/>\n  <Taxonomy name="t" toName="i"/>\n'
            "</View>",
            3,
            "Taxonomy",
            "no labelfarm field type",
        ),
        (
            '<View>\n  <Text name="t" value="$text"/>\n  <ParagraphLabels name="d" toName="t">'
            '<Label value="x"/></ParagraphLabels>\n</View>',
            3,
            "ParagraphLabels",
            "<Paragraphs>",
        ),
        (
            '<View>\n<Image name="a" value="$image"/>\n\n<Labels name="l" toName="a">'
            '<Label value="x"/></Labels>\n</View>',
            4,
            "Labels",
            "text spans and audio regions only",
        ),
        (
            '<View>\n<Audio name="a" value="$audio"/>\n<Labels name="l" toName="a">'
            '<Label value="x"/></Labels>\n<Labels name="m" toName="a">'
            '<Label value="y"/></Labels>\n</View>',
            4,
            "Labels",
            "a second <Labels>",
        ),
        (
            '<View>\n<Image name="i" value="$image"/>\n<Choices name="c" toName="img">'
            '<Choice value="x"/></Choices></View>',
            3,
            "Choices",
            "toName 'img'",
        ),
        (
            '<View>\n<Image name="i" value="$image"/>\n<Choices name="c" toName="i">'
            '<Choice value="x"/><Choice value="x"/></Choices></View>',
            3,
            "Choices",
            "duplicates",
        ),
        ("<View>\n<Image name='i' value='$image'>\n</View>", 3, "", "not well-formed"),
        (
            '<View>\n<Image name="i" value="$image"/>\n\n<Rating name="r" toName="i" '
            'maxRating="ten"/></View>',
            4,
            "Rating",
            "not a number",
        ),
    ],
)
def test_a_problem_names_its_line_and_tag(config, line, tag, words):
    with pytest.raises(SchemaError) as info:
        schema_from_label_config(config)
    [detail] = info.value.details
    assert (detail["line"], detail["tag"]) == (line, tag), detail
    assert words in detail["reason"]


def test_entities_are_refused():
    config = '<!DOCTYPE v [<!ENTITY e "x">]><View><Image name="i" value="$image"/></View>'
    with pytest.raises(SchemaError, match="refused"):
        schema_from_label_config(config)


def test_from_the_cli(tmp_path):
    from labelfarm.cli import app

    config = tmp_path / "config.xml"
    config.write_text(EVERY_TAG)
    out = tmp_path / "schema.yaml"
    runner = CliRunner()
    done = runner.invoke(app, ["schema", "from-label-config", str(config), "-o", str(out)])
    assert done.exit_code == 0, done.output
    assert yaml.safe_load(out.read_text()) == schema_from_label_config(EVERY_TAG)
    back = runner.invoke(app, ["schema", "to-label-config", str(out)])
    assert back.exit_code == 0 and "<RectangleLabels" in back.stdout
    bad = tmp_path / "bad.xml"
    bad.write_text(
        '<View>\n<Image name="i" value="$image"/>\n<Ranker name="r" toName="i"/>\n</View>'
    )
    refused = runner.invoke(app, ["schema", "from-label-config", str(bad)])
    assert refused.exit_code == 1 and "line 3 <Ranker>" in refused.output


def test_from_the_api_and_as_an_export(world):
    ws = world.workspace()
    manager = world.user("mgr", role="manager", workspace=ws)["client"]
    project = manager.create_project(ws["id"], "from Label Studio", schema=EVERY_TAG)
    assert project["schema"] == schema_from_label_config(EVERY_TAG)
    config = b"".join(manager.export_stream(project["id"], format="labelstudio-config"))
    assert schema_from_label_config(config.decode()) == project["schema"]

    from labelfarm.client import LabelfarmAPIError

    with pytest.raises(LabelfarmAPIError) as refused:
        manager.create_project(
            ws["id"], "bad", schema="<View>\n<Video name='v' value='$v'/></View>"
        )
    assert refused.value.status == 422
    assert refused.value.details[0]["line"] == 2
    assert json.dumps(refused.value.details[0]["tag"]) == '"Video"'


def test_the_labelstudio_section_is_checked():
    fields = [{"name": "label", "type": "choice", "options": ["a"]}]
    with pytest.raises(SchemaError, match="names no field"):
        compile_schema({"fields": fields, "labelstudio": {"to_name": {"nope": "text"}}})
    with pytest.raises(SchemaError, match="tag, name, value"):
        compile_schema({"fields": fields, "labelstudio": {"objects": [{"tag": "Image"}]}})
