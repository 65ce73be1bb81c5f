//! The shared inference of a process's cameras (issue 17): one [`Batcher`] per model manifest, made
//! on the first camera that asks for that model, each camera's detector a handle on it. Cameras
//! built without it keep a session of their own (the default).

use std::path::{Path, PathBuf};
use std::sync::{Mutex, PoisonError};

use roadwarden_infer::{Batcher, BatcherConfig, BatcherStats, Detector, InferError, Runtime};

/// One batcher per model, shared by every camera built with it.
#[derive(Debug)]
pub struct SharedInference {
    config: BatcherConfig,
    batchers: Mutex<Vec<(PathBuf, Batcher)>>,
}

impl SharedInference {
    pub fn new(config: BatcherConfig) -> SharedInference {
        SharedInference {
            config,
            batchers: Mutex::new(Vec::new()),
        }
    }

    pub fn config(&self) -> BatcherConfig {
        self.config
    }

    /// `camera`'s detector for the model of `manifest`, on that model's batcher; the first call for a
    /// model loads it with `runtime` (its session's thread count is the batcher's).
    pub fn detector(
        &self,
        manifest: &Path,
        camera: &str,
        runtime: &Runtime,
    ) -> Result<Detector, InferError> {
        let mut batchers = self.batchers.lock().unwrap_or_else(PoisonError::into_inner);
        if let Some((_, b)) = batchers.iter().find(|(p, _)| p == manifest) {
            return Ok(b.detector(camera));
        }
        let batcher = Batcher::new(Detector::load(manifest, runtime)?, self.config)?;
        let det = batcher.detector(camera);
        batchers.push((manifest.to_path_buf(), batcher));
        Ok(det)
    }

    /// Each model's batcher metrics so far.
    pub fn stats(&self) -> Vec<(PathBuf, BatcherStats)> {
        self.batchers
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .iter()
            .map(|(p, b)| (p.clone(), b.stats()))
            .collect()
    }
}
