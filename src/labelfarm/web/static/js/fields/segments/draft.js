// Drafts of a transcript in progress, kept on the device (the task store in IndexedDB) under
// the task's handle, so that a reload or a crash loses at most a second of an hour's work.
// A draft is read back only for a fresh task (not a correction), and dropped after two weeks
// (a task's lease is shorter: a submitted task is not leased to the same annotator again).
import { byIndex, get, write } from "../../lib/idb.js";

const OWNER = "segments-draft";
const KEEP_MS = 14 * 24 * 3600 * 1000;
const key = (handle, field) => `draft:${field}:${handle}`;

export function saveDraft(handle, field, value) {
  const rec = { key: key(handle, field), owner: OWNER, value, saved: Date.now() };
  return write(["tasks"], (s) => s.tasks.put(rec)).catch(() => {});
}

export async function loadDraft(handle, field) {
  try {
    const rec = await get("tasks", key(handle, field));
    return rec && Array.isArray(rec.value) ? rec.value : null;
  } catch {
    return null;
  }
}

export async function pruneDrafts() {
  try {
    const old = (await byIndex("tasks", "owner", OWNER)).filter((r) => !(Date.now() - r.saved < KEEP_MS));
    if (old.length) await write(["tasks"], (s) => old.forEach((r) => s.tasks.delete(r.key)));
  } catch { /* no IndexedDB here: no drafts */ }
}
