//! ByteTrack behaviour on synthetic scenes: identity through occlusions and crossings, id
//! uniqueness, confirmation, the low-score rules, the lost-track buffer, coasting.

use std::collections::{BTreeMap, BTreeSet};

use roadwarden_track::{Track, TrackId, TrackState, Tracker, TrackerConfig, confirmed};
use roadwarden_types::rng::SplitMix64;
use roadwarden_types::{BBox, ClassId, Detection};

fn det(cx: f32, cy: f32, w: f32, h: f32, score: f32) -> Detection {
    Detection {
        bbox: BBox::from_cxcywh(cx, cy, w, h),
        class_id: ClassId(0),
        score,
    }
}

/// Uniform in `[lo, hi)`, for reproducible jitter.
fn range(rng: &mut SplitMix64, lo: f32, hi: f32) -> f32 {
    lo + (hi - lo) * rng.unit_f32()
}

/// One frame of ground truth: `(object, detection)`; `None` is a coasted frame.
type Frame = Option<Vec<(usize, Detection)>>;

/// Per frame: the output tracks, each with the object its detection came from.
struct Run {
    frames: Vec<Vec<(usize, Track)>>,
    /// `tracks()` after each frame.
    live: Vec<Vec<Track>>,
    /// `removed()` after each frame.
    removed: Vec<Vec<Track>>,
}

fn play(tracker: &mut Tracker, frames: &[Frame]) -> Run {
    let mut out = Run {
        frames: Vec::new(),
        live: Vec::new(),
        removed: Vec::new(),
    };
    for frame in frames {
        let mut this = Vec::new();
        match frame {
            Some(frame) => {
                let dets: Vec<Detection> = frame.iter().map(|(_, d)| d.clone()).collect();
                let tracks = tracker.update(&dets);
                let mut seen_dets = BTreeSet::new();
                for t in tracks {
                    let d = t
                        .last_detection
                        .expect("update returns only tracks matched this frame");
                    assert!(seen_dets.insert(d), "detection {d} given to two tracks");
                    assert_eq!(t.frames_since_update, 0);
                    assert!(matches!(
                        t.state,
                        TrackState::Tentative | TrackState::Confirmed
                    ));
                    this.push((frame[d].0, t));
                }
            }
            None => tracker.coast(),
        }
        let live: Vec<Track> = tracker.tracks().cloned().collect();
        let ids: BTreeSet<TrackId> = live.iter().map(|t| t.id).collect();
        assert_eq!(ids.len(), live.len(), "two live tracks share an id");
        assert!(live.iter().all(|t| t.state != TrackState::Removed));
        assert!(
            tracker
                .removed()
                .iter()
                .all(|t| t.state == TrackState::Removed && !ids.contains(&t.id))
        );
        out.frames.push(this);
        out.live.push(live);
        out.removed.push(tracker.removed().to_vec());
    }
    out
}

/// The ids each object's detections were given, over the whole run.
fn ids_by_object(run: &Run) -> BTreeMap<usize, BTreeSet<TrackId>> {
    let mut ids: BTreeMap<usize, BTreeSet<TrackId>> = BTreeMap::new();
    for frame in &run.frames {
        for (object, t) in frame {
            ids.entry(*object).or_default().insert(t.id);
        }
    }
    ids
}

/// Two riders crossing: A moves right, B left, 8 px per frame, 12 px apart vertically, meeting
/// at frame 25 (IoU up to 0.74). `score(f)` gives the detection score on frame `f`, `None`
/// hides both.
fn crossing(frames: usize, score: impl Fn(usize) -> Option<f32>) -> Vec<Frame> {
    (0..frames)
        .map(|f| {
            let t = f as f32;
            Some(match score(f) {
                None => Vec::new(),
                Some(s) => vec![
                    (0, det(100.0 + 8.0 * t, 200.0, 40.0, 80.0, s)),
                    (1, det(500.0 - 8.0 * t, 212.0, 40.0, 80.0, s)),
                ],
            })
        })
        .collect()
}

/// Asserts that each object kept one id throughout, distinct from the other's, and that both
/// are matched and confirmed on every frame from `back` on.
fn assert_no_id_switch(run: &Run, back: usize) {
    let ids = ids_by_object(run);
    assert_eq!(ids.len(), 2);
    for (object, ids) in &ids {
        assert_eq!(ids.len(), 1, "object {object} was given ids {ids:?}");
    }
    assert_ne!(ids[&0], ids[&1]);
    for (f, frame) in run.frames.iter().enumerate().skip(back) {
        assert_eq!(frame.len(), 2, "frame {f}: {frame:?}");
        assert!(
            frame.iter().all(|(_, t)| t.is_confirmed()),
            "frame {f}: {frame:?}"
        );
    }
}

#[test]
fn crossing_objects_keep_their_ids_through_a_ten_frame_occlusion() {
    // Hidden across the crossing (frames 21..=30), and hidden right after it (25..=34).
    for hidden in [21..31, 25..35] {
        let mut tracker = Tracker::new(TrackerConfig::default());
        let frames = crossing(70, |f| (!hidden.contains(&f)).then_some(0.9));
        let run = play(&mut tracker, &frames);
        assert_no_id_switch(&run, hidden.end);
        // While hidden: nothing is output and both tracks are kept, lost, with their ids.
        let original: BTreeSet<TrackId> = run.frames[0].iter().map(|(_, t)| t.id).collect();
        for f in hidden.clone() {
            assert!(run.frames[f].is_empty());
            let live: BTreeSet<TrackId> = run.live[f].iter().map(|t| t.id).collect();
            assert_eq!(live, original, "frame {f}");
            assert!(run.live[f].iter().all(|t| t.state == TrackState::Lost));
        }
        // The two objects have swapped sides, and each track followed its own object.
        let last = run.frames.last().unwrap();
        let a = &last.iter().find(|(o, _)| *o == 0).unwrap().1;
        let b = &last.iter().find(|(o, _)| *o == 1).unwrap().1;
        assert!(a.bbox.x1 > b.bbox.x1 + 400.0, "{a:?} {b:?}");
        assert!(original.contains(&a.id) && original.contains(&b.id));
    }
}

#[test]
fn crossing_objects_keep_their_ids_through_low_score_detections_at_the_crossing() {
    // Detections turn weak (0.15: only the second association can use them) while the boxes
    // overlap, and the tracks must carry on through them.
    let mut tracker = Tracker::new(TrackerConfig::default());
    let frames = crossing(60, |f| {
        Some(if (19..=31).contains(&f) { 0.15 } else { 0.9 })
    });
    let run = play(&mut tracker, &frames);
    assert_no_id_switch(&run, 1);
    assert!(run.frames[25].iter().all(|(_, t)| t.score == 0.15));

    // Weak at the crossing, then hidden for 10 frames, then weak again (a lost track is only
    // re-found by a high-score detection), then strong.
    let mut tracker = Tracker::new(TrackerConfig::default());
    let frames = crossing(70, |f| match f {
        19..=24 => Some(0.15),
        25..=34 => None,
        35..=37 => Some(0.15),
        _ => Some(0.9),
    });
    let run = play(&mut tracker, &frames);
    assert_no_id_switch(&run, 38);
    for f in 35..=37 {
        assert!(
            run.frames[f].is_empty(),
            "frame {f}: low-score detections re-found a lost track"
        );
    }
}

#[test]
fn ids_are_never_reused() {
    // Four spots; at each, an object stays for 40 frames, is gone for 45 (longer than the
    // 30-frame buffer), and then a different object appears at the same spot. A fifth object
    // drives across the scene now and then. 800 frames in all.
    let mut frames = Vec::new();
    let mut first_seen: BTreeMap<usize, usize> = BTreeMap::new();
    for f in 0..800usize {
        let mut dets = Vec::new();
        for spot in 0..4usize {
            let phase = f + spot * 11;
            let generation = phase / 85;
            if phase % 85 < 40 {
                let object = generation * 10 + spot;
                first_seen.entry(object).or_insert(f);
                let drift = (phase % 85) as f32 * 0.5;
                dets.push((
                    object,
                    det(100.0 + 150.0 * spot as f32 + drift, 300.0, 40.0, 90.0, 0.8),
                ));
            }
        }
        let generation = f / 120;
        if f % 120 < 50 {
            let object = 100_000 + generation;
            first_seen.entry(object).or_insert(f);
            dets.push((
                object,
                det(50.0 + 12.0 * (f % 120) as f32, 600.0, 80.0, 60.0, 0.7),
            ));
        }
        frames.push(Some(dets));
    }
    let mut tracker = Tracker::new(TrackerConfig::default());
    let run = play(&mut tracker, &frames);

    let ids = ids_by_object(&run);
    assert_eq!(ids.len(), first_seen.len());
    let mut all = BTreeSet::new();
    for (object, ids) in &ids {
        assert_eq!(ids.len(), 1, "object {object} was given ids {ids:?}");
        assert!(
            all.insert(*ids.first().unwrap()),
            "id {ids:?} of object {object} reused"
        );
    }
    // In order of first appearance, the objects' ids strictly increase.
    let mut by_appearance: Vec<(usize, usize)> = first_seen.iter().map(|(&o, &f)| (f, o)).collect();
    by_appearance.sort();
    let in_order: Vec<TrackId> = by_appearance
        .iter()
        .map(|(_, o)| *ids[o].first().unwrap())
        .collect();
    assert!(in_order.windows(2).all(|w| w[0] < w[1]), "{in_order:?}");
    // Every new id on the output is above all ids before it, and a removed id never returns.
    let mut max_seen = TrackId(0);
    let mut gone = BTreeSet::new();
    for (f, frame) in run.frames.iter().enumerate() {
        for (_, t) in frame {
            assert!(
                !gone.contains(&t.id),
                "frame {f}: removed id {} came back",
                t.id
            );
            if t.hits == 1 {
                assert!(
                    t.id > max_seen,
                    "frame {f}: new track {} not above {}",
                    t.id,
                    max_seen.0
                );
            }
            max_seen = max_seen.max(t.id);
        }
        gone.extend(run.removed[f].iter().map(|t| t.id));
    }
    assert!(
        gone.len() >= first_seen.len() - 5,
        "old tracks are removed after the buffer"
    );
}

#[test]
fn a_one_frame_false_positive_never_becomes_confirmed() {
    let mut tracker = Tracker::new(TrackerConfig::default());
    let rider = |f: usize| det(200.0 + 3.0 * f as f32, 200.0, 40.0, 80.0, 0.9);
    // Frame 0 is the tracker's first: ByteTrack confirms what it sees there at once.
    let out = tracker.update(&[rider(0)]);
    assert_eq!(out.len(), 1);
    assert!(out[0].is_confirmed());
    let rider_id = out[0].id;
    for f in 1..5 {
        tracker.update(&[rider(f)]);
    }
    // A strong false positive far from the rider, for one frame.
    let out = tracker.update(&[rider(5), det(600.0, 400.0, 50.0, 50.0, 0.95)]);
    assert_eq!(out.len(), 2);
    let fp = out.iter().find(|t| t.last_detection == Some(1)).unwrap();
    assert_eq!(fp.state, TrackState::Tentative);
    assert!(!fp.is_confirmed() && fp.is_tentative());
    assert_eq!(
        confirmed(&out).map(|t| t.id).collect::<Vec<_>>(),
        vec![rider_id]
    );
    let fp_id = fp.id;
    assert!(fp_id > rider_id);
    // Next frame it is gone: removed, not lost, and never output again.
    let out = tracker.update(&[rider(6)]);
    assert_eq!(out.len(), 1);
    assert_eq!(out[0].id, rider_id);
    assert!(tracker.removed().iter().any(|t| t.id == fp_id));
    assert!(tracker.tracks().all(|t| t.id != fp_id));
    for f in 7..60 {
        let out = tracker.update(&[rider(f)]);
        assert!(out.iter().all(|t| t.id != fp_id));
        assert_eq!(confirmed(&out).count(), 1);
    }
}

#[test]
fn seen_once_is_tentative_seen_on_two_consecutive_frames_is_confirmed() {
    let mut tracker = Tracker::new(TrackerConfig::default());
    let rider = |f: usize| det(200.0 + 3.0 * f as f32, 200.0, 40.0, 80.0, 0.9);
    assert!(tracker.update(&[]).is_empty());
    let out = tracker.update(&[rider(1)]);
    assert_eq!(
        (out.len(), out[0].state, out[0].hits, out[0].age),
        (1, TrackState::Tentative, 1, 0)
    );
    let id = out[0].id;
    let out = tracker.update(&[rider(2)]);
    assert_eq!(
        (out[0].id, out[0].state, out[0].hits, out[0].age),
        (id, TrackState::Confirmed, 2, 1)
    );

    // Seen, missed, seen again: not consecutive, so the first sighting was dropped and the
    // second starts a new tentative track with a new id.
    let other = |f: usize| det(600.0, 500.0 + f as f32, 60.0, 60.0, 0.8);
    let out = tracker.update(&[rider(3), other(3)]);
    let first = out
        .iter()
        .find(|t| t.last_detection == Some(1))
        .unwrap()
        .clone();
    assert!(first.is_tentative());
    tracker.update(&[rider(4)]);
    assert!(tracker.tracks().all(|t| t.id != first.id));
    let out = tracker.update(&[rider(5), other(5)]);
    let second = out.iter().find(|t| t.last_detection == Some(1)).unwrap();
    assert!(second.is_tentative());
    assert!(second.id > first.id);
}

#[test]
fn low_score_detections_alone_never_start_a_track() {
    // Low-score only, from the very first frame (where ByteTrack confirms new tracks at once).
    let mut tracker = Tracker::new(TrackerConfig::default());
    for f in 0..50 {
        let d = [
            det(300.0 + f as f32, 300.0, 50.0, 100.0, 0.2),
            det(100.0, 100.0, 30.0, 30.0, 0.11),
            det(500.0, 100.0, 30.0, 30.0, 0.05),
        ];
        assert!(tracker.update(&d).is_empty(), "frame {f}");
        assert_eq!(tracker.tracks().count(), 0);
    }
    // Between the high and the new-track thresholds: matched if a track exists, never a start.
    let config = TrackerConfig {
        new_track_thresh: 0.6,
        ..TrackerConfig::default()
    };
    let mut tracker = Tracker::new(config);
    for f in 0..20 {
        assert!(
            tracker
                .update(&[det(300.0, 300.0, 50.0, 100.0, 0.4)])
                .is_empty(),
            "frame {f}"
        );
    }
    let out = tracker.update(&[det(300.0, 300.0, 50.0, 100.0, 0.7)]);
    assert_eq!(out.len(), 1);
    let id = out[0].id;
    for _ in 0..5 {
        let out = tracker.update(&[det(300.0, 300.0, 50.0, 100.0, 0.4)]);
        assert_eq!((out.len(), out[0].id), (1, id));
    }
}

#[test]
fn a_stationary_jittery_object_keeps_one_id_for_100_frames() {
    let mut rng = SplitMix64::new(42);
    let mut tracker = Tracker::new(TrackerConfig::default());
    assert!(tracker.update(&[]).is_empty());
    let mut id = None;
    for f in 0..100 {
        let j = 4.0;
        let b = BBox::new(
            300.0 + range(&mut rng, -j, j),
            300.0 + range(&mut rng, -j, j),
            360.0 + range(&mut rng, -j, j),
            420.0 + range(&mut rng, -j, j),
        );
        // Mostly confident, now and then weak.
        let score = if f % 9 == 4 {
            range(&mut rng, 0.11, 0.24)
        } else {
            range(&mut rng, 0.3, 0.95)
        };
        let out = tracker.update(&[Detection {
            bbox: b,
            class_id: ClassId(3),
            score,
        }]);
        if f == 0 && score < 0.25 {
            continue;
        }
        assert_eq!(out.len(), 1, "frame {f}");
        let t = &out[0];
        assert_eq!(*id.get_or_insert(t.id), t.id, "frame {f}");
        assert_eq!(
            t.state,
            if f == 0 {
                TrackState::Tentative
            } else {
                TrackState::Confirmed
            }
        );
        assert_eq!(t.class_id, ClassId(3));
        // The filtered box stays on the object.
        assert!(
            t.bbox.iou(&BBox::new(300.0, 300.0, 360.0, 420.0)) > 0.8,
            "frame {f}: {:?}",
            t.bbox
        );
    }
    assert_eq!(tracker.tracks().count(), 1);
    assert_eq!(tracker.tracks().next().unwrap().hits, 100);
}

#[test]
fn lost_tracks_are_kept_for_the_buffer_then_removed() {
    let rider = |f: usize| det(200.0 + 2.0 * f as f32, 200.0, 40.0, 80.0, 0.9);
    for (frame_rate, hidden, same_id) in [
        (30.0, 30, true),
        (30.0, 31, false),
        (15.0, 15, true),
        (15.0, 16, false),
    ] {
        let mut tracker = Tracker::new(TrackerConfig {
            frame_rate,
            ..TrackerConfig::default()
        });
        let mut f = 0;
        let id = loop {
            let out = tracker.update(&[rider(f)]);
            f += 1;
            if f == 20 {
                break out[0].id;
            }
        };
        for _ in 0..hidden {
            assert!(tracker.update(&[]).is_empty());
            f += 1;
        }
        let lost: Vec<&Track> = tracker.tracks().collect();
        assert_eq!(
            lost.len(),
            usize::from(same_id),
            "fps {frame_rate}, hidden {hidden}"
        );
        if same_id {
            assert_eq!(
                (lost[0].state, lost[0].frames_since_update),
                (TrackState::Lost, hidden as u32)
            );
        }
        let out = tracker.update(&[rider(f)]);
        assert_eq!(out.len(), 1);
        assert_eq!(
            out[0].id == id,
            same_id,
            "fps {frame_rate}, hidden {hidden}: {:?}",
            out[0]
        );
        assert_eq!(out[0].is_confirmed(), same_id);
    }
}

#[test]
fn coasting_predicts_and_ages_without_losing_tracks() {
    let mut tracker = Tracker::new(TrackerConfig::default());
    let rider = |f: usize| det(100.0 + 6.0 * f as f32, 200.0, 40.0, 80.0, 0.9);
    let mut id = None;
    for f in 0..20 {
        id = Some(tracker.update(&[rider(f)])[0].id);
    }
    // Motion gating skips 8 frames; the track stays confirmed and moves with its velocity.
    let frames: Vec<Frame> = (20..28).map(|_| None).collect();
    let r = play(&mut tracker, &frames);
    assert!(r.frames.iter().all(|f| f.is_empty()));
    let t = tracker.tracks().next().unwrap();
    assert_eq!((t.state, t.frames_since_update), (TrackState::Confirmed, 8));
    assert!(
        t.bbox.iou(&rider(27).bbox) > 0.7,
        "{:?} vs {:?}",
        t.bbox,
        rider(27).bbox
    );
    let out = tracker.update(&[rider(28)]);
    assert_eq!(out[0].id, id.unwrap());

    // Lost tracks age while coasting, and are removed once past the buffer.
    assert!(tracker.update(&[]).is_empty());
    assert_eq!(tracker.tracks().next().unwrap().state, TrackState::Lost);
    for _ in 0..29 {
        tracker.coast();
    }
    assert_eq!(tracker.tracks().count(), 1);
    tracker.coast();
    assert_eq!(tracker.tracks().count(), 0);
    assert_eq!(tracker.removed().len(), 1);
    assert_eq!(tracker.removed()[0].id, id.unwrap());
    assert_eq!(tracker.frame(), 20 + 8 + 1 + 1 + 30);
}

#[test]
fn classes_follow_the_latest_detection_unless_per_class() {
    let at = |class: usize| Detection {
        bbox: BBox::new(100.0, 100.0, 150.0, 200.0),
        class_id: ClassId(class),
        score: 0.9,
    };
    let mut tracker = Tracker::new(TrackerConfig::default());
    let id = tracker.update(&[at(0)])[0].id;
    let out = tracker.update(&[at(2)]);
    assert_eq!((out.len(), out[0].id, out[0].class_id), (1, id, ClassId(2)));

    let mut tracker = Tracker::new(TrackerConfig {
        per_class: true,
        ..TrackerConfig::default()
    });
    let id = tracker.update(&[at(0)])[0].id;
    let out = tracker.update(&[at(2)]);
    assert_eq!(out.len(), 1);
    assert_ne!(out[0].id, id);
    assert_eq!(
        (out[0].class_id, out[0].state),
        (ClassId(2), TrackState::Tentative)
    );
    let out = tracker.update(&[at(0), at(2)]);
    assert_eq!(out.len(), 2);
    for t in &out {
        assert_eq!(t.class_id, ClassId(t.last_detection.unwrap() * 2));
        assert!(t.is_confirmed());
    }
}

#[test]
fn untrackable_detections_are_ignored() {
    let mut tracker = Tracker::new(TrackerConfig::default());
    let bad = [
        Detection {
            bbox: BBox::new(f32::NAN, 0.0, 10.0, 10.0),
            class_id: ClassId(0),
            score: 0.9,
        },
        Detection {
            bbox: BBox::new(10.0, 10.0, 10.0, 30.0),
            class_id: ClassId(0),
            score: 0.9,
        },
        Detection {
            bbox: BBox::new(10.0, 10.0, 30.0, 30.0),
            class_id: ClassId(0),
            score: f32::NAN,
        },
        det(200.0, 200.0, 20.0, 20.0, 0.9),
    ];
    let out = tracker.update(&bad);
    assert_eq!(out.len(), 1);
    assert_eq!(out[0].last_detection, Some(3));
}

#[test]
fn invalid_configs_are_rejected() {
    let bad = TrackerConfig {
        track_low_thresh: 0.5,
        track_high_thresh: 0.3,
        ..TrackerConfig::default()
    };
    assert!(Tracker::try_new(bad).is_err());
    let bad = TrackerConfig {
        match_thresh: f32::NAN,
        ..TrackerConfig::default()
    };
    assert!(Tracker::try_new(bad).is_err());
    let bad = TrackerConfig {
        frame_rate: 0.0,
        ..TrackerConfig::default()
    };
    assert!(Tracker::try_new(bad).is_err());
    assert_eq!(TrackerConfig::default().max_time_lost(), 30);
}

#[test]
fn predicted_boxes_lead_a_moving_track_without_changing_the_tracker() {
    let mut tracker = Tracker::new(TrackerConfig::default());
    let rider = |f: usize| det(100.0 + 6.0 * f as f32, 200.0, 40.0, 80.0, 0.9);
    for f in 0..20 {
        tracker.update(&[rider(f)]);
    }
    let before: Vec<Track> = tracker.tracks().cloned().collect();
    let p = tracker.predicted();
    assert_eq!(p.len(), 1);
    let (id, state, b) = p[0];
    assert_eq!((id, state), (before[0].id, TrackState::Confirmed));
    // Next frame's box: where the detection of frame 20 will be, not where frame 19's was.
    assert!(
        b.iou(&rider(20).bbox) > 0.9,
        "{b:?} vs {:?}",
        rider(20).bbox
    );
    assert!(b.iou(&rider(20).bbox) > before[0].bbox.iou(&rider(20).bbox));
    // Asking twice gives the same, and the next update still matches the same track.
    assert_eq!(tracker.predicted(), p);
    assert_eq!(tracker.tracks().cloned().collect::<Vec<_>>().len(), 1);
    assert_eq!(tracker.update(&[rider(20)])[0].id, id);
    // Tentative tracks are predicted too (a head seen once is looked for again).
    tracker.update(&[rider(21), det(400.0, 100.0, 40.0, 80.0, 0.9)]);
    let states: Vec<TrackState> = tracker.predicted().iter().map(|p| p.1).collect();
    assert_eq!(states, [TrackState::Confirmed, TrackState::Tentative]);
}
