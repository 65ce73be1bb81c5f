//! The webhook publisher against a real HTTP receiver on 127.0.0.1 (a tiny
//! axum app in the test): the receiver fails the first two requests with 500
//! and then accepts; every event arrives exactly once, in order, with a valid
//! HMAC-SHA256 signature and one delivery id per event across its retries.
//! A receiver that never accepts gets a bounded number of attempts per event.
//! And a real threshold change over the API reaches the webhook.

mod common;

use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::http::{HeaderMap, StatusCode};
use chrono::{TimeZone, Utc};
use hmac::{Hmac, Mac};
use roadwarden_server::webhook::{self, WebhookConfig};
use roadwarden_server::{Event, ServerConfig};
use roadwarden_store::{Role, Store};
use serde_json::{Value, json};
use sha2::Sha256;
use tokio::sync::broadcast;

const SECRET: &[u8] = b"a shared secret only the receiver knows";

/// One request as the receiver saw it.
#[derive(Debug, Clone)]
struct Seen {
    body: Vec<u8>,
    signature: Option<String>,
    delivery: Option<String>,
    event: Option<String>,
    content_type: Option<String>,
    /// The status the receiver answered.
    answered: u16,
}

#[derive(Clone)]
struct Receiver {
    seen: Arc<Mutex<Vec<Seen>>>,
    /// Requests (counted from 0) below this number get a 500.
    fail_first: usize,
}

async fn receive(
    axum::extract::State(r): axum::extract::State<Receiver>,
    headers: HeaderMap,
    body: axum::body::Bytes,
) -> StatusCode {
    let h = |n: &str| {
        headers
            .get(n)
            .and_then(|v| v.to_str().ok())
            .map(str::to_owned)
    };
    let mut seen = r.seen.lock().unwrap_or_else(|p| p.into_inner());
    let status = if seen.len() < r.fail_first {
        StatusCode::INTERNAL_SERVER_ERROR
    } else {
        StatusCode::NO_CONTENT
    };
    seen.push(Seen {
        body: body.to_vec(),
        signature: h("x-roadwarden-signature"),
        delivery: h("x-roadwarden-delivery"),
        event: h("x-roadwarden-event"),
        content_type: h("content-type"),
        answered: status.as_u16(),
    });
    status
}

/// Starts a receiver; returns its URL and what it saw.
async fn receiver(fail_first: usize) -> (String, Arc<Mutex<Vec<Seen>>>) {
    let seen = Arc::new(Mutex::new(Vec::new()));
    let app = axum::Router::new()
        .route("/hook", axum::routing::post(receive))
        .with_state(Receiver {
            seen: seen.clone(),
            fail_first,
        });
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind receiver");
    let url = format!("http://{}/hook", listener.local_addr().expect("addr"));
    tokio::spawn(async move {
        let _ = axum::serve(listener, app).await;
    });
    (url, seen)
}

fn fast(url: &str) -> WebhookConfig {
    let mut cfg = WebhookConfig::new(url).expect("http url");
    cfg.initial_backoff = Duration::from_millis(20);
    cfg.max_backoff = Duration::from_millis(80);
    cfg.timeout = Duration::from_secs(5);
    cfg
}

fn events() -> Vec<Event> {
    let at = Utc.timestamp_opt(1_780_000_000, 0).single().expect("time");
    vec![
        Event::Violation {
            id: "0190a2b4-0000-7000-8000-000000000001".into(),
            camera: "gate-north".into(),
            kind: "no_helmet".into(),
            occurred_at: at,
            confidence: 0.8,
        },
        Event::Review {
            id: "0190a2b4-0000-7000-8000-000000000001".into(),
            camera: "gate-north".into(),
            kind: "no_helmet".into(),
            status: "rejected".into(),
            reason: Some("helmet_worn".into()),
            by: "rita".into(),
            at,
        },
        Event::Threshold {
            camera: "gate-north".into(),
            class: "no_helmet".into(),
            before: Some(0.4),
            after: 0.55,
            by: "otto".into(),
        },
        Event::Violation {
            id: "0190a2b4-0000-7000-8000-000000000002".into(),
            camera: "gate-south".into(),
            kind: "red_light".into(),
            occurred_at: at,
            confidence: 0.9,
        },
    ]
}

fn hmac_hex(body: &[u8]) -> String {
    let mut mac = Hmac::<Sha256>::new_from_slice(SECRET).expect("key");
    mac.update(body);
    format!("sha256={}", hex::encode(mac.finalize().into_bytes()))
}

/// Waits (bounded) until `n` requests were accepted.
async fn accepted(seen: &Arc<Mutex<Vec<Seen>>>, n: usize) -> Vec<Seen> {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(15);
    loop {
        let s = seen.lock().unwrap_or_else(|p| p.into_inner()).clone();
        if s.iter().filter(|r| r.answered < 300).count() >= n {
            return s;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "only {} of {n} events accepted in 15 s: {s:?}",
            s.iter().filter(|r| r.answered < 300).count()
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_event_arrives_once_in_order_signed() {
    let (url, seen) = receiver(2).await;
    let (tx, rx) = broadcast::channel(64);
    let cfg = fast(&url).with_secret(SECRET);
    assert!(
        !format!("{cfg:?}").contains("shared secret"),
        "the secret stays out of Debug"
    );
    let publisher = tokio::spawn(webhook::publish_events(cfg, rx));
    let sent = events();
    for e in &sent {
        tx.send(e.clone()).expect("a subscriber");
    }
    accepted(&seen, sent.len()).await;
    // Closing the channel ends the publisher once it has nothing left to retry.
    drop(tx);
    tokio::time::timeout(Duration::from_secs(10), publisher)
        .await
        .expect("the publisher stops when the channel closes")
        .expect("no panic");
    let all = seen.lock().unwrap_or_else(|p| p.into_inner()).clone();
    // Two failures, then one accepted request per event.
    assert_eq!(
        all.iter().map(|s| s.answered).collect::<Vec<_>>(),
        [500, 500, 204, 204, 204, 204],
        "{all:?}"
    );
    let ok: Vec<&Seen> = all.iter().filter(|s| s.answered < 300).collect();
    for (got, want) in ok.iter().zip(&sent) {
        let body: Value = serde_json::from_slice(&got.body).expect("JSON body");
        assert_eq!(body, serde_json::to_value(want).expect("event json"));
        let back: Event = serde_json::from_value(body.clone()).expect("an Event");
        assert_eq!(&back, want);
        assert_eq!(got.signature.as_deref(), Some(hmac_hex(&got.body).as_str()));
        assert_eq!(got.event.as_deref(), body["event"].as_str());
        assert_eq!(got.content_type.as_deref(), Some("application/json"));
        assert_eq!(
            webhook::signature(SECRET, &got.body),
            hmac_hex(&got.body),
            "the published helper agrees"
        );
    }
    // The retries of the first event carry its delivery id; every event has its own.
    let ids: Vec<&str> = all
        .iter()
        .map(|s| s.delivery.as_deref().expect("delivery id"))
        .collect();
    assert!(ids[0] == ids[1] && ids[1] == ids[2], "{ids:?}");
    let mut distinct = ids[2..].to_vec();
    distinct.sort();
    distinct.dedup();
    assert_eq!(distinct.len(), sent.len(), "{ids:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn attempts_are_bounded_and_unsigned_without_a_secret() {
    // Never accepts.
    let (url, seen) = receiver(usize::MAX).await;
    let (tx, rx) = broadcast::channel(64);
    let mut cfg = fast(&url);
    cfg.max_attempts = 3;
    let publisher = tokio::spawn(webhook::publish_events(cfg, rx));
    let sent = events();
    tx.send(sent[0].clone()).expect("subscriber");
    tx.send(sent[1].clone()).expect("subscriber");
    drop(tx);
    tokio::time::timeout(Duration::from_secs(10), publisher)
        .await
        .expect("gives up within its bounded attempts")
        .expect("no panic");
    let all = seen.lock().unwrap_or_else(|p| p.into_inner()).clone();
    assert_eq!(all.len(), 6, "3 attempts for each of 2 events: {all:?}");
    assert!(
        all.iter().all(|s| s.signature.is_none()),
        "no secret, no signature"
    );
    let first: Value = serde_json::from_slice(&all[0].body).expect("json");
    let fourth: Value = serde_json::from_slice(&all[3].body).expect("json");
    assert_eq!(first["event"], "violation");
    assert_eq!(fourth["event"], "review", "the next event after giving up");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_threshold_change_over_the_api_reaches_the_webhook() {
    let (url, seen) = receiver(0).await;
    let (dir, data) = common::temp_data();
    let store = Store::open_data_dir(&data).await.expect("store");
    common::put_users(&store, [("otto", "otto-tunes-the-cameras", Role::Ops)]).await;
    let site = common::site_toml(&[common::camera_toml(
        "gate-north",
        None,
        &[("no_helmet", 0.5)],
    )]);
    let mut server = common::Server::start(&store, &data, &site, ServerConfig::default()).await;
    let secret_file = dir.path().join("webhook.secret");
    std::fs::write(&secret_file, [SECRET, b"\n"].concat()).expect("secret file");
    let cfg = fast(&url)
        .with_secret_file(&secret_file)
        .expect("secret file");
    tokio::spawn(webhook::publish_events(cfg, server.state.events()));
    let base = server.base.clone();
    let http = common::http_client(Duration::from_secs(10), true);
    let token = roadwarden_server::auth::new_bearer_token();
    let otto = store.user_by_name("otto").await.expect("q").expect("otto");
    store
        .create_api_token(
            &otto,
            "webhook test",
            &roadwarden_server::auth::token_hash(&token),
            "test",
        )
        .await
        .expect("token");
    let r = http
        .put(format!(
            "{base}/api/cameras/gate-north/thresholds/no_helmet"
        ))
        .bearer_auth(&token)
        .json(&json!({ "value": 0.6 }))
        .send()
        .await
        .expect("put");
    assert_eq!(r.status(), reqwest::StatusCode::OK);
    let all = accepted(&seen, 1).await;
    let body: Value = serde_json::from_slice(&all[0].body).expect("json");
    assert_eq!(body["event"], "threshold");
    assert_eq!(body["camera"], "gate-north");
    assert_eq!(body["after"], 0.6);
    assert_eq!(body["by"], "otto");
    assert!(
        body["before"]
            .as_f64()
            .is_some_and(|b| (b - 0.5).abs() < 1e-6),
        "{body}"
    );
    assert_eq!(
        all[0].signature.as_deref(),
        Some(hmac_hex(&all[0].body).as_str()),
        "signed with the file's secret, its final newline not included"
    );
    // The event's JSON fits the documented schema's threshold branch.
    let doc: Value = http
        .get(format!("{base}/api/openapi.json"))
        .bearer_auth(&token)
        .send()
        .await
        .expect("openapi")
        .json()
        .await
        .expect("json");
    let branch = doc["components"]["schemas"]["Event"]["oneOf"]
        .as_array()
        .expect("oneOf")
        .iter()
        .find(|b| b["properties"]["event"]["const"] == "threshold")
        .expect("a documented threshold event")
        .clone();
    for k in branch["required"].as_array().expect("required") {
        assert!(
            body.get(k.as_str().expect("name")).is_some(),
            "{body} lacks {k}"
        );
    }
    for k in body.as_object().expect("object").keys() {
        assert!(
            branch["properties"].get(k).is_some(),
            "`{k}` is not documented"
        );
    }
    server.stop();
    store.close().await;
}
