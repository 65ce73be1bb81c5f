//! The rules of roadwarden: per-site camera config (TOML, validated), stop-line geometry, the signal
//! state of each camera (video readings with hysteresis, or an external controller feed that wins while
//! fresh, and a timeline), and the helmet and red-light rules that turn tracks into [`Violation`]s.
//!
//! Owns: what a camera's config means and when it is valid, when a rule fires, and what a violation
//! records (evidence frames and boxes, the signal timeline, the thresholds in force). Must not: decode
//! video, read pixels, run models or do I/O beyond parsing the config text it is handed; it is pure
//! and deterministic (no GStreamer, OpenCV or ONNX Runtime), so everything here tests fast.

mod config;
mod engine;
mod geometry;
mod helmet;
mod observation;
mod red_light;
mod signal;

pub use config::{
    CameraConfig, ConfigError, GatingConfig, HeadsConfig, HelmetParams, InferenceConfig,
    ModelsConfig, NatsConfig, RedLightParams, SignalConfig, SignalHeadConfig, SignalSource,
    SiteConfig, SourceSpec, StopLineConfig, Zone,
};
pub use engine::{CameraRules, sits_on};
pub use geometry::{Point, Side, StopLine, polygon_contains};
pub use helmet::{HelmetRule, may_ride, rider_of_head};
pub use observation::{
    ClassThreshold, FrameObservation, RiderView, RoadUser, TrackedObject, VehicleClass,
};
pub use red_light::{
    JOIN_HEIGHTS, JOIN_S, MAX_STEP_SHARE, MIN_PROGRESS_HEIGHTS, RedLightRule, STEP_BACK_PX,
};
pub use signal::{
    DarkSource, HeadReading, Lamp, LampHead, LampParams, LampStatus, SignalTracker, agree,
};

pub use roadwarden_types::{SignalState, Violation, ViolationKind};
