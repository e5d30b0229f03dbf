"""The ``segments`` field: validation, media fit, similarity, ROVER aggregation, and a segments
project submitted, aggregated and exported through the API."""

from __future__ import annotations

import random
from typing import Any

import orjson
import pytest
from sqlalchemy import update

from labelfarm.client import LabelfarmAPIError
from labelfarm.db.tables import items, media, media_audio
from labelfarm.errors import SchemaError
from labelfarm.ml.rover import combine, medoid
from labelfarm.ml.text_metrics import normalise_text, token_errors, wer
from labelfarm.schema import FieldError, compile_schema
from labelfarm.schema.segments import Segments, transcript_text

SPEC = {
    "name": "transcript",
    "type": "segments",
    "speakers": ["A", "B"],
    "languages": ["ta-IN", "ta-IN-madurai", "hi-IN", "en-IN"],
}
SCHEMA = {"fields": [SPEC]}
REFERENCE = [  # (start, end, text): the true transcript the noisy copies come from
    (0.5, 4.0, "a man said to the universe sir i exist"),
    (4.5, 8.0, "however replied the universe the fact has not created in me"),
    (8.5, 12.0, "a sense of obligation and so the story ends"),
    (12.5, 16.0, "நான் வீட்டுக்கு போகிறேன் நாளை வருவேன்"),
    (16.5, 20.0, "मुझे किताब चाहिए और कलम भी"),
]


def field(**spec: Any) -> Segments:
    f = Segments({**SPEC, **spec})
    return f


def seg(start: float, end: float, text: str = "x", **extra: Any) -> dict[str, Any]:
    return {"start": start, "end": end, "text": text, **extra}


def error_of(f: Segments, value: Any) -> FieldError:
    with pytest.raises(FieldError) as info:
        f.validate(value)
    return info.value


# -- spec and validation ---------------------------------------------------------------------
def test_spec_is_checked():
    with pytest.raises(SchemaError, match="unknown key"):
        field(colour="red")
    with pytest.raises(SchemaError, match="not a tag"):
        field(languages=["tamil!"])
    with pytest.raises(SchemaError, match="allow_overlap"):
        field(allow_overlap="yes")
    with pytest.raises(SchemaError, match="max_segments"):
        field(max_segments=0)
    f = Segments({"name": "t", "type": "segments"})
    assert f.events == ["noise", "music", "overlap", "unintelligible"]
    assert f.to_dict() | {"help": ""} == {
        "name": "t",
        "type": "segments",
        "required": True,
        "display": {},
        "help": "",
        "speakers": [],
        "languages": [],
        "events": ["noise", "music", "overlap", "unintelligible"],
        "allow_overlap": False,
        "max_segments": 5000,
        "max_text": 2000,
        "max_words": 2000,
    }


def test_validate_gives_the_canonical_form():
    f = field()
    value = [
        seg(3.0, 4.00049, "ऩया", speaker="B", language="hi-IN", channel=1),
        seg(2.00001, 2.5, "", events=["music", "noise", "music"], speaker=""),
        {
            "start": 0,
            "end": 1.9999,
            "text": "வணக்கம்",
            "speaker": "A",
            "language": ["ta-IN-madurai", "en-IN", "ta-IN-madurai"],
            "asr": True,
            "words": [{"start": 0.1, "end": 0.90001, "word": "வணக்கம்", "p": 0.93}],
        },
    ]
    out = f.validate(value)
    assert out == [
        {
            "start": 0.0,
            "end": 2.0,
            "text": "வணக்கம்",
            "speaker": "A",
            "language": ["ta-IN-madurai", "en-IN"],
            "events": [],
            "channel": 0,
            "asr": True,
            "words": [{"start": 0.1, "end": 0.9, "word": "வணக்கம்", "p": 0.93}],
        },
        {
            "start": 2.0,
            "end": 2.5,
            "text": "",
            "speaker": None,
            "language": [],
            "events": ["noise", "music"],
            "channel": 0,
        },
        {
            "start": 3.0,
            "end": 4.0,
            "text": "ऩया",  # NFC: U+0928 U+093C became U+0929
            "speaker": "B",
            "language": ["hi-IN"],
            "events": [],
            "channel": 1,
        },
    ]
    assert f.validate(out) == out  # canonical is a fixed point
    assert field(required=False).validate([]) == []


@pytest.mark.parametrize(
    ("value", "path", "reason"),
    [
        ("text", "", "expected a list"),
        ([seg(0, 1), seg(1, 2), seg(2, 3, "  ")], "[2].text", "text is empty"),
        ([seg(1, 1)], "[0].end", "must be after 'start'"),
        ([seg(-1, 1)], "[0].start", "between 0"),
        ([seg(0, True)], "[0].end", "a time in seconds"),
        ([seg(0, float("nan"))], "[0].end", "a time in seconds"),
        ([seg(0, 1, colour="red")], "[0].colour", "unknown key"),
        ([seg(0, 1, speaker="C")], "[0].speaker", "unknown speaker 'C'"),
        ([seg(0, 1, language=["ta-IN", "fr-FR"])], "[0].language[1]", "unknown language"),
        ([seg(0, 1, language=["no good"])], "[0].language[0]", "not a language tag"),
        ([seg(0, 1, events=["laughter"])], "[0].events[0]", "unknown event"),
        ([seg(0, 1, channel=-1)], "[0].channel", "'channel'"),
        ([seg(0, 1, asr="yes")], "[0].asr", "true or false"),
        ([seg(0, 1, words=[{"start": 0, "end": 1, "word": "x", "p": 2}])], "[0].words[0].p", "p"),
        ([seg(0, 1, words=[{"start": 1, "end": 0.5, "word": "x"}])], "[0].words[0].end", "before"),
        ([seg(0, 1, words=[{"start": 0, "end": 1, "word": "x"}] * 2001)], "[0].words", "2000"),
        ([seg(0, 1, "x" * 2001)], "[0].text", "at most 2000"),
        ([], "", "no segments"),
    ],
)
def test_invalid_values_are_located(value, path, reason):
    err = error_of(field(), value)
    assert err.path == path
    assert reason in err.reason


def test_bounds_and_the_schema_path():
    f = field(max_segments=3, max_text=5)
    assert "at most 3" in error_of(f, [seg(i, i + 0.5) for i in range(4)]).reason
    assert error_of(f, [seg(0, 1, "toolong")]).path == "[0].text"
    schema = compile_schema(SCHEMA)
    with pytest.raises(FieldError) as info:
        schema.validate({"transcript": [seg(0, 1), seg(2, 3, "")]})
    assert info.value.path == "transcript[1].text"


def test_overlap_on_one_channel_is_refused_unless_allowed():
    f = field()
    err = error_of(f, [seg(2, 4), seg(0, 2.5)])
    assert err.path == "[0].start"
    assert "overlaps segment [1] (0.000–2.500) on channel 0" in err.reason
    assert len(f.validate([seg(0, 2), seg(2, 4)])) == 2  # touching is fine
    assert len(f.validate([seg(0, 3), seg(1, 2, channel=1)])) == 2  # other channel
    assert len(field(allow_overlap=True).validate([seg(0, 3), seg(1, 2)])) == 2
    # a long segment overlapping a later one that is not its neighbour in the input
    assert error_of(f, [seg(5, 6), seg(0, 10), seg(11, 12)]).path == "[0].start"


def test_check_media():
    f = field()
    value = f.validate([seg(0, 2), seg(2, 5.005, channel=1)])
    f.check_media(value, 5.0, 2)  # within the 10 ms slack
    with pytest.raises(FieldError) as info:
        f.check_media(value, 4.9, 2)
    assert info.value.path == "[1].end"
    assert "after the end of the audio (4.900 s)" in info.value.reason
    with pytest.raises(FieldError) as info:
        f.check_media(value, 6.0, 1)
    assert info.value.path == "[1].channel"
    # word timings are the recogniser's notes, not checked
    f.check_media(f.validate([seg(0, 2, words=[{"start": 1.5, "end": 2.5, "word": "x"}])]), 2, 1)


def test_text_similarity_score_and_cells():
    f = field()
    a = f.validate([seg(0, 1, "the cat"), seg(1, 2, "sat down")])
    b = f.validate([seg(0, 2, "The cat sat, down.")])
    c = f.validate([seg(0, 2, "the dog sat down")])
    assert transcript_text(a) == "the cat sat down"
    assert f.similarity(a, b) == 1.0
    assert f.similarity(a, c) == 0.75 == f.similarity(c, a)
    assert f.similarity(a, f.validate([seg(0, 1, "", events=["noise"])])) == 0.0
    assert f.score(c, a) == 0.75
    assert f.score(f.validate([seg(0, 1, "a b c d e f g h i")]), a) == 0.0  # WER capped at 1
    two = f.validate(
        [
            seg(3, 4, "வணக்கம்", speaker="A", language=["ta-IN", "en-IN"], channel=1),
            seg(0, 1, "", events=["noise"]),
            seg(1.0, 2.0, "hello", speaker="B"),
        ]
    )
    assert transcript_text(two) == "hello வணக்கம்"  # time order across channels
    assert f.to_cell(two) == (
        "[0.000–1.000]: [noise]\n[1.000–2.000] B: hello\n[3.000–4.000] ch1 A (ta-IN, en-IN): வணக்கம்"
    )


# -- ROVER ---------------------------------------------------------------------------------
VOCAB = sorted({w for _, _, text in REFERENCE for w in text.split()})


def noisy(rng: random.Random, text: str, rate: float) -> str:
    """Each word: deleted, substituted or followed by an inserted word, each with rate/3."""
    out = []
    for w in text.split():
        r = rng.random()
        if r < rate / 3:
            continue
        if r < 2 * rate / 3:
            out.append(rng.choice(VOCAB))
            continue
        out.append(w)
        if r < rate:
            out.append(rng.choice(VOCAB))
    return " ".join(out)


def test_rover_combines_word_lists():
    ref = ["a", "man", "said", "to", "the", "universe"]
    copies = [
        ["a", "man", "said", "to", "the", "universe"],
        ["a", "man", "sad", "to", "the", "universe"],
        ["a", "man", "said", "to", "universe", "now"],
        ["man", "said", "to", "the", "universe"],
    ]
    # slots: a ¾, man 1, said ¾ (sad), to 1, the ¾, universe 1, "now" ¾ for nothing
    assert combine(copies) == (ref, pytest.approx(6 / 7))
    assert combine(copies[:2]) == (
        copies[0],
        pytest.approx(11 / 12),
    )  # two: the medoid (first on a tie)
    assert combine([copies[1]]) == (copies[1], 0.5)
    assert combine([]) == ([], 0.0)
    # weights: two light voices lose to one heavy one
    assert combine([["yes"], ["no"], ["no"]], [5.0, 1.0, 1.0])[0] == ["yes"]
    # words compared by a key, written in their heaviest spelling
    keyed = combine(
        [["Hello,", "world"], ["hello", "world"], ["hello", "World!"]], key=normalise_text
    )
    assert keyed[0] == ["hello", "world"]
    assert medoid([["a"], ["a", "b"], ["a", "b", "c"]]) == (1, pytest.approx(0.7222, abs=1e-3))
    with pytest.raises(ValueError, match="weights"):
        combine([["a"]], [1.0, 2.0])


def test_rover_is_at_least_as_good_as_the_medoid_on_noisy_copies():
    reference = " ".join(text for _, _, text in REFERENCE)
    ref_words = reference.split()
    medoid_total = rover_total = 0.0
    for seed in range(8):
        for n in (3, 5):
            rng = random.Random(seed * 10 + n)
            copies = [noisy(rng, reference, 0.25).split() for _ in range(n)]
            pivot, _ = medoid(copies)
            combined, support = combine(copies)
            medoid_wer = token_errors(ref_words, copies[pivot]).rate
            rover_wer = token_errors(ref_words, combined).rate
            assert rover_wer <= medoid_wer, (seed, n)
            assert 0.5 < support <= 1.0
            medoid_total += medoid_wer
            rover_total += rover_wer
    assert rover_total < 0.6 * medoid_total


def noisy_transcript(f: Segments, rng: random.Random, rate: float) -> list[dict[str, Any]]:
    """A transcriber's version of REFERENCE: noisy words, borders moved by up to 0.2 s."""
    value = []
    for start, end, text in REFERENCE:
        words_said = noisy(rng, text, rate) or text.split()[0]
        value.append(seg(start + rng.uniform(-0.2, 0.2), end + rng.uniform(-0.2, 0.2), words_said))
    return f.validate(value)


def test_aggregate_beats_the_medoid_and_keeps_the_medoid_segments():
    f = field()
    reference = " ".join(text for _, _, text in REFERENCE)
    medoid_total = combined_total = 0.0
    for seed in range(6):
        rng = random.Random(seed)
        values = [noisy_transcript(f, rng, 0.25) for _ in range(3 + seed % 3)]
        best = max(values, key=lambda v: sum(f.similarity(v, o) for o in values))
        combined, confidence = f.aggregate(values, [1.0] * len(values))
        assert f.validate(combined) == combined
        assert [(s["start"], s["end"]) for s in combined] == [(s["start"], s["end"]) for s in best]
        assert 0.5 < confidence <= 1.0
        medoid_wer = wer(reference, transcript_text(best))
        combined_wer = wer(reference, transcript_text(combined))
        assert combined_wer <= medoid_wer, seed
        medoid_total += medoid_wer
        combined_total += combined_wer
    assert combined_total < 0.6 * medoid_total
    one = noisy_transcript(f, random.Random(1), 0.2)
    assert f.aggregate([one]) == (one, 0.5)
    assert f.aggregate([one, one])[0] == one


def test_aggregate_places_words_by_time_and_asr_timings():
    f = field()
    a = f.validate([seg(0, 2, "one two"), seg(2, 4, "three four")])
    b = f.validate([seg(0, 4, "one two three four")])  # one long segment, spread in time
    c = f.validate(
        [
            seg(
                0,
                4,
                "one too three four",
                asr=True,
                words=[
                    {"start": 0.1, "end": 0.4, "word": "one"},
                    {"start": 0.5, "end": 1.0, "word": "too"},
                    {"start": 2.5, "end": 2.9, "word": "three"},
                    {"start": 3.0, "end": 3.5, "word": "four"},
                ],
            )
        ]
    )
    combined, confidence = f.aggregate([a, b, c])
    assert [(s["start"], s["end"], s["text"]) for s in combined] == [
        (0.0, 2.0, "one two"),
        (2.0, 4.0, "three four"),
    ]
    assert confidence == pytest.approx((1 + 2 / 3 + 1 + 1) / 4)


def test_event_only_and_text_only_segments_aggregate():
    f = field()
    values = [
        f.validate([seg(0, 1, "", events=["music"]), seg(1, 3, "hello there")]),
        f.validate([seg(0, 1, "", events=["music"]), seg(1, 3, "hello there")]),
        f.validate([seg(0, 3, "hello their")]),
    ]
    combined, _ = f.aggregate(values)
    assert combined == values[0]


# -- through the API -----------------------------------------------------------------------
@pytest.fixture
def ws(world):
    return world.workspace()


def _value(start: float, end: float, text: str, **extra: Any) -> dict[str, Any]:
    return {
        "transcript": [{"start": start, "end": end, "text": text, "language": ["ta-IN"], **extra}]
    }


def test_three_transcribers_are_combined_and_exported(world, ws, tmp_path):
    project = world.project(ws, schema=SCHEMA, overlap=3)
    world.add_items(project, 1, tmp_path)
    texts = ["நான் வீட்டுக்கு போகிறேன்", "நான் விட்டுக்கு போகிறேன்", "நான் வீட்டுக்கு போகிறேன் இப்போ"]
    for n, text in enumerate(texts):
        client = world.user(f"ann{n}", role="annotator", workspace=ws)["client"]
        (task,) = client.next(project.id)
        (result,) = client.submit(
            project.id, [{"task": task["task"], "value": _value(0.5, 3, text)}]
        )
        assert result["status"] == "accepted"
    manager = world.user("boss", role="manager", workspace=ws)["client"]
    out = manager.export(project.id, tmp_path / "out.jsonl")
    (row,) = [orjson.loads(line) for line in out.read_bytes().splitlines()]
    label = row["label"]
    assert label["value"]["transcript"][0]["text"] == "நான் வீட்டுக்கு போகிறேன்"
    assert label["value"]["transcript"][0]["language"] == ["ta-IN"]
    assert label["methods"]["transcript"] == "segments-aggregate"
    assert 0.5 < label["confidence"]["transcript"] < 1.0
    assert len(row["annotations"]) == 3
    csv = manager.export(project.id, tmp_path / "out.csv", format="csv").read_text()
    assert "[0.500–3.000] (ta-IN): நான் வீட்டுக்கு போகிறேன்" in csv


def _audio_item(world, item_id: int, duration: float, channels: int) -> None:
    sha = "ab" * 32
    now = world.clock()
    with world.db.engine.begin() as conn:
        conn.execute(
            media.insert().values(sha256=sha, size=1, mime="audio/wav", inline=True, created_at=now)
        )
        conn.execute(
            media_audio.insert().values(
                sha256=sha,
                duration=duration,
                sample_rate=16_000,
                channels=channels,
                format="WAV",
                peaks="[]",
                created_at=now,
            )
        )
        conn.execute(update(items).where(items.c.id == item_id).values(media_sha256=sha))


def test_submitted_transcripts_must_fit_inside_the_audio(world, ws, tmp_path):
    project = world.project(ws, schema=SCHEMA)
    world.add_items(project, 2, tmp_path)
    ann = world.user("ann", role="annotator", workspace=ws)
    tasks = ann["client"].next(project.id, n=2)
    audio_item, _text_item = world.item_ids(project.id, ann, tasks)
    _audio_item(world, audio_item, 5.0, 2)
    audio_task, text_task = tasks[0]["task"], tasks[1]["task"]
    with pytest.raises(LabelfarmAPIError) as info:
        ann["client"].submit(
            project.id,
            [
                {"task": text_task, "value": _value(0, 100, "long text item, not checked")},
                {"task": audio_task, "value": _value(1, 5.2, "too long")},
            ],
        )
    assert info.value.status == 422
    (problem,) = info.value.details
    assert problem["index"] == 1
    assert problem["field"] == "value.transcript[0].end"
    assert "after the end of the audio (5.000 s)" in problem["reason"]
    with pytest.raises(LabelfarmAPIError) as info:
        ann["client"].submit(
            project.id, [{"task": audio_task, "value": _value(1, 2, "x", channel=2)}]
        )
    assert info.value.details[0]["field"] == "value.transcript[0].channel"
    results = ann["client"].submit(
        project.id,
        [
            {"task": audio_task, "value": _value(1, 5.004, "fits", channel=1)},
            {"task": text_task, "value": _value(0, 100, "not checked")},
        ],
    )
    assert [r["status"] for r in results] == ["accepted", "accepted"]
