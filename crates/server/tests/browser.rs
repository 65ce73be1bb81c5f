//! The review page in headless Chromium (Debian's `chromium`), driven over
//! the DevTools protocol: a reviewer logs in, confirms one violation with C,
//! rejects the next with R, a reason digit and Enter; the store and its audit
//! log show both. A reviewer narrows the queue with the filters (camera,
//! type, time range), sees a red-light case's signal timeline, decides in the
//! filtered queue and reads the history of decisions. An ops user sees the
//! camera health board refresh, previews a threshold change (the numbers the
//! store holds for the seeded confidences), saves it, and the audit log has
//! it. Two reviewers in two Chromium processes confirm in turns and are never shown the same case
//! (each page claims the case it shows; the other skips it), and one undoes her last decision
//! inside the window with U. Screenshots of the pages are kept under the target folder
//! (`target/tmp/review-page.png`, `history-page.png`, `ops-page.png`, `review-undo.png`).

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
            analysed_at: None,
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
    // The keyboard still decides in a filtered queue (once the red-light case's timeline was on screen).
    cdp.wait_for(
        "document.getElementById('signal-box').dataset.seen === 'true'",
        "the signal timeline seen",
    )
    .await;
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

// ---------------------------------------------------------------- two reviewers: claims, the live queue, undo

/// Records in `window.__seen` every case the page shows (each `data-id` the case body takes).
async fn record_cases(cdp: &mut Cdp) {
    cdp.eval(
        "(() => { window.__seen = []; const b = document.getElementById('case-body'); \
         const note = () => { if (!b.hidden && b.dataset.id && window.__seen[window.__seen.length - 1] !== b.dataset.id) window.__seen.push(b.dataset.id); }; \
         note(); new MutationObserver(note).observe(b, { attributes: true, attributeFilter: ['data-id', 'hidden'] }); return true; })()",
    )
    .await;
}

/// The case the page shows (`None`: the queue is empty).
async fn shown_case(cdp: &mut Cdp) -> Option<String> {
    cdp.eval(
        "(() => { const b = document.getElementById('case-body'); return b.hidden ? null : (b.dataset.id || null); })()",
    )
    .await
    .as_str()
    .map(str::to_owned)
}

/// Confirms the case shown with C and waits for the next (or the empty queue); the next case.
async fn confirm_and_next(cdp: &mut Cdp, current: &str) -> Option<String> {
    cdp.key("c", "KeyC", 67).await;
    cdp.wait_for(
        &format!(
            "(() => {{ const b = document.getElementById('case-body'); \
             return (b.hidden && !document.getElementById('empty').hidden) || (!b.hidden && b.dataset.id && b.dataset.id !== '{current}'); }})()"
        ),
        "the next case after C",
    )
    .await;
    shown_case(cdp).await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_reviewers_never_get_the_same_case_and_undo_inside_the_window() {
    let (_dir, data) = common::temp_data();
    let store = Store::open_data_dir(&data).await.expect("store");
    common::put_users(
        &store,
        [
            ("rita", "rita-reviews-all-day", Role::Reviewer),
            ("rolf", "rolf-reviews-all-night", Role::Reviewer),
        ],
    )
    .await;
    let mut ids = Vec::new();
    for i in 0..6 {
        let v = Violation {
            track_id: 20 + i,
            ..common::violation(
                "gate-north",
                ViolationKind::NoHelmet,
                Utc.timestamp_opt(1_780_000_000 + i as i64 * 60, 0)
                    .single()
                    .expect("time"),
                0.8,
            )
        };
        ids.push(v.id.0.to_string());
        common::insert(&store, v, vec![], common::hasher).await;
    }
    let mut server = common::Server::start(
        &store,
        &data,
        &site(),
        ServerConfig {
            undo_window: Duration::from_secs(600),
            ..ServerConfig::default()
        },
    )
    .await;

    // Two reviewers, each in a Chromium of their own, open the queue.
    let (_b1, mut rita) = logged_in(&server.base, "rita", "rita-reviews-all-day").await;
    record_cases(&mut rita).await;
    rita.wait_for(
        "!document.getElementById('case-body').hidden && document.getElementById('case-body').dataset.id",
        "rita's first case",
    )
    .await;
    let (_b2, mut rolf) = logged_in(&server.base, "rolf", "rolf-reviews-all-night").await;
    record_cases(&mut rolf).await;
    rolf.wait_for(
        "!document.getElementById('case-body').hidden && document.getElementById('case-body').dataset.id",
        "rolf's first case",
    )
    .await;
    let mut a = shown_case(&mut rita).await;
    let mut b = shown_case(&mut rolf).await;
    assert!(a.is_some() && b.is_some());
    assert_ne!(a, b, "both reviewers were shown the same case");
    let claims = store.active_claims().await.expect("claims");
    let holder = |id: &Option<String>| {
        claims
            .iter()
            .find(|c| Some(&c.violation_id) == id.as_ref())
            .map(|c| c.by.clone())
    };
    assert_eq!(holder(&a).as_deref(), Some("rita"));
    assert_eq!(holder(&b).as_deref(), Some("rolf"));

    // They confirm in turns until the queue is empty for both.
    let deadline = Instant::now() + Duration::from_secs(120);
    while a.is_some() || b.is_some() {
        assert!(Instant::now() < deadline, "the queue never emptied");
        if let Some(id) = a.clone() {
            a = confirm_and_next(&mut rita, &id).await;
        }
        if let Some(id) = b.clone() {
            b = confirm_and_next(&mut rolf, &id).await;
        }
        assert!(
            a.is_none() || a != b,
            "both reviewers were shown the same case {a:?}"
        );
    }
    let seen = |v: Value| -> Vec<String> {
        v.as_array()
            .expect("seen")
            .iter()
            .map(|x| x.as_str().expect("id").to_owned())
            .collect()
    };
    let seen_rita = seen(rita.eval("window.__seen").await);
    let seen_rolf = seen(rolf.eval("window.__seen").await);
    assert!(
        seen_rita.iter().all(|id| !seen_rolf.contains(id)),
        "a case reached both reviewers: rita {seen_rita:?}, rolf {seen_rolf:?}"
    );
    assert_eq!(seen_rita.len() + seen_rolf.len(), ids.len());
    // Each case was decided once, by the reviewer who was shown it.
    for id in &ids {
        let r = store.reviews_of(id).await.expect("reviews");
        assert_eq!(r.len(), 1, "{id}");
        let by = if seen_rita.contains(id) {
            "rita"
        } else {
            "rolf"
        };
        assert_eq!(r[0].reviewer, by, "{id}");
        assert_eq!(r[0].status, Status::Confirmed);
    }

    // Rita undoes her last decision inside the window: the case is back, hers, pending.
    let last = seen_rita.last().expect("rita decided").clone();
    rita.wait_for(
        &format!(
            "!document.getElementById('undo-bar').hidden && document.getElementById('undo-bar').dataset.id === '{last}'"
        ),
        "the undo offer",
    )
    .await;
    rita.key("u", "KeyU", 85).await;
    rita.wait_for(
        &format!(
            "!document.getElementById('case-body').hidden && document.getElementById('case-body').dataset.id === '{last}' && \
             !document.getElementById('actions').hidden && document.getElementById('undo-bar').hidden"
        ),
        "the undone case, decidable again",
    )
    .await;
    screenshot(&mut rita, "review-undo.png").await;
    let rec = store.get(&last).await.expect("get").expect("row");
    assert_eq!(rec.status, Status::Pending);
    let log = store.review_log_of(&last).await.expect("log");
    assert_eq!(
        log.iter()
            .map(|e| (e.fields.action.as_str(), e.fields.actor.as_str()))
            .collect::<Vec<_>>(),
        [("review", "rita"), ("undo", "rita")]
    );
    // The camera's whole review log still chains: every decision, then the undo appended last.
    let chain = store
        .review_log_page("gate-north", 0, 1000)
        .await
        .expect("review log");
    assert_eq!(chain.len(), ids.len() + 1);
    let mut prev = GENESIS_HASH.to_owned();
    for e in &chain {
        assert_eq!(e.fields.prev_hash, prev, "entry {}", e.fields.seq);
        assert_eq!(review_entry_hash(&e.fields), e.entry_hash);
        prev = e.entry_hash.clone();
    }
    assert_eq!(chain.last().map(|e| e.fields.action.as_str()), Some("undo"));
    let audit = store.audit_log(Some(&last)).await.expect("audit");
    assert_eq!(audit.last().map(|e| e.1.as_str()), Some("undo"));
    // The live queue told rolf; the case is rita's, so his page still skips it.
    rolf.eval("(() => { location.hash = '#/history'; return true; })()")
        .await;
    rolf.wait_for(
        "document.querySelectorAll('#past-table tbody tr').length > 0",
        "rolf's history",
    )
    .await;
    rolf.eval("(() => { location.hash = '#/review'; return true; })()")
        .await;
    rolf.wait_for(
        "!document.getElementById('review').hidden && !document.getElementById('empty').hidden && document.getElementById('case-body').hidden",
        "rolf's queue without rita's case",
    )
    .await;
    let seen_rolf = seen(rolf.eval("window.__seen").await);
    assert!(!seen_rolf.contains(&last), "rolf was shown rita's case");
    let claims = store.active_claims().await.expect("claims");
    assert_eq!(claims.len(), 1);
    assert_eq!(
        (claims[0].violation_id.as_str(), claims[0].by.as_str()),
        (last.as_str(), "rita")
    );
    server.stop();
    store.close().await;
}

// ---------------------------------------------------------------- one red-light case on one screen

const CLIP: &str = concat!(
    env!("CARGO_MANIFEST_DIR"),
    "/../../../shared/footage/intel-parking/car-detection.mp4"
);

/// At 1366x768 every element of a red-light case is above the fold and nothing scrolls; C is
/// refused (and says why) until the signal timeline was on screen, then confirms. A plate typed
/// into the field is stored normalised. Screenshot: `target/tmp/review-one-screen.png`.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn red_light_case_fits_one_screen_and_c_waits_for_the_timeline() {
    let (_dir, data) = common::temp_data();
    let store = Store::open_data_dir(&data).await.expect("store");
    common::put_users(&store, [("rita", "rita-reviews-all-day", Role::Reviewer)]).await;
    let photo = std::fs::read(PHOTO).expect("shared footage tile (see ../shared/README.md)");
    let clip = std::fs::read(CLIP).expect("shared footage clip (see ../shared/README.md)");
    let t = Utc::now() - chrono::Duration::hours(1);
    let ms = |d: i64| t + chrono::Duration::milliseconds(d);
    let bx = |x1: f32, y1: f32, x2: f32, y2: f32, name: &str, score: f32| {
        roadwarden_types::EvidenceBox {
            bbox: roadwarden_types::BBox::new(x1, y1, x2, y2),
            class_id: roadwarden_types::ClassId(0),
            class_name: name.into(),
            score,
        }
    };
    let frame = |role, d: i64, i: u64| EvidenceFrame {
        role,
        frame_index: i,
        captured_at: ms(d),
        analysed_at: None,
        boxes: vec![
            bx(120.0, 90.0, 220.0, 220.0, "motorbike", 0.8),
            bx(150.0, 70.0, 185.0, 105.0, "Without Helmet", 0.7),
        ],
    };
    let v = Violation {
        frames: vec![
            frame(FrameRole::After, 300, 103),
            frame(FrameRole::At, 0, 100),
            frame(FrameRole::Before, -300, 97),
        ],
        signal: vec![
            SignalChange {
                at: ms(-6000),
                state: SignalState::Green,
            },
            SignalChange {
                at: ms(-4000),
                state: SignalState::Amber,
            },
            SignalChange {
                at: ms(-2000),
                state: SignalState::Red,
            },
        ],
        ..common::violation("gate-north", ViolationKind::RedLight, t, 0.9)
    };
    let id = v.id.0.to_string();
    let mut ev = Vec::new();
    for role in [FrameRole::After, FrameRole::At, FrameRole::Before] {
        let name = format!("{role:?}").to_lowercase();
        for (kind, suffix) in [(EvidenceKind::Photo, "photo"), (EvidenceKind::Raw, "raw")] {
            let rel = format!("evidence/gate-north/{id}/{name}-{suffix}.png");
            ev.push(common::write_evidence(
                &data,
                &rel,
                &photo,
                kind,
                Some(role),
            ));
        }
    }
    ev.push(common::write_evidence(
        &data,
        &format!("evidence/gate-north/{id}/clip.mp4"),
        &clip,
        EvidenceKind::Clip,
        None,
    ));
    common::insert(&store, v, ev, common::hasher).await;
    let mut server = common::Server::start(&store, &data, &site(), ServerConfig::default()).await;
    let (browser, ws_url) = chromium().await;
    let _browser = browser;
    let (ws, _) = tokio_tungstenite::connect_async(ws_url.as_str())
        .await
        .expect("devtools websocket");
    let mut cdp = Cdp { ws, next: 0 };
    cdp.call(
        "Emulation.setDeviceMetricsOverride",
        json!({ "width": 1366, "height": 768, "deviceScaleFactor": 1, "mobile": false }),
    )
    .await;
    // Log in (the page below the fold first: a short window keeps the timeline off screen).
    cdp.call("Page.enable", json!({})).await;
    cdp.call(
        "Page.navigate",
        json!({ "url": format!("{}/", server.base) }),
    )
    .await;
    cdp.wait_for(
        "document.getElementById('login') && !document.getElementById('login').hidden",
        "the login form",
    )
    .await;
    // Before logging in: squeeze the viewport so the case's lower half is off screen.
    cdp.call(
        "Emulation.setDeviceMetricsOverride",
        json!({ "width": 1366, "height": 160, "deviceScaleFactor": 1, "mobile": false }),
    )
    .await;
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
    cdp.wait_for(
        &format!("document.getElementById('case-body').dataset.id === '{id}' && !document.getElementById('case-body').hidden"),
        "the red-light case",
    )
    .await;
    // The timeline is below a 160 px window: C is refused, and the page says why.
    assert_eq!(
        cdp.eval("document.getElementById('signal-box').dataset.seen")
            .await,
        json!("false")
    );
    cdp.eval("document.getElementById('case').scrollTop = 0")
        .await;
    cdp.key("c", "KeyC", 67).await;
    // The refusal brings the timeline into view; once it has been seen the page says so (either
    // text names the signal timeline).
    cdp.wait_for(
        "document.getElementById('status').textContent.toLowerCase().includes('signal timeline')",
        "the refusal",
    )
    .await;
    assert_eq!(
        store.get(&id).await.expect("get").expect("row").status,
        Status::Pending,
        "C before the timeline was seen confirms nothing"
    );
    // Back to 1366x768: everything fits, the timeline is seen.
    cdp.call(
        "Emulation.setDeviceMetricsOverride",
        json!({ "width": 1366, "height": 768, "deviceScaleFactor": 1, "mobile": false }),
    )
    .await;
    cdp.eval("document.getElementById('case').scrollTop = 0; window.scrollTo(0, 0)")
        .await;
    cdp.wait_for(
        "[...document.querySelectorAll('#photos img')].length === 3 && [...document.querySelectorAll('#photos img')].every(i => i.complete && i.naturalWidth > 0)",
        "the three photos",
    )
    .await;
    cdp.wait_for(
        "document.getElementById('zoom-canvas').dataset.drawn",
        "the head zoom drawn",
    )
    .await;
    cdp.wait_for(
        "document.getElementById('clip').readyState >= 1",
        "the clip's metadata",
    )
    .await;
    cdp.wait_for(
        "document.getElementById('signal-box').dataset.seen === 'true'",
        "the timeline seen",
    )
    .await;
    // Photos in time order with the signal's state on each.
    assert_eq!(
        cdp.eval("JSON.stringify([...document.querySelectorAll('#photos figure')].map(f => f.dataset.role + ':' + f.querySelector('.signal-badge').dataset.state))")
            .await,
        json!(r#"["before:red","at:red","after:red"]"#)
    );
    // Every element above the fold, none cut off, nothing to scroll.
    let layout: Value = serde_json::from_str(
        cdp.eval(
            "JSON.stringify({ \
               els: ['#case-title', '#case-meta', '#photos figure:nth-child(1) img', '#photos figure:nth-child(2) img', \
                     '#photos figure:nth-child(3) img', '#photos figure:nth-child(3) .signal-badge', '#clip', '#zoom-canvas', \
                     '#signal-timeline', '#signal-axis', '#signal-summary', '#plate', '#confirm', '#reject'] \
                 .map(s => { const r = document.querySelector(s).getBoundingClientRect(); \
                   return [s, Math.round(r.top), Math.round(r.bottom), Math.round(r.left), Math.round(r.right), Math.round(r.width * r.height)]; }), \
               docH: document.documentElement.scrollHeight, caseH: document.getElementById('case').scrollHeight, \
               caseClient: document.getElementById('case').clientHeight, w: innerWidth, h: innerHeight })",
        )
        .await
        .as_str()
        .expect("layout"),
    )
    .expect("json");
    eprintln!("layout at 1366x768: {layout}");
    assert_eq!(
        (layout["w"].clone(), layout["h"].clone()),
        (json!(1366), json!(768))
    );
    for e in layout["els"].as_array().expect("els") {
        let (top, bottom, left, right, area) = (
            e[1].as_i64().expect("top"),
            e[2].as_i64().expect("bottom"),
            e[3].as_i64().expect("left"),
            e[4].as_i64().expect("right"),
            e[5].as_i64().expect("area"),
        );
        assert!(area > 0, "{} is shown: {e}", e[0]);
        assert!(
            top >= 0 && bottom <= 768 && left >= 0 && right <= 1366,
            "{} above the fold: {e}",
            e[0]
        );
    }
    assert!(
        layout["docH"].as_i64().expect("docH") <= 768,
        "the page does not scroll: {layout}"
    );
    assert!(
        layout["caseH"].as_i64().expect("caseH") <= layout["caseClient"].as_i64().expect("client"),
        "the case does not scroll: {layout}"
    );
    screenshot(&mut cdp, "review-one-screen.png").await;
    // P zooms on the plate (no plate box: the lower part of the motorbike).
    cdp.key("p", "KeyP", 80).await;
    cdp.wait_for(
        "document.getElementById('zoom-canvas').dataset.what === 'plate' && document.getElementById('zoom-canvas').dataset.drawn && document.getElementById('zoom-caption').textContent.includes('plate')",
        "the plate zoom",
    )
    .await;
    // E edits the plate; Enter saves it, normalised.
    cdp.key("e", "KeyE", 69).await;
    cdp.wait_for(
        "document.activeElement === document.getElementById('plate')",
        "the plate field focused",
    )
    .await;
    cdp.call("Input.insertText", json!({ "text": "ka-01 ab 1234" }))
        .await;
    cdp.key("Enter", "Enter", 13).await;
    cdp.wait_for(
        "document.getElementById('plate-status').dataset.saved === 'KA01AB1234'",
        "the plate saved",
    )
    .await;
    assert_eq!(
        store
            .get(&id)
            .await
            .expect("get")
            .expect("row")
            .plate
            .as_deref(),
        Some("KA01AB1234")
    );
    // Now C confirms.
    cdp.key("c", "KeyC", 67).await;
    cdp.wait_for(
        "document.querySelectorAll('#queue li').length === 0",
        "the case confirmed and gone from the queue",
    )
    .await;
    assert_eq!(
        store.get(&id).await.expect("get").expect("row").status,
        Status::Confirmed
    );
    server.stop();
    store.close().await;
}
