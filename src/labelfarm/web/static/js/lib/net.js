// Talking to the JSON API with the session's CSRF token, and knowing whether we are online.
let csrf = "";
const listeners = new Set();
let online = navigator.onLine;

export function setCsrf(token) { csrf = token; }
export function isOnline() { return online; }
export function onStatus(fn) { listeners.add(fn); }

function setOnline(value) {
  if (value === online) return;
  online = value;
  for (const fn of listeners) fn(online);
}

addEventListener("online", () => setOnline(true));
addEventListener("offline", () => setOnline(false));

export class ApiError extends Error {
  constructor(status, body) {
    super((body && body.error && body.error.message) || `HTTP ${status}`);
    this.status = status;
    this.body = body;
    this.details = (body && body.error && body.error.details) || [];
  }
}

// A network failure (no answer at all): the caller keeps the work and retries later.
export class Offline extends Error {}

export async function api(method, path, body, { timeout = 20000 } = {}) {
  const headers = { "X-CSRF-Token": csrf };
  let payload;
  if (body !== undefined) {
    headers["Content-Type"] = "application/json";
    payload = JSON.stringify(body);
  }
  const ctrl = new AbortController();
  const timer = setTimeout(() => ctrl.abort(), timeout);
  let response;
  try {
    response = await fetch(path, { method, headers, body: payload, credentials: "same-origin", signal: ctrl.signal });
  } catch (err) {
    setOnline(false);
    throw new Offline(String(err));
  } finally {
    clearTimeout(timer);
  }
  setOnline(true);
  const data = response.headers.get("content-type")?.includes("json") ? await response.json() : null;
  if (!response.ok) throw new ApiError(response.status, data);
  return data;
}

export function uuid() {
  if (crypto.randomUUID) return crypto.randomUUID();
  const b = crypto.getRandomValues(new Uint8Array(16));
  b[6] = (b[6] & 0x0f) | 0x40;
  b[8] = (b[8] & 0x3f) | 0x80;
  const h = [...b].map((x) => x.toString(16).padStart(2, "0")).join("");
  return `${h.slice(0, 8)}-${h.slice(8, 12)}-${h.slice(12, 16)}-${h.slice(16, 20)}-${h.slice(20)}`;
}
