//! Crash and outage tests: a child process recording violations is SIGKILLed
//! at random moments; PostgreSQL becomes unreachable and comes back.

mod common;

use std::collections::{HashMap, HashSet};
use std::io::{Read, Write};
use std::net::{Shutdown, TcpListener, TcpStream};
use std::process::{Command, Stdio};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use common::*;
use roadwarden_evidence::*;

const CHILD_DATA: &str = "ROADWARDEN_KILL_CHILD_DATA";
const CHILD_URL: &str = "ROADWARDEN_KILL_CHILD_URL";

/// The child: records violations until it is killed, printing `ACK <id>` once each is durable.
#[tokio::test]
async fn kill_child_process() {
    let Some(data) = std::env::var_os(CHILD_DATA) else {
        return; // only runs as the kill tests' child
    };
    let url = std::env::var(CHILD_URL).ok().filter(|u| !u.is_empty());
    let (mut rec, _) = Recorder::open(DataDir::new(data), url.as_deref())
        .await
        .unwrap();
    rec.set_retry_interval(Duration::from_millis(100));
    let mut out = std::io::stdout().lock();
    for n in 0.. {
        let c = capture(&format!("cam-{}", n % 3), n);
        let id = c.violation.id.to_string();
        let how = rec.record(c).await.unwrap();
        writeln!(out, "ACK {id} {how:?}").unwrap();
        out.flush().unwrap();
    }
}

fn random_u64() -> u64 {
    uuid::Uuid::new_v4().as_u64_pair().0
}

fn closed_port_url() -> String {
    let l = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = l.local_addr().unwrap().port();
    drop(l);
    format!("postgres://postgres@127.0.0.1:{port}/nowhere")
}

/// Runs the child `runs` times, killing each at a random moment; returns every acknowledged id.
fn kill_runs(
    data: &DataDir,
    runs: usize,
    url_for_run: impl Fn(usize) -> Option<String>,
) -> (HashSet<String>, usize) {
    let exe = std::env::current_exe().unwrap();
    let mut acked = HashSet::new();
    let mut spooled = 0;
    for run in 0..runs {
        let mut child = Command::new(&exe)
            .args([
                "--exact",
                "kill_child_process",
                "--nocapture",
                "--test-threads=1",
            ])
            .env(CHILD_DATA, data.root())
            .env(CHILD_URL, url_for_run(run).unwrap_or_default())
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        std::thread::sleep(Duration::from_millis(300 + random_u64() % 900));
        child.kill().unwrap(); // SIGKILL
        child.wait().unwrap();
        let mut text = String::new();
        child
            .stdout
            .take()
            .unwrap()
            .read_to_string(&mut text)
            .unwrap();
        for line in text.lines() {
            if let Some(rest) = line.strip_prefix("ACK ") {
                let mut parts = rest.split(' ');
                let id = parts.next().unwrap().to_owned();
                if parts.next() == Some("Spooled") {
                    spooled += 1;
                }
                assert!(acked.insert(id), "an id acknowledged twice");
            }
        }
    }
    (acked, spooled)
}

async fn after_restart_everything_is_there(
    data: &DataDir,
    url: Option<&str>,
    acked: &HashSet<String>,
) {
    let (rec, report) = Recorder::open(data.clone(), url).await.unwrap();
    assert!(report.connected);
    assert_eq!(rec.spooled(), 0, "spool replayed");
    let store = rec.store().unwrap();
    let mut stored = HashSet::new();
    let mut paths = HashSet::new();
    for cam in store.cameras().await.unwrap() {
        for r in store.chain_page(&cam.camera, 0, 1_000_000).await.unwrap() {
            assert!(
                stored.insert(r.fields.id.clone()),
                "violation {} stored twice",
                r.fields.id
            );
            assert!(!r.evidence.is_empty());
            for e in &r.evidence {
                assert!(
                    paths.insert(e.item.path.clone()),
                    "file {} referenced twice",
                    e.item.path
                );
            }
        }
    }
    let lost: Vec<_> = acked.difference(&stored).collect();
    assert!(lost.is_empty(), "acknowledged but lost: {lost:?}");
    // Every committed violation has all its files, with matching hashes, and the chains hold.
    let v = verify(store, rec.data(), None).await.unwrap();
    assert!(v.ok(), "{:?}", v.problems);
    // After reconcile, every file left in the evidence folder is referenced.
    let mut on_disk = Vec::new();
    fn walk(d: &std::path::Path, out: &mut Vec<std::path::PathBuf>) {
        for e in std::fs::read_dir(d).unwrap() {
            let p = e.unwrap().path();
            if p.is_dir() {
                walk(&p, out)
            } else {
                out.push(p)
            }
        }
    }
    walk(&data.evidence_dir(), &mut on_disk);
    for p in on_disk {
        let rel = p
            .strip_prefix(data.root())
            .unwrap()
            .to_string_lossy()
            .replace('\\', "/");
        assert!(
            paths.contains(&rel),
            "unreferenced file {rel} left outside the quarantine"
        );
    }
    eprintln!(
        "kill test: {} acknowledged, {} stored, {} files, {} quarantined at the last start",
        acked.len(),
        stored.len(),
        paths.len(),
        report.reconcile.map(|r| r.quarantined.len()).unwrap_or(0)
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kill_test_sqlite() {
    let site = TestSite::new("sqlite").await;
    let (acked, _) = kill_runs(&site.data, 20, |_| None);
    assert!(
        acked.len() >= 5,
        "the child recorded too little: {}",
        acked.len()
    );
    after_restart_everything_is_there(&site.data, None, &acked).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kill_test_postgres_with_outages() {
    let site = TestSite::new("postgres").await;
    let url = site.url.clone().unwrap();
    let down = closed_port_url();
    // Every third run finds the database unreachable and spools.
    let (acked, spooled) = kill_runs(&site.data, 21, |run| {
        Some(if run % 3 == 1 {
            down.clone()
        } else {
            url.clone()
        })
    });
    assert!(spooled > 0, "no run spooled");
    after_restart_everything_is_there(&site.data, Some(&url), &acked).await;
}

/// A TCP proxy to PostgreSQL that can be cut (open connections reset, new ones refused) and restored.
struct Proxy {
    port: u16,
    up: Arc<AtomicBool>,
    conns: Arc<Mutex<Vec<TcpStream>>>,
}

impl Proxy {
    fn start(target: &'static str) -> Proxy {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let port = listener.local_addr().unwrap().port();
        let up = Arc::new(AtomicBool::new(true));
        let conns = Arc::new(Mutex::new(Vec::new()));
        let (up2, conns2) = (up.clone(), conns.clone());
        std::thread::spawn(move || {
            for client in listener.incoming() {
                let Ok(client) = client else { continue };
                if !up2.load(Ordering::SeqCst) {
                    let _ = client.shutdown(Shutdown::Both);
                    continue;
                }
                let Ok(server) = TcpStream::connect(target) else {
                    continue;
                };
                let mut list = conns2.lock().unwrap();
                list.push(client.try_clone().unwrap());
                list.push(server.try_clone().unwrap());
                for (mut from, mut to) in [
                    (client.try_clone().unwrap(), server.try_clone().unwrap()),
                    (server, client),
                ] {
                    std::thread::spawn(move || {
                        let _ = std::io::copy(&mut from, &mut to);
                        let _ = to.shutdown(Shutdown::Both);
                        let _ = from.shutdown(Shutdown::Both);
                    });
                }
            }
        });
        Proxy { port, up, conns }
    }

    fn cut(&self) {
        self.up.store(false, Ordering::SeqCst);
        for c in self.conns.lock().unwrap().drain(..) {
            let _ = c.shutdown(Shutdown::Both);
        }
    }

    fn restore(&self) {
        self.up.store(true, Ordering::SeqCst);
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn outage_test_every_violation_arrives_exactly_once() {
    let site = TestSite::new("postgres").await;
    let direct = site.url.clone().unwrap();
    let proxy = Proxy::start("127.0.0.1:5432");
    let via_proxy = direct.replace("127.0.0.1:5432", &format!("127.0.0.1:{}", proxy.port));
    assert_ne!(via_proxy, direct);
    let (mut rec, report) = Recorder::open(site.data.clone(), Some(&via_proxy))
        .await
        .unwrap();
    assert!(report.connected);
    rec.set_retry_interval(Duration::from_millis(50));
    let mut produced = Vec::new();
    let mut outcomes: HashMap<&str, usize> = HashMap::new();
    for phase in ["up", "down", "back"] {
        match phase {
            "down" => proxy.cut(),
            "back" => proxy.restore(),
            _ => {}
        }
        for i in 0..10 {
            let c = capture("gate-east", produced.len() as u64);
            produced.push(c.violation.id.to_string());
            let how = rec.record(c).await.unwrap();
            let key = match (phase, &how) {
                (_, Recorded::Committed { .. }) => "committed",
                (_, Recorded::Spooled) => "spooled",
                (_, Recorded::AlreadyRecorded) => panic!("nothing was recorded twice"),
            };
            *outcomes.entry(key).or_default() += 1;
            if phase == "down" {
                assert_eq!(
                    how,
                    Recorded::Spooled,
                    "violation {i} while the database is unreachable"
                );
            }
            if phase == "back" {
                tokio::time::sleep(Duration::from_millis(20)).await;
            }
        }
    }
    let deadline = Instant::now() + Duration::from_secs(20);
    while rec.flush().await > 0 {
        assert!(Instant::now() < deadline, "spool never drained");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    // Check through a direct connection, not the proxy.
    let store = Store::connect(&direct).await.unwrap();
    let chain = store.chain_page("gate-east", 0, 1000).await.unwrap();
    let ids: Vec<String> = chain.iter().map(|r| r.fields.id.clone()).collect();
    assert_eq!(
        ids, produced,
        "every violation exactly once, in the order produced"
    );
    assert_eq!(store.count_violations().await.unwrap(), 30);
    let v = verify(&store, &site.data, None).await.unwrap();
    assert!(v.ok(), "{:?}", v.problems);
    assert!(
        outcomes["spooled"] >= 10 && outcomes["committed"] >= 10,
        "{outcomes:?}"
    );
    store.close().await;
}
