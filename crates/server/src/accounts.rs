//! The account endpoints: log in and out, who am I, and the admin's user list, user creation, disabling,
//! enabling, deleting, unlocking and token revocation (each audited by the store). Who is asking and how
//! they prove it (passwords, sessions, tokens) is `auth`; the role checks are `extract`'s.

use axum::extract::State;
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::{Extension, Json};
use roadwarden_store::{AccessEnded, Role, UserDeleted, UserState};
use serde::{Deserialize, Serialize};

use utoipa::{IntoParams, ToSchema};

use crate::{ApiError, AppState};

use crate::auth::*;
use crate::error::ErrorBody;
use crate::extract::{Admin, ApiJson, ApiPath, ApiQuery};

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
    description = "Roles: none. Failed logins are counted per user name and per client address; past the limit the answer is 429 with Retry-After. Logins for one user name take turns, so a concurrent burst checks at most the limit's passwords. A disabled user's right password answers 403.",
    security(()),
    request_body = LoginBody,
    responses(
        (status = 200, description = "logged in; `Set-Cookie` carries the session", body = LoggedIn),
        (status = 400, description = "bad body", body = ErrorBody),
        (status = 401, description = "wrong name or password", body = ErrorBody),
        (status = 403, description = "the account is disabled", body = ErrorBody),
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
    // One login per name at a time: the failures counted below include every earlier attempt's.
    let _turn = state.0.login_gate.turn(&body.name).await;
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
    state.0.metrics.password_checked();
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
    if user.disabled_at_us.is_some() {
        return Err(ApiError::new(
            StatusCode::FORBIDDEN,
            "account_disabled",
            format!(
                "the account `{}` is disabled; an admin can enable it (roadwarden user enable NAME)",
                user.name
            ),
        ));
    }
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

/// `POST /api/logout`: ends the session and clears the cookie, or revokes the bearer token it came with.
#[utoipa::path(
    post,
    path = "/api/logout",
    tag = "auth",
    summary = "End the session, or revoke the bearer token",
    description = "Roles: any logged-in user. With a bearer token, the token is revoked for good (audited).",
    responses(
        (status = 204, description = "logged out; the cookie is cleared, or the bearer token revoked"),
        (status = 401, description = "not logged in", body = ErrorBody),
        (status = 403, description = "CSRF", body = ErrorBody),
    )
)]
pub(crate) async fn logout(
    State(state): State<AppState>,
    p: Principal,
) -> Result<Response, ApiError> {
    match &p.via {
        Via::Session { token_hash, .. } => {
            state.0.store.delete_session(token_hash).await?;
        }
        Via::Bearer { token_hash } => {
            state
                .0
                .store
                .revoke_api_token(token_hash, &p.user.name)
                .await?;
        }
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
    /// The IANA time zone the page shows times in (`PUT /api/me/time-zone`); `UTC` until chosen.
    time_zone: String,
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
pub(crate) async fn me(State(state): State<AppState>, p: Principal) -> Result<Json<Me>, ApiError> {
    let time_zone = state
        .0
        .store
        .time_zone(&p.user.name)
        .await?
        .unwrap_or_else(|| "UTC".to_owned());
    let (auth, csrf_token) = match p.via {
        Via::Session { csrf, .. } => (AuthKind::Session, Some(csrf)),
        Via::Bearer { .. } => (AuthKind::Bearer, None),
    };
    Ok(Json(Me {
        user: p.user.name,
        role: p.user.role,
        auth,
        csrf_token,
        time_zone,
    }))
}

/// A user, as an admin sees it.
#[derive(Debug, Serialize, ToSchema)]
pub(crate) struct UserInfo {
    name: String,
    #[schema(schema_with = crate::schema::role)]
    role: Role,
    /// False for users created implicitly (a bearer token's machine), who have no password.
    can_log_in: bool,
    /// True while an admin has the user disabled (no login, session or token works).
    disabled: bool,
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
            disabled: u.disabled_at_us.is_some(),
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
    description = "Roles: admin. Audited. Changing an existing user's password ends all their sessions and revokes their bearer tokens.",
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

/// What an admin's action on a user did.
#[derive(Debug, Serialize, ToSchema)]
pub(crate) struct UserChanged {
    name: String,
    /// Whether the user is disabled now.
    disabled: bool,
    /// Browser sessions of the user that ended.
    sessions_ended: u64,
    /// Bearer tokens of the user that were revoked.
    tokens_revoked: u64,
}

fn no_user(name: &str) -> ApiError {
    ApiError::not_found(format!(
        "no user `{}` (GET /api/users lists them)",
        name.escape_debug()
    ))
}

/// An admin may not cut off their own access (someone must be left to undo it).
fn not_self(p: &Principal, name: &str, what: &str) -> Result<(), ApiError> {
    if p.user.name == name {
        return Err(ApiError::conflict(format!(
            "you cannot {what} your own account; another admin can"
        )));
    }
    Ok(())
}

async fn set_state(
    state: &AppState,
    p: &Principal,
    name: &str,
    to: UserState,
) -> Result<Json<UserChanged>, ApiError> {
    let ended: AccessEnded = state
        .0
        .store
        .set_user_state(name, to, &p.user.name)
        .await?
        .ok_or_else(|| no_user(name))?;
    Ok(Json(UserChanged {
        name: name.to_owned(),
        disabled: to == UserState::Disabled,
        sessions_ended: ended.sessions,
        tokens_revoked: ended.tokens,
    }))
}

/// `POST /api/users/{name}/disable` (admin).
#[utoipa::path(
    post,
    path = "/api/users/{name}/disable",
    tag = "auth",
    summary = "Disable a user: every session and token of theirs ends at once",
    description = "Roles: admin. Audited (`user_disable`). The user's reviews and audit entries stay; enabling brings back the login, not the tokens.",
    params(("name" = String, Path, description = "user name")),
    responses(
        (status = 200, description = "disabled", body = UserChanged),
        (status = 403, description = "not admin, or CSRF", body = ErrorBody),
        (status = 404, description = "no such user", body = ErrorBody),
        (status = 409, description = "the caller's own account", body = ErrorBody),
    )
)]
pub(crate) async fn disable_user(
    State(state): State<AppState>,
    Admin(p): Admin,
    ApiPath(name): ApiPath<String>,
) -> Result<Json<UserChanged>, ApiError> {
    not_self(&p, &name, "disable")?;
    set_state(&state, &p, &name, UserState::Disabled).await
}

/// `POST /api/users/{name}/enable` (admin).
#[utoipa::path(
    post,
    path = "/api/users/{name}/enable",
    tag = "auth",
    summary = "Enable a disabled user",
    description = "Roles: admin. Audited (`user_enable`). Revoked tokens stay revoked.",
    params(("name" = String, Path, description = "user name")),
    responses(
        (status = 200, description = "enabled", body = UserChanged),
        (status = 403, description = "not admin, or CSRF", body = ErrorBody),
        (status = 404, description = "no such user", body = ErrorBody),
    )
)]
pub(crate) async fn enable_user(
    State(state): State<AppState>,
    Admin(p): Admin,
    ApiPath(name): ApiPath<String>,
) -> Result<Json<UserChanged>, ApiError> {
    set_state(&state, &p, &name, UserState::Enabled).await
}

/// `DELETE /api/users/{name}` (admin).
#[utoipa::path(
    delete,
    path = "/api/users/{name}",
    tag = "auth",
    summary = "Delete a user who has decided no violation",
    description = "Roles: admin. Audited (`user_delete`). A user named by a review decision is kept (409): disable them instead.",
    params(("name" = String, Path, description = "user name")),
    responses(
        (status = 204, description = "deleted, with their sessions and tokens"),
        (status = 403, description = "not admin, or CSRF", body = ErrorBody),
        (status = 404, description = "no such user", body = ErrorBody),
        (status = 409, description = "the user has review decisions, or is the caller", body = ErrorBody),
    )
)]
pub(crate) async fn delete_user(
    State(state): State<AppState>,
    Admin(p): Admin,
    ApiPath(name): ApiPath<String>,
) -> Result<StatusCode, ApiError> {
    not_self(&p, &name, "delete")?;
    match state.0.store.delete_user(&name, &p.user.name).await? {
        UserDeleted::Deleted(_) => Ok(StatusCode::NO_CONTENT),
        UserDeleted::NoSuchUser => Err(no_user(&name)),
        UserDeleted::HasReviews(n) => Err(ApiError::conflict(format!(
            "user `{}` decided {n} violation(s), which name them; disable the user instead (POST /api/users/{{name}}/disable)",
            name.escape_debug()
        ))),
    }
}

/// What an unlock did.
#[derive(Debug, Serialize, ToSchema)]
pub(crate) struct UserUnlocked {
    name: String,
    /// Failed logins of the user that were forgotten.
    failures_forgotten: u64,
}

/// `POST /api/users/{name}/unlock` (admin).
#[utoipa::path(
    post,
    path = "/api/users/{name}/unlock",
    tag = "auth",
    summary = "Forget a user's failed logins, so a locked-out user can log in at once",
    description = "Roles: admin. Audited (`user_unlock`). The per-address count is not changed.",
    params(("name" = String, Path, description = "user name")),
    responses(
        (status = 200, description = "unlocked", body = UserUnlocked),
        (status = 403, description = "not admin, or CSRF", body = ErrorBody),
        (status = 404, description = "no such user", body = ErrorBody),
    )
)]
pub(crate) async fn unlock_user(
    State(state): State<AppState>,
    Admin(p): Admin,
    ApiPath(name): ApiPath<String>,
) -> Result<Json<UserUnlocked>, ApiError> {
    let n = state
        .0
        .store
        .unlock_user(&name, &p.user.name)
        .await?
        .ok_or_else(|| no_user(&name))?;
    Ok(Json(UserUnlocked {
        name,
        failures_forgotten: n,
    }))
}

/// Which of a user's tokens to revoke.
#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub(crate) struct RevokeQuery {
    /// Only the tokens with this label (all of the user's when absent).
    label: Option<String>,
}

/// What a revocation did.
#[derive(Debug, Serialize, ToSchema)]
pub(crate) struct TokensRevoked {
    name: String,
    tokens_revoked: u64,
}

/// `DELETE /api/users/{name}/tokens` (admin).
#[utoipa::path(
    delete,
    path = "/api/users/{name}/tokens",
    tag = "auth",
    summary = "Revoke a user's bearer tokens",
    description = "Roles: admin. Audited (`token_revoke`). A revoked token answers 401 from the next request on.",
    params(("name" = String, Path, description = "user name"), RevokeQuery),
    responses(
        (status = 200, description = "revoked", body = TokensRevoked),
        (status = 403, description = "not admin, or CSRF", body = ErrorBody),
        (status = 404, description = "no such user", body = ErrorBody),
    )
)]
pub(crate) async fn revoke_tokens(
    State(state): State<AppState>,
    Admin(p): Admin,
    ApiPath(name): ApiPath<String>,
    ApiQuery(q): ApiQuery<RevokeQuery>,
) -> Result<Json<TokensRevoked>, ApiError> {
    let n = state
        .0
        .store
        .revoke_user_tokens(&name, q.label.as_deref(), &p.user.name)
        .await?
        .ok_or_else(|| no_user(&name))?;
    Ok(Json(TokensRevoked {
        name,
        tokens_revoked: n,
    }))
}
