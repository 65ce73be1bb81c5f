// @ts-check
// The review page: the queue under the filters (status, type, camera, time
// range), a case's photos, clip, signal timeline and review history, and the
// decisions (confirm, reject with a reason) the keyboard flow in app.js drives.

import { api, canReview, failure, fetchAll } from "./api.js";
import { $, el, filterParams, form, input, isoTime, kindName, opt, select } from "./util.js";

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

/** Loads the queue the filters select and shows the current case. */
export async function load() {
  const my = ++state.seq;
  const status = select("f-status").value;
  const { items, error } = await fetchAll(filterParams(status), 20);
  if (my !== state.seq) return;
  state.queue = items;
  $("queue-title").textContent = status ? status[0].toUpperCase() + status.slice(1) : "All";
  $("empty").textContent = error ? "Cannot load violations: " + error
    : status === "pending" && [...filterParams("").keys()].length === 0 ? "No pending violations."
    : "No violations match the filters.";
  state.index = Math.min(state.index, Math.max(state.queue.length - 1, 0));
  renderQueue();
  await renderCase();
}

function renderQueue() {
  $("count").textContent = "(" + state.queue.length + ")";
  $("queue").replaceChildren(...state.queue.map((v, i) => {
    const li = el("li", v.camera + " · " + kindName(v.kind) + " · " + new Date(v.occurred_at).toLocaleTimeString() +
      (v.status !== "pending" ? " · " + v.status : ""));
    li.dataset.id = v.id;
    li.dataset.status = v.status;
    if (i === state.index) li.className = "current";
    li.addEventListener("click", () => { state.index = i; renderQueue(); renderCase(); });
    return li;
  }));
  const cur = $("queue").children[state.index];
  if (cur && cur.scrollIntoView) cur.scrollIntoView({ block: "nearest" });
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
  if (!v) return;
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
    const li = el("li", v.camera + " · " + kindName(v.kind) + " → " +
      (r.status === 200 ? r.data.status + (body.reason ? " (" + body.reason + ")" : "") : "already decided"));
    li.dataset.id = v.id;
    $("history").prepend(li);
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
}
