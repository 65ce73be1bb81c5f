//! The durable local spool: an append-only file of violations that could not
//! reach the database, one record a line (`<sha256 of the JSON> <JSON>\n`),
//! each fsynced before `append` returns. A torn last line (a crash while
//! appending, so never acknowledged) is cut off at open; a damaged line
//! anywhere else is an error, never skipped.

use std::fs::{File, OpenOptions};
use std::io::{Read, Write};
use std::path::{Path, PathBuf};

use sha2::{Digest, Sha256};

use crate::{NewViolation, StoreError};

pub struct Spool {
    path: PathBuf,
    file: File,
    records: Vec<NewViolation>,
}

impl Spool {
    /// Opens (creating) the spool at `path` and reads what it holds.
    pub fn open(path: &Path) -> Result<Spool, StoreError> {
        let io = |e: std::io::Error| StoreError::io(path, e);
        if let Some(dir) = path.parent() {
            std::fs::create_dir_all(dir).map_err(io)?;
        }
        let mut file = OpenOptions::new()
            .read(true)
            .append(true)
            .create(true)
            .open(path)
            .map_err(io)?;
        let mut bytes = Vec::new();
        file.read_to_end(&mut bytes).map_err(io)?;
        let mut records = Vec::new();
        let mut good_len = 0usize;
        let mut line_no = 0usize;
        let mut rest = &bytes[..];
        while !rest.is_empty() {
            line_no += 1;
            let Some(nl) = rest.iter().position(|&b| b == b'\n') else {
                break; // torn tail: no newline, never acknowledged
            };
            let line = &rest[..nl];
            let is_last = nl + 1 == rest.len();
            match parse_line(line) {
                Ok(rec) => records.push(rec),
                Err(reason) if is_last => {
                    tracing::warn!(spool = %path.display(), line = line_no, "dropping torn last spool record: {reason}");
                    break;
                }
                Err(reason) => {
                    return Err(StoreError::SpoolCorrupt {
                        path: path.to_path_buf(),
                        line: line_no,
                        reason,
                    });
                }
            }
            good_len += nl + 1;
            rest = &rest[nl + 1..];
        }
        if good_len < bytes.len() {
            file.set_len(good_len as u64).map_err(io)?;
            file.sync_all().map_err(io)?;
        }
        Ok(Spool {
            path: path.to_path_buf(),
            file,
            records,
        })
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    pub fn len(&self) -> usize {
        self.records.len()
    }

    pub fn is_empty(&self) -> bool {
        self.records.is_empty()
    }

    /// The spooled records, oldest first.
    pub fn records(&self) -> Result<Vec<NewViolation>, StoreError> {
        Ok(self.records.clone())
    }

    /// Whether a violation with this id is spooled.
    pub fn contains(&self, id: &str) -> bool {
        self.records
            .iter()
            .any(|r| r.violation.id.to_string() == id)
    }

    /// Appends one record and fsyncs it; when this returns Ok the record survives a crash.
    pub fn append(&mut self, rec: &NewViolation) -> Result<(), StoreError> {
        let json = serde_json::to_string(rec).map_err(|e| StoreError::Invalid(e.to_string()))?;
        let sum = hex::encode(Sha256::digest(json.as_bytes()));
        let line = format!("{sum} {json}\n");
        let io = |e: std::io::Error| StoreError::io(&self.path, e);
        self.file.write_all(line.as_bytes()).map_err(io)?;
        self.file.sync_data().map_err(io)?;
        self.records.push(rec.clone());
        Ok(())
    }

    /// Empties the spool (after a complete replay) and fsyncs.
    pub fn clear(&mut self) -> Result<(), StoreError> {
        let io = |e: std::io::Error| StoreError::io(&self.path, e);
        self.file.set_len(0).map_err(io)?;
        self.file.sync_all().map_err(io)?;
        self.records.clear();
        Ok(())
    }
}

fn parse_line(line: &[u8]) -> Result<NewViolation, String> {
    let text = std::str::from_utf8(line).map_err(|e| e.to_string())?;
    let (sum, json) = text.split_once(' ').ok_or("no checksum")?;
    if hex::encode(Sha256::digest(json.as_bytes())) != sum {
        return Err("checksum mismatch".into());
    }
    serde_json::from_str(json).map_err(|e| e.to_string())
}
