//! The review log: a per-camera hash chain of every review decision and
//! status change (a decision, an admin's reopen), written in the same
//! transaction as the change itself. Entry `n` of a camera hashes its
//! content (the violation, that violation's chain record hash as its anchor,
//! who, what, the status after, reason, note, when) and entry `n-1`'s hash,
//! so an edited, deleted or reordered decision breaks the log, and an
//! evidence package can carry the entries that prove its violation's status.
//!
//! The entry hash is computed here, not handed in as a [`crate::ChainHasher`]
//! is: it must be taken inside the writing transaction, and its canonical
//! form is fixed by [`review_entry_hash`] for every reader (the evidence
//! crate's `verify` and package check call the same function).

use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use sqlx::Row;

use crate::db::Pool;
use crate::model::Status;
use crate::{Store, StoreError};

const TAG: &[u8] = b"roadwarden-review-log-v1\n";

/// What one review-log entry records (everything its hash covers).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ReviewLogFields {
    pub camera: String,
    /// Position in the camera's review log, from 1.
    pub seq: i64,
    /// The previous entry's hash ([`crate::GENESIS_HASH`] for the first).
    pub prev_hash: String,
    pub violation: String,
    /// The violation's chain record hash: the anchor to the evidence chain.
    pub record_hash: String,
    pub actor: String,
    /// `review` (a decision) or `reopen` (back to pending).
    pub action: String,
    /// The violation's status after this entry.
    pub status: Status,
    pub reason: String,
    pub note: String,
    pub at_us: i64,
}

/// One review-log entry with its hash.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ReviewLogEntry {
    #[serde(flatten)]
    pub fields: ReviewLogFields,
    pub entry_hash: String,
}

/// The hash of one review-log entry (lower-case hex): SHA-256 over a version
/// tag and the canonical JSON of its fields.
pub fn review_entry_hash(f: &ReviewLogFields) -> String {
    let mut h = Sha256::new();
    h.update(TAG);
    // A plain struct of strings and integers always serializes.
    h.update(serde_json::to_vec(f).unwrap_or_default());
    hex::encode(h.finalize())
}

/// A camera's review-log head: (camera, last seq, last hash).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ReviewLogHead {
    pub camera: String,
    pub seq: i64,
    pub head: String,
}

const ENTRY_COLS: &str = "camera_id, seq, prev_hash, violation_id, record_hash, actor, action, status, reason, \
                          note, at_us, entry_hash";

fn entry_from_row<R>(r: &R) -> Result<ReviewLogEntry, StoreError>
where
    R: Row,
    usize: sqlx::ColumnIndex<R>,
    for<'a> String: sqlx::Decode<'a, R::Database> + sqlx::Type<R::Database>,
    for<'a> i64: sqlx::Decode<'a, R::Database> + sqlx::Type<R::Database>,
{
    Ok(ReviewLogEntry {
        fields: ReviewLogFields {
            camera: r.try_get(0)?,
            seq: r.try_get(1)?,
            prev_hash: r.try_get(2)?,
            violation: r.try_get(3)?,
            record_hash: r.try_get(4)?,
            actor: r.try_get(5)?,
            action: r.try_get(6)?,
            status: Status::parse(&r.try_get::<String, _>(7)?)?,
            reason: r.try_get(8)?,
            note: r.try_get(9)?,
            at_us: r.try_get(10)?,
        },
        entry_hash: r.try_get(11)?,
    })
}

impl Store {
    /// Every camera's review-log head (cameras with no entry say seq 0).
    pub async fn review_log_heads(&self) -> Result<Vec<ReviewLogHead>, StoreError> {
        on_pool!(&self.pool, p => {
            let rows = sqlx::query("SELECT id, review_seq, review_head FROM cameras ORDER BY id").fetch_all(p).await?;
            rows.iter()
                .map(|r| Ok(ReviewLogHead { camera: r.try_get(0)?, seq: r.try_get(1)?, head: r.try_get(2)? }))
                .collect()
        })
    }

    /// Up to `limit` review-log entries of `camera` with seq > `after_seq`, in seq order.
    pub async fn review_log_page(
        &self,
        camera: &str,
        after_seq: i64,
        limit: i64,
    ) -> Result<Vec<ReviewLogEntry>, StoreError> {
        on_pool!(&self.pool, p => {
            let rows = sqlx::query(&format!(
                "SELECT {ENTRY_COLS} FROM review_log WHERE camera_id = $1 AND seq > $2 ORDER BY seq LIMIT $3"
            ))
            .bind(camera)
            .bind(after_seq)
            .bind(limit)
            .fetch_all(p)
            .await?;
            rows.iter().map(entry_from_row).collect()
        })
    }

    /// The review-log entries of one violation, oldest first.
    pub async fn review_log_of(&self, id: &str) -> Result<Vec<ReviewLogEntry>, StoreError> {
        on_pool!(&self.pool, p => {
            let rows = sqlx::query(&format!(
                "SELECT {ENTRY_COLS} FROM review_log WHERE violation_id = $1 ORDER BY seq"
            ))
            .bind(id)
            .fetch_all(p)
            .await?;
            rows.iter().map(entry_from_row).collect()
        })
    }
}
