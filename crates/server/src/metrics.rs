//! Prometheus text exposition: HTTP requests by route and status, login
//! failures and refusals, violations by camera, kind and status (from the
//! store), and each camera's live status from the board.
//!
//! While the store is unreachable `/metrics` still answers: the violation figures are the last ones read
//! (with `roadwarden_store_up 0`), everything else lives in memory (the spool depth among it), and a
//! scraper whose credential passed the store's check before the outage is let in on that check
//! ([`Scrapers`]), as the store cannot be asked.

use std::collections::{BTreeMap, HashMap};
use std::fmt::Write as _;
use std::net::{IpAddr, SocketAddr};
use std::sync::Mutex;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use axum::extract::{ConnectInfo, MatchedPath, Request, State};
use axum::http::{HeaderValue, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};

use crate::auth::{Principal, RemoteAddr};
use crate::{ApiError, AppState};

/// Stored violations as (camera, kind, status, count).
type ViolationCounts = Vec<(String, String, roadwarden_store::Status, i64)>;

#[derive(Debug, Default)]
pub(crate) struct Metrics {
    /// (route, method, status) → count.
    requests: Mutex<BTreeMap<(String, String, u16), u64>>,
    login_failures: AtomicU64,
    login_refused: AtomicU64,
    /// The violation figures of the last scrape that reached the store.
    last_counts: Mutex<Option<ViolationCounts>>,
    scrapers: Scrapers,
    password_checks: AtomicU64,
}

/// The credentials (SHA-256 of the session cookie or bearer token) that passed the store's check on
/// `GET /metrics`, each with its caller and when it last passed: while the store is unreachable, and
/// only for `GET /metrics`, a credential seen within [`Scrapers::TRUST_FOR`] stands on that check. A
/// credential the store refuses is forgotten at once. At most [`Scrapers::MAX`] are kept.
#[derive(Debug, Default)]
pub(crate) struct Scrapers {
    seen: Mutex<HashMap<String, (Principal, Instant)>>,
}

impl Scrapers {
    const MAX: usize = 64;
    /// How long a credential's last good check is trusted during an outage (a scraper calls every few
    /// seconds; a session lasts 12 h by default).
    const TRUST_FOR: Duration = Duration::from_secs(12 * 3600);

    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<String, (Principal, Instant)>> {
        self.seen.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// `credential` passed the store's check as `who`.
    pub(crate) fn passed(&self, credential: String, who: &Principal) {
        let mut seen = self.lock();
        if seen.len() >= Self::MAX && !seen.contains_key(&credential) {
            let oldest = seen
                .iter()
                .min_by_key(|(_, (_, at))| *at)
                .map(|(k, _)| k.clone());
            if let Some(k) = oldest {
                seen.remove(&k);
            }
        }
        seen.insert(credential, (who.clone(), Instant::now()));
    }

    /// The store refused `credential`: it stands on nothing any more.
    pub(crate) fn refused(&self, credential: &str) {
        self.lock().remove(credential);
    }

    /// Who `credential` was when it last passed, if that was recent enough to stand on.
    pub(crate) fn vouch(&self, credential: &str) -> Option<Principal> {
        let seen = self.lock();
        let (who, at) = seen.get(credential)?;
        (at.elapsed() <= Self::TRUST_FOR).then(|| who.clone())
    }
}

impl Metrics {
    pub(crate) fn login_failed(&self) {
        self.login_failures.fetch_add(1, Ordering::Relaxed);
    }

    pub(crate) fn password_checked(&self) {
        self.password_checks.fetch_add(1, Ordering::Relaxed);
    }

    pub(crate) fn login_refused(&self) {
        self.login_refused.fetch_add(1, Ordering::Relaxed);
    }

    fn scrapers(&self) -> &Scrapers {
        &self.scrapers
    }

    fn count(&self, route: String, method: String, status: u16) {
        let mut m = self.requests.lock().unwrap_or_else(|p| p.into_inner());
        *m.entry((route, method, status)).or_default() += 1;
    }
}

/// The client behind `peer`: `peer` itself unless it is a trusted proxy; then the nearest
/// address in `X-Forwarded-For` (read right to left, each proxy appending the one it saw) that
/// is not a trusted proxy. An entry that is no IP address ends the walk at the last good one,
/// so a client cannot slip a made-up address past the proxy that appended its own.
pub(crate) fn client_addr<'a>(
    peer: IpAddr,
    forwarded: impl Iterator<Item = &'a str>,
    trusted: &[IpAddr],
) -> IpAddr {
    if !trusted.contains(&peer) {
        return peer;
    }
    let hops: Vec<&str> = forwarded.flat_map(|v| v.split(',')).collect();
    let mut client = peer;
    for hop in hops.iter().rev() {
        match hop.trim().parse::<IpAddr>() {
            Ok(ip) => {
                client = ip;
                if !trusted.contains(&ip) {
                    break;
                }
            }
            Err(_) => break,
        }
    }
    client
}

/// The outermost layer: records the client address for the handlers,
/// counts each request by its route template (never the raw path, so
/// hostile URLs cannot grow the label set) and sets defensive headers.
pub(crate) async fn track(State(state): State<AppState>, mut req: Request, next: Next) -> Response {
    let remote = req
        .extensions()
        .get::<ConnectInfo<SocketAddr>>()
        .map(|c| {
            let forwarded = req
                .headers()
                .get_all("x-forwarded-for")
                .iter()
                .filter_map(|v| v.to_str().ok());
            client_addr(c.0.ip(), forwarded, &state.0.config.trusted_proxies).to_string()
        })
        .unwrap_or_else(|| "unknown".into());
    req.extensions_mut().insert(RemoteAddr(remote));
    let route = req
        .extensions()
        .get::<MatchedPath>()
        .map(|m| m.as_str().to_owned())
        .unwrap_or_else(|| "unmatched".into());
    let method = match req.method().as_str() {
        m @ ("GET" | "HEAD" | "POST" | "PUT" | "DELETE" | "PATCH" | "OPTIONS") => m.to_owned(),
        _ => "other".to_owned(),
    };
    let mut resp = next.run(req).await;
    state.0.metrics.count(route, method, resp.status().as_u16());
    let h = resp.headers_mut();
    h.insert(
        header::X_CONTENT_TYPE_OPTIONS,
        HeaderValue::from_static("nosniff"),
    );
    h.insert(header::X_FRAME_OPTIONS, HeaderValue::from_static("DENY"));
    h.entry(header::CACHE_CONTROL)
        .or_insert(HeaderValue::from_static("no-store"));
    resp
}

/// The authentication of a `GET /metrics` ([`crate::auth::require_auth`]'s answer in `checked`), with the
/// scrapers' memory: a credential that passes is remembered, one the store refuses is forgotten, and
/// while the store is unreachable a remembered one is let in as who it was.
pub(crate) fn scrape_auth(
    state: &AppState,
    headers: &axum::http::HeaderMap,
    checked: Result<Principal, ApiError>,
) -> Result<Principal, ApiError> {
    let Some(credential) = crate::auth::credential_hash(headers) else {
        return checked;
    };
    let scrapers = state.0.metrics.scrapers();
    match checked {
        Ok(who) => {
            let mut kept = who.clone();
            kept.user.password_hash = None;
            scrapers.passed(credential, &kept);
            Ok(who)
        }
        Err(e) if e.code == crate::error::STORE_UNAVAILABLE => match scrapers.vouch(&credential) {
            Some(who) => {
                tracing::debug!(user = %who.user.name, "metrics scrape let in on its last check: the store is unreachable");
                Ok(who)
            }
            None => Err(e),
        },
        Err(e) => {
            if e.status == axum::http::StatusCode::UNAUTHORIZED {
                scrapers.refused(&credential);
            }
            Err(e)
        }
    }
}

fn label(v: &str) -> String {
    v.replace('\\', "\\\\")
        .replace('"', "\\\"")
        .replace('\n', "\\n")
}

/// `GET /metrics`.
#[utoipa::path(
    get,
    path = "/metrics",
    tag = "service",
    summary = "Prometheus text exposition",
    description = "Roles: any logged-in user. While the store is unreachable it still answers: the violation \
                   figures are the last read (`roadwarden_store_up 0`), the rest is live; a credential that \
                   passed here before the outage is still let in.",
    responses(
        (status = 200, description = "metrics", content_type = "text/plain; version=0.0.4"),
        (status = 401, description = "not logged in", body = crate::error::ErrorBody),
    )
)]
pub(crate) async fn metrics(State(state): State<AppState>) -> Result<Response, ApiError> {
    let m = &state.0.metrics;
    let mut out = String::new();
    let _ = writeln!(
        out,
        "# HELP roadwarden_http_requests_total HTTP requests by route template, method and status.\n\
         # TYPE roadwarden_http_requests_total counter"
    );
    {
        let reqs = m.requests.lock().unwrap_or_else(|p| p.into_inner());
        for ((route, method, status), n) in reqs.iter() {
            let _ = writeln!(
                out,
                "roadwarden_http_requests_total{{route=\"{}\",method=\"{method}\",status=\"{status}\"}} {n}",
                label(route)
            );
        }
    }
    let _ = writeln!(
        out,
        "# HELP roadwarden_login_failures_total Logins refused for a wrong name or password.\n\
         # TYPE roadwarden_login_failures_total counter\n\
         roadwarden_login_failures_total {}\n\
         # HELP roadwarden_login_rate_limited_total Logins refused by the rate limit.\n\
         # TYPE roadwarden_login_rate_limited_total counter\n\
         roadwarden_login_rate_limited_total {}\n\
         # HELP roadwarden_login_password_checks_total Password hashes checked by logins (rate-limited ones check none).\n\
         # TYPE roadwarden_login_password_checks_total counter\n\
         roadwarden_login_password_checks_total {}",
        m.login_failures.load(Ordering::Relaxed),
        m.login_refused.load(Ordering::Relaxed),
        m.password_checks.load(Ordering::Relaxed)
    );
    let (counts, store_up) = match state.0.store.violation_counts().await {
        Ok(counts) => {
            *m.last_counts.lock().unwrap_or_else(|p| p.into_inner()) = Some(counts.clone());
            (counts, true)
        }
        Err(e) if e.is_unreachable() => {
            tracing::debug!("metrics from memory, the store is unreachable: {e}");
            let last = m.last_counts.lock().unwrap_or_else(|p| p.into_inner());
            (last.clone().unwrap_or_default(), false)
        }
        Err(e) => return Err(e.into()),
    };
    let _ = writeln!(
        out,
        "# HELP roadwarden_store_up 1 when this scrape reached the store, 0 while it is unreachable (the \
         violation figures are then the last read).\n\
         # TYPE roadwarden_store_up gauge\n\
         roadwarden_store_up {}",
        u8::from(store_up)
    );
    let _ = writeln!(
        out,
        "# HELP roadwarden_violations Stored violations by camera, kind and review status.\n\
         # TYPE roadwarden_violations gauge"
    );
    for (camera, kind, status, n) in counts {
        let _ = writeln!(
            out,
            "roadwarden_violations{{camera=\"{}\",kind=\"{}\",status=\"{}\"}} {n}",
            label(&camera),
            label(&kind),
            status.as_str()
        );
    }
    let board = state.0.cameras.snapshot();
    type Gauge = (&'static str, &'static str, &'static str);
    let gauges: [Gauge; 5] = [
        (
            "roadwarden_camera_input_fps",
            "gauge",
            "Frames per second arriving from the camera.",
        ),
        (
            "roadwarden_camera_analysed_fps",
            "gauge",
            "Frames per second analysed.",
        ),
        (
            "roadwarden_camera_reconnects_total",
            "counter",
            "Reconnects of the camera's source.",
        ),
        (
            "roadwarden_camera_dropped_frames_total",
            "counter",
            "Frames dropped before analysis.",
        ),
        (
            "roadwarden_camera_up",
            "gauge",
            "1 while the camera is running.",
        ),
    ];
    for (i, (name, kind, help)) in gauges.iter().enumerate() {
        let _ = writeln!(out, "# HELP {name} {help}\n# TYPE {name} {kind}");
        for (camera, s) in &board {
            let v = match i {
                0 => s.input_fps,
                1 => s.analysed_fps,
                2 => s.reconnects as f64,
                3 => s.dropped_frames as f64,
                _ => f64::from(u8::from(s.state == "running")),
            };
            let _ = writeln!(out, "{name}{{camera=\"{}\"}} {v}", label(camera));
        }
    }
    camera_pipelines(&mut out, &state.0.cameras);
    inference(&mut out, &state.0.cameras);
    Ok((
        [(
            header::CONTENT_TYPE,
            HeaderValue::from_static("text/plain; version=0.0.4; charset=utf-8"),
        )],
        out,
    )
        .into_response())
}

/// The camera-pipeline section: per camera, analysed frames, frame latency,
/// queue depth and violations recorded by kind; the recorder's queue and spool.
fn camera_pipelines(out: &mut String, board: &crate::CameraBoard) {
    let pipelines = board.pipelines();
    let _ = writeln!(
        out,
        "# HELP roadwarden_camera_frames_analysed_total Frames run through the camera's detectors and rules.\n\
         # TYPE roadwarden_camera_frames_analysed_total counter"
    );
    for (camera, p) in &pipelines {
        let c = label(camera);
        let _ = writeln!(
            out,
            "roadwarden_camera_frames_analysed_total{{camera=\"{c}\"}} {}",
            p.frames_analysed
        );
    }
    let _ = writeln!(
        out,
        "# HELP roadwarden_camera_frame_latency_seconds Seconds from a frame's capture to the end of its analysis.\n\
         # TYPE roadwarden_camera_frame_latency_seconds histogram"
    );
    for (camera, p) in &pipelines {
        let (c, h) = (label(camera), &p.frame_latency);
        let mut cumulative = 0;
        for (i, n) in h.counts.iter().enumerate() {
            cumulative += n;
            let le = crate::LATENCY_BOUNDS
                .get(i)
                .map(|b| b.to_string())
                .unwrap_or_else(|| "+Inf".into());
            let _ = writeln!(
                out,
                "roadwarden_camera_frame_latency_seconds_bucket{{camera=\"{c}\",le=\"{le}\"}} {cumulative}"
            );
        }
        let _ = writeln!(
            out,
            "roadwarden_camera_frame_latency_seconds_sum{{camera=\"{c}\"}} {}",
            h.sum_seconds
        );
        let _ = writeln!(
            out,
            "roadwarden_camera_frame_latency_seconds_count{{camera=\"{c}\"}} {}",
            h.count
        );
    }
    let _ = writeln!(
        out,
        "# HELP roadwarden_camera_queue_depth Decoded frames waiting for analysis.\n\
         # TYPE roadwarden_camera_queue_depth gauge"
    );
    for (camera, p) in &pipelines {
        let _ = writeln!(
            out,
            "roadwarden_camera_queue_depth{{camera=\"{}\"}} {}",
            label(camera),
            p.queue_depth
        );
    }
    let Some(r) = board.recorder() else { return };
    let _ = writeln!(
        out,
        "# HELP roadwarden_camera_violations_recorded_total Violations recorded with their evidence (committed or spooled), by camera and kind.\n\
         # TYPE roadwarden_camera_violations_recorded_total counter"
    );
    for (camera, kinds) in &r.recorded {
        for (kind, n) in kinds {
            let _ = writeln!(
                out,
                "roadwarden_camera_violations_recorded_total{{camera=\"{}\",kind=\"{}\"}} {n}",
                label(camera),
                label(kind)
            );
        }
    }
    let _ = writeln!(
        out,
        "# HELP roadwarden_recorder_queue_depth Violations handed to the recorder and not recorded yet.\n\
         # TYPE roadwarden_recorder_queue_depth gauge\n\
         roadwarden_recorder_queue_depth {}\n\
         # HELP roadwarden_spool_depth Violations in the spool, waiting for the store.\n\
         # TYPE roadwarden_spool_depth gauge\n\
         roadwarden_spool_depth {}",
        r.queued, r.spooled
    );
}

/// The shared inference batchers (only when the cameras share them): runs by batch size, images,
/// and each camera's submit-to-result time.
fn inference(out: &mut String, board: &crate::CameraBoard) {
    let batchers = board.inference();
    if batchers.is_empty() {
        return;
    }
    let _ = writeln!(
        out,
        "# HELP roadwarden_inference_runs_total ONNX Runtime runs of a shared batcher, by model and batch size.\n\
         # TYPE roadwarden_inference_runs_total counter"
    );
    for b in &batchers {
        for (size, n) in b.runs_by_size.iter().enumerate().skip(1) {
            if *n > 0 {
                let _ = writeln!(
                    out,
                    "roadwarden_inference_runs_total{{model=\"{}\",batch=\"{size}\"}} {n}",
                    label(&b.model)
                );
            }
        }
    }
    let _ = writeln!(
        out,
        "# HELP roadwarden_inference_images_total Images run by a shared batcher.\n\
         # TYPE roadwarden_inference_images_total counter"
    );
    for b in &batchers {
        let _ = writeln!(
            out,
            "roadwarden_inference_images_total{{model=\"{}\"}} {}",
            label(&b.model),
            b.images
        );
    }
    let _ = writeln!(
        out,
        "# HELP roadwarden_inference_request_seconds A camera's requests to a shared batcher, submit to result (queueing and the run).\n\
         # TYPE roadwarden_inference_request_seconds summary"
    );
    for b in &batchers {
        for c in &b.cameras {
            let (m, cam) = (label(&b.model), label(&c.camera));
            let _ = writeln!(
                out,
                "roadwarden_inference_request_seconds_sum{{model=\"{m}\",camera=\"{cam}\"}} {}\n\
                 roadwarden_inference_request_seconds_count{{model=\"{m}\",camera=\"{cam}\"}} {}",
                c.latency_seconds_sum, c.requests
            );
        }
    }
    let _ = writeln!(
        out,
        "# HELP roadwarden_inference_request_seconds_max The slowest request of a camera to a shared batcher.\n\
         # TYPE roadwarden_inference_request_seconds_max gauge"
    );
    for b in &batchers {
        for c in &b.cameras {
            let _ = writeln!(
                out,
                "roadwarden_inference_request_seconds_max{{model=\"{}\",camera=\"{}\"}} {}",
                label(&b.model),
                label(&c.camera),
                c.latency_seconds_max
            );
        }
    }
}

#[cfg(test)]
mod tests {
    use super::client_addr;
    use std::net::IpAddr;

    fn ip(s: &str) -> IpAddr {
        s.parse().unwrap()
    }

    #[test]
    fn forwarded_for_is_believed_only_from_trusted_proxies() {
        let proxy = [ip("10.0.0.2"), ip("10.0.0.3")];
        // Straight from a client: the header is whatever it wants to say.
        assert_eq!(
            client_addr(ip("203.0.113.9"), ["1.2.3.4"].into_iter(), &proxy),
            ip("203.0.113.9")
        );
        // No trusted proxy configured: ignored.
        assert_eq!(
            client_addr(ip("10.0.0.2"), ["1.2.3.4"].into_iter(), &[]),
            ip("10.0.0.2")
        );
        // Through the proxy: the address it appended.
        assert_eq!(
            client_addr(ip("10.0.0.2"), ["198.51.100.7"].into_iter(), &proxy),
            ip("198.51.100.7")
        );
        // A forged entry before it is not believed; two proxies are skipped, header lines joined.
        assert_eq!(
            client_addr(
                ip("10.0.0.2"),
                ["6.6.6.6, 198.51.100.7", "10.0.0.3"].into_iter(),
                &proxy
            ),
            ip("198.51.100.7")
        );
        // Garbage appended by nobody trusted ends the walk at the last good hop.
        assert_eq!(
            client_addr(
                ip("10.0.0.2"),
                ["198.51.100.7, nonsense"].into_iter(),
                &proxy
            ),
            ip("10.0.0.2")
        );
        // An IPv6 client.
        assert_eq!(
            client_addr(ip("10.0.0.2"), ["2001:db8::1"].into_iter(), &proxy),
            ip("2001:db8::1")
        );
    }
}
