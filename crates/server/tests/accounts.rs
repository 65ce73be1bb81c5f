//! Cutting accounts off over real HTTP: disabling, enabling, deleting, unlocking and token
//! revocation by an admin, a password change and a bearer logout ending access at once, and the
//! login limiter under a concurrent burst. A server on 127.0.0.1:0 over a real store (an SQLite
//! file, or a PostgreSQL database of its own at 127.0.0.1:5432) and a real HTTP client; every
//! body runs on both dialects.

mod common;

use std::time::Duration;

use common::{USERS, dual_test};
use reqwest::{Method, StatusCode};
use roadwarden_server::ServerConfig;
use roadwarden_server::auth::{new_bearer_token, token_hash};
use roadwarden_store::{DataDir, Store};
use serde_json::{Value, json};

/// The failed logins per name the harness allows.
const MAX_PER_NAME: i64 = 5;

/// How a request authenticates.
#[derive(Debug, Clone)]
enum Caller {
    Anon,
    Session { cookie: String, csrf: String },
    Bearer(String),
}

struct Harness {
    base: String,
    http: reqwest::Client,
    store: Store,
    pg_name: Option<String>,
    server: common::Server,
    _data: DataDir,
    _dir: tempfile::TempDir,
}

fn password(name: &str) -> &'static str {
    USERS
        .iter()
        .find(|(n, _, _)| *n == name)
        .map(|(_, p, _)| *p)
        .expect("known user")
}

impl Harness {
    async fn start(dialect: &'static str) -> Harness {
        let (dir, data) = common::temp_data();
        let (store, pg_name) = common::open_store(dialect, &data, "rw_accounts").await;
        common::put_users(&store, USERS).await;
        let site = common::site_toml(&[common::camera_toml("cam-a", None, &[])]);
        let config = ServerConfig {
            max_failures_per_name: MAX_PER_NAME,
            // The burst below comes from one address; only the per-name limit is under test.
            max_failures_per_remote: 10_000,
            ..ServerConfig::default()
        };
        let server = common::Server::start(&store, &data, &site, config).await;
        Harness {
            base: server.base.clone(),
            http: common::http_client(Duration::from_secs(60), false),
            store,
            pg_name,
            server,
            _data: data,
            _dir: dir,
        }
    }

    async fn finish(mut self) {
        self.server.stop();
        common::close_store(&self.store, self.pg_name.take()).await;
    }

    /// `POST /api/login`: the status and, on success, the session.
    async fn try_login(&self, name: &str, pw: &str) -> (StatusCode, Option<Caller>, Value) {
        let r = self
            .http
            .post(format!("{}/api/login", self.base))
            .json(&json!({ "name": name, "password": pw }))
            .send()
            .await
            .expect("login request");
        let status = r.status();
        let cookie = (status == StatusCode::OK).then(|| common::session_cookie(&r));
        let body: Value = r.json().await.expect("json");
        let caller = cookie.map(|cookie| Caller::Session {
            cookie,
            csrf: body["csrf_token"].as_str().expect("csrf").to_owned(),
        });
        (status, caller, body)
    }

    async fn login(&self, name: &str) -> Caller {
        let (s, c, b) = self.try_login(name, password(name)).await;
        assert_eq!(s, StatusCode::OK, "{name} logs in: {b}");
        c.expect("session")
    }

    /// A bearer token for `name`, made through the store as `roadwarden user token` does.
    async fn token(&self, name: &str, label: &str) -> Caller {
        let user = self
            .store
            .user_by_name(name)
            .await
            .expect("query")
            .expect("user");
        let t = new_bearer_token();
        self.store
            .create_api_token(&user, label, &token_hash(&t), "test")
            .await
            .expect("token");
        Caller::Bearer(t)
    }

    async fn call(
        &self,
        caller: &Caller,
        method: Method,
        path: &str,
        body: Option<Value>,
    ) -> (StatusCode, Value) {
        let mut rb = self.http.request(method, format!("{}{path}", self.base));
        rb = match caller {
            Caller::Anon => rb,
            Caller::Session { cookie, csrf } => {
                rb.header("cookie", cookie).header("x-csrf-token", csrf)
            }
            Caller::Bearer(t) => rb.bearer_auth(t),
        };
        if let Some(b) = body {
            rb = rb.json(&b);
        }
        let r = rb.send().await.expect("request");
        let status = r.status();
        let text = r.text().await.expect("body");
        (
            status,
            serde_json::from_str(&text).unwrap_or(Value::String(text)),
        )
    }

    async fn me(&self, caller: &Caller) -> StatusCode {
        self.call(caller, Method::GET, "/api/me", None).await.0
    }

    /// The audit entries (newest first) with this action: (actor, after).
    async fn audit(&self, admin: &Caller, action: &str) -> Vec<(String, Value)> {
        let (s, b) = self
            .call(admin, Method::GET, "/api/audit?limit=500", None)
            .await;
        assert_eq!(s, StatusCode::OK, "{b}");
        b["items"]
            .as_array()
            .expect("items")
            .iter()
            .filter(|e| e["action"] == action)
            .map(|e| {
                (
                    e["actor"].as_str().expect("actor").to_owned(),
                    e["after"].clone(),
                )
            })
            .collect()
    }

    /// `roadwarden_login_password_checks_total` from `/metrics`.
    async fn password_checks(&self, admin: &Caller) -> u64 {
        let (s, b) = self.call(admin, Method::GET, "/metrics", None).await;
        assert_eq!(s, StatusCode::OK);
        let text = b.as_str().expect("text");
        text.lines()
            .find_map(|l| l.strip_prefix("roadwarden_login_password_checks_total "))
            .unwrap_or_else(|| panic!("no password check counter in {text}"))
            .trim()
            .parse()
            .expect("a count")
    }
}

/// A disabled user's cookie and bearer token answer 401 from the very next request; their right
/// password answers 403; enabling lets them log in again but brings no token back. Only an admin
/// may do it, not to themselves, and each action is audited with its actor.
async fn disable_and_enable(h: &Harness) {
    let ada = h.login("ada").await;
    let rita = h.login("rita").await;
    let rita_token = h.token("rita", "laptop").await;
    let otto = h.login("otto").await;
    assert_eq!(h.me(&rita).await, StatusCode::OK);
    assert_eq!(h.me(&rita_token).await, StatusCode::OK);

    // Not an admin, not anonymous, not themselves.
    for who in [&otto, &rita, &Caller::Anon] {
        let (s, _) = h
            .call(who, Method::POST, "/api/users/rita/disable", None)
            .await;
        assert!(
            s == StatusCode::FORBIDDEN || s == StatusCode::UNAUTHORIZED,
            "{who:?}: {s}"
        );
    }
    let (s, b) = h
        .call(&ada, Method::POST, "/api/users/ada/disable", None)
        .await;
    assert_eq!(s, StatusCode::CONFLICT, "{b}");
    let (s, b) = h
        .call(&ada, Method::POST, "/api/users/nobody/disable", None)
        .await;
    assert_eq!(s, StatusCode::NOT_FOUND, "{b}");
    assert_eq!(h.me(&rita).await, StatusCode::OK);

    let (s, b) = h
        .call(&ada, Method::POST, "/api/users/rita/disable", None)
        .await;
    assert_eq!(s, StatusCode::OK, "{b}");
    assert_eq!(b["disabled"], true);
    assert_eq!(b["sessions_ended"], 1, "{b}");
    assert_eq!(b["tokens_revoked"], 1, "{b}");
    assert_eq!(h.me(&rita).await, StatusCode::UNAUTHORIZED, "cookie");
    assert_eq!(h.me(&rita_token).await, StatusCode::UNAUTHORIZED, "token");
    let (s, _, b) = h.try_login("rita", password("rita")).await;
    assert_eq!(s, StatusCode::FORBIDDEN, "{b}");
    assert_eq!(b["error"], "account_disabled");
    let (s, b) = h.call(&ada, Method::GET, "/api/users", None).await;
    assert_eq!(s, StatusCode::OK);
    let listed = b["users"]
        .as_array()
        .expect("users")
        .iter()
        .find(|u| u["name"] == "rita")
        .expect("rita listed")
        .clone();
    assert_eq!(listed["disabled"], true, "{listed}");
    // Others are untouched.
    assert_eq!(h.me(&otto).await, StatusCode::OK);

    let (s, b) = h
        .call(&ada, Method::POST, "/api/users/rita/enable", None)
        .await;
    assert_eq!(s, StatusCode::OK, "{b}");
    assert_eq!(b["disabled"], false);
    let again = h.login("rita").await;
    assert_eq!(h.me(&again).await, StatusCode::OK);
    assert_eq!(h.me(&rita).await, StatusCode::UNAUTHORIZED, "old cookie");
    assert_eq!(
        h.me(&rita_token).await,
        StatusCode::UNAUTHORIZED,
        "old token"
    );

    let disables = h.audit(&ada, "user_disable").await;
    assert_eq!(disables.len(), 1, "{disables:?}");
    assert_eq!(disables[0].0, "ada");
    assert_eq!(disables[0].1["name"], "rita");
    assert_eq!(disables[0].1["tokens_revoked"], 1);
    let enables = h.audit(&ada, "user_enable").await;
    assert_eq!(enables.len(), 1, "{enables:?}");
    assert_eq!(enables[0].0, "ada");
}
dual_test!(disable_and_enable);

/// An admin's password change for a user ends every session and token of that user at once.
async fn password_change_ends_access(h: &Harness) {
    let ada = h.login("ada").await;
    let first = h.login("rita").await;
    let second = h.login("rita").await;
    let token = h.token("rita", "script").await;
    let new_pw = "rita-has-a-new-password";
    let (s, b) = h
        .call(
            &ada,
            Method::POST,
            "/api/users",
            Some(json!({ "name": "rita", "role": "reviewer", "password": new_pw })),
        )
        .await;
    assert_eq!(s, StatusCode::CREATED, "{b}");
    for c in [&first, &second, &token] {
        assert_eq!(h.me(c).await, StatusCode::UNAUTHORIZED, "{c:?}");
    }
    let (s, _, _) = h.try_login("rita", password("rita")).await;
    assert_eq!(s, StatusCode::UNAUTHORIZED, "old password");
    let (s, c, b) = h.try_login("rita", new_pw).await;
    assert_eq!(s, StatusCode::OK, "{b}");
    assert_eq!(h.me(&c.expect("session")).await, StatusCode::OK);
    let updates = h.audit(&ada, "user_update").await;
    let latest = updates.first().expect("a user_update entry");
    assert_eq!(latest.0, "ada");
    let (s, b) = h
        .call(&ada, Method::GET, "/api/audit?limit=500", None)
        .await;
    assert_eq!(s, StatusCode::OK);
    let before = b["items"]
        .as_array()
        .expect("items")
        .iter()
        .find(|e| e["action"] == "user_update")
        .expect("entry")["before"]
        .clone();
    assert_eq!(before["sessions_ended"], 2, "{before}");
    assert_eq!(before["tokens_revoked"], 1, "{before}");
}
dual_test!(password_change_ends_access);

/// `POST /api/logout` with a bearer token revokes the token; a session's logout ends the session.
async fn bearer_logout_revokes(h: &Harness) {
    let ada = h.login("ada").await;
    let token = h.token("otto", "scraper").await;
    let other = h.token("otto", "backup").await;
    assert_eq!(h.me(&token).await, StatusCode::OK);
    let (s, b) = h.call(&token, Method::POST, "/api/logout", None).await;
    assert_eq!(s, StatusCode::NO_CONTENT, "{b}");
    assert_eq!(h.me(&token).await, StatusCode::UNAUTHORIZED);
    let (s, _) = h.call(&token, Method::POST, "/api/logout", None).await;
    assert_eq!(
        s,
        StatusCode::UNAUTHORIZED,
        "a revoked token cannot log out again"
    );
    assert_eq!(h.me(&other).await, StatusCode::OK, "the other token stays");
    let revokes = h.audit(&ada, "token_revoke").await;
    assert_eq!(revokes.len(), 1, "{revokes:?}");
    assert_eq!(revokes[0].0, "otto");
    assert_eq!(revokes[0].1["label"], "scraper");

    let rita = h.login("rita").await;
    let (s, _) = h.call(&rita, Method::POST, "/api/logout", None).await;
    assert_eq!(s, StatusCode::NO_CONTENT);
    assert_eq!(h.me(&rita).await, StatusCode::UNAUTHORIZED);
}
dual_test!(bearer_logout_revokes);

/// An admin revokes a user's tokens (by label, then all) and deletes a user; both audited.
async fn revoke_and_delete(h: &Harness) {
    let ada = h.login("ada").await;
    common::put_users(
        &h.store,
        [("temp", "temporary-password", roadwarden_store::Role::Ops)],
    )
    .await;
    let a = h.token("temp", "a").await;
    let b_tok = h.token("temp", "b").await;
    let temp = h.login_as("temp", "temporary-password").await;
    let (s, b) = h
        .call(&ada, Method::DELETE, "/api/users/temp/tokens?label=a", None)
        .await;
    assert_eq!(s, StatusCode::OK, "{b}");
    assert_eq!(b["tokens_revoked"], 1);
    assert_eq!(h.me(&a).await, StatusCode::UNAUTHORIZED);
    assert_eq!(h.me(&b_tok).await, StatusCode::OK);
    let (s, b) = h
        .call(&ada, Method::DELETE, "/api/users/temp/tokens", None)
        .await;
    assert_eq!(s, StatusCode::OK, "{b}");
    assert_eq!(b["tokens_revoked"], 1);
    assert_eq!(h.me(&b_tok).await, StatusCode::UNAUTHORIZED);
    assert_eq!(h.audit(&ada, "token_revoke").await.len(), 2);

    assert_eq!(h.me(&temp).await, StatusCode::OK);
    let (s, b) = h.call(&ada, Method::DELETE, "/api/users/temp", None).await;
    assert_eq!(s, StatusCode::NO_CONTENT, "{b}");
    assert_eq!(h.me(&temp).await, StatusCode::UNAUTHORIZED);
    let (s, _, _) = h.try_login("temp", "temporary-password").await;
    assert_eq!(s, StatusCode::UNAUTHORIZED);
    let (s, b) = h.call(&ada, Method::DELETE, "/api/users/temp", None).await;
    assert_eq!(s, StatusCode::NOT_FOUND, "{b}");
    let (s, b) = h.call(&ada, Method::DELETE, "/api/users/ada", None).await;
    assert_eq!(s, StatusCode::CONFLICT, "{b}");
    let deletes = h.audit(&ada, "user_delete").await;
    assert_eq!(deletes.len(), 1, "{deletes:?}");
    assert_eq!(deletes[0].0, "ada");
    assert!(h.store.user_by_name("temp").await.expect("query").is_none());
}
dual_test!(revoke_and_delete);

/// 60 concurrent bad logins for one user run at most the limit's password checks (the counter
/// the service exports says how many ran); the rest are refused unchecked. An admin's unlock
/// then lets the locked-out user log in at once, audited.
async fn login_burst_and_unlock(h: &Harness) {
    let ada = h.login("ada").await;
    let before = h.password_checks(&ada).await;
    let burst = (0..60).map(|i| {
        let http = h.http.clone();
        let url = format!("{}/api/login", h.base);
        tokio::spawn(async move {
            http.post(url)
                .json(&json!({ "name": "rita", "password": format!("wrong-password-{i}") }))
                .send()
                .await
                .expect("login request")
                .status()
        })
    });
    let mut unauthorized = 0;
    let mut limited = 0;
    for t in burst.collect::<Vec<_>>() {
        match t.await.expect("task") {
            StatusCode::UNAUTHORIZED => unauthorized += 1,
            StatusCode::TOO_MANY_REQUESTS => limited += 1,
            s => panic!("unexpected {s}"),
        }
    }
    let checks = h.password_checks(&ada).await - before;
    assert!(
        checks <= MAX_PER_NAME as u64,
        "{checks} password checks for a limit of {MAX_PER_NAME}"
    );
    assert_eq!(unauthorized, checks, "every checked login was a 401");
    assert_eq!(unauthorized + limited, 60);

    // Locked out, even with the right password, and nothing is checked.
    let (s, _, _) = h.try_login("rita", password("rita")).await;
    assert_eq!(s, StatusCode::TOO_MANY_REQUESTS);
    assert_eq!(h.password_checks(&ada).await - before, checks);

    let otto = h.login("otto").await;
    let (s, _) = h
        .call(&otto, Method::POST, "/api/users/rita/unlock", None)
        .await;
    assert_eq!(s, StatusCode::FORBIDDEN, "only an admin unlocks");
    let (s, b) = h
        .call(&ada, Method::POST, "/api/users/nobody/unlock", None)
        .await;
    assert_eq!(s, StatusCode::NOT_FOUND, "{b}");
    let (s, b) = h
        .call(&ada, Method::POST, "/api/users/rita/unlock", None)
        .await;
    assert_eq!(s, StatusCode::OK, "{b}");
    assert_eq!(b["failures_forgotten"], checks);
    let rita = h.login("rita").await;
    assert_eq!(h.me(&rita).await, StatusCode::OK);
    let unlocks = h.audit(&ada, "user_unlock").await;
    assert_eq!(unlocks.len(), 1, "{unlocks:?}");
    assert_eq!(unlocks[0].0, "ada");
    assert_eq!(unlocks[0].1["name"], "rita");
}
dual_test!(login_burst_and_unlock);

impl Harness {
    async fn login_as(&self, name: &str, pw: &str) -> Caller {
        let (s, c, b) = self.try_login(name, pw).await;
        assert_eq!(s, StatusCode::OK, "{name} logs in: {b}");
        c.expect("session")
    }
}
