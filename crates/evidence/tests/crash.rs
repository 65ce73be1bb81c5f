//! Crash and outage tests: a child process recording violations as the service does (intent record,
//! clip written into clips-in-progress over a while, evidence, store or spool) is SIGKILLed at random
//! moments; PostgreSQL becomes unreachable and comes back.

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

/// The child: records violations the way the service's recorder does until it is killed. For each it
/// writes the intent (then prints `INTENT <id>`: the violation has reached the recorder), writes the
/// clip into clips-in-progress piece by piece as the clip recorder's post window would, records the
/// violation with it, removes the clip and prints `ACK <id> <outcome>`. At open it prints what it
/// recovered (`RECOVERED <finished> <with clip> <already> <quarantined intents> <quarantined clips>`).
#[tokio::test]
async fn kill_child_process() {
    let Some(data) = std::env::var_os(CHILD_DATA) else {
        return; // only runs as the kill tests' child
    };
    let url = std::env::var(CHILD_URL).ok().filter(|u| !u.is_empty());
    let data = DataDir::new(data);
    let (mut rec, report) = Recorder::open(data.clone(), url.as_deref()).await.unwrap();
    rec.set_retry_interval(Duration::from_millis(100));
    let mut out = std::io::stdout().lock();
    let r = &report.recovery;
    writeln!(
        out,
        "RECOVERED {} {} {} {} {}",
        r.finished.len(),
        r.finished.iter().filter(|f| f.2).count(),
        r.already_recorded.len(),
        r.quarantined_intents.len(),
        r.quarantined_clips.len()
    )
    .unwrap();
    out.flush().unwrap();
    let clips = data.clips_in_progress_dir();
    std::fs::create_dir_all(&clips).unwrap();
    for n in 0.. {
        let c = capture(&format!("cam-{}", n % 3), n);
        let id = c.violation.id.to_string();
        let clip = clips.join(format!("{id}.mp4"));
        let c = rec.intend(c, Some(&clip)).unwrap();
        writeln!(out, "INTENT {id}").unwrap();
        out.flush().unwrap();
        write_clip_slowly(&clip, n);
        writeln!(out, "CLIPDONE {id}").unwrap();
        out.flush().unwrap();
        let how = rec.record(c.with_clip(Some(clip.clone()))).await.unwrap();
        std::fs::remove_file(&clip).unwrap();
        writeln!(out, "ACK {id} {how:?}").unwrap();
        out.flush().unwrap();
    }
}

/// An MP4's top-level box.
fn mp4_box(kind: &[u8; 4], body: &[u8]) -> Vec<u8> {
    let mut b = ((body.len() + 8) as u32).to_be_bytes().to_vec();
    b.extend_from_slice(kind);
    b.extend_from_slice(body);
    b
}

/// The size of every whole clip the child writes.
const CLIP_LEN: u64 = (8 + 24) + (8 + 24_000) + (8 + 400);

/// Writes an MP4-shaped clip (`ftyp`, `mdat`, then the `moov` index, as mp4mux does) in pieces, with
/// pauses, so that a kill finds clips cut off at any point.
fn write_clip_slowly(path: &std::path::Path, n: u64) {
    let body: Vec<u8> = (0..24_000u32).map(|i| (i as u64 + n) as u8).collect();
    let mut bytes = mp4_box(b"ftyp", b"isom\0\0\x02\0isomiso2avc1mp41");
    bytes.extend(mp4_box(b"mdat", &body));
    bytes.extend(mp4_box(b"moov", &[n as u8; 400]));
    let mut f = std::fs::File::create(path).unwrap();
    for piece in bytes.chunks(6_000) {
        f.write_all(piece).unwrap();
        f.flush().unwrap();
        std::thread::sleep(Duration::from_millis(8));
    }
    f.sync_all().unwrap();
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

/// What the children said over all runs.
#[derive(Default)]
struct Runs {
    /// Violations that reached the recorder (their intent was written).
    intents: HashSet<String>,
    /// Violations acknowledged as committed or spooled.
    acked: HashSet<String>,
    /// Violations whose clip was written whole (and fsynced).
    clips_done: HashSet<String>,
    spooled: usize,
    /// Over every start: intents finished, of them with their clip, intents already recorded, clips
    /// quarantined.
    finished: usize,
    finished_with_clip: usize,
    already: usize,
    clips_quarantined: usize,
}

/// Runs the child `runs` times, killing each at a random moment; returns what the children said.
fn kill_runs(data: &DataDir, runs: usize, url_for_run: impl Fn(usize) -> Option<String>) -> Runs {
    let exe = std::env::current_exe().unwrap();
    let mut seen = Runs::default();
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
                    seen.spooled += 1;
                }
                assert!(
                    seen.intents.contains(&id),
                    "{id} acknowledged with no intent"
                );
                assert!(seen.acked.insert(id), "an id acknowledged twice");
            } else if let Some(id) = line.strip_prefix("CLIPDONE ") {
                seen.clips_done.insert(id.to_owned());
            } else if let Some(id) = line.strip_prefix("INTENT ") {
                assert!(
                    seen.intents.insert(id.to_owned()),
                    "an intent written twice"
                );
            } else if let Some(rest) = line.strip_prefix("RECOVERED ") {
                let n: Vec<usize> = rest.split(' ').map(|x| x.parse().unwrap()).collect();
                assert_eq!(n[3], 0, "an intent was quarantined: {line}");
                seen.finished += n[0];
                seen.finished_with_clip += n[1];
                seen.already += n[2];
                seen.clips_quarantined += n[4];
            }
        }
    }
    seen
}

/// After a last restart: every violation whose intent was written is stored exactly once (so every
/// acknowledged one too), with all its files; `verify` passes; no intent, no clip in progress and no
/// unreferenced evidence file is left.
async fn after_restart_everything_is_there(data: &DataDir, url: Option<&str>, runs: &Runs) {
    let acked = &runs.intents;
    assert!(runs.acked.is_subset(acked));
    let (rec, report) = Recorder::open(data.clone(), url).await.unwrap();
    assert!(report.recovery.quarantined_intents.is_empty());
    let left: Vec<_> = std::fs::read_dir(data.intents_dir())
        .map(|d| d.map(|e| e.unwrap().file_name()).collect())
        .unwrap_or_default();
    assert!(left.is_empty(), "intents left after the restart: {left:?}");
    let clips: Vec<_> = std::fs::read_dir(data.clips_in_progress_dir())
        .map(|d| d.map(|e| e.unwrap().file_name()).collect())
        .unwrap_or_default();
    assert!(clips.is_empty(), "clips in progress left: {clips:?}");
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
    assert!(lost.is_empty(), "reached the recorder but lost: {lost:?}");
    // Every committed violation has all its files, with matching hashes, and the chains hold.
    let v = verify(store, rec.data(), None).await.unwrap();
    assert!(v.ok(), "{:?}", v.problems);
    assert!(
        v.in_progress.is_empty() && v.clips_in_progress == 0,
        "{v:?}"
    );
    // A violation whose clip was written whole has it in its evidence (finished from its intent or
    // not), and every clip in the evidence is whole: a clip cut off by a kill never gets in.
    let mut with_clip = 0;
    for id in &stored {
        let r = store.get(id).await.unwrap().unwrap();
        let clip = r
            .evidence
            .iter()
            .find(|e| e.item.kind == roadwarden_store::EvidenceKind::Clip);
        if let Some(c) = clip {
            with_clip += 1;
            assert_eq!(c.item.size, CLIP_LEN, "a cut-off clip in {id}'s evidence");
        } else {
            assert!(
                !runs.clips_done.contains(id),
                "{id}: its whole clip was lost"
            );
        }
    }
    let last = &report.recovery;
    let finished = runs.finished + last.finished.len();
    let finished_with_clip = runs.finished_with_clip + last.finished.iter().filter(|f| f.2).count();
    eprintln!(
        "kill test: {} reached the recorder, {} acknowledged, {} stored ({} with a clip), {} files; over the starts that got to say so, {} finished from intents ({} with their clip), {} intents already recorded, {} cut-off clips quarantined; at the last start {} finished, {} orphan files quarantined; {} files in the quarantine",
        acked.len(),
        runs.acked.len(),
        stored.len(),
        with_clip,
        paths.len(),
        finished,
        finished_with_clip,
        runs.already + last.already_recorded.len(),
        runs.clips_quarantined + last.quarantined_clips.len(),
        last.finished.len(),
        report.reconcile.map(|r| r.quarantined.len()).unwrap_or(0),
        v.quarantined
    );
    // Those that reached the recorder and were never acknowledged were in progress at a kill: each
    // was finished by a later start (checked above: all stored). The kills must have found some.
    let in_progress_at_a_kill = runs.intents.difference(&runs.acked).count();
    eprintln!("kill test: {in_progress_at_a_kill} violations were in progress at a kill");
    assert!(
        in_progress_at_a_kill > 0,
        "no kill found a violation in progress: the recovery was not exercised"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kill_test_sqlite() {
    let site = TestSite::new("sqlite").await;
    let runs = kill_runs(&site.data, 20, |_| None);
    assert!(
        runs.acked.len() >= 5,
        "the child recorded too little: {}",
        runs.acked.len()
    );
    after_restart_everything_is_there(&site.data, None, &runs).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kill_test_postgres_with_outages() {
    let site = TestSite::new("postgres").await;
    let url = site.url.clone().unwrap();
    let down = closed_port_url();
    // Every third run finds the database unreachable and spools.
    let runs = kill_runs(&site.data, 21, |run| {
        Some(if run % 3 == 1 {
            down.clone()
        } else {
            url.clone()
        })
    });
    assert!(runs.spooled > 0, "no run spooled");
    after_restart_everything_is_there(&site.data, Some(&url), &runs).await;
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

/// What a crash leaves, made by hand: an intent of a violation already committed, one whose clip was
/// written whole, one whose clip was cut off, one with no clip, an unreadable intent, a temp intent and
/// an orphan clip. The next open finishes, drops or quarantines each, says so, and `verify` passes.
#[tokio::test]
async fn intents_and_clips_left_by_a_crash_are_finished_or_quarantined() {
    let site = TestSite::new("sqlite").await;
    let data = site.data.clone();
    let clips = data.clips_in_progress_dir();
    std::fs::create_dir_all(&clips).unwrap();
    let (mut rec, _) = Recorder::open(data.clone(), None).await.unwrap();
    let a = capture("gate-west", 0);
    let a_violation = a.violation.clone();
    assert_eq!(rec.record(a).await.unwrap(), Recorded::Committed { seq: 1 });
    // Committed, but the crash came before its intent was removed.
    let a_again = Capture {
        violation: a_violation.clone(),
        frames: Vec::new(),
        clip: None,
        stop_line: None,
    };
    rec.intend(a_again, None).unwrap();
    let mut ids = Vec::new();
    for (n, clip) in [(1u64, Some(true)), (2, Some(false)), (3, None)] {
        let c = capture("gate-west", n);
        ids.push(c.violation.id.to_string());
        let path = clips.join(format!("{}.mp4", c.violation.id));
        rec.intend(c, clip.map(|_| path.as_path())).unwrap();
        match clip {
            Some(true) => write_clip_slowly(&path, n),
            Some(false) => {
                write_clip_slowly(&path, n);
                let whole = std::fs::read(&path).unwrap();
                std::fs::write(&path, &whole[..whole.len() - 100]).unwrap();
            }
            None => {}
        }
    }
    drop(rec);
    std::fs::write(data.intents_dir().join("garbage.intent"), b"{not json\n").unwrap();
    std::fs::write(data.intents_dir().join(".x.intent.tmp-1"), b"torn").unwrap();
    std::fs::write(clips.join("orphan.mp4"), b"half a clip").unwrap();

    let (rec, report) = Recorder::open(data.clone(), None).await.unwrap();
    let r = &report.recovery;
    assert_eq!(r.already_recorded, vec![a_violation.id.to_string()]);
    let finished: Vec<(String, bool)> = r
        .finished
        .iter()
        .map(|(id, how, clip)| {
            assert!(matches!(how, Recorded::Committed { .. }), "{how:?}");
            (id.clone(), *clip)
        })
        .collect();
    let mut expected = vec![
        (ids[0].clone(), true),
        (ids[1].clone(), false),
        (ids[2].clone(), false),
    ];
    expected.sort();
    let mut finished_sorted = finished.clone();
    finished_sorted.sort();
    assert_eq!(finished_sorted, expected);
    assert_eq!(r.quarantined_intents.len(), 1, "{r:?}");
    assert!(
        r.quarantined_intents[0]
            .0
            .ends_with("intents/garbage.intent")
    );
    let mut quarantined_clips: Vec<&str> = r
        .quarantined_clips
        .iter()
        .map(|(from, _)| from.as_str())
        .collect();
    quarantined_clips.sort();
    let mut expected_clips = vec![
        "clips-in-progress/orphan.mp4".to_owned(),
        format!("clips-in-progress/{}.mp4", ids[1]),
    ];
    expected_clips.sort();
    assert_eq!(quarantined_clips, expected_clips);
    for (_, to) in &r.quarantined_clips {
        assert!(data.root().join(to).is_file(), "{to} not in the quarantine");
    }
    assert!(r.kept.is_empty());
    assert_eq!(
        std::fs::read_dir(data.intents_dir()).unwrap().count(),
        0,
        "intents left"
    );
    assert_eq!(std::fs::read_dir(&clips).unwrap().count(), 0, "clips left");
    let store = rec.store().unwrap();
    let has_clip = |id: &str| {
        let id = id.to_owned();
        async move {
            store
                .get(&id)
                .await
                .unwrap()
                .unwrap()
                .evidence
                .iter()
                .any(|e| e.item.kind == roadwarden_store::EvidenceKind::Clip)
        }
    };
    assert!(has_clip(&ids[0]).await);
    assert!(!has_clip(&ids[1]).await);
    assert!(!has_clip(&ids[2]).await);
    assert_eq!(store.count_violations().await.unwrap(), 4);
    let v = verify(store, &data, None).await.unwrap();
    assert!(v.ok(), "{:?}", v.problems);
    assert!(v.in_progress.is_empty() && v.clips_in_progress == 0);
    assert_eq!(v.quarantined, 3, "two clips and an intent");
}
