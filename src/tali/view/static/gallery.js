// tali view's gallery: a page of cards (image, title, languages, key metrics), sorted and filtered
// on the server, and selections (tagged rows or the filter) saved as `tali filter --index` files.
// Every text from a row is set with textContent (never innerHTML): rows are data, not markup.
"use strict";

const $ = (id) => document.getElementById(id);
const state = { split: null, where: "", sort: "item_idx", order: "asc", page: 0, perPage: 24, tagged: new Map(), last: null, token: 0 };
window.taliGallery = state; // for tests and the console

async function api(url, init = {}) {
  const response = await fetch(url, { ...init, headers: { "X-Tali-View": "1", ...(init.headers || {}) } });
  let body;
  try { body = await response.json(); } catch { body = { error: response.statusText }; }
  if (!response.ok) throw new Error(body.error || `${response.status} ${response.statusText}`);
  return body;
}

function el(tag, text, cls) {
  const node = document.createElement(tag);
  if (text !== undefined && text !== null) node.textContent = String(text);
  if (cls) node.className = cls;
  return node;
}

function message(text) {
  $("message").hidden = !text;
  $("message").textContent = text || "";
}

function tags() {
  if (!state.tagged.has(state.split)) state.tagged.set(state.split, new Set());
  return state.tagged.get(state.split);
}

function readLocation() {
  state.split = decodeURIComponent(location.pathname.split("/")[2] || "");
  const query = new URLSearchParams(location.search);
  state.where = query.get("where") || "";
  state.sort = query.get("sort") || "item_idx";
  state.order = query.get("order") === "desc" ? "desc" : "asc";
  state.page = Math.max(0, Number(query.get("page")) || 0);
  state.perPage = Number(query.get("per_page")) || 24;
}

function writeLocation() {
  const query = new URLSearchParams({ sort: state.sort, order: state.order, page: state.page, per_page: state.perPage });
  if (state.where) query.set("where", state.where);
  history.replaceState(null, "", `/gallery/${encodeURIComponent(state.split)}?${query}`);
}

function fmt(value) {
  if (value === null || value === undefined) return "—";
  if (typeof value === "number" && !Number.isInteger(value)) return value.toFixed(3);
  return String(value);
}

function card(row) {
  const node = el("article", null, "card");
  node.dataset.index = row.index;
  node.dataset.item = row.item_idx;
  if (tags().has(row.index)) node.classList.add("tagged");
  const img = el("img", null, "image");
  img.src = `/media/${encodeURIComponent(state.split)}/${row.index}/thumb.png`;
  img.alt = `image of row ${row.index}`;
  img.loading = "lazy";
  img.addEventListener("error", () => img.replaceWith(el("div", "no image (see the row page)", "muted noimg")));
  const poster = el("img", null, "poster");
  poster.src = `/media/${encodeURIComponent(state.split)}/${row.index}/poster.png`;
  poster.alt = `clip frame of row ${row.index}`;
  poster.loading = "lazy";
  poster.addEventListener("error", () => poster.replaceWith(el("div", "no clip frame", "muted noimg")));
  const link = el("a", null, "pictures");
  link.href = `/row/${encodeURIComponent(state.split)}/${row.index}`;
  link.append(img, poster);
  const bar = el("div", null, "row-bar");
  const label = el("label");
  const box = el("input");
  box.type = "checkbox";
  box.className = "tag";
  box.checked = tags().has(row.index);
  box.addEventListener("change", () => {
    if (box.checked) tags().add(row.index); else tags().delete(row.index);
    node.classList.toggle("tagged", box.checked);
    countTags();
  });
  label.append(box, ` #${row.index}`);
  bar.append(label, el("span", `${state.sort} ${fmt(row.sort_value)}`, "sort-value"));
  const list = el("dl");
  list.append(el("dt", "item_idx"), el("dd", row.item_idx));
  list.append(el("dt", "languages"), el("dd", row.languages.join(" ") || "—"));
  // Metrics not measured for this row (no metrics table, or not in it) are left out.
  for (const [name, value] of Object.entries(row.metrics)) if (value !== null) list.append(el("dt", name), el("dd", fmt(value)));
  node.append(link, bar, el("div", row.title || "(no YouTube title)", "title"), el("div", row.page_title || "", "sub"), list);
  return node;
}

function countTags() {
  $("tag-count").textContent = `${tags().size} tagged`;
}

async function load() {
  const token = ++state.token;
  document.body.dataset.loaded = "";
  const query = new URLSearchParams({
    split: state.split, sort: state.sort, order: state.order, page: state.page, per_page: state.perPage,
  });
  if (state.where) query.set("where", state.where);
  let result;
  try {
    result = await api(`/api/gallery?${query}`);
  } catch (error) {
    message(error.message);
    document.body.dataset.loaded = "error";
    return;
  }
  if (token !== state.token) return;
  message("");
  state.last = result;
  const sort = $("sort");
  if (sort.options.length !== result.columns.length) {
    sort.replaceChildren(...result.columns.map((name) => { const o = el("option", name); o.value = name; return o; }));
  }
  sort.value = result.sort;
  $("order").value = result.order;
  $("per-page").value = String(result.per_page);
  $("where").value = result.where;
  $("status").textContent = result.where ? `${result.total} of ${result.rows} rows pass` : `${result.rows} rows`;
  $("page-info").textContent = `page ${result.page + 1} of ${result.pages}`;
  $("prev-page").disabled = result.page <= 0;
  $("next-page").disabled = result.page + 1 >= result.pages;
  $("grid").replaceChildren(...result.cards.map(card));
  $("to-row").href = result.cards.length ? `/row/${encodeURIComponent(state.split)}/${result.cards[0].index}` : "/";
  for (const id of ["save-tagged", "save-filter"]) $(id).disabled = !result.selections;
  if (!result.selections) $("saved").textContent = "saving is off (start tali view with --selections DIR)";
  countTags();
  writeLocation();
  document.body.dataset.loaded = `${state.split}/${result.page}`;
}

async function save(kind) {
  const name = $("selection-name").value.trim();
  const body = { name, split: state.split };
  if (kind === "tagged") body.indices = [...tags()].sort((a, b) => a - b);
  else body.where = state.where;
  document.body.dataset.saved = "";
  try {
    const saved = await api("/api/selection", {
      method: "POST", headers: { "Content-Type": "application/json" }, body: JSON.stringify(body),
    });
    $("saved").textContent = `saved ${saved.kept} rows as ${saved.name} → ${saved.path}`;
    message("");
    document.body.dataset.saved = saved.name;
    await listSelections();
  } catch (error) {
    message(error.message);
    document.body.dataset.saved = "error";
  }
}

async function listSelections() {
  const result = await api("/api/selections");
  $("selections").replaceChildren(...result.selections.map((s) => {
    const item = el("li");
    item.append(el("b", s.name), ` · ${s.split} · ${s.kept} rows · `, el("code", s.where ?? ""), el("div", s.path, "muted"));
    return item;
  }));
}

function wire() {
  $("split").addEventListener("change", () => { state.split = $("split").value; state.page = 0; load(); });
  $("sort").addEventListener("change", () => { state.sort = $("sort").value; state.page = 0; load(); });
  $("order").addEventListener("change", () => { state.order = $("order").value; state.page = 0; load(); });
  $("per-page").addEventListener("change", () => { state.perPage = Number($("per-page").value); state.page = 0; load(); });
  $("filter-form").addEventListener("submit", (event) => {
    event.preventDefault();
    state.where = $("where").value.trim();
    state.page = 0;
    load();
  });
  $("clear-filter").addEventListener("click", () => { state.where = ""; state.page = 0; load(); });
  $("prev-page").addEventListener("click", () => { state.page = Math.max(0, state.page - 1); load(); });
  $("next-page").addEventListener("click", () => { state.page += 1; load(); });
  $("tag-page").addEventListener("click", () => {
    for (const box of document.querySelectorAll("#grid input.tag")) {
      if (!box.checked) { box.checked = true; box.dispatchEvent(new Event("change")); }
    }
  });
  $("untag-all").addEventListener("click", () => {
    tags().clear();
    for (const box of document.querySelectorAll("#grid input.tag")) box.checked = false;
    for (const node of document.querySelectorAll("#grid .card.tagged")) node.classList.remove("tagged");
    countTags();
  });
  $("save-tagged").addEventListener("click", () => save("tagged"));
  $("save-filter").addEventListener("click", () => save("filter"));
}

async function start() {
  wire();
  readLocation();
  const info = await api("/api/splits");
  $("split").replaceChildren(...info.splits.map((s) => {
    const option = el("option", `${s.name} (${s.rows})`);
    option.value = s.name;
    return option;
  }));
  $("split").value = state.split;
  await load();
  await listSelections();
}

document.addEventListener("DOMContentLoaded", start);
