// @ts-check
// DOM and formatting helpers of the page, and the filter form shared by the
// review and history pages. Holds no state.

/**
 * An element of the page by id (the page's ids are fixed, see index.html).
 * @param {string} id
 * @returns {HTMLElement}
 */
export const $ = (id) => /** @type {HTMLElement} */ (document.getElementById(id));

/** @param {string} id @returns {HTMLInputElement} */
export const input = (id) => /** @type {HTMLInputElement} */ ($(id));

/** @param {string} id @returns {HTMLSelectElement} */
export const select = (id) => /** @type {HTMLSelectElement} */ ($(id));

/** @param {string} id @returns {HTMLFormElement} */
export const form = (id) => /** @type {HTMLFormElement} */ ($(id));

/**
 * A new element with this text (none when null or undefined) and class.
 * @param {string} tag
 * @param {unknown} [text]
 * @param {string} [cls]
 * @returns {HTMLElement}
 */
export function el(tag, text, cls) {
  const e = document.createElement(tag);
  if (text !== undefined && text !== null) e.textContent = String(text);
  if (cls) e.className = cls;
  return e;
}

/** @param {string} value @param {string} text @returns {HTMLOptionElement} */
export function opt(value, text) {
  const o = /** @type {HTMLOptionElement} */ (el("option", text));
  o.value = value;
  return o;
}

/**
 * A table row: a cell per value, or the cell itself when given one.
 * @param {unknown[]} cells
 * @returns {HTMLTableRowElement}
 */
export function row(cells) {
  const tr = document.createElement("tr");
  for (const c of cells) tr.append(c instanceof Node ? c : el("td", c));
  return tr;
}

/** @param {string} k */
export const kindName = (k) => k.replace("_", " ");

/** @param {string | number} t */
export const isoTime = (t) => new Date(t).toISOString().replace("T", " ").replace(/\.\d+Z$/, "Z");

/** @param {string} v a datetime-local value @returns {string | null} */
function localToIso(v) {
  if (!v) return null;
  const t = new Date(v);
  return isNaN(t.getTime()) ? null : t.toISOString();
}

/**
 * The filter form as listing parameters, with this status (none: any).
 * @param {string} status
 * @returns {URLSearchParams}
 */
export function filterParams(status) {
  const p = new URLSearchParams();
  if (status) p.set("status", status);
  if (select("f-kind").value) p.set("kind", select("f-kind").value);
  if (select("f-camera").value) p.set("camera", select("f-camera").value);
  const from = localToIso(input("f-from").value);
  const to = localToIso(input("f-to").value);
  if (from) p.set("from", from);
  if (to) p.set("to", to);
  return p;
}

/** The time zone times are shown in (the user's, from `GET /api/me`). */
let zone = "UTC";

/**
 * Shows times in `tz` from now on (UTC when the browser does not know it); the zone in force.
 * @param {string} tz
 */
export function setZone(tz) {
  try { new Intl.DateTimeFormat("en", { timeZone: tz }); zone = tz; } catch (_) { zone = "UTC"; }
  return zone;
}

/** The zone times are shown in. */
export const currentZone = () => zone;

/**
 * A time in the user's time zone, as `YYYY-MM-DD HH:MM:SS`.
 * @param {string | number} t an RFC 3339 time or milliseconds since the epoch
 */
export function zoned(t) {
  const d = new Date(t);
  if (isNaN(d.getTime())) return "";
  return d.toLocaleString("sv-SE", { timeZone: zone, hour12: false });
}
