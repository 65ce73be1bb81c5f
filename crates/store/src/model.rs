//! The store's records, independent of the SQL dialect.

use roadwarden_types::{FrameRole, Violation};
use serde::{Deserialize, Serialize};

use crate::StoreError;

/// The `prev_hash` of a camera's first record.
pub const GENESIS_HASH: &str = "0000000000000000000000000000000000000000000000000000000000000000";

/// Computes a chain record's hash from its canonical fields (the evidence
/// crate's `chain::record_hash`).
pub type ChainHasher = fn(&ChainFields) -> String;

/// A violation's review status.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Status {
    Pending,
    Confirmed,
    Rejected,
}

impl Status {
    pub fn as_str(self) -> &'static str {
        match self {
            Status::Pending => "pending",
            Status::Confirmed => "confirmed",
            Status::Rejected => "rejected",
        }
    }

    pub fn parse(s: &str) -> Result<Status, StoreError> {
        match s {
            "pending" => Ok(Status::Pending),
            "confirmed" => Ok(Status::Confirmed),
            "rejected" => Ok(Status::Rejected),
            _ => Err(StoreError::Invalid(format!("unknown status `{s}`"))),
        }
    }
}

/// A reviewer's decision.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Decision {
    Confirm,
    Reject,
}

impl Decision {
    pub fn status(self) -> Status {
        match self {
            Decision::Confirm => Status::Confirmed,
            Decision::Reject => Status::Rejected,
        }
    }
}

/// What an evidence file is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum EvidenceKind {
    /// A frame with the burned-in overlay.
    Photo,
    /// The same frame unmarked.
    Raw,
    /// The video clip.
    Clip,
    /// A crop of the offender.
    Crop,
}

impl EvidenceKind {
    pub fn as_str(self) -> &'static str {
        match self {
            EvidenceKind::Photo => "photo",
            EvidenceKind::Raw => "raw",
            EvidenceKind::Clip => "clip",
            EvidenceKind::Crop => "crop",
        }
    }

    pub fn parse(s: &str) -> Result<EvidenceKind, StoreError> {
        match s {
            "photo" => Ok(EvidenceKind::Photo),
            "raw" => Ok(EvidenceKind::Raw),
            "clip" => Ok(EvidenceKind::Clip),
            "crop" => Ok(EvidenceKind::Crop),
            _ => Err(StoreError::Invalid(format!("unknown evidence kind `{s}`"))),
        }
    }
}

pub(crate) fn role_str(r: FrameRole) -> &'static str {
    match r {
        FrameRole::Key => "key",
        FrameRole::Before => "before",
        FrameRole::At => "at",
        FrameRole::After => "after",
    }
}

/// One evidence file as the chain covers it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct EvidenceItem {
    pub kind: EvidenceKind,
    /// The frame role for photos, raw frames and crops (`key`, `before`, `at`, `after`).
    pub role: Option<String>,
    /// Relative to the data folder, `/`-separated.
    pub path: String,
    /// Lower-case hex SHA-256 of the file.
    pub sha256: String,
    pub size: u64,
}

impl EvidenceItem {
    pub fn new(
        kind: EvidenceKind,
        role: Option<FrameRole>,
        path: String,
        sha256: String,
        size: u64,
    ) -> Self {
        EvidenceItem {
            kind,
            role: role.map(|r| role_str(r).to_owned()),
            path,
            sha256,
            size,
        }
    }
}

/// A violation with its (already durable) evidence files: what the store
/// inserts and the spool keeps.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct NewViolation {
    pub violation: Violation,
    pub evidence: Vec<EvidenceItem>,
}

/// What one chain record's hash covers, in the order it is serialized.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ChainFields {
    pub camera: String,
    pub seq: i64,
    pub prev_hash: String,
    pub id: String,
    pub kind: String,
    pub track_id: i64,
    pub occurred_at_us: i64,
    pub confidence: f64,
    /// Canonical JSON of the thresholds in force (keys sorted).
    pub thresholds: String,
    /// Canonical JSON of the evidence frames (boxes, times) and signal changes.
    pub detail: String,
    /// Sorted by path.
    pub evidence: Vec<EvidenceItem>,
}

#[derive(Serialize)]
struct Detail<'a> {
    frames: &'a [roadwarden_types::EvidenceFrame],
    signal: &'a [roadwarden_types::SignalChange],
}

impl NewViolation {
    /// The chain fields for this violation at position `seq` after `prev_hash`.
    pub fn chain_fields(&self, seq: i64, prev_hash: &str) -> Result<ChainFields, StoreError> {
        let v = &self.violation;
        let track_id = i64::try_from(v.track_id).map_err(|_| {
            StoreError::Invalid(format!("track id {} does not fit the store", v.track_id))
        })?;
        let thresholds =
            serde_json::to_string(&v.thresholds).map_err(|e| StoreError::Invalid(e.to_string()))?;
        let detail = serde_json::to_string(&Detail {
            frames: &v.frames,
            signal: &v.signal,
        })
        .map_err(|e| StoreError::Invalid(e.to_string()))?;
        let mut evidence = self.evidence.clone();
        evidence.sort_by(|a, b| a.path.cmp(&b.path));
        for w in evidence.windows(2) {
            if w[0].path == w[1].path {
                return Err(StoreError::Invalid(format!(
                    "evidence path {} listed twice",
                    w[0].path
                )));
            }
        }
        Ok(ChainFields {
            camera: v.camera.as_str().to_owned(),
            seq,
            prev_hash: prev_hash.to_owned(),
            id: v.id.to_string(),
            kind: v.kind.as_str().to_owned(),
            track_id,
            occurred_at_us: crate::to_micros(v.occurred_at),
            confidence: v.confidence as f64,
            thresholds,
            detail,
            evidence,
        })
    }
}

/// What an insert did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum InsertOutcome {
    /// Committed as record `seq` of its camera's chain.
    Inserted { seq: i64, record_hash: String },
    /// A violation with this id is already in the store; nothing was written.
    AlreadyPresent,
}

/// One evidence row as stored.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StoredEvidence {
    pub item: EvidenceItem,
    /// The file was deleted by an audited purge; the row stays for the chain.
    pub purged: bool,
}

/// One violation row as stored, with its evidence.
#[derive(Debug, Clone, PartialEq)]
pub struct StoredRecord {
    /// The fields as stored; `fields.evidence` lists every evidence row, purged or not.
    pub fields: ChainFields,
    pub record_hash: String,
    pub status: Status,
    pub tombstoned: bool,
    /// The node whose data folder holds its evidence files (`None`: recorded before nodes were named).
    pub node: Option<String>,
    pub evidence: Vec<StoredEvidence>,
}

/// Which violations a review queue shows.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct QueueFilter {
    pub status: Status,
    pub camera: Option<String>,
}

/// Where the next page starts: the last item's time and id.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct QueueCursor {
    pub occurred_at_us: i64,
    pub id: String,
}

impl QueueCursor {
    /// An opaque token for clients (`<micros>_<uuid>`).
    pub fn token(&self) -> String {
        format!("{}_{}", self.occurred_at_us, self.id)
    }

    pub fn from_token(t: &str) -> Result<QueueCursor, StoreError> {
        let bad = || StoreError::Invalid(format!("not a queue cursor: `{t}`"));
        let (us, id) = t.split_once('_').ok_or_else(bad)?;
        let occurred_at_us = us.parse().map_err(|_| bad())?;
        uuid::Uuid::parse_str(id).map_err(|_| bad())?;
        Ok(QueueCursor {
            occurred_at_us,
            id: id.to_owned(),
        })
    }
}

/// One entry of the audit log: who did what, to which violation, and the state before and after
/// (JSON text, as the action wrote it).
#[derive(Debug, Clone, PartialEq)]
pub struct AuditEntry {
    /// Increasing in the order entries were written: the audit page's cursor.
    pub id: i64,
    pub at_us: i64,
    pub actor: String,
    pub action: String,
    pub violation: Option<String>,
    pub before: Option<String>,
    pub after: Option<String>,
}

/// One line of the review queue.
#[derive(Debug, Clone, PartialEq)]
pub struct QueueItem {
    pub id: String,
    pub camera: String,
    pub kind: String,
    pub track_id: i64,
    pub occurred_at_us: i64,
    pub confidence: f64,
    pub status: Status,
}

/// One page of the review queue, oldest first.
#[derive(Debug, Clone, PartialEq)]
pub struct QueuePage {
    pub items: Vec<QueueItem>,
    /// Present when there may be more.
    pub next: Option<QueueCursor>,
}
