//! The review page in headless Chromium (Debian's `chromium`), driven over
//! the DevTools protocol: a reviewer logs in, confirms one violation with C,
//! rejects the next with R, a reason digit and Enter; the store and its audit
//! log show both. A reviewer narrows the queue with the filters (camera,
//! type, time range), sees a red-light case's signal timeline, decides in the
//! filtered queue and reads the history of decisions. An ops user sees the
//! camera health board refresh, previews a threshold change (the numbers the
//! store holds for the seeded confidences), saves it, and the audit log has
//! it. Screenshots of the pages are kept under the target folder
//! (`target/tmp/review-page.png`, `history-page.png`, `ops-page.png`).

mod common;

use std::io::BufRead;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use base64::Engine;
use chrono::{TimeZone, Utc};
use futures_util::{SinkExt, StreamExt};
use roadwarden_server::{CameraStatus, ServerConfig};
use roadwarden_store::*;
use roadwarden_types::{
    EvidenceFrame, FrameRole, SignalChange, SignalState, Violation, ViolationKind,
};
use serde_json::{Value, json};
use tokio_tungstenite::tungstenite::Message;

/// gate-north alone.
fn site() -> String {
    common::site_toml(&[common::camera_toml("gate-north", None, &[])])
}

const PHOTO: &str = concat!(
    env!("CARGO_MANIFEST_DIR"),
    "/../../../shared/footage/s2tld-tiles/s2tld_tile_r1c0.png"
);

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
    let (_dir, data) = common::temp_data();
    let store = Store::open_data_dir(&data).await.expect("store");
    common::put_users(&store, [("rita", "rita-reviews-all-day", Role::Reviewer)]).await;
    let photo = std::fs::read(PHOTO).expect("shared footage tile (see ../shared/README.md)");
    let mut ids = Vec::new();
    for i in 0..3 {
        let v = Violation {
            plate_read: None,
            track_id: 10 + i,
            ..common::violation(
                "gate-north",
                ViolationKind::NoHelmet,
                Utc.timestamp_opt(1_780_000_000 + i as i64 * 60, 0)
                    .single()
                    .expect("time"),
                0.8,
            )
        };
        let rel = format!("evidence/gate-north/{}/key.png", v.id.0);
        let ev = common::write_evidence(
            &data,
            &rel,
            &photo,
            EvidenceKind::Photo,
            Some(FrameRole::Key),
        );
        ids.push(v.id.0.to_string());
        common::insert(&store, v, vec![ev], common::hasher).await;
    }
    let mut server = common::Server::start(&store, &data, &site(), ServerConfig::default()).await;

    // Log in by typing into the form.
    let (_browser, mut cdp) = submit_login(&server.base, "rita", "rita-reviews-all-day").await;
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

    cdp.wait_for(
        &format!(
            "document.querySelector('#photos img') && document.querySelector('#photos img').src.includes('/api/evidence/') && \
             document.querySelector('#photos img').complete && document.querySelector('#photos img').naturalWidth > 0 && \
             document.getElementById('case-body').dataset.id === '{}'",
            ids[2]
        ),
        "the third case's photo",
    )
    .await;
    screenshot(&mut cdp, "review-page.png").await;

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
    server.stop();
    store.close().await;
}

// ---------------------------------------------------------------- filters, history, signal timeline, ops page

/// gate-north (no_helmet at 0.4) and gate-south.
fn site2() -> String {
    common::site_toml(&[
        common::camera_toml("gate-north", None, &[("no_helmet", 0.4)]),
        common::camera_toml("gate-south", None, &[]),
    ])
}

/// Chromium on `base`, its login form filled in as `name` and submitted.
async fn submit_login(base: &str, name: &str, password: &str) -> (Browser, Cdp) {
    let (browser, ws_url) = chromium().await;
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
    cdp.eval("document.getElementById('login-name').focus()")
        .await;
    cdp.call("Input.insertText", json!({ "text": name })).await;
    cdp.eval("document.getElementById('login-password').focus()")
        .await;
    cdp.call("Input.insertText", json!({ "text": password }))
        .await;
    cdp.key("Enter", "Enter", 13).await;
    (browser, cdp)
}

/// Chromium on `base`, logged in as `name`.
async fn logged_in(base: &str, name: &str, password: &str) -> (Browser, Cdp) {
    let (browser, mut cdp) = submit_login(base, name, password).await;
    cdp.wait_for(
        "document.getElementById('login').hidden && !document.getElementById('tabs').hidden",
        "the page after logging in",
    )
    .await;
    (browser, cdp)
}

async fn screenshot(cdp: &mut Cdp, name: &str) -> std::path::PathBuf {
    let shot = cdp
        .call("Page.captureScreenshot", json!({ "format": "png" }))
        .await;
    let png = base64::engine::general_purpose::STANDARD
        .decode(shot["data"].as_str().expect("data"))
        .expect("base64");
    assert!(png.starts_with(b"\x89PNG"), "a PNG screenshot");
    let artifact = std::path::Path::new(env!("CARGO_TARGET_TMPDIR")).join(name);
    std::fs::write(&artifact, &png).expect("write screenshot");
    eprintln!("screenshot: {}", artifact.display());
    artifact
}

/// Sets a form control's value as a user would and fires `change`.
async fn choose(cdp: &mut Cdp, id: &str, value_js: &str) {
    cdp.eval(&format!(
        "(() => {{ const e = document.getElementById('{id}'); e.value = {value_js}; \
         e.dispatchEvent(new Event('change', {{ bubbles: true }})); return e.value; }})()"
    ))
    .await;
}

/// A JS expression: the ids of the rows matching `selector`, as a JSON string.
fn ids_of(selector: &str) -> String {
    format!("JSON.stringify([...document.querySelectorAll('{selector}')].map(e => e.dataset.id))")
}

#[allow(clippy::too_many_arguments)]
async fn seed(
    store: &Store,
    camera: &str,
    kind: ViolationKind,
    at: chrono::DateTime<Utc>,
    confidence: f32,
    frames: Vec<EvidenceFrame>,
    signal: Vec<SignalChange>,
) -> String {
    let v = Violation {
        plate_read: None,
        frames,
        signal,
        ..common::violation(camera, kind, at, confidence)
    };
    let id = v.id.0.to_string();
    common::insert(store, v, vec![], common::hasher).await;
    id
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn reviewer_filters_sees_the_signal_timeline_and_the_history() {
    let (_dir, data) = common::temp_data();
    let store = Store::open_data_dir(&data).await.expect("store");
    common::put_users(&store, [("rita", "rita-reviews-all-day", Role::Reviewer)]).await;
    let now = Utc::now();
    let h = |hours: i64| now - chrono::Duration::hours(hours);
    let ms = |t: chrono::DateTime<Utc>, d: i64| t + chrono::Duration::milliseconds(d);
    let red_light_case = |t: chrono::DateTime<Utc>| {
        let frame = |role, d: i64, i: u64| EvidenceFrame {
            role,
            frame_index: i,
            captured_at: ms(t, d),
            boxes: vec![],
        };
        (
            vec![
                frame(FrameRole::Before, -200, 99),
                frame(FrameRole::At, 0, 100),
                frame(FrameRole::After, 200, 101),
            ],
            vec![
                SignalChange {
                    at: ms(t, -6000),
                    state: SignalState::Green,
                },
                SignalChange {
                    at: ms(t, -4000),
                    state: SignalState::Amber,
                },
                SignalChange {
                    at: ms(t, -2000),
                    state: SignalState::Red,
                },
            ],
        )
    };
    let a = seed(
        &store,
        "gate-north",
        ViolationKind::NoHelmet,
        h(10),
        0.8,
        vec![],
        vec![],
    )
    .await;
    let b = seed(
        &store,
        "gate-south",
        ViolationKind::NoHelmet,
        h(9),
        0.7,
        vec![],
        vec![],
    )
    .await;
    let (f, sg) = red_light_case(h(8));
    let c = seed(
        &store,
        "gate-south",
        ViolationKind::RedLight,
        h(8),
        0.9,
        f,
        sg,
    )
    .await;
    let e = seed(
        &store,
        "gate-north",
        ViolationKind::NoHelmet,
        h(7),
        0.6,
        vec![],
        vec![],
    )
    .await;
    let (f, sg) = red_light_case(h(6));
    let fv = seed(
        &store,
        "gate-south",
        ViolationKind::RedLight,
        h(6),
        0.5,
        f,
        sg,
    )
    .await;
    let (f, sg) = red_light_case(h(2));
    let d = seed(
        &store,
        "gate-south",
        ViolationKind::RedLight,
        h(2),
        0.85,
        f,
        sg,
    )
    .await;
    store
        .decide(&e, "rita", Decision::Confirm, "", "clear view")
        .await
        .expect("decide");
    store
        .decide(&fv, "rita", Decision::Reject, "signal_not_red", "amber")
        .await
        .expect("decide");
    let mut served = common::Server::start(&store, &data, &site2(), ServerConfig::default()).await;
    let (_browser, mut cdp) = logged_in(&served.base, "rita", "rita-reviews-all-day").await;
    let want = |ids: &[&String]| {
        serde_json::to_string(&ids.iter().map(|s| s.as_str()).collect::<Vec<_>>()).expect("json")
    };
    // The pending queue, oldest first; no ops tab for a reviewer.
    cdp.wait_for(
        &format!("{} === '{}'", ids_of("#queue li"), want(&[&a, &b, &c, &d])),
        "the pending queue",
    )
    .await;
    assert_eq!(
        cdp.eval("document.getElementById('tab-ops').hidden").await,
        json!(true)
    );
    // Camera, then type: only matching rows.
    choose(&mut cdp, "f-camera", "'gate-south'").await;
    cdp.wait_for(
        &format!("{} === '{}'", ids_of("#queue li"), want(&[&b, &c, &d])),
        "gate-south's pending violations",
    )
    .await;
    choose(&mut cdp, "f-kind", "'red_light'").await;
    cdp.wait_for(
        &format!("{} === '{}'", ids_of("#queue li"), want(&[&c, &d])),
        "gate-south's pending red-light violations",
    )
    .await;
    // The first one's signal timeline: the states around the crossing, the crossing in the red.
    cdp.wait_for(
        &format!("document.getElementById('case-body').dataset.id === '{c}' && !document.getElementById('signal-box').hidden"),
        "the red-light case with its signal",
    )
    .await;
    assert_eq!(
        cdp.eval("JSON.stringify([...document.querySelectorAll('#signal-timeline .seg')].map(s => s.dataset.state))")
            .await,
        json!(r#"["unknown","green","amber","red"]"#)
    );
    let inside = cdp
        .eval(
            "(() => { const x = parseFloat(document.getElementById('signal-crossing').style.left); \
             const r = document.querySelector('#signal-timeline .seg.state-red'); \
             const l = parseFloat(r.style.left), w = parseFloat(r.style.width); \
             return x > l && x < l + w && document.querySelectorAll('#signal-timeline .mark').length === 3; })()",
        )
        .await;
    assert_eq!(
        inside,
        json!(true),
        "the crossing is marked inside the red segment, with the before and after frames"
    );
    let summary = cdp
        .eval("document.getElementById('signal-summary').textContent")
        .await;
    assert!(
        summary
            .as_str()
            .is_some_and(|s| s.contains("red") && s.contains("2.0 s")),
        "{summary}"
    );
    screenshot(&mut cdp, "review-red-light.png").await;
    // A time range: from five hours ago.
    choose(
        &mut cdp,
        "f-from",
        &format!(
            "(() => {{ const t = new Date({}); return new Date(t.getTime() - t.getTimezoneOffset() * 60000).toISOString().slice(0, 16); }})()",
            (now - chrono::Duration::hours(5)).timestamp_millis()
        ),
    )
    .await;
    cdp.wait_for(
        &format!("{} === '{}'", ids_of("#queue li"), want(&[&d])),
        "only the red-light case of the last five hours",
    )
    .await;
    cdp.wait_for(
        &format!("document.getElementById('case-body').dataset.id === '{d}'"),
        "that case",
    )
    .await;
    // The keyboard still decides in a filtered queue.
    cdp.key("c", "KeyC", 67).await;
    cdp.wait_for(
        "document.querySelectorAll('#queue li').length === 0 && !document.getElementById('empty').hidden",
        "the filtered queue emptied by C",
    )
    .await;
    assert_eq!(
        store.get(&d).await.expect("get").expect("row").status,
        Status::Confirmed
    );
    cdp.eval("document.getElementById('f-clear').click()").await;
    cdp.wait_for(
        &format!("{} === '{}'", ids_of("#queue li"), want(&[&a, &b, &c])),
        "the whole pending queue again",
    )
    .await;
    // The history: every decided violation, the latest decision first, with who, why and the note.
    cdp.eval("location.hash = '#/history'").await;
    cdp.wait_for(
        &format!(
            "!document.getElementById('past').hidden && {} === '{}'",
            ids_of("#past-table tbody tr"),
            want(&[&d, &fv, &e])
        ),
        "the history of decisions",
    )
    .await;
    let rows: Value = serde_json::from_str(
        cdp.eval("JSON.stringify([...document.querySelectorAll('#past-table tbody tr')].map(r => [...r.cells].map(c => c.textContent)))")
            .await
            .as_str()
            .expect("rows"),
    )
    .expect("json");
    // Occurred, Camera, Type, Decision, Reason, By, Decided, Note
    assert_eq!(rows[0][3], "confirmed");
    assert_eq!(rows[0][5], "rita");
    assert_eq!(rows[1][1], "gate-south");
    assert_eq!(rows[1][3], "rejected");
    assert_eq!(rows[1][4], "signal not red");
    assert_eq!(rows[1][5], "rita");
    assert_eq!(rows[1][7], "amber");
    assert_eq!(rows[2][3], "confirmed");
    assert_eq!(rows[2][7], "clear view");
    screenshot(&mut cdp, "history-page.png").await;
    // A filter narrows the history too.
    choose(&mut cdp, "f-kind", "'no_helmet'").await;
    cdp.wait_for(
        &format!("{} === '{}'", ids_of("#past-table tbody tr"), want(&[&e])),
        "the no-helmet decisions only",
    )
    .await;
    // A decided case shows its review history and no decision buttons.
    cdp.eval("location.hash = '#/review'").await;
    choose(&mut cdp, "f-kind", "''").await;
    choose(&mut cdp, "f-status", "'rejected'").await;
    cdp.wait_for(
        &format!(
            "document.getElementById('case-body').dataset.id === '{fv}' && !document.getElementById('case-reviews-box').hidden"
        ),
        "the rejected case with its review history",
    )
    .await;
    let review = cdp
        .eval("document.querySelector('#case-reviews li').textContent + '|' + document.querySelector('#case-reviews li').dataset.reviewer + '|' + document.getElementById('actions').hidden")
        .await;
    assert!(
        review.as_str().is_some_and(
            |s| s.contains("rejected (signal not red) by rita") && s.ends_with("|rita|true")
        ),
        "{review}"
    );
    // The ops page is not for reviewers.
    cdp.eval("location.hash = '#/ops'").await;
    cdp.wait_for(
        "document.getElementById('ops').hidden && !document.getElementById('review').hidden",
        "the review page instead of ops",
    )
    .await;
    served.stop();
    store.close().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ops_user_sees_health_previews_and_saves_a_threshold() {
    let (_dir, data) = common::temp_data();
    let store = Store::open_data_dir(&data).await.expect("store");
    common::put_users(
        &store,
        [
            ("otto", "otto-tunes-the-cameras", Role::Ops),
            ("rita", "rita-reviews-all-day", Role::Reviewer),
        ],
    )
    .await;
    let now = Utc::now();
    // gate-north's no-helmet violations of the last hours: (confidence, status).
    let seeded = [
        (0.30, Status::Rejected),
        (0.50, Status::Confirmed),
        (0.60, Status::Pending),
        (0.80, Status::Confirmed),
        (0.90, Status::Pending),
    ];
    for (i, (conf, status)) in seeded.iter().enumerate() {
        let id = seed(
            &store,
            "gate-north",
            ViolationKind::NoHelmet,
            now - chrono::Duration::hours(6 - i as i64),
            *conf,
            vec![],
            vec![],
        )
        .await;
        match status {
            Status::Confirmed => {
                store
                    .decide(&id, "rita", Decision::Confirm, "", "")
                    .await
                    .expect("decide");
            }
            Status::Rejected => {
                store
                    .decide(&id, "rita", Decision::Reject, "helmet_worn", "")
                    .await
                    .expect("decide");
            }
            Status::Pending => {}
        }
    }
    // Not a no-helmet violation of gate-north: never in its no_helmet preview.
    seed(
        &store,
        "gate-south",
        ViolationKind::NoHelmet,
        now,
        0.95,
        vec![],
        vec![],
    )
    .await;
    let mut served = common::Server::start(&store, &data, &site2(), ServerConfig::default()).await;
    let board = served.state.camera_board();
    board.set(
        "gate-north",
        CameraStatus {
            state: "running".into(),
            input_fps: 25.0,
            analysed_fps: 12.5,
            last_frame_at: Some(now - chrono::Duration::seconds(2)),
            reconnects: 3,
            dropped_frames: 17,
            signal: Some("red".into()),
            last_error: Some("rtsp: read timeout (reconnected)".into()),
            next_attempt_at: None,
        },
    );
    let (_browser, mut cdp) = logged_in(&served.base, "otto", "otto-tunes-the-cameras").await;
    // An ops user lands on the ops page; the health board shows the runner's status.
    let cells = |camera: &str| {
        format!(
            "JSON.stringify([...document.querySelector('#health tbody tr[data-camera=\"{camera}\"]').cells].map(c => c.textContent))"
        )
    };
    cdp.wait_for(
        "!document.getElementById('ops').hidden && document.querySelectorAll('#health tbody tr').length === 2",
        "the health board",
    )
    .await;
    let north: Value = serde_json::from_str(
        cdp.eval(&cells("gate-north"))
            .await
            .as_str()
            .expect("cells"),
    )
    .expect("json");
    assert_eq!(north[0], "gate-north");
    assert_eq!(north[1], "running");
    assert_eq!(north[2], "25.0");
    assert_eq!(north[3], "12.5");
    assert!(
        north[4].as_str().is_some_and(|s| s.ends_with("s ago")),
        "{north}"
    );
    assert_eq!(north[5], "3");
    assert_eq!(north[6], "17");
    assert_eq!(north[7], "red");
    assert_eq!(north[8], "rtsp: read timeout (reconnected)");
    let south: Value = serde_json::from_str(
        cdp.eval(&cells("gate-south"))
            .await
            .as_str()
            .expect("cells"),
    )
    .expect("json");
    assert_eq!(south[1], "no status");
    // The board refreshes by itself.
    board.set(
        "gate-north",
        CameraStatus {
            state: "reconnecting".into(),
            reconnects: 4,
            last_error: Some("rtsp: connection refused".into()),
            ..CameraStatus::default()
        },
    );
    cdp.wait_for(
        "(() => { const r = document.querySelector('#health tbody tr[data-camera=\"gate-north\"]'); \
         return r && r.dataset.state === 'reconnecting' && r.cells[5].textContent === '4'; })()",
        "the board refreshed with the new status",
    )
    .await;
    // The editor starts at the value in force, with its preview.
    cdp.wait_for(
        "document.getElementById('thr-camera').value === 'gate-north' && \
         document.getElementById('thr-class').value === 'no_helmet' && \
         document.getElementById('thr-current').textContent.startsWith('0.40') && \
         document.getElementById('preview').dataset.value === '0.4' && !document.getElementById('preview').hidden",
        "the threshold in force and its preview",
    )
    .await;
    // Type a new value: the preview follows before anything is saved.
    cdp.eval(
        "(() => { const e = document.getElementById('thr-value'); e.value = ''; e.focus(); })()",
    )
    .await;
    cdp.call("Input.insertText", json!({ "text": "0.7" })).await;
    cdp.wait_for(
        "document.getElementById('preview').dataset.value === '0.7'",
        "the preview at 0.7",
    )
    .await;
    let shown: Value = serde_json::from_str(
        cdp.eval(
            "JSON.stringify(['kept', 'dropped'].map(s => ['', '-confirmed', '-rejected', '-pending']\
             .map(k => Number(document.getElementById('pv-' + s + k).textContent))))",
        )
        .await
        .as_str()
        .expect("numbers"),
    )
    .expect("json");
    // What the store holds for gate-north's no-helmet violations at 0.7.
    let direct = store
        .threshold_preview(
            "gate-north",
            &["no_helmet"],
            to_micros(now - chrono::Duration::days(30)),
            0.7,
        )
        .await
        .expect("store preview");
    let as_row = |c: &roadwarden_store::preview::StatusCounts| {
        json!([c.total, c.confirmed, c.rejected, c.pending])
    };
    assert_eq!(
        shown,
        json!([as_row(&direct.kept), as_row(&direct.dropped)])
    );
    // And those are the seeded confidences' numbers: kept 0.8 (confirmed) and 0.9 (pending);
    // dropped 0.3 (rejected), 0.5 (confirmed), 0.6 (pending).
    assert_eq!(shown, json!([[2, 1, 0, 1], [3, 1, 1, 1]]));
    let warning = cdp
        .eval("document.getElementById('pv-warning').textContent")
        .await;
    assert_eq!(
        warning,
        json!("1 confirmed violation would have been missed.")
    );
    assert!(
        store.thresholds(None).await.expect("thresholds").is_empty(),
        "a preview changes nothing"
    );
    screenshot(&mut cdp, "ops-page.png").await;
    // Save it: the table and the audit log have it.
    cdp.eval("document.getElementById('thr-save').click()")
        .await;
    cdp.wait_for(
        "document.getElementById('thr-status').dataset.saved === 'gate-north/no_helmet=0.7'",
        "the saved threshold",
    )
    .await;
    cdp.wait_for(
        "(() => { const r = document.querySelector('#thr-table tbody tr[data-camera=\"gate-north\"][data-class=\"no_helmet\"]'); \
         return r && r.cells[2].textContent === '0.70' && r.cells[3].textContent === 'api' && r.cells[4].textContent.startsWith('otto'); })()",
        "the new value in force in the table",
    )
    .await;
    let stored = store
        .thresholds(Some("gate-north"))
        .await
        .expect("thresholds");
    assert_eq!(stored.len(), 1);
    assert_eq!(
        (
            stored[0].class.as_str(),
            stored[0].value,
            stored[0].updated_by.as_str()
        ),
        ("no_helmet", 0.7, "otto")
    );
    let log = store.audit_log(None).await.expect("audit");
    let changes: Vec<_> = log.iter().filter(|e| e.1 == "threshold").collect();
    assert_eq!(changes.len(), 1, "{log:?}");
    assert_eq!(changes[0].0, "otto");
    let before: Value =
        serde_json::from_str(changes[0].3.as_deref().expect("before")).expect("json");
    let after: Value = serde_json::from_str(changes[0].4.as_deref().expect("after")).expect("json");
    assert_eq!(
        after,
        json!({ "camera": "gate-north", "class": "no_helmet", "value": 0.7 })
    );
    assert!(
        before["value"]
            .as_f64()
            .is_some_and(|v| (v - 0.4).abs() < 1e-6),
        "{before}"
    );
    served.stop();
    store.close().await;
}
