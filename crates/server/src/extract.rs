//! The typed edges of a request: JSON bodies, queries and paths that refuse
//! in the API's own error shape ([`ApiError`], never axum's plain text), the
//! authenticated caller, the role a handler needs ([`Reviewer`], [`Ops`],
//! [`Admin`]) and the path parameters every camera and violation route
//! shares, checked once here.
//!
//! A handler lists what it needs in the order it must be checked: the role
//! first, then the path, then the query or body (axum runs extractors left to
//! right and the body last), so a caller without the role hears 403 before
//! anything about its request.

use axum::extract::{FromRequest, FromRequestParts, MatchedPath, Path, Query, Request};
use axum::http::request::Parts;
use roadwarden_rules::CameraConfig;
use roadwarden_store::Role;
use roadwarden_types::ClassRole;
use serde::Deserialize;
use serde::de::DeserializeOwned;

use crate::auth::{Principal, authenticate};
use crate::{ApiError, AppState};

/// A JSON request body; a body that is not JSON, does not fit `T` or is too
/// large answers [`ApiError`] (400, 415, 422 or 413 as axum decides the status).
#[derive(Debug, Clone, Copy, Default)]
pub(crate) struct ApiJson<T>(pub(crate) T);

impl<S, T> FromRequest<S> for ApiJson<T>
where
    S: Send + Sync,
    T: DeserializeOwned,
{
    type Rejection = ApiError;

    async fn from_request(req: Request, state: &S) -> Result<Self, ApiError> {
        let axum::Json(v) = axum::Json::<T>::from_request(req, state).await?;
        Ok(ApiJson(v))
    }
}

/// A query string; one that does not fit `T` is a 400 [`ApiError`].
#[derive(Debug, Clone, Copy, Default)]
pub(crate) struct ApiQuery<T>(pub(crate) T);

impl<S, T> FromRequestParts<S> for ApiQuery<T>
where
    S: Send + Sync,
    T: DeserializeOwned,
{
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, ApiError> {
        let Query(v) = Query::<T>::from_request_parts(parts, state).await?;
        Ok(ApiQuery(v))
    }
}

/// Path parameters; ones that do not fit `T` are a 400 [`ApiError`].
#[derive(Debug, Clone, Copy, Default)]
pub(crate) struct ApiPath<T>(pub(crate) T);

impl<S, T> FromRequestParts<S> for ApiPath<T>
where
    S: Send + Sync,
    T: DeserializeOwned + Send,
{
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, ApiError> {
        let Path(v) = Path::<T>::from_request_parts(parts, state).await?;
        Ok(ApiPath(v))
    }
}

/// The caller: the one the authentication layer found, else authenticated
/// here (bearer token or session cookie with its CSRF token); 401 without
/// valid credentials.
impl FromRequestParts<AppState> for Principal {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, ApiError> {
        if let Some(p) = parts.extensions.get::<Principal>() {
            return Ok(p.clone());
        }
        let p = authenticate(state, &parts.method, &parts.headers).await?;
        parts.extensions.insert(p.clone());
        Ok(p)
    }
}

/// The authenticated caller if it has one of `roles`, else 403 naming the
/// route, the roles it needs and the caller's.
async fn with_role(
    parts: &mut Parts,
    state: &AppState,
    roles: &[Role],
) -> Result<Principal, ApiError> {
    let p = Principal::from_request_parts(parts, state).await?;
    if roles.contains(&p.user.role) {
        return Ok(p);
    }
    let route = parts
        .extensions
        .get::<MatchedPath>()
        .map(|m| m.as_str())
        .unwrap_or_else(|| parts.uri.path());
    let names: Vec<&str> = roles.iter().map(|r| r.as_str()).collect();
    Err(ApiError::forbidden(format!(
        "{} {route} needs the role {}; {} is {}",
        parts.method,
        names.join(" or "),
        p.user.name,
        p.user.role
    )))
}

macro_rules! role_extractor {
    ($(#[$doc:meta])* $name:ident: $($role:ident),+) => {
        $(#[$doc])*
        #[derive(Debug, Clone)]
        pub(crate) struct $name(pub(crate) Principal);

        impl FromRequestParts<AppState> for $name {
            type Rejection = ApiError;

            async fn from_request_parts(
                parts: &mut Parts,
                state: &AppState,
            ) -> Result<Self, ApiError> {
                with_role(parts, state, &[$(Role::$role),+]).await.map($name)
            }
        }
    };
}

role_extractor!(
    /// A caller who may decide violations: a reviewer or an admin.
    Reviewer: Reviewer, Admin
);
role_extractor!(
    /// A caller who may tune thresholds and report signals: ops or an admin.
    Ops: Ops, Admin
);
role_extractor!(
    /// An admin: users, the audit log, reopening decisions, reloading the site.
    Admin: Admin
);

#[derive(Deserialize)]
struct CameraParam {
    camera: String,
}

/// The `{camera}` of the path, a camera of the site in force (404 otherwise).
#[derive(Debug, Clone)]
pub(crate) struct KnownCamera {
    /// The camera id as the path gave it.
    pub(crate) id: String,
    pub(crate) config: CameraConfig,
}

impl FromRequestParts<AppState> for KnownCamera {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, ApiError> {
        let ApiPath(CameraParam { camera }) = ApiPath::from_request_parts(parts, state).await?;
        let config = state.0.site.get().camera(&camera).cloned().ok_or_else(|| {
            ApiError::not_found(format!(
                "no camera `{}` in the site config",
                camera.escape_debug()
            ))
        })?;
        Ok(KnownCamera { id: camera, config })
    }
}

#[derive(Deserialize)]
struct ClassParam {
    class: String,
}

/// The `{class}` of the threshold paths: a class role that has a threshold
/// (400 for `other` or an unknown name).
#[derive(Debug, Clone, Copy)]
pub(crate) struct ThresholdClass(pub(crate) ClassRole);

impl<S: Send + Sync> FromRequestParts<S> for ThresholdClass {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, ApiError> {
        let ApiPath(ClassParam { class }) = ApiPath::from_request_parts(parts, state).await?;
        ClassRole::ALL
            .into_iter()
            .find(|r| r.as_str() == class && *r != ClassRole::Other)
            .map(ThresholdClass)
            .ok_or_else(|| {
                let names: Vec<&str> = ClassRole::ALL
                    .iter()
                    .filter(|r| **r != ClassRole::Other)
                    .map(|r| r.as_str())
                    .collect();
                ApiError::bad_request(format!(
                    "unknown class `{}` (expected one of {})",
                    class.escape_debug(),
                    names.join(", ")
                ))
            })
    }
}

#[derive(Deserialize)]
struct IdParam {
    id: String,
}

/// The `{id}` of the violation paths: a UUID (400 otherwise), as the store
/// keeps it (lower-case, hyphenated), whatever case or form the path used.
#[derive(Debug, Clone)]
pub(crate) struct ViolationId(pub(crate) String);

impl<S: Send + Sync> FromRequestParts<S> for ViolationId {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, ApiError> {
        let ApiPath(IdParam { id }) = ApiPath::from_request_parts(parts, state).await?;
        let id = uuid::Uuid::parse_str(&id)
            .map_err(|_| ApiError::bad_request("a violation id is a UUID"))?;
        Ok(ViolationId(id.hyphenated().to_string()))
    }
}
