// The outbox: every submission and skip is written to IndexedDB first, then sent in the
// background, oldest first, and replayed until the server has it. Replays are safe: each
// submission carries its client-generated id, and the server stores an id once.
import { byIndex, write } from "./idb.js";
import { api, ApiError, Offline } from "./net.js";

const BATCH = 100;
let counter = 0;

export class Outbox {
  constructor(user, onChange) {
    this.user = user;
    this.onChange = onChange;
    this.count = 0;       // entries waiting to be sent
    this.unsaved = 0;     // entries handed to IndexedDB whose write has not completed yet
    this.rejected = 0;    // entries the server refused (kept, shown, never dropped)
    this.results = new Map(); // client id -> stored annotation id
    this.state = "idle";  // idle | sending | waiting | signed_out
    this.running = null;
    this.again = false;
    this.retryMs = 1000;
    this.timer = null;
  }

  async init() {
    await this.recount();
    return this;
  }

  async entries() {
    const all = await byIndex("outbox", "user", this.user);
    return all.sort((a, b) => a.seq - b.seq);
  }

  async recount() {
    const all = await byIndex("outbox", "user", this.user);
    this.count = all.filter((e) => !e.rejected).length;
    this.rejected = all.length - this.count;
    this.onChange(this);
  }

  // Store an entry, then drop the task it finishes from the task store. The outbox has its
  // own transaction so that it never waits behind a media blob being stored; a task left
  // over by a crash in between is dropped on restore (its work is in the outbox).
  add(entry, taskKey) {
    const record = { ...entry, user: this.user, seq: Date.now() * 1000 + (counter++ % 1000) };
    this.count += 1;
    this.unsaved += 1;
    this.onChange(this);
    const saved = write(["outbox"], (s) => s.outbox.put(record));
    saved.finally(() => { this.unsaved -= 1; }).catch(() => {});
    if (taskKey) saved.then(() => write(["tasks"], (s) => s.tasks.delete(taskKey))).catch(() => {});
    return saved;
  }

  // "project:task" of every entry waiting (a task is named by its handle)
  taskKeys() {
    return this.entries().then((all) => new Set(all.map((e) => `${e.project}:${e.task}`)));
  }

  // Send everything waiting; one run at a time, another run if work came in meanwhile.
  flush() {
    if (this.running) {
      this.again = true;
      return this.running;
    }
    clearTimeout(this.timer);
    this.running = (async () => {
      try {
        do {
          this.again = false;
          await this.sendAll();
        } while (this.again);
        this.retryMs = 1000;
      } catch (err) {
        if (err instanceof ApiError && (err.status === 401 || err.status === 403)) {
          this.state = "signed_out";
        } else {
          this.state = "waiting";
          this.timer = setTimeout(() => this.flush(), this.retryMs);
          this.retryMs = Math.min(this.retryMs * 2, 30000);
        }
      } finally {
        this.running = null;
        await this.recount();
      }
    })();
    return this.running;
  }

  async sendAll() {
    const pending = (await this.entries()).filter((e) => !e.rejected);
    this.state = pending.length ? "sending" : "idle";
    while (pending.length) {
      const head = pending[0];
      const batch = head.kind === "skip" ? [head] : takeBatch(pending);
      await this.send(batch);
      pending.splice(0, batch.length);
      this.count = Math.max(0, this.count - batch.length);
      this.onChange(this);
    }
    this.state = "idle";
  }

  async send(batch) {
    const head = batch[0];
    const base = `/api/v1/projects/${head.project}`;
    let refused = [];
    try {
      if (head.kind === "skip") {
        await api("POST", `${base}/skip`, { task: head.task, reason: head.reason });
      } else {
        const answer = await api("POST", `${base}/submit`, { annotations: batch.map((e) => e.body) });
        for (const r of answer.results) {
          this.results.set(r.id, r.annotation_id);
          if (r.feedback && this.onFeedback) this.onFeedback(r.feedback); // a training task's answer
        }
      }
    } catch (err) {
      if (err instanceof Offline || !(err instanceof ApiError)) throw err;
      if (err.status === 409 && head.kind === "skip") {
        refused = []; // already submitted: nothing left to skip
      } else if (err.status >= 500 || err.status === 401 || err.status === 403 || err.status === 408 || err.status === 429) {
        throw err;
      } else {
        const bad = new Set(err.details.map((d) => d.index).filter((i) => Number.isInteger(i)));
        refused = bad.size ? batch.filter((_, i) => bad.has(i)) : batch;
        const retry = batch.filter((e) => !refused.includes(e));
        await this.markRejected(refused, err.message);
        if (retry.length) return this.send(retry);
        return;
      }
    }
    await write(["outbox"], (s) => { for (const e of batch) s.outbox.delete(e.id); });
  }

  markRejected(entries, reason) {
    return write(["outbox"], (s) => {
      for (const e of entries) s.outbox.put({ ...e, rejected: true, error: reason });
    });
  }
}

// Consecutive submissions of one project, each task at most once (a correction goes in a
// later batch than the work it corrects, so the server links the two).
function takeBatch(pending) {
  const batch = [];
  const tasks = new Set();
  for (const e of pending) {
    if (e.kind !== "submit" || e.project !== pending[0].project || tasks.has(e.task)) break;
    if (batch.length >= BATCH) break;
    batch.push(e);
    tasks.add(e.task);
  }
  return batch;
}
