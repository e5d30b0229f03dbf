// The annotate page. Keys first: digits pick, Enter submits, S skips, B goes back to
// correct, G guidelines, ? shortcuts, O takes a batch offline, V verify mode (R rejects a
// prediction there; letters by their place on the keyboard, so they work on any layout). Submissions go to the outbox (IndexedDB) and
// on in the background; the next tasks wait prefetched and decoded. A task cannot be
// submitted before its image is on screen.
import { createFields } from "./fields/index.js";
import { digitIndex } from "./fields/section.js";
import { help, number, setMessages, t, title } from "./lib/i18n.js";
import { renderItem } from "./lib/item.js";
import { isOnline, onStatus, setCsrf, uuid } from "./lib/net.js";
import { Outbox } from "./lib/outbox.js";
import { shortcut } from "./lib/keys.js";
import { drawFeedback, drawStanding, drawStopped, fetchProgress, fetchStanding, STOPPED } from "./lib/standing.js";
import { release, TaskQueue } from "./lib/tasks.js";
import { createVerify } from "./lib/verify.js";

const boot = JSON.parse(document.getElementById("boot").textContent);
setMessages(boot.lang, boot.messages);
setCsrf(boot.csrf);
const project = boot.project;
const $ = (id) => document.getElementById(id);
const ui = {
  main: $("workspace"), item: $("item"), fields: $("fields"), message: $("message"), banner: $("banner"),
  empty: $("empty"), count: $("count"), net: $("net"), pending: $("pending"),
  feedback: $("feedback"), standing: $("standing"), progress: $("progress"),
  keys: $("keys-dialog"), guide: $("guide-dialog"), skip: $("skip-dialog"),
};
const HISTORY = 20;
const metrics = [];
let current = null;    // {entry, correction, started, media: "ready" | "loading" | "failed"}
let held = null;       // the fresh task set aside while correcting an earlier one
let history = [];      // [{entry, value, clientId}] most recent last
let histIdx = -1;
let active = null;
let standing = null;   // the server's word on this annotator (see lib/standing.js)
let progress = null;   // {today, total} labels from the server, plus `since` new ones here
let since = 0;

const env = {
  activate(widget, focus = true) {
    if (active) active.el.classList.remove("active");
    active = widget;
    widget.el.classList.add("active");
    if (focus) (widget.focus ? widget.focus() : widget.el.focus({ preventScroll: true }));
  },
  changed() { ui.message.hidden = true; },
};
const widgets = await createFields(project.fields, env);
ui.fields.append(...widgets.map((w) => w.el));
ui.fields.addEventListener("focusin", (e) => {
  const w = widgets.find((x) => x.el.contains(e.target));
  if (w && w !== active) env.activate(w, false);
});

const verify = createVerify($("verify"), $("verify-btn"), project.fields, boot.verify);
const outbox = new Outbox(boot.user.id, drawStatus);
const queue = new TaskQueue({ project: project.id, user: boot.user.id, depth: boot.prefetch, sizes: boot.sizes,
  audio: Object.values(project.data || {}).includes("audio"),
  onChange: () => {
    if (!current && queue.length && !stopped()) next(); else if (!current && !queue.refilling) showEmpty();
    drawStatus();
  } });
queue.onStanding = setStanding;
outbox.onFeedback = (feedback) => drawFeedback(ui.feedback, feedback, project.fields);

const stopped = () => Boolean(standing && STOPPED.has(standing.state));

// The tasks kept on this device and not labelled yet: one count for the footer and checkout.
function onDevice() {
  const mine = current && !current.correction ? [current.entry] : [];
  return [...mine, ...(held ? [held] : []), ...queue.items];
}

function setStanding(s) {
  standing = s;
  drawStanding(ui.standing, s);
  if (stopped() && current && !current.correction) {
    queue.unshift(current.entry); // kept for when work resumes
    current = null;
    showEmpty();
  }
}

async function refreshStanding() {
  try { setStanding(await fetchStanding(project.id)); } catch { /* offline, or no standing here */ }
}

async function refreshProgress() {
  const counted = since;
  try {
    const p = await fetchProgress(project.id);
    progress = { today: p.since, total: p.total };
    since -= counted;
    drawStatus();
  } catch { /* offline: shown when back */ }
}

function drawStatus() {
  const online = isOnline();
  ui.net.className = `net ${online ? "online" : "offline"}`;
  ui.net.textContent = online ? t("annotate.online") : t("annotate.offline");
  const n = outbox.count;
  ui.pending.className = `pending${n ? " waiting" : ""}`;
  ui.pending.textContent = (n ? t("annotate.pending", { n: number(n) }) : t("annotate.synced"))
    + (outbox.rejected ? ` · ${t("annotate.rejected", { n: number(outbox.rejected) })}` : "")
    + (outbox.state === "signed_out" ? ` · ${t("annotate.signed_out")}` : "");
  ui.count.textContent = t("annotate.count", { queued: number(onDevice().length) });
  ui.progress.textContent = progress
    ? t("annotate.progress", { today: number(progress.today + since), total: number(progress.total + since) }) : "";
}

function show(entry, { correction = null, keyTs = null } = {}) {
  const shownTask = { entry, correction, started: performance.now(), media: "loading" };
  current = shownTask;
  ui.empty.hidden = true;
  showControls(true);
  ui.message.hidden = true;
  ui.main.setAttribute("aria-busy", "false");
  queue.prepare(entry); // fetch and decode now if it was not yet (a task kept over a reload)
  const stage = renderItem(ui.item, entry, project.data);
  if (stage) {
    stage.ready.then((s) => { if (current === shownTask) current.media = s.img || s.audio ? "ready" : "failed"; });
  } else {
    shownTask.media = "ready";
  }
  const prediction = correction ? null : entry.task.prediction;
  const initial = correction ? correction.value : (prediction && prediction.value) || {};
  for (const w of widgets) {
    const v = initial[w.field.name];
    w.load(entry.task, v, prediction && v !== undefined ? prediction : null, stage);
  }
  // verify mode: a prediction that fills every required field, shown large to accept as it is
  const offer = verify.on && prediction ? collect() : null;
  shownTask.verify = Boolean(offer && !offer.missing);
  if (shownTask.verify) verify.show(prediction, offer.value); else verify.hide();
  ui.fields.hidden = shownTask.verify;
  ui.banner.hidden = !(correction || prediction);
  ui.banner.textContent = correction ? t("annotate.correcting")
    : shownTask.verify ? t("verify.banner") : prediction ? t("annotate.prefilled") : "";
  ui.banner.dataset.model = prediction ? prediction.model : "";
  env.activate(widgets[0], !shownTask.verify);
  const shown = () => requestAnimationFrame(() => setTimeout(() => {
    const ms = keyTs === null ? null : performance.now() - keyTs;
    metrics.push({ task: entry.task.task, ms });
    performance.mark("lf-task-shown", { detail: { task: entry.task.task, ms } });
  }, 0));
  if (stage && !stage.img) stage.ready.then(shown); else shown();
}

function next(keyTs = null) {
  const entry = stopped() ? null : queue.shift();
  if (entry) show(entry, { keyTs }); else current = null;
  queue.warm();
  queue.refill(outbox.count);
  if (!entry) showEmpty();
  drawStatus();
}

function showEmpty() {
  ui.item.replaceChildren();
  ui.banner.hidden = true;
  verify.hide();
  ui.main.setAttribute("aria-busy", String(Boolean(queue.refilling)));
  ui.empty.hidden = Boolean(queue.refilling) && !stopped();
  showControls(!stopped());
  if (stopped()) {
    drawStopped(ui.empty, standing);
    return;
  }
  ui.empty.querySelector("h2").textContent = t("annotate.empty_title");
  ui.empty.querySelector("p").textContent = isOnline() ? t("annotate.empty_text") : t("annotate.empty_offline");
  ui.empty.querySelector("p.reason").hidden = true;
}

// The fields and the buttons that act on a task: hidden while the annotator is paused.
function showControls(on) {
  ui.fields.hidden = !on;
  for (const id of ["submit-btn", "skip-btn", "back-btn", "checkout-btn"]) $(id).hidden = !on;
}

function say(text) {
  ui.message.textContent = text;
  ui.message.hidden = false;
}

function collect() {
  const value = {};
  for (const w of widgets) {
    const v = w.value();
    if (v === undefined) {
      if (w.field.required) return { missing: w };
    } else {
      value[w.field.name] = v;
    }
  }
  return { value };
}

function submit(keyTs) {
  if (!current || stopped()) return;
  if (current.media !== "ready") {
    say(current.media === "loading" ? t("annotate.media_loading") : t("annotate.media_blocked"));
    return;
  }
  const { value, missing } = collect();
  if (missing) {
    say(t("annotate.missing", { field: title(missing.field) }));
    env.activate(missing);
    return;
  }
  const { entry, correction, started } = current;
  const clientId = uuid();
  const body = { id: clientId, task: entry.task.task, value, duration_ms: Math.round(performance.now() - started),
    from_prediction: Boolean(!correction && entry.task.prediction) };
  if (current.verify) body.verified = true; // the prediction accepted unchanged (the server checks)
  if (correction) {
    const corrects = outbox.results.get(correction.clientId);
    if (corrects) body.corrects = corrects;
  }
  outbox.add({ id: clientId, kind: "submit", project: project.id, task: entry.task.task, body },
    correction ? null : entry.key).then(() => outbox.flush()).then(() => queue.refill(outbox.count));
  if (!correction) since += 1;
  ui.feedback.hidden = true;
  if (correction) {
    Object.assign(correction, { value, clientId });
    leaveCorrection(keyTs);
    return;
  }
  history.push({ entry, value, clientId });
  if (history.length > HISTORY) release(history.shift().entry);
  next(keyTs);
}

function back() {
  if (!history.length) return;
  if (current && current.correction) {
    if (histIdx <= 0) return;
    histIdx -= 1;
  } else {
    held = current ? current.entry : null;
    histIdx = history.length - 1;
  }
  const h = history[histIdx];
  show(h.entry, { correction: h });
}

function leaveCorrection(keyTs = null) {
  histIdx = -1;
  const entry = held;
  held = null;
  if (entry) show(entry, { keyTs }); else next(keyTs);
}

function openSkip() {
  if (!current || current.correction) return;
  ui.skip.querySelector("form").reset();
  ui.skip.returnValue = "";
  ui.skip.showModal();
}

ui.skip.addEventListener("keydown", (e) => {
  const i = digitIndex(e);
  const radios = ui.skip.querySelectorAll("input[type=radio]");
  if (e.target.name !== "note" && i >= 0 && i < radios.length) {
    radios[i].checked = true;
    e.preventDefault();
  } else if (e.key === "Enter") {
    e.preventDefault();
    ui.skip.close("ok");
  }
});
ui.skip.addEventListener("close", () => {
  if (ui.skip.returnValue !== "ok" || !current) return;
  const form = ui.skip.querySelector("form");
  const note = form.elements.note.value.trim();
  const reason = form.elements.reason.value + (note ? `: ${note}` : "");
  const { entry } = current;
  outbox.add({ id: uuid(), kind: "skip", project: project.id, task: entry.task.task, reason }, entry.key)
    .then(() => outbox.flush());
  next();
});

function toggle(dialog) {
  if (dialog.open) dialog.close(); else dialog.showModal();
}

function guidelines() {
  const box = $("guide-text");
  box.replaceChildren(project.guidelines || t("annotate.no_guidelines"));
  for (const f of project.fields) {
    const text = help(f);
    if (!text) continue;
    const h = document.createElement("h3");
    h.textContent = title(f);
    box.append(h, text);
  }
  toggle(ui.guide);
}

// Progress and result count the tasks on this device (as the footer does): how many have
// their media stored, of all those kept here.
async function checkout() {
  if (!isOnline()) {
    say(t("annotate.checkout_offline"));
    return;
  }
  const progressText = () => {
    const here = onDevice();
    const stored = here.filter((e) => e.blob || (e.audio && e.audio.done) || !e.task.media_url).length;
    ui.banner.textContent = t("annotate.checkout_progress", { done: number(stored), total: number(here.length) });
  };
  ui.banner.hidden = false;
  progressText();
  try {
    await queue.checkout(boot.checkout, progressText);
    ui.banner.textContent = t("annotate.checkout_done", { n: number(onDevice().length) });
  } catch {
    ui.banner.textContent = t("annotate.checkout_failed");
  }
  drawStatus();
}

// Reject the prediction on screen: the fields open, pre-filled with it, to correct it.
function reject() {
  if (!current || !current.verify) return;
  current.verify = false;
  verify.hide();
  ui.fields.hidden = false;
  ui.banner.textContent = t("annotate.prefilled");
  env.activate(widgets[0]);
}

function toggleVerify() {
  verify.toggle();
  if (!current || current.correction) return;
  if (verify.on) show(current.entry); else reject();
}

function nextField(step = 1) {
  const i = widgets.indexOf(active);
  env.activate(widgets[(i + step + widgets.length) % widgets.length]);
}

document.addEventListener("keydown", (e) => {
  if (e.defaultPrevented || e.isComposing) return;
  const key = shortcut(e);
  if (document.querySelector("dialog[open]")) {
    if ((key === "g" && ui.guide.open) || (key === "?" && ui.keys.open)) { e.preventDefault(); toggle(key === "g" ? ui.guide : ui.keys); }
    return;
  }
  const tag = e.target.tagName;
  if (tag === "INPUT" || tag === "TEXTAREA" || tag === "SELECT") {
    if (e.key === "Enter" && !(tag === "TEXTAREA" && !(e.ctrlKey || e.metaKey))) {
      e.preventDefault();
      submit(e.timeStamp);
    } else if (e.key === "Escape") {
      e.target.blur();
      if (active) active.el.focus({ preventScroll: true });
    }
    return;
  }
  if (e.ctrlKey || e.metaKey) return;
  if (current && active && !current.verify && active.key(e)) { e.preventDefault(); return; }
  if (active && active.input && /^[0-9.\-]$/.test(e.key) && active.field.type === "number") { active.focus(); return; }
  const actions = {
    Enter: () => submit(e.timeStamp), s: openSkip, b: back, g: guidelines, "?": () => toggle(ui.keys),
    o: checkout, f: () => nextField(1), F: () => nextField(-1), Escape: () => current && current.correction && leaveCorrection(),
    v: toggleVerify, r: reject,
  };
  const action = actions[key] || actions[key.toLowerCase()];
  if (action) { e.preventDefault(); action(); }
});

$("submit-btn").addEventListener("click", (e) => submit(e.timeStamp));
$("skip-btn").addEventListener("click", openSkip);
$("back-btn").addEventListener("click", back);
$("guide-btn").addEventListener("click", guidelines);
$("keys-btn").addEventListener("click", () => toggle(ui.keys));
$("checkout-btn").addEventListener("click", checkout);
$("verify-btn").addEventListener("click", toggleVerify);
$("accept-btn").addEventListener("click", (e) => submit(e.timeStamp));
$("reject-btn").addEventListener("click", reject);
document.querySelector("form[action='/logout']")?.addEventListener("submit", (e) => {
  if (outbox.count && !confirm(t("annotate.logout_pending", { n: outbox.count }))) e.preventDefault();
});
onStatus((online) => {
  drawStatus();
  if (!online) return;
  outbox.flush().then(() => queue.refill(outbox.count)).then(refreshProgress);
  if (current && current.media === "failed") {
    current.entry.ready = null; // try its media again
    show(current.entry, { correction: current.correction });
  }
});
setInterval(() => { if (isOnline() && !current) queue.refill(outbox.count); }, 15000);
setInterval(() => { if (isOnline() && !outbox.count) refreshProgress(); }, 300000); // a new day, other devices

// a label handed to the outbox is on disk a few milliseconds later: leaving the page in
// between would lose it, so the browser asks first
addEventListener("beforeunload", (e) => { if (outbox.unsaved) e.preventDefault(); });

window.lfPage = { metrics, pending: () => outbox.count, unsaved: () => outbox.unsaved, readyAhead: () => queue.readyAhead(),
  current: () => (current ? current.entry.task.task : null), flush: () => outbox.flush(),
  verifying: () => Boolean(current && current.verify),
  // the task on screen can be submitted: its media is shown (or it has none)
  shown: () => Boolean(current && current.media === "ready") };

(async () => {
  await outbox.init();
  const done = await outbox.taskKeys();
  for (const key of done) {
    const [p, task] = key.split(":");
    if (Number(p) === project.id) queue.known.add(task);
  }
  await queue.restore(done);
  if (!current && queue.length) next();
  queue.warm();
  drawStatus();
  if (isOnline()) {
    await refreshStanding();
    outbox.flush().then(() => queue.refill(outbox.count)).then(refreshProgress);
  }
  if (!current && !queue.length) next();
  if ("serviceWorker" in navigator) {
    // keep this page for offline use; later visits are kept by the service worker itself
    navigator.serviceWorker.register("/sw.js", { scope: "/" }).catch(() => {});
    if (!navigator.serviceWorker.controller) caches.open("lf-pages").then((c) => c.add(location.pathname)).catch(() => {});
  }
})();
