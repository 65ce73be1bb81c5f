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

use axum::Extension;
use axum::Json;
use axum::extract::rejection::{PathRejection, QueryRejection};
use axum::extract::{Path, Query, State};
use chrono::Utc;
use roadwarden_store::Role;
use roadwarden_types::ClassRole;
use serde::Deserialize;
use serde_json::{Value, json};

use crate::auth::Principal;
use crate::{ApiError, AppState, THRESHOLD_RANGE};

/// The longest look back, in days.
pub const MAX_PREVIEW_DAYS: i64 = 365;

/// The violation kinds whose stored confidence a class's threshold gates.
pub fn gated_kinds(class: ClassRole) -> &'static [&'static str] {
    match class {
        ClassRole::NoHelmet => &["no_helmet"],
        ClassRole::TwoWheeler => &["no_helmet", "red_light"],
        ClassRole::Vehicle => &["red_light"],
        ClassRole::Helmet | ClassRole::Person | ClassRole::TrafficLight | ClassRole::Other => &[],
    }
}

#[derive(Debug, Deserialize)]
pub(crate) struct PreviewQuery {
    value: Option<String>,
    days: Option<String>,
}

/// The handler.
pub(crate) async fn preview(
    State(state): State<AppState>,
    Extension(p): Extension<Principal>,
    path: Result<Path<(String, String)>, PathRejection>,
    q: Result<Query<PreviewQuery>, QueryRejection>,
) -> Result<Json<Value>, ApiError> {
    p.require(&[Role::Ops, Role::Admin], "previewing a threshold")?;
    let Path((camera, class)) = path?;
    crate::api::known_camera(&state, &camera)?;
    let role = crate::api::class_role(&class)?;
    let Query(q) = q?;
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
    Ok(Json(json!({
        "camera": camera,
        "class": role.as_str(),
        "value": value,
        "current": current,
        "days": days,
        "since": since,
        "kinds": kinds,
        "total": counts.kept.total + counts.dropped.total,
        "kept": counts.kept,
        "dropped": counts.dropped,
    })))
}
