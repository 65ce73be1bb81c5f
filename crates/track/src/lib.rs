//! Multi-object tracking for roadwarden: ByteTrack (Zhang et al., 2022, as in ultralytics'
//! `bytetrack.yaml`) turns each frame's detections into tracks with stable ids, using a
//! constant-velocity Kalman filter per track and two-stage IoU association (high-score
//! detections first, then low-score ones against the remaining tracks).
//!
//! Owns: track state and ids, the Kalman filter, the assignment solver. Must not: do I/O,
//! touch video or images, run models, or know the rules; it is pure and deterministic, and
//! everything here tests fast on a CPU.

pub mod assignment;
pub mod kalman;
mod tracker;

pub use assignment::{Assignment, linear_assignment};
pub use kalman::{KalmanFilter, KalmanState};
pub use tracker::{
    ConfigError, DUPLICATE_IOU_DISTANCE, LOW_SCORE_MATCH_THRESH, Track, TrackId, TrackState,
    Tracker, TrackerConfig, UNCONFIRMED_MATCH_THRESH, confirmed,
};
