// "Notify me on this device": registers the dashboard's service worker (which also makes the
// dashboard installable) and, on request, subscribes this browser to Web Push with the
// server's VAPID key, storing the subscription for the signed-in user (CSRF header, session
// cookie). The toggle stays hidden where the browser cannot push or push is not configured.
const toggle = document.querySelector("[data-push-toggle]");
const status = document.querySelector("[data-push-status]");
const csrf = document.querySelector('input[name="_csrf"]')?.value || "";
const API = "/dashboard/api/push/subscriptions";

function keyBytes(base64url) {
  const padded = base64url.replace(/-/g, "+").replace(/_/g, "/") + "=".repeat((4 - (base64url.length % 4)) % 4);
  return Uint8Array.from(atob(padded), (c) => c.charCodeAt(0));
}

function show(subscribed) {
  toggle.setAttribute("aria-pressed", subscribed ? "true" : "false");
}

function say(message) {
  if (status) status.textContent = message;
}

async function send(method, body) {
  const response = await fetch(API, {
    method,
    credentials: "same-origin",
    headers: { "Content-Type": "application/json", "X-CSRF-Token": csrf },
    body: JSON.stringify(body),
  });
  if (!response.ok && response.status !== 204) throw new Error(`HTTP ${response.status}`);
}

async function serverKey() {
  const response = await fetch("/dashboard/api/push/key", { credentials: "same-origin" });
  if (!response.ok) return null;
  return (await response.json()).public_key;
}

async function start() {
  if (!("serviceWorker" in navigator)) return;
  await navigator.serviceWorker.register("/static/shell/sw.js", { scope: "/dashboard/" });
  if (!toggle || !("PushManager" in window) || !("Notification" in window)) return;
  const key = await serverKey();
  if (!key) return;
  const ready = await navigator.serviceWorker.ready;
  let current = await ready.pushManager.getSubscription();
  show(Boolean(current));
  toggle.hidden = false;
  toggle.addEventListener("click", async () => {
    toggle.disabled = true;
    try {
      if (current) {
        await send("DELETE", { endpoint: current.endpoint });
        await current.unsubscribe();
        current = null;
        say(toggle.dataset.offText);
      } else {
        if ((await Notification.requestPermission()) !== "granted") {
          say(toggle.dataset.deniedText);
          return;
        }
        current = await ready.pushManager.subscribe({ userVisibleOnly: true, applicationServerKey: keyBytes(key) });
        await send("POST", current.toJSON());
        say(toggle.dataset.onText);
      }
    } catch {
      say(toggle.dataset.failedText);
    } finally {
      show(Boolean(current));
      toggle.disabled = false;
    }
  });
}

start();
