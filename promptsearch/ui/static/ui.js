// promptsearch ui: sortable tables, live refresh of a running run, keyboard rating. No inline script (CSP).
"use strict";

function sortTable(th) {
  const table = th.closest("table");
  const index = Array.from(th.parentNode.children).indexOf(th);
  const numeric = th.dataset.sort === "num";
  const down = !th.classList.contains("desc");
  table.querySelectorAll("th").forEach(h => h.classList.remove("asc", "desc"));
  th.classList.add(down ? "desc" : "asc");
  const body = table.tBodies[0];
  const value = row => {
    const cell = row.children[index];
    const raw = cell ? (cell.dataset.v !== undefined ? cell.dataset.v : cell.textContent) : "";
    if (!numeric) return raw.toLowerCase();
    const n = parseFloat(raw);
    return isNaN(n) ? -Infinity : n;
  };
  const rows = Array.from(body.rows);
  rows.sort((a, b) => {
    const x = value(a), y = value(b);
    return (x < y ? -1 : x > y ? 1 : 0) * (down ? -1 : 1);
  });
  body.append(...rows);
}

function watchRun() {
  const body = document.body;
  if (body.dataset.live !== "1") return;
  let version = null;
  const poll = () => fetch(body.dataset.state, {credentials: "same-origin"})
    .then(r => r.json())
    .then(s => {
      if (version !== null && (s.version !== version || s.status !== "running")) location.reload();
      version = s.version;
    })
    .catch(() => {})
    .finally(() => setTimeout(poll, 2000));
  poll();
}

function rateKeys() {
  const form = document.getElementById("rate-form");
  const skip = document.getElementById("skip");
  if (!form && !skip) return;
  document.addEventListener("keydown", e => {
    const typing = ["TEXTAREA", "INPUT", "SELECT"].includes(e.target.tagName);
    if (typing) {
      if (e.key === "Escape") e.target.blur();
      return;
    }
    if (e.ctrlKey || e.metaKey || e.altKey) return;
    if (form && /^[1-5]$/.test(e.key)) {
      e.preventDefault();
      form.querySelector(`button[name=rating][value="${e.key}"]`).click();
    } else if (e.key === "s" && skip) {
      e.preventDefault();
      location.href = skip.href;
    } else if (e.key === "c" && form) {
      e.preventDefault();
      document.getElementById("comment").focus();
    }
  });
}

document.addEventListener("DOMContentLoaded", () => {
  document.querySelectorAll("table.sortable th[data-sort]").forEach(th => th.addEventListener("click", () => sortTable(th)));
  watchRun();
  rateKeys();
});
