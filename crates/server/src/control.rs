//! Camera control over HTTP: re-reading the site file (admin), a controller's
//! signal reports (ops, admin) and a camera's pipeline status. The server runs
//! no camera: a request goes over the channel of [`AppState::control_requests`]
//! to the process that does (`roadwarden serve`), which answers on a oneshot.

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::Json;
use axum::extract::State;
use axum::http::StatusCode;
use chrono::{DateTime, TimeDelta, Utc};
use roadwarden_rules::SiteConfig;
use roadwarden_types::SignalState;
use serde::{Deserialize, Serialize};
use tokio::sync::{mpsc, oneshot};
use utoipa::ToSchema;

use crate::error::ErrorBody;
use crate::extract::{Admin, ApiJson, KnownCamera, Ops};
use crate::live::{CameraStatus, PipelineStatus, ThresholdSource};
use crate::{ApiError, AppState, ServerError, Thresholds};

/// How long a handler waits for the camera process to answer.
const ANSWER_TIMEOUT: Duration = Duration::from_secs(60);
/// How far ahead of the server's clock a signal report's `at` may be.
const MAX_SIGNAL_LEAD: TimeDelta = TimeDelta::seconds(10);

/// What the API asks of the process that runs the cameras.
#[derive(Debug)]
pub enum ControlRequest {
    /// Re-read the site file: start added cameras, stop removed ones, restart
    /// changed ones. The answer says what changed, or why the file was refused
    /// (the running cameras are kept then).
    Reload {
        reply: oneshot::Sender<Result<ReloadReport, String>>,
    },
    /// A controller's report of a camera's signal, for its runner's next frame.
    Signal {
        camera: String,
        state: SignalState,
        at: DateTime<Utc>,
        reply: oneshot::Sender<Result<(), String>>,
    },
}

/// What a reload changed, by camera id.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct ReloadReport {
    pub added: Vec<String>,
    pub removed: Vec<String>,
    pub restarted: Vec<String>,
    pub unchanged: Vec<String>,
}

impl std::fmt::Display for ReloadReport {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let list = |v: &[String]| {
            if v.is_empty() {
                "none".to_owned()
            } else {
                v.join(", ")
            }
        };
        write!(
            f,
            "added {}; removed {}; restarted {}; unchanged {}",
            list(&self.added),
            list(&self.removed),
            list(&self.restarted),
            list(&self.unchanged)
        )
    }
}

/// Where control requests go, once a camera process listens.
#[derive(Debug, Default)]
pub(crate) struct ControlHook(Mutex<Option<mpsc::Sender<ControlRequest>>>);

impl AppState {
    /// The API's camera control requests (reload, signal reports), for the
    /// process that runs the cameras; until this is called those endpoints
    /// answer 503. A second call replaces the listener.
    pub fn control_requests(&self) -> mpsc::Receiver<ControlRequest> {
        let (tx, rx) = mpsc::channel(64);
        *self.0.control.0.lock().unwrap_or_else(|p| p.into_inner()) = Some(tx);
        rx
    }

    /// Makes `site` the site the API serves (camera list, thresholds): its
    /// thresholds are the file's overlaid with the stored ones, as at start.
    pub async fn replace_site(&self, site: SiteConfig) -> Result<(), ServerError> {
        let stored = self.0.store.thresholds(None).await?;
        let fresh = Thresholds::from_site(&site, &stored);
        self.0.site.replace(site);
        self.0.thresholds.send_modify(|current| {
            let mut next = fresh;
            // A PUT that landed while the stored ones were read is kept.
            for (camera, classes) in next.cameras.iter_mut() {
                for (class, t) in current.cameras.get(camera).into_iter().flatten() {
                    let newer = classes.get(class).is_none_or(|f| {
                        f.source == ThresholdSource::Config || f.updated_at < t.updated_at
                    });
                    if t.source == ThresholdSource::Api && newer {
                        classes.insert(class.clone(), t.clone());
                    }
                }
            }
            *current = Arc::new(next);
        });
        Ok(())
    }
}

/// Sends a request to the camera process and waits for its answer.
async fn ask<T>(
    state: &AppState,
    make: impl FnOnce(oneshot::Sender<Result<T, String>>) -> ControlRequest,
) -> Result<Result<T, String>, ApiError> {
    let unavailable = || {
        ApiError::new(
            StatusCode::SERVICE_UNAVAILABLE,
            "no_cameras",
            "this server runs no cameras (start it with `roadwarden serve`)",
        )
    };
    let tx = state
        .0
        .control
        .0
        .lock()
        .unwrap_or_else(|p| p.into_inner())
        .clone()
        .ok_or_else(unavailable)?;
    let (reply, answer) = oneshot::channel();
    tx.send(make(reply)).await.map_err(|_| unavailable())?;
    match tokio::time::timeout(ANSWER_TIMEOUT, answer).await {
        Ok(Ok(a)) => Ok(a),
        Ok(Err(_)) => Err(unavailable()),
        Err(_) => Err(ApiError::new(
            StatusCode::GATEWAY_TIMEOUT,
            "timeout",
            format!("the cameras did not answer within {ANSWER_TIMEOUT:?}"),
        )),
    }
}

/// `POST /api/cameras/reload` (admin): as SIGHUP; audited.
#[utoipa::path(
    post,
    path = "/api/cameras/reload",
    tag = "cameras",
    summary = "Re-read the site file, as SIGHUP: new cameras start, removed ones stop, changed ones restart",
    description = "Roles: admin. Audited.",
    responses(
        (status = 200, description = "what changed, by camera id", body = ReloadReport),
        (status = 403, description = "role or CSRF", body = ErrorBody),
        (status = 422, description = "the file does not validate; nothing changed", body = ErrorBody),
        (status = 503, description = "this server runs no cameras", body = ErrorBody),
    )
)]
pub(crate) async fn reload(
    State(state): State<AppState>,
    Admin(p): Admin,
) -> Result<Json<ReloadReport>, ApiError> {
    let report = ask(&state, |reply| ControlRequest::Reload { reply })
        .await?
        .map_err(|e| {
            ApiError::new(
                StatusCode::UNPROCESSABLE_ENTITY,
                "invalid_config",
                format!("the site file was refused and the cameras keep running: {e}"),
            )
        })?;
    let after = serde_json::to_string(&report).ok();
    state
        .0
        .store
        .audit(&p.user.name, "reload_site", None, None, after)
        .await?;
    Ok(Json(report))
}

/// A controller's report of a camera's signal.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub(crate) struct SignalBody {
    #[schema(schema_with = crate::schema::signal_state)]
    state: SignalState,
    /// RFC 3339; default: now.
    at: Option<String>,
}

/// A signal report handed to the camera.
#[derive(Debug, Serialize, ToSchema)]
pub(crate) struct SignalAccepted {
    camera: String,
    #[schema(schema_with = crate::schema::signal_state)]
    state: SignalState,
    at: DateTime<Utc>,
}

/// `POST /api/cameras/{camera}/signal` (ops, admin): `{state, at?}`, a
/// controller's report; it wins over the video reading while fresh.
#[utoipa::path(
    post,
    path = "/api/cameras/{camera}/signal",
    tag = "cameras",
    summary = "A controller's signal report; it wins over the video reading while fresh, from the camera's next frame",
    description = "Roles: ops, admin.",
    params(("camera" = String, Path, description = "camera id")),
    request_body = SignalBody,
    responses(
        (status = 202, description = "handed to the camera", body = SignalAccepted),
        (status = 400, description = "bad `at`", body = ErrorBody),
        (status = 403, description = "role or CSRF", body = ErrorBody),
        (status = 404, description = "not configured", body = ErrorBody),
        (status = 409, description = "the camera is not running", body = ErrorBody),
        (status = 422, description = "bad body", body = ErrorBody),
        (status = 503, description = "this server runs no cameras", body = ErrorBody),
    )
)]
pub(crate) async fn signal(
    State(state): State<AppState>,
    _: Ops,
    camera: KnownCamera,
    ApiJson(body): ApiJson<SignalBody>,
) -> Result<(StatusCode, Json<SignalAccepted>), ApiError> {
    let camera = camera.id;
    let now = Utc::now();
    let at = match &body.at {
        None => now,
        Some(s) => DateTime::parse_from_rfc3339(s)
            .map(|t| t.with_timezone(&Utc))
            .map_err(|_| {
                ApiError::bad_request("`at` must be an RFC 3339 time (2026-05-01T08:00:00Z)")
            })?,
    };
    if at > now + MAX_SIGNAL_LEAD {
        return Err(ApiError::bad_request(format!(
            "`at` is more than {} s ahead of the server's clock ({now})",
            MAX_SIGNAL_LEAD.num_seconds()
        )));
    }
    let sent = body.state;
    ask(&state, |reply| ControlRequest::Signal {
        camera: camera.clone(),
        state: sent,
        at,
        reply,
    })
    .await?
    .map_err(ApiError::conflict)?;
    Ok((
        StatusCode::ACCEPTED,
        Json(SignalAccepted {
            camera,
            state: sent,
            at,
        }),
    ))
}

/// A camera's pipeline as its runner and the recorder last reported it.
#[derive(Debug, Serialize, ToSchema)]
pub(crate) struct CameraPipeline {
    camera: String,
    /// Null until the runner reports.
    status: Option<CameraStatus>,
    /// Null until the runner reports.
    pipeline: Option<PipelineStatus>,
    /// Violations recorded for the camera, by kind; null until the recorder reports.
    recorded: Option<BTreeMap<String, u64>>,
}

/// `GET /api/cameras/{camera}/pipeline`: the runner's pipeline status and
/// what the recorder recorded for the camera (both null until it reports).
#[utoipa::path(
    get,
    path = "/api/cameras/{camera}/pipeline",
    tag = "cameras",
    summary = "A camera's pipeline and what was recorded for it",
    description = "Roles: any logged-in user. Frames analysed, class thresholds applied and from which frame, confident detections and violations by kind, queue depth, frame latency.",
    params(("camera" = String, Path, description = "camera id")),
    responses(
        (status = 200, description = "the pipeline (parts null until reported)", body = CameraPipeline),
        (status = 404, description = "not configured", body = ErrorBody),
    )
)]
pub(crate) async fn pipeline(
    State(state): State<AppState>,
    camera: KnownCamera,
) -> Json<CameraPipeline> {
    let camera = camera.id;
    let board = &state.0.cameras;
    let recorded = board
        .recorder()
        .and_then(|r| r.recorded.get(&camera).cloned());
    Json(CameraPipeline {
        status: board.get(&camera),
        pipeline: board.pipeline(&camera),
        recorded,
        camera,
    })
}
