//! `roadwarden serve` running the site's cameras, as an operator runs it: the real binary with file
//! cameras (synthetic scenes played at their own pace), real models, real GStreamer, the SQLite store in
//! the data folder, real HTTP on 127.0.0.1 and the Mosquitto broker at 127.0.0.1:1883.
//!
//! One service run shows: violations recorded in the store, listed by the API and published on MQTT once
//! each; an ops user's threshold change applied from a later frame (the camera's confident no-helmet
//! detections stop while frames keep being analysed), audited, and refused to a reviewer; signal reports;
//! a refused reload that keeps the cameras; SIGHUP adding a second camera without restarting the first;
//! SIGTERM exiting 0 with every violation handed to the recorder committed.

mod common;

use std::collections::BTreeMap;
use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Stdio};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, mpsc};
use std::time::{Duration, Instant};

use common::{
    add_user, data_args, first_line, no_helmet_on_red, root, serve_command, synth, token,
    wait_exit, write, write_scene,
};
use serde_json::Value;

/// A scene with one rider without a helmet on red, crossing the stop line at about `cross_s`.
fn scene(dir: &Path, name: &str, duration_s: f64, from_x: f64, speed: f64) -> PathBuf {
    let toml = write_scene(dir, name, &no_helmet_on_red(21, duration_s, from_x, speed));
    let video = dir.join(format!("{name}.mp4"));
    synth(&toml, &video, &dir.join(format!("{name}.json")));
    video
}

/// A site file with one camera per (id, video), analysing 2 frames a second.
fn site(cameras: &[(&str, &Path)]) -> String {
    let models = root().join("models");
    let mut s = String::new();
    for (id, video) in cameras {
        let camera = roadwarden_testkit::site::camera(id)
            .analysis_fps(2.0)
            .source_url(&video.display().to_string())
            .helmet(&models.join("helmet-yolov12m.toml").display().to_string())
            .two_wheeler(&models.join("fastestdet-352.toml").display().to_string())
            .hysteresis_frames(2)
            .section("[camera.thresholds]\nno_helmet = 0.4\ntwo_wheeler = 0.3")
            .section("[camera.helmet]\nmin_votes = 3\nwindow = 5\nmin_head_px = 14.0");
        s.push_str(&camera.toml());
        s.push('\n');
    }
    s
}

/// A user with a bearer token.
fn user(data: &Path, name: &str, role: &str) -> String {
    add_user(data, name, role, &format!("{name}-has-a-long-password"));
    format!("Bearer {}", token(&data_args(data), name, None))
}

/// One HTTP/1.1 request; (status, body as JSON or a string).
fn http(addr: &str, method: &str, path: &str, auth: &str, body: &str) -> (u16, Value) {
    let headers = [
        ("Authorization", auth),
        ("Content-Type", "application/json"),
    ];
    let a = common::http(addr, method, path, &headers, body, Duration::from_secs(70));
    let body = a.text();
    let json = serde_json::from_str(&body).unwrap_or(Value::String(body));
    (a.status, json)
}

/// The running service; killed if the test fails half-way.
struct Serve {
    child: Child,
    addr: String,
    stderr: Arc<Mutex<String>>,
}

impl Serve {
    fn start(site: &Path, data: &Path, topic: &str) -> Serve {
        let mut child = serve_command(site)
            .args(["--mqtt", "127.0.0.1:1883", "--mqtt-topic", topic, "--data"])
            .arg(data)
            .env_remove("RUST_LOG")
            .stderr(Stdio::piped())
            .spawn()
            .expect("spawn serve");
        let stderr = Arc::new(Mutex::new(String::new()));
        let (err, sink) = (child.stderr.take().expect("stderr"), stderr.clone());
        std::thread::spawn(move || {
            for line in BufReader::new(err).lines().map_while(Result::ok) {
                let mut s = sink.lock().unwrap();
                s.push_str(&line);
                s.push('\n');
            }
        });
        let stdout = child.stdout.take().expect("stdout");
        let mut serve = Serve {
            child,
            addr: String::new(),
            stderr,
        };
        let line = first_line(stdout, Duration::from_secs(60)).unwrap_or_default();
        serve.addr = match line.trim().strip_prefix("listening on http://") {
            Some(a) => a.to_owned(),
            None => panic!("serve printed {line:?}: {}", serve.log()),
        };
        serve
    }

    fn log(&self) -> String {
        self.stderr.lock().unwrap().clone()
    }

    fn signal(&self, name: &str) {
        let st = common::signal(&self.child, name).expect("kill");
        assert!(st.success());
    }

    /// The camera's `/pipeline` answer.
    fn pipeline(&self, camera: &str, auth: &str) -> Value {
        self.try_pipeline(camera, auth)
            .unwrap_or_else(|| panic!("no camera {camera}: {}", self.log()))
    }

    /// The same, `None` while the camera is not in the site in force.
    fn try_pipeline(&self, camera: &str, auth: &str) -> Option<Value> {
        let (s, b) = http(
            &self.addr,
            "GET",
            &format!("/api/cameras/{camera}/pipeline"),
            auth,
            "",
        );
        if s == 404 {
            return None;
        }
        assert_eq!(s, 200, "{b}");
        Some(b)
    }

    /// Polls `probe` every 200 ms until it gives a value, for at most `secs`.
    fn wait_for<T>(&self, what: &str, secs: u64, mut probe: impl FnMut() -> Option<T>) -> T {
        let deadline = Instant::now() + Duration::from_secs(secs);
        loop {
            if let Some(v) = probe() {
                return v;
            }
            assert!(
                Instant::now() < deadline,
                "no {what} within {secs} s: {}",
                self.log()
            );
            std::thread::sleep(Duration::from_millis(200));
        }
    }
}

impl Drop for Serve {
    fn drop(&mut self) {
        if self.child.try_wait().ok().flatten().is_none() {
            let _ = self.child.kill();
            let _ = self.child.wait();
        }
    }
}

/// Subscribes to the service's MQTT topics; the violation ids it hears, in order.
fn subscribe(filter: &str) -> (mpsc::Receiver<String>, rumqttc::Client, Arc<AtomicBool>) {
    use rumqttc::{Client, Event, MqttOptions, Packet, QoS};
    let mut opts = MqttOptions::new(
        format!("serve-cameras-test-{}", std::process::id()),
        "127.0.0.1",
        1883,
    );
    opts.set_keep_alive(Duration::from_secs(5));
    let (client, mut connection) = Client::new(opts, 64);
    client
        .subscribe(filter, QoS::AtLeastOnce)
        .expect("subscribe");
    let (ids, rx) = mpsc::channel();
    let (subscribed, ack) = mpsc::channel();
    let done = Arc::new(AtomicBool::new(false));
    let stop = done.clone();
    std::thread::spawn(move || {
        for n in connection.iter() {
            match n {
                Ok(Event::Incoming(Packet::SubAck(_))) => {
                    let _ = subscribed.send(());
                }
                Ok(Event::Incoming(Packet::Publish(p))) => {
                    let v: Value = serde_json::from_slice(&p.payload).unwrap_or_default();
                    if v["event"] == "violation" {
                        let _ = ids.send(v["id"].as_str().unwrap_or_default().to_owned());
                    }
                }
                Err(_) if stop.load(Ordering::SeqCst) => break,
                Err(_) => std::thread::sleep(Duration::from_millis(200)),
                Ok(_) => {}
            }
        }
    });
    ack.recv_timeout(Duration::from_secs(10))
        .expect("the broker at 127.0.0.1:1883 acknowledges the subscription");
    (rx, client, done)
}

fn num(v: &Value) -> u64 {
    v.as_u64().unwrap_or(0)
}

#[test]
fn serve_runs_cameras_follows_thresholds_reloads_and_stops_cleanly() {
    let dir = tempfile::tempdir().unwrap();
    // 16 s: the rider is in view all along and crosses on red at about 14 s.
    let long = scene(dir.path(), "long", 16.0, 110.0, 22.0);
    let short = scene(dir.path(), "short", 4.0, 250.0, 120.0);
    let data = dir.path().join("data");
    let (reviewer, ops, admin) = (
        user(&data, "rita", "reviewer"),
        user(&data, "otto", "ops"),
        user(&data, "ada", "admin"),
    );
    let site_file = dir.path().join("site.toml");
    write(&site_file, &site(&[("cam-1", &long)]));
    let topic = format!("rw-test-{}", std::process::id());
    let (heard, mqtt, mqtt_done) = subscribe(&format!("{topic}/+/violations"));
    let serve = Serve::start(&site_file, &data, &format!("{topic}/{{camera}}/violations"));
    let addr = serve.addr.clone();

    // (a) A violation is recorded and listed.
    let first = serve.wait_for("violation in GET /api/violations", 40, || {
        let (s, b) = http(&addr, "GET", "/api/violations", &reviewer, "");
        assert_eq!(s, 200, "{b}");
        b["items"].as_array().and_then(|i| i.first().cloned())
    });
    assert_eq!(first["camera"], "cam-1", "{first}");
    let started = serve.pipeline("cam-1", &ops)["pipeline"]["started_at"].clone();
    assert!(started.is_string(), "{started}");

    // (b) Thresholds: a reviewer may not, ops may; applied from a later frame.
    let put = "/api/cameras/cam-1/thresholds/no_helmet";
    let (s, b) = http(&addr, "PUT", put, &reviewer, r#"{"value":0.95}"#);
    assert_eq!(s, 403, "{b}");
    let before = serve.pipeline("cam-1", &ops)["pipeline"].clone();
    assert_eq!(before["thresholds"]["no_helmet"], 0.4, "{before}");
    let (s, b) = http(&addr, "PUT", put, &ops, r#"{"value":0.95}"#);
    assert_eq!(s, 200, "{b}");
    let applied = serve.wait_for("applied threshold", 20, || {
        let p = serve.pipeline("cam-1", &ops)["pipeline"].clone();
        // The new value shows as soon as the runner takes it; the frame it applies from once that frame is analysed.
        (p["thresholds"]["no_helmet"] == 0.95 && p["thresholds_from_frame"].is_u64()).then_some(p)
    });
    let from = num(&applied["thresholds_from_frame"]);
    assert!(
        applied["thresholds_from_frame"].is_u64() && from > num(&before["last_frame_index"]),
        "applied from a frame after the PUT: {before} then {applied}"
    );
    let confident = num(&applied["detections"]["no_helmet"]);
    assert!(
        confident > 0,
        "the rider was seen without a helmet before: {applied}"
    );

    // Signal reports: ops may, reviewers may not; an unknown state or camera is refused.
    let sig = "/api/cameras/cam-1/signal";
    let (s, b) = http(&addr, "POST", sig, &ops, r#"{"state":"red"}"#);
    assert_eq!((s, b["state"].as_str()), (202, Some("red")), "{b}");
    assert_eq!(
        http(&addr, "POST", sig, &reviewer, r#"{"state":"red"}"#).0,
        403
    );
    assert_eq!(
        http(&addr, "POST", sig, &ops, r#"{"state":"purple"}"#).0,
        422
    );
    let nope = "/api/cameras/nope/signal";
    assert_eq!(http(&addr, "POST", nope, &ops, r#"{"state":"red"}"#).0, 404);

    // A site file that does not validate is refused; the camera runs on.
    write(&site_file, "[[camera]]\nid = \"cam-1\"\n");
    assert_eq!(http(&addr, "POST", "/api/cameras/reload", &ops, "").0, 403);
    let (s, b) = http(&addr, "POST", "/api/cameras/reload", &admin, "");
    assert_eq!(
        (s, b["error"].as_str()),
        (422, Some("invalid_config")),
        "{b}"
    );

    // A file `config check` refuses (a missing model manifest) is refused whole by a reload too, even
    // though it adds a camera: neither camera changes.
    let missing = site(&[("cam-1", &long), ("cam-2", &short)])
        .replace("fastestdet-352.toml", "no-such-model.toml");
    write(&site_file, &missing);
    let (s, b) = http(&addr, "POST", "/api/cameras/reload", &admin, "");
    let msg = b["message"].as_str().unwrap_or_default();
    assert_eq!(
        (s, b["error"].as_str()),
        (422, Some("invalid_config")),
        "{b}"
    );
    assert!(
        msg.contains("models.two_wheeler") && msg.contains("no-such-model.toml"),
        "{b}"
    );
    assert!(
        serve.try_pipeline("cam-2", &ops).is_none(),
        "cam-2 was not added"
    );

    // (d) SIGHUP adds a second camera; the first is not restarted.
    write(&site_file, &site(&[("cam-1", &long), ("cam-2", &short)]));
    let at_hup = num(&serve.pipeline("cam-1", &ops)["pipeline"]["frames_analysed"]);
    serve.signal("HUP");
    serve.wait_for("cam-2 analysing", 40, || {
        let p = serve.try_pipeline("cam-2", &ops)?;
        (num(&p["pipeline"]["frames_analysed"]) > 0).then_some(())
    });
    let after = serve.wait_for("cam-1 frames after SIGHUP", 30, || {
        let p = serve.pipeline("cam-1", &ops)["pipeline"].clone();
        (num(&p["frames_analysed"]) > at_hup.max(num(&applied["frames_analysed"]) + 2)).then_some(p)
    });
    assert_eq!(after["started_at"], started, "cam-1 was restarted: {after}");
    assert_eq!(
        num(&after["detections"]["no_helmet"]),
        confident,
        "no detection reaches 0.95 once it applies, while frames go on: {applied} then {after}"
    );
    let (_, cams) = http(&addr, "GET", "/api/cameras", &reviewer, "");
    let ids: Vec<&str> = cams["cameras"]
        .as_array()
        .expect("cameras")
        .iter()
        .filter_map(|c| c["id"].as_str())
        .collect();
    assert_eq!(ids, ["cam-1", "cam-2"], "{cams}");
    let (_, t) = http(&addr, "GET", "/api/thresholds", &reviewer, "");
    assert_eq!(t["cameras"]["cam-1"]["no_helmet"]["value"], 0.95, "{t}");
    assert_eq!(t["cameras"]["cam-2"]["no_helmet"]["value"], 0.4, "{t}");
    let (s, metrics) = http(&addr, "GET", "/metrics", &ops, "");
    let metrics = metrics.as_str().unwrap_or_default().to_owned();
    assert_eq!(s, 200);
    for m in [
        "roadwarden_camera_frames_analysed_total{camera=\"cam-2\"}",
        "roadwarden_camera_frame_latency_seconds_count{camera=\"cam-1\"}",
        "roadwarden_camera_violations_recorded_total{camera=\"cam-1\",kind=\"no_helmet\"} 1",
        "roadwarden_spool_depth 0",
    ] {
        assert!(metrics.contains(m), "{m} in {metrics}");
    }

    // (c) SIGTERM, cameras possibly mid-violation: exit 0, everything handed over committed.
    let mut serve = serve;
    serve.signal("TERM");
    let (within, every) = (Duration::from_secs(40), Duration::from_millis(100));
    let status = wait_exit(&mut serve.child, within, every)
        .unwrap_or_else(|| panic!("no exit 40 s after SIGTERM: {}", serve.log()));
    std::thread::sleep(Duration::from_millis(300)); // the stderr reader's last lines
    let log = serve.log();
    assert!(status.success(), "{status:?}: {log}");
    assert!(!log.contains("panicked"), "{log}");
    assert!(log.contains("reload (API) refused"), "{log}");
    assert!(
        log.contains("(SIGHUP): added cam-2; removed none; restarted none; unchanged cam-1"),
        "{log}"
    );
    let tally = log
        .lines()
        .find_map(|l| l.strip_prefix("cameras stopped: "))
        .unwrap_or_else(|| panic!("no tally: {log}"));
    let handed: u64 = tally
        .split(' ')
        .next()
        .and_then(|n| n.parse().ok())
        .expect("count");
    assert!(
        tally.ends_with(&format!(
            "{handed} committed, 0 spooled, 0 already recorded, 0 failed"
        )),
        "{tally}"
    );

    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("runtime");
    let store = rt
        .block_on(roadwarden_store::Store::open_data_dir(
            &roadwarden_store::DataDir::new(&data),
        ))
        .expect("store");
    let page = rt
        .block_on(store.list_violations(&Default::default(), None, 500))
        .expect("list");
    let stored: Vec<String> = page.items.iter().map(|i| i.id.clone()).collect();
    assert_eq!(stored.len() as u64, handed, "{log}");
    let audit = rt.block_on(store.audit_log(None)).expect("audit");
    let change = audit
        .iter()
        .find(|(_, action, ..)| action == "threshold")
        .expect("the threshold change is audited");
    assert_eq!(change.0, "otto");
    assert!(
        change.4.as_deref().unwrap_or_default().contains("0.95"),
        "{change:?}"
    );
    assert!(
        audit
            .iter()
            .any(|(actor, action, ..)| actor == "SIGHUP" && action == "reload_site")
    );
    rt.block_on(store.close());

    // MQTT: each stored violation exactly once.
    let mut count: BTreeMap<String, u32> = BTreeMap::new();
    let deadline = Instant::now() + Duration::from_secs(10);
    while stored.iter().any(|id| !count.contains_key(id)) && Instant::now() < deadline {
        if let Ok(id) = heard.recv_timeout(Duration::from_millis(200)) {
            *count.entry(id).or_default() += 1;
        }
    }
    while let Ok(id) = heard.recv_timeout(Duration::from_millis(500)) {
        *count.entry(id).or_default() += 1;
    }
    mqtt_done.store(true, Ordering::SeqCst);
    let _ = mqtt.disconnect();
    let want: BTreeMap<String, u32> = stored.iter().map(|id| (id.clone(), 1)).collect();
    assert_eq!(count, want, "MQTT heard each stored violation once");
}

/// A camera whose runner fails to start (its video is not there yet) is retried with backoff, its
/// config unchanged and no reload: the board says `retrying`, why and when the next attempt is; once
/// the file is there a later attempt runs it.
#[test]
fn a_failed_camera_is_retried_until_it_runs() {
    let dir = tempfile::tempdir().unwrap();
    let made = scene(dir.path(), "later", 4.0, 250.0, 120.0);
    let video = dir.path().join("arrives-later.mp4");
    let data = dir.path().join("data");
    let ops = user(&data, "otto", "ops");
    let site_file = dir.path().join("site.toml");
    write(&site_file, &site(&[("cam-1", &video)]));
    let topic = format!("rw-test-retry-{}", std::process::id());
    let serve = Serve::start(&site_file, &data, &format!("{topic}/{{camera}}/violations"));
    let addr = serve.addr.clone();
    let status = |serve: &Serve| {
        let (s, b) = http(&addr, "GET", "/api/cameras/cam-1", &ops, "");
        assert_eq!(s, 200, "{b}: {}", serve.log());
        b["status"].clone()
    };
    // Two failed attempts in a row: the second wait is longer than the first.
    let mut seen: Vec<String> = Vec::new();
    let retrying = serve.wait_for("cam-1 retrying twice", 30, || {
        let st = status(&serve);
        let at = st["next_attempt_at"].as_str().map(str::to_owned);
        if st["state"] == "retrying" && at.as_ref().is_some_and(|a| !seen.contains(a)) {
            seen.extend(at);
        }
        (seen.len() >= 2).then_some(st)
    });
    let err = retrying["last_error"].as_str().unwrap_or_default();
    assert!(
        err.contains("arrives-later.mp4") && err.contains("no such video file"),
        "{retrying}"
    );
    // The video arrives: a later attempt (at most 4 s away by now) runs it; no reload was needed.
    std::fs::copy(&made, &video).expect("copy the video in");
    let running = serve.wait_for("cam-1 analysing after a retry", 60, || {
        let (_, p) = http(&addr, "GET", "/api/cameras/cam-1/pipeline", &ops, "");
        (num(&p["pipeline"]["frames_analysed"]) > 0).then_some(p)
    });
    let st = status(&serve);
    assert!(st["next_attempt_at"].is_null(), "{st} {running}");
    assert_ne!(st["state"], "retrying", "{st}");
    let mut serve = serve;
    serve.signal("TERM");
    let status = wait_exit(
        &mut serve.child,
        Duration::from_secs(40),
        Duration::from_millis(100),
    )
    .unwrap_or_else(|| panic!("no exit 40 s after SIGTERM: {}", serve.log()));
    let log = serve.log();
    assert!(status.success(), "{status:?}: {log}");
    assert!(
        log.contains("retrying in 1s") && log.contains("retrying in 2s"),
        "{log}"
    );
}
