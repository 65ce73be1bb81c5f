//! The account endpoints: log in and out, who am I, and the admin's user list and user creation. Who is
//! asking and how they prove it (passwords, sessions, tokens) is `auth`; the role checks are `extract`'s.

use axum::extract::State;
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::{Extension, Json};
use roadwarden_store::Role;
use serde::{Deserialize, Serialize};

use utoipa::ToSchema;

use crate::{ApiError, AppState};

use crate::auth::*;
use crate::error::ErrorBody;
use crate::extract::{Admin, ApiJson};

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub(crate) struct LoginBody {
    pub name: String,
    pub password: String,
}

/// What a login answers (beside the session cookie).
#[derive(Debug, Serialize, ToSchema)]
pub(crate) struct LoggedIn {
    user: String,
    #[schema(schema_with = crate::schema::role)]
    role: Role,
    /// Echo it in `X-CSRF-Token` on every state-changing request of the session.
    csrf_token: String,
}

/// `POST /api/login`: a session cookie and the session's CSRF token.
#[utoipa::path(
    post,
    path = "/api/login",
    tag = "auth",
    summary = "Log in: a session cookie and the session's CSRF token",
    description = "Roles: none. Failed logins are counted per user name and per client address; past the limit the answer is 429 with Retry-After.",
    security(()),
    request_body = LoginBody,
    responses(
        (status = 200, description = "logged in; `Set-Cookie` carries the session", body = LoggedIn),
        (status = 400, description = "bad body", body = ErrorBody),
        (status = 401, description = "wrong name or password", body = ErrorBody),
        (status = 413, description = "body too large", body = ErrorBody),
        (status = 429, description = "too many failed logins (Retry-After)", body = ErrorBody),
    )
)]
pub(crate) async fn login(
    State(state): State<AppState>,
    Extension(remote): Extension<RemoteAddr>,
    ApiJson(body): ApiJson<LoginBody>,
) -> Result<Response, ApiError> {
    let cfg = &state.0.config;
    let store = &state.0.store;
    if body.name.len() > 64 || body.password.len() > 1024 {
        return Err(ApiError::bad_request("name or password too long"));
    }
    let window_us = i64::try_from(cfg.login_window.as_micros()).unwrap_or(i64::MAX);
    let since = roadwarden_store::to_micros(chrono::Utc::now()).saturating_sub(window_us);
    let failures = store.login_failures(&body.name, &remote.0, since).await?;
    if failures.by_name >= cfg.max_failures_per_name
        || failures.by_remote >= cfg.max_failures_per_remote
    {
        state.0.metrics.login_refused();
        let mut e = ApiError::new(
            StatusCode::TOO_MANY_REQUESTS,
            "rate_limited",
            "too many failed logins; try again later",
        );
        e.retry_after = Some(cfg.login_window.as_secs().max(1));
        return Err(e);
    }
    let user = store.user_by_name(&body.name).await?;
    let hash = user
        .as_ref()
        .and_then(|u| u.password_hash.clone())
        .unwrap_or_else(|| dummy_hash().to_owned());
    let password = body.password.clone();
    let ok = tokio::task::spawn_blocking(move || verify_password(&password, &hash))
        .await
        .map_err(|e| ApiError::internal("password check", e))?;
    let user = match user {
        Some(u) if ok && u.password_hash.is_some() => u,
        _ => {
            store
                .record_login_attempt(&body.name, &remote.0, false)
                .await?;
            state.0.metrics.login_failed();
            return Err(ApiError::new(
                StatusCode::UNAUTHORIZED,
                "bad_credentials",
                "wrong user name or password",
            ));
        }
    };
    store
        .record_login_attempt(&body.name, &remote.0, true)
        .await?;
    let token = random_token();
    let csrf = random_token();
    let ttl_us = i64::try_from(cfg.session_ttl.as_micros()).unwrap_or(i64::MAX);
    let expires = roadwarden_store::to_micros(chrono::Utc::now()).saturating_add(ttl_us);
    store
        .create_session(&token_hash(&token), user.id, &csrf, expires)
        .await?;
    let cookie = format!(
        "{SESSION_COOKIE}={token}; Path=/; HttpOnly; SameSite=Strict; Max-Age={}{}",
        cfg.session_ttl.as_secs(),
        if cfg.secure_cookies { "; Secure" } else { "" }
    );
    let mut resp = Json(LoggedIn {
        user: user.name,
        role: user.role,
        csrf_token: csrf,
    })
    .into_response();
    resp.headers_mut().insert(
        header::SET_COOKIE,
        HeaderValue::from_str(&cookie).map_err(|e| ApiError::internal("cookie", e))?,
    );
    Ok(resp)
}

/// `POST /api/logout`: ends the session and clears the cookie.
#[utoipa::path(
    post,
    path = "/api/logout",
    tag = "auth",
    summary = "End the session",
    description = "Roles: any logged-in user.",
    responses(
        (status = 204, description = "logged out; the cookie is cleared"),
        (status = 401, description = "not logged in", body = ErrorBody),
        (status = 403, description = "CSRF", body = ErrorBody),
    )
)]
pub(crate) async fn logout(
    State(state): State<AppState>,
    p: Principal,
) -> Result<Response, ApiError> {
    if let Via::Session { token_hash, .. } = &p.via {
        state.0.store.delete_session(token_hash).await?;
    }
    let mut resp = StatusCode::NO_CONTENT.into_response();
    resp.headers_mut().insert(
        header::SET_COOKIE,
        HeaderValue::from_static("rw_session=; Path=/; HttpOnly; SameSite=Strict; Max-Age=0"),
    );
    Ok(resp)
}

/// How the caller authenticated, as `GET /api/me` says it.
#[derive(Debug, Clone, Copy, Serialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub(crate) enum AuthKind {
    Session,
    Bearer,
}

/// The caller.
#[derive(Debug, Serialize, ToSchema)]
pub(crate) struct Me {
    user: String,
    #[schema(schema_with = crate::schema::role)]
    role: Role,
    auth: AuthKind,
    /// The session's CSRF token (null for a bearer token).
    csrf_token: Option<String>,
}

/// `GET /api/me`: the caller, and the session's CSRF token.
#[utoipa::path(
    get,
    path = "/api/me",
    tag = "auth",
    summary = "The caller and the session's CSRF token",
    description = "Roles: any logged-in user.",
    responses(
        (status = 200, description = "the caller", body = Me),
        (status = 401, description = "not logged in", body = ErrorBody),
    )
)]
pub(crate) async fn me(p: Principal) -> Json<Me> {
    let (auth, csrf_token) = match p.via {
        Via::Session { csrf, .. } => (AuthKind::Session, Some(csrf)),
        Via::Bearer => (AuthKind::Bearer, None),
    };
    Json(Me {
        user: p.user.name,
        role: p.user.role,
        auth,
        csrf_token,
    })
}

/// A user, as an admin sees it.
#[derive(Debug, Serialize, ToSchema)]
pub(crate) struct UserInfo {
    name: String,
    #[schema(schema_with = crate::schema::role)]
    role: Role,
    /// False for users created implicitly (a bearer token's machine), who have no password.
    can_log_in: bool,
}

/// Every user.
#[derive(Debug, Serialize, ToSchema)]
pub(crate) struct UserList {
    users: Vec<UserInfo>,
}

/// `GET /api/users` (admin).
#[utoipa::path(
    get,
    path = "/api/users",
    tag = "auth",
    summary = "Users",
    description = "Roles: admin.",
    responses(
        (status = 200, description = "every user", body = UserList),
        (status = 401, description = "not logged in", body = ErrorBody),
        (status = 403, description = "not admin", body = ErrorBody),
    )
)]
pub(crate) async fn list_users(
    State(state): State<AppState>,
    _: Admin,
) -> Result<Json<UserList>, ApiError> {
    let users = state.0.store.users().await?;
    let users = users
        .into_iter()
        .map(|u| UserInfo {
            can_log_in: u.password_hash.is_some(),
            name: u.name,
            role: u.role,
        })
        .collect();
    Ok(Json(UserList { users }))
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub(crate) struct AddUserBody {
    pub name: String,
    #[schema(schema_with = crate::schema::role)]
    pub role: Role,
    /// At least [`MIN_PASSWORD_LEN`] characters.
    pub password: String,
}

/// A user created or changed.
#[derive(Debug, Serialize, ToSchema)]
pub(crate) struct UserAdded {
    name: String,
    #[schema(schema_with = crate::schema::role)]
    role: Role,
}

/// `POST /api/users` (admin): creates a user or sets an existing one's role and password.
#[utoipa::path(
    post,
    path = "/api/users",
    tag = "auth",
    summary = "Create a user or set role and password",
    description = "Roles: admin. Audited.",
    request_body = AddUserBody,
    responses(
        (status = 201, description = "created or changed", body = UserAdded),
        (status = 400, description = "bad body or short password", body = ErrorBody),
        (status = 403, description = "not admin, or CSRF", body = ErrorBody),
    )
)]
pub(crate) async fn add_user(
    State(state): State<AppState>,
    Admin(p): Admin,
    ApiJson(body): ApiJson<AddUserBody>,
) -> Result<(StatusCode, Json<UserAdded>), ApiError> {
    if body.password.len() > 1024 {
        return Err(ApiError::bad_request("password too long"));
    }
    let password = body.password.clone();
    let hash = tokio::task::spawn_blocking(move || hash_password(&password))
        .await
        .map_err(|e| ApiError::internal("password hash", e))?
        .map_err(|e| ApiError::bad_request(e.to_string()))?;
    state
        .0
        .store
        .put_user(&body.name, body.role, &hash, &p.user.name)
        .await?;
    Ok((
        StatusCode::CREATED,
        Json(UserAdded {
            name: body.name,
            role: body.role,
        }),
    ))
}
