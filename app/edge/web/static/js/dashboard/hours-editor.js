// Repeatable rows (the weekly hours editor, dated overrides, cancellation tiers): an "Add"
// button appends an empty row from the list's <template>, each row's "Remove" button drops
// it. Without this module the page still works: the server renders every row plus one empty
// row, and an empty row is ignored when the form is saved. The buttons are real <button>s,
// so Tab reaches them and Enter or Space presses them; focus moves to what the press made.

const PLACEHOLDER = "__ROW__";
let added = 0;

function firstField(row) {
  return row.querySelector("input, select, textarea");
}

function addRow(group) {
  const template = group.querySelector(":scope > template[data-row-template]");
  const list = group.querySelector(":scope > [data-row-list]");
  if (!template || !list) return;
  added += 1;
  const html = template.innerHTML.replaceAll(PLACEHOLDER, `n${added}`);
  const fragment = document.createRange().createContextualFragment(html);
  const row = fragment.querySelector("[data-row]");
  list.append(fragment);
  enableRemove(row);
  firstField(row)?.focus();
}

function removeRow(row) {
  const group = row.closest("[data-rows]");
  const next = row.nextElementSibling ?? row.previousElementSibling;
  row.remove();
  const target = next ? firstField(next) : group?.querySelector(":scope > [data-add-row]");
  target?.focus();
}

function enableRemove(row) {
  const button = row?.querySelector("[data-remove-row]");
  if (button) button.hidden = false;
}

for (const group of document.querySelectorAll("[data-rows]")) {
  group.querySelectorAll(":scope > [data-row-list] > [data-row]").forEach(enableRemove);
  const add = group.querySelector(":scope > [data-add-row]");
  if (add) add.hidden = false;
}

document.addEventListener("click", (event) => {
  const target = event.target instanceof Element ? event.target : null;
  const add = target?.closest("[data-add-row]");
  if (add) {
    addRow(add.closest("[data-rows]"));
    return;
  }
  const remove = target?.closest("[data-remove-row]");
  if (remove) removeRow(remove.closest("[data-row]"));
});
