//! The review page in headless Chromium (Debian's `chromium`), driven over
//! the DevTools protocol: a reviewer logs in, confirms one violation with C,
//! rejects the next with R, a reason digit and Enter; the store and its audit
//! log show both; a screenshot of the page is kept under the target folder.

use std::collections::BTreeMap;
use std::io::BufRead;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use base64::Engine;
use chrono::{TimeZone, Utc};
use futures_util::{SinkExt, StreamExt};
use roadwarden_server::auth::hash_password;
use roadwarden_server::{AppState, ServerConfig};
use roadwarden_store::*;
use roadwarden_types::{CameraId, FrameRole, Violation, ViolationId, ViolationKind};
use serde_json::{Value, json};
use sha2::{Digest, Sha256};
use tokio_tungstenite::tungstenite::Message;

const SITE: &str = r#"
[[camera]]
id = "gate-north"
frame = [640, 384]
[camera.models]
helmet = "models/helmet.toml"
[camera.stop_line]
a = [420.0, 384.0]
b = [420.0, 40.0]
before = "left"
[camera.signal]
source = "video"
rois = [[600.0, 6.0, 632.0, 90.0]]
"#;

const PHOTO: &str = concat!(
    env!("CARGO_MANIFEST_DIR"),
    "/../../../shared/footage/s2tld-tiles/s2tld_tile_r1c0.png"
);

fn hasher(f: &ChainFields) -> String {
    hex::encode(Sha256::digest(serde_json::to_vec(f).expect("serialize")))
}

struct Browser {
    child: Child,
    _profile: tempfile::TempDir,
}

impl Drop for Browser {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Starts headless Chromium; returns it and its page target's DevTools websocket URL.
async fn chromium() -> (Browser, String) {
    let exe = ["chromium", "chromium-browser"]
        .into_iter()
        .find(|e| {
            Command::new(e)
                .arg("--version")
                .output()
                .is_ok_and(|o| o.status.success())
        })
        .expect("headless Chromium is needed: apt-get install chromium (scripts/test checks it)");
    let profile = tempfile::tempdir().expect("profile dir");
    let mut child = Command::new(exe)
        .args([
            "--headless=new",
            "--no-sandbox",
            "--disable-gpu",
            "--disable-dev-shm-usage",
            "--no-first-run",
            "--no-default-browser-check",
            "--disable-extensions",
            "--disable-background-networking",
            "--window-size=1280,900",
            "--remote-debugging-address=127.0.0.1",
            "--remote-debugging-port=0",
        ])
        .arg(format!("--user-data-dir={}", profile.path().display()))
        .arg("about:blank")
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .expect("start chromium");
    let stderr = child.stderr.take().expect("stderr");
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        for line in std::io::BufReader::new(stderr)
            .lines()
            .map_while(Result::ok)
        {
            if let Some(url) = line.strip_prefix("DevTools listening on ") {
                let _ = tx.send(url.trim().to_owned());
            }
        }
    });
    let browser = Browser {
        child,
        _profile: profile,
    };
    let ws = rx
        .recv_timeout(Duration::from_secs(60))
        .expect("Chromium announced its DevTools port within 60 s");
    let port = ws
        .strip_prefix("ws://127.0.0.1:")
        .and_then(|r| r.split('/').next())
        .expect("port")
        .to_owned();
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let list: Vec<Value> = reqwest::get(format!("http://127.0.0.1:{port}/json/list"))
            .await
            .expect("target list")
            .json()
            .await
            .expect("json");
        if let Some(t) = list.iter().find(|t| t["type"] == "page") {
            return (
                browser,
                t["webSocketDebuggerUrl"]
                    .as_str()
                    .expect("ws url")
                    .to_owned(),
            );
        }
        assert!(Instant::now() < deadline, "no page target");
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

type Ws =
    tokio_tungstenite::WebSocketStream<tokio_tungstenite::MaybeTlsStream<tokio::net::TcpStream>>;

struct Cdp {
    ws: Ws,
    next: u64,
}

impl Cdp {
    async fn call(&mut self, method: &str, params: Value) -> Value {
        self.next += 1;
        let id = self.next;
        let msg = json!({ "id": id, "method": method, "params": params });
        self.ws
            .send(Message::Text(msg.to_string().into()))
            .await
            .expect("send");
        let deadline = tokio::time::Instant::now() + Duration::from_secs(30);
        loop {
            let m = tokio::time::timeout_at(deadline, self.ws.next())
                .await
                .unwrap_or_else(|_| panic!("{method}: no answer in 30 s"))
                .expect("open")
                .expect("message");
            if let Message::Text(t) = m {
                let v: Value = serde_json::from_str(&t).expect("json");
                if v["id"] == id {
                    assert!(v.get("error").is_none(), "{method}: {v}");
                    return v["result"].clone();
                }
            }
        }
    }

    async fn eval(&mut self, expr: &str) -> Value {
        let r = self
            .call(
                "Runtime.evaluate",
                json!({ "expression": expr, "returnByValue": true, "awaitPromise": true }),
            )
            .await;
        assert!(r.get("exceptionDetails").is_none(), "{expr}: {r}");
        r["result"]["value"].clone()
    }

    /// Waits until `expr` is truthy.
    async fn wait_for(&mut self, expr: &str, what: &str) {
        let deadline = Instant::now() + Duration::from_secs(20);
        loop {
            if self.eval(&format!("!!({expr})")).await == json!(true) {
                return;
            }
            assert!(
                Instant::now() < deadline,
                "page never showed {what} ({expr})"
            );
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    async fn key(&mut self, key: &str, code: &str, vk: u32) {
        let text = if key.chars().count() == 1 {
            key.to_owned()
        } else if key == "Enter" {
            "\r".to_owned()
        } else {
            String::new()
        };
        self.call(
            "Input.dispatchKeyEvent",
            json!({ "type": "keyDown", "key": key, "code": code, "text": text, "windowsVirtualKeyCode": vk }),
        )
        .await;
        self.call(
            "Input.dispatchKeyEvent",
            json!({ "type": "keyUp", "key": key, "code": code, "windowsVirtualKeyCode": vk }),
        )
        .await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn reviewer_decides_with_the_keyboard() {
    let dir = tempfile::tempdir().expect("tempdir");
    let data = DataDir::new(dir.path().join("data"));
    data.create().expect("data");
    let store = Store::open_data_dir(&data).await.expect("store");
    store
        .put_user(
            "rita",
            Role::Reviewer,
            &hash_password("rita-reviews-all-day").expect("hash"),
            "test",
        )
        .await
        .expect("user");
    let photo = std::fs::read(PHOTO).expect("shared footage tile (see ../shared/README.md)");
    let mut ids = Vec::new();
    for i in 0..3 {
        let v = Violation {
            id: ViolationId::new(),
            kind: ViolationKind::NoHelmet,
            camera: CameraId::new("gate-north"),
            track_id: 10 + i,
            occurred_at: Utc
                .timestamp_opt(1_780_000_000 + i as i64 * 60, 0)
                .single()
                .expect("time"),
            confidence: 0.8,
            frames: vec![],
            signal: vec![],
            thresholds: BTreeMap::new(),
        };
        let rel = format!("evidence/gate-north/{}/key.png", v.id.0);
        let abs = data.resolve(&rel).expect("inside");
        std::fs::create_dir_all(abs.parent().expect("parent")).expect("mkdir");
        std::fs::write(&abs, &photo).expect("write");
        let ev = EvidenceItem::new(
            EvidenceKind::Photo,
            Some(FrameRole::Key),
            rel,
            hex::encode(Sha256::digest(&photo)),
            photo.len() as u64,
        );
        ids.push(v.id.0.to_string());
        store
            .insert(
                &NewViolation {
                    violation: v,
                    evidence: vec![ev],
                },
                hasher,
            )
            .await
            .expect("insert");
    }
    let site = roadwarden_rules::SiteConfig::parse(SITE).expect("site");
    let state = AppState::new(store.clone(), data.clone(), site, ServerConfig::default())
        .await
        .expect("state");
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let base = format!("http://{}", listener.local_addr().expect("addr"));
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    tokio::spawn(roadwarden_server::serve(listener, state, async {
        let _ = stopped.await;
    }));

    let (_browser, ws_url) = chromium().await;
    let (ws, _) = tokio_tungstenite::connect_async(ws_url.as_str())
        .await
        .expect("devtools websocket");
    let mut cdp = Cdp { ws, next: 0 };
    cdp.call("Page.enable", json!({})).await;
    cdp.call("Page.navigate", json!({ "url": format!("{base}/") }))
        .await;
    cdp.wait_for(
        "document.getElementById('login') && !document.getElementById('login').hidden",
        "the login form",
    )
    .await;
    // Log in by typing into the form.
    cdp.eval("document.getElementById('login-name').focus()")
        .await;
    cdp.call("Input.insertText", json!({ "text": "rita" }))
        .await;
    cdp.eval("document.getElementById('login-password').focus()")
        .await;
    cdp.call(
        "Input.insertText",
        json!({ "text": "rita-reviews-all-day" }),
    )
    .await;
    cdp.key("Enter", "Enter", 13).await;
    let shown = |id: &str| {
        format!(
            "document.getElementById('case-body').dataset.id === '{id}' && document.getElementById('case-body').hidden === false"
        )
    };
    cdp.wait_for(&shown(&ids[0]), "the first pending violation")
        .await;
    cdp.wait_for("document.querySelector('#photos img') && document.querySelector('#photos img').complete && document.querySelector('#photos img').naturalWidth > 0", "the photo").await;
    // What the page hides is really gone from view (author CSS must not override `hidden`).
    cdp.wait_for(
        "getComputedStyle(document.getElementById('login')).display === 'none' && \
         getComputedStyle(document.getElementById('reject-form')).display === 'none'",
        "the login and reject forms hidden",
    )
    .await;
    // J and K move through the queue.
    cdp.key("j", "KeyJ", 74).await;
    cdp.wait_for(&shown(&ids[1]), "the next violation after J")
        .await;
    cdp.key("k", "KeyK", 75).await;
    cdp.wait_for(&shown(&ids[0]), "the previous violation after K")
        .await;
    // C confirms the first; the second comes up.
    cdp.key("c", "KeyC", 67).await;
    cdp.wait_for(&shown(&ids[1]), "the second violation after C")
        .await;
    // R, reason 2, Enter rejects the second.
    cdp.key("r", "KeyR", 82).await;
    cdp.wait_for(
        "!document.getElementById('reject-form').hidden",
        "the reject form",
    )
    .await;
    cdp.key("2", "Digit2", 50).await;
    cdp.key("Enter", "Enter", 13).await;
    cdp.wait_for(&shown(&ids[2]), "the third violation after rejecting")
        .await;
    cdp.wait_for(
        "getComputedStyle(document.getElementById('reject-form')).display === 'none'",
        "the reject form closed after rejecting",
    )
    .await;
    cdp.wait_for(
        "document.querySelectorAll('#history li').length === 2",
        "two decisions in the history",
    )
    .await;

    let shot = cdp
        .call("Page.captureScreenshot", json!({ "format": "png" }))
        .await;
    let png = base64::engine::general_purpose::STANDARD
        .decode(shot["data"].as_str().expect("data"))
        .expect("base64");
    assert!(png.starts_with(b"\x89PNG"), "a PNG screenshot");
    let artifact = std::path::Path::new(env!("CARGO_TARGET_TMPDIR")).join("review-page.png");
    std::fs::write(&artifact, &png).expect("write screenshot");
    eprintln!("screenshot: {}", artifact.display());

    // The store and its audit log have both decisions, by rita.
    let reasons = roadwarden_server::REJECT_REASONS;
    let a = store.get(&ids[0]).await.expect("get").expect("row");
    let b = store.get(&ids[1]).await.expect("get").expect("row");
    let c = store.get(&ids[2]).await.expect("get").expect("row");
    assert_eq!(
        (a.status, b.status, c.status),
        (Status::Confirmed, Status::Rejected, Status::Pending)
    );
    let rb = store.reviews_of(&ids[1]).await.expect("reviews");
    assert_eq!(rb.len(), 1);
    assert_eq!(rb[0].reason, reasons[1]);
    assert_eq!(rb[0].reviewer, "rita");
    let log = store.audit_log(None).await.expect("audit");
    let reviews: Vec<_> = log.iter().filter(|e| e.1 == "review").collect();
    assert_eq!(reviews.len(), 2);
    assert!(reviews.iter().all(|e| e.0 == "rita"));
    assert_eq!(reviews[0].2.as_deref(), Some(ids[0].as_str()));
    assert_eq!(reviews[1].2.as_deref(), Some(ids[1].as_str()));
    assert!(
        reviews[1]
            .4
            .as_deref()
            .is_some_and(|s| s.contains(reasons[1]))
    );
    let _ = stop.send(());
    store.close().await;
}
