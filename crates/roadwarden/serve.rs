//! `roadwarden serve`: the options of the HTTP service (review API, thresholds, cameras, metrics) and
//! its output; `roadwarden_service::Service` runs it (the site's cameras, reload on SIGHUP and
//! `POST /api/cameras/reload`, the recorder, the event publishers, the shutdown order).

use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::{Context, Result};
use clap::Args;
use roadwarden_rules::SiteConfig;
use roadwarden_server::ServerConfig;
use roadwarden_server::mqtt::MqttConfig;
use roadwarden_server::webhook::WebhookConfig;
use roadwarden_service::{Events, NodeId, Service, Setup, Shutdown};

use crate::runtime::RuntimeArgs;
use crate::user::StoreArgs;

#[derive(Debug, Args)]
#[command(after_help = "\
Runs every camera of the site file that has a `source.url` (an rtsp:// URL, or a video file, relative to the site file, played at its own pace as a live camera; it is `finished` at its end): violations are recorded with their evidence into the data folder (or --database-url) and published on MQTT. The cameras follow the thresholds set over the API from their next frame; GET /api/cameras/ID/pipeline shows what each does.

SIGHUP (or POST /api/cameras/reload, admin) re-reads the site file: new cameras start, removed ones stop, changed ones restart, the others run on; a file that does not validate is refused and nothing changes. SIGINT or SIGTERM stops the cameras, lets the violations in flight be recorded (their clips cut short), flushes the spool and exits 0.

With --database-url postgres://..., several `serve` nodes (each with its own --data and --node-id) share the site's cameras: each takes camera leases (8 s, renewed every 2 s) up to its fair share (cameras / live nodes, rounded up) and runs only those; a camera whose lease it cannot renew is stopped before another node may take it, and a dead node's cameras run on the others within about 10 s plus their start. Each violation names the node whose data folder holds its evidence files. With [nats] in the site file, violations also go to that NATS JetStream stream (Nats-Msg-Id = violation id, ack awaited).

Every endpoint except /healthz and /readyz needs a login (roadwarden user add NAME --role R) or a bearer token (roadwarden user token NAME). The API is described at /api/openapi.json.

Examples:
  roadwarden serve --config site.toml
  roadwarden serve --config site.toml --listen 0.0.0.0:8080 --secure-cookies
  roadwarden serve --config site.toml --secure-cookies --trusted-proxy 127.0.0.1   (behind nginx on this host)
  roadwarden serve --config site.toml --database-url postgres://roadwarden@db/roadwarden --data /srv/roadwarden
  roadwarden serve --config site.toml --database-url postgres://db/roadwarden --data /srv/rw-a --node-id node-a   (several nodes: each takes its share of the cameras)")]
pub(crate) struct ServeArgs {
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

    /// Seconds after a decision during which its reviewer may undo it (0: never).
    #[arg(long, value_name = "S", default_value_t = 10, value_parser = clap::value_parser!(u64).range(0..=3600))]
    pub undo_window_s: u64,

    /// Seconds a reviewer's claim on an open case lasts (the page renews it while the case stays open).
    #[arg(long, value_name = "S", default_value_t = 300, value_parser = clap::value_parser!(u64).range(10..=86400))]
    pub claim_s: u64,

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

    /// This node's id when several `serve` nodes share the site's cameras over one PostgreSQL store
    /// (camera leases; the violations it records name it as the holder of their evidence files)
    /// [default: the id kept in the data folder, generated at its first start].
    #[arg(long, value_name = "ID", value_parser = parse_node_id)]
    pub node_id: Option<NodeId>,

    #[command(flatten)]
    pub store: StoreArgs,
}

fn parse_node_id(s: &str) -> Result<NodeId, String> {
    NodeId::parse(s).map_err(|e| e.to_string())
}

pub(crate) fn run(runtime: &RuntimeArgs, args: ServeArgs) -> Result<ExitCode> {
    let site = SiteConfig::load_checked(&args.config)?;
    let mut events = Events::default();
    if let Some(broker) = &args.mqtt {
        let (host, port) = broker
            .rsplit_once(':')
            .and_then(|(h, p)| Some((h.to_owned(), p.parse::<u16>().ok()?)))
            .with_context(|| format!("--mqtt {broker}: expected HOST:PORT"))?;
        let mut cfg = MqttConfig::new(host, port);
        cfg.topic_template = args.mqtt_topic.clone();
        events.mqtt = Some(cfg);
    }
    if let Some(url) = &args.webhook {
        let mut cfg = WebhookConfig::new(url)?;
        if let Some(file) = &args.webhook_secret_file {
            cfg = cfg.with_secret_file(file)?;
        }
        events.webhook = Some(cfg);
    }
    let setup = Setup {
        site_file: args.config.clone(),
        listen: args.listen,
        server: ServerConfig {
            secure_cookies: args.secure_cookies,
            trusted_proxies: args.trusted_proxies.clone(),
            undo_window: std::time::Duration::from_secs(args.undo_window_s),
            claim_ttl: std::time::Duration::from_secs(args.claim_s),
            ..ServerConfig::default()
        },
        events,
        ort: runtime.config(),
        data: args.store.data_dir(),
        database_url: args.store.database_url.clone(),
        node_id: args.node_id.clone(),
    };
    // The installation's signing key: created at first start, never printed (only its public fingerprint).
    let (key, created) = roadwarden_evidence::InstallationKey::load_or_create(&setup.data)
        .context("the installation's evidence signing key")?;
    tracing::info!(
        fingerprint = %key.public().fingerprint(),
        created,
        "evidence packages are signed with the installation key (`roadwarden key show` prints it)"
    );
    drop(key);
    let service = Service::start(site, setup)?;
    // One line on stdout, for people and for scripts that asked for port 0.
    println!("listening on http://{}", service.local_addr());
    let tally = service.run(Shutdown::OnSignal)?;
    eprintln!(
        "cameras stopped: {} violation(s) handed to the recorder: {} committed, {} spooled, {} already recorded, {} failed",
        tally.handed, tally.committed, tally.spooled, tally.already, tally.failed
    );
    eprintln!("stopped");
    Ok(ExitCode::SUCCESS)
}
