// The segments of a transcript and the edits on them, apart from any drawing: create at the
// playhead, split, merge, move a border, delete, set text, speaker, languages and events;
// every edit undoable. Times are seconds rounded to the millisecond. A segment keeps an
// `id` here (never sent); its value is the segments field's shape (schema/segments.py).
const ms = (t) => Math.round(t * 1000) / 1000;
export const MIN_LEN = 0.05;   // the shortest segment an edit makes
export const NEW_LEN = 3;      // a new segment's length when nothing follows closer
const HISTORY = 300;
const TYPING_MS = 2000;        // typing in one segment within this undoes as one step

let nextId = 1;

function segment(s) {
  const out = {
    id: nextId++, start: ms(Number(s.start) || 0), end: ms(Number(s.end) || 0),
    text: typeof s.text === "string" ? s.text : "", speaker: typeof s.speaker === "string" ? s.speaker : null,
    language: Array.isArray(s.language) ? s.language.filter((x) => typeof x === "string") : [],
    events: Array.isArray(s.events) ? s.events.filter((x) => typeof x === "string") : [],
    channel: Number.isInteger(s.channel) && s.channel >= 0 ? s.channel : 0,
  };
  if (s.asr === true) out.asr = true;
  if (Array.isArray(s.words)) out.words = s.words.slice(0, 2000);
  return out;
}

export function byTime(a, b) { return a.start - b.start || a.channel - b.channel || a.end - b.end; }

// The value to submit: the field's shape, sorted by channel then start, text in NFC.
export function toValue(segs) {
  if (!segs.length) return undefined;
  return [...segs].sort((a, b) => a.channel - b.channel || a.start - b.start).map((s) => {
    const v = { start: s.start, end: s.end, text: s.text.normalize("NFC"), speaker: s.speaker,
      language: [...s.language], events: [...s.events], channel: s.channel };
    if (s.asr) v.asr = true;
    if (s.asr && s.words) v.words = s.words;
    return v;
  });
}

export class Edits {
  constructor(field) {
    this.field = field;
    this.segs = [];
    this.duration = Infinity;
    this.channels = 1;
    this.done = [];
    this.undone = [];
    this.last = null; // {kind, id, at} of the newest recorded step
  }

  load(value, duration, channels) {
    this.segs = Array.isArray(value) ? value.filter((s) => s && typeof s === "object").map(segment).sort(byTime) : [];
    this.duration = duration;
    this.channels = channels;
    this.done = [];
    this.undone = [];
    this.last = null;
  }

  find(id) { return this.segs.find((s) => s.id === id) || null; }
  get overlap() { return Boolean(this.field.allow_overlap); }

  // Save the state before an edit; `cur` is the selected segment's id, kept with it.
  record(kind, cur, id = null) {
    const now = Date.now();
    const l = this.last;
    if (kind === "text" && l && l.kind === "text" && l.id === id && now - l.at < TYPING_MS) {
      l.at = now;
      return;
    }
    this.done.push({ segs: JSON.stringify(this.segs), cur });
    if (this.done.length > HISTORY) this.done.shift();
    this.undone = [];
    this.last = { kind, id, at: now };
  }

  // Undo (or redo) one step; the id of the segment selected then, or undefined if none.
  undo(cur, redo = false) {
    const from = redo ? this.undone : this.done;
    const to = redo ? this.done : this.undone;
    const step = from.pop();
    if (!step) return undefined;
    to.push({ segs: JSON.stringify(this.segs), cur });
    this.segs = JSON.parse(step.segs);
    this.last = null;
    return step.cur;
  }

  // The segments before and after `seg` on its channel (by start), or null.
  around(seg) {
    const same = this.segs.filter((s) => s !== seg && s.channel === seg.channel);
    const prev = same.filter((s) => s.start <= seg.start).pop() || null;
    const next = same.find((s) => s.start > seg.start) || null;
    return { prev, next };
  }

  // The segment on `channel` under time `at`, or null.
  at(at, channel = null) {
    return this.segs.find((s) => (channel === null || s.channel === channel) && s.start <= at && at < s.end) || null;
  }

  // A new segment from `at` on `channel`, up to NEW_LEN long; its languages follow the
  // segment before it. Returns the segment or an error message key.
  create(at, channel) {
    if ((this.field.max_segments || 5000) <= this.segs.length) return "audio.too_many";
    const t0 = ms(at);
    const same = this.segs.filter((s) => s.channel === channel);
    if (!this.overlap && same.some((s) => s.start <= t0 && t0 < s.end)) return "audio.inside_segment";
    const next = this.overlap ? null : same.find((s) => s.start > t0);
    const end = ms(Math.min(t0 + NEW_LEN, this.duration, next ? next.start : Infinity));
    if (end - t0 < MIN_LEN) return "audio.no_room";
    const before = [...this.segs].sort(byTime).filter((s) => s.start < t0).pop();
    const seg = segment({ start: t0, end, text: "", language: before ? before.language : [], channel });
    this.segs.push(seg);
    this.segs.sort(byTime);
    return seg;
  }

  // Split `seg` at `at`. With `caret` (a position in its text) the text is cut there;
  // without, ASR words are shared out by their times, or the text stays in the first part.
  split(seg, at, caret = null) {
    const t = ms(at);
    if (t < seg.start + MIN_LEN || t > seg.end - MIN_LEN) return "audio.split_outside";
    const second = segment({ ...seg, start: t, text: "", asr: false, words: null });
    if (caret !== null) {
      second.text = seg.text.slice(caret).trim();
      seg.text = seg.text.slice(0, caret).trim();
      dropAsr(seg);
    } else if (seg.asr && seg.words && wordsText(seg.words) === squash(seg.text)) {
      const early = seg.words.filter((w) => w.start < t);
      const late = seg.words.filter((w) => w.start >= t);
      Object.assign(seg, { words: early, text: wordsText(early) });
      Object.assign(second, { asr: true, words: late, text: wordsText(late) });
    } else {
      dropAsr(seg);
    }
    seg.end = t;
    this.segs.push(second);
    this.segs.sort(byTime);
    return second;
  }

  // Merge `seg` with the next segment on its channel.
  merge(seg) {
    const { next } = this.around(seg);
    if (!next) return "audio.nothing_to_merge";
    seg.end = Math.max(seg.end, next.end);
    seg.text = [seg.text.trim(), next.text.trim()].filter(Boolean).join(" ");
    seg.speaker = seg.speaker ?? next.speaker;
    seg.language = [...new Set([...seg.language, ...next.language])];
    seg.events = [...new Set([...seg.events, ...next.events])];
    if (seg.asr && next.asr && seg.words && next.words) seg.words = [...seg.words, ...next.words];
    else dropAsr(seg);
    this.segs.splice(this.segs.indexOf(next), 1);
    return seg;
  }

  // Move a border ("start" or "end") of `seg` to `t`, kept inside the file, MIN_LEN from
  // the other border and off its neighbours unless the field allows overlap.
  move(seg, which, t) {
    const { prev, next } = this.around(seg);
    if (which === "start") {
      const lo = this.overlap || !prev ? 0 : prev.end;
      seg.start = ms(Math.min(Math.max(t, lo), seg.end - MIN_LEN));
    } else {
      const hi = Math.min(this.duration, this.overlap || !next ? Infinity : next.start);
      seg.end = ms(Math.max(Math.min(t, hi), seg.start + MIN_LEN));
    }
    this.segs.sort(byTime);
  }

  remove(seg) {
    const i = this.segs.indexOf(seg);
    if (i >= 0) this.segs.splice(i, 1);
  }

  setText(seg, text) {
    seg.text = text;
    dropAsr(seg);
  }

  setSpeaker(seg, name) {
    seg.speaker = seg.speaker === name ? null : name;
  }

  // Add a language tag (the first added is the main one) or take it away.
  toggleLanguage(seg, tag) {
    const i = seg.language.indexOf(tag);
    if (i >= 0) seg.language.splice(i, 1); else seg.language.push(tag);
  }

  toggleEvent(seg, name) {
    const i = seg.events.indexOf(name);
    if (i >= 0) seg.events.splice(i, 1); else seg.events.push(name);
  }

  setChannel(seg, channel) {
    seg.channel = ((channel % this.channels) + this.channels) % this.channels;
    this.segs.sort(byTime);
  }
}

function dropAsr(seg) {
  delete seg.asr;
  delete seg.words;
}

const squash = (text) => text.trim().split(/\s+/).filter(Boolean).join(" ");
const wordsText = (words) => squash(words.map((w) => String(w.word || "")).join(" "));
