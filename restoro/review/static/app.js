// restoro review: the shot list and the shot view. Plain DOM, no libraries, no build step.
// Everything the server sends is put into the page as text (textContent), never as HTML.
"use strict";

const S = {
  data: null, // GET /api/shots
  rows: [], // the shots the filters let through
  sel: 0, // selected row in the list
  shot: null, // GET /api/shots/<id> of the open shot
  mode: "side", // "side" | "wipe"
  pair: 0, // which two the wipe compares (index into pairs())
  wipe: 0.5, // where the wipe is, 0..1
  zoom: false,
  zc: null, // zoom centre in full-size pixels [x, y]
  frame: 0,
  playing: false,
  comment: null, // "rejected" | "note" while the comment box is open
  busy: false,
};

const $ = (sel, el = document) => el.querySelector(sel);

function el(tag, attrs, ...kids) {
  const e = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs || {})) {
    if (v === null || v === undefined || v === false) continue;
    if (k === "class") e.className = v;
    else if (k === "text") e.textContent = v;
    else if (k.startsWith("on")) e.addEventListener(k.slice(2), v);
    else e.setAttribute(k, v === true ? "" : String(v));
  }
  for (const k of kids) if (k !== null && k !== undefined) e.append(k);
  return e;
}

function toast(text, error) {
  const t = $("#toast");
  t.textContent = text;
  t.className = "show" + (error ? " error" : "");
  clearTimeout(toast.timer);
  toast.timer = setTimeout(() => { t.className = ""; }, error ? 6000 : 1800);
}

async function api(path, opts) {
  const r = await fetch(path, opts);
  let body = null;
  try { body = await r.json(); } catch (e) { body = {error: r.status + " " + r.statusText}; }
  if (!r.ok) throw new Error(body.error || r.statusText);
  return body;
}

function statusClass(status) { return status.split(":")[0].replace(" ", "-"); }
function statusKind(status) { return status.split(":")[0]; }

// -- the list -----------------------------------------------------------------------------------

async function loadList() {
  S.data = await api("/api/shots");
  $("#project").textContent = S.data.project + " · comparing " + S.data.labels.join(" / ");
  $("#reviewer").textContent = "reviewer: " + S.data.reviewer;
  const tags = $("#filter-tag");
  const keep = tags.value;
  tags.replaceChildren(el("option", {value: "", text: "all"}),
    ...S.data.tags.map((t) => el("option", {value: t, text: t})));
  tags.value = S.data.tags.includes(keep) ? keep : "";
  const titles = $("#filter-title");
  titles.replaceChildren(el("option", {value: "", text: "all"}),
    ...S.data.titles.map((t) => el("option", {value: t, text: t})));
  $("#title-filter").hidden = S.data.titles.length < 2;
  const missing = S.data.not_analysed;
  $("#not-analysed").hidden = !missing.length;
  $("#not-analysed").textContent = missing.length
    ? "Not analysed yet (run `restoro build` first): " + missing.join(", ") : "";
}

function readFilters() {
  const q = new URLSearchParams(location.search);
  $("#filter-title").value = q.get("title") || "";
  $("#filter-status").value = q.get("status") || "";
  $("#filter-tag").value = q.get("tag") || "";
  $("#filter-qc").value = q.get("qc") || "";
}

function filterQuery() {
  const q = new URLSearchParams();
  const filters = [["title", "#filter-title"], ["status", "#filter-status"], ["tag", "#filter-tag"],
    ["qc", "#filter-qc"]];
  for (const [k, id] of filters) {
    if ($(id).value) q.set(k, $(id).value);
  }
  const s = q.toString();
  return s ? "?" + s : "";
}

function applyFilters() {
  const st = $("#filter-status").value, tag = $("#filter-tag").value, qc = $("#filter-qc").value;
  const title = $("#filter-title").value;
  S.rows = S.data.shots.filter((s) => (!title || s.title === title) &&
    (!st || statusKind(s.status) === st) && (!tag || s.tags.includes(tag)) &&
    (!qc || (s.qc && s.qc.status === qc)));
  const counts = {};
  for (const s of S.data.shots) counts[statusKind(s.status)] = (counts[statusKind(s.status)] || 0) + 1;
  $("#counts").textContent = `${S.rows.length} of ${S.data.shots.length} shots · ` +
    ["unreviewed", "approved", "rejected", "needs review"].map((k) => `${k} ${counts[k] || 0}`).join(", ");
}

function renderList() {
  applyFilters();
  const body = $("#shots tbody");
  body.replaceChildren(...S.rows.map((s, i) => listRow(s, i)));
  $("#empty").hidden = S.rows.length > 0;
  S.sel = Math.min(S.sel, Math.max(0, S.rows.length - 1));
  markSelected(false);
}

function listRow(s, i) {
  const thumb = s.thumb
    ? el("img", {class: "thumb", src: s.thumb, loading: "lazy", alt: ""})
    : el("span", {class: "nothumb", text: "not built"});
  const qc = s.qc ? el("span", {class: "badge " + s.qc.status, text: s.qc.status,
    title: s.qc.findings.map((f) => `${f.check}: ${f.message}`).join("\n") || "no findings"})
    : el("span", {class: "metrics", text: "—", title: "no cached QC (run restoro qc)"});
  const metrics = s.qc ? Object.entries(s.qc.metrics).map(([k, v]) => `${k} ${v}`).join(" · ") : "";
  const built = el("span", {class: "built"}, ...S.data.labels.map((lb) =>
    el("span", {class: s.built[lb] ? "yes" : "no", text: (s.built[lb] ? "✓ " : "✗ ") + lb,
      title: s.built[lb] ? "built" : "not built"})));
  const row = el("tr", {"data-id": s.id, "data-status": s.status, onclick: () => { S.sel = i; openShot(s.id, true); }},
    el("td", {}, thumb),
    el("td", {class: "id", text: s.id}),
    el("td", {text: s.timecode}),
    el("td", {text: String(s.frames)}),
    el("td", {}, ...s.tags.map((t) => el("span", {class: "tag", text: t}))),
    el("td", {}, qc),
    el("td", {class: "metrics", text: metrics}),
    el("td", {}, built),
    el("td", {}, el("span", {class: "status " + statusClass(s.status), text: s.status,
      title: s.comment || ""})));
  return row;
}

function markSelected(scroll) {
  const rows = $("#shots tbody").rows;
  for (let i = 0; i < rows.length; i++) rows[i].classList.toggle("sel", i === S.sel);
  if (scroll && rows[S.sel]) rows[S.sel].scrollIntoView({block: "nearest"});
}

function showList() {
  stopPlayback();
  S.shot = null;
  $("#shot-view").hidden = true;
  $("#list-view").hidden = false;
  document.title = "restoro review";
  renderList();
  markSelected(true);
}

// -- the shot -------------------------------------------------------------------------------------

function shotUrl(id) { return "/shots/" + encodeURIComponent(id) + filterQuery(); }

async function openShot(id, push) {
  let shot;
  try {
    shot = await api("/api/shots/" + encodeURIComponent(id));
  } catch (e) {
    toast(e.message, true);
    return;
  }
  if (push) history.pushState({shot: id}, "", shotUrl(id));
  stopPlayback();
  S.shot = shot;
  S.frame = 0;
  S.zoom = false;
  S.zc = null;
  S.comment = null;
  const i = S.rows.findIndex((s) => s.id === id);
  if (i >= 0) S.sel = i;
  $("#list-view").hidden = true;
  $("#shot-view").hidden = false;
  document.title = id + " · restoro review";
  renderShotHead();
  renderStage();
  renderDecision();
  renderQc();
  prefetch(neighbour(1));
}

function renderShotHead() {
  const s = S.shot;
  $("#shot-id").textContent = s.id;
  $("#shot-tc").textContent = s.timecode + " · " + s.frames + " frames";
  $("#shot-tags").replaceChildren(...s.tags.map((t) => el("span", {class: "tag", text: t})));
  $("#shot-status").textContent = s.status;
  $("#shot-status").className = "status " + statusClass(s.status);
  const i = S.rows.findIndex((r) => r.id === s.id);
  $("#shot-pos").textContent = i >= 0 ? `${i + 1} / ${S.rows.length}` : "(not in the filtered list)";
  $("#scrub").max = String(s.frames - 1);
  for (const b of document.querySelectorAll(".toolbar [data-mode]")) {
    b.classList.toggle("on", b.dataset.mode === S.mode && !S.zoom);
  }
  $("#zoom-button").classList.toggle("on", S.zoom);
  const pairs = wipePairs();
  S.pair = Math.min(S.pair, pairs.length - 1);
  $("#wipe-pair").replaceChildren(...pairs.map((p, k) => el("option", {value: String(k), text: p.join(" | ")})));
  $("#wipe-pair").value = String(S.pair);
}

function roles() { return ["source", ...S.data.labels]; }
function roleName(r) { return r === "source" ? "source (SD)" : r; }

function wipePairs() {
  const L = S.data.labels;
  const out = [];
  if (L.length > 1) out.push([L[0], L[1]]);
  for (const lb of L) out.push(["source", lb]);
  return out;
}

function fps() {
  const [n, d] = String(S.shot.rate || "24").split("/").map(Number);
  return d ? n / d : n;
}

function videoEl(role) {
  const m = S.shot.media[role];
  const v = el("video", {src: m.video, preload: "auto", muted: true, playsinline: true, loop: true,
    "data-role": role, width: S.shot.size.width, height: S.shot.size.height});
  v.muted = true;
  v.addEventListener("loadeddata", () => seekAll(S.frame));
  v.addEventListener("mousemove", (ev) => trackPointer(ev, v));
  return v;
}

function missing(role) {
  const m = S.shot.media[role];
  return el("div", {class: "missing"}, el("div", {},
    el("div", {text: `${roleName(role)} of this shot is not built.`}),
    el("div", {text: "Build it with:"}), el("code", {text: m.build || "restoro build"})));
}

function renderStage() {
  const stage = $("#stage");
  stopPlayback();
  if (S.zoom) { renderZoom(); return; }
  if (S.mode === "wipe") {
    const [a, b] = wipePairs()[S.pair];
    if (!S.shot.media[a].video || !S.shot.media[b].video) {
      stage.replaceChildren(el("div", {class: "pane"},
        !S.shot.media[a].video ? missing(a) : missing(b)));
      return;
    }
    const va = videoEl(a), vb = videoEl(b);
    const box = el("div", {class: "wipe", "data-left": a, "data-right": b});
    const size = fitSize();
    box.style.width = size[0] + "px";
    box.style.height = size[1] + "px";
    const handle = el("div", {class: "handle"});
    box.append(va, vb, handle, el("span", {class: "side left", text: roleName(a)}),
      el("span", {class: "side right", text: roleName(b)}));
    const place = () => {
      vb.style.clipPath = `inset(0 0 0 ${S.wipe * 100}%)`;
      handle.style.left = S.wipe * 100 + "%";
    };
    const drag = (ev) => {
      const r = box.getBoundingClientRect();
      S.wipe = Math.min(1, Math.max(0, (ev.clientX - r.left) / r.width));
      place();
    };
    box.addEventListener("pointerdown", (ev) => { box.setPointerCapture(ev.pointerId); drag(ev); });
    box.addEventListener("pointermove", (ev) => { if (ev.buttons) drag(ev); });
    place();
    stage.replaceChildren(box);
  } else {
    stage.replaceChildren(...roles().map((r) => el("div", {class: "pane", "data-role": r},
      el("div", {class: "label", text: roleName(r)}), S.shot.media[r].video ? videoEl(r) : missing(r))));
  }
  updateFrame();
}

function fitSize() {
  const w = S.shot.size.width, h = S.shot.size.height;
  const maxW = Math.min(document.documentElement.clientWidth - 40, w * 2);
  const maxH = Math.max(240, window.innerHeight - 330);
  const k = Math.min(maxW / w, maxH / h);
  return [Math.round(w * k), Math.round(h * k)];
}

function videos() { return Array.from(document.querySelectorAll("#stage video")); }

function trackPointer(ev, v) {
  const r = v.getBoundingClientRect();
  const f = S.shot.full;
  S.zc = [(ev.clientX - r.left) / r.width * f.width, (ev.clientY - r.top) / r.height * f.height];
}

// -- playback, kept frame-synchronous -------------------------------------------------------------

function frameTime(n) { return (n + 0.5) / fps(); }

function seekAll(n) {
  S.frame = Math.max(0, Math.min(S.shot.frames - 1, n));
  for (const v of videos()) {
    if (Math.abs(v.currentTime - frameTime(S.frame)) > 0.25 / fps()) v.currentTime = frameTime(S.frame);
  }
  if (S.zoom) renderZoom();
  updateFrame();
}

function step(d) {
  if (S.playing) stopPlayback();
  seekAll(S.frame + d);
}

function togglePlay() {
  if (S.zoom) return;
  if (S.playing) { stopPlayback(); seekAll(S.frame); return; }
  const vs = videos();
  if (!vs.length) return;
  S.playing = true;
  for (const v of vs) v.play().catch(() => {});
  $("#play").textContent = "pause";
  const master = vs[0];
  const tick = () => {
    if (!S.playing) return;
    const t = master.currentTime;
    for (const v of vs.slice(1)) if (Math.abs(v.currentTime - t) > 0.5 / fps()) v.currentTime = t;
    S.frame = Math.min(S.shot.frames - 1, Math.floor(t * fps() + 1e-6));
    updateFrame();
    requestAnimationFrame(tick);
  };
  requestAnimationFrame(tick);
}

function stopPlayback() {
  S.playing = false;
  for (const v of videos()) v.pause();
  $("#play").textContent = "play";
}

function updateFrame() {
  if (!S.shot) return;
  $("#frame-no").textContent = `frame ${S.frame + 1} / ${S.shot.frames}`;
  $("#scrub").value = String(S.frame);
  for (const line of document.querySelectorAll(".plot line.now")) {
    const x = plotX(S.frame, Number(line.dataset.n));
    line.setAttribute("x1", x);
    line.setAttribute("x2", x);
  }
}

// -- 1:1 zoom: the full-size frame of each, the same region, drag to pan --------------------------

function renderZoom() {
  const f = S.shot.full;
  if (!S.zc) S.zc = [f.width / 2, f.height / 2];
  const stage = $("#stage");
  const panes = roles().filter((r) => S.shot.media[r].frame);
  stage.replaceChildren(...panes.map((r) => {
    const img = el("img", {src: S.shot.media[r].frame + S.frame, alt: roleName(r), draggable: "false",
      width: f.width, height: f.height});
    const win = el("div", {class: "zoomwin"}, img);
    return el("div", {class: "pane", "data-role": r},
      el("div", {class: "label", text: roleName(r) + " · 1:1"}), win);
  }));
  placeZoom();
  for (const win of stage.querySelectorAll(".zoomwin")) {
    let last = null;
    win.addEventListener("pointerdown", (ev) => { last = [ev.clientX, ev.clientY]; win.setPointerCapture(ev.pointerId); });
    win.addEventListener("pointermove", (ev) => {
      if (!last || !ev.buttons) return;
      S.zc = [S.zc[0] - (ev.clientX - last[0]), S.zc[1] - (ev.clientY - last[1])];
      last = [ev.clientX, ev.clientY];
      placeZoom();
    });
    win.addEventListener("pointerup", () => { last = null; });
  }
  updateFrame();
}

function placeZoom() {
  for (const win of document.querySelectorAll("#stage .zoomwin")) {
    const img = $("img", win);
    img.style.left = Math.round(win.clientWidth / 2 - S.zc[0]) + "px";
    img.style.top = Math.round(win.clientHeight / 2 - S.zc[1]) + "px";
  }
}

function toggleZoom() {
  S.zoom = !S.zoom;
  renderShotHead();
  renderStage();
}

function setMode(mode) {
  S.mode = mode;
  S.zoom = false;
  renderShotHead();
  renderStage();
}

// -- decisions ------------------------------------------------------------------------------------

function renderDecision() {
  const s = S.shot;
  const L = S.data.labels;
  const buttons = L.map((lb, k) => el("button", {type: "button", "data-approve": lb,
    disabled: !s.media[lb].video, title: `approve ${lb} (${k + 1})`, text: `approve ${lb} (${k + 1})`,
    onclick: () => decide("approved", lb)}));
  buttons.push(el("button", {type: "button", text: "reject (x)", onclick: () => openComment("rejected")}));
  buttons.push(el("button", {type: "button", text: "note (c)", onclick: () => openComment("note")}));
  buttons.push(el("button", {type: "button", text: "clear (u)", onclick: () => decide("unreviewed", null)}));
  $("#decide-buttons").replaceChildren(...buttons);
  const e = s.entry;
  $("#entry").textContent = e
    ? `${e.decision}${e.variant ? ": " + e.variant : ""} by ${e.reviewer} at ${e.time}` +
      (e.comment ? `\n“${e.comment}”` : "") + (s.status === "needs review" && e.decision !== "note"
        ? "\nThe shot has changed since: it needs review." : "")
    : "No decision yet.";
  $("#comment-box").hidden = S.comment === null;
}

function openComment(kind) {
  S.comment = kind;
  $("#comment-label").textContent = kind === "rejected" ? "why is it rejected?" : "note";
  $("#comment-box").hidden = false;
  const c = $("#comment");
  c.value = "";
  c.focus();
}

function closeComment() {
  S.comment = null;
  $("#comment-box").hidden = true;
  $("#comment").blur();
}

async function decide(decision, variant, comment) {
  if (S.busy) return;
  const s = S.shot;
  const body = {decision, comment: comment || ""};
  if (variant) {
    body.variant = variant;
    if (s.media[variant].digest) body.digest = s.media[variant].digest;
  }
  S.busy = true;
  try {
    const row = await api("/api/shots/" + encodeURIComponent(s.id) + "/decision", {
      method: "POST", headers: {"content-type": "application/json"}, body: JSON.stringify(body)});
    const i = S.data.shots.findIndex((x) => x.id === s.id);
    if (i >= 0) S.data.shots[i] = row;
    toast(`${s.id}: ${row.status}`);
    const next = neighbour(1);
    applyFilters();
    if (decision === "approved" && next) { await openShot(next, true); return; }
    S.shot = await api("/api/shots/" + encodeURIComponent(s.id));
    closeComment();
    renderShotHead();
    renderDecision();
  } catch (e) {
    toast(e.message, true);
  } finally {
    S.busy = false;
  }
}

function neighbour(d) {
  if (!S.shot) return null;
  const list = S.rows.length && S.rows.some((r) => r.id === S.shot.id) ? S.rows.map((r) => r.id)
    : S.data.shots.map((r) => r.id);
  const i = list.indexOf(S.shot.id);
  const j = i + d;
  return j >= 0 && j < list.length ? list[j] : null;
}

function prefetch(id) {
  // Ask for the next shot's proxies now, so they are encoded (once) before they are needed.
  if (!id) return;
  api("/api/shots/" + encodeURIComponent(id)).then((s) => {
    for (const r of roles()) if (s.media[r].video) fetch(s.media[r].video).then((x) => x.blob()).catch(() => {});
  }).catch(() => {});
}

// -- QC -------------------------------------------------------------------------------------------

const PLOT_W = 260, PLOT_H = 56;
function plotX(i, n) { return n > 1 ? 4 + (i / (n - 1)) * (PLOT_W - 8) : PLOT_W / 2; }

function svg(tag, attrs) {
  const e = document.createElementNS("http://www.w3.org/2000/svg", tag);
  for (const [k, v] of Object.entries(attrs)) e.setAttribute(k, String(v));
  return e;
}

function plot(name, ys) {
  const vals = ys.filter((y) => Number.isFinite(y));
  const lo = Math.min(...vals), hi = Math.max(...vals);
  const span = hi - lo || 1;
  const pts = ys.map((y, i) => `${plotX(i, ys.length).toFixed(1)},${(PLOT_H - 4 - ((y - lo) / span) * (PLOT_H - 8)).toFixed(1)}`);
  const box = svg("svg", {width: PLOT_W, height: PLOT_H, viewBox: `0 0 ${PLOT_W} ${PLOT_H}`});
  box.append(svg("polyline", {points: pts.join(" "), fill: "none", stroke: "#6fa8ff", "stroke-width": 1.2}));
  const x = plotX(S.frame, ys.length);
  const now = svg("line", {class: "now", x1: x, x2: x, y1: 0, y2: PLOT_H, stroke: "#fff", "stroke-opacity": 0.5});
  now.dataset.n = String(ys.length);
  box.append(now);
  return el("div", {class: "plot"}, el("div", {class: "name",
    text: `${name}  ${lo.toPrecision(4)} – ${hi.toPrecision(4)}`}), box);
}

function renderQc() {
  const body = $("#qc-body");
  const qc = S.shot.qc_detail;
  const labels = Object.keys(qc);
  if (!labels.length) {
    body.replaceChildren(el("p", {text: "No cached QC for this shot: run `restoro qc` (or a build with a qc: section)."}));
    return;
  }
  body.replaceChildren(...labels.map((lb) => {
    const r = qc[lb];
    const plots = [];
    for (const [check, series] of Object.entries(r.series || {})) {
      for (const [name, ys] of Object.entries(series)) {
        if (Array.isArray(ys) && ys.length > 1) plots.push(plot(`${check} ${name}`, ys));
      }
    }
    return el("div", {class: "qcv", "data-variant": lb},
      el("div", {}, el("b", {text: lb + " "}), el("span", {class: "badge " + r.status, text: r.status}),
        el("span", {class: "metrics", text: "  " + Object.entries(r.metrics).map(([k, v]) => `${k} ${v}`).join(" · ")})),
      ...r.findings.map((f) => el("div", {class: "finding " + f.severity, text: `${f.check}: ${f.message}`})),
      el("div", {}, ...plots));
  }));
}

// -- keys -----------------------------------------------------------------------------------------

function onKey(ev) {
  const typing = ev.target.closest && ev.target.closest("input, textarea, select");
  if (!$("#help").hidden) { $("#help").hidden = true; ev.preventDefault(); return; }
  if (typing) {
    if (ev.target.id === "comment") {
      if (ev.key === "Escape") { closeComment(); ev.preventDefault(); }
      else if (ev.key === "Enter" && !ev.shiftKey) { ev.preventDefault(); sendComment(); }
    }
    return;
  }
  if (ev.ctrlKey || ev.metaKey || ev.altKey) return;
  if (ev.key === "?") { $("#help").hidden = false; ev.preventDefault(); return; }
  if (S.shot) shotKey(ev); else listKey(ev);
}

function listKey(ev) {
  const n = S.rows.length;
  const k = ev.key;
  if ((k === "j" || k === "ArrowDown") && n) S.sel = Math.min(n - 1, S.sel + 1);
  else if ((k === "k" || k === "ArrowUp") && n) S.sel = Math.max(0, S.sel - 1);
  else if ((k === "Enter" || k === "o") && n) { openShot(S.rows[S.sel].id, true); ev.preventDefault(); return; }
  else return;
  ev.preventDefault();
  markSelected(true);
}

function shotKey(ev) {
  const k = ev.key;
  const L = S.data.labels;
  const go = (d) => { const id = neighbour(d); if (id) openShot(id, true); else toast(d > 0 ? "last shot" : "first shot"); };
  const actions = {
    "n": () => go(1), "]": () => go(1), "PageDown": () => go(1),
    "p": () => go(-1), "[": () => go(-1), "PageUp": () => go(-1),
    "Escape": () => backToList(), "b": () => backToList(),
    " ": () => togglePlay(), "k": () => togglePlay(),
    "ArrowRight": () => step(ev.shiftKey ? 10 : 1), ".": () => step(1),
    "ArrowLeft": () => step(ev.shiftKey ? -10 : -1), ",": () => step(-1),
    "Home": () => step(-S.shot.frames), "End": () => step(S.shot.frames),
    "s": () => setMode("side"), "w": () => setMode("wipe"),
    "e": () => { S.pair = (S.pair + 1) % wipePairs().length; setMode("wipe"); },
    "z": () => toggleZoom(),
    "1": () => L[0] && decide("approved", L[0]),
    "2": () => L[1] && decide("approved", L[1]),
    "x": () => openComment("rejected"),
    "c": () => openComment("note"),
    "u": () => decide("unreviewed", null),
  };
  const f = actions[k];
  if (!f) return;
  ev.preventDefault();
  f();
}

function sendComment() {
  const text = $("#comment").value.trim();
  const kind = S.comment;
  if (kind === "note" && !text) { toast("a note needs a comment", true); return; }
  decide(kind, null, text);
}

function backToList() {
  history.pushState({}, "", "/" + filterQuery());
  showList();
}

// -- start ----------------------------------------------------------------------------------------

async function route() {
  const m = location.pathname.match(/^\/shots\/([^/]+)$/);
  if (m) await openShot(decodeURIComponent(m[1]), false);
  else showList();
}

async function start() {
  try {
    await loadList();
  } catch (e) {
    toast(e.message, true);
    $("#list-view").hidden = false;
    $("#not-analysed").hidden = false;
    $("#not-analysed").textContent = e.message;
    return;
  }
  readFilters();
  applyFilters();
  for (const id of ["#filter-title", "#filter-status", "#filter-tag", "#filter-qc"]) {
    $(id).addEventListener("change", () => {
      history.replaceState(history.state, "", location.pathname + filterQuery());
      S.sel = 0;
      renderList();
    });
  }
  $("#home").addEventListener("click", (ev) => { ev.preventDefault(); backToList(); });
  $("#back").addEventListener("click", (ev) => { ev.preventDefault(); backToList(); });
  $("#prev").addEventListener("click", () => { const id = neighbour(-1); if (id) openShot(id, true); });
  $("#next").addEventListener("click", () => { const id = neighbour(1); if (id) openShot(id, true); });
  for (const b of document.querySelectorAll(".toolbar [data-mode]")) {
    b.addEventListener("click", () => setMode(b.dataset.mode));
  }
  $("#wipe-pair").addEventListener("change", () => { S.pair = Number($("#wipe-pair").value); setMode("wipe"); });
  $("#zoom-button").addEventListener("click", toggleZoom);
  $("#play").addEventListener("click", togglePlay);
  $("#step-back").addEventListener("click", () => step(-1));
  $("#step-fwd").addEventListener("click", () => step(1));
  $("#scrub").addEventListener("input", () => step(Number($("#scrub").value) - S.frame));
  $("#comment-send").addEventListener("click", sendComment);
  $("#comment-cancel").addEventListener("click", closeComment);
  $("#help-button").addEventListener("click", () => { $("#help").hidden = false; });
  $("#help").addEventListener("click", () => { $("#help").hidden = true; });
  document.addEventListener("keydown", onKey);
  window.addEventListener("popstate", async () => {
    if (location.pathname === "/") { readFilters(); showList(); } else await route();
  });
  await route();
  document.body.dataset.ready = "1";
}

start();
