//! One camera's rules: what a frame's tracks look like to them, and the per-camera state that ties the
//! signal, the helmet rule and the red-light rule together.

use std::collections::HashMap;

use chrono::{DateTime, Utc};
use roadwarden_types::{CameraId, ClassRole, Violation};

use crate::config::CameraConfig;
use crate::helmet::{HelmetRule, may_ride, rider_of_head};
use crate::observation::{ClassThreshold, FrameObservation, RiderView, Scene, TrackedObject};
use crate::red_light::RedLightRule;
use crate::signal::SignalTracker;

/// A head counts as on a two-wheeler once it was seen on one in at least this many frames ...
pub const MIN_ON_WHEELS: u32 = 2;
/// ... and in at least this fraction of the frames it was seen in.
pub const ON_WHEELS_FRACTION: f32 = 0.4;

/// The rules of one camera and their state.
#[derive(Debug)]
pub struct CameraRules {
    camera: CameraId,
    scene: Scene,
    signal: SignalTracker,
    helmet: HelmetRule,
    red_light: RedLightRule,
    /// Per head track: matched frames seen on a two-wheeler, matched frames, and when it was last seen.
    on_wheels: HashMap<u64, (u32, u32, DateTime<Utc>)>,
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
        let wheels: Vec<&TrackedObject> = obs.two_wheelers.iter().filter(|r| r.matched).collect();
        // One two-wheeler carries one rider: of the heads that could ride it (a pedestrian passing over
        // it, a second person in the picture behind the rider), the one whose chin is nearest its top
        // does; the others are above or behind. Each head then rides the nearest two-wheeler it owns.
        let mut owner: Vec<Option<usize>> = vec![None; wheels.len()];
        for (wi, w) in wheels.iter().enumerate() {
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
            let owned: Vec<&TrackedObject> = wheels
                .iter()
                .zip(&owner)
                .filter(|(_, o)| **o == Some(hi))
                .map(|(w, _)| *w)
                .collect();
            let two_wheeler = rider_of_head(&h.bbox, &owned).map(|i| owned[i].clone());
            let e = self.on_wheels.entry(h.track_id).or_insert((0, 0, obs.at));
            e.2 = obs.at;
            if h.matched {
                e.1 += 1;
                if two_wheeler.is_some() {
                    e.0 += 1;
                }
            }
            // A pedestrian passing a rider overlaps a two-wheeler for a frame or two; a rider rides one
            // in most frames (the detector misses some).
            let seen = e.0 >= MIN_ON_WHEELS && e.0 as f32 >= ON_WHEELS_FRACTION * e.1 as f32;
            views.push(RiderView {
                head: h.clone(),
                two_wheeler,
                seen_on_two_wheeler: seen,
                two_wheeler_frames: e.0,
            });
        }
        let now = obs.at;
        self.on_wheels
            .retain(|_, (_, _, at)| now - *at <= chrono::TimeDelta::seconds(5));
        let mut out = self.helmet.observe(&self.camera, &self.scene, obs, &views);
        out.extend(
            self.red_light
                .observe(&self.camera, &self.scene, &self.signal, obs, &views),
        );
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
