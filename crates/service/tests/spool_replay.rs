//! The recorder loop's background replay over real parts: PostgreSQL at 127.0.0.1:5432 behind a real
//! TCP proxy that the test cuts, the service's recorder thread and the evidence recorder. Violations
//! recorded during the outage are spooled; once the database is back the spool drains on its own, with
//! no new violation handed over, and every violation is stored exactly once, in order.

use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, Instant};

use chrono::{TimeZone, Utc};
use roadwarden_evidence::Recorded;
use roadwarden_pipeline::ViolationFrames;
use roadwarden_service::recorder::{OnFailure, RecorderThread};
use roadwarden_service::{DataDir, Handled, RecordObserver, Store};
use roadwarden_store::pgadmin;
use roadwarden_testkit::proxy::Proxy;
use roadwarden_types::{CameraId, Violation, ViolationId, ViolationKind};

const PG_ADMIN: &str = "postgres://postgres@127.0.0.1:5432/postgres";
const PG: &str = "127.0.0.1:5432";

/// What the recorder told its observer: each violation's outcome, and the spool depth after each
/// background replay.
#[derive(Default)]
struct Heard {
    outcomes: Vec<Result<Recorded, String>>,
    replays: Vec<usize>,
}

#[derive(Clone, Default)]
struct Ears(Arc<Mutex<Heard>>);

impl Ears {
    fn heard(&self) -> std::sync::MutexGuard<'_, Heard> {
        self.0.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

impl RecordObserver for Ears {
    fn handled(&mut self, h: &Handled<'_>) -> std::io::Result<()> {
        let outcome = h.outcome.clone().map_err(|e| e.to_string());
        self.heard().outcomes.push(outcome);
        Ok(())
    }

    fn spool_replayed(&mut self, spooled: usize) {
        self.heard().replays.push(spooled);
    }
}

fn violation(n: i64) -> ViolationFrames {
    ViolationFrames {
        violation: Violation {
            plate_read: None,
            id: ViolationId::new(),
            kind: ViolationKind::NoHelmet,
            camera: CameraId::new("gate-east"),
            track_id: n as u64,
            occurred_at: Utc
                .timestamp_opt(1_780_000_000 + n, 0)
                .single()
                .expect("time"),
            confidence: 0.8,
            frames: vec![],
            signal: vec![],
            thresholds: Default::default(),
        },
        images: vec![],
        missing: vec![],
        clip: None,
    }
}

/// Polls `what` every 100 ms until it holds or `limit` passes; whether it held.
fn within(limit: Duration, mut what: impl FnMut() -> bool) -> bool {
    let deadline = Instant::now() + limit;
    loop {
        if what() {
            return true;
        }
        if Instant::now() >= deadline {
            return false;
        }
        std::thread::sleep(Duration::from_millis(100));
    }
}

#[test]
fn the_spool_drains_once_the_database_is_back_with_no_new_violation() {
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("runtime");
    let name = format!("rw_spool_{}", uuid_like());
    let direct = rt
        .block_on(pgadmin::create_database(PG_ADMIN, &name))
        .expect("create pg database (PostgreSQL at 127.0.0.1:5432)");
    let proxy = Proxy::start(PG);
    let dir = tempfile::tempdir().expect("tempdir");
    let data = DataDir::new(dir.path().join("data"));
    let ears = Ears::default();
    let recorder = RecorderThread::spawn(
        data.clone(),
        Some(proxy.url(&direct, PG)),
        dir.path().join("clips"),
        OnFailure::GoOn,
        ears.clone(),
    )
    .expect("the recorder opens with the database reachable");
    let to = recorder.sender();
    let mut ids = Vec::new();
    // One while the database is there, then 6 during the outage.
    let first = violation(0);
    ids.push(first.violation.id.to_string());
    assert!(to.hand(first, [(0.0, 0.0), (1.0, 1.0)]));
    assert!(within(Duration::from_secs(30), || ears
        .heard()
        .outcomes
        .len()
        == 1));
    proxy.cut();
    for n in 1..=6 {
        let vf = violation(n);
        ids.push(vf.violation.id.to_string());
        assert!(to.hand(vf, [(0.0, 0.0), (1.0, 1.0)]));
    }
    assert!(
        within(Duration::from_secs(60), || ears.heard().outcomes.len() == 7),
        "the recorder dealt with every violation during the outage"
    );
    {
        let heard = ears.heard();
        assert!(
            matches!(heard.outcomes[0], Ok(Recorded::Committed { seq: 1 })),
            "{:?}",
            heard.outcomes[0]
        );
        for o in &heard.outcomes[1..] {
            assert!(
                matches!(o, Ok(Recorded::Spooled)),
                "during the outage: {o:?}"
            );
        }
    }
    // Give the background replay a few ticks against the cut database: nothing may drain yet.
    std::thread::sleep(Duration::from_secs(2));
    assert!(
        ears.heard().replays.iter().all(|&left| left == 6),
        "{:?}",
        ears.heard().replays
    );
    // The database comes back; nothing more is handed over.
    proxy.restore();
    let store = rt
        .block_on(Store::connect(&direct))
        .expect("direct connection");
    let count = || rt.block_on(store.count_violations()).expect("count");
    assert!(
        within(Duration::from_secs(10), || count() == 7),
        "the spool did not drain within 10 s of the database coming back ({} stored)",
        count()
    );
    assert_eq!(
        ears.heard().replays.last(),
        Some(&0),
        "the observer heard the spool empty"
    );
    let chain = rt
        .block_on(store.chain_page("gate-east", 0, 100))
        .expect("chain");
    let stored: Vec<String> = chain.iter().map(|r| r.fields.id.clone()).collect();
    assert_eq!(
        stored, ids,
        "every violation exactly once, in the order handed over"
    );
    drop(to);
    let tally = recorder.finish().expect("the recorder ends cleanly");
    assert_eq!(
        (tally.handed, tally.committed, tally.spooled, tally.failed),
        (7, 1, 6, 0)
    );
    rt.block_on(store.close());
    rt.block_on(pgadmin::drop_database(PG_ADMIN, &name))
        .expect("drop pg database");
}

/// A fresh lower-case name part from the clock and the process id (no uuid crate here).
fn uuid_like() -> String {
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_nanos())
        .unwrap_or_default();
    format!("{}_{nanos}", std::process::id())
}
