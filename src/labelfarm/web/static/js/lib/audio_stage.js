// The audio item stage: the waveform from the server's peaks (one lane per channel), the
// low-bitrate Opus copy playing in an <audio> element (from the copy kept on the device when
// there is one, else streamed), a playhead, click to seek, zoom and pan. A field draws its
// regions on it (setRegions) and hears of clicks and border drags through `handlers`.
import { t } from "./i18n.js";
import { isOnline } from "./net.js";
import { audioUrl, fetchFacts } from "./audio_fetch.js";
import { clock, Transport } from "./transport.js";
import { drawWave, Peaks } from "./waveform.js";

const LANE_PX = 84;
const MAX_ZOOM_SECONDS = 0.5; // the narrowest view

export function audioStage(entry) {
  const el = document.createElement("div");
  el.className = "stage stage-audio";
  const stage = {
    el, kind: "audio", img: null, audio: null, transport: null, facts: null, ready: null,
    view: { t0: 0, t1: 0 }, handlers: {}, regions: [],
  };
  const loading = document.createElement("p");
  loading.className = "loading";
  loading.textContent = t("annotate.loading");
  el.append(loading);
  stage.ready = (entry.ready || Promise.resolve())
    .then(() => open(stage, entry))
    .catch((err) => {
      console.warn(err);
      loading.textContent = isOnline() ? t("annotate.media_failed") : t("audio.offline");
    })
    .then(() => stage);
  return stage;
}

async function open(stage, entry) {
  const url = entry.task.media_url;
  const kept = entry.audio || {};
  const facts = kept.facts || await fetchFacts(url);
  const peaks = new Peaks(url, facts, kept.peaks ? { level: kept.level, data: new Int8Array(kept.peaks) } : null);
  const audio = document.createElement("audio");
  audio.preload = kept.blob ? "auto" : "metadata";
  if (kept.blob) {
    if (!entry.audioUrl) entry.audioUrl = URL.createObjectURL(kept.blob);
    audio.src = entry.audioUrl;
  } else if (isOnline()) {
    audio.src = audioUrl(url, "/stream");
  } else {
    throw new Error("offline, and the audio of this task is not kept on the device");
  }
  const transport = new Transport(audio, facts.duration);
  Object.assign(stage, { facts, transport, audio: transport, view: { t0: 0, t1: facts.duration } });
  build(stage, peaks, audio);
}

function node(tag, cls) {
  const el = document.createElement(tag);
  el.className = cls;
  return el;
}

// The bar (time, speed, state) and the waveform box (canvas, regions, playhead).
function layout(stage, audio) {
  const parts = { bar: node("div", "audio-bar"), time: node("span", "audio-time"), rate: node("span", "audio-rate"),
    state: node("span", "audio-state muted"), wave: node("div", "wave"), canvas: document.createElement("canvas"),
    layer: node("div", "regions"), head: node("div", "playhead") };
  parts.bar.append(parts.time, parts.rate, parts.state);
  parts.wave.style.height = `${Math.min(4, stage.facts.channels) * LANE_PX}px`;
  parts.wave.append(parts.canvas, parts.layer, parts.head);
  stage.el.replaceChildren(parts.bar, parts.wave, audio);
  return parts;
}

// A region on the waveform: its lane (channel), its span in the view, two border handles.
function regionNode(r, view, channels) {
  const lane = 100 / channels;
  const d = node("div", `region ${r.cls || ""}`);
  d.dataset.index = String(r.index);
  d.style.left = `${((r.start - view.t0) / (view.t1 - view.t0)) * 100}%`;
  d.style.width = `${((r.end - r.start) / (view.t1 - view.t0)) * 100}%`;
  d.style.top = `${Math.min(r.channel, channels - 1) * lane}%`;
  d.style.height = `${lane}%`;
  if (r.title) d.title = r.title;
  if ((r.end - r.start) / (view.t1 - view.t0) < 0.004) return d; // too narrow to drag a border
  for (const which of ["start", "end"]) {
    const edge = node("div", `edge ${which}`);
    edge.dataset.edge = which;
    d.append(edge);
  }
  return d;
}

// Regions less than a pixel apart on one channel drawn as one (a zoomed-out hour of short
// segments), except the current one; a few hundred regions are drawn as they are.
function merged(regions, px) {
  if (regions.length <= 300) return regions;
  const out = [];
  const open = new Map(); // channel -> the run being merged
  for (const r of [...regions].sort((a, b) => a.start - b.start)) {
    const run = open.get(r.channel);
    if ((r.cls || "").includes("current")) { out.push(r); continue; }
    if (run && r.start - run.end < px) {
      run.end = Math.max(run.end, r.end);
      run.title = "";
      run.index = -1;
      continue;
    }
    const copy = { ...r };
    open.set(r.channel, copy);
    out.push(copy);
  }
  return out;
}

function build(stage, peaks, audio) {
  const { facts, transport } = stage;
  const { time, rate, state, wave, canvas, layer, head } = layout(stage, audio);
  let drawn = 0;
  const redraw = async () => {
    const mine = ++drawn;
    const { t0, t1 } = stage.view;
    const v = await peaks.view(t0, t1, canvas.clientWidth * (window.devicePixelRatio || 1));
    if (mine === drawn) drawWave(canvas, facts.channels, v, t0, t1);
  };
  const paint = () => {
    const now = transport.time;
    const { t0, t1 } = stage.view;
    time.textContent = `${clock(now)} / ${clock(facts.duration)}`;
    rate.textContent = `${transport.rate}×`;
    state.textContent = transport.failed ? t("audio.cannot_play") : transport.playing ? t("audio.playing") : "";
    head.style.left = `${((now - t0) / (t1 - t0)) * 100}%`;
    head.hidden = now < t0 || now > t1;
  };
  const drawRegions = () => {
    const { t0, t1 } = stage.view;
    const shown = stage.regions.filter((r) => r.end > t0 && r.start < t1);
    const px = (t1 - t0) / Math.max(1, wave.clientWidth); // seconds a pixel
    layer.replaceChildren(...merged(shown, px).map((r) => regionNode(r, stage.view, facts.channels)));
  };
  stage.setRegions = (regions) => { stage.regions = regions; drawRegions(); };
  stage.setView = (t0, t1) => {
    const span = Math.min(facts.duration, Math.max(MAX_ZOOM_SECONDS, t1 - t0));
    const start = Math.min(Math.max(0, t0), Math.max(0, facts.duration - span));
    stage.view = { t0: start, t1: start + span };
    redraw();
    drawRegions();
    paint();
  };
  // Zoom in (+1) or out (-1) by two, the playhead staying where it is on the screen.
  stage.zoom = (dir) => {
    const { t0, t1 } = stage.view;
    const span = dir > 0 ? (t1 - t0) / 2 : (t1 - t0) * 2;
    const at = transport.time;
    const k = Math.min(1, Math.max(0, t1 > t0 ? (at - t0) / (t1 - t0) : 0.5));
    stage.setView(at - span * k, at - span * k + span);
  };
  stage.timeAt = (clientX) => {
    const r = wave.getBoundingClientRect();
    const k = Math.min(1, Math.max(0, (clientX - r.left) / Math.max(1, r.width)));
    return stage.view.t0 + k * (stage.view.t1 - stage.view.t0);
  };
  transport.onChange(() => { // keep the playhead in view while it plays
    const now = transport.time;
    const { t0, t1 } = stage.view;
    if (now < t0 || now > t1) stage.setView(now - (t1 - t0) * 0.1, now + (t1 - t0) * 0.9); else paint();
  });
  pointer(stage, wave);
  const resized = new ResizeObserver(() => redraw());
  resized.observe(canvas);
  stage.el.lfStop = () => { resized.disconnect(); transport.stop(); };
  stage.setView(0, facts.duration);
}

// Mouse and touch on the waveform: a click seeks (and picks the region under it, or the
// channel of the lane clicked), a region's border drags, the wheel pans (Ctrl + wheel zooms).
function pointer(stage, wave) {
  let drag = null;
  wave.addEventListener("pointerdown", (e) => {
    if (e.button !== 0) return;
    const region = e.target.closest(".region");
    const index = region ? Number(region.dataset.index) : -1;
    if (e.target.dataset.edge && index >= 0) {
      drag = { index, which: e.target.dataset.edge };
      wave.setPointerCapture(e.pointerId);
    } else {
      stage.transport.seek(stage.timeAt(e.clientX));
    }
    const r = wave.getBoundingClientRect();
    const lane = Math.min(stage.facts.channels - 1, Math.max(0, Math.floor(((e.clientY - r.top) / r.height) * stage.facts.channels)));
    if (stage.handlers.pick) stage.handlers.pick(index, lane);
    e.preventDefault();
  });
  wave.addEventListener("pointermove", (e) => {
    if (drag && stage.handlers.edge) stage.handlers.edge(drag.index, drag.which, stage.timeAt(e.clientX), false);
  });
  const up = (e) => {
    if (!drag) return;
    if (stage.handlers.edge) stage.handlers.edge(drag.index, drag.which, stage.timeAt(e.clientX), true);
    drag = null;
  };
  wave.addEventListener("pointerup", up);
  wave.addEventListener("pointercancel", up);
  wave.addEventListener("wheel", (e) => {
    const { t0, t1 } = stage.view;
    if (e.ctrlKey) {
      stage.zoom(e.deltaY < 0 ? 1 : -1);
    } else {
      const d = (e.deltaX || e.deltaY) / Math.max(1, wave.clientWidth);
      if (t1 - t0 >= stage.facts.duration) return;
      stage.setView(t0 + d * (t1 - t0), t1 + d * (t1 - t0));
    }
    e.preventDefault();
  }, { passive: false });
}

// Stop what a stage plays and watches (it is being taken off the screen).
export function stopStage(root) {
  for (const el of root.querySelectorAll(".stage-audio")) if (el.lfStop) el.lfStop();
  for (const a of root.querySelectorAll("audio")) a.pause();
}
