//! The handlers of team work over the review queue: claiming a case while it is open (and the
//! next free one), the live queue (Server-Sent Events: new, claimed, released, decided and
//! returned cases), undoing a decision inside the window, bulk rejection, the paged history of
//! decisions, each user's time zone, and the statistics (per camera and day, per reviewer, the
//! rejection reasons with the threshold they point at).

use std::collections::BTreeMap;
use std::convert::Infallible;

use axum::Json;
use axum::extract::State;
use axum::http::StatusCode;
use axum::response::sse::{Event as SseEvent, KeepAlive, Sse};
use chrono::{DateTime, Utc};
use futures_util::Stream;
use roadwarden_store::{
    ClaimOutcome, DecideOutcome, Decision, HistoryCursor, Status, UndoOutcome, from_micros,
};
use roadwarden_types::ViolationKind;
use serde::{Deserialize, Serialize};
use serde_json::json;
use tokio::sync::broadcast::error::RecvError;
use utoipa::{IntoParams, ToSchema};

use crate::api::{
    Decided, ListQuery, ViolationItem, bounded, filter_of, page_limit, parse_time, publish_review,
};
use crate::auth::Principal;
use crate::error::ErrorBody;
use crate::extract::{ApiJson, ApiQuery, Ops, Reviewer, ViolationId};
use crate::{ApiError, AppState, Event, REJECT_REASONS};

/// Longest free-text note accepted on a bulk rejection.
const MAX_NOTE: usize = 2000;
/// Most cases one bulk rejection may name.
const MAX_BULK: usize = 200;

/// A claim taken or released, for the live queue.
#[derive(Debug, Clone)]
pub(crate) struct QueueEvent {
    /// `claimed` or `released`.
    pub(crate) event: &'static str,
    pub(crate) id: String,
    pub(crate) by: String,
    pub(crate) until: Option<DateTime<Utc>>,
}

/// The 409 of a decision on a case another reviewer holds.
pub(crate) async fn held_conflict(state: &AppState, id: &str) -> ApiError {
    let holder = match state.0.store.active_claims().await {
        Ok(claims) => claims.into_iter().find(|c| c.violation_id == id),
        Err(e) => return e.into(),
    };
    match holder {
        Some(c) => ApiError::new(
            StatusCode::CONFLICT,
            "claimed",
            format!(
                "violation {id} is open with {} until {}; take the next case",
                c.by,
                from_micros(c.until_us).to_rfc3339()
            ),
        ),
        None => ApiError::conflict(format!(
            "violation {id} changed while deciding; load it again"
        )),
    }
}

/// A claim held.
#[derive(Debug, Serialize, ToSchema)]
pub(crate) struct Claimed {
    id: String,
    by: String,
    /// The claim lapses then unless renewed (claim again).
    until: DateTime<Utc>,
}

/// `POST /api/violations/{id}/claim` (reviewer, admin).
#[utoipa::path(
    post,
    path = "/api/violations/{id}/claim",
    tag = "queue",
    summary = "Claim (or renew the claim on) a pending case while it is open",
    description = "Roles: reviewer, admin. One atomic update: of concurrent claims exactly one wins. Ends the caller's claims on other cases; lapses after the claim time unless renewed; a decision ends it. Published on the live queue.",
    params(("id" = String, Path, description = "violation id (UUID)")),
    responses(
        (status = 200, description = "the caller holds the case", body = Claimed),
        (status = 403, description = "role or CSRF", body = ErrorBody),
        (status = 404, description = "unknown", body = ErrorBody),
        (status = 409, description = "`claimed`: another reviewer holds it; `conflict`: decided", body = ErrorBody),
    )
)]
pub(crate) async fn claim(
    State(state): State<AppState>,
    Reviewer(p): Reviewer,
    ViolationId(id): ViolationId,
) -> Result<Json<Claimed>, ApiError> {
    let ttl = state.0.config.claim_ttl;
    match state.0.store.claim(&id, &p.user.name, ttl).await? {
        ClaimOutcome::Claimed { until_us } => {
            let until = from_micros(until_us);
            let _ = state.0.queue.send(QueueEvent {
                event: "claimed",
                id: id.clone(),
                by: p.user.name.clone(),
                until: Some(until),
            });
            Ok(Json(Claimed {
                id,
                by: p.user.name,
                until,
            }))
        }
        ClaimOutcome::Held { by, until_us } => Err(ApiError::new(
            StatusCode::CONFLICT,
            "claimed",
            format!(
                "violation {id} is open with {by} until {}; take the next case",
                from_micros(until_us).to_rfc3339()
            ),
        )),
        ClaimOutcome::NotPending { status } => Err(ApiError::conflict(format!(
            "violation {id} is already {}; nothing to claim",
            status.as_str()
        ))),
    }
}

/// Whether a claim was released.
#[derive(Debug, Serialize, ToSchema)]
pub(crate) struct Released {
    id: String,
    /// False when the caller held no claim on it.
    released: bool,
}

/// `DELETE /api/violations/{id}/claim` (reviewer, admin).
#[utoipa::path(
    delete,
    path = "/api/violations/{id}/claim",
    tag = "queue",
    summary = "Release the caller's claim on a case (the reviewer left it)",
    description = "Roles: reviewer, admin. Published on the live queue.",
    params(("id" = String, Path, description = "violation id (UUID)")),
    responses(
        (status = 200, description = "released (or none was held)", body = Released),
        (status = 403, description = "role or CSRF", body = ErrorBody),
    )
)]
pub(crate) async fn release(
    State(state): State<AppState>,
    Reviewer(p): Reviewer,
    ViolationId(id): ViolationId,
) -> Result<Json<Released>, ApiError> {
    let released = state.0.store.release(&id, &p.user.name).await?;
    if released {
        let _ = state.0.queue.send(QueueEvent {
            event: "released",
            id: id.clone(),
            by: p.user.name,
            until: None,
        });
    }
    Ok(Json(Released { id, released }))
}

/// The case a reviewer gets next.
#[derive(Debug, Serialize, ToSchema)]
pub(crate) struct NextCase {
    /// Null: no free pending case matches.
    item: Option<ViolationItem>,
}

/// `POST /api/queue/next?kind&camera&from&to` (reviewer, admin).
#[utoipa::path(
    post,
    path = "/api/queue/next",
    tag = "queue",
    summary = "Claim the oldest pending case nobody else holds",
    description = "Roles: reviewer, admin. Skips cases other reviewers hold; two callers never get the same case. The filter narrows the queue (`status` is ignored: always pending).",
    params(ListQuery),
    responses(
        (status = 200, description = "the case, claimed for the caller (null: none)", body = NextCase),
        (status = 400, description = "bad filter", body = ErrorBody),
        (status = 403, description = "role or CSRF", body = ErrorBody),
    )
)]
pub(crate) async fn next_case(
    State(state): State<AppState>,
    Reviewer(p): Reviewer,
    ApiQuery(q): ApiQuery<ListQuery>,
) -> Result<Json<NextCase>, ApiError> {
    let filter = filter_of(&q)?;
    let ttl = state.0.config.claim_ttl;
    let Some((item, until_us)) = state.0.store.claim_next(&p.user.name, &filter, ttl).await? else {
        return Ok(Json(NextCase { item: None }));
    };
    let claim = roadwarden_store::Claim {
        violation_id: item.id.clone(),
        by: p.user.name.clone(),
        until_us,
    };
    let _ = state.0.queue.send(QueueEvent {
        event: "claimed",
        id: item.id.clone(),
        by: p.user.name,
        until: Some(from_micros(until_us)),
    });
    Ok(Json(NextCase {
        item: Some(ViolationItem::from(item).claimed(&[claim])),
    }))
}

/// `GET /api/queue/events`: the live queue.
#[utoipa::path(
    get,
    path = "/api/queue/events",
    tag = "queue",
    summary = "The live queue (Server-Sent Events)",
    description = "Roles: any logged-in user. Events: `hello` on connect; `new` (a violation was recorded: id, camera, kind); `claimed` and `released` (id, by, until); `decided` (id, camera, status, by); `returned` (a case is pending again after an undo or a reopening: id, camera, by); `resync` (events were missed: load the queue again). Each event's data is JSON. Ends when the server shuts down.",
    responses((status = 200, description = "an event stream", content_type = "text/event-stream"))
)]
pub(crate) async fn queue_events(
    State(state): State<AppState>,
    _p: Principal,
) -> Sse<impl Stream<Item = Result<SseEvent, Infallible>>> {
    let events = state.0.events.subscribe();
    let queue = state.0.queue.subscribe();
    let closing = state.0.closing.subscribe();
    let sse = |name: &str, data: serde_json::Value| {
        Some(Ok::<_, Infallible>(
            SseEvent::default().event(name).data(data.to_string()),
        ))
    };
    let stream = futures_util::stream::unfold(
        (events, queue, closing, true),
        move |(mut events, mut queue, mut closing, first)| async move {
            if first {
                let hello = sse("hello", json!({}))?;
                return Some((hello, (events, queue, closing, false)));
            }
            loop {
                if *closing.borrow() {
                    return None;
                }
                let out = tokio::select! {
                    e = events.recv() => match e {
                        Ok(Event::Violation { id, camera, kind, .. }) => {
                            sse("new", json!({ "id": id, "camera": camera, "kind": kind }))
                        }
                        Ok(Event::Review { id, camera, status, by, .. }) if status == "pending" => {
                            sse("returned", json!({ "id": id, "camera": camera, "by": by }))
                        }
                        Ok(Event::Review { id, camera, status, by, .. }) => {
                            sse("decided", json!({ "id": id, "camera": camera, "status": status, "by": by }))
                        }
                        Ok(_) => None,
                        Err(RecvError::Lagged(_)) => sse("resync", json!({})),
                        Err(RecvError::Closed) => return None,
                    },
                    q = queue.recv() => match q {
                        Ok(q) => sse(q.event, json!({ "id": q.id, "by": q.by, "until": q.until })),
                        Err(RecvError::Lagged(_)) => sse("resync", json!({})),
                        Err(RecvError::Closed) => return None,
                    },
                    c = closing.changed() => {
                        if c.is_err() {
                            return None;
                        }
                        None
                    }
                };
                if let Some(out) = out {
                    return Some((out, (events, queue, closing, false)));
                }
            }
        },
    );
    Sse::new(stream).keep_alive(KeepAlive::default())
}

/// `POST /api/violations/{id}/undo` (reviewer, admin).
#[utoipa::path(
    post,
    path = "/api/violations/{id}/undo",
    tag = "violations",
    summary = "Undo the caller's own decision inside the undo window",
    description = "Roles: reviewer, admin. The case is pending again and claimed by the caller; the decision stays in the store marked undone, the review log gets an `undo` entry (never a deletion) and the audit log an `undo` action; published as a review event with status `pending`.",
    params(("id" = String, Path, description = "violation id (UUID)")),
    responses(
        (status = 200, description = "undone: pending again", body = Decided),
        (status = 403, description = "role or CSRF, or the decision is another reviewer's (`not_yours`)", body = ErrorBody),
        (status = 404, description = "unknown", body = ErrorBody),
        (status = 409, description = "`undo_window_closed`, or `conflict`: nothing to undo", body = ErrorBody),
    )
)]
pub(crate) async fn undo(
    State(state): State<AppState>,
    Reviewer(p): Reviewer,
    ViolationId(id): ViolationId,
) -> Result<Json<Decided>, ApiError> {
    let cfg = &state.0.config;
    let window = cfg.undo_window;
    match state
        .0
        .store
        .undo(&id, &p.user.name, window, cfg.claim_ttl)
        .await?
    {
        UndoOutcome::Undone { .. } => {
            publish_review(&state, &id, Status::Pending, None, &p.user.name).await;
            Ok(Json(Decided {
                id,
                status: Status::Pending,
                undo_until: None,
            }))
        }
        UndoOutcome::NothingToUndo => Err(ApiError::conflict(format!(
            "violation {id} has no decision to undo"
        ))),
        UndoOutcome::NotYours { by } => Err(ApiError::new(
            StatusCode::FORBIDDEN,
            "not_yours",
            format!(
                "the decision on violation {id} is {by}'s; only they may undo it (an admin may reopen it)"
            ),
        )),
        UndoOutcome::TooLate { reviewed_at_us } => Err(ApiError::new(
            StatusCode::CONFLICT,
            "undo_window_closed",
            format!(
                "the decision on violation {id} was made at {}; it could be undone for {} s after (an admin may reopen it)",
                from_micros(reviewed_at_us).to_rfc3339(),
                window.as_secs_f64()
            ),
        )),
    }
}

/// Many obvious false alarms rejected for one reason.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub(crate) struct BulkRejectBody {
    /// Violation ids (UUIDs), 1 to 200.
    ids: Vec<String>,
    /// A reason code every listed case's kind may carry (`GET /api/review-reasons`).
    reason: String,
    /// Free text, at most 2000 characters.
    #[serde(default)]
    note: Option<String>,
}

/// What a bulk rejection did to one case.
#[derive(Debug, Serialize, ToSchema)]
pub(crate) struct BulkResult {
    id: String,
    /// `rejected`, `already_decided`, `claimed` (another reviewer holds it), `bad_reason` (the
    /// reason does not fit its kind) or `not_found`.
    outcome: &'static str,
    #[schema(schema_with = crate::schema::status)]
    status: Option<Status>,
}

/// Per case, in the order given.
#[derive(Debug, Serialize, ToSchema)]
pub(crate) struct BulkRejected {
    results: Vec<BulkResult>,
    rejected: usize,
}

/// `POST /api/violations/bulk-reject` (reviewer, admin).
#[utoipa::path(
    post,
    path = "/api/violations/bulk-reject",
    tag = "violations",
    summary = "Reject several pending cases for one reason",
    description = "Roles: reviewer, admin. Each case is decided on its own, as one review decision (audited and published per case); a case that is decided, held by another reviewer or whose kind cannot carry the reason is left as it is and said so.",
    request_body = BulkRejectBody,
    responses(
        (status = 200, description = "what happened to each case", body = BulkRejected),
        (status = 400, description = "bad body: no ids, too many, not UUIDs, unknown reason, long note", body = ErrorBody),
        (status = 403, description = "role or CSRF", body = ErrorBody),
    )
)]
pub(crate) async fn bulk_reject(
    State(state): State<AppState>,
    Reviewer(p): Reviewer,
    ApiJson(body): ApiJson<BulkRejectBody>,
) -> Result<Json<BulkRejected>, ApiError> {
    if body.ids.is_empty() || body.ids.len() > MAX_BULK {
        return Err(ApiError::bad_request(format!(
            "`ids` lists 1 to {MAX_BULK} violation ids; it has {}",
            body.ids.len()
        )));
    }
    let note = body.note.unwrap_or_default();
    if note.chars().count() > MAX_NOTE {
        return Err(ApiError::bad_request(format!(
            "`note` is longer than {MAX_NOTE} characters"
        )));
    }
    if !REJECT_REASONS.contains(&body.reason.as_str()) {
        return Err(ApiError::bad_request(format!(
            "`{}` is not a reason code: one of {}",
            body.reason.escape_debug(),
            REJECT_REASONS.join(", ")
        )));
    }
    let mut ids = Vec::with_capacity(body.ids.len());
    for id in &body.ids {
        let id = uuid::Uuid::parse_str(id)
            .map_err(|_| ApiError::bad_request("every id in `ids` is a violation id (a UUID)"))?;
        ids.push(id.hyphenated().to_string());
    }
    let store = &state.0.store;
    let mut results = Vec::with_capacity(ids.len());
    let mut rejected = 0;
    for id in ids {
        let Some(rec) = store.get(&id).await? else {
            results.push(BulkResult {
                id,
                outcome: "not_found",
                status: None,
            });
            continue;
        };
        if let Ok(kind) = rec.fields.kind.parse::<ViolationKind>()
            && !kind.reject_reasons().contains(&body.reason.as_str())
        {
            results.push(BulkResult {
                id,
                outcome: "bad_reason",
                status: Some(rec.status),
            });
            continue;
        }
        let out = store
            .decide(&id, &p.user.name, Decision::Reject, &body.reason, &note)
            .await?;
        let (outcome, status) = match out {
            DecideOutcome::Changed { after, .. } => {
                publish_review(&state, &id, after, Some(body.reason.clone()), &p.user.name).await;
                rejected += 1;
                ("rejected", after)
            }
            DecideOutcome::Refused {
                current: Status::Pending,
            } => ("claimed", Status::Pending),
            DecideOutcome::Refused { current } => ("already_decided", current),
        };
        results.push(BulkResult {
            id,
            outcome,
            status: Some(status),
        });
    }
    Ok(Json(BulkRejected { results, rejected }))
}

/// The filter and page of the history.
#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub(crate) struct HistoryQuery {
    /// the decision: confirmed | rejected
    status: Option<String>,
    /// no_helmet | red_light
    kind: Option<String>,
    /// camera id
    camera: Option<String>,
    /// occurred at or after (RFC 3339 or µs since the epoch)
    from: Option<String>,
    /// occurred before (RFC 3339 or µs since the epoch)
    to: Option<String>,
    /// only this reviewer's decisions
    reviewer: Option<String>,
    /// cursor from a previous page's `next`
    after: Option<String>,
    /// 1..=500, default 50
    limit: Option<u32>,
}

/// One decision.
#[derive(Debug, Serialize, ToSchema)]
pub(crate) struct HistoryItem {
    /// The violation.
    id: String,
    review_id: i64,
    camera: String,
    kind: String,
    occurred_at: DateTime<Utc>,
    /// The decision.
    #[schema(schema_with = crate::schema::status)]
    decision: Status,
    reason: String,
    note: String,
    reviewer: String,
    decided_at: DateTime<Utc>,
    /// When its reviewer undid it (null: in force, unless reopened).
    undone_at: Option<DateTime<Utc>>,
    /// The violation's status now.
    #[schema(schema_with = crate::schema::status)]
    status: Status,
    /// The violation's detail.
    href: String,
}

/// A page of decisions, newest first.
#[derive(Debug, Serialize, ToSchema)]
pub(crate) struct HistoryList {
    items: Vec<HistoryItem>,
    /// Pass as `after` for the next (older) page; null: no more.
    next: Option<String>,
}

/// `GET /api/history`.
#[utoipa::path(
    get,
    path = "/api/history",
    tag = "violations",
    summary = "Every review decision, newest first, keyset-paginated",
    description = "Roles: any logged-in user. Undone decisions are listed, marked with `undone_at`. Times are UTC (RFC 3339).",
    params(HistoryQuery),
    responses(
        (status = 200, description = "a page; pass `next` as `after` for the next", body = HistoryList),
        (status = 400, description = "bad filter or cursor", body = ErrorBody),
    )
)]
pub(crate) async fn history(
    State(state): State<AppState>,
    ApiQuery(q): ApiQuery<HistoryQuery>,
) -> Result<Json<HistoryList>, ApiError> {
    let filter = filter_of(&ListQuery {
        status: q.status.clone(),
        kind: q.kind.clone(),
        camera: q.camera.clone(),
        from: q.from.clone(),
        to: q.to.clone(),
        plate: None,
        after: None,
        limit: None,
    })?;
    if filter.status == Some(Status::Pending) {
        return Err(ApiError::bad_request(
            "`status` of a decision is confirmed or rejected",
        ));
    }
    let reviewer = bounded("reviewer", &q.reviewer)?;
    let after = bounded("after", &q.after)?
        .map(|t| {
            HistoryCursor::from_token(t)
                .map_err(|_| ApiError::bad_request("`after` is not a cursor from a `next` field"))
        })
        .transpose()?;
    let limit = page_limit(q.limit, 50)?;
    let page = state
        .0
        .store
        .history_page(&filter, reviewer, after.as_ref(), limit)
        .await?;
    Ok(Json(HistoryList {
        next: page.next.map(|c| c.token()),
        items: page
            .items
            .into_iter()
            .map(|r| HistoryItem {
                href: format!("/api/violations/{}", r.violation_id),
                id: r.violation_id,
                review_id: r.review_id,
                camera: r.camera,
                kind: r.kind,
                occurred_at: from_micros(r.occurred_at_us),
                decision: r.decision,
                reason: r.reason,
                note: r.note,
                reviewer: r.reviewer,
                decided_at: from_micros(r.reviewed_at_us),
                undone_at: r.undone_at_us.map(from_micros),
                status: r.status,
            })
            .collect(),
    }))
}

/// A user's time zone.
#[derive(Debug, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub(crate) struct TimeZoneBody {
    /// An IANA time zone name (`Europe/Berlin`, `America/New_York`, `UTC`).
    #[schema(example = "Europe/Berlin")]
    time_zone: String,
}

/// Whether `tz` looks like an IANA time zone name: `UTC`, or up to three `/`-separated parts of
/// letters, digits, `_`, `+` and `-`, each starting with a letter (the page offers the browser's
/// list; the browser falls back to UTC for a name it does not know).
fn valid_time_zone(tz: &str) -> bool {
    let parts: Vec<&str> = tz.split('/').collect();
    tz.len() <= 64
        && parts.len() <= 3
        && parts.iter().all(|p| {
            p.chars().next().is_some_and(|c| c.is_ascii_alphabetic())
                && p.chars()
                    .all(|c| c.is_ascii_alphanumeric() || matches!(c, '_' | '+' | '-'))
        })
}

/// `PUT /api/me/time-zone`.
#[utoipa::path(
    put,
    path = "/api/me/time-zone",
    tag = "auth",
    summary = "Choose the time zone the page shows times in",
    description = "Roles: any logged-in user. Stored with the user (GET /api/me says it); audited. The API itself keeps UTC.",
    request_body = TimeZoneBody,
    responses(
        (status = 200, description = "stored", body = TimeZoneBody),
        (status = 400, description = "not a time zone name", body = ErrorBody),
    )
)]
pub(crate) async fn put_time_zone(
    State(state): State<AppState>,
    p: Principal,
    ApiJson(body): ApiJson<TimeZoneBody>,
) -> Result<Json<TimeZoneBody>, ApiError> {
    if !valid_time_zone(&body.time_zone) {
        return Err(ApiError::bad_request(format!(
            "`{}` is not an IANA time zone name such as Europe/Berlin or UTC",
            body.time_zone.escape_debug()
        )));
    }
    state
        .0
        .store
        .set_time_zone(&p.user.name, &body.time_zone)
        .await?;
    Ok(Json(body))
}

/// The period of the statistics.
#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub(crate) struct StatsQuery {
    /// from (RFC 3339 or µs since the epoch); default: `days` before `to`
    from: Option<String>,
    /// until (RFC 3339 or µs since the epoch); default: now
    to: Option<String>,
    /// 1..=366, default 30 (when `from` is not given)
    days: Option<u32>,
    /// only this camera
    camera: Option<String>,
}

/// Violations of one camera on one UTC day (or in the whole period), by their status now.
#[derive(Debug, Serialize, ToSchema)]
pub(crate) struct DayStats {
    /// The UTC day (`YYYY-MM-DD`); `total` for the period.
    day: String,
    flagged: i64,
    confirmed: i64,
    rejected: i64,
    pending: i64,
    /// confirmed / (confirmed + rejected); null while none is decided.
    precision: Option<f64>,
}

impl DayStats {
    fn new(day: String, flagged: i64, confirmed: i64, rejected: i64, pending: i64) -> DayStats {
        let decided = confirmed + rejected;
        DayStats {
            day,
            flagged,
            confirmed,
            rejected,
            pending,
            precision: (decided > 0).then(|| confirmed as f64 / decided as f64),
        }
    }
}

/// One camera's statistics.
#[derive(Debug, Serialize, ToSchema)]
pub(crate) struct CameraStats {
    camera: String,
    total: DayStats,
    /// Oldest first; days without violations are left out.
    days: Vec<DayStats>,
}

/// One reviewer's throughput.
#[derive(Debug, Serialize, ToSchema)]
pub(crate) struct ReviewerStats {
    reviewer: String,
    /// Decisions made in the period, undone ones included.
    decisions: i64,
    confirmed: i64,
    rejected: i64,
    undone: i64,
    first_at: DateTime<Utc>,
    last_at: DateTime<Utc>,
    /// Decisions per hour between the first and the last (null for fewer than two).
    per_hour: Option<f64>,
}

/// The threshold a rejection reason points at.
#[derive(Debug, Serialize, ToSchema)]
pub(crate) struct ThresholdHint {
    /// The class role whose threshold to raise.
    class: &'static str,
    /// The value in force for this camera (null: the model's own).
    in_force: Option<f64>,
    /// Where to preview and change it.
    href: String,
    advice: &'static str,
}

/// How often a camera's rejections of a kind give one reason.
#[derive(Debug, Serialize, ToSchema)]
pub(crate) struct RejectionStats {
    camera: String,
    kind: String,
    reason: String,
    count: i64,
    /// Of this camera's rejections of this kind.
    share: f64,
    /// Null: no threshold explains this reason (duplicates, tracking, evidence).
    threshold: Option<ThresholdHint>,
}

/// The statistics of a period.
#[derive(Debug, Serialize, ToSchema)]
pub(crate) struct Stats {
    from: DateTime<Utc>,
    to: DateTime<Utc>,
    cameras: Vec<CameraStats>,
    reviewers: Vec<ReviewerStats>,
    /// Per camera and kind, the most frequent reason first.
    rejections: Vec<RejectionStats>,
}

/// The class whose threshold a rejection reason of a kind points at.
fn hint_of(kind: &str, reason: &str) -> Option<(&'static str, &'static str)> {
    Some(match (kind, reason) {
        ("no_helmet", "helmet_worn" | "not_a_violation") => (
            "no_helmet",
            "helmeted or no heads are scored as bare: raise the no_helmet threshold",
        ),
        (_, "not_two_wheeler") => (
            "two_wheeler",
            "other objects pass as two-wheelers: raise the two_wheeler threshold",
        ),
        ("red_light", "signal_not_red") => (
            "traffic_light",
            "the signal was misread: raise the traffic_light threshold (and check the lamp levels)",
        ),
        _ => return None,
    })
}

/// `GET /api/stats?from&to&days&camera` (ops, admin).
#[utoipa::path(
    get,
    path = "/api/stats",
    tag = "statistics",
    summary = "Per camera and day, per reviewer, and the rejection reasons with the threshold they point at",
    description = "Roles: ops, admin. Violations that occurred in the period, by their status now (days are UTC); precision is confirmed / decided. Reviewers: decisions made in the period.",
    params(StatsQuery),
    responses(
        (status = 200, description = "the statistics", body = Stats),
        (status = 400, description = "bad period or camera", body = ErrorBody),
        (status = 403, description = "not ops or admin", body = ErrorBody),
    )
)]
pub(crate) async fn stats(
    State(state): State<AppState>,
    _: Ops,
    ApiQuery(q): ApiQuery<StatsQuery>,
) -> Result<Json<Stats>, ApiError> {
    let days = q.days.unwrap_or(30);
    if !(1..=366).contains(&days) {
        return Err(ApiError::bad_request("`days` must be 1 to 366"));
    }
    let to_us = bounded("to", &q.to)?
        .map(|v| parse_time("to", v))
        .transpose()?
        .unwrap_or_else(|| roadwarden_store::to_micros(Utc::now()));
    let from_us = bounded("from", &q.from)?
        .map(|v| parse_time("from", v))
        .transpose()?
        .unwrap_or(to_us - i64::from(days) * 86_400_000_000);
    if from_us >= to_us {
        return Err(ApiError::bad_request("`from` must be before `to`"));
    }
    let camera = bounded("camera", &q.camera)?;
    if camera.is_some_and(|c| c.chars().any(char::is_control)) {
        return Err(ApiError::bad_request(
            "`camera` must not contain control characters",
        ));
    }
    let s = state.0.store.queue_stats(from_us, to_us, camera).await?;
    let mut cameras: BTreeMap<String, Vec<DayStats>> = BTreeMap::new();
    for d in s.days {
        let day = chrono::DateTime::from_timestamp(d.day * 86_400, 0)
            .map(|t| t.format("%Y-%m-%d").to_string())
            .unwrap_or_default();
        cameras.entry(d.camera).or_default().push(DayStats::new(
            day,
            d.flagged,
            d.confirmed,
            d.rejected,
            d.pending,
        ));
    }
    let cameras = cameras
        .into_iter()
        .map(|(camera, days)| {
            let sum = |f: fn(&DayStats) -> i64| days.iter().map(f).sum::<i64>();
            CameraStats {
                total: DayStats::new(
                    "total".into(),
                    sum(|d| d.flagged),
                    sum(|d| d.confirmed),
                    sum(|d| d.rejected),
                    sum(|d| d.pending),
                ),
                camera,
                days,
            }
        })
        .collect();
    let reviewers = s
        .reviewers
        .into_iter()
        .map(|r| {
            let span_h = (r.last_at_us - r.first_at_us) as f64 / 3.6e9;
            ReviewerStats {
                per_hour: (r.decisions >= 2 && span_h > 0.0)
                    .then(|| (r.decisions - 1) as f64 / span_h),
                reviewer: r.reviewer,
                decisions: r.decisions,
                confirmed: r.confirmed,
                rejected: r.rejected,
                undone: r.undone,
                first_at: from_micros(r.first_at_us),
                last_at: from_micros(r.last_at_us),
            }
        })
        .collect();
    let mut totals: BTreeMap<(String, String), i64> = BTreeMap::new();
    for r in &s.rejections {
        *totals
            .entry((r.camera.clone(), r.kind.clone()))
            .or_default() += r.count;
    }
    let thresholds = state.0.thresholds.borrow().clone();
    let rejections = s
        .rejections
        .into_iter()
        .map(|r| {
            let total = totals
                .get(&(r.camera.clone(), r.kind.clone()))
                .copied()
                .unwrap_or(r.count)
                .max(1);
            let threshold = hint_of(&r.kind, &r.reason).map(|(class, advice)| ThresholdHint {
                class,
                in_force: thresholds.get(&r.camera, class),
                href: format!("/api/cameras/{}/thresholds/{class}/preview", r.camera),
                advice,
            });
            RejectionStats {
                share: r.count as f64 / total as f64,
                camera: r.camera,
                kind: r.kind,
                reason: r.reason,
                count: r.count,
                threshold,
            }
        })
        .collect();
    Ok(Json(Stats {
        from: from_micros(from_us),
        to: from_micros(to_us),
        cameras,
        reviewers,
        rejections,
    }))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn time_zone_names() {
        for ok in [
            "UTC",
            "Europe/Berlin",
            "America/Argentina/Buenos_Aires",
            "Etc/GMT+5",
        ] {
            assert!(valid_time_zone(ok), "{ok}");
        }
        for bad in [
            "",
            "/Berlin",
            "Europe//Berlin",
            "a/b/c/d",
            "Europe/Ber lin",
            "../etc",
        ] {
            assert!(!valid_time_zone(bad), "{bad}");
        }
    }

    #[test]
    fn every_hinted_class_is_a_threshold_class() {
        for kind in ViolationKind::ALL {
            for reason in kind.reject_reasons() {
                if let Some((class, _)) = hint_of(kind.as_str(), reason) {
                    assert!(
                        roadwarden_types::ClassRole::ALL
                            .iter()
                            .any(|r| r.as_str() == class),
                        "{class}"
                    );
                }
            }
        }
    }
}
