// A few promise helpers over IndexedDB. Two stores: "outbox" (work waiting to reach the
// server) and "tasks" (leased tasks and their media, kept for reloads and offline work).
const NAME = "labelfarm";
let opening = null;

export function db() {
  if (!opening) {
    opening = new Promise((resolve, reject) => {
      const req = indexedDB.open(NAME, 1);
      req.onupgradeneeded = () => {
        const d = req.result;
        const outbox = d.createObjectStore("outbox", { keyPath: "id" });
        outbox.createIndex("user", "user");
        const tasks = d.createObjectStore("tasks", { keyPath: "key" });
        tasks.createIndex("owner", "owner");
      };
      req.onsuccess = () => resolve(req.result);
      req.onerror = () => reject(req.error);
    });
  }
  return opening;
}

function done(tx) {
  return new Promise((resolve, reject) => {
    tx.oncomplete = () => resolve();
    tx.onerror = () => reject(tx.error);
    tx.onabort = () => reject(tx.error || new Error("transaction aborted"));
  });
}

function result(req) {
  return new Promise((resolve, reject) => {
    req.onsuccess = () => resolve(req.result);
    req.onerror = () => reject(req.error);
  });
}

// Run fn(stores) in one readwrite transaction over `names`; resolves when it has committed.
export async function write(names, fn) {
  const tx = (await db()).transaction(names, "readwrite");
  const stores = Object.fromEntries(names.map((n) => [n, tx.objectStore(n)]));
  fn(stores);
  const committed = done(tx);
  if (tx.commit) tx.commit(); // do not wait for the event loop: survive a reload right after
  return committed;
}

export async function byIndex(store, index, value) {
  const tx = (await db()).transaction([store], "readonly");
  return result(tx.objectStore(store).index(index).getAll(value));
}

export async function get(store, key) {
  const tx = (await db()).transaction([store], "readonly");
  return result(tx.objectStore(store).get(key));
}
