// The calendar by keyboard alone. A focused booking that can move is dragged with Alt held
// down, as a mouse drags with its button: Up/Down moves it a row (15 minutes) earlier or
// later, Left/Right to the neighbouring column (the same resource's previous or next day in
// the week, the previous or next resource in a day), Shift+Up/Down makes it a row shorter or
// longer; letting go of Alt drops it there (so a service booked by the hour moves by four
// presses, one request), Escape puts it back. The drop is a drag's drop: the same request and
// checks (calendar-move.js), the block drawn at its new place while the server decides, back
// where it was with the reason read out if refused. Enter opens the booking (a link).
// Free time is one tab stop (a roving tabindex over the existing free-time links, so the
// page's HTML stays as it is): the arrow keys walk it, Home/End go to the column's first and
// last hour, and Enter opens the new-booking form for that resource and time.
import { hold, moved, reschedule, say, times } from "./calendar-move.js";

const cal = document.querySelector("[data-calendar]");
const MINUTE = 60 * 1000;
const ARROWS = new Set(["ArrowUp", "ArrowDown", "ArrowLeft", "ArrowRight"]);
let move = null; // the keyboard drag under way
let redrawing = false;

function rtl() {
  return document.documentElement.dir === "rtl";
}

// +1 for the column after in reading order (to the right, or to the left in Arabic).
function sideways(key) {
  return (key === "ArrowRight") !== rtl() ? 1 : -1;
}

function rowOf(el) {
  return Number(/\bat-(\d+)/.exec(el.className)?.[1] || 1);
}

function columns() {
  return [...cal.querySelectorAll(".cal-col")];
}

// In the week: the same resource's column on the neighbouring day; in a day: the neighbour.
function neighbour(column, step) {
  const week = cal.querySelector(".cal-body.week") !== null;
  const all = columns().filter((c) => !week || c.dataset.resource === column.dataset.resource);
  return all[all.indexOf(column) + step] || null;
}

function pickUp(block) {
  const column = block.closest(".cal-col");
  hold(true);
  const start = new Date(block.dataset.start).getTime();
  const end = new Date(block.dataset.end).getTime();
  return {
    block,
    column,
    target: column,
    parent: block.parentNode,
    next: block.nextSibling,
    className: block.className,
    label: block.querySelector(".b-time")?.textContent || "",
    start,
    end,
    from: start,
    to: end,
    row: Number(block.dataset.row),
    span: Number(block.dataset.span),
  };
}

// One arrow key: the new times and place of the block being moved (false: nothing changes).
function step(m, event) {
  const minutes = Number(cal.dataset.rowMinutes) * MINUTE;
  const down = event.key === "ArrowDown";
  if (event.key === "ArrowUp" || down) {
    const by = down ? minutes : -minutes;
    if (event.shiftKey) {
      if (m.end + by <= m.start) return false;
      m.end += by;
      m.span = Math.max(1, m.span + (down ? 1 : -1));
    } else {
      m.start += by;
      m.end += by;
      m.row += down ? 1 : -1;
    }
    return true;
  }
  if (event.shiftKey) return false;
  const target = neighbour(m.target, sideways(event.key));
  if (!target) return false;
  const days = new Date(target.dataset.origin) - new Date(m.target.dataset.origin);
  m.start += days;
  m.end += days;
  m.target = target;
  return true;
}

function draw(m) {
  const { block, target } = m;
  const rows = Number(target.dataset.rows);
  let name = m.className;
  if (m.row >= 1 && m.row <= rows) {
    const span = Math.min(m.span, rows + 1 - m.row);
    name = name.replace(/\bat-\d+/, `at-${m.row}`).replace(/\bspan-\d+/, `span-${span}`);
  }
  if (target !== m.column) name = name.replace(/\blane-\d+/, "lane-1");
  block.className = `${name} dragging`;
  const time = block.querySelector(".b-time");
  if (time) time.textContent = times(m.start, m.end);
  if (block.parentNode !== target) {
    redrawing = true; // taking a node out of the page blurs it: focus it again
    target.append(block);
    block.focus();
    redrawing = false;
  }
  block.scrollIntoView({ block: "nearest", inline: "nearest" });
  say(moved(m.start, m.end, target, cal.dataset.movingTo), false);
}

function putBack(m) {
  const { block } = m;
  const focused = document.activeElement === block;
  block.className = m.className;
  block.classList.remove("saving");
  block.removeAttribute("aria-busy");
  const time = block.querySelector(".b-time");
  if (time) time.textContent = m.label;
  if (block.parentNode !== m.parent || block.nextSibling !== m.next) {
    redrawing = true;
    m.parent.insertBefore(block, m.next);
    if (focused) block.focus();
    redrawing = false;
  }
}

function cancel() {
  if (!move) return;
  const m = move;
  move = null;
  putBack(m);
  say("", false);
  hold(false);
}

async function drop() {
  const m = move;
  move = null;
  const body = { start: new Date(m.start).toISOString(), end: new Date(m.end).toISOString() };
  const resource = m.target.dataset.resource;
  if (resource !== m.column.dataset.resource) body.resource_id = resource;
  if (m.target === m.column && m.start === m.from && m.end === m.to) {
    putBack(m);
    say("", false);
    hold(false);
    return;
  }
  const { block } = m;
  block.classList.remove("dragging");
  block.classList.add("saving");
  block.setAttribute("aria-busy", "true");
  let result;
  try {
    result = await reschedule(block, body);
  } catch {
    result = { ok: false, offline: true };
  } finally {
    hold(false);
  }
  if (!result.ok) {
    putBack(m);
    say(result.offline ? cal.dataset.offline : `${cal.dataset.refused} ${result.reason}`, true);
    return;
  }
  block.classList.remove("saving");
  block.removeAttribute("aria-busy");
  block.dataset.start = body.start;
  block.dataset.end = body.end;
  block.dataset.row = String(rowOf(block));
  block.dataset.span = /\bspan-(\d+)/.exec(block.className)?.[1] || block.dataset.span;
  block.id = `b-${block.dataset.booking}-${m.target.dataset.day}`;
  say(moved(body.start, body.end, m.target), false);
  document.dispatchEvent(new CustomEvent("calendar:changed"));
}

function moveKey(block, event) {
  event.preventDefault(); // Alt+Left is also the browser's Back
  if (block.getAttribute("aria-busy") === "true") return;
  if (move && move.block !== block) cancel();
  if (!move) move = pickUp(block);
  if (step(move, event)) draw(move);
}

// Free time: exactly one free-time link is in the tab order at a time.
function rove(from, to) {
  if (!to) return;
  if (from) from.tabIndex = -1;
  to.tabIndex = 0;
  to.focus();
}

function freeTarget(cell, key) {
  const column = cell.closest(".cal-col");
  const cells = [...column.querySelectorAll(".free")];
  const index = cells.indexOf(cell);
  if (key === "Home") return cells[0];
  if (key === "End") return cells.at(-1);
  if (key === "ArrowUp") return cells[index - 1];
  if (key === "ArrowDown") return cells[index + 1];
  const all = columns();
  const row = rowOf(cell);
  const step = sideways(key);
  for (let i = all.indexOf(column) + step; i >= 0 && i < all.length; i += step) {
    const others = [...all[i].querySelectorAll(".free")];
    if (others.length) return others.find((c) => rowOf(c) >= row) || others.at(-1);
  }
  return null;
}

// One tab stop for free time: the one focused last, else the calendar's first.
export function initFreeTime(keep) {
  if (!cal) return;
  const stop = (keep && cal.querySelector(`.free[href="${CSS.escape(keep)}"]`)) || cal.querySelector(".free");
  if (stop) stop.tabIndex = 0;
}

function onKey(event) {
  if (event.ctrlKey || event.metaKey) return;
  if (move && event.key === "Escape") {
    event.preventDefault();
    cancel();
    return;
  }
  const block = event.target.closest?.(".block[data-movable]");
  if (block && event.altKey && ARROWS.has(event.key)) {
    moveKey(block, event);
    return;
  }
  const cell = event.target.closest?.(".free");
  const walk = ARROWS.has(event.key) || event.key === "Home" || event.key === "End";
  if (cell && walk && !event.altKey && !event.shiftKey) {
    event.preventDefault();
    rove(cell, freeTarget(cell, event.key));
  }
}

if (cal) {
  initFreeTime(null);
  cal.addEventListener("keydown", onKey);
  // Letting go of Alt drops the booking being moved.
  document.addEventListener("keyup", (event) => {
    if (move && event.key === "Alt") {
      event.preventDefault(); // not the browser's menu bar
      drop();
    }
  });
  // The focus gone elsewhere (another window, a click): the move is abandoned, as Escape.
  window.addEventListener("blur", cancel);
  cal.addEventListener("focusout", () => {
    if (move && !redrawing) cancel();
  });
  // A free-time link chosen another way (a click) becomes the tab stop.
  cal.addEventListener("focusin", (event) => {
    const cell = event.target.closest?.(".free");
    if (!cell || cell.tabIndex === 0) return;
    rove(cal.querySelector('.free[tabindex="0"]'), cell);
  });
  document.addEventListener("calendar:refreshed", (event) => initFreeTime(event.detail?.free || null));
}
