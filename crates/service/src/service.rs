//! The service's lifecycle: [`Service::start`] opens the store, the API state, the event publishers, the
//! cameras with their recorder and the listening socket; [`Service::run`] serves HTTP, follows SIGHUP and
//! the API's control requests, and at shutdown stops, in order: the HTTP server, the cameras, the
//! recorder (what was handed over is recorded, the spool flushed), the MQTT publisher (queued events
//! published and acknowledged), the store.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;

use roadwarden_evidence::DataDir;
use roadwarden_infer::RuntimeConfig;
use roadwarden_rules::SiteConfig;
use roadwarden_server::mqtt::MqttConfig;
use roadwarden_server::webhook::WebhookConfig;
use roadwarden_server::{AppState, ControlRequest, ReloadReport, ServerConfig, ServerError};
use roadwarden_store::NodeId;
use tokio::signal::unix::{Signal, SignalKind, signal};
use tokio::sync::{mpsc, oneshot};
use tokio::task::JoinHandle;

use crate::cameras::{CameraSetup, Cameras};
use crate::nodes::{LEASE_EVERY, Leasing};
use crate::recorder::{Tally, chain};
use crate::{IfMissing, ServiceError, Store, open_store};

/// Where the service publishes its events (new violations, review decisions, thresholds).
#[derive(Debug, Default)]
pub struct Events {
    pub mqtt: Option<MqttConfig>,
    pub webhook: Option<WebhookConfig>,
}

/// Everything [`Service::start`] needs besides the site.
pub struct Setup {
    /// The site file, re-read on reload; relative video sources are found from its folder.
    pub site_file: PathBuf,
    pub listen: SocketAddr,
    pub server: ServerConfig,
    pub events: Events,
    /// How models run; `threads` is the budget the cameras share.
    pub ort: RuntimeConfig,
    pub data: DataDir,
    pub database_url: Option<String>,
    /// This node's id (`--node-id`), else the data folder's (generated at its first start).
    pub node_id: Option<NodeId>,
}

/// What ends [`Service::run`].
pub enum Shutdown {
    /// SIGINT or SIGTERM.
    OnSignal,
    /// When this fires or its sender is dropped (an embedding process, a test).
    OnRequest(oneshot::Receiver<()>),
}

type Stopper = (oneshot::Sender<()>, JoinHandle<()>);

/// The running service.
pub struct Service {
    store: Store,
    state: AppState,
    cameras: Cameras,
    site_file: PathBuf,
    listener: tokio::net::TcpListener,
    addr: SocketAddr,
    control: mpsc::Receiver<ControlRequest>,
    hangup: Signal,
    mqtt: Option<Stopper>,
    nats: Option<Stopper>,
    /// Several nodes on PostgreSQL: this node's camera leases.
    leasing: Option<Leasing>,
    site: SiteConfig,
    /// Last: dropped after what runs on it.
    rt: tokio::runtime::Runtime,
}

impl Service {
    /// Opens the store and the data folder, starts the event publishers and `site`'s cameras (with the
    /// recorder: refused when nothing could be recorded) and binds the listening socket; nothing is
    /// served until [`Service::run`].
    pub fn start(site: SiteConfig, setup: Setup) -> Result<Service, ServiceError> {
        let rt = tokio::runtime::Builder::new_multi_thread()
            .enable_all()
            .build()
            .map_err(ServiceError::AsyncRuntime)?;
        let started = rt.block_on(async {
            let store = open_store(
                &setup.data,
                setup.database_url.as_deref(),
                IfMissing::Create,
            )
            .await?;
            setup
                .data
                .create()
                .map_err(|source| ServiceError::DataDir {
                    dir: setup.data.root().to_owned(),
                    source,
                })?;
            let node = setup
                .data
                .ensure_node_id(setup.node_id.as_ref())
                .map_err(ServiceError::Store)?;
            // Several nodes share a site only through PostgreSQL; SQLite is one node's own file.
            let leasing = if store.dialect() == "postgres" {
                Some(Leasing::join(store.clone(), node.clone()).await)
            } else {
                None
            };
            tracing::info!(node = %node, leased = leasing.is_some(), "this node");
            let state = AppState::new(
                store.clone(),
                setup.data.clone(),
                site.clone(),
                setup.server,
            )
            .await?;
            let mut mqtt = None;
            if let Some(cfg) = setup.events.mqtt {
                let (stop, stopped) = oneshot::channel::<()>();
                let task = tokio::spawn(roadwarden_server::mqtt::publish_events(
                    cfg,
                    state.events(),
                    async {
                        let _ = stopped.await;
                    },
                ));
                mqtt = Some((stop, task));
            }
            let mut nats = None;
            if let Some(cfg) = site.nats.clone() {
                let (stop, stopped) = oneshot::channel::<()>();
                let task = tokio::spawn(roadwarden_server::nats::publish_events(
                    cfg,
                    store.clone(),
                    state.events(),
                    async {
                        let _ = stopped.await;
                    },
                ));
                nats = Some((stop, task));
            }
            if let Some(cfg) = setup.events.webhook {
                tokio::spawn(roadwarden_server::webhook::publish_events(
                    cfg,
                    state.events(),
                ));
            }
            let control = state.control_requests();
            let hangup = watch(SignalKind::hangup(), "SIGHUP")?;
            let cameras = CameraSetup {
                base: setup
                    .site_file
                    .parent()
                    .unwrap_or(Path::new("."))
                    .to_owned(),
                ort: setup.ort,
                data: setup.data.clone(),
                database_url: setup.database_url.clone(),
                leased: leasing.is_some(),
            };
            let cameras =
                tokio::task::block_in_place(|| Cameras::start(state.clone(), &site, cameras))?;
            let listener = tokio::net::TcpListener::bind(setup.listen)
                .await
                .map_err(|source| ServiceError::Listen {
                    addr: setup.listen,
                    source,
                })?;
            let addr = listener
                .local_addr()
                .map_err(|source| ServiceError::Listen {
                    addr: setup.listen,
                    source,
                })?;
            Ok::<_, ServiceError>((
                store, state, cameras, listener, addr, control, hangup, mqtt, nats, leasing,
            ))
        })?;
        let (store, state, cameras, listener, addr, control, hangup, mqtt, nats, leasing) = started;
        Ok(Service {
            store,
            state,
            cameras,
            site_file: setup.site_file,
            listener,
            addr,
            control,
            hangup,
            mqtt,
            nats,
            leasing,
            site,
            rt,
        })
    }

    /// The address the service listens on (the real port when asked for port 0).
    pub fn local_addr(&self) -> SocketAddr {
        self.addr
    }

    /// Serves until `shutdown` (or the HTTP server ends), then stops everything in order; returns what
    /// the recorder did with the violations handed to it.
    pub fn run(self, shutdown: Shutdown) -> Result<Tally, ServiceError> {
        let Service {
            store,
            state,
            mut cameras,
            site_file,
            listener,
            addr: _,
            control,
            hangup,
            mqtt,
            nats,
            leasing,
            site,
            rt,
        } = self;
        rt.block_on(async move {
            let (stop_http, stopped) = oneshot::channel::<()>();
            let mut server =
                tokio::spawn(roadwarden_server::serve(listener, state.clone(), async {
                    let _ = stopped.await;
                }));
            let mut follow = Follow {
                cameras: &mut cameras,
                state: &state,
                site_file: &site_file,
                control,
                hangup,
                leasing,
                site,
            };
            let followed = follow.until(shutdown, &mut server).await;
            let leasing = follow.leasing.take();
            let _ = stop_http.send(());
            let tally = tokio::task::block_in_place(|| cameras.shutdown());
            // The cameras have stopped: their leases go at once, for the other nodes to take.
            if let Some(l) = leasing {
                l.leave().await;
            }
            if let Some((stop, task)) = nats {
                let _ = stop.send(());
                let flush = roadwarden_server::nats::ACK_TIMEOUT + Duration::from_secs(1);
                if tokio::time::timeout(flush, task).await.is_err() {
                    tracing::warn!("the NATS publisher did not finish within {flush:?}");
                }
            }
            if let Some((stop, task)) = mqtt {
                // The last violations' events are queued: publish them, and wait for the broker's acks.
                let _ = stop.send(());
                let flush = roadwarden_server::mqtt::FLUSH_TIMEOUT + Duration::from_secs(1);
                if tokio::time::timeout(flush, task).await.is_err() {
                    tracing::warn!("the MQTT publisher did not finish within {flush:?}");
                }
            }
            let tally = tally?;
            followed?;
            if !server.is_finished() {
                server.await.map_err(ServiceError::ServerTask)??;
            }
            store.close().await;
            Ok(tally)
        })
    }
}

fn watch(kind: SignalKind, name: &'static str) -> Result<Signal, ServiceError> {
    signal(kind).map_err(|source| ServiceError::Signal {
        signal: name,
        source,
    })
}

/// The running service between start and shutdown: reloads and control requests.
struct Follow<'a> {
    cameras: &'a mut Cameras,
    state: &'a AppState,
    site_file: &'a Path,
    control: mpsc::Receiver<ControlRequest>,
    hangup: Signal,
    leasing: Option<Leasing>,
    /// The site in force (the last one loaded).
    site: SiteConfig,
}

impl Follow<'_> {
    /// Serves control requests and SIGHUP until `shutdown` (or the HTTP server ends).
    async fn until(
        &mut self,
        shutdown: Shutdown,
        server: &mut JoinHandle<Result<(), ServerError>>,
    ) -> Result<(), ServiceError> {
        let (mut term, mut int, mut requested) = match shutdown {
            Shutdown::OnSignal => (
                Some(watch(SignalKind::terminate(), "SIGTERM")?),
                Some(watch(SignalKind::interrupt(), "SIGINT")?),
                None,
            ),
            Shutdown::OnRequest(rx) => (None, None, Some(rx)),
        };
        async fn recv(s: &mut Option<Signal>) {
            match s {
                Some(s) => {
                    s.recv().await;
                }
                None => std::future::pending().await,
            }
        }
        async fn fired(rx: &mut Option<oneshot::Receiver<()>>) {
            match rx {
                Some(rx) => {
                    let _ = rx.await;
                }
                None => std::future::pending().await,
            }
        }
        // The first round after one period, so that nodes started together see each other first.
        let mut leases =
            tokio::time::interval_at(tokio::time::Instant::now() + LEASE_EVERY, LEASE_EVERY);
        leases.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            tokio::select! {
                _ = leases.tick(), if self.leasing.is_some() => self.lease_round().await,
                _ = recv(&mut term) => return Ok(()),
                _ = recv(&mut int) => return Ok(()),
                _ = fired(&mut requested) => return Ok(()),
                _ = self.hangup.recv() => {
                    if let Ok(r) = self.reload("SIGHUP").await {
                        let after = serde_json::to_string(&r).ok();
                        let audit = self.state.store().audit("SIGHUP", "reload_site", None, None, after);
                        if let Err(e) = audit.await {
                            tracing::warn!("cannot audit the reload: {e}");
                        }
                    }
                }
                Some(req) = self.control.recv() => match req {
                    ControlRequest::Reload { reply } => {
                        let _ = reply.send(self.reload("API").await);
                    }
                    ControlRequest::Signal { camera, state, at, reply } => {
                        let _ = reply.send(self.cameras.signal(&camera, at, state));
                    }
                },
                r = &mut *server => return Ok(r.map_err(ServiceError::ServerTask)??),
            }
        }
    }

    /// One lease round: stops the cameras lost or given up, starts those taken, then releases the
    /// given-up leases (their cameras have stopped).
    async fn lease_round(&mut self) {
        let Some(leasing) = self.leasing.as_mut() else {
            return;
        };
        let round = leasing.round(&self.site).await;
        let changed =
            !round.taken.is_empty() || !round.lost.is_empty() || !round.release.is_empty();
        if changed {
            let (cameras, site) = (&mut *self.cameras, &self.site);
            let report = tokio::task::block_in_place(|| cameras.run_only(round.run.clone(), site));
            tracing::info!(
                node = %leasing.node(),
                live_nodes = round.live,
                share = round.share,
                running = ?round.run,
                "leases: {report}"
            );
            leasing.release(&round.release).await;
        }
    }

    /// Re-reads the site file and makes its cameras the running ones; a file that `config check` would
    /// refuse ([`SiteConfig::load_checked`], models included) is refused whole and nothing changes.
    async fn reload(&mut self, by: &str) -> Result<ReloadReport, String> {
        let file = self.site_file.display();
        let refused = |e: String| {
            tracing::warn!("reload ({by}) refused, the cameras run on: {file}: {e}");
            e
        };
        let site = SiteConfig::load_checked(self.site_file).map_err(|e| refused(chain(&e)))?;
        self.state
            .replace_site(site.clone())
            .await
            .map_err(|e| refused(format!("cannot read the stored thresholds: {e}")))?;
        let cameras = &mut *self.cameras;
        let report = tokio::task::block_in_place(|| cameras.apply(&site));
        if site.nats != self.site.nats {
            tracing::warn!(
                "[nats] changed in the site file: it takes effect when the service starts again"
            );
        }
        self.site = site;
        tracing::info!("reloaded {file} ({by}): {report}");
        Ok(report)
    }
}
