"use strict";
// The unisr page: plain DOM and fetch against the server's JSON API (no build step, nothing from the internet).

const $ = (id) => document.getElementById(id);
const HUE_STEP = 47; // spreads consecutive codes over the colour wheel
const LEVEL_STEP = 97; // and the same code at another level elsewhere

class ApiError extends Error {
  constructor(message, field) {
    super(message);
    this.field = field;
  }
}

async function api(path, body) {
  const options = body === undefined ? {} : {
    method: "POST",
    headers: { "content-type": "application/json" },
    body: JSON.stringify(body),
  };
  let response;
  try {
    response = await fetch(path, options);
  } catch (error) {
    throw new ApiError(`cannot reach the server (${error.message})`, null);
  }
  const payload = await response.json().catch(() => ({ error: `HTTP ${response.status}` }));
  if (!response.ok) throw new ApiError(payload.error || `HTTP ${response.status}`, payload.field || null);
  return payload;
}

function element(tag, attributes = {}, ...children) {
  const node = document.createElement(tag);
  for (const [name, value] of Object.entries(attributes)) {
    if (name === "class") node.className = value;
    else if (name.startsWith("on")) node.addEventListener(name.slice(2), value);
    else node.setAttribute(name, value);
  }
  for (const child of children) if (child !== null && child !== undefined) node.append(child);
  return node;
}

function chips(semanticId, shared = null) {
  const box = element("span", { class: "sid", title: "semantic ID" });
  if (!semanticId) {
    box.append(element("span", { class: "code none" }, "no ID"));
    return box;
  }
  semanticId.forEach((code, level) => {
    const hue = (code * HUE_STEP + level * LEVEL_STEP) % 360;
    const chip = element("span", { class: "code", style: `--hue:${hue}` }, String(code));
    if (shared !== null && level >= shared) chip.classList.add("dim");
    box.append(chip);
  });
  return box;
}

function itemRow(entry, extra = null) {
  const open = () => showItem(entry.item_id);
  return element(
    "li",
    { class: "result", "data-item": entry.item_id },
    entry.rank !== undefined ? element("span", { class: "rank" }, String(entry.rank)) : null,
    element(
      "div",
      { class: "main" },
      element("a", { href: "#", class: "title", title: entry.title || entry.item_id, onclick: (event) => { event.preventDefault(); open(); } }, entry.title || entry.item_id),
      element("div", { class: "sub" }, element("code", {}, entry.item_id), chips(entry.semantic_id, entry.shared_levels ?? null), extra),
    ),
    entry.score !== undefined ? element("span", { class: "score", title: "log-probability" }, entry.score.toFixed(2)) : null,
  );
}

function showError(id, error) {
  const box = $(id);
  if (!error) {
    box.hidden = true;
    box.textContent = "";
    return;
  }
  box.textContent = error.field ? `${error.message}  [${error.field}]` : error.message;
  box.hidden = false;
}

async function busy(button, label, work) {
  const text = button.textContent;
  button.disabled = true;
  button.textContent = label;
  button.classList.add("busy");
  try {
    return await work();
  } finally {
    button.disabled = false;
    button.textContent = text;
    button.classList.remove("busy");
  }
}

function fill(list, rows, empty) {
  list.replaceChildren(...(rows.length ? rows : [element("li", { class: "empty" }, empty)]));
}

function optionalText(id) {
  const value = $(id).value.trim();
  return value === "" ? undefined : value;
}

async function runSearch(event) {
  event?.preventDefault();
  const body = { query: $("query").value, k: Number($("search-k").value) };
  const user = optionalText("search-user");
  if (user !== undefined) body.user = user;
  const list = $("search-results");
  list.classList.add("loading");
  $("search-status").textContent = "searching…";
  try {
    const answer = await busy($("search-submit"), "Searching…", () => api("/search", body));
    showError("search-error", null);
    fill(list, answer.results.map((entry) => itemRow(entry)), "no results");
    const batch = answer.batch_size > 1 ? `, decoded in a batch of ${answer.batch_size}` : "";
    $("search-status").textContent = `${answer.results.length} results in ${answer.took_ms.toFixed(0)} ms${batch}`;
  } catch (error) {
    showError("search-error", error);
    $("search-status").textContent = "";
  } finally {
    list.classList.remove("loading");
  }
}

async function runUser(event) {
  event?.preventDefault();
  const user = $("user-id").value.trim();
  const k = Number($("user-k").value);
  for (const id of ["user-history", "user-recs"]) $(id).classList.add("loading");
  $("user-status").textContent = "loading…";
  try {
    const [view, answer] = await busy($("user-submit"), "Loading…", () =>
      Promise.all([api(`/users/${encodeURIComponent(user)}`), api("/recommend", { user, k })]),
    );
    showError("user-error", null);
    fill(
      $("user-history"),
      view.history.map((entry) => itemRow(entry, element("span", { class: `split ${entry.split}` }, entry.split))),
      "no history",
    );
    fill($("user-recs"), answer.results.map((entry) => itemRow(entry)), "no recommendations");
    $("user-status").textContent = `${view.history.length} items engaged; ${answer.results.length} recommendations in ${answer.took_ms.toFixed(0)} ms`;
  } catch (error) {
    const field = error.field === "user_id" ? "user" : error.field;
    showError("user-error", user === "" ? new ApiError("pick a user first", "user") : new ApiError(error.message, field));
    $("user-status").textContent = "";
  } finally {
    for (const id of ["user-history", "user-recs"]) $(id).classList.remove("loading");
  }
}

async function showItem(itemId) {
  const panel = $("item-panel");
  panel.hidden = false;
  panel.classList.add("loading");
  try {
    const item = await api(`/items/${encodeURIComponent(itemId)}`);
    showError("item-error", null);
    $("item-title").textContent = item.title;
    $("item-id").textContent = item.item_id;
    $("item-sid").replaceChildren(chips(item.semantic_id));
    $("item-text").textContent = item.fields.description || item.text;
    const fields = Object.entries(item.fields).filter(([name]) => name !== "description");
    $("item-fields").replaceChildren(
      ...fields.flatMap(([name, value]) => [element("dt", {}, name), element("dd", {}, formatField(value))]),
    );
    fill($("item-neighbours"), item.neighbours.map((entry) => itemRow(entry)), "no item shares a prefix");
    if (window.matchMedia("(max-width: 1100px)").matches) panel.scrollIntoView({ behavior: "smooth" });
  } catch (error) {
    showError("item-error", error);
  } finally {
    panel.classList.remove("loading");
  }
}

function formatField(value) {
  if (Array.isArray(value)) return value.map((part) => (Array.isArray(part) ? part.join(" › ") : String(part))).join("; ");
  if (value !== null && typeof value === "object") return JSON.stringify(value);
  return String(value);
}

async function showComparison() {
  const result = await api("/compare");
  $("compare-caption").textContent = `${result.dataset}, ${result.split} split, mean over seeds`;
  const best = {};
  for (const column of result.columns) {
    const values = result.rows.filter((row) => !row.codes.startsWith("baseline")).map((row) => row.metrics[column] ?? -1);
    best[column] = Math.max(...values);
  }
  const head = element("tr", {}, element("th", {}, "codes"), element("th", {}, "decoder"), ...result.columns.map((c) => element("th", {}, c)));
  const rows = result.rows.map((row) =>
    element(
      "tr",
      { class: row.codes.startsWith("baseline") ? "baseline" : "" },
      element("td", {}, row.codes),
      element("td", {}, row.decoder),
      ...result.columns.map((column) => {
        const value = row.metrics[column];
        const cell = element("td", { class: "num" }, value === null || value === undefined ? "–" : value.toFixed(4));
        if (value !== null && value === best[column] && !row.codes.startsWith("baseline")) cell.classList.add("best");
        return cell;
      }),
    ),
  );
  $("compare-table").replaceChildren(element("thead", {}, head), element("tbody", {}, ...rows));
  if (result.plot) {
    $("tradeoff-img").src = result.plot;
    $("tradeoff-img").hidden = false;
  }
  $("compare-panel").hidden = false;
}

async function start() {
  $("search-form").addEventListener("submit", runSearch);
  $("user-form").addEventListener("submit", runUser);
  $("item-close").addEventListener("click", () => { $("item-panel").hidden = true; });
  let health;
  try {
    health = await api("/health");
  } catch (error) {
    $("health-line").textContent = error.message;
    $("health-line").classList.add("down");
    return;
  }
  const batching = health.batching ? `batching ≤ ${health.max_batch}` : "no batching";
  $("health-line").textContent =
    `${health.run.split("/").pop()} · ${health.dataset.name} (${health.dataset.fingerprint}) · ` +
    `${health.items.toLocaleString()} items · ${health.users.toLocaleString()} users · ${health.tasks.join(" + ")} · ${batching}`;
  $("search-panel").hidden = !health.tasks.includes("search");
  $("user-panel").hidden = !health.tasks.includes("rec");
  $("search-k").max = $("user-k").max = String(health.max_k);
  const examples = await api("/examples").catch(() => ({ queries: [], users: [] }));
  $("user-options").replaceChildren(...examples.users.map((user) => element("option", { value: user })));
  $("query-examples").replaceChildren(
    ...examples.queries.map((query) =>
      element("button", { type: "button", class: "example", onclick: () => { $("query").value = query.text; runSearch(); } }, query.text),
    ),
  );
  if (health.compare) showComparison().catch((error) => console.warn("comparison:", error.message));
}

document.addEventListener("DOMContentLoaded", start);
