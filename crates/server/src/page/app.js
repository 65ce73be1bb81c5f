// @ts-check
// The review and ops page, the entry module: login, the routes between its
// pages (review.js, history.js, ops.js), the shared filters and the keyboard
// flow of the review page (C confirm, R reject with a reason, J next, K
// previous; H and P zoom on the head and the plate, E edits the plate). Every call goes through api.js, which sends the session cookie
// and, on state-changing calls, the session's X-CSRF-Token. Talks only to this
// server's API; no third-party code.

import { api, canOps, canReview, session } from "./api.js";
import * as history from "./history.js";
import * as ops from "./ops.js";
import * as review from "./review.js";
import { $, input, opt, select, zoneLabel } from "./util.js";

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
    for (const id of ["review", "past", "ops", "filters"]) $(id).hidden = true;
    ops.stop();
  }
}

async function start() {
  const r = await api("GET", "/api/me");
  if (r.status !== 200) { showLoggedIn(false); $("login-name").focus(); return; }
  session.me = r.data;
  session.csrf = r.data.csrf_token;
  $("who").textContent = r.data.user + " (" + r.data.role + ")";
  $("tz").textContent = "times: " + zoneLabel();
  $("tab-ops").hidden = !canOps();
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

// ------------------------------------------------------------------ routes

async function applyRoute() {
  if (!session.me) return;
  let r = location.hash.replace(/^#\/?/, "");
  if (!["review", "history", "ops"].includes(r)) r = canReview() || !canOps() ? "review" : "ops";
  if (r === "ops" && !canOps()) r = "review";
  state.route = r;
  $("review").hidden = r !== "review";
  $("past").hidden = r !== "history";
  $("ops").hidden = r !== "ops";
  $("filters").hidden = r === "ops";
  const status = /** @type {HTMLElement} */ (select("f-status").parentElement);
  status.hidden = r === "history";
  for (const [id, name] of [["tab-review", "review"], ["tab-history", "history"], ["tab-ops", "ops"]]) {
    $(id).classList.toggle("current", r === name);
  }
  document.title = "roadwarden " + r;
  if (r === "review") { ops.stop(); await review.load(); }
  else if (r === "history") { ops.stop(); await history.load(); }
  else await ops.load(() => state.route === "ops");
}

/** @param {Event} [e] */
function filtersChanged(e) {
  const target = e && /** @type {HTMLElement | null} */ (e.target);
  if (target && (target.tagName === "SELECT" || target.id === "f-plate")) target.blur();
  if (state.route === "review") review.restart();
  else if (state.route === "history") history.load();
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
  ops.wire();
  $("logout").addEventListener("click", async () => {
    await api("POST", "/api/logout"); session.csrf = null; session.me = null; showLoggedIn(false);
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
