//! Recording and verification, on SQLite and on PostgreSQL: evidence files
//! and hashes, and tampering that `verify` must name.

mod common;

use common::*;
use roadwarden_evidence::*;
use roadwarden_imaging::BgrImage;
use roadwarden_store::EvidenceKind;
use roadwarden_testkit::dual_test;

async fn record_n(site: &TestSite, n: u64) -> (Recorder, Vec<String>) {
    let (mut rec, report) = Recorder::open(site.data.clone(), site.url.as_deref())
        .await
        .unwrap();
    assert!(report.connected, "{:?}", report.connect_error);
    let mut ids = Vec::new();
    for i in 0..n {
        let c = capture("gate-north", i);
        ids.push(c.violation.id.to_string());
        assert_eq!(
            rec.record(c).await.unwrap(),
            Recorded::Committed { seq: i as i64 + 1 }
        );
    }
    (rec, ids)
}

async fn check(rec: &Recorder) -> VerifyReport {
    verify(rec.store().unwrap(), rec.data(), None)
        .await
        .unwrap()
}

async fn recorded_evidence_is_complete_and_verifies(site: &TestSite) {
    let clip = site.dir.path().join("clip.mp4");
    std::fs::write(&clip, b"not really an mp4, but a file to hash").unwrap();
    let (mut rec, _) = record_n(site, 4).await;
    let mut c = capture("gate-south", 9);
    let jpeg_in = match &c.frames[0].1 {
        FrameImage::Jpeg(b) => b.clone(),
        FrameImage::Bgr(_) => unreachable!(),
    };
    c.clip = Some(clip.clone());
    let id = c.violation.id.to_string();
    assert_eq!(rec.record(c).await.unwrap(), Recorded::Committed { seq: 1 });
    let store = rec.store().unwrap().clone();
    let stored = store.get(&id).await.unwrap().unwrap();
    // Red light: three frames, each photo with overlay and raw, the rider crop at the crossing, the clip.
    assert_eq!(stored.evidence.len(), 8);
    let crop = stored
        .evidence
        .iter()
        .find(|e| e.item.kind == EvidenceKind::Crop)
        .expect("an offender crop");
    assert_eq!(crop.item.role.as_deref(), Some("at"));
    let crop_img = BgrImage::read(&rec.data().resolve(&crop.item.path).unwrap()).unwrap();
    assert!(
        crop_img.width() < 160 && crop_img.width() >= 50,
        "{}",
        crop_img.width()
    );
    for e in &stored.evidence {
        let abs = rec.data().resolve(&e.item.path).unwrap();
        let (sha, size) = sha256_file(&abs).unwrap();
        assert_eq!((sha, size), (e.item.sha256.clone(), e.item.size));
        if e.item.kind != EvidenceKind::Clip {
            BgrImage::read(&abs).expect("a decodable JPEG");
        }
    }
    let raw = stored
        .evidence
        .iter()
        .find(|e| e.item.kind == EvidenceKind::Raw && e.item.role.as_deref() == Some("before"))
        .unwrap();
    assert_eq!(
        std::fs::read(rec.data().resolve(&raw.item.path).unwrap()).unwrap(),
        jpeg_in,
        "unmarked frame kept byte for byte"
    );
    let photo = stored
        .evidence
        .iter()
        .find(|e| e.item.kind == EvidenceKind::Photo && e.item.role.as_deref() == Some("before"))
        .unwrap();
    assert_ne!(
        photo.item.sha256, raw.item.sha256,
        "the photo carries the overlay"
    );
    let clip_row = stored
        .evidence
        .iter()
        .find(|e| e.item.kind == EvidenceKind::Clip)
        .unwrap();
    assert_eq!(
        std::fs::read(rec.data().resolve(&clip_row.item.path).unwrap()).unwrap(),
        std::fs::read(&clip).unwrap()
    );
    // Recording the same violation again writes nothing.
    let mut again = capture("gate-south", 9);
    again.violation.id = stored
        .fields
        .id
        .parse::<uuid::Uuid>()
        .map(roadwarden_types::ViolationId)
        .unwrap();
    assert_eq!(rec.record(again).await.unwrap(), Recorded::AlreadyRecorded);
    let report = check(&rec).await;
    assert!(report.ok(), "{:?}", report.problems);
    assert_eq!(
        (report.cameras, report.records, report.files),
        (2, 5, 3 + 7 + 3 + 7 + 8) // no_helmet: 3 files, red light: 7 (+1 clip)
    );
    let one = verify(&store, rec.data(), Some("gate-north"))
        .await
        .unwrap();
    assert_eq!((one.cameras, one.records), (1, 4));
    assert!(verify(&store, rec.data(), Some("nowhere")).await.is_err());
}
dual_test!(recorded_evidence_is_complete_and_verifies, TestSite);

async fn flipped_byte_in_a_photo_is_named(site: &TestSite) {
    let (rec, ids) = record_n(site, 5).await;
    let store = rec.store().unwrap();
    let victim = store.get(&ids[2]).await.unwrap().unwrap();
    let photo = victim
        .evidence
        .iter()
        .find(|e| e.item.kind == EvidenceKind::Photo)
        .unwrap();
    let abs = rec.data().resolve(&photo.item.path).unwrap();
    let mut bytes = std::fs::read(&abs).unwrap();
    let mid = bytes.len() / 2;
    bytes[mid] ^= 0x01;
    std::fs::write(&abs, &bytes).unwrap();
    let report = check(&rec).await;
    assert_eq!(report.problems.len(), 1, "{:?}", report.problems);
    match &report.problems[0] {
        Problem::FileAltered {
            path,
            violation,
            seq,
            ..
        } => {
            assert_eq!((path, violation, *seq), (&photo.item.path, &ids[2], 3));
        }
        p => panic!("expected FileAltered, got {p}"),
    }
    assert!(report.problems[0].to_string().contains(&photo.item.path));
    bytes[mid] ^= 0x01;
    std::fs::write(&abs, &bytes).unwrap();
    assert!(check(&rec).await.ok(), "restored data verifies again");
    std::fs::remove_file(&abs).unwrap();
    let report = check(&rec).await;
    assert!(
        matches!(&report.problems[..], [Problem::FileMissing { path, .. }] if path == &photo.item.path),
        "{:?}",
        report.problems
    );
}
dual_test!(flipped_byte_in_a_photo_is_named, TestSite);

async fn deleted_row_is_named(site: &TestSite) {
    let (rec, ids) = record_n(site, 5).await;
    let store = rec.store().unwrap();
    store
        .execute_sql(&format!(
            "DELETE FROM evidence WHERE violation_id = '{}'",
            ids[2]
        ))
        .await
        .unwrap();
    store
        .execute_sql(&format!("DELETE FROM violations WHERE id = '{}'", ids[2]))
        .await
        .unwrap();
    let report = check(&rec).await;
    let text: Vec<String> = report.problems.iter().map(|p| p.to_string()).collect();
    assert!(
        report.problems.contains(&Problem::RecordsMissing {
            camera: "gate-north".into(),
            from: 3,
            to: 3,
            next: Some(ids[3].clone())
        }),
        "{text:?}"
    );
    assert!(report.problems.contains(&Problem::ChainBroken {
        camera: "gate-north".into(),
        seq: 4,
        violation: ids[3].clone(),
        predecessor: Some(ids[1].clone())
    }));
    assert_eq!(report.problems.len(), 2, "{text:?}");
    // Deleting the last record is caught by the chain head.
    store
        .execute_sql(&format!(
            "DELETE FROM evidence WHERE violation_id = '{}'",
            ids[4]
        ))
        .await
        .unwrap();
    store
        .execute_sql(&format!("DELETE FROM violations WHERE id = '{}'", ids[4]))
        .await
        .unwrap();
    let report = check(&rec).await;
    assert!(report.problems.contains(&Problem::RecordsMissing {
        camera: "gate-north".into(),
        from: 5,
        to: 5,
        next: None
    }));
}
dual_test!(deleted_row_is_named, TestSite);

async fn swapped_rows_are_named(site: &TestSite) {
    let (rec, ids) = record_n(site, 5).await;
    let store = rec.store().unwrap();
    store
        .execute_sql(&format!(
            "UPDATE violations SET seq = -1 WHERE id = '{}'",
            ids[1]
        ))
        .await
        .unwrap();
    store
        .execute_sql(&format!(
            "UPDATE violations SET seq = 2 WHERE id = '{}'",
            ids[3]
        ))
        .await
        .unwrap();
    store
        .execute_sql(&format!(
            "UPDATE violations SET seq = 4 WHERE id = '{}'",
            ids[1]
        ))
        .await
        .unwrap();
    let report = check(&rec).await;
    let text: Vec<String> = report.problems.iter().map(|p| p.to_string()).collect();
    for (seq, id) in [(2, &ids[3]), (4, &ids[1])] {
        assert!(
            report.problems.contains(&Problem::RecordAltered {
                camera: "gate-north".into(),
                seq,
                violation: id.clone()
            }),
            "{text:?}"
        );
        assert!(report.problems.iter().any(|p| matches!(p, Problem::ChainBroken { seq: s, violation, .. } if *s == seq && violation == id)), "{text:?}");
    }
    assert!(
        report
            .problems
            .iter()
            .all(|p| !matches!(p, Problem::FileAltered { .. } | Problem::FileMissing { .. }))
    );
}
dual_test!(swapped_rows_are_named, TestSite);

async fn edited_row_is_named(site: &TestSite) {
    let (rec, ids) = record_n(site, 3).await;
    let store = rec.store().unwrap();
    store
        .execute_sql(&format!(
            "UPDATE violations SET confidence = 0.99 WHERE id = '{}'",
            ids[0]
        ))
        .await
        .unwrap();
    store
        .execute_sql(&format!(
            "UPDATE evidence SET sha256 = '{}' WHERE violation_id = '{}' AND kind = 'raw'",
            "0".repeat(64),
            ids[2]
        ))
        .await
        .unwrap();
    let report = check(&rec).await;
    assert!(report.problems.contains(&Problem::RecordAltered {
        camera: "gate-north".into(),
        seq: 1,
        violation: ids[0].clone()
    }));
    assert!(report.problems.contains(&Problem::RecordAltered {
        camera: "gate-north".into(),
        seq: 3,
        violation: ids[2].clone()
    }));
}
dual_test!(edited_row_is_named, TestSite);

async fn purged_tombstones_still_verify(site: &TestSite) {
    let (rec, ids) = record_n(site, 4).await;
    let store = rec.store().unwrap();
    store
        .review(
            &ids[1],
            "ana",
            roadwarden_store::Decision::Reject,
            "helmet on",
        )
        .await
        .unwrap();
    let report = store
        .purge(
            rec.data(),
            roadwarden_store::Status::Rejected,
            chrono::Utc::now(),
            "retention",
        )
        .await
        .unwrap();
    assert_eq!(report.tombstoned, vec![ids[1].clone()]);
    assert_eq!(
        report.files_deleted.len(),
        7,
        "a red light's three photos, three raw frames and the rider crop"
    );
    let v = check(&rec).await;
    assert!(v.ok(), "{:?}", v.problems);
    assert_eq!((v.records, v.tombstones), (4, 1));
}
dual_test!(purged_tombstones_still_verify, TestSite);

async fn edited_review_log_row_is_named(site: &TestSite) {
    let (rec, ids) = record_n(site, 3).await;
    let store = rec.store().unwrap();
    use roadwarden_store::Decision;
    store
        .review(&ids[0], "ana", Decision::Confirm, "no helmet, clear")
        .await
        .unwrap();
    store
        .review(&ids[1], "ana", Decision::Reject, "helmet on")
        .await
        .unwrap();
    store.reopen(&ids[1], "ada", "second look").await.unwrap();
    let log = store.review_log_of(&ids[1]).await.unwrap();
    assert_eq!(
        log.iter()
            .map(|e| (e.fields.seq, e.fields.action.as_str(), e.fields.status))
            .collect::<Vec<_>>(),
        [
            (2, "review", roadwarden_store::Status::Rejected),
            (3, "reopen", roadwarden_store::Status::Pending)
        ]
    );
    let stored = store.get(&ids[1]).await.unwrap().unwrap();
    assert_eq!(log[0].fields.record_hash, stored.record_hash, "anchored");
    let v = check(&rec).await;
    assert!(v.ok(), "{:?}", v.problems);
    assert_eq!(v.review_entries, 3);

    // A decision rewritten in place: entry 1 no longer matches its hash.
    store
        .execute_sql(&format!(
            "UPDATE review_log SET status = 'rejected', actor = 'mallory' WHERE violation_id = '{}'",
            ids[0]
        ))
        .await
        .unwrap();
    let v = check(&rec).await;
    let lines: Vec<String> = v.problems.iter().map(|p| p.to_string()).collect();
    assert_eq!(lines.len(), 1, "{lines:?}");
    assert!(
        matches!(&v.problems[0], Problem::ReviewLogBroken { seq: 1, violation: Some(id), .. } if *id == ids[0]),
        "{lines:?}"
    );
    assert!(
        lines[0].starts_with("review log broken: camera gate-north entry 1")
            && lines[0].contains("edited"),
        "{lines:?}"
    );

    // An entry deleted: the next one names the gap.
    store
        .execute_sql("DELETE FROM review_log WHERE seq = 2")
        .await
        .unwrap();
    let v = check(&rec).await;
    let lines: Vec<String> = v.problems.iter().map(|p| p.to_string()).collect();
    assert!(
        lines
            .iter()
            .any(|l| l.contains("entry 3") && l.contains("entries 2..2 missing")),
        "{lines:?}"
    );
}
dual_test!(edited_review_log_row_is_named, TestSite);
