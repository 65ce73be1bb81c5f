// @ts-check
// The ops page (ops and admin): the camera health board, refreshed every 3 s
// while shown, and the thresholds, with the effect of a change on the stored
// violations shown before it is saved; a per-camera snapshot of the last 7 days' review outcome
// (flagged, confirmed, rejected, precision, the most frequent rejection reason and its threshold).

import { api, canOps, failure } from "./api.js";
import { pct } from "./stats.js";
import { $, el, input, isoTime, kindName, opt, row, select } from "./util.js";

const CLASSES = ["no_helmet", "helmet", "two_wheeler", "vehicle", "person", "traffic_light"];

const state = {
  /** The site's cameras, as last listed. @type {any[]} */
  cameras: [],
  /** The thresholds in force, as last loaded. @type {{ range: number[], cameras: Record<string, Record<string, any>> }} */
  thresholds: { range: [0.05, 0.95], cameras: {} },
  /** The health board's refresh. @type {number | null} */
  healthTimer: null,
  /** The preview waiting for the typing to pause. @type {number | null} */
  previewTimer: null,
  /** Bumped per preview: an answer to an older one is dropped. */
  previewSeq: 0,
};

/** The cameras as the page listed them at login. @param {any[]} cameras */
export function setCameras(cameras) {
  state.cameras = cameras;
}

/** Stops refreshing the health board. */
export function stop() {
  if (state.healthTimer !== null) { clearInterval(state.healthTimer); state.healthTimer = null; }
}

/**
 * Loads the board and the thresholds; refreshes the board while `shown()`.
 * @param {() => boolean} shown
 */
export async function load(shown) {
  stop();
  await Promise.all([refreshHealth(), loadThresholds(), loadSnapshot()]);
  if (shown()) state.healthTimer = setInterval(refreshHealth, 3000);
}

/** @param {string | null} t */
function age(t) {
  if (!t) return "never";
  const s = Math.max(0, (Date.now() - Date.parse(t)) / 1000);
  return s < 60 ? s.toFixed(1) + " s ago" : s < 3600 ? (s / 60).toFixed(1) + " min ago" : (s / 3600).toFixed(1) + " h ago";
}

/** @param {string} id */
const tbody = (id) => /** @type {HTMLElement} */ ($(id).querySelector("tbody"));

async function refreshHealth() {
  const r = await api("GET", "/api/cameras");
  if (r.status !== 200) { $("health-updated").textContent = "not updated: " + failure(r); return; }
  state.cameras = r.data.cameras;
  tbody("health").replaceChildren(...state.cameras.map((c) => {
    const s = c.status;
    const stateCell = el("td", s ? s.state : "no status", "state state-" + (s ? s.state : "none"));
    const tr = s
      ? row([c.id, stateCell, s.input_fps.toFixed(1), s.analysed_fps.toFixed(1), age(s.last_frame_at),
        s.reconnects, s.dropped_frames, el("td", s.signal || "", "signal-" + (s.signal || "none")),
        (s.last_error || "") + (s.next_attempt_at ? " (next attempt " + new Date(s.next_attempt_at).toLocaleTimeString() + ")" : "")])
      : row([c.id, stateCell, "", "", "", "", "", "", ""]);
    tr.dataset.camera = c.id;
    if (s) tr.dataset.state = s.state;
    return tr;
  }));
  $("health-updated").textContent = "updated " + new Date().toLocaleTimeString();
}

/** The last 7 days of each camera's cases (`GET /api/stats?days=7`). */
async function loadSnapshot() {
  if (!canOps()) return;
  const r = await api("GET", "/api/stats?days=7");
  if (r.status !== 200) { $("snap-status").textContent = "No snapshot: " + failure(r); return; }
  $("snap-status").textContent = "";
  /** @type {any[]} */
  const rejections = r.data.rejections;
  /** @type {Map<string, any>} */
  const cams = new Map();
  for (const c of state.cameras) cams.set(c.id, null);
  for (const c of r.data.cameras) cams.set(c.camera, c.total);
  tbody("snapshot").replaceChildren(...[...cams.entries()].map(([cam, t]) => {
    const top = rejections.find((x) => x.camera === cam);
    const why = top ? top.reason.replaceAll("_", " ") + " ×" + top.count +
      (top.threshold ? " → " + top.threshold.class + " threshold" : "") : "";
    const tr = t ? row([cam, t.flagged, t.confirmed, t.rejected, t.pending, pct(t.precision), why])
      : row([cam, 0, 0, 0, 0, pct(null), ""]);
    tr.dataset.camera = cam;
    return tr;
  }));
}

async function loadThresholds() {
  const r = await api("GET", "/api/thresholds");
  if (r.status !== 200) { $("thr-status").textContent = "Cannot load thresholds: " + failure(r); return; }
  state.thresholds = r.data;
  const rows = [];
  for (const [cam, classes] of Object.entries(state.thresholds.cameras)) {
    for (const [cls, t] of Object.entries(classes)) {
      const tr = row([cam, cls, t.value.toFixed(2), t.source,
        t.updated_by ? t.updated_by + " at " + isoTime(t.updated_at) : ""]);
      tr.dataset.camera = cam;
      tr.dataset.class = cls;
      tr.addEventListener("click", () => {
        select("thr-camera").value = cam; select("thr-class").value = cls; input("thr-value").value = ""; thresholdTarget();
      });
      rows.push(tr);
    }
  }
  tbody("thr-table").replaceChildren(...rows);
  const cam = select("thr-camera").value;
  const cls = select("thr-class").value;
  select("thr-camera").replaceChildren(...state.cameras.map((c) => opt(c.id, c.id)));
  select("thr-class").replaceChildren(...CLASSES.map((c) => opt(c, c.replace("_", " "))));
  if (cam) select("thr-camera").value = cam;
  if (cls) select("thr-class").value = cls;
  input("thr-value").min = String(state.thresholds.range[0]);
  input("thr-value").max = String(state.thresholds.range[1]);
  thresholdTarget(true);
}

function inForce() {
  const c = state.thresholds.cameras[select("thr-camera").value];
  return c ? c[select("thr-class").value] : undefined;
}

/**
 * The camera or class changed: show what is in force and start from it.
 * @param {boolean} [keepValue]
 */
function thresholdTarget(keepValue) {
  const t = inForce();
  $("thr-current").textContent = t ? t.value.toFixed(2) + " (" + t.source + ")" : "the model's own";
  if (!keepValue || input("thr-value").value === "") input("thr-value").value = t ? t.value.toFixed(2) : "";
  schedulePreview();
}

function schedulePreview() {
  if (state.previewTimer !== null) clearTimeout(state.previewTimer);
  state.previewTimer = setTimeout(runPreview, 150);
}

function validValue() {
  const raw = input("thr-value").value;
  const v = Number(raw);
  const [lo, hi] = state.thresholds.range;
  if (raw === "" || !isFinite(v) || v < lo || v > hi) return null;
  return v;
}

const enterValue = () => "Enter a value from " + state.thresholds.range[0] + " to " + state.thresholds.range[1] + ".";

async function runPreview() {
  state.previewTimer = null;
  const my = ++state.previewSeq;
  const cam = select("thr-camera").value;
  const cls = select("thr-class").value;
  const v = validValue();
  if (!cam || !cls) return;
  if (v === null) {
    $("preview").hidden = true;
    $("thr-status").textContent = enterValue();
    return;
  }
  const days = select("thr-days").value;
  const q = "/api/cameras/" + encodeURIComponent(cam) + "/thresholds/" + encodeURIComponent(cls) +
    "/preview?value=" + encodeURIComponent(String(v)) + "&days=" + encodeURIComponent(days);
  const r = await api("GET", q);
  if (my !== state.previewSeq) return;
  if (r.status !== 200) {
    $("preview").hidden = true;
    $("thr-status").textContent = "No preview: " + failure(r);
    return;
  }
  const p = r.data;
  $("thr-status").textContent = "";
  for (const side of ["kept", "dropped"]) {
    $("pv-" + side).textContent = p[side].total;
    for (const s of ["confirmed", "rejected", "pending"]) $("pv-" + side + "-" + s).textContent = p[side][s];
  }
  /** @type {string[]} */
  const kinds = p.kinds;
  $("pv-summary").textContent = kinds.length === 0
    ? "No stored violation is scored by the " + cls.replace("_", " ") + " class: a change affects detections only."
    : "Of " + p.total + " " + kinds.map(kindName).join(" and ") + " violations at " + cam + " in the last " + p.days +
      " days, " + p.kept.total + " would have been kept at " + v.toFixed(2) + " and " + p.dropped.total + " dropped.";
  $("pv-warning").textContent = p.dropped.confirmed > 0
    ? p.dropped.confirmed + " confirmed violation" + (p.dropped.confirmed === 1 ? "" : "s") + " would have been missed." : "";
  const preview = $("preview");
  preview.dataset.camera = cam;
  preview.dataset.class = cls;
  preview.dataset.value = String(v);
  preview.dataset.days = String(p.days);
  preview.hidden = false;
}

async function saveThreshold() {
  const cam = select("thr-camera").value;
  const cls = select("thr-class").value;
  const v = validValue();
  if (v === null) { $("thr-status").textContent = enterValue(); return; }
  const r = await api("PUT", "/api/cameras/" + encodeURIComponent(cam) + "/thresholds/" + encodeURIComponent(cls), { value: v });
  if (r.status === 200) {
    await loadThresholds();
    $("thr-status").textContent = "Saved " + cam + " " + cls + ": " +
      (r.data.before === null ? "model's own" : r.data.before.toFixed(2)) + " → " + r.data.value.toFixed(2) + ".";
    $("thr-status").dataset.saved = cam + "/" + cls + "=" + r.data.value;
  } else {
    $("thr-status").textContent = "Not saved: " + failure(r);
  }
}

/** Wires the threshold form. */
export function wire() {
  select("thr-camera").addEventListener("change", () => { input("thr-value").value = ""; thresholdTarget(); });
  select("thr-class").addEventListener("change", () => { input("thr-value").value = ""; thresholdTarget(); });
  input("thr-value").addEventListener("input", schedulePreview);
  select("thr-days").addEventListener("change", schedulePreview);
  $("thr-form").addEventListener("submit", (e) => { e.preventDefault(); saveThreshold(); });
}
