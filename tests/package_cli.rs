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
        files + 3,
        "evidence, violation.json, manifest.json, manifest.sig"
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

fn verify_with_key(path: &Path, key: &str) -> Run {
    let args: [&std::ffi::OsStr; 5] = [
        "verify".as_ref(),
        "--package".as_ref(),
        path.as_os_str(),
        "--key".as_ref(),
        key.as_ref(),
    ];
    roadwarden(args)
}

/// `key show --data DIR`: (public key hex, fingerprint).
fn key_show(data: &Path) -> (String, String) {
    let args: [&std::ffi::OsStr; 4] = [
        "key".as_ref(),
        "show".as_ref(),
        "--data".as_ref(),
        data.as_os_str(),
    ];
    let run = roadwarden(args);
    assert!(run.ok(), "{}{}", run.stdout, run.stderr);
    let field = |name: &str| {
        run.stdout
            .lines()
            .find_map(|l| l.strip_prefix(name))
            .unwrap_or_else(|| panic!("`{name}` in {}", run.stdout))
            .trim()
            .to_owned()
    };
    (field("public key:"), field("fingerprint:"))
}

fn sha_hex(bytes: &[u8]) -> String {
    use sha2::Digest;
    hex::encode(sha2::Sha256::digest(bytes))
}

fn put(e: &mut [(String, Vec<u8>)], name: &str, bytes: Vec<u8>) {
    e.iter_mut().find(|(n, _)| n == name).expect(name).1 = bytes;
}

fn take<T: serde::de::DeserializeOwned>(e: &[(String, Vec<u8>)], name: &str) -> T {
    serde_json::from_slice(&e.iter().find(|(n, _)| n == name).expect(name).1).expect(name)
}

/// Rewrites violation.json as `v` and the manifest to match it (its hash, status, record hash,
/// review-log entries re-anchored and re-hashed, file hashes from the entries): everything a forger
/// without the installation's private key can recompute.
fn rehash_all(e: &mut [(String, Vec<u8>)], v: &roadwarden_evidence::package::PackagedViolation) {
    use roadwarden_evidence::package::Manifest;
    let vj = serde_json::to_vec_pretty(v).unwrap();
    let mut m: Manifest = take(e, "manifest.json");
    m.violation_sha256 = sha_hex(&vj);
    m.violation_size = vj.len() as u64;
    m.status = v.status;
    m.record_hash = v.record_hash.clone();
    let mut prev: Option<String> = None;
    let mut decisions = v.reviews.iter();
    for entry in &mut m.review_log {
        let f = &mut entry.fields;
        if let Some(p) = &prev {
            f.prev_hash = p.clone();
        }
        f.record_hash = v.record_hash.clone();
        if let Some(r) = decisions.next() {
            f.actor = r.reviewer.clone();
            f.status = r.status;
            f.reason = r.reason.clone();
            f.note = r.note.clone();
        }
        entry.entry_hash = roadwarden_store::review_entry_hash(f);
        prev = Some(entry.entry_hash.clone());
    }
    for f in &mut m.files {
        let bytes = &e.iter().find(|(n, _)| *n == f.name).expect("listed file").1;
        f.sha256 = sha_hex(bytes);
        f.size = bytes.len() as u64;
    }
    put(e, "violation.json", vj);
    put(e, "manifest.json", serde_json::to_vec_pretty(&m).unwrap());
}

#[test]
fn a_signed_package_proves_its_decision_and_a_consistent_forgery_fails() {
    use roadwarden_evidence::package::PackagedViolation;
    use roadwarden_store::{Decision, Status};

    let dir = tempfile::tempdir().unwrap();
    let (data, run) = synth_and_analyze(dir.path(), &one_rider_scene(dir.path()));
    let recorded = json_lines(&run.stdout, "one JSON line per violation");
    let id = recorded
        .iter()
        .max_by_key(|v| v["evidence"].as_array().map_or(0, Vec::len))
        .and_then(|v| v["id"].as_str())
        .expect("a violation recorded")
        .to_owned();
    add_user(&data, "rita", "reviewer", "rita-reviews-all-day");
    let token = token(&data_args(&data), "rita", Some("export"));

    // rita confirms it: the decision goes into the review log in the same transaction.
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("runtime");
    rt.block_on(async {
        let store = roadwarden_store::Store::open_data_dir(&roadwarden_store::DataDir::new(&data))
            .await
            .expect("store");
        store
            .decide(&id, "rita", Decision::Confirm, "", "no helmet, clear view")
            .await
            .expect("decide");
        store.close().await;
    });

    // `serve` (its first start makes the key), then `key show` twice: one key, a private file.
    let pkg = dir.path().join("package.zip");
    {
        let (_serve, addr) = serve(&data);
        let (st, body) = get(&addr, &format!("/api/violations/{id}/package.zip"), &token);
        assert_eq!(st, 200, "{}", String::from_utf8_lossy(&body));
        std::fs::write(&pkg, &body).unwrap();
    }
    let key_file = data.join("signing-key.ed25519");
    {
        use std::os::unix::fs::PermissionsExt;
        let mode = std::fs::metadata(&key_file)
            .expect("key file")
            .permissions()
            .mode();
        assert_eq!(mode & 0o777, 0o600, "{mode:o}");
    }
    let (public, fingerprint) = key_show(&data);
    assert_eq!(public.len(), 64, "{public}");
    assert_eq!(fingerprint, sha_hex(&hex::decode(&public).unwrap())[..16]);
    {
        let (_serve, _) = serve(&data);
    }
    assert_eq!(
        key_show(&data),
        (public.clone(), fingerprint.clone()),
        "same key across restarts"
    );
    let seed = std::fs::read_to_string(&key_file).unwrap();
    let secret = seed.lines().nth(1).expect("seed line");
    let shown = roadwarden(["key", "show", "--data", data.to_str().unwrap(), "--json"]);
    assert!(!shown.stdout.contains(secret) && !shown.stderr.contains(secret));

    // Untouched: verified with its installation's key; without a key it says authenticity was not checked.
    let ok = verify_with_key(&pkg, &public);
    assert!(ok.ok(), "{}{}", ok.stdout, ok.stderr);
    assert!(
        ok.stdout.contains(&format!(
            "signature verified: signed by installation key {fingerprint}"
        )),
        "{}",
        ok.stdout
    );
    let unchecked = verify_package(&pkg);
    assert!(unchecked.ok(), "{}", unchecked.stdout);
    assert!(
        unchecked.stdout.contains("authenticity NOT checked"),
        "{}",
        unchecked.stdout
    );

    // Another installation's key: wrong key, exit 1.
    let (other, other_fp) = key_show(&dir.path().join("other-installation"));
    assert_ne!(other, public);
    let wrong = verify_with_key(&pkg, &other);
    assert_eq!(wrong.code, Some(1), "{}{}", wrong.stdout, wrong.stderr);
    assert!(
        wrong
            .stdout
            .lines()
            .any(|l| l.contains("wrong key") && l.contains(&other_fp)),
        "{}",
        wrong.stdout
    );

    let orig = entries(&std::fs::read(&pkg).unwrap());
    let v: PackagedViolation = take(&orig, "violation.json");
    assert_eq!(v.status, Status::Confirmed);
    assert_eq!(v.reviews[0].reviewer, "rita");

    // (1) The decision rewritten to "rejected by mallory", everything re-hashed: only the signature tells.
    let mut e = orig.clone();
    let mut forged = v.clone();
    forged.status = Status::Rejected;
    forged.reviews[0].reviewer = "mallory".into();
    forged.reviews[0].status = Status::Rejected;
    forged.reviews[0].reason = "helmet_worn".into();
    rehash_all(&mut e, &forged);
    let path = dir.path().join("forged-decision.zip");
    rezip(&path, &e);
    let internal = verify_package(&path);
    assert!(internal.ok(), "consistent inside: {}", internal.stdout);
    let broken = verify_with_key(&path, &public);
    assert_eq!(broken.code, Some(1), "{}{}", broken.stdout, broken.stderr);
    assert!(
        broken
            .stdout
            .lines()
            .any(|l| l.starts_with("manifest.sig: bad signature")),
        "{}",
        broken.stdout
    );
    // Without re-hashing the review log, the forged decision is named even without the key.
    let mut e = orig.clone();
    let vj = serde_json::to_vec_pretty(&forged).unwrap();
    let mut m: roadwarden_evidence::package::Manifest = take(&e, "manifest.json");
    m.violation_sha256 = sha_hex(&vj);
    m.violation_size = vj.len() as u64;
    m.status = Status::Rejected;
    put(&mut e, "violation.json", vj);
    put(
        &mut e,
        "manifest.json",
        serde_json::to_vec_pretty(&m).unwrap(),
    );
    rezip(&path, &e);
    let named = verify_package(&path);
    assert_eq!(named.code, Some(1), "{}", named.stdout);
    assert!(
        named.stdout.contains("review entry mismatch"),
        "{}",
        named.stdout
    );

    // (2) A photo edited, its hash in the record, the record hash, the review log's anchor and the
    // manifest all recomputed: consistent inside, refused with the key.
    let mut e = orig.clone();
    let (photo, bytes) = e
        .iter_mut()
        .find(|(n, _)| n.starts_with("evidence/") && n.ends_with("-photo.jpg"))
        .map(|(n, b)| (n.clone(), b))
        .expect("a photo");
    let mid = bytes.len() / 2;
    bytes[mid] ^= 0x01;
    let (new_sha, new_size) = (sha_hex(bytes), bytes.len() as u64);
    let m: roadwarden_evidence::package::Manifest = take(&orig, "manifest.json");
    let evidence_path = &m
        .files
        .iter()
        .find(|f| f.name == photo)
        .expect("listed")
        .evidence_path;
    let mut edited = v.clone();
    for item in &mut edited.fields.evidence {
        if &item.path == evidence_path {
            item.sha256 = new_sha.clone();
            item.size = new_size;
        }
    }
    edited.record_hash = roadwarden_evidence::chain::record_hash(&edited.fields);
    rehash_all(&mut e, &edited);
    let path = dir.path().join("edited-photo.zip");
    rezip(&path, &e);
    let internal = verify_package(&path);
    assert!(internal.ok(), "consistent inside: {}", internal.stdout);
    let broken = verify_with_key(&path, &public);
    assert_eq!(broken.code, Some(1), "{}{}", broken.stdout, broken.stderr);
    assert!(
        broken
            .stdout
            .lines()
            .any(|l| l.starts_with("manifest.sig: bad signature")),
        "{}",
        broken.stdout
    );

    // A key that is not one: an error (exit 2) that says what a key looks like.
    let bad = verify_with_key(&pkg, "not-a-key");
    assert_eq!(bad.code, Some(2), "{}", bad.stderr);
    assert!(bad.stderr.contains("64 hex digits"), "{}", bad.stderr);
}
