//! One JSON error shape for every refusal: `{"error": code, "message": text}`,
//! and the one place that says how a store error answers over HTTP.

use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use roadwarden_store::StoreError;

/// The code of a 503 while the store's database cannot be reached.
pub(crate) const STORE_UNAVAILABLE: &str = "store_unavailable";

/// The `Retry-After` of a [`STORE_UNAVAILABLE`] answer, in seconds.
const STORE_RETRY_AFTER_S: u64 = 5;

/// An HTTP error with a stable machine-readable code.
#[derive(Debug, Clone)]
pub struct ApiError {
    pub status: StatusCode,
    pub code: &'static str,
    pub message: String,
    /// Seconds, for 429 and 503 answers.
    pub retry_after: Option<u64>,
}

impl ApiError {
    pub fn new(status: StatusCode, code: &'static str, message: impl Into<String>) -> ApiError {
        ApiError {
            status,
            code,
            message: message.into(),
            retry_after: None,
        }
    }

    pub fn bad_request(message: impl Into<String>) -> ApiError {
        ApiError::new(StatusCode::BAD_REQUEST, "bad_request", message)
    }

    pub fn unauthorized() -> ApiError {
        ApiError::new(
            StatusCode::UNAUTHORIZED,
            "unauthorized",
            "log in (POST /api/login) or send a bearer token",
        )
    }

    pub fn forbidden(message: impl Into<String>) -> ApiError {
        ApiError::new(StatusCode::FORBIDDEN, "forbidden", message)
    }

    pub fn not_found(message: impl Into<String>) -> ApiError {
        ApiError::new(StatusCode::NOT_FOUND, "not_found", message)
    }

    pub fn conflict(message: impl Into<String>) -> ApiError {
        ApiError::new(StatusCode::CONFLICT, "conflict", message)
    }

    /// 503 `store_unavailable`: the store's database cannot be reached right now (an outage, not a
    /// fault of the request); the client may try again after `Retry-After`.
    pub fn store_unavailable(e: &StoreError) -> ApiError {
        tracing::warn!("the store is unreachable: {e}");
        ApiError {
            retry_after: Some(STORE_RETRY_AFTER_S),
            ..ApiError::new(
                StatusCode::SERVICE_UNAVAILABLE,
                STORE_UNAVAILABLE,
                "the violation store (the database) cannot be reached right now; the service keeps \
                 retrying it and answers again as soon as it is back: try again in a few seconds",
            )
        }
    }

    pub fn internal(context: &str, e: impl std::fmt::Display) -> ApiError {
        tracing::error!("{context}: {e}");
        ApiError::new(
            StatusCode::INTERNAL_SERVER_ERROR,
            "internal",
            format!("{context} failed; the server log has the details"),
        )
    }
}

/// The body of every refusal.
#[derive(Debug, serde::Serialize, utoipa::ToSchema)]
pub(crate) struct ErrorBody {
    /// A stable machine-readable code: `bad_request`, `unauthorized`, `forbidden`, `csrf`,
    /// `not_found`, `conflict`, `out_of_range`, `too_large`, `rate_limited`, `store_unavailable`,
    /// `internal`, ...
    #[schema(example = "bad_request")]
    pub(crate) error: &'static str,
    /// What went wrong and what to do, for a person.
    pub(crate) message: String,
}

/// How every store error answers over HTTP: the only mapping of [`StoreError`] in the crate
/// (handlers use `?`). An outage (the database cannot be reached) is a 503 that says so, never a 500.
impl From<StoreError> for ApiError {
    fn from(e: StoreError) -> ApiError {
        match e {
            e if e.is_unreachable() => ApiError::store_unavailable(&e),
            StoreError::NotFound(id) => {
                ApiError::not_found(format!("violation {id} is not in the store"))
            }
            StoreError::Invalid(m) => ApiError::bad_request(m),
            e => ApiError::internal("the store", e),
        }
    }
}

impl From<axum::extract::rejection::JsonRejection> for ApiError {
    fn from(r: axum::extract::rejection::JsonRejection) -> ApiError {
        let status = r.status();
        let code = if status == StatusCode::PAYLOAD_TOO_LARGE {
            "too_large"
        } else {
            "bad_request"
        };
        ApiError::new(status, code, r.body_text())
    }
}

impl From<axum::extract::rejection::QueryRejection> for ApiError {
    fn from(r: axum::extract::rejection::QueryRejection) -> ApiError {
        ApiError::bad_request(r.body_text())
    }
}

impl From<axum::extract::rejection::PathRejection> for ApiError {
    fn from(r: axum::extract::rejection::PathRejection) -> ApiError {
        ApiError::bad_request(r.body_text())
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let body = ErrorBody {
            error: self.code,
            message: self.message,
        };
        let mut resp = (self.status, axum::Json(body)).into_response();
        if let Some(s) = self.retry_after {
            resp.headers_mut()
                .insert(header::RETRY_AFTER, HeaderValue::from(s));
        }
        if self.status == StatusCode::PAYLOAD_TOO_LARGE {
            // The rest of the body was never read, so this connection cannot carry another
            // request: say so, or a keep-alive client sends its next request into a closed socket.
            resp.headers_mut()
                .insert(header::CONNECTION, HeaderValue::from_static("close"));
        }
        resp
    }
}
