//! The vocabulary every roadwarden crate speaks: boxes in source-frame pixels,
//! detections, the role a detector class plays, borrowed views of images
//! and decoded video frames, and the violations rules produce; and a seeded generator ([`rng`]) for
//! reproducible synthetic scenes and tests.
//!
//! Owns: plain data types and their invariants. Must not: depend on GStreamer,
//! OpenCV, ONNX Runtime or any I/O; everything here is pure and cheap to test.

mod camera;
mod geometry;
mod image;
pub mod rng;
mod violation;

pub use camera::CameraId;
pub use geometry::BBox;
pub use image::{ImageError, ImageView, OwnedImage, PixelFormat, Plane};
pub use violation::{
    EvidenceBox, EvidenceFrame, FrameRole, PlateRead, REJECT_REASONS, SignalChange, SignalState,
    Violation, ViolationId, ViolationKind,
};

use serde::{Deserialize, Serialize};

/// What a detector class means to the rules. Every class in a model manifest
/// has one; rules look classes up by role, never by name.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ClassRole {
    /// A rider's head wearing a helmet.
    Helmet,
    /// A rider's head without a helmet.
    NoHelmet,
    Person,
    /// Bicycle, motorbike, e-bike, scooter.
    TwoWheeler,
    /// Car, bus, truck.
    Vehicle,
    TrafficLight,
    /// Known to the model, ignored by the rules.
    Other,
}

impl ClassRole {
    pub const ALL: [ClassRole; 7] = [
        ClassRole::Helmet,
        ClassRole::NoHelmet,
        ClassRole::Person,
        ClassRole::TwoWheeler,
        ClassRole::Vehicle,
        ClassRole::TrafficLight,
        ClassRole::Other,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            ClassRole::Helmet => "helmet",
            ClassRole::NoHelmet => "no_helmet",
            ClassRole::Person => "person",
            ClassRole::TwoWheeler => "two_wheeler",
            ClassRole::Vehicle => "vehicle",
            ClassRole::TrafficLight => "traffic_light",
            ClassRole::Other => "other",
        }
    }
}

impl std::fmt::Display for ClassRole {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Index of a class in a model's output (0-based, as in the model's `names`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(transparent)]
pub struct ClassId(pub usize);

/// One object found in one image, in the pixel coordinates of that image.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Detection {
    pub bbox: BBox,
    pub class_id: ClassId,
    pub score: f32,
}
