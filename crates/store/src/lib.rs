//! The violation store: one schema, migrated on SQLite (the embedded default,
//! a file in the data folder) and on PostgreSQL, with runtime-checked queries
//! that run unchanged on both; the review queue with keyset pagination;
//! reviews, users, the audit log and the hash-chained review log; the service's accounts (password
//! hashes, sessions, bearer tokens, login attempts), threshold overrides and
//! filtered violation lists; retention that leaves tombstones; the
//! durable local spool used while the database is unreachable; the
//! startup reconcile of the data folder against the rows; and the team work over the queue
//! (claims, undo, the decision history, per-user time zones, statistics: `team.rs`).
//!
//! Owns: every SQL statement in roadwarden, the data folder's layout, the spool
//! file format. Must not: draw or encode images, decide what a violation is,
//! or choose how a chain record is hashed (the evidence crate hands that in as
//! a [`ChainHasher`]; the review log's entry hash is the one fixed here, as it is taken inside the
//! writing transaction); it never deletes a file that no audited purge names.

mod data_dir;
#[macro_use]
mod review_append;
#[macro_use]
mod db;
mod accounts;
mod leases;
mod listing;
mod model;
pub mod pgadmin;
pub mod preview;
mod review_log;
mod spool;
mod team;

pub use accounts::{
    AccessEnded, LoginFailures, Role, SessionRecord, ThresholdRow, UserDeleted, UserRecord,
    UserState,
};
pub use data_dir::{DataDir, ReconcileReport, sync_dir};
pub use db::{CameraChain, PurgeReport, ReplayReport, Store};
pub use leases::{Lease, NodeId, ViolationEvent};
pub use listing::{
    DecideOutcome, EvidenceRow, ExportDetail, PlateChange, ReviewRow, ViolationFilter,
};
pub use model::{
    AuditEntry, ChainFields, ChainHasher, Decision, EvidenceItem, EvidenceKind, GENESIS_HASH,
    InsertOutcome, InvalidPlate, NewViolation, Plate, QueueCursor, QueueFilter, QueueItem,
    QueuePage, Status, StoredEvidence, StoredRecord,
};
pub use review_log::{ReviewLogEntry, ReviewLogFields, ReviewLogHead, review_entry_hash};
pub use spool::Spool;
pub use team::{
    CameraDay, Claim, ClaimOutcome, HistoryCursor, HistoryPage, HistoryRow, QueueStats,
    RejectionTally, ReviewerTally, UndoOutcome,
};

use thiserror::Error;

#[derive(Debug, Error)]
pub enum StoreError {
    /// Could not reach or open the database. The URL is always redacted.
    #[error("cannot connect to database {url}: {source}")]
    Connect {
        url: String,
        #[source]
        source: sqlx::Error,
    },
    /// The database did not answer a connection attempt in time.
    #[error("cannot connect to database {url}: timed out after {} s", after.as_secs())]
    ConnectTimeout {
        url: String,
        after: std::time::Duration,
    },
    #[error("database migration failed: {0}")]
    Migrate(#[from] sqlx::migrate::MigrateError),
    // sqlx errors never carry the connection URL, so nothing to redact here.
    #[error("database error: {0}")]
    Db(#[from] sqlx::Error),
    #[error("{}: {source}", path.display())]
    Io {
        path: std::path::PathBuf,
        #[source]
        source: std::io::Error,
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

impl StoreError {
    pub(crate) fn io(path: &std::path::Path, source: std::io::Error) -> Self {
        StoreError::Io {
            path: path.to_path_buf(),
            source,
        }
    }

    /// True when the database could not be reached (refused or dropped connection, timeout, a server shutting
    /// down): the caller should keep the record (spool it) and try again later. False for an error in the
    /// request or the data itself (a constraint, a bad row), which retrying cannot mend.
    pub fn is_unreachable(&self) -> bool {
        match self {
            StoreError::Connect { .. } | StoreError::ConnectTimeout { .. } => true,
            StoreError::Db(e) => sqlx_unreachable(e),
            _ => false,
        }
    }
}

/// Whether an sqlx error means "the database is not there" rather than "the statement or data is wrong".
fn sqlx_unreachable(e: &sqlx::Error) -> bool {
    match e {
        sqlx::Error::Io(_)
        | sqlx::Error::Tls(_)
        | sqlx::Error::PoolTimedOut
        | sqlx::Error::PoolClosed
        | sqlx::Error::WorkerCrashed
        | sqlx::Error::Protocol(_) => true,
        sqlx::Error::Database(db) => db.code().is_some_and(|code| {
            // PostgreSQL: class 08 (connection exception), 57P01-57P03 (admin/crash shutdown,
            // cannot connect now), 53300 (too many connections). SQLite: 10 (disk I/O error),
            // 14 (cannot open the file).
            code.starts_with("08")
                || matches!(code.as_ref(), "57P01" | "57P02" | "57P03" | "53300")
                || matches!(code.as_ref(), "10" | "14")
        }),
        _ => false,
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
    fn outages_are_told_apart_from_bad_requests() {
        let io = std::io::Error::new(std::io::ErrorKind::ConnectionReset, "reset by peer");
        assert!(StoreError::Db(sqlx::Error::Io(io)).is_unreachable());
        assert!(StoreError::Db(sqlx::Error::PoolTimedOut).is_unreachable());
        assert!(StoreError::Db(sqlx::Error::PoolClosed).is_unreachable());
        assert!(!StoreError::Db(sqlx::Error::RowNotFound).is_unreachable());
        assert!(!StoreError::Db(sqlx::Error::ColumnNotFound("seq".into())).is_unreachable());
        assert!(!StoreError::Invalid("bad row".into()).is_unreachable());
        assert!(!StoreError::NotFound("x".into()).is_unreachable());
    }

    #[tokio::test]
    async fn a_refused_connection_is_an_outage_with_its_source() {
        // Port 9 (discard) on loopback: nothing listens, the connection is refused at once.
        let e = Store::connect("postgres://roadwarden:secret@127.0.0.1:9/test")
            .await
            .err()
            .expect("nothing listens on 127.0.0.1:9");
        assert!(e.is_unreachable(), "{e}");
        assert!(
            std::error::Error::source(&e).is_some(),
            "the sqlx error is kept"
        );
        assert!(!e.to_string().contains("secret"), "{e}");
    }

    #[tokio::test]
    async fn a_statement_the_database_refuses_is_not_an_outage() {
        let dir = tempfile::tempdir().expect("temp dir");
        let store = Store::connect(&dir.path().join("s.db").to_string_lossy())
            .await
            .expect("SQLite opens");
        let crate::db::Pool::Sqlite { write: pool, .. } = &store.pool else {
            panic!("a path opens SQLite")
        };
        let e: StoreError = sqlx::query("INSERT INTO no_such_table VALUES (1)")
            .execute(pool)
            .await
            .expect_err("no such table")
            .into();
        assert!(!e.is_unreachable(), "{e}");
        assert!(std::error::Error::source(&e).is_some());
    }

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
