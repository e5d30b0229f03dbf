// The service worker (served at /sw.js, with VERSION and PRECACHE set above by the server).
// Static files: from the cache, which holds this version's files. The annotate page:
// from the network, its last good copy kept for when there is none. Everything else (API,
// media) goes to the network untouched: the page keeps its own outbox and task store.
const STATIC = `lf-static-${VERSION}`;
const PAGES = "lf-pages";
const ANNOTATE = /^\/projects\/\d+\/annotate$/;
const NETWORK_WAIT_MS = 6000;

self.addEventListener("install", (event) => {
  event.waitUntil(caches.open(STATIC).then((c) => c.addAll(PRECACHE)).then(() => self.skipWaiting()));
});

self.addEventListener("activate", (event) => {
  event.waitUntil((async () => {
    for (const name of await caches.keys()) {
      if (name.startsWith("lf-static-") && name !== STATIC) await caches.delete(name);
    }
    await self.clients.claim();
  })());
});

self.addEventListener("fetch", (event) => {
  const req = event.request;
  if (req.method !== "GET") return;
  const url = new URL(req.url);
  if (url.origin !== location.origin) return;
  if (url.pathname.startsWith("/static/")) {
    event.respondWith(caches.match(req).then((hit) => hit || fetch(req)));
  } else if (req.mode === "navigate" && ANNOTATE.test(url.pathname)) {
    event.respondWith(page(req, url));
  }
});

async function page(req, url) {
  const cache = await caches.open(PAGES);
  const key = url.origin + url.pathname;
  const network = fetch(req).then(async (response) => {
    if (response.ok && response.type === "basic" && !response.redirected) {
      await cache.put(key, response.clone());
    }
    return response;
  });
  try {
    return await withTimeout(network, NETWORK_WAIT_MS);
  } catch (err) {
    const hit = await cache.match(key);
    return hit || network; // no copy kept: wait for the network after all
  }
}

function withTimeout(promise, ms) {
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error("timeout")), ms);
    promise.then((v) => { clearTimeout(timer); resolve(v); }, (e) => { clearTimeout(timer); reject(e); });
  });
}
