//! `roadwarden user` and `roadwarden serve`, as a user runs them: the real
//! binary, a real store (SQLite in the data folder, or PostgreSQL at
//! 127.0.0.1:5432 in a database of its own), real HTTP on 127.0.0.1.

mod common;

use std::io::Read;
use std::process::Stdio;
use std::time::Duration;

use common::{
    Run, example, first_line, roadwarden, serve_command, signal, token, user_add, wait_exit,
};

const PG_ADMIN: &str = "postgres://postgres@127.0.0.1:5432/postgres";

/// `roadwarden ARGS... STORE...`.
fn with_store(args: &[&str], store: &[String]) -> Run {
    let mut all: Vec<String> = args.iter().map(|a| a.to_string()).collect();
    all.extend(store.iter().cloned());
    roadwarden(all)
}

/// One HTTP/1.1 request; (status, headers, body).
fn http(
    addr: &str,
    method: &str,
    path: &str,
    headers: &[(&str, &str)],
    body: &str,
) -> (u16, String, String) {
    let a = common::http(addr, method, path, headers, body, Duration::from_secs(10));
    let text = a.text();
    (a.status, a.head, text)
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
    let r = with_store(&["user", "add", "otto", "--role", "root"], &store);
    assert_eq!(
        r.code,
        Some(2),
        "clap refuses an unknown role: {}",
        r.stderr
    );
    assert!(r.stderr.contains("unknown role `root`"), "{}", r.stderr);
    // Without a terminal and without --password-stdin there is nobody to ask.
    let r = with_store(&["user", "add", "otto", "--role", "ops"], &store);
    assert!(
        r.one_line_error().contains("--password-stdin"),
        "{}",
        r.stderr
    );
    let r = user_add(&store, "otto", "ops", "otto-tunes-the-cameras\n");
    assert!(r.ok(), "{}", r.stderr);
    let token = token(&store, "otto", Some("scraper"));
    assert!(token.starts_with("rwt_") && token.len() == 68, "{token}");
    let r = with_store(&["user", "list"], &store);
    assert!(r.ok(), "{}", r.stderr);
    assert_eq!(r.stdout, "otto\tops\nrita\treviewer\n");

    // The service.
    let mut child = serve_command(&example("site.toml"))
        .args(&store)
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn serve");
    let stdout = child.stdout.take().expect("stdout");
    let line = match first_line(stdout, Duration::from_secs(30)) {
        Some(l) => l,
        None => {
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
    let st = signal(&child, "TERM").expect("kill");
    assert!(st.success());
    let (within, every) = (Duration::from_secs(20), Duration::from_millis(50));
    let Some(status) = wait_exit(&mut child, within, every) else {
        let _ = child.kill();
        panic!("serve did not stop within 20 s of SIGTERM");
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
