// @ts-check
// The review and ops page, the entry module: login, the routes between its
// pages (review.js, history.js, ops.js, stats.js; `#/case/<id>` opens one case), the shared
// filters, the user's time zone and the keyboard flow of the review page (C confirm, R reject
// with a reason, J next, K previous, U undo the last decision; H and P zoom on the head and the
// plate, E edits the plate). Every call goes through api.js, which sends the session cookie
// and, on state-changing calls, the session's X-CSRF-Token. Talks only to this
// server's API; no third-party code.

import { api, canOps, canReview, session } from "./api.js";
import * as history from "./history.js";
import * as ops from "./ops.js";
import * as review from "./review.js";
import * as stats from "./stats.js";
import { $, input, opt, select, setZone, zoneLabel } from "./util.js";

const state = {
  /** The page shown: review, history or ops. */
  route: "review",
};

/** @param {boolean} yes */
function showLoggedIn(yes) {
  $("login").hidden = yes;
  $("logout").hidden = !yes;
  $("tabs").hidden = !yes;
  if (!yes) {
    for (const id of ["review", "past", "ops", "stats", "filters", "tz-box"]) $(id).hidden = true;
    ops.stop();
    review.leave();
  }
}

async function start() {
  const r = await api("GET", "/api/me");
  if (r.status !== 200) { showLoggedIn(false); $("login-name").focus(); return; }
  session.me = r.data;
  session.csrf = r.data.csrf_token;
  $("who").textContent = r.data.user + " (" + r.data.role + ")";
  $("tab-ops").hidden = !canOps();
  $("tab-stats").hidden = !canOps();
  showZone(r.data.time_zone || "UTC");
  showLoggedIn(true);
  const [rr, cams] = await Promise.all([api("GET", "/api/review-reasons"), api("GET", "/api/cameras")]);
  review.setReasons(rr.status === 200 ? rr.data.reject : [], rr.status === 200 ? rr.data.by_kind : {});
  /** @type {any[]} */
  const cameras = cams.status === 200 ? cams.data.cameras : [];
  ops.setCameras(cameras);
  const camera = select("f-camera");
  const cur = camera.value;
  camera.replaceChildren(opt("", "any"), ...cameras.map((c) => opt(c.id, c.id)));
  camera.value = cur;
  await applyRoute();
}

// ------------------------------------------------------------------ time zone

/** Offers the browser's time zones, the user's chosen. @param {string} tz */
function showZone(tz) {
  const zone = setZone(tz);
  const sel = select("tz");
  /** @type {string[]} */
  let all = [];
  try { all = /** @type {any} */ (Intl).supportedValuesOf("timeZone"); } catch (_) { all = []; }
  if (!all.includes("UTC")) all = ["UTC", ...all];
  if (!all.includes(zone)) all = [zone, ...all];
  sel.replaceChildren(...all.map((z) => opt(z, z)));
  sel.value = zone;
  $("tz-box").title = "Every time on this page is in " + zoneLabel();
  $("tz-box").hidden = false;
}

async function zoneChanged() {
  const tz = select("tz").value;
  const r = await api("PUT", "/api/me/time-zone", { time_zone: tz });
  if (r.status === 200) setZone(tz);
  select("tz").blur();
  await applyRoute();
}

// ------------------------------------------------------------------ routes

async function applyRoute() {
  if (!session.me) return;
  let r = location.hash.replace(/^#\/?/, "");
  const caseId = r.startsWith("case/") ? decodeURIComponent(r.slice(5)) : null;
  if (caseId) r = "review";
  if (!["review", "history", "ops", "stats"].includes(r)) r = canReview() || !canOps() ? "review" : "ops";
  if ((r === "ops" || r === "stats") && !canOps()) r = "review";
  state.route = r;
  $("review").hidden = r !== "review";
  $("past").hidden = r !== "history";
  $("ops").hidden = r !== "ops";
  $("stats").hidden = r !== "stats";
  $("filters").hidden = r === "ops";
  const status = /** @type {HTMLElement} */ (select("f-status").parentElement);
  status.hidden = r === "history" || r === "stats";
  for (const [id, name] of [["tab-review", "review"], ["tab-history", "history"], ["tab-ops", "ops"], ["tab-stats", "stats"]]) {
    $(id).classList.toggle("current", r === name);
  }
  document.title = "roadwarden " + r;
  if (r !== "review") review.leave();
  if (r === "review") { ops.stop(); await (caseId ? review.openCase(caseId) : review.load()); }
  else if (r === "history") { ops.stop(); await history.load(); }
  else if (r === "stats") { ops.stop(); await stats.load(); }
  else await ops.load(() => state.route === "ops");
}

/** @param {Event} [e] */
function filtersChanged(e) {
  const target = e && /** @type {HTMLElement | null} */ (e.target);
  if (target && (target.tagName === "SELECT" || target.id === "f-plate")) target.blur();
  if (state.route === "review") {
    if (location.hash.startsWith("#/case/")) location.hash = "#/review"; else review.restart();
  }
  else if (state.route === "history") history.load();
  else if (state.route === "stats") stats.load();
}

// ------------------------------------------------------------------ keyboard and wiring

document.addEventListener("keydown", (e) => {
  if (state.route !== "review" || $("review").hidden || e.ctrlKey || e.metaKey || e.altKey) return;
  if (review.rejecting()) { review.rejectKey(e); return; }
  const a = document.activeElement;
  if (a && (a.tagName === "INPUT" || a.tagName === "SELECT" || a.tagName === "TEXTAREA")) return;
  const k = e.key.toLowerCase();
  if (k === "c") { e.preventDefault(); review.decide({ decision: "confirm" }); }
  else if (k === "r") { e.preventDefault(); review.openReject(); }
  else if (k === "j") { e.preventDefault(); review.move(1); }
  else if (k === "k") { e.preventDefault(); review.move(-1); }
  else if (k === "u") { e.preventDefault(); review.undo(); }
  else if (review.caseKey(k)) e.preventDefault();
});

document.addEventListener("DOMContentLoaded", () => {
  $("login-form").addEventListener("submit", async (e) => {
    e.preventDefault();
    const r = await api("POST", "/api/login", { name: input("login-name").value, password: input("login-password").value });
    if (r.status === 200) {
      $("login-error").textContent = "";
      input("login-password").value = "";
      const a = /** @type {HTMLElement | null} */ (document.activeElement);
      if (a) a.blur();
      start();
    }
    else $("login-error").textContent = r.status === 429 ? "Too many failed logins; try again later." : "Wrong user name or password.";
  });
  review.wire();
  history.wire();
  stats.wire();
  ops.wire();
  $("tz").addEventListener("change", zoneChanged);
  $("logout").addEventListener("click", async () => {
    review.leave(); await api("POST", "/api/logout"); session.csrf = null; session.me = null; showLoggedIn(false);
  });
  $("filters").addEventListener("submit", (e) => e.preventDefault());
  for (const id of ["f-status", "f-kind", "f-camera", "f-from", "f-to", "f-plate"]) $(id).addEventListener("change", filtersChanged);
  $("f-clear").addEventListener("click", () => {
    select("f-status").value = "pending";
    for (const id of ["f-kind", "f-camera", "f-from", "f-to", "f-plate"]) input(id).value = "";
    $("f-clear").blur();
    filtersChanged();
  });
  window.addEventListener("hashchange", applyRoute);
  start();
});
