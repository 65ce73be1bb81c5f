//! `analyze --config --data` records violations with their evidence (the real pipeline on a short synthetic
//! scene: real models, real GStreamer, real SQLite), and `verify` checks them and names what was tampered
//! with: a flipped byte in a photo, a deleted row.

mod common;

use std::path::Path;

use common::*;

fn verify(data: &Path) -> Run {
    roadwarden(["verify", "--data", data.to_str().unwrap()])
}

fn sha256_hex(path: &Path) -> String {
    let run = std::process::Command::new("sha256sum")
        .arg(path)
        .output()
        .expect("sha256sum");
    String::from_utf8_lossy(&run.stdout)
        .split_whitespace()
        .next()
        .unwrap_or_default()
        .to_owned()
}

#[test]
fn analyze_records_evidence_that_verify_checks() {
    let dir = tempfile::tempdir().unwrap();
    let (data, run) = synth_and_analyze(dir.path(), &one_rider_scene(dir.path()));
    assert!(data.join("roadwarden.sqlite3").is_file(), "{}", run.stderr);
    let lines = json_lines(&run.stdout, "one JSON line per violation");
    assert!(!lines.is_empty(), "no violation recorded: {}", run.stderr);
    assert!(
        run.stderr.contains(&format!("{} committed", lines.len())),
        "{}",
        run.stderr
    );
    let mut photo = None;
    for v in &lines {
        assert_eq!(v["recorded"], "committed", "{v}");
        assert_eq!(v["camera"], "synth-cam");
        assert_eq!(v["missing_frames"], serde_json::json!([]), "{v}");
        let files: Vec<&str> = v["evidence"]
            .as_array()
            .unwrap()
            .iter()
            .map(|f| f.as_str().unwrap())
            .collect();
        let frames = v["frames"].as_array().unwrap().len();
        let count = |suffix: &str| files.iter().filter(|f| f.ends_with(suffix)).count();
        assert_eq!(count("-photo.jpg"), frames, "{files:?}");
        assert_eq!(count("-raw.jpg"), frames, "{files:?}");
        assert_eq!(count("-crop.jpg"), 1, "{files:?}");
        for f in &files {
            let p = data.join(f);
            assert!(std::fs::metadata(&p).unwrap().len() > 0, "{f}");
        }
        // The photo carries the overlay, the raw frame beside it does not.
        let p = files.iter().find(|f| f.ends_with("-photo.jpg")).unwrap();
        let raw = p.replace("-photo.jpg", "-raw.jpg");
        assert_ne!(sha256_hex(&data.join(p)), sha256_hex(&data.join(&raw)));
        photo.get_or_insert_with(|| p.to_string());
    }
    let clips = lines
        .iter()
        .filter(|v| {
            v["evidence"].as_array().is_some_and(|a| {
                a.iter()
                    .any(|f| f.as_str().is_some_and(|f| f.ends_with("clip.mp4")))
            })
        })
        .count();
    assert!(clips >= 1, "no violation got its clip: {}", run.stderr);
    let ok = verify(&data);
    assert!(ok.ok(), "{}{}", ok.stdout, ok.stderr);
    assert!(ok.stdout.starts_with("verified"), "{}", ok.stdout);
    assert!(
        ok.stdout.contains(&format!("{} records", lines.len())),
        "{}",
        ok.stdout
    );

    // One flipped byte in a photo: named, exit 1; restored: verified again.
    let photo = photo.unwrap();
    let path = data.join(&photo);
    let mut bytes = std::fs::read(&path).unwrap();
    let mid = bytes.len() / 2;
    bytes[mid] ^= 0x01;
    std::fs::write(&path, &bytes).unwrap();
    let broken = verify(&data);
    assert_eq!(broken.code, Some(1), "{}{}", broken.stdout, broken.stderr);
    let named: Vec<&str> = broken
        .stdout
        .lines()
        .filter(|l| l.contains("file altered") && l.contains(&photo))
        .collect();
    assert_eq!(named.len(), 1, "{}", broken.stdout);
    bytes[mid] ^= 0x01;
    std::fs::write(&path, &bytes).unwrap();
    assert!(verify(&data).ok());

    // A deleted row: the chain names the missing record.
    let first = lines[0]["id"].as_str().unwrap();
    let db = data.join("roadwarden.sqlite3");
    let sql = format!(
        "DELETE FROM evidence WHERE violation_id = '{first}'; DELETE FROM violations WHERE id = '{first}';"
    );
    let out = std::process::Command::new("sqlite3")
        .arg(&db)
        .arg(&sql)
        .output()
        .expect("the sqlite3 command-line tool");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let broken = verify(&data);
    assert_eq!(broken.code, Some(1), "{}{}", broken.stdout, broken.stderr);
    let seq = lines[0]["seq"].as_i64().unwrap();
    assert!(
        broken.stdout.lines().any(|l| l.contains("record deleted")
            && l.contains("synth-cam")
            && l.contains(&format!("record {seq} "))),
        "{}",
        broken.stdout
    );
    assert!(broken.stdout.contains("BROKEN"), "{}", broken.stdout);
}
