// Fetching an audio task's listening material from the server: the facts (duration,
// channels, peak levels), a level of waveform peaks (whole, or a byte range of it), and the
// low-bitrate Opus copy. The routes sit under the task's signed media URL:
// {media}/audio, {media}/audio/peaks/{level}, {media}/audio/stream (same query string).

export const STREAM_CAP = 16 * 1024 * 1024; // the Opus copy kept on the device, per task
export const STORED_PEAKS_CAP = 64 * 1024;  // the peaks level kept on the device, per task
const FACTS_CAP = 64 * 1024;

// The URL of `suffix` ("", "/peaks/0", "/stream") for the file behind `mediaUrl`.
export function audioUrl(mediaUrl, suffix = "") {
  const q = mediaUrl.indexOf("?");
  const path = q < 0 ? mediaUrl : mediaUrl.slice(0, q);
  return `${path}/audio${suffix}${q < 0 ? "" : mediaUrl.slice(q)}`;
}

async function get(url, headers = {}) {
  const response = await fetch(url, { credentials: "same-origin", headers });
  if (!response.ok) throw new Error(`${url.split("?")[0]}: HTTP ${response.status}`);
  return response;
}

// The facts of the file, checked: {duration, sample_rate, channels, levels, stream}.
export async function fetchFacts(mediaUrl) {
  const response = await get(audioUrl(mediaUrl));
  const text = await response.text();
  if (text.length > FACTS_CAP) throw new Error("audio facts too large");
  return checkFacts(JSON.parse(text));
}

export function checkFacts(f) {
  const ok = f && Number.isFinite(f.duration) && f.duration >= 0 && Number.isInteger(f.channels)
    && f.channels >= 1 && f.channels <= 64 && Array.isArray(f.levels) && f.levels.length
    && f.levels.every((l) => l.seconds > 0 && Number.isInteger(l.buckets) && l.buckets >= 0);
  if (!ok) throw new Error("audio facts malformed");
  return f;
}

// The byte size of a whole peaks level.
export function levelBytes(facts, level) {
  return facts.levels[level].buckets * facts.channels * 2;
}

// The level kept on the device: the finest one whose whole file fits STORED_PEAKS_CAP (so a
// short clip draws sharp offline), else the coarsest.
export function storedLevel(facts) {
  for (let i = 0; i < facts.levels.length; i++) {
    if (levelBytes(facts, i) <= STORED_PEAKS_CAP) return i;
  }
  return facts.levels.length - 1;
}

// A whole peaks level as an Int8Array.
export async function fetchLevel(mediaUrl, facts, level) {
  const want = levelBytes(facts, level);
  const buf = await (await get(audioUrl(mediaUrl, `/peaks/${level}`))).arrayBuffer();
  return new Int8Array(buf, 0, Math.min(want, buf.byteLength));
}

// Bytes [from, to) of a peaks level; a server that ignores Range sends all, which is cut.
export async function fetchPeakRange(mediaUrl, level, from, to) {
  const response = await get(audioUrl(mediaUrl, `/peaks/${level}`), { Range: `bytes=${from}-${to - 1}` });
  const buf = await response.arrayBuffer();
  if (response.status === 206) return new Int8Array(buf);
  return new Int8Array(buf.slice(from, to));
}

// The Opus copy as a Blob, or null when it is larger than `cap` (it then streams online only).
export async function fetchStream(mediaUrl, cap = STREAM_CAP) {
  const response = await get(audioUrl(mediaUrl, "/stream"));
  const size = Number(response.headers.get("Content-Length"));
  if (size > cap) {
    response.body?.cancel();
    return null;
  }
  const reader = response.body.getReader();
  const parts = [];
  let got = 0;
  for (;;) {
    const { done, value } = await reader.read();
    if (done) break;
    got += value.byteLength;
    if (got > cap) {
      reader.cancel();
      return null;
    }
    parts.push(value);
  }
  return new Blob(parts, { type: response.headers.get("Content-Type") || "audio/ogg" });
}
