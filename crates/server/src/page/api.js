// @ts-check
// The page's one way to the API: `api` sends the session cookie and, on
// state-changing calls, the session's CSRF token; `session` is who is logged in.

/** @typedef {{ user: string, role: string, auth: string, csrf_token: string | null }} Me */
/** @typedef {{ status: number, data: any }} Answer */

/** Who is logged in (null: nobody) and the session's CSRF token. */
export const session = {
  /** @type {Me | null} */
  me: null,
  /** @type {string | null} */
  csrf: null,
};

/**
 * Calls the API; `data` is the answer's JSON (null when it has none).
 * @param {string} method
 * @param {string} path
 * @param {unknown} [body] sent as JSON
 * @returns {Promise<Answer>}
 */
export async function api(method, path, body) {
  /** @type {Record<string, string>} */
  const headers = {};
  /** @type {RequestInit} */
  const opts = { method, headers, credentials: "same-origin" };
  if (body !== undefined) {
    headers["Content-Type"] = "application/json";
    opts.body = JSON.stringify(body);
  }
  if (method !== "GET" && session.csrf) headers["X-CSRF-Token"] = session.csrf;
  const r = await fetch(path, opts);
  let data = null;
  try { data = await r.json(); } catch (_) { data = null; }
  return { status: r.status, data };
}

/** What a refused call says: the API's message, else the status. @param {Answer} r */
export const failure = (r) => (r.data ? r.data.message : String(r.status));

export const canReview = () => !!session.me && (session.me.role === "reviewer" || session.me.role === "admin");
export const canOps = () => !!session.me && (session.me.role === "ops" || session.me.role === "admin");

/**
 * Every violation matching `params`, oldest first (at most `pages` pages of 500).
 * @param {URLSearchParams} params
 * @param {number} pages
 * @returns {Promise<{ items: any[], error: string | null }>}
 */
export async function fetchAll(params, pages) {
  /** @type {any[]} */
  const out = [];
  let after = null;
  for (let page = 0; page < pages; page++) {
    const p = new URLSearchParams(params);
    p.set("limit", "500");
    if (after) p.set("after", after);
    const r = await api("GET", "/api/violations?" + p.toString());
    if (r.status !== 200) return { items: out, error: failure(r) };
    out.push(...r.data.items);
    after = r.data.next;
    if (!after) break;
  }
  return { items: out, error: null };
}
