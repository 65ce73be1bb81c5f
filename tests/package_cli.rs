//! An evidence package end to end, as a user makes and checks one: a real
//! violation (`synth`, then `analyze --config --data` with the real models,
//! GStreamer and SQLite), `serve` on 127.0.0.1, the package downloaded over
//! HTTP with a bearer token, and `verify --package` on it, on a copy with a
//! flipped byte in a photo, and on one with an edited confidence.

mod common;

use std::io::{BufRead, BufReader, Cursor, Read, Write};
use std::net::TcpStream;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use common::*;

/// 4 s at 10 fps, red throughout: one rider without a helmet crosses the stop line.
fn scenario(dir: &Path) -> PathBuf {
    let footage = shared().join("footage");
    let text = format!(
        r#"seed = 11
width = 640
height = 384
fps = 10
duration_s = 4.0
background = "{bg}"
crops = "{crops}"
stop_line = [[420.0, 384.0], [420.0, 40.0]]
signal_head = [604.0, 10.0, 628.0, 86.0]
grace_s = 0.5

[[phase]]
at_s = 0.0
state = "red"

[[actor]]
kind = "rider"
helmet = false
enter_s = 0.0
lane_y = 378.0
head_px = 44.0
from_x = 250.0
speed_px_s = 120.0
"#,
        bg = footage.join("s2tld-tiles/s2tld_tile_r2c2.png").display(),
        crops = footage.join("riders-roboflow").display(),
    );
    let path = dir.join("scene.toml");
    write(&path, &text);
    path
}

/// One HTTP/1.1 GET with a bearer token: (status, body bytes).
fn get(addr: &str, path: &str, token: &str) -> (u16, Vec<u8>) {
    let mut s = TcpStream::connect(addr).expect("connect");
    s.set_read_timeout(Some(Duration::from_secs(20)))
        .expect("timeout");
    let req = format!(
        "GET {path} HTTP/1.1\r\nHost: {addr}\r\nAuthorization: Bearer {token}\r\nConnection: close\r\n\r\n"
    );
    s.write_all(req.as_bytes()).expect("write");
    let mut buf = Vec::new();
    s.read_to_end(&mut buf).expect("read");
    let split = buf
        .windows(4)
        .position(|w| w == b"\r\n\r\n")
        .expect("a header");
    let head = String::from_utf8_lossy(&buf[..split]).to_ascii_lowercase();
    assert!(
        !head.contains("transfer-encoding: chunked"),
        "a sized answer: {head}"
    );
    let status = head
        .split_whitespace()
        .nth(1)
        .and_then(|c| c.parse().ok())
        .unwrap_or(0);
    (status, buf[split + 4..].to_vec())
}

fn user_add(data: &Path, name: &str, role: &str, password: &str) {
    let mut child = Command::new(env!("CARGO_BIN_EXE_roadwarden"))
        .args([
            "user",
            "add",
            name,
            "--role",
            role,
            "--password-stdin",
            "--data",
        ])
        .arg(data)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn");
    child
        .stdin
        .take()
        .expect("stdin")
        .write_all(format!("{password}\n").as_bytes())
        .expect("password");
    let out = child.wait_with_output().expect("wait");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
}

/// `serve`, stopped (SIGTERM, then kill) when dropped.
struct Serve(Child);

impl Drop for Serve {
    fn drop(&mut self) {
        let _ = Command::new("kill")
            .args(["-TERM", &self.0.id().to_string()])
            .status();
        let deadline = Instant::now() + Duration::from_secs(20);
        while Instant::now() < deadline {
            if let Ok(Some(_)) = self.0.try_wait() {
                return;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn serve(data: &Path) -> (Serve, String) {
    let mut child = Command::new(env!("CARGO_BIN_EXE_roadwarden"))
        .args(["serve", "--config"])
        .arg(root().join("examples/site.toml"))
        .args(["--listen", "127.0.0.1:0", "--data"])
        .arg(data)
        .env_remove("RUST_LOG")
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .expect("spawn serve");
    let stdout = child.stdout.take().expect("stdout");
    let child = Serve(child);
    let (tx, rx) = mpsc::channel();
    std::thread::spawn(move || {
        // The address is the first line that says so; the rest is drained.
        for line in BufReader::new(stdout).lines().map_while(Result::ok) {
            if let Some(a) = line.trim().strip_prefix("listening on http://") {
                let _ = tx.send(a.to_owned());
            }
        }
    });
    let addr = rx
        .recv_timeout(Duration::from_secs(30))
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
    let (video, truth) = (dir.path().join("s.mp4"), dir.path().join("s.json"));
    let run = roadwarden([
        "synth",
        scenario(dir.path()).to_str().unwrap(),
        "--out",
        video.to_str().unwrap(),
        "--truth",
        truth.to_str().unwrap(),
    ]);
    assert!(run.ok(), "{}", run.stderr);
    let data = dir.path().join("data");
    let run = roadwarden([
        "analyze",
        video.to_str().unwrap(),
        "--config",
        root().join("examples/site.toml").to_str().unwrap(),
        "--data",
        data.to_str().unwrap(),
        "--quiet",
    ]);
    assert!(run.ok(), "{}", run.stderr);
    let recorded: Vec<serde_json::Value> = run
        .stdout
        .lines()
        .map(|l| serde_json::from_str(l).expect("one JSON line per violation"))
        .collect();
    // The violation with the most files: its photos, raw frames, crop (and clip).
    let v = recorded
        .iter()
        .max_by_key(|v| v["evidence"].as_array().map_or(0, Vec::len))
        .expect("a violation recorded");
    let id = v["id"].as_str().unwrap().to_owned();
    let files = v["evidence"].as_array().unwrap().len();
    assert!(files >= 3, "{v}");

    user_add(&data, "rita", "reviewer", "rita-reviews-all-day");
    let run = roadwarden([
        "user",
        "token",
        "rita",
        "--label",
        "export",
        "--data",
        data.to_str().unwrap(),
    ]);
    assert!(run.ok(), "{}", run.stderr);
    let token = run.stdout.trim().to_owned();

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
