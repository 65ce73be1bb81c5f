// @ts-check
// The history page: decided violations under the filters, with who decided
// what, when and why.

import { api, fetchAll } from "./api.js";
import { $, el, filterParams, isoTime, kindName, row } from "./util.js";

const state = {
  /** Bumped per load: an answer to an older load is dropped. */
  seq: 0,
};

/** Loads the latest 100 decided violations the filters select, newest decision first. */
export async function load() {
  const my = ++state.seq;
  const [c, r] = await Promise.all([fetchAll(filterParams("confirmed"), 4), fetchAll(filterParams("rejected"), 4)]);
  if (my !== state.seq) return;
  // The latest 100 by time of occurrence; their reviews say who decided and when.
  const items = [...c.items, ...r.items].sort((a, b) => b.occurred_at_us - a.occurred_at_us).slice(0, 100);
  /** @type {any[]} */
  const details = new Array(items.length);
  let next = 0;
  const worker = async () => {
    while (next < items.length) {
      const i = next++;
      const d = await api("GET", "/api/violations/" + items[i].id);
      details[i] = d.status === 200 ? d.data : null;
    }
  };
  await Promise.all(Array.from({ length: Math.min(6, items.length) }, worker));
  if (my !== state.seq) return;
  const rows = items.map((v, i) => {
    /** @type {any[]} */
    const reviews = (details[i] && details[i].reviews) || [];
    return { v, last: reviews.length ? reviews[reviews.length - 1] : null };
  }).sort((a, b) => (b.last ? b.last.reviewed_at_us : 0) - (a.last ? a.last.reviewed_at_us : 0));
  $("past-count").textContent = "(" + rows.length + ")";
  $("past-empty").hidden = rows.length > 0;
  const body = /** @type {HTMLElement} */ ($("past-table").querySelector("tbody"));
  body.replaceChildren(...rows.map(({ v, last }) => {
    const tr = row([
      isoTime(v.occurred_at), v.camera, kindName(v.kind), el("td", v.status, "decision " + v.status),
      last && last.reason ? last.reason.replaceAll("_", " ") : "", last ? last.reviewer : "",
      last ? isoTime(last.reviewed_at_us / 1000) : "", last ? last.note : "",
    ]);
    tr.dataset.id = v.id;
    tr.dataset.status = v.status;
    if (last) tr.dataset.reviewer = last.reviewer;
    return tr;
  }));
}
