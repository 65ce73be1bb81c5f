// @ts-check
// The history page: every review decision under the filters, newest first, a page at a time
// (keyset: `GET /api/history`), with who decided what, when and why; undone decisions are marked.
// A row opens its case. Times are shown in the user's time zone.

import { api, failure } from "./api.js";
import { $, currentZone, el, filterParams, kindName, row, zoned } from "./util.js";

const state = {
  /** Bumped per load: an answer to an older load is dropped. */
  seq: 0,
  /** The cursors of the pages before the one shown (null: the first). @type {(string | null)[]} */
  back: [],
  /** The cursor of the page shown. @type {string | null} */
  at: null,
  /** The next (older) page's cursor. @type {string | null} */
  next: null,
};

/** The filters changed: the newest page. */
export function load() {
  state.back = [];
  state.at = null;
  return show();
}

/** Shows the page at `state.at`. */
async function show() {
  const my = ++state.seq;
  const p = filterParams("");
  p.set("limit", "50");
  if (state.at) p.set("after", state.at);
  const r = await api("GET", "/api/history?" + p.toString());
  if (my !== state.seq) return;
  /** @type {any[]} */
  const items = r.status === 200 ? r.data.items : [];
  state.next = r.status === 200 ? r.data.next : null;
  const page = state.back.length + 1;
  $("past-count").textContent = "(page " + page + ", times in " + currentZone() + ")";
  $("past-empty").hidden = items.length > 0;
  $("past-empty").textContent = r.status === 200 ? "No decisions match." : "Cannot load the history: " + failure(r);
  /** @type {HTMLButtonElement} */ ($("past-newer")).disabled = state.back.length === 0;
  /** @type {HTMLButtonElement} */ ($("past-older")).disabled = !state.next;
  const body = /** @type {HTMLElement} */ ($("past-table").querySelector("tbody"));
  body.replaceChildren(...items.map((h) => {
    const decision = h.decision + (h.undone_at ? " (undone)" : "");
    const tr = row([
      zoned(h.occurred_at), h.camera, kindName(h.kind), el("td", decision, "decision " + h.decision),
      h.reason ? h.reason.replaceAll("_", " ") : "", h.reviewer, zoned(h.decided_at), h.note,
    ]);
    tr.dataset.id = h.id;
    tr.dataset.status = h.status;
    tr.dataset.reviewer = h.reviewer;
    if (h.undone_at) tr.classList.add("undone");
    tr.classList.add("open-case");
    tr.title = "open the case";
    tr.addEventListener("click", () => { location.hash = "#/case/" + h.id; });
    return tr;
  }));
}

/** Wires the pager. */
export function wire() {
  $("past-older").addEventListener("click", () => {
    if (!state.next) return;
    state.back.push(state.at);
    state.at = state.next;
    show();
  });
  $("past-newer").addEventListener("click", () => {
    if (state.back.length === 0) return;
    state.at = /** @type {string | null} */ (state.back.pop());
    show();
  });
}
