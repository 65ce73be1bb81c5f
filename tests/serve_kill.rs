//! Crash safety of the real service: `roadwarden serve` watching a simulated RTSP camera (`sim-camera
//! --loop`, a rider without a helmet crossing on red every pass) is SIGKILLed 20 times at random
//! moments while violations are being recorded, and started again on the same data folder.
//!
//! The camera's models run through the shared inference batchers (`[inference] batch = true`), so the
//! same run shows `serve` recording violations with batching on.
//!
//! A violation has reached the recorder when the service logged "violation received by the recorder
//! (intent written)" for it. After the last clean start and SIGTERM, every such violation is in the
//! store exactly once, nothing waits in the spool, no intent or clip is left in progress, and `verify`
//! passes.

mod common;

use std::collections::{BTreeMap, BTreeSet};
use std::hash::{BuildHasher, Hasher};
use std::io::{BufRead, BufReader};
use std::path::Path;
use std::process::{Command, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use common::{
    Guard, free_port, no_helmet_on_red, root, serve_command, synth, wait_exit, write, write_scene,
};

const KILLS: usize = 20;

fn random_below(n: u64) -> u64 {
    std::collections::hash_map::RandomState::new()
        .build_hasher()
        .finish()
        % n
}

/// One `serve` run: its stderr lines arrive on `lines`.
struct Serve {
    child: Guard,
    lines: mpsc::Receiver<String>,
    log: String,
}

impl Serve {
    fn start(site: &Path, data: &Path) -> Serve {
        let mut child = serve_command(site)
            .arg("--data")
            .arg(data)
            .env_remove("RUST_LOG")
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .expect("spawn serve");
        let err = child.stderr.take().expect("stderr");
        let (tx, lines) = mpsc::channel();
        std::thread::spawn(move || {
            for line in BufReader::new(err).lines().map_while(Result::ok) {
                if tx.send(line).is_err() {
                    break;
                }
            }
        });
        Serve {
            child: Guard(child),
            lines,
            log: String::new(),
        }
    }

    /// The next log line within `deadline`, `None` past it or at the end of the log.
    fn next_line(&mut self, deadline: Instant) -> Option<String> {
        let left = deadline.checked_duration_since(Instant::now())?;
        let line = self.lines.recv_timeout(left).ok()?;
        self.log.push_str(&line);
        self.log.push('\n');
        Some(line)
    }

    /// Every line already written.
    fn drain(&mut self) {
        while let Ok(line) = self.lines.recv_timeout(Duration::from_millis(300)) {
            self.log.push_str(&line);
            self.log.push('\n');
        }
    }
}

/// `line` without its ANSI colour sequences.
fn plain(line: &str) -> String {
    let mut out = String::with_capacity(line.len());
    let mut chars = line.chars();
    while let Some(c) = chars.next() {
        if c == '\u{1b}' {
            for c in chars.by_ref() {
                if c.is_ascii_alphabetic() {
                    break;
                }
            }
        } else {
            out.push(c);
        }
    }
    out
}

/// The violation id of a "violation received by the recorder" line.
fn intent_id(line: &str) -> Option<String> {
    let line = &plain(line);
    if !line.contains("violation received by the recorder") {
        return None;
    }
    let at = line.find("violation=")? + "violation=".len();
    let id: String = line[at..]
        .chars()
        .take_while(|c| c.is_ascii_hexdigit() || *c == '-')
        .collect();
    (id.len() == 36).then_some(id)
}

fn files_in(dir: &Path) -> Vec<String> {
    std::fs::read_dir(dir)
        .map(|d| {
            d.filter_map(Result::ok)
                .map(|e| e.file_name().to_string_lossy().into_owned())
                .collect()
        })
        .unwrap_or_default()
}

#[test]
fn serve_killed_twenty_times_loses_and_doubles_nothing() {
    let dir = tempfile::tempdir().expect("tempdir");
    // 6 s a pass: the rider crosses on red at about 3.4 s (a no-helmet and a red-light violation,
    // at the 2 analysed frames a second below).
    let scene = write_scene(dir.path(), "scene", &no_helmet_on_red(31, 6.0, 250.0, 50.0));
    let video = dir.path().join("scene.mp4");
    synth(&scene, &video, &dir.path().join("scene.json"));

    let port = free_port();
    let mut sim = Command::new(env!("CARGO_BIN_EXE_roadwarden"));
    sim.args(["sim-camera", "--loop", "--port", &port.to_string()])
        .arg(&video)
        .stdout(Stdio::piped())
        .stderr(Stdio::null());
    let mut sim = Guard(sim.spawn().expect("spawn sim-camera"));
    let mut first = String::new();
    BufReader::new(sim.0.stdout.take().expect("stdout"))
        .read_line(&mut first)
        .expect("sim-camera's first line");
    let url = format!("rtsp://127.0.0.1:{port}/stream");
    assert_eq!(first.trim(), format!("serving {url}"));

    let models = root().join("models");
    let camera = roadwarden_testkit::site::camera("cam-k")
        .analysis_fps(2.0)
        .source_url(&url)
        .helmet(&models.join("helmet-yolov12m.toml").display().to_string())
        .two_wheeler(&models.join("fastestdet-352.toml").display().to_string())
        .hysteresis_frames(2)
        .section("[camera.thresholds]\nno_helmet = 0.4\ntwo_wheeler = 0.3")
        .section("[camera.helmet]\nmin_votes = 3\nwindow = 5\nmin_head_px = 14.0");
    let site = dir.path().join("site.toml");
    write(
        &site,
        &format!(
            "[inference]\nbatch = true\nmax_batch = 4\nmax_wait_ms = 5\n\n{}",
            camera.toml()
        ),
    );
    let data = dir.path().join("data");

    let mut reached: BTreeSet<String> = BTreeSet::new();
    let mut kills = Vec::new();
    let mut recoveries = 0;
    for round in 0..KILLS {
        let mut serve = Serve::start(&site, &data);
        // Wait for a violation to reach the recorder, then kill at a random moment of its recording
        // (the clip's post window, evidence, commit) or of the next one's.
        let deadline = Instant::now() + Duration::from_secs(60);
        let mut seen = false;
        while let Some(line) = serve.next_line(deadline) {
            if line.contains("crash recovery") {
                recoveries += 1;
            }
            if let Some(id) = intent_id(&line) {
                reached.insert(id);
                seen = true;
                break;
            }
        }
        assert!(
            seen,
            "round {round}: no violation reached the recorder within 60 s: {}",
            serve.log
        );
        let delay = Duration::from_millis(random_below(4_000));
        let until = Instant::now() + delay;
        while let Some(line) = serve.next_line(until) {
            if let Some(id) = intent_id(&line) {
                reached.insert(id);
            }
        }
        serve.child.0.kill().expect("SIGKILL");
        let _ = serve.child.0.wait();
        serve.drain();
        for line in serve.log.lines() {
            if let Some(id) = intent_id(line) {
                reached.insert(id);
            }
        }
        assert!(!serve.log.contains("panicked"), "{}", serve.log);
        kills.push(delay.as_millis());
    }
    eprintln!(
        "killed {KILLS} times, {delay_ms:?} ms after a violation reached the recorder",
        delay_ms = kills
    );

    // The last start: it finishes what the kills left, then stops cleanly.
    let mut serve = Serve::start(&site, &data);
    let deadline = Instant::now() + Duration::from_secs(60);
    while let Some(line) = serve.next_line(deadline) {
        if line.contains("crash recovery") {
            recoveries += 1;
        }
        if line.contains("cameras: cam-k") {
            break;
        }
    }
    std::thread::sleep(Duration::from_secs(2));
    common::signal(&serve.child.0, "TERM").expect("SIGTERM");
    let status = wait_exit(
        &mut serve.child.0,
        Duration::from_secs(40),
        Duration::from_millis(100),
    );
    serve.drain();
    let log = serve.log.clone();
    for line in log.lines() {
        if let Some(id) = intent_id(line) {
            reached.insert(id);
        }
    }
    let status = status.unwrap_or_else(|| panic!("no exit 40 s after SIGTERM: {log}"));
    assert!(status.success(), "{status:?}: {log}");
    assert!(
        plain(&log).contains("shared inference batcher"),
        "the batchers report at shutdown: {log}"
    );
    assert!(
        recoveries > 0,
        "no start found a violation in progress after {KILLS} kills: {log}"
    );
    assert!(
        reached.len() >= KILLS,
        "{} violations reached",
        reached.len()
    );

    // Every violation that reached the recorder is stored, once.
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("runtime");
    let dd = roadwarden_store::DataDir::new(&data);
    let store = rt
        .block_on(roadwarden_store::Store::open_data_dir(&dd))
        .expect("store");
    let page = rt
        .block_on(store.list_violations(&Default::default(), None, 5_000))
        .expect("list");
    rt.block_on(store.close());
    let mut stored: BTreeMap<String, u32> = BTreeMap::new();
    for item in &page.items {
        *stored.entry(item.id.clone()).or_default() += 1;
    }
    let missing: Vec<&String> = reached
        .iter()
        .filter(|id| !stored.contains_key(*id))
        .collect();
    assert!(
        missing.is_empty(),
        "{} of {} violations that reached the recorder are not stored: {missing:?}",
        missing.len(),
        reached.len()
    );
    let twice: Vec<_> = stored.iter().filter(|(_, n)| **n > 1).collect();
    assert!(twice.is_empty(), "stored more than once: {twice:?}");
    let spool = dd.spool_path();
    let spooled = std::fs::read_to_string(&spool).unwrap_or_default();
    assert!(
        spooled.trim().is_empty(),
        "the spool still holds records: {spooled}"
    );

    // Nothing left in progress, no orphan clip; verify passes.
    assert_eq!(
        files_in(&dd.intents_dir()),
        Vec::<String>::new(),
        "intents left"
    );
    assert_eq!(
        files_in(&dd.clips_in_progress_dir()),
        Vec::<String>::new(),
        "clips left in progress"
    );
    let verify = Command::new(env!("CARGO_BIN_EXE_roadwarden"))
        .args(["verify", "--json", "--data"])
        .arg(&data)
        .output()
        .expect("verify");
    let out = String::from_utf8_lossy(&verify.stdout);
    assert!(
        verify.status.success(),
        "verify: {out} {}",
        String::from_utf8_lossy(&verify.stderr)
    );
    let report: serde_json::Value = serde_json::from_str(out.trim()).expect("verify --json");
    assert_eq!(report["ok"], true, "{report}");
    assert_eq!(
        report["records"].as_u64(),
        Some(page.items.len() as u64),
        "{report}"
    );
    assert_eq!(report["in_progress"], serde_json::json!([]), "{report}");
    assert_eq!(report["clips_in_progress"], 0, "{report}");
    eprintln!(
        "{} violations reached the recorder, {} stored, {} starts recovered work in progress; verify: {report}",
        reached.len(),
        page.items.len(),
        recoveries
    );
}
