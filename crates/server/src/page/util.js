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

// Every time on the page is shown in ONE zone: the user's (`PUT /api/me/time-zone`, UTC until
// chosen), the zone the filters' From and To fields are typed in too. The header names it
// (`zoneLabel`); full times carry its UTC offset.

/** @param {number} n @param {number} [w] */
const pad = (n, w = 2) => String(n).padStart(w, "0");

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

/** Minutes east of UTC of the page's zone at `d`. @param {Date} d */
function offsetMinutes(d) {
  const parts = new Intl.DateTimeFormat("en", { timeZone: zone, timeZoneName: "longOffset" }).formatToParts(d);
  const name = (parts.find((x) => x.type === "timeZoneName") || { value: "GMT" }).value;
  const m = /GMT([+-])(\d{2}):(\d{2})/.exec(name);
  return m ? (m[1] === "-" ? -1 : 1) * (Number(m[2]) * 60 + Number(m[3])) : 0;
}

/** The UTC offset of the page's zone at `d`, e.g. "+01:00". @param {Date} d */
function offset(d) {
  const m = offsetMinutes(d);
  return (m < 0 ? "-" : "+") + pad(Math.floor(Math.abs(m) / 60)) + ":" + pad(Math.abs(m) % 60);
}

/** The page's zone, for the header: its name and current UTC offset. */
export function zoneLabel() {
  return zone + " UTC" + offset(new Date());
}

/**
 * A time in the user's time zone, as `YYYY-MM-DD HH:MM:SS`.
 * @param {string | number} t an RFC 3339 time or milliseconds since the epoch
 */
export function zoned(t) {
  const d = new Date(t);
  if (isNaN(d.getTime())) return "";
  return d.toLocaleString("sv-SE", { timeZone: zone, hour12: false });
}

/**
 * A date and time in the page's zone with its offset: "2026-05-01 10:00:00 +02:00".
 * @param {string | number} t an RFC 3339 time or milliseconds since the epoch
 */
export const isoTime = (t) => {
  const d = new Date(t);
  if (isNaN(d.getTime())) return "";
  return zoned(t) + " " + offset(d);
};

/**
 * The time of day in the page's zone: "10:00:00".
 * @param {string | number} t
 */
export const clockTime = (t) => {
  const d = new Date(t);
  if (isNaN(d.getTime())) return "";
  return d.toLocaleTimeString("sv-SE", { timeZone: zone, hour12: false });
};

/** @param {string} v a datetime-local value @returns {string | null} */
function localToIso(v) {
  if (!v) return null;
  const wall = new Date(v + "Z"); // the typed wall time, read as if it were UTC
  if (isNaN(wall.getTime())) return null;
  // Shift by the zone's offset (checked again at the result, for a change of offset in between).
  let t = new Date(wall.getTime() - offsetMinutes(wall) * 60000);
  t = new Date(wall.getTime() - offsetMinutes(t) * 60000);
  return t.toISOString();
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
  const plate = input("f-plate").value.trim();
  if (plate) p.set("plate", plate);
  return p;
}
