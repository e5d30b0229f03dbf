// What the annotate page tells annotators about themselves: their standing in the project
// (qualification progress, a quality band, or a pause with its reason), the answer to a
// training task, and how much they labelled. Standing comes from the server aggregated and
// delayed (GET …/standing, the `annotator` object of `next`), so it never moves on one
// submission and never tells which task was a check.
import { date, display, number, t, title } from "./i18n.js";
import { api } from "./net.js";

export const STOPPED = new Set(["paused", "failed"]);

function word(key, fallback) {
  const text = t(key);
  return text === key ? fallback : text;
}

// The standing line in the footer: "Qualification: 3 of 10 · Your quality: good (…)".
export function drawStanding(el, s) {
  const parts = [];
  if (s && s.state === "qualifying" && s.qualification) {
    parts.push(t("standing.qualification", { done: number(s.qualification.done), of: number(s.qualification.of) }));
  }
  if (s && s.quality && s.quality.band) {
    let text = t("standing.quality", { band: word(`standing.band_${s.quality.band}`, s.quality.band) });
    if (Number.isFinite(s.quality.checked)) {
      text += ` (${t("standing.quality_detail", { checked: number(s.quality.checked), date: date(s.quality.as_of) })})`;
    }
    parts.push(text);
  }
  el.textContent = parts.join(" · ");
  el.hidden = !parts.length;
  el.dataset.state = (s && s.state) || "";
}

// The "no tasks" panel of a paused or failed annotator: the state, its reason, what next.
export function drawStopped(section, s) {
  const [h2, help, reason] = section.querySelectorAll("h2, p");
  h2.textContent = s.state === "failed" ? t("standing.failed_title") : t("standing.paused_title");
  help.textContent = t("standing.stopped_help");
  // a rule's reason in the reader's language; a manager's in their own words
  const why = s.reason_key ? t(s.reason_key) : s.reason;
  reason.textContent = why ? t("standing.reason", { reason: why }) : "";
  reason.hidden = !why;
}

// The answer to a training task, shown after it was submitted (the next task is on screen).
export function drawFeedback(el, feedback, fields) {
  const head = document.createElement("p");
  head.textContent = feedback.correct ? t("feedback.right") : t("feedback.wrong");
  el.replaceChildren(head);
  const answer = feedback.answer;
  if (!feedback.correct && answer && typeof answer === "object") {
    const dl = document.createElement("dl");
    for (const f of fields) {
      if (!(f.name in answer)) continue;
      const dt = document.createElement("dt");
      dt.textContent = title(f);
      const dd = document.createElement("dd");
      dd.dir = "auto";
      dd.textContent = shown(f, answer[f.name]);
      dl.append(dt, dd);
    }
    el.append(dl);
  }
  el.className = `feedback ${feedback.correct ? "right" : "wrong"}`;
  el.hidden = false;
}

function shown(field, value) {
  if (typeof value === "string") return display(field, value);
  if (Array.isArray(value) && value.every((v) => typeof v === "string")) return value.map((v) => display(field, v)).join(", ");
  if (Array.isArray(value)) return t("annotate.boxes", { n: number(value.length) });
  return typeof value === "number" ? number(value) : JSON.stringify(value);
}

export function fetchStanding(projectId) {
  return api("GET", `/api/v1/projects/${projectId}/standing`);
}

// Labels of this annotator in the project: since local midnight, and in all.
export function fetchProgress(projectId) {
  const midnight = new Date();
  midnight.setHours(0, 0, 0, 0);
  return api("GET", `/api/v1/projects/${projectId}/progress/me?since=${encodeURIComponent(midnight.toISOString())}`);
}
