//! The rules on synthetic track sequences: one violation per track, only confirmed tracks fire,
//! pedestrians are not riders, `unknown` never yields red-light, and the grace time.

use chrono::{DateTime, TimeDelta, Utc};
use roadwarden_rules::{CameraRules, ClassThreshold, FrameObservation, SiteConfig, TrackedObject};
use roadwarden_testkit::site::{self, SiteText};
use roadwarden_track::{TrackState, Tracker, TrackerConfig};
use roadwarden_types::{
    BBox, ClassId, ClassRole, Detection, FrameRole, SignalState, ViolationKind,
};

static SITE: SiteText = SiteText::new(|| {
    site::camera("cam")
        .analysis_fps(5.0)
        .helmet("helmet.toml")
        .two_wheeler("wheels.toml")
        .stop_line([420.0, 384.0], [420.0, 0.0])
        .signal(site::Signal::External)
        .section(
            "[camera.thresholds]
no_helmet = 0.4",
        )
        .section(
            "[camera.helmet]
min_votes = 3
window = 5
min_head_px = 14.0",
        )
        .toml()
});

fn t0() -> DateTime<Utc> {
    DateTime::from_timestamp(1_700_000_000, 0).unwrap()
}

fn at(frame: u64) -> DateTime<Utc> {
    t0() + TimeDelta::milliseconds(200 * frame as i64)
}

fn rules(site: &str) -> CameraRules {
    let cfg = SiteConfig::parse(site).unwrap();
    CameraRules::new(
        &cfg.cameras[0],
        ClassThreshold {
            name: "Without Helmet".into(),
            value: 0.4,
        },
        Some(ClassThreshold {
            name: "motorbike".into(),
            value: 0.3,
        }),
    )
}

fn obj(id: u64, state: TrackState, bbox: BBox, role: ClassRole, score: f32) -> TrackedObject {
    TrackedObject {
        track_id: id,
        state,
        bbox,
        class_id: ClassId(if role == ClassRole::NoHelmet { 1 } else { 0 }),
        class_name: match role {
            ClassRole::NoHelmet => "Without Helmet".into(),
            ClassRole::Helmet => "With Helmet".into(),
            _ => "motorbike".into(),
        },
        role,
        score,
        matched: true,
    }
}

/// A rider (head + motorbike) at bottom-centre x `x`.
fn rider(
    id: u64,
    x: f32,
    role: ClassRole,
    score: f32,
    state: TrackState,
) -> (TrackedObject, TrackedObject) {
    let head = BBox::new(x - 15.0, 160.0, x + 15.0, 195.0);
    let bike = BBox::new(x - 50.0, 190.0, x + 50.0, 380.0);
    (
        obj(id, state, head, role, score),
        obj(100 + id, state, bike, ClassRole::TwoWheeler, 0.6),
    )
}

fn frame(i: u64, riders: &[(TrackedObject, TrackedObject)]) -> FrameObservation {
    FrameObservation {
        frame_index: i,
        at: at(i),
        heads: riders.iter().map(|r| r.0.clone()).collect(),
        two_wheelers: riders.iter().map(|r| r.1.clone()).collect(),
    }
}

#[test]
fn a_no_helmet_rider_fires_once_with_k_of_n_votes() {
    let mut r = rules(&SITE);
    let mut fired = Vec::new();
    for i in 0..30 {
        // Every other frame is a confident no-helmet view: 3 of the last 5 after frame 4.
        let (role, score) = if i % 2 == 0 {
            (ClassRole::NoHelmet, 0.8)
        } else {
            (ClassRole::Helmet, 0.5)
        };
        let rd = rider(1, 100.0 + i as f32, role, score, TrackState::Confirmed);
        fired.extend(r.observe(&frame(i, &[rd])));
    }
    assert_eq!(fired.len(), 1, "{fired:?}");
    let v = &fired[0];
    assert_eq!(v.kind, ViolationKind::NoHelmet);
    assert_eq!(v.track_id, 1);
    assert_eq!(v.frames[0].role, FrameRole::Key);
    assert_eq!(
        v.frames[0].frame_index, 0,
        "key frame: the first of the best-scoring votes"
    );
    assert_eq!(v.thresholds["class.Without Helmet"], 0.4f32 as f64);
    assert_eq!(v.thresholds["helmet.min_votes"], 3.0);
    assert!((v.confidence - 0.8).abs() < 1e-6);
}

#[test]
fn weak_small_or_rare_no_helmet_views_do_not_fire() {
    let mut r = rules(&SITE);
    let mut fired = Vec::new();
    for i in 0..20 {
        // Below the class threshold.
        let weak = rider(1, 100.0, ClassRole::NoHelmet, 0.35, TrackState::Confirmed);
        // Confident but tiny (10 px head).
        let mut tiny = rider(2, 250.0, ClassRole::NoHelmet, 0.9, TrackState::Confirmed);
        tiny.0.bbox = BBox::new(245.0, 180.0, 255.0, 190.0);
        // Confident, but only 2 of every 5 frames.
        let (role, score) = if i % 5 < 2 {
            (ClassRole::NoHelmet, 0.9)
        } else {
            (ClassRole::Helmet, 0.9)
        };
        let rare = rider(3, 350.0, role, score, TrackState::Confirmed);
        fired.extend(r.observe(&frame(i, &[weak, tiny, rare])));
    }
    assert!(fired.is_empty(), "{fired:?}");
}

#[test]
fn unconfirmed_tracks_never_fire_rules() {
    let mut r = rules(&SITE);
    r.signal_mut().observe_external(at(0), SignalState::Red);
    let mut fired = Vec::new();
    for i in 0..40 {
        r.signal_mut().observe_external(at(i), SignalState::Red);
        let mut rd = rider(
            1,
            300.0 + 5.0 * i as f32,
            ClassRole::NoHelmet,
            0.9,
            TrackState::Tentative,
        );
        if i % 2 == 1 {
            rd.0.state = TrackState::Lost;
            rd.0.matched = false;
        }
        fired.extend(r.observe(&frame(i, &[rd])));
    }
    assert!(fired.is_empty(), "{fired:?}");
}

#[test]
fn through_the_real_tracker_a_one_frame_detection_never_fires() {
    // One confident no-helmet detection per id, never repeated: ByteTrack keeps them tentative.
    let mut tracker = Tracker::new(TrackerConfig::default());
    let mut r = rules(&SITE);
    let mut fired = Vec::new();
    for i in 0..20u64 {
        let x = 30.0 * i as f32;
        let dets = [Detection {
            bbox: BBox::new(
                x,
                10.0 + (i % 3) as f32 * 120.0,
                x + 20.0,
                40.0 + (i % 3) as f32 * 120.0,
            ),
            class_id: ClassId(1),
            score: 0.9,
        }];
        let tracks = tracker.update(if i % 2 == 0 { &dets } else { &[] });
        let heads = tracks
            .iter()
            .map(|t| TrackedObject {
                track_id: t.id.0,
                state: t.state,
                bbox: t.bbox,
                class_id: t.class_id,
                class_name: "Without Helmet".into(),
                role: ClassRole::NoHelmet,
                score: t.score,
                matched: t.frames_since_update == 0,
            })
            .collect();
        // After the tracker's very first frame (which confirms at once), nothing gets confirmed.
        if i == 0 {
            continue;
        }
        fired.extend(r.observe(&FrameObservation {
            frame_index: i,
            at: at(i),
            heads,
            two_wheelers: Vec::new(),
        }));
    }
    assert!(fired.is_empty(), "{fired:?}");
}

#[test]
fn a_pedestrian_without_helmet_is_not_a_rider() {
    let mut r = rules(&SITE);
    let mut fired = Vec::new();
    for i in 0..20 {
        let head = obj(
            1,
            TrackState::Confirmed,
            BBox::new(100.0, 100.0, 130.0, 135.0),
            ClassRole::NoHelmet,
            0.9,
        );
        // A two-wheeler elsewhere in the frame.
        let bike = obj(
            9,
            TrackState::Confirmed,
            BBox::new(400.0, 200.0, 500.0, 380.0),
            ClassRole::TwoWheeler,
            0.7,
        );
        fired.extend(r.observe(&FrameObservation {
            frame_index: i,
            at: at(i),
            heads: vec![head],
            two_wheelers: vec![bike],
        }));
    }
    assert!(fired.is_empty(), "{fired:?}");
}

/// A helmeted rider riding from x = 300 to x = 540 at 10 px a frame while the signal follows `signal`.
fn ride(signal: impl Fn(u64) -> SignalState) -> Vec<roadwarden_types::Violation> {
    let mut r = rules(&SITE);
    let mut fired = Vec::new();
    for i in 0..25 {
        r.signal_mut().observe_external(at(i), signal(i));
        let rd = rider(
            1,
            300.0 + 10.0 * i as f32,
            ClassRole::Helmet,
            0.8,
            TrackState::Confirmed,
        );
        fired.extend(r.observe(&frame(i, &[rd])));
    }
    fired.extend(r.finish());
    fired
}

#[test]
fn crossing_on_red_fires_once_with_three_frames() {
    // Red from the start; the bottom centre is on the line (x = 420) at frame 12, past it at frame 13.
    let fired = ride(|_| SignalState::Red);
    assert_eq!(fired.len(), 1, "{fired:?}");
    let v = &fired[0];
    assert_eq!(v.kind, ViolationKind::RedLight);
    let roles: Vec<_> = v.frames.iter().map(|f| (f.role, f.frame_index)).collect();
    assert_eq!(
        roles,
        vec![
            (FrameRole::Before, 11),
            (FrameRole::At, 13),
            (FrameRole::After, 14)
        ]
    );
    assert_eq!(v.occurred_at, at(13));
    assert!(v.signal.iter().any(|c| c.state == SignalState::Red));
    assert_eq!(v.thresholds["red_light.grace_s"], 0.5);
}

#[test]
fn green_amber_unknown_and_fresh_red_do_not_fire() {
    assert!(ride(|_| SignalState::Green).is_empty());
    assert!(ride(|_| SignalState::Amber).is_empty());
    assert!(ride(|_| SignalState::Unknown).is_empty());
    // Red from frame 11: at the crossing (frame 13) it has been red 0.4 s < 0.5 s grace.
    assert!(
        ride(|i| if i >= 11 {
            SignalState::Red
        } else {
            SignalState::Green
        })
        .is_empty()
    );
    // Red from frame 9: 0.8 s at the crossing.
    assert_eq!(
        ride(|i| if i >= 9 {
            SignalState::Red
        } else {
            SignalState::Green
        })
        .len(),
        1
    );
}

#[test]
fn a_rider_who_stops_before_the_line_does_not_fire() {
    let mut r = rules(&SITE);
    let mut fired = Vec::new();
    for i in 0..40 {
        r.signal_mut().observe_external(at(i), SignalState::Red);
        // Stops with the bottom centre at x = 400 (and jitters a little).
        let x = (300.0 + 10.0 * i as f32).min(400.0) + (i % 3) as f32;
        let rd = rider(1, x, ClassRole::Helmet, 0.8, TrackState::Confirmed);
        fired.extend(r.observe(&frame(i, &[rd])));
    }
    assert!(fired.is_empty(), "{fired:?}");
}

#[test]
fn stale_controller_data_reads_unknown() {
    let mut r = rules(&SITE);
    r.signal_mut().observe_external(at(0), SignalState::Red);
    let mut fired = Vec::new();
    for i in 0..25 {
        // No more controller reports: after 2 s (10 frames) the state is unknown again.
        let rd = rider(
            1,
            300.0 + 10.0 * i as f32,
            ClassRole::Helmet,
            0.8,
            TrackState::Confirmed,
        );
        fired.extend(r.observe(&frame(i, &[rd])));
    }
    assert!(fired.is_empty(), "{fired:?}");
    assert_eq!(r.signal().current(), SignalState::Unknown);
}

#[test]
fn a_shoulder_sized_two_wheeler_under_a_pedestrian_is_not_ridden() {
    let mut r = rules(&SITE);
    let mut fired = Vec::new();
    for i in 0..20 {
        let head = obj(
            1,
            TrackState::Confirmed,
            BBox::new(100.0, 50.0, 125.0, 78.0),
            ClassRole::NoHelmet,
            0.9,
        );
        // What a detector makes of head and shoulders: a "motorbike" just under the chin, barely taller
        // than the head.
        let bike = obj(
            9,
            TrackState::Confirmed,
            BBox::new(92.0, 110.0, 136.0, 136.0),
            ClassRole::TwoWheeler,
            0.5,
        );
        fired.extend(r.observe(&FrameObservation {
            frame_index: i,
            at: at(i),
            heads: vec![head],
            two_wheelers: vec![bike],
        }));
    }
    assert!(fired.is_empty(), "{fired:?}");
}

#[test]
fn a_two_wheeler_carries_one_rider_the_head_nearest_its_top() {
    let mut r = rules(&SITE);
    let mut fired = Vec::new();
    for i in 0..20 {
        let (rider_head, bike) = rider(1, 200.0, ClassRole::NoHelmet, 0.9, TrackState::Confirmed);
        // A smaller head higher over the same two-wheeler (someone in the picture behind the rider).
        let other = obj(
            2,
            TrackState::Confirmed,
            BBox::new(165.0, 150.0, 185.0, 172.0),
            ClassRole::NoHelmet,
            0.9,
        );
        fired.extend(r.observe(&FrameObservation {
            frame_index: i,
            at: at(i),
            heads: vec![other, rider_head],
            two_wheelers: vec![bike],
        }));
    }
    let tracks: Vec<u64> = fired.iter().map(|v| v.track_id).collect();
    assert_eq!(tracks, vec![1], "{fired:?}");
}

#[test]
fn a_rider_on_two_head_tracks_is_reported_once_for_red_light() {
    let mut r = rules(&SITE);
    let mut fired = Vec::new();
    for i in 0..25 {
        r.signal_mut().observe_external(at(i), SignalState::Red);
        let x = 300.0 + 10.0 * i as f32;
        // The detectors find the rider twice, 8 px apart: two head tracks, each on a two-wheeler track;
        // the second crosses the line a frame after the first, at the same place.
        let a = rider(1, x, ClassRole::Helmet, 0.8, TrackState::Confirmed);
        let b = rider(2, x - 8.0, ClassRole::Helmet, 0.8, TrackState::Confirmed);
        fired.extend(r.observe(&frame(i, &[a, b])));
    }
    fired.extend(r.finish());
    let red: Vec<_> = fired
        .iter()
        .filter(|v| v.kind == ViolationKind::RedLight)
        .collect();
    assert_eq!(red.len(), 1, "{red:?}");
    // The rule follows the vehicle (its ground point), not the head: the first two-wheeler track.
    assert_eq!(red[0].track_id, 101);
}

#[test]
fn a_two_wheeler_whose_rider_head_is_missed_still_runs_the_red() {
    let mut r = rules(&SITE);
    let mut fired = Vec::new();
    for i in 0..25 {
        r.signal_mut().observe_external(at(i), SignalState::Red);
        // The helmet model never finds this rider's (small) head: only the two-wheeler is tracked.
        let (_, bike) = rider(
            1,
            300.0 + 10.0 * i as f32,
            ClassRole::Helmet,
            0.8,
            TrackState::Confirmed,
        );
        fired.extend(r.observe(&FrameObservation {
            frame_index: i,
            at: at(i),
            heads: Vec::new(),
            two_wheelers: vec![bike],
        }));
    }
    fired.extend(r.finish());
    assert_eq!(fired.len(), 1, "{fired:?}");
    assert_eq!(fired[0].kind, ViolationKind::RedLight);
    assert_eq!(fired[0].track_id, 101);
    assert_eq!(fired[0].frames[1].boxes[0].class_name, "motorbike");
}
