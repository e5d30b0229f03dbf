// Waveform peaks from the server: the level to draw a view with (the coarsest that still
// gives at least one bucket per pixel), only the part of it in view fetched (byte ranges of
// fixed chunks, kept for later), each channel drawn as its own lane on a canvas.
import { fetchLevel, fetchPeakRange, levelBytes } from "./audio_fetch.js";

const CHUNK = 4096;          // buckets per ranged fetch
const WHOLE = 64 * 1024;     // a level this small (bytes) is fetched whole
const MAX_CHUNKS = 256;      // chunks kept in memory

export class Peaks {
  // `stored`: {level, data: Int8Array} kept on the device (offline), or null
  constructor(mediaUrl, facts, stored = null) {
    this.url = mediaUrl;
    this.facts = facts;
    this.whole = new Map();
    this.chunks = new Map();
    this.pending = new Map();
    if (stored && stored.data) this.whole.set(stored.level, stored.data);
  }

  // The coarsest level with at least one bucket per pixel for `seconds` over `px` pixels.
  levelFor(seconds, px) {
    const per = seconds / Math.max(1, px);
    const levels = this.facts.levels;
    let pick = -1;
    let finest = 0;
    levels.forEach((l, i) => {
      if (l.seconds <= per && (pick < 0 || l.seconds > levels[pick].seconds)) pick = i;
      if (l.seconds < levels[finest].seconds) finest = i;
    });
    return pick < 0 ? finest : pick;
  }

  // The peaks for [t0, t1) drawn on `px` pixels: {seconds, first, data} (data starts at
  // bucket `first`), from the right level when it can be had, else from a level kept here.
  async view(t0, t1, px) {
    let level = this.levelFor(t1 - t0, px);
    const levels = this.facts.levels;
    const want = levels[level].seconds;
    if (!this.whole.has(level)) { // a finer level held here draws as well, unasked
      let best = -1;
      for (const lv of this.whole.keys()) {
        const sec = levels[lv].seconds;
        if (sec <= want && sec >= want / 16 && (best < 0 || sec > levels[best].seconds)) best = lv;
      }
      if (best >= 0) level = best;
    }
    const sec = levels[level].seconds;
    const b0 = Math.max(0, Math.floor(t0 / sec));
    const b1 = Math.min(levels[level].buckets, Math.ceil(t1 / sec) + 1);
    try {
      return { seconds: sec, ...(await this.slice(level, b0, b1)) };
    } catch {
      for (const [lv, data] of this.whole) return { seconds: this.facts.levels[lv].seconds, first: 0, data };
      return null;
    }
  }

  async slice(level, b0, b1) {
    const ch = this.facts.channels;
    const kept = this.whole.get(level);
    if (kept) return { first: b0, data: kept.subarray(b0 * ch * 2, b1 * ch * 2) };
    if (levelBytes(this.facts, level) <= WHOLE) {
      if (!this.pending.has(level)) {
        const got = fetchLevel(this.url, this.facts, level);
        got.catch(() => this.pending.delete(level));
        this.pending.set(level, got);
      }
      const data = await this.pending.get(level);
      this.whole.set(level, data);
      return { first: b0, data: data.subarray(b0 * ch * 2, b1 * ch * 2) };
    }
    const c0 = Math.floor(b0 / CHUNK);
    const c1 = Math.floor(Math.max(b0, b1 - 1) / CHUNK);
    const parts = [];
    for (let c = c0; c <= c1; c++) parts.push(this.chunk(level, c));
    const got = await Promise.all(parts);
    const out = new Int8Array(got.reduce((n, p) => n + p.length, 0));
    let at = 0;
    for (const p of got) { out.set(p, at); at += p.length; }
    const skip = (b0 - c0 * CHUNK) * ch * 2;
    return { first: b0, data: out.subarray(skip, skip + (b1 - b0) * ch * 2) };
  }

  chunk(level, c) {
    const key = `${level}:${c}`;
    let hit = this.chunks.get(key);
    if (!hit) {
      const ch = this.facts.channels;
      const end = Math.min((c + 1) * CHUNK, this.facts.levels[level].buckets);
      hit = fetchPeakRange(this.url, level, c * CHUNK * ch * 2, end * ch * 2);
      hit.catch(() => this.chunks.delete(key));
      this.chunks.set(key, hit);
      if (this.chunks.size > MAX_CHUNKS) this.chunks.delete(this.chunks.keys().next().value);
    }
    return hit;
  }
}

// Draw `view` (from Peaks.view) for [t0, t1) on `canvas`, one lane per channel.
export function drawWave(canvas, channels, view, t0, t1) {
  const dpr = window.devicePixelRatio || 1;
  const w = Math.max(1, Math.round(canvas.clientWidth * dpr));
  const h = Math.max(1, Math.round(canvas.clientHeight * dpr));
  if (canvas.width !== w) canvas.width = w;
  if (canvas.height !== h) canvas.height = h;
  const g = canvas.getContext("2d");
  g.clearRect(0, 0, w, h);
  const lane = h / channels;
  g.fillStyle = "#c9ced6";
  for (let c = 0; c < channels; c++) {
    g.fillRect(0, Math.round(lane * c + lane / 2), w, 1);
    if (c) g.fillRect(0, Math.round(lane * c), w, 1);
  }
  if (!view || t1 <= t0) return;
  const { seconds: sec, first, data } = view;
  const n = Math.floor(data.length / (channels * 2));
  const k = (lane / 2 - 1) / 127;
  g.fillStyle = "#3b6fb6";
  for (let x = 0; x < w; x++) {
    const a = t0 + (x / w) * (t1 - t0);
    const b = t0 + ((x + 1) / w) * (t1 - t0);
    const i0 = Math.max(0, Math.floor(a / sec) - first);
    const i1 = Math.min(n, Math.max(i0 + 1, Math.ceil(b / sec) - first));
    for (let c = 0; c < channels; c++) {
      let lo = 127;
      let hi = -128;
      for (let i = i0; i < i1; i++) {
        const at = (i * channels + c) * 2;
        if (data[at] < lo) lo = data[at];
        if (data[at + 1] > hi) hi = data[at + 1];
      }
      if (lo > hi) continue;
      const mid = lane * c + lane / 2;
      g.fillRect(x, Math.round(mid - hi * k), 1, Math.max(1, Math.round((hi - lo) * k)));
    }
  }
}
