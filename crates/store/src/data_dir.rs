//! The data folder: the SQLite file, the spool, the evidence files and the
//! quarantine, and the file side of the startup reconcile.

use std::collections::HashSet;
use std::path::{Component, Path, PathBuf};

use crate::{NodeId, StoreError};

/// A data folder:
/// `roadwarden.sqlite3`, `spool.jsonl`, `signing-key.ed25519`, `evidence/<camera>/<date>/<violation>/...`,
/// `quarantine/<time>/...`,
/// `intents/<violation>.intent` (a violation being recorded: durable before any of its evidence file, removed
/// once it is committed or spooled) and `clips-in-progress/` (clips being written, before they are copied in).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DataDir {
    root: PathBuf,
}

/// What a reconcile found and did.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ReconcileReport {
    /// Orphan files moved: (relative path before, relative path in the quarantine).
    pub quarantined: Vec<(String, String)>,
    /// Files of audited purges that a crash had left, now deleted.
    pub purge_completed: Vec<String>,
    /// Files the store references that are not there.
    pub missing: Vec<String>,
}

impl DataDir {
    pub fn new(root: impl Into<PathBuf>) -> DataDir {
        DataDir { root: root.into() }
    }

    /// `$XDG_DATA_HOME/roadwarden`, else `~/.local/share/roadwarden`, else `./roadwarden-data`.
    pub fn default_root() -> PathBuf {
        if let Some(x) = std::env::var_os("XDG_DATA_HOME").filter(|x| !x.is_empty()) {
            return PathBuf::from(x).join("roadwarden");
        }
        if let Some(h) = std::env::var_os("HOME").filter(|h| !h.is_empty()) {
            return PathBuf::from(h).join(".local/share/roadwarden");
        }
        PathBuf::from("roadwarden-data")
    }

    pub fn root(&self) -> &Path {
        &self.root
    }

    pub fn sqlite_path(&self) -> PathBuf {
        self.root.join("roadwarden.sqlite3")
    }

    /// The installation's Ed25519 signing key (its private seed, mode 0600; see the evidence crate's `key`).
    pub fn signing_key_path(&self) -> PathBuf {
        self.root.join("signing-key.ed25519")
    }

    pub fn spool_path(&self) -> PathBuf {
        self.root.join("spool.jsonl")
    }

    pub fn evidence_dir(&self) -> PathBuf {
        self.root.join("evidence")
    }

    pub fn quarantine_dir(&self) -> PathBuf {
        self.root.join("quarantine")
    }

    /// This data folder's node id (one line), written at the first start of `serve` or the recorder.
    pub fn node_id_path(&self) -> PathBuf {
        self.root.join("node-id")
    }

    /// The node id this data folder was given, if any.
    pub fn node_id(&self) -> Result<Option<NodeId>, StoreError> {
        let path = self.node_id_path();
        match std::fs::read_to_string(&path) {
            Ok(s) => NodeId::parse(s.trim()).map(Some).map_err(|e| {
                StoreError::Invalid(format!(
                    "{}: {e}; delete the file or fix it",
                    path.display()
                ))
            }),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
            Err(e) => Err(StoreError::io(&path, e)),
        }
    }

    /// The folder's node id: `given` (then kept in the folder for the next start), else the one kept
    /// there, else a new one ([`NodeId::generate`]) kept there. The folder must exist.
    pub fn ensure_node_id(&self, given: Option<&NodeId>) -> Result<NodeId, StoreError> {
        let kept = self.node_id()?;
        if let (Some(k), None) = (&kept, given) {
            return Ok(k.clone());
        }
        let id = given.cloned().unwrap_or_else(NodeId::generate);
        if kept.as_ref() != Some(&id) {
            let path = self.node_id_path();
            let tmp = self.root.join(".node-id.tmp");
            std::fs::write(&tmp, format!("{id}\n")).map_err(|e| StoreError::io(&tmp, e))?;
            std::fs::rename(&tmp, &path).map_err(|e| StoreError::io(&path, e))?;
        }
        Ok(id)
    }

    /// Intent records of violations being recorded (see the evidence recorder).
    pub fn intents_dir(&self) -> PathBuf {
        self.root.join("intents")
    }

    /// Where clips are written while their post window runs, before the recorder copies them in.
    pub fn clips_in_progress_dir(&self) -> PathBuf {
        self.root.join("clips-in-progress")
    }

    /// A quarantine folder name for now (`quarantine/<stamp>/...`).
    pub fn quarantine_stamp() -> String {
        chrono::Utc::now().format("%Y%m%dT%H%M%S%.6fZ").to_string()
    }

    /// Moves the file at `rel` (relative to the data folder) to `quarantine/<stamp>/<rel>`, durably;
    /// returns its relative path in the quarantine.
    pub fn quarantine_file(&self, rel: &str, stamp: &str) -> Result<String, StoreError> {
        let abs = self.resolve(rel)?;
        let to_rel = format!("quarantine/{stamp}/{rel}");
        let to = self.resolve(&to_rel)?;
        if let Some(dir) = to.parent() {
            std::fs::create_dir_all(dir).map_err(|e| StoreError::io(dir, e))?;
        }
        std::fs::rename(&abs, &to).map_err(|e| StoreError::io(&abs, e))?;
        if let Some(dir) = to.parent() {
            sync_dir(dir)?;
        }
        if let Some(dir) = abs.parent() {
            sync_dir(dir)?;
        }
        Ok(to_rel)
    }

    /// How many files the quarantine holds.
    pub fn quarantined_files(&self) -> Result<usize, StoreError> {
        let mut files = Vec::new();
        walk(&self.quarantine_dir(), &mut files)?;
        Ok(files.len())
    }

    /// Creates the folder and its evidence folder.
    pub fn create(&self) -> Result<(), StoreError> {
        std::fs::create_dir_all(self.evidence_dir())
            .map_err(|e| StoreError::io(&self.evidence_dir(), e))
    }

    /// The absolute path of a stored relative path; refuses anything that
    /// would leave the data folder.
    pub fn resolve(&self, rel: &str) -> Result<PathBuf, StoreError> {
        let p = Path::new(rel);
        if p.components().any(|c| !matches!(c, Component::Normal(_))) {
            return Err(StoreError::Invalid(format!(
                "evidence path `{rel}` leaves the data folder"
            )));
        }
        Ok(self.root.join(p))
    }

    /// Deletes a purged evidence file; false if it was already gone.
    pub(crate) fn delete_purged(&self, rel: &str) -> Result<bool, StoreError> {
        let abs = self.resolve(rel)?;
        match std::fs::remove_file(&abs) {
            Ok(()) => {
                if let Some(dir) = abs.parent() {
                    sync_dir(dir)?;
                }
                Ok(true)
            }
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(false),
            Err(e) => Err(StoreError::io(&abs, e)),
        }
    }

    pub(crate) fn reconcile(
        &self,
        referenced: &HashSet<String>,
        purged: &HashSet<String>,
    ) -> Result<ReconcileReport, StoreError> {
        let mut report = ReconcileReport::default();
        let mut found = HashSet::new();
        let mut files = Vec::new();
        walk(&self.evidence_dir(), &mut files)?;
        files.sort();
        let stamp = Self::quarantine_stamp();
        for abs in files {
            let Ok(rel_path) = abs.strip_prefix(&self.root) else {
                continue;
            };
            let rel = rel_path
                .components()
                .map(|c| c.as_os_str().to_string_lossy())
                .collect::<Vec<_>>()
                .join("/");
            if referenced.contains(&rel) {
                found.insert(rel);
            } else if purged.contains(&rel) {
                self.delete_purged(&rel)?;
                report.purge_completed.push(rel);
            } else {
                let to_rel = self.quarantine_file(&rel, &stamp)?;
                tracing::warn!(file = %rel, quarantine = %to_rel, "orphan evidence file quarantined");
                report.quarantined.push((rel, to_rel));
            }
        }
        let mut missing: Vec<String> = referenced.difference(&found).cloned().collect();
        missing.sort();
        report.missing = missing;
        Ok(report)
    }
}

fn walk(dir: &Path, out: &mut Vec<PathBuf>) -> Result<(), StoreError> {
    let entries = match std::fs::read_dir(dir) {
        Ok(e) => e,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(()),
        Err(e) => return Err(StoreError::io(dir, e)),
    };
    for entry in entries {
        let entry = entry.map_err(|e| StoreError::io(dir, e))?;
        let ft = entry
            .file_type()
            .map_err(|e| StoreError::io(&entry.path(), e))?;
        if ft.is_dir() {
            walk(&entry.path(), out)?;
        } else {
            out.push(entry.path());
        }
    }
    Ok(())
}

/// fsyncs a directory so a rename or unlink in it is durable.
pub fn sync_dir(dir: &Path) -> Result<(), StoreError> {
    // `Path::new("data").parent()` is the empty path: the working folder.
    let dir = if dir.as_os_str().is_empty() {
        Path::new(".")
    } else {
        dir
    };
    std::fs::File::open(dir)
        .and_then(|f| f.sync_all())
        .map_err(|e| StoreError::io(dir, e))
}
