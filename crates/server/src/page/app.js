// The review page: the pending queue, a case's photos, clip and signal
// timeline, and the keyboard flow (C confirm, R reject with a reason, J next,
// K previous). Talks only to this server's API; no third-party code.
"use strict";

const $ = (id) => document.getElementById(id);
let csrf = null;
let queue = [];
let index = 0;
let reasons = [];

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

function show(section) {
  $("login").hidden = section !== "login";
  $("review").hidden = section !== "review";
  $("logout").hidden = section !== "review";
}

async function start() {
  const me = await api("GET", "/api/me");
  if (me.status !== 200) { show("login"); $("login-name").focus(); return; }
  csrf = me.data.csrf_token;
  $("who").textContent = me.data.user + " (" + me.data.role + ")";
  show("review");
  const rr = await api("GET", "/api/review-reasons");
  reasons = rr.status === 200 ? rr.data.reject : [];
  const sel = $("reason");
  sel.replaceChildren(...reasons.map((r, i) => {
    const o = document.createElement("option");
    o.value = r; o.textContent = (i + 1) + " " + r.replaceAll("_", " ");
    return o;
  }));
  await loadQueue();
}

async function loadQueue() {
  queue = [];
  let after = null;
  for (let page = 0; page < 20; page++) {
    const q = "/api/violations?status=pending&limit=500" + (after ? "&after=" + encodeURIComponent(after) : "");
    const r = await api("GET", q);
    if (r.status !== 200) break;
    queue.push(...r.data.items);
    after = r.data.next;
    if (!after) break;
  }
  index = Math.min(index, Math.max(queue.length - 1, 0));
  renderQueue();
  await renderCase();
}

function renderQueue() {
  $("count").textContent = "(" + queue.length + ")";
  $("queue").replaceChildren(...queue.map((v, i) => {
    const li = document.createElement("li");
    li.textContent = v.camera + " · " + v.kind.replace("_", " ") + " · " + new Date(v.occurred_at).toLocaleTimeString();
    li.dataset.id = v.id;
    if (i === index) li.className = "current";
    li.addEventListener("click", () => { index = i; renderQueue(); renderCase(); });
    return li;
  }));
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
  $("case-title").textContent = d.kind.replace("_", " ") + " at " + d.camera;
  $("case-meta").textContent = new Date(d.occurred_at).toISOString() + " · track " + d.track_id +
    " · confidence " + d.confidence.toFixed(2) + " · record " + d.record_hash.slice(0, 12);
  const photos = d.evidence.filter((e) => e.href && e.kind !== "clip");
  $("photos").replaceChildren(...photos.map((e) => {
    const f = document.createElement("figure");
    const img = document.createElement("img");
    img.src = e.href; img.alt = e.kind + " " + (e.role || "");
    const c = document.createElement("figcaption");
    c.textContent = e.kind + (e.role ? " · " + e.role : "");
    f.append(img, c);
    return f;
  }));
  const clip = d.evidence.find((e) => e.href && e.kind === "clip");
  $("clip").hidden = !clip;
  if (clip) $("clip").src = clip.href; else $("clip").removeAttribute("src");
  const signal = (d.detail && d.detail.signal) || [];
  $("signal").replaceChildren(...signal.map((s) => {
    const li = document.createElement("li");
    li.textContent = JSON.stringify(s);
    return li;
  }));
}

async function decide(body) {
  const v = queue[index];
  if (!v) return;
  const r = await api("POST", "/api/violations/" + v.id + "/review", body);
  if (r.status === 200 || r.status === 409) {
    const li = document.createElement("li");
    li.textContent = v.camera + " · " + v.kind.replace("_", " ") + " → " +
      (r.status === 200 ? r.data.status + (body.reason ? " (" + body.reason + ")" : "") : "already decided");
    li.dataset.id = v.id;
    $("history").prepend(li);
    queue.splice(index, 1);
    if (index >= queue.length) index = Math.max(queue.length - 1, 0);
    renderQueue();
    await renderCase();
    $("status").textContent = r.status === 200 ? "Saved." : "";
  } else {
    $("status").textContent = "Not saved: " + (r.data ? r.data.message : r.status);
  }
}

function openReject() {
  if (!queue[index]) return;
  $("reject-form").hidden = false;
  $("reason").focus();
}

document.addEventListener("keydown", (e) => {
  if ($("review").hidden || e.ctrlKey || e.metaKey || e.altKey) return;
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
  if (document.activeElement && document.activeElement.tagName === "INPUT") return;
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
  $("logout").addEventListener("click", async () => { await api("POST", "/api/logout"); csrf = null; show("login"); });
  start();
});
