//! Detector inference: reads a model manifest, loads ONNX Runtime, runs the
//! model, and turns its raw output into [`Detection`]s in source-frame pixels.
//!
//! Owns: the model manifest format, finding and loading `libonnxruntime.so`,
//! execution-provider choice, preprocessing (ultralytics-identical letterbox or
//! a plain stretch, straight from BGR/RGB images or I420/NV12 frames), decoding
//! of the `yolo` and `fastestdet` output formats, per-class NMS, and running a model on regions of a
//! frame in one batch ([`Detector::detect_regions`], two-stage inference), and the shared inference
//! batcher ([`Batcher`]: one model's session on its own thread, the inputs of every camera gathered
//! into batches of up to `max_batch` within `max_wait`, each camera's outputs returned to it, with
//! batch-size and per-camera latency counters).
//! Must not: decode image files or video (callers hand in an [`ImageView`]),
//! track objects across frames, or know about rules or cameras (a batcher knows its
//! handles only by the names it is given); the batcher thread is the only thread this crate
//! starts; this is the only crate that links ONNX Runtime.

mod batcher;
mod crop;
mod decode;
mod detector;
mod error;
mod manifest;
mod nms;
mod preprocess;
mod runtime;

pub use batcher::{Batcher, BatcherConfig, BatcherStats, CameraLatency};
pub use crop::Region;
pub use decode::{Candidate, OutputLayout, decode};
pub use detector::{DetectOptions, Detector, InputShape, ScoreMode};
pub use error::InferError;
pub use manifest::{ClassSpec, ColorOrder, InputSpec, Manifest, ModelFormat, ResizeMode};
pub use nms::nms_per_class;
pub use preprocess::{Letterbox, fill_input};
pub use runtime::{ExecutionProvider, Runtime, RuntimeConfig, default_library_paths};

pub use roadwarden_types::{BBox, ClassId, ClassRole, Detection, ImageView, PixelFormat};
