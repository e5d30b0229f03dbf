"""STM and CTM: the NIST and MeetEval fixtures read segment by segment, CTM words grouped
by pauses or by the STM's segments, writers read back, bad lines refused at their line, and
audio with STM/CTM files imported and attached."""

from __future__ import annotations

import shutil

import pytest
from sqlalchemy import text
from tests.audio.clips import tone

from labelfarm.formats.stm_ctm import parse_ctm, parse_stm, segment_words, write_ctm, write_stm
from labelfarm.formats.transcripts import TranscriptError, read_text, segment_of
from labelfarm.jsonutil import loads

SPEC = {
    "fields": [
        {"name": "transcript", "type": "segments", "allow_overlap": True, "required": False}
    ],
    "data": {"audio": "audio"},
}


def _rows(recs):
    return {
        name: [(c.channel, c.start, c.end, c.speaker, c.text) for c in t.cues]
        for name, t in recs.items()
    }


def _scoring_files() -> list[str]:
    from tests.formats.conftest import INTEROP

    folder = INTEROP / "ctm_stm"
    found = sorted(folder.rglob("*")) if folder.is_dir() else []
    return [p.relative_to(INTEROP).as_posix() for p in found if p.suffix in (".stm", ".ctm")]


@pytest.mark.parametrize("rel", _scoring_files() or ["ctm_stm (absent)"])
def test_every_stm_and_ctm_fixture_reads_and_round_trips(interop, rel):
    """Every file there (the held-back set's too) reads, and what it holds comes back from
    the writer of its format with the same recordings, times and words."""
    path = interop / rel
    if path.suffix == ".stm":
        recs, _ = parse_stm(read_text(path))
        again, _ = parse_stm(
            "".join(write_stm((n, [segment_of(c) for c in t.cues]) for n, t in recs.items()))
        )
        assert _rows(again) == _rows(recs)
    else:
        recs, _ = parse_ctm(read_text(path))
        again, _ = parse_ctm(
            "".join(write_ctm((n, [segment_of(c) for c in t.cues]) for n, t in recs.items()))
        )
        assert {n: [c.words for c in t.cues] for n, t in again.items()} == {
            n: [c.words for c in t.cues] for n, t in recs.items()
        }
    assert recs and all(t.cues for t in recs.values())


def test_meeteval_stm(interop):
    recs, notes = parse_stm(read_text(interop / "ctm_stm/meeteval/ref.stm"))
    rows = _rows(recs)
    assert rows["recordingA"] == [
        (0, 1000, 2000, "Bob", "Strategic staircase we need a paradigm shift"),
        (0, 2000, 3000, "Alice", "Pipeline Bob called an all-hands this afternoon"),
        (0, 5000, 6000, "Alice", rows["recordingA"][2][4]),
    ]
    assert rows["recordingA"][2][4].endswith("groom the backlog, land the plane")
    assert [r[1:3] for r in rows["recordingB"]] == [(3000, 4000), (4000, 5000)]
    assert notes == {
        "STM segment of no duration (start = end): left out": 1,
        "STM segment marking a stretch left out of scoring (no transcript): left out": 1,
    }


def test_sctk_stm_keeps_alternations_and_optional_words(interop):
    recs, notes = parse_stm(read_text(interop / "ctm_stm/sctk/stmctm.stm"))
    assert _rows(recs) == {
        "comb": [(0, 0, 1000, "comb", "a b- (c-) (d)"), (0, 1000, 2000, "comb", "A B C D")],
        "f": [
            (0, 0, 1000, "f", "a b { c d / c / e } e f g"),
            (0, 1000, 2000, "f", "a b c d e f g"),
        ],
    }
    assert sum(notes.values()) == 1  # the empty segment at 3–4 s


def test_sctk_ctm_alone_and_with_its_stm(interop):
    ctm = read_text(interop / "ctm_stm/sctk/stmctm.ctm")
    alone, notes = parse_ctm(ctm)
    assert notes == {"CTM alternation: only its first alternative is kept": 1}
    assert _rows(alone) == {
        "comb": [(0, 0, 400, None, "A B C D"), (0, 1000, 1400, None, "a b- (c-) (d)")],
        "f": [(0, 0, 1700, None, "a b c d e f g a b c d e f g")],  # no pause over 0.5 s
    }
    assert alone["f"].cues[0].words[8] == {"start": 1.1, "end": 1.2, "word": "b"}
    stm, _ = parse_stm(read_text(interop / "ctm_stm/sctk/stmctm.stm"))
    grouped, _ = parse_ctm(ctm, stm)
    assert [(c.start, c.end, c.speaker, c.text) for c in grouped["f"].cues] == [
        (0, 1000, "f", "a b c d e f g"),
        (1000, 2000, "f", "a b c d e f g"),  # c d of the first alternative, then e f g
    ]


def test_writers_read_back():
    segs = [
        {
            "start": 0.5,
            "end": 2.25,
            "text": "வணக்கம் நண்பா",
            "speaker": "Asha Rao",
            "channel": 1,
            "words": [
                {"start": 0.5, "end": 1.0, "word": "வணக்கம்", "p": 0.93},
                {"start": 1.2, "end": 2.25, "word": "நண்பா", "p": 0.5},
            ],
        },
        {"start": 3.0, "end": 4.0, "text": "a b c", "speaker": None, "channel": 0},
        {"start": 5.0, "end": 6.0, "text": "", "events": ["noise"], "channel": 0},
    ]
    stm = "".join(write_stm([("call 1", segs)]))
    assert stm.splitlines()[0] == "call_1 2 Asha_Rao 0.5 2.25 வணக்கம் நண்பா"
    recs, _ = parse_stm(stm)
    assert [(c.channel, c.start, c.end, c.speaker, c.text) for c in recs["call_1"].cues] == [
        (0, 3000, 4000, "unknown", "a b c"),
        (0, 5000, 6000, "unknown", "[noise]"),
        (1, 500, 2250, "Asha_Rao", "வணக்கம் நண்பா"),
    ]
    ctm = "".join(write_ctm([("c", segs[:2])]))
    assert ctm.splitlines()[:3] == [
        "c 2 0.5 0.5 வணக்கம் 0.93",
        "c 2 1.2 1.05 நண்பா 0.5",
        "c 1 3 0.333 a",
    ]
    words, _ = parse_ctm(ctm)
    assert [w["word"] for c in words["c"].cues for w in c.words] == ["a", "b", "c", "வணக்கம்", "நண்பா"]
    assert words["c"].cues[1].words[0]["p"] == 0.93
    assert segment_words(segs[1]) == [
        (3000, 3333, "a", None),
        (3333, 3666, "b", None),
        (3666, 4000, "c", None),
    ]


@pytest.mark.parametrize(
    ("fmt", "content", "line", "reason"),
    [
        ("stm", ";; comment\nf 1 A 1.0\n", 2, "an STM line is"),
        ("stm", "f 1 A 2 1 text\n", 1, "ends before it starts"),
        ("stm", "f 1 A x 1 text\n", 1, "not a number of seconds"),
        ("stm", "f 1 A 0 1 a\nf left A 1 2 b\n", 2, "channel 'left'"),
        ("ctm", "f 1 0 0.1 a\nf 1 * * <ALT_BEGIN>\nf 1 0.1 0.1 b\n", 2, "without its <ALT_END>"),
        ("ctm", "f 1 0 0.1 a 1.5\n", 1, "confidence '1.5'"),
        ("ctm", "f 1 * 0.1 a\n", 1, "not a number of seconds"),
        ("ctm", "f 1 0 0.1 a\nf 1 * * <ALT>\n", 2, "outside an alternation"),
    ],
)
def test_bad_rows_refused_at_their_line(fmt, content, line, reason):
    with pytest.raises(TranscriptError) as info:
        parse_stm(content) if fmt == "stm" else parse_ctm(content)
    assert info.value.line == line and reason in info.value.reason


def test_channels_numbered_from_zero_or_lettered():
    recs, _ = parse_stm("f 0 A 0 1 a\nf 1 B 0 1 b\ng A A 0 1 c\n")
    assert [c.channel for c in recs["f"].cues] == [0, 1]
    assert recs["g"].cues[0].channel == 0
    assert segment_of(recs["f"].cues[1])["channel"] == 1


def _values(world, project, model):
    with world.db.begin("read") as conn:
        rows = conn.execute(
            text(
                "SELECT i.external_id, p.value FROM predictions p JOIN items i "
                "ON i.id = p.item_id WHERE p.project_id = :p AND p.model = :m ORDER BY i.id"
            ),
            {"p": project.id, "m": model},
        ).all()
    return {ext: loads(v)["transcript"] for ext, v in rows}


def test_folder_of_audio_with_stm_and_ctm(lab, interop, tmp_path):
    root = tmp_path / "corpus"
    root.mkdir()
    for name in ("comb", "f"):
        tone(root, seconds=5.0, name=f"{name}.wav")
    shutil.copy(interop / "ctm_stm/sctk/stmctm.stm", root / "ref.stm")
    shutil.copy(interop / "ctm_stm/sctk/stmctm.ctm", root / "hyp.ctm")
    project = lab.project(SPEC)
    result = lab.import_(project, root, "folder")
    assert (result.n_items, result.n_predictions) == (2, 4)
    stm, ctm = _values(lab.world, project, "stm"), _values(lab.world, project, "ctm")
    assert [s["text"] for s in stm["f.wav"]] == ["a b { c d / c / e } e f g", "a b c d e f g"]
    assert [(s["start"], s["end"], s["text"]) for s in ctm["f.wav"]] == [
        (0.0, 1.0, "a b c d e f g"),
        (1.0, 2.0, "a b c d e f g"),
    ]
    assert ctm["comb.wav"][0]["words"][0] == {"start": 0.0, "end": 0.1, "word": "A"}
    notes = {n["reason"] for n in result.notes}
    assert "CTM alternation: only its first alternative is kept" in notes
    out = lab.export(project, "stm").decode()
    assert out.splitlines() == []  # predictions only: nothing labelled yet


def test_stm_attached_to_existing_items_through_the_api(world, interop, tmp_path):
    ws = world.workspace()
    client = world.user("boss", role="manager", workspace=ws)["client"]
    project = world.project(ws, schema=SPEC)
    folder = tmp_path / "audio"
    folder.mkdir()
    import io
    import zipfile

    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as zf:
        for name in ("recordingA", "recordingB", "recordingC"):
            zf.write(tone(folder, seconds=7.0, name=f"{name}.flac"), f"{name}.flac")
    client.import_bytes(project.id, buf.getvalue(), format="transcripts", filename="a.zip")
    answer = client.request(
        "POST",
        f"/projects/{project.id}/transcripts",
        params={"filename": "ref.stm", "as": "annotations"},
        content=(interop / "ctm_stm/meeteval/ref.stm").read_bytes(),
    )
    assert (answer["n_items"], answer["n_segments"], answer["n_unmatched"]) == (2, 5, 0)
    assert len(answer["notes"]) == 2
    stm = b"".join(client.export_stream(project.id, format="stm")).decode()
    assert (
        stm.splitlines()[0] == "recordingA 1 Bob 1 2 Strategic staircase we need a paradigm shift"
    )
    assert len(stm.splitlines()) == 5
    ctm = b"".join(client.export_stream(project.id, format="ctm")).decode().splitlines()
    assert ctm[0] == "recordingA 1 1 0.142 Strategic"  # 7 words spread over 1 s


def test_reader_option_makes_transcripts_annotations(interop, tmp_path):
    from labelfarm.formats.registry import ImportSource, reader
    from labelfarm.schema import Schema

    tone(tmp_path, seconds=7.0, name="recordingA.wav")
    tone(tmp_path, seconds=7.0, name="other.wav")
    shutil.copy(interop / "ctm_stm/meeteval/ref.stm", tmp_path / "ref.stm")
    source = ImportSource(tmp_path, "corpus", Schema(SPEC), {"transcripts": "annotations"})
    records = dict(reader("transcripts")(source))
    assert set(records) == {"other.wav", "recordingA.wav"}
    rec = records["recordingA.wav"]
    assert not isinstance(rec, list) and rec.predictions == []
    assert [a["annotator"] for a in rec.annotations] == ["stm"]
    assert [s["speaker"] for s in rec.annotations[0]["value"]["transcript"]] == [
        "Bob",
        "Alice",
        "Alice",
    ]
    assert records["other.wav"].annotations == []  # type: ignore[union-attr]
