// tali view: one TALI row, its clip on a timeline, and the loader's window for the chosen config.
// Every text from a row is set with textContent (never innerHTML): rows are data, not markup.
"use strict";

const $ = (id) => document.getElementById(id);
const CONFIG_KEYS = ["seconds", "start", "num_frames", "selection", "seed", "epoch"];
const state = {
  splits: [], split: null, index: 0, row: null, lines: [], active: -2,
  duration: 30, filter: null, where: "", params: {}, windowToken: 0, rowToken: 0,
};
window.taliView = state; // for tests and the console

// Every API call names the viewer's page (X-Tali-View): the server runs SQL and decodes only for
// requests that carry it, which another site's page cannot send.
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
  const box = $("message");
  box.hidden = !text;
  box.textContent = text || "";
}

const pct = (seconds) => `${(100 * Math.max(0, Math.min(seconds, state.duration))) / state.duration}%`;

// -- location <-> state -------------------------------------------------------------------------

function readLocation() {
  const parts = location.pathname.split("/").map(decodeURIComponent);
  const query = new URLSearchParams(location.search);
  state.split = parts[2];
  state.index = Number(parts[3]) || 0;
  state.params = {};
  for (const key of CONFIG_KEYS) if (query.has(key)) state.params[key] = query.get(key);
  state.where = query.get("where") || "";
}

function queryString() {
  const query = new URLSearchParams(state.params);
  if (state.where) query.set("where", state.where);
  const text = query.toString();
  return text ? `?${text}` : "";
}

function rowPath(split, index) {
  return `/row/${encodeURIComponent(split)}/${index}`;
}

function media(name) {
  return `/media/${encodeURIComponent(state.split)}/${state.index}/${name}`;
}

// -- the row ------------------------------------------------------------------------------------

async function loadRow(split, index, { push = true } = {}) {
  const token = ++state.rowToken;
  document.body.dataset.loaded = "";
  message("");
  let row;
  try {
    row = await api(`/api/row/${encodeURIComponent(split)}/${index}`);
  } catch (error) {
    message(error.message);
    return;
  }
  if (token !== state.rowToken) return;
  const changed = split !== state.split;
  state.split = split;
  state.index = row.index;
  state.row = row;
  if (push) history.pushState(null, "", rowPath(split, row.index) + queryString());
  if (changed) { fillShards(); if (state.where) await applyFilter(state.where, { jump: false }); }
  renderRow(row);
  document.body.dataset.loaded = `${split}/${row.index}`;
  await loadWindow();
}

function renderRow(row) {
  document.title = `tali view: ${row.split} ${row.index} (item ${row.item_idx})`;
  $("to-gallery").href = `/gallery/${encodeURIComponent(row.split)}${state.where ? `?where=${encodeURIComponent(state.where)}` : ""}`;
  $("split").value = row.split;
  $("shard").value = String(row.shard.number);
  $("index").value = row.index;
  $("index").max = row.num_rows - 1;
  $("count").textContent = `of ${row.num_rows}`;
  $("item").value = row.item_idx ?? "";
  $("item-label").textContent = `item_idx ${row.item_idx} · ${row.shard.name} row ${row.shard.row}`;
  $("prev").disabled = neighbour(-1) === null;
  $("next").disabled = neighbour(1) === null;

  const image = row.image;
  $("image").src = image.error ? "" : media("image.png");
  $("image").hidden = Boolean(image.error);
  $("image-info").textContent = image.error
    ? image.error
    : `${image.format} ${image.mode} ${image.width}×${image.height} · ${row.image_url ?? ""}`;
  renderLanguages(row.wikipedia);
  renderMetrics(row.metrics);
  renderValidation(row.validation);

  const yt = row.youtube;
  $("yt-title").textContent = yt.title || "(no YouTube title)";
  $("yt-description").textContent = yt.description || "";
  const clip = row.clip;
  const video = $("video");
  if (clip.error) {
    $("clip-info").textContent = clip.error;
    video.removeAttribute("src");
    video.load();
    state.duration = 30;
  } else {
    state.duration = clip.duration_seconds;
    const audio = clip.has_audio ? `${clip.audio_sample_rate} Hz × ${clip.audio_channels}` : "no audio stream";
    // A phone clip stored sideways plays upright: show the size the player shows, and say so.
    const size = clip.rotation
      ? `${clip.display_width}×${clip.display_height} (stored ${clip.width}×${clip.height}, rotated ${clip.rotation}°)`
      : `${clip.width}×${clip.height}`;
    $("clip-info").textContent =
      `${size} · ${clip.fps.toFixed(2)} fps · ${clip.duration_seconds.toFixed(2)} s · ` +
      `${audio} · starts at ${yt.start_seconds ?? "?"} s of the video · ${(clip.bytes / 1e6).toFixed(2)} MB`;
    video.src = media("video.mp4");
  }
  $("axis-end").textContent = `${state.duration.toFixed(1)} s`;
  state.lines = yt.subtitles || [];
  renderSubtitles(yt.subtitle_error);
  drawWaveform(clip);
  const spec = $("spec");
  spec.hidden = Boolean(clip.error) || !clip.has_audio;
  if (!spec.hidden) spec.src = media("spectrogram.png?columns=800");
  state.active = -2;
  updateNow();
}

function renderLanguages(wikipedia) {
  const tabs = $("lang-tabs");
  const panel = $("lang-panel");
  tabs.replaceChildren();
  panel.replaceChildren();
  if (wikipedia.error) { panel.append(el("dd", wikipedia.error, "error")); return; }
  const languages = wikipedia.languages;
  const show = (k) => {
    for (const [j, tab] of [...tabs.children].entries()) tab.setAttribute("aria-selected", String(j === k));
    panel.replaceChildren();
    const lang = languages[k];
    const fields = [
      ["page title", lang.page_title], ["section title", lang.section_title],
      ["section path", lang.hierarchical_section_title],
      ["caption (reference)", lang.caption_reference_description],
      ["caption (alt text)", lang.caption_alt_text_description],
      ["caption (title + reference)", lang.caption_title_and_reference_description],
      ["page context", lang.context_page_description], ["section context", lang.context_section_description],
    ];
    for (const [name, value] of fields) {
      panel.append(el("dt", name));
      panel.append(el("dd", value ?? "—", value ? "" : "muted"));
    }
    panel.append(el("dt", "page"));
    const dd = el("dd");
    const url = lang.page_url || "";
    if (/^https?:\/\//.test(url)) {
      const link = el("a", url);
      link.href = url;
      link.rel = "noopener noreferrer";
      link.target = "_blank";
      dd.append(link);
    } else dd.textContent = url || "—";
    panel.append(dd);
    const flags = [lang.is_main_image && "main image", lang.attribution_passes_lang_id && "lang-id passes",
      lang.page_changed_recently && "changed recently"].filter(Boolean).join(" · ");
    panel.append(el("dt", "flags"), el("dd", flags || "—"));
  };
  languages.forEach((lang, k) => {
    const tab = el("button", lang.language, "tab");
    tab.type = "button";
    tab.setAttribute("role", "tab");
    tab.dataset.lang = lang.language;
    tab.addEventListener("click", () => show(k));
    tabs.append(tab);
  });
  if (languages.length) show(0);
}

function renderMetrics(metrics) {
  const box = $("metrics-box");
  const table = $("metrics");
  table.replaceChildren();
  box.hidden = !metrics;
  if (!metrics) return;
  for (const [name, value] of Object.entries(metrics)) {
    const tr = el("tr");
    let text = value;
    if (typeof value === "number" && !Number.isInteger(value)) text = value.toFixed(4);
    else if (Array.isArray(value)) text = value.join(", ");
    tr.append(el("th", name), el("td", text ?? "—"));
    if (name === "errors" && value && value.length) tr.className = "error";
    table.append(tr);
  }
}

function renderValidation(failures) {
  const list = $("validation");
  list.replaceChildren();
  $("validation-box").hidden = !failures;
  if (!failures) return;
  if (!failures.length) list.append(el("li", "passed every check of the report", "ok"));
  for (const f of failures) list.append(el("li", `[${f.check}] ${f.field ?? ""} ${f.error}: ${f.message}`, "error"));
}

function renderSubtitles(error) {
  const list = $("subtitles");
  const track = $("subtrack");
  list.replaceChildren();
  track.replaceChildren();
  if (error) list.append(el("li", error, "error"));
  if (!error && !state.lines.length) list.append(el("li", "no subtitle lines in this clip", "muted"));
  state.lines.forEach((line, k) => {
    const item = el("li");
    item.dataset.k = k;
    item.dataset.seconds = line.seconds;
    item.append(el("span", `${line.clip_seconds.toFixed(2)} s`, "t"), el("span", line.text, "text"));
    item.addEventListener("click", () => seek(Math.max(0, line.clip_seconds)));
    list.append(item);
    const mark = el("span", "", "cue");
    mark.style.left = pct(line.clip_seconds);
    mark.style.width = `calc(${pct(line.end_clip_seconds)} - ${pct(line.clip_seconds)})`;
    mark.title = line.text;
    mark.dataset.k = k;
    track.append(mark);
  });
}

async function drawWaveform(clip) {
  const canvas = $("wave");
  const ctx = canvas.getContext("2d");
  canvas.width = canvas.clientWidth || 800;
  ctx.clearRect(0, 0, canvas.width, canvas.height);
  if (clip.error || !clip.has_audio) {
    ctx.fillStyle = "#888";
    ctx.fillText(clip.error ? "clip unreadable" : "no audio stream", 8, 30);
    return;
  }
  const token = state.rowToken;
  let wave;
  try { wave = await api(media(`waveform.json?columns=${Math.min(4000, Math.max(16, canvas.width))}`)); }
  catch (error) { ctx.fillText(error.message, 8, 30); return; }
  if (token !== state.rowToken) return;
  const mid = canvas.height / 2;
  const step = canvas.width / wave.columns;
  ctx.fillStyle = "#3b82c4";
  for (let i = 0; i < wave.columns; i++) {
    const top = mid - wave.max[i] * mid;
    const bottom = mid - wave.min[i] * mid;
    ctx.fillRect(i * step, top, Math.max(step, 1), Math.max(bottom - top, 1));
  }
}

// -- playback -----------------------------------------------------------------------------------

function seek(seconds) {
  $("video").currentTime = seconds;
}

// The line showing at time t is the last one that started at or before t (a line lasts until
// the next one starts).
function activeLine(t) {
  let found = -1;
  for (let k = 0; k < state.lines.length; k++) {
    if (state.lines[k].clip_seconds <= t) found = k;
    else break;
  }
  if (found >= 0 && t >= state.lines[found].end_clip_seconds) found = -1;
  return found;
}

function updateNow() {
  const t = $("video").currentTime || 0;
  $("playhead").style.left = pct(t);
  $("clock").textContent = `${t.toFixed(2)} s`;
  const k = activeLine(t);
  if (k === state.active) return;
  state.active = k;
  for (const node of document.querySelectorAll("#subtitles li.active, #subtrack .cue.active")) {
    node.classList.remove("active");
  }
  $("active-line").textContent = k >= 0 ? state.lines[k].text : "";
  if (k < 0) return;
  const item = $("subtitles").querySelector(`li[data-k="${k}"]`);
  item.classList.add("active");
  $("subtrack").querySelector(`.cue[data-k="${k}"]`).classList.add("active");
  const list = $("subtitles");
  list.scrollTop = item.offsetTop - list.clientHeight / 2; // the list is the offsetParent
}

function animate() {
  updateNow();
  if (!$("video").paused) requestAnimationFrame(animate);
}

// -- the loader's window --------------------------------------------------------------------------

function readConfig() {
  const params = {};
  const seconds = $("cfg-seconds").value.trim();
  if (seconds) params.seconds = seconds;
  const mode = $("cfg-start-mode").value;
  params.start = mode === "at" ? $("cfg-start").value.trim() || "0" : mode;
  params.num_frames = $("cfg-num-frames").value;
  params.selection = $("cfg-selection").value;
  params.seed = $("cfg-seed").value || "0";
  params.epoch = $("cfg-epoch").value || "0";
  return params;
}

function writeConfig(params) {
  $("cfg-seconds").value = params.seconds ?? "3";
  const start = params.start ?? "random";
  const named = ["random", "start", "centre"].includes(start);
  $("cfg-start-mode").value = named ? start : "at";
  $("cfg-start").hidden = named;
  $("cfg-start").value = named ? "" : start;
  $("cfg-num-frames").value = params.num_frames ?? "8";
  $("cfg-selection").value = params.selection ?? "uniform";
  $("cfg-seed").value = params.seed ?? "0";
  $("cfg-epoch").value = params.epoch ?? "0";
}

async function loadWindow() {
  const token = ++state.windowToken;
  document.body.dataset.window = "";
  const query = new URLSearchParams(state.params).toString();
  const strip = $("strip");
  let sample;
  try {
    sample = await api(`/api/window/${encodeURIComponent(state.split)}/${state.index}?${query}`);
  } catch (error) {
    if (token !== state.windowToken) return;
    strip.replaceChildren(el("p", error.message, "error"));
    $("window-box").hidden = true;
    $("frame-ticks").replaceChildren();
    $("window-info").textContent = "";
    document.body.dataset.window = "error";
    return;
  }
  if (token !== state.windowToken) return;
  const box = $("window-box");
  box.hidden = false;
  box.style.left = pct(sample.start_seconds);
  box.style.width = `calc(${pct(sample.start_seconds + sample.duration_seconds)} - ${pct(sample.start_seconds)})`;
  $("window-info").textContent =
    `window [${sample.start_seconds.toFixed(3)}, ${(sample.start_seconds + sample.duration_seconds).toFixed(3)}] s ` +
    `of ${sample.clip_seconds.toFixed(2)} s · frames ${sample.frame_shape.join("×")} uint8 · audio ` +
    `${sample.audio.samples} samples at ${sample.audio.sample_rate} Hz` +
    (sample.audio.missing ? " (no audio stream: zeros)" : ` (${sample.audio.valid_samples} from the stream)`) +
    ` · epoch ${sample.epoch}, key ${sample.key}`;
  const ticks = $("frame-ticks");
  ticks.replaceChildren();
  const figures = sample.frames.map((frame, k) => {
    const figure = el("figure", null, frame.real ? "frame" : "frame pad");
    const img = el("img");
    img.src = sample.frame_urls[k];
    img.alt = `frame ${k}`;
    img.dataset.slot = k;
    img.dataset.pts = frame.pts_seconds ?? "";
    img.addEventListener("click", () => frame.pts_seconds !== null && seek(frame.pts_seconds));
    const label = frame.pts_seconds === null ? "—" : `${frame.pts_seconds.toFixed(3)} s`;
    figure.append(img, el("figcaption", `#${k} ${label}${frame.real ? "" : " (pad)"}`));
    if (frame.real && frame.pts_seconds !== null) {
      const tick = el("span", "", "tick");
      tick.style.left = pct(frame.pts_seconds);
      ticks.append(tick);
    }
    return figure;
  });
  strip.replaceChildren(...figures);
  $("window-audio").src = sample.audio_url;
  $("window-text").textContent = sample.subtitles.text
    ? `subtitles in the window (${sample.subtitles.num_lines} lines): ${sample.subtitles.text}`
    : "no subtitle lines in the window";
  await Promise.all(
    [...strip.querySelectorAll("img")].map((img) => (img.complete ? null : new Promise((ok) => {
      img.onload = ok;
      img.onerror = ok;
    }))),
  );
  if (token === state.windowToken) document.body.dataset.window = "ready";
}

// -- navigation, search, filter -------------------------------------------------------------------

function neighbour(step) {
  const split = state.splits.find((s) => s.name === state.split);
  if (state.filter) {
    const list = state.filter;
    if (step > 0) return list.find((i) => i > state.index) ?? null;
    const before = list.filter((i) => i < state.index);
    return before.length ? before[before.length - 1] : null;
  }
  const next = state.index + step;
  return split && next >= 0 && next < split.rows ? next : null;
}

function go(step) {
  const target = neighbour(step);
  if (target !== null) loadRow(state.split, target);
}

function randomRow() {
  const split = state.splits.find((s) => s.name === state.split);
  const pool = state.filter;
  if (pool && !pool.length) return;
  const target = pool ? pool[Math.floor(Math.random() * pool.length)] : Math.floor(Math.random() * split.rows);
  loadRow(state.split, target);
}

function fillShards() {
  const split = state.splits.find((s) => s.name === state.split);
  $("shard").replaceChildren(
    ...split.shards.map((shard, k) => {
      const option = el("option", `${shard.name} (rows ${shard.first}–${shard.first + shard.rows - 1})`);
      option.value = String(k);
      return option;
    }),
  );
}

async function applyFilter(where, { jump = true } = {}) {
  state.where = where.trim();
  $("where").value = state.where;
  if (!state.where) {
    state.filter = null;
    $("filter-status").textContent = "";
  } else {
    try {
      const result = await api(
        `/api/filter?split=${encodeURIComponent(state.split)}&where=${encodeURIComponent(state.where)}`,
      );
      state.filter = result.indices;
      $("filter-status").textContent = `${result.kept} of ${result.read} rows`;
      message("");
    } catch (error) {
      state.filter = null;
      $("filter-status").textContent = "";
      message(error.message);
      return;
    }
  }
  history.replaceState(null, "", rowPath(state.split, state.index) + queryString());
  if (jump && state.filter && state.filter.length && !state.filter.includes(state.index)) {
    await loadRow(state.split, state.filter[0]);
  } else if (state.row) {
    $("prev").disabled = neighbour(-1) === null;
    $("next").disabled = neighbour(1) === null;
  }
}

let searchTimer = null;
function searchSoon() {
  clearTimeout(searchTimer);
  searchTimer = setTimeout(runSearch, 200);
}

async function runSearch() {
  const q = $("search").value.trim();
  const hits = $("hits");
  hits.replaceChildren();
  hits.hidden = !q;
  if (!q) return;
  let result;
  try {
    result = await api(`/api/search?split=${encodeURIComponent(state.split)}&q=${encodeURIComponent(q)}`);
  } catch (error) {
    hits.append(el("li", error.message, "error"));
    return;
  }
  if (!result.hits.length) hits.append(el("li", "no match", "muted"));
  for (const hit of result.hits) {
    const item = el("li");
    item.dataset.index = hit.index;
    item.append(el("b", `#${hit.index}`), ` ${hit.title} `, el("span", `${hit.page_title} · item ${hit.item_idx}`, "muted"));
    item.addEventListener("click", () => { hits.hidden = true; loadRow(state.split, hit.index); });
    hits.append(item);
  }
  if (result.total > result.hits.length) hits.append(el("li", `… ${result.total} matches in all`, "muted"));
}

// -- start ------------------------------------------------------------------------------------------

function wire() {
  const video = $("video");
  video.addEventListener("timeupdate", updateNow);
  video.addEventListener("seeked", updateNow);
  video.addEventListener("play", () => requestAnimationFrame(animate));
  $("timeline").addEventListener("click", (event) => {
    const box = $("timeline").getBoundingClientRect();
    seek(((event.clientX - box.left) / box.width) * state.duration);
  });
  $("prev").addEventListener("click", () => go(-1));
  $("next").addEventListener("click", () => go(1));
  $("random").addEventListener("click", randomRow);
  $("index").addEventListener("change", () => loadRow(state.split, Number($("index").value)));
  $("split").addEventListener("change", () => loadRow($("split").value, 0));
  $("shard").addEventListener("change", () => {
    const split = state.splits.find((s) => s.name === state.split);
    loadRow(state.split, split.shards[Number($("shard").value)].first);
  });
  $("item").addEventListener("change", async () => {
    try {
      const found = await api(`/api/item/${encodeURIComponent($("item").value)}`);
      await loadRow(found.split, found.index);
    } catch (error) { message(error.message); }
  });
  $("search").addEventListener("input", searchSoon);
  $("search").addEventListener("keydown", (e) => { if (e.key === "Escape") $("hits").hidden = true; });
  $("filter-form").addEventListener("submit", (event) => { event.preventDefault(); applyFilter($("where").value); });
  $("clear-filter").addEventListener("click", () => applyFilter(""));
  $("cfg-start-mode").addEventListener("change", () => { $("cfg-start").hidden = $("cfg-start-mode").value !== "at"; });
  $("config").addEventListener("submit", (event) => {
    event.preventDefault();
    state.params = readConfig();
    history.replaceState(null, "", rowPath(state.split, state.index) + queryString());
    loadWindow();
  });
  document.addEventListener("keydown", (event) => {
    if (["INPUT", "SELECT", "TEXTAREA"].includes(document.activeElement.tagName)) return;
    if (event.key === "ArrowRight") go(1);
    else if (event.key === "ArrowLeft") go(-1);
    else if (event.key === "r") randomRow();
  });
  window.addEventListener("popstate", () => { readLocation(); writeConfig(state.params); loadRow(state.split, state.index, { push: false }); });
}

async function start() {
  wire();
  readLocation();
  writeConfig(state.params);
  const info = await api("/api/splits");
  state.splits = info.splits;
  $("split").replaceChildren(...info.splits.map((s) => {
    const option = el("option", `${s.name} (${s.rows})`);
    option.value = s.name;
    return option;
  }));
  const split = state.split;
  state.split = null; // loadRow fills the shard picker and applies the filter for a new split
  if (state.where) $("where").value = state.where;
  await loadRow(split, state.index, { push: false });
}

document.addEventListener("DOMContentLoaded", start);
