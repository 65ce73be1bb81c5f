//! The handlers over violations, evidence, review decisions, cameras and
//! thresholds, plus health and readiness.

use std::path::Component;
use std::sync::Arc;

use axum::Extension;
use axum::Json;
use axum::extract::rejection::{JsonRejection, PathRejection, QueryRejection};
use axum::extract::{Path, Query, State};
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use chrono::{DateTime, Utc};
use roadwarden_store::{
    DecideOutcome, Decision, QueueCursor, QueueItem, Role, Status, ViolationFilter, from_micros,
    redact_url,
};
use serde::Deserialize;
use serde_json::{Value, json};

use crate::auth::Principal;
use crate::live::Threshold;
use crate::{ApiError, AppState, Event, REJECT_REASONS, THRESHOLD_RANGE};

/// Longest free-text note accepted on a decision.
const MAX_NOTE: usize = 2000;
/// Longest filter value accepted.
const MAX_FILTER: usize = 128;

pub(crate) async fn healthz() -> Json<Value> {
    Json(json!({ "status": "ok" }))
}

pub(crate) async fn readyz(State(state): State<AppState>) -> Response {
    match state.0.store.ping().await {
        Ok(()) => Json(json!({ "ready": true })).into_response(),
        Err(e) => {
            tracing::warn!("not ready: {e}");
            (
                StatusCode::SERVICE_UNAVAILABLE,
                Json(json!({ "ready": false, "reason": "the store is unreachable" })),
            )
                .into_response()
        }
    }
}

pub(crate) async fn not_found() -> ApiError {
    ApiError::not_found("no such endpoint (GET /api/openapi.json lists them)")
}

#[derive(Debug, Deserialize)]
pub(crate) struct ListQuery {
    status: Option<String>,
    kind: Option<String>,
    camera: Option<String>,
    from: Option<String>,
    to: Option<String>,
    pub(crate) after: Option<String>,
    pub(crate) limit: Option<u32>,
}

fn parse_time(key: &str, v: &str) -> Result<i64, ApiError> {
    if let Ok(us) = v.parse::<i64>() {
        return Ok(us);
    }
    DateTime::parse_from_rfc3339(v)
        .map(|t| roadwarden_store::to_micros(t.with_timezone(&Utc)))
        .map_err(|_| {
            ApiError::bad_request(format!(
                "`{key}` must be an RFC 3339 time (2026-05-01T08:00:00Z) or microseconds since the epoch"
            ))
        })
}

fn bounded<'a>(key: &str, v: &'a Option<String>) -> Result<Option<&'a str>, ApiError> {
    match v.as_deref() {
        Some(s) if s.len() > MAX_FILTER => Err(ApiError::bad_request(format!(
            "`{key}` is longer than {MAX_FILTER} bytes"
        ))),
        Some("") | None => Ok(None),
        Some(s) => Ok(Some(s)),
    }
}

fn item_json(i: &QueueItem) -> Value {
    json!({
        "id": i.id,
        "camera": i.camera,
        "kind": i.kind,
        "track_id": i.track_id,
        "occurred_at": from_micros(i.occurred_at_us),
        "occurred_at_us": i.occurred_at_us,
        "confidence": i.confidence,
        "status": i.status,
        "href": format!("/api/violations/{}", i.id),
    })
}

/// The filter of a list or an export (`status`, `kind`, `camera`, `from`,
/// `to`), each value bounded and checked: a bad one is a 400, never a 500.
pub(crate) fn filter_of(q: &ListQuery) -> Result<ViolationFilter, ApiError> {
    let status = bounded("status", &q.status)?
        .map(|s| {
            Status::parse(s).map_err(|_| {
                ApiError::bad_request("`status` must be pending, confirmed or rejected")
            })
        })
        .transpose()?;
    let kind = bounded("kind", &q.kind)?
        .map(|k| match k {
            "no_helmet" | "red_light" => Ok(k.to_owned()),
            _ => Err(ApiError::bad_request(
                "`kind` must be no_helmet or red_light",
            )),
        })
        .transpose()?;
    let camera = bounded("camera", &q.camera)?
        .map(|c| {
            // PostgreSQL refuses NUL in text; no camera id has control characters.
            if c.chars().any(char::is_control) {
                Err(ApiError::bad_request(
                    "`camera` must not contain control characters",
                ))
            } else {
                Ok(c.to_owned())
            }
        })
        .transpose()?;
    let from_us = bounded("from", &q.from)?
        .map(|v| parse_time("from", v))
        .transpose()?;
    let to_us = bounded("to", &q.to)?
        .map(|v| parse_time("to", v))
        .transpose()?;
    Ok(ViolationFilter {
        status,
        kind,
        camera,
        from_us,
        to_us,
    })
}

/// `GET /api/violations?status&kind&camera&from&to&after&limit`.
pub(crate) async fn list_violations(
    State(state): State<AppState>,
    q: Result<Query<ListQuery>, QueryRejection>,
) -> Result<Json<Value>, ApiError> {
    let Query(q) = q?;
    let filter = filter_of(&q)?;
    let after = bounded("after", &q.after)?
        .map(|t| {
            QueueCursor::from_token(t)
                .map_err(|_| ApiError::bad_request("`after` is not a cursor from a `next` field"))
        })
        .transpose()?;
    let limit = page_limit(q.limit, 50)?;
    let page = state
        .0
        .store
        .list_violations(&filter, after.as_ref(), limit)
        .await?;
    Ok(Json(json!({
        "items": page.items.iter().map(item_json).collect::<Vec<_>>(),
        "next": page.next.map(|c| c.token()),
    })))
}

#[derive(Debug, Deserialize)]
pub(crate) struct AuditQuery {
    violation: Option<String>,
    after: Option<String>,
    limit: Option<u32>,
}

/// An audit state as JSON: the JSON text the action wrote, parsed (a string if it is not JSON).
fn audit_state(text: Option<String>) -> Value {
    text.map(|t| serde_json::from_str(&t).unwrap_or(Value::String(t)))
        .unwrap_or(Value::Null)
}

/// `GET /api/audit?violation&after&limit` (admin): the audit log, newest first, a page at a
/// time (`limit` 1..=500, default 100; `after` is the previous page's `next`): reviews, threshold
/// changes, user changes, exports and purges, each with who, when, and the state before and after.
pub(crate) async fn audit(
    State(state): State<AppState>,
    Extension(p): Extension<Principal>,
    q: Result<Query<AuditQuery>, QueryRejection>,
) -> Result<Json<Value>, ApiError> {
    p.require(&[Role::Admin], "reading the audit log")?;
    let Query(q) = q?;
    if let Some(v) = &q.violation {
        uuid::Uuid::parse_str(v)
            .map_err(|_| ApiError::bad_request("`violation` is a violation id (a UUID)"))?;
    }
    let after =
        q.after
            .as_deref()
            .map(|t| {
                t.parse::<i64>().ok().filter(|n| *n > 0).ok_or_else(|| {
                    ApiError::bad_request("`after` is not a cursor from a `next` field")
                })
            })
            .transpose()?;
    let limit = page_limit(q.limit, 100)?;
    let page = state
        .0
        .store
        .audit_page(q.violation.as_deref(), after, limit)
        .await?;
    let next = (page.len() == limit as usize)
        .then(|| page.last().map(|e| e.id.to_string()))
        .flatten();
    let items: Vec<Value> = page
        .into_iter()
        .map(|e| {
            json!({
                "id": e.id,
                "at": from_micros(e.at_us),
                "actor": e.actor,
                "action": e.action,
                "violation": e.violation,
                "before": audit_state(e.before),
                "after": audit_state(e.after),
            })
        })
        .collect();
    Ok(Json(json!({ "items": items, "next": next })))
}

/// A page's `limit`: `default` when not given, else 1..=500.
fn page_limit(limit: Option<u32>, default: u32) -> Result<u32, ApiError> {
    let limit = limit.unwrap_or(default);
    if !(1..=500).contains(&limit) {
        return Err(ApiError::bad_request("`limit` must be 1 to 500"));
    }
    Ok(limit)
}

pub(crate) fn violation_id(id: Result<Path<String>, PathRejection>) -> Result<String, ApiError> {
    let Path(id) = id?;
    uuid::Uuid::parse_str(&id).map_err(|_| ApiError::bad_request("a violation id is a UUID"))?;
    Ok(id)
}

/// `GET /api/violations/{id}`.
pub(crate) async fn violation(
    State(state): State<AppState>,
    id: Result<Path<String>, PathRejection>,
) -> Result<Json<Value>, ApiError> {
    let id = violation_id(id)?;
    let store = &state.0.store;
    let rec = store
        .get(&id)
        .await?
        .ok_or_else(|| ApiError::not_found(format!("violation {id} is not in the store")))?;
    let evidence = store.evidence_rows(&id).await?;
    let reviews = store.reviews_of(&id).await?;
    let f = &rec.fields;
    let parse = |s: &str| serde_json::from_str::<Value>(s).unwrap_or(Value::Null);
    Ok(Json(json!({
        "id": f.id,
        "camera": f.camera,
        "kind": f.kind,
        "track_id": f.track_id,
        "seq": f.seq,
        "occurred_at": from_micros(f.occurred_at_us),
        "occurred_at_us": f.occurred_at_us,
        "confidence": f.confidence,
        "status": rec.status,
        "tombstoned": rec.tombstoned,
        "prev_hash": f.prev_hash,
        "record_hash": rec.record_hash,
        "thresholds": parse(&f.thresholds),
        "detail": parse(&f.detail),
        "evidence": evidence.iter().map(|e| json!({
            "id": e.id,
            "kind": e.item.kind,
            "role": e.item.role,
            "sha256": e.item.sha256,
            "size": e.item.size,
            "purged": e.purged,
            "href": if e.purged { Value::Null } else { json!(format!("/api/evidence/{}", e.id)) },
        })).collect::<Vec<_>>(),
        "reviews": reviews,
    })))
}

fn content_type(path: &str) -> &'static str {
    let ext = path
        .rsplit_once('.')
        .map(|(_, e)| e.to_ascii_lowercase())
        .unwrap_or_default();
    match ext.as_str() {
        "jpg" | "jpeg" => "image/jpeg",
        "png" => "image/png",
        "webp" => "image/webp",
        "mp4" => "video/mp4",
        "mkv" => "video/x-matroska",
        "json" => "application/json",
        _ => "application/octet-stream",
    }
}

/// `GET /api/evidence/{id}`: the file of one evidence row. The path comes
/// from the row alone, must stay inside the data folder's evidence folder
/// and may not pass through a symbolic link out of it.
pub(crate) async fn evidence(
    State(state): State<AppState>,
    id: Result<Path<String>, PathRejection>,
) -> Result<Response, ApiError> {
    let Path(id) = id?;
    let id: i64 = id
        .parse()
        .ok()
        .filter(|i| *i > 0)
        .ok_or_else(|| ApiError::bad_request("an evidence id is a positive integer"))?;
    let row = state
        .0
        .store
        .evidence_row(id)
        .await?
        .ok_or_else(|| ApiError::not_found(format!("no evidence {id}")))?;
    if row.purged {
        return Err(ApiError::new(
            StatusCode::GONE,
            "purged",
            format!("evidence {id} was deleted by retention"),
        ));
    }
    let rel = &row.item.path;
    let data = &state.0.data;
    let refuse = || {
        tracing::error!("evidence {id}: stored path `{rel}` leaves the evidence folder");
        ApiError::not_found(format!("no evidence {id}"))
    };
    if !std::path::Path::new(rel)
        .components()
        .all(|c| matches!(c, Component::Normal(_)))
    {
        return Err(refuse());
    }
    let abs = data.resolve(rel).map_err(|_| refuse())?;
    let (abs_real, root_real) = match (
        tokio::fs::canonicalize(&abs).await,
        tokio::fs::canonicalize(data.evidence_dir()).await,
    ) {
        (Ok(a), Ok(r)) => (a, r),
        _ => {
            tracing::warn!("evidence {id}: {} is missing", abs.display());
            return Err(ApiError::not_found(format!(
                "the file of evidence {id} is missing"
            )));
        }
    };
    if !abs_real.starts_with(&root_real) {
        return Err(refuse());
    }
    let bytes = tokio::fs::read(&abs_real)
        .await
        .map_err(|e| ApiError::internal("reading evidence", e))?;
    let name: String = rel
        .rsplit('/')
        .next()
        .unwrap_or("evidence")
        .chars()
        .filter(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '-' | '_'))
        .collect();
    let mut resp = bytes.into_response();
    let h = resp.headers_mut();
    h.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static(content_type(rel)),
    );
    if let Ok(v) = HeaderValue::from_str(&format!("inline; filename=\"{name}\"")) {
        h.insert(header::CONTENT_DISPOSITION, v);
    }
    if let Ok(v) = HeaderValue::from_str(&row.item.sha256) {
        h.insert("x-evidence-sha256", v);
    }
    h.insert(
        header::CACHE_CONTROL,
        HeaderValue::from_static("private, max-age=3600"),
    );
    Ok(resp)
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct ReviewBody {
    decision: Decision,
    #[serde(default)]
    reason: Option<String>,
    #[serde(default)]
    note: Option<String>,
}

/// `POST /api/violations/{id}/review` (reviewer, admin): a final decision.
pub(crate) async fn review(
    State(state): State<AppState>,
    Extension(p): Extension<Principal>,
    id: Result<Path<String>, PathRejection>,
    body: Result<Json<ReviewBody>, JsonRejection>,
) -> Result<Json<Value>, ApiError> {
    p.require(&[Role::Reviewer, Role::Admin], "reviewing")?;
    let id = violation_id(id)?;
    let Json(body) = body?;
    let note = body.note.unwrap_or_default();
    if note.chars().count() > MAX_NOTE {
        return Err(ApiError::bad_request(format!(
            "`note` is longer than {MAX_NOTE} characters"
        )));
    }
    let reason = match (body.decision, body.reason.as_deref()) {
        (Decision::Reject, Some(r)) if REJECT_REASONS.contains(&r) => r.to_owned(),
        (Decision::Reject, _) => {
            return Err(ApiError::bad_request(format!(
                "a rejection needs `reason`, one of {}",
                REJECT_REASONS.join(", ")
            )));
        }
        (Decision::Confirm, None | Some("")) => String::new(),
        (Decision::Confirm, Some(_)) => {
            return Err(ApiError::bad_request(
                "a confirmation takes no `reason` (use `note`)",
            ));
        }
    };
    let store = &state.0.store;
    let outcome = store
        .decide(&id, &p.user.name, body.decision, &reason, &note)
        .await?;
    match outcome {
        DecideOutcome::Changed { after, .. } => {
            publish_review(&state, &id, after, Some(reason.clone()), &p.user.name).await;
            Ok(Json(json!({ "id": id, "status": after })))
        }
        DecideOutcome::Refused { current } => Err(ApiError::conflict(format!(
            "violation {id} is already {}; decisions are final unless an admin reopens it",
            current.as_str()
        ))),
    }
}

async fn publish_review(
    state: &AppState,
    id: &str,
    status: Status,
    reason: Option<String>,
    by: &str,
) {
    match state.0.store.get(id).await {
        Ok(Some(rec)) => state.publish(Event::Review {
            id: id.to_owned(),
            camera: rec.fields.camera,
            kind: rec.fields.kind,
            status: status.as_str().to_owned(),
            reason: reason.filter(|r| !r.is_empty()),
            by: by.to_owned(),
            at: Utc::now(),
        }),
        Ok(None) => {}
        Err(e) => tracing::warn!("review event for {id} not published: {e}"),
    }
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct ReopenBody {
    #[serde(default)]
    note: Option<String>,
}

/// `POST /api/violations/{id}/reopen` (admin): back to pending.
pub(crate) async fn reopen(
    State(state): State<AppState>,
    Extension(p): Extension<Principal>,
    id: Result<Path<String>, PathRejection>,
    body: Result<Json<ReopenBody>, JsonRejection>,
) -> Result<Json<Value>, ApiError> {
    p.require(&[Role::Admin], "reopening a decision")?;
    let id = violation_id(id)?;
    let Json(body) = body?;
    let note = body.note.unwrap_or_default();
    if note.chars().count() > MAX_NOTE {
        return Err(ApiError::bad_request(format!(
            "`note` is longer than {MAX_NOTE} characters"
        )));
    }
    match state.0.store.reopen(&id, &p.user.name, &note).await? {
        DecideOutcome::Changed { after, .. } => {
            publish_review(&state, &id, after, None, &p.user.name).await;
            Ok(Json(json!({ "id": id, "status": after })))
        }
        DecideOutcome::Refused { .. } => Err(ApiError::conflict(format!(
            "violation {id} is already pending"
        ))),
    }
}

/// `GET /api/review-reasons`.
pub(crate) async fn review_reasons() -> Json<Value> {
    Json(json!({ "reject": REJECT_REASONS }))
}

fn camera_json(state: &AppState, c: &roadwarden_rules::CameraConfig) -> Value {
    let id = c.id.as_str();
    json!({
        "id": id,
        "source": c.source.as_ref().and_then(|s| s.url.as_deref()).map(redact_url),
        "frame": c.frame,
        "analysis_fps": c.analysis_fps,
        "signal_source": c.signal.source,
        "status": state.0.cameras.get(id),
        "thresholds_href": format!("/api/cameras/{id}/thresholds"),
    })
}

/// `GET /api/cameras`.
pub(crate) async fn cameras(State(state): State<AppState>) -> Json<Value> {
    let list: Vec<Value> = state
        .0
        .site
        .get()
        .cameras
        .iter()
        .map(|c| camera_json(&state, c))
        .collect();
    Json(json!({ "cameras": list }))
}

/// The `{class}` path segment of the threshold endpoints as a class role (`other` is no threshold).
pub(crate) fn class_role(class: &str) -> Result<roadwarden_types::ClassRole, ApiError> {
    use roadwarden_types::ClassRole;
    ClassRole::ALL
        .into_iter()
        .find(|r| r.as_str() == class && *r != ClassRole::Other)
        .ok_or_else(|| {
            let names: Vec<&str> = ClassRole::ALL
                .iter()
                .filter(|r| **r != ClassRole::Other)
                .map(|r| r.as_str())
                .collect();
            ApiError::bad_request(format!(
                "unknown class `{}` (expected one of {})",
                class.escape_debug(),
                names.join(", ")
            ))
        })
}

/// A threshold value the camera runners accept: finite and in [`THRESHOLD_RANGE`], else 422
/// `out_of_range` (the PUT and the preview answer the same for the same number).
pub(crate) fn threshold_value(value: f64) -> Result<f64, ApiError> {
    if value.is_finite() && THRESHOLD_RANGE.contains(&value) {
        return Ok(value);
    }
    Err(ApiError::new(
        StatusCode::UNPROCESSABLE_ENTITY,
        "out_of_range",
        format!(
            "threshold {value} is outside {}..={}",
            THRESHOLD_RANGE.start(),
            THRESHOLD_RANGE.end()
        ),
    ))
}

/// The camera's config in the site in force, or 404.
pub(crate) fn known_camera(
    state: &AppState,
    camera: &str,
) -> Result<roadwarden_rules::CameraConfig, ApiError> {
    state.0.site.get().camera(camera).cloned().ok_or_else(|| {
        ApiError::not_found(format!(
            "no camera `{}` in the site config",
            camera.escape_debug()
        ))
    })
}

/// `GET /api/cameras/{camera}`.
pub(crate) async fn camera(
    State(state): State<AppState>,
    camera: Result<Path<String>, PathRejection>,
) -> Result<Json<Value>, ApiError> {
    let Path(camera) = camera?;
    let c = known_camera(&state, &camera)?;
    Ok(Json(camera_json(&state, &c)))
}

fn thresholds_json(map: Option<&std::collections::BTreeMap<String, Threshold>>) -> Value {
    json!(map.cloned().unwrap_or_default())
}

/// `GET /api/thresholds`: every camera's thresholds in force.
pub(crate) async fn all_thresholds(State(state): State<AppState>) -> Json<Value> {
    let t = state.0.thresholds.borrow().clone();
    Json(json!({
        "range": [THRESHOLD_RANGE.start(), THRESHOLD_RANGE.end()],
        "cameras": t.cameras,
    }))
}

/// `GET /api/cameras/{camera}/thresholds`.
pub(crate) async fn camera_thresholds(
    State(state): State<AppState>,
    camera: Result<Path<String>, PathRejection>,
) -> Result<Json<Value>, ApiError> {
    let Path(camera) = camera?;
    known_camera(&state, &camera)?;
    let t = state.0.thresholds.borrow().clone();
    Ok(Json(json!({
        "camera": camera,
        "range": [THRESHOLD_RANGE.start(), THRESHOLD_RANGE.end()],
        "thresholds": thresholds_json(t.cameras.get(&camera)),
    })))
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct ThresholdBody {
    value: f64,
}

/// `PUT /api/cameras/{camera}/thresholds/{class}` (ops, admin): stored,
/// audited with the value before and after, and published to the camera
/// runners, which apply it from their next frame.
pub(crate) async fn put_threshold(
    State(state): State<AppState>,
    Extension(p): Extension<Principal>,
    path: Result<Path<(String, String)>, PathRejection>,
    body: Result<Json<ThresholdBody>, JsonRejection>,
) -> Result<Json<Value>, ApiError> {
    p.require(&[Role::Ops, Role::Admin], "changing thresholds")?;
    let Path((camera, class)) = path?;
    known_camera(&state, &camera)?;
    let Json(body) = body?;
    let role = class_role(&class)?;
    threshold_value(body.value)?;
    let before = state.0.thresholds.borrow().get(&camera, role.as_str());
    let row = state
        .0
        .store
        .set_threshold(&camera, role.as_str(), body.value, before, &p.user.name)
        .await?;
    state.0.thresholds.send_modify(|t| {
        let mut next = (**t).clone();
        next.cameras
            .entry(camera.clone())
            .or_default()
            .insert(role.as_str().to_owned(), Threshold::stored(&row));
        *t = Arc::new(next);
    });
    state.publish(Event::Threshold {
        camera: camera.clone(),
        class: role.as_str().to_owned(),
        before,
        after: body.value,
        by: p.user.name.clone(),
    });
    Ok(Json(json!({
        "camera": camera,
        "class": role.as_str(),
        "before": before,
        "value": body.value,
    })))
}
