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

/// `roadwarden user disable|enable|delete|unlock` and `user token revoke`, as an operator runs
/// them on a real SQLite data folder: what each prints, what it leaves in the store (a disabled
/// user's token no longer opens anything), the audit entry each writes, and the one-line errors.
#[test]
fn user_access_commands_on_sqlite() {
    let dir = tempfile::tempdir().expect("tempdir");
    let data = dir.path().join("data");
    let store = vec!["--data".to_owned(), data.to_string_lossy().into_owned()];
    for (name, role, pw) in [
        ("rita", "reviewer", "rita-reviews-all-day\n"),
        ("otto", "ops", "otto-tunes-the-cameras\n"),
        ("temp", "ops", "temporary-password\n"),
    ] {
        let r = user_add(&store, name, role, pw);
        assert!(r.ok(), "{}", r.stderr);
    }
    let rita_token = token(&store, "rita", Some("laptop"));
    let otto_scraper = token(&store, "otto", Some("scraper"));
    let otto_backup = token(&store, "otto", Some("backup"));

    let r = with_store(&["user", "disable", "rita"], &store);
    assert!(r.ok(), "{}", r.stderr);
    assert_eq!(
        r.stdout.trim(),
        "user rita disabled (0 session(s) ended, 1 token(s) revoked)"
    );
    let r = with_store(&["user", "list"], &store);
    assert_eq!(
        r.stdout,
        "otto\tops\nrita\treviewer  (disabled)\ntemp\tops\n"
    );
    let r = with_store(&["user", "enable", "rita"], &store);
    assert!(r.ok(), "{}", r.stderr);
    assert_eq!(r.stdout.trim(), "user rita enabled");
    let r = with_store(
        &["user", "token", "revoke", "otto", "--label", "scraper"],
        &store,
    );
    assert!(r.ok(), "{}", r.stderr);
    assert_eq!(r.stdout.trim(), "1 token(s) of otto revoked");
    let r = with_store(&["user", "delete", "temp"], &store);
    assert!(r.ok(), "{}", r.stderr);
    assert_eq!(
        r.stdout.trim(),
        "user temp deleted (0 session(s) ended, 0 token(s) revoked)"
    );
    for args in [
        ["user", "disable", "nobody"],
        ["user", "delete", "temp"],
        ["user", "unlock", "nobody"],
    ] {
        let r = with_store(&args, &store);
        assert!(
            r.one_line_error().contains("no user `") && r.one_line_error().contains("user list"),
            "{args:?}: {}",
            r.stderr
        );
    }

    // What the commands left in the store, and a lock-out for `unlock` to lift.
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("runtime");
    let db = rt
        .block_on(roadwarden_store::Store::open_data_dir(
            &roadwarden_store::DataDir::new(&data),
        ))
        .expect("open the data folder's store");
    let hash = |t: &str| roadwarden_server::auth::token_hash(t);
    let live = |t: &str| {
        rt.block_on(db.api_token_user(&hash(t)))
            .expect("query")
            .is_some()
    };
    assert!(!live(&rita_token), "a disabled user's token stays revoked");
    assert!(!live(&otto_scraper), "revoked by label");
    assert!(live(&otto_backup), "the other label stays");
    for _ in 0..3 {
        rt.block_on(db.record_login_attempt("rita", "203.0.113.9", false))
            .expect("attempt");
    }
    let r = with_store(&["user", "unlock", "rita"], &store);
    assert!(r.ok(), "{}", r.stderr);
    assert_eq!(
        r.stdout.trim(),
        "user rita unlocked (3 failed login(s) forgotten)"
    );
    let failures = rt
        .block_on(db.login_failures("rita", "203.0.113.9", 0))
        .expect("failures");
    assert_eq!(failures.by_name, 0);
    let actions: Vec<String> = rt
        .block_on(db.audit_log(None))
        .expect("audit")
        .into_iter()
        .filter(|(actor, ..)| actor.starts_with("cli:"))
        .map(|(_, action, ..)| action)
        .filter(|a| a != "user_add" && a != "token_add")
        .collect();
    assert_eq!(
        actions,
        [
            "user_disable",
            "user_enable",
            "token_revoke",
            "user_delete",
            "user_unlock"
        ]
    );
    rt.block_on(db.close());
}
