//! `GET /api/cameras/{camera}/thresholds/{class}/preview` over real HTTP on
//! a real store (an SQLite file, and a PostgreSQL database of its own at
//! 127.0.0.1:5432): violations seeded with known confidences, times and
//! review statuses give exact kept/dropped counts; a number no threshold can
//! take is refused with 422 as the PUT refuses it, other bad values and
//! look-backs with 400, reviewers with 403.

mod common;

use std::time::Duration;

use chrono::Utc;
use reqwest::StatusCode;
use roadwarden_server::ServerConfig;
use roadwarden_store::*;
use roadwarden_types::{Violation, ViolationKind};
use serde_json::{Value, json};

/// cam-a (no_helmet at 0.4) and cam-b.
fn site() -> String {
    common::site_toml(&[
        common::camera_toml("cam-a", None, &[("no_helmet", 0.4)]),
        common::camera_toml("cam-b", None, &[]),
    ])
}

/// (camera, kind, hours ago, confidence, status)
const SEED: &[(&str, ViolationKind, i64, f32, Status)] = &[
    // 40 days old: only in longer look-backs.
    (
        "cam-a",
        ViolationKind::NoHelmet,
        40 * 24,
        0.95,
        Status::Confirmed,
    ),
    ("cam-a", ViolationKind::NoHelmet, 50, 0.30, Status::Rejected),
    ("cam-a", ViolationKind::NoHelmet, 40, 0.45, Status::Pending),
    (
        "cam-a",
        ViolationKind::NoHelmet,
        30,
        0.50,
        Status::Confirmed,
    ),
    ("cam-a", ViolationKind::NoHelmet, 20, 0.55, Status::Rejected),
    // 0.7 is not exact in f32: the preview compares as the pipeline does.
    ("cam-a", ViolationKind::NoHelmet, 10, 0.70, Status::Pending),
    ("cam-a", ViolationKind::NoHelmet, 5, 0.90, Status::Confirmed),
    ("cam-a", ViolationKind::RedLight, 4, 0.60, Status::Pending),
    ("cam-a", ViolationKind::RedLight, 3, 0.40, Status::Confirmed),
    // Another camera: never counted for cam-a.
    ("cam-b", ViolationKind::NoHelmet, 2, 0.99, Status::Confirmed),
    ("cam-b", ViolationKind::NoHelmet, 1, 0.10, Status::Rejected),
];

struct Harness {
    base: String,
    http: reqwest::Client,
    store: Store,
    pg_name: Option<String>,
    server: common::Server,
    _dir: tempfile::TempDir,
}

fn password(name: &str) -> String {
    format!("{name}-has-a-long-password")
}

impl Harness {
    async fn start(dialect: &str) -> Harness {
        let (dir, data) = common::temp_data();
        let (store, pg_name) = common::open_store(dialect, &data, "rw_preview").await;
        for (name, role) in [
            ("rita", Role::Reviewer),
            ("otto", Role::Ops),
            ("ada", Role::Admin),
        ] {
            common::put_users(&store, [(name, password(name).as_str(), role)]).await;
        }
        let now = Utc::now();
        for (i, (camera, kind, hours, conf, status)) in SEED.iter().enumerate() {
            let v = Violation {
                plate_read: None,
                track_id: i as u64,
                ..common::violation(camera, *kind, now - chrono::Duration::hours(*hours), *conf)
            };
            let id = v.id.0.to_string();
            common::insert(&store, v, vec![], common::hasher).await;
            let decision = match status {
                Status::Pending => continue,
                Status::Confirmed => (Decision::Confirm, ""),
                Status::Rejected => (Decision::Reject, "helmet_worn"),
            };
            store
                .decide(&id, "rita", decision.0, decision.1, "")
                .await
                .expect("decide");
        }
        let server = common::Server::start(&store, &data, &site(), ServerConfig::default()).await;
        let http = common::http_client(Duration::from_secs(20), true);
        Harness {
            base: server.base.clone(),
            http,
            store,
            pg_name,
            server,
            _dir: dir,
        }
    }

    /// A session cookie and CSRF token for `name`.
    async fn login(&self, name: &str) -> (String, String) {
        let r = common::login(
            &self.http,
            &self.base,
            name,
            &password(name),
            &format!("{name} logs in"),
        )
        .await;
        let cookie = common::session_cookie(&r);
        let body: Value = r.json().await.expect("json");
        (
            cookie,
            body["csrf_token"].as_str().expect("csrf").to_owned(),
        )
    }

    async fn get(&self, cookie: Option<&str>, path: &str) -> (StatusCode, Value) {
        let mut rb = self.http.get(format!("{}{path}", self.base));
        if let Some(c) = cookie {
            rb = rb.header("cookie", c);
        }
        let r = rb.send().await.expect("request");
        let s = r.status();
        (s, r.json().await.unwrap_or(Value::Null))
    }

    async fn finish(mut self) {
        self.server.stop();
        common::close_store(&self.store, self.pg_name.take()).await;
    }
}

/// (class, value, days, kept, dropped), the counts as [total, confirmed, rejected, pending].
type Case = (&'static str, &'static str, &'static str, [i64; 4], [i64; 4]);

/// [total, confirmed, rejected, pending]
fn counts(v: &Value) -> [i64; 4] {
    ["total", "confirmed", "rejected", "pending"].map(|k| {
        v[k].as_i64()
            .unwrap_or_else(|| panic!("`{k}` is a count in {v}"))
    })
}

async fn preview_counts(h: &Harness) {
    let (ops, _) = h.login("otto").await;
    let (admin, _) = h.login("ada").await;
    let (rev, _) = h.login("rita").await;
    let url = |class: &str, value: &str, days: &str| {
        format!("/api/cameras/cam-a/thresholds/{class}/preview?value={value}&days={days}")
    };
    // (class, value, days, kept, dropped), each [total, confirmed, rejected, pending].
    let cases: &[Case] = &[
        ("no_helmet", "0.5", "30", [4, 2, 1, 1], [2, 0, 1, 1]),
        // 0.70f32 counts as kept at 0.7.
        ("no_helmet", "0.7", "30", [2, 1, 0, 1], [4, 1, 2, 1]),
        ("no_helmet", "0.05", "30", [6, 2, 2, 2], [0, 0, 0, 0]),
        ("no_helmet", "0.95", "30", [0, 0, 0, 0], [6, 2, 2, 2]),
        // The 40-day-old one comes in with a longer look-back.
        ("no_helmet", "0.5", "60", [5, 3, 1, 1], [2, 0, 1, 1]),
        // Within the last day: the ones 20, 10 and 5 hours old.
        ("no_helmet", "0.5", "1", [3, 1, 1, 1], [0, 0, 0, 0]),
        // two_wheeler gates both kinds; vehicle the red-light ones.
        ("two_wheeler", "0.5", "30", [5, 2, 1, 2], [3, 1, 1, 1]),
        ("vehicle", "0.5", "30", [1, 0, 0, 1], [1, 1, 0, 0]),
        ("vehicle", "0.5", "1", [1, 0, 0, 1], [1, 1, 0, 0]),
        // No violation is scored by the helmet class.
        ("helmet", "0.5", "30", [0, 0, 0, 0], [0, 0, 0, 0]),
    ];
    for (class, value, days, kept, dropped) in cases {
        let path = url(class, value, days);
        let (s, b) = h.get(Some(&ops), &path).await;
        assert_eq!(s, StatusCode::OK, "{path}: {b}");
        assert_eq!(counts(&b["kept"]), *kept, "kept for {path}: {b}");
        assert_eq!(counts(&b["dropped"]), *dropped, "dropped for {path}: {b}");
        assert_eq!(b["total"], kept[0] + dropped[0], "{b}");
        assert_eq!(b["camera"], "cam-a");
        assert_eq!(b["class"], *class);
        assert_eq!(b["days"].as_i64(), days.parse::<i64>().ok());
        // The same numbers straight from the store.
        let kinds: Vec<&str> = b["kinds"]
            .as_array()
            .expect("kinds")
            .iter()
            .map(|k| k.as_str().expect("kind"))
            .collect();
        let since = chrono::DateTime::parse_from_rfc3339(b["since"].as_str().expect("since"))
            .expect("rfc3339")
            .with_timezone(&Utc);
        let direct = h
            .store
            .threshold_preview(
                "cam-a",
                &kinds,
                to_micros(since),
                value.parse().expect("number"),
            )
            .await
            .expect("store preview");
        assert_eq!(json!(direct.kept), b["kept"], "{path}");
        assert_eq!(json!(direct.dropped), b["dropped"], "{path}");
    }
    // What is in force comes along; nothing was changed.
    let (_, b) = h.get(Some(&admin), &url("no_helmet", "0.5", "30")).await;
    assert!(
        b["current"]
            .as_f64()
            .is_some_and(|c| (c - 0.4).abs() < 1e-6),
        "the site file's 0.4 is in force: {b}"
    );
    assert_eq!(b["value"], 0.5);
    assert!(
        h.store
            .thresholds(None)
            .await
            .expect("thresholds")
            .is_empty()
    );
    // days defaults to 30.
    let (s, b) = h
        .get(
            Some(&ops),
            "/api/cameras/cam-a/thresholds/no_helmet/preview?value=0.5",
        )
        .await;
    assert_eq!((s, b["days"].as_i64()), (StatusCode::OK, Some(30)));
    assert_eq!(counts(&b["kept"]), [4, 2, 1, 1]);

    // A number no threshold can take: 422 out_of_range, the PUT's answer.
    for q in [
        "value=0.04&days=30",
        "value=0.96&days=30",
        "value=-1",
        "value=NaN",
        "value=inf",
    ] {
        let path = format!("/api/cameras/cam-a/thresholds/no_helmet/preview?{q}");
        let (s, b) = h.get(Some(&ops), &path).await;
        assert_eq!(
            (s, b["error"].as_str()),
            (StatusCode::UNPROCESSABLE_ENTITY, Some("out_of_range")),
            "{path}: {b}"
        );
    }
    // Bad values and look-backs: 400.
    for q in [
        "value=abc",
        "value=",
        "value=0.5&days=0",
        "value=0.5&days=366",
        "value=0.5&days=1.5",
        "value=0.5&days=-3",
        "value=0.5&days=week",
    ] {
        let path = format!("/api/cameras/cam-a/thresholds/no_helmet/preview?{q}");
        let (s, b) = h.get(Some(&ops), &path).await;
        assert_eq!(s, StatusCode::BAD_REQUEST, "{path}: {b}");
        assert!(b["message"].as_str().is_some_and(|m| !m.is_empty()), "{b}");
    }
    let (s, b) = h.get(Some(&ops), &url("unicorn", "0.5", "30")).await;
    assert_eq!(s, StatusCode::BAD_REQUEST, "{b}");
    let (s, _) = h
        .get(
            Some(&ops),
            "/api/cameras/cam-z/thresholds/no_helmet/preview?value=0.5",
        )
        .await;
    assert_eq!(s, StatusCode::NOT_FOUND);
    // Roles: reviewers may not, anonymous callers must log in.
    let (s, b) = h.get(Some(&rev), &url("no_helmet", "0.5", "30")).await;
    assert_eq!(s, StatusCode::FORBIDDEN, "{b}");
    let (s, _) = h.get(Some(&rev), &url("no_helmet", "9", "0")).await;
    assert_eq!(s, StatusCode::FORBIDDEN, "the role is checked first");
    let (s, _) = h.get(None, &url("no_helmet", "0.5", "30")).await;
    assert_eq!(s, StatusCode::UNAUTHORIZED);
    // Another camera's numbers are its own.
    let (s, b) = h
        .get(
            Some(&ops),
            "/api/cameras/cam-b/thresholds/no_helmet/preview?value=0.5&days=7",
        )
        .await;
    assert_eq!(s, StatusCode::OK);
    assert_eq!(counts(&b["kept"]), [1, 1, 0, 0]);
    assert_eq!(counts(&b["dropped"]), [1, 0, 1, 0]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn preview_sqlite() {
    let h = Harness::start("sqlite").await;
    preview_counts(&h).await;
    h.finish().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn preview_postgres() {
    let h = Harness::start("postgres").await;
    preview_counts(&h).await;
    h.finish().await;
}
