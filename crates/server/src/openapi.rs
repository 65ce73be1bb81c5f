//! The OpenAPI 3.1 document of the API, written by hand beside the routes.

use axum::Json;
use serde_json::{Value, json};

fn op(summary: &str, roles: &str, responses: &[(&str, &str)]) -> Value {
    let mut r = serde_json::Map::new();
    for (code, what) in responses {
        r.insert((*code).to_owned(), json!({ "description": what }));
    }
    json!({ "summary": summary, "description": format!("Roles: {roles}."), "responses": r })
}

fn id_param(name: &str, what: &str) -> Value {
    json!({ "name": name, "in": "path", "required": true, "description": what, "schema": { "type": "string" } })
}

fn query(name: &str, what: &str) -> Value {
    json!({ "name": name, "in": "query", "required": false, "description": what, "schema": { "type": "string" } })
}

/// The JSON Schema of the events published on MQTT (`roadwarden/{camera}/violations`, QoS 1; violation and
/// review events) and on the webhook (every event); see docs/events.md.
pub fn event_schema() -> Value {
    let s = |t: &str| json!({ "type": t });
    let time = json!({ "type": "string", "format": "date-time" });
    json!({
        "description": "An event on MQTT or the webhook: a new violation, a review decision (status `pending` after an admin reopens), or (webhook only) a threshold change.",
        "oneOf": [
            {
                "type": "object",
                "required": ["event", "id", "camera", "kind", "occurred_at", "confidence"],
                "additionalProperties": false,
                "properties": {
                    "event": { "const": "violation" },
                    "id": { "type": "string", "format": "uuid" },
                    "camera": s("string"),
                    "kind": { "enum": ["no_helmet", "red_light"] },
                    "occurred_at": time,
                    "confidence": { "type": "number", "minimum": 0, "maximum": 1 }
                }
            },
            {
                "type": "object",
                "required": ["event", "id", "camera", "kind", "status", "reason", "by", "at"],
                "additionalProperties": false,
                "properties": {
                    "event": { "const": "review" },
                    "id": { "type": "string", "format": "uuid" },
                    "camera": s("string"),
                    "kind": { "enum": ["no_helmet", "red_light"] },
                    "status": { "enum": ["pending", "confirmed", "rejected"] },
                    "reason": { "type": ["string", "null"], "description": "the reason code of a rejection" },
                    "by": s("string"),
                    "at": time
                }
            },
            {
                "type": "object",
                "required": ["event", "camera", "class", "before", "after", "by"],
                "additionalProperties": false,
                "properties": {
                    "event": { "const": "threshold" },
                    "camera": s("string"),
                    "class": s("string"),
                    "before": { "type": ["number", "null"], "description": "the value in force before (null: the model's own)" },
                    "after": s("number"),
                    "by": s("string")
                }
            }
        ]
    })
}

/// The document.
pub fn document() -> Value {
    let auth = "any logged-in user";
    let mut list = op(
        "Violations, oldest first, keyset-paginated",
        auth,
        &[
            (
                "200",
                "`{items, next}`; pass `next` as `after` for the next page",
            ),
            ("400", "bad filter"),
            ("401", "not logged in"),
        ],
    );
    list["parameters"] = json!([
        query("status", "pending | confirmed | rejected"),
        query("kind", "no_helmet | red_light"),
        query("camera", "camera id"),
        query("from", "occurred at or after (RFC 3339 or µs)"),
        query("to", "occurred before (RFC 3339 or µs)"),
        query("after", "cursor from a previous page's `next`"),
        query("limit", "1..500, default 50"),
    ]);
    let mut export_csv = op(
        "The violations a filter selects, oldest first, as CSV (streamed; every match, no paging): \
         id, camera, kind, occurred_at, confidence, status, reviewed_by, reviewed_at, reason, record_hash, \
         evidence_count; cells a spreadsheet would run as a formula get a leading apostrophe. Audited as \
         `export_csv` with the query",
        auth,
        &[
            ("200", "`text/csv` with a header row"),
            ("400", "bad filter, or `after`/`limit` given"),
            ("401", "not logged in"),
        ],
    );
    // The listing's filters, without its paging.
    export_csv["parameters"] = list["parameters"]
        .as_array()
        .into_iter()
        .flatten()
        .filter(|p| p["name"] != "after" && p["name"] != "limit")
        .cloned()
        .collect::<Vec<_>>()
        .into();
    let mut package = op(
        "A violation's evidence package: a ZIP of `evidence/...` (every file of the record), `violation.json` \
         (the stored record: chain fields, record hash, status, reviews) and `manifest.json` (format version, \
         creation time, SHA-256 and size of every file and of violation.json); check it with \
         `roadwarden verify --package FILE.zip`; audited as `export_package`",
        auth,
        &[
            (
                "200",
                "`application/zip`; `X-Package-SHA256` carries the ZIP's hash",
            ),
            ("400", "not a UUID"),
            ("401", "not logged in"),
            ("404", "unknown"),
            (
                "409",
                "an evidence file is missing or no longer matches its recorded hash",
            ),
        ],
    );
    package["parameters"] = json!([id_param("id", "violation id (UUID)")]);
    let mut detail = op(
        "A violation with its evidence links and reviews",
        auth,
        &[
            ("200", "the violation"),
            ("400", "not a UUID"),
            ("404", "unknown"),
        ],
    );
    detail["parameters"] = json!([id_param("id", "violation id (UUID)")]);
    let mut review = op(
        "A final decision: `{decision: confirm|reject, reason?, note?}`; rejections need a reason code",
        "reviewer, admin",
        &[
            ("200", "decided"),
            ("400", "bad body"),
            ("403", "role or CSRF"),
            ("404", "unknown"),
            ("409", "already decided"),
            ("413", "body too large"),
        ],
    );
    review["parameters"] = json!([id_param("id", "violation id (UUID)")]);
    let mut reopen = op(
        "Back to pending: `{note?}`",
        "admin",
        &[
            ("200", "reopened"),
            ("403", "role or CSRF"),
            ("404", "unknown"),
            ("409", "already pending"),
        ],
    );
    reopen["parameters"] = json!([id_param("id", "violation id (UUID)")]);
    let mut evidence = op(
        "One evidence file, by evidence id (from a violation's `evidence[].href`)",
        auth,
        &[
            (
                "200",
                "the file; `X-Evidence-SHA256` carries its recorded hash",
            ),
            ("400", "not an id"),
            ("404", "unknown or missing"),
            ("410", "purged by retention"),
        ],
    );
    evidence["parameters"] = json!([id_param("id", "evidence id (integer)")]);
    let mut camera = op(
        "One camera: config and live status",
        auth,
        &[("200", "the camera"), ("404", "not configured")],
    );
    camera["parameters"] = json!([id_param("camera", "camera id")]);
    let mut cam_thr = op(
        "A camera's thresholds in force, by class",
        auth,
        &[("200", "thresholds"), ("404", "not configured")],
    );
    cam_thr["parameters"] = json!([id_param("camera", "camera id")]);
    let reload = op(
        "Re-read the site file, as SIGHUP: new cameras start, removed ones stop, changed ones restart; audited",
        "admin",
        &[
            ("200", "`{added, removed, restarted, unchanged}` camera ids"),
            ("403", "role or CSRF"),
            ("422", "the file does not validate; nothing changed"),
            ("503", "this server runs no cameras"),
        ],
    );
    let mut signal = op(
        "A controller's signal report: `{state: red|amber|green|unknown, at?}` (`at` RFC 3339, default now); \
         it wins over the video reading while fresh, from the camera's next frame",
        "ops, admin",
        &[
            ("202", "`{camera, state, at}` handed to the camera"),
            ("400", "bad `at`"),
            ("403", "role or CSRF"),
            ("404", "not configured"),
            ("409", "the camera is not running"),
            ("422", "bad body"),
            ("503", "this server runs no cameras"),
        ],
    );
    signal["parameters"] = json!([id_param("camera", "camera id")]);
    let mut pipeline = op(
        "A camera's pipeline: frames analysed, class thresholds applied and from which frame, confident \
         detections and violations by kind, queue depth, frame latency; and what was recorded for it",
        auth,
        &[
            (
                "200",
                "`{camera, status, pipeline, recorded}` (null until the runner reports)",
            ),
            ("404", "not configured"),
        ],
    );
    pipeline["parameters"] = json!([id_param("camera", "camera id")]);
    let mut put_thr = op(
        "Set a camera's score threshold for a class: `{value}`; applied from the next frame, audited",
        "ops, admin",
        &[
            ("200", "`{camera, class, before, value}`"),
            ("400", "unknown class"),
            ("403", "role or CSRF"),
            ("404", "not configured"),
            ("422", "out of range"),
        ],
    );
    put_thr["parameters"] = json!([
        id_param("camera", "camera id"),
        id_param("class", "class role (no_helmet, helmet, two_wheeler, ...)")
    ]);
    let mut audit = op(
        "The audit log, newest first: reviews, reopenings, threshold changes, user changes, exports and purges, \
         each with `{id, at, actor, action, violation, before, after}`",
        "admin",
        &[
            (
                "200",
                "`{items, next}`: pass `next` as `after` for the next page (null: no more)",
            ),
            ("400", "bad `violation`, `after` or `limit`"),
            ("403", "not admin"),
        ],
    );
    audit["parameters"] = json!([
        query("violation", "only this violation's entries (its id)"),
        query("after", "cursor from a previous page's `next`"),
        query("limit", "1..500, default 100"),
    ]);
    let mut preview = op(
        "What a new threshold would have done: of the camera's stored violations of the last `days` days of the \
         kinds the class gates (no_helmet → no_helmet; two_wheeler → no_helmet and red_light; vehicle → red_light; \
         other classes → none), how many have a confidence at or above `value` (kept) or below it (dropped), \
         each split by review status. Nothing is changed",
        "ops, admin",
        &[
            (
                "200",
                "`{camera, class, value, current, days, since, kinds, total, kept: {total, pending, confirmed, rejected}, dropped: {...}}`",
            ),
            (
                "400",
                "unknown class, `value` not a number, or `days` outside 1..=365",
            ),
            ("403", "not ops or admin"),
            ("404", "not configured"),
            (
                "422",
                "`out_of_range`: `value` outside the threshold range (as the PUT answers)",
            ),
        ],
    );
    preview["parameters"] = json!([
        id_param("camera", "camera id"),
        id_param("class", "class role (no_helmet, helmet, two_wheeler, ...)"),
        json!({ "name": "value", "in": "query", "required": true, "description": "the threshold to try (0.05..=0.95)", "schema": { "type": "number" } }),
        json!({ "name": "days", "in": "query", "required": false, "description": "how far back, 1..=365 (default 30)", "schema": { "type": "integer" } }),
    ]);
    json!({
        "openapi": "3.1.0",
        "info": {
            "title": "roadwarden",
            "version": env!("CARGO_PKG_VERSION"),
            "description": "Review helmet and red-light violations, download their evidence, tune thresholds. \
                Every endpoint except /healthz, /readyz and /api/login needs a session cookie (from /api/login) or \
                `Authorization: Bearer <token>`. With a cookie, POST/PUT/DELETE also need `X-CSRF-Token` \
                (from the login answer or GET /api/me). Errors are `{error, message}`."
        },
        "components": {
            "schemas": { "Event": event_schema() },
            "securitySchemes": {
                "session": { "type": "apiKey", "in": "cookie", "name": crate::auth::SESSION_COOKIE },
                "bearer": { "type": "http", "scheme": "bearer" }
            }
        },
        "security": [{ "session": [] }, { "bearer": [] }],
        "paths": {
            "/healthz": { "get": op("Liveness", "none", &[("200", "alive")]) },
            "/readyz": { "get": op("Readiness: the store answers", "none", &[("200", "ready"), ("503", "store unreachable")]) },
            "/metrics": { "get": op("Prometheus text exposition", auth, &[("200", "metrics"), ("401", "not logged in")]) },
            "/api/openapi.json": { "get": op("This document", auth, &[("200", "the document")]) },
            "/api/login": { "post": op("`{name, password}` → session cookie and `csrf_token`", "none",
                &[("200", "logged in"), ("401", "wrong name or password"), ("429", "too many failed logins (Retry-After)")]) },
            "/api/logout": { "post": op("End the session", auth, &[("204", "logged out")]) },
            "/api/me": { "get": op("The caller and the session's CSRF token", auth, &[("200", "`{user, role, auth, csrf_token}`")]) },
            "/api/users": {
                "get": op("Users", "admin", &[("200", "`{users}`"), ("403", "not admin")]),
                "post": op("Create a user or set role and password: `{name, role, password}`", "admin", &[("201", "created"), ("400", "bad body"), ("403", "not admin")])
            },
            "/api/audit": { "get": audit },
            "/api/violations": { "get": list },
            "/api/violations/{id}": { "get": detail },
            "/api/violations/{id}/review": { "post": review },
            "/api/violations/{id}/reopen": { "post": reopen },
            "/api/violations/{id}/package.zip": { "get": package },
            "/api/export/violations.csv": { "get": export_csv },
            "/api/review-reasons": { "get": op("Reason codes a rejection may carry", auth, &[("200", "`{reject: [...]}`")]) },
            "/api/evidence/{id}": { "get": evidence },
            "/api/cameras": { "get": op("Configured cameras with live status", auth, &[("200", "`{cameras}`")]) },
            "/api/cameras/{camera}": { "get": camera },
            "/api/cameras/reload": { "post": reload },
            "/api/cameras/{camera}/signal": { "post": signal },
            "/api/cameras/{camera}/pipeline": { "get": pipeline },
            "/api/thresholds": { "get": op("Every camera's thresholds in force", auth, &[("200", "`{range, cameras}`")]) },
            "/api/cameras/{camera}/thresholds": { "get": cam_thr },
            "/api/cameras/{camera}/thresholds/{class}": { "put": put_thr },
            "/api/cameras/{camera}/thresholds/{class}/preview": { "get": preview },
        }
    })
}

/// `GET /api/openapi.json`.
pub(crate) async fn openapi() -> Json<Value> {
    Json(document())
}
