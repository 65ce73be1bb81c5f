//! The red-light rule: a vehicle's ground point (the bottom centre of its box: a car, bus or truck, a
//! two-wheeler, or a rider the detector boxed as a person sitting on one) moves from the approach (the
//! lanes before the line: the `red_light.approach` polygon, or the drawn line's span) to past the line
//! while the signal has been red for at least the grace time, with consistent displacement over several
//! analysed frames → one violation, with the frames before / at / after the crossing. Each road-user track
//! is followed by its own box only, so a box that switches between detections cannot move its point; a
//! track lost near the line and found again past it is joined to the new track by motion (here, not in the
//! tracker: the tracker's ids stay what the detector saw). Without a two-wheeler model (heads only) a
//! rider is followed by the body estimated below its head, as before. A crossing close in time and place to
//! one already reported is the same offender (a second track of one vehicle) and is not reported again.

use std::collections::{BTreeMap, HashMap, HashSet, VecDeque};

use chrono::{DateTime, TimeDelta, Utc};
use roadwarden_types::{
    BBox, CameraId, EvidenceFrame, FrameRole, Violation, ViolationId, ViolationKind,
};

use crate::config::RedLightParams;
use crate::geometry::{Point, Side, polygon_contains};
use crate::observation::{
    ClassThreshold, FrameObservation, RiderView, RoadUser, Scene, TrackedObject, VehicleClass,
};
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
            analysed_at: None,
            boxes: vec![self.object.evidence()],
        }
    }
}

#[derive(Debug, Clone)]
struct Pending {
    before: Snapshot,
    at: Snapshot,
    eligible: bool,
}

/// What the rule follows: a head's estimated body (no two-wheeler model) or a road-user track.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
enum Key {
    Head(u64),
    Road(u64),
}

/// One followed track: its recent ground points, the last snapshot on the approach, and the first one
/// past the line since.
#[derive(Debug, Clone)]
struct Follow {
    class: Option<VehicleClass>,
    /// (time, ground point, signed distance from the line, positive before it), oldest first.
    points: VecDeque<(DateTime<Utc>, Point, f32)>,
    before: Option<Snapshot>,
    /// The first frame past the line after `before`, and how many observations since.
    past: Option<(Snapshot, u32)>,
    last: Snapshot,
    height: f32,
}

/// Points kept per followed track.
const HISTORY: usize = 12;
/// Of a crossing's displacement over `min_frames`, no single step may make more than this share: a
/// box that jumps while the vehicle stands still makes all of it in one step.
pub const MAX_STEP_SHARE: f32 = 0.8;
/// A step back towards the approach larger than this (pixels, or the tolerance if larger) breaks the
/// consistency of a crossing.
pub const STEP_BACK_PX: f32 = 1.5;
/// A crossing's displacement is at least this fraction of the box height (and twice the tolerance).
pub const MIN_PROGRESS_HEIGHTS: f32 = 0.05;
/// A track lost within this long ...
pub const JOIN_S: f64 = 1.5;
/// ... is joined to a new track whose ground point lies within this many box heights (at least 24 px) of
/// where its motion predicts it, of the same class and a similar size.
pub const JOIN_HEIGHTS: f32 = 0.5;

#[derive(Debug)]
pub struct RedLightRule {
    params: RedLightParams,
    /// Only riders seen on a two-wheeler count (a two-wheeler model is configured).
    two_wheelers: bool,
    class: Option<ClassThreshold>,
    hysteresis: u32,
    tolerance: f32,
    follows: HashMap<Key, Follow>,
    pending: HashMap<Key, Pending>,
    fired: HashSet<Key>,
    /// Time, reference point and box width of each crossing reported (recent ones only).
    reported: Vec<(DateTime<Utc>, Point, f32)>,
}

/// A second crossing within this long of a reported one ...
pub(crate) const SAME_OFFENDER_S: f64 = 1.0;
/// ... whose reference point is within this many of the reported box's widths of it, is the same offender
/// seen on a second track (an id switch, a rider's person box and two-wheeler box), not a second violation.
pub(crate) const SAME_OFFENDER_WIDTHS: f32 = 1.0;

/// A rider's box estimated from the head's: twice as wide, reaching `body_heads` head heights below it.
fn body_from_head(head: &BBox, body_heads: f32) -> BBox {
    let (cx, w, h) = ((head.x1 + head.x2) / 2.0, head.width(), head.height());
    BBox::new(cx - w, head.y1, cx + w, head.y2 + body_heads * h)
}

/// Whether the last `n` points moved consistently towards and past the line: at least `min` in all,
/// no step back, and no single step most of it.
fn consistent(points: &VecDeque<(DateTime<Utc>, Point, f32)>, n: usize, min: f32) -> bool {
    if points.len() < n || n < 2 {
        return false;
    }
    let d: Vec<f32> = points.iter().skip(points.len() - n).map(|p| p.2).collect();
    let steps: Vec<f32> = d.windows(2).map(|w| w[0] - w[1]).collect();
    let total: f32 = steps.iter().sum();
    let largest = steps.iter().copied().fold(0.0, f32::max);
    total >= min && steps.iter().all(|s| *s >= -STEP_BACK_PX) && largest <= MAX_STEP_SHARE * total
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
            follows: HashMap::new(),
            pending: HashMap::new(),
            fired: HashSet::new(),
            reported: Vec::new(),
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
            (
                "red_light.min_frames".to_string(),
                self.params.min_frames as f64,
            ),
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
            plate_read: None,
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

    /// Which side of the line `p` is on for this rule: `Before` only on the approach (inside the
    /// approach polygon, or along the drawn line), `After` past the line within the approach's reach
    /// along it, `On` otherwise (near the line, off to the side, outside the zones).
    fn side(&self, scene: &Scene, p: Point) -> Side {
        if !scene.applies(p) {
            return Side::On;
        }
        let side = scene.line.side(p);
        match &scene.approach {
            None => {
                if scene.line.spans(p, self.tolerance) {
                    side
                } else {
                    Side::On
                }
            }
            Some(poly) => match side {
                Side::Before if polygon_contains(poly, p) => Side::Before,
                Side::After if within_reach(scene, poly, p) => Side::After,
                _ => Side::On,
            },
        }
    }

    /// A track new to the rule: the lost track (not seen this frame, seen within [`JOIN_S`], not past the
    /// line yet) whose motion predicts `p`, of the same class and a similar size, if any.
    fn lost_for(
        &self,
        seen: &HashSet<Key>,
        at: DateTime<Utc>,
        class: Option<VehicleClass>,
        p: Point,
        height: f32,
    ) -> Option<Key> {
        self.follows
            .iter()
            .filter(|(k, f)| {
                !seen.contains(k)
                    && !self.fired.contains(k)
                    && f.class == class
                    && f.past.is_none()
                    && (0.6..=1.6).contains(&(height / f.height.max(1.0)))
                    && (at - f.last.at).as_seconds_f64() <= JOIN_S
            })
            .filter_map(|(k, f)| {
                let (t1, p1, _) = *f.points.back()?;
                let (vx, vy) = match f.points.len() {
                    n if n >= 2 => {
                        let (t0, p0, _) = f.points[n - 2];
                        let dt = (t1 - t0).as_seconds_f64().max(1e-3) as f32;
                        ((p1.x - p0.x) / dt, (p1.y - p0.y) / dt)
                    }
                    _ => (0.0, 0.0),
                };
                let dt = (at - t1).as_seconds_f64() as f32;
                let (ex, ey) = (p1.x + vx * dt - p.x, p1.y + vy * dt - p.y);
                let miss = (ex * ex + ey * ey).sqrt();
                (miss <= (JOIN_HEIGHTS * height).max(24.0)).then_some((*k, miss))
            })
            .min_by(|a, b| a.1.total_cmp(&b.1))
            .map(|(k, _)| k)
    }

    pub(crate) fn observe(
        &mut self,
        camera: &CameraId,
        scene: &Scene,
        signal: &SignalTracker,
        obs: &FrameObservation,
        views: &[RiderView],
        users: &[RoadUser],
    ) -> Vec<Violation> {
        let grace = TimeDelta::milliseconds((self.params.grace_s * 1000.0).round() as i64);
        let mut out = Vec::new();
        let mut movers: Vec<(Key, TrackedObject, Option<VehicleClass>, bool)> = Vec::new();
        if self.class.is_none() {
            // No two-wheeler model: a head track's estimated body, reaching down to the road. An
            // estimate that reaches below the frame is cut at its edge, as a detector's box would be.
            for view in views.iter().filter(|v| v.head.is_live()) {
                let body = body_from_head(&view.head.bbox, self.params.body_heads);
                let o = TrackedObject {
                    bbox: body.clip(scene.frame.0, scene.frame.1),
                    ..view.head.clone()
                };
                movers.push((Key::Head(o.track_id), o, None, true));
            }
        }
        for u in users {
            movers.push((
                Key::Road(u.object.track_id),
                u.object.clone(),
                Some(u.class),
                u.eligible,
            ));
        }
        let seen: HashSet<Key> = movers.iter().map(|m| m.0).collect();
        let min_frames = self.params.min_frames as usize;
        for (key, o, class, eligible) in movers {
            let snap = Snapshot {
                frame_index: obs.frame_index,
                at: obs.at,
                object: o.clone(),
            };
            let p = Point::bottom_centre(&o.bbox);
            let side = self.side(scene, p);
            // The "after" frame of a pending crossing: back on the approach, it was no crossing.
            if let Some(pend) = self.pending.remove(&key)
                && side != Side::Before
                && (eligible || pend.eligible)
            {
                if self.first_report(&pend) {
                    out.push(self.violation(camera, signal, &pend, Some(&snap)));
                }
                self.fired.insert(key);
            }
            if !self.follows.contains_key(&key)
                && side != Side::Before
                && let Some(lost) = self.lost_for(&seen, obs.at, class, p, o.bbox.height())
                && let Some(f) = self.follows.remove(&lost)
            {
                self.follows.insert(key, f);
            }
            let f = self.follows.entry(key).or_insert_with(|| Follow {
                class,
                points: VecDeque::new(),
                before: None,
                past: None,
                last: snap.clone(),
                height: o.bbox.height(),
            });
            f.last = snap.clone();
            f.height = o.bbox.height();
            f.points
                .push_back((obs.at, p, scene.line.signed_distance(p)));
            while f.points.len() > HISTORY {
                f.points.pop_front();
            }
            match side {
                Side::Before => {
                    f.before = Some(snap.clone());
                    f.past = None;
                }
                Side::After if f.before.is_some() => match &mut f.past {
                    Some((_, n)) => *n += 1,
                    None => f.past = Some((snap.clone(), 0)),
                },
                _ => {}
            }
            // A crossing: on the approach, then past the line, with the displacement consistent over
            // `min_frames` (checked while the track is past the line, up to `min_frames` frames on, so
            // a vehicle that starts from a standstill at the line is judged once it moves steadily).
            let Some((at_snap, n)) = f.past.clone() else {
                continue;
            };
            if side != Side::After || n as usize > min_frames {
                continue;
            }
            let min = (2.0 * self.tolerance).max(MIN_PROGRESS_HEIGHTS * f.height);
            if self.fired.contains(&key)
                || self.pending.contains_key(&key)
                || !consistent(&f.points, min_frames, min)
                || !signal.red_for(at_snap.at, grace)
            {
                continue;
            }
            let Some(before) = f.before.take() else {
                continue;
            };
            f.past = None;
            let pend = Pending {
                before,
                at: at_snap,
                eligible,
            };
            if n == 0 {
                self.pending.insert(key, pend);
            } else {
                // Confirmed by frames past the line already: this frame is the "after" one.
                if eligible {
                    if self.first_report(&pend) {
                        out.push(self.violation(camera, signal, &pend, Some(&snap)));
                    }
                    self.fired.insert(key);
                }
            }
        }
        // A pending crossing whose track was not seen again within a second fires without an "after" frame.
        let stale: Vec<Key> = self
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
        // Tracks unseen for a while are gone (the tracker reports matched tracks only).
        let now = obs.at;
        self.follows
            .retain(|_, f| now - f.last.at <= TimeDelta::seconds(3));
        out
    }

    pub(crate) fn flush(&mut self, camera: &CameraId, signal: &SignalTracker) -> Vec<Violation> {
        let pending: Vec<(Key, Pending)> = self.pending.drain().collect();
        let mut out = Vec::new();
        let mut pending: Vec<(Key, Pending)> =
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

/// Whether `p` (past the line) lies within the approach polygon's reach along the line: its projection
/// on the line falls inside the polygon's, widened by a tenth of the polygon's extent each side.
fn within_reach(scene: &Scene, poly: &[Point], p: Point) -> bool {
    let (a, b) = (scene.line.a, scene.line.b);
    let (dx, dy) = (b.x - a.x, b.y - a.y);
    let len = (dx * dx + dy * dy).sqrt().max(f32::EPSILON);
    let t = |q: Point| ((q.x - a.x) * dx + (q.y - a.y) * dy) / len;
    let lo = poly.iter().map(|q| t(*q)).fold(f32::INFINITY, f32::min);
    let hi = poly.iter().map(|q| t(*q)).fold(f32::NEG_INFINITY, f32::max);
    let m = 0.1 * (hi - lo);
    (lo - m..=hi + m).contains(&t(p))
}
