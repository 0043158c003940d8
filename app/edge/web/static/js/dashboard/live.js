// Keep an open calendar current: the business's event stream (same-origin, the session
// cookie authenticates it) says a booking changed; the page's calendar is fetched again and
// swapped in. Events of other businesses never reach this stream.
import { dragging } from "./calendar-drag.js";

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

async function refresh() {
  if (dragging()) {
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
  if (!fresh || !body || dragging()) {
    again = true;
    return;
  }
  const focused = document.activeElement && body.contains(document.activeElement) ? document.activeElement.id : null;
  const scroll = body.scrollLeft;
  body.replaceChildren(...fresh.childNodes);
  body.scrollLeft = scroll;
  if (focused) document.getElementById(focused)?.focus();
}

function soon() {
  clearTimeout(timer);
  timer = setTimeout(refresh, 100);
}

if (cal && window.EventSource) {
  const events = new EventSource(cal.dataset.liveUrl);
  for (const topic of TOPICS) events.addEventListener(topic, soon);
  document.addEventListener("calendar:changed", soon);
  document.addEventListener("pointerup", () => {
    if (again) {
      again = false;
      soon();
    }
  });
}
