// Drag a booking to move it (to another time, day or resource) and drag its bottom edge to
// change its length. The drop asks the server (the reschedule use case, authenticated by the
// session cookie and the CSRF header); a refused drop snaps back and says why. The keyboard
// does the same through calendar-keys.js; without JavaScript every booking is still a link to
// a page with a "Move" form.
import { moved, reschedule, say } from "./calendar-move.js";

const cal = document.querySelector("[data-calendar]");
const MINUTE = 60 * 1000;
const THRESHOLD_PX = 6;

function columnAt(x, y) {
  for (const el of document.elementsFromPoint(x, y)) {
    if (el.classList && el.classList.contains("cal-col")) return el;
  }
  return null;
}

function rowHeight(column) {
  return column.getBoundingClientRect().height / Number(column.dataset.rows || 1);
}

let drag = null;

function begin(event) {
  if (event.button !== 0 || !cal) return;
  const block = event.target.closest(".block[data-movable]");
  if (!block || !cal.contains(block)) return;
  const column = block.closest(".cal-col");
  drag = {
    block,
    column,
    resize: event.target.classList.contains("grip"),
    x: event.clientX,
    y: event.clientY,
    rows: 0,
    target: column,
    moved: false,
    pointer: event.pointerId,
  };
  block.setPointerCapture(event.pointerId);
}

function move(event) {
  if (!drag || event.pointerId !== drag.pointer) return;
  const dx = event.clientX - drag.x;
  const dy = event.clientY - drag.y;
  if (!drag.moved && Math.hypot(dx, dy) < THRESHOLD_PX) return;
  event.preventDefault();
  drag.moved = true;
  drag.block.classList.add("dragging");
  const height = rowHeight(drag.column);
  drag.rows = Math.round(dy / height);
  if (drag.resize) {
    const span = Math.max(1, Number(drag.block.dataset.span) + drag.rows);
    drag.rows = span - Number(drag.block.dataset.span);
    drag.block.style.blockSize = `${span * height - 2}px`;
    return;
  }
  drag.target = columnAt(event.clientX, event.clientY) || drag.target;
  const from = drag.column.getBoundingClientRect();
  const to = drag.target.getBoundingClientRect();
  drag.block.style.transform = `translate(${to.left - from.left}px, ${drag.rows * height}px)`;
}

function reset(block) {
  block.classList.remove("dragging", "saving");
  block.style.transform = "";
  block.style.blockSize = "";
  block.removeAttribute("aria-busy");
}

async function end(event) {
  if (!drag || event.pointerId !== drag.pointer) return;
  const current = drag;
  drag = null;
  if (!current.moved) return;
  // The click that follows a drag must not open the booking.
  current.block.addEventListener("click", (e) => e.preventDefault(), { once: true, capture: true });
  const step = Number(cal.dataset.rowMinutes) * MINUTE;
  const start = new Date(current.block.dataset.start);
  const end_ = new Date(current.block.dataset.end);
  const body = {};
  if (current.resize) {
    if (current.rows === 0) return reset(current.block);
    body.start = start.toISOString();
    body.end = new Date(end_.getTime() + current.rows * step).toISOString();
  } else {
    const days = new Date(current.target.dataset.origin) - new Date(current.column.dataset.origin);
    const shift = days + current.rows * step;
    const sameResource = current.target.dataset.resource === current.column.dataset.resource;
    if (shift === 0 && sameResource) return reset(current.block);
    body.start = new Date(start.getTime() + shift).toISOString();
    body.end = new Date(end_.getTime() + shift).toISOString();
    if (!sameResource) body.resource_id = current.target.dataset.resource;
  }
  current.block.classList.add("saving");
  current.block.setAttribute("aria-busy", "true");
  let result;
  try {
    result = await reschedule(current.block, body);
  } catch {
    reset(current.block);
    say(cal.dataset.offline, true);
    return;
  }
  if (!result.ok) {
    reset(current.block);
    say(`${cal.dataset.refused} ${result.reason}`, true);
    return;
  }
  say(moved(body.start, body.end, current.resize ? current.column : current.target), false);
  document.dispatchEvent(new CustomEvent("calendar:changed"));
}

function cancel(event) {
  if (!drag || event.pointerId !== drag.pointer) return;
  reset(drag.block);
  drag = null;
}

if (cal) {
  cal.addEventListener("pointerdown", begin);
  cal.addEventListener("pointermove", move);
  cal.addEventListener("pointerup", end);
  cal.addEventListener("pointercancel", cancel);
  // Links and text are draggable natively; the calendar's own drag replaces that.
  cal.addEventListener("dragstart", (event) => event.preventDefault());
}

export function dragging() {
  return drag !== null && drag.moved;
}
