//! Who is asking and what they may do: argon2id password hashes, session
//! cookies (HttpOnly, SameSite=Strict, Secure by option) with a CSRF token
//! that every state-changing request must echo in `X-CSRF-Token`, bearer
//! tokens for machines, rate-limited login (one login at a time per user
//! name, so the limit's check and count are atomic), and role checks.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, OnceLock};

use argon2::Argon2;
use argon2::password_hash::rand_core::OsRng as PhOsRng;
use argon2::password_hash::{PasswordHash, PasswordHasher, PasswordVerifier, SaltString};
use axum::extract::{Request, State};
use axum::http::{HeaderMap, Method, StatusCode, header};
use axum::middleware::Next;
use axum::response::Response;
use rand::RngCore;
use roadwarden_store::UserRecord;
use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq;

use crate::{ApiError, AppState};

/// The session cookie's name.
pub const SESSION_COOKIE: &str = "rw_session";
/// The header that must carry the session's CSRF token on state-changing requests.
pub const CSRF_HEADER: &str = "x-csrf-token";
/// Shortest password accepted.
pub const MIN_PASSWORD_LEN: usize = 10;

#[derive(Debug, thiserror::Error)]
pub enum PasswordError {
    #[error("the password must be at least {MIN_PASSWORD_LEN} characters")]
    TooShort,
    #[error("cannot hash the password: {0}")]
    Hash(String),
}

/// An argon2id PHC string for `password` (fresh random salt, default parameters).
pub fn hash_password(password: &str) -> Result<String, PasswordError> {
    if password.chars().count() < MIN_PASSWORD_LEN {
        return Err(PasswordError::TooShort);
    }
    let salt = SaltString::generate(&mut PhOsRng);
    Argon2::default()
        .hash_password(password.as_bytes(), &salt)
        .map(|h| h.to_string())
        .map_err(|e| PasswordError::Hash(e.to_string()))
}

/// Whether `password` matches the PHC string `hash`.
pub fn verify_password(password: &str, hash: &str) -> bool {
    match PasswordHash::new(hash) {
        Ok(h) => Argon2::default()
            .verify_password(password.as_bytes(), &h)
            .is_ok(),
        Err(_) => false,
    }
}

/// A hash no password matches, verified against for unknown users so that a
/// login takes as long whether or not the name exists.
pub(crate) fn dummy_hash() -> &'static str {
    static H: OnceLock<String> = OnceLock::new();
    H.get_or_init(|| {
        let mut pw = [0u8; 32];
        rand::rngs::OsRng.fill_bytes(&mut pw);
        hash_password(&hex::encode(pw)).unwrap_or_default()
    })
}

/// 32 random bytes, hex.
pub fn random_token() -> String {
    let mut b = [0u8; 32];
    rand::rngs::OsRng.fill_bytes(&mut b);
    hex::encode(b)
}

/// What the store keeps of a cookie value or bearer token.
pub fn token_hash(token: &str) -> String {
    hex::encode(Sha256::digest(token.as_bytes()))
}

/// A new bearer token for a machine: `rwt_` and 64 hex digits.
pub fn new_bearer_token() -> String {
    format!("rwt_{}", random_token())
}

/// Logins take turns per user name: the rate limit's check, the password
/// check and the count of a failure happen under one turn, so a concurrent
/// burst for one name runs at most the limit's password checks.
#[derive(Debug, Default)]
pub(crate) struct LoginGate {
    turns: Mutex<HashMap<String, Arc<tokio::sync::Mutex<()>>>>,
}

impl LoginGate {
    /// Waits for `name`'s turn; the turn lasts as long as the guard.
    pub(crate) async fn turn(&self, name: &str) -> tokio::sync::OwnedMutexGuard<()> {
        let lock = {
            let mut turns = self.turns.lock().unwrap_or_else(|p| p.into_inner());
            // Names nobody holds or waits for go, so the map stays as small as the logins in flight.
            turns.retain(|_, m| Arc::strong_count(m) > 1);
            turns.entry(name.to_owned()).or_default().clone()
        };
        lock.lock_owned().await
    }
}

/// How the caller authenticated.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Via {
    Session { token_hash: String, csrf: String },
    Bearer { token_hash: String },
}

/// The authenticated caller, put in the request's extensions by [`require_auth`].
#[derive(Debug, Clone)]
pub struct Principal {
    pub user: UserRecord,
    pub via: Via,
}

/// The client's address, put in the request's extensions by the outermost layer.
#[derive(Debug, Clone)]
pub struct RemoteAddr(pub String);

fn cookie_value<'a>(headers: &'a HeaderMap, name: &str) -> Option<&'a str> {
    headers
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .filter_map(|kv| kv.trim().split_once('='))
        .find(|(k, _)| *k == name)
        .map(|(_, v)| v.trim())
}

fn is_state_changing(m: &Method) -> bool {
    !matches!(*m, Method::GET | Method::HEAD | Method::OPTIONS)
}

fn plausible_token(t: &str) -> bool {
    !t.is_empty() && t.len() <= 128 && t.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_')
}

/// The SHA-256 (as the store keeps it) of the credential a request carries: its bearer token, else its
/// session cookie.
pub(crate) fn credential_hash(headers: &HeaderMap) -> Option<String> {
    let token = match headers.get(header::AUTHORIZATION) {
        Some(v) => v.to_str().ok()?.strip_prefix("Bearer ")?.trim(),
        None => cookie_value(headers, SESSION_COOKIE)?,
    };
    plausible_token(token).then(|| token_hash(token))
}

/// Who sent a request with these headers: a bearer token (`Authorization:
/// Bearer ...`), else the session cookie; a cookie-authenticated request that
/// changes state must also carry the session's CSRF token. 401 without
/// valid credentials, 403 for a missing or wrong CSRF token.
pub(crate) async fn authenticate(
    state: &AppState,
    method: &Method,
    headers: &HeaderMap,
) -> Result<Principal, ApiError> {
    let store = &state.0.store;
    if let Some(v) = headers.get(header::AUTHORIZATION) {
        let v = v.to_str().map_err(|_| ApiError::unauthorized())?;
        let Some(token) = v.strip_prefix("Bearer ").map(str::trim) else {
            return Err(ApiError::unauthorized());
        };
        if !plausible_token(token) {
            return Err(ApiError::unauthorized());
        }
        let th = token_hash(token);
        let user = store
            .api_token_user(&th)
            .await?
            .ok_or_else(ApiError::unauthorized)?;
        return Ok(Principal {
            user,
            via: Via::Bearer { token_hash: th },
        });
    }
    let Some(cookie) = cookie_value(headers, SESSION_COOKIE) else {
        return Err(ApiError::unauthorized());
    };
    if !plausible_token(cookie) {
        return Err(ApiError::unauthorized());
    }
    let th = token_hash(cookie);
    let session = store
        .session(&th)
        .await?
        .ok_or_else(ApiError::unauthorized)?;
    if is_state_changing(method) {
        let sent = headers
            .get(CSRF_HEADER)
            .and_then(|v| v.to_str().ok())
            .unwrap_or("");
        let ok: bool = sent.as_bytes().ct_eq(session.csrf_token.as_bytes()).into();
        if sent.is_empty() || !ok {
            return Err(ApiError::new(
                StatusCode::FORBIDDEN,
                "csrf",
                "missing or wrong X-CSRF-Token header (GET /api/me gives the session's token)",
            ));
        }
    }
    Ok(Principal {
        user: session.user,
        via: Via::Session {
            token_hash: th,
            csrf: session.csrf_token,
        },
    })
}

/// Authenticates every request under it ([`authenticate`]) before any
/// handler or extractor runs, and hands the caller on in the request's
/// extensions, where the [`Principal`] and role extractors find it.
pub async fn require_auth(
    State(state): State<AppState>,
    mut req: Request,
    next: Next,
) -> Result<Response, ApiError> {
    let mut principal = authenticate(&state, req.method(), req.headers()).await;
    if req.method() == Method::GET && req.uri().path() == "/metrics" {
        principal = crate::metrics::scrape_auth(&state, req.headers(), principal);
    }
    req.extensions_mut().insert(principal?);
    Ok(next.run(req).await)
}
