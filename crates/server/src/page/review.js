// @ts-check
// The review page: the queue under the filters (status, type, camera, time
// range), a case's photos, clip, signal timeline and review history, and the
// decisions (confirm, reject with a reason) the keyboard flow in app.js drives. Team work: the case
// shown is claimed (renewed while open, released on leaving) so another reviewer's page skips it, the
// queue follows the live events (new, claimed, decided cases), a decision can be undone inside the
// window (U), and ticked cases can be rejected together for one reason.

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
};

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
  showReasons(d.kind);
  $("case-body").dataset.id = d.id;
  $("case-title").textContent = kindName(d.kind) + " at " + d.camera + (d.status !== "pending" ? " · " + d.status : "");
  $("case-meta").textContent = new Date(d.occurred_at).toISOString() + " · track " + d.track_id +
    " · confidence " + d.confidence.toFixed(2) + " · record " + d.record_hash.slice(0, 12);
  /** @type {any[]} */
  const evidence = d.evidence;
  const photos = evidence.filter((e) => e.href && e.kind !== "clip");
  $("photos").replaceChildren(...photos.map((e) => {
    const f = document.createElement("figure");
    const img = document.createElement("img");
    img.src = e.href; img.alt = e.kind + " " + (e.role || "");
    f.append(img, el("figcaption", e.kind + (e.role ? " · " + e.role : "")));
    return f;
  }));
  const clip = evidence.find((e) => e.href && e.kind === "clip");
  const video = /** @type {HTMLVideoElement} */ ($("clip"));
  video.hidden = !clip;
  if (clip) video.src = clip.href; else video.removeAttribute("src");
  renderSignal(d);
  const decidable = d.status === "pending" && canReview();
  $("actions").hidden = !decidable;
  /** @type {any[]} */
  const reviews = d.reviews || [];
  $("case-reviews-box").hidden = reviews.length === 0;
  $("case-reviews").replaceChildren(...reviews.map((rv) => {
    const li = el("li", rv.status + (rv.reason ? " (" + rv.reason.replaceAll("_", " ") + ")" : "") + " by " +
      rv.reviewer + " at " + isoTime(rv.reviewed_at_us / 1000) + (rv.note ? " — " + rv.note : ""));
    li.dataset.reviewer = rv.reviewer;
    return li;
  }));
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
}
