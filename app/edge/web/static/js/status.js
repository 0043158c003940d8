// The return page: while a payment is awaited, ask the small status endpoint every few
// seconds and show the new state as soon as it changes (the server renders it).
const box = document.querySelector(".status[data-status-url]");
const GIVE_UP_MS = 20 * 60 * 1000;

function sleep(ms) {
  return new Promise((resolve) => setTimeout(resolve, ms));
}

async function poll() {
  if (!box || box.dataset.state !== "waiting") return;
  const started = Date.now();
  let delay = 1000;
  while (Date.now() - started < GIVE_UP_MS) {
    await sleep(delay);
    delay = Math.min(delay * 1.5, 5000);
    let body;
    try {
      const response = await fetch(box.dataset.statusUrl, {
        headers: { Accept: "application/json" },
        cache: "no-store",
      });
      if (response.status === 410 || response.status === 404) {
        window.location.reload();
        return;
      }
      if (!response.ok) continue;
      body = await response.json();
    } catch {
      continue; // offline for a moment: try again
    }
    if (body.state !== "waiting") {
      window.location.reload();
      return;
    }
    const checkout = /^https?:\/\//.test(body.checkout_url || "") ? body.checkout_url : null;
    if (checkout && box.dataset.hasCheckout !== "true") {
      if (box.dataset.autopay === "true") {
        window.location.assign(checkout);
      } else {
        window.location.reload();
      }
      return;
    }
  }
}

// Back from the payment page: the page may come from the back/forward cache.
window.addEventListener("pageshow", (event) => {
  if (event.persisted) window.location.reload();
});

poll();
