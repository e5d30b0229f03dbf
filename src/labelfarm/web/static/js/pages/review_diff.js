// The review page's word differences for transcripts (segments fields): between the current
// transcripts of the item's annotators, and between the ASR pre-fill and the final text.
// Words only in the first are struck out (diff-delete), only in the second underlined
// (diff-insert), substituted ones marked with both sides (diff-replace).
import { api, ApiError } from "../lib/net.js";

const boot = document.getElementById("transcript-diff-boot");
const msg = boot ? JSON.parse(boot.textContent) : {};

function el(tag, attrs = {}, ...children) {
  const node = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs)) {
    if (k === "class") node.className = v;
    else if (k.includes("-")) node.setAttribute(k, v); // data-*, aria-*
    else node[k] = v;
  }
  for (const c of children) if (c !== null && c !== undefined) node.append(c);
  return node;
}

function fill(text, values) {
  return text.replace(/\{(\w+)\}/g, (m, k) => (k in values ? String(values[k]) : m));
}

function name(who) {
  if (who === "asr") return msg.asr;
  if (who === "final") return msg.final;
  return who;
}

function runs(comparison) {
  const line = el("p", { class: "word-diff", dir: "auto" });
  for (const r of comparison.runs) {
    if (r.op === "equal") line.append(el("span", { class: "diff-equal" }, r.a), " ");
    else if (r.op === "delete") line.append(el("del", { class: "diff-delete" }, r.a), " ");
    else if (r.op === "insert") line.append(el("ins", { class: "diff-insert" }, r.b), " ");
    else {
      line.append(el("span", { class: "diff-replace" },
        el("del", { class: "diff-a" }, r.a), " → ", el("ins", { class: "diff-b" }, r.b)), " ");
    }
  }
  return line;
}

function comparisonBlock(c) {
  const head = el("p", { class: "diff-head" },
    el("span", { class: "diff-who", dir: "auto" }, `${name(c.a)} → ${name(c.b)}`), " ",
    el("span", { class: "muted" }, fill(msg.wer, { wer: `${(100 * c.wer).toFixed(1)}%`, errors: c.errors, words: c.words })));
  const block = el("div", { class: "diff-pair", "data-a": c.a, "data-b": c.b }, head, runs(c));
  if (c.truncated) block.append(el("p", { class: "muted" }, fill(msg.truncated, { n: 20000 })));
  return block;
}

// Append the differences of `item` (the review API's answer) to `panel`, for a project with
// a segments field; `base` is the review API's path.
export async function showDiffs(panel, base, item) {
  if (!boot || !item.fields.some((f) => f.type === "segments")) return;
  const section = el("section", { class: "transcript-diffs", "aria-live": "polite" }, el("h3", {}, msg.title));
  panel.append(section);
  let answer;
  try {
    answer = await api("GET", `${base}/${item.item.id}/diff`);
  } catch (err) {
    section.append(el("p", { class: "error" }, err instanceof ApiError ? err.message : msg.offline));
    return;
  }
  let shown = 0;
  for (const f of answer.fields) {
    if (answer.fields.length > 1) section.append(el("h4", { dir: "auto" }, f.field));
    if (f.annotators.length) {
      section.append(el("p", { class: "muted" }, msg.annotators));
      for (const c of f.annotators) section.append(comparisonBlock(c));
    }
    if (f.prefill.length) {
      section.append(el("p", { class: "muted" }, msg.prefill));
      for (const c of f.prefill) section.append(comparisonBlock(c));
    }
    shown += f.annotators.length + f.prefill.length;
  }
  section.append(el("p", { class: "muted" }, shown ? msg.legend : msg.none));
}
