//! What the rules produce and the store keeps: a violation with the evidence
//! that shows it.

use std::collections::BTreeMap;

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use crate::{BBox, CameraId, ClassId};

/// A violation's identity: a UUID (v4, or v7 for time order) chosen when the
/// rule fires; every store insert is idempotent on it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(transparent)]
pub struct ViolationId(pub uuid::Uuid);

impl ViolationId {
    /// A new, time-ordered id (UUID v7).
    pub fn new() -> Self {
        ViolationId(uuid::Uuid::now_v7())
    }
}

impl Default for ViolationId {
    fn default() -> Self {
        Self::new()
    }
}

impl std::fmt::Display for ViolationId {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        self.0.fmt(f)
    }
}

/// Which rule was broken.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ViolationKind {
    /// A rider on a two-wheeler without a helmet.
    NoHelmet,
    /// Crossed the stop line while the signal was red.
    RedLight,
}

/// Every reason code a rejection may carry, for any kind, in the order the review page numbers them.
pub const REJECT_REASONS: &[&str] = &[
    "not_a_violation",
    "helmet_worn",
    "not_two_wheeler",
    "signal_not_red",
    "wrong_track",
    "duplicate",
    "unusable_evidence",
    "other",
];

impl ViolationKind {
    /// Every kind, in a fixed order.
    pub const ALL: [ViolationKind; 2] = [ViolationKind::NoHelmet, ViolationKind::RedLight];

    pub fn as_str(self) -> &'static str {
        match self {
            ViolationKind::NoHelmet => "no_helmet",
            ViolationKind::RedLight => "red_light",
        }
    }

    /// The reason codes a rejection of this kind may carry (a subset of [`REJECT_REASONS`], same order):
    /// a helmet case cannot be rejected for the signal, a red-light case not for a helmet.
    pub fn reject_reasons(self) -> &'static [&'static str] {
        match self {
            ViolationKind::NoHelmet => &[
                "not_a_violation",
                "helmet_worn",
                "not_two_wheeler",
                "wrong_track",
                "duplicate",
                "unusable_evidence",
                "other",
            ],
            ViolationKind::RedLight => &[
                "not_a_violation",
                "signal_not_red",
                "wrong_track",
                "duplicate",
                "unusable_evidence",
                "other",
            ],
        }
    }
}

impl std::fmt::Display for ViolationKind {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

impl std::str::FromStr for ViolationKind {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        match s {
            "no_helmet" => Ok(ViolationKind::NoHelmet),
            "red_light" => Ok(ViolationKind::RedLight),
            _ => Err(format!(
                "unknown violation type `{s}`: expected no_helmet or red_light"
            )),
        }
    }
}

/// The colour a signal head shows.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, Default)]
#[serde(rename_all = "snake_case")]
pub enum SignalState {
    Red,
    Amber,
    Green,
    /// Not known (dark, occluded, no fresh controller data). Never yields a red-light violation.
    #[default]
    Unknown,
}

/// One change of signal state.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct SignalChange {
    pub at: DateTime<Utc>,
    pub state: SignalState,
}

/// The role of one evidence frame in the case.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum FrameRole {
    /// The frame the violation is dated by (the clearest no-helmet view).
    Key,
    /// Red light: the last frame before the crossing.
    Before,
    /// Red light: the frame of the crossing.
    At,
    /// Red light: the first frame after the crossing.
    After,
}

/// A box drawn on an evidence frame.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct EvidenceBox {
    pub bbox: BBox,
    pub class_id: ClassId,
    pub class_name: String,
    pub score: f32,
}

/// A frame used as evidence, with the boxes that make the case.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct EvidenceFrame {
    pub role: FrameRole,
    /// The frame's index in its camera's stream.
    pub frame_index: u64,
    /// The recording's time of the frame (the stream's or camera's time; for a file its start time plus
    /// the frame's position).
    pub captured_at: DateTime<Utc>,
    /// The analysing machine's clock when the frame was decoded, where known (shown beside the
    /// recording's time on the evidence photo when they differ by more than a second).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub analysed_at: Option<DateTime<Utc>>,
    pub boxes: Vec<EvidenceBox>,
}

/// The offender's licence plate as the plate detector saw it, and as the recogniser read it.
/// A suggestion for the reviewer: never the confirmed plate (that is the reviewer's field).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct PlateRead {
    /// The plate's box in frame pixels (of the violation's key frame).
    pub bbox: BBox,
    /// The detector's score, 0..1.
    pub confidence: f32,
    /// The recogniser's reading, when one ran on a plate large enough.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub text: Option<String>,
    /// The recogniser's confidence in `text`, 0..1.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub text_confidence: Option<f32>,
}

/// One violation, as a rule fires it: who, what, when, how sure, and what
/// shows it. Photos and clips are attached later by the evidence crate.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Violation {
    pub id: ViolationId,
    pub kind: ViolationKind,
    pub camera: CameraId,
    /// The offender's track id in that camera's tracker.
    pub track_id: u64,
    /// The recording's time of the key frame (see [`EvidenceFrame::captured_at`]).
    pub occurred_at: DateTime<Utc>,
    /// The rule's confidence, 0..1 (for no_helmet: the mean no-helmet score of the votes).
    pub confidence: f32,
    pub frames: Vec<EvidenceFrame>,
    /// Red light: the signal's changes around the violation, oldest first.
    pub signal: Vec<SignalChange>,
    /// Every threshold in force when the rule fired, by name
    /// (`"class.Without Helmet"`, `"helmet.min_votes"`, `"red_light.grace_s"`, ...).
    pub thresholds: BTreeMap<String, f64>,
    /// The offender's plate as the plate detector found it in the key frame (and the recogniser
    /// read it): a suggestion, never the confirmed plate. `None` when no plate was seen.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub plate_read: Option<PlateRead>,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn kinds_round_trip_through_their_names() {
        for k in [ViolationKind::NoHelmet, ViolationKind::RedLight] {
            assert_eq!(k.as_str().parse::<ViolationKind>().unwrap(), k);
            assert_eq!(serde_json::to_string(&k).unwrap(), format!("\"{k}\""));
        }
        assert!("speeding".parse::<ViolationKind>().is_err());
    }

    #[test]
    fn ids_are_unique_and_time_ordered() {
        let a = ViolationId::new();
        let b = ViolationId::new();
        assert_ne!(a, b);
        assert!(a < b);
    }
}

#[cfg(test)]
mod reject_reason_tests {
    use super::*;

    #[test]
    fn each_kind_has_its_own_reasons_from_the_one_list_in_its_order() {
        for kind in ViolationKind::ALL {
            let r = kind.reject_reasons();
            let pos: Vec<usize> = r
                .iter()
                .map(|x| REJECT_REASONS.iter().position(|y| y == x).expect("listed"))
                .collect();
            assert!(pos.windows(2).all(|w| w[0] < w[1]), "{kind}: {r:?}");
            assert!(r.contains(&"other") && r.contains(&"not_a_violation"));
        }
        assert!(
            !ViolationKind::NoHelmet
                .reject_reasons()
                .contains(&"signal_not_red")
        );
        assert!(
            !ViolationKind::RedLight
                .reject_reasons()
                .contains(&"helmet_worn")
        );
        for r in REJECT_REASONS {
            assert!(
                ViolationKind::ALL
                    .iter()
                    .any(|k| k.reject_reasons().contains(r)),
                "{r} unused"
            );
        }
    }
}
