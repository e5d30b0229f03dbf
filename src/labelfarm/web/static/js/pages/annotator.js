// One annotator's page, for managers: pause or resume them, send their labels back for
// relabelling (since a time, or all).
import { api, ApiError, setCsrf } from "../lib/net.js";

const section = document.getElementById("standing-actions");
const status = section.querySelector(".status");
const base = `/api/v1/projects/${section.dataset.project}/annotators/${section.dataset.user}`;
setCsrf(section.dataset.csrf);

function fail(err) {
  status.textContent = err instanceof ApiError ? err.message : section.dataset.msgOffline;
}

const standing = document.getElementById("standing-form");
standing.addEventListener("submit", async (e) => {
  e.preventDefault();
  const state = e.submitter?.value;
  if (!state) return;
  try {
    await api("PUT", base, { state, reason: standing.elements.reason.value.trim() });
    status.textContent = section.dataset.msgSaved;
    location.reload();
  } catch (err) { fail(err); }
});

const relabel = document.getElementById("relabel-form");
relabel.addEventListener("submit", async (e) => {
  e.preventDefault();
  if (!confirm(section.dataset.msgConfirm)) return;
  const since = relabel.elements.since.value;  // local time, as the reader sees it
  const body = { reason: relabel.elements.reason.value.trim(),
    since: since ? new Date(since).toISOString() : null };
  try {
    const done = await api("POST", `${base}/relabel`, body);
    status.textContent = section.dataset.msgRelabelled
      .replace("{items}", done.items).replace("{open}", done.items_open);
  } catch (err) { fail(err); }
});
