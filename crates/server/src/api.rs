//! The handlers over violations, evidence, review decisions, cameras and
//! thresholds, plus health and readiness.

use std::collections::BTreeMap;
use std::path::Component;
use std::sync::Arc;

use axum::Json;
use axum::extract::State;
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use chrono::{DateTime, Utc};
use roadwarden_rules::SignalSource;
use roadwarden_store::{
    DecideOutcome, Decision, EvidenceKind, Plate, QueueCursor, QueueItem, ReviewRow, Status,
    ViolationFilter, from_micros, redact_url,
};
use serde::{Deserialize, Serialize};
use serde_json::Value;
use utoipa::{IntoParams, ToSchema};

use crate::error::ErrorBody;
use crate::extract::{
    Admin, ApiJson, ApiPath, ApiQuery, KnownCamera, Ops, Reviewer, ThresholdClass, ViolationId,
};
use crate::live::{CameraStatus, Threshold};
use crate::{ApiError, AppState, Event, REJECT_REASONS, THRESHOLD_RANGE};
use roadwarden_types::ViolationKind;

/// Longest free-text note accepted on a decision.
const MAX_NOTE: usize = 2000;
/// Longest filter value accepted.
const MAX_FILTER: usize = 128;

/// The process answers.
#[derive(Debug, Serialize, ToSchema)]
pub(crate) struct Health {
    #[schema(example = "ok")]
    status: &'static str,
}

/// `GET /healthz`.
#[utoipa::path(
    get,
    path = "/healthz",
    tag = "service",
    summary = "Liveness",
    description = "Roles: none.",
    security(()),
    responses((status = 200, description = "alive", body = Health))
)]
pub(crate) async fn healthz() -> Json<Health> {
    Json(Health { status: "ok" })
}

/// Whether the service can serve: the store answers.
#[derive(Debug, Serialize, ToSchema)]
pub(crate) struct Readiness {
    ready: bool,
    /// Why not, when not ready.
    #[serde(skip_serializing_if = "Option::is_none")]
    reason: Option<&'static str>,
}

/// `GET /readyz`.
#[utoipa::path(
    get,
    path = "/readyz",
    tag = "service",
    summary = "Readiness: the store answers",
    description = "Roles: none.",
    security(()),
    responses(
        (status = 200, description = "ready", body = Readiness),
        (status = 503, description = "store unreachable", body = Readiness),
    )
)]
pub(crate) async fn readyz(State(state): State<AppState>) -> (StatusCode, Json<Readiness>) {
    match state.0.store.ping().await {
        Ok(()) => (
            StatusCode::OK,
            Json(Readiness {
                ready: true,
                reason: None,
            }),
        ),
        Err(e) => {
            tracing::warn!("not ready: {e}");
            (
                StatusCode::SERVICE_UNAVAILABLE,
                Json(Readiness {
                    ready: false,
                    reason: Some("the store is unreachable"),
                }),
            )
        }
    }
}

pub(crate) async fn not_found() -> ApiError {
    ApiError::not_found("no such endpoint (GET /api/openapi.json lists them)")
}

/// The filter of a listing or an export, and a listing's page.
#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub(crate) struct ListQuery {
    /// pending | confirmed | rejected
    pub(crate) status: Option<String>,
    /// no_helmet | red_light
    pub(crate) kind: Option<String>,
    /// camera id
    pub(crate) camera: Option<String>,
    /// occurred at or after (RFC 3339 or µs since the epoch)
    pub(crate) from: Option<String>,
    /// occurred before (RFC 3339 or µs since the epoch)
    pub(crate) to: Option<String>,
    /// the reviewer's licence plate, as typed (normalised: upper case, spaces, dashes and dots dropped)
    pub(crate) plate: Option<String>,
    /// cursor from a previous page's `next` (listing only)
    pub(crate) after: Option<String>,
    /// 1..=500, default 50 (listing only)
    pub(crate) limit: Option<u32>,
}

pub(crate) fn parse_time(key: &str, v: &str) -> Result<i64, ApiError> {
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

pub(crate) fn bounded<'a>(key: &str, v: &'a Option<String>) -> Result<Option<&'a str>, ApiError> {
    match v.as_deref() {
        Some(s) if s.len() > MAX_FILTER => Err(ApiError::bad_request(format!(
            "`{key}` is longer than {MAX_FILTER} bytes"
        ))),
        Some("") | None => Ok(None),
        Some(s) => Ok(Some(s)),
    }
}

/// One violation of a listing.
#[derive(Debug, Serialize, ToSchema)]
pub(crate) struct ViolationItem {
    id: String,
    camera: String,
    /// no_helmet | red_light
    kind: String,
    track_id: i64,
    occurred_at: DateTime<Utc>,
    occurred_at_us: i64,
    confidence: f64,
    #[schema(schema_with = crate::schema::status)]
    status: Status,
    /// The licence plate a reviewer filled in (normalised); null: none yet.
    plate: Option<String>,
    /// The violation's detail.
    href: String,
    /// The reviewer holding the pending case (an unexpired claim), if any.
    #[serde(skip_serializing_if = "Option::is_none")]
    claimed_by: Option<String>,
    /// Until when the claim holds.
    #[serde(skip_serializing_if = "Option::is_none")]
    claimed_until: Option<DateTime<Utc>>,
}

impl ViolationItem {
    /// The item with its claim, when `claims` holds one for it.
    pub(crate) fn claimed(mut self, claims: &[roadwarden_store::Claim]) -> ViolationItem {
        if let Some(c) = claims.iter().find(|c| c.violation_id == self.id) {
            self.claimed_by = Some(c.by.clone());
            self.claimed_until = Some(from_micros(c.until_us));
        }
        self
    }
}

impl From<QueueItem> for ViolationItem {
    /// Unclaimed; [`ViolationItem::claimed`] adds the claim.
    fn from(i: QueueItem) -> ViolationItem {
        ViolationItem {
            href: format!("/api/violations/{}", i.id),
            occurred_at: from_micros(i.occurred_at_us),
            id: i.id,
            camera: i.camera,
            kind: i.kind,
            track_id: i.track_id,
            occurred_at_us: i.occurred_at_us,
            confidence: i.confidence,
            status: i.status,
            claimed_by: None,
            claimed_until: None,
            plate: i.plate,
        }
    }
}

/// A page of violations, oldest first.
#[derive(Debug, Serialize, ToSchema)]
pub(crate) struct ViolationPage {
    items: Vec<ViolationItem>,
    /// Pass as `after` for the next page; null: no more.
    next: Option<String>,
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
    let plate = bounded("plate", &q.plate)?
        .map(|p| Plate::parse(p).map_err(|e| ApiError::bad_request(format!("`plate`: {e}"))))
        .transpose()?;
    Ok(ViolationFilter {
        status,
        kind,
        camera,
        from_us,
        to_us,
        plate,
    })
}

/// `GET /api/violations?status&kind&camera&from&to&plate&after&limit`.
#[utoipa::path(
    get,
    path = "/api/violations",
    tag = "violations",
    summary = "Violations, oldest first, keyset-paginated",
    description = "Roles: any logged-in user.",
    params(ListQuery),
    responses(
        (status = 200, description = "a page; pass `next` as `after` for the next", body = ViolationPage),
        (status = 400, description = "bad filter", body = ErrorBody),
        (status = 401, description = "not logged in", body = ErrorBody),
    )
)]
pub(crate) async fn list_violations(
    State(state): State<AppState>,
    ApiQuery(q): ApiQuery<ListQuery>,
) -> Result<Json<ViolationPage>, ApiError> {
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
    let claims = if page.items.iter().any(|i| i.status == Status::Pending) {
        state.0.store.active_claims().await?
    } else {
        Vec::new()
    };
    Ok(Json(ViolationPage {
        next: page.next.map(|c| c.token()),
        items: page
            .items
            .into_iter()
            .map(|i| ViolationItem::from(i).claimed(&claims))
            .collect(),
    }))
}

#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub(crate) struct AuditQuery {
    /// only this violation's entries (its id)
    violation: Option<String>,
    /// cursor from a previous page's `next`
    after: Option<String>,
    /// 1..=500, default 100
    limit: Option<u32>,
}

/// One audit log entry.
#[derive(Debug, Serialize, ToSchema)]
pub(crate) struct AuditItem {
    id: i64,
    at: DateTime<Utc>,
    actor: String,
    /// review, reopen, threshold, put_user, export_csv, export_package, purge, reload_site, ...
    action: String,
    violation: Option<String>,
    /// The state before, as the action wrote it (JSON, else a string; null: none).
    #[schema(schema_with = crate::schema::any)]
    before: Value,
    /// The state after.
    #[schema(schema_with = crate::schema::any)]
    after: Value,
}

/// A page of the audit log, newest first.
#[derive(Debug, Serialize, ToSchema)]
pub(crate) struct AuditPage {
    items: Vec<AuditItem>,
    /// Pass as `after` for the next page; null: no more.
    next: Option<String>,
}

/// An audit state as JSON: the JSON text the action wrote, parsed (a string if it is not JSON).
fn audit_state(text: Option<String>) -> Value {
    text.map(|t| serde_json::from_str(&t).unwrap_or(Value::String(t)))
        .unwrap_or(Value::Null)
}

/// `GET /api/audit?violation&after&limit` (admin): the audit log, newest first, a page at a
/// time (`limit` 1..=500, default 100; `after` is the previous page's `next`): reviews, threshold
/// changes, user changes, exports and purges, each with who, when, and the state before and after.
#[utoipa::path(
    get,
    path = "/api/audit",
    tag = "admin",
    summary = "The audit log, newest first",
    description = "Roles: admin. Reviews, reopenings, threshold changes, user changes, exports and purges, each with who, when, and the state before and after.",
    params(AuditQuery),
    responses(
        (status = 200, description = "a page; pass `next` as `after` for the next (null: no more)", body = AuditPage),
        (status = 400, description = "bad `violation`, `after` or `limit`", body = ErrorBody),
        (status = 403, description = "not admin", body = ErrorBody),
    )
)]
pub(crate) async fn audit(
    State(state): State<AppState>,
    _: Admin,
    ApiQuery(q): ApiQuery<AuditQuery>,
) -> Result<Json<AuditPage>, ApiError> {
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
    let items = page
        .into_iter()
        .map(|e| AuditItem {
            id: e.id,
            at: from_micros(e.at_us),
            actor: e.actor,
            action: e.action,
            violation: e.violation,
            before: audit_state(e.before),
            after: audit_state(e.after),
        })
        .collect();
    Ok(Json(AuditPage { items, next }))
}

/// A page's `limit`: `default` when not given, else 1..=500.
pub(crate) fn page_limit(limit: Option<u32>, default: u32) -> Result<u32, ApiError> {
    let limit = limit.unwrap_or(default);
    if !(1..=500).contains(&limit) {
        return Err(ApiError::bad_request("`limit` must be 1 to 500"));
    }
    Ok(limit)
}

/// One evidence file of a violation.
#[derive(Debug, Serialize, ToSchema)]
pub(crate) struct EvidenceLink {
    id: i64,
    #[schema(schema_with = crate::schema::evidence_kind)]
    kind: EvidenceKind,
    /// The frame role of a photo, raw frame or crop: key, before, at, after.
    role: Option<String>,
    sha256: String,
    size: u64,
    /// Deleted by retention.
    purged: bool,
    /// Where to download it; null once purged.
    href: Option<String>,
}

/// A violation with its evidence and reviews.
#[derive(Debug, Serialize, ToSchema)]
pub(crate) struct ViolationDetail {
    id: String,
    camera: String,
    /// no_helmet | red_light
    kind: String,
    track_id: i64,
    /// The record's place in its camera's hash chain.
    seq: i64,
    occurred_at: DateTime<Utc>,
    occurred_at_us: i64,
    confidence: f64,
    #[schema(schema_with = crate::schema::status)]
    status: Status,
    tombstoned: bool,
    /// The licence plate a reviewer filled in or corrected (normalised); null: none yet.
    plate: Option<String>,
    prev_hash: String,
    record_hash: String,
    /// The thresholds in force when it was recorded.
    #[schema(schema_with = crate::schema::any)]
    thresholds: Value,
    /// The evidence frames (boxes, times) and the signal changes.
    #[schema(schema_with = crate::schema::any)]
    detail: Value,
    /// The plate detector's automatic read (`bbox`, `confidence`, and `text` with
    /// `text_confidence` when a recogniser read it), or null: a suggestion for the reviewer,
    /// never the confirmed plate.
    #[schema(schema_with = crate::schema::any)]
    plate_read: Value,
    evidence: Vec<EvidenceLink>,
    /// Oldest first.
    #[schema(schema_with = crate::schema::reviews)]
    reviews: Vec<ReviewRow>,
}

/// `GET /api/violations/{id}`.
#[utoipa::path(
    get,
    path = "/api/violations/{id}",
    tag = "violations",
    summary = "A violation with its evidence links and reviews",
    description = "Roles: any logged-in user.",
    params(("id" = String, Path, description = "violation id (UUID)")),
    responses(
        (status = 200, description = "the violation", body = ViolationDetail),
        (status = 400, description = "not a UUID", body = ErrorBody),
        (status = 404, description = "unknown", body = ErrorBody),
    )
)]
pub(crate) async fn violation(
    State(state): State<AppState>,
    ViolationId(id): ViolationId,
) -> Result<Json<ViolationDetail>, ApiError> {
    let store = &state.0.store;
    let rec = store
        .get(&id)
        .await?
        .ok_or_else(|| ApiError::not_found(format!("violation {id} is not in the store")))?;
    let evidence = store.evidence_rows(&id).await?;
    let reviews = store.reviews_of(&id).await?;
    let f = rec.fields;
    let parse = |s: &str| serde_json::from_str::<Value>(s).unwrap_or(Value::Null);
    let evidence = evidence
        .into_iter()
        .map(|e| EvidenceLink {
            id: e.id,
            kind: e.item.kind,
            role: e.item.role,
            sha256: e.item.sha256,
            size: e.item.size,
            purged: e.purged,
            href: (!e.purged).then(|| format!("/api/evidence/{}", e.id)),
        })
        .collect();
    Ok(Json(ViolationDetail {
        thresholds: parse(&f.thresholds),
        plate_read: parse(&f.detail)
            .get("plate_read")
            .cloned()
            .unwrap_or(Value::Null),
        detail: parse(&f.detail),
        occurred_at: from_micros(f.occurred_at_us),
        id: f.id,
        camera: f.camera,
        kind: f.kind,
        track_id: f.track_id,
        seq: f.seq,
        occurred_at_us: f.occurred_at_us,
        confidence: f.confidence,
        status: rec.status,
        tombstoned: rec.tombstoned,
        plate: rec.plate,
        prev_hash: f.prev_hash,
        record_hash: rec.record_hash,
        evidence,
        reviews,
    }))
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
#[utoipa::path(
    get,
    path = "/api/evidence/{id}",
    tag = "violations",
    summary = "One evidence file, by evidence id (from a violation's `evidence[].href`)",
    description = "Roles: any logged-in user.",
    params(("id" = String, Path, description = "evidence id (a positive integer)")),
    responses(
        (status = 200, description = "the file, typed by its extension; `X-Evidence-SHA256` carries its recorded hash",
            content_type = "application/octet-stream"),
        (status = 400, description = "not an id", body = ErrorBody),
        (status = 404, description = "unknown or missing", body = ErrorBody),
        (status = 410, description = "purged by retention", body = ErrorBody),
    )
)]
pub(crate) async fn evidence(
    State(state): State<AppState>,
    ApiPath(id): ApiPath<String>,
) -> Result<Response, ApiError> {
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

/// A final decision.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub(crate) struct ReviewBody {
    #[schema(schema_with = crate::schema::decision)]
    decision: Decision,
    /// A reason code (`GET /api/review-reasons`): required to reject, refused to confirm.
    #[serde(default)]
    reason: Option<String>,
    /// Free text, at most 2000 characters.
    #[serde(default)]
    note: Option<String>,
}

/// A violation's status after a decision or a reopening.
#[derive(Debug, Serialize, ToSchema)]
pub(crate) struct Decided {
    pub(crate) id: String,
    #[schema(schema_with = crate::schema::status)]
    pub(crate) status: Status,
    /// Until when the reviewer may undo this decision (`POST /api/violations/{id}/undo`); absent
    /// for a reopening or an undo.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub(crate) undo_until: Option<DateTime<Utc>>,
}

/// `POST /api/violations/{id}/review` (reviewer, admin): a final decision.
#[utoipa::path(
    post,
    path = "/api/violations/{id}/review",
    tag = "violations",
    summary = "A final decision; rejections need a reason code",
    description = "Roles: reviewer, admin. Audited; published as a review event. Refused while another reviewer holds an unexpired claim on the case; ends the case's claim. The answer says until when the reviewer may undo it.",
    params(("id" = String, Path, description = "violation id (UUID)")),
    request_body = ReviewBody,
    responses(
        (status = 200, description = "decided", body = Decided),
        (status = 400, description = "bad body", body = ErrorBody),
        (status = 403, description = "role or CSRF", body = ErrorBody),
        (status = 404, description = "unknown", body = ErrorBody),
        (status = 409, description = "already decided, or another reviewer holds the case (`claimed`)", body = ErrorBody),
        (status = 413, description = "body too large", body = ErrorBody),
    )
)]
pub(crate) async fn review(
    State(state): State<AppState>,
    Reviewer(p): Reviewer,
    ViolationId(id): ViolationId,
    ApiJson(body): ApiJson<ReviewBody>,
) -> Result<Json<Decided>, ApiError> {
    let note = body.note.unwrap_or_default();
    if note.chars().count() > MAX_NOTE {
        return Err(ApiError::bad_request(format!(
            "`note` is longer than {MAX_NOTE} characters"
        )));
    }
    let store = &state.0.store;
    let kind = match body.decision {
        Decision::Reject => {
            let rec = store.get(&id).await?.ok_or_else(|| {
                ApiError::not_found(format!("violation {id} is not in the store"))
            })?;
            rec.fields.kind.parse::<ViolationKind>().ok()
        }
        Decision::Confirm => None,
    };
    // A kind this build does not know (a newer store): any listed reason.
    let allowed = kind.map_or(REJECT_REASONS, ViolationKind::reject_reasons);
    let reason = match (body.decision, body.reason.as_deref()) {
        (Decision::Reject, Some(r)) if allowed.contains(&r) => r.to_owned(),
        (Decision::Reject, r) => {
            let what = kind.map_or_else(|| "violation".to_owned(), |k| format!("{k} violation"));
            let got = match r {
                Some(r) if !r.is_empty() => {
                    format!("`{}` is not a reason for a {what}", r.escape_debug())
                }
                _ => format!("rejecting a {what} needs `reason`"),
            };
            return Err(ApiError::bad_request(format!(
                "{got}: one of {}",
                allowed.join(", ")
            )));
        }
        (Decision::Confirm, None | Some("")) => String::new(),
        (Decision::Confirm, Some(_)) => {
            return Err(ApiError::bad_request(
                "a confirmation takes no `reason` (use `note`)",
            ));
        }
    };
    let outcome = store
        .decide(&id, &p.user.name, body.decision, &reason, &note)
        .await?;
    match outcome {
        DecideOutcome::Changed { after, .. } => {
            publish_review(&state, &id, after, Some(reason.clone()), &p.user.name).await;
            let window = chrono::Duration::from_std(state.0.config.undo_window).unwrap_or_default();
            Ok(Json(Decided {
                id,
                status: after,
                undo_until: Some(Utc::now() + window),
            }))
        }
        DecideOutcome::Refused {
            current: Status::Pending,
        } => Err(crate::team::held_conflict(&state, &id).await),
        DecideOutcome::Refused { current } => Err(ApiError::conflict(format!(
            "violation {id} is already {}; decisions are final unless an admin reopens it",
            current.as_str()
        ))),
    }
}

pub(crate) async fn publish_review(
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

/// The licence plate a reviewer read.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub(crate) struct PlateBody {
    /// As typed: upper or lower case, with spaces, dashes or dots between groups (kept normalised:
    /// `ab-12 cd` is `AB12CD`); null or empty clears it.
    plate: Option<String>,
}

/// A violation's plate after a change.
#[derive(Debug, Serialize, ToSchema)]
pub(crate) struct PlateSet {
    id: String,
    /// Normalised; null: none.
    plate: Option<String>,
    /// What it was before (null: none).
    before: Option<String>,
}

/// `PUT /api/violations/{id}/plate` (reviewer, admin): fills in, corrects or clears the plate.
#[utoipa::path(
    put,
    path = "/api/violations/{id}/plate",
    tag = "violations",
    summary = "Fill in, correct or clear the licence plate a reviewer read",
    description = "Roles: reviewer, admin. Any status (a plate may be corrected after the decision). Stored normalised \
                   (upper case, letters and digits only), searched with `GET /api/violations?plate=`, in the CSV \
                   export and in evidence packages. Audited as `plate` with the value before and after.",
    params(("id" = String, Path, description = "violation id (UUID)")),
    request_body = PlateBody,
    responses(
        (status = 200, description = "stored", body = PlateSet),
        (status = 400, description = "not a plate, or a bad body", body = ErrorBody),
        (status = 403, description = "role or CSRF", body = ErrorBody),
        (status = 404, description = "unknown", body = ErrorBody),
    )
)]
pub(crate) async fn put_plate(
    State(state): State<AppState>,
    Reviewer(p): Reviewer,
    ViolationId(id): ViolationId,
    ApiJson(body): ApiJson<PlateBody>,
) -> Result<Json<PlateSet>, ApiError> {
    let plate = match body.plate.as_deref().map(str::trim) {
        None | Some("") => None,
        Some(t) => Some(Plate::parse(t).map_err(|e| ApiError::bad_request(e.to_string()))?),
    };
    let change = state
        .0
        .store
        .set_plate(&id, &p.user.name, plate.as_ref())
        .await?;
    Ok(Json(PlateSet {
        id,
        plate: change.after.map(String::from),
        before: change.before.map(String::from),
    }))
}

/// Why a decision is reopened.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub(crate) struct ReopenBody {
    /// Free text, at most 2000 characters.
    #[serde(default)]
    note: Option<String>,
}

/// `POST /api/violations/{id}/reopen` (admin): back to pending.
#[utoipa::path(
    post,
    path = "/api/violations/{id}/reopen",
    tag = "violations",
    summary = "Back to pending",
    description = "Roles: admin. Audited; published as a review event with status `pending`.",
    params(("id" = String, Path, description = "violation id (UUID)")),
    request_body = ReopenBody,
    responses(
        (status = 200, description = "reopened", body = Decided),
        (status = 403, description = "role or CSRF", body = ErrorBody),
        (status = 404, description = "unknown", body = ErrorBody),
        (status = 409, description = "already pending", body = ErrorBody),
    )
)]
pub(crate) async fn reopen(
    State(state): State<AppState>,
    Admin(p): Admin,
    ViolationId(id): ViolationId,
    ApiJson(body): ApiJson<ReopenBody>,
) -> Result<Json<Decided>, ApiError> {
    let note = body.note.unwrap_or_default();
    if note.chars().count() > MAX_NOTE {
        return Err(ApiError::bad_request(format!(
            "`note` is longer than {MAX_NOTE} characters"
        )));
    }
    match state.0.store.reopen(&id, &p.user.name, &note).await? {
        DecideOutcome::Changed { after, .. } => {
            publish_review(&state, &id, after, None, &p.user.name).await;
            Ok(Json(Decided {
                id,
                status: after,
                undo_until: None,
            }))
        }
        DecideOutcome::Refused { .. } => Err(ApiError::conflict(format!(
            "violation {id} is already pending"
        ))),
    }
}

/// The reason codes a rejection may carry.
#[derive(Debug, Serialize, ToSchema)]
pub(crate) struct ReviewReasons {
    /// Every code, for any kind.
    reject: &'static [&'static str],
    /// The codes each violation kind may carry (`no_helmet`, `red_light`), each a subset of `reject`.
    #[schema(value_type = BTreeMap<String, Vec<String>>)]
    by_kind: BTreeMap<&'static str, &'static [&'static str]>,
}

/// `GET /api/review-reasons`.
#[utoipa::path(
    get,
    path = "/api/review-reasons",
    tag = "violations",
    summary = "Reason codes a rejection may carry",
    description = "Roles: any logged-in user.",
    responses((status = 200, description = "the codes, in the order the page numbers them", body = ReviewReasons))
)]
pub(crate) async fn review_reasons() -> Json<ReviewReasons> {
    Json(ReviewReasons {
        reject: REJECT_REASONS,
        by_kind: ViolationKind::ALL
            .into_iter()
            .map(|k| (k.as_str(), k.reject_reasons()))
            .collect(),
    })
}

/// A configured camera and its live status.
#[derive(Debug, Serialize, ToSchema)]
pub(crate) struct CameraInfo {
    id: String,
    /// The source URL, credentials redacted.
    source: Option<String>,
    /// Width and height in pixels.
    frame: [u32; 2],
    analysis_fps: f64,
    #[schema(schema_with = crate::schema::signal_source)]
    signal_source: SignalSource,
    /// Null until the camera's runner reports.
    status: Option<CameraStatus>,
    thresholds_href: String,
}

impl CameraInfo {
    fn new(state: &AppState, c: &roadwarden_rules::CameraConfig) -> CameraInfo {
        let id = c.id.as_str();
        CameraInfo {
            id: id.to_owned(),
            source: c
                .source
                .as_ref()
                .and_then(|s| s.url.as_deref())
                .map(redact_url),
            frame: c.frame,
            analysis_fps: c.analysis_fps,
            signal_source: c.signal.source,
            status: state.0.cameras.get(id),
            thresholds_href: format!("/api/cameras/{id}/thresholds"),
        }
    }
}

/// Every configured camera.
#[derive(Debug, Serialize, ToSchema)]
pub(crate) struct CameraList {
    cameras: Vec<CameraInfo>,
}

/// `GET /api/cameras`.
#[utoipa::path(
    get,
    path = "/api/cameras",
    tag = "cameras",
    summary = "Configured cameras with live status",
    description = "Roles: any logged-in user.",
    responses((status = 200, description = "the cameras of the site in force", body = CameraList))
)]
pub(crate) async fn cameras(State(state): State<AppState>) -> Json<CameraList> {
    let cameras = state
        .0
        .site
        .get()
        .cameras
        .iter()
        .map(|c| CameraInfo::new(&state, c))
        .collect();
    Json(CameraList { cameras })
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

/// `GET /api/cameras/{camera}`.
#[utoipa::path(
    get,
    path = "/api/cameras/{camera}",
    tag = "cameras",
    summary = "One camera: config and live status",
    description = "Roles: any logged-in user.",
    params(("camera" = String, Path, description = "camera id")),
    responses(
        (status = 200, description = "the camera", body = CameraInfo),
        (status = 404, description = "not configured", body = ErrorBody),
    )
)]
pub(crate) async fn camera(State(state): State<AppState>, camera: KnownCamera) -> Json<CameraInfo> {
    Json(CameraInfo::new(&state, &camera.config))
}

/// The smallest and largest threshold accepted.
fn range() -> [f64; 2] {
    [*THRESHOLD_RANGE.start(), *THRESHOLD_RANGE.end()]
}

/// Every camera's thresholds in force.
#[derive(Debug, Serialize, ToSchema)]
pub(crate) struct AllThresholds {
    /// The smallest and largest value accepted.
    range: [f64; 2],
    /// By camera id, then class role.
    cameras: BTreeMap<String, BTreeMap<String, Threshold>>,
}

/// `GET /api/thresholds`: every camera's thresholds in force.
#[utoipa::path(
    get,
    path = "/api/thresholds",
    tag = "thresholds",
    summary = "Every camera's thresholds in force",
    description = "Roles: any logged-in user.",
    responses((status = 200, description = "the thresholds in force", body = AllThresholds))
)]
pub(crate) async fn all_thresholds(State(state): State<AppState>) -> Json<AllThresholds> {
    let t = state.0.thresholds.borrow().clone();
    Json(AllThresholds {
        range: range(),
        cameras: t.cameras.clone(),
    })
}

/// One camera's thresholds in force.
#[derive(Debug, Serialize, ToSchema)]
pub(crate) struct CameraThresholds {
    camera: String,
    /// The smallest and largest value accepted.
    range: [f64; 2],
    /// By class role; a class not listed keeps its model's own threshold.
    thresholds: BTreeMap<String, Threshold>,
}

/// `GET /api/cameras/{camera}/thresholds`.
#[utoipa::path(
    get,
    path = "/api/cameras/{camera}/thresholds",
    tag = "thresholds",
    summary = "A camera's thresholds in force, by class",
    description = "Roles: any logged-in user.",
    params(("camera" = String, Path, description = "camera id")),
    responses(
        (status = 200, description = "thresholds", body = CameraThresholds),
        (status = 404, description = "not configured", body = ErrorBody),
    )
)]
pub(crate) async fn camera_thresholds(
    State(state): State<AppState>,
    camera: KnownCamera,
) -> Json<CameraThresholds> {
    let t = state.0.thresholds.borrow().clone();
    Json(CameraThresholds {
        thresholds: t.cameras.get(&camera.id).cloned().unwrap_or_default(),
        camera: camera.id,
        range: range(),
    })
}

/// A new threshold.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub(crate) struct ThresholdBody {
    /// 0.05..=0.95
    value: f64,
}

/// A threshold changed.
#[derive(Debug, Serialize, ToSchema)]
pub(crate) struct ThresholdChanged {
    camera: String,
    class: &'static str,
    /// The value in force before (null: the model's own).
    before: Option<f64>,
    value: f64,
}

/// `PUT /api/cameras/{camera}/thresholds/{class}` (ops, admin): stored,
/// audited with the value before and after, and published to the camera
/// runners, which apply it from their next frame.
#[utoipa::path(
    put,
    path = "/api/cameras/{camera}/thresholds/{class}",
    tag = "thresholds",
    summary = "Set a camera's score threshold for a class; applied from the next frame",
    description = "Roles: ops, admin. Audited; published as a threshold event.",
    params(
        ("camera" = String, Path, description = "camera id"),
        ("class" = String, Path, description = "class role (no_helmet, helmet, two_wheeler, vehicle, person, traffic_light)"),
    ),
    request_body = ThresholdBody,
    responses(
        (status = 200, description = "stored and in force", body = ThresholdChanged),
        (status = 400, description = "unknown class", body = ErrorBody),
        (status = 403, description = "role or CSRF", body = ErrorBody),
        (status = 404, description = "not configured", body = ErrorBody),
        (status = 422, description = "out of range, or a body that is not `{value}`", body = ErrorBody),
    )
)]
pub(crate) async fn put_threshold(
    State(state): State<AppState>,
    Ops(p): Ops,
    camera: KnownCamera,
    ThresholdClass(role): ThresholdClass,
    ApiJson(body): ApiJson<ThresholdBody>,
) -> Result<Json<ThresholdChanged>, ApiError> {
    let camera = camera.id;
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
    Ok(Json(ThresholdChanged {
        camera,
        class: role.as_str(),
        before,
        value: body.value,
    }))
}
