//! Camera ingest for roadwarden: the only crate that links GStreamer.
//!
//! Owns: one [`CameraSupervisor`] per camera that builds a pipeline from a template in `pipelines/` (file or
//! RTSP, software or hardware decoder), turns decoded frames into typed [`Frame`]s (I420/NV12 planes, never
//! converted to RGB), paces them to an analysis rate, hands them to a bounded [`FrameQueue`] that drops the
//! oldest frame when inference lags, and rebuilds the pipeline with capped, jittered exponential backoff on
//! errors, EOS of a live source and stalls; the evidence [`Recorder`] (a pre-event ring of encoded access
//! units written to MP4 on request, no re-encode); and [`sim::SimCamera`], an RTSP camera stand-in on
//! 127.0.0.1 for demos and tests.
//!
//! Must not: run inference, decide violations, write JPEGs (a frame's pixels are available through
//! [`Frame::image`]), or let an RTSP password reach a log line, an error or a `Debug` string (see [`redact`]).
//! Frames' wall-clock times never go backwards for a camera, across reconnects included.

mod bus;
mod encode;
mod error;
mod frame;
mod queue;
mod recorder;
pub mod redact;
pub mod sim;
mod source;
mod supervisor;
mod template;
mod timeline;

pub use encode::Mp4Writer;
pub use error::MediaError;
pub use frame::Frame;
pub use queue::{FrameQueue, QueuePolicy};
pub use recorder::{ClipJob, ClipReport, Recorder};
pub use roadwarden_types::CameraId;
pub use source::{Replay, SourceConfig, SourceKind, Transport};
pub use supervisor::{CameraState, CameraStatus, CameraSupervisor};
pub use template::Template;

/// Initialises GStreamer once per process. Every entry point calls it; calling it again is cheap.
pub fn init() -> Result<(), MediaError> {
    gst::init().map_err(|e| MediaError::Init(e.to_string()))
}
