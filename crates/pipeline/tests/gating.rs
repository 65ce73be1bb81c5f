//! Motion gating through the real pipeline (GStreamer decode, OpenCV MOG2, ONNX Runtime): a generated scene
//! (scene 1's background and crops) with one helmeted rider who crosses on green and leaves, then an empty
//! road while the signal turns red. Once the rider is gone (and the hangover is over) the detectors are
//! skipped, the trackers coast, and the signal is still read on the skipped frames; nothing is reported.
//! The generated-scene acceptance with gating on (recall, false alarms, work) is in tests/scenes.rs.

use std::path::PathBuf;

use roadwarden_infer::{ExecutionProvider, Runtime, RuntimeConfig};
use roadwarden_media::SourceConfig;
use roadwarden_pipeline::synth::{Phase, Scenario, render};
use roadwarden_pipeline::{CameraPipeline, RunnerEvent, run_source};
use roadwarden_rules::SiteConfig;
use roadwarden_types::SignalState;

fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../..")
}

#[test]
fn an_empty_road_skips_inference_but_not_the_signal() {
    let lib = std::env::var_os("ROADWARDEN_ORT_LIB")
        .map(PathBuf::from)
        .or_else(|| Some(root().join(".ort/lib/libonnxruntime.so")).filter(|p| p.is_file()));
    let rt = Runtime::load(&RuntimeConfig {
        library: lib,
        provider: ExecutionProvider::Cpu,
        allow_cpu_fallback: false,
        threads: None,
    })
    .expect("ONNX Runtime (run scripts/setup)");
    let mut scenario = Scenario::load(&root().join("examples/scene-1.toml")).unwrap();
    scenario.duration_s = 8.0;
    scenario.phases = vec![
        Phase {
            at_s: 0.0,
            state: SignalState::Green,
        },
        Phase {
            at_s: 5.5,
            state: SignalState::Red,
        },
    ];
    // One rider with a helmet, from x = 250 at 120 px/s: past the rule region (x < 608) by about 3.3 s.
    let mut rider = scenario.actors.remove(1);
    assert!(rider.helmet);
    rider.enter_s = 0.0;
    rider.from_x = 250.0;
    scenario.actors = vec![rider];
    let dir = tempfile::tempdir().unwrap();
    let video = dir.path().join("quiet.mp4");
    let truth = render(&scenario, &video).unwrap();
    assert!(truth.violations.is_empty());

    let site = SiteConfig::load(&root().join("examples/site.toml")).unwrap();
    let mut camera = site.cameras[0].clone();
    camera.gating.motion = true;
    camera.gating.roi_crop = true;
    let mut pipeline = CameraPipeline::new(&camera, &rt).unwrap();
    let mut reports = Vec::new();
    run_source(
        &mut pipeline,
        SourceConfig::file(camera.id.clone(), &video),
        |e| {
            if let RunnerEvent::Frame(r) = e {
                reports.push(r.clone())
            }
        },
        || false,
    )
    .unwrap();
    let gated: Vec<_> = reports.iter().filter(|r| r.gated).collect();
    let summary: String = reports
        .iter()
        .map(|r| if r.gated { '.' } else { 'I' })
        .collect();
    eprintln!("{} frames, {} gated: {summary}", reports.len(), gated.len());
    assert!(
        reports.len() >= 30,
        "{} frames analysed at 4 fps",
        reports.len()
    );
    // While the rider is in the region, every frame runs inference, on the crop.
    for r in reports.iter().take(8) {
        assert!(
            !r.gated,
            "frame {} gated with a rider in the region",
            r.frame_index
        );
        assert_eq!(r.helmet_input, Some((352, 384)));
        assert_eq!(r.two_wheeler_input, Some((352, 352)));
    }
    // The empty road: the last 2.5 s are skipped.
    assert!(
        gated.len() >= 10,
        "only {} gated frames: {summary}",
        gated.len()
    );
    assert!(reports.iter().rev().take(10).all(|r| r.gated), "{summary}");
    for r in &gated {
        assert!(r.helmet_input.is_none() && r.two_wheeler_input.is_none());
        assert!(r.heads.is_empty() && r.two_wheelers.is_empty());
    }
    // The signal is still read on skipped frames: it turns red while nothing is inferred.
    assert!(
        gated.iter().any(|r| r.signal == SignalState::Red),
        "the signal did not advance on gated frames"
    );
    assert!(
        reports.iter().all(|r| r.violations.is_empty()),
        "a helmeted rider crossing on green is no violation"
    );
}
