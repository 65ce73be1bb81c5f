//! Replaying a camera's pure rules over the tracks and signal states a live run recorded, under other rule
//! settings: the detectors and trackers do not depend on the rule thresholds (heads are detected down to
//! the pipeline's fixed floor and the class threshold only decides the helmet rule's votes), so a replay
//! takes milliseconds where the live run took a second a frame.

use std::collections::BTreeSet;

use roadwarden_rules::{
    CameraConfig, CameraRules, ClassThreshold, FrameObservation, TrackedObject,
};
use roadwarden_types::{ClassRole, SignalState, Violation};
use serde::Serialize;

use crate::{CameraPipeline, PipelineError, RunnerEvent};

/// One analysed frame as the rules saw it: its tracks and the debounced signal state.
#[derive(Debug, Clone)]
pub struct RecordedFrame {
    pub obs: FrameObservation,
    pub signal: SignalState,
}

/// What a live run gave: every analysed frame, and the violations it reported.
#[derive(Debug, Clone, Default)]
pub struct Recording {
    pub frames: Vec<RecordedFrame>,
    pub live: Vec<Violation>,
}

impl Recording {
    /// Records one event of the runner; true when it was an analysed frame (the end of the stream carries
    /// only the violations that waited for their last evidence frame).
    pub fn observe(&mut self, event: RunnerEvent<'_>) -> bool {
        if let RunnerEvent::Frame(r) = event {
            self.frames.push(RecordedFrame {
                obs: FrameObservation {
                    frame_index: r.frame_index,
                    at: r.at,
                    heads: r.heads.clone(),
                    two_wheelers: r.two_wheelers.clone(),
                },
                signal: r.signal,
            });
        }
        self.live.extend(event.violations().iter().cloned());
        matches!(event, RunnerEvent::Frame(_))
    }

    /// Distinct confirmed head tracks the pipeline followed.
    pub fn head_tracks(&self) -> usize {
        self.distinct_tracks(|o| &o.heads)
    }

    /// Distinct confirmed two-wheeler tracks the pipeline followed.
    pub fn two_wheeler_tracks(&self) -> usize {
        self.distinct_tracks(|o| &o.two_wheelers)
    }

    fn distinct_tracks(&self, pick: fn(&FrameObservation) -> &[TrackedObject]) -> usize {
        let ids: BTreeSet<u64> = self
            .frames
            .iter()
            .flat_map(|f| {
                pick(&f.obs)
                    .iter()
                    .filter(|o| o.is_live())
                    .map(|o| o.track_id)
            })
            .collect();
        ids.len()
    }
}

/// The rule parameters a sweep changes.
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct RuleSetting {
    /// The helmet model's `no_helmet` class threshold: a head's vote counts at or above it.
    pub no_helmet_threshold: f32,
    /// Votes K of the window N that fire the helmet rule.
    pub min_votes: u32,
    pub window: u32,
    /// How long the signal must have been red for a crossing to count.
    pub grace_s: f64,
}

/// One camera's rules with the class thresholds its pipeline resolved, to replay over recorded frames.
#[derive(Debug, Clone)]
pub struct Replay {
    config: CameraConfig,
    no_helmet: ClassThreshold,
    two_wheeler: Option<ClassThreshold>,
}

impl Replay {
    /// `config`'s rules with these class thresholds (as [`CameraRules::new`] takes them).
    pub fn new(
        config: &CameraConfig,
        no_helmet: ClassThreshold,
        two_wheeler: Option<ClassThreshold>,
    ) -> Replay {
        Replay {
            config: config.clone(),
            no_helmet,
            two_wheeler,
        }
    }

    /// The rules of `pipeline`'s camera with the class thresholds it has in force (as
    /// [`CameraPipeline::new`] resolved them: the site file's, else the model manifest's). The classes are
    /// named by their role: the names only label the replayed violations' `thresholds`.
    pub fn of(pipeline: &CameraPipeline) -> Result<Replay, PipelineError> {
        let in_force = pipeline.class_thresholds();
        let class = |role: ClassRole| {
            in_force
                .iter()
                .find(|(r, _)| *r == role.as_str())
                .map(|&(name, value)| ClassThreshold {
                    name: name.to_string(),
                    value,
                })
        };
        let no_helmet = class(ClassRole::NoHelmet).ok_or_else(|| PipelineError::Camera {
            camera: pipeline.config().id.to_string(),
            reason: "the pipeline has no no_helmet class threshold to replay".into(),
        })?;
        Ok(Replay::new(
            pipeline.config(),
            no_helmet,
            class(ClassRole::TwoWheeler),
        ))
    }

    pub fn config(&self) -> &CameraConfig {
        &self.config
    }

    /// The setting the camera is configured with.
    pub fn configured(&self) -> RuleSetting {
        RuleSetting {
            no_helmet_threshold: self.no_helmet.value,
            min_votes: self.config.helmet.min_votes,
            window: self.config.helmet.window,
            grace_s: self.config.red_light.grace_s,
        }
    }

    /// The violations the rules report over `frames` under `setting`. The recorded signal state is
    /// already debounced, so the replay takes it as is (hysteresis 1): the timeline is the live run's.
    pub fn run(&self, frames: &[RecordedFrame], setting: RuleSetting) -> Vec<Violation> {
        let mut cfg = self.config.clone();
        cfg.signal.hysteresis_frames = 1;
        cfg.helmet.min_votes = setting.min_votes;
        cfg.helmet.window = setting.window;
        cfg.red_light.grace_s = setting.grace_s;
        let no_helmet = ClassThreshold {
            name: self.no_helmet.name.clone(),
            value: setting.no_helmet_threshold,
        };
        let mut rules = CameraRules::new(&cfg, no_helmet, self.two_wheeler.clone());
        let mut out = Vec::new();
        for f in frames {
            rules.signal_mut().observe_video(f.obs.at, f.signal);
            out.extend(rules.observe(&f.obs));
        }
        out.extend(rules.finish());
        out
    }

    /// Whether replaying at the configured setting reproduces `live` (same kind, track and time each).
    pub fn reproduces(&self, recording: &Recording) -> bool {
        let key = |v: &Violation| (v.kind, v.track_id, v.occurred_at);
        let mut again: Vec<_> = self
            .run(&recording.frames, self.configured())
            .iter()
            .map(key)
            .collect();
        let mut live: Vec<_> = recording.live.iter().map(key).collect();
        again.sort();
        live.sort();
        again == live
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use chrono::{DateTime, TimeDelta, Utc};
    use roadwarden_rules::SiteConfig;
    use roadwarden_track::TrackState;
    use roadwarden_types::{BBox, ClassId, ViolationKind};

    use super::*;

    /// The example site's camera: a video signal debounced over 2 frames, the stop line at x = 420 (left
    /// before it), `no_helmet` 0.4, votes 3 of 5, grace 0.5 s.
    const SITE: &str = include_str!("../../../examples/site.toml");

    pub(crate) fn replay() -> Replay {
        let site = SiteConfig::parse(SITE).expect("the example site parses");
        let class = |name: &str, value| ClassThreshold {
            name: name.into(),
            value,
        };
        Replay::new(
            &site.cameras[0],
            class("Without Helmet", 0.4),
            Some(class("motorbike", 0.3)),
        )
    }

    fn at(frame: u64) -> DateTime<Utc> {
        DateTime::from_timestamp(1_700_000_000, 0).expect("a valid time")
            + TimeDelta::milliseconds(250 * frame as i64)
    }

    fn object(id: u64, bbox: BBox, role: ClassRole, score: f32) -> TrackedObject {
        TrackedObject {
            track_id: id,
            state: TrackState::Confirmed,
            bbox,
            class_id: ClassId(0),
            class_name: role.as_str().into(),
            role,
            score,
            matched: true,
        }
    }

    /// Frames of one rider without a helmet (`score` a frame) on a two-wheeler, from x = 300 to the right
    /// at 10 px a frame: bottom centre past the stop line (x = 420) from frame 13. The raw signal
    /// readings are `signal(i)`; they go through the live rules (hysteresis 2), whose debounced state is
    /// recorded as the pipeline records it. Returns the recording (frames and the live violations).
    pub(crate) fn ride(
        score: impl Fn(u64) -> f32,
        signal: impl Fn(u64) -> SignalState,
    ) -> Recording {
        let r = replay();
        let mut live = CameraRules::new(r.config(), r.no_helmet.clone(), r.two_wheeler.clone());
        let mut rec = Recording::default();
        for i in 0..30 {
            let x = 300.0 + 10.0 * i as f32;
            let obs = FrameObservation {
                frame_index: i,
                at: at(i),
                heads: vec![object(
                    1,
                    BBox::new(x - 15.0, 160.0, x + 15.0, 195.0),
                    ClassRole::NoHelmet,
                    score(i),
                )],
                two_wheelers: vec![object(
                    101,
                    BBox::new(x - 50.0, 190.0, x + 50.0, 380.0),
                    ClassRole::TwoWheeler,
                    0.6,
                )],
            };
            live.signal_mut().observe_video(obs.at, signal(i));
            rec.live.extend(live.observe(&obs));
            rec.frames.push(RecordedFrame {
                obs,
                signal: live.signal().current(),
            });
        }
        rec.live.extend(live.finish());
        rec
    }

    fn kinds(v: &[Violation]) -> Vec<ViolationKind> {
        let mut k: Vec<_> = v.iter().map(|v| v.kind).collect();
        k.sort();
        k
    }

    #[test]
    fn the_configured_setting_reproduces_the_live_run() {
        let rec = ride(|_| 0.8, |_| SignalState::Red);
        assert_eq!(
            kinds(&rec.live),
            [ViolationKind::NoHelmet, ViolationKind::RedLight],
            "the live rules fire both: {:?}",
            rec.live
        );
        let r = replay();
        assert!(r.reproduces(&rec));
        assert_eq!(kinds(&r.run(&rec.frames, r.configured())), kinds(&rec.live));
        assert_eq!(rec.head_tracks(), 1);
        assert_eq!(rec.two_wheeler_tracks(), 1);
    }

    #[test]
    fn a_replay_follows_the_setting_it_is_given() {
        let r = replay();
        let c = r.configured();
        assert_eq!(
            c,
            RuleSetting {
                no_helmet_threshold: 0.4,
                min_votes: 3,
                window: 5,
                grace_s: 0.5
            }
        );
        // Confident no-helmet views on 2 frames of every 5: 3 of 5 votes never fire, 2 of 5 does.
        let rec = ride(
            |i| if i % 5 < 2 { 0.8 } else { 0.2 },
            |_| SignalState::Green,
        );
        assert!(rec.live.is_empty(), "{:?}", rec.live);
        assert!(r.reproduces(&rec));
        let two_votes = RuleSetting { min_votes: 2, ..c };
        assert_eq!(
            kinds(&r.run(&rec.frames, two_votes)),
            [ViolationKind::NoHelmet]
        );
        // Above every vote's score: nothing; below the weak ones: every frame votes.
        let strict = RuleSetting {
            no_helmet_threshold: 0.9,
            min_votes: 1,
            ..c
        };
        assert!(r.run(&rec.frames, strict).is_empty());
        let loose = RuleSetting {
            no_helmet_threshold: 0.1,
            ..c
        };
        assert_eq!(kinds(&r.run(&rec.frames, loose)), [ViolationKind::NoHelmet]);

        // Red from frame 9 (debounced: from frame 10), crossing at frame 13: red for 0.75 s at 4 fps.
        let rec = ride(
            |_| 0.2,
            |i| {
                if i >= 9 {
                    SignalState::Red
                } else {
                    SignalState::Green
                }
            },
        );
        assert_eq!(kinds(&rec.live), [ViolationKind::RedLight]);
        assert!(r.reproduces(&rec));
        for (grace_s, fires) in [(0.0, true), (0.7, true), (0.8, false), (1.5, false)] {
            let v = r.run(&rec.frames, RuleSetting { grace_s, ..c });
            assert_eq!(!v.is_empty(), fires, "grace {grace_s} s: {v:?}");
        }
    }
}
