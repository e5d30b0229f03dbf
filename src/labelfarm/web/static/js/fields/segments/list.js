// The conversation view of a transcript: one row per segment in time order (its times,
// speaker, languages, event tags, an ASR mark, and its text in a box of its own direction),
// and the pickers that act on the selected segment. Rows are kept across redraws, so a text
// box being typed in (an IME composition, too) is never replaced under the typist.
import { display, t } from "../../lib/i18n.js";
import { clock } from "../../lib/transport.js";

export const DEFAULT_EVENTS = ["noise", "music", "overlap", "unintelligible"];

function node(tag, cls, text) {
  const el = document.createElement(tag);
  if (cls) el.className = cls;
  if (text !== undefined) el.textContent = text;
  return el;
}

function chip(label, keyText) {
  const b = node("button", "chip");
  b.type = "button";
  b.tabIndex = -1;
  if (keyText) b.append(node("kbd", "", keyText), " ");
  b.append(node("span", "", label));
  b.setAttribute("aria-pressed", "false");
  return b;
}

// Grow text boxes to their content: all written, then all read, then all written, so that
// a thousand boxes cost one layout and not a thousand.
export function fit(...boxes) {
  for (const b of boxes) b.style.height = "auto";
  const heights = boxes.map((b) => b.scrollHeight);
  boxes.forEach((b, i) => { b.style.height = `${heights[i] + 2}px`; });
}

export function createList(field, on) {
  const speakers = field.speakers || [];
  const languages = field.languages || [];
  const events = field.events || DEFAULT_EVENTS;
  const rows = new Map(); // id -> {li, time, who, lang, tags, asr, box, composing}
  let restoring = false;
  const list = node("ol", "segments");
  list.setAttribute("aria-label", t("audio.segments"));
  const panel = node("div", "seg-pickers");
  const status = node("p", "seg-status muted");
  status.setAttribute("role", "status");

  const group = (title, names, keyOf, act, cls) => {
    const box = node("div", `seg-group ${cls}`);
    box.append(node("span", "seg-group-title", title));
    const buttons = names.map((name, i) => {
      const b = chip(display(field, name), i < 9 ? keyOf(i) : "");
      b.addEventListener("click", () => act(name));
      box.append(b);
      return b;
    });
    panel.append(box);
    return buttons;
  };
  const freeInput = (title, act, maxLength, placeholder) => {
    const label = node("label", "seg-group");
    label.append(node("span", "seg-group-title", title));
    const input = node("input", "seg-free");
    Object.assign(input, { type: "text", dir: "auto", maxLength, placeholder, autocomplete: "off" });
    input.addEventListener("change", () => act(input.value));
    label.append(input);
    panel.append(label);
    return input;
  };
  const speakerButtons = speakers.length
    ? group(t("audio.speaker"), speakers, (i) => `Alt ${i + 1}`, on.speaker, "speakers") : null;
  const speakerInput = speakers.length ? null
    : freeInput(t("audio.speaker"), (v) => on.speaker(v.trim() || null, true), 64, "");
  const languageButtons = languages.length
    ? group(t("audio.language"), languages, (i) => `Alt ⇧${i + 1}`, on.language, "languages") : null;
  const languageInput = languages.length ? null
    : freeInput(t("audio.language"), (v) => on.languages(v.split(/[\s,]+/).filter(Boolean)), 200, "ta-IN, en-IN");
  const eventButtons = group(t("audio.events"), events, (i) => `Alt T ${i + 1}`, on.event, "events");

  function row(seg) {
    const li = node("li", "seg");
    const head = node("div", "seg-head");
    const time = node("button", "seg-time");
    time.type = "button";
    time.tabIndex = -1;
    time.addEventListener("click", () => on.seek(seg.id));
    const who = node("span", "seg-speaker");
    const lang = node("span", "seg-lang");
    const tags = node("span", "seg-events");
    const asr = node("span", "badge asr", t("audio.asr"));
    asr.title = t("audio.asr_title");
    const lane = node("span", "seg-channel");
    head.append(time, lane, who, lang, tags, asr);
    const box = node("textarea", "seg-text");
    Object.assign(box, { dir: "auto", rows: 1, maxLength: field.max_text || 2000, spellcheck: false });
    box.setAttribute("aria-label", t("audio.text"));
    box.addEventListener("input", (e) => { fit(box); on.text(li.dataset.id, box.value, e.isComposing); });
    box.addEventListener("compositionstart", () => { rows.get(Number(li.dataset.id)).composing = true; });
    box.addEventListener("compositionend", () => {
      rows.get(Number(li.dataset.id)).composing = false;
      on.text(li.dataset.id, box.value, false);
    });
    box.addEventListener("focus", () => { if (!restoring) on.select(li.dataset.id); });
    li.append(head, box);
    li.addEventListener("pointerdown", (e) => { if (e.target !== box) on.select(li.dataset.id); });
    return { li, time, lane, who, lang, tags, asr, box };
  }

  function update(r, seg, cur, playing, channels) {
    r.li.classList.toggle("current", seg.id === cur);
    r.li.classList.toggle("playing", seg.id === playing);
    // the rest only when it changed: a long transcript redraws in a few milliseconds
    const sig = JSON.stringify([seg.id, seg.start, seg.end, seg.speaker, seg.language, seg.events, seg.asr, seg.channel, channels]);
    if (r.sig !== sig) {
      r.sig = sig;
      r.li.dataset.id = String(seg.id);
      r.li.dataset.channel = String(seg.channel);
      r.lane.hidden = channels < 2;
      r.lane.textContent = t("audio.channel", { n: seg.channel + 1 });
      r.li.classList.toggle("is-asr", Boolean(seg.asr));
      r.time.textContent = `${clock(seg.start)}–${clock(seg.end)}`;
      r.time.dataset.start = seg.start.toFixed(3);
      r.time.dataset.end = seg.end.toFixed(3);
      const si = speakers.indexOf(seg.speaker);
      r.who.className = `seg-speaker${seg.speaker ? ` s${(si < 0 ? 7 : si) % 8}` : " none"}`;
      r.who.textContent = seg.speaker ? display(field, seg.speaker) : t("audio.no_speaker");
      r.lang.textContent = seg.language.map((x) => display(field, x)).join(" + ");
      r.tags.textContent = seg.events.map((x) => `[${display(field, x)}]`).join(" ");
      r.asr.hidden = !seg.asr;
      r.box.lang = seg.language[0] || "";
    }
    if (r.box.value !== seg.text && !r.composing) {
      // an edit of the model (split, merge, undo): the caret stays where it was
      const focused = document.activeElement === r.box;
      const at = Math.min(r.box.selectionStart, seg.text.length);
      r.box.value = seg.text;
      if (focused) r.box.setSelectionRange(at, at);
      return true;
    }
    return false;
  }

  function render(segs, cur, playing, channels = 1) {
    const seen = new Set();
    const grow = []; // boxes new or with new text: fitted to it once in the page
    const order = segs.map((seg) => {
      let r = rows.get(seg.id);
      if (!r) {
        r = row(seg);
        rows.set(seg.id, r);
        r.box.value = seg.text;
        grow.push(r.box);
      }
      if (update(r, seg, cur, playing, channels)) grow.push(r.box);
      seen.add(seg.id);
      return r.li;
    });
    for (const [id, r] of rows) {
      if (!seen.has(id)) { r.li.remove(); rows.delete(id); }
    }
    const focused = document.activeElement;
    const sel = focused && focused.tagName === "TEXTAREA" ? [focused.selectionStart, focused.selectionEnd] : null;
    let prev = null;
    let moved = false;
    for (const li of order) { // only the rows out of place move (a split adds one)
      const at = prev ? prev.nextSibling : list.firstChild;
      if (at !== li) { list.insertBefore(li, at); moved = true; }
      prev = li;
    }
    if (moved && sel && focused.isConnected && document.activeElement !== focused) {
      restoring = true; // the box typed in keeps the focus; the selection stays as it is
      focused.focus({ preventScroll: true });
      focused.setSelectionRange(...sel);
      restoring = false;
    }
    if (grow.length) requestAnimationFrame(() => fit(...grow.filter((b) => b.isConnected)));
    drawPickers(segs.find((s) => s.id === cur) || null);
  }

  function drawPickers(seg) {
    const pressed = (buttons, names, has) => buttons && buttons.forEach((b, i) => b.setAttribute("aria-pressed", String(Boolean(seg && has(names[i])))));
    pressed(speakerButtons, speakers, (n) => seg.speaker === n);
    pressed(languageButtons, languages, (n) => seg.language.includes(n));
    pressed(eventButtons, events, (n) => seg.events.includes(n));
    if (speakerInput && document.activeElement !== speakerInput) speakerInput.value = seg && seg.speaker ? seg.speaker : "";
    if (languageInput && document.activeElement !== languageInput) languageInput.value = seg ? seg.language.join(", ") : "";
    panel.classList.toggle("idle", !seg);
  }

  return {
    list, panel, status, speakers, languages, events,
    render,
    box: (id) => (rows.get(id) ? rows.get(id).box : null),
    say(text) { status.textContent = text; },
    menu(open) { panel.classList.toggle("menu-events", open); },
    clear() { rows.clear(); list.replaceChildren(); status.textContent = ""; },
  };
}
