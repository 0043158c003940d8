// The new-booking form's customer search, as you type: matches come from the session's JSON
// endpoint and picking one fills the name, phone and email fields. Without this module the
// search is a GET form and each match a link that reloads the page with the fields filled.
const box = document.querySelector("[data-customer-pick]");
const input = document.getElementById("find");
const list = document.getElementById("find-results");
const status = document.getElementById("find-status");
const WAIT_MS = 200;
let timer = 0;
let asked = 0;

function fill(person) {
  for (const field of ["name", "phone", "email"]) {
    const target = document.getElementById(field);
    if (target) target.value = person[field] || "";
  }
  status.textContent = status.dataset.picked.replace("%(name)s", person.name);
  document.getElementById("name")?.focus();
}

function show(items, query) {
  list.replaceChildren(
    ...items.map((c) => {
      const item = document.createElement("li");
      const button = document.createElement("button");
      button.type = "button";
      button.className = "secondary small";
      button.textContent = [c.name, c.phone, c.email].filter(Boolean).join(" · ");
      button.addEventListener("click", () => fill(c));
      item.append(button);
      return item;
    }),
  );
  status.textContent = query && !items.length ? status.dataset.none : "";
}

async function search(query) {
  const mine = ++asked;
  if (!query) return show([], "");
  const url = `${box.dataset.searchUrl}?${new URLSearchParams({ q: query })}`;
  try {
    const response = await fetch(url, {
      headers: { Accept: "application/json" },
      credentials: "same-origin",
    });
    if (!response.ok || mine !== asked) return;
    show((await response.json()).items, query);
  } catch {
    // Offline or signed out: the form's own GET search still works.
  }
}

if (box && input && list && status) {
  // Links rendered by the server pick without a reload too.
  for (const link of list.querySelectorAll("a[data-name]")) {
    link.addEventListener("click", (event) => {
      event.preventDefault();
      fill(link.dataset);
    });
  }
  input.addEventListener("input", () => {
    clearTimeout(timer);
    timer = setTimeout(() => search(input.value.trim()), WAIT_MS);
  });
  input.form.addEventListener("submit", (event) => {
    event.preventDefault();
    search(input.value.trim());
  });
}
