//! Verification: recompute every evidence file's SHA-256, every chain
//! record's hash and link, and every review-log entry's hash, link and
//! anchor, and name exactly what is broken.

use std::collections::HashMap;
use std::fmt;

use roadwarden_store::{DataDir, GENESIS_HASH, Store, review_entry_hash};

use crate::EvidenceError;
use crate::chain::record_hash;
use crate::files::sha256_file;

/// One thing `verify` found wrong.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Problem {
    /// A referenced evidence file is not there.
    FileMissing {
        camera: String,
        seq: i64,
        violation: String,
        path: String,
    },
    /// A file's content no longer matches the hash stored with its record.
    FileAltered {
        camera: String,
        seq: i64,
        violation: String,
        path: String,
        expected: String,
        actual: String,
    },
    /// One file is referenced by two evidence rows.
    FileReferencedTwice {
        path: String,
        first: String,
        second: String,
    },
    /// A record's stored fields no longer hash to its stored hash (edited, or moved to another position).
    RecordAltered {
        camera: String,
        seq: i64,
        violation: String,
    },
    /// A record does not link to the record before it (one was deleted, inserted or reordered).
    ChainBroken {
        camera: String,
        seq: i64,
        violation: String,
        predecessor: Option<String>,
    },
    /// Records `from..=to` of the chain are gone.
    RecordsMissing {
        camera: String,
        from: i64,
        to: i64,
        next: Option<String>,
    },
    /// The camera's chain head does not match its last record.
    HeadMismatch {
        camera: String,
        head_seq: i64,
        last_seq: i64,
    },
    /// A review-log entry is edited, out of its chain, missing, or not anchored to its violation's record.
    ReviewLogBroken {
        camera: String,
        seq: i64,
        violation: Option<String>,
        reason: String,
    },
}

impl fmt::Display for Problem {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Problem::FileMissing {
                camera,
                seq,
                violation,
                path,
            } => {
                write!(
                    f,
                    "file missing: {path} (camera {camera} record {seq}, violation {violation})"
                )
            }
            Problem::FileAltered {
                camera,
                seq,
                violation,
                path,
                expected,
                actual,
            } => write!(
                f,
                "file altered: {path} (camera {camera} record {seq}, violation {violation}): sha256 {actual}, recorded {expected}"
            ),
            Problem::FileReferencedTwice {
                path,
                first,
                second,
            } => {
                write!(
                    f,
                    "file referenced twice: {path} (violations {first} and {second})"
                )
            }
            Problem::RecordAltered {
                camera,
                seq,
                violation,
            } => {
                write!(
                    f,
                    "record altered: camera {camera} record {seq} (violation {violation}) does not match its hash"
                )
            }
            Problem::ChainBroken {
                camera,
                seq,
                violation,
                predecessor,
            } => match predecessor {
                Some(p) => write!(
                    f,
                    "chain broken: camera {camera} record {seq} (violation {violation}) does not follow record {} (violation {p})",
                    seq - 1
                ),
                None => write!(
                    f,
                    "chain broken: camera {camera} record {seq} (violation {violation}) is not the chain's first"
                ),
            },
            Problem::RecordsMissing {
                camera,
                from,
                to,
                next,
            } => {
                let range = if from == to {
                    format!("record {from}")
                } else {
                    format!("records {from}..{to}")
                };
                match next {
                    Some(n) => write!(
                        f,
                        "record deleted: camera {camera} {range} missing (before violation {n})"
                    ),
                    None => write!(
                        f,
                        "record deleted: camera {camera} {range} missing (at the end of the chain)"
                    ),
                }
            }
            Problem::HeadMismatch {
                camera,
                head_seq,
                last_seq,
            } => write!(
                f,
                "chain head mismatch: camera {camera} head says record {head_seq}, last record is {last_seq}"
            ),
            Problem::ReviewLogBroken {
                camera,
                seq,
                violation,
                reason,
            } => match violation {
                Some(v) => write!(
                    f,
                    "review log broken: camera {camera} entry {seq} (violation {v}): {reason}"
                ),
                None => write!(
                    f,
                    "review log broken: camera {camera} entry {seq}: {reason}"
                ),
            },
        }
    }
}

/// What `verify` checked and found.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct VerifyReport {
    pub cameras: usize,
    pub records: usize,
    pub tombstones: usize,
    pub files: usize,
    /// Review-log entries checked.
    pub review_entries: usize,
    pub problems: Vec<Problem>,
    /// Violations in progress: intent records in the data folder (while the service runs, those being
    /// recorded; after a crash, those the next start finishes), by violation id.
    pub in_progress: Vec<String>,
    /// Clips in the data folder's `clips-in-progress/` (while the service runs, clips being written).
    pub clips_in_progress: usize,
    /// Files in the data folder's quarantine (orphans, unfinishable intents, clips cut off by a crash).
    pub quarantined: usize,
    /// Evidence files that another node holds (its `node` is not this data folder's): their records
    /// are checked, the files are verified on that node (`verify --data` there), by node.
    pub files_elsewhere: std::collections::BTreeMap<String, usize>,
}

impl VerifyReport {
    pub fn ok(&self) -> bool {
        self.problems.is_empty()
    }
}

/// Verifies every camera's chain (or only `camera`'s) and every file it references.
pub async fn verify(
    store: &Store,
    data: &DataDir,
    camera: Option<&str>,
) -> Result<VerifyReport, EvidenceError> {
    let mut report = VerifyReport {
        in_progress: files_in(&data.intents_dir())?
            .into_iter()
            .filter_map(|n| n.strip_suffix(".intent").map(str::to_owned))
            .collect(),
        clips_in_progress: files_in(&data.clips_in_progress_dir())?.len(),
        quarantined: data.quarantined_files()?,
        ..VerifyReport::default()
    };
    let mut seen_paths: HashMap<String, String> = HashMap::new();
    // With several nodes each keeps the evidence files of what it recorded in its own data folder.
    let here = data.node_id()?;
    let elsewhere = |node: &Option<String>| match (node, &here) {
        (Some(n), Some(h)) if n != h.as_str() => Some(n.clone()),
        _ => None,
    };
    let cams = store.cameras().await?;
    if let Some(c) = camera
        && !cams.iter().any(|x| x.camera == c)
    {
        return Err(EvidenceError::Invalid(format!(
            "camera `{c}` has no records in {}",
            store.url()
        )));
    }
    // Each violation's record hash, for the review log's anchors.
    let mut anchors: HashMap<String, String> = HashMap::new();
    for cam in cams.iter().filter(|c| camera.is_none_or(|x| x == c.camera)) {
        report.cameras += 1;
        let mut expected_seq = 1i64;
        let mut prev_hash = GENESIS_HASH.to_owned();
        let mut prev_id: Option<String> = None;
        let mut last_seq = 0i64;
        let mut after = 0i64;
        loop {
            let page = store.chain_page(&cam.camera, after, 1000).await?;
            let Some(last) = page.last() else { break };
            after = last.fields.seq;
            for rec in page {
                let f = &rec.fields;
                report.records += 1;
                report.tombstones += rec.tombstoned as usize;
                if f.seq != expected_seq {
                    report.problems.push(Problem::RecordsMissing {
                        camera: cam.camera.clone(),
                        from: expected_seq,
                        to: f.seq - 1,
                        next: Some(f.id.clone()),
                    });
                }
                if record_hash(f) != rec.record_hash {
                    report.problems.push(Problem::RecordAltered {
                        camera: cam.camera.clone(),
                        seq: f.seq,
                        violation: f.id.clone(),
                    });
                }
                if f.prev_hash != prev_hash {
                    report.problems.push(Problem::ChainBroken {
                        camera: cam.camera.clone(),
                        seq: f.seq,
                        violation: f.id.clone(),
                        predecessor: prev_id.clone(),
                    });
                }
                for e in &rec.evidence {
                    let path = &e.item.path;
                    if let Some(first) = seen_paths.insert(path.clone(), f.id.clone()) {
                        report.problems.push(Problem::FileReferencedTwice {
                            path: path.clone(),
                            first,
                            second: f.id.clone(),
                        });
                    }
                    if e.purged {
                        continue;
                    }
                    if let Some(node) = elsewhere(&rec.node) {
                        *report.files_elsewhere.entry(node).or_default() += 1;
                        continue;
                    }
                    report.files += 1;
                    let missing = || Problem::FileMissing {
                        camera: cam.camera.clone(),
                        seq: f.seq,
                        violation: f.id.clone(),
                        path: path.clone(),
                    };
                    let abs = match data.resolve(path) {
                        Ok(a) => a,
                        Err(_) => {
                            report.problems.push(missing());
                            continue;
                        }
                    };
                    match sha256_file(&abs) {
                        Err(_) => report.problems.push(missing()),
                        Ok((sha, size)) if sha != e.item.sha256 || size != e.item.size => {
                            report.problems.push(Problem::FileAltered {
                                camera: cam.camera.clone(),
                                seq: f.seq,
                                violation: f.id.clone(),
                                path: path.clone(),
                                expected: e.item.sha256.clone(),
                                actual: sha,
                            })
                        }
                        Ok(_) => {}
                    }
                }
                anchors.insert(f.id.clone(), rec.record_hash.clone());
                prev_hash = rec.record_hash.clone();
                prev_id = Some(f.id.clone());
                expected_seq = f.seq + 1;
                last_seq = f.seq;
            }
        }
        if cam.seq > last_seq {
            report.problems.push(Problem::RecordsMissing {
                camera: cam.camera.clone(),
                from: last_seq + 1,
                to: cam.seq,
                next: None,
            });
        } else if cam.seq != last_seq || cam.head != prev_hash {
            report.problems.push(Problem::HeadMismatch {
                camera: cam.camera.clone(),
                head_seq: cam.seq,
                last_seq,
            });
        }
    }
    verify_review_log(store, camera, &anchors, &mut report).await?;
    Ok(report)
}

/// The names of the files in `dir` (none if it does not exist), temp files excluded, sorted.
fn files_in(dir: &std::path::Path) -> Result<Vec<String>, EvidenceError> {
    let entries = match std::fs::read_dir(dir) {
        Ok(e) => e,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Vec::new()),
        Err(e) => return Err(EvidenceError::io(dir, e)),
    };
    let mut out = Vec::new();
    for entry in entries {
        let entry = entry.map_err(|e| EvidenceError::io(dir, e))?;
        let name = entry.file_name().to_string_lossy().into_owned();
        if !name.starts_with('.') && entry.path().is_file() {
            out.push(name);
        }
    }
    out.sort();
    Ok(out)
}

/// Every camera's review log (or only `camera`'s): each entry hashes to its
/// hash, links to the entry before, follows on in seq, is anchored to its
/// violation's record hash (from `anchors`), and the camera's head is the last entry.
async fn verify_review_log(
    store: &Store,
    camera: Option<&str>,
    anchors: &HashMap<String, String>,
    report: &mut VerifyReport,
) -> Result<(), EvidenceError> {
    for head in store
        .review_log_heads()
        .await?
        .into_iter()
        .filter(|h| camera.is_none_or(|c| c == h.camera))
    {
        let mut broken = |seq: i64, violation: Option<&str>, reason: String| {
            report.problems.push(Problem::ReviewLogBroken {
                camera: head.camera.clone(),
                seq,
                violation: violation.map(str::to_owned),
                reason,
            })
        };
        let mut expected_seq = 1i64;
        let mut prev_hash = GENESIS_HASH.to_owned();
        let mut after = 0i64;
        let mut entries = 0usize;
        loop {
            let page = store.review_log_page(&head.camera, after, 1000).await?;
            let Some(last) = page.last() else { break };
            after = last.fields.seq;
            for e in page {
                let f = &e.fields;
                let v = Some(f.violation.as_str());
                entries += 1;
                if f.seq != expected_seq {
                    broken(
                        f.seq,
                        v,
                        format!("entries {expected_seq}..{} missing before it", f.seq - 1),
                    );
                }
                if review_entry_hash(f) != e.entry_hash {
                    broken(
                        f.seq,
                        v,
                        format!(
                            "edited: its content ({} by {} at {}) does not match its hash",
                            f.status.as_str(),
                            f.actor,
                            f.at_us
                        ),
                    );
                }
                if f.prev_hash != prev_hash {
                    broken(f.seq, v, "does not follow the entry before it".to_owned());
                }
                match anchors.get(&f.violation) {
                    Some(anchor) if *anchor == f.record_hash => {}
                    Some(_) => broken(
                        f.seq,
                        v,
                        "anchored to another record hash than its violation's".to_owned(),
                    ),
                    None => broken(f.seq, v, "its violation is not in the chain".to_owned()),
                }
                prev_hash = e.entry_hash.clone();
                expected_seq = f.seq + 1;
            }
        }
        let last_seq = expected_seq - 1;
        if head.seq != last_seq || head.head != prev_hash {
            broken(
                head.seq,
                None,
                format!(
                    "the camera's review-log head says entry {}, the last entry is {last_seq}",
                    head.seq
                ),
            );
        }
        report.review_entries += entries;
    }
    Ok(())
}
