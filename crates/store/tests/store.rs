//! The store's integration tests. Every test body runs twice: on an SQLite
//! file and on a PostgreSQL database of its own at 127.0.0.1:5432.

use std::collections::BTreeMap;

use chrono::{Duration, TimeZone, Utc};
use roadwarden_store::*;
use roadwarden_types::{CameraId, Violation, ViolationId, ViolationKind};
use sha2::{Digest, Sha256};

const PG_ADMIN: &str = "postgres://postgres@127.0.0.1:5432/postgres";

fn test_hasher(f: &ChainFields) -> String {
    hex::encode(Sha256::digest(serde_json::to_vec(f).unwrap()))
}

/// A store on a fresh SQLite file or a fresh PostgreSQL database, dropped afterwards.
struct TestDb {
    store: Store,
    data: DataDir,
    _dir: tempfile::TempDir,
    pg_name: Option<String>,
}

impl TestDb {
    async fn new(dialect: &str) -> TestDb {
        let dir = tempfile::tempdir().unwrap();
        let data = DataDir::new(dir.path().join("data"));
        data.create().unwrap();
        let (store, pg_name) = if dialect == "postgres" {
            let name = format!("rw_test_{}", uuid::Uuid::new_v4().simple());
            let url = pgadmin::create_database(PG_ADMIN, &name).await.unwrap();
            (Store::connect(&url).await.unwrap(), Some(name))
        } else {
            (Store::open_data_dir(&data).await.unwrap(), None)
        };
        assert_eq!(store.dialect(), dialect);
        TestDb {
            store,
            data,
            _dir: dir,
            pg_name,
        }
    }
}

impl Drop for TestDb {
    fn drop(&mut self) {
        if let Some(name) = self.pg_name.take() {
            let store = self.store.clone();
            std::thread::spawn(move || {
                let rt = tokio::runtime::Builder::new_current_thread()
                    .enable_all()
                    .build()
                    .unwrap();
                rt.block_on(async {
                    store.close().await;
                    pgadmin::drop_database(PG_ADMIN, &name).await.unwrap();
                });
            })
            .join()
            .unwrap();
        }
    }
}

use roadwarden_testkit::dual_test;

impl TestDb {
    /// `dual_test!`'s harness: a fresh store (dropped with the value).
    async fn start(dialect: &'static str) -> TestDb {
        TestDb::new(dialect).await
    }
    async fn finish(self) {}
}

fn violation(camera: &str, minute: i64) -> Violation {
    Violation {
        plate_read: None,
        id: ViolationId::new(),
        kind: ViolationKind::NoHelmet,
        camera: CameraId::new(camera),
        track_id: minute as u64,
        occurred_at: Utc.with_ymd_and_hms(2024, 5, 1, 8, 0, 0).unwrap() + Duration::minutes(minute),
        confidence: 0.8125,
        frames: vec![],
        signal: vec![],
        thresholds: BTreeMap::from([("helmet.min_votes".to_owned(), 3.0)]),
    }
}

fn new_violation(data: &DataDir, camera: &str, minute: i64) -> NewViolation {
    let v = violation(camera, minute);
    let path = format!("evidence/{camera}/{}/key-photo.jpg", v.id);
    let abs = data.resolve(&path).unwrap();
    std::fs::create_dir_all(abs.parent().unwrap()).unwrap();
    let bytes = format!("photo of {}", v.id).into_bytes();
    std::fs::write(&abs, &bytes).unwrap();
    let sha = hex::encode(Sha256::digest(&bytes));
    NewViolation {
        evidence: vec![EvidenceItem::new(
            EvidenceKind::Photo,
            Some(roadwarden_types::FrameRole::Key),
            path,
            sha,
            bytes.len() as u64,
        )],
        violation: v,
    }
}

async fn insert_is_idempotent_and_chains(db: &TestDb) {
    let a = new_violation(&db.data, "cam-a", 1);
    let b = new_violation(&db.data, "cam-a", 2);
    let InsertOutcome::Inserted {
        seq: 1,
        record_hash: h1,
    } = db.store.insert(&a, test_hasher).await.unwrap()
    else {
        panic!("first insert")
    };
    assert_eq!(
        db.store.insert(&a, test_hasher).await.unwrap(),
        InsertOutcome::AlreadyPresent
    );
    let InsertOutcome::Inserted { seq: 2, .. } = db.store.insert(&b, test_hasher).await.unwrap()
    else {
        panic!("second insert")
    };
    assert_eq!(db.store.count_violations().await.unwrap(), 2);
    let got = db
        .store
        .get(&b.violation.id.to_string())
        .await
        .unwrap()
        .unwrap();
    assert_eq!(got.fields.prev_hash, h1);
    assert_eq!(
        got.fields,
        b.chain_fields(2, &h1).unwrap(),
        "stored fields are exactly what was hashed"
    );
    assert_eq!(test_hasher(&got.fields), got.record_hash);
    assert_eq!(got.status, Status::Pending);
    let cams = db.store.cameras().await.unwrap();
    assert_eq!(cams.len(), 1);
    assert_eq!(
        (cams[0].seq, cams[0].head.clone()),
        (2, got.record_hash.clone())
    );
    // Same id again after other inserts: still nothing twice.
    assert_eq!(
        db.store.insert(&a, test_hasher).await.unwrap(),
        InsertOutcome::AlreadyPresent
    );
    assert_eq!(db.store.count_violations().await.unwrap(), 2);
}
dual_test!(insert_is_idempotent_and_chains, TestDb);

async fn review_queue_pages_by_keyset(db: &TestDb) {
    let mut ids = Vec::new();
    // Inserted out of time order, two cameras, two with the same time.
    for (cam, minute) in [
        ("b", 5),
        ("a", 3),
        ("a", 9),
        ("b", 1),
        ("a", 1),
        ("b", 7),
        ("a", 4),
        ("b", 4),
        ("a", 8),
        ("b", 2),
    ] {
        let n = new_violation(&db.data, cam, minute);
        ids.push((n.violation.occurred_at, n.violation.id.to_string(), cam));
        db.store.insert(&n, test_hasher).await.unwrap();
    }
    let rejected = ids[2].1.clone();
    db.store
        .review(&rejected, "ana", Decision::Reject, "helmet visible")
        .await
        .unwrap();
    let mut expected: Vec<_> = ids.iter().filter(|x| x.1 != rejected).cloned().collect();
    expected.sort();
    let filter = QueueFilter {
        status: Status::Pending,
        camera: None,
    };
    let mut seen = Vec::new();
    let mut cursor: Option<QueueCursor> = None;
    loop {
        let page = db
            .store
            .review_queue(&filter, cursor.as_ref(), 4)
            .await
            .unwrap();
        seen.extend(page.items.iter().map(|i| i.id.clone()));
        match page.next {
            Some(c) => cursor = Some(QueueCursor::from_token(&c.token()).unwrap()),
            None => break,
        }
    }
    assert_eq!(
        seen,
        expected.iter().map(|x| x.1.clone()).collect::<Vec<_>>()
    );
    let cam_a = QueueFilter {
        status: Status::Pending,
        camera: Some("a".into()),
    };
    let page = db.store.review_queue(&cam_a, None, 100).await.unwrap();
    let want: Vec<_> = expected
        .iter()
        .filter(|x| x.2 == "a")
        .map(|x| x.1.clone())
        .collect();
    assert_eq!(
        page.items.iter().map(|i| i.id.clone()).collect::<Vec<_>>(),
        want
    );
    assert!(page.next.is_none());
    let rej = db
        .store
        .review_queue(
            &QueueFilter {
                status: Status::Rejected,
                camera: None,
            },
            None,
            10,
        )
        .await
        .unwrap();
    assert_eq!(rej.items.len(), 1);
    assert_eq!(rej.items[0].id, rejected);
}
dual_test!(review_queue_pages_by_keyset, TestDb);

async fn reviews_are_audited(db: &TestDb) {
    let n = new_violation(&db.data, "cam", 1);
    let id = n.violation.id.to_string();
    db.store.insert(&n, test_hasher).await.unwrap();
    db.store
        .review(&id, "ana", Decision::Confirm, "no helmet, clear")
        .await
        .unwrap();
    assert_eq!(
        db.store.get(&id).await.unwrap().unwrap().status,
        Status::Confirmed
    );
    let log = db.store.audit_log(Some(&id)).await.unwrap();
    assert_eq!(log.len(), 1);
    let (actor, action, vid, before, after) = &log[0];
    assert_eq!(
        (actor.as_str(), action.as_str(), vid.as_deref()),
        ("ana", "review", Some(id.as_str()))
    );
    assert!(before.as_deref().unwrap().contains("pending"));
    assert!(
        after.as_deref().unwrap().contains("confirmed")
            && after.as_deref().unwrap().contains("no helmet, clear")
    );
    assert!(matches!(
        db.store
            .review(
                &uuid::Uuid::new_v4().to_string(),
                "ana",
                Decision::Reject,
                "x"
            )
            .await,
        Err(StoreError::NotFound(_))
    ));
}
dual_test!(reviews_are_audited, TestDb);

async fn audit_pages_newest_first_by_keyset(db: &TestDb) {
    let n = new_violation(&db.data, "cam", 1);
    let id = n.violation.id.to_string();
    db.store.insert(&n, test_hasher).await.unwrap();
    for i in 0..5 {
        db.store
            .audit(
                &format!("u{i}"),
                "note",
                None,
                None,
                Some(format!("{{\"i\":{i}}}")),
            )
            .await
            .unwrap();
    }
    db.store
        .review(&id, "ana", Decision::Confirm, "clear")
        .await
        .unwrap();
    // Two at a time, newest first, each entry once.
    let mut seen = Vec::new();
    let mut cursor = None;
    for _ in 0..10 {
        let page = db.store.audit_page(None, cursor, 2).await.unwrap();
        assert!(page.len() <= 2);
        let Some(last) = page.last() else { break };
        cursor = Some(last.id);
        seen.extend(page.into_iter().map(|e| e.actor));
    }
    assert_eq!(seen, ["ana", "u4", "u3", "u2", "u1", "u0"]);
    // One violation's entries only; the whole log oldest first agrees.
    let mine = db.store.audit_page(Some(&id), None, 10).await.unwrap();
    assert_eq!(mine.len(), 1);
    assert_eq!(
        (mine[0].action.as_str(), mine[0].violation.as_deref()),
        ("review", Some(id.as_str()))
    );
    assert!(mine[0].at_us > 0);
    let all: Vec<String> = db
        .store
        .audit_log(None)
        .await
        .unwrap()
        .into_iter()
        .map(|e| e.0)
        .collect();
    assert_eq!(all, ["u0", "u1", "u2", "u3", "u4", "ana"]);
}
dual_test!(audit_pages_newest_first_by_keyset, TestDb);

async fn retention_leaves_audited_tombstones(db: &TestDb) {
    let old = new_violation(&db.data, "cam", 1);
    let young = new_violation(&db.data, "cam", 600);
    let kept = new_violation(&db.data, "cam", 2);
    for n in [&old, &young, &kept] {
        db.store.insert(n, test_hasher).await.unwrap();
    }
    for n in [&old, &young] {
        db.store
            .review(
                &n.violation.id.to_string(),
                "ana",
                Decision::Reject,
                "not a violation",
            )
            .await
            .unwrap();
    }
    let cutoff = old.violation.occurred_at + Duration::minutes(60);
    let report = db
        .store
        .purge(&db.data, Status::Rejected, cutoff, "retention")
        .await
        .unwrap();
    let old_id = old.violation.id.to_string();
    assert_eq!(report.tombstoned, vec![old_id.clone()]);
    assert_eq!(report.files_deleted, vec![old.evidence[0].path.clone()]);
    assert!(!db.data.resolve(&old.evidence[0].path).unwrap().exists());
    assert!(db.data.resolve(&young.evidence[0].path).unwrap().exists());
    assert!(db.data.resolve(&kept.evidence[0].path).unwrap().exists());
    let rec = db.store.get(&old_id).await.unwrap().unwrap();
    assert!(rec.tombstoned && rec.evidence[0].purged);
    assert_eq!(
        test_hasher(&rec.fields),
        rec.record_hash,
        "the tombstone still hashes as recorded"
    );
    assert_eq!(db.store.count_violations().await.unwrap(), 3);
    let log = db.store.audit_log(Some(&old_id)).await.unwrap();
    let purge = log.iter().find(|l| l.1 == "purge").expect("purge audited");
    assert_eq!(purge.0, "retention");
    assert!(
        purge
            .3
            .as_deref()
            .unwrap()
            .contains(&old.evidence[0].sha256),
        "before state names the evidence"
    );
    // A second run finds nothing more.
    assert!(
        db.store
            .purge(&db.data, Status::Rejected, cutoff, "retention")
            .await
            .unwrap()
            .tombstoned
            .is_empty()
    );
}
dual_test!(retention_leaves_audited_tombstones, TestDb);

async fn spool_replays_in_order_exactly_once(db: &TestDb) {
    let mut spool = Spool::open(&db.data.spool_path()).unwrap();
    let recs: Vec<_> = (0..5)
        .map(|i| new_violation(&db.data, "cam", 10 - i))
        .collect();
    for r in &recs {
        spool.append(r).unwrap();
    }
    // One of them already made it in before the outage began.
    db.store.insert(&recs[1], test_hasher).await.unwrap();
    drop(spool);
    let mut spool = Spool::open(&db.data.spool_path()).unwrap();
    assert_eq!(spool.len(), 5);
    let r = db.store.replay(&mut spool, test_hasher).await.unwrap();
    assert_eq!((r.inserted, r.already_present), (4, 1));
    assert!(spool.is_empty());
    assert!(
        Spool::open(&db.data.spool_path()).unwrap().is_empty(),
        "cleared durably"
    );
    let chain = db.store.chain_page("cam", 0, 100).await.unwrap();
    let order: Vec<_> = chain.iter().map(|c| c.fields.id.clone()).collect();
    let want: Vec<_> = [1, 0, 2, 3, 4]
        .iter()
        .map(|&i| recs[i].violation.id.to_string())
        .collect();
    assert_eq!(order, want, "spool order kept");
    assert_eq!(
        db.store.replay(&mut spool, test_hasher).await.unwrap(),
        ReplayReport::default()
    );
    assert_eq!(db.store.count_violations().await.unwrap(), 5);
}
dual_test!(spool_replays_in_order_exactly_once, TestDb);

async fn reconcile_quarantines_orphans(db: &TestDb) {
    let committed = new_violation(&db.data, "cam", 1);
    db.store.insert(&committed, test_hasher).await.unwrap();
    let spooled = new_violation(&db.data, "cam", 2);
    let mut spool = Spool::open(&db.data.spool_path()).unwrap();
    spool.append(&spooled).unwrap();
    let orphan = "evidence/cam/2024-05-01/crashed/key-photo.jpg";
    let abs = db.data.resolve(orphan).unwrap();
    std::fs::create_dir_all(abs.parent().unwrap()).unwrap();
    std::fs::write(&abs, b"written, never committed").unwrap();
    let report = db.store.reconcile(&db.data, &spool).await.unwrap();
    assert_eq!(report.quarantined.len(), 1);
    assert_eq!(report.quarantined[0].0, orphan);
    assert!(!abs.exists());
    let moved = db.data.root().join(&report.quarantined[0].1);
    assert_eq!(
        std::fs::read(moved).unwrap(),
        b"written, never committed",
        "quarantined, not deleted"
    );
    assert!(report.missing.is_empty() && report.purge_completed.is_empty());
    assert!(
        db.data
            .resolve(&committed.evidence[0].path)
            .unwrap()
            .exists()
    );
    assert!(db.data.resolve(&spooled.evidence[0].path).unwrap().exists());
    let log = db.store.audit_log(None).await.unwrap();
    assert!(
        log.iter()
            .any(|l| l.1 == "quarantine" && l.3.as_deref().unwrap().contains(orphan))
    );
    // A referenced file that vanished is reported.
    std::fs::remove_file(db.data.resolve(&committed.evidence[0].path).unwrap()).unwrap();
    let report = db.store.reconcile(&db.data, &spool).await.unwrap();
    assert_eq!(report.missing, vec![committed.evidence[0].path.clone()]);
}
dual_test!(reconcile_quarantines_orphans, TestDb);

#[test]
fn torn_spool_tail_is_cut_and_damage_elsewhere_refused() {
    let dir = tempfile::tempdir().unwrap();
    let data = DataDir::new(dir.path());
    data.create().unwrap();
    let path = data.spool_path();
    let mut spool = Spool::open(&path).unwrap();
    let a = new_violation(&data, "cam", 1);
    spool.append(&a).unwrap();
    drop(spool);
    let good_len = std::fs::metadata(&path).unwrap().len();
    let mut bytes = std::fs::read(&path).unwrap();
    bytes.extend_from_slice(b"deadbeef {\"violation\": {\"id\"");
    std::fs::write(&path, &bytes).unwrap();
    let spool = Spool::open(&path).unwrap();
    assert_eq!(spool.len(), 1);
    assert_eq!(
        std::fs::metadata(&path).unwrap().len(),
        good_len,
        "torn tail cut off"
    );
    drop(spool);
    // Damage in a line that is not the last one is an error, and the file stays as it is.
    let mut spool = Spool::open(&path).unwrap();
    spool.append(&new_violation(&data, "cam", 2)).unwrap();
    drop(spool);
    let mut bytes = std::fs::read(&path).unwrap();
    bytes[70] ^= 1;
    std::fs::write(&path, &bytes).unwrap();
    assert!(matches!(
        Spool::open(&path),
        Err(StoreError::SpoolCorrupt { line: 1, .. })
    ));
    assert_eq!(std::fs::read(&path).unwrap(), bytes);
}

#[tokio::test]
async fn connect_errors_never_show_the_password() {
    let err = Store::connect("postgres://postgres:hunter2@127.0.0.1:1/test")
        .await
        .err()
        .expect("closed port");
    let msg = err.to_string();
    assert!(
        !msg.contains("hunter2") && msg.contains("postgres:***@127.0.0.1:1"),
        "{msg}"
    );
}

// ---------------------------------------------------------------- team work: claims, undo, history, statistics

/// Inserts `n` violations of `camera` (minutes 1..=n) and returns their ids.
async fn seed_ids(db: &TestDb, camera: &str, n: i64) -> Vec<String> {
    let mut ids = Vec::new();
    for m in 1..=n {
        let v = new_violation(&db.data, camera, m);
        ids.push(v.violation.id.to_string());
        db.store.insert(&v, test_hasher).await.unwrap();
    }
    ids
}

const TTL: std::time::Duration = std::time::Duration::from_secs(300);

async fn concurrent_claims_have_one_winner(db: &TestDb) {
    let ids = seed_ids(db, "cam", 2).await;
    let names: Vec<String> = (0..16).map(|i| format!("rev{i:02}")).collect();
    for n in &names {
        db.store.ensure_user(n, "reviewer").await.unwrap();
    }
    let mut tasks = Vec::new();
    for n in names.clone() {
        let store = db.store.clone();
        let id = ids[0].clone();
        tasks.push(tokio::spawn(async move {
            (n.clone(), store.claim(&id, &n, TTL).await)
        }));
    }
    let mut winners = Vec::new();
    let mut held_by = Vec::new();
    for t in tasks {
        let (n, out) = t.await.unwrap();
        match out.unwrap() {
            ClaimOutcome::Claimed { .. } => winners.push(n),
            ClaimOutcome::Held { by, .. } => held_by.push(by),
            other => panic!("{other:?}"),
        }
    }
    assert_eq!(winners.len(), 1, "exactly one claim wins: {winners:?}");
    assert_eq!(held_by.len(), 15);
    assert!(held_by.iter().all(|b| *b == winners[0]), "{held_by:?}");
    let winner = &winners[0];
    let other = names.iter().find(|n| *n != winner).unwrap();
    // The winner renews; the next case for another reviewer skips the claimed one.
    assert!(matches!(
        db.store.claim(&ids[0], winner, TTL).await.unwrap(),
        ClaimOutcome::Claimed { .. }
    ));
    let (next, _) = db
        .store
        .claim_next(other, &ViolationFilter::default(), TTL)
        .await
        .unwrap()
        .expect("a free case");
    assert_eq!(next.id, ids[1]);
    let third = names.iter().find(|n| *n != winner && *n != other).unwrap();
    assert!(
        db.store
            .claim_next(third, &ViolationFilter::default(), TTL)
            .await
            .unwrap()
            .is_none(),
        "both cases are held"
    );
    let claims = db.store.active_claims().await.unwrap();
    assert_eq!(claims.len(), 2);
    // Another reviewer's decision on a held case is refused; the holder's ends the claim.
    assert_eq!(
        db.store
            .decide(&ids[0], other, Decision::Confirm, "", "")
            .await
            .unwrap(),
        DecideOutcome::Refused {
            current: Status::Pending
        }
    );
    assert!(matches!(
        db.store
            .decide(&ids[0], winner, Decision::Confirm, "", "")
            .await
            .unwrap(),
        DecideOutcome::Changed { .. }
    ));
    assert_eq!(db.store.active_claims().await.unwrap().len(), 1);
    assert_eq!(
        db.store.claim(&ids[0], other, TTL).await.unwrap(),
        ClaimOutcome::NotPending {
            status: Status::Confirmed
        }
    );
    // A lapsed claim is free; releasing is the holder's only.
    assert!(matches!(
        db.store
            .claim(&ids[1], other, std::time::Duration::ZERO)
            .await
            .unwrap(),
        ClaimOutcome::Claimed { .. }
    ));
    assert!(matches!(
        db.store.claim(&ids[1], third, TTL).await.unwrap(),
        ClaimOutcome::Claimed { .. }
    ));
    assert!(!db.store.release(&ids[1], other).await.unwrap());
    assert!(db.store.release(&ids[1], third).await.unwrap());
    assert!(db.store.active_claims().await.unwrap().is_empty());
}
dual_test!(concurrent_claims_have_one_winner, TestDb);

async fn undo_is_an_entry_of_the_review_log(db: &TestDb) {
    let ids = seed_ids(db, "cam", 2).await;
    for n in ["ana", "ben"] {
        db.store.ensure_user(n, "reviewer").await.unwrap();
    }
    let window = std::time::Duration::from_secs(600);
    db.store
        .decide(&ids[0], "ana", Decision::Reject, "duplicate", "")
        .await
        .unwrap();
    assert_eq!(
        db.store.undo(&ids[0], "ben", window, TTL).await.unwrap(),
        UndoOutcome::NotYours { by: "ana".into() }
    );
    assert!(matches!(
        db.store.undo(&ids[0], "ana", window, TTL).await.unwrap(),
        UndoOutcome::Undone {
            before: Status::Rejected,
            ..
        }
    ));
    let rec = db.store.get(&ids[0]).await.unwrap().unwrap();
    assert_eq!(rec.status, Status::Pending);
    // The case comes back claimed by the one who undid it.
    let claims = db.store.active_claims().await.unwrap();
    assert_eq!(
        (claims[0].violation_id.as_str(), claims[0].by.as_str()),
        (ids[0].as_str(), "ana")
    );
    assert_eq!(
        db.store.undo(&ids[0], "ana", window, TTL).await.unwrap(),
        UndoOutcome::NothingToUndo
    );
    // The decision stays; the log has the decision and the undo, chained.
    assert_eq!(db.store.reviews_of(&ids[0]).await.unwrap().len(), 1);
    let log = db.store.review_log_of(&ids[0]).await.unwrap();
    let actions: Vec<(&str, Status)> = log
        .iter()
        .map(|e| (e.fields.action.as_str(), e.fields.status))
        .collect();
    assert_eq!(
        actions,
        [("review", Status::Rejected), ("undo", Status::Pending)]
    );
    assert_eq!(log[1].fields.prev_hash, log[0].entry_hash);
    for e in &log {
        assert_eq!(review_entry_hash(&e.fields), e.entry_hash);
    }
    let audit = db.store.audit_log(Some(&ids[0])).await.unwrap();
    assert_eq!(
        audit.iter().map(|a| a.1.as_str()).collect::<Vec<_>>(),
        ["review", "undo"]
    );
    // Outside the window: refused, nothing changes.
    db.store
        .decide(&ids[1], "ben", Decision::Confirm, "", "")
        .await
        .unwrap();
    assert!(matches!(
        db.store
            .undo(&ids[1], "ben", std::time::Duration::ZERO, TTL)
            .await
            .unwrap(),
        UndoOutcome::TooLate { .. }
    ));
    assert_eq!(
        db.store.get(&ids[1]).await.unwrap().unwrap().status,
        Status::Confirmed
    );
}
dual_test!(undo_is_an_entry_of_the_review_log, TestDb);

async fn history_pages_and_statistics(db: &TestDb) {
    let a = seed_ids(db, "cam-a", 5).await;
    let b = seed_ids(db, "cam-b", 2).await;
    for n in ["ana", "ben"] {
        db.store.ensure_user(n, "reviewer").await.unwrap();
    }
    let window = std::time::Duration::from_secs(600);
    db.store
        .decide(&a[0], "ana", Decision::Confirm, "", "")
        .await
        .unwrap();
    db.store
        .decide(&a[1], "ana", Decision::Reject, "helmet_worn", "")
        .await
        .unwrap();
    db.store
        .decide(&a[2], "ben", Decision::Reject, "helmet_worn", "")
        .await
        .unwrap();
    db.store
        .decide(&a[3], "ben", Decision::Reject, "duplicate", "")
        .await
        .unwrap();
    db.store
        .decide(&b[0], "ben", Decision::Confirm, "", "")
        .await
        .unwrap();
    // Undone: counted as a decision made and undone, the case pending again.
    db.store
        .decide(&b[1], "ana", Decision::Reject, "duplicate", "")
        .await
        .unwrap();
    db.store.undo(&b[1], "ana", window, TTL).await.unwrap();

    // History: six decisions, newest first, pages of four then two.
    let f = ViolationFilter::default();
    let p1 = db.store.history_page(&f, None, None, 4).await.unwrap();
    assert_eq!(p1.items.len(), 4);
    let p2 = db
        .store
        .history_page(&f, None, p1.next.as_ref(), 4)
        .await
        .unwrap();
    assert_eq!(p2.items.len(), 2);
    assert!(p2.next.is_none());
    let all: Vec<&HistoryRow> = p1.items.iter().chain(&p2.items).collect();
    assert_eq!(all[0].violation_id, b[1], "the newest decision first");
    assert!(all[0].undone_at_us.is_some());
    assert_eq!(all[0].status, Status::Pending);
    assert!(
        all.windows(2)
            .all(|w| (w[0].reviewed_at_us, w[0].review_id) > (w[1].reviewed_at_us, w[1].review_id))
    );
    let token = p1.next.unwrap().token();
    assert_eq!(HistoryCursor::from_token(&token).unwrap(), p1.next.unwrap());
    let bens = db
        .store
        .history_page(&f, Some("ben"), None, 100)
        .await
        .unwrap();
    assert_eq!(bens.items.len(), 3);
    let rejected = ViolationFilter {
        status: Some(Status::Rejected),
        camera: Some("cam-a".into()),
        ..Default::default()
    };
    assert_eq!(
        db.store
            .history_page(&rejected, None, None, 100)
            .await
            .unwrap()
            .items
            .len(),
        3
    );

    // Statistics over the seeded day.
    let day0 = to_micros(Utc.with_ymd_and_hms(2024, 5, 1, 0, 0, 0).unwrap());
    let s = db
        .store
        .queue_stats(day0, day0 + 86_400_000_000, None)
        .await
        .unwrap();
    let day = day0 / 86_400_000_000;
    assert_eq!(
        s.days,
        vec![
            CameraDay {
                camera: "cam-a".into(),
                day,
                flagged: 5,
                confirmed: 1,
                rejected: 3,
                pending: 1
            },
            CameraDay {
                camera: "cam-b".into(),
                day,
                flagged: 2,
                confirmed: 1,
                rejected: 0,
                pending: 1
            },
        ]
    );
    let rej: Vec<(&str, &str, i64)> = s
        .rejections
        .iter()
        .map(|r| (r.camera.as_str(), r.reason.as_str(), r.count))
        .collect();
    assert_eq!(
        rej,
        [("cam-a", "helmet_worn", 2), ("cam-a", "duplicate", 1)]
    );
    // Reviewers: decisions made now (reviewed_at is the wall clock).
    let now = to_micros(Utc::now());
    let s = db
        .store
        .queue_stats(now - 3_600_000_000, now + 3_600_000_000, None)
        .await
        .unwrap();
    let tally: Vec<(&str, i64, i64, i64, i64)> = s
        .reviewers
        .iter()
        .map(|r| {
            (
                r.reviewer.as_str(),
                r.decisions,
                r.confirmed,
                r.rejected,
                r.undone,
            )
        })
        .collect();
    assert_eq!(tally, [("ana", 3, 1, 1, 1), ("ben", 3, 1, 2, 0)]);
    assert!(
        s.days.is_empty(),
        "the violations occurred in 2024, not in this hour"
    );
    // Time zones: UTC until chosen.
    assert_eq!(
        db.store.time_zone("ana").await.unwrap().as_deref(),
        Some("UTC")
    );
    db.store
        .set_time_zone("ana", "Europe/Berlin")
        .await
        .unwrap();
    assert_eq!(
        db.store.time_zone("ana").await.unwrap().as_deref(),
        Some("Europe/Berlin")
    );
    assert_eq!(db.store.time_zone("nobody").await.unwrap(), None);
}
dual_test!(history_pages_and_statistics, TestDb);

const S: i64 = 1_000_000;

fn node(id: &str) -> NodeId {
    NodeId::parse(id).unwrap()
}

async fn concurrent_takers_of_a_lease_one_wins(db: &TestDb) {
    let now = 1_000 * S;
    let mut tasks = Vec::new();
    for i in 0..8 {
        let store = db.store.clone();
        tasks.push(tokio::spawn(async move {
            let n = node(&format!("node-{i}"));
            store.take_lease("gate", &n, now, 10 * S).await.unwrap()
        }));
    }
    let mut won = Vec::new();
    for t in tasks {
        if let Some(lease) = t.await.unwrap() {
            won.push(lease);
        }
    }
    assert_eq!(won.len(), 1, "exactly one taker wins: {won:?}");
    assert_eq!(won[0].epoch, 1);
    assert_eq!(won[0].expires_at_us, now + 10 * S);
    assert_eq!(db.store.leases().await.unwrap(), won);
    // The winner itself cannot take it again while it runs: it renews.
    let holder = node(&won[0].node);
    assert_eq!(
        db.store
            .take_lease("gate", &holder, now + S, 10 * S)
            .await
            .unwrap(),
        None
    );
}
dual_test!(concurrent_takers_of_a_lease_one_wins, TestDb);

async fn an_expired_lease_is_taken_and_its_old_holder_refused(db: &TestDb) {
    let (a, b) = (node("a"), node("b"));
    let t0 = 1_000 * S;
    assert!(
        db.store
            .take_lease("gate", &a, t0, 10 * S)
            .await
            .unwrap()
            .is_some()
    );
    // Not yet expired: b cannot have it.
    assert!(
        db.store
            .take_lease("gate", &b, t0 + 9 * S, 10 * S)
            .await
            .unwrap()
            .is_none()
    );
    // Renewed by a at t0 + 5 s: lasts until t0 + 15 s.
    assert!(
        db.store
            .renew_lease("gate", &a, t0 + 5 * S, 10 * S)
            .await
            .unwrap()
    );
    assert!(
        db.store
            .take_lease("gate", &b, t0 + 12 * S, 10 * S)
            .await
            .unwrap()
            .is_none()
    );
    // a stops renewing: from t0 + 15 s b takes it, epoch 2.
    let lease = db
        .store
        .take_lease("gate", &b, t0 + 15 * S, 10 * S)
        .await
        .unwrap()
        .expect("an expired lease is free");
    assert_eq!((lease.node.as_str(), lease.epoch), ("b", 2));
    // a's renewals are refused now, and change nothing.
    assert!(
        !db.store
            .renew_lease("gate", &a, t0 + 16 * S, 10 * S)
            .await
            .unwrap()
    );
    assert_eq!(
        db.store
            .renew_leases(&a, t0 + 16 * S, 10 * S)
            .await
            .unwrap(),
        Vec::<String>::new()
    );
    assert_eq!(db.store.leases().await.unwrap(), vec![lease.clone()]);
    // Nor may a release it.
    assert!(!db.store.release_lease("gate", &a).await.unwrap());
    // Even b cannot renew it once expired (another node may have taken it by then): it takes it again.
    assert!(
        !db.store
            .renew_lease("gate", &b, t0 + 26 * S, 10 * S)
            .await
            .unwrap()
    );
    assert!(
        db.store
            .renew_lease("gate", &b, t0 + 20 * S, 10 * S)
            .await
            .unwrap()
    );
    assert!(db.store.release_lease("gate", &b).await.unwrap());
    assert!(
        db.store
            .take_lease("gate", &a, t0 + 21 * S, 10 * S)
            .await
            .unwrap()
            .is_some()
    );
}
dual_test!(an_expired_lease_is_taken_and_its_old_holder_refused, TestDb);

async fn a_renewal_by_a_non_holder_is_refused(db: &TestDb) {
    let (a, b) = (node("a"), node("b"));
    let t0 = 1_000 * S;
    db.store
        .take_lease("gate", &a, t0, 10 * S)
        .await
        .unwrap()
        .unwrap();
    db.store
        .take_lease("quay", &a, t0, 10 * S)
        .await
        .unwrap()
        .unwrap();
    db.store
        .take_lease("avenue", &b, t0, 10 * S)
        .await
        .unwrap()
        .unwrap();
    assert!(
        !db.store
            .renew_lease("gate", &b, t0 + S, 60 * S)
            .await
            .unwrap()
    );
    let gate = |l: &Vec<Lease>| l.iter().find(|l| l.camera == "gate").unwrap().clone();
    assert_eq!(
        gate(&db.store.leases().await.unwrap()).expires_at_us,
        t0 + 10 * S
    );
    // Each node renews its own, and only its own.
    assert_eq!(
        db.store.renew_leases(&a, t0 + 2 * S, 10 * S).await.unwrap(),
        vec!["gate".to_owned(), "quay".to_owned()]
    );
    assert_eq!(
        db.store.renew_leases(&b, t0 + 2 * S, 10 * S).await.unwrap(),
        vec!["avenue".to_owned()]
    );
    assert_eq!(
        gate(&db.store.leases().await.unwrap()).expires_at_us,
        t0 + 12 * S
    );
    // Live nodes: seen within the window; a clean stop releases a node's leases.
    db.store.node_seen(&a, t0).await.unwrap();
    db.store.node_seen(&b, t0 - 20 * S).await.unwrap();
    assert_eq!(
        db.store.live_nodes(t0 - 10 * S).await.unwrap(),
        vec!["a".to_owned()]
    );
    db.store.node_seen(&b, t0 + S).await.unwrap();
    assert_eq!(
        db.store.live_nodes(t0 - 10 * S).await.unwrap(),
        vec!["a".to_owned(), "b".to_owned()]
    );
    db.store.node_gone(&a).await.unwrap();
    assert_eq!(db.store.live_nodes(0).await.unwrap(), vec!["b".to_owned()]);
    let left: Vec<String> = db
        .store
        .leases()
        .await
        .unwrap()
        .into_iter()
        .map(|l| l.camera)
        .collect();
    assert_eq!(left, vec!["avenue".to_owned()]);
}
dual_test!(a_renewal_by_a_non_holder_is_refused, TestDb);

async fn two_nodes_append_to_one_cameras_chain(db: &TestDb) {
    let (a, b) = (node("node-a"), node("node-b"));
    let on_a = db.store.clone().with_node(Some(a.clone()));
    let on_b = db.store.clone().with_node(Some(b.clone()));
    // a records, b takes the camera over and records, a again (after b died), and so on.
    let mut ids = Vec::new();
    for (i, store) in [&on_a, &on_b, &on_b, &on_a].into_iter().enumerate() {
        let n = new_violation(&db.data, "gate", i as i64);
        ids.push((n.violation.id.to_string(), store.node().unwrap().clone()));
        let InsertOutcome::Inserted { seq, .. } = store.insert(&n, test_hasher).await.unwrap()
        else {
            panic!("insert {i}")
        };
        assert_eq!(seq, i as i64 + 1, "each continues from the stored head");
    }
    let chain = db.store.chain_page("gate", 0, 100).await.unwrap();
    let mut prev = GENESIS_HASH.to_owned();
    for (rec, (id, holder)) in chain.iter().zip(&ids) {
        assert_eq!(&rec.fields.id, id);
        assert_eq!(rec.fields.prev_hash, prev);
        assert_eq!(test_hasher(&rec.fields), rec.record_hash);
        assert_eq!(rec.node.as_deref(), Some(holder.as_str()));
        prev = rec.record_hash.clone();
    }
    assert_eq!(chain.len(), 4);
    // A node's reconcile looks at its own files only.
    let unnamed = new_violation(&db.data, "gate", 9);
    db.store.insert(&unnamed, test_hasher).await.unwrap();
    let paths = on_a.evidence_paths().await.unwrap();
    assert_eq!(
        paths.len(),
        3,
        "a's two and the one recorded without a node: {paths:?}"
    );
    assert_eq!(db.store.evidence_paths().await.unwrap().len(), 5);
}
dual_test!(two_nodes_append_to_one_cameras_chain, TestDb);

async fn nats_events_not_acknowledged_are_swept(db: &TestDb) {
    let n = new_violation(&db.data, "gate", 1);
    let id = n.violation.id.to_string();
    db.store.insert(&n, test_hasher).await.unwrap();
    let now = Utc::now().timestamp_micros();
    let pending = db
        .store
        .nats_unpublished(now - 60 * S, now + S, 10)
        .await
        .unwrap();
    assert_eq!(pending.len(), 1);
    assert_eq!(
        (pending[0].id.as_str(), pending[0].camera.as_str()),
        (id.as_str(), "gate")
    );
    assert_eq!(
        pending[0].occurred_at_us,
        n.violation.occurred_at.timestamp_micros()
    );
    // Recorded after the window's end: not yet.
    assert!(
        db.store
            .nats_unpublished(now - 60 * S, now - 30 * S, 10)
            .await
            .unwrap()
            .is_empty()
    );
    db.store.nats_published(&id, now).await.unwrap();
    assert!(
        db.store
            .nats_unpublished(now - 60 * S, now + S, 10)
            .await
            .unwrap()
            .is_empty()
    );
}
dual_test!(nats_events_not_acknowledged_are_swept, TestDb);

#[test]
fn node_ids_are_checked_and_kept_in_the_data_folder() {
    assert!(NodeId::parse("node-1.a_b").is_ok());
    for bad in ["", "a b", "a/b", &"x".repeat(65)] {
        let e = NodeId::parse(bad).unwrap_err().to_string();
        assert!(e.contains("--node-id"), "{e}");
    }
    let g = NodeId::generate();
    assert!(NodeId::parse(g.as_str()).is_ok(), "{g}");
    let dir = tempfile::tempdir().unwrap();
    let data = DataDir::new(dir.path());
    assert_eq!(data.node_id().unwrap(), None);
    let first = data.ensure_node_id(None).unwrap();
    assert_eq!(data.ensure_node_id(None).unwrap(), first, "stable");
    let given = node("node-b");
    assert_eq!(data.ensure_node_id(Some(&given)).unwrap(), given);
    assert_eq!(data.node_id().unwrap(), Some(given));
    std::fs::write(data.node_id_path(), "bad id\n").unwrap();
    assert!(data.ensure_node_id(None).is_err());
}
