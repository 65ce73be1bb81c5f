//! The HTTP service of roadwarden (axum): the violations list with keyset
//! pagination, a violation's detail with evidence links, evidence download
//! by evidence id, a violation's evidence package (ZIP), the filtered list
//! as CSV, final review decisions (an admin may reopen), thresholds
//! per camera and class, cameras with their live status, health, readiness,
//! Prometheus metrics and the OpenAPI document; users with roles, session
//! cookies with CSRF tokens, bearer tokens, and rate-limited login; the
//! embedded review and ops page; threshold previews over the stored
//! violations; violation and review events on MQTT, every event on a webhook; team work over the
//! queue (claims, the live queue over Server-Sent Events, undo, bulk reject, the decision history,
//! per-user time zones, statistics: `team.rs`).
//!
//! Owns: routes (one table, in `openapi.rs`, builds both the router and the
//! generated OpenAPI document), authentication and authorisation (the role a
//! handler needs is one of its extractors, `extract.rs`), the JSON shapes of
//! the API (`Serialize` types that also give the document its schemas),
//! the live channels the service feeds and follows (camera status board,
//! threshold watch, event broadcast, the site in force, camera control
//! requests for the process that runs the cameras). Must not: issue SQL (every statement is
//! the store's), open a file a client names (evidence is looked up by its row
//! and resolved inside the data folder), run cameras or decide what a
//! violation is.

mod accounts;
mod api;
pub mod auth;
mod control;
mod error;
mod export;
mod extract;
mod live;
mod metrics;
pub mod mqtt;
pub mod nats;
mod openapi;
mod page;
mod preview;
mod schema;
mod team;
pub mod webhook;

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use axum::Router;
use axum::extract::DefaultBodyLimit;
use roadwarden_rules::SiteConfig;
use roadwarden_store::{DataDir, Store};
use tokio::sync::{broadcast, watch};

pub use control::{ControlRequest, ReloadReport};
pub use error::ApiError;
pub use live::{
    CameraBoard, CameraStatus, Event, InferenceCameraStatus, InferenceStatus, LATENCY_BOUNDS,
    LatencyHistogram, PipelineStatus, RecorderStatus, Thresholds,
};
pub use openapi::document as openapi_document;

/// The smallest and largest score threshold the API accepts.
pub const THRESHOLD_RANGE: std::ops::RangeInclusive<f64> = 0.05..=0.95;

/// Reason codes a rejection may carry (each kind a subset: `ViolationKind::reject_reasons`).
pub use roadwarden_types::REJECT_REASONS;

#[derive(Debug, thiserror::Error)]
pub enum ServerError {
    #[error(transparent)]
    Store(#[from] roadwarden_store::StoreError),
    #[error("cannot listen on {addr}: {reason}")]
    Listen { addr: String, reason: String },
    #[error("HTTP server failed: {0}")]
    Serve(String),
}

/// How the service behaves; [`ServerConfig::default`] suits production.
#[derive(Debug, Clone)]
pub struct ServerConfig {
    /// Mark the session cookie `Secure` (serve behind TLS).
    pub secure_cookies: bool,
    /// How long a login lasts.
    pub session_ttl: Duration,
    /// The window over which failed logins are counted.
    pub login_window: Duration,
    /// Failed logins for one user name in the window before logins are refused.
    pub max_failures_per_name: i64,
    /// Failed logins from one remote address in the window before logins are refused.
    pub max_failures_per_remote: i64,
    /// The largest request body accepted.
    pub max_body_bytes: usize,
    /// Reverse proxies whose `X-Forwarded-For` is believed: a request from one of these is
    /// counted (login limits) against the address the proxies say it came from. Empty: the
    /// header is ignored, as anyone can send it.
    pub trusted_proxies: Vec<std::net::IpAddr>,
    /// How long a reviewer's claim on an open case lasts; the page renews it while the case is open.
    pub claim_ttl: Duration,
    /// How long after a decision its reviewer may undo it.
    pub undo_window: Duration,
}

impl Default for ServerConfig {
    fn default() -> Self {
        ServerConfig {
            secure_cookies: false,
            session_ttl: Duration::from_secs(12 * 3600),
            login_window: Duration::from_secs(15 * 60),
            max_failures_per_name: 5,
            max_failures_per_remote: 20,
            max_body_bytes: 64 * 1024,
            trusted_proxies: Vec::new(),
            claim_ttl: Duration::from_secs(5 * 60),
            undo_window: Duration::from_secs(10),
        }
    }
}

pub(crate) struct Inner {
    pub(crate) store: Store,
    pub(crate) data: DataDir,
    pub(crate) site: live::LiveSite,
    pub(crate) config: ServerConfig,
    pub(crate) cameras: CameraBoard,
    pub(crate) thresholds: watch::Sender<Arc<Thresholds>>,
    pub(crate) events: broadcast::Sender<Event>,
    pub(crate) metrics: metrics::Metrics,
    pub(crate) control: control::ControlHook,
    pub(crate) login_gate: auth::LoginGate,
    /// Claims taken and released, for the live queue (`GET /api/queue/events`).
    pub(crate) queue: broadcast::Sender<team::QueueEvent>,
    /// True once the server shuts down: the live queue streams end, so the graceful shutdown is not
    /// held up by an open page.
    pub(crate) closing: watch::Sender<bool>,
}

/// The service's shared state: cheap to clone.
#[derive(Clone)]
pub struct AppState(pub(crate) Arc<Inner>);

impl AppState {
    /// Builds the state; the thresholds in force are the site file's
    /// overlaid with those stored over the API.
    pub async fn new(
        store: Store,
        data: DataDir,
        site: SiteConfig,
        config: ServerConfig,
    ) -> Result<AppState, ServerError> {
        let stored = store.thresholds(None).await?;
        let thresholds = Thresholds::from_site(&site, &stored);
        let (tx, _) = watch::channel(Arc::new(thresholds));
        let (events, _) = broadcast::channel(1024);
        let (queue, _) = broadcast::channel(1024);
        let (closing, _) = watch::channel(false);
        Ok(AppState(Arc::new(Inner {
            store,
            data,
            site: live::LiveSite::new(site),
            config,
            cameras: CameraBoard::default(),
            thresholds: tx,
            events,
            metrics: metrics::Metrics::default(),
            control: control::ControlHook::default(),
            login_gate: auth::LoginGate::default(),
            queue,
            closing,
        })))
    }

    /// The thresholds in force, updated on every accepted PUT: camera
    /// runners follow this and apply a change from their next frame.
    pub fn thresholds(&self) -> watch::Receiver<Arc<Thresholds>> {
        self.0.thresholds.subscribe()
    }

    /// Where camera runners publish their live status.
    pub fn camera_board(&self) -> CameraBoard {
        self.0.cameras.clone()
    }

    /// Review decisions (and, once the service records them, new
    /// violations) as they happen: the MQTT and webhook publishers follow this.
    pub fn events(&self) -> broadcast::Receiver<Event> {
        self.0.events.subscribe()
    }

    /// Publishes an event to every subscriber (none is fine).
    pub fn publish(&self, event: Event) {
        let _ = self.0.events.send(event);
    }

    pub fn store(&self) -> &Store {
        &self.0.store
    }
}

/// Every route of the API: the route table of [`openapi_document`] (so the
/// router and the document list the same routes), the protected part behind
/// authentication, then the outermost layers (metrics and defensive headers,
/// the body limit) and a JSON 404 for anything else.
pub fn router(state: AppState) -> Router {
    let protected = openapi::protected_routes().route_layer(axum::middleware::from_fn_with_state(
        state.clone(),
        auth::require_auth,
    ));
    let (routes, _) = openapi::public_routes().merge(protected).split_for_parts();
    let body_limit = state.0.config.max_body_bytes;
    routes
        .fallback(api::not_found)
        .layer(axum::middleware::from_fn_with_state(
            state.clone(),
            metrics::track,
        ))
        .layer(DefaultBodyLimit::max(body_limit))
        .with_state(state)
}

/// Serves `router(state)` on `listener` until `shutdown` resolves.
pub async fn serve(
    listener: tokio::net::TcpListener,
    state: AppState,
    shutdown: impl std::future::Future<Output = ()> + Send + 'static,
) -> Result<(), ServerError> {
    let app = router(state.clone());
    let shutdown = async move {
        shutdown.await;
        // End the live queue streams, which would otherwise keep their connections open.
        state.0.closing.send_replace(true);
    };
    axum::serve(
        listener,
        app.into_make_service_with_connect_info::<SocketAddr>(),
    )
    .with_graceful_shutdown(shutdown)
    .await
    .map_err(|e| ServerError::Serve(e.to_string()))
}

/// Resolves on SIGINT or SIGTERM: the service's graceful shutdown trigger.
pub async fn shutdown_signal() {
    let term = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut s) => {
                s.recv().await;
            }
            Err(e) => {
                tracing::warn!("cannot watch SIGTERM: {e}");
                std::future::pending::<()>().await
            }
        }
    };
    tokio::select! {
        _ = tokio::signal::ctrl_c() => {}
        _ = term => {}
    }
}
