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
    /// Canonical JSON of the evidence frames (boxes, times), signal changes and the automatic
    /// plate read (`plate_read`, only when the plate detector found one).
    pub detail: String,
    /// Sorted by path.
    pub evidence: Vec<EvidenceItem>,
}

#[derive(Serialize)]
struct Detail<'a> {
    frames: &'a [roadwarden_types::EvidenceFrame],
    signal: &'a [roadwarden_types::SignalChange],
    /// The plate detector's suggestion (absent when none: older records hash as before).
    #[serde(skip_serializing_if = "Option::is_none")]
    plate_read: Option<&'a roadwarden_types::PlateRead>,
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
            plate_read: v.plate_read.as_ref(),
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
    /// The licence plate a reviewer filled in or corrected (normalised, see [`Plate`]); not in the chain.
    pub plate: Option<String>,
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
    /// The reviewer's licence plate (normalised), if one was given.
    pub plate: Option<String>,
}

/// One page of the review queue, oldest first.
#[derive(Debug, Clone, PartialEq)]
pub struct QueuePage {
    pub items: Vec<QueueItem>,
    /// Present when there may be more.
    pub next: Option<QueueCursor>,
}

/// A licence plate as the store keeps and searches it: upper case, letters and digits only (the spaces,
/// dashes, dots and middle dots people type between groups are dropped), 1 to [`Plate::MAX_CHARS`]
/// characters. `"ab-12 cd"`, `"AB 12 CD"` and `"AB12CD"` are one plate.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct Plate(String);

/// Why a text is not a licence plate.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("`{given}` is not a licence plate: {why}")]
pub struct InvalidPlate {
    pub given: String,
    pub why: &'static str,
}

impl Plate {
    /// The longest plate kept, in characters (after normalising).
    pub const MAX_CHARS: usize = 16;

    /// Normalises `text` (upper case; spaces, dashes, dots and middle dots dropped) and checks what is
    /// left: 1 to [`Plate::MAX_CHARS`] letters and digits.
    pub fn parse(text: &str) -> Result<Plate, InvalidPlate> {
        let bad = |why| InvalidPlate {
            given: text
                .chars()
                .take(40)
                .collect::<String>()
                .escape_debug()
                .to_string(),
            why,
        };
        let mut out = String::new();
        for c in text.chars() {
            if c.is_whitespace()
                || matches!(
                    c,
                    '-' | '\u{2010}'..='\u{2013}' | '.' | '\u{b7}' | '\u{30fb}'
                )
            {
                continue;
            }
            if !c.is_alphanumeric() {
                return Err(bad(
                    "only letters and digits, with spaces, dashes or dots between groups",
                ));
            }
            out.extend(c.to_uppercase());
        }
        if out.is_empty() {
            return Err(bad("no letters or digits"));
        }
        if out.chars().count() > Plate::MAX_CHARS {
            return Err(bad("longer than 16 letters and digits"));
        }
        Ok(Plate(out))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl std::fmt::Display for Plate {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

impl TryFrom<String> for Plate {
    type Error = InvalidPlate;
    fn try_from(s: String) -> Result<Plate, InvalidPlate> {
        Plate::parse(&s)
    }
}

impl From<Plate> for String {
    fn from(p: Plate) -> String {
        p.0
    }
}

#[cfg(test)]
mod plate_tests {
    use super::*;

    #[test]
    fn plates_are_normalised_for_search() {
        for typed in ["ab-12 cd", "AB 12 CD", "AB12CD", " ab.12.cd ", "ab–12–cd"] {
            assert_eq!(
                Plate::parse(typed).expect(typed).as_str(),
                "AB12CD",
                "{typed}"
            );
        }
        assert_eq!(Plate::parse("京A·12345").expect("cn").as_str(), "京A12345");
        assert_eq!(Plate::parse("b-xy 123e").expect("de").as_str(), "BXY123E");
        for bad in ["", " - ", "AB/12", "AB12;DROP", "12345678901234567"] {
            let e = Plate::parse(bad).expect_err(bad);
            assert!(e.to_string().contains("not a licence plate"), "{e}");
        }
    }
}
