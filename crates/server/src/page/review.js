// @ts-check
// The review page: the queue under the filters (status, type, camera, time
// range, plate), one case on one screen (the photos in time order with the
// signal's state on each, the clip, a zoom on the offender's head or plate
// cut in the browser from the evidence boxes, the signal timeline, the
// plate field, the decision buttons; its review history below), and the
// decisions (confirm, reject with a reason) the keyboard flow in app.js
// drives. A red-light case is confirmed only once its signal timeline has
// been on screen.
// Team work: the case shown is claimed (renewed while open, released on leaving) so another
// reviewer's page skips it, the queue follows the live events (new, claimed, decided cases), a
// decision can be undone inside the window (U), and ticked cases can be rejected together for one
// reason.

import { api, canReview, failure, fetchAll, session } from "./api.js";
import { $, el, filterParams, form, input, isoTime, kindName, opt, select, zoned } from "./util.js";

const state = {
  /** The violations listed, in order. @type {any[]} */
  queue: [],
  /** The one shown. */
  index: 0,
  /** Reason codes a rejection of the case shown may carry, numbered 1.. on the page. @type {string[]} */
  reasons: [],
  /** Every reason code, for a kind the server does not list. @type {string[]} */
  all: [],
  /** The reason codes per violation kind. @type {Record<string, string[]>} */
  byKind: {},
  /** Bumped per load: an answer to an older load is dropped. */
  seq: 0,
  /** The case this page holds a claim on, and the claim's renewal. @type {string | null} */
  claimed: null,
  /** @type {number | null} */
  renewTimer: null,
  /** The last decision, while it may be undone. @type {{ v: any, until: number, timer: number } | null} */
  undo: null,
  /** Ticked cases, for a bulk rejection. @type {Set<string>} */
  picked: new Set(),
  /** The live queue. @type {EventSource | null} */
  live: null,
  /** A queue reload the live events asked for. @type {number | null} */
  refreshTimer: null,
  /** Set while the page shows one case opened by its id (from the history), not a queue. */
  single: false,
  /** The detail of the case shown (null while loading or none). @type {any} */
  detail: null,
  /** The id of the case whose signal timeline has been on screen (null: not yet). @type {string | null} */
  signalSeen: null,
  /** What the zoom shows: which frame (role) and what of it. */
  zoom: { role: "", what: /** @type {"head" | "plate"} */ ("head") },
};

/** Order of the evidence frames when their times are unknown. */
const ROLE_ORDER = ["before", "key", "at", "after"];
const ROLE_NAME = /** @type {Record<string, string>} */ ({ before: "before", at: "at the line", after: "after", key: "key" });

/**
 * The reason codes from `GET /api/review-reasons`: every one, and each kind's.
 * @param {string[]} reasons @param {Record<string, string[]>} byKind
 */
export function setReasons(reasons, byKind) {
  state.all = reasons;
  state.byKind = byKind || {};
  showReasons("");
}

/** Offers the reasons a case of `kind` may be rejected for. @param {string} kind */
function showReasons(kind) {
  const reasons = state.byKind[kind] || state.all;
  state.reasons = reasons;
  $("reason").replaceChildren(...reasons.map((r, i) => opt(r, (i + 1) + " " + r.replaceAll("_", " "))));
}

/** The filters changed: start from the top. */
export function restart() {
  state.index = 0;
  return load();
}

/** Whether another reviewer holds `v` (its listing says so and the claim has not lapsed). @param {any} v */
const heldByOther = (v) => !!v.claimed_by && !!session.me && v.claimed_by !== session.me.user &&
  Date.parse(v.claimed_until) > Date.now();

/**
 * Loads the queue the filters select and shows the current case; `keep`: a live refresh that keeps
 * the case shown (it is re-rendered only when it is no longer there).
 * @param {boolean} [keep]
 */
export async function load(keep) {
  const my = ++state.seq;
  state.single = false;
  connectLive();
  const status = select("f-status").value;
  const { items, error } = await fetchAll(filterParams(status), 20);
  if (my !== state.seq) return;
  const before = state.queue[state.index];
  // A pending case another reviewer has open is theirs: this page skips it.
  state.queue = items.filter((v) => !(v.status === "pending" && heldByOther(v)));
  for (const id of [...state.picked]) if (!state.queue.some((v) => v.id === id)) state.picked.delete(id);
  $("queue-title").textContent = status ? status[0].toUpperCase() + status.slice(1) : "All";
  $("empty").textContent = error ? "Cannot load violations: " + error
    : status === "pending" && [...filterParams("").keys()].length === 0 ? "No pending violations."
    : "No violations match the filters.";
  const same = before ? state.queue.findIndex((v) => v.id === before.id) : -1;
  if (keep && same >= 0) {
    state.index = same;
    state.queue[same] = before;
    renderQueue();
    return;
  }
  state.index = Math.min(state.index, Math.max(state.queue.length - 1, 0));
  renderQueue();
  await renderCase();
}

/**
 * Shows the one case `id` (a row of the history), claimed while open when it is pending.
 * @param {string} id
 */
export async function openCase(id) {
  const my = ++state.seq;
  const r = await api("GET", "/api/violations/" + id);
  if (my !== state.seq) return;
  state.single = true;
  state.queue = r.status === 200 ? [r.data] : [];
  state.index = 0;
  $("queue-title").textContent = "Case";
  $("empty").textContent = r.status === 200 ? "" : "Cannot open violation " + id + ": " + failure(r);
  renderQueue();
  await renderCase();
}

function renderQueue() {
  $("count").textContent = "(" + state.queue.length + ")";
  $("queue").replaceChildren(...state.queue.map((v, i) => {
    const li = el("li", v.camera + " · " + kindName(v.kind) + " · " + zoned(v.occurred_at) +
      (v.status !== "pending" ? " · " + v.status : ""));
    if (v.plate) li.append(" · ", el("span", v.plate, "plate"));
    li.dataset.id = v.id;
    li.dataset.status = v.status;
    if (i === state.index) li.className = "current";
    if (v.status === "pending" && canReview()) {
      const pick = /** @type {HTMLInputElement} */ (el("input", null, "pick"));
      pick.type = "checkbox";
      pick.title = "tick for a bulk rejection";
      pick.checked = state.picked.has(v.id);
      pick.addEventListener("click", (e) => {
        e.stopPropagation();
        if (pick.checked) state.picked.add(v.id); else state.picked.delete(v.id);
        renderBulk();
      });
      li.prepend(pick);
    }
    li.addEventListener("click", () => { state.index = i; renderQueue(); renderCase(); });
    return li;
  }));
  const cur = $("queue").children[state.index];
  if (cur && cur.scrollIntoView) cur.scrollIntoView({ block: "nearest" });
  renderBulk();
}

// ------------------------------------------------------------------ claims

function stopRenew() {
  if (state.renewTimer !== null) { clearTimeout(state.renewTimer); state.renewTimer = null; }
}

/**
 * Claims `v` for this reviewer (renewed at half its time while it stays open); false when another
 * reviewer holds it or it was decided meanwhile.
 * @param {any} v
 */
async function claim(v) {
  const r = await api("POST", "/api/violations/" + v.id + "/claim");
  if (r.status !== 200) return false;
  state.claimed = v.id;
  stopRenew();
  const wait = Math.max(1000, (Date.parse(r.data.until) - Date.now()) / 2);
  state.renewTimer = setTimeout(() => {
    state.renewTimer = null;
    const cur = state.queue[state.index];
    if (cur && cur.id === v.id && state.claimed === v.id) claim(v);
  }, wait);
  return true;
}

/** Releases this page's claim (the reviewer left the case). @param {boolean} [unloading] */
export function release(unloading) {
  stopRenew();
  const id = state.claimed;
  state.claimed = null;
  if (!id) return;
  if (unloading) {
    /** @type {Record<string, string>} */
    const headers = {};
    if (session.csrf) headers["X-CSRF-Token"] = session.csrf;
    fetch("/api/violations/" + id + "/claim", { method: "DELETE", headers, credentials: "same-origin", keepalive: true });
  } else {
    api("DELETE", "/api/violations/" + id + "/claim");
  }
}

/** Leaves the review page: the claim goes and the live queue closes. */
export function leave() {
  release();
  if (state.live) { state.live.close(); state.live = null; }
}

// ------------------------------------------------------------------ the live queue

/** Follows the live queue while the review page is shown. */
function connectLive() {
  if (state.live || typeof EventSource === "undefined") return;
  const es = new EventSource("/api/queue/events");
  state.live = es;
  /** @param {string} name @param {(d: any) => void} f */
  const on = (name, f) => es.addEventListener(name, (e) => {
    try { f(JSON.parse(/** @type {MessageEvent} */ (e).data)); } catch (_) { /* not JSON: ignore */ }
  });
  /** Drops `id` from the queue unless it is the case shown. @param {string} id */
  const drop = (id) => {
    const i = state.queue.findIndex((v) => v.id === id);
    if (i < 0 || i === state.index) return;
    state.queue.splice(i, 1);
    if (i < state.index) state.index--;
    state.picked.delete(id);
    renderQueue();
  };
  on("new", () => scheduleRefresh());
  on("returned", () => scheduleRefresh());
  on("released", () => scheduleRefresh());
  on("resync", () => scheduleRefresh());
  on("claimed", (d) => { if (session.me && d.by !== session.me.user) drop(d.id); });
  on("decided", (d) => { if (select("f-status").value === "pending") drop(d.id); else scheduleRefresh(); });
}

/** Reloads the queue shortly (events come in bursts), keeping the case shown. */
function scheduleRefresh() {
  if (state.single || $("review").hidden) return;
  if (state.refreshTimer !== null) clearTimeout(state.refreshTimer);
  state.refreshTimer = setTimeout(() => { state.refreshTimer = null; load(true); }, 300);
}

// ------------------------------------------------------------------ bulk rejection

function renderBulk() {
  const n = state.picked.size;
  $("bulk").hidden = n === 0;
  $("bulk-count").textContent = n + " ticked";
  const reason = select("bulk-reason");
  if (reason.options.length !== state.all.length) {
    reason.replaceChildren(...state.all.map((r) => opt(r, r.replaceAll("_", " "))));
  }
}

/** Rejects the ticked cases for the chosen reason; each is decided (and audited) on its own. */
async function bulkReject() {
  const ids = [...state.picked];
  if (ids.length === 0 || !canReview()) return;
  const reason = select("bulk-reason").value;
  const r = await api("POST", "/api/violations/bulk-reject", { ids, reason });
  if (r.status !== 200) { $("bulk-status").textContent = "Not rejected: " + failure(r); return; }
  /** @type {{ id: string, outcome: string }[]} */
  const results = r.data.results;
  const shown = state.queue[state.index];
  for (const x of results) {
    state.picked.delete(x.id);
    if (x.outcome !== "rejected") continue;
    const li = el("li", "bulk → rejected (" + reason + ")");
    li.dataset.id = x.id;
    $("history").prepend(li);
    if (select("f-status").value === "pending") {
      const i = state.queue.findIndex((v) => v.id === x.id);
      if (i >= 0) { state.queue.splice(i, 1); if (i < state.index) state.index--; }
    }
  }
  const left = results.filter((x) => x.outcome !== "rejected").map((x) => x.outcome.replaceAll("_", " "));
  $("bulk-status").textContent = r.data.rejected + " rejected" + (left.length ? "; left: " + left.join(", ") : "") + ".";
  state.index = Math.min(state.index, Math.max(state.queue.length - 1, 0));
  renderQueue();
  if (state.queue[state.index] !== shown) await renderCase();
}

// ------------------------------------------------------------------ undo

function clearUndo() {
  if (state.undo) clearInterval(state.undo.timer);
  state.undo = null;
  $("undo-bar").hidden = true;
}

/**
 * Offers to undo the decision on `v` until `until` (the server's window).
 * @param {any} v @param {string} label @param {string} until
 */
function offerUndo(v, label, until) {
  clearUndo();
  const end = Date.parse(until);
  if (!(end > Date.now())) return;
  const tick = () => {
    const s = Math.ceil((end - Date.now()) / 1000);
    if (s <= 0) { clearUndo(); return; }
    $("undo-text").textContent = label + " · undo within " + s + " s";
  };
  state.undo = { v, until: end, timer: setInterval(tick, 250) };
  $("undo-bar").hidden = false;
  $("undo-bar").dataset.id = v.id;
  tick();
}

/** Undoes the last decision, inside its window: the case comes back, shown and claimed. */
export async function undo() {
  const u = state.undo;
  if (!u) return;
  const r = await api("POST", "/api/violations/" + u.v.id + "/undo");
  clearUndo();
  if (r.status !== 200) { $("status").textContent = "Not undone: " + failure(r); return; }
  const v = Object.assign({}, u.v, { status: "pending" });
  const i = state.queue.findIndex((x) => x.id === v.id);
  if (i >= 0) { state.queue[i] = v; state.index = i; }
  else { state.queue.splice(state.index, 0, v); }
  const li = el("li", v.camera + " · " + kindName(v.kind) + " → undone");
  li.dataset.id = v.id;
  $("history").prepend(li);
  renderQueue();
  await renderCase();
  $("status").textContent = "Undone: the case is pending again.";
}

/** Moves `step` cases along the queue, if there is one there. @param {number} step */
export function move(step) {
  const i = state.index + step;
  if (i < 0 || i >= state.queue.length) return;
  state.index = i;
  renderQueue();
  renderCase();
}

async function renderCase() {
  const v = state.queue[state.index];
  $("empty").hidden = !!v;
  $("case-body").hidden = !v;
  $("reject-form").hidden = true;
  $("status").textContent = "";
  $("status").classList.remove("refused");
  $("plate-status").textContent = "";
  state.detail = null;
  if (!v) { release(); return; }
  if (v.status === "pending" && canReview() && state.claimed !== v.id) {
    // Another reviewer has it open (or decided it): it leaves this queue, the next one comes up.
    if (!(await claim(v))) {
      if (state.queue[state.index] !== v) return;
      state.queue.splice(state.index, 1);
      state.index = Math.min(state.index, Math.max(state.queue.length - 1, 0));
      renderQueue();
      await renderCase();
      return;
    }
  } else if (v.status !== "pending" && state.claimed) {
    release();
  }
  const r = await api("GET", "/api/violations/" + v.id);
  if (r.status !== 200 || state.queue[state.index] !== v) return;
  const d = r.data;
  state.detail = d;
  if (state.signalSeen !== d.id) state.signalSeen = null;
  showReasons(d.kind);
  $("case-body").dataset.id = d.id;
  $("case-body").dataset.kind = d.kind;
  $("case-title").textContent = kindName(d.kind) + " at " + d.camera + (d.status !== "pending" ? " · " + d.status : "");
  $("case-meta").textContent = isoTime(d.occurred_at) + " · track " + d.track_id +
    " · confidence " + d.confidence.toFixed(2) + " · record " + d.record_hash.slice(0, 12);
  renderPhotos(d);
  /** @type {any[]} */
  const evidence = d.evidence;
  const clip = evidence.find((e) => e.href && e.kind === "clip");
  const video = /** @type {HTMLVideoElement} */ ($("clip"));
  video.hidden = !clip;
  $("no-clip").hidden = !!clip;
  if (clip) { if (video.getAttribute("src") !== clip.href) video.src = clip.href; } else video.removeAttribute("src");
  renderSignal(d);
  const decidable = d.status === "pending" && canReview();
  $("actions").hidden = !decidable;
  input("plate").value = d.plate || "";
  input("plate").disabled = !canReview();
  $("plate-save").hidden = !canReview();
  /** @type {any[]} */
  const reviews = d.reviews || [];
  $("case-reviews-box").hidden = reviews.length === 0;
  $("case-reviews").replaceChildren(...reviews.map((rv) => {
    const li = el("li", rv.status + (rv.reason ? " (" + rv.reason.replaceAll("_", " ") + ")" : "") + " by " +
      rv.reviewer + " at " + isoTime(rv.reviewed_at_us / 1000) + (rv.note ? " — " + rv.note : ""));
    li.dataset.reviewer = rv.reviewer;
    return li;
  }));
  watchSignal();
}

// ------------------------------------------------------------------ the photo strip and the zoom

/**
 * The case's frames with their photo, unmarked frame and boxes, in time order (before → at → after).
 * @param {any} d the violation's detail
 * @returns {{ role: string, photo: any, raw: any, frame: any, t: number }[]}
 */
function framesOf(d) {
  /** @type {any[]} */
  const evidence = d.evidence;
  /** @type {any[]} */
  const frames = (d.detail && d.detail.frames) || [];
  const roles = [...new Set(evidence.filter((e) => e.href && (e.kind === "photo" || e.kind === "raw") && e.role).map((e) => e.role))];
  const out = roles.map((role) => {
    const frame = frames.find((f) => f.role === role) || null;
    return {
      role,
      photo: evidence.find((e) => e.href && e.kind === "photo" && e.role === role) || null,
      raw: evidence.find((e) => e.href && e.kind === "raw" && e.role === role) || null,
      frame,
      t: frame ? Date.parse(frame.captured_at) : NaN,
    };
  });
  const rank = (/** @type {string} */ r) => { const i = ROLE_ORDER.indexOf(r); return i < 0 ? ROLE_ORDER.length : i; };
  out.sort((a, b) => (isNaN(a.t) || isNaN(b.t) || a.t === b.t ? rank(a.role) - rank(b.role) : a.t - b.t));
  return out;
}

/**
 * The signal's state at time `t` from the recorded changes (null: none recorded before it).
 * @param {any} d @param {number} t
 */
function signalAt(d, t) {
  /** @type {{ at: string, state: string }[]} */
  const signal = (d.detail && d.detail.signal) || [];
  let state = null;
  let best = -Infinity;
  for (const s of signal) {
    const at = Date.parse(s.at);
    if (at <= t && at >= best) { best = at; state = s.state; }
  }
  return state;
}

/** The photo strip: each frame's photo (else its unmarked frame), its time and the signal's state. @param {any} d */
function renderPhotos(d) {
  const frames = framesOf(d);
  const at = frames.find((f) => f.role === "at" || f.role === "key");
  const t0 = at && !isNaN(at.t) ? at.t : Date.parse(d.occurred_at);
  const showSignal = d.kind === "red_light" || ((d.detail && d.detail.signal) || []).length > 0;
  $("photos").replaceChildren(...frames.map((f) => {
    const fig = document.createElement("figure");
    fig.dataset.role = f.role;
    const img = document.createElement("img");
    const src = f.photo || f.raw;
    img.src = src.href;
    img.alt = (src.kind === "photo" ? "photo" : "frame") + " " + f.role;
    const cap = el("figcaption");
    cap.append(el("span", ROLE_NAME[f.role] || f.role, "role"));
    if (!isNaN(f.t)) {
      const s = (f.t - t0) / 1000;
      const when = el("span", (s > 0 ? "+" : s < 0 ? "−" : "±") + Math.abs(s).toFixed(1) + " s");
      when.title = isoTime(f.t);
      cap.append(when);
    }
    if (showSignal) {
      const st = isNaN(f.t) ? null : signalAt(d, f.t);
      const badge = el("span", st ? "signal " + st : "signal unknown", "signal-badge state-" + (st || "unknown"));
      badge.dataset.state = st || "unknown";
      cap.append(badge);
    }
    fig.append(img, cap);
    fig.addEventListener("click", () => {
      const what = state.zoom.role === f.role && state.zoom.what === "head" ? "plate" : "head";
      zoom(what, f.role);
    });
    return fig;
  }));
  const first = at || frames[frames.length - 1];
  state.zoom = { role: first ? first.role : "", what: "head" };
  drawZoom();
}

/**
 * The box to zoom on in `frame`: the offender's head, or the plate. When the detector gave no such
 * box: the top of the offender (head) or the lower part of the vehicle (plate), said so in the caption.
 * @param {any} frame @param {"head" | "plate"} what
 * @returns {{ box: { x1: number, y1: number, x2: number, y2: number }, label: string } | null}
 */
function zoomBox(frame, what) {
  /** @type {any[]} */
  const boxes = (frame && frame.boxes) || [];
  const name = (/** @type {any} */ b) => String(b.class_name || "");
  const area = (/** @type {any} */ b) => (b.bbox.x2 - b.bbox.x1) * (b.bbox.y2 - b.bbox.y1);
  const best = (/** @type {any[]} */ bs) => bs.slice().sort((a, b) => (b.score || 0) - (a.score || 0))[0];
  const heads = boxes.filter((b) => /helmet|head/i.test(name(b)));
  const plates = boxes.filter((b) => /plate/i.test(name(b)));
  const bodies = boxes.filter((b) => !heads.includes(b) && !plates.includes(b) && !/light|signal/i.test(name(b)))
    .sort((a, b) => area(b) - area(a));
  if (what === "head") {
    const bare = heads.filter((b) => /without|no[ _-]?helmet/i.test(name(b)));
    const h = best(bare.length ? bare : heads);
    if (h) return { box: h.bbox, label: name(h) + (h.score !== undefined ? " " + Number(h.score).toFixed(2) : "") };
    const o = bodies[0];
    if (!o) return null;
    const b = o.bbox;
    return { box: { x1: b.x1, y1: b.y1, x2: b.x2, y2: b.y1 + (b.y2 - b.y1) * 0.3 }, label: "no head box: top of the " + name(o) };
  }
  const p = best(plates);
  if (p) return { box: p.bbox, label: name(p) + (p.score !== undefined ? " " + Number(p.score).toFixed(2) : "") };
  const o = bodies[0];
  if (!o) return null;
  const b = o.bbox;
  return { box: { x1: b.x1, y1: b.y1 + (b.y2 - b.y1) * 0.6, x2: b.x2, y2: b.y2 }, label: "no plate box: lower part of the " + name(o) };
}

/** Bumped per drawing: an image that loads after the next drawing began is not drawn. */
let zoomSeq = 0;

/** Draws the zoom: the chosen box of the chosen frame, cut from its unmarked frame (else its photo). */
function drawZoom() {
  const my = ++zoomSeq;
  const d = state.detail;
  const canvas = /** @type {HTMLCanvasElement} */ ($("zoom-canvas"));
  const ctx = canvas.getContext("2d");
  if (!ctx) return;
  const { role, what } = state.zoom;
  $("zoom-head").classList.toggle("current", what === "head");
  $("zoom-plate").classList.toggle("current", what === "plate");
  for (const fig of $("photos").children) fig.classList.toggle("zoomed", /** @type {HTMLElement} */ (fig).dataset.role === role);
  ctx.fillStyle = "#000";
  ctx.fillRect(0, 0, canvas.width, canvas.height);
  const f = d ? framesOf(d).find((x) => x.role === role) : null;
  const target = f ? zoomBox(f.frame, what) : null;
  const caption = $("zoom-caption");
  canvas.dataset.what = what;
  canvas.dataset.role = role;
  delete canvas.dataset.drawn;
  if (!f || !target) {
    caption.textContent = (what === "head" ? "Head" : "Plate") + ": no box recorded" + (f ? " in the " + (ROLE_NAME[role] || role) + " frame" : "");
    return;
  }
  caption.textContent = (what === "head" ? "Head" : "Plate") + " · " + (ROLE_NAME[role] || role) + " · " + target.label;
  const src = f.raw || f.photo;
  const img = new Image();
  img.onload = () => {
    if (my !== zoomSeq) return;
    const b = target.box;
    // The box with a margin, widened to the canvas's shape, kept inside the picture.
    const padX = Math.max((b.x2 - b.x1) * 0.25, 8);
    const padY = Math.max((b.y2 - b.y1) * 0.25, 8);
    let x1 = b.x1 - padX, x2 = b.x2 + padX, y1 = b.y1 - padY, y2 = b.y2 + padY;
    const want = canvas.width / canvas.height;
    const w = x2 - x1, h = y2 - y1;
    if (w / h < want) { const nw = h * want; x1 -= (nw - w) / 2; x2 = x1 + nw; }
    else { const nh = w / want; y1 -= (nh - h) / 2; y2 = y1 + nh; }
    x1 = Math.max(0, x1); y1 = Math.max(0, y1);
    x2 = Math.min(img.naturalWidth, x2); y2 = Math.min(img.naturalHeight, y2);
    if (x2 - x1 < 1 || y2 - y1 < 1) { caption.textContent += " (outside the picture)"; return; }
    const scale = Math.min(canvas.width / (x2 - x1), canvas.height / (y2 - y1));
    const dw = (x2 - x1) * scale, dh = (y2 - y1) * scale;
    ctx.fillRect(0, 0, canvas.width, canvas.height);
    ctx.drawImage(img, x1, y1, x2 - x1, y2 - y1, (canvas.width - dw) / 2, (canvas.height - dh) / 2, dw, dh);
    canvas.dataset.drawn = [x1, y1, x2, y2].map((n) => Math.round(n)).join(",");
  };
  img.src = src.href;
}

/**
 * Zooms on the offender's head or the plate, in frame `role` (default: the frame zoomed now).
 * @param {"head" | "plate"} what @param {string} [role]
 */
export function zoom(what, role) {
  if (!state.detail) return;
  state.zoom = { role: role || state.zoom.role, what };
  drawZoom();
}

// ------------------------------------------------------------------ the signal timeline was seen

/** Watches the signal timeline: once it is on screen for the case shown, that case may be confirmed. */
const seenObserver = typeof IntersectionObserver === "function"
  ? new IntersectionObserver((entries) => {
    for (const e of entries) {
      if (e.isIntersecting && e.intersectionRatio >= 0.9 && state.detail && !$("signal-box").hidden) {
        state.signalSeen = state.detail.id;
        showLock();
      }
    }
  }, { threshold: [0, 0.9, 1] })
  : null;

/** (Re)starts watching the timeline for the case just shown: an observer reports at once where it is. */
function watchSignal() {
  showLock();
  if (!seenObserver) return;
  const bar = $("signal-timeline");
  seenObserver.unobserve(bar);
  if (!$("signal-box").hidden) seenObserver.observe(bar);
}

/** Whether confirming the current case waits for its signal timeline to be seen (also while it loads). */
function confirmLocked() {
  const v = state.queue[state.index];
  return !!v && v.kind === "red_light" && state.signalSeen !== v.id;
}

function showLock() {
  const locked = confirmLocked();
  $("confirm").classList.toggle("locked", locked);
  $("confirm").setAttribute("aria-disabled", String(locked));
  $("confirm").title = locked ? "Look at the signal timeline first" : "";
  $("signal-box").dataset.seen = String(!!state.detail && state.signalSeen === state.detail.id);
  if (!locked && $("status").classList.contains("refused")) {
    $("status").classList.remove("refused");
    $("status").textContent = "Signal timeline seen: C confirms.";
  }
}

// ------------------------------------------------------------------ the plate field

/** Saves the plate typed in the field (empty: clears it); the field shows it as stored. */
async function savePlate() {
  const d = state.detail;
  if (!d || !canReview()) return;
  const typed = input("plate").value.trim();
  const r = await api("PUT", "/api/violations/" + d.id + "/plate", { plate: typed || null });
  const st = $("plate-status");
  if (r.status === 200) {
    d.plate = r.data.plate;
    const v = state.queue.find((q) => q.id === d.id);
    if (v) v.plate = r.data.plate;
    if (state.detail === d) input("plate").value = r.data.plate || "";
    st.className = "";
    st.textContent = r.data.plate ? "Saved " + r.data.plate + "." : "Plate cleared.";
    st.dataset.saved = r.data.plate || "";
    renderQueue();
    input("plate").blur();
  } else {
    st.className = "error";
    st.textContent = "Not saved: " + failure(r);
  }
}

/**
 * A key of the case (not a decision): H zoom on the head, P on the plate, E edit the plate.
 * Whether the key was one.
 * @param {string} k the key, lower case
 */
export function caseKey(k) {
  if (!state.detail) return false;
  if (k === "h") { zoom("head"); return true; }
  if (k === "p") { zoom("plate"); return true; }
  if (k === "e" && canReview()) { input("plate").focus(); input("plate").select(); return true; }
  return false;
}

/**
 * The signal's states around a red-light crossing as a bar, with the
 * crossing (the `at` frame) and the other evidence frames marked.
 * @param {any} d the violation's detail
 */
function renderSignal(d) {
  /** @type {{ at: string, state: string }[]} */
  const signal = (d.detail && d.detail.signal) || [];
  /** @type {{ captured_at: string, role: string }[]} */
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
  /** @param {number} t */
  const pct = (t) => (100 * (t - t0) / (t1 - t0)).toFixed(3) + "%";
  /** @param {number} t */
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
  let current = "unknown";
  /** @type {number | null} */
  let since = null;
  for (const c of changes) if (c.t <= cross) { if (c.state !== current) since = c.t; current = c.state; }
  $("signal-summary").textContent = current === "unknown" ? "Signal state at the crossing is unknown."
    : "Signal " + current + " at the crossing" + (since !== null ? ", " + ((cross - since) / 1000).toFixed(1) + " s after it turned " + current : "") + ".";
  $("signal-summary").dataset.state = current;
}

/**
 * Decides the current case; a decided case leaves a pending queue.
 * @param {{ decision: "confirm" | "reject", reason?: string, note?: string }} body
 */
export async function decide(body) {
  const v = state.queue[state.index];
  if (!v || !canReview() || v.status !== "pending") return;
  if (body.decision === "confirm" && confirmLocked()) {
    $("status").textContent = "Not confirmed: look at the signal timeline first. A red-light case is confirmed " +
      "only after its signal states around the crossing have been on screen.";
    $("status").classList.add("refused");
    $("signal-box").scrollIntoView({ block: "nearest" });
    return;
  }
  const r = await api("POST", "/api/violations/" + v.id + "/review", body);
  if (r.status === 200 || r.status === 409) {
    const label = v.camera + " · " + kindName(v.kind) + " → " +
      (r.status === 200 ? r.data.status + (body.reason ? " (" + body.reason + ")" : "")
        : r.data && r.data.error === "claimed" ? "open with another reviewer" : "already decided");
    const li = el("li", label);
    li.dataset.id = v.id;
    $("history").prepend(li);
    // The decision ended the claim.
    if (state.claimed === v.id) { stopRenew(); state.claimed = null; }
    if (r.status === 200 && r.data.undo_until) offerUndo(v, label, r.data.undo_until);
    if (select("f-status").value === "pending") {
      state.queue.splice(state.index, 1);
      if (state.index >= state.queue.length) state.index = Math.max(state.queue.length - 1, 0);
    } else if (r.status === 200) {
      v.status = r.data.status;
    }
    renderQueue();
    await renderCase();
    $("status").classList.remove("refused");
    $("status").textContent = r.status === 200 ? "Saved." : "";
  } else {
    $("status").textContent = "Not saved: " + failure(r);
  }
}

/** Opens the reason form for rejecting the current case. */
export function openReject() {
  const v = state.queue[state.index];
  if (!v || !canReview() || v.status !== "pending") return;
  $("reject-form").hidden = false;
  $("reason").focus();
}

/** Whether the reason form is open. */
export const rejecting = () => !$("reject-form").hidden;

/**
 * A key while the reason form is open: 1–9 choose, Enter rejects, Esc cancels.
 * @param {KeyboardEvent} e
 */
export function rejectKey(e) {
  if (e.key === "Escape") { $("reject-form").hidden = true; e.preventDefault(); return; }
  if (e.key === "Enter") { e.preventDefault(); form("reject-form").requestSubmit(); return; }
  if (/^[1-9]$/.test(e.key) && document.activeElement !== $("note")) {
    const i = Number(e.key) - 1;
    if (i < state.reasons.length) select("reason").value = state.reasons[i];
    e.preventDefault();
  }
}

/** Wires the page's buttons and the reason form. */
export function wire() {
  form("reject-form").addEventListener("submit", (e) => {
    e.preventDefault();
    decide({ decision: "reject", reason: select("reason").value, note: input("note").value });
    input("note").value = "";
  });
  $("confirm").addEventListener("click", () => decide({ decision: "confirm" }));
  $("reject").addEventListener("click", openReject);
  $("undo").addEventListener("click", () => undo());
  $("bulk-reject").addEventListener("click", () => bulkReject());
  window.addEventListener("pagehide", () => release(true));
  form("plate-form").addEventListener("submit", (e) => { e.preventDefault(); savePlate(); });
  input("plate").addEventListener("keydown", (e) => { if (e.key === "Escape") { e.preventDefault(); input("plate").blur(); } });
  $("zoom-head").addEventListener("click", () => zoom("head"));
  $("zoom-plate").addEventListener("click", () => zoom("plate"));
  $("zoom-canvas").addEventListener("click", () => zoom(state.zoom.what === "head" ? "plate" : "head"));
}
