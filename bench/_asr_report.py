"""The ASR benchmark's figures: metrics for the JSON, the tables, the one-line summary."""

from __future__ import annotations

import math
from dataclasses import dataclass, field

from _asr_media import STORED_PEAKS_CAP, FirstMinute, ImportRun
from _asr_text import CombineTally, NoiseRate
from _common import Metrics, Row, print_report, print_table
from labelfarm.ml.text_metrics import Errors

HOUR_S = 3600.0
MINUTE_S = 60.0
# targets (issue 13): RTF with tiny.en on 2 cores, normalised WER, pre-fill edits as a share
# of typing from scratch, waveform + first minute
TARGET_RTF = 0.2
TARGET_WER = 0.10
TARGET_EDIT_SHARE = 0.20
TARGET_FIRST_MINUTE_KB = 500.0


def verdict(ok: bool) -> str:
    return "pass" if ok else "FAIL"


@dataclass
class Report:
    quick: bool
    plan_long_s: float
    model: str = ""
    metrics: Metrics = field(default_factory=dict)
    rows: list[Row] = field(default_factory=list)
    _ref_words: int = 0
    _raw_errors: int = 0
    _norm_ref_words: int = 0
    _norm_errors: int = 0
    _edits: int = 0
    _scratch: int = 0

    def measure(
        self, what: str, value: float, unit: str, target: str = "", ok: bool | None = None
    ) -> None:
        self.rows.append(
            {
                "kind": "measure",
                "what": what,
                "value": value,
                "unit": unit,
                "target": target,
                "verdict": None if ok is None else verdict(ok),
            }
        )

    def rtf(
        self, what: str, audio_s: float, job_s: float, cpu_s: float, *, main: bool = False
    ) -> None:
        """The real-time factor of a job, and its CPU seconds per second of audio (what
        other work on the machine does not change)."""
        value = job_s / audio_s
        suffix = "" if main else "_10min"
        self.metrics[f"rtf{suffix}"] = round(value, 4)
        self.metrics[f"cpu_s_per_audio_s{suffix}"] = round(cpu_s / audio_s, 4)
        if main:
            self.metrics["audio_s"] = round(audio_s, 2)
        self.measure(
            f"real-time factor: {what} ({audio_s:.1f} s of audio in {job_s:.1f} s; "
            f"{cpu_s / audio_s:.2f} CPU s per audio s)",
            value,
            "×",
            f"≤ {TARGET_RTF}",
            value <= TARGET_RTF,
        )

    def rtf_model(self, audio_s: float, model_s: float) -> None:
        value = model_s / audio_s
        self.metrics["rtf_model"] = round(value, 4)
        self.measure(
            f"real-time factor: the model alone, loaded ({audio_s:.1f} s in {model_s:.1f} s)",
            value,
            "×",
        )

    def utterance(
        self,
        name: str,
        seconds: float,
        reference: str,
        hypothesis: str,
        raw: Errors,
        norm: Errors,
        edits: int,
        scratch: int,
    ) -> None:
        self._ref_words += raw.reference
        self._raw_errors += raw.errors
        self._norm_ref_words += norm.reference
        self._norm_errors += norm.errors
        self._edits += edits
        self._scratch += scratch
        self.rows.append(
            {
                "kind": "utterance",
                "name": name,
                "seconds": round(seconds, 2),
                "wer_raw": raw.rate,
                "wer": norm.rate,
                "edit_chars": edits,
                "scratch_chars": scratch,
                "reference": reference,
                "hypothesis": hypothesis,
            }
        )
        self.metrics["wer_raw"] = round(self._raw_errors / max(1, self._ref_words), 4)
        self.metrics["wer"] = round(self._norm_errors / max(1, self._norm_ref_words), 4)
        self.metrics["edit_chars.prefill"] = self._edits
        self.metrics["edit_chars.scratch"] = self._scratch

    def long_import(self, duration: float, size: int, run: ImportRun) -> None:
        scale = HOUR_S / duration
        self.metrics["long_file_s"] = round(duration, 1)
        self.metrics["import_1h_s"] = round(run.seconds * scale, 2)
        self.metrics["import_1h_cpu_s"] = round(run.cpu_s * scale, 2)
        self.metrics["import_1h_peak_rss_mb"] = round(run.peak_rss_mb, 1)
        self.metrics["import_baseline_rss_mb"] = round(run.baseline_rss_mb, 1)
        scaled = f", scaled ×{scale:.1f} to 1 hour" if abs(scale - 1) > 0.01 else ""
        self.measure(
            f"import of the {duration / 60:.0f}-minute WAV ({size / 1e6:.0f} MB; "
            f"{run.cpu_s:.0f} CPU s){scaled}",
            self.metrics["import_1h_s"],
            "s",
        )
        self.measure(
            f"peak RSS of the importing process (before the import: {run.baseline_rss_mb:.0f} MB"
            + (
                f"; its children: {run.children_peak_rss_mb:.0f} MB)"
                if run.children_peak_rss_mb
                else ")"
            ),
            run.peak_rss_mb,
            "MB",
        )

    def first_minute(self, minute: FirstMinute) -> None:
        """Facts + the peak level the page keeps for a 1-hour file + the stream up to 60 s.
        A shorter file (``--quick``) counts the level the page would keep for an hour."""
        sizes = [
            math.ceil(HOUR_S / float(lv["seconds"])) * minute.channels * 2 for lv in minute.levels
        ]
        level = next((i for i, b in enumerate(sizes) if b <= STORED_PEAKS_CAP), len(sizes) - 1)
        full_hour = abs(minute.duration - HOUR_S) < 1.0
        peaks = minute.peaks_bytes if full_hour else sizes[level]
        total_kb = (minute.facts_bytes + peaks + minute.stream_bytes) / 1000
        self.metrics["first_minute_kb"] = round(total_kb, 1)
        self.metrics["first_minute.facts_bytes"] = minute.facts_bytes
        self.metrics["first_minute.peaks_bytes"] = peaks
        self.metrics["first_minute.stream_bytes"] = minute.stream_bytes
        self.metrics["stream_kbit_s"] = round(
            minute.stream_total_bytes * 8 / 1000 / minute.duration, 1
        )
        self.measure(
            f"browser: /audio facts ({minute.facts_bytes:,} B) + peaks level {level} "
            f"({minute.levels[level]['seconds']} s/bucket, {peaks:,} B) + Opus stream to 60 s "
            f"({minute.stream_bytes:,} B in {minute.stream_requests} range requests)",
            total_kb,
            "KB",
            f"≤ {TARGET_FIRST_MINUTE_KB:.0f}",
            total_kb <= TARGET_FIRST_MINUTE_KB,
        )

    def combine(self, tally: CombineTally, rate: NoiseRate) -> None:
        self.metrics["combine_wer.labelfarm"] = round(tally.combined_wer, 4)
        self.metrics["combine_wer.medoid"] = round(tally.medoid_wer, 4)
        self.metrics["combine_wer.copies"] = round(tally.copy_wer, 4)
        noise = (
            f"{rate.copies} copies, {rate.substitution:.0%} sub / {rate.deletion:.0%} del / "
            f"{rate.insertion:.0%} ins per word, {tally.trials} sets; a copy's WER "
            f"{tally.copy_wer:.1%}"
        )
        ok = tally.combined_wer <= tally.medoid_wer
        self.measure(f"WER of the medoid copy ({noise})", tally.medoid_wer, "")
        self.measure("WER of rover.combine of the copies", tally.combined_wer, "", "≤ medoid", ok)

    def finish(self) -> None:
        """The rows of the text figures, once every utterance is in."""
        m = self.metrics
        share = m["edit_chars.prefill"] / max(1, m["edit_chars.scratch"])
        self.measure("WER raw (case and punctuation removed)", m["wer_raw"], "")
        self.measure(
            "WER, English normaliser on both sides",
            m["wer"],
            "",
            f"≤ {TARGET_WER:.0%}",
            m["wer"] <= TARGET_WER,
        )
        self.measure(
            f"character edits with pre-fill ({m['edit_chars.prefill']}) / from scratch "
            f"({m['edit_chars.scratch']})",
            share,
            "",
            f"≤ {TARGET_EDIT_SHARE:.0%}",
            share <= TARGET_EDIT_SHARE,
        )

    def print(self) -> None:
        utterances = [
            dict(r, hypothesis=_trim(r["hypothesis"]))
            for r in self.rows
            if r["kind"] == "utterance"
        ]
        print_table(
            f"ASR pre-fill ({self.model}) on the LibriVox utterances",
            [
                "name",
                "seconds",
                ("wer_raw", "WER raw"),
                ("wer", "WER"),
                ("edit_chars", "edits"),
                ("scratch_chars", "scratch"),
                "hypothesis",
            ],
            utterances,
        )
        measures = [r for r in self.rows if r["kind"] == "measure"]
        print_report(
            "ASR benchmark" + (" (--quick)" if self.quick else ""),
            ["what", "value", "unit", "target", "verdict"],
            measures,
            self.summary(),
        )

    def summary(self) -> str:
        m = self.metrics
        share = m["edit_chars.prefill"] / max(1, m["edit_chars.scratch"])
        fails = sum(1 for r in self.rows if r.get("verdict") == "FAIL")
        return (
            f"asr{' --quick' if self.quick else ''}: RTF {m['rtf']:.3f}"
            + (f" (10-min slice {m['rtf_10min']:.3f})" if "rtf_10min" in m else "")
            + f", WER {m['wer']:.1%} (raw {m['wer_raw']:.1%}), edits {share:.1%} of scratch, "
            f"1 h import {m['import_1h_s']:.1f} s / {m['import_1h_peak_rss_mb']:.0f} MB peak, "
            f"first minute {m['first_minute_kb']:.0f} KB, "
            f"combine WER {m['combine_wer.labelfarm']:.1%} "
            f"vs medoid {m['combine_wer.medoid']:.1%}; "
            + ("all targets met" if not fails else f"{fails} target(s) missed")
        )


def _trim(text: str, width: int = 70) -> str:
    return text if len(text) <= width else text[: width - 1] + "…"
