// The annotate page. Keys first: digits pick, Enter submits, S skips, B goes back to
// correct, G guidelines, ? shortcuts, O takes a batch offline. Submissions go to the outbox
// (IndexedDB) and on in the background; the next tasks wait prefetched and decoded.
import { createField } from "./fields/index.js";
import { help, number, setMessages, t, title } from "./lib/i18n.js";
import { renderItem } from "./lib/item.js";
import { isOnline, onStatus, setCsrf, uuid } from "./lib/net.js";
import { Outbox } from "./lib/outbox.js";
import { release, TaskQueue } from "./lib/tasks.js";

const boot = JSON.parse(document.getElementById("boot").textContent);
setMessages(boot.lang, boot.messages);
setCsrf(boot.csrf);
const project = boot.project;
const $ = (id) => document.getElementById(id);
const ui = {
  main: $("workspace"), item: $("item"), fields: $("fields"), message: $("message"), banner: $("banner"),
  empty: $("empty"), count: $("count"), net: $("net"), pending: $("pending"),
  keys: $("keys-dialog"), guide: $("guide-dialog"), skip: $("skip-dialog"),
};
const HISTORY = 20;
const metrics = [];
let current = null;    // {entry, correction, started}
let held = null;       // the fresh task set aside while correcting an earlier one
let history = [];      // [{entry, value, clientId}] most recent last
let histIdx = -1;
let labelled = 0;
let active = null;

const env = {
  activate(widget, focus = true) {
    if (active) active.el.classList.remove("active");
    active = widget;
    widget.el.classList.add("active");
    if (focus) (widget.focus ? widget.focus() : widget.el.focus({ preventScroll: true }));
  },
  changed() { ui.message.hidden = true; },
};
const widgets = project.fields.map((f) => createField(f, env));
ui.fields.append(...widgets.map((w) => w.el));
ui.fields.addEventListener("focusin", (e) => {
  const w = widgets.find((x) => x.el.contains(e.target));
  if (w && w !== active) env.activate(w, false);
});

const outbox = new Outbox(boot.user.id, drawStatus);
const queue = new TaskQueue({ project: project.id, user: boot.user.id, depth: boot.prefetch, sizes: boot.sizes,
  onChange: () => {
    if (!current && queue.length) next(); else if (!current && !queue.refilling) showEmpty();
    drawStatus();
  } });

function drawStatus() {
  const online = isOnline();
  ui.net.className = `net ${online ? "online" : "offline"}`;
  ui.net.textContent = online ? t("annotate.online") : t("annotate.offline");
  const n = outbox.count;
  ui.pending.className = `pending${n ? " waiting" : ""}`;
  ui.pending.textContent = (n ? t("annotate.pending", { n: number(n) }) : t("annotate.synced"))
    + (outbox.rejected ? ` · ${t("annotate.rejected", { n: number(outbox.rejected) })}` : "")
    + (outbox.state === "signed_out" ? ` · ${t("annotate.signed_out")}` : "");
  ui.count.textContent = t("annotate.count", { n: number(labelled), queued: number(queue.length) });
}

function show(entry, { correction = null, keyTs = null } = {}) {
  current = { entry, correction, started: performance.now() };
  ui.empty.hidden = true;
  ui.message.hidden = true;
  ui.main.setAttribute("aria-busy", "false");
  const stage = renderItem(ui.item, entry, project.data);
  const prediction = correction ? null : entry.task.prediction;
  const initial = correction ? correction.value : (prediction && prediction.value) || {};
  for (const w of widgets) {
    const v = initial[w.field.name];
    w.load(entry.task, v, prediction && v !== undefined ? prediction : null, stage);
  }
  ui.banner.hidden = !(correction || prediction);
  ui.banner.textContent = correction ? t("annotate.correcting")
    : prediction ? t("annotate.prefilled") : "";
  ui.banner.dataset.model = prediction ? prediction.model : "";
  env.activate(widgets[0]);
  const shown = () => requestAnimationFrame(() => setTimeout(() => {
    const ms = keyTs === null ? null : performance.now() - keyTs;
    metrics.push({ item_id: entry.task.item_id, ms });
    performance.mark("lf-task-shown", { detail: { item_id: entry.task.item_id, ms } });
  }, 0));
  if (stage && !stage.img) stage.ready.then(shown); else shown();
}

function next(keyTs = null) {
  const entry = queue.shift();
  if (entry) show(entry, { keyTs }); else current = null;
  queue.warm();
  queue.refill(outbox.count);
  if (!entry) showEmpty();
  drawStatus();
}

function showEmpty() {
  ui.item.replaceChildren();
  ui.banner.hidden = true;
  ui.main.setAttribute("aria-busy", String(Boolean(queue.refilling)));
  ui.empty.hidden = Boolean(queue.refilling);
  ui.empty.querySelector("p").textContent = isOnline() ? t("annotate.empty_text") : t("annotate.empty_offline");
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
  if (!current) return;
  const { value, missing } = collect();
  if (missing) {
    ui.message.textContent = t("annotate.missing", { field: title(missing.field) });
    ui.message.hidden = false;
    env.activate(missing);
    return;
  }
  const { entry, correction, started } = current;
  const clientId = uuid();
  const body = { id: clientId, item_id: entry.task.item_id, value, duration_ms: Math.round(performance.now() - started),
    from_prediction: Boolean(!correction && entry.task.prediction) };
  if (correction) {
    const corrects = outbox.results.get(correction.clientId);
    if (corrects) body.corrects = corrects;
  }
  outbox.add({ id: clientId, kind: "submit", project: project.id, item_id: entry.task.item_id, body },
    correction ? null : entry.key).then(() => outbox.flush()).then(() => queue.refill(outbox.count));
  labelled += 1;
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
  const n = Number(e.key);
  const radios = ui.skip.querySelectorAll("input[type=radio]");
  if (e.target.name !== "note" && n >= 1 && n <= radios.length) {
    radios[n - 1].checked = true;
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
  outbox.add({ id: uuid(), kind: "skip", project: project.id, item_id: entry.task.item_id, reason }, entry.key)
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

async function checkout() {
  if (!isOnline()) {
    ui.message.textContent = t("annotate.checkout_offline");
    ui.message.hidden = false;
    return;
  }
  ui.banner.hidden = false;
  ui.banner.textContent = t("annotate.checkout_progress", { done: 0, total: boot.checkout });
  try {
    const n = await queue.checkout(boot.checkout, (done, total) => {
      ui.banner.textContent = t("annotate.checkout_progress", { done, total });
    });
    ui.banner.textContent = t("annotate.checkout_done", { n: number(n) });
  } catch {
    ui.banner.textContent = t("annotate.checkout_failed");
  }
}

function nextField(step = 1) {
  const i = widgets.indexOf(active);
  env.activate(widgets[(i + step + widgets.length) % widgets.length]);
}

document.addEventListener("keydown", (e) => {
  if (e.defaultPrevented || e.isComposing) return;
  if (document.querySelector("dialog[open]")) {
    if ((e.key === "g" && ui.guide.open) || (e.key === "?" && ui.keys.open)) { e.preventDefault(); toggle(e.key === "g" ? ui.guide : ui.keys); }
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
  if (current && active && active.key(e)) { e.preventDefault(); return; }
  if (active && active.input && /^[0-9.\-]$/.test(e.key) && active.field.type === "number") { active.focus(); return; }
  const actions = {
    Enter: () => submit(e.timeStamp), s: openSkip, b: back, g: guidelines, "?": () => toggle(ui.keys),
    o: checkout, f: () => nextField(1), F: () => nextField(-1), Escape: () => current && current.correction && leaveCorrection(),
  };
  const action = actions[e.key] || actions[e.key.toLowerCase()];
  if (action) { e.preventDefault(); action(); }
});

$("submit-btn").addEventListener("click", (e) => submit(e.timeStamp));
$("skip-btn").addEventListener("click", openSkip);
$("back-btn").addEventListener("click", back);
$("guide-btn").addEventListener("click", guidelines);
$("keys-btn").addEventListener("click", () => toggle(ui.keys));
$("checkout-btn").addEventListener("click", checkout);
document.querySelector("form[action='/logout']")?.addEventListener("submit", (e) => {
  if (outbox.count && !confirm(t("annotate.logout_pending", { n: outbox.count }))) e.preventDefault();
});
onStatus((online) => {
  drawStatus();
  if (online) outbox.flush().then(() => queue.refill(outbox.count));
});
setInterval(() => { if (isOnline() && !current) queue.refill(outbox.count); }, 15000);

window.lfPage = { metrics, pending: () => outbox.count, readyAhead: () => queue.readyAhead(),
  current: () => (current ? current.entry.task.item_id : null), flush: () => outbox.flush() };

(async () => {
  await outbox.init();
  const done = await outbox.itemIds();
  for (const key of done) {
    const [p, item] = key.split(":");
    if (Number(p) === project.id) queue.known.add(Number(item));
  }
  await queue.restore(done);
  if (!current && queue.length) next();
  queue.warm();
  drawStatus();
  if (isOnline()) outbox.flush().then(() => queue.refill(outbox.count));
  if (!current && !queue.length) next();
  if ("serviceWorker" in navigator) {
    // keep this page for offline use; later visits are kept by the service worker itself
    navigator.serviceWorker.register("/sw.js", { scope: "/" }).catch(() => {});
    if (!navigator.serviceWorker.controller) caches.open("lf-pages").then((c) => c.add(location.pathname)).catch(() => {});
  }
})();
