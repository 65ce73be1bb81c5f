//! Team work over real HTTP, on SQLite and PostgreSQL: many reviewers claiming the same case at
//! once (exactly one wins) and taking the next free case (never the same), the live queue (Server-
//! Sent Events), undo inside the window and refused after it, bulk rejection (audited per case),
//! the statistics' numbers, the history's keyset pages and the user's time zone.

mod common;

use std::time::Duration;

use chrono::{TimeZone, Utc};
use common::{USERS, dual_test};
use reqwest::{Method, StatusCode};
use roadwarden_server::ServerConfig;
use roadwarden_server::auth::{new_bearer_token, token_hash};
use roadwarden_store::*;
use roadwarden_types::ViolationKind;
use serde_json::{Value, json};
use tokio::io::{AsyncBufReadExt, AsyncWriteExt};

/// cam-a (no_helmet at 0.4) and cam-b.
fn site() -> String {
    common::site_toml(&[
        common::camera_toml("cam-a", None, &[("no_helmet", 0.4)]),
        common::camera_toml("cam-b", None, &[]),
    ])
}

/// 2026-05-28T00:00:00Z plus `s` seconds.
fn at(s: i64) -> chrono::DateTime<Utc> {
    Utc.timestamp_opt(1_779_926_400 + s, 0)
        .single()
        .expect("time")
}

struct Harness {
    http: reqwest::Client,
    store: Store,
    /// The server with a 10-minute undo window.
    server: common::Server,
    /// The same store with no undo window at all.
    strict: common::Server,
    /// cam-a no_helmet ×5, then cam-b red_light ×3, oldest first.
    ids: Vec<String>,
    pg_name: Option<String>,
    _dir: tempfile::TempDir,
}

impl Harness {
    async fn start(dialect: &'static str) -> Harness {
        let (dir, data) = common::temp_data();
        let (store, pg_name) = common::open_store(dialect, &data, "rw_team").await;
        common::put_users(&store, USERS).await;
        let mut ids = Vec::new();
        for (i, (camera, kind)) in [
            ("cam-a", ViolationKind::NoHelmet),
            ("cam-a", ViolationKind::NoHelmet),
            ("cam-a", ViolationKind::NoHelmet),
            ("cam-a", ViolationKind::NoHelmet),
            ("cam-a", ViolationKind::NoHelmet),
            ("cam-b", ViolationKind::RedLight),
            ("cam-b", ViolationKind::RedLight),
            ("cam-b", ViolationKind::RedLight),
        ]
        .into_iter()
        .enumerate()
        {
            let v = common::violation(camera, kind, at(i as i64 * 60), 0.7);
            ids.push(v.id.0.to_string());
            common::insert(&store, v, vec![], common::hasher).await;
        }
        let server = common::Server::start(
            &store,
            &data,
            &site(),
            ServerConfig {
                undo_window: Duration::from_secs(600),
                ..ServerConfig::default()
            },
        )
        .await;
        let strict = common::Server::start(
            &store,
            &data,
            &site(),
            ServerConfig {
                undo_window: Duration::ZERO,
                ..ServerConfig::default()
            },
        )
        .await;
        Harness {
            http: common::http_client(Duration::from_secs(30), false),
            store,
            server,
            strict,
            ids,
            pg_name,
            _dir: dir,
        }
    }

    async fn finish(mut self) {
        self.server.stop();
        self.strict.stop();
        common::close_store(&self.store, self.pg_name.take()).await;
    }

    /// A bearer token of a new user `name` with `role` (no password hashing: fast for many users).
    async fn token(&self, name: &str, role: Role) -> String {
        self.store
            .ensure_user(name, role.as_str())
            .await
            .expect("user");
        let user = self
            .store
            .user_by_name(name)
            .await
            .expect("query")
            .expect("user");
        let t = new_bearer_token();
        self.store
            .create_api_token(&user, "test", &token_hash(&t), "test")
            .await
            .expect("token");
        t
    }

    async fn call_on(
        &self,
        base: &str,
        token: &str,
        method: Method,
        path: &str,
        body: Option<Value>,
    ) -> (StatusCode, Value) {
        let mut rb = self
            .http
            .request(method, format!("{base}{path}"))
            .bearer_auth(token);
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

    async fn call(
        &self,
        token: &str,
        method: Method,
        path: &str,
        body: Option<Value>,
    ) -> (StatusCode, Value) {
        self.call_on(&self.server.base, token, method, path, body)
            .await
    }
}

async fn claims_are_atomic_and_next_cases_distinct(h: &Harness) {
    let mut tokens = Vec::new();
    for i in 0..12 {
        tokens.push((
            format!("rev{i:02}"),
            h.token(&format!("rev{i:02}"), Role::Reviewer).await,
        ));
    }
    // Twelve reviewers claim the same case at once: exactly one wins.
    let target = h.ids[2].clone();
    let mut tasks = Vec::new();
    for (name, t) in tokens.clone() {
        let http = h.http.clone();
        let url = format!("{}/api/violations/{target}/claim", h.server.base);
        tasks.push(tokio::spawn(async move {
            let r = http.post(url).bearer_auth(t).send().await.expect("claim");
            let status = r.status();
            let body: Value = r.json().await.expect("json");
            (name, status, body)
        }));
    }
    let mut winners = Vec::new();
    for t in tasks {
        let (name, status, body) = t.await.expect("task");
        match status {
            StatusCode::OK => {
                assert_eq!(body["by"], name.as_str());
                winners.push(name);
            }
            StatusCode::CONFLICT => assert_eq!(body["error"], "claimed", "{body}"),
            other => panic!("claim answered {other}: {body}"),
        }
    }
    assert_eq!(winners.len(), 1, "exactly one claim wins: {winners:?}");
    let winner = &winners[0];
    // The listing says who holds it.
    let (_, list) = h
        .call(
            &tokens[0].1,
            Method::GET,
            "/api/violations?status=pending",
            None,
        )
        .await;
    let item = list["items"]
        .as_array()
        .expect("items")
        .iter()
        .find(|i| i["id"] == target.as_str())
        .expect("listed");
    assert_eq!(item["claimed_by"], winner.as_str());
    // Another reviewer's decision on it is refused while it is held.
    let loser = tokens.iter().find(|(n, _)| n != winner).expect("a loser");
    let (s, body) = h
        .call(
            &loser.1,
            Method::POST,
            &format!("/api/violations/{target}/review"),
            Some(json!({ "decision": "confirm" })),
        )
        .await;
    assert_eq!(
        (s, body["error"].as_str()),
        (StatusCode::CONFLICT, Some("claimed")),
        "{body}"
    );
    // Everyone asks for the next case at once: eight cases, nobody gets one another got.
    let mut tasks = Vec::new();
    for (name, t) in tokens.clone() {
        let http = h.http.clone();
        let url = format!("{}/api/queue/next", h.server.base);
        tasks.push(tokio::spawn(async move {
            let r = http.post(url).bearer_auth(t).send().await.expect("next");
            assert_eq!(r.status(), StatusCode::OK);
            let body: Value = r.json().await.expect("json");
            (name, body["item"]["id"].as_str().map(str::to_owned))
        }));
    }
    let mut got: Vec<(String, String)> = Vec::new();
    let mut none = 0;
    for t in tasks {
        match t.await.expect("task") {
            (name, Some(id)) => got.push((name, id)),
            (_, None) => none += 1,
        }
    }
    let mut ids: Vec<&String> = got.iter().map(|(_, id)| id).collect();
    ids.sort();
    ids.dedup();
    assert_eq!(
        ids.len(),
        got.len(),
        "two reviewers got the same case: {got:?}"
    );
    assert_eq!(got.len(), 8, "every case went to one reviewer: {got:?}");
    assert_eq!(none, 4);
    // The winner of the claim got their own case back (claiming the next keeps nothing else).
    assert!(got.contains(&(winner.clone(), target.clone())), "{got:?}");
    let claims = h.store.active_claims().await.expect("claims");
    assert_eq!(claims.len(), 8);
    // Ops may not claim.
    let (s, _) = h
        .call(
            &h.token("oscar", Role::Ops).await,
            Method::POST,
            &format!("/api/violations/{target}/claim"),
            None,
        )
        .await;
    assert_eq!(s, StatusCode::FORBIDDEN);
}
dual_test!(claims_are_atomic_and_next_cases_distinct);

/// Reads server-sent events from `GET /api/queue/events` until one named `name` arrives; its data.
async fn next_event(
    lines: &mut tokio::io::Lines<tokio::io::BufReader<tokio::net::TcpStream>>,
    name: &str,
) -> Value {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(20);
    let mut current = String::new();
    loop {
        let line = tokio::time::timeout_at(deadline, lines.next_line())
            .await
            .unwrap_or_else(|_| panic!("no `{name}` event in 20 s"))
            .expect("read")
            .expect("stream open");
        if let Some(e) = line.strip_prefix("event: ") {
            current = e.trim().to_owned();
        } else if let Some(d) = line.strip_prefix("data: ")
            && current == name
        {
            return serde_json::from_str(d).expect("json data");
        }
    }
}

async fn the_queue_is_live(h: &Harness) {
    let rita = h.token("rita2", Role::Reviewer).await;
    let addr = h.server.addr;
    let mut s = tokio::net::TcpStream::connect(addr).await.expect("connect");
    s.write_all(
        format!(
            "GET /api/queue/events HTTP/1.1\r\nHost: {addr}\r\nAuthorization: Bearer {rita}\r\nAccept: text/event-stream\r\n\r\n"
        )
        .as_bytes(),
    )
    .await
    .expect("write");
    let mut lines = tokio::io::BufReader::new(s).lines();
    next_event(&mut lines, "hello").await;
    let id = &h.ids[0];
    let (st, _) = h
        .call(
            &rita,
            Method::POST,
            &format!("/api/violations/{id}/claim"),
            None,
        )
        .await;
    assert_eq!(st, StatusCode::OK);
    let e = next_event(&mut lines, "claimed").await;
    assert_eq!(
        (e["id"].as_str(), e["by"].as_str()),
        (Some(id.as_str()), Some("rita2"))
    );
    let (st, _) = h
        .call(
            &rita,
            Method::POST,
            &format!("/api/violations/{id}/review"),
            Some(json!({ "decision": "confirm" })),
        )
        .await;
    assert_eq!(st, StatusCode::OK);
    let e = next_event(&mut lines, "decided").await;
    assert_eq!(
        (e["id"].as_str(), e["status"].as_str()),
        (Some(id.as_str()), Some("confirmed"))
    );
    let (st, _) = h
        .call(
            &rita,
            Method::POST,
            &format!("/api/violations/{id}/undo"),
            None,
        )
        .await;
    assert_eq!(st, StatusCode::OK);
    let e = next_event(&mut lines, "returned").await;
    assert_eq!(e["id"].as_str(), Some(id.as_str()));
    // A violation the service records is announced as new.
    h.server.state.publish(roadwarden_server::Event::Violation {
        id: h.ids[1].clone(),
        camera: "cam-a".into(),
        kind: "no_helmet".into(),
        occurred_at: at(60),
        confidence: 0.7,
    });
    let e = next_event(&mut lines, "new").await;
    assert_eq!(e["id"].as_str(), Some(h.ids[1].as_str()));
}
dual_test!(the_queue_is_live);

async fn undo_inside_the_window_only(h: &Harness) {
    let rita = h.token("rita2", Role::Reviewer).await;
    let rolf = h.token("rolf", Role::Reviewer).await;
    let id = &h.ids[0];
    let (st, body) = h
        .call(
            &rita,
            Method::POST,
            &format!("/api/violations/{id}/review"),
            Some(json!({ "decision": "reject", "reason": "helmet_worn" })),
        )
        .await;
    assert_eq!(st, StatusCode::OK, "{body}");
    let until =
        chrono::DateTime::parse_from_rfc3339(body["undo_until"].as_str().expect("undo_until"))
            .expect("rfc3339");
    assert!(until > Utc::now(), "{until}");
    // Only the reviewer who decided may undo.
    let (st, body) = h
        .call(
            &rolf,
            Method::POST,
            &format!("/api/violations/{id}/undo"),
            None,
        )
        .await;
    assert_eq!(
        (st, body["error"].as_str()),
        (StatusCode::FORBIDDEN, Some("not_yours")),
        "{body}"
    );
    let (st, body) = h
        .call(
            &rita,
            Method::POST,
            &format!("/api/violations/{id}/undo"),
            None,
        )
        .await;
    assert_eq!(st, StatusCode::OK, "{body}");
    assert_eq!(body["status"], "pending");
    let rec = h.store.get(id).await.expect("get").expect("row");
    assert_eq!(rec.status, Status::Pending);
    // Appended, never deleted: the decision and the undo in the review log and the audit log.
    let log = h.store.review_log_of(id).await.expect("log");
    assert_eq!(
        log.iter()
            .map(|e| e.fields.action.as_str())
            .collect::<Vec<_>>(),
        ["review", "undo"]
    );
    assert_eq!(log[1].fields.prev_hash, log[0].entry_hash);
    assert!(
        log.iter()
            .all(|e| review_entry_hash(&e.fields) == e.entry_hash)
    );
    let audit = h.store.audit_log(Some(id)).await.expect("audit");
    assert_eq!(
        audit
            .iter()
            .map(|a| (a.0.as_str(), a.1.as_str()))
            .collect::<Vec<_>>(),
        [("rita2", "review"), ("rita2", "undo")]
    );
    let (st, _) = h
        .call(
            &rita,
            Method::POST,
            &format!("/api/violations/{id}/undo"),
            None,
        )
        .await;
    assert_eq!(st, StatusCode::CONFLICT, "nothing left to undo");
    // With no window (the strict server over the same store), an undo is refused and changes nothing.
    let id = &h.ids[1];
    let (st, _) = h
        .call_on(
            &h.strict.base,
            &rita,
            Method::POST,
            &format!("/api/violations/{id}/review"),
            Some(json!({ "decision": "confirm" })),
        )
        .await;
    assert_eq!(st, StatusCode::OK);
    let (st, body) = h
        .call_on(
            &h.strict.base,
            &rita,
            Method::POST,
            &format!("/api/violations/{id}/undo"),
            None,
        )
        .await;
    assert_eq!(
        (st, body["error"].as_str()),
        (StatusCode::CONFLICT, Some("undo_window_closed")),
        "{body}"
    );
    assert_eq!(
        h.store.get(id).await.expect("get").expect("row").status,
        Status::Confirmed
    );
    assert_eq!(h.store.review_log_of(id).await.expect("log").len(), 1);
}
dual_test!(undo_inside_the_window_only);

async fn bulk_reject_decides_each_case(h: &Harness) {
    let rita = h.token("rita2", Role::Reviewer).await;
    let otto = h.token("otto2", Role::Ops).await;
    // One already decided, one of another kind that cannot be rejected for a helmet, one unknown.
    h.store
        .decide(&h.ids[3], "rita", Decision::Confirm, "", "")
        .await
        .expect("decide");
    let unknown = uuid::Uuid::new_v4().to_string();
    let ids = [
        h.ids[0].clone(),
        h.ids[1].clone(),
        h.ids[2].clone(),
        h.ids[3].clone(),
        h.ids[5].clone(),
        unknown.clone(),
    ];
    let body = json!({ "ids": ids, "reason": "helmet_worn", "note": "rain on the lens" });
    let (st, _) = h
        .call(
            &otto,
            Method::POST,
            "/api/violations/bulk-reject",
            Some(body.clone()),
        )
        .await;
    assert_eq!(st, StatusCode::FORBIDDEN);
    let (st, out) = h
        .call(
            &rita,
            Method::POST,
            "/api/violations/bulk-reject",
            Some(body),
        )
        .await;
    assert_eq!(st, StatusCode::OK, "{out}");
    let outcomes: Vec<&str> = out["results"]
        .as_array()
        .expect("results")
        .iter()
        .map(|r| r["outcome"].as_str().expect("outcome"))
        .collect();
    assert_eq!(
        outcomes,
        [
            "rejected",
            "rejected",
            "rejected",
            "already_decided",
            "bad_reason",
            "not_found"
        ]
    );
    assert_eq!(out["rejected"], 3);
    for id in &h.ids[..3] {
        let r = h.store.reviews_of(id).await.expect("reviews");
        assert_eq!(r.len(), 1);
        assert_eq!(
            (
                r[0].status,
                r[0].reason.as_str(),
                r[0].reviewer.as_str(),
                r[0].note.as_str()
            ),
            (Status::Rejected, "helmet_worn", "rita2", "rain on the lens")
        );
        let audit = h.store.audit_log(Some(id)).await.expect("audit");
        assert_eq!(audit.len(), 1, "one audit entry per case");
        assert_eq!(
            (audit[0].0.as_str(), audit[0].1.as_str()),
            ("rita2", "review")
        );
    }
    assert_eq!(
        h.store
            .get(&h.ids[5])
            .await
            .expect("get")
            .expect("row")
            .status,
        Status::Pending
    );
    for bad in [
        json!({ "ids": [], "reason": "duplicate" }),
        json!({ "ids": [h.ids[4]], "reason": "no_such_reason" }),
        json!({ "ids": ["not-a-uuid"], "reason": "duplicate" }),
    ] {
        let (st, body) = h
            .call(
                &rita,
                Method::POST,
                "/api/violations/bulk-reject",
                Some(bad.clone()),
            )
            .await;
        assert_eq!(st, StatusCode::BAD_REQUEST, "{bad}: {body}");
    }
}
dual_test!(bulk_reject_decides_each_case);

async fn statistics_and_history(h: &Harness) {
    let rita = h.token("rita2", Role::Reviewer).await;
    let rolf = h.token("rolf", Role::Reviewer).await;
    let otto = h.token("otto2", Role::Ops).await;
    let decide = |t: &str, id: &str, body: Value| {
        let (t, id) = (t.to_owned(), id.to_owned());
        async move {
            let (st, b) = h
                .call(
                    &t,
                    Method::POST,
                    &format!("/api/violations/{id}/review"),
                    Some(body),
                )
                .await;
            assert_eq!(st, StatusCode::OK, "{b}");
        }
    };
    let ids = &h.ids;
    decide(&rita, &ids[0], json!({ "decision": "confirm" })).await;
    decide(
        &rita,
        &ids[1],
        json!({ "decision": "reject", "reason": "helmet_worn" }),
    )
    .await;
    decide(
        &rolf,
        &ids[2],
        json!({ "decision": "reject", "reason": "helmet_worn" }),
    )
    .await;
    decide(
        &rolf,
        &ids[3],
        json!({ "decision": "reject", "reason": "duplicate" }),
    )
    .await;
    decide(&rolf, &ids[5], json!({ "decision": "confirm" })).await;
    decide(
        &rita,
        &ids[6],
        json!({ "decision": "reject", "reason": "signal_not_red" }),
    )
    .await;

    // Reviewers may not read the statistics; ops may.
    let q = format!(
        "/api/stats?from={}&to={}",
        at(0).to_rfc3339_opts(chrono::SecondsFormat::Secs, true),
        to_micros(at(86_400))
    );
    assert_eq!(
        h.call(&rita, Method::GET, &q, None).await.0,
        StatusCode::FORBIDDEN
    );
    let (st, s) = h.call(&otto, Method::GET, &q, None).await;
    assert_eq!(st, StatusCode::OK, "{s}");
    let cams = s["cameras"].as_array().expect("cameras");
    assert_eq!(cams.len(), 2);
    assert_eq!(cams[0]["camera"], "cam-a");
    assert_eq!(
        cams[0]["total"],
        json!({ "day": "total", "flagged": 5, "confirmed": 1, "rejected": 3, "pending": 1, "precision": 0.25 })
    );
    assert_eq!(cams[0]["days"][0]["day"], "2026-05-28");
    assert_eq!(
        cams[1]["total"],
        json!({ "day": "total", "flagged": 3, "confirmed": 1, "rejected": 1, "pending": 1, "precision": 0.5 })
    );
    let rej = s["rejections"].as_array().expect("rejections");
    assert_eq!(rej[0]["camera"], "cam-a");
    assert_eq!(rej[0]["reason"], "helmet_worn");
    assert_eq!(rej[0]["count"], 2);
    assert!((rej[0]["share"].as_f64().expect("share") - 2.0 / 3.0).abs() < 1e-9);
    assert_eq!(rej[0]["threshold"]["class"], "no_helmet");
    assert_eq!(rej[0]["threshold"]["in_force"], 0.4);
    assert_eq!(rej[1]["reason"], "duplicate");
    assert!(
        rej[1]["threshold"].is_null(),
        "no threshold explains a duplicate"
    );
    assert_eq!(rej[2]["camera"], "cam-b");
    assert_eq!(rej[2]["threshold"]["class"], "traffic_light");
    // Reviewers: the decisions made now.
    let (_, s) = h.call(&otto, Method::GET, "/api/stats?days=1", None).await;
    let revs: Vec<(String, i64, i64, i64)> = s["reviewers"]
        .as_array()
        .expect("reviewers")
        .iter()
        .map(|r| {
            (
                r["reviewer"].as_str().expect("name").to_owned(),
                r["decisions"].as_i64().expect("n"),
                r["confirmed"].as_i64().expect("n"),
                r["rejected"].as_i64().expect("n"),
            )
        })
        .collect();
    assert_eq!(
        revs,
        [("rita2".to_owned(), 3, 1, 2), ("rolf".to_owned(), 3, 1, 2)]
    );
    assert!(s["reviewers"][0]["per_hour"].as_f64().is_some());
    for bad in [
        "/api/stats?days=0",
        "/api/stats?from=yesterday",
        "/api/stats?from=2&to=1",
    ] {
        assert_eq!(
            h.call(&otto, Method::GET, bad, None).await.0,
            StatusCode::BAD_REQUEST,
            "{bad}"
        );
    }

    // History: six decisions, newest first, in pages of four and two; rows name their case.
    let (st, p1) = h
        .call(&rita, Method::GET, "/api/history?limit=4", None)
        .await;
    assert_eq!(st, StatusCode::OK, "{p1}");
    let next = p1["next"].as_str().expect("a second page").to_owned();
    let (_, p2) = h
        .call(
            &rita,
            Method::GET,
            &format!("/api/history?limit=4&after={next}"),
            None,
        )
        .await;
    assert!(p2["next"].is_null());
    let rows: Vec<&Value> = p1["items"]
        .as_array()
        .expect("items")
        .iter()
        .chain(p2["items"].as_array().expect("items"))
        .collect();
    let order: Vec<&str> = rows.iter().map(|r| r["id"].as_str().expect("id")).collect();
    assert_eq!(
        order,
        [&ids[6], &ids[5], &ids[3], &ids[2], &ids[1], &ids[0]].map(String::as_str)
    );
    assert_eq!(rows[0]["href"], format!("/api/violations/{}", ids[6]));
    assert_eq!(rows[0]["reviewer"], "rita2");
    assert!(rows[0]["decided_at"].as_str().expect("time").ends_with('Z'));
    let (_, rolfs) = h
        .call(
            &rita,
            Method::GET,
            "/api/history?reviewer=rolf&status=rejected",
            None,
        )
        .await;
    assert_eq!(rolfs["items"].as_array().expect("items").len(), 2);
    for bad in [
        "/api/history?after=x",
        "/api/history?status=pending",
        "/api/history?limit=0",
    ] {
        assert_eq!(
            h.call(&rita, Method::GET, bad, None).await.0,
            StatusCode::BAD_REQUEST,
            "{bad}"
        );
    }

    // The time zone is the user's, kept with them.
    let (_, me) = h.call(&rita, Method::GET, "/api/me", None).await;
    assert_eq!(me["time_zone"], "UTC");
    let (st, _) = h
        .call(
            &rita,
            Method::PUT,
            "/api/me/time-zone",
            Some(json!({ "time_zone": "Europe/Berlin" })),
        )
        .await;
    assert_eq!(st, StatusCode::OK);
    let (_, me) = h.call(&rita, Method::GET, "/api/me", None).await;
    assert_eq!(me["time_zone"], "Europe/Berlin");
    let (_, me) = h.call(&rolf, Method::GET, "/api/me", None).await;
    assert_eq!(me["time_zone"], "UTC", "another user's is their own");
    let (st, _) = h
        .call(
            &rita,
            Method::PUT,
            "/api/me/time-zone",
            Some(json!({ "time_zone": "../../etc/passwd" })),
        )
        .await;
    assert_eq!(st, StatusCode::BAD_REQUEST);
    let audit = h.store.audit_log(None).await.expect("audit");
    assert!(audit.iter().any(|a| a.0 == "rita2" && a.1 == "time_zone"));
}
dual_test!(statistics_and_history);
