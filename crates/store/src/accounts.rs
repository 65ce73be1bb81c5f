//! Accounts and settings the HTTP service keeps in the store: users with
//! their password hashes and roles, browser sessions, bearer tokens for
//! machines, login attempts (for rate limiting), and the score thresholds set
//! per camera and class over the API. Hashing and token generation are the
//! server's; only hashes reach these tables.

use serde::{Deserialize, Serialize};
use sqlx::Row;

use crate::db::Pool;
use crate::{Store, StoreError};

fn now_us() -> i64 {
    crate::to_micros(chrono::Utc::now())
}

/// What a user may do.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Role {
    /// Confirms or rejects violations.
    Reviewer,
    /// Tunes thresholds and watches cameras.
    Ops,
    /// Both, and reopens decided violations.
    Admin,
}

impl Role {
    pub const ALL: [Role; 3] = [Role::Reviewer, Role::Ops, Role::Admin];

    pub fn as_str(self) -> &'static str {
        match self {
            Role::Reviewer => "reviewer",
            Role::Ops => "ops",
            Role::Admin => "admin",
        }
    }

    pub fn parse(s: &str) -> Result<Role, StoreError> {
        match s {
            "reviewer" => Ok(Role::Reviewer),
            "ops" => Ok(Role::Ops),
            "admin" => Ok(Role::Admin),
            _ => Err(StoreError::Invalid(format!(
                "unknown role `{s}` (expected reviewer, ops or admin)"
            ))),
        }
    }
}

impl std::fmt::Display for Role {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// One user row.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UserRecord {
    pub id: i64,
    pub name: String,
    pub role: Role,
    /// PHC string (argon2id); `None` for users created implicitly (who cannot log in).
    pub password_hash: Option<String>,
    /// When an admin disabled the user; `None` while enabled. A disabled user's
    /// sessions and tokens are gone and no login of theirs succeeds.
    pub disabled_at_us: Option<i64>,
}

/// The [`UserRecord`] in the first five columns of a row ([`USER_COLS`]).
macro_rules! user_from_row {
    ($r:expr) => {
        UserRecord {
            id: $r.try_get(0)?,
            name: $r.try_get(1)?,
            role: Role::parse(&$r.try_get::<String, _>(2)?)?,
            password_hash: $r.try_get(3)?,
            disabled_at_us: $r.try_get(4)?,
        }
    };
}

/// What cutting a user off ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct AccessEnded {
    /// Browser sessions deleted.
    pub sessions: u64,
    /// Bearer tokens revoked.
    pub tokens: u64,
}

/// Whether a user is to be disabled or enabled.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum UserState {
    Enabled,
    Disabled,
}

/// What `delete_user` did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum UserDeleted {
    /// Gone, with its sessions and tokens.
    Deleted(AccessEnded),
    /// There is no such user.
    NoSuchUser,
    /// Kept: this many review decisions name the user (disable the user instead).
    HasReviews(i64),
}

/// A live browser session.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SessionRecord {
    pub user: UserRecord,
    pub csrf_token: String,
    pub expires_at_us: i64,
}

/// Failed login attempts counted for rate limiting.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct LoginFailures {
    /// For this user name.
    pub by_name: i64,
    /// From this remote address.
    pub by_remote: i64,
}

/// One stored threshold override.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ThresholdRow {
    pub camera: String,
    pub class: String,
    pub value: f64,
    pub updated_at_us: i64,
    pub updated_by: String,
}

/// Deletes every session and revokes every bearer token of user `$id` inside the transaction `$tx`;
/// the [`AccessEnded`].
macro_rules! end_access {
    ($tx:expr, $id:expr, $now:expr) => {{
        let sessions = sqlx::query("DELETE FROM sessions WHERE user_id = $1")
            .bind($id)
            .execute(&mut *$tx)
            .await?
            .rows_affected();
        let tokens = sqlx::query(
            "UPDATE api_tokens SET revoked_at_us = $2 WHERE user_id = $1 AND revoked_at_us IS NULL",
        )
        .bind($id)
        .bind($now)
        .execute(&mut *$tx)
        .await?
        .rows_affected();
        AccessEnded { sessions, tokens }
    }};
}

const USER_COLS: &str = "u.id, u.name, u.role, u.password_hash, u.disabled_at_us";

impl Store {
    /// Creates the user, or sets the role and password of an existing one,
    /// which ends every session and revokes every bearer token of that user;
    /// audited as `user_add` or `user_update` (the hash never enters the log).
    pub async fn put_user(
        &self,
        name: &str,
        role: Role,
        password_hash: &str,
        actor: &str,
    ) -> Result<i64, StoreError> {
        if name.is_empty() || name.len() > 64 || name.chars().any(|c| c.is_control()) {
            return Err(StoreError::Invalid(format!(
                "user name `{}` must be 1 to 64 printable characters",
                name.escape_debug()
            )));
        }
        let now = now_us();
        on_pool!(&self.pool, p => {
            let mut tx = p.begin().await?;
            let before = sqlx::query("SELECT id, role FROM users WHERE name = $1")
                .bind(name)
                .fetch_optional(&mut *tx)
                .await?;
            let (id, action, before_state) = match before {
                Some(r) => {
                    let id: i64 = r.try_get(0)?;
                    let old_role: String = r.try_get(1)?;
                    sqlx::query("UPDATE users SET role = $2, password_hash = $3 WHERE id = $1")
                        .bind(id)
                        .bind(role.as_str())
                        .bind(password_hash)
                        .execute(&mut *tx)
                        .await?;
                    // A new password ends whatever the old one (or its sessions' tokens) opened.
                    let ended = end_access!(tx, id, now);
                    (id, "user_update", Some(serde_json::json!({
                        "name": name, "role": old_role,
                        "sessions_ended": ended.sessions, "tokens_revoked": ended.tokens,
                    }).to_string()))
                }
                None => {
                    let id: i64 = sqlx::query(
                        "INSERT INTO users (name, role, created_at_us, password_hash) VALUES ($1, $2, $3, $4) RETURNING id",
                    )
                    .bind(name)
                    .bind(role.as_str())
                    .bind(now)
                    .bind(password_hash)
                    .fetch_one(&mut *tx)
                    .await?
                    .try_get(0)?;
                    (id, "user_add", None)
                }
            };
            audit!(&mut *tx, now, actor, action, None::<&str>, before_state,
                Some(serde_json::json!({ "name": name, "role": role.as_str() }).to_string()))?;
            tx.commit().await?;
            Ok(id)
        })
    }

    /// The user called `name`.
    pub async fn user_by_name(&self, name: &str) -> Result<Option<UserRecord>, StoreError> {
        on_read!(&self.pool, p => {
            let r = sqlx::query(&format!("SELECT {USER_COLS} FROM users u WHERE u.name = $1"))
                .bind(name)
                .fetch_optional(p)
                .await?;
            match r {
                Some(r) => Ok(Some(user_from_row!(r))),
                None => Ok(None),
            }
        })
    }

    /// Every user, by name.
    pub async fn users(&self) -> Result<Vec<UserRecord>, StoreError> {
        on_read!(&self.pool, p => {
            let rows = sqlx::query(&format!("SELECT {USER_COLS} FROM users u ORDER BY u.name"))
                .fetch_all(p)
                .await?;
            rows.iter()
                .map(|r| Ok(user_from_row!(r)))
                .collect()
        })
    }

    /// Disables or enables the user called `name`; `None` if there is none.
    /// Disabling deletes every session and revokes every bearer token of the
    /// user in the same transaction (enabling brings none back). Audited as
    /// `user_disable` or `user_enable`.
    pub async fn set_user_state(
        &self,
        name: &str,
        state: UserState,
        actor: &str,
    ) -> Result<Option<AccessEnded>, StoreError> {
        let now = now_us();
        on_pool!(&self.pool, p => {
            let mut tx = p.begin().await?;
            let Some(r) = sqlx::query("SELECT id, disabled_at_us FROM users WHERE name = $1")
                .bind(name)
                .fetch_optional(&mut *tx)
                .await?
            else {
                return Ok(None);
            };
            let id: i64 = r.try_get(0)?;
            let was: Option<i64> = r.try_get(1)?;
            let (action, ended) = match state {
                UserState::Disabled => {
                    sqlx::query("UPDATE users SET disabled_at_us = $2 WHERE id = $1")
                        .bind(id)
                        .bind(was.unwrap_or(now))
                        .execute(&mut *tx)
                        .await?;
                    ("user_disable", end_access!(tx, id, now))
                }
                UserState::Enabled => {
                    sqlx::query("UPDATE users SET disabled_at_us = NULL WHERE id = $1")
                        .bind(id)
                        .execute(&mut *tx)
                        .await?;
                    ("user_enable", AccessEnded::default())
                }
            };
            audit!(&mut *tx, now, actor, action, None::<&str>,
                Some(serde_json::json!({ "name": name, "disabled": was.is_some() }).to_string()),
                Some(serde_json::json!({
                    "name": name, "disabled": state == UserState::Disabled,
                    "sessions_ended": ended.sessions, "tokens_revoked": ended.tokens,
                }).to_string()))?;
            tx.commit().await?;
            Ok(Some(ended))
        })
    }

    /// Deletes the user called `name` with their sessions, tokens and failed
    /// logins, unless a review decision names them (then disable instead);
    /// audited as `user_delete`.
    pub async fn delete_user(&self, name: &str, actor: &str) -> Result<UserDeleted, StoreError> {
        let now = now_us();
        on_pool!(&self.pool, p => {
            let mut tx = p.begin().await?;
            let Some(r) = sqlx::query("SELECT id, role FROM users WHERE name = $1")
                .bind(name)
                .fetch_optional(&mut *tx)
                .await?
            else {
                return Ok(UserDeleted::NoSuchUser);
            };
            let id: i64 = r.try_get(0)?;
            let role: String = r.try_get(1)?;
            let reviews: i64 = sqlx::query("SELECT COUNT(*) FROM reviews WHERE user_id = $1")
                .bind(id)
                .fetch_one(&mut *tx)
                .await?
                .try_get(0)?;
            if reviews > 0 {
                return Ok(UserDeleted::HasReviews(reviews));
            }
            let ended = end_access!(tx, id, now);
            sqlx::query("DELETE FROM api_tokens WHERE user_id = $1").bind(id).execute(&mut *tx).await?;
            sqlx::query("DELETE FROM login_attempts WHERE name = $1").bind(name).execute(&mut *tx).await?;
            sqlx::query("DELETE FROM users WHERE id = $1").bind(id).execute(&mut *tx).await?;
            audit!(&mut *tx, now, actor, "user_delete", None::<&str>,
                Some(serde_json::json!({ "name": name, "role": role }).to_string()),
                Some(serde_json::json!({
                    "sessions_ended": ended.sessions, "tokens_revoked": ended.tokens,
                }).to_string()))?;
            tx.commit().await?;
            Ok(UserDeleted::Deleted(ended))
        })
    }

    /// Revokes the unrevoked bearer tokens of the user called `name` (only those
    /// labelled `label`, if given); how many, or `None` if there is no such
    /// user. Audited as `token_revoke`.
    pub async fn revoke_user_tokens(
        &self,
        name: &str,
        label: Option<&str>,
        actor: &str,
    ) -> Result<Option<u64>, StoreError> {
        let now = now_us();
        on_pool!(&self.pool, p => {
            let mut tx = p.begin().await?;
            let Some(id) = sqlx::query("SELECT id FROM users WHERE name = $1")
                .bind(name)
                .fetch_optional(&mut *tx)
                .await?
                .map(|r| r.try_get::<i64, _>(0))
                .transpose()?
            else {
                return Ok(None);
            };
            let n = sqlx::query(
                "UPDATE api_tokens SET revoked_at_us = $2 \
                 WHERE user_id = $1 AND revoked_at_us IS NULL AND ($3 IS NULL OR label = $3)",
            )
            .bind(id)
            .bind(now)
            .bind(label)
            .execute(&mut *tx)
            .await?
            .rows_affected();
            audit!(&mut *tx, now, actor, "token_revoke", None::<&str>, None::<String>,
                Some(serde_json::json!({ "user": name, "label": label, "revoked": n }).to_string()))?;
            tx.commit().await?;
            Ok(Some(n))
        })
    }

    /// Revokes the bearer token with this hash (its holder logging out);
    /// false if it was not a live token. Audited as `token_revoke`.
    pub async fn revoke_api_token(
        &self,
        token_hash: &str,
        actor: &str,
    ) -> Result<bool, StoreError> {
        let now = now_us();
        on_pool!(&self.pool, p => {
            let mut tx = p.begin().await?;
            let r = sqlx::query(
                "UPDATE api_tokens SET revoked_at_us = $2 WHERE token_hash = $1 AND revoked_at_us IS NULL \
                 RETURNING id, label",
            )
            .bind(token_hash)
            .bind(now)
            .fetch_optional(&mut *tx)
            .await?;
            let Some(r) = r else {
                return Ok(false);
            };
            let id: i64 = r.try_get(0)?;
            let label: String = r.try_get(1)?;
            audit!(&mut *tx, now, actor, "token_revoke", None::<&str>, None::<String>,
                Some(serde_json::json!({ "user": actor, "label": label, "token_id": id, "logout": true }).to_string()))?;
            tx.commit().await?;
            Ok(true)
        })
    }

    /// Forgets the failed logins of the user called `name`, so a locked-out
    /// user may log in again at once (the per-address count stays); how many
    /// were forgotten, or `None` if there is no such user. Audited as `user_unlock`.
    pub async fn unlock_user(&self, name: &str, actor: &str) -> Result<Option<u64>, StoreError> {
        let now = now_us();
        on_pool!(&self.pool, p => {
            let mut tx = p.begin().await?;
            if sqlx::query("SELECT id FROM users WHERE name = $1")
                .bind(name)
                .fetch_optional(&mut *tx)
                .await?
                .is_none()
            {
                return Ok(None);
            }
            let n = sqlx::query("DELETE FROM login_attempts WHERE name = $1 AND succeeded = $2")
                .bind(name)
                .bind(false)
                .execute(&mut *tx)
                .await?
                .rows_affected();
            audit!(&mut *tx, now, actor, "user_unlock", None::<&str>, None::<String>,
                Some(serde_json::json!({ "name": name, "failures_forgotten": n }).to_string()))?;
            tx.commit().await?;
            Ok(Some(n))
        })
    }

    /// Stores a new session under the SHA-256 of its cookie value.
    pub async fn create_session(
        &self,
        token_hash: &str,
        user_id: i64,
        csrf_token: &str,
        expires_at_us: i64,
    ) -> Result<(), StoreError> {
        let now = now_us();
        on_pool!(&self.pool, p => {
            // Expired sessions go whenever a new one comes.
            sqlx::query("DELETE FROM sessions WHERE expires_at_us < $1").bind(now).execute(p).await?;
            sqlx::query(
                "INSERT INTO sessions (token_hash, user_id, csrf_token, created_at_us, expires_at_us) \
                 VALUES ($1, $2, $3, $4, $5)",
            )
            .bind(token_hash)
            .bind(user_id)
            .bind(csrf_token)
            .bind(now)
            .bind(expires_at_us)
            .execute(p)
            .await?;
            Ok(())
        })
    }

    /// The unexpired session with this token hash, with its user.
    pub async fn session(&self, token_hash: &str) -> Result<Option<SessionRecord>, StoreError> {
        let now = now_us();
        on_read!(&self.pool, p => {
            let r = sqlx::query(&format!(
                "SELECT {USER_COLS}, s.csrf_token, s.expires_at_us FROM sessions s JOIN users u ON u.id = s.user_id \
                 WHERE s.token_hash = $1 AND s.expires_at_us > $2 AND u.disabled_at_us IS NULL"
            ))
            .bind(token_hash)
            .bind(now)
            .fetch_optional(p)
            .await?;
            match r {
                Some(r) => Ok(Some(SessionRecord {
                    user: user_from_row!(r),
                    csrf_token: r.try_get(5)?,
                    expires_at_us: r.try_get(6)?,
                })),
                None => Ok(None),
            }
        })
    }

    /// Ends a session; false if there was none.
    pub async fn delete_session(&self, token_hash: &str) -> Result<bool, StoreError> {
        on_pool!(&self.pool, p => {
            Ok(sqlx::query("DELETE FROM sessions WHERE token_hash = $1")
                .bind(token_hash)
                .execute(p)
                .await?
                .rows_affected() > 0)
        })
    }

    /// Stores a bearer token (by its SHA-256) for `user_id`; audited.
    pub async fn create_api_token(
        &self,
        user: &UserRecord,
        label: &str,
        token_hash: &str,
        actor: &str,
    ) -> Result<i64, StoreError> {
        let now = now_us();
        on_pool!(&self.pool, p => {
            let mut tx = p.begin().await?;
            let id: i64 = sqlx::query(
                "INSERT INTO api_tokens (token_hash, user_id, label, created_at_us) VALUES ($1, $2, $3, $4) RETURNING id",
            )
            .bind(token_hash)
            .bind(user.id)
            .bind(label)
            .bind(now)
            .fetch_one(&mut *tx)
            .await?
            .try_get(0)?;
            audit!(&mut *tx, now, actor, "token_add", None::<&str>, None::<String>,
                Some(serde_json::json!({ "user": user.name, "label": label, "token_id": id }).to_string()))?;
            tx.commit().await?;
            Ok(id)
        })
    }

    /// The user of an unrevoked bearer token.
    pub async fn api_token_user(&self, token_hash: &str) -> Result<Option<UserRecord>, StoreError> {
        on_read!(&self.pool, p => {
            let r = sqlx::query(&format!(
                "SELECT {USER_COLS} FROM api_tokens t JOIN users u ON u.id = t.user_id \
                 WHERE t.token_hash = $1 AND t.revoked_at_us IS NULL AND u.disabled_at_us IS NULL"
            ))
            .bind(token_hash)
            .fetch_optional(p)
            .await?;
            match r {
                Some(r) => Ok(Some(user_from_row!(r))),
                None => Ok(None),
            }
        })
    }

    /// Records one login attempt.
    pub async fn record_login_attempt(
        &self,
        name: &str,
        remote: &str,
        succeeded: bool,
    ) -> Result<(), StoreError> {
        // A week of attempts is plenty for any rate-limit window; older ones go.
        let week_us = 7 * 24 * 3600 * 1_000_000_i64;
        on_pool!(&self.pool, p => {
            sqlx::query("DELETE FROM login_attempts WHERE at_us < $1")
                .bind(now_us() - week_us)
                .execute(p)
                .await?;
            sqlx::query("INSERT INTO login_attempts (at_us, name, remote, succeeded) VALUES ($1, $2, $3, $4)")
                .bind(now_us())
                .bind(name)
                .bind(remote)
                .bind(succeeded)
                .execute(p)
                .await?;
            Ok(())
        })
    }

    /// Failed logins since `since_us` for this name and from this address.
    pub async fn login_failures(
        &self,
        name: &str,
        remote: &str,
        since_us: i64,
    ) -> Result<LoginFailures, StoreError> {
        on_read!(&self.pool, p => {
            let by_name: i64 = sqlx::query(
                "SELECT COUNT(*) FROM login_attempts WHERE name = $1 AND at_us >= $2 AND succeeded = $3",
            )
            .bind(name)
            .bind(since_us)
            .bind(false)
            .fetch_one(p)
            .await?
            .try_get(0)?;
            let by_remote: i64 = sqlx::query(
                "SELECT COUNT(*) FROM login_attempts WHERE remote = $1 AND at_us >= $2 AND succeeded = $3",
            )
            .bind(remote)
            .bind(since_us)
            .bind(false)
            .fetch_one(p)
            .await?
            .try_get(0)?;
            Ok(LoginFailures { by_name, by_remote })
        })
    }

    /// The stored threshold overrides, of one camera or of all, by camera and class.
    pub async fn thresholds(&self, camera: Option<&str>) -> Result<Vec<ThresholdRow>, StoreError> {
        on_read!(&self.pool, p => {
            let rows = sqlx::query(
                "SELECT camera_id, class, value, updated_at_us, updated_by FROM thresholds \
                 WHERE $1 IS NULL OR camera_id = $1 ORDER BY camera_id, class",
            )
            .bind(camera)
            .fetch_all(p)
            .await?;
            rows.iter()
                .map(|r| {
                    Ok(ThresholdRow {
                        camera: r.try_get(0)?,
                        class: r.try_get(1)?,
                        value: r.try_get(2)?,
                        updated_at_us: r.try_get(3)?,
                        updated_by: r.try_get(4)?,
                    })
                })
                .collect()
        })
    }

    /// Sets one camera's threshold for a class, in one transaction with its
    /// audit entry (`threshold`, the value before and after). `before` is
    /// what was in force until now (the stored override, else the caller's
    /// configured value). Range checks are the caller's.
    pub async fn set_threshold(
        &self,
        camera: &str,
        class: &str,
        value: f64,
        before: Option<f64>,
        actor: &str,
    ) -> Result<ThresholdRow, StoreError> {
        if !value.is_finite() {
            return Err(StoreError::Invalid(format!(
                "threshold {value} is not a number"
            )));
        }
        let now = now_us();
        on_pool!(&self.pool, p => {
            let mut tx = p.begin().await?;
            let stored: Option<f64> = sqlx::query("SELECT value FROM thresholds WHERE camera_id = $1 AND class = $2")
                .bind(camera)
                .bind(class)
                .fetch_optional(&mut *tx)
                .await?
                .map(|r| r.try_get(0))
                .transpose()?;
            sqlx::query(
                "INSERT INTO thresholds (camera_id, class, value, updated_at_us, updated_by) VALUES ($1, $2, $3, $4, $5) \
                 ON CONFLICT (camera_id, class) DO UPDATE SET value = $3, updated_at_us = $4, updated_by = $5",
            )
            .bind(camera)
            .bind(class)
            .bind(value)
            .bind(now)
            .bind(actor)
            .execute(&mut *tx)
            .await?;
            let before = stored.or(before);
            audit!(&mut *tx, now, actor, "threshold", None::<&str>,
                Some(serde_json::json!({ "camera": camera, "class": class, "value": before }).to_string()),
                Some(serde_json::json!({ "camera": camera, "class": class, "value": value }).to_string()))?;
            tx.commit().await?;
            Ok(ThresholdRow {
                camera: camera.to_owned(),
                class: class.to_owned(),
                value,
                updated_at_us: now,
                updated_by: actor.to_owned(),
            })
        })
    }
}
