//! An evidence package end to end, as a user makes and checks one: a real
//! violation (`synth`, then `analyze --config --data` with the real models,
//! GStreamer and SQLite), `serve` on 127.0.0.1, the package downloaded over
//! HTTP with a bearer token, and `verify --package` on it, on a copy with a
//! flipped byte in a photo, and on one with an edited confidence.

mod common;

use std::io::{Cursor, Read, Write};
use std::path::Path;
use std::process::{Child, Stdio};
use std::time::Duration;

use common::*;

/// One HTTP/1.1 GET with a bearer token: (status, body bytes).
fn get(addr: &str, path: &str, token: &str) -> (u16, Vec<u8>) {
    let auth = format!("Bearer {token}");
    let a = http(
        addr,
        "GET",
        path,
        &[("Authorization", &auth)],
        "",
        Duration::from_secs(20),
    );
    assert!(a.has_head, "a header");
    let head = a.head.to_ascii_lowercase();
    assert!(
        !head.contains("transfer-encoding: chunked"),
        "a sized answer: {head}"
    );
    (a.status, a.body)
}

/// `serve`, stopped (SIGTERM, then kill) when dropped.
struct Serve(Child);

impl Drop for Serve {
    fn drop(&mut self) {
        let _ = signal(&self.0, "TERM");
        let (within, every) = (Duration::from_secs(20), Duration::from_millis(50));
        if wait_exit(&mut self.0, within, every).is_none() {
            let _ = self.0.kill();
            let _ = self.0.wait();
        }
    }
}

fn serve(data: &Path) -> (Serve, String) {
    let mut child = serve_command(&example("site.toml"))
        .arg("--data")
        .arg(data)
        .env_remove("RUST_LOG")
        .stderr(Stdio::null())
        .spawn()
        .expect("spawn serve");
    let stdout = child.stdout.take().expect("stdout");
    let child = Serve(child);
    let addr = first_line(stdout, Duration::from_secs(30))
        .and_then(|l| {
            l.trim()
                .strip_prefix("listening on http://")
                .map(str::to_owned)
        })
        .expect("serve printed its address within 30 s");
    (child, addr)
}

fn entries(zip_bytes: &[u8]) -> Vec<(String, Vec<u8>)> {
    let mut z = zip::ZipArchive::new(Cursor::new(zip_bytes)).expect("a ZIP");
    (0..z.len())
        .map(|i| {
            let mut f = z.by_index(i).expect("entry");
            let mut b = Vec::new();
            f.read_to_end(&mut b).expect("read entry");
            (f.name().expect("name").into_owned(), b)
        })
        .collect()
}

/// The ZIP rewritten with `entries`, the way a tamperer would.
fn rezip(path: &Path, entries: &[(String, Vec<u8>)]) {
    let mut z = zip::ZipWriter::new(Cursor::new(Vec::new()));
    for (n, b) in entries {
        z.start_file(n.as_str(), zip::write::SimpleFileOptions::default())
            .expect("start entry");
        z.write_all(b).expect("write entry");
    }
    let bytes = z.finish().expect("finish").into_inner();
    std::fs::write(path, bytes).expect("write zip");
}

fn verify_package(path: &Path) -> Run {
    let args: [&std::ffi::OsStr; 3] = ["verify".as_ref(), "--package".as_ref(), path.as_os_str()];
    roadwarden(args)
}

#[test]
fn a_downloaded_package_verifies_and_tampering_is_named() {
    let dir = tempfile::tempdir().unwrap();
    let (data, run) = synth_and_analyze(dir.path(), &one_rider_scene(dir.path()));
    let recorded = json_lines(&run.stdout, "one JSON line per violation");
    // The violation with the most files: its photos, raw frames, crop (and clip).
    let v = recorded
        .iter()
        .max_by_key(|v| v["evidence"].as_array().map_or(0, Vec::len))
        .expect("a violation recorded");
    let id = v["id"].as_str().unwrap().to_owned();
    let files = v["evidence"].as_array().unwrap().len();
    assert!(files >= 3, "{v}");

    add_user(&data, "rita", "reviewer", "rita-reviews-all-day");
    let token = token(&data_args(&data), "rita", Some("export"));

    let pkg = dir.path().join("package.zip");
    {
        let (_serve, addr) = serve(&data);
        let (st, body) = get(&addr, &format!("/api/violations/{id}/package.zip"), &token);
        assert_eq!(st, 200, "{}", String::from_utf8_lossy(&body));
        std::fs::write(&pkg, &body).unwrap();
        let (st, _) = get(
            &addr,
            &format!("/api/violations/{id}/package.zip"),
            "rwt_nope",
        );
        assert_eq!(st, 401);
    }

    // As downloaded: verified.
    let ok = verify_package(&pkg);
    assert!(ok.ok(), "{}{}", ok.stdout, ok.stderr);
    assert!(
        ok.stdout
            .starts_with(&format!("package verified: {id}, {files} files")),
        "{}",
        ok.stdout
    );
    let orig = entries(&std::fs::read(&pkg).unwrap());
    assert_eq!(
        orig.len(),
        files + 2,
        "evidence, violation.json, manifest.json"
    );

    // One flipped byte in a photo: named, exit 1.
    let mut e = orig.clone();
    let photo = e
        .iter_mut()
        .find(|(n, _)| n.starts_with("evidence/") && n.ends_with("-photo.jpg"))
        .expect("a photo in the package");
    let mid = photo.1.len() / 2;
    photo.1[mid] ^= 0x01;
    let photo_name = photo.0.clone();
    let flipped = dir.path().join("flipped.zip");
    rezip(&flipped, &e);
    let broken = verify_package(&flipped);
    assert_eq!(broken.code, Some(1), "{}{}", broken.stdout, broken.stderr);
    let lines: Vec<&str> = broken.stdout.lines().collect();
    assert_eq!(
        lines.len(),
        2,
        "one problem and the summary: {}",
        broken.stdout
    );
    assert!(
        lines[0].starts_with(&format!("{photo_name}: sha256 mismatch")),
        "{}",
        broken.stdout
    );
    assert!(lines[1].starts_with("package BROKEN"), "{}", broken.stdout);

    // The confidence edited in violation.json: the record hash no longer matches.
    let mut e = orig.clone();
    let vj = e
        .iter_mut()
        .find(|(n, _)| n == "violation.json")
        .expect("violation.json");
    let mut rec: serde_json::Value = serde_json::from_slice(&vj.1).unwrap();
    let c = rec["confidence"].as_f64().expect("confidence");
    rec["confidence"] = serde_json::json!(if c < 0.5 { c + 0.25 } else { c - 0.25 });
    vj.1 = serde_json::to_vec_pretty(&rec).unwrap();
    let edited = dir.path().join("edited.zip");
    rezip(&edited, &e);
    let broken = verify_package(&edited);
    assert_eq!(broken.code, Some(1), "{}{}", broken.stdout, broken.stderr);
    assert!(
        broken
            .stdout
            .lines()
            .any(|l| l.starts_with("violation.json: record hash mismatch")),
        "{}",
        broken.stdout
    );
    assert!(
        broken
            .stdout
            .lines()
            .any(|l| l.starts_with("violation.json: sha256 mismatch")),
        "{}",
        broken.stdout
    );

    // Not a package at all: an error naming the file and what was expected (exit 2, not "broken").
    let text = dir.path().join("notes.zip");
    write(&text, "just some notes");
    let run = verify_package(&text);
    assert_eq!(run.code, Some(2), "{}{}", run.stdout, run.stderr);
    let err = run
        .stderr
        .lines()
        .find(|l| l.starts_with("error:"))
        .unwrap_or("");
    assert!(
        err.contains(text.to_str().unwrap()) && err.contains("expected a ZIP"),
        "{}",
        run.stderr
    );
    let run = verify_package(&dir.path().join("absent.zip"));
    assert_eq!(run.code, Some(2), "{}", run.stderr);
    assert!(
        run.stderr.contains("absent.zip: cannot open the package"),
        "{}",
        run.stderr
    );
}
