//! `roadwarden user` and `roadwarden serve`, as a user runs them: the real
//! binary, a real store (SQLite in the data folder, or PostgreSQL at
//! 127.0.0.1:5432 in a database of its own), real HTTP on 127.0.0.1.

mod common;

use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpStream;
use std::process::{Command, Stdio};
use std::sync::mpsc;
use std::time::Duration;

use common::{roadwarden, root};

const PG_ADMIN: &str = "postgres://postgres@127.0.0.1:5432/postgres";

fn user_add(store: &[String], name: &str, role: &str, stdin: &str) -> common::Run {
    let mut child = Command::new(env!("CARGO_BIN_EXE_roadwarden"))
        .args(["user", "add", name, "--role", role, "--password-stdin"])
        .args(store)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn");
    child
        .stdin
        .take()
        .expect("stdin")
        .write_all(stdin.as_bytes())
        .expect("write password");
    let out = child.wait_with_output().expect("wait");
    common::Run {
        code: out.status.code(),
        stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
        stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
    }
}

/// One HTTP/1.1 request; (status, headers, body).
fn http(
    addr: &str,
    method: &str,
    path: &str,
    headers: &[(&str, &str)],
    body: &str,
) -> (u16, String, String) {
    let mut s = TcpStream::connect(addr).expect("connect");
    s.set_read_timeout(Some(Duration::from_secs(10)))
        .expect("timeout");
    let mut req = format!(
        "{method} {path} HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\nContent-Length: {}\r\n",
        body.len()
    );
    for (k, v) in headers {
        req.push_str(&format!("{k}: {v}\r\n"));
    }
    req.push_str("\r\n");
    req.push_str(body);
    s.write_all(req.as_bytes()).expect("write");
    let mut buf = String::new();
    s.read_to_string(&mut buf).expect("read");
    let (head, body) = buf.split_once("\r\n\r\n").unwrap_or((&buf, ""));
    let status = head
        .split_whitespace()
        .nth(1)
        .and_then(|c| c.parse().ok())
        .unwrap_or(0);
    (status, head.to_owned(), body.to_owned())
}

fn serve_and_use(store: Vec<String>) {
    let dir = tempfile::tempdir().expect("tempdir");
    let data = dir.path().join("data");
    let mut store = store;
    store.extend(["--data".to_owned(), data.to_string_lossy().into_owned()]);

    // Accounts.
    let r = user_add(&store, "rita", "reviewer", "rita-reviews-all-day\n");
    assert!(r.ok(), "{}", r.stderr);
    assert_eq!(r.stdout.trim(), "user rita (reviewer) added");
    let r = user_add(&store, "rita", "admin", "rita-reviews-all-day\n");
    assert!(r.ok(), "{}", r.stderr);
    assert_eq!(r.stdout.trim(), "user rita (admin) updated");
    let r = user_add(&store, "rita", "reviewer", "rita-reviews-all-day\n");
    assert!(r.ok(), "{}", r.stderr);
    let r = user_add(&store, "otto", "ops", "short\n");
    assert!(
        r.one_line_error().contains("at least 10 characters"),
        "{}",
        r.stderr
    );
    let mut args = vec![
        "user".to_owned(),
        "add".into(),
        "otto".into(),
        "--role".into(),
        "root".into(),
    ];
    args.extend(store.iter().cloned());
    let r = roadwarden(&args);
    assert_eq!(
        r.code,
        Some(2),
        "clap refuses an unknown role: {}",
        r.stderr
    );
    assert!(r.stderr.contains("unknown role `root`"), "{}", r.stderr);
    // Without a terminal and without --password-stdin there is nobody to ask.
    let mut args = vec![
        "user".to_owned(),
        "add".into(),
        "otto".into(),
        "--role".into(),
        "ops".into(),
    ];
    args.extend(store.iter().cloned());
    let r = roadwarden(&args);
    assert!(
        r.one_line_error().contains("--password-stdin"),
        "{}",
        r.stderr
    );
    let r = user_add(&store, "otto", "ops", "otto-tunes-the-cameras\n");
    assert!(r.ok(), "{}", r.stderr);
    let mut args = vec![
        "user".to_owned(),
        "token".into(),
        "otto".into(),
        "--label".into(),
        "scraper".into(),
    ];
    args.extend(store.iter().cloned());
    let r = roadwarden(&args);
    assert!(r.ok(), "{}", r.stderr);
    let token = r.stdout.trim().to_owned();
    assert!(token.starts_with("rwt_") && token.len() == 68, "{token}");
    let mut args = vec!["user".to_owned(), "list".into()];
    args.extend(store.iter().cloned());
    let r = roadwarden(&args);
    assert!(r.ok(), "{}", r.stderr);
    assert_eq!(r.stdout, "otto\tops\nrita\treviewer\n");

    // The service.
    let mut child = Command::new(env!("CARGO_BIN_EXE_roadwarden"))
        .args(["serve", "--config"])
        .arg(root().join("examples/site.toml"))
        .args(["--listen", "127.0.0.1:0"])
        .args(&store)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn serve");
    let stdout = child.stdout.take().expect("stdout");
    let (tx, rx) = mpsc::channel();
    std::thread::spawn(move || {
        let mut line = String::new();
        let _ = BufReader::new(stdout).read_line(&mut line);
        let _ = tx.send(line);
    });
    let line = match rx.recv_timeout(Duration::from_secs(30)) {
        Ok(l) => l,
        Err(_) => {
            let _ = child.kill();
            panic!("serve printed no address in 30 s");
        }
    };
    let addr = line
        .trim()
        .strip_prefix("listening on http://")
        .unwrap_or_else(|| panic!("{line:?}"))
        .to_owned();

    let (s, _, b) = http(&addr, "GET", "/healthz", &[], "");
    assert_eq!((s, b.contains("ok")), (200, true), "{b}");
    assert_eq!(http(&addr, "GET", "/readyz", &[], "").0, 200);
    assert_eq!(http(&addr, "GET", "/api/violations", &[], "").0, 401);
    let auth = format!("Bearer {token}");
    let (s, _, b) = http(
        &addr,
        "GET",
        "/api/violations",
        &[("Authorization", &auth)],
        "",
    );
    assert_eq!(s, 200, "{b}");
    assert!(b.contains("\"items\":[]"), "{b}");
    let (s, _, b) = http(
        &addr,
        "GET",
        "/api/cameras",
        &[("Authorization", &auth)],
        "",
    );
    assert_eq!(s, 200);
    assert!(b.contains("synth-cam"), "{b}");
    let (s, head, b) = http(
        &addr,
        "POST",
        "/api/login",
        &[("Content-Type", "application/json")],
        r#"{"name":"rita","password":"rita-reviews-all-day"}"#,
    );
    assert_eq!(s, 200, "{b}");
    assert!(
        head.to_ascii_lowercase()
            .contains("set-cookie: rw_session="),
        "{head}"
    );
    // Ops may tune, the reviewer may not.
    let cookie = head
        .lines()
        .find_map(|l| {
            l.strip_prefix("set-cookie: ")
                .or_else(|| l.strip_prefix("Set-Cookie: "))
        })
        .and_then(|c| c.split(';').next())
        .expect("cookie")
        .to_owned();
    let csrf = b
        .split("\"csrf_token\":\"")
        .nth(1)
        .and_then(|r| r.split('"').next())
        .expect("csrf")
        .to_owned();
    let put = "/api/cameras/synth-cam/thresholds/no_helmet";
    let (s, _, b) = http(
        &addr,
        "PUT",
        put,
        &[
            ("Cookie", &cookie),
            ("X-CSRF-Token", &csrf),
            ("Content-Type", "application/json"),
        ],
        r#"{"value":0.5}"#,
    );
    assert_eq!(s, 403, "{b}");
    let (s, _, b) = http(
        &addr,
        "PUT",
        put,
        &[
            ("Authorization", &auth),
            ("Content-Type", "application/json"),
        ],
        r#"{"value":0.5}"#,
    );
    assert_eq!(s, 200, "{b}");

    // SIGTERM stops it cleanly.
    let pid = child.id().to_string();
    let st = Command::new("kill")
        .args(["-TERM", &pid])
        .status()
        .expect("kill");
    assert!(st.success());
    let deadline = std::time::Instant::now() + Duration::from_secs(20);
    let status = loop {
        if let Some(s) = child.try_wait().expect("wait") {
            break s;
        }
        if std::time::Instant::now() > deadline {
            let _ = child.kill();
            panic!("serve did not stop within 20 s of SIGTERM");
        }
        std::thread::sleep(Duration::from_millis(50));
    };
    let mut err = String::new();
    child
        .stderr
        .take()
        .expect("stderr")
        .read_to_string(&mut err)
        .expect("stderr");
    assert!(status.success(), "{status:?}: {err}");
    assert!(err.contains("stopped"), "{err}");
    assert!(!err.contains("panicked"), "{err}");
}

#[test]
fn user_and_serve_on_sqlite() {
    serve_and_use(Vec::new());
}

#[test]
fn user_and_serve_on_postgres() {
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("runtime");
    let name = format!("rw_serve_cli_{}", std::process::id());
    let url = rt
        .block_on(roadwarden_store::pgadmin::create_database(PG_ADMIN, &name))
        .expect("create database");
    let result = std::panic::catch_unwind(|| serve_and_use(vec!["--database-url".into(), url]));
    rt.block_on(roadwarden_store::pgadmin::drop_database(PG_ADMIN, &name))
        .expect("drop database");
    if let Err(p) = result {
        std::panic::resume_unwind(p);
    }
}
