//! The helmet rule: a tracked rider's head is `Without Helmet` in at least K of its last N observations,
//! each above the class threshold and at least a minimum size → one violation per track.

use std::collections::{BTreeMap, HashMap, HashSet, VecDeque};

use chrono::{DateTime, Utc};
use roadwarden_types::{
    BBox, CameraId, ClassRole, EvidenceFrame, FrameRole, Violation, ViolationId, ViolationKind,
};

use crate::config::HelmetParams;
use crate::geometry::Point;
use crate::observation::{ClassThreshold, FrameObservation, RiderView, Scene, TrackedObject};

/// How far (in head heights) below the head's bottom a ridden two-wheeler reaches at least: its wheels
/// are on the road under the rider's body (a rider's reach 2.8 head heights below the chin or more). A
/// "two-wheeler" a detector makes of a person's head and shoulders and what lies just below them is not
/// one they ride.
pub(crate) const MIN_WHEELS_BELOW_HEADS: f32 = 2.5;
/// A ridden two-wheeler (wheels, frame and the rider's legs) is at least this many head heights tall: a
/// smaller "two-wheeler" under a head is a detector's guess at a person's shoulders.
pub(crate) const MIN_WHEELS_HEIGHT_HEADS: f32 = 2.0;

/// The two-wheeler (among `riders`) a head rides on, by geometry: the head's centre lies within the
/// two-wheeler's width (widened by a quarter each side) and between three head heights above its top
/// and its middle, its bottom lies at least [`MIN_WHEELS_BELOW_HEADS`] head heights below the head and
/// it is at least [`MIN_WHEELS_HEIGHT_HEADS`] head heights tall. The closest such two-wheeler wins.
pub fn rider_of_head(head: &BBox, riders: &[&TrackedObject]) -> Option<usize> {
    let hx = (head.x1 + head.x2) / 2.0;
    riders
        .iter()
        .enumerate()
        .filter(|(_, r)| may_ride(head, &r.bbox))
        .min_by(|(_, a), (_, b)| {
            let da = (hx - (a.bbox.x1 + a.bbox.x2) / 2.0).abs();
            let db = (hx - (b.bbox.x1 + b.bbox.x2) / 2.0).abs();
            da.total_cmp(&db)
        })
        .map(|(i, _)| i)
}

/// Whether a head could be riding the two-wheeler `b` (the geometry of [`rider_of_head`]).
pub fn may_ride(head: &BBox, b: &BBox) -> bool {
    let (hx, hy) = ((head.x1 + head.x2) / 2.0, (head.y1 + head.y2) / 2.0);
    let hh = head.height().max(1.0);
    let margin = 0.25 * b.width();
    (b.x1 - margin..=b.x2 + margin).contains(&hx)
        && (b.y1 - 3.0 * hh..=b.y1 + 0.5 * b.height()).contains(&hy)
        && b.y2 >= head.y2 + MIN_WHEELS_BELOW_HEADS * hh
        && b.height() >= MIN_WHEELS_HEIGHT_HEADS * hh
}

#[derive(Debug, Clone)]
struct Vote {
    no_helmet: bool,
    frame_index: u64,
    at: DateTime<Utc>,
    head: TrackedObject,
    rider: Option<TrackedObject>,
}

#[derive(Debug)]
pub struct HelmetRule {
    params: HelmetParams,
    require_two_wheeler: bool,
    no_helmet: ClassThreshold,
    votes: HashMap<u64, VecDeque<Vote>>,
    fired_heads: HashSet<u64>,
    fired_riders: HashSet<u64>,
}

impl HelmetRule {
    pub fn new(
        params: HelmetParams,
        require_two_wheeler: bool,
        no_helmet: ClassThreshold,
    ) -> HelmetRule {
        HelmetRule {
            params,
            require_two_wheeler,
            no_helmet,
            votes: HashMap::new(),
            fired_heads: HashSet::new(),
            fired_riders: HashSet::new(),
        }
    }

    /// The `no_helmet` class and the score threshold its votes need.
    pub(crate) fn class_threshold(&self) -> &ClassThreshold {
        &self.no_helmet
    }

    pub(crate) fn class_threshold_mut(&mut self) -> &mut ClassThreshold {
        &mut self.no_helmet
    }

    fn thresholds(&self) -> BTreeMap<String, f64> {
        BTreeMap::from([
            (
                format!("class.{}", self.no_helmet.name),
                self.no_helmet.value as f64,
            ),
            ("helmet.min_votes".into(), self.params.min_votes as f64),
            ("helmet.window".into(), self.params.window as f64),
            ("helmet.min_head_px".into(), self.params.min_head_px as f64),
            (
                "helmet.require_two_wheeler".into(),
                if self.require_two_wheeler { 1.0 } else { 0.0 },
            ),
        ])
    }

    pub(crate) fn observe(
        &mut self,
        camera: &CameraId,
        scene: &Scene,
        obs: &FrameObservation,
        views: &[RiderView],
    ) -> Vec<Violation> {
        let mut out = Vec::new();
        for view in views.iter().filter(|v| v.head.is_live()) {
            let head = &view.head;
            if self.fired_heads.contains(&head.track_id) {
                continue;
            }
            let centre = Point::new(
                (head.bbox.x1 + head.bbox.x2) / 2.0,
                (head.bbox.y1 + head.bbox.y2) / 2.0,
            );
            if !scene.applies(centre) {
                continue;
            }
            if head.bbox.width().min(head.bbox.height()) < self.params.min_head_px {
                continue;
            }
            if let Some(r) = &view.two_wheeler
                && self.fired_riders.contains(&r.track_id)
            {
                continue;
            }
            let no_helmet = head.role == ClassRole::NoHelmet && head.score >= self.no_helmet.value;
            let window = self.votes.entry(head.track_id).or_default();
            window.push_back(Vote {
                no_helmet,
                frame_index: obs.frame_index,
                at: obs.at,
                head: head.clone(),
                rider: view.two_wheeler.clone(),
            });
            while window.len() > self.params.window as usize {
                window.pop_front();
            }
            // Pedestrians are not e-bike riders: with a two-wheeler model, the head must have been seen on one.
            if self.require_two_wheeler && !view.seen_on_two_wheeler {
                continue;
            }
            let yes: Vec<&Vote> = window.iter().filter(|v| v.no_helmet).collect();
            if yes.len() < self.params.min_votes as usize {
                continue;
            }
            // The best-scoring vote (the earliest among equals) is the key frame.
            let key = yes
                .iter()
                .copied()
                .reduce(|best, v| {
                    if v.head.score > best.head.score {
                        v
                    } else {
                        best
                    }
                })
                .cloned();
            let Some(key) = key else { continue };
            let confidence = yes.iter().map(|v| v.head.score).sum::<f32>() / yes.len() as f32;
            let mut boxes = vec![key.head.evidence()];
            boxes.extend(key.rider.as_ref().map(|r| r.evidence()));
            self.fired_heads.insert(head.track_id);
            if let Some(r) = yes.iter().rev().find_map(|v| v.rider.as_ref()) {
                self.fired_riders.insert(r.track_id);
            }
            out.push(Violation {
                plate_read: None,
                id: ViolationId::new(),
                kind: ViolationKind::NoHelmet,
                camera: camera.clone(),
                track_id: head.track_id,
                occurred_at: key.at,
                confidence,
                frames: vec![EvidenceFrame {
                    role: FrameRole::Key,
                    frame_index: key.frame_index,
                    captured_at: key.at,
                    analysed_at: None,
                    boxes,
                }],
                signal: Vec::new(),
                thresholds: self.thresholds(),
            });
            self.votes.remove(&head.track_id);
        }
        // Forget heads that are gone.
        let now = obs.at;
        self.votes.retain(|_, w| {
            w.back()
                .is_some_and(|v| now - v.at <= chrono::TimeDelta::seconds(3))
        });
        out
    }
}
