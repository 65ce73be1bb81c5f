//! Evidence packages: one violation's evidence files, its stored record and
//! a manifest in one ZIP that can be handed on and checked on its own, with
//! no store and no data folder.
//!
//! Layout (format version [`PACKAGE_VERSION`]):
//! - `manifest.json`: the format and version, when the package was made, the
//!   violation's id, record hash, status and reviewer's plate (if any), the fingerprint of the
//!   installation key that signed it, the SHA-256 and size of
//!   `violation.json`, every evidence file with its name in the package,
//!   SHA-256, size and the path the record knows it by, and the violation's
//!   review-log entries (each decision and reopen, hash-chained per camera
//!   and anchored to the record hash);
//! - `manifest.sig`: the installation key's Ed25519 signature over the exact
//!   bytes of `manifest.json` (128 hex digits);
//! - `violation.json`: the stored record ([`PackagedViolation`]): the chain
//!   fields (seq, prev_hash, the evidence list, ...) from which the record
//!   hash is recomputed, the record hash, status, tombstone, purged files,
//!   the review history and the reviewer's plate;
//! - `evidence/...`: the files themselves.
//!
//! The chain hash covers the violation's immutable fields and every evidence
//! file's SHA-256, so a package whose files, fields or hashes were edited
//! does not check, even if the manifest was rewritten to match. The status
//! and review history are not in the chain (they change by design): the
//! review-log entries prove them, and the manifest (which names them and
//! hashes `violation.json`) is signed, so a package re-hashed consistently
//! after any edit fails against the installation's public key.

use std::collections::{BTreeMap, BTreeSet};
use std::fmt;
use std::io::{Cursor, Read, Seek, Write};

use chrono::{DateTime, Datelike, Timelike, Utc};
use roadwarden_store::{
    ChainFields, DataDir, ReviewLogEntry, ReviewRow, Status, StoredRecord, review_entry_hash,
};
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use zip::write::SimpleFileOptions;
use zip::{CompressionMethod, ZipArchive, ZipWriter};

use crate::chain::record_hash;
use crate::key::{InstallationKey, PublicKey};

/// The package format this code writes and checks.
pub const PACKAGE_VERSION: u32 = 2;
/// `manifest.json`'s `format`.
pub const PACKAGE_FORMAT: &str = "roadwarden-evidence-package";
pub const MANIFEST_NAME: &str = "manifest.json";
pub const VIOLATION_NAME: &str = "violation.json";
/// The signature over `manifest.json`'s bytes.
pub const SIGNATURE_NAME: &str = "manifest.sig";
/// Where the evidence files lie in a package.
pub const EVIDENCE_DIR: &str = "evidence/";
/// The largest `manifest.json` or `violation.json` read.
const MAX_JSON_BYTES: u64 = 16 << 20;

/// What an evidence package's checker was not given (no package at all,
/// rather than a package with problems).
#[derive(Debug, thiserror::Error)]
pub enum PackageError {
    /// The violation's evidence file is gone although no purge deleted it.
    #[error(
        "evidence file {path} of violation {violation} is missing (run `roadwarden verify`); refusing to package without it"
    )]
    FileMissing { violation: String, path: String },
    /// The file no longer matches the hash recorded with the violation.
    #[error(
        "evidence file {path} of violation {violation} no longer matches its recorded SHA-256 (run `roadwarden verify`); refusing to package it"
    )]
    FileAltered { violation: String, path: String },
    #[error("{path}: {reason}")]
    Io { path: String, reason: String },
    /// Not a ZIP, or a ZIP that is not an evidence package.
    #[error(
        "not an evidence package: {0} (expected a ZIP from GET /api/violations/{{id}}/package.zip with {MANIFEST_NAME}, {VIOLATION_NAME} and {EVIDENCE_DIR})"
    )]
    NotAPackage(String),
    #[error("cannot write the package: {0}")]
    Write(String),
}

/// `violation.json`: the record as stored.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct PackagedViolation {
    /// Exactly what the record hash covers (id, camera, seq, prev_hash, kind,
    /// track_id, occurred_at_us, confidence, thresholds, detail, evidence).
    #[serde(flatten)]
    pub fields: ChainFields,
    pub record_hash: String,
    pub status: Status,
    pub tombstoned: bool,
    /// Evidence paths whose files retention deleted: in the record, not in the package.
    pub purged: Vec<String>,
    /// The review decisions, oldest first.
    pub reviews: Vec<ReviewRow>,
    /// The licence plate a reviewer filled in or corrected (normalised), when packaged; absent: none.
    /// Not in the chain (set after recording): the signed manifest names it and hashes this file.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub plate: Option<String>,
}

/// One file of a package as the manifest lists it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ManifestFile {
    /// Its name in the package (`evidence/...`).
    pub name: String,
    pub sha256: String,
    pub size: u64,
    /// The path the record's evidence list knows it by.
    pub evidence_path: String,
}

/// `manifest.json`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Manifest {
    pub format: String,
    pub version: u32,
    pub created_at: DateTime<Utc>,
    pub violation: String,
    /// The violation's chain record hash.
    pub record_hash: String,
    /// The violation's status when packaged.
    pub status: Status,
    /// The reviewer's licence plate when packaged (absent: none); `violation.json` says the same.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub plate: Option<String>,
    /// The fingerprint of the installation key that signed this manifest.
    pub key_fingerprint: String,
    pub violation_sha256: String,
    pub violation_size: u64,
    /// Every evidence file in the package, by name.
    pub files: Vec<ManifestFile>,
    /// The violation's review-log entries, oldest first: they prove its status and decisions.
    pub review_log: Vec<ReviewLogEntry>,
}

/// A built package.
#[derive(Debug, Clone)]
pub struct Package {
    pub bytes: Vec<u8>,
    pub manifest: Manifest,
    /// SHA-256 of the whole ZIP.
    pub sha256: String,
}

fn sha_hex(bytes: &[u8]) -> String {
    hex::encode(Sha256::digest(bytes))
}

/// The package names of `paths`: `evidence/<file name>`, or the path below
/// `evidence/` where two files share a name.
fn package_names(paths: &[&str]) -> Vec<String> {
    let base = |p: &str| p.rsplit('/').next().unwrap_or(p).to_owned();
    let mut count: BTreeMap<String, usize> = BTreeMap::new();
    for p in paths {
        *count.entry(base(p)).or_default() += 1;
    }
    paths
        .iter()
        .map(|p| {
            let b = base(p);
            if count.get(&b) == Some(&1) {
                format!("{EVIDENCE_DIR}{b}")
            } else {
                format!(
                    "{EVIDENCE_DIR}{}",
                    p.strip_prefix(EVIDENCE_DIR).unwrap_or(p)
                )
            }
        })
        .collect()
}

fn zip_time(t: DateTime<Utc>) -> zip::DateTime {
    let narrow = |v: u32| u8::try_from(v).unwrap_or(0);
    zip::DateTime::from_date_and_time(
        u16::try_from(t.year()).unwrap_or(1980),
        narrow(t.month()),
        narrow(t.day()),
        narrow(t.hour()),
        narrow(t.minute()),
        narrow(t.second()),
    )
    .unwrap_or_default()
}

/// Builds the evidence package of `record` (with its review history and
/// review-log entries), reading each evidence file from its row's path inside
/// `data`, and signs its manifest with `key`. A file that is gone or no longer
/// matches its recorded hash is refused, so a package this builds always
/// checks; purged files are listed in `violation.json` and left out.
pub fn build_package(
    record: &StoredRecord,
    reviews: &[ReviewRow],
    review_log: &[ReviewLogEntry],
    data: &DataDir,
    key: &InstallationKey,
    created_at: DateTime<Utc>,
) -> Result<Package, PackageError> {
    let id = &record.fields.id;
    let present: Vec<_> = record.evidence.iter().filter(|e| !e.purged).collect();
    let paths: Vec<&str> = present.iter().map(|e| e.item.path.as_str()).collect();
    let names = package_names(&paths);
    let mut files = Vec::with_capacity(present.len());
    let mut contents = Vec::with_capacity(present.len());
    for (e, name) in present.iter().zip(names) {
        let path = &e.item.path;
        let missing = || PackageError::FileMissing {
            violation: id.clone(),
            path: path.clone(),
        };
        let abs = data.resolve(path).map_err(|_| missing())?;
        let bytes = match std::fs::read(&abs) {
            Ok(b) => b,
            Err(err) if err.kind() == std::io::ErrorKind::NotFound => return Err(missing()),
            Err(err) => {
                return Err(PackageError::Io {
                    path: abs.display().to_string(),
                    reason: err.to_string(),
                });
            }
        };
        let sha256 = sha_hex(&bytes);
        if sha256 != e.item.sha256 || bytes.len() as u64 != e.item.size {
            return Err(PackageError::FileAltered {
                violation: id.clone(),
                path: path.clone(),
            });
        }
        files.push(ManifestFile {
            name,
            sha256,
            size: bytes.len() as u64,
            evidence_path: path.clone(),
        });
        contents.push(bytes);
    }
    let violation = PackagedViolation {
        fields: record.fields.clone(),
        record_hash: record.record_hash.clone(),
        status: record.status,
        tombstoned: record.tombstoned,
        purged: record
            .evidence
            .iter()
            .filter(|e| e.purged)
            .map(|e| e.item.path.clone())
            .collect(),
        reviews: reviews.to_vec(),
        plate: record.plate.clone(),
    };
    let violation_json = serde_json::to_vec_pretty(&violation)
        .map_err(|e| PackageError::Write(format!("{VIOLATION_NAME}: {e}")))?;
    let manifest = Manifest {
        format: PACKAGE_FORMAT.to_owned(),
        version: PACKAGE_VERSION,
        created_at,
        violation: id.clone(),
        record_hash: record.record_hash.clone(),
        status: record.status,
        plate: record.plate.clone(),
        key_fingerprint: key.public().fingerprint(),
        violation_sha256: sha_hex(&violation_json),
        violation_size: violation_json.len() as u64,
        files,
        review_log: review_log.to_vec(),
    };
    let manifest_json = serde_json::to_vec_pretty(&manifest)
        .map_err(|e| PackageError::Write(format!("{MANIFEST_NAME}: {e}")))?;

    let werr = |e: &dyn fmt::Display| PackageError::Write(e.to_string());
    let mut zip = ZipWriter::new(Cursor::new(Vec::new()));
    let opts = SimpleFileOptions::default().last_modified_time(zip_time(created_at));
    let json_opts = opts.compression_method(CompressionMethod::Deflated);
    // JPEG and MP4 are compressed already: stored as they are.
    let file_opts = opts.compression_method(CompressionMethod::Stored);
    let mut put = |name: &str, o: SimpleFileOptions, bytes: &[u8]| {
        let o = o.large_file(bytes.len() as u64 >= u64::from(u32::MAX));
        zip.start_file(name, o).map_err(|e| werr(&e))?;
        zip.write_all(bytes).map_err(|e| werr(&e))
    };
    let signature = key.sign(&manifest_json);
    put(MANIFEST_NAME, json_opts, &manifest_json)?;
    put(SIGNATURE_NAME, json_opts, signature.as_bytes())?;
    put(VIOLATION_NAME, json_opts, &violation_json)?;
    for (f, bytes) in manifest.files.iter().zip(&contents) {
        put(&f.name, file_opts, bytes)?;
    }
    let bytes = zip.finish().map_err(|e| werr(&e))?.into_inner();
    Ok(Package {
        sha256: sha_hex(&bytes),
        bytes,
        manifest,
    })
}

/// One thing wrong with a package.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PackageProblem {
    /// A file's content does not match the manifest's SHA-256.
    ShaMismatch {
        name: String,
        expected: String,
        actual: String,
    },
    /// A file's size does not match the manifest's.
    SizeMismatch {
        name: String,
        expected: u64,
        actual: u64,
    },
    /// The manifest lists a file the package does not hold.
    MissingFile { name: String },
    /// The package holds a file the manifest does not list.
    UnlistedFile { name: String },
    /// The manifest lists a file twice.
    ListedTwice { name: String },
    /// `violation.json` is not a violation record.
    BadRecord { reason: String },
    /// The manifest and `violation.json` name different violations.
    WrongViolation { manifest: String, record: String },
    /// The record's chain fields do not hash to its record hash.
    RecordHashMismatch {
        violation: String,
        recorded: String,
        recomputed: String,
    },
    /// The record lists an evidence file the package does not hold (and no purge deleted).
    NotPackaged { path: String },
    /// A packaged file is not one the record lists, or not with this hash and size.
    NotRecorded { name: String, path: String },
    /// The package has no `manifest.sig`.
    SignatureMissing,
    /// `manifest.sig` is not the given key's signature over `manifest.json`.
    BadSignature { fingerprint: String },
    /// The manifest says another installation's key signed it.
    WrongKey { package: String, given: String },
    /// The manifest and `violation.json` disagree on the record hash or status.
    ManifestMismatch {
        field: &'static str,
        manifest: String,
        record: String,
    },
    /// A review-log entry does not prove what the record says.
    ReviewEntry { seq: Option<i64>, reason: String },
}

impl fmt::Display for PackageProblem {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            PackageProblem::ShaMismatch {
                name,
                expected,
                actual,
            } => write!(
                f,
                "{name}: sha256 mismatch (manifest {expected}, file {actual})"
            ),
            PackageProblem::SizeMismatch {
                name,
                expected,
                actual,
            } => write!(
                f,
                "{name}: size mismatch (manifest {expected} bytes, file {actual} bytes)"
            ),
            PackageProblem::MissingFile { name } => {
                write!(f, "{name}: missing file (listed in {MANIFEST_NAME})")
            }
            PackageProblem::UnlistedFile { name } => {
                write!(f, "{name}: unlisted file (not in {MANIFEST_NAME})")
            }
            PackageProblem::ListedTwice { name } => {
                write!(f, "{name}: listed twice in {MANIFEST_NAME}")
            }
            PackageProblem::BadRecord { reason } => {
                write!(f, "{VIOLATION_NAME}: not a violation record ({reason})")
            }
            PackageProblem::WrongViolation { manifest, record } => write!(
                f,
                "{VIOLATION_NAME}: violation {record}, but {MANIFEST_NAME} is for {manifest}"
            ),
            PackageProblem::RecordHashMismatch {
                violation,
                recorded,
                recomputed,
            } => write!(
                f,
                "{VIOLATION_NAME}: record hash mismatch for violation {violation} (fields hash to {recomputed}, recorded {recorded})"
            ),
            PackageProblem::NotPackaged { path } => write!(
                f,
                "{path}: missing file (in the record's evidence, not in the package)"
            ),
            PackageProblem::NotRecorded { name, path } => write!(
                f,
                "{name}: not the evidence the record lists as {path} (its SHA-256 or size differs)"
            ),
            PackageProblem::SignatureMissing => write!(
                f,
                "{SIGNATURE_NAME}: missing (the package is unsigned, so nothing shows who made it)"
            ),
            PackageProblem::BadSignature { fingerprint } => write!(
                f,
                "{SIGNATURE_NAME}: bad signature: not key {fingerprint}'s signature over {MANIFEST_NAME} (the manifest was changed after signing)"
            ),
            PackageProblem::WrongKey { package, given } => write!(
                f,
                "{MANIFEST_NAME}: wrong key: signed by key {package}, checked with key {given} (use the public key of the installation that made it)"
            ),
            PackageProblem::ManifestMismatch {
                field,
                manifest,
                record,
            } => write!(
                f,
                "{MANIFEST_NAME}: {field} {manifest}, but {VIOLATION_NAME} says {record}"
            ),
            PackageProblem::ReviewEntry { seq, reason } => match seq {
                Some(n) => write!(f, "review entry mismatch: review-log entry {n}: {reason}"),
                None => write!(f, "review entry mismatch: {reason}"),
            },
        }
    }
}

/// What [`check_package`] found.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PackageReport {
    /// The violation the manifest names.
    pub violation: String,
    /// The record hash `violation.json` carries.
    pub record_hash: Option<String>,
    /// Evidence files listed in the manifest.
    pub files: usize,
    /// The fingerprint of the key the manifest names.
    pub key_fingerprint: String,
    /// Whether the signature was checked against a given public key.
    pub authenticity: Authenticity,
    pub problems: Vec<PackageProblem>,
}

/// Whether [`check_package`] checked who made the package.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Authenticity {
    /// No public key was given: only the package's internal consistency was
    /// checked, and anyone can build a consistent package.
    NotChecked,
    /// The signature was checked against the key with this fingerprint
    /// (whether it held is in the problems).
    Checked { fingerprint: String },
}

impl PackageReport {
    pub fn ok(&self) -> bool {
        self.problems.is_empty()
    }
}

/// Hashes at most `limit` bytes of `r`; (sha256 hex, bytes read, the bytes when `keep`).
fn hash_entry(r: impl Read, limit: u64, keep: bool) -> std::io::Result<(String, u64, Vec<u8>)> {
    let mut r = r.take(limit);
    let mut h = Sha256::new();
    let mut kept = Vec::new();
    let mut buf = vec![0u8; 1 << 16];
    let mut n = 0u64;
    loop {
        let k = r.read(&mut buf)?;
        if k == 0 {
            break;
        }
        n += k as u64;
        h.update(&buf[..k]);
        if keep {
            kept.extend_from_slice(&buf[..k]);
        }
    }
    Ok((hex::encode(h.finalize()), n, kept))
}

/// Checks an evidence package on its own: every file the manifest lists is
/// there with its SHA-256 and size, nothing unlisted is, `violation.json`
/// matches its hash, the record hash recomputed from its chain fields equals
/// the recorded one, and the packaged files are exactly the evidence the
/// record lists (less purged files) with the hashes the chain covers, the
/// manifest's record hash and status are the record's, and the review-log
/// entries hash right and prove the record's decisions and status. With `key`,
/// also that `manifest.sig` is that key's signature over the manifest's exact
/// bytes: the only check a consistent re-hash of everything cannot pass.
/// Errors mean the input is no package (not a ZIP, no readable manifest).
pub fn check_package<R: Read + Seek>(
    reader: R,
    key: Option<&PublicKey>,
) -> Result<PackageReport, PackageError> {
    let mut zip = ZipArchive::new(reader).map_err(|e| PackageError::NotAPackage(e.to_string()))?;
    let mut entries: BTreeMap<String, usize> = BTreeMap::new();
    let mut problems = Vec::new();
    for i in 0..zip.len() {
        let f = zip
            .by_index(i)
            .map_err(|e| PackageError::NotAPackage(format!("entry {i}: {e}")))?;
        if f.is_dir() {
            continue;
        }
        let name = match f.name() {
            Ok(n) => n.into_owned(),
            Err(_) => String::from_utf8_lossy(f.name_raw()).into_owned(),
        };
        entries.insert(name, i);
    }
    let read_json = |zip: &mut ZipArchive<R>, idx: usize, name: &str| {
        let f = zip
            .by_index(idx)
            .map_err(|e| PackageError::NotAPackage(format!("{name}: {e}")))?;
        hash_entry(f, MAX_JSON_BYTES, true)
            .map_err(|e| PackageError::NotAPackage(format!("{name}: {e}")))
    };
    let Some(&mi) = entries.get(MANIFEST_NAME) else {
        return Err(PackageError::NotAPackage(format!("no {MANIFEST_NAME}")));
    };
    let (_, _, manifest_bytes) = read_json(&mut zip, mi, MANIFEST_NAME)?;
    let head: serde_json::Value = serde_json::from_slice(&manifest_bytes)
        .map_err(|e| PackageError::NotAPackage(format!("{MANIFEST_NAME}: {e}")))?;
    if head["format"] != PACKAGE_FORMAT || head["version"] != PACKAGE_VERSION {
        return Err(PackageError::NotAPackage(format!(
            "{MANIFEST_NAME} is format {} version {}; this roadwarden reads `{PACKAGE_FORMAT}` version {PACKAGE_VERSION}",
            head["format"], head["version"]
        )));
    }
    let manifest: Manifest = serde_json::from_slice(&manifest_bytes)
        .map_err(|e| PackageError::NotAPackage(format!("{MANIFEST_NAME}: {e}")))?;

    // Who made it: the signature over the manifest's exact bytes.
    let authenticity = match key {
        None => Authenticity::NotChecked,
        Some(k) => Authenticity::Checked {
            fingerprint: k.fingerprint(),
        },
    };
    match entries.get(SIGNATURE_NAME) {
        None => problems.push(PackageProblem::SignatureMissing),
        Some(&si) => {
            let (_, _, sig) = read_json(&mut zip, si, SIGNATURE_NAME)?;
            if let Some(k) = key {
                if manifest.key_fingerprint != k.fingerprint() {
                    problems.push(PackageProblem::WrongKey {
                        package: manifest.key_fingerprint.clone(),
                        given: k.fingerprint(),
                    });
                } else if !k.verifies(&manifest_bytes, &String::from_utf8_lossy(&sig)) {
                    problems.push(PackageProblem::BadSignature {
                        fingerprint: k.fingerprint(),
                    });
                }
            }
        }
    }

    // violation.json against the manifest's hash.
    let mut record: Option<PackagedViolation> = None;
    match entries.get(VIOLATION_NAME) {
        None => problems.push(PackageProblem::MissingFile {
            name: VIOLATION_NAME.to_owned(),
        }),
        Some(&vi) => {
            let (sha, size, bytes) = read_json(&mut zip, vi, VIOLATION_NAME)?;
            if sha != manifest.violation_sha256 {
                problems.push(PackageProblem::ShaMismatch {
                    name: VIOLATION_NAME.to_owned(),
                    expected: manifest.violation_sha256.clone(),
                    actual: sha,
                });
            } else if size != manifest.violation_size {
                problems.push(PackageProblem::SizeMismatch {
                    name: VIOLATION_NAME.to_owned(),
                    expected: manifest.violation_size,
                    actual: size,
                });
            }
            match serde_json::from_slice::<PackagedViolation>(&bytes) {
                Ok(v) => record = Some(v),
                Err(e) => problems.push(PackageProblem::BadRecord {
                    reason: e.to_string(),
                }),
            }
        }
    }

    // Every listed file, present and intact.
    let mut listed = BTreeSet::new();
    for mf in &manifest.files {
        if !listed.insert(mf.name.as_str())
            || mf.name == MANIFEST_NAME
            || mf.name == VIOLATION_NAME
            || mf.name == SIGNATURE_NAME
        {
            problems.push(PackageProblem::ListedTwice {
                name: mf.name.clone(),
            });
            continue;
        }
        let Some(&idx) = entries.get(&mf.name) else {
            problems.push(PackageProblem::MissingFile {
                name: mf.name.clone(),
            });
            continue;
        };
        let f = zip
            .by_index(idx)
            .map_err(|e| PackageError::NotAPackage(format!("{}: {e}", mf.name)))?;
        // One byte past the listed size is enough to tell that it is longer.
        let (sha, size, _) = hash_entry(f, mf.size.saturating_add(1), false)
            .map_err(|e| PackageError::NotAPackage(format!("{}: {e}", mf.name)))?;
        if size != mf.size {
            problems.push(PackageProblem::SizeMismatch {
                name: mf.name.clone(),
                expected: mf.size,
                actual: size,
            });
        } else if sha != mf.sha256 {
            problems.push(PackageProblem::ShaMismatch {
                name: mf.name.clone(),
                expected: mf.sha256.clone(),
                actual: sha,
            });
        }
    }
    for name in entries.keys() {
        if name != MANIFEST_NAME
            && name != VIOLATION_NAME
            && name != SIGNATURE_NAME
            && !listed.contains(name.as_str())
        {
            problems.push(PackageProblem::UnlistedFile { name: name.clone() });
        }
    }

    // The record: its own hash, and the files it lists.
    if let Some(v) = &record {
        if v.fields.id != manifest.violation {
            problems.push(PackageProblem::WrongViolation {
                manifest: manifest.violation.clone(),
                record: v.fields.id.clone(),
            });
        }
        let recomputed = record_hash(&v.fields);
        if recomputed != v.record_hash {
            problems.push(PackageProblem::RecordHashMismatch {
                violation: v.fields.id.clone(),
                recorded: v.record_hash.clone(),
                recomputed,
            });
        }
        let by_path: BTreeMap<&str, &ManifestFile> = manifest
            .files
            .iter()
            .map(|f| (f.evidence_path.as_str(), f))
            .collect();
        let purged: BTreeSet<&str> = v.purged.iter().map(String::as_str).collect();
        let mut recorded = BTreeSet::new();
        for item in &v.fields.evidence {
            if purged.contains(item.path.as_str()) {
                continue;
            }
            match by_path.get(item.path.as_str()) {
                None => problems.push(PackageProblem::NotPackaged {
                    path: item.path.clone(),
                }),
                Some(mf) if mf.sha256 == item.sha256 && mf.size == item.size => {
                    recorded.insert(mf.name.as_str());
                }
                Some(_) => {}
            }
        }
        for mf in &manifest.files {
            if !recorded.contains(mf.name.as_str()) {
                problems.push(PackageProblem::NotRecorded {
                    name: mf.name.clone(),
                    path: mf.evidence_path.clone(),
                });
            }
        }
        if manifest.record_hash != v.record_hash {
            problems.push(PackageProblem::ManifestMismatch {
                field: "record hash",
                manifest: manifest.record_hash.clone(),
                record: v.record_hash.clone(),
            });
        }
        if manifest.status != v.status {
            problems.push(PackageProblem::ManifestMismatch {
                field: "status",
                manifest: manifest.status.as_str().to_owned(),
                record: v.status.as_str().to_owned(),
            });
        }
        if manifest.plate != v.plate {
            let shown = |p: &Option<String>| p.clone().unwrap_or_else(|| "(none)".to_owned());
            problems.push(PackageProblem::ManifestMismatch {
                field: "plate",
                manifest: shown(&manifest.plate),
                record: shown(&v.plate),
            });
        }
        check_review_log(v, &manifest.review_log, &mut problems);
    }
    Ok(PackageReport {
        violation: manifest.violation,
        record_hash: record.map(|r| r.record_hash),
        files: manifest.files.len(),
        key_fingerprint: manifest.key_fingerprint,
        authenticity,
        problems,
    })
}

/// Whether `log` (the manifest's review-log entries) proves `v`'s decisions
/// and status: every entry hashes to its hash, is of this violation and
/// anchored to its record hash, in log order; the decisions are exactly
/// `v.reviews`; the last entry leaves the status `v` has.
fn check_review_log(
    v: &PackagedViolation,
    log: &[ReviewLogEntry],
    problems: &mut Vec<PackageProblem>,
) {
    let mut push = |seq: Option<i64>, reason: String| {
        problems.push(PackageProblem::ReviewEntry { seq, reason })
    };
    let mut last_seq = 0i64;
    for e in log {
        let f = &e.fields;
        let seq = Some(f.seq);
        if review_entry_hash(f) != e.entry_hash {
            push(seq, "its content does not match its hash".to_owned());
        }
        if f.violation != v.fields.id || f.camera != v.fields.camera {
            push(
                seq,
                format!(
                    "belongs to violation {} of camera {}",
                    f.violation, f.camera
                ),
            );
        }
        if f.record_hash != v.record_hash {
            push(
                seq,
                format!(
                    "anchored to record hash {}, not the record's {}",
                    f.record_hash, v.record_hash
                ),
            );
        }
        if f.seq <= last_seq {
            push(seq, format!("out of order (after entry {last_seq})"));
        }
        last_seq = f.seq;
    }
    let decisions: Vec<&ReviewLogEntry> =
        log.iter().filter(|e| e.fields.action == "review").collect();
    if decisions.len() != v.reviews.len() {
        push(
            None,
            format!(
                "{VIOLATION_NAME} lists {} review decision(s), the review log proves {}",
                v.reviews.len(),
                decisions.len()
            ),
        );
    }
    for (e, r) in decisions.iter().zip(&v.reviews) {
        let f = &e.fields;
        if f.actor != r.reviewer
            || f.status != r.status
            || f.reason != r.reason
            || f.note != r.note
            || f.at_us != r.reviewed_at_us
        {
            push(
                Some(f.seq),
                format!(
                    "records {} by {} (reason `{}`), {VIOLATION_NAME} says {} by {} (reason `{}`)",
                    f.status.as_str(),
                    f.actor,
                    f.reason,
                    r.status.as_str(),
                    r.reviewer,
                    r.reason
                ),
            );
        }
    }
    let proven = log.last().map_or(Status::Pending, |e| e.fields.status);
    if proven != v.status {
        push(
            log.last().map(|e| e.fields.seq),
            format!(
                "the review log leaves the violation {}, {VIOLATION_NAME} says {}",
                proven.as_str(),
                v.status.as_str()
            ),
        );
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use roadwarden_store::{EvidenceItem, EvidenceKind, GENESIS_HASH, StoredEvidence};

    struct Fixture {
        dir: tempfile::TempDir,
        data: DataDir,
        record: StoredRecord,
        key: InstallationKey,
    }

    /// The review-log entries that `reviews` of `record` would have written.
    fn log_for(record: &StoredRecord, reviews: &[ReviewRow]) -> Vec<ReviewLogEntry> {
        let mut prev = GENESIS_HASH.to_owned();
        reviews
            .iter()
            .enumerate()
            .map(|(i, r)| {
                let fields = roadwarden_store::ReviewLogFields {
                    camera: record.fields.camera.clone(),
                    seq: i as i64 + 4,
                    prev_hash: prev.clone(),
                    violation: record.fields.id.clone(),
                    record_hash: record.record_hash.clone(),
                    actor: r.reviewer.clone(),
                    action: "review".into(),
                    status: r.status,
                    reason: r.reason.clone(),
                    note: r.note.clone(),
                    at_us: r.reviewed_at_us,
                };
                let entry_hash = review_entry_hash(&fields);
                prev = entry_hash.clone();
                ReviewLogEntry { fields, entry_hash }
            })
            .collect()
    }

    fn build(fx: &Fixture, reviews: &[ReviewRow]) -> Result<Package, PackageError> {
        build_package(
            &fx.record,
            reviews,
            &log_for(&fx.record, reviews),
            &fx.data,
            &fx.key,
            Utc::now(),
        )
    }

    fn fixture() -> Fixture {
        let dir = tempfile::tempdir().expect("tempdir");
        let data = DataDir::new(dir.path().join("data"));
        let id = "0190f0e0-0000-7000-8000-000000000001";
        let mut evidence = Vec::new();
        for (name, kind, purged) in [
            ("key-photo.jpg", EvidenceKind::Photo, false),
            ("key-raw.jpg", EvidenceKind::Raw, false),
            ("clip.mp4", EvidenceKind::Clip, false),
            ("old-crop.jpg", EvidenceKind::Crop, true),
        ] {
            let path = format!("evidence/cam/2026-05-01/{id}/{name}");
            let bytes: Vec<u8> = name.bytes().chain(0..=255u8).collect();
            if !purged {
                let abs = data.resolve(&path).expect("inside");
                std::fs::create_dir_all(abs.parent().expect("parent")).expect("mkdir");
                std::fs::write(&abs, &bytes).expect("write");
            }
            evidence.push(StoredEvidence {
                item: EvidenceItem {
                    kind,
                    role: None,
                    path,
                    sha256: sha_hex(&bytes),
                    size: bytes.len() as u64,
                },
                purged,
            });
        }
        evidence.sort_by(|a, b| a.item.path.cmp(&b.item.path));
        let fields = ChainFields {
            camera: "cam".into(),
            seq: 3,
            prev_hash: GENESIS_HASH.into(),
            id: id.into(),
            kind: "no_helmet".into(),
            track_id: 7,
            occurred_at_us: 1_780_000_000_000_000,
            confidence: 0.875,
            thresholds: "{}".into(),
            detail: "{}".into(),
            evidence: evidence.iter().map(|e| e.item.clone()).collect(),
        };
        let record = StoredRecord {
            record_hash: record_hash(&fields),
            fields,
            status: Status::Confirmed,
            tombstoned: false,
            plate: Some("AB12CD".into()),
            node: None,
            evidence,
        };
        let (key, _) = InstallationKey::load_or_create(&data).expect("key");
        Fixture {
            dir,
            data,
            record,
            key,
        }
    }

    fn review() -> ReviewRow {
        ReviewRow {
            reviewer: "rita".into(),
            status: Status::Confirmed,
            reason: String::new(),
            note: "clear".into(),
            reviewed_at_us: 1_780_000_100_000_000,
        }
    }

    fn entries(bytes: &[u8]) -> Vec<(String, Vec<u8>)> {
        let mut z = ZipArchive::new(Cursor::new(bytes)).expect("zip");
        (0..z.len())
            .map(|i| {
                let mut f = z.by_index(i).expect("entry");
                let mut b = Vec::new();
                f.read_to_end(&mut b).expect("read");
                (f.name().expect("name").into_owned(), b)
            })
            .collect()
    }

    fn rezip(entries: &[(String, Vec<u8>)]) -> Vec<u8> {
        let mut z = ZipWriter::new(Cursor::new(Vec::new()));
        for (n, b) in entries {
            z.start_file(n.as_str(), SimpleFileOptions::default())
                .expect("start");
            z.write_all(b).expect("write");
        }
        z.finish().expect("finish").into_inner()
    }

    fn check(bytes: &[u8]) -> PackageReport {
        check_package(Cursor::new(bytes), None).expect("a package")
    }

    #[test]
    fn a_built_package_checks_and_holds_every_file() {
        let fx = fixture();
        let pkg = build(&fx, &[review()]).expect("build");
        let report = check(&pkg.bytes);
        assert!(report.ok(), "{:?}", report.problems);
        assert_eq!(report.authenticity, Authenticity::NotChecked);
        let report = check_package(Cursor::new(&pkg.bytes), Some(&fx.key.public())).expect("pkg");
        assert!(report.ok(), "{:?}", report.problems);
        assert_eq!(report.files, 3);
        assert_eq!(report.violation, fx.record.fields.id);
        assert_eq!(
            report.record_hash.as_deref(),
            Some(fx.record.record_hash.as_str())
        );
        let names: Vec<String> = entries(&pkg.bytes).into_iter().map(|(n, _)| n).collect();
        assert_eq!(
            names,
            [
                "manifest.json",
                "manifest.sig",
                "violation.json",
                "evidence/clip.mp4",
                "evidence/key-photo.jpg",
                "evidence/key-raw.jpg"
            ]
        );
        let v: PackagedViolation = serde_json::from_slice(
            &entries(&pkg.bytes)
                .into_iter()
                .find(|(n, _)| n == VIOLATION_NAME)
                .expect("violation.json")
                .1,
        )
        .expect("record");
        assert_eq!(v.fields, fx.record.fields);
        assert_eq!(v.reviews, [review()]);
        assert_eq!(v.plate.as_deref(), Some("AB12CD"));
        assert_eq!(pkg.manifest.plate.as_deref(), Some("AB12CD"));
        assert_eq!(v.purged.len(), 1);
        assert!(v.purged[0].ends_with("old-crop.jpg"));
    }

    #[test]
    fn tampering_is_named() {
        let fx = fixture();
        // The fixture is confirmed: its decision and review-log entry go along.
        let pkg = build(&fx, &[review()]).expect("build");
        let orig = entries(&pkg.bytes);

        // A flipped byte in a photo.
        let mut e = orig.clone();
        let photo = e
            .iter_mut()
            .find(|(n, _)| n == "evidence/key-photo.jpg")
            .expect("photo");
        photo.1[5] ^= 1;
        let r = check(&rezip(&e));
        assert_eq!(r.problems.len(), 1, "{:?}", r.problems);
        assert!(
            r.problems[0]
                .to_string()
                .starts_with("evidence/key-photo.jpg: sha256 mismatch"),
            "{}",
            r.problems[0]
        );

        // A file removed, one added.
        let mut e: Vec<_> = orig
            .iter()
            .filter(|(n, _)| n != "evidence/clip.mp4")
            .cloned()
            .collect();
        e.push(("evidence/extra.jpg".into(), b"x".to_vec()));
        let r = check(&rezip(&e));
        let lines: Vec<String> = r.problems.iter().map(|p| p.to_string()).collect();
        assert!(
            lines.contains(&"evidence/clip.mp4: missing file (listed in manifest.json)".to_owned()),
            "{lines:?}"
        );
        assert!(
            lines.contains(&"evidence/extra.jpg: unlisted file (not in manifest.json)".to_owned()),
            "{lines:?}"
        );

        // The confidence edited, and the manifest rewritten to match: the chain still tells.
        let mut e = orig.clone();
        let vi = e
            .iter()
            .position(|(n, _)| n == VIOLATION_NAME)
            .expect("violation.json");
        let mut v: serde_json::Value = serde_json::from_slice(&e[vi].1).expect("json");
        v["confidence"] = serde_json::json!(0.99);
        e[vi].1 = serde_json::to_vec_pretty(&v).expect("json");
        let mi = e
            .iter()
            .position(|(n, _)| n == MANIFEST_NAME)
            .expect("manifest");
        let mut m: Manifest = serde_json::from_slice(&e[mi].1).expect("manifest");
        m.violation_sha256 = sha_hex(&e[vi].1);
        m.violation_size = e[vi].1.len() as u64;
        e[mi].1 = serde_json::to_vec(&m).expect("json");
        let r = check(&rezip(&e));
        assert_eq!(r.problems.len(), 1, "{:?}", r.problems);
        assert!(matches!(
            r.problems[0],
            PackageProblem::RecordHashMismatch { .. }
        ));
        assert!(r.problems[0].to_string().contains("record hash mismatch"));

        // The plate edited in violation.json, its hash in the manifest rewritten: the manifest's plate tells
        // (and, with the key, the signature).
        let mut e = orig.clone();
        let mut v: serde_json::Value = serde_json::from_slice(&e[vi].1).expect("json");
        v["plate"] = serde_json::json!("ZZ99ZZ");
        e[vi].1 = serde_json::to_vec_pretty(&v).expect("json");
        let mut m: Manifest = serde_json::from_slice(&e[mi].1).expect("manifest");
        m.violation_sha256 = sha_hex(&e[vi].1);
        m.violation_size = e[vi].1.len() as u64;
        e[mi].1 = serde_json::to_vec(&m).expect("json");
        let r = check(&rezip(&e));
        assert_eq!(r.problems.len(), 1, "{:?}", r.problems);
        assert_eq!(
            r.problems[0].to_string(),
            "manifest.json: plate AB12CD, but violation.json says ZZ99ZZ"
        );

        // A photo swapped with the manifest rewritten to match: not the recorded evidence.
        let mut e = orig.clone();
        let pi = e
            .iter()
            .position(|(n, _)| n == "evidence/key-photo.jpg")
            .expect("photo");
        e[pi].1 = b"another picture".to_vec();
        let mut m: Manifest = serde_json::from_slice(&e[mi].1).expect("manifest");
        for f in &mut m.files {
            if f.name == "evidence/key-photo.jpg" {
                f.sha256 = sha_hex(&e[pi].1);
                f.size = e[pi].1.len() as u64;
            }
        }
        e[mi].1 = serde_json::to_vec(&m).expect("json");
        let r = check(&rezip(&e));
        assert_eq!(r.problems.len(), 1, "{:?}", r.problems);
        assert!(
            matches!(&r.problems[0], PackageProblem::NotRecorded { name, .. } if name == "evidence/key-photo.jpg")
        );
    }

    fn replace(e: &mut [(String, Vec<u8>)], name: &str, bytes: Vec<u8>) {
        e.iter_mut().find(|(n, _)| n == name).expect(name).1 = bytes;
    }

    fn get<'e>(e: &'e [(String, Vec<u8>)], name: &str) -> &'e [u8] {
        &e.iter().find(|(n, _)| n == name).expect(name).1
    }

    #[test]
    fn only_the_signature_catches_a_consistent_rewrite() {
        let fx = fixture();
        let key = fx.key.public();
        let pkg = build(&fx, &[review()]).expect("build");
        let orig = entries(&pkg.bytes);
        let with_key = |b: &[u8]| check_package(Cursor::new(b), Some(&key)).expect("pkg");

        // The decision rewritten to "rejected by mallory", its review-log entry
        // recomputed to match, the manifest re-hashed: consistent, but unsigned by this key.
        let mut e = orig.clone();
        let mut v: PackagedViolation = serde_json::from_slice(get(&e, VIOLATION_NAME)).expect("v");
        v.status = Status::Rejected;
        v.reviews[0].reviewer = "mallory".into();
        v.reviews[0].status = Status::Rejected;
        v.reviews[0].reason = "helmet_worn".into();
        let vj = serde_json::to_vec_pretty(&v).expect("json");
        let mut m: Manifest = serde_json::from_slice(get(&e, MANIFEST_NAME)).expect("m");
        let rec = StoredRecord {
            status: Status::Rejected,
            ..fx.record.clone()
        };
        m.review_log = log_for(&rec, &v.reviews);
        m.status = Status::Rejected;
        m.violation_sha256 = sha_hex(&vj);
        m.violation_size = vj.len() as u64;
        replace(&mut e, VIOLATION_NAME, vj);
        replace(
            &mut e,
            MANIFEST_NAME,
            serde_json::to_vec_pretty(&m).expect("json"),
        );
        let forged = rezip(&e);
        assert!(check(&forged).ok(), "{:?}", check(&forged).problems);
        let r = with_key(&forged);
        assert_eq!(
            r.problems,
            [PackageProblem::BadSignature {
                fingerprint: key.fingerprint()
            }]
        );
        assert!(r.problems[0].to_string().contains("bad signature"));

        // The same forgery re-signed with another installation's key: the wrong key.
        let other = DataDir::new(fx.dir.path().join("other"));
        let (mallory, _) = InstallationKey::load_or_create(&other).expect("key");
        m.key_fingerprint = mallory.public().fingerprint();
        let mj = serde_json::to_vec_pretty(&m).expect("json");
        replace(&mut e, SIGNATURE_NAME, mallory.sign(&mj).into_bytes());
        replace(&mut e, MANIFEST_NAME, mj);
        let r = with_key(&rezip(&e));
        assert!(
            matches!(&r.problems[..], [PackageProblem::WrongKey { given, .. }] if *given == key.fingerprint()),
            "{:?}",
            r.problems
        );

        // Without the review log's entry changed to match, the forged decision is named even without a key.
        let mut e = orig.clone();
        let mut v: PackagedViolation = serde_json::from_slice(get(&e, VIOLATION_NAME)).expect("v");
        v.reviews[0].reviewer = "mallory".into();
        let vj = serde_json::to_vec_pretty(&v).expect("json");
        let mut m: Manifest = serde_json::from_slice(get(&e, MANIFEST_NAME)).expect("m");
        m.violation_sha256 = sha_hex(&vj);
        m.violation_size = vj.len() as u64;
        replace(&mut e, VIOLATION_NAME, vj);
        replace(
            &mut e,
            MANIFEST_NAME,
            serde_json::to_vec_pretty(&m).expect("json"),
        );
        let r = check(&rezip(&e));
        assert!(
            matches!(&r.problems[..], [PackageProblem::ReviewEntry { .. }]),
            "{:?}",
            r.problems
        );
        assert!(r.problems[0].to_string().contains("review entry mismatch"));

        // Untouched: passes with its key, fails with another installation's.
        assert!(with_key(&pkg.bytes).ok());
        let r = check_package(Cursor::new(&pkg.bytes), Some(&mallory.public())).expect("pkg");
        assert!(matches!(&r.problems[..], [PackageProblem::WrongKey { .. }]));
        // No signature at all.
        let e: Vec<_> = orig
            .iter()
            .filter(|(n, _)| n != SIGNATURE_NAME)
            .cloned()
            .collect();
        assert_eq!(
            with_key(&rezip(&e)).problems,
            [PackageProblem::SignatureMissing]
        );
    }

    #[test]
    fn no_package_is_an_error() {
        let e =
            check_package(Cursor::new(b"not a zip at all".to_vec()), None).expect_err("not a zip");
        assert!(e.to_string().contains("not an evidence package"), "{e}");
        let e = check_package(Cursor::new(rezip(&[("a.txt".into(), b"a".to_vec())])), None)
            .expect_err("no manifest");
        assert!(e.to_string().contains("no manifest.json"), "{e}");
    }

    #[test]
    fn altered_or_missing_files_are_not_packaged() {
        let fx = fixture();
        let photo = &fx
            .record
            .evidence
            .iter()
            .find(|e| e.item.path.ends_with("key-photo.jpg"))
            .expect("photo")
            .item
            .path;
        let abs = fx.data.resolve(photo).expect("inside");
        std::fs::write(&abs, b"edited").expect("write");
        let e = build(&fx, &[]).expect_err("altered");
        assert!(matches!(e, PackageError::FileAltered { .. }), "{e}");
        std::fs::remove_file(&abs).expect("rm");
        let e = build(&fx, &[]).expect_err("missing");
        assert!(matches!(e, PackageError::FileMissing { .. }), "{e}");
    }

    #[test]
    fn shared_file_names_keep_their_folders() {
        assert_eq!(
            package_names(&["evidence/a/x.jpg", "evidence/b/x.jpg", "evidence/b/y.jpg"]),
            ["evidence/a/x.jpg", "evidence/b/x.jpg", "evidence/y.jpg"]
        );
    }
}
