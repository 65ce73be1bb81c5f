//! The HTTP API over real HTTP: a server on 127.0.0.1:0 over a real store
//! (an SQLite file, or a PostgreSQL database of its own at 127.0.0.1:5432),
//! violations seeded through the store's insert with real files on disk, and
//! a real HTTP client. Every test body runs on both dialects.

mod common;

use std::collections::BTreeMap;
use std::time::Duration;

use chrono::{TimeZone, Utc};
use common::{USERS, dual_test};
use reqwest::{Method, StatusCode};
use roadwarden_server::auth::{new_bearer_token, token_hash};
use roadwarden_server::{
    AppState, CameraStatus, Event, InferenceCameraStatus, InferenceStatus, ServerConfig,
};
use roadwarden_store::*;
use roadwarden_types::{CameraId, FrameRole, Violation, ViolationId, ViolationKind};
use serde_json::{Value, json};
use sha2::{Digest, Sha256};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

/// cam-a (with an RTSP source and two configured thresholds) and cam-b.
fn site() -> String {
    common::site_toml(&[
        common::camera_toml(
            "cam-a",
            Some("rtsp://viewer:hunter2@10.0.0.7:554/stream"),
            &[("no_helmet", 0.4), ("two_wheeler", 0.3)],
        ),
        common::camera_toml("cam-b", None, &[]),
    ])
}

/// Who calls.
#[derive(Debug, Clone)]
enum Caller {
    Anon,
    /// A logged-in browser: cookie and CSRF token.
    Session {
        role: &'static str,
        cookie: String,
        csrf: String,
    },
    /// A machine's bearer token (an ops user).
    Bearer(String),
}

impl Caller {
    fn name(&self) -> String {
        match self {
            Caller::Anon => "anonymous".into(),
            Caller::Session { role, .. } => format!("{role} (session)"),
            Caller::Bearer(_) => "ops (bearer)".into(),
        }
    }
}

struct Seeded {
    id: String,
    camera: String,
    kind: ViolationKind,
    occurred_at_us: i64,
    /// (relative path, bytes)
    files: Vec<(String, Vec<u8>)>,
}

struct Harness {
    base: String,
    addr: std::net::SocketAddr,
    http: reqwest::Client,
    store: Store,
    data: DataDir,
    state: AppState,
    seeded: Vec<Seeded>,
    ops_token: String,
    dialect: &'static str,
    pg_name: Option<String>,
    server: common::Server,
    _dir: tempfile::TempDir,
}

fn role_user(role: &str) -> (&'static str, &'static str) {
    let (n, p, _) = USERS
        .iter()
        .find(|(_, _, r)| r.as_str() == role)
        .expect("known role");
    (n, p)
}

async fn seed(
    store: &Store,
    data: &DataDir,
    camera: &str,
    kind: ViolationKind,
    at_s: i64,
    conf: f32,
) -> Seeded {
    let v = Violation {
        plate_read: None,
        thresholds: BTreeMap::from([("class.no_helmet".to_owned(), 0.4)]),
        ..common::violation(
            camera,
            kind,
            Utc.timestamp_opt(1_780_000_000 + at_s, 0)
                .single()
                .expect("time"),
            conf,
        )
    };
    let id = v.id.0.to_string();
    let mut files = Vec::new();
    let mut evidence = Vec::new();
    for (name, kind, role) in [
        ("key.jpg", EvidenceKind::Photo, Some(FrameRole::Key)),
        ("clip.mp4", EvidenceKind::Clip, None),
    ] {
        let rel = format!("evidence/{camera}/{id}/{name}");
        let bytes = common::evidence_bytes(name, &id, 3000);
        evidence.push(common::write_evidence(data, &rel, &bytes, kind, role));
        files.push((rel, bytes));
    }
    let occurred_at_us = to_micros(v.occurred_at);
    let out = common::insert(store, v, evidence, common::hasher).await;
    assert!(matches!(out, InsertOutcome::Inserted { .. }));
    Seeded {
        id,
        camera: camera.to_owned(),
        kind,
        occurred_at_us,
        files,
    }
}

impl Harness {
    async fn start(dialect: &'static str) -> Harness {
        Harness::start_with(
            dialect,
            ServerConfig {
                max_failures_per_name: 3,
                max_failures_per_remote: 8,
                max_body_bytes: 16 * 1024,
                // The test client is the "proxy": requests with X-Forwarded-For count per client.
                trusted_proxies: vec![std::net::Ipv4Addr::LOCALHOST.into()],
                ..ServerConfig::default()
            },
        )
        .await
    }

    async fn start_with(dialect: &'static str, config: ServerConfig) -> Harness {
        let (dir, data) = common::temp_data();
        let (store, pg_name) = common::open_store(dialect, &data, "rw_server").await;
        common::put_users(&store, USERS).await;
        let ops_token = new_bearer_token();
        let otto = store
            .user_by_name("otto")
            .await
            .expect("query")
            .expect("otto");
        store
            .create_api_token(&otto, "prometheus", &token_hash(&ops_token), "test")
            .await
            .expect("token");
        let mut seeded = Vec::new();
        for i in 0..6 {
            seeded.push(
                seed(
                    &store,
                    &data,
                    "cam-a",
                    ViolationKind::NoHelmet,
                    i * 60,
                    0.5 + i as f32 * 0.05,
                )
                .await,
            );
        }
        for i in 0..3 {
            seeded.push(
                seed(
                    &store,
                    &data,
                    "cam-b",
                    ViolationKind::RedLight,
                    30 + i * 60,
                    0.9,
                )
                .await,
            );
        }
        let server = common::Server::start(&store, &data, &site(), config).await;
        let http = common::http_client(Duration::from_secs(20), false);
        Harness {
            base: server.base.clone(),
            addr: server.addr,
            http,
            store,
            data,
            state: server.state.clone(),
            seeded,
            ops_token,
            dialect,
            pg_name,
            server,
            _dir: dir,
        }
    }

    async fn login(&self, role: &'static str) -> Caller {
        let (name, pw) = role_user(role);
        let r = common::login(&self.http, &self.base, name, pw, &format!("{role} login")).await;
        let set = r
            .headers()
            .get("set-cookie")
            .expect("set-cookie")
            .to_str()
            .expect("ascii")
            .to_owned();
        assert!(set.contains("HttpOnly"), "{set}");
        assert!(set.contains("SameSite=Strict"), "{set}");
        assert!(!set.contains("Secure"), "Secure is off by default: {set}");
        let cookie = common::session_cookie(&r);
        let body: Value = r.json().await.expect("json");
        assert_eq!(body["role"], role);
        Caller::Session {
            role,
            cookie,
            csrf: body["csrf_token"].as_str().expect("csrf").to_owned(),
        }
    }

    fn request(&self, caller: &Caller, method: Method, path: &str) -> reqwest::RequestBuilder {
        let rb = self.http.request(method, format!("{}{path}", self.base));
        match caller {
            Caller::Anon => rb,
            Caller::Session { cookie, csrf, .. } => {
                rb.header("cookie", cookie).header("x-csrf-token", csrf)
            }
            Caller::Bearer(t) => rb.bearer_auth(t),
        }
    }

    async fn call(
        &self,
        caller: &Caller,
        method: Method,
        path: &str,
        body: Option<Value>,
    ) -> (StatusCode, Value) {
        let mut rb = self.request(caller, method, path);
        if let Some(b) = body {
            rb = rb.json(&b);
        }
        let r = rb.send().await.expect("request");
        let status = r.status();
        let text = r.text().await.expect("body");
        (
            status,
            serde_json::from_str(&text).unwrap_or(Value::String(text)),
        )
    }

    async fn get(&self, caller: &Caller, path: &str) -> (StatusCode, Value) {
        self.call(caller, Method::GET, path, None).await
    }

    /// A raw HTTP/1.1 request, sent byte for byte (no client-side normalisation of the path).
    async fn raw(&self, request_line_path: &str, headers: &str) -> u16 {
        let mut s = tokio::net::TcpStream::connect(self.addr)
            .await
            .expect("connect");
        let req = format!(
            "GET {request_line_path} HTTP/1.1\r\nHost: {}\r\n{headers}Connection: close\r\n\r\n",
            self.addr
        );
        s.write_all(req.as_bytes()).await.expect("write");
        let mut buf = Vec::new();
        tokio::time::timeout(Duration::from_secs(10), s.read_to_end(&mut buf))
            .await
            .expect("answer in time")
            .expect("read");
        let text = String::from_utf8_lossy(&buf);
        text.split_whitespace()
            .nth(1)
            .and_then(|c| c.parse().ok())
            .unwrap_or_else(|| panic!("no status line in {text:?}"))
    }

    async fn finish(mut self) {
        self.server.stop();
        common::close_store(&self.store, self.pg_name.take()).await;
    }
}

// ---------------------------------------------------------------- the authorisation matrix

/// Expected status for anonymous, reviewer, ops, admin; the bearer column (ops) expects the ops value.
struct Row {
    method: Method,
    path: String,
    body: Option<Value>,
    expect: [u16; 4],
}

async fn authorisation_matrix(h: &Harness) {
    let callers = [
        Caller::Anon,
        h.login("reviewer").await,
        h.login("ops").await,
        h.login("admin").await,
        Caller::Bearer(h.ops_token.clone()),
    ];
    let v0 = &h.seeded[0].id;
    let detail = h.get(&callers[3], &format!("/api/violations/{v0}")).await.1;
    let ev = detail["evidence"][0]["id"].as_i64().expect("evidence id");
    // Review targets: a fresh pending violation per caller, so an allowed call always succeeds.
    let pending: Vec<String> = h.seeded[1..6].iter().map(|s| s.id.clone()).collect();
    // A decided violation per caller for reopen: the admin's must succeed.
    let decided: Vec<String> = h.seeded[6..9].iter().map(|s| s.id.clone()).collect();
    for id in &decided {
        assert!(matches!(
            h.store
                .decide(id, "rita", Decision::Confirm, "", "")
                .await
                .expect("decide"),
            DecideOutcome::Changed { .. }
        ));
    }
    let ok = |code: u16| [401, code, code, code];
    let mut rows = vec![
        Row {
            method: Method::GET,
            path: "/healthz".into(),
            body: None,
            expect: [200; 4],
        },
        Row {
            method: Method::GET,
            path: "/readyz".into(),
            body: None,
            expect: [200; 4],
        },
        Row {
            method: Method::GET,
            path: "/metrics".into(),
            body: None,
            expect: ok(200),
        },
        Row {
            method: Method::GET,
            path: "/api/openapi.json".into(),
            body: None,
            expect: ok(200),
        },
        Row {
            method: Method::GET,
            path: "/api/me".into(),
            body: None,
            expect: ok(200),
        },
        Row {
            method: Method::GET,
            path: "/api/users".into(),
            body: None,
            expect: [401, 403, 403, 200],
        },
        Row {
            method: Method::GET,
            path: "/api/audit".into(),
            body: None,
            expect: [401, 403, 403, 200],
        },
        Row {
            method: Method::POST,
            path: "/api/users".into(),
            body: Some(
                json!({ "name": "newbie", "role": "reviewer", "password": "a-long-enough-password" }),
            ),
            expect: [401, 403, 403, 201],
        },
        Row {
            method: Method::GET,
            path: "/api/violations".into(),
            body: None,
            expect: ok(200),
        },
        Row {
            method: Method::GET,
            path: format!("/api/violations/{v0}"),
            body: None,
            expect: ok(200),
        },
        Row {
            method: Method::GET,
            path: format!("/api/violations/{v0}/package.zip"),
            body: None,
            expect: ok(200),
        },
        Row {
            method: Method::GET,
            path: "/api/export/violations.csv?status=pending".into(),
            body: None,
            expect: ok(200),
        },
        Row {
            method: Method::GET,
            path: "/api/review-reasons".into(),
            body: None,
            expect: ok(200),
        },
        Row {
            method: Method::GET,
            path: format!("/api/evidence/{ev}"),
            body: None,
            expect: ok(200),
        },
        Row {
            method: Method::GET,
            path: "/api/cameras".into(),
            body: None,
            expect: ok(200),
        },
        Row {
            method: Method::GET,
            path: "/api/cameras/cam-a".into(),
            body: None,
            expect: ok(200),
        },
        Row {
            method: Method::GET,
            path: "/api/thresholds".into(),
            body: None,
            expect: ok(200),
        },
        Row {
            method: Method::GET,
            path: "/api/cameras/cam-a/thresholds".into(),
            body: None,
            expect: ok(200),
        },
        Row {
            method: Method::PUT,
            path: "/api/cameras/cam-a/thresholds/no_helmet".into(),
            body: Some(json!({ "value": 0.55 })),
            expect: [401, 403, 200, 200],
        },
        // No camera runs in this harness: allowed callers hear 503.
        Row {
            method: Method::POST,
            path: "/api/cameras/reload".into(),
            body: None,
            expect: [401, 403, 403, 503],
        },
        Row {
            method: Method::POST,
            path: "/api/cameras/cam-a/signal".into(),
            body: Some(json!({ "state": "red" })),
            expect: [401, 403, 503, 503],
        },
        Row {
            method: Method::GET,
            path: "/api/cameras/cam-a/pipeline".into(),
            body: None,
            expect: ok(200),
        },
        Row {
            method: Method::GET,
            path: "/api/cameras/cam-a/thresholds/no_helmet/preview?value=0.5&days=30".into(),
            body: None,
            expect: [401, 403, 200, 200],
        },
        Row {
            method: Method::GET,
            path: "/api/history".into(),
            body: None,
            expect: ok(200),
        },
        Row {
            method: Method::GET,
            path: "/api/stats".into(),
            body: None,
            expect: [401, 403, 200, 200],
        },
        Row {
            method: Method::PUT,
            path: "/api/me/time-zone".into(),
            body: Some(json!({ "time_zone": "Europe/Berlin" })),
            expect: ok(200),
        },
        Row {
            method: Method::POST,
            path: "/api/queue/next?camera=no-such-camera".into(),
            body: None,
            expect: [401, 200, 403, 200],
        },
    ];
    let mut cells = 0;
    for row in rows.drain(..) {
        for (i, c) in callers.iter().enumerate() {
            let want = row.expect[if i == 4 { 2 } else { i }];
            let (got, body) = h
                .call(c, row.method.clone(), &row.path, row.body.clone())
                .await;
            assert_eq!(
                got.as_u16(),
                want,
                "{} {} as {}: {body}",
                row.method,
                row.path,
                c.name()
            );
            cells += 1;
        }
    }
    // Review: one fresh pending violation per caller.
    let review_expect = [401, 200, 403, 200, 403];
    for (i, c) in callers.iter().enumerate() {
        let path = format!("/api/violations/{}/review", pending[i]);
        let (got, body) = h
            .call(
                c,
                Method::POST,
                &path,
                Some(json!({ "decision": "confirm" })),
            )
            .await;
        assert_eq!(
            got.as_u16(),
            review_expect[i],
            "POST {path} as {}: {body}",
            c.name()
        );
        let st = h
            .store
            .get(&pending[i])
            .await
            .expect("get")
            .expect("row")
            .status;
        let want = if review_expect[i] == 200 {
            Status::Confirmed
        } else {
            Status::Pending
        };
        assert_eq!(st, want, "status after review as {}", c.name());
        cells += 1;
    }
    // Reopen: admin only; the refused callers try the first decided violation, the admin the second.
    let reopen_expect = [401, 403, 403, 200, 403];
    for (i, c) in callers.iter().enumerate() {
        let target = if i == 3 { &decided[1] } else { &decided[0] };
        let path = format!("/api/violations/{target}/reopen");
        let (got, body) = h
            .call(
                c,
                Method::POST,
                &path,
                Some(json!({ "note": "second look" })),
            )
            .await;
        assert_eq!(
            got.as_u16(),
            reopen_expect[i],
            "POST {path} as {}: {body}",
            c.name()
        );
        cells += 1;
    }
    assert_eq!(
        h.store
            .get(&decided[0])
            .await
            .expect("get")
            .expect("row")
            .status,
        Status::Confirmed
    );
    assert_eq!(
        h.store
            .get(&decided[1])
            .await
            .expect("get")
            .expect("row")
            .status,
        Status::Pending
    );
    // Logout: every caller with credentials; afterwards the session no longer works.
    let logout_expect = [401, 204, 204, 204, 204];
    for (i, c) in callers.iter().enumerate() {
        let (got, body) = h.call(c, Method::POST, "/api/logout", None).await;
        assert_eq!(
            got.as_u16(),
            logout_expect[i],
            "POST /api/logout as {}: {body}",
            c.name()
        );
        cells += 1;
        if let Caller::Session { .. } = c {
            let (after, _) = h.get(c, "/api/me").await;
            assert_eq!(
                after,
                StatusCode::UNAUTHORIZED,
                "session of {} survives logout",
                c.name()
            );
        }
    }
    assert_eq!(cells, 30 * 5, "every endpoint × every caller");
    // Logout with a bearer token revokes that token.
    assert_eq!(
        h.get(&callers[4], "/api/me").await.0,
        StatusCode::UNAUTHORIZED,
        "a bearer token survives its logout"
    );
}
dual_test!(authorisation_matrix);

// ---------------------------------------------------------------- violations

async fn list_filters_and_pages(h: &Harness) {
    let r = h.login("reviewer").await;
    // All nine, oldest first, across pages of two.
    let mut seen = Vec::new();
    let mut after: Option<String> = None;
    for _ in 0..20 {
        let path = match &after {
            Some(a) => format!("/api/violations?limit=2&after={a}"),
            None => "/api/violations?limit=2".to_owned(),
        };
        let (s, body) = h.get(&r, &path).await;
        assert_eq!(s, StatusCode::OK, "{body}");
        for it in body["items"].as_array().expect("items") {
            seen.push((
                it["occurred_at_us"].as_i64().expect("t"),
                it["id"].as_str().expect("id").to_owned(),
            ));
            assert_eq!(
                it["href"],
                format!("/api/violations/{}", it["id"].as_str().expect("id"))
            );
        }
        match body["next"].as_str() {
            Some(n) => after = Some(n.to_owned()),
            None => break,
        }
    }
    let mut expected: Vec<(i64, String)> = h
        .seeded
        .iter()
        .map(|s| (s.occurred_at_us, s.id.clone()))
        .collect();
    expected.sort();
    assert_eq!(
        seen, expected,
        "keyset pages cover every violation once, in order"
    );

    let count = |body: &Value| body["items"].as_array().expect("items").len();
    let (_, b) = h.get(&r, "/api/violations?kind=red_light").await;
    assert_eq!(count(&b), 3);
    assert!(
        b["items"]
            .as_array()
            .expect("items")
            .iter()
            .all(|i| i["kind"] == "red_light" && i["camera"] == "cam-b")
    );
    let (_, b) = h
        .get(&r, "/api/violations?camera=cam-a&kind=no_helmet")
        .await;
    assert_eq!(count(&b), 6);
    let (_, b) = h
        .get(&r, "/api/violations?camera=cam-a&kind=red_light")
        .await;
    assert_eq!(count(&b), 0);
    // Time window [t1, t3) by RFC 3339 and by microseconds.
    let cam_a: Vec<&Seeded> = h.seeded.iter().filter(|s| s.camera == "cam-a").collect();
    let t1 = roadwarden_store::from_micros(cam_a[1].occurred_at_us).to_rfc3339();
    let t3 = cam_a[3].occurred_at_us;
    let (s, b) = h
        .get(
            &r,
            &format!(
                "/api/violations?camera=cam-a&from={}&to={t3}",
                t1.replace('+', "%2B")
            ),
        )
        .await;
    assert_eq!(s, StatusCode::OK, "{b}");
    let ids: Vec<&str> = b["items"]
        .as_array()
        .expect("items")
        .iter()
        .map(|i| i["id"].as_str().expect("id"))
        .collect();
    assert_eq!(ids, vec![cam_a[1].id.as_str(), cam_a[2].id.as_str()]);
    // Status: decide one, then filter.
    h.store
        .decide(&cam_a[0].id, "rita", Decision::Reject, "helmet_worn", "")
        .await
        .expect("decide");
    let (_, b) = h.get(&r, "/api/violations?status=rejected").await;
    assert_eq!(count(&b), 1);
    assert_eq!(b["items"][0]["id"], cam_a[0].id.as_str());
    let (_, b) = h.get(&r, "/api/violations?status=pending").await;
    assert_eq!(count(&b), 8);

    // Bad and hostile filters: 400 or an empty answer, never a 500.
    for bad in [
        "status=open",
        "kind=speeding",
        "from=yesterday",
        "to=2026-13-45T00:00:00Z",
        "after=not-a-cursor",
        "after=12_notauuid",
        "limit=0",
        "limit=100000",
        "limit=-1",
        "limit=abc",
    ] {
        let (s, b) = h.get(&r, &format!("/api/violations?{bad}")).await;
        assert_eq!(s, StatusCode::BAD_REQUEST, "{bad}: {b}");
        assert!(b["error"].is_string(), "{bad}: {b}");
    }
    let long = "x".repeat(500);
    let (s, _) = h.get(&r, &format!("/api/violations?camera={long}")).await;
    assert_eq!(s, StatusCode::BAD_REQUEST);
    for hostile in [
        "%27%20OR%20%271%27%3D%271",
        "cam-a%27%3B%20DROP%20TABLE%20violations%3B%20--",
        "%E2%80%AE%F0%9F%9A%B2",
        "..%2F..%2Fetc%2Fpasswd",
        "%25s%25n%25x",
    ] {
        let (s, b) = h
            .get(&r, &format!("/api/violations?camera={hostile}"))
            .await;
        assert_eq!(s, StatusCode::OK, "{hostile}: {b}");
        assert_eq!(count(&b), 0, "{hostile}");
    }
    assert_eq!(
        h.store.count_violations().await.expect("count"),
        9,
        "nothing dropped"
    );
}
dual_test!(list_filters_and_pages);

async fn detail_and_evidence(h: &Harness) {
    let r = h.login("reviewer").await;
    let s0 = &h.seeded[6];
    let (st, d) = h.get(&r, &format!("/api/violations/{}", s0.id)).await;
    assert_eq!(st, StatusCode::OK, "{d}");
    assert_eq!(d["camera"], "cam-b");
    assert_eq!(d["kind"], s0.kind.as_str());
    assert_eq!(d["status"], "pending");
    assert_eq!(d["thresholds"]["class.no_helmet"], 0.4);
    let ev = d["evidence"].as_array().expect("evidence");
    assert_eq!(ev.len(), 2);
    for e in ev {
        let href = e["href"].as_str().expect("href");
        let resp = h
            .request(&r, Method::GET, href)
            .send()
            .await
            .expect("download");
        assert_eq!(resp.status(), StatusCode::OK);
        let ct = resp.headers()["content-type"]
            .to_str()
            .expect("ct")
            .to_owned();
        assert_eq!(
            resp.headers()["x-evidence-sha256"].to_str().expect("sha"),
            e["sha256"].as_str().expect("sha")
        );
        let bytes = resp.bytes().await.expect("bytes");
        let (path, want) = s0
            .files
            .iter()
            .find(|(p, _)| {
                hex::encode(Sha256::digest(&bytes)) == e["sha256"]
                    && p.ends_with(if ct == "video/mp4" {
                        "clip.mp4"
                    } else {
                        "key.jpg"
                    })
            })
            .expect("the served bytes are one of this violation's files");
        assert_eq!(&bytes[..], &want[..], "{path}");
        assert!(ct == "image/jpeg" || ct == "video/mp4", "{ct}");
    }
    // Unknown and malformed ids.
    let (st, _) = h
        .get(&r, &format!("/api/violations/{}", uuid::Uuid::now_v7()))
        .await;
    assert_eq!(st, StatusCode::NOT_FOUND);
    let (st, _) = h.get(&r, "/api/violations/not-a-uuid").await;
    assert_eq!(st, StatusCode::BAD_REQUEST);
    assert_eq!(
        h.get(&r, "/api/evidence/999999").await.0,
        StatusCode::NOT_FOUND
    );
    for bad in ["0", "-1", "abc", "1.5", "99999999999999999999999"] {
        assert_eq!(
            h.get(&r, &format!("/api/evidence/{bad}")).await.0,
            StatusCode::BAD_REQUEST,
            "{bad}"
        );
    }

    // Path traversal, sent raw so no client normalises it: refused, never a file, never a 500.
    let Caller::Session { cookie, .. } = &r else {
        unreachable!()
    };
    let hdr = format!("Cookie: {cookie}\r\n");
    for p in [
        "/api/evidence/../../../../etc/passwd",
        "/api/evidence/..%2F..%2F..%2Fetc%2Fpasswd",
        "/api/evidence/%2e%2e%2f%2e%2e%2froadwarden.sqlite3",
        "/api/evidence/1%00.jpg",
        "/api/evidence/1/../../../etc/passwd",
        "/api/evidence//etc/passwd",
        "/api/evidence/evidence%2Fcam-a%2Fx%2Fkey.jpg",
        "/api/../evidence/cam-a",
        "/evidence/cam-a",
    ] {
        let code = h.raw(p, &hdr).await;
        assert!(matches!(code, 400 | 404), "{p}: {code}");
    }

    // A row whose stored path leaves the data folder, and one whose file is a link out of it:
    // the server refuses both (the path of a row is never trusted).
    let outside = h.data.root().parent().expect("parent").join("secret.txt");
    std::fs::write(&outside, b"not evidence").expect("write");
    let evil = Violation {
        plate_read: None,
        id: ViolationId::new(),
        kind: ViolationKind::NoHelmet,
        camera: CameraId::new("cam-a"),
        track_id: 1,
        occurred_at: Utc::now(),
        confidence: 0.9,
        frames: vec![],
        signal: vec![],
        thresholds: BTreeMap::new(),
    };
    let link_rel = format!("evidence/cam-a/{}/link.jpg", evil.id.0);
    let link_abs = h.data.resolve(&link_rel).expect("inside");
    std::fs::create_dir_all(link_abs.parent().expect("parent")).expect("mkdir");
    std::os::unix::fs::symlink(&outside, &link_abs).expect("symlink");
    let evil_id = evil.id.0.to_string();
    h.store
        .insert(
            &NewViolation {
                violation: evil,
                evidence: vec![
                    EvidenceItem::new(
                        EvidenceKind::Photo,
                        Some(FrameRole::Key),
                        "../secret.txt".into(),
                        "00".into(),
                        12,
                    ),
                    EvidenceItem::new(
                        EvidenceKind::Raw,
                        Some(FrameRole::Key),
                        link_rel,
                        "00".into(),
                        12,
                    ),
                ],
            },
            common::hasher,
        )
        .await
        .expect("insert hostile rows");
    let (_, d) = h.get(&r, &format!("/api/violations/{evil_id}")).await;
    for e in d["evidence"].as_array().expect("evidence") {
        let (st, body) = h.get(&r, e["href"].as_str().expect("href")).await;
        assert_eq!(st, StatusCode::NOT_FOUND, "{e}: {body}");
        assert!(!body.to_string().contains("not evidence"));
    }

    // A missing file is a 404; a purged one is 410.
    let s1 = &h.seeded[7];
    std::fs::remove_file(h.data.resolve(&s1.files[0].0).expect("inside")).expect("rm");
    let (_, d1) = h.get(&r, &format!("/api/violations/{}", s1.id)).await;
    assert!(s1.files[0].0.ends_with("key.jpg"));
    let missing = d1["evidence"]
        .as_array()
        .expect("ev")
        .iter()
        .find(|e| e["kind"] == "photo")
        .expect("row");
    assert_eq!(
        h.get(&r, missing["href"].as_str().expect("href")).await.0,
        StatusCode::NOT_FOUND
    );
    let s2 = &h.seeded[8];
    let (_, d2) = h.get(&r, &format!("/api/violations/{}", s2.id)).await;
    h.store
        .decide(&s2.id, "rita", Decision::Reject, "duplicate", "")
        .await
        .expect("decide");
    let report = h
        .store
        .purge(&h.data, Status::Rejected, Utc::now(), "retention")
        .await
        .expect("purge");
    assert_eq!(report.tombstoned, vec![s2.id.clone()]);
    let old_href = d2["evidence"][0]["href"].as_str().expect("href").to_owned();
    assert_eq!(h.get(&r, &old_href).await.0, StatusCode::GONE);
    let (_, d2) = h.get(&r, &format!("/api/violations/{}", s2.id)).await;
    assert_eq!(d2["tombstoned"], true);
    assert!(d2["evidence"][0]["href"].is_null());
}
dual_test!(detail_and_evidence);

async fn audit_log_api(h: &Harness) {
    let rev = h.login("reviewer").await;
    let ops = h.login("ops").await;
    let admin = h.login("admin").await;
    let v = &h.seeded[0].id;
    let (s, b) = h
        .call(
            &rev,
            Method::POST,
            &format!("/api/violations/{v}/review"),
            Some(json!({ "decision": "confirm" })),
        )
        .await;
    assert_eq!(s, StatusCode::OK, "{b}");
    let (s, b) = h
        .call(
            &ops,
            Method::PUT,
            "/api/cameras/cam-a/thresholds/no_helmet",
            Some(json!({ "value": 0.6 })),
        )
        .await;
    assert_eq!(s, StatusCode::OK, "{b}");
    // Newest first, with who, what, and the states as JSON.
    let (s, b) = h.get(&admin, "/api/audit").await;
    assert_eq!(s, StatusCode::OK, "{b}");
    let items = b["items"].as_array().expect("items");
    let (reviewer, ops_name) = (role_user("reviewer").0, role_user("ops").0);
    assert_eq!(
        (items[0]["actor"].as_str(), items[0]["action"].as_str()),
        (Some(ops_name), Some("threshold")),
        "{b}"
    );
    assert_eq!(items[0]["after"]["value"], 0.6, "{b}");
    assert_eq!(
        (items[1]["actor"].as_str(), items[1]["action"].as_str()),
        (Some(reviewer), Some("review"))
    );
    assert_eq!(items[1]["violation"].as_str(), Some(v.as_str()));
    assert_eq!(items[1]["before"]["status"], "pending");
    assert_eq!(items[1]["after"]["status"], "confirmed");
    assert!(
        items[0]["at"].as_str().is_some_and(|t| t.ends_with('Z')),
        "{b}"
    );
    assert!(b["next"].is_null(), "one page holds it all: {b}");
    // One violation's entries; a page at a time, each entry once.
    let (_, mine) = h.get(&admin, &format!("/api/audit?violation={v}")).await;
    let mine = mine["items"].as_array().expect("items").clone();
    assert_eq!(mine.len(), 1);
    assert_eq!(mine[0]["id"], items[1]["id"]);
    let mut walked = Vec::new();
    let mut path = "/api/audit?limit=1".to_owned();
    for _ in 0..(items.len() + 2) {
        let (s, page) = h.get(&admin, &path).await;
        assert_eq!(s, StatusCode::OK, "{page}");
        walked.extend(
            page["items"]
                .as_array()
                .expect("items")
                .iter()
                .map(|i| i["id"].clone()),
        );
        match page["next"].as_str() {
            Some(n) => path = format!("/api/audit?limit=1&after={n}"),
            None => break,
        }
    }
    let all: Vec<Value> = items.iter().map(|i| i["id"].clone()).collect();
    assert_eq!(walked, all);
    // Bad queries are 400 with a message; only admins read it.
    for q in [
        "limit=0",
        "limit=501",
        "limit=x",
        "after=-3",
        "after=abc",
        "violation=nope",
    ] {
        let (s, b) = h.get(&admin, &format!("/api/audit?{q}")).await;
        assert_eq!(s, StatusCode::BAD_REQUEST, "{q}: {b}");
        assert!(b["message"].as_str().is_some_and(|m| !m.is_empty()), "{b}");
    }
    assert_eq!(h.get(&ops, "/api/audit").await.0, StatusCode::FORBIDDEN);
}
dual_test!(audit_log_api);

async fn review_decisions(h: &Harness) {
    let mut events = h.state.events();
    let rev = h.login("reviewer").await;
    let admin = h.login("admin").await;
    let v = &h.seeded[0].id;
    let path = format!("/api/violations/{v}/review");
    // Rejections need a known reason code; confirmations take none.
    for (body, want) in [
        (json!({ "decision": "reject" }), 400),
        (json!({ "decision": "reject", "reason": "looks fine" }), 400),
        (
            json!({ "decision": "confirm", "reason": "helmet_worn" }),
            400,
        ),
        (json!({ "decision": "maybe" }), 422),
        (json!({ "decision": "confirm", "extra": 1 }), 422),
        (
            json!({ "decision": "confirm", "note": "x".repeat(2001) }),
            400,
        ),
    ] {
        let (s, b) = h.call(&rev, Method::POST, &path, Some(body.clone())).await;
        assert_eq!(s.as_u16(), want, "{body}: {b}");
    }
    // Reasons are per kind: the signal is no reason to reject a helmet case, a helmet none for a
    // red-light case; the answer names the kind's reasons. The list says so too.
    let (s, b) = h
        .call(
            &rev,
            Method::POST,
            &path,
            Some(json!({ "decision": "reject", "reason": "signal_not_red" })),
        )
        .await;
    let msg = b["message"].as_str().unwrap_or_default();
    assert_eq!(s, StatusCode::BAD_REQUEST, "{b}");
    assert!(
        msg.contains("`signal_not_red` is not a reason for a no_helmet violation")
            && msg.contains("helmet_worn")
            && !msg
                .contains("one of not_a_violation, helmet_worn, not_two_wheeler, signal_not_red"),
        "{b}"
    );
    let red = &h.seeded[7].id;
    let (s, b) = h
        .call(
            &rev,
            Method::POST,
            &format!("/api/violations/{red}/review"),
            Some(json!({ "decision": "reject", "reason": "helmet_worn" })),
        )
        .await;
    assert_eq!(s, StatusCode::BAD_REQUEST, "{b}");
    assert!(
        b["message"]
            .as_str()
            .unwrap_or_default()
            .contains("signal_not_red"),
        "{b}"
    );
    let (s, reasons) = h.get(&rev, "/api/review-reasons").await;
    assert_eq!(s, StatusCode::OK);
    for kind in ViolationKind::ALL {
        assert_eq!(
            reasons["by_kind"][kind.as_str()],
            json!(kind.reject_reasons()),
            "{reasons}"
        );
    }
    assert_eq!(reasons["reject"], json!(roadwarden_server::REJECT_REASONS));
    // Ids are case-insensitive: the upper-case form of the id decides the same violation.
    let upper = format!("/api/violations/{}/review", v.to_uppercase());
    let (s, b) = h.call(&rev, Method::POST, &upper, Some(json!({ "decision": "reject", "reason": "helmet_worn", "note": "cap, not a helmet?" }))).await;
    assert_eq!(s, StatusCode::OK, "{b}");
    assert_eq!(b["status"], "rejected");
    assert_eq!(b["id"].as_str(), Some(v.as_str()), "{b}");
    let (s, b) = h
        .get(&rev, &format!("/api/violations/{}", v.to_uppercase()))
        .await;
    assert_eq!(
        (s, b["id"].as_str()),
        (StatusCode::OK, Some(v.as_str())),
        "{b}"
    );
    // Final: a second decision, by anyone, is a conflict.
    let (s, b) = h
        .call(
            &rev,
            Method::POST,
            &path,
            Some(json!({ "decision": "confirm" })),
        )
        .await;
    assert_eq!(s, StatusCode::CONFLICT, "{b}");
    let (s, _) = h
        .call(
            &admin,
            Method::POST,
            &path,
            Some(json!({ "decision": "confirm" })),
        )
        .await;
    assert_eq!(s, StatusCode::CONFLICT);
    // An admin reopens, then the decision can be made again.
    let (s, b) = h
        .call(
            &admin,
            Method::POST,
            &format!("/api/violations/{v}/reopen"),
            Some(json!({ "note": "appeal" })),
        )
        .await;
    assert_eq!(s, StatusCode::OK, "{b}");
    let (s, _) = h
        .call(
            &admin,
            Method::POST,
            &format!("/api/violations/{v}/reopen"),
            Some(json!({})),
        )
        .await;
    assert_eq!(s, StatusCode::CONFLICT, "already pending");
    let (s, _) = h
        .call(
            &rev,
            Method::POST,
            &path,
            Some(json!({ "decision": "confirm" })),
        )
        .await;
    assert_eq!(s, StatusCode::OK);
    // Unknown and malformed ids.
    let (s, _) = h
        .call(
            &rev,
            Method::POST,
            &format!("/api/violations/{}/review", uuid::Uuid::now_v7()),
            Some(json!({ "decision": "confirm" })),
        )
        .await;
    assert_eq!(s, StatusCode::NOT_FOUND);
    let (s, _) = h
        .call(
            &rev,
            Method::POST,
            "/api/violations/nope/review",
            Some(json!({ "decision": "confirm" })),
        )
        .await;
    assert_eq!(s, StatusCode::BAD_REQUEST);

    // The store and its audit log have all of it.
    let (_, d) = h.get(&rev, &format!("/api/violations/{v}")).await;
    assert_eq!(d["status"], "confirmed");
    let reviews = d["reviews"].as_array().expect("reviews");
    assert_eq!(reviews.len(), 2);
    assert_eq!(reviews[0]["reviewer"], "rita");
    assert_eq!(reviews[0]["status"], "rejected");
    assert_eq!(reviews[0]["reason"], "helmet_worn");
    assert_eq!(reviews[0]["note"], "cap, not a helmet?");
    assert_eq!(reviews[1]["status"], "confirmed");
    let log = h.store.audit_log(Some(v)).await.expect("audit");
    let actions: Vec<(&str, &str)> = log
        .iter()
        .map(|(a, act, ..)| (a.as_str(), act.as_str()))
        .collect();
    assert_eq!(
        actions,
        vec![("rita", "review"), ("ada", "reopen"), ("rita", "review")]
    );
    let after: Value = serde_json::from_str(log[0].4.as_deref().expect("after")).expect("json");
    assert_eq!(
        after,
        json!({ "status": "rejected", "reason": "helmet_worn", "note": "cap, not a helmet?" })
    );
    let before: Value = serde_json::from_str(log[1].3.as_deref().expect("before")).expect("json");
    assert_eq!(before["status"], "rejected");

    // Each decision went out as an event.
    let mut got = Vec::new();
    while let Ok(Ok(e)) = tokio::time::timeout(Duration::from_secs(2), events.recv()).await {
        got.push(e);
        if got.len() == 3 {
            break;
        }
    }
    let statuses: Vec<String> = got
        .iter()
        .map(|e| match e {
            Event::Review {
                id, status, camera, ..
            } => {
                assert_eq!(id, v);
                assert_eq!(camera, "cam-a");
                status.clone()
            }
            other => panic!("unexpected event {other:?}"),
        })
        .collect();
    assert_eq!(statuses, vec!["rejected", "pending", "confirmed"]);
}
dual_test!(review_decisions);

// ---------------------------------------------------------------- thresholds and cameras

async fn thresholds(h: &Harness) {
    let ops = h.login("ops").await;
    let mut watch = h.state.thresholds();
    let (s, b) = h.get(&ops, "/api/cameras/cam-a/thresholds").await;
    assert_eq!(s, StatusCode::OK);
    assert_eq!(
        b["thresholds"]["no_helmet"]["value"]
            .as_f64()
            .map(|v| (v * 100.0).round()),
        Some(40.0)
    );
    assert_eq!(b["thresholds"]["no_helmet"]["source"], "config");
    let put = "/api/cameras/cam-a/thresholds/no_helmet";
    let (s, b) = h
        .call(&ops, Method::PUT, put, Some(json!({ "value": 0.6 })))
        .await;
    assert_eq!(s, StatusCode::OK, "{b}");
    assert_eq!(b["value"], 0.6);
    // The runners' channel has the new value.
    tokio::time::timeout(Duration::from_secs(2), watch.changed())
        .await
        .expect("in time")
        .expect("changed");
    assert_eq!(watch.borrow().get("cam-a", "no_helmet"), Some(0.6));
    let (_, b) = h.get(&ops, "/api/thresholds").await;
    assert_eq!(b["cameras"]["cam-a"]["no_helmet"]["value"], 0.6);
    assert_eq!(b["cameras"]["cam-a"]["no_helmet"]["source"], "api");
    assert_eq!(b["cameras"]["cam-a"]["no_helmet"]["updated_by"], "otto");
    assert_eq!(b["cameras"]["cam-a"]["two_wheeler"]["source"], "config");
    // Out of range, unknown class, unknown camera, bad bodies.
    for (path, body, want) in [
        (put, json!({ "value": 1.5 }), 422),
        (put, json!({ "value": 0.0 }), 422),
        (put, json!({ "value": -0.2 }), 422),
        (put, json!({ "value": "high" }), 422),
        (put, json!({}), 422),
        (
            "/api/cameras/cam-a/thresholds/other",
            json!({ "value": 0.5 }),
            400,
        ),
        (
            "/api/cameras/cam-a/thresholds/unicorn",
            json!({ "value": 0.5 }),
            400,
        ),
        (
            "/api/cameras/cam-z/thresholds/no_helmet",
            json!({ "value": 0.5 }),
            404,
        ),
    ] {
        let (s, b) = h.call(&ops, Method::PUT, path, Some(body.clone())).await;
        assert_eq!(s.as_u16(), want, "{path} {body}: {b}");
    }
    let (s, _) = h.get(&ops, "/api/cameras/cam-z/thresholds").await;
    assert_eq!(s, StatusCode::NOT_FOUND);
    // A second change: audited with the value before and after.
    let (s, _) = h
        .call(&ops, Method::PUT, put, Some(json!({ "value": 0.45 })))
        .await;
    assert_eq!(s, StatusCode::OK);
    let log: Vec<_> = h
        .store
        .audit_log(None)
        .await
        .expect("audit")
        .into_iter()
        .filter(|e| e.1 == "threshold")
        .collect();
    assert_eq!(log.len(), 2, "refused PUTs are not audited");
    let vals: Vec<(Value, Value)> = log
        .iter()
        .map(|e| {
            let b: Value = serde_json::from_str(e.3.as_deref().expect("before")).expect("json");
            let a: Value = serde_json::from_str(e.4.as_deref().expect("after")).expect("json");
            assert_eq!(e.0, "otto");
            (b["value"].clone(), a["value"].clone())
        })
        .collect();
    let f = |v: &Value| v.as_f64().map(|x| (x * 100.0).round() as i64);
    assert_eq!(
        vals.iter().map(|(b, a)| (f(b), f(a))).collect::<Vec<_>>(),
        vec![(Some(40), Some(60)), (Some(60), Some(45))]
    );
    // Stored: a new service over the same store starts from it.
    let site = roadwarden_rules::SiteConfig::parse(&site()).expect("site");
    let again = AppState::new(
        h.store.clone(),
        h.data.clone(),
        site,
        ServerConfig::default(),
    )
    .await
    .expect("state");
    assert_eq!(
        again.thresholds().borrow().get("cam-a", "no_helmet"),
        Some(0.45)
    );
    assert_eq!(
        again
            .thresholds()
            .borrow()
            .get("cam-a", "two_wheeler")
            .map(|v| (v * 100.0).round()),
        Some(30.0)
    );
}
dual_test!(thresholds);

async fn cameras_status_and_metrics(h: &Harness) {
    let ops = Caller::Bearer(h.ops_token.clone());
    let (s, b) = h.get(&ops, "/api/cameras").await;
    assert_eq!(s, StatusCode::OK);
    let cams = b["cameras"].as_array().expect("cameras");
    assert_eq!(cams.len(), 2);
    assert_eq!(cams[0]["id"], "cam-a");
    assert_eq!(
        cams[0]["source"], "rtsp://viewer:***@10.0.0.7:554/stream",
        "credentials never leave"
    );
    assert!(cams[0]["status"].is_null(), "no runner has reported yet");
    h.state.camera_board().set(
        "cam-a",
        CameraStatus {
            state: "running".into(),
            input_fps: 25.0,
            analysed_fps: 5.0,
            last_frame_at: Some(Utc::now()),
            reconnects: 2,
            dropped_frames: 11,
            signal: Some("red".into()),
            last_error: None,
            next_attempt_at: None,
        },
    );
    let (_, c) = h.get(&ops, "/api/cameras/cam-a").await;
    assert_eq!(c["status"]["state"], "running");
    assert_eq!(c["status"]["reconnects"], 2);
    assert_eq!(c["status"]["signal"], "red");
    assert_eq!(
        h.get(&ops, "/api/cameras/nope").await.0,
        StatusCode::NOT_FOUND
    );
    let (_, m) = h.get(&ops, "/metrics").await;
    let m = m.as_str().expect("text").to_owned();
    assert!(
        !m.contains("roadwarden_inference_"),
        "no shared batcher, no figures: {m}"
    );
    h.state.camera_board().set_inference_source(|| {
        vec![InferenceStatus {
            model: "helmet-yolov12m".into(),
            runs_by_size: vec![0, 3, 0, 0, 5],
            images: 23,
            cameras: vec![InferenceCameraStatus {
                camera: "cam-a".into(),
                requests: 8,
                latency_seconds_sum: 0.5,
                latency_seconds_max: 0.125,
            }],
        }]
    });
    let (s, m) = h.get(&ops, "/metrics").await;
    assert_eq!(s, StatusCode::OK);
    let m = m.as_str().expect("text").to_owned();
    for line in [
        "roadwarden_inference_runs_total{model=\"helmet-yolov12m\",batch=\"1\"} 3",
        "roadwarden_inference_runs_total{model=\"helmet-yolov12m\",batch=\"4\"} 5",
        "roadwarden_inference_images_total{model=\"helmet-yolov12m\"} 23",
        "roadwarden_inference_request_seconds_sum{model=\"helmet-yolov12m\",camera=\"cam-a\"} 0.5",
        "roadwarden_inference_request_seconds_count{model=\"helmet-yolov12m\",camera=\"cam-a\"} 8",
        "roadwarden_inference_request_seconds_max{model=\"helmet-yolov12m\",camera=\"cam-a\"} 0.125",
    ] {
        assert!(m.lines().any(|l| l == line), "{line}: {m}");
    }
    assert!(!m.contains("batch=\"2\""), "no empty batch sizes: {m}");
    assert!(
        m.contains("roadwarden_camera_input_fps{camera=\"cam-a\"} 25"),
        "{m}"
    );
    assert!(
        m.contains("roadwarden_camera_reconnects_total{camera=\"cam-a\"} 2"),
        "{m}"
    );
    assert!(
        m.contains("roadwarden_camera_up{camera=\"cam-a\"} 1"),
        "{m}"
    );
    assert!(
        m.contains(
            "roadwarden_violations{camera=\"cam-a\",kind=\"no_helmet\",status=\"pending\"} 6"
        ),
        "{m}"
    );
    assert!(
        m.contains(
            "roadwarden_violations{camera=\"cam-b\",kind=\"red_light\",status=\"pending\"} 3"
        ),
        "{m}"
    );
    assert!(
        m.contains("roadwarden_http_requests_total{route=\"/api/cameras/{camera}\",method=\"GET\",status=\"200\"} 1"),
        "{m}"
    );
    assert!(m.contains("roadwarden_http_requests_total{route=\"/api/cameras/{camera}\",method=\"GET\",status=\"404\"} 1"), "{m}");
    // Health, readiness and the OpenAPI document.
    assert_eq!(h.get(&Caller::Anon, "/healthz").await.1["status"], "ok");
    assert_eq!(h.get(&Caller::Anon, "/readyz").await.1["ready"], true);
    let (s, doc) = h.get(&ops, "/api/openapi.json").await;
    assert_eq!(s, StatusCode::OK);
    assert_eq!(doc["openapi"], "3.1.0");
    let paths = doc["paths"].as_object().expect("paths");
    for p in [
        "/healthz",
        "/readyz",
        "/metrics",
        "/api/openapi.json",
        "/api/login",
        "/api/logout",
        "/api/me",
        "/api/users",
        "/api/audit",
        "/api/violations",
        "/api/violations/{id}",
        "/api/violations/{id}/review",
        "/api/violations/{id}/reopen",
        "/api/review-reasons",
        "/api/evidence/{id}",
        "/api/cameras",
        "/api/cameras/{camera}",
        "/api/thresholds",
        "/api/cameras/{camera}/thresholds",
        "/api/cameras/{camera}/thresholds/{class}",
        "/api/cameras/{camera}/thresholds/{class}/preview",
        "/api/violations/{id}/package.zip",
        "/api/export/violations.csv",
    ] {
        assert!(paths.contains_key(p), "{p} documented");
    }
    assert_eq!(
        h.get(&ops, "/api/nothing-here").await.0,
        StatusCode::NOT_FOUND
    );
    // Readiness follows the store.
    h.store.close().await;
    assert_eq!(
        h.get(&Caller::Anon, "/readyz").await.0,
        StatusCode::SERVICE_UNAVAILABLE
    );
    assert_eq!(h.get(&Caller::Anon, "/healthz").await.0, StatusCode::OK);
}
dual_test!(cameras_status_and_metrics);

// ---------------------------------------------------------------- security

async fn csrf(h: &Harness) {
    let rev = h.login("reviewer").await;
    let other = h.login("reviewer").await;
    let Caller::Session { cookie, csrf, .. } = &rev else {
        unreachable!()
    };
    let Caller::Session {
        csrf: other_csrf, ..
    } = &other
    else {
        unreachable!()
    };
    let v = &h.seeded[0].id;
    let url = format!("{}/api/violations/{v}/review", h.base);
    let body = json!({ "decision": "confirm" });
    for (name, token) in [
        ("missing", None),
        ("empty", Some(String::new())),
        ("forged", Some("00".repeat(32))),
        ("another session's", Some(other_csrf.clone())),
    ] {
        let mut rb = h.http.post(&url).header("cookie", cookie).json(&body);
        if let Some(t) = token {
            rb = rb.header("x-csrf-token", t);
        }
        let r = rb.send().await.expect("send");
        assert_eq!(r.status(), StatusCode::FORBIDDEN, "{name} token");
        let b: Value = r.json().await.expect("json");
        assert_eq!(b["error"], "csrf", "{name}");
    }
    assert_eq!(
        h.store.get(v).await.expect("get").expect("row").status,
        Status::Pending,
        "nothing decided"
    );
    // Logout, and a threshold PUT by ops, need it too.
    let r = h
        .http
        .post(format!("{}/api/logout", h.base))
        .header("cookie", cookie)
        .send()
        .await
        .expect("send");
    assert_eq!(r.status(), StatusCode::FORBIDDEN);
    let ops = h.login("ops").await;
    let Caller::Session {
        cookie: ops_cookie, ..
    } = &ops
    else {
        unreachable!()
    };
    let r = h
        .http
        .put(format!("{}/api/cameras/cam-a/thresholds/no_helmet", h.base))
        .header("cookie", ops_cookie)
        .json(&json!({ "value": 0.5 }))
        .send()
        .await
        .expect("send");
    assert_eq!(r.status(), StatusCode::FORBIDDEN);
    // GETs need no token; the /api/me answer gives it back.
    let r = h
        .http
        .get(format!("{}/api/me", h.base))
        .header("cookie", cookie)
        .send()
        .await
        .expect("send");
    assert_eq!(r.status(), StatusCode::OK);
    let me: Value = r.json().await.expect("json");
    assert_eq!(me["csrf_token"], csrf.as_str());
    // The right token works.
    let r = h
        .http
        .post(&url)
        .header("cookie", cookie)
        .header("x-csrf-token", csrf)
        .json(&body)
        .send()
        .await
        .expect("send");
    assert_eq!(r.status(), StatusCode::OK);
    // Bearer tokens are not cookies: no CSRF token needed, and a forged cookie or token is a 401.
    let r = h
        .http
        .put(format!("{}/api/cameras/cam-a/thresholds/no_helmet", h.base))
        .bearer_auth(&h.ops_token)
        .json(&json!({ "value": 0.5 }))
        .send()
        .await
        .expect("send");
    assert_eq!(r.status(), StatusCode::OK);
    for (hdr, val) in [
        ("cookie", format!("rw_session={}", "ab".repeat(32))),
        ("cookie", "rw_session=../../etc".to_owned()),
        ("authorization", format!("Bearer rwt_{}", "cd".repeat(32))),
        ("authorization", "Basic cml0YTpwdw==".to_owned()),
        ("authorization", "Bearer ".to_owned()),
    ] {
        let r = h
            .http
            .get(format!("{}/api/me", h.base))
            .header(hdr, &val)
            .send()
            .await
            .expect("send");
        assert_eq!(r.status(), StatusCode::UNAUTHORIZED, "{hdr}: {val}");
    }
}
dual_test!(csrf);

async fn login_rate_limit(h: &Harness) {
    let url = format!("{}/api/login", h.base);
    let try_login = |name: &str, pw: &str| {
        let rb = h
            .http
            .post(&url)
            .json(&json!({ "name": name, "password": pw }));
        async move { rb.send().await.expect("send") }
    };
    // Unknown users and wrong passwords are the same 401.
    assert_eq!(
        try_login("nobody", "whatever-password").await.status(),
        StatusCode::UNAUTHORIZED
    );
    for _ in 0..3 {
        let r = try_login("rita", "wrong-password!").await;
        assert_eq!(r.status(), StatusCode::UNAUTHORIZED);
        let b: Value = r.json().await.expect("json");
        assert_eq!(b["error"], "bad_credentials");
    }
    // Rita is locked out now, even with the right password.
    let r = try_login("rita", role_user("reviewer").1).await;
    assert_eq!(r.status(), StatusCode::TOO_MANY_REQUESTS);
    assert!(r.headers().get("retry-after").is_some());
    // Others still log in, until this address has failed too often.
    h.login("ops").await;
    for i in 0..4 {
        let _ = try_login(&format!("guess{i}"), "wrong-password!").await;
    }
    let r = try_login("ada", role_user("admin").1).await;
    assert_eq!(
        r.status(),
        StatusCode::TOO_MANY_REQUESTS,
        "per-address limit"
    );
    // Behind a trusted proxy (the harness trusts 127.0.0.1) each client has its own count, and
    // an address a client puts before the proxy's own entry changes nothing.
    let via = |client: &'static str, name: &str, pw: &str| {
        let rb = h
            .http
            .post(&url)
            .header("x-forwarded-for", client)
            .json(&json!({ "name": name, "password": pw }));
        async move { rb.send().await.expect("send").status() }
    };
    let (ops_name, ops_pw) = role_user("ops");
    assert_eq!(via("198.51.100.7", ops_name, ops_pw).await, StatusCode::OK);
    for i in 0..8 {
        let s = via("198.51.100.8", &format!("guess{i}"), "wrong-password!").await;
        assert_eq!(s, StatusCode::UNAUTHORIZED);
    }
    for client in ["198.51.100.8", "6.6.6.6, 198.51.100.8"] {
        assert_eq!(
            via(client, ops_name, ops_pw).await,
            StatusCode::TOO_MANY_REQUESTS,
            "{client}"
        );
    }
    assert_eq!(via("198.51.100.7", ops_name, ops_pw).await, StatusCode::OK);
    // Malformed logins are client errors, never 500.
    for (ct, body) in [
        ("application/json", "{"),
        ("application/json", "{\"name\": 1}"),
        (
            "application/json",
            "{\"name\": \"a\", \"password\": \"b\", \"admin\": true}",
        ),
        ("text/plain", "name=rita&password=x"),
    ] {
        let r = h
            .http
            .post(&url)
            .header("content-type", ct)
            .body(body)
            .send()
            .await
            .expect("send");
        assert!(r.status().is_client_error(), "{ct} {body}: {}", r.status());
    }
    let r = try_login(&"n".repeat(100), "x").await;
    assert_eq!(r.status(), StatusCode::BAD_REQUEST);
    let (_, m) = h
        .get(&Caller::Bearer(h.ops_token.clone()), "/metrics")
        .await;
    let m = m.as_str().expect("text");
    // 3 + 1 + 4 direct failures and 8 through the proxy; 2 refusals each way.
    assert!(m.contains("roadwarden_login_failures_total 16"), "{m}");
    assert!(m.contains("roadwarden_login_rate_limited_total 4"), "{m}");
}
dual_test!(login_rate_limit);

async fn oversized_bodies(h: &Harness) {
    let ops = h.login("ops").await;
    let Caller::Session { cookie, csrf, .. } = &ops else {
        unreachable!()
    };
    let big = format!("{{\"value\": 0.5, \"pad\": \"{}\"}}", "x".repeat(64 * 1024));
    // The server answers 413 without reading the rest of the body, so the
    // client may see the connection reset before the answer: retry that, but
    // any answer must be a 413 that closes the connection (a keep-alive
    // client would otherwise send its next request into a closed socket).
    for (path, method) in [
        ("/api/cameras/cam-a/thresholds/no_helmet", Method::PUT),
        ("/api/login", Method::POST),
    ] {
        let mut answered = None;
        for _ in 0..5 {
            let sent = h
                .http
                .request(method.clone(), format!("{}{path}", h.base))
                .header("cookie", cookie)
                .header("x-csrf-token", csrf)
                .header("content-type", "application/json")
                .body(big.clone())
                .send()
                .await;
            if let Ok(r) = sent {
                let close = r.headers().get("connection").map(|v| v.as_bytes().to_vec());
                answered = Some((r.status(), close));
                break;
            }
        }
        assert_eq!(
            answered,
            Some((StatusCode::PAYLOAD_TOO_LARGE, Some(b"close".to_vec()))),
            "{method} {path}"
        );
    }
    assert_eq!(
        h.get(&ops, "/api/cameras/cam-a/thresholds").await.1["thresholds"]["no_helmet"]["source"],
        "config"
    );
    // Admins manage users over the API; short passwords are refused.
    let admin = h.login("admin").await;
    let (s, _) = h
        .call(
            &admin,
            Method::POST,
            "/api/users",
            Some(json!({ "name": "kim", "role": "ops", "password": "short" })),
        )
        .await;
    assert_eq!(s, StatusCode::BAD_REQUEST);
    let (s, _) = h
        .call(
            &admin,
            Method::POST,
            "/api/users",
            Some(json!({ "name": "kim", "role": "root", "password": "long-enough-password" })),
        )
        .await;
    assert_eq!(s, StatusCode::UNPROCESSABLE_ENTITY);
    let (s, _) = h
        .call(
            &admin,
            Method::POST,
            "/api/users",
            Some(json!({ "name": "kim", "role": "ops", "password": "long-enough-password" })),
        )
        .await;
    assert_eq!(s, StatusCode::CREATED);
    let r = h
        .http
        .post(format!("{}/api/login", h.base))
        .json(&json!({ "name": "kim", "password": "long-enough-password" }))
        .send()
        .await
        .expect("send");
    assert_eq!(r.status(), StatusCode::OK);
    let (_, users) = h.get(&admin, "/api/users").await;
    let names: Vec<&str> = users["users"]
        .as_array()
        .expect("users")
        .iter()
        .map(|u| u["name"].as_str().expect("name"))
        .collect();
    assert_eq!(names, vec!["ada", "kim", "otto", "rita"]);
    let audit = h.store.audit_log(None).await.expect("audit");
    let add = audit
        .iter()
        .find(|e| e.1 == "user_add" && e.4.as_deref().is_some_and(|a| a.contains("kim")))
        .expect("audited");
    assert_eq!(add.0, "ada");
    assert!(
        !audit
            .iter()
            .any(|e| e.4.as_deref().is_some_and(|a| a.contains("argon2"))),
        "hashes stay out of the log"
    );
    assert_eq!(h.dialect, h.store.dialect());
}
dual_test!(oversized_bodies);

// ---------------------------------------------------------------- the review page and MQTT events

async fn review_page(h: &Harness) {
    for (path, ct, needle) in [
        ("/", "text/html; charset=utf-8", "/static/app.js"),
        (
            "/static/app.js",
            "text/javascript; charset=utf-8",
            "import ",
        ),
        // State-changing calls carry the session's CSRF token: the page's one HTTP client sends it.
        (
            "/static/api.js",
            "text/javascript; charset=utf-8",
            "headers[\"X-CSRF-Token\"] = session.csrf",
        ),
        ("/static/style.css", "text/css; charset=utf-8", "kbd"),
    ] {
        let r = h
            .http
            .get(format!("{}{path}", h.base))
            .send()
            .await
            .expect("get");
        assert_eq!(r.status(), StatusCode::OK, "{path}");
        assert_eq!(r.headers()["content-type"], ct, "{path}");
        let csp = r.headers()["content-security-policy"]
            .to_str()
            .expect("csp")
            .to_owned();
        assert!(
            csp.contains("script-src 'self'") && csp.contains("frame-ancestors 'none'"),
            "{csp}"
        );
        let body = r.text().await.expect("text");
        assert!(body.contains(needle), "{path} lacks {needle}");
        assert!(
            !body.contains("http://") && !body.contains("https://"),
            "{path} loads nothing from elsewhere"
        );
    }
    let js = h
        .http
        .get(format!("{}/static/app.js", h.base))
        .send()
        .await
        .expect("get")
        .text()
        .await
        .expect("text");
    for key in ["k === \"c\"", "k === \"r\"", "k === \"j\"", "k === \"k\""] {
        assert!(js.contains(key), "keyboard handler {key}");
    }
    // The page itself holds no data: the queue needs a login.
    assert_eq!(
        h.get(&Caller::Anon, "/api/violations?status=pending")
            .await
            .0,
        StatusCode::UNAUTHORIZED
    );
}
dual_test!(review_page);

// ---------------------------------------------------------------- the reviewer's plate

/// A reviewer fills in a plate as typed; it is stored normalised, audited, shown in the detail and the
/// listing, found by `GET /api/violations?plate=` in any spelling, and in the CSV export. Only
/// reviewers and admins may set it; a text that is no plate is a 400 naming why.
async fn plate_field_search_and_export(h: &Harness) {
    let reviewer = h.login("reviewer").await;
    let admin = h.login("admin").await;
    let ops = h.login("ops").await;
    let (a, b) = (&h.seeded[1].id, &h.seeded[7].id);
    let put = |id: &str| format!("/api/violations/{id}/plate");
    // Who may: reviewer and admin; not ops (session or bearer), not anonymous.
    for (caller, want) in [
        (&Caller::Anon, 401),
        (&ops, 403),
        (&Caller::Bearer(h.ops_token.clone()), 403),
    ] {
        let (st, body) = h
            .call(
                caller,
                Method::PUT,
                &put(a),
                Some(json!({ "plate": "XX 1" })),
            )
            .await;
        assert_eq!(st.as_u16(), want, "{}: {body}", caller.name());
    }
    assert_eq!(h.store.get(a).await.expect("get").expect("row").plate, None);
    // The reviewer types it with spaces, a dash and lower case: stored normalised.
    let (st, body) = h
        .call(
            &reviewer,
            Method::PUT,
            &put(a),
            Some(json!({ "plate": " b-xy 123e " })),
        )
        .await;
    assert_eq!(st, StatusCode::OK, "{body}");
    assert_eq!(body, json!({ "id": a, "plate": "BXY123E", "before": null }));
    // Corrected by an admin after a decision.
    let (st, _) = h
        .call(
            &reviewer,
            Method::PUT,
            &put(b),
            Some(json!({ "plate": "KA01 AB 1234" })),
        )
        .await;
    assert_eq!(st, StatusCode::OK);
    assert_eq!(
        h.store
            .decide(b, "rita", Decision::Confirm, "", "")
            .await
            .expect("decide"),
        DecideOutcome::Changed {
            before: Status::Pending,
            after: Status::Confirmed
        }
    );
    let (st, body) = h
        .call(
            &admin,
            Method::PUT,
            &put(b),
            Some(json!({ "plate": "KA-01-AB-1284" })),
        )
        .await;
    assert_eq!(st, StatusCode::OK, "{body}");
    assert_eq!(body["before"], "KA01AB1234");
    assert_eq!(body["plate"], "KA01AB1284");
    // Not plates: a 400 that says why; nothing stored.
    // (A body of another shape is axum's 422, as for every JSON body.)
    for (bad, want) in [
        (json!({ "plate": "AB/12" }), 400),
        (json!({ "plate": "X".repeat(17) }), 400),
        (json!({ "plate": "--" }), 400),
        (json!({ "plate": 12 }), 422),
        (json!({ "number": "AB12" }), 422),
    ] {
        let (st, body) = h
            .call(&reviewer, Method::PUT, &put(a), Some(bad.clone()))
            .await;
        assert_eq!(st.as_u16(), want, "{bad}: {body}");
    }
    let (st, body) = h
        .call(
            &reviewer,
            Method::PUT,
            &put(a),
            Some(json!({ "plate": "AB/12" })),
        )
        .await;
    assert_eq!(st, StatusCode::BAD_REQUEST);
    assert!(
        body["message"]
            .as_str()
            .is_some_and(|m| m.contains("not a licence plate") && m.contains("letters and digits")),
        "{body}"
    );
    let unknown = "00000000-0000-4000-8000-000000000000";
    let (st, _) = h
        .call(
            &reviewer,
            Method::PUT,
            &put(unknown),
            Some(json!({ "plate": "AB12" })),
        )
        .await;
    assert_eq!(st, StatusCode::NOT_FOUND);
    // The detail and the listing show it.
    let (_, d) = h.get(&reviewer, &format!("/api/violations/{a}")).await;
    assert_eq!(d["plate"], "BXY123E");
    // Search: any spelling of the plate finds exactly its case.
    for typed in ["BXY123E", "b-xy-123e", "b%20xy%20123%20e"] {
        let (st, page) = h
            .get(&reviewer, &format!("/api/violations?plate={typed}"))
            .await;
        assert_eq!(st, StatusCode::OK, "{typed}: {page}");
        let items = page["items"].as_array().expect("items");
        assert_eq!(items.len(), 1, "{typed}: {page}");
        assert_eq!(items[0]["id"], json!(a));
        assert_eq!(items[0]["plate"], "BXY123E");
    }
    // With the other filters, and the old plate of b finds nothing any more.
    let (_, page) = h
        .get(
            &reviewer,
            "/api/violations?plate=KA01AB1284&status=confirmed&camera=cam-b",
        )
        .await;
    assert_eq!(page["items"].as_array().map(Vec::len), Some(1), "{page}");
    assert_eq!(page["items"][0]["id"], json!(b));
    let (_, page) = h.get(&reviewer, "/api/violations?plate=KA01AB1234").await;
    assert_eq!(page["items"], json!([]));
    let (st, _) = h.get(&reviewer, "/api/violations?plate=%3Cscript%3E").await;
    assert_eq!(st, StatusCode::BAD_REQUEST);
    // The listing without a plate filter: a plate where one was given, null elsewhere.
    let (_, page) = h.get(&reviewer, "/api/violations?limit=500").await;
    for item in page["items"].as_array().expect("items") {
        let want = if item["id"] == json!(a) {
            json!("BXY123E")
        } else if item["id"] == json!(b) {
            json!("KA01AB1284")
        } else {
            Value::Null
        };
        assert_eq!(item["plate"], want, "{item}");
    }
    // The CSV: a plate column, and the same search.
    let (st, csv) = h
        .get(&reviewer, "/api/export/violations.csv?plate=b-xy-123e")
        .await;
    assert_eq!(st, StatusCode::OK);
    let csv = csv.as_str().expect("CSV text");
    let lines: Vec<&str> = csv.lines().collect();
    assert!(lines[0].ends_with(",evidence_count,plate"), "{csv}");
    assert_eq!(lines.len(), 2, "{csv}");
    assert!(
        lines[1].starts_with(a.as_str()) && lines[1].ends_with(",BXY123E"),
        "{csv}"
    );
    // Clearing it: null (or empty) removes the plate.
    let (st, body) = h
        .call(
            &reviewer,
            Method::PUT,
            &put(a),
            Some(json!({ "plate": null })),
        )
        .await;
    assert_eq!(st, StatusCode::OK);
    assert_eq!(body["plate"], Value::Null);
    assert_eq!(body["before"], "BXY123E");
    let (_, page) = h.get(&reviewer, "/api/violations?plate=BXY123E").await;
    assert_eq!(page["items"], json!([]));
    // Every change is audited with who and the plate before and after; nothing for refused calls.
    let log = h.store.audit_log(None).await.expect("audit");
    let changes: Vec<(&str, Option<&str>, Value, Value)> = log
        .iter()
        .filter(|e| e.1 == "plate")
        .map(|e| {
            let parse = |s: &Option<String>| {
                serde_json::from_str(s.as_deref().expect("state")).expect("json")
            };
            (e.0.as_str(), e.2.as_deref(), parse(&e.3), parse(&e.4))
        })
        .collect();
    assert_eq!(
        changes,
        [
            (
                "rita",
                Some(a.as_str()),
                json!({ "plate": null }),
                json!({ "plate": "BXY123E" })
            ),
            (
                "rita",
                Some(b.as_str()),
                json!({ "plate": null }),
                json!({ "plate": "KA01AB1234" })
            ),
            (
                "ada",
                Some(b.as_str()),
                json!({ "plate": "KA01AB1234" }),
                json!({ "plate": "KA01AB1284" })
            ),
            (
                "rita",
                Some(a.as_str()),
                json!({ "plate": "BXY123E" }),
                json!({ "plate": null })
            ),
        ]
    );
}
dual_test!(plate_field_search_and_export);

/// Every operation of the OpenAPI document is routed: asked with made-up parameters, each
/// answers from its handler (a 2xx, or a refusal of the parameters), never the fallback's
/// "no such endpoint" nor 405. With the unit test that every route is documented (the router
/// and the document come from one route table), the two cannot drift apart.
async fn every_documented_route_is_served(h: &Harness) {
    let ops = Caller::Bearer(h.ops_token.clone());
    let (s, doc) = h.get(&ops, "/api/openapi.json").await;
    assert_eq!(s, StatusCode::OK);
    let paths = doc["paths"].as_object().expect("paths");
    let fallback = h.get(&ops, "/api/nothing-here").await.1["message"].clone();
    assert!(fallback.is_string(), "{fallback}");
    let mut operations = 0;
    for (template, item) in paths {
        let path = template
            .replace("{id}", "00000000-0000-4000-8000-000000000000")
            .replace("{camera}", "no-such-camera")
            .replace("{class}", "no_helmet")
            .replace("{file}", "no-such-file.js");
        for method in item.as_object().expect("path item").keys() {
            let method = Method::from_bytes(method.to_uppercase().as_bytes()).expect("method");
            let (s, b) = h.call(&ops, method.clone(), &path, None).await;
            assert_ne!(s, StatusCode::METHOD_NOT_ALLOWED, "{method} {path}: {b}");
            assert_ne!(b["message"], fallback, "{method} {path} is routed");
            operations += 1;
        }
    }
    assert!(operations >= 29, "{operations} operations documented");
}
dual_test!(every_documented_route_is_served);

/// The branch of the documented event schema for this payload; asserts it matches.
fn check_event_schema(schema: &Value, payload: &Value) {
    let obj = payload.as_object().expect("an event is an object");
    let branch = schema["oneOf"]
        .as_array()
        .expect("oneOf")
        .iter()
        .find(|b| b["properties"]["event"]["const"] == payload["event"])
        .unwrap_or_else(|| panic!("no schema for {payload}"));
    let props = branch["properties"].as_object().expect("properties");
    for req in branch["required"].as_array().expect("required") {
        assert!(
            obj.contains_key(req.as_str().expect("name")),
            "{payload} lacks {req}"
        );
    }
    for (k, v) in obj {
        let p = props
            .get(k)
            .unwrap_or_else(|| panic!("{payload}: undocumented key {k}"));
        if let Some(allowed) = p["enum"].as_array() {
            assert!(allowed.contains(v), "{k}={v} not in {allowed:?}");
        }
    }
}

async fn mqtt_events(h: &Harness) {
    use rumqttc::{AsyncClient, Event as MqEvent, MqttOptions, Packet, QoS};
    let prefix = format!("rwtest-{}", uuid::Uuid::new_v4().simple());
    let mut opts = MqttOptions::new(format!("{prefix}-sub"), "127.0.0.1", 1883);
    opts.set_keep_alive(Duration::from_secs(10));
    let (sub, mut el) = AsyncClient::new(opts, 64);
    sub.subscribe(format!("{prefix}/+/violations"), QoS::AtLeastOnce)
        .await
        .expect("subscribe");
    let (tx, mut rx) = tokio::sync::mpsc::unbounded_channel();
    let (subacked_tx, subacked) = tokio::sync::oneshot::channel();
    let poller = tokio::spawn(async move {
        let mut subacked_tx = Some(subacked_tx);
        loop {
            match el.poll().await {
                Ok(MqEvent::Incoming(Packet::SubAck(_))) => {
                    if let Some(t) = subacked_tx.take() {
                        let _ = t.send(());
                    }
                }
                Ok(MqEvent::Incoming(Packet::Publish(p))) => {
                    let _ = tx.send((p.topic.clone(), p.qos, p.payload.to_vec()));
                }
                Ok(_) => {}
                Err(e) => panic!("subscriber lost Mosquitto at 127.0.0.1:1883: {e}"),
            }
        }
    });
    tokio::time::timeout(Duration::from_secs(10), subacked)
        .await
        .expect("suback in time")
        .expect("suback");

    let mut cfg = roadwarden_server::mqtt::MqttConfig::new("127.0.0.1", 1883);
    cfg.client_id = format!("{prefix}-pub");
    cfg.topic_template = format!("{prefix}/{{camera}}/violations");
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let publisher = tokio::spawn(roadwarden_server::mqtt::publish_events(
        cfg,
        h.state.events(),
        async {
            let _ = stopped.await;
        },
    ));

    // A new violation (announced by whoever records it), then two decisions over HTTP.
    let a = &h.seeded[0];
    h.state.publish(Event::Violation {
        id: a.id.clone(),
        camera: a.camera.clone(),
        kind: a.kind.as_str().to_owned(),
        occurred_at: from_micros(a.occurred_at_us),
        confidence: 0.5,
    });
    let rev = h.login("reviewer").await;
    let (s, _) = h
        .call(
            &rev,
            Method::POST,
            &format!("/api/violations/{}/review", a.id),
            Some(json!({ "decision": "confirm" })),
        )
        .await;
    assert_eq!(s, StatusCode::OK);
    let b = &h.seeded[6];
    let (s, _) = h
        .call(
            &rev,
            Method::POST,
            &format!("/api/violations/{}/review", b.id),
            Some(json!({ "decision": "reject", "reason": "signal_not_red" })),
        )
        .await;
    assert_eq!(s, StatusCode::OK);
    // A threshold change is not a violation event.
    let ops = h.login("ops").await;
    let (s, _) = h
        .call(
            &ops,
            Method::PUT,
            "/api/cameras/cam-a/thresholds/no_helmet",
            Some(json!({ "value": 0.5 })),
        )
        .await;
    assert_eq!(s, StatusCode::OK);

    let mut got = Vec::new();
    let deadline = tokio::time::Instant::now() + Duration::from_secs(15);
    while got.len() < 3 {
        match tokio::time::timeout_at(deadline, rx.recv()).await {
            Ok(Some(m)) => got.push(m),
            _ => panic!("only {} of 3 events arrived: {got:?}", got.len()),
        }
    }
    // Nothing more comes: each event arrives once.
    if let Ok(Some(extra)) = tokio::time::timeout(Duration::from_millis(800), rx.recv()).await {
        panic!("unexpected extra message {extra:?}");
    }
    let (_, doc) = h.get(&rev, "/api/openapi.json").await;
    let schema = &doc["components"]["schemas"]["Event"];
    let mut seen = Vec::new();
    for (topic, qos, payload) in &got {
        assert_eq!(*qos, QoS::AtLeastOnce);
        let v: Value = serde_json::from_slice(payload).expect("JSON payload");
        check_event_schema(schema, &v);
        assert_eq!(
            topic,
            &format!(
                "{prefix}/{}/violations",
                v["camera"].as_str().expect("camera")
            )
        );
        seen.push((
            v["event"].as_str().expect("event").to_owned(),
            v["id"].as_str().expect("id").to_owned(),
            v["status"].as_str().map(str::to_owned),
        ));
    }
    assert_eq!(
        seen,
        vec![
            ("violation".to_owned(), a.id.clone(), None),
            (
                "review".to_owned(),
                a.id.clone(),
                Some("confirmed".to_owned())
            ),
            (
                "review".to_owned(),
                b.id.clone(),
                Some("rejected".to_owned())
            ),
        ]
    );
    let v: Value = serde_json::from_slice(&got[2].2).expect("json");
    assert_eq!(v["reason"], "signal_not_red");
    assert_eq!(v["by"], "rita");
    assert_eq!(got[2].0, format!("{prefix}/cam-b/violations"));
    // An event published just before the stop still reaches the broker, and the publisher ends
    // (its acknowledgements awaited) well inside its flush bound.
    h.state.publish(Event::Review {
        id: a.id.clone(),
        camera: a.camera.clone(),
        kind: a.kind.as_str().to_owned(),
        status: "confirmed".to_owned(),
        reason: None,
        by: "rita".to_owned(),
        at: chrono::Utc::now(),
    });
    let _ = stop.send(());
    tokio::time::timeout(roadwarden_server::mqtt::FLUSH_TIMEOUT, publisher)
        .await
        .expect("the publisher stops within its flush bound")
        .expect("publisher task");
    let last = tokio::time::timeout(Duration::from_secs(10), rx.recv())
        .await
        .expect("the last event arrives")
        .expect("subscriber");
    let v: Value = serde_json::from_slice(&last.2).expect("json");
    assert_eq!(
        (v["event"].as_str(), v["id"].as_str()),
        (Some("review"), Some(a.id.as_str()))
    );
    poller.abort();
}
dual_test!(mqtt_events);
