//! The per-camera hash chain. Record `n`'s hash is SHA-256 over a version tag
//! and the canonical JSON of its [`ChainFields`]: the violation's immutable
//! fields (id, camera, seq, type, track, time, confidence, thresholds, frames
//! and signal), every evidence file's kind, role, path, SHA-256 and size, and
//! record `n-1`'s hash. Editing, deleting or reordering any of it breaks the
//! hash of that record or the link to the next.

use roadwarden_store::ChainFields;
use sha2::{Digest, Sha256};

pub use roadwarden_store::GENESIS_HASH;

const TAG: &[u8] = b"roadwarden-chain-v1\n";

/// The hash of one chain record (lower-case hex).
pub fn record_hash(f: &ChainFields) -> String {
    let mut h = Sha256::new();
    h.update(TAG);
    // Serializing a plain struct of strings, integers and finite floats cannot fail.
    h.update(serde_json::to_vec(f).unwrap_or_default());
    hex::encode(h.finalize())
}

#[cfg(test)]
mod tests {
    use super::*;
    use roadwarden_store::{EvidenceItem, EvidenceKind};

    fn fields() -> ChainFields {
        ChainFields {
            camera: "cam".into(),
            seq: 1,
            prev_hash: GENESIS_HASH.into(),
            id: "0190f0e0-0000-7000-8000-000000000000".into(),
            kind: "no_helmet".into(),
            track_id: 7,
            occurred_at_us: 1_700_000_000_123_000,
            confidence: 0.875,
            thresholds: "{}".into(),
            detail: "{}".into(),
            evidence: vec![EvidenceItem {
                kind: EvidenceKind::Photo,
                role: Some("key".into()),
                path: "evidence/a.jpg".into(),
                sha256: "ab".repeat(32),
                size: 10,
            }],
        }
    }

    #[test]
    fn every_field_moves_the_hash() {
        let base = record_hash(&fields());
        assert_eq!(base, record_hash(&fields()), "deterministic");
        let edits: Vec<fn(&mut ChainFields)> = vec![
            |f| f.seq = 2,
            |f| f.prev_hash = "1".repeat(64),
            |f| f.track_id = 8,
            |f| f.occurred_at_us += 1,
            |f| f.confidence = 0.876,
            |f| f.camera = "cam2".into(),
            |f| f.evidence[0].sha256 = "cd".repeat(32),
            |f| f.evidence[0].size = 11,
            |f| f.evidence.clear(),
        ];
        for e in edits {
            let mut f = fields();
            e(&mut f);
            assert_ne!(record_hash(&f), base);
        }
    }
}
