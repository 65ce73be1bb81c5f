//! What the rules see of one frame: tracks with their class resolved, the frame's observation, a head as
//! the rules see it (its two-wheeler), class thresholds, and the camera's geometry. Shared by the engine and
//! every rule; it imports none of them.

use chrono::{DateTime, Utc};
use roadwarden_track::TrackState;
use roadwarden_types::{BBox, ClassId, ClassRole, EvidenceBox};

use crate::geometry::{Point, StopLine, polygon_contains};

/// One track as of one frame, with its class resolved.
#[derive(Debug, Clone, PartialEq)]
pub struct TrackedObject {
    pub track_id: u64,
    pub state: TrackState,
    pub bbox: BBox,
    pub class_id: ClassId,
    pub class_name: String,
    pub role: ClassRole,
    /// Score of the detection matched this frame (or the last one matched).
    pub score: f32,
    /// Whether a detection was matched to it in this frame (false: the box is a prediction).
    pub matched: bool,
}

impl TrackedObject {
    /// Rules act on confirmed tracks seen in this frame only.
    pub fn is_live(&self) -> bool {
        self.state == TrackState::Confirmed && self.matched
    }

    pub fn evidence(&self) -> EvidenceBox {
        EvidenceBox {
            bbox: self.bbox,
            class_id: self.class_id,
            class_name: self.class_name.clone(),
            score: self.score,
        }
    }
}

/// What the trackers saw in one analysed frame of one camera.
#[derive(Debug, Clone, PartialEq)]
pub struct FrameObservation {
    pub frame_index: u64,
    pub at: DateTime<Utc>,
    /// Head tracks (helmet model).
    pub heads: Vec<TrackedObject>,
    /// Two-wheeler tracks (empty without a two-wheeler model).
    pub two_wheelers: Vec<TrackedObject>,
}

/// A head track as the rules see it in one frame: the two-wheeler it rides on in this frame (by
/// geometry), and whether it was ever seen on one.
#[derive(Debug, Clone, PartialEq)]
pub struct RiderView {
    pub head: TrackedObject,
    pub two_wheeler: Option<TrackedObject>,
    pub seen_on_two_wheeler: bool,
    /// Matched frames of this head track seen on a two-wheeler so far.
    pub two_wheeler_frames: u32,
}

/// A class's name and the score threshold in force for it.
#[derive(Debug, Clone, PartialEq)]
pub struct ClassThreshold {
    pub name: String,
    pub value: f32,
}

/// Geometry shared by the rules of one camera.
#[derive(Debug, Clone)]
pub(crate) struct Scene {
    pub line: StopLine,
    pub zones: Vec<Vec<Point>>,
    pub frame: (f32, f32),
}

impl Scene {
    /// Whether rules apply at `p`: inside the frame and inside a zone (when zones are configured).
    pub fn applies(&self, p: Point) -> bool {
        let inside = (0.0..=self.frame.0).contains(&p.x) && (0.0..=self.frame.1).contains(&p.y);
        inside && (self.zones.is_empty() || self.zones.iter().any(|z| polygon_contains(z, p)))
    }
}
