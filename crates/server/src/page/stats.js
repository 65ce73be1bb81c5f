// @ts-check
// The statistics page (ops and admin): per camera and day (flagged, confirmed, rejected, pending,
// precision), per reviewer throughput, and the rejection reasons per camera with the threshold each
// points at (`GET /api/stats`). Days are UTC days; other times in the user's time zone.

import { api, failure } from "./api.js";
import { $, kindName, row, select, zoned } from "./util.js";

const state = {
  /** Bumped per load: an answer to an older load is dropped. */
  seq: 0,
};

/** @param {number | null} p */
export const pct = (p) => (p === null || p === undefined ? "—" : (100 * p).toFixed(0) + " %");

/** @param {string} id */
const tbody = (id) => /** @type {HTMLElement} */ ($(id).querySelector("tbody"));

/** Loads the statistics of the chosen period (and camera filter). */
export async function load() {
  const my = ++state.seq;
  const p = new URLSearchParams({ days: select("st-days").value });
  if (select("f-camera").value) p.set("camera", select("f-camera").value);
  const r = await api("GET", "/api/stats?" + p.toString());
  if (my !== state.seq) return;
  if (r.status !== 200) { $("st-status").textContent = "Cannot load statistics: " + failure(r); return; }
  $("st-status").textContent = "From " + zoned(r.data.from) + " to " + zoned(r.data.to) + ".";
  /** @type {any[]} */
  const cameras = r.data.cameras;
  const rows = [];
  for (const c of cameras) {
    for (const d of [c.total, ...c.days]) {
      const tr = row([c.camera, d.day, d.flagged, d.confirmed, d.rejected, d.pending, pct(d.precision)]);
      tr.dataset.camera = c.camera;
      tr.dataset.day = d.day;
      if (d.day === "total") tr.className = "total";
      rows.push(tr);
    }
  }
  tbody("st-cameras").replaceChildren(...rows);
  /** @type {any[]} */
  const reviewers = r.data.reviewers;
  tbody("st-reviewers").replaceChildren(...reviewers.map((x) => {
    const tr = row([x.reviewer, x.decisions, x.confirmed, x.rejected, x.undone,
      x.per_hour === null ? "—" : x.per_hour.toFixed(1), zoned(x.first_at), zoned(x.last_at)]);
    tr.dataset.reviewer = x.reviewer;
    return tr;
  }));
  /** @type {any[]} */
  const rejections = r.data.rejections;
  tbody("st-rejections").replaceChildren(...rejections.map((x) => {
    const t = x.threshold;
    const hint = t ? t.class + " (in force " + (t.in_force === null ? "model's own" : t.in_force.toFixed(2)) + "): " + t.advice : "no threshold";
    const tr = row([x.camera, kindName(x.kind), x.reason.replaceAll("_", " "), x.count, pct(x.share), hint]);
    tr.dataset.camera = x.camera;
    tr.dataset.reason = x.reason;
    return tr;
  }));
  $("st-empty").hidden = cameras.length > 0;
}

/** Wires the period choice. */
export function wire() {
  $("st-days").addEventListener("change", () => load());
}
