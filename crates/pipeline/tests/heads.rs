//! Two-stage head detection with the real helmet model (ONNX Runtime) on a real CCTV photo of the
//! riders-roboflow test split (../shared): crops around the labelled riders run as one batch give the
//! same heads as the crops run one by one, in frame pixels inside their crops, and the merge keeps the
//! frame's own heads where the crops add nothing better.

use std::path::PathBuf;

use roadwarden_imaging::BgrImage;
use roadwarden_infer::{
    BBox, ClassRole, DetectOptions, Detector, ExecutionProvider, Region, Runtime, RuntimeConfig,
    ScoreMode,
};
use roadwarden_pipeline::heads::{TwoStageHeads, TwoStageParams};

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
        threads: Some(2),
    })
    .expect("ONNX Runtime (run scripts/setup)")
}

/// A test-split photo (640x640) with five labelled riders and seven heads under 40 px.
const PHOTO: &str = "train/images/013_44_jpeg.rf.3b3f49f5031ebfadb5b98dd69cdc9e0b";

/// The photo and its riders (class 4 of the labels), in pixels.
fn photo() -> (BgrImage, Vec<BBox>) {
    let data = root().join("../shared/footage/riders-roboflow");
    let image = BgrImage::read(&data.join(format!("{PHOTO}.jpg"))).expect("riders-roboflow photo");
    let labels =
        std::fs::read_to_string(data.join(format!("{PHOTO}.txt").replace("/images/", "/labels/")))
            .expect("riders-roboflow labels");
    let (w, h) = (image.width() as f32, image.height() as f32);
    let riders = labels
        .lines()
        .filter_map(|l| {
            let v: Vec<f32> = l
                .split_whitespace()
                .filter_map(|x| x.parse().ok())
                .collect();
            (v.len() == 5 && v[0] == 4.0)
                .then(|| BBox::from_cxcywh(v[1] * w, v[2] * h, v[3] * w, v[4] * h))
        })
        .collect();
    (image, riders)
}

#[test]
fn crops_in_one_batch_equal_crops_one_by_one() {
    let rt = runtime();
    let mut helmet = Detector::load(&root().join("models/helmet-yolov12m.toml"), &rt).unwrap();
    assert!(
        helmet.has_dynamic_batch(),
        "the helmet model's ONNX batch dimension is dynamic"
    );
    let (image, riders) = photo();
    assert_eq!(riders.len(), 5);
    let view = image.view();
    let regions: Vec<Region> = riders
        .iter()
        .take(3)
        .filter_map(|b| Region::around(b, view.width(), view.height()))
        .collect();
    assert_eq!(regions.len(), 3);
    // A low threshold, so that there are detections to compare: this model, trained on close-ups,
    // scores these CCTV heads low, on the frame as on the crops (models/README.md).
    let opts = DetectOptions {
        score: ScoreMode::Fixed(0.001),
        ..DetectOptions::default()
    };
    let batch = helmet.detect_regions(&view, &regions, 256, &opts).unwrap();
    let mut heads = 0;
    for (r, dets) in regions.iter().zip(&batch) {
        let one = helmet
            .detect_regions(&view, std::slice::from_ref(r), 256, &opts)
            .unwrap()
            .remove(0);
        assert_eq!(dets.len(), one.len(), "region {r:?}");
        for (a, b) in dets.iter().zip(&one) {
            assert_eq!(a.class_id, b.class_id);
            assert!((a.score - b.score).abs() < 1e-3, "{a:?} {b:?}");
            assert!(a.bbox.iou(&b.bbox) > 0.99, "{a:?} {b:?}");
            // In frame pixels, inside the crop.
            assert!(a.bbox.x1 >= r.x as f32 - 0.5 && a.bbox.x2 <= (r.x + r.width) as f32 + 0.5);
            assert!(a.bbox.y1 >= r.y as f32 - 0.5 && a.bbox.y2 <= (r.y + r.height) as f32 + 0.5);
        }
        heads += dets.len();
    }
    assert!(heads >= 3, "candidates on the rider crops: {batch:?}");
}

#[test]
fn two_stage_keeps_the_frame_heads_and_runs_only_useful_crops() {
    let rt = runtime();
    let mut helmet = Detector::load(&root().join("models/helmet-yolov12m.toml"), &rt).unwrap();
    let (image, riders) = photo();
    let view = image.view();
    let opts = DetectOptions::default();
    let frame_heads = helmet.detect(&view, &opts).unwrap();
    // Riders 130-190 px tall: a 448 input still upscales their crops 1.5 x more than the frame run.
    let two = TwoStageHeads::new(TwoStageParams {
        crop_scale: 1.5,
        crop_input: 448,
        max_crops: 12,
    });
    let riders: Vec<(BBox, ClassRole)> =
        riders.iter().map(|b| (*b, ClassRole::TwoWheeler)).collect();
    let (merged, run) = two
        .detect(&mut helmet, &view, &riders, &opts, frame_heads.clone())
        .unwrap();
    assert!(
        !run.regions.is_empty() && run.regions.len() <= 5,
        "{:?}",
        run.regions
    );
    // Every frame head is kept or replaced by a surer reading of the same head.
    for f in &frame_heads {
        assert!(
            merged
                .iter()
                .any(|m| m == f || (m.bbox.iou(&f.bbox) >= 0.5 && m.score > f.score)),
            "{f:?} lost from {merged:?}"
        );
    }
    // No riders: the frame's heads as they were.
    let (same, none) = two
        .detect(&mut helmet, &view, &[], &opts, frame_heads.clone())
        .unwrap();
    assert_eq!(same, frame_heads);
    assert!(none.regions.is_empty());
}

/// `[camera.heads] two_stage` through the real pipeline (GStreamer decode, FastestDet, the helmet model on
/// the frame and on the rider crops, ByteTrack, rules): a generated scene with one helmeted rider crossing
/// on green is analysed with and without it; both follow the rider's head, and neither reports anything.
#[test]
fn the_camera_pipeline_runs_two_stage_heads_from_the_site_file() {
    use roadwarden_media::SourceConfig;
    use roadwarden_pipeline::synth::{Phase, Scenario, render};
    use roadwarden_pipeline::{CameraPipeline, RunnerEvent, run_source};
    use roadwarden_rules::SiteConfig;
    use roadwarden_types::SignalState;

    let rt = runtime();
    let mut scenario = Scenario::load(&root().join("examples/scene-1.toml")).unwrap();
    scenario.duration_s = 4.0;
    scenario.phases = vec![Phase {
        at_s: 0.0,
        state: SignalState::Green,
    }];
    let mut rider = scenario.actors.remove(1);
    assert!(rider.helmet);
    rider.enter_s = 0.0;
    rider.from_x = 250.0;
    scenario.actors = vec![rider];
    let dir = tempfile::tempdir().unwrap();
    let video = dir.path().join("one-rider.mp4");
    let truth = render(&scenario, &video).unwrap();
    assert!(truth.violations.is_empty());

    let site = SiteConfig::load(&root().join("examples/site.toml")).unwrap();
    let mut heads_seen = Vec::new();
    for two_stage in [false, true] {
        let mut camera = site.cameras[0].clone();
        camera.heads.two_stage = two_stage;
        camera.validate().unwrap();
        let mut pipeline = CameraPipeline::new(&camera, &rt).unwrap();
        let mut frames = 0;
        let mut with_head = 0;
        let mut violations = 0;
        run_source(
            &mut pipeline,
            SourceConfig::file(camera.id.clone(), &video),
            |r| {
                violations += r.violations().len();
                if let RunnerEvent::Frame(r) = r {
                    frames += 1;
                    with_head += usize::from(r.heads.iter().any(|h| h.matched));
                }
            },
            || false,
        )
        .unwrap();
        assert!(frames >= 10, "two_stage {two_stage}: {frames} frames");
        assert_eq!(violations, 0, "two_stage {two_stage}");
        heads_seen.push(with_head);
    }
    eprintln!(
        "frames with a matched head: single {}, two-stage {}",
        heads_seen[0], heads_seen[1]
    );
    assert!(heads_seen[0] >= 5, "{heads_seen:?}");
    assert!(heads_seen[1] >= heads_seen[0] * 4 / 5, "{heads_seen:?}");
}
