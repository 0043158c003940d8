// The dashboard's service worker (scope /dashboard/, allowed by the Service-Worker-Allowed
// header of /static/shell/). It keeps the shell — styles, scripts, icons — for a fast and
// offline start, shows the offline page when a navigation cannot reach the server, and shows
// Web Push notices of bookings. Pages, API answers and anything about money always come from
// the network and are never stored here: what the dashboard shows is never stale.
const CACHE = "reckon-shell-v2"; // a new name when the shell's modules change together
const OFFLINE = "/dashboard/offline";
const SHELL = [
  OFFLINE,
  "/static/css/site.css",
  "/static/css/dashboard.css",
  "/static/js/submit-once.js",
  "/static/js/localtime.js",
  "/static/js/dashboard/calendar-move.js",
  "/static/js/dashboard/calendar-drag.js",
  "/static/js/dashboard/calendar-keys.js",
  "/static/js/dashboard/live.js",
  "/static/js/dashboard/push.js",
  "/static/shell/icon.svg",
];

self.addEventListener("install", (event) => {
  event.waitUntil(
    (async () => {
      const cache = await caches.open(CACHE);
      // One by one: a file renamed in a later release must not stop the worker installing.
      await Promise.all(
        SHELL.map((url) =>
          cache.add(new Request(url, { cache: "reload", credentials: "same-origin" })).catch(() => undefined),
        ),
      );
      await self.skipWaiting();
    })(),
  );
});

self.addEventListener("activate", (event) => {
  event.waitUntil(
    (async () => {
      for (const name of await caches.keys()) {
        if (name !== CACHE) await caches.delete(name);
      }
      await self.clients.claim();
    })(),
  );
});

function isShellAsset(url) {
  return (
    url.origin === self.location.origin &&
    url.pathname.startsWith("/static/") &&
    url.pathname !== "/static/shell/sw.js"
  );
}

async function staleWhileRevalidate(request) {
  const cache = await caches.open(CACHE);
  const cached = await cache.match(request);
  const fresh = fetch(request)
    .then((response) => {
      if (response.ok && response.type === "basic") cache.put(request, response.clone());
      return response;
    })
    .catch(() => undefined);
  return cached || (await fresh) || Response.error();
}

async function navigate(request) {
  try {
    return await fetch(request);
  } catch {
    const offline = await caches.match(OFFLINE);
    return offline || Response.error();
  }
}

self.addEventListener("fetch", (event) => {
  const request = event.request;
  if (request.method !== "GET") return;
  const url = new URL(request.url);
  if (request.mode === "navigate") {
    event.respondWith(navigate(request));
  } else if (isShellAsset(url)) {
    event.respondWith(staleWhileRevalidate(request));
  }
  // Everything else (fetches of pages and of /dashboard/api/, the event stream) goes to the
  // network untouched.
});

self.addEventListener("push", (event) => {
  let notice = {};
  try {
    notice = event.data ? event.data.json() : {};
  } catch {
    notice = {};
  }
  const title = notice.title || "Reckon";
  event.waitUntil(
    self.registration.showNotification(title, {
      body: notice.body || "",
      tag: notice.tag || undefined,
      icon: "/static/shell/icon.svg",
      badge: "/static/shell/icon.svg",
      data: { url: notice.url || "/dashboard/calendar" },
    }),
  );
});

self.addEventListener("notificationclick", (event) => {
  event.notification.close();
  const target = new URL(event.notification.data?.url || "/dashboard/calendar", self.location.origin);
  if (target.origin !== self.location.origin || !target.pathname.startsWith("/dashboard/")) return;
  event.waitUntil(
    (async () => {
      const windows = await self.clients.matchAll({ type: "window", includeUncontrolled: true });
      for (const client of windows) {
        if (new URL(client.url).pathname === target.pathname && "focus" in client) return client.focus();
      }
      return self.clients.openWindow(target.href);
    })(),
  );
});
