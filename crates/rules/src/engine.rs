//! One camera's rules: what a frame's tracks look like to them, and the per-camera state that ties the
//! signal, the helmet rule and the red-light rule together.

use std::collections::{HashMap, HashSet};

use chrono::{DateTime, Utc};
use roadwarden_types::{BBox, CameraId, ClassRole, Violation};

use crate::config::CameraConfig;
use crate::helmet::{HelmetRule, may_ride, rider_of_head};
use crate::observation::{
    ClassThreshold, FrameObservation, RiderView, RoadUser, Scene, TrackedObject, VehicleClass,
};
use crate::red_light::RedLightRule;
use crate::signal::SignalTracker;

/// A head counts as on a two-wheeler once it was seen on one in at least this many frames ...
pub(crate) const MIN_ON_WHEELS: u32 = 2;
/// ... and in at least this fraction of the frames it was seen in.
pub(crate) const ON_WHEELS_FRACTION: f32 = 0.4;

/// Whether a person's box sits on a two-wheeler's box (a rider the detector boxed as `person`, with
/// their vehicle boxed apart): they overlap across at least half the narrower width, the person's top is
/// above the two-wheeler's, and the person's bottom (legs, feet on the footrest) lies between a quarter
/// of the way down the two-wheeler and a quarter of its height below it.
pub fn sits_on(person: &BBox, wheels: &BBox) -> bool {
    let overlap = person.x2.min(wheels.x2) - person.x1.max(wheels.x1);
    let h = wheels.height();
    overlap >= 0.5 * person.width().min(wheels.width())
        && person.y1 < wheels.y1
        && (wheels.y1 + 0.25 * h..=wheels.y2 + 0.25 * h).contains(&person.y2)
}

/// Matched frames seen as a rider, matched frames, and when last seen: a rider once it was one in at
/// least [`MIN_ON_WHEELS`] frames and [`ON_WHEELS_FRACTION`] of its frames.
type Count = (u32, u32, DateTime<Utc>);

fn count(
    map: &mut HashMap<u64, Count>,
    id: u64,
    at: DateTime<Utc>,
    matched: bool,
    yes: bool,
) -> u32 {
    let e = map.entry(id).or_insert((0, 0, at));
    e.2 = at;
    if matched {
        e.1 += 1;
        if yes {
            e.0 += 1;
        }
    }
    e.0
}

fn established(c: Option<&Count>) -> bool {
    c.is_some_and(|(yes, all, _)| {
        *yes >= MIN_ON_WHEELS && *yes as f32 >= ON_WHEELS_FRACTION * *all as f32
    })
}

/// The rules of one camera and their state.
#[derive(Debug)]
pub struct CameraRules {
    camera: CameraId,
    scene: Scene,
    signal: SignalTracker,
    helmet: HelmetRule,
    red_light: RedLightRule,
    /// Per head track: matched frames seen on a two-wheeler, matched frames, and when it was last seen.
    on_wheels: HashMap<u64, Count>,
    /// Per person track: frames seen sitting on a two-wheeler box (a rider the detector calls `person`).
    persons_on_wheels: HashMap<u64, Count>,
    /// Per person track: frames a head was seen riding it (judged as a rider without a two-wheeler when
    /// `require_two_wheeler` is off).
    persons_with_head: HashMap<u64, Count>,
    /// Person tracks once established as riders (on a two-wheeler often enough): they stay riders while
    /// the detector misses their two-wheeler.
    person_riders: HashSet<u64>,
    require_two_wheeler: bool,
    classes: Vec<VehicleClass>,
}

impl CameraRules {
    /// `no_helmet`: the `Without Helmet` class and its threshold; `two_wheeler`: the two-wheeler model's
    /// threshold when one is configured.
    pub fn new(
        config: &CameraConfig,
        no_helmet: ClassThreshold,
        two_wheeler: Option<ClassThreshold>,
    ) -> CameraRules {
        let scene = Scene {
            line: config.stop_line.line(),
            zones: config.zones.iter().map(|z| z.polygon()).collect(),
            frame: (config.frame[0] as f32, config.frame[1] as f32),
            approach: config.red_light.approach_polygon(),
        };
        CameraRules {
            camera: config.id.clone(),
            signal: SignalTracker::new(
                config.signal.hysteresis_frames,
                config.signal.external_fresh_s,
            ),
            helmet: HelmetRule::new(
                config.helmet.clone(),
                config.require_two_wheeler(),
                no_helmet,
            ),
            red_light: RedLightRule::new(
                config.red_light.clone(),
                config.require_two_wheeler(),
                two_wheeler,
                config.signal.hysteresis_frames,
                config.stop_line.tolerance_px,
            ),
            scene,
            on_wheels: HashMap::new(),
            persons_on_wheels: HashMap::new(),
            persons_with_head: HashMap::new(),
            person_riders: HashSet::new(),
            require_two_wheeler: config.require_two_wheeler(),
            classes: config.red_light_classes(),
        }
    }

    pub fn camera(&self) -> &CameraId {
        &self.camera
    }

    pub fn signal(&self) -> &SignalTracker {
        &self.signal
    }

    /// Feed video readings and controller reports here.
    pub fn signal_mut(&mut self) -> &mut SignalTracker {
        &mut self.signal
    }

    /// Runs the rules on one frame (after its signal reading was fed); returns the violations that fired.
    pub fn observe(&mut self, obs: &FrameObservation) -> Vec<Violation> {
        self.signal.tick(obs.at);
        let now = obs.at;
        let road: Vec<&TrackedObject> = obs.two_wheelers.iter().filter(|r| r.matched).collect();
        let wheels: Vec<&TrackedObject> = road
            .iter()
            .copied()
            .filter(|o| o.role == ClassRole::TwoWheeler)
            .collect();
        // Heads ride two-wheeler boxes (and rider-with-vehicle boxes, whose manifests give them the
        // `two_wheeler` role). A person box sitting on a two-wheeler box in enough frames is a rider the
        // detector calls `person` (its two-wheeler is missed in many frames); measured on the generated
        // scenes, its box carrying heads or giving the red-light ground point while a two-wheeler box is
        // required cost precision (a person box reaches the seat, not the road, and sits ahead of or behind
        // the vehicle), so it is followed for red light only where `require_two_wheeler` is off.
        let carriers: Vec<TrackedObject> = wheels.iter().map(|w| (*w).clone()).collect();
        for p in road.iter().filter(|o| o.role == ClassRole::Person) {
            let under = wheels.iter().any(|w| sits_on(&p.bbox, &w.bbox));
            count(&mut self.persons_on_wheels, p.track_id, now, true, under);
            if established(self.persons_on_wheels.get(&p.track_id)) {
                self.person_riders.insert(p.track_id);
            }
        }
        let carriers: Vec<&TrackedObject> = carriers.iter().collect();
        // One two-wheeler carries one rider: of the heads that could ride it (a pedestrian passing over
        // it, a second person in the picture behind the rider), the one whose chin is nearest its top
        // does; the others are above or behind. Each head then rides the nearest two-wheeler it owns.
        let mut owner: Vec<Option<usize>> = vec![None; carriers.len()];
        for (wi, w) in carriers.iter().enumerate() {
            let gap = |h: &TrackedObject| (w.bbox.y1 - h.bbox.y2).abs();
            owner[wi] = obs
                .heads
                .iter()
                .enumerate()
                .filter(|(_, h)| may_ride(&h.bbox, &w.bbox))
                .min_by(|(_, a), (_, b)| gap(a).total_cmp(&gap(b)))
                .map(|(hi, _)| hi);
        }
        let mut views = Vec::with_capacity(obs.heads.len());
        for (hi, h) in obs.heads.iter().enumerate() {
            let owned: Vec<&TrackedObject> = carriers
                .iter()
                .zip(&owner)
                .filter(|(_, o)| **o == Some(hi))
                .map(|(w, _)| *w)
                .collect();
            let two_wheeler = rider_of_head(&h.bbox, &owned).map(|i| owned[i].clone());
            let on = count(
                &mut self.on_wheels,
                h.track_id,
                now,
                h.matched,
                two_wheeler.is_some(),
            );
            // A pedestrian passing a rider overlaps a two-wheeler for a frame or two; a rider rides one
            // in most frames (the detector misses some).
            let seen = established(self.on_wheels.get(&h.track_id));
            views.push(RiderView {
                head: h.clone(),
                two_wheeler,
                seen_on_two_wheeler: seen,
                two_wheeler_frames: on,
            });
        }
        // What the red-light rule follows: vehicles by their own boxes; persons when they are riders.
        let mut users = Vec::new();
        for o in road.iter().filter(|o| o.is_live()) {
            let (class, rider) = match (o.vehicle_class(), o.role) {
                (Some(c), _) => (c, true),
                (None, ClassRole::Person) => {
                    let headed = obs
                        .heads
                        .iter()
                        .any(|h| h.matched && may_ride(&h.bbox, &o.bbox));
                    count(&mut self.persons_with_head, o.track_id, now, true, headed);
                    let rider = !self.require_two_wheeler
                        && (self.person_riders.contains(&o.track_id)
                            || established(self.persons_with_head.get(&o.track_id)));
                    (VehicleClass::TwoWheeler, rider)
                }
                _ => continue,
            };
            users.push(RoadUser {
                object: (*o).clone(),
                class,
                eligible: rider && self.classes.contains(&class),
            });
        }
        let gone = |m: &mut HashMap<u64, Count>| {
            m.retain(|_, (_, _, at)| now - *at <= chrono::TimeDelta::seconds(5))
        };
        gone(&mut self.on_wheels);
        gone(&mut self.persons_on_wheels);
        gone(&mut self.persons_with_head);
        let known = &self.persons_on_wheels;
        self.person_riders.retain(|id| known.contains_key(id));
        let mut out = self.helmet.observe(&self.camera, &self.scene, obs, &views);
        out.extend(self.red_light.observe(
            &self.camera,
            &self.scene,
            &self.signal,
            obs,
            &views,
            &users,
        ));
        out
    }

    /// Violations still waiting for their "after" frame, fired now (end of stream).
    pub fn finish(&mut self) -> Vec<Violation> {
        self.red_light.flush(&self.camera, &self.signal)
    }

    /// Sets the score threshold of a class role the rules use (`no_helmet`; `two_wheeler` with a
    /// two-wheeler model), in force from the next observed frame; false for a role they do not use.
    pub fn set_class_threshold(&mut self, role: ClassRole, value: f32) -> bool {
        let slot = match role {
            ClassRole::NoHelmet => Some(self.helmet.class_threshold_mut()),
            ClassRole::TwoWheeler => self.red_light.class_threshold_mut(),
            _ => None,
        };
        slot.map(|c| c.value = value).is_some()
    }

    /// The class thresholds in force, by role.
    pub fn class_thresholds(&self) -> Vec<(ClassRole, &ClassThreshold)> {
        let mut out = vec![(ClassRole::NoHelmet, self.helmet.class_threshold())];
        out.extend(
            self.red_light
                .class_threshold()
                .map(|c| (ClassRole::TwoWheeler, c)),
        );
        out
    }
}
