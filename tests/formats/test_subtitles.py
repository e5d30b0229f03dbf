"""WebVTT and SRT: the interop fixtures read cue by cue, round trips to the millisecond,
malformed files read as common readers do or refused at their line, and an import of audio
files with subtitle sidecars through the API."""

from __future__ import annotations

import io
import json
import zipfile

import pytest
from sqlalchemy import text
from tests.audio.clips import tone

from labelfarm.client import LabelfarmAPIError
from labelfarm.formats.subtitles_srt import parse_srt, write_srt
from labelfarm.formats.subtitles_vtt import parse_vtt, write_vtt
from labelfarm.formats.transcripts import Cue, TranscriptError, read_text, segments_value
from labelfarm.jsonutil import loads
from labelfarm.schema import Schema

SPEC = {
    "fields": [
        {"name": "transcript", "type": "segments", "allow_overlap": True, "required": False}
    ],
    "data": {"audio": "audio"},
}
SCHEMA = Schema(SPEC)


def _cues(cues: list[Cue]) -> list[tuple[int, int, str, str | None]]:
    return [(c.start, c.end, c.text, c.speaker) for c in cues]


def _round_trip(cues: list[Cue], fmt: str) -> list[Cue]:
    """Cues → a validated segments value → the format's text → cues again."""
    value = segments_value(SCHEMA, cues, "x")
    assert isinstance(value, dict), value
    if fmt == "vtt":
        kept = {"cues": {f"{c.start}-{c.end}": c.meta for c in cues if c.meta}}
        return parse_vtt(write_vtt(value["transcript"], kept)).cues
    return parse_srt(write_srt(value["transcript"])).cues


def _subtitle_files() -> list[str]:
    from tests.formats.conftest import INTEROP

    folder = INTEROP / "subtitles"
    found = sorted(folder.rglob("*")) if folder.is_dir() else []
    return [p.relative_to(INTEROP).as_posix() for p in found if p.suffix in (".vtt", ".srt")]


@pytest.mark.parametrize("rel", _subtitle_files() or ["subtitles (absent)"])
def test_every_subtitle_fixture_reads_and_round_trips(interop, rel):
    """Every file there (the held-back set's too): cues with text, in time order, and the
    same times and text after a write and a read, in its own format and in WebVTT."""
    path = interop / rel
    parse = parse_vtt if path.suffix == ".vtt" else parse_srt
    cues = parse(read_text(path)).cues
    assert cues and all(c.text and c.start < c.end for c in cues)
    assert [c.start for c in cues] == sorted(c.start for c in cues)
    assert _cues(_round_trip(cues, path.suffix[1:])) == _cues(cues)
    plain = [(s, e, t) for s, e, t, _ in _cues(cues)]
    assert [(c.start, c.end, c.text) for c in _round_trip(cues, "srt")] == plain


def test_pysubs2_webvtt_torture_test(interop):
    t = parse_vtt(read_text(interop / "subtitles/pysubs2/vtt_example.vtt"))
    assert len(t.cues) == 10  # 11 cues, one of them empty
    assert t.notes == {"WebVTT cue with no text: left out": 1}
    by_id = {c.meta.get("id"): c for c in t.cues}
    assert (by_id["id a"].start, by_id["id a"].end, by_id["id a"].text) == (8013, 16000, "Cyan!")
    assert (by_id["id b"].text, by_id["id b"].speaker) == ("I like lime.", "Salame")
    assert by_id["1"].text == "- Hello world."
    assert by_id["2 Title Crawl"].text == "This is the first subtitle.\nYellow!\nYellow! Yellow!"
    third = by_id["3 Some Text"]
    assert (third.start, third.end) == (30739, 34074)
    assert third.meta["settings"] == "vertical:rt line:-1 align:end"
    voices = [(c.start, c.end, c.speaker) for c in t.cues if c.speaker in ("Fred", "Bill")]
    assert voices == [(65000, 85000, "Fred"), (67500, 87500, "Bill")]
    assert t.cues[8].text == "Sure! I\u2019ve only had one today."
    assert t.cues[-1].start == 120100 and t.cues[-1].text.startswith('{\n"type": "WikipediaPage"')
    assert _cues(_round_trip(t.cues, "vtt")) == _cues(t.cues)


def test_youtube_captions_with_karaoke_timestamps(interop):
    t = parse_vtt(read_text(interop / "subtitles/webvtt-py/youtube_dl.vtt"))
    assert _cues(t.cues) == [
        (286070, 286470, "yeah", None),
        (286470, 304080, "yeah\nwhat", None),  # the next timing line ends this cue
        (304080, 305069, "this will happen is I'm telling", None),
        (305069, 305400, "this will happen is I'm telling", None),
    ]
    assert t.cues[0].meta == {"settings": "align:start position:0%"}
    again = _round_trip(t.cues, "vtt")
    assert _cues(again) == _cues(t.cues)
    assert again[0].meta == {"settings": "align:start position:0%"}  # settings written back


def test_srt_with_font_tags_and_a_literal_less_than(interop):
    t = parse_srt(read_text(interop / "subtitles/webvtt-py/styles2.srt"))
    assert len(t.cues) == 6
    assert (t.cues[0].start, t.cues[0].end, t.cues[0].text) == (7120, 9480, "Musique douce")
    assert t.cues[2].text == "Some italic and normal coloured text. By the way, 2 < 3 !"
    assert (t.cues[3].start, t.cues[3].end) == (35560, 145240)
    assert t.cues[5].text == "-Euh, là-bas, au chêne."  # the last line has no line ending
    assert _cues(_round_trip(t.cues, "srt")) == _cues(t.cues)
    assert _cues(_round_trip(t.cues, "vtt")) == _cues(t.cues)


def test_speakers_entities_and_milliseconds_round_trip():
    cues = [
        Cue(1, 999, "a & b < c > d", 1, speaker="Dr. Kumar"),
        Cue(3_599_999, 3_600_001, "வணக்கம்\nनमस्ते", 2, speaker="A"),
        Cue(1000, 2000, "x --> y", 3),
    ]
    text = write_vtt(segments_value(SCHEMA, cues, "x")["transcript"])  # type: ignore[index]
    assert "<v Dr. Kumar>a &amp; b &lt; c &gt; d" in text
    assert "00:59:59.999 --> 01:00:00.001" in text
    again = parse_vtt(text).cues
    assert _cues(again) == sorted(_cues(cues))
    srt = parse_srt(write_srt(segments_value(SCHEMA, cues, "x")["transcript"])).cues  # type: ignore[index]
    assert [(c.start, c.end, c.text) for c in srt] == sorted(
        (s, e, t) for s, e, t, _ in _cues(cues)
    )


@pytest.mark.parametrize(
    ("content", "expected"),
    [
        ("1\n00:00:0,000 --> 00:00:1,5\nhi", [(0, 1500, "hi")]),  # one-digit parts
        ("1\n00:00:01.000 --> 00:00:02.000\nhi\n", [(1000, 2000, "hi")]),  # '.' for ','
        ("\ufeff1\r\n00:00:01,000 --> 00:00:02,000\r\nb\r\n", [(1000, 2000, "b")]),  # BOM, CRLF
        (
            "2\n00:00:05,000 --> 00:00:06,000\nlater\n\n1\n00:00:01,000 --> 00:00:07,000\n"
            "<i>first</i> {\\an8}and overlapping\n",
            [(1000, 7000, "first and overlapping"), (5000, 6000, "later")],
        ),
        (
            "1\n00:00:01,000 --> 00:00:02,000\n\n\n\n2\n00:00:03,000 --> 00:00:04,000\n42\n",
            [(1000, 2000, ""), (3000, 4000, "42")][1:],
        ),
    ],
)
def test_malformed_srt_read_as_common_readers_do(content, expected):
    text = content.replace("\r\n", "\n")
    assert [(c.start, c.end, c.text) for c in parse_srt(text).cues] == expected


@pytest.mark.parametrize(
    ("parse", "content", "line", "reason"),
    [
        (
            parse_srt,
            "1\n00:00:01,000 --> 00:00:02,000\nok\n\n2\n00:00:0x,000 --> 1\nno\n",
            6,
            "not a timing line",
        ),
        (parse_srt, "1\n00:00:03,000 --> 00:00:02,000\nbackwards\n", 2, "ends before"),
        (parse_srt, "hello\n00:00:01,000 --> 00:00:02,000\nx\n", 1, "before the first cue"),
        (
            parse_vtt,
            "WEBVTT\n\n00:00:01.000 --> 00:00:02.000\na\n\n00:01.000 -> 00:02.000\nb\n",
            6,
            "neither a cue",
        ),
        (parse_vtt, "WEBVTT\n\n00:00:01.000 --> 00:00:02,000\na\n", 3, "not a cue timing line"),
        (parse_vtt, "1\n00:00:01.000 --> 00:00:02.000\na\n", 1, "starts with the line 'WEBVTT'"),
        (parse_vtt, "WEBVTT\n\n00:00:01.000 --> 00:00:61.000\na\n", 3, "59"),
    ],
)
def test_unreadable_timing_is_refused_at_its_line(parse, content, line, reason):
    with pytest.raises(TranscriptError) as info:
        parse(content)
    assert info.value.line == line and reason in info.value.reason


def test_webvtt_short_times_bom_crlf_unsorted():
    content = (  # no blank line after the header either
        "\ufeffWEBVTT\r\n00:05.000 --> 00:06.000\r\nb\r\n\r\n00:01.250 --> 00:02.000\r\na\r\n"
    )
    cues = parse_vtt(content.replace("\r\n", "\n")).cues
    assert _cues(cues) == [(1250, 2000, "a", None), (5000, 6000, "b", None)]


def test_overlap_refused_by_a_field_that_forbids_it_at_the_cue_line(interop):
    schema = Schema({"fields": [{"name": "t", "type": "segments"}]})
    t = parse_vtt(read_text(interop / "subtitles/pysubs2/vtt_example.vtt"))
    problems = segments_value(schema, t.cues, "vtt_example.vtt")
    assert isinstance(problems, list)
    assert problems[0].location == "vtt_example.vtt line 76"  # 00:00:17.400 inside 16–24 s
    assert "overlap" in problems[0].reason


def _zip(files: dict[str, bytes]) -> bytes:
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as zf:
        for name, data in files.items():
            zf.writestr(name, data)
    return buf.getvalue()


def _predictions(world, project) -> dict[str, list]:
    with world.db.begin("read") as conn:
        rows = conn.execute(
            text(
                "SELECT i.external_id, p.model, p.value FROM predictions p JOIN items i "
                "ON i.id = p.item_id WHERE p.project_id = :p ORDER BY i.id"
            ),
            {"p": project.id},
        ).all()
    return {ext: [model, loads(value)["transcript"]] for ext, model, value in rows}


def test_audio_with_subtitle_sidecars_through_the_api(world, interop, tmp_path):
    ws = world.workspace()
    client = world.user("boss", role="manager", workspace=ws)["client"]
    project = world.project(ws, schema=SPEC)
    wav = tone(tmp_path, seconds=1.0).read_bytes()
    vtt = (interop / "subtitles/webvtt-py/youtube_dl.vtt").read_bytes()
    srt = b"1\r\n00:00:00,100 --> 00:00:0,900\r\n<i>hello</i> there\r\n"
    upload = _zip(
        {"a/one.wav": wav, "a/one.vtt": vtt, "two.wav": wav, "two.srt": srt, "three.wav": wav}
    )
    result = client.import_bytes(project.id, upload, filename="calls.zip")  # format guessed
    assert (result["n_items"], result["n_predictions"]) == (3, 2)
    preds = _predictions(world, project)
    assert preds["two.wav"] == [
        "srt",
        [
            {
                "start": 0.1,
                "end": 0.9,
                "text": "hello there",
                "speaker": None,
                "language": [],
                "events": [],
                "channel": 0,
            }
        ],
    ]
    model, segments = preds["a/one.wav"]
    assert model == "vtt" and [s["start"] for s in segments] == [286.07, 286.47, 304.08, 305.069]
    with pytest.raises(LabelfarmAPIError) as info:  # a sidecar naming no audio file
        client.import_bytes(project.id, _zip({"x.wav": wav, "y.vtt": vtt}), filename="b.zip")
    assert info.value.details[0]["location"] == "y.vtt"
    bad = _zip({"z.wav": wav, "z.srt": b"1\n00:00:01,000 --> nonsense\nx\n"})
    with pytest.raises(LabelfarmAPIError) as info:
        client.import_bytes(project.id, bad, filename="c.zip")
    assert info.value.details[0]["location"] == "z.srt line 2"


def test_subtitles_attached_to_items_and_exported(world, tmp_path):
    ws = world.workspace()
    client = world.user("boss", role="manager", workspace=ws)["client"]
    project = world.project(ws, schema=SPEC)
    wav = tone(tmp_path, seconds=3.0).read_bytes()
    upload = _zip({"calls/c1.wav": wav, "c2.wav": wav})
    client.import_bytes(project.id, upload, format="transcripts", filename="audio.zip")
    vtt = b"WEBVTT\n\nc-1\n00:00:00.250 --> 00:00:01.125 align:start\n<v Asha>ta &amp; da\n"
    answer = client.request(
        "POST",
        f"/projects/{project.id}/transcripts",
        params={"filename": "c1.vtt", "as": "annotations"},
        content=vtt,
    )
    assert (answer["n_items"], answer["n_segments"], answer["mode"]) == (1, 1, "annotations")
    with pytest.raises(LabelfarmAPIError) as info:
        client.request(
            "POST",
            f"/projects/{project.id}/transcripts",
            params={"filename": "nobody.vtt"},
            content=vtt,
        )
    assert info.value.status == 422 and "nobody" in info.value.message
    data = b"".join(client.export_stream(project.id, format="vtt"))
    with zipfile.ZipFile(io.BytesIO(data)) as zf:
        assert zf.read("c1.vtt").decode() == (
            "WEBVTT\n\nc-1\n00:00:00.250 --> 00:00:01.125 align:start\n<v Asha>ta &amp; da\n"
        )
        assert json.loads(zf.read("manifest.json"))["counts"]["no_transcript"] == 1
    srt = b"".join(client.export_stream(project.id, format="srt"))
    with zipfile.ZipFile(io.BytesIO(srt)) as zf:
        assert zf.read("c1.srt") == b"1\n00:00:00,250 --> 00:00:01,125\nta & da\n"


def test_sidecar_transcripts_imported_as_labels_round_trip(world, tmp_path):
    """``transcripts=annotations``: a zip of audio and its subtitles imports as labels, and
    the export gives the same file back, times to the millisecond and text exact."""
    ws = world.workspace()
    client = world.user("boss", role="manager", workspace=ws)["client"]
    project = world.project(ws, schema=SPEC)
    wav = tone(tmp_path, seconds=3.0).read_bytes()
    vtt = (
        "WEBVTT\n\n00:00:00.250 --> 00:00:01.125\n<v Asha>வணக்கம் நண்பரே\n\n"
        "00:00:01.500 --> 00:00:02.999\n<v Ravi>नमस्ते\n"
    )
    upload = _zip({"talk.wav": wav, "talk.vtt": vtt.encode()})
    answer = client.request(
        "POST",
        f"/projects/{project.id}/imports",
        params={"filename": "talks.zip", "transcripts": "annotations"},
        content=upload,
    )
    assert (answer["n_items"], answer["n_annotations"], answer["n_predictions"]) == (1, 1, 0)
    data = b"".join(client.export_stream(project.id, format="vtt"))
    with zipfile.ZipFile(io.BytesIO(data)) as zf:
        assert zf.read("talk.vtt").decode() == vtt
    with pytest.raises(LabelfarmAPIError) as info:  # only the two words are understood
        client.request(
            "POST",
            f"/projects/{project.id}/imports",
            params={"filename": "talks.zip", "transcripts": "labels"},
            content=upload,
        )
    assert info.value.status == 422


def test_format_told_from_names_and_a_lone_file_explained(world, tmp_path):
    from labelfarm.formats.detect import guess_format

    lone = tmp_path / "talk.srt"
    lone.write_bytes(b"1\n00:00:01,000 --> 00:00:02,000\nhi\n")
    archive = tmp_path / "calls.zip"
    archive.write_bytes(_zip({"a.wav": b"", "a.vtt": b""}))
    assert guess_format(lone) == guess_format(archive) == "transcripts"
    ws = world.workspace()
    client = world.user("boss", role="manager", workspace=ws)["client"]
    project = world.project(ws, schema=SPEC)
    with pytest.raises(LabelfarmAPIError) as info:
        client.import_bytes(project.id, lone.read_bytes(), filename="talk.srt")
    assert "/transcripts" in info.value.details[0]["reason"]
