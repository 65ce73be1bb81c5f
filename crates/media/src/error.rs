use std::path::PathBuf;

use thiserror::Error;

/// Everything that can go wrong in camera ingest. Messages never hold an RTSP password: URLs are redacted
/// before they are put in one.
#[derive(Debug, Error, Clone, PartialEq, Eq)]
pub enum MediaError {
    #[error("cannot initialise GStreamer: {0}")]
    Init(String),
    #[error("video file {path}: {reason}")]
    File { path: PathBuf, reason: String },
    #[error("camera {camera}: {reason}")]
    Stream { camera: String, reason: String },
    #[error("pipeline template {template}: {reason}")]
    Template { template: String, reason: String },
    #[error("decoder element {0:?} is not installed (gst-inspect-1.0 {0} finds nothing)")]
    MissingDecoder(String),
    #[error("bad RTSP URL {url}: {reason}")]
    Url { url: String, reason: String },
    #[error("simulated camera: {0}")]
    Sim(String),
    #[error("clip {path}: {reason}")]
    Clip { path: PathBuf, reason: String },
}
