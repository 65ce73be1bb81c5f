// The review and ops page. Review: the queue under filters (status, type,
// camera, time range), a case's photos, clip, signal timeline and review
// history, and the keyboard flow (C confirm, R reject with a reason, J next,
// K previous). History: decided violations with who decided what, when and
// why. Ops (ops and admin): the camera health board and thresholds with the
// effect of a change shown before it is saved. Talks only to this server's
// API; no third-party code.
"use strict";

const $ = (id) => document.getElementById(id);
const CLASSES = ["no_helmet", "helmet", "two_wheeler", "vehicle", "person", "traffic_light"];
let csrf = null;
let me = null;
let route = "review";
let queue = [];
let index = 0;
let reasons = [];
let cameras = [];
let thresholds = { range: [0.05, 0.95], cameras: {} };
let queueSeq = 0;
let pastSeq = 0;
let previewSeq = 0;
let healthTimer = null;
let previewTimer = null;

async function api(method, path, body) {
  const opts = { method, headers: {}, credentials: "same-origin" };
  if (body !== undefined) {
    opts.headers["Content-Type"] = "application/json";
    opts.body = JSON.stringify(body);
  }
  if (method !== "GET" && csrf) opts.headers["X-CSRF-Token"] = csrf;
  const r = await fetch(path, opts);
  let data = null;
  try { data = await r.json(); } catch (_) { data = null; }
  return { status: r.status, data };
}

function el(tag, text, cls) {
  const e = document.createElement(tag);
  if (text !== undefined && text !== null) e.textContent = String(text);
  if (cls) e.className = cls;
  return e;
}

function opt(value, text) {
  const o = el("option", text);
  o.value = value;
  return o;
}

function row(cells) {
  const tr = document.createElement("tr");
  for (const c of cells) tr.append(c instanceof Node ? c : el("td", c));
  return tr;
}

const kindName = (k) => k.replace("_", " ");
const canReview = () => !!me && (me.role === "reviewer" || me.role === "admin");
const canOps = () => !!me && (me.role === "ops" || me.role === "admin");
const isoTime = (t) => new Date(t).toISOString().replace("T", " ").replace(/\.\d+Z$/, "Z");

function showLoggedIn(yes) {
  $("login").hidden = yes;
  $("logout").hidden = !yes;
  $("tabs").hidden = !yes;
  if (!yes) {
    for (const id of ["review", "past", "ops", "filters"]) $(id).hidden = true;
    stopHealth();
  }
}

async function start() {
  const r = await api("GET", "/api/me");
  if (r.status !== 200) { showLoggedIn(false); $("login-name").focus(); return; }
  me = r.data;
  csrf = me.csrf_token;
  $("who").textContent = me.user + " (" + me.role + ")";
  $("tab-ops").hidden = !canOps();
  showLoggedIn(true);
  const [rr, cams] = await Promise.all([api("GET", "/api/review-reasons"), api("GET", "/api/cameras")]);
  reasons = rr.status === 200 ? rr.data.reject : [];
  cameras = cams.status === 200 ? cams.data.cameras : [];
  $("reason").replaceChildren(...reasons.map((r, i) => opt(r, (i + 1) + " " + r.replaceAll("_", " "))));
  const cur = $("f-camera").value;
  $("f-camera").replaceChildren(opt("", "any"), ...cameras.map((c) => opt(c.id, c.id)));
  $("f-camera").value = cur;
  await applyRoute();
}

// ------------------------------------------------------------------ routes

async function applyRoute() {
  if (!me) return;
  let r = location.hash.replace(/^#\/?/, "");
  if (!["review", "history", "ops"].includes(r)) r = canReview() || !canOps() ? "review" : "ops";
  if (r === "ops" && !canOps()) r = "review";
  route = r;
  $("review").hidden = route !== "review";
  $("past").hidden = route !== "history";
  $("ops").hidden = route !== "ops";
  $("filters").hidden = route === "ops";
  $("f-status").parentElement.hidden = route === "history";
  for (const [id, name] of [["tab-review", "review"], ["tab-history", "history"], ["tab-ops", "ops"]]) {
    $(id).classList.toggle("current", route === name);
  }
  document.title = "roadwarden " + route;
  if (route === "review") { stopHealth(); await loadQueue(); }
  else if (route === "history") { stopHealth(); await loadPast(); }
  else await loadOps();
}

// ------------------------------------------------------------------ filters

function localToIso(v) {
  if (!v) return null;
  const t = new Date(v);
  return isNaN(t.getTime()) ? null : t.toISOString();
}

function filterParams(status) {
  const p = new URLSearchParams();
  if (status) p.set("status", status);
  if ($("f-kind").value) p.set("kind", $("f-kind").value);
  if ($("f-camera").value) p.set("camera", $("f-camera").value);
  const from = localToIso($("f-from").value);
  const to = localToIso($("f-to").value);
  if (from) p.set("from", from);
  if (to) p.set("to", to);
  return p;
}

/// Every violation matching `params`, oldest first (at most `pages` pages of 500).
async function fetchAll(params, pages) {
  const out = [];
  let after = null;
  for (let page = 0; page < pages; page++) {
    const p = new URLSearchParams(params);
    p.set("limit", "500");
    if (after) p.set("after", after);
    const r = await api("GET", "/api/violations?" + p.toString());
    if (r.status !== 200) return { items: out, error: r.data ? r.data.message : String(r.status) };
    out.push(...r.data.items);
    after = r.data.next;
    if (!after) break;
  }
  return { items: out, error: null };
}

function filtersChanged(e) {
  if (e && e.target && e.target.tagName === "SELECT") e.target.blur();
  if (route === "review") { index = 0; loadQueue(); }
  else if (route === "history") loadPast();
}

// ------------------------------------------------------------------ review

async function loadQueue() {
  const my = ++queueSeq;
  const status = $("f-status").value;
  const { items, error } = await fetchAll(filterParams(status), 20);
  if (my !== queueSeq) return;
  queue = items;
  $("queue-title").textContent = status ? status[0].toUpperCase() + status.slice(1) : "All";
  $("empty").textContent = error ? "Cannot load violations: " + error
    : status === "pending" && [...filterParams("").keys()].length === 0 ? "No pending violations."
    : "No violations match the filters.";
  index = Math.min(index, Math.max(queue.length - 1, 0));
  renderQueue();
  await renderCase();
}

function renderQueue() {
  $("count").textContent = "(" + queue.length + ")";
  $("queue").replaceChildren(...queue.map((v, i) => {
    const li = el("li", v.camera + " · " + kindName(v.kind) + " · " + new Date(v.occurred_at).toLocaleTimeString() +
      (v.status !== "pending" ? " · " + v.status : ""));
    li.dataset.id = v.id;
    li.dataset.status = v.status;
    if (i === index) li.className = "current";
    li.addEventListener("click", () => { index = i; renderQueue(); renderCase(); });
    return li;
  }));
  const cur = $("queue").children[index];
  if (cur && cur.scrollIntoView) cur.scrollIntoView({ block: "nearest" });
}

async function renderCase() {
  const v = queue[index];
  $("empty").hidden = !!v;
  $("case-body").hidden = !v;
  $("reject-form").hidden = true;
  $("status").textContent = "";
  if (!v) return;
  const r = await api("GET", "/api/violations/" + v.id);
  if (r.status !== 200 || queue[index] !== v) return;
  const d = r.data;
  $("case-body").dataset.id = d.id;
  $("case-title").textContent = kindName(d.kind) + " at " + d.camera + (d.status !== "pending" ? " · " + d.status : "");
  $("case-meta").textContent = new Date(d.occurred_at).toISOString() + " · track " + d.track_id +
    " · confidence " + d.confidence.toFixed(2) + " · record " + d.record_hash.slice(0, 12);
  const photos = d.evidence.filter((e) => e.href && e.kind !== "clip");
  $("photos").replaceChildren(...photos.map((e) => {
    const f = document.createElement("figure");
    const img = document.createElement("img");
    img.src = e.href; img.alt = e.kind + " " + (e.role || "");
    f.append(img, el("figcaption", e.kind + (e.role ? " · " + e.role : "")));
    return f;
  }));
  const clip = d.evidence.find((e) => e.href && e.kind === "clip");
  $("clip").hidden = !clip;
  if (clip) $("clip").src = clip.href; else $("clip").removeAttribute("src");
  renderSignal(d);
  const decidable = d.status === "pending" && canReview();
  $("actions").hidden = !decidable;
  const reviews = d.reviews || [];
  $("case-reviews-box").hidden = reviews.length === 0;
  $("case-reviews").replaceChildren(...reviews.map((rv) => {
    const li = el("li", rv.status + (rv.reason ? " (" + rv.reason.replaceAll("_", " ") + ")" : "") + " by " +
      rv.reviewer + " at " + isoTime(rv.reviewed_at_us / 1000) + (rv.note ? " — " + rv.note : ""));
    li.dataset.reviewer = rv.reviewer;
    return li;
  }));
}

/// The signal's states around a red-light crossing as a bar, with the
/// crossing (the `at` frame) and the other evidence frames marked.
function renderSignal(d) {
  const signal = (d.detail && d.detail.signal) || [];
  const frames = (d.detail && d.detail.frames) || [];
  const box = $("signal-box");
  box.hidden = d.kind !== "red_light" && signal.length === 0;
  const bar = $("signal-timeline");
  const axis = $("signal-axis");
  bar.replaceChildren();
  axis.replaceChildren();
  $("signal-summary").textContent = "";
  if (box.hidden) return;
  if (signal.length === 0) { $("signal-summary").textContent = "No signal changes were recorded."; return; }
  const at = frames.find((f) => f.role === "at");
  const cross = Date.parse(at ? at.captured_at : d.occurred_at);
  const changes = signal.map((s) => ({ t: Date.parse(s.at), state: s.state })).sort((a, b) => a.t - b.t);
  const marks = frames.map((f) => ({ t: Date.parse(f.captured_at), role: f.role }));
  const all = [cross, ...changes.map((c) => c.t), ...marks.map((m) => m.t)];
  let t0 = Math.min(...all);
  let t1 = Math.max(...all);
  const pad = Math.max((t1 - t0) * 0.08, 500);
  t0 -= pad; t1 += pad;
  const pct = (t) => (100 * (t - t0) / (t1 - t0)).toFixed(3) + "%";
  const rel = (t) => { const s = (t - cross) / 1000; return (s > 0 ? "+" : s < 0 ? "−" : "") + Math.abs(s).toFixed(1) + " s"; };
  const segs = [];
  if (changes[0].t > t0) segs.push({ from: t0, to: changes[0].t, state: "unknown", recorded: false });
  changes.forEach((c, i) => segs.push({ from: c.t, to: i + 1 < changes.length ? changes[i + 1].t : t1, state: c.state, recorded: true }));
  for (const s of segs) {
    const div = el("div", null, "seg state-" + s.state + (s.recorded ? "" : " unrecorded"));
    div.style.left = pct(s.from);
    div.style.width = (100 * (s.to - s.from) / (t1 - t0)).toFixed(3) + "%";
    div.dataset.state = s.state;
    div.title = s.state + (s.recorded ? " from " + rel(s.from) : " (before the recorded changes)");
    bar.append(div);
  }
  for (const m of marks) {
    if (m.role === "at") continue;
    const div = el("div", null, "mark role-" + m.role);
    div.style.left = pct(m.t);
    div.title = m.role + " frame " + rel(m.t);
    bar.append(div);
  }
  const x = el("div", null, "mark crossing");
  x.id = "signal-crossing";
  x.style.left = pct(cross);
  x.title = "crossing";
  bar.append(x);
  for (const c of changes) {
    const lab = el("span", rel(c.t), "tick");
    lab.style.left = pct(c.t);
    axis.append(lab);
  }
  const lab = el("span", "crossing", "tick crossing-label");
  lab.style.left = pct(cross);
  axis.append(lab);
  let state = "unknown";
  let since = null;
  for (const c of changes) if (c.t <= cross) { if (c.state !== state) since = c.t; state = c.state; }
  $("signal-summary").textContent = state === "unknown" ? "Signal state at the crossing is unknown."
    : "Signal " + state + " at the crossing" + (since !== null ? ", " + ((cross - since) / 1000).toFixed(1) + " s after it turned " + state : "") + ".";
  $("signal-summary").dataset.state = state;
}

async function decide(body) {
  const v = queue[index];
  if (!v || !canReview() || v.status !== "pending") return;
  const r = await api("POST", "/api/violations/" + v.id + "/review", body);
  if (r.status === 200 || r.status === 409) {
    const li = el("li", v.camera + " · " + kindName(v.kind) + " → " +
      (r.status === 200 ? r.data.status + (body.reason ? " (" + body.reason + ")" : "") : "already decided"));
    li.dataset.id = v.id;
    $("history").prepend(li);
    if ($("f-status").value === "pending") {
      queue.splice(index, 1);
      if (index >= queue.length) index = Math.max(queue.length - 1, 0);
    } else if (r.status === 200) {
      v.status = r.data.status;
    }
    renderQueue();
    await renderCase();
    $("status").textContent = r.status === 200 ? "Saved." : "";
  } else {
    $("status").textContent = "Not saved: " + (r.data ? r.data.message : r.status);
  }
}

function openReject() {
  const v = queue[index];
  if (!v || !canReview() || v.status !== "pending") return;
  $("reject-form").hidden = false;
  $("reason").focus();
}

// ------------------------------------------------------------------ history

async function loadPast() {
  const my = ++pastSeq;
  const [c, r] = await Promise.all([fetchAll(filterParams("confirmed"), 4), fetchAll(filterParams("rejected"), 4)]);
  if (my !== pastSeq) return;
  // The latest 100 by time of occurrence; their reviews say who decided and when.
  const items = [...c.items, ...r.items].sort((a, b) => b.occurred_at_us - a.occurred_at_us).slice(0, 100);
  const details = new Array(items.length);
  let next = 0;
  const worker = async () => {
    while (next < items.length) {
      const i = next++;
      const d = await api("GET", "/api/violations/" + items[i].id);
      details[i] = d.status === 200 ? d.data : null;
    }
  };
  await Promise.all(Array.from({ length: Math.min(6, items.length) }, worker));
  if (my !== pastSeq) return;
  const rows = items.map((v, i) => {
    const reviews = (details[i] && details[i].reviews) || [];
    return { v, last: reviews.length ? reviews[reviews.length - 1] : null };
  }).sort((a, b) => (b.last ? b.last.reviewed_at_us : 0) - (a.last ? a.last.reviewed_at_us : 0));
  $("past-count").textContent = "(" + rows.length + ")";
  $("past-empty").hidden = rows.length > 0;
  $("past-table").querySelector("tbody").replaceChildren(...rows.map(({ v, last }) => {
    const tr = row([
      isoTime(v.occurred_at), v.camera, kindName(v.kind), el("td", v.status, "decision " + v.status),
      last && last.reason ? last.reason.replaceAll("_", " ") : "", last ? last.reviewer : "",
      last ? isoTime(last.reviewed_at_us / 1000) : "", last ? last.note : "",
    ]);
    tr.dataset.id = v.id;
    tr.dataset.status = v.status;
    if (last) tr.dataset.reviewer = last.reviewer;
    return tr;
  }));
}

// ------------------------------------------------------------------ ops

function stopHealth() {
  if (healthTimer !== null) { clearInterval(healthTimer); healthTimer = null; }
}

async function loadOps() {
  stopHealth();
  await Promise.all([refreshHealth(), loadThresholds()]);
  if (route === "ops") healthTimer = setInterval(refreshHealth, 3000);
}

function age(t) {
  if (!t) return "never";
  const s = Math.max(0, (Date.now() - Date.parse(t)) / 1000);
  return s < 60 ? s.toFixed(1) + " s ago" : s < 3600 ? (s / 60).toFixed(1) + " min ago" : (s / 3600).toFixed(1) + " h ago";
}

async function refreshHealth() {
  const r = await api("GET", "/api/cameras");
  if (r.status !== 200) { $("health-updated").textContent = "not updated: " + (r.data ? r.data.message : r.status); return; }
  cameras = r.data.cameras;
  $("health").querySelector("tbody").replaceChildren(...cameras.map((c) => {
    const s = c.status;
    const stateCell = el("td", s ? s.state : "no status", "state state-" + (s ? s.state : "none"));
    const tr = s
      ? row([c.id, stateCell, s.input_fps.toFixed(1), s.analysed_fps.toFixed(1), age(s.last_frame_at),
        s.reconnects, s.dropped_frames, el("td", s.signal || "", "signal-" + (s.signal || "none")), s.last_error || ""])
      : row([c.id, stateCell, "", "", "", "", "", "", ""]);
    tr.dataset.camera = c.id;
    if (s) tr.dataset.state = s.state;
    return tr;
  }));
  $("health-updated").textContent = "updated " + new Date().toLocaleTimeString();
}

async function loadThresholds() {
  const r = await api("GET", "/api/thresholds");
  if (r.status !== 200) { $("thr-status").textContent = "Cannot load thresholds: " + (r.data ? r.data.message : r.status); return; }
  thresholds = r.data;
  const rows = [];
  for (const [cam, classes] of Object.entries(thresholds.cameras)) {
    for (const [cls, t] of Object.entries(classes)) {
      const tr = row([cam, cls, t.value.toFixed(2), t.source,
        t.updated_by ? t.updated_by + " at " + isoTime(t.updated_at) : ""]);
      tr.dataset.camera = cam;
      tr.dataset.class = cls;
      tr.addEventListener("click", () => {
        $("thr-camera").value = cam; $("thr-class").value = cls; $("thr-value").value = ""; thresholdTarget();
      });
      rows.push(tr);
    }
  }
  $("thr-table").querySelector("tbody").replaceChildren(...rows);
  const cam = $("thr-camera").value;
  const cls = $("thr-class").value;
  $("thr-camera").replaceChildren(...cameras.map((c) => opt(c.id, c.id)));
  $("thr-class").replaceChildren(...CLASSES.map((c) => opt(c, c.replace("_", " "))));
  if (cam) $("thr-camera").value = cam;
  if (cls) $("thr-class").value = cls;
  $("thr-value").min = thresholds.range[0];
  $("thr-value").max = thresholds.range[1];
  thresholdTarget(true);
}

function inForce() {
  const c = thresholds.cameras[$("thr-camera").value];
  return c ? c[$("thr-class").value] : undefined;
}

/// The camera or class changed: show what is in force and start from it.
function thresholdTarget(keepValue) {
  const t = inForce();
  $("thr-current").textContent = t ? t.value.toFixed(2) + " (" + t.source + ")" : "the model's own";
  if (!keepValue || $("thr-value").value === "") $("thr-value").value = t ? t.value.toFixed(2) : "";
  schedulePreview();
}

function schedulePreview() {
  if (previewTimer !== null) clearTimeout(previewTimer);
  previewTimer = setTimeout(runPreview, 150);
}

function validValue() {
  const raw = $("thr-value").value;
  const v = Number(raw);
  if (raw === "" || !isFinite(v) || v < thresholds.range[0] || v > thresholds.range[1]) return null;
  return v;
}

async function runPreview() {
  previewTimer = null;
  const my = ++previewSeq;
  const cam = $("thr-camera").value;
  const cls = $("thr-class").value;
  const v = validValue();
  if (!cam || !cls) return;
  if (v === null) {
    $("preview").hidden = true;
    $("thr-status").textContent = "Enter a value from " + thresholds.range[0] + " to " + thresholds.range[1] + ".";
    return;
  }
  const days = $("thr-days").value;
  const q = "/api/cameras/" + encodeURIComponent(cam) + "/thresholds/" + encodeURIComponent(cls) +
    "/preview?value=" + encodeURIComponent(String(v)) + "&days=" + encodeURIComponent(days);
  const r = await api("GET", q);
  if (my !== previewSeq) return;
  if (r.status !== 200) {
    $("preview").hidden = true;
    $("thr-status").textContent = "No preview: " + (r.data ? r.data.message : r.status);
    return;
  }
  const p = r.data;
  $("thr-status").textContent = "";
  for (const side of ["kept", "dropped"]) {
    $("pv-" + side).textContent = p[side].total;
    for (const s of ["confirmed", "rejected", "pending"]) $("pv-" + side + "-" + s).textContent = p[side][s];
  }
  $("pv-summary").textContent = p.kinds.length === 0
    ? "No stored violation is scored by the " + cls.replace("_", " ") + " class: a change affects detections only."
    : "Of " + p.total + " " + p.kinds.map(kindName).join(" and ") + " violations at " + cam + " in the last " + p.days +
      " days, " + p.kept.total + " would have been kept at " + v.toFixed(2) + " and " + p.dropped.total + " dropped.";
  $("pv-warning").textContent = p.dropped.confirmed > 0
    ? p.dropped.confirmed + " confirmed violation" + (p.dropped.confirmed === 1 ? "" : "s") + " would have been missed." : "";
  $("preview").dataset.camera = cam;
  $("preview").dataset.class = cls;
  $("preview").dataset.value = String(v);
  $("preview").dataset.days = String(p.days);
  $("preview").hidden = false;
}

async function saveThreshold() {
  const cam = $("thr-camera").value;
  const cls = $("thr-class").value;
  const v = validValue();
  if (v === null) { $("thr-status").textContent = "Enter a value from " + thresholds.range[0] + " to " + thresholds.range[1] + "."; return; }
  const r = await api("PUT", "/api/cameras/" + encodeURIComponent(cam) + "/thresholds/" + encodeURIComponent(cls), { value: v });
  if (r.status === 200) {
    await loadThresholds();
    $("thr-status").textContent = "Saved " + cam + " " + cls + ": " +
      (r.data.before === null ? "model's own" : r.data.before.toFixed(2)) + " → " + r.data.value.toFixed(2) + ".";
    $("thr-status").dataset.saved = cam + "/" + cls + "=" + r.data.value;
  } else {
    $("thr-status").textContent = "Not saved: " + (r.data ? r.data.message : r.status);
  }
}

// ------------------------------------------------------------------ keyboard and wiring

document.addEventListener("keydown", (e) => {
  if (route !== "review" || $("review").hidden || e.ctrlKey || e.metaKey || e.altKey) return;
  const rejecting = !$("reject-form").hidden;
  if (rejecting) {
    if (e.key === "Escape") { $("reject-form").hidden = true; e.preventDefault(); return; }
    if (e.key === "Enter") { e.preventDefault(); $("reject-form").requestSubmit(); return; }
    if (/^[1-9]$/.test(e.key) && document.activeElement !== $("note")) {
      const i = Number(e.key) - 1;
      if (i < reasons.length) $("reason").value = reasons[i];
      e.preventDefault();
    }
    return;
  }
  const a = document.activeElement;
  if (a && (a.tagName === "INPUT" || a.tagName === "SELECT" || a.tagName === "TEXTAREA")) return;
  const k = e.key.toLowerCase();
  if (k === "c") { e.preventDefault(); decide({ decision: "confirm" }); }
  else if (k === "r") { e.preventDefault(); openReject(); }
  else if (k === "j") { e.preventDefault(); if (index < queue.length - 1) { index++; renderQueue(); renderCase(); } }
  else if (k === "k") { e.preventDefault(); if (index > 0) { index--; renderQueue(); renderCase(); } }
});

document.addEventListener("DOMContentLoaded", () => {
  $("login-form").addEventListener("submit", async (e) => {
    e.preventDefault();
    const r = await api("POST", "/api/login", { name: $("login-name").value, password: $("login-password").value });
    if (r.status === 200) { $("login-error").textContent = ""; $("login-password").value = ""; document.activeElement.blur(); start(); }
    else $("login-error").textContent = r.status === 429 ? "Too many failed logins; try again later." : "Wrong user name or password.";
  });
  $("reject-form").addEventListener("submit", (e) => {
    e.preventDefault();
    decide({ decision: "reject", reason: $("reason").value, note: $("note").value });
    $("note").value = "";
  });
  $("confirm").addEventListener("click", () => decide({ decision: "confirm" }));
  $("reject").addEventListener("click", openReject);
  $("logout").addEventListener("click", async () => {
    await api("POST", "/api/logout"); csrf = null; me = null; showLoggedIn(false);
  });
  $("filters").addEventListener("submit", (e) => e.preventDefault());
  for (const id of ["f-status", "f-kind", "f-camera", "f-from", "f-to"]) $(id).addEventListener("change", filtersChanged);
  $("f-clear").addEventListener("click", () => {
    $("f-status").value = "pending";
    for (const id of ["f-kind", "f-camera", "f-from", "f-to"]) $(id).value = "";
    $("f-clear").blur();
    filtersChanged();
  });
  $("thr-camera").addEventListener("change", () => { $("thr-value").value = ""; thresholdTarget(); });
  $("thr-class").addEventListener("change", () => { $("thr-value").value = ""; thresholdTarget(); });
  $("thr-value").addEventListener("input", schedulePreview);
  $("thr-days").addEventListener("change", schedulePreview);
  $("thr-form").addEventListener("submit", (e) => { e.preventDefault(); saveThreshold(); });
  window.addEventListener("hashchange", applyRoute);
  start();
});
