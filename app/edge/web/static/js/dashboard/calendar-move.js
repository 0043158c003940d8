// What a drop and a keyboard move share: the one server request (the reschedule use case,
// authenticated by the session cookie and the CSRF header), the status line that announces
// the result, and a flag live.js reads so it does not swap the calendar under a move (one
// being saved, or one being made with the keyboard).
const cal = document.querySelector("[data-calendar]");
const status = document.getElementById("cal-status");
let pending = 0;
let held = false;

export function say(text, refused) {
  if (!status) return;
  status.textContent = text;
  status.classList.toggle("refused", Boolean(refused));
}

export function busy() {
  return pending > 0 || held;
}

export function hold(on) {
  held = on;
  if (!on) document.dispatchEvent(new CustomEvent("calendar:settled"));
}

// {ok: true, booking} or {ok: false, reason}; throws when the network fails.
export async function reschedule(block, body) {
  pending += 1;
  try {
    const response = await fetch(cal.dataset.rescheduleUrl + block.dataset.booking + "/reschedule", {
      method: "POST",
      headers: {
        "Content-Type": "application/json",
        Accept: "application/json",
        "X-CSRF-Token": cal.dataset.csrf,
      },
      body: JSON.stringify(body),
      credentials: "same-origin",
    });
    if (response.ok) return { ok: true, booking: await response.json().catch(() => null) };
    let reason = response.statusText;
    try {
      const problem = await response.json();
      reason = problem.detail || problem.title || reason;
    } catch {
      // not JSON: keep the status text
    }
    return { ok: false, reason };
  } finally {
    pending -= 1;
    // live.js catches up on what arrived meanwhile.
    document.dispatchEvent(new CustomEvent("calendar:settled"));
  }
}

// "10:15 AM–11:15 AM" in the page's language and the business's time zone, as the server
// writes it on a block.
export function times(start, end) {
  const time = new Intl.DateTimeFormat(document.documentElement.lang || undefined, {
    timeZone: cal.dataset.tz || undefined,
    hour: "numeric",
    minute: "2-digit",
  });
  return `${time.format(new Date(start))}\u2013${time.format(new Date(end))}`;
}

// "Booking moved: 10:15 AM–11:15 AM, Mona, Tuesday, December 1, 2026." (the column's own label
// names the resource and the day).
export function moved(start, end, column, template = cal.dataset.movedTo) {
  const where = column ? `, ${column.getAttribute("aria-label")}` : "";
  return (template || "%(when)s").replace("%(when)s", times(start, end) + where);
}
