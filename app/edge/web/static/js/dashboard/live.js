// Keep an open calendar current: the business's event stream (same-origin, the session
// cookie authenticates it) says a booking changed; the page's calendar is fetched again and
// swapped in. Events of other businesses never reach this stream.
import { dragging } from "./calendar-drag.js";
import { busy as moving } from "./calendar-move.js";

const cal = document.querySelector("[data-calendar]");
const TOPICS = [
  "booking.placed",
  "booking.confirmed",
  "booking.rescheduled",
  "booking.cancelled",
  "booking.checked_in",
  "booking.completed",
  "booking.no_show",
  "booking.expired",
  "booking.refunded",
];
let timer = null;
let again = false;

function busy() {
  return dragging() || moving();
}

// What had the focus, found again in the fresh calendar: the same block (by its id, else the
// same booking, moved to another day), or the same free-time link.
function focusKey(body) {
  const el = document.activeElement;
  if (!el || !body.contains(el)) return null;
  return { id: el.id, booking: el.dataset.booking, free: el.classList.contains("free") ? el.getAttribute("href") : null };
}

function refocus(key) {
  if (!key) return;
  const el =
    (key.id && document.getElementById(key.id)) ||
    (key.booking && cal.querySelector(`.block[data-booking="${CSS.escape(key.booking)}"]`)) ||
    (key.free && cal.querySelector(`.free[href="${CSS.escape(key.free)}"]`));
  el?.focus({ preventScroll: true });
}

async function refresh() {
  if (busy()) {
    again = true;
    return;
  }
  let html;
  try {
    const response = await fetch(window.location.href, {
      headers: { Accept: "text/html" },
      cache: "no-store",
      credentials: "same-origin",
    });
    if (response.redirected || !response.ok) return;
    html = await response.text();
  } catch {
    return; // offline for a moment: the next event refreshes
  }
  const fresh = new DOMParser().parseFromString(html, "text/html").querySelector("[data-calendar-body]");
  const body = cal.querySelector("[data-calendar-body]");
  if (!fresh || !body || busy()) {
    again = true;
    return;
  }
  const focused = focusKey(body);
  const free = cal.querySelector('.free[tabindex="0"]')?.getAttribute("href") || null;
  const scroll = body.scrollLeft;
  body.replaceChildren(...fresh.childNodes);
  body.scrollLeft = scroll;
  document.dispatchEvent(new CustomEvent("calendar:refreshed", { detail: { free } }));
  refocus(focused);
}

function catchUp() {
  if (again) {
    again = false;
    soon();
  }
}

function soon() {
  clearTimeout(timer);
  timer = setTimeout(refresh, 100);
}

if (cal && window.EventSource) {
  const events = new EventSource(cal.dataset.liveUrl);
  for (const topic of TOPICS) events.addEventListener(topic, soon);
  document.addEventListener("calendar:changed", soon);
  document.addEventListener("pointerup", catchUp);
  document.addEventListener("calendar:settled", catchUp);
}
