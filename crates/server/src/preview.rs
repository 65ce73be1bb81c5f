//! `GET /api/cameras/{camera}/thresholds/{class}/preview?value=V&days=N`
//! (ops, admin): what a threshold change would have done to the camera's
//! stored violations of the last N days, before it is saved.
//!
//! Which violations a class gates: the stored confidence is the only score a
//! violation keeps, so it stands for the class's score.
//! - `no_helmet`: `no_helmet` violations (their confidence is the mean
//!   no-helmet head score of the votes);
//! - `two_wheeler`: `no_helmet` and `red_light` violations (a rider needs a
//!   two-wheeler, and a red-light runner may be one);
//! - `vehicle`: `red_light` violations (their confidence is the mean score
//!   of the offender's boxes);
//! - `helmet`, `person`, `traffic_light`: none (no violation is scored by
//!   them; the answer's counts are all zero and `kinds` is empty).
//!
//! A violation counts as kept when its stored confidence is at or above the
//! new value (compared in `f32`, as the pipeline compares scores), dropped
//! otherwise; both split by review status.

use axum::Json;
use axum::extract::State;
use chrono::{DateTime, Utc};
use roadwarden_store::preview::StatusCounts;
use roadwarden_types::ClassRole;
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};

use crate::error::ErrorBody;
use crate::extract::{ApiQuery, KnownCamera, Ops, ThresholdClass};
use crate::{ApiError, AppState, THRESHOLD_RANGE};

/// The longest look back, in days.
pub(crate) const MAX_PREVIEW_DAYS: i64 = 365;

/// The violation kinds whose stored confidence a class's threshold gates.
pub(crate) fn gated_kinds(class: ClassRole) -> &'static [&'static str] {
    match class {
        ClassRole::NoHelmet => &["no_helmet"],
        ClassRole::TwoWheeler => &["no_helmet", "red_light"],
        ClassRole::Vehicle => &["red_light"],
        ClassRole::Helmet | ClassRole::Person | ClassRole::TrafficLight | ClassRole::Other => &[],
    }
}

#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub(crate) struct PreviewQuery {
    /// the threshold to try (0.05..=0.95); required
    #[param(value_type = f64)]
    value: Option<String>,
    /// how far back, 1..=365 (default 30)
    #[param(value_type = Option<i64>)]
    days: Option<String>,
}

/// What a threshold would have done: the counts at or above it (kept) and below it (dropped).
#[derive(Debug, Serialize, ToSchema)]
pub(crate) struct Preview {
    camera: String,
    class: &'static str,
    value: f64,
    /// The value in force now (null: the model's own).
    current: Option<f64>,
    days: i64,
    since: DateTime<Utc>,
    /// The violation kinds the class gates.
    kinds: &'static [&'static str],
    total: i64,
    #[schema(schema_with = crate::schema::status_counts)]
    kept: StatusCounts,
    #[schema(schema_with = crate::schema::status_counts)]
    dropped: StatusCounts,
}

/// The handler.
#[utoipa::path(
    get,
    path = "/api/cameras/{camera}/thresholds/{class}/preview",
    tag = "thresholds",
    summary = "What a new threshold would have done to the camera's stored violations; nothing is changed",
    description = "Roles: ops, admin. Of the camera's stored violations of the last `days` days of the kinds the class gates (no_helmet → no_helmet; two_wheeler → no_helmet and red_light; vehicle → red_light; other classes → none), how many have a confidence at or above `value` (kept) or below it (dropped), each split by review status.",
    params(
        ("camera" = String, Path, description = "camera id"),
        ("class" = String, Path, description = "class role (no_helmet, helmet, two_wheeler, vehicle, person, traffic_light)"),
        PreviewQuery,
    ),
    responses(
        (status = 200, description = "the counts", body = Preview),
        (status = 400, description = "unknown class, `value` not a number, or `days` outside 1..=365", body = ErrorBody),
        (status = 403, description = "not ops or admin", body = ErrorBody),
        (status = 404, description = "not configured", body = ErrorBody),
        (status = 422, description = "`out_of_range`: `value` outside the threshold range (as the PUT answers)", body = ErrorBody),
    )
)]
pub(crate) async fn preview(
    State(state): State<AppState>,
    _: Ops,
    camera: KnownCamera,
    ThresholdClass(role): ThresholdClass,
    ApiQuery(q): ApiQuery<PreviewQuery>,
) -> Result<Json<Preview>, ApiError> {
    let camera = camera.id;
    let range = format!("{}..={}", THRESHOLD_RANGE.start(), THRESHOLD_RANGE.end());
    let value: f64 = q
        .value
        .as_deref()
        .ok_or_else(|| ApiError::bad_request(format!("`value` is required ({range})")))?
        .trim()
        .parse()
        .map_err(|_| ApiError::bad_request(format!("`value` must be a number in {range}")))
        .and_then(crate::api::threshold_value)?;
    let days: i64 = match q.days.as_deref() {
        None | Some("") => 30,
        Some(d) => d
            .trim()
            .parse()
            .ok()
            .filter(|d| (1..=MAX_PREVIEW_DAYS).contains(d))
            .ok_or_else(|| {
                ApiError::bad_request(format!(
                    "`days` must be a whole number 1..={MAX_PREVIEW_DAYS}"
                ))
            })?,
    };
    let since = Utc::now() - chrono::Duration::days(days);
    let kinds = gated_kinds(role);
    let counts = state
        .0
        .store
        .threshold_preview(&camera, kinds, roadwarden_store::to_micros(since), value)
        .await?;
    let current = state.0.thresholds.borrow().get(&camera, role.as_str());
    Ok(Json(Preview {
        camera,
        class: role.as_str(),
        value,
        current,
        days,
        since,
        kinds,
        total: counts.kept.total + counts.dropped.total,
        kept: counts.kept,
        dropped: counts.dropped,
    }))
}
