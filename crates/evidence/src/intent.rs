//! Intent records: a violation the recorder has received, written durably (temp file, fsync, rename,
//! fsync of the folder) before any of its evidence files, and removed once its record is committed or
//! spooled. After a crash, [`crate::Recorder::open`] finishes every intent it finds (or quarantines it).
//!
//! The file `intents/<violation id>.intent` is one JSON header line (the violation, the stop line, the
//! clip it expects, and the length and SHA-256 of each evidence frame's JPEG) followed by the JPEGs,
//! byte for byte: the same bytes the evidence's raw frames are written from, so a finished intent gives
//! the evidence the uninterrupted recording would have.

use std::fs::File;
use std::io::Write;
use std::path::{Path, PathBuf};

use roadwarden_store::{DataDir, sync_dir};
use roadwarden_types::{FrameRole, Violation};
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use crate::EvidenceError;

#[derive(Serialize, Deserialize)]
struct Header {
    violation: Violation,
    stop_line: Option<[(f32, f32); 2]>,
    /// The clip the violation expects (absolute path), if any.
    clip: Option<PathBuf>,
    frames: Vec<FrameEntry>,
}

#[derive(Serialize, Deserialize)]
struct FrameEntry {
    role: FrameRole,
    len: usize,
    sha256: String,
}

/// An intent read back from the data folder.
pub(crate) struct Intent {
    pub(crate) violation: Violation,
    pub(crate) stop_line: Option<[(f32, f32); 2]>,
    pub(crate) clip: Option<PathBuf>,
    pub(crate) frames: Vec<(FrameRole, Vec<u8>)>,
}

/// The intent file of violation `id`.
pub(crate) fn path(data: &DataDir, id: &str) -> PathBuf {
    data.intents_dir().join(format!("{id}.intent"))
}

/// Writes the intent of `violation` durably (replacing an older one of the same violation).
pub(crate) fn write(
    data: &DataDir,
    violation: &Violation,
    stop_line: Option<[(f32, f32); 2]>,
    clip: Option<&Path>,
    frames: &[(FrameRole, &[u8])],
) -> Result<(), EvidenceError> {
    let dir = data.intents_dir();
    if !dir.is_dir() {
        std::fs::create_dir_all(&dir).map_err(|e| EvidenceError::io(&dir, e))?;
        sync_dir(data.root())?;
    }
    let header = Header {
        violation: violation.clone(),
        stop_line,
        clip: clip.map(Path::to_path_buf),
        frames: frames
            .iter()
            .map(|(role, bytes)| FrameEntry {
                role: *role,
                len: bytes.len(),
                sha256: hex::encode(Sha256::digest(bytes)),
            })
            .collect(),
    };
    let json = serde_json::to_string(&header)
        .map_err(|e| EvidenceError::Invalid(format!("intent of {}: {e}", violation.id)))?;
    let id = violation.id.to_string();
    let target = path(data, &id);
    let tmp = dir.join(format!(
        ".{id}.intent.tmp-{}",
        uuid::Uuid::new_v4().simple()
    ));
    let io = |e: std::io::Error| EvidenceError::io(&tmp, e);
    let mut f = File::create(&tmp).map_err(io)?;
    f.write_all(json.as_bytes()).map_err(io)?;
    f.write_all(b"\n").map_err(io)?;
    for (_, bytes) in frames {
        f.write_all(bytes).map_err(io)?;
    }
    f.sync_all().map_err(io)?;
    drop(f);
    std::fs::rename(&tmp, &target).map_err(|e| EvidenceError::io(&target, e))?;
    sync_dir(&dir)?;
    Ok(())
}

/// Reads an intent file; an error names what is wrong with it.
pub(crate) fn read(file: &Path) -> Result<Intent, EvidenceError> {
    let bytes = std::fs::read(file).map_err(|e| EvidenceError::io(file, e))?;
    let bad = |why: String| EvidenceError::Invalid(format!("intent {}: {why}", file.display()));
    let nl = bytes
        .iter()
        .position(|&b| b == b'\n')
        .ok_or_else(|| bad("no header line".into()))?;
    let header: Header =
        serde_json::from_slice(&bytes[..nl]).map_err(|e| bad(format!("header: {e}")))?;
    let mut rest = &bytes[nl + 1..];
    let mut frames = Vec::new();
    for f in &header.frames {
        if rest.len() < f.len {
            return Err(bad(format!("{:?} frame cut short", f.role)));
        }
        let (jpeg, tail) = rest.split_at(f.len);
        if hex::encode(Sha256::digest(jpeg)) != f.sha256 {
            return Err(bad(format!(
                "{:?} frame does not match its SHA-256",
                f.role
            )));
        }
        frames.push((f.role, jpeg.to_vec()));
        rest = tail;
    }
    if !rest.is_empty() {
        return Err(bad(format!("{} bytes after the last frame", rest.len())));
    }
    Ok(Intent {
        violation: header.violation,
        stop_line: header.stop_line,
        clip: header.clip,
        frames,
    })
}

/// Removes the intent of violation `id` (its record is committed or spooled); no intent is fine.
pub(crate) fn remove(data: &DataDir, id: &str) -> Result<(), EvidenceError> {
    let file = path(data, id);
    match std::fs::remove_file(&file) {
        Ok(()) => sync_dir(&data.intents_dir()).map_err(Into::into),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(()),
        Err(e) => Err(EvidenceError::io(&file, e)),
    }
}

/// The intent files in the data folder (sorted; temp files of unfinished writes excluded).
pub(crate) fn list(data: &DataDir) -> Result<Vec<PathBuf>, EvidenceError> {
    list_dir(&data.intents_dir(), |name| {
        !name.starts_with('.') && name.ends_with(".intent")
    })
}

/// Files in `dir` whose name passes `keep`, sorted; a missing folder holds none.
pub(crate) fn list_dir(
    dir: &Path,
    keep: impl Fn(&str) -> bool,
) -> Result<Vec<PathBuf>, EvidenceError> {
    let entries = match std::fs::read_dir(dir) {
        Ok(e) => e,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Vec::new()),
        Err(e) => return Err(EvidenceError::io(dir, e)),
    };
    let mut out = Vec::new();
    for entry in entries {
        let entry = entry.map_err(|e| EvidenceError::io(dir, e))?;
        let name = entry.file_name().to_string_lossy().into_owned();
        if entry.path().is_file() && keep(&name) {
            out.push(entry.path());
        }
    }
    out.sort();
    Ok(out)
}

/// Whether the file at `path` looks like a finished MP4: top-level boxes that run exactly to the end of
/// the file, with both the media data (`mdat`) and the index (`moov`, written last by the muxer). A clip
/// cut off by a crash fails this. Files of other types only need to be non-empty.
pub(crate) fn clip_complete(path: &Path) -> bool {
    let is_mp4 = path
        .extension()
        .is_some_and(|e| e.eq_ignore_ascii_case("mp4"));
    let Ok(bytes) = std::fs::read(path) else {
        return false;
    };
    if !is_mp4 {
        return !bytes.is_empty();
    }
    let (mut pos, mut moov, mut mdat) = (0usize, false, false);
    while pos < bytes.len() {
        let Some(head) = bytes.get(pos..pos + 8) else {
            return false;
        };
        let mut size = u32::from_be_bytes([head[0], head[1], head[2], head[3]]) as u64;
        let kind = &head[4..8];
        if size == 1 {
            let Some(large) = bytes.get(pos + 8..pos + 16) else {
                return false;
            };
            let mut b = [0u8; 8];
            b.copy_from_slice(large);
            size = u64::from_be_bytes(b);
        } else if size == 0 {
            size = (bytes.len() - pos) as u64; // runs to the end of the file
        }
        if size < 8 {
            return false;
        }
        moov |= kind == b"moov";
        mdat |= kind == b"mdat";
        pos = match usize::try_from(size).ok().and_then(|s| pos.checked_add(s)) {
            Some(p) => p,
            None => return false,
        };
    }
    pos == bytes.len() && moov && mdat
}

#[cfg(test)]
mod tests {
    use super::*;

    fn mp4(boxes: &[(&[u8; 4], usize)]) -> Vec<u8> {
        let mut out = Vec::new();
        for (kind, body) in boxes {
            out.extend_from_slice(&((body + 8) as u32).to_be_bytes());
            out.extend_from_slice(*kind);
            out.extend(std::iter::repeat_n(7u8, *body));
        }
        out
    }

    #[test]
    fn a_clip_cut_off_is_not_complete() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("c.mp4");
        let whole = mp4(&[(b"ftyp", 16), (b"mdat", 5000), (b"moov", 300)]);
        std::fs::write(&p, &whole).unwrap();
        assert!(clip_complete(&p));
        for cut in [0, 10, 30, 2000, whole.len() - 300 - 8, whole.len() - 1] {
            std::fs::write(&p, &whole[..cut]).unwrap();
            assert!(!clip_complete(&p), "cut at {cut}");
        }
        // No index written yet (the muxer writes `moov` last).
        std::fs::write(&p, mp4(&[(b"ftyp", 16), (b"mdat", 5000)])).unwrap();
        assert!(!clip_complete(&p));
        assert!(!clip_complete(&dir.path().join("absent.mp4")));
    }
}
