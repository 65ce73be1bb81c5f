//! `roadwarden serve`: the HTTP service (review API, thresholds, cameras,
//! metrics) over the store, and the site's cameras (media → inference →
//! tracking → rules → evidence and store, see [`crate::cameras`]); SIGHUP and
//! `POST /api/cameras/reload` re-read the site file, SIGINT and SIGTERM stop
//! the cameras, let the recorder finish and exit.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::time::Duration;

use anyhow::{Context, Result};
use clap::Args;
use roadwarden_infer::RuntimeConfig;
use roadwarden_rules::SiteConfig;
use roadwarden_server::{AppState, ControlRequest, ReloadReport, ServerConfig};
use tokio::signal::unix::{SignalKind, signal};
use tokio::sync::mpsc;

use crate::cameras::{Cameras, Setup};
use crate::runtime::RuntimeArgs;
use crate::user::StoreArgs;

#[derive(Debug, Args)]
#[command(after_help = "\
Runs every camera of the site file that has a `source.url` (an rtsp:// URL, or a video file, relative to the site file, played at its own pace as a live camera; it is `finished` at its end): violations are recorded with their evidence into the data folder (or --database-url) and published on MQTT. The cameras follow the thresholds set over the API from their next frame; GET /api/cameras/ID/pipeline shows what each does.

SIGHUP (or POST /api/cameras/reload, admin) re-reads the site file: new cameras start, removed ones stop, changed ones restart, the others run on; a file that does not validate is refused and nothing changes. SIGINT or SIGTERM stops the cameras, lets the violations in flight be recorded (their clips cut short), flushes the spool and exits 0.

Every endpoint except /healthz and /readyz needs a login (roadwarden user add NAME --role R) or a bearer token (roadwarden user token NAME). The API is described at /api/openapi.json.

Examples:
  roadwarden serve --config site.toml
  roadwarden serve --config site.toml --listen 0.0.0.0:8080 --secure-cookies
  roadwarden serve --config site.toml --secure-cookies --trusted-proxy 127.0.0.1   (behind nginx on this host)
  roadwarden serve --config site.toml --database-url postgres://roadwarden@db/roadwarden --data /srv/roadwarden")]
pub struct ServeArgs {
    /// The site file (TOML, one [[camera]] table per camera).
    #[arg(long, value_name = "FILE")]
    pub config: PathBuf,

    /// Address to listen on (port 0: any free port, printed at start).
    #[arg(long, value_name = "ADDR", default_value = "127.0.0.1:8080")]
    pub listen: SocketAddr,

    /// Mark the session cookie Secure (when served over HTTPS, e.g. behind a TLS proxy).
    #[arg(long)]
    pub secure_cookies: bool,

    /// A reverse proxy's address (repeatable) whose X-Forwarded-For is believed, so failed logins
    /// are counted per client rather than per proxy. Without it the header is ignored: anyone can send it.
    #[arg(long = "trusted-proxy", value_name = "IP")]
    pub trusted_proxies: Vec<std::net::IpAddr>,

    /// Publish new violations and review decisions to this MQTT broker (HOST:PORT), QoS 1.
    #[arg(long, value_name = "HOST:PORT")]
    pub mqtt: Option<String>,

    /// The MQTT topic; `{camera}` becomes the camera id.
    #[arg(
        long,
        value_name = "TEMPLATE",
        default_value = "roadwarden/{camera}/violations"
    )]
    pub mqtt_topic: String,

    /// POST every event (violation, review, threshold) as JSON to this http:// URL, with retries
    /// (docs/events.md; for an https receiver, point this at a local TLS-originating proxy).
    #[arg(long, value_name = "URL")]
    pub webhook: Option<String>,

    /// Sign webhook bodies with the shared secret in FILE (X-Roadwarden-Signature: sha256=<hex HMAC>).
    #[arg(long, value_name = "FILE", requires = "webhook")]
    pub webhook_secret_file: Option<PathBuf>,

    #[command(flatten)]
    pub store: StoreArgs,
}

/// Re-reads the site file and makes its cameras the running ones; a file
/// that does not load is refused and nothing changes.
async fn reload(
    cameras: &mut Cameras,
    state: &AppState,
    site_file: &Path,
    by: &str,
) -> Result<ReloadReport, String> {
    let refused = |e: String| {
        eprintln!(
            "warning: reload ({by}) refused, the cameras run on: {}: {e}",
            site_file.display()
        );
        e
    };
    let site = SiteConfig::load(site_file).map_err(|e| refused(e.to_string()))?;
    state
        .replace_site(site.clone())
        .await
        .map_err(|e| refused(format!("cannot read the stored thresholds: {e}")))?;
    let report = tokio::task::block_in_place(|| cameras.apply(&site));
    eprintln!("reloaded {} ({by}): {report}", site_file.display());
    Ok(report)
}

/// Serves control requests and signals until SIGINT or SIGTERM (or the
/// HTTP server ends).
async fn follow(
    cameras: &mut Cameras,
    state: &AppState,
    site_file: &Path,
    mut control: mpsc::Receiver<ControlRequest>,
    server: &mut tokio::task::JoinHandle<Result<(), roadwarden_server::ServerError>>,
) -> Result<()> {
    let watch =
        |kind: SignalKind, name: &str| signal(kind).with_context(|| format!("cannot watch {name}"));
    let mut hup = watch(SignalKind::hangup(), "SIGHUP")?;
    let mut term = watch(SignalKind::terminate(), "SIGTERM")?;
    let mut int = watch(SignalKind::interrupt(), "SIGINT")?;
    loop {
        tokio::select! {
            _ = term.recv() => return Ok(()),
            _ = int.recv() => return Ok(()),
            _ = hup.recv() => {
                if let Ok(r) = reload(cameras, state, site_file, "SIGHUP").await {
                    let after = serde_json::to_string(&r).ok();
                    let audit = state.store().audit("SIGHUP", "reload_site", None, None, after);
                    if let Err(e) = audit.await {
                        eprintln!("warning: cannot audit the reload: {e}");
                    }
                }
            }
            Some(req) = control.recv() => match req {
                ControlRequest::Reload { reply } => {
                    let _ = reply.send(reload(cameras, state, site_file, "API").await);
                }
                ControlRequest::Signal { camera, state: s, at, reply } => {
                    let _ = reply.send(cameras.signal(&camera, at, s));
                }
            },
            r = &mut *server => return Ok(r.context("the HTTP server task failed")??),
        }
    }
}

pub fn run(runtime: &RuntimeArgs, args: ServeArgs) -> Result<ExitCode> {
    let site = SiteConfig::load(&args.config)?;
    let ort = RuntimeConfig {
        library: runtime.ort_lib.clone(),
        provider: runtime.provider,
        allow_cpu_fallback: runtime.allow_cpu_fallback,
        threads: runtime.threads,
    };
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .context("cannot start the async runtime")?;
    rt.block_on(async {
        let (store, data) = args.store.open().await?;
        data.create()?;
        let config = ServerConfig {
            secure_cookies: args.secure_cookies,
            trusted_proxies: args.trusted_proxies.clone(),
            ..ServerConfig::default()
        };
        let state = AppState::new(store.clone(), data.clone(), site.clone(), config).await?;
        let mut mqtt = None;
        if let Some(broker) = &args.mqtt {
            let (host, port) = broker
                .rsplit_once(':')
                .and_then(|(h, p)| Some((h.to_owned(), p.parse::<u16>().ok()?)))
                .with_context(|| format!("--mqtt {broker}: expected HOST:PORT"))?;
            let mut cfg = roadwarden_server::mqtt::MqttConfig::new(host, port);
            cfg.topic_template = args.mqtt_topic.clone();
            let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
            let task = tokio::spawn(roadwarden_server::mqtt::publish_events(
                cfg,
                state.events(),
                async {
                    let _ = stopped.await;
                },
            ));
            mqtt = Some((stop, task));
        }
        if let Some(url) = &args.webhook {
            let mut cfg = roadwarden_server::webhook::WebhookConfig::new(url)?;
            if let Some(file) = &args.webhook_secret_file {
                cfg = cfg.with_secret_file(file)?;
            }
            tokio::spawn(roadwarden_server::webhook::publish_events(cfg, state.events()));
        }
        let control = state.control_requests();
        let setup = Setup {
            base: args.config.parent().unwrap_or(Path::new(".")).to_owned(),
            ort,
            data: data.clone(),
            database_url: args.store.database_url.clone(),
        };
        let mut cameras =
            tokio::task::block_in_place(|| Cameras::start(state.clone(), &site, setup))?;
        let listener = tokio::net::TcpListener::bind(args.listen)
            .await
            .with_context(|| format!("cannot listen on {}", args.listen))?;
        let addr = listener.local_addr().context("listening address")?;
        // One line on stdout, for people and for scripts that asked for port 0.
        println!("listening on http://{addr}");
        let (stop_http, stopped) = tokio::sync::oneshot::channel::<()>();
        let mut server = tokio::spawn(roadwarden_server::serve(listener, state.clone(), async {
            let _ = stopped.await;
        }));
        let followed = follow(&mut cameras, &state, &args.config, control, &mut server).await;
        let _ = stop_http.send(());
        let tally = tokio::task::block_in_place(|| cameras.shutdown())?;
        eprintln!(
            "cameras stopped: {} violation(s) handed to the recorder: {} committed, {} spooled, {} already recorded, {} failed",
            tally.handed, tally.committed, tally.spooled, tally.already, tally.failed
        );
        if let Some((stop, task)) = mqtt {
            // The last violations' events are queued: publish them, and wait for the broker's acks.
            let _ = stop.send(());
            let flush = roadwarden_server::mqtt::FLUSH_TIMEOUT + Duration::from_secs(1);
            if tokio::time::timeout(flush, task).await.is_err() {
                tracing::warn!("the MQTT publisher did not finish within {flush:?}");
            }
        }
        followed?;
        if !server.is_finished() {
            server.await.context("the HTTP server task failed")??;
        }
        store.close().await;
        eprintln!("stopped");
        Ok(ExitCode::SUCCESS)
    })
}
