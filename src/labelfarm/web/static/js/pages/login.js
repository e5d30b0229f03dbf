// Sign in through the JSON API; the server sets the session cookie.
import { api, ApiError } from "../lib/net.js";

const form = document.getElementById("login");
const error = form.querySelector(".error");

if (new URLSearchParams(location.search).has("signed_out") && "caches" in self) {
  caches.delete("lf-pages"); // pages kept for offline use belong to the one who left
}

// The server already checked the target (pages/redirects.py); the browser's own URL parser
// checks it again, so that nothing it reads as another host is followed.
function sameOriginPath(target) {
  if (!target || !/^\/(?![\/\\])/.test(target) || /[\u0000-\u001f\u007f-\u009f\\]/.test(target)) return "/";
  try {
    const url = new URL(target, location.origin);
    if (url.origin === location.origin) return url.pathname + url.search + url.hash;
  } catch {
    // not a URL at all
  }
  return "/";
}

form.addEventListener("submit", async (e) => {
  e.preventDefault();
  error.hidden = true;
  const data = new FormData(form);
  try {
    await api("POST", "/api/v1/auth/login", { username: data.get("username"), password: data.get("password") });
    location.assign(sameOriginPath(form.dataset.next));
  } catch (err) {
    if (!(err instanceof ApiError)) error.textContent = error.dataset.msgOffline;
    else if (err.status === 429 || err.status === 503) error.textContent = error.dataset.msgThrottled;
    else error.textContent = error.dataset.msgFailed;
    error.hidden = false;
  }
});
