//! What the rules see of one frame: tracks with their class resolved, the frame's observation, a head as
//! the rules see it (its two-wheeler), class thresholds, and the camera's geometry. Shared by the engine and
//! every rule; it imports none of them.

use chrono::{DateTime, Utc};
use roadwarden_track::TrackState;
use roadwarden_types::{BBox, ClassId, ClassRole, EvidenceBox};
use serde::{Deserialize, Serialize};

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

    /// The vehicle class of a road-user track, if it is a vehicle (see [`VehicleClass::of`]).
    pub fn vehicle_class(&self) -> Option<VehicleClass> {
        VehicleClass::of(self.role, &self.class_name)
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
    /// Road-user tracks of the two-wheeler model (empty without one), told apart by their `role`:
    /// two-wheelers (and rider-with-vehicle classes, whose manifests give them the `two_wheeler` role),
    /// persons, and vehicles (car, bus, truck). The name is kept from when it held two-wheelers only.
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
    /// `red_light.approach`: the lanes before the line (`None`: the drawn line only).
    pub approach: Option<Vec<Point>>,
}

impl Scene {
    /// Whether rules apply at `p`: inside the frame and inside a zone (when zones are configured).
    pub(crate) fn applies(&self, p: Point) -> bool {
        let inside = (0.0..=self.frame.0).contains(&p.x) && (0.0..=self.frame.1).contains(&p.y);
        inside && (self.zones.is_empty() || self.zones.iter().any(|z| polygon_contains(z, p)))
    }
}

/// The vehicle classes the red-light rule judges, each enabled per camera (`[camera.red_light] classes`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum VehicleClass {
    /// Motorbike, scooter, bicycle, or a rider-with-vehicle box; also a person seen sitting on one.
    TwoWheeler,
    Car,
    Bus,
    Truck,
}

impl VehicleClass {
    pub const ALL: [VehicleClass; 4] = [
        VehicleClass::TwoWheeler,
        VehicleClass::Car,
        VehicleClass::Bus,
        VehicleClass::Truck,
    ];

    /// The class of a detector class, by its role (from the model's manifest) and, for the `vehicle`
    /// role, which the manifests give to cars, buses and trucks alike, its name: a name with `bus` is a
    /// bus, with `truck` or `lorry` a truck, any other vehicle a car. `None`: not a vehicle.
    pub fn of(role: ClassRole, class_name: &str) -> Option<VehicleClass> {
        match role {
            ClassRole::TwoWheeler => Some(VehicleClass::TwoWheeler),
            ClassRole::Vehicle => {
                let n = class_name.to_ascii_lowercase();
                Some(if n.contains("bus") {
                    VehicleClass::Bus
                } else if n.contains("truck") || n.contains("lorry") {
                    VehicleClass::Truck
                } else {
                    VehicleClass::Car
                })
            }
            _ => None,
        }
    }

    pub fn as_str(self) -> &'static str {
        match self {
            VehicleClass::TwoWheeler => "two_wheeler",
            VehicleClass::Car => "car",
            VehicleClass::Bus => "bus",
            VehicleClass::Truck => "truck",
        }
    }
}

impl std::fmt::Display for VehicleClass {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A road-user track the red-light rule may follow: its class, and whether it counts (its class is
/// enabled, and a person is a rider).
#[derive(Debug, Clone, PartialEq)]
pub struct RoadUser {
    pub object: TrackedObject,
    pub class: VehicleClass,
    pub eligible: bool,
}
