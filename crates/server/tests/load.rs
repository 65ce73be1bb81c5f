//! The API under load and through a database outage, over real HTTP on a real store: two reviewers
//! deciding the same violation at once beside 8 concurrent threshold PUTs, 100 rounds, on SQLite and on
//! PostgreSQL, with no 5xx; and PostgreSQL cut off behind a real TCP proxy: 503 with the JSON error (not
//! 500) everywhere the store is needed, login included, while `/metrics` still answers with the spool
//! depth, and everything answers again once the database is back.

mod common;

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use chrono::{TimeZone, Utc};
use common::{USERS, dual_test};
use reqwest::{Method, StatusCode};
use roadwarden_server::auth::{new_bearer_token, token_hash};
use roadwarden_server::{RecorderStatus, ServerConfig};
use roadwarden_store::{Role, Store, pgadmin};
use roadwarden_testkit::proxy::Proxy;
use roadwarden_types::ViolationKind;
use serde_json::{Value, json};

const ROUNDS: usize = 100;
const PUTS: usize = 8;
/// The second reviewer (the first is `rita`).
const RHEA: (&str, &str, Role) = ("rhea", "rhea-reviews-at-night", Role::Reviewer);

fn site() -> String {
    common::site_toml(&[common::camera_toml("cam-a", None, &[("no_helmet", 0.4)])])
}

struct Harness {
    base: String,
    http: reqwest::Client,
    store: Store,
    pg_name: Option<String>,
    server: common::Server,
    ids: Vec<String>,
    _dir: tempfile::TempDir,
}

/// A logged-in browser: cookie and CSRF token.
#[derive(Clone)]
struct Session {
    cookie: String,
    csrf: String,
}

impl Harness {
    async fn start(dialect: &'static str) -> Harness {
        let (dir, data) = common::temp_data();
        let (store, pg_name) = common::open_store(dialect, &data, "rw_load").await;
        common::put_users(&store, USERS.into_iter().chain([RHEA])).await;
        let mut ids = Vec::new();
        for i in 0..ROUNDS {
            let at = Utc
                .timestamp_opt(1_780_000_000 + i as i64, 0)
                .single()
                .expect("time");
            let v = common::violation("cam-a", ViolationKind::NoHelmet, at, 0.8);
            ids.push(v.id.0.to_string());
            common::insert(&store, v, vec![], common::hasher).await;
        }
        let server = common::Server::start(&store, &data, &site(), ServerConfig::default()).await;
        Harness {
            base: server.base.clone(),
            http: common::http_client(Duration::from_secs(60), false),
            store,
            pg_name,
            server,
            ids,
            _dir: dir,
        }
    }

    async fn login(&self, name: &str, password: &str) -> Session {
        let r = common::login(&self.http, &self.base, name, password, name).await;
        let cookie = common::session_cookie(&r);
        let body: Value = r.json().await.expect("login json");
        Session {
            cookie,
            csrf: body["csrf_token"].as_str().expect("csrf").to_owned(),
        }
    }

    async fn finish(mut self) {
        self.server.stop();
        common::close_store(&self.store, self.pg_name.take()).await;
    }
}

/// Sends one request as `who`; (what, status, body).
async fn call(
    what: &'static str,
    http: reqwest::Client,
    url: String,
    who: Session,
    method: Method,
    body: Value,
) -> (&'static str, StatusCode, String) {
    let r = http
        .request(method, url)
        .header("cookie", &who.cookie)
        .header("x-csrf-token", &who.csrf)
        .json(&body)
        .send()
        .await
        .expect("request");
    let status = r.status();
    (what, status, r.text().await.expect("body"))
}

/// Each round: rita and rhea decide the same pending violation at once while otto PUTs cam-a's
/// no_helmet threshold 8 times at once. Exactly one decision wins (200), the other is told the
/// violation is decided (409); every PUT is a 200; nothing is a 5xx.
async fn concurrent_reviews_and_threshold_puts(h: &Harness) {
    let rita = h.login(USERS[0].0, USERS[0].1).await;
    let rhea = h.login(RHEA.0, RHEA.1).await;
    let otto = h.login(USERS[1].0, USERS[1].1).await;
    let mut statuses: BTreeMap<(&str, u16), usize> = BTreeMap::new();
    let mut failures = Vec::new();
    for (round, id) in h.ids.iter().enumerate() {
        let mut set = tokio::task::JoinSet::new();
        let review = format!("{}/api/violations/{id}/review", h.base);
        for (who, decision) in [
            (&rita, json!({ "decision": "confirm" })),
            (
                &rhea,
                json!({ "decision": "reject", "reason": "helmet_worn" }),
            ),
        ] {
            set.spawn(call(
                "review",
                h.http.clone(),
                review.clone(),
                who.clone(),
                Method::POST,
                decision,
            ));
        }
        for i in 0..PUTS {
            set.spawn(call(
                "put",
                h.http.clone(),
                format!("{}/api/cameras/cam-a/thresholds/no_helmet", h.base),
                otto.clone(),
                Method::PUT,
                json!({ "value": 0.3 + 0.05 * i as f64 }),
            ));
        }
        for (what, s, body) in set.join_all().await {
            *statuses.entry((what, s.as_u16())).or_default() += 1;
            if s.is_server_error() {
                failures.push(format!("round {round}, {what}: {s} {body}"));
            }
        }
    }
    eprintln!("statuses by request kind: {statuses:?}");
    assert!(
        failures.is_empty(),
        "{} 5xx: {:?}",
        failures.len(),
        &failures[..failures.len().min(5)]
    );
    // Every violation was decided once: one 200 and one 409 per round; every PUT went in.
    assert_eq!(
        statuses.get(&("review", 200)),
        Some(&ROUNDS),
        "{statuses:?}"
    );
    assert_eq!(
        statuses.get(&("review", 409)),
        Some(&ROUNDS),
        "{statuses:?}"
    );
    assert_eq!(
        statuses.get(&("put", 200)),
        Some(&(ROUNDS * PUTS)),
        "{statuses:?}"
    );
    for id in &h.ids {
        assert_eq!(
            h.store.reviews_of(id).await.expect("reviews").len(),
            1,
            "{id}"
        );
    }
}
dual_test!(concurrent_reviews_and_threshold_puts);

/// PostgreSQL behind a proxy that the test cuts: while it is cut every endpoint that needs the store
/// answers 503 `store_unavailable` with a JSON error (login included), `/metrics` answers 200 from
/// memory (`roadwarden_store_up 0`, the spool depth), and after the restore everything answers again.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn database_outage_answers_503_and_metrics_keep_answering() {
    let name = format!("rw_outage_{}", uuid::Uuid::new_v4().simple());
    let direct = pgadmin::create_database(common::PG_ADMIN, &name)
        .await
        .expect("create pg database (PostgreSQL at 127.0.0.1:5432)");
    let proxy = Proxy::start("127.0.0.1:5432");
    let store = Store::connect(&proxy.url(&direct, "127.0.0.1:5432"))
        .await
        .expect("connect through the proxy");
    common::put_users(&store, USERS).await;
    let otto = store
        .user_by_name("otto")
        .await
        .expect("query")
        .expect("otto");
    let token = new_bearer_token();
    store
        .create_api_token(&otto, "prometheus", &token_hash(&token), "test")
        .await
        .expect("token");
    let (_dir, data) = common::temp_data();
    let v = common::violation(
        "cam-a",
        ViolationKind::NoHelmet,
        Utc.timestamp_opt(1_780_000_000, 0).single().expect("time"),
        0.8,
    );
    let id = v.id.0.to_string();
    common::insert(&store, v, vec![], common::hasher).await;
    let mut server = common::Server::start(&store, &data, &site(), ServerConfig::default()).await;
    server.state.camera_board().set_recorder(RecorderStatus {
        queued: 0,
        spooled: 3,
        recorded: BTreeMap::new(),
    });
    let http = common::http_client(Duration::from_secs(30), false);
    let base = server.base.clone();
    let (rita, rita_pw, _) = USERS[0];
    let r = common::login(&http, &base, rita, rita_pw, "rita before the outage").await;
    let cookie = common::session_cookie(&r);
    let body: Value = r.json().await.expect("json");
    let csrf = body["csrf_token"].as_str().expect("csrf").to_owned();
    let metrics = |http: reqwest::Client| {
        let (url, token) = (format!("{base}/metrics"), token.clone());
        async move {
            let r = http
                .get(url)
                .bearer_auth(token)
                .send()
                .await
                .expect("metrics");
            (r.status(), r.text().await.expect("text"))
        }
    };
    let (s, text) = metrics(http.clone()).await;
    assert_eq!(s, StatusCode::OK, "{text}");
    assert!(text.contains("roadwarden_store_up 1"), "{text}");
    assert!(
        text.contains(
            "roadwarden_violations{camera=\"cam-a\",kind=\"no_helmet\",status=\"pending\"} 1"
        ),
        "{text}"
    );

    proxy.cut();
    // (method, path, body, needs a session) of endpoints that need the store.
    let calls: Vec<(Method, String, Option<Value>, bool)> = vec![
        (Method::GET, "/api/violations".into(), None, true),
        (Method::GET, format!("/api/violations/{id}"), None, true),
        (
            Method::POST,
            format!("/api/violations/{id}/review"),
            Some(json!({ "decision": "confirm" })),
            true,
        ),
        (Method::GET, "/api/thresholds".into(), None, true),
        (
            Method::PUT,
            "/api/cameras/cam-a/thresholds/no_helmet".into(),
            Some(json!({ "value": 0.5 })),
            true,
        ),
        (
            Method::POST,
            "/api/login".into(),
            Some(json!({ "name": rita, "password": rita_pw })),
            false,
        ),
    ];
    for (method, path, body, session) in &calls {
        let mut rb = http.request(method.clone(), format!("{base}{path}"));
        if *session {
            rb = rb.header("cookie", &cookie).header("x-csrf-token", &csrf);
        }
        if let Some(b) = body {
            rb = rb.json(b);
        }
        let r = rb.send().await.expect("request");
        let status = r.status();
        let retry_after = r.headers().get("retry-after").cloned();
        let text = r.text().await.expect("body");
        assert_eq!(
            status,
            StatusCode::SERVICE_UNAVAILABLE,
            "{method} {path} during the outage: {text}"
        );
        let err: Value = serde_json::from_str(&text).expect("a JSON error body");
        assert_eq!(err["error"], "store_unavailable", "{method} {path}: {text}");
        let message = err["message"].as_str().expect("message");
        assert!(
            message.contains("store") && message.contains("retr"),
            "{message}"
        );
        assert!(retry_after.is_some(), "{method} {path}: Retry-After");
    }
    // A bearer token that never passed on /metrics gets no pass: 503, not a scrape.
    let stranger = http
        .get(format!("{base}/metrics"))
        .bearer_auth(new_bearer_token())
        .send()
        .await
        .expect("request");
    assert_eq!(stranger.status(), StatusCode::SERVICE_UNAVAILABLE);
    // /metrics answers from memory, with the spool depth and the last violation figures.
    let (s, text) = metrics(http.clone()).await;
    assert_eq!(s, StatusCode::OK, "{text}");
    assert!(text.contains("roadwarden_store_up 0"), "{text}");
    assert!(text.contains("roadwarden_spool_depth 3"), "{text}");
    assert!(
        text.contains(
            "roadwarden_violations{camera=\"cam-a\",kind=\"no_helmet\",status=\"pending\"} 1"
        ),
        "{text}"
    );
    assert!(
        !text.contains("status=\"500\""),
        "no request answered 500 during the outage: {text}"
    );

    proxy.restore();
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        let r = http
            .get(format!("{base}/api/violations"))
            .header("cookie", &cookie)
            .send()
            .await
            .expect("request");
        if r.status() == StatusCode::OK {
            break;
        }
        assert_eq!(r.status(), StatusCode::SERVICE_UNAVAILABLE);
        assert!(
            Instant::now() < deadline,
            "the API never came back after the restore"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    common::login(&http, &base, rita, rita_pw, "rita after the outage").await;
    let (s, text) = metrics(http.clone()).await;
    assert_eq!(s, StatusCode::OK, "{text}");
    assert!(text.contains("roadwarden_store_up 1"), "{text}");
    server.stop();
    store.close().await;
    pgadmin::drop_database(common::PG_ADMIN, &name)
        .await
        .expect("drop pg database");
}
