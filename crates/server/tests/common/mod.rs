//! Scaffolding shared by the server crate's integration tests: the site
//! configuration, the test chain hasher, a store of its own (an SQLite file,
//! or a PostgreSQL database per test at 127.0.0.1:5432), users, violations
//! with evidence files on disk, a server on 127.0.0.1:0 and logins over HTTP.
//! Not every test binary uses every item.
#![allow(dead_code)]

use std::net::SocketAddr;
use std::time::Duration;

use chrono::{DateTime, Utc};
use reqwest::StatusCode;
use roadwarden_server::auth::hash_password;
use roadwarden_server::{AppState, ServerConfig};
use roadwarden_store::{
    ChainFields, ChainHasher, DataDir, EvidenceItem, EvidenceKind, InsertOutcome, NewViolation,
    Role, Store, pgadmin,
};
use roadwarden_types::{CameraId, FrameRole, Violation, ViolationId, ViolationKind};
use serde_json::json;
use sha2::{Digest, Sha256};

/// The PostgreSQL server the tests make their databases on.
pub(crate) const PG_ADMIN: &str = "postgres://postgres@127.0.0.1:5432/postgres";

/// (name, password, role) of the users most tests log in as.
pub(crate) const USERS: [(&str, &str, Role); 3] = [
    ("rita", "rita-reviews-all-day", Role::Reviewer),
    ("otto", "otto-tunes-the-cameras", Role::Ops),
    ("ada", "ada-administers-it-all", Role::Admin),
];

/// One `[[camera]]` table: a 640×384 frame, the helmet model, a stop line at
/// x = 420 and a video signal; `source` an RTSP URL, if any, and
/// `thresholds` the `[camera.thresholds]` lines, if any.
pub(crate) fn camera_toml(id: &str, source: Option<&str>, thresholds: &[(&str, f64)]) -> String {
    let mut s = format!("[[camera]]\nid = \"{id}\"\nframe = [640, 384]\n");
    if let Some(url) = source {
        s += &format!("source = {{ url = \"{url}\" }}\n");
    }
    s += concat!(
        "[camera.models]\n",
        "helmet = \"models/helmet.toml\"\n",
        "[camera.stop_line]\n",
        "a = [420.0, 384.0]\n",
        "b = [420.0, 40.0]\n",
        "before = \"left\"\n",
        "[camera.signal]\n",
        "source = \"video\"\n",
        "rois = [[600.0, 6.0, 632.0, 90.0]]\n",
    );
    if !thresholds.is_empty() {
        s += "[camera.thresholds]\n";
        for (class, value) in thresholds {
            s += &format!("{class} = {value}\n");
        }
    }
    s
}

/// A site configuration of these cameras (each from [`camera_toml`]).
pub(crate) fn site_toml(cameras: &[String]) -> String {
    cameras.join("\n")
}

/// The tests' chain hash: SHA-256 of the chain fields' JSON.
pub(crate) fn hasher(f: &ChainFields) -> String {
    hex::encode(Sha256::digest(
        serde_json::to_vec(f).expect("chain fields serialize"),
    ))
}

/// A temporary folder and the (created) data folder inside it.
pub(crate) fn temp_data() -> (tempfile::TempDir, DataDir) {
    let dir = tempfile::tempdir().expect("tempdir");
    let data = DataDir::new(dir.path().join("data"));
    data.create().expect("data dir");
    (dir, data)
}

/// A store on `dialect`: SQLite in `data`, or (`"postgres"`) a PostgreSQL
/// database of its own named `{prefix}_{uuid}`, whose name comes back for
/// [`close_store`].
pub(crate) async fn open_store(
    dialect: &str,
    data: &DataDir,
    prefix: &str,
) -> (Store, Option<String>) {
    let (store, pg_name) = if dialect == "postgres" {
        let name = format!("{prefix}_{}", uuid::Uuid::new_v4().simple());
        let url = pgadmin::create_database(PG_ADMIN, &name)
            .await
            .expect("create pg database (PostgreSQL at 127.0.0.1:5432)");
        (Store::connect(&url).await.expect("connect pg"), Some(name))
    } else {
        (Store::open_data_dir(data).await.expect("open sqlite"), None)
    };
    assert_eq!(store.dialect(), dialect);
    (store, pg_name)
}

/// Closes the store and drops its PostgreSQL database, if it has one.
pub(crate) async fn close_store(store: &Store, pg_name: Option<String>) {
    store.close().await;
    if let Some(name) = pg_name {
        pgadmin::drop_database(PG_ADMIN, &name)
            .await
            .expect("drop pg database");
    }
}

/// Adds these (name, password, role) users, in order.
pub(crate) async fn put_users<'a>(
    store: &Store,
    users: impl IntoIterator<Item = (&'a str, &'a str, Role)>,
) {
    for (name, pw, role) in users {
        let h = hash_password(pw).expect("hash");
        store.put_user(name, role, &h, "test").await.expect("user");
    }
}

/// A violation with a fresh id: track 7, no frames, no signal, no thresholds.
pub(crate) fn violation(
    camera: &str,
    kind: ViolationKind,
    occurred_at: DateTime<Utc>,
    confidence: f32,
) -> Violation {
    Violation {
        plate_read: None,
        id: ViolationId::new(),
        kind,
        camera: CameraId::new(camera),
        track_id: 7,
        occurred_at,
        confidence,
        frames: vec![],
        signal: vec![],
        thresholds: Default::default(),
    }
}

/// Inserts `violation` with its `evidence` through the store.
pub(crate) async fn insert(
    store: &Store,
    violation: Violation,
    evidence: Vec<EvidenceItem>,
    hasher: ChainHasher,
) -> InsertOutcome {
    store
        .insert(
            &NewViolation {
                violation,
                evidence,
            },
            hasher,
        )
        .await
        .expect("insert")
}

/// An evidence file's bytes: `"{name} of {id}: "`, then `filler` bytes counting 0..=255 round.
pub(crate) fn evidence_bytes(name: &str, id: &str, filler: usize) -> Vec<u8> {
    format!("{name} of {id}: ")
        .bytes()
        .chain((0..=255u8).cycle().take(filler))
        .collect()
}

/// Writes `bytes` at `rel` in the data folder; its evidence item.
pub(crate) fn write_evidence(
    data: &DataDir,
    rel: &str,
    bytes: &[u8],
    kind: EvidenceKind,
    role: Option<FrameRole>,
) -> EvidenceItem {
    let abs = data.resolve(rel).expect("inside");
    std::fs::create_dir_all(abs.parent().expect("parent")).expect("mkdir");
    std::fs::write(&abs, bytes).expect("write evidence");
    EvidenceItem::new(
        kind,
        role,
        rel.to_owned(),
        hex::encode(Sha256::digest(bytes)),
        bytes.len() as u64,
    )
}

/// The service over a store, served on 127.0.0.1:0 until [`Server::stop`].
pub(crate) struct Server {
    pub base: String,
    pub addr: SocketAddr,
    pub state: AppState,
    stop: Option<tokio::sync::oneshot::Sender<()>>,
}

impl Server {
    /// `site` is the site configuration's TOML.
    pub(crate) async fn start(
        store: &Store,
        data: &DataDir,
        site: &str,
        config: ServerConfig,
    ) -> Server {
        let site = roadwarden_rules::SiteConfig::parse(site).expect("site config");
        let state = AppState::new(store.clone(), data.clone(), site, config)
            .await
            .expect("state");
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind");
        let addr = listener.local_addr().expect("addr");
        let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
        let st = state.clone();
        tokio::spawn(async move {
            roadwarden_server::serve(listener, st, async {
                let _ = stopped.await;
            })
            .await
            .expect("serve");
        });
        Server {
            base: format!("http://{addr}"),
            addr,
            state,
            stop: Some(stop),
        }
    }

    pub(crate) fn stop(&mut self) {
        if let Some(s) = self.stop.take() {
            let _ = s.send(());
        }
    }
}

/// An HTTP client with this timeout; `redirects: false` returns 3xx answers as they are.
pub(crate) fn http_client(timeout: Duration, redirects: bool) -> reqwest::Client {
    let mut b = reqwest::Client::builder().timeout(timeout);
    if !redirects {
        b = b.redirect(reqwest::redirect::Policy::none());
    }
    b.build().expect("client")
}

/// `POST /api/login` as `name`; asserts a 200 (`what` says whose login in
/// the message) and returns the answer.
pub(crate) async fn login(
    http: &reqwest::Client,
    base: &str,
    name: &str,
    password: &str,
    what: &str,
) -> reqwest::Response {
    let r = http
        .post(format!("{base}/api/login"))
        .json(&json!({ "name": name, "password": password }))
        .send()
        .await
        .expect("login request");
    assert_eq!(r.status(), StatusCode::OK, "{what}");
    r
}

/// The `name=value` pair of an answer's `set-cookie`.
pub(crate) fn session_cookie(r: &reqwest::Response) -> String {
    r.headers()
        .get("set-cookie")
        .expect("set-cookie")
        .to_str()
        .expect("ascii")
        .split(';')
        .next()
        .expect("pair")
        .trim()
        .to_owned()
}

/// `dual_test!(body)` / `dual_test!(body, Type)`: the test body on SQLite and on PostgreSQL, each on a
/// fresh `Harness` of the calling file (see `roadwarden_testkit::dual_test!` for the contract).
#[allow(unused_imports)]
pub(crate) use roadwarden_testkit::dual_test;
