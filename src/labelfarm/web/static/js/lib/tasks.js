// The task queue: leased tasks kept ahead of the one on screen, with their images fetched
// (resized for the screen), stored in IndexedDB and decoded, so the next task shows at once.
// An audio task keeps its facts, one level of waveform peaks and its listening copy (up to
// a cap) instead. A checkout takes a larger batch under a longer lease for offline work.
import { fetchFacts, fetchLevel, fetchStream, storedLevel } from "./audio_fetch.js";
import { byIndex, write } from "./idb.js";
import { api, isOnline, Offline } from "./net.js";

const MAX_NEXT = 50;
const FETCHES = 2; // media downloads at a time

export class TaskQueue {
  constructor({ project, user, depth, sizes, onChange, audio = false }) {
    this.project = project;
    this.owner = `${user}:${project}`;
    this.depth = depth;
    this.size = pickSize(sizes);
    this.onChange = onChange;
    this.audio = audio;       // the project's items are audio files
    this.items = [];          // entries in order; entry = {key, task, seq, blob, width, height, img}
    this.known = new Set();   // task handles queued, on screen, or done in this page
    this.refilling = null;
    this.active = 0;
    this.waiting = [];
  }

  // A task is named by its handle (task.task), personal to this annotator and project.
  key(handle) { return `${this.owner}:${handle}`; }

  // Tasks kept from an earlier visit (reload, browser restart, offline checkout).
  async restore(doneKeys) {
    const stored = (await byIndex("tasks", "owner", this.owner)).sort((a, b) => a.seq - b.seq);
    const now = Date.now();
    const stale = [];
    for (const rec of stored) {
      const expired = Date.parse(rec.task.lease_expires_at) <= now;
      // a task kept by an earlier version (named by item id) comes back from the server
      const old = !rec.task.task;
      if (old || doneKeys.has(`${this.project}:${rec.task.task}`) || (expired && isOnline())) {
        stale.push(rec.key);
        continue;
      }
      this.add(rec, false);
    }
    if (stale.length) await write(["tasks"], (s) => stale.forEach((k) => s.tasks.delete(k)));
    this.onChange(this);
  }

  add(rec, persist = true) {
    if (this.known.has(rec.task.task)) return null;
    const entry = { key: rec.key || this.key(rec.task.task), task: rec.task, seq: rec.seq || Date.now() * 1000 + this.items.length,
      blob: rec.blob || null, width: rec.width || null, height: rec.height || null, img: null, ready: null,
      audio: rec.audio || null, decoded: Boolean(rec.audio && rec.audio.done) };
    this.known.add(entry.task.task);
    this.items.push(entry);
    if (persist) this.persist(entry);
    return entry;
  }

  persist(entry) {
    const { key, task, seq, blob, width, height, audio } = entry;
    return write(["tasks"], (s) => s.tasks.put({ key, owner: this.owner, task, seq, blob, width, height, audio }))
      .catch(() => {});
  }

  get length() { return this.items.length; }
  shift() { return this.items.shift() || null; }
  unshift(entry) { this.items.unshift(entry); }
  readyAhead() { return this.items.filter((e) => e.decoded || !e.task.media_url).length; }

  // Ask for more tasks when fewer than `depth` are queued. The server answers the leases we
  // hold first: the queued ones, the one on screen, and `held` more that are done here but
  // whose work still waits in the outbox; new tasks come after those.
  refill(held) {
    if (this.refilling || this.items.length >= this.depth || !isOnline()) return this.refilling;
    const n = Math.min(MAX_NEXT, this.depth + 1 + held);
    this.refilling = this.lease("next", { n })
      .catch((err) => { if (!(err instanceof Offline)) console.warn(err); })
      .finally(() => { this.refilling = null; this.onChange(this); });
    return this.refilling;
  }

  async checkout(n, onProgress) {
    const before = this.items.length;
    await this.lease("checkout", { n });
    const fresh = this.items.slice(before);
    let got = 0;
    await Promise.all(fresh.map((e) => this.media(e).then(() => onProgress(++got, fresh.length))));
    return fresh.length;
  }

  async lease(verb, body) {
    const answer = await api("POST", `/api/v1/projects/${this.project}/${verb}`, body);
    if (answer.annotator && this.onStanding) this.onStanding(answer.annotator);
    for (const task of answer.tasks) {
      const entry = this.add({ task });
      if (entry && this.items.indexOf(entry) < this.depth + 1) this.prepare(entry);
    }
    this.onChange(this);
  }

  // Fetch and decode the first entries' images so that showing them costs nothing.
  warm() {
    this.items.slice(0, this.depth + 1).forEach((e) => this.prepare(e));
  }

  prepare(entry) {
    if (!entry.ready && this.audio) {
      // ready to draw with the facts and peaks; the listening copy follows for a task still
      // queued (one already on screen streams it instead of downloading it all at once)
      const queued = this.items.includes(entry);
      entry.ready = this.audioFacts(entry)
        .then(() => { if (queued) this.audioStream(entry).catch(() => {}); }).catch(() => null);
    } else if (!entry.ready) {
      entry.ready = this.media(entry).then(() => decode(entry)).catch(() => null);
    }
    return entry.ready;
  }

  async media(entry) {
    const url = entry.task.media_url;
    if (this.audio) {
      await this.audioFacts(entry);
      await this.audioStream(entry);
      return;
    }
    if (!url || entry.blob) return;
    await this.slot();
    try {
      // a path on this origin, or an absolute URL on the media origin (LABELFARM_MEDIA_ORIGIN)
      const resized = url.replace(/\/media\/tasks\/(\d+)\/([\w-]+)\?/, `/media/tasks/$1/$2/fit/${this.size}?`);
      let response = await fetch(resized, { credentials: "same-origin" });
      if (!response.ok && response.status !== 403) response = await fetch(url, { credentials: "same-origin" });
      if (!response.ok) throw new Error(`media ${response.status}`);
      entry.width = Number(response.headers.get("X-Image-Width")) || null;
      entry.height = Number(response.headers.get("X-Image-Height")) || null;
      entry.blob = await response.blob();
      this.persist(entry);
    } finally {
      this.release();
    }
  }

  async audioFacts(entry) {
    const url = entry.task.media_url;
    if (!url || (entry.audio && entry.audio.facts)) return;
    const facts = await fetchFacts(url);
    const level = storedLevel(facts);
    const data = await fetchLevel(url, facts, level);
    const peaks = data.buffer.slice(data.byteOffset, data.byteOffset + data.byteLength);
    entry.audio = { facts, level, peaks, blob: null, done: false };
    this.persist(entry);
  }

  // The Opus copy, kept when it is at most STREAM_CAP (a longer file plays online only).
  async audioStream(entry) {
    if (!entry.audio || entry.audio.done) return;
    await this.slot();
    try {
      const blob = await fetchStream(entry.task.media_url);
      entry.audio = { ...entry.audio, blob, done: true };
      entry.decoded = true;
      this.persist(entry);
    } finally {
      this.release();
    }
  }

  async slot() {
    if (this.active < FETCHES) { this.active += 1; return; }
    await new Promise((resolve) => this.waiting.push(resolve));
  }

  release() {
    const next = this.waiting.shift();
    if (next) next(); else this.active -= 1;
  }
}

async function decode(entry) {
  if (!entry.blob || entry.img) return;
  const img = new Image();
  img.alt = "";
  img.src = URL.createObjectURL(entry.blob);
  try {
    await img.decode();
  } catch {
    // a damaged image is shown as far as the browser draws it; what is no image at all
    // (an audio file, say) is not shown, and its task cannot be submitted
    if (!img.naturalWidth) { URL.revokeObjectURL(img.src); return; }
  }
  if (!entry.width) { entry.width = img.naturalWidth; entry.height = img.naturalHeight; }
  entry.img = img;
  entry.decoded = true;
}

// The smallest resize bucket that covers the image area of this screen.
function pickSize(sizes) {
  const dpr = window.devicePixelRatio || 1;
  const need = Math.max(innerWidth - 380, innerHeight - 190) * dpr;
  return sizes.find((s) => s >= need) || sizes[sizes.length - 1];
}

export function release(entry) {
  if (entry && entry.img) URL.revokeObjectURL(entry.img.src);
  if (entry && entry.audioUrl) { URL.revokeObjectURL(entry.audioUrl); entry.audioUrl = null; }
  if (entry) { entry.img = null; entry.decoded = false; entry.ready = null; }
}
