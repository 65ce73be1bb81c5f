//! `roadwarden serve`: the HTTP service (review API, thresholds, cameras,
//! metrics) over the store.
//!
//! Running the configured cameras inside the service (media → inference →
//! tracking → rules → evidence and store) is not wired here yet; see
//! [`start_cameras`], the one seam it plugs into.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::{Context, Result};
use clap::Args;
use roadwarden_rules::SiteConfig;
use roadwarden_server::{AppState, ServerConfig};

use crate::user::StoreArgs;

#[derive(Debug, Args)]
#[command(after_help = "\
Every endpoint except /healthz and /readyz needs a login (roadwarden user add NAME --role R) or a bearer token
(roadwarden user token NAME). The API is described at /api/openapi.json. SIGINT or SIGTERM stops it gracefully.

Examples:
  roadwarden serve --config site.toml
  roadwarden serve --config site.toml --listen 0.0.0.0:8080 --secure-cookies
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

    #[command(flatten)]
    pub store: StoreArgs,
}

/// The seam for running the site's cameras inside the service: each camera's
/// runner publishes its status on `state.camera_board()`, follows
/// `state.thresholds()` (applying a change from its next frame), records
/// violations through the evidence `Recorder` and announces each with
/// `state.publish(Event::Violation { .. })`. Until the recording glue lands,
/// the service serves the store only.
fn start_cameras(_state: &AppState, site: &SiteConfig) {
    tracing::warn!(
        "serving the store only: running the {} configured camera(s) inside `serve` is not wired yet",
        site.cameras.len()
    );
}

pub fn run(args: ServeArgs) -> Result<ExitCode> {
    let site = SiteConfig::load(&args.config)?;
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .context("cannot start the async runtime")?;
    rt.block_on(async {
        let (store, data) = args.store.open().await?;
        data.create()?;
        let config = ServerConfig {
            secure_cookies: args.secure_cookies,
            ..ServerConfig::default()
        };
        let state = AppState::new(store.clone(), data, site.clone(), config).await?;
        if let Some(broker) = &args.mqtt {
            let (host, port) = broker
                .rsplit_once(':')
                .and_then(|(h, p)| Some((h.to_owned(), p.parse::<u16>().ok()?)))
                .with_context(|| format!("--mqtt {broker}: expected HOST:PORT"))?;
            let mut cfg = roadwarden_server::mqtt::MqttConfig::new(host, port);
            cfg.topic_template = args.mqtt_topic.clone();
            tokio::spawn(roadwarden_server::mqtt::publish_events(cfg, state.events()));
        }
        start_cameras(&state, &site);
        let listener = tokio::net::TcpListener::bind(args.listen)
            .await
            .with_context(|| format!("cannot listen on {}", args.listen))?;
        let addr = listener.local_addr().context("listening address")?;
        // One line on stdout, for people and for scripts that asked for port 0.
        println!("listening on http://{addr}");
        roadwarden_server::serve(listener, state, roadwarden_server::shutdown_signal()).await?;
        store.close().await;
        eprintln!("stopped");
        Ok(ExitCode::SUCCESS)
    })
}
