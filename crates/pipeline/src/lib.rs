//! The per-camera runner of roadwarden, used by `analyze --config` and `serve`: media frames →
//! detectors (the helmet model; optionally FastestDet for two-wheelers) → ByteTrack trackers → signal
//! state (video ROI or external feed) → rules → violations, handed to a callback with the unmarked images of
//! their evidence frames ([`frames`]: a ring of the last analysed frames) and their clips. One code path for
//! files and RTSP cameras. Also synthetic test scenes ([`synth`]: real backgrounds and rider crops, a scheduled
//! signal head, H.264 MP4 plus ground truth) and violation-level scoring against that truth ([`score`]).
//! Optional per-camera gating ([`gating`]): skip inference while nothing moves in the rule region (the
//! trackers coast) and run the detectors on the crop around it. The video signal ([`signal`]): each head's
//! lamps judged by position, the signal log, `config draw`'s lamp boxes.
//!
//! Optional two-stage head detection ([`heads`]): the helmet model also runs, in one batch, on upscaled crops
//! around the riders, for the small heads a CCTV frame shows.
//!
//! Replay of the pure rules over a recorded run under other settings ([`replay`]) and the rule-threshold
//! sweep and recommendation built on it ([`sweep`]). Whole-pipeline throughput of one clip at K cameras
//! ([`throughput`], for `roadwarden bench`). The shared inference of several cameras ([`shared`]: one
//! `roadwarden_infer::Batcher` per model, [`CameraPipeline::with_shared`]).
//!
//! Owns: wiring the crates for one camera and the scene/truth formats. Must not: hold rule logic (that is
//! `roadwarden-rules`), call GStreamer, OpenCV or ONNX Runtime directly (media, imaging and infer do), or
//! store evidence.

mod error;
pub mod frames;
pub mod gating;
pub mod heads;
pub mod plates;
pub mod replay;
mod runner;
pub mod score;
pub mod shared;
pub mod signal;
pub mod sweep;
pub mod synth;
pub mod throughput;

pub use error::PipelineError;
pub use frames::{FrameRing, ViolationFrames};
pub use runner::{
    CameraPipeline, ClipOptions, EvidenceOptions, FrameReport, RunSummary, RunnerEvent, SourceTick,
    run_source, run_source_observed, run_source_with,
};
pub use shared::SharedInference;
pub use signal::{
    SignalLog, SignalLogRow, SignalReading, VideoSignal, draw_signal_boxes, run_signal_only,
};
