//! The violation store: one schema, migrated on SQLite (the embedded default,
//! a file in the data folder) and on PostgreSQL, with runtime-checked queries
//! that run unchanged on both; the review queue with keyset pagination;
//! reviews, users and the audit log; the service's accounts (password
//! hashes, sessions, bearer tokens, login attempts), threshold overrides and
//! filtered violation lists; retention that leaves tombstones; the
//! durable local spool used while the database is unreachable; and the
//! startup reconcile of the data folder against the rows.
//!
//! Owns: every SQL statement in roadwarden, the data folder's layout, the spool
//! file format. Must not: draw or encode images, decide what a violation is,
//! or choose how a chain record is hashed (the evidence crate hands that in as
//! a [`ChainHasher`]); it never deletes a file that no audited purge names.

mod data_dir;
#[macro_use]
mod db;
mod accounts;
mod listing;
mod model;
pub mod pgadmin;
pub mod preview;
mod spool;

pub use accounts::{LoginFailures, Role, SessionRecord, ThresholdRow, UserRecord};
pub use data_dir::{DataDir, ReconcileReport, sync_dir};
pub use db::{CameraChain, PurgeReport, ReplayReport, Store};
pub use listing::{DecideOutcome, EvidenceRow, ExportDetail, ReviewRow, ViolationFilter};
pub use model::{
    AuditEntry, ChainFields, ChainHasher, Decision, EvidenceItem, EvidenceKind, GENESIS_HASH,
    InsertOutcome, NewViolation, QueueCursor, QueueFilter, QueueItem, QueuePage, Status,
    StoredEvidence, StoredRecord,
};
pub use spool::Spool;

use thiserror::Error;

#[derive(Debug, Error)]
pub enum StoreError {
    /// Could not reach or open the database. The URL is always redacted.
    #[error("cannot connect to database {url}: {reason}")]
    Connect { url: String, reason: String },
    #[error("database migration failed: {0}")]
    Migrate(String),
    #[error("database error: {0}")]
    Db(String),
    #[error("{}: {reason}", path.display())]
    Io {
        path: std::path::PathBuf,
        reason: String,
    },
    #[error("spool {}: record {line} is corrupt ({reason}); the spool is left untouched", path.display())]
    SpoolCorrupt {
        path: std::path::PathBuf,
        line: usize,
        reason: String,
    },
    #[error("invalid data: {0}")]
    Invalid(String),
    #[error("violation {0} is not in the store")]
    NotFound(String),
}

impl From<sqlx::Error> for StoreError {
    fn from(e: sqlx::Error) -> Self {
        // sqlx errors never carry the connection URL, so nothing to redact here.
        StoreError::Db(e.to_string())
    }
}

impl StoreError {
    pub(crate) fn io(path: &std::path::Path, e: impl std::fmt::Display) -> Self {
        StoreError::Io {
            path: path.to_path_buf(),
            reason: e.to_string(),
        }
    }
}

/// A database URL with its password replaced by `***`, safe for logs and errors.
pub fn redact_url(url: &str) -> String {
    let Some(scheme_end) = url.find("://") else {
        return url.to_owned();
    };
    let rest = &url[scheme_end + 3..];
    let authority_end = rest.find(['/', '?']).unwrap_or(rest.len());
    let authority = &rest[..authority_end];
    let Some(at) = authority.rfind('@') else {
        return url.to_owned();
    };
    let userinfo = &authority[..at];
    let redacted_userinfo = match userinfo.find(':') {
        Some(colon) => format!("{}:***", &userinfo[..colon]),
        None => userinfo.to_owned(),
    };
    format!(
        "{}://{}{}{}",
        &url[..scheme_end],
        redacted_userinfo,
        &authority[at..],
        &rest[authority_end..]
    )
}

/// Microseconds since the Unix epoch, the store's unit of time.
pub fn to_micros(t: chrono::DateTime<chrono::Utc>) -> i64 {
    t.timestamp_micros()
}

/// The inverse of [`to_micros`].
pub fn from_micros(us: i64) -> chrono::DateTime<chrono::Utc> {
    chrono::DateTime::from_timestamp_micros(us).unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn passwords_never_survive_redaction() {
        assert_eq!(
            redact_url("postgres://alice:s3cret@db.example:5432/rw?sslmode=require"),
            "postgres://alice:***@db.example:5432/rw?sslmode=require"
        );
        assert_eq!(
            redact_url("postgres://postgres@127.0.0.1/test"),
            "postgres://postgres@127.0.0.1/test"
        );
        assert_eq!(redact_url("sqlite:///tmp/x.db"), "sqlite:///tmp/x.db");
        assert_eq!(
            redact_url("postgres://u:p@ss@h/db"),
            "postgres://u:***@h/db"
        );
    }
}
