//! The red-light rule: a track's reference point (bottom centre of its rider/two-wheeler box) crosses the
//! stop line from the before side while the signal has been red for at least the grace time → one
//! violation, with the frames before / at / after the crossing. Riders are followed by their head track
//! (the estimated body below it); two-wheelers no eligible rider's head was seen on are followed by their
//! own track. A crossing close in time and place to one already reported is the same offender (a second
//! track of one rider) and is not reported again.

use std::collections::{BTreeMap, HashMap, HashSet};

use chrono::{DateTime, TimeDelta, Utc};
use roadwarden_types::{
    BBox, CameraId, EvidenceFrame, FrameRole, Violation, ViolationId, ViolationKind,
};

use crate::config::RedLightParams;
use crate::geometry::{Point, Side};
use crate::observation::{ClassThreshold, FrameObservation, RiderView, Scene, TrackedObject};
use crate::signal::SignalTracker;

#[derive(Debug, Clone)]
struct Snapshot {
    frame_index: u64,
    at: DateTime<Utc>,
    object: TrackedObject,
}

impl Snapshot {
    fn frame(&self, role: FrameRole) -> EvidenceFrame {
        EvidenceFrame {
            role,
            frame_index: self.frame_index,
            captured_at: self.at,
            boxes: vec![self.object.evidence()],
        }
    }
}

#[derive(Debug, Clone)]
struct Pending {
    before: Snapshot,
    at: Snapshot,
    /// Seen on a two-wheeler (or none is required).
    eligible: bool,
}

#[derive(Debug)]
pub struct RedLightRule {
    params: RedLightParams,
    /// Only riders seen on a two-wheeler count (a two-wheeler model is configured).
    two_wheelers: bool,
    class: Option<ClassThreshold>,
    hysteresis: u32,
    tolerance: f32,
    /// Last side (not `On`) and last snapshot of each track.
    last: HashMap<u64, (Side, Snapshot)>,
    pending: HashMap<u64, Pending>,
    fired: HashSet<u64>,
    /// Per head track: the last offset (x of the centre, y of the bottom) from its body estimate to its
    /// two-wheeler's box, and when it was seen.
    offsets: HashMap<u64, (f32, f32, DateTime<Utc>)>,
    /// Two-wheeler tracks an eligible rider's head was seen on, and when last.
    claimed: HashMap<u64, DateTime<Utc>>,
    /// Time, reference point and box width of each crossing reported (recent ones only).
    reported: Vec<(DateTime<Utc>, Point, f32)>,
}

/// A second crossing within this long of a reported one ...
pub const SAME_OFFENDER_S: f64 = 1.0;
/// ... whose reference point is within this many of the reported box's widths of it, is the same offender
/// seen on a second head track (an id switch), not a second violation.
pub const SAME_OFFENDER_WIDTHS: f32 = 1.0;

/// Keys of two-wheeler tracks in the rule's maps (head tracks use their plain id).
const WHEELS: u64 = 1 << 62;

/// A rider's box estimated from the head's: twice as wide, reaching `body_heads` head heights below it.
fn body_from_head(head: &BBox, body_heads: f32) -> BBox {
    let (cx, w, h) = ((head.x1 + head.x2) / 2.0, head.width(), head.height());
    BBox::new(cx - w, head.y1, cx + w, head.y2 + body_heads * h)
}

impl RedLightRule {
    pub fn new(
        params: RedLightParams,
        two_wheelers: bool,
        class: Option<ClassThreshold>,
        hysteresis: u32,
        tolerance: f32,
    ) -> RedLightRule {
        RedLightRule {
            params,
            two_wheelers,
            class,
            hysteresis,
            tolerance,
            last: HashMap::new(),
            pending: HashMap::new(),
            fired: HashSet::new(),
            reported: Vec::new(),
            claimed: HashMap::new(),
            offsets: HashMap::new(),
        }
    }

    /// The two-wheeler class and its threshold, when the camera has a two-wheeler model.
    pub(crate) fn class_threshold(&self) -> Option<&ClassThreshold> {
        self.class.as_ref()
    }

    pub(crate) fn class_threshold_mut(&mut self) -> Option<&mut ClassThreshold> {
        self.class.as_mut()
    }

    fn thresholds(&self) -> BTreeMap<String, f64> {
        let mut t = BTreeMap::from([
            ("red_light.grace_s".to_string(), self.params.grace_s),
            (
                "signal.hysteresis_frames".to_string(),
                self.hysteresis as f64,
            ),
            ("stop_line.tolerance_px".to_string(), self.tolerance as f64),
        ]);
        if let Some(c) = &self.class {
            t.insert(format!("class.{}", c.name), c.value as f64);
        }
        t.insert("red_light.body_heads".into(), self.params.body_heads as f64);
        t.insert(
            "red_light.require_two_wheeler".into(),
            if self.two_wheelers { 1.0 } else { 0.0 },
        );
        t
    }

    fn violation(
        &self,
        camera: &CameraId,
        signal: &SignalTracker,
        p: &Pending,
        after: Option<&Snapshot>,
    ) -> Violation {
        let mut frames = vec![p.before.frame(FrameRole::Before), p.at.frame(FrameRole::At)];
        frames.extend(after.map(|a| a.frame(FrameRole::After)));
        let scores: Vec<f32> = frames
            .iter()
            .flat_map(|f| f.boxes.iter().map(|b| b.score))
            .collect();
        let confidence = scores.iter().sum::<f32>() / scores.len().max(1) as f32;
        let end = after.map(|a| a.at).unwrap_or(p.at.at);
        Violation {
            id: ViolationId::new(),
            kind: ViolationKind::RedLight,
            camera: camera.clone(),
            track_id: p.at.object.track_id,
            occurred_at: p.at.at,
            confidence,
            frames,
            signal: signal.timeline_between(p.at.at - TimeDelta::seconds(10), end),
            thresholds: self.thresholds(),
        }
    }

    /// Records `p` as reported unless it is the same offender as a crossing reported just before (see
    /// [`SAME_OFFENDER_S`]); returns whether it is a new one.
    fn first_report(&mut self, p: &Pending) -> bool {
        let (at, b) = (p.at.at, &p.at.object.bbox);
        let point = Point::bottom_centre(b);
        let same = self.reported.iter().any(|(t, q, w)| {
            let (dx, dy) = (point.x - q.x, point.y - q.y);
            (at - *t).as_seconds_f64().abs() <= SAME_OFFENDER_S
                && (dx * dx + dy * dy).sqrt() <= SAME_OFFENDER_WIDTHS * w.max(b.width())
        });
        if !same {
            self.reported.push((at, point, b.width()));
        }
        !same
    }

    pub(crate) fn observe(
        &mut self,
        camera: &CameraId,
        scene: &Scene,
        signal: &SignalTracker,
        obs: &FrameObservation,
        views: &[RiderView],
    ) -> Vec<Violation> {
        let grace = TimeDelta::milliseconds((self.params.grace_s * 1000.0).round() as i64);
        let mut out = Vec::new();
        // Riders: a head track's estimated body, reaching down to the road. An estimate that reaches
        // below the frame is cut at its edge, as a detector's box would be: a near rider's wheels are at
        // the bottom of the picture.
        let mut movers: Vec<(u64, TrackedObject, bool)> = Vec::new();
        for view in views.iter().filter(|v| v.head.is_live()) {
            let body = body_from_head(&view.head.bbox, self.params.body_heads);
            // Where the rider's two-wheeler is seen, its box is the rider's (the head of a leaning rider
            // is ahead of the wheels); where it is missed, the body estimate moved by the last offset
            // seen between the two, so the reference point does not jump between the two estimates.
            let bbox = match &view.two_wheeler {
                Some(w) => {
                    let (dx, dy) = (
                        (w.bbox.x1 + w.bbox.x2 - body.x1 - body.x2) / 2.0,
                        w.bbox.y2 - body.y2,
                    );
                    self.offsets.insert(view.head.track_id, (dx, dy, obs.at));
                    w.bbox
                }
                None => match self.offsets.get(&view.head.track_id) {
                    Some((dx, dy, _)) => {
                        BBox::new(body.x1 + dx, body.y1, body.x2 + dx, body.y2 + dy)
                    }
                    None => body,
                },
            };
            let o = TrackedObject {
                bbox: bbox.clip(scene.frame.0, scene.frame.1),
                ..view.head.clone()
            };
            let eligible = !self.two_wheelers || view.seen_on_two_wheeler;
            if eligible && let Some(w) = &view.two_wheeler {
                self.claimed.insert(w.track_id, obs.at);
            }
            movers.push((o.track_id, o, eligible));
        }
        // Two-wheelers no rider's head is known on (a small or hidden head the helmet model misses):
        // the two-wheeler's own box. A crossing of one that is the same offender as a rider's is
        // dropped by `first_report`.
        if self.two_wheelers {
            for w in obs.two_wheelers.iter().filter(|w| w.is_live()) {
                if !self.claimed.contains_key(&w.track_id) {
                    movers.push((WHEELS | w.track_id, w.clone(), true));
                }
            }
        }
        for (key, o, eligible) in movers {
            let o = &TrackedObject { track_id: key, ..o };
            let snap = Snapshot {
                frame_index: obs.frame_index,
                at: obs.at,
                object: TrackedObject {
                    track_id: key & !WHEELS,
                    ..o.clone()
                },
            };
            if let Some(p) = self.pending.remove(&o.track_id)
                && (eligible || p.eligible)
            {
                if self.first_report(&p) {
                    out.push(self.violation(camera, signal, &p, Some(&snap)));
                }
                self.fired.insert(o.track_id);
            }
            let p = Point::bottom_centre(&o.bbox);
            let side = if scene.applies(p) && scene.line.spans(p, self.tolerance) {
                scene.line.side(p)
            } else {
                Side::On
            };
            if side == Side::On {
                continue;
            }
            let previous = self.last.insert(o.track_id, (side, snap.clone()));
            if let Some((Side::Before, before)) = previous
                && side == Side::After
                && !self.fired.contains(&o.track_id)
                && !self.pending.contains_key(&o.track_id)
                && signal.red_for(obs.at, grace)
            {
                self.pending.insert(
                    o.track_id,
                    Pending {
                        before,
                        at: snap,
                        eligible,
                    },
                );
            }
        }
        // A pending crossing whose track was not seen again within a second fires without an "after" frame.
        let stale: Vec<u64> = self
            .pending
            .iter()
            .filter(|(_, p)| obs.at - p.at.at > TimeDelta::seconds(1))
            .map(|(id, _)| *id)
            .collect();
        for id in stale {
            if let Some(p) = self.pending.remove(&id)
                && p.eligible
            {
                if self.first_report(&p) {
                    out.push(self.violation(camera, signal, &p, None));
                }
                self.fired.insert(id);
            }
        }
        self.reported
            .retain(|(at, _, _)| (obs.at - *at).as_seconds_f64() <= 2.0 * SAME_OFFENDER_S);
        self.claimed.retain(|_, at| now_s(obs.at, *at) <= 3.0);
        self.offsets
            .retain(|_, (_, _, at)| now_s(obs.at, *at) <= 3.0);
        // Tracks unseen for a while are gone (the tracker reports matched tracks only).
        let now = obs.at;
        self.last
            .retain(|_, (_, s)| now - s.at <= TimeDelta::seconds(3));
        out
    }

    pub(crate) fn flush(&mut self, camera: &CameraId, signal: &SignalTracker) -> Vec<Violation> {
        let pending: Vec<(u64, Pending)> = self.pending.drain().collect();
        let mut out = Vec::new();
        let mut pending: Vec<(u64, Pending)> =
            pending.into_iter().filter(|(_, p)| p.eligible).collect();
        pending.sort_by_key(|(_, p)| p.at.at);
        for (id, p) in pending {
            if self.first_report(&p) {
                out.push(self.violation(camera, signal, &p, None));
            }
            self.fired.insert(id);
        }
        out
    }
}

fn now_s(now: DateTime<Utc>, at: DateTime<Utc>) -> f64 {
    (now - at).as_seconds_f64()
}
