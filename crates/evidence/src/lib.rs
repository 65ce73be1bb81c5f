//! Evidence that holds up in review: each violation's photos (with an
//! information strip added above the frame, and the unmarked frame beside it), the offender crop
//! (the head for no-helmet, the rider for red light) and clip written
//! crash-safely into the data folder, the SHA-256 of every file, the
//! per-camera hash chain over the records, `verify`, which recomputes all
//! of it and names exactly which record or file is broken, and evidence
//! packages (one violation's files, record, review-log entries and a manifest
//! signed with the installation's Ed25519 key, in a ZIP) with their
//! stand-alone check.
//!
//! Owns: the evidence file layout and writing (temp file, fsync, rename, fsync
//! of the folder, all before the row commits), the chain's canonical hash, the
//! [`Recorder`] (a durable intent record first, then the files, then the store, or the spool while the
//! store is unreachable; at open it finishes or quarantines what a crash left in progress),
//! verification (the review log's chain included), the installation's signing key (whose private part
//! never leaves `key.rs`), and the package format. Must not: issue SQL (that is the store's),
//! decide what a violation is (the rules'), or call OpenCV except through the
//! imaging crate.

pub mod chain;
mod files;
#[cfg(feature = "capture")]
mod intent;
pub mod key;
pub mod package;
#[cfg(feature = "capture")]
mod recorder;
mod verify;

pub use files::{sha256_file, write_atomic};
pub use key::{InstallationKey, KeyParseError, PublicKey};
pub use package::{
    Authenticity, Package, PackageError, PackageProblem, PackageReport, build_package,
    check_package,
};
#[cfg(feature = "capture")]
pub use recorder::{Capture, FrameImage, Recorded, Recorder, Recovery, StartupReport};
pub use roadwarden_store::{DataDir, Store};
pub use verify::{Problem, VerifyReport, verify};

use thiserror::Error;

#[derive(Debug, Error)]
pub enum EvidenceError {
    #[error(transparent)]
    Store(#[from] roadwarden_store::StoreError),
    #[cfg(feature = "capture")]
    #[error(transparent)]
    Imaging(#[from] roadwarden_imaging::ImagingError),
    #[error("{}: {source}", path.display())]
    Io {
        path: std::path::PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("{0}")]
    Invalid(String),
}

impl EvidenceError {
    pub(crate) fn io(path: &std::path::Path, source: std::io::Error) -> Self {
        EvidenceError::Io {
            path: path.to_path_buf(),
            source,
        }
    }
}
