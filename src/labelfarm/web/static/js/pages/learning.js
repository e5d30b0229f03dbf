// The learning page: open a correction round for a pair of the confusion report, close the
// open round, evaluate every version again; each through the JSON API, then the page reloads.
import { api, ApiError, setCsrf } from "../lib/net.js";

const root = document.getElementById("learning");
const status = document.getElementById("learning-status");
const base = `/api/v1/projects/${root.dataset.project}`;
setCsrf(root.dataset.csrf);

async function act(button, path, body, done) {
  button.disabled = true;
  status.classList.remove("error");
  try {
    await api("POST", path, body);
    status.textContent = done;
    location.reload();
  } catch (err) {
    status.textContent = err instanceof ApiError ? err.message : "The server could not be reached.";
    status.classList.add("error");
    button.disabled = false;
  }
}

root.addEventListener("click", (e) => {
  const button = e.target.closest("button[data-action]");
  if (!button) return;
  const { action } = button.dataset;
  if (action === "open") {
    const form = document.getElementById("round-form");
    const budget = Number(form.elements.budget.value);
    const body = { a: button.dataset.a, b: button.dataset.b, budget, train_after: form.elements.train_after.checked };
    act(button, `${base}/correction-rounds`, body, "Round opened.");
  } else if (action === "close") {
    act(button, `${base}/correction-rounds/close`, undefined, "Round closed.");
  } else if (action === "evaluate") {
    act(button, `${base}/confusion/evaluate`, undefined, "Evaluation jobs queued.");
  }
});
