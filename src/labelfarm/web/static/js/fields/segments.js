// segments: a transcript of an audio item as time ranges with text, speaker, languages and
// event tags, drawn on the waveform and listed as a conversation. Keyboard first; the Alt
// (Option) chords work in a text box too, the plain keys outside one:
//   Alt K play/pause · Alt J back 2 s · Alt L on 2 s · Alt R replay the segment
//   Alt − / Alt = slower / faster (0.5×–2×) · Alt I / Alt O zoom in / out
//   Alt N new segment at the playhead · Alt S split at the playhead (at the caret's text)
//   Alt M merge with the next · Alt [ / Alt ] start / end to the playhead
//   Alt , / Alt . move the start, Alt ; / Alt ' move the end (⇧: by 0.5 s)
//   Alt ↑ / Alt ↓ previous / next segment · Alt 1–9 speaker · Alt ⇧ 1–9 language
//   Alt T, then 1–9 event tag · Alt C next channel · Alt Delete delete the segment
//   Ctrl Z undo · Ctrl ⇧ Z or Ctrl Y redo · Enter in a text box: next segment's text
//   outside a text box: Space play/pause, ← → seek 1 s (⇧ 5 s), [ ] select, 1–9 speaker
// Text boxes take no key while an input method composes. Editing a segment's text drops
// its ASR mark and word timings.
import { t } from "../lib/i18n.js";
import { shortcut } from "../lib/keys.js";
import { section } from "./section.js";
import { loadDraft, pruneDrafts, saveDraft } from "./segments/draft.js";
import { createList } from "./segments/list.js";
import { Edits, toValue } from "./segments/model.js";

const NUDGE = 0.05;
const DRAFT_MS = 1000; // a draft is written this long after the last change
const PLAYER = new Set(["KeyK", "KeyJ", "KeyL", "KeyR", "Minus", "Equal", "KeyI", "KeyO", "ArrowLeft", "ArrowRight"]);

export function create(field, env) {
  const frame = section(field);
  const edits = new Edits(field);
  let cur = null;       // the selected segment's id
  let stage = null;     // the audio stage, once its audio is ready
  let token = 0;
  let unlisten = null;
  let playing = null;   // the id of the segment under the playhead
  let menu = false;     // Alt T pressed: the next digit picks an event tag
  let dragging = false;
  let stale = false;    // an ASR mark to take off the screen
  let handle = null;    // the task's handle: where its draft is kept
  let saving = 0;
  let lane0 = 0;        // the channel a new segment goes to when none is selected

  const seg = () => edits.find(cur);
  const now = () => (stage ? stage.transport.time : 0);

  // Run `fn` on the selected segment as one undoable step.
  function edit(kind, fn, s = seg()) {
    if (!s) { say(t("audio.no_segment")); return; }
    edits.record(kind, cur);
    const result = fn(s);
    if (typeof result === "string") {
      edits.done.pop(); // nothing changed: no step to undo
      edits.last = null;
      say(t(result));
      return;
    }
    if (result && result.id) cur = result.id;
    changed();
  }

  function changed() {
    frame.changed();
    env.changed(widget);
    say("");
    draw();
    keep();
  }

  // Write a draft of the transcript a second after the last change.
  function keep() {
    clearTimeout(saving);
    if (!handle) return;
    const mine = handle;
    saving = setTimeout(() => saveDraft(mine, field.name, toValue(edits.segs) || []), DRAFT_MS);
  }

  function restore(task, mine) {
    loadDraft(task.task, field.name).then((draft) => {
      if (!draft || mine !== token || edits.done.length) return; // work begun here wins
      edits.load(draft, edits.duration, edits.channels);
      cur = edits.segs.length ? edits.segs[0].id : null;
      frame.changed();
      draw();
      say(t("audio.draft_restored"));
      if (frame.el.classList.contains("active")) widget.focus();
    });
  }

  function say(text) { list.say(text); }

  const on = {
    seek(id) { select(id); if (stage) stage.transport.seek(seg().start); },
    select,
    text(id, value, composing) {
      const s = edits.find(Number(id));
      if (!s) return;
      if (s.text !== value) {
        edits.record("text", cur, s.id);
        if (s.asr) stale = true; // its ASR mark goes: redrawn once no input method composes
        edits.setText(s, value);
        frame.changed();
        env.changed(widget);
        keep();
      }
      if (stale && !composing) { stale = false; draw(); }
    },
    speaker(name, exact = false) { edit("pick", (s) => { if (exact) s.speaker = name; else edits.setSpeaker(s, name); }); },
    language(tag) { edit("pick", (s) => edits.toggleLanguage(s, tag)); },
    languages(tags) { edit("pick", (s) => { s.language = [...new Set(tags)].slice(0, 8); }); },
    event(name) { edit("pick", (s) => edits.toggleEvent(s, name)); },
  };
  const list = createList(field, on);
  frame.el.append(list.panel, list.status, list.list);

  function select(id) {
    const n = Number(id);
    if (!edits.find(n)) return;
    if (cur !== n) { cur = n; draw(); }
    env.activate(widget, false);
  }

  function regions() {
    return edits.segs.map((s) => {
      const si = list.speakers.indexOf(s.speaker);
      const cls = [s.speaker ? `s${(si < 0 ? 7 : si) % 8}` : "none"];
      if (s.id === cur) cls.push("current");
      if (s.asr) cls.push("asr");
      return { start: s.start, end: s.end, channel: s.channel, index: s.id, cls: cls.join(" "), title: s.text };
    });
  }

  function draw() {
    list.render(edits.segs, cur, playing, edits.channels);
    if (stage) stage.setRegions(regions());
  }

  function onTime() {
    const under = edits.at(now());
    const id = under ? under.id : null;
    if (id !== playing) { playing = id; list.render(edits.segs, cur, playing, edits.channels); }
  }

  function focusBox(id, caret = null) {
    const box = list.box(id);
    if (!box) return;
    box.focus({ preventScroll: false });
    const at = caret === null ? box.value.length : caret;
    box.setSelectionRange(at, at);
  }

  function step(dir, focus) {
    const segs = edits.segs;
    if (!segs.length) return;
    const i = segs.findIndex((s) => s.id === cur);
    const next = segs[i < 0 ? (dir > 0 ? 0 : segs.length - 1) : Math.min(segs.length - 1, Math.max(0, i + dir))];
    select(next.id);
    if (stage) stage.transport.seek(next.start);
    if (focus) focusBox(next.id);
  }

  // The names a digit picks: the field's list, else those used in this transcript so far.
  const choices = (fixed, used) => (fixed.length ? fixed : [...new Set(edits.segs.flatMap(used))]);

  function create() {
    if (!stage) return;
    const channel = seg() ? seg().channel : lane0;
    edits.record("create", cur);
    const made = edits.create(now(), channel);
    if (typeof made === "string") { edits.done.pop(); edits.last = null; say(t(made)); return; }
    cur = made.id;
    changed();
    focusBox(made.id);
  }

  function split(target) {
    if (!stage) return;
    const at = now();
    const s = edits.at(at, seg() ? seg().channel : null) || edits.at(at);
    if (!s) { say(t("audio.split_outside")); return; }
    const box = list.box(s.id);
    const caret = box && target === box ? box.selectionStart : null;
    edit("split", (x) => edits.split(x, at, caret), s);
    if (cur !== s.id) focusBox(cur, 0);
  }

  function merge() {
    const s = seg();
    const join = s ? s.text.trim().length : 0;
    edit("merge", (x) => edits.merge(x));
    if (s && cur === s.id) focusBox(s.id, join);
  }

  function transport(fn) { if (stage) fn(stage.transport); }

  const ALT = {
    KeyK: () => transport((p) => p.toggle()),
    KeyJ: () => transport((p) => p.seek(p.time - 2)),
    KeyL: () => transport((p) => p.seek(p.time + 2)),
    ArrowLeft: (e) => transport((p) => p.seek(p.time - (e.shiftKey ? 5 : 1))), // not the browser's Back
    ArrowRight: (e) => transport((p) => p.seek(p.time + (e.shiftKey ? 5 : 1))),
    KeyR: () => transport((p) => { const s = seg() || edits.at(p.time); if (s) p.play(s.start, s.end); }),
    Minus: () => transport((p) => p.step(-1)),
    Equal: () => transport((p) => p.step(1)),
    KeyI: () => stage && stage.zoom(1),
    KeyO: () => stage && stage.zoom(-1),
    KeyN: create,
    KeyS: (e) => split(e.target),
    KeyM: merge,
    BracketLeft: () => edit("move", (s) => edits.move(s, "start", now())),
    BracketRight: () => edit("move", (s) => edits.move(s, "end", now())),
    Comma: (e) => edit("move", (s) => edits.move(s, "start", s.start - NUDGE * (e.shiftKey ? 10 : 1))),
    Period: (e) => edit("move", (s) => edits.move(s, "start", s.start + NUDGE * (e.shiftKey ? 10 : 1))),
    Semicolon: (e) => edit("move", (s) => edits.move(s, "end", s.end - NUDGE * (e.shiftKey ? 10 : 1))),
    Quote: (e) => edit("move", (s) => edits.move(s, "end", s.end + NUDGE * (e.shiftKey ? 10 : 1))),
    ArrowUp: () => step(-1, true),
    ArrowDown: () => step(1, true),
    KeyT: () => { menu = !menu; list.menu(menu); say(menu ? t("audio.pick_event") : ""); },
    KeyC: () => edits.channels > 1 && edit("channel", (s) => edits.setChannel(s, s.channel + 1)),
    Delete: () => remove(),
  };

  function remove() {
    const s = seg();
    if (!s) return;
    const i = edits.segs.indexOf(s);
    edit("delete", (x) => edits.remove(x));
    const near = edits.segs[Math.min(i, edits.segs.length - 1)];
    cur = near ? near.id : null;
    draw();
    frame.el.focus({ preventScroll: true });
  }

  function digit(e) {
    const m = /^(?:Digit|Numpad)([1-9])$/.exec(e.code);
    return m ? Number(m[1]) - 1 : -1;
  }

  function pickByDigit(i, shift) {
    if (menu) {
      menu = false;
      list.menu(false);
      if (i < list.events.length) on.event(list.events[i]);
      return;
    }
    const names = shift ? choices(list.languages, (s) => s.language) : choices(list.speakers, (s) => (s.speaker ? [s.speaker] : []));
    if (i >= names.length) return;
    if (shift) on.language(names[i]); else on.speaker(names[i]);
  }

  // Keys of this field, before the page's own (a window capture listener): Alt chords and
  // undo anywhere in the field, Enter and the event menu in its text boxes.
  function onKey(e) {
    if (!stage || e.isComposing || e.keyCode === 229 || e.defaultPrevented) return;
    if (document.querySelector("dialog[open]")) return;
    const mine = frame.el.classList.contains("active") || frame.el.contains(document.activeElement);
    if (!mine) { // another field is active: the player's keys still work (in the first transcript)
      const first = !document.querySelector(".field-segments.active") && document.querySelector(".field-segments") === frame.el;
      if (first && e.altKey && !e.ctrlKey && !e.metaKey && PLAYER.has(e.code)) {
        e.preventDefault();
        e.stopPropagation();
        ALT[e.code](e);
      }
      return;
    }
    const box = e.target.classList && e.target.classList.contains("seg-text");
    let act = null;
    if ((e.ctrlKey || e.metaKey) && !e.altKey && (e.code === "KeyZ" || e.code === "KeyY")
        && (box || !["INPUT", "TEXTAREA", "SELECT"].includes(e.target.tagName))) {
      act = () => undo(e.code === "KeyY" || e.shiftKey);
    } else if (e.altKey && !e.ctrlKey && !e.metaKey) {
      const i = digit(e);
      act = i >= 0 ? () => pickByDigit(i, e.shiftKey) : ALT[e.code] ? () => ALT[e.code](e) : null;
    } else if (menu && !e.ctrlKey && !e.metaKey) {
      const i = digit(e);
      act = i >= 0 ? () => pickByDigit(i, false) : e.key === "Escape" ? () => ALT.KeyT() : null;
      if (!act) { menu = false; list.menu(false); say(""); }
    } else if (box && e.key === "Enter" && !e.shiftKey && !e.ctrlKey && !e.metaKey) {
      act = () => nextBox();
    }
    if (!act) return;
    e.preventDefault();
    e.stopPropagation();
    act();
  }
  addEventListener("keydown", onKey, true);
  pruneDrafts();

  // Enter in a text box: the next segment's text, or out of the boxes after the last one
  // (where the next Enter submits).
  function nextBox() {
    const i = edits.segs.findIndex((s) => s.id === cur);
    if (i >= 0 && i < edits.segs.length - 1) step(1, true); else frame.el.focus({ preventScroll: true });
  }

  function undo(redo) {
    const back = edits.undo(cur, redo);
    if (back === undefined) return;
    cur = edits.find(back) ? back : (edits.segs[0] ? edits.segs[0].id : null);
    frame.changed();
    env.changed(widget);
    draw();
    keep();
    if (cur !== null) focusBox(cur);
  }

  function attach(s) {
    stage = s;
    edits.duration = s.facts.duration;
    edits.channels = s.facts.channels;
    s.handlers.pick = (id, lane) => {
      if (id >= 0) { select(id); return; }
      cur = null; // a click beside the segments: the next one is made in that lane
      lane0 = lane;
      draw();
      env.activate(widget, false);
    };
    s.handlers.edge = (id, which, time, done) => {
      const x = edits.find(id);
      if (!x) return;
      if (!dragging) edits.record("drag", cur);
      dragging = !done;
      cur = id;
      edits.move(x, which, time);
      if (done) changed(); else draw();
    };
    unlisten = s.transport.onChange(onTime);
    draw();
  }

  const widget = {
    field,
    el: frame.el,
    load(task, initial, prediction, stageInfo) {
      token += 1;
      clearTimeout(saving);
      handle = task && task.task ? task.task : null;
      if (unlisten) unlisten();
      unlisten = null;
      stage = null;
      menu = false;
      playing = null;
      lane0 = 0;
      list.clear();
      list.menu(false);
      edits.load(initial, Infinity, 1);
      cur = edits.segs.length ? edits.segs[0].id : null;
      frame.suggested(prediction && edits.segs.length ? prediction : null);
      draw();
      // a fresh task (a correction comes with its value and no prediction): its draft, if any
      if (handle && (initial === undefined || prediction)) restore(task, token);
      if (stageInfo && stageInfo.kind === "audio") {
        const mine = token;
        stageInfo.ready.then((s) => { if (mine === token && s.transport) attach(s); });
      } else {
        say(t("audio.no_audio"));
      }
    },
    value: () => toValue(edits.segs),
    focus() {
      if (cur !== null && list.box(cur)) focusBox(cur); else frame.el.focus({ preventScroll: true });
    },
    // plain keys outside a text box (the page calls this for its active field)
    key(e) {
      if (!stage) return false;
      const k = shortcut(e);
      const p = stage.transport;
      const i = digit(e);
      if (i >= 0 && !e.altKey) { pickByDigit(i, false); return true; }
      if (k === " ") { p.toggle(); return true; }
      if (k === "ArrowLeft" || k === "ArrowRight") {
        p.seek(p.time + (k === "ArrowLeft" ? -1 : 1) * (e.shiftKey ? 5 : 1));
        return true;
      }
      if (k === "[" || k === "]") { step(k === "]" ? 1 : -1, false); return true; }
      if (e.key === "Delete") { remove(); return true; }
      return false;
    },
    describe: () => t("audio.count", { n: edits.segs.length }),
  };
  return widget;
}
