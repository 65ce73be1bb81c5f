//! Crash-safe evidence files: written to a temporary file in the target
//! folder, fsynced, renamed into place, and the folder fsynced, so a file that
//! exists under its final name is complete.

use std::fs::File;
use std::io::{Read, Write};
use std::path::Path;

use roadwarden_store::sync_dir;
use sha2::{Digest, Sha256};

use crate::EvidenceError;

/// Writes `bytes` to `path` atomically and durably; returns (sha256 hex, size).
/// An existing file with the same content is kept; one with other content is an error.
pub fn write_atomic(path: &Path, bytes: &[u8]) -> Result<(String, u64), EvidenceError> {
    let sha = hex::encode(Sha256::digest(bytes));
    if path.exists() {
        let (existing, _) = sha256_file(path)?;
        if existing == sha {
            return Ok((sha, bytes.len() as u64));
        }
        return Err(EvidenceError::Invalid(format!(
            "{} already exists with other content; refusing to overwrite evidence",
            path.display()
        )));
    }
    let dir = path
        .parent()
        .ok_or_else(|| EvidenceError::Invalid(format!("{} has no folder", path.display())))?;
    create_dir_durable(dir)?;
    let name = path
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    let tmp = dir.join(format!(".{name}.tmp-{}", uuid::Uuid::new_v4().simple()));
    let io = |e: std::io::Error| EvidenceError::io(&tmp, e);
    let mut f = File::create(&tmp).map_err(io)?;
    f.write_all(bytes).map_err(io)?;
    f.sync_all().map_err(io)?;
    drop(f);
    std::fs::rename(&tmp, path).map_err(|e| EvidenceError::io(path, e))?;
    sync_dir(dir)?;
    Ok((sha, bytes.len() as u64))
}

/// Copies `src` into `path` atomically and durably, hashing as it goes.
#[cfg_attr(not(feature = "capture"), allow(dead_code))]
pub(crate) fn copy_atomic(src: &Path, path: &Path) -> Result<(String, u64), EvidenceError> {
    let bytes = std::fs::read(src).map_err(|e| EvidenceError::io(src, e))?;
    write_atomic(path, &bytes)
}

/// The SHA-256 (hex) and size of a file.
pub fn sha256_file(path: &Path) -> Result<(String, u64), EvidenceError> {
    let io = |e: std::io::Error| EvidenceError::io(path, e);
    let mut f = File::open(path).map_err(io)?;
    let mut h = Sha256::new();
    let mut buf = vec![0u8; 1 << 16];
    let mut size = 0u64;
    loop {
        let n = f.read(&mut buf).map_err(io)?;
        if n == 0 {
            break;
        }
        size += n as u64;
        h.update(&buf[..n]);
    }
    Ok((hex::encode(h.finalize()), size))
}

/// create_dir_all, fsyncing each new folder's parent so the folder itself survives a crash.
pub(crate) fn create_dir_durable(dir: &Path) -> Result<(), EvidenceError> {
    // The parent of a relative one-part path (`data`) is the empty path: the working folder.
    if dir.as_os_str().is_empty() || dir.is_dir() {
        return Ok(());
    }
    if let Some(parent) = dir.parent() {
        create_dir_durable(parent)?;
    }
    match std::fs::create_dir(dir) {
        Ok(()) => {}
        Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => return Ok(()),
        Err(e) => return Err(EvidenceError::io(dir, e)),
    }
    if let Some(parent) = dir.parent() {
        sync_dir(parent)?;
    }
    Ok(())
}
