//! Acceptance: seeded synthetic scenes (examples/scene-*.toml: real S2TLD backgrounds, real rider
//! crops from riders-roboflow, a drawn signal head on a schedule) rendered to H.264, decoded by GStreamer
//! and analysed by the real pipeline (helmet YOLOv12m + FastestDet on ONNX Runtime, ByteTrack, lamp
//! colour, rules) reach violation-level precision >= 0.9 and recall >= 0.8 per rule, with no offender
//! reported twice. Measured 2026-12-01 14:10 (this test and examples/trace.rs): no_helmet tp 9 fp 0 fn 2
//! (P 1.00 R 0.82), red_light tp 9 fp 0 fn 2 (P 1.00 R 0.82), no duplicates; about 45 s a scene here.
//! The misses are detector-level: a rider whose head the helmet model scores H/NH below the track
//! thresholds in turn (scene 2, actors 3 and 5: its tracks never confirm, so it is missed for red light
//! too) and a rider whose two-wheeler FastestDet finds in too few frames, a new track each time, for
//! its head to count as on one (scene 3, actor 4).
//!
//! Gating (issue 7): each scene's video is analysed a second time with `[camera.gating]` motion, roi_crop
//! and follow on (the defaults otherwise: margin 160 px; follow margin 48 px, a scan of the whole region
//! every 6th analysed frame). Per rule, the gated run must find at least the ungated run's true positives
//! with no more false positives. Work is counted, not timed: the sum over analysed frames of the helmet
//! model's network input area (FastestDet, a 1 MB model whose fixed 352x352 input keeps the whole frame,
//! costs a small fraction of it: 6 ms against the helmet model's 240 ms at 640x384 here). Measured
//! 2026-12-01 20:15: no_helmet tp 9 fp 0, red_light tp 10 fp 0 gated (ungated 9 / 0 and 9 / 0); motion
//! gating skips no frame (a rider is in the region nearly all the time in these scenes), the region crop
//! alone gives 1.82x (352x384 instead of 640x384), following the heads between scans 3.97x. `roadwarden
//! bench SCENE --config examples/site.toml --gating` times the same (benches/RESULTS.md).
//!
//! The fast model (issue 7's comparison with ultralytics: the INT8 file at a 512 input) runs on the same
//! frames and must find no fewer true violations than the float model at precision >= 0.9.
//!
//! Issue 13 (the red-light rule follows every vehicle class by its box's ground point, needs consistent
//! displacement, joins tracks lost at the line by motion): measured 2026-12-05 on scenes 1-3, no_helmet
//! tp 9 fp 0 fn 2 and red_light tp 9 fp 0 fn 2 ungated (as before), gated 9 / 0 and 9 / 0 (before: red_light
//! 10 / 0). The hard scene 4 has its own test below.

use std::path::PathBuf;

use roadwarden_infer::{ExecutionProvider, Runtime, RuntimeConfig};
use roadwarden_media::SourceConfig;
use roadwarden_pipeline::score::{RuleScore, score};
use roadwarden_pipeline::synth::{ActorKind, Scenario, render};
use roadwarden_pipeline::{CameraPipeline, RunnerEvent, run_source};
use roadwarden_rules::{CameraConfig, SiteConfig};
use roadwarden_types::{SignalState, Violation, ViolationKind};

fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../..")
}

fn runtime() -> Runtime {
    let lib = std::env::var_os("ROADWARDEN_ORT_LIB")
        .map(PathBuf::from)
        .or_else(|| Some(root().join(".ort/lib/libonnxruntime.so")).filter(|p| p.is_file()));
    Runtime::load(&RuntimeConfig {
        library: lib,
        provider: ExecutionProvider::Cpu,
        allow_cpu_fallback: false,
        threads: None,
    })
    .expect("ONNX Runtime (run scripts/setup)")
}

/// Inference work of one run: analysed frames, frames the detectors ran on, and network input pixels.
#[derive(Debug, Default, Clone, Copy)]
struct Work {
    frames: u64,
    inferred: u64,
    helmet_px: u64,
    all_px: u64,
}

impl Work {
    fn add(&mut self, o: &Work) {
        self.frames += o.frames;
        self.inferred += o.inferred;
        self.helmet_px += o.helmet_px;
        self.all_px += o.all_px;
    }
}

/// One run of `camera`'s pipeline (fresh: each scene is its own camera stream) over `video`.
fn analyse(camera: &CameraConfig, rt: &Runtime, video: &std::path::Path) -> (Vec<Violation>, Work) {
    let mut pipeline = CameraPipeline::new(camera, rt).unwrap();
    let mut reported = Vec::new();
    let mut work = Work::default();
    let summary = run_source(
        &mut pipeline,
        SourceConfig::file(camera.id.clone(), video),
        |e| {
            reported.extend(e.violations().iter().cloned());
            let RunnerEvent::Frame(r) = e else {
                return;
            };
            work.frames += 1;
            work.inferred += u64::from(!r.gated);
            work.helmet_px += r
                .helmet_input
                .map(|(w, h)| w as u64 * h as u64)
                .unwrap_or(0);
            work.all_px += r.inference_pixels();
            if r.gated {
                assert!(r.helmet_input.is_none(), "frame {}", r.frame_index);
            }
        },
        || false,
    )
    .unwrap();
    assert_eq!(summary.frames, work.frames);
    (reported, work)
}

fn add(total: &mut RuleScore, s: &RuleScore) {
    total.tp += s.tp;
    total.fp += s.fp;
    total.fn_ += s.fn_;
    total.duplicates += s.duplicates;
}

#[test]
fn generated_scenes_reach_the_pinned_precision_and_recall() {
    let dir = tempfile::tempdir().unwrap();
    let site = SiteConfig::load(&root().join("examples/site.toml")).unwrap();
    let camera = &site.cameras[0];
    let rt = runtime();
    let mut totals = [RuleScore::default(), RuleScore::default()];
    let mut gated_totals = [RuleScore::default(), RuleScore::default()];
    let mut gated_camera = camera.clone();
    gated_camera.gating.motion = true;
    gated_camera.gating.roi_crop = true;
    gated_camera.gating.follow = true;
    // Issue 7's fast model: the INT8 file at a 512 input (a 640x384 scene runs at 512x320), which the
    // ultralytics comparison in benches/RESULTS.md uses; it must find no fewer true violations.
    let mut fast_camera = camera.clone();
    fast_camera.models.helmet = root().join("models/helmet-yolov12m-int8-512.toml");
    let mut fast_totals = [RuleScore::default(), RuleScore::default()];
    let (mut work, mut gated_work) = (Work::default(), Work::default());
    let mut expected = 0;
    let (mut stoppers, mut green_crossers, mut pedestrians, mut helmets) = (0, 0, 0, 0);
    for n in 1..=3 {
        let scenario_path = root().join(format!("examples/scene-{n}.toml"));
        let scenario = Scenario::load(&scenario_path).unwrap();
        let video = dir.path().join(format!("scene-{n}.mp4"));
        let truth = render(&scenario, &video).unwrap();
        // Reproducible: the same scenario gives the same truth.
        assert_eq!(
            render(&scenario, &dir.path().join("again.mp4")).unwrap(),
            truth
        );
        expected += truth.violations.len();
        for (a, spec) in truth.actors.iter().zip(&scenario.actors) {
            match a.kind {
                ActorKind::Pedestrian if !a.helmet => pedestrians += 1,
                ActorKind::Rider if spec.stop_x.is_some() => stoppers += 1,
                ActorKind::Rider if a.signal_at_crossing == Some(SignalState::Green) => {
                    green_crossers += 1
                }
                _ => {}
            }
            helmets += a.helmet as u32;
        }
        let (reported, w) = analyse(camera, &rt, &video);
        work.add(&w);
        let s = score(&truth, &reported);
        eprintln!(
            "scene {n}: {} frames analysed, {} expected, {} reported: {:?}\n  misses {:?}\n  false alarms {:?}",
            w.frames,
            truth.violations.len(),
            reported.len(),
            s.per_rule,
            s.misses,
            s.false_alarms
        );
        add(&mut totals[0], &s.per_rule[&ViolationKind::NoHelmet]);
        add(&mut totals[1], &s.per_rule[&ViolationKind::RedLight]);
        check_evidence(&reported, camera.id.as_str());
        // The same frames, gated.
        let (gated, gw) = analyse(&gated_camera, &rt, &video);
        gated_work.add(&gw);
        let g = score(&truth, &gated);
        eprintln!(
            "scene {n} gated: {} of {} frames inferred, helmet input px {} (ungated {}): {:?}\n  misses {:?}\n  false alarms {:?}",
            gw.inferred, gw.frames, gw.helmet_px, w.helmet_px, g.per_rule, g.misses, g.false_alarms
        );
        add(&mut gated_totals[0], &g.per_rule[&ViolationKind::NoHelmet]);
        add(&mut gated_totals[1], &g.per_rule[&ViolationKind::RedLight]);
        check_evidence(&gated, camera.id.as_str());
        // The same frames with the fast model.
        let (fast, fw) = analyse(&fast_camera, &rt, &video);
        let f = score(&truth, &fast);
        eprintln!(
            "scene {n} fast model: helmet input px {} (float {}): {:?}\n  misses {:?}\n  false alarms {:?}",
            fw.helmet_px, w.helmet_px, f.per_rule, f.misses, f.false_alarms
        );
        add(&mut fast_totals[0], &f.per_rule[&ViolationKind::NoHelmet]);
        add(&mut fast_totals[1], &f.per_rule[&ViolationKind::RedLight]);
        check_evidence(&fast, camera.id.as_str());
    }
    assert!(expected >= 20, "only {expected} expected violations");
    assert!(
        stoppers >= 2 && green_crossers >= 2 && pedestrians >= 3 && helmets >= 6,
        "scene mix"
    );
    for (name, t) in ["no_helmet", "red_light"].iter().zip(&totals) {
        let p = t.tp as f64 / (t.tp + t.fp).max(1) as f64;
        let r = t.tp as f64 / (t.tp + t.fn_).max(1) as f64;
        eprintln!(
            "{name}: precision {p:.3} recall {r:.3} (tp {} fp {} fn {} duplicates {})",
            t.tp, t.fp, t.fn_, t.duplicates
        );
        assert!(p >= 0.9, "{name} precision {p:.3}");
        assert!(r >= 0.8, "{name} recall {r:.3}");
        assert_eq!(t.duplicates, 0, "{name}: an offender was reported twice");
    }
    no_fewer_true_violations("gated", "ungated", &totals, &gated_totals, true);
    no_fewer_true_violations("fast model", "float", &totals, &fast_totals, false);
    let ratio = work.helmet_px as f64 / gated_work.helmet_px.max(1) as f64;
    let all_ratio = work.all_px as f64 / gated_work.all_px.max(1) as f64;
    eprintln!(
        "work: ungated {} frames, helmet input {} px, all detectors {} px; gated {} of {} frames inferred, \
         helmet input {} px, all detectors {} px; helmet work ratio {ratio:.2}, all-detector pixel ratio {all_ratio:.2}",
        work.frames,
        work.helmet_px,
        work.all_px,
        gated_work.inferred,
        gated_work.frames,
        gated_work.helmet_px,
        gated_work.all_px
    );
    assert_eq!(
        work.frames, gated_work.frames,
        "both runs analyse the same frames"
    );
    assert!(
        ratio >= 3.0,
        "gated helmet inference work is only {ratio:.2}x less than ungated"
    );
}

/// Per rule, a variant run on the same frames (`what`) finds at least `base`'s true violations, reports no
/// offender twice, and keeps its false alarms down: no more than `base`'s with `same_fp`, else precision
/// >= 0.9.
fn no_fewer_true_violations(
    what: &str,
    base_name: &str,
    base: &[RuleScore; 2],
    other: &[RuleScore; 2],
    same_fp: bool,
) {
    for ((name, t), o) in ["no_helmet", "red_light"].iter().zip(base).zip(other) {
        eprintln!(
            "{name} {what}: tp {} fp {} fn {} duplicates {} ({base_name} tp {} fp {} fn {})",
            o.tp, o.fp, o.fn_, o.duplicates, t.tp, t.fp, t.fn_
        );
        assert!(
            o.tp >= t.tp,
            "{name} {what}: fewer true violations than {base_name} ({} < {})",
            o.tp,
            t.tp
        );
        if same_fp {
            assert!(
                o.fp <= t.fp,
                "{name} {what}: more false alarms than {base_name} ({} > {})",
                o.fp,
                t.fp
            );
        } else {
            let p = o.tp as f64 / (o.tp + o.fp).max(1) as f64;
            assert!(p >= 0.9, "{name} {what}: precision {p:.3}");
        }
        assert_eq!(
            o.duplicates, 0,
            "{name} {what}: an offender was reported twice"
        );
    }
}

fn check_evidence(reported: &[roadwarden_types::Violation], camera: &str) {
    use roadwarden_types::FrameRole;
    for v in reported {
        assert_eq!(v.camera.as_str(), camera);
        assert!(!v.thresholds.is_empty());
        assert!((0.0..=1.0).contains(&v.confidence));
        match v.kind {
            ViolationKind::RedLight => {
                let roles: Vec<_> = v.frames.iter().map(|f| f.role).collect();
                assert!(
                    roles.starts_with(&[FrameRole::Before, FrameRole::At]),
                    "{roles:?}"
                );
                assert!(v.signal.iter().any(|c| c.state == SignalState::Red));
            }
            ViolationKind::NoHelmet => assert_eq!(v.frames[0].role, FrameRole::Key),
        }
    }
}

/// Issue 13's hard scene (examples/scene-4.toml with examples/site-hard.toml): a creeping queue with a
/// rider standing just before the line and a neighbour standing behind it, a rider and a car running the
/// red, a contra-flow rider passing above the end of the drawn line (caught through the approach
/// polygon), and a rider without a helmet on green. Per rule precision >= 0.9 and recall >= 0.85, and no
/// red-light report of a rider who never crossed (no phantom crossing of a standing vehicle). Measured
/// 2026-12-05 (this test): no_helmet tp 2 fp 0 fn 0, red_light tp 4 fp 0 fn 0 (the car included); with
/// `require_two_wheeler = true` red_light tp 3 fn 1 (the contra-flow rider, a FastestDet `person`).
#[test]
fn the_hard_scene_reaches_the_pinned_precision_and_recall_without_phantom_crossings() {
    let dir = tempfile::tempdir().unwrap();
    let site = SiteConfig::load(&root().join("examples/site-hard.toml")).unwrap();
    let camera = &site.cameras[0];
    assert!(camera.red_light.approach.is_some());
    let rt = runtime();
    let scenario = Scenario::load(&root().join("examples/scene-4.toml")).unwrap();
    let video = dir.path().join("scene-4.mp4");
    let truth = render(&scenario, &video).unwrap();
    let red: Vec<u32> = truth
        .violations
        .iter()
        .filter(|v| v.kind == ViolationKind::RedLight)
        .map(|v| v.actor)
        .collect();
    // The creeping rider, the near-lane rider, the contra-flow rider and the car.
    assert_eq!(red, vec![2, 4, 5, 6], "{:?}", truth.violations);
    let standing: Vec<u32> = truth
        .actors
        .iter()
        .filter(|a| a.crossed_at_s.is_none() && a.kind != ActorKind::Pedestrian)
        .map(|a| a.id)
        .collect();
    assert_eq!(standing, vec![3]);
    // site-hard.toml sets `require_two_wheeler = false` (its contra-flow rider is a FastestDet `person`);
    // the same frames with it on are scored and printed: its measured effect.
    assert_eq!(camera.helmet.require_two_wheeler, Some(false));
    let mut required = camera.clone();
    required.helmet.require_two_wheeler = Some(true);
    let mut pinned = None;
    for (what, cam) in [
        ("site-hard.toml, require_two_wheeler = false", camera),
        ("require_two_wheeler = true", &required),
    ] {
        let (reported, _) = analyse(cam, &rt, &video);
        let s = score(&truth, &reported);
        eprintln!(
            "scene 4 ({what}): {} expected, {} reported: {:?}\n  misses {:?}\n  false alarms {:?}",
            truth.violations.len(),
            reported.len(),
            s.per_rule,
            s.misses,
            s.false_alarms
        );
        check_evidence(&reported, cam.id.as_str());
        pinned.get_or_insert(s);
    }
    let s = pinned.unwrap();
    let phantoms: Vec<_> = s
        .false_alarms
        .iter()
        .filter(|f| {
            f.kind == ViolationKind::RedLight && f.actor.is_some_and(|a| standing.contains(&a))
        })
        .collect();
    assert!(phantoms.is_empty(), "phantom crossings: {phantoms:?}");
    for kind in [ViolationKind::NoHelmet, ViolationKind::RedLight] {
        let r = &s.per_rule[&kind];
        eprintln!(
            "scene 4 {kind:?}: precision {:.3} recall {:.3} (tp {} fp {} fn {})",
            r.precision, r.recall, r.tp, r.fp, r.fn_
        );
        assert!(r.precision >= 0.9, "{kind:?} precision {:.3}", r.precision);
        assert!(r.recall >= 0.85, "{kind:?} recall {:.3}", r.recall);
        assert_eq!(r.duplicates, 0, "{kind:?}: an offender was reported twice");
    }
}
