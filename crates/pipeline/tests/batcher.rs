//! The shared inference batcher (issue 17) with the real models on real frames: 8 cameras, each on its
//! own thread, submit the Delhi enforcement camera's frames (riders-roboflow valid split, ../shared)
//! through one batcher per model and get the same detections, bit for bit, as 8 cameras with a session
//! each (the helmet model in batches of up to 8; FastestDet, whose batch is fixed at 1, one image
//! at a time on the batcher's thread). The helmet model's two-stage crops through the batcher equal
//! the crops on a session of their own.

use std::path::{Path, PathBuf};
use std::sync::{Arc, Barrier};
use std::time::Duration;

use roadwarden_imaging::BgrImage;
use roadwarden_infer::{
    Batcher, BatcherConfig, DetectOptions, Detection, Detector, ExecutionProvider, Region, Runtime,
    RuntimeConfig, ScoreMode,
};

const CAMERAS: usize = 8;
const FRAMES_PER_CAMERA: usize = 2;

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

/// `CAMERAS` x `FRAMES_PER_CAMERA` distinct Delhi enforcement frames (640x640), camera-major.
fn frames() -> Vec<BgrImage> {
    let data = root().join("../shared/footage/riders-roboflow");
    let list = std::fs::read_to_string(data.join("subset_036_delhi_enforcement_cam_valid.txt"))
        .expect("riders-roboflow Delhi subset list");
    let frames: Vec<BgrImage> = list
        .lines()
        .filter(|l| !l.trim().is_empty())
        .take(CAMERAS * FRAMES_PER_CAMERA)
        .map(|l| {
            let name = Path::new(l.trim()).file_name().expect("file name");
            BgrImage::read(&data.join("valid/images").join(name)).expect("Delhi frame")
        })
        .collect();
    assert_eq!(frames.len(), CAMERAS * FRAMES_PER_CAMERA);
    frames
}

/// Low enough that every frame has candidates to compare.
fn options() -> DetectOptions {
    DetectOptions {
        score: ScoreMode::Fixed(0.05),
        ..DetectOptions::default()
    }
}

/// Detections as bits, so that equality is bit-identity (and NaN would not hide).
fn bits(dets: &[Detection]) -> Vec<(usize, [u32; 5])> {
    dets.iter()
        .map(|d| {
            (
                d.class_id.0,
                [
                    d.bbox.x1.to_bits(),
                    d.bbox.y1.to_bits(),
                    d.bbox.x2.to_bits(),
                    d.bbox.y2.to_bits(),
                    d.score.to_bits(),
                ],
            )
        })
        .collect()
}

/// Each camera with a session of its own (loaded one after the other, so 8 helmet sessions are not
/// held at once): detections per camera, per frame.
fn separate_sessions(model: &Path, rt: &Runtime, frames: &[BgrImage]) -> Vec<Vec<Vec<Detection>>> {
    frames
        .chunks(FRAMES_PER_CAMERA)
        .map(|mine| {
            let mut det = Detector::load(model, rt).expect("model");
            mine.iter()
                .map(|f| det.detect(&f.view(), &options()).expect("detect"))
                .collect()
        })
        .collect()
}

/// The 8 cameras at once through one batcher; also its stats.
fn through_batcher(
    model: &Path,
    rt: &Runtime,
    frames: &Arc<Vec<BgrImage>>,
) -> (Vec<Vec<Vec<Detection>>>, roadwarden_infer::BatcherStats) {
    let batcher = Batcher::new(
        Detector::load(model, rt).expect("model"),
        BatcherConfig {
            max_batch: CAMERAS,
            // Long enough that the cameras' submits meet on a busy 2-core machine.
            max_wait: Duration::from_millis(200),
        },
    )
    .expect("batcher");
    let start = Arc::new(Barrier::new(CAMERAS));
    let threads: Vec<_> = (0..CAMERAS)
        .map(|c| {
            let mut det = batcher.detector(&format!("cam{c}"));
            assert!(det.is_shared());
            let frames = frames.clone();
            let start = start.clone();
            std::thread::spawn(move || {
                start.wait();
                frames[c * FRAMES_PER_CAMERA..(c + 1) * FRAMES_PER_CAMERA]
                    .iter()
                    .map(|f| det.detect(&f.view(), &options()).expect("detect"))
                    .collect::<Vec<_>>()
            })
        })
        .collect();
    let out = threads
        .into_iter()
        .map(|t| t.join().expect("camera thread"))
        .collect();
    (out, batcher.stats())
}

fn assert_identical(model: &str, own: &[Vec<Vec<Detection>>], batched: &[Vec<Vec<Detection>>]) {
    let mut total = 0;
    for (c, (a, b)) in own.iter().zip(batched).enumerate() {
        for (f, (a, b)) in a.iter().zip(b).enumerate() {
            assert_eq!(
                bits(a),
                bits(b),
                "{model}, camera {c} frame {f}: batched detections differ\nown: {a:?}\nbatched: {b:?}"
            );
            total += a.len();
        }
    }
    assert!(total > 0, "{model}: no detections to compare");
    eprintln!("{model}: {total} detections identical");
}

#[test]
fn eight_cameras_through_one_batcher_equal_eight_sessions() {
    let rt = runtime();
    let frames = Arc::new(frames());
    let helmet = root().join("models/helmet-yolov12m.toml");
    let fastestdet = root().join("models/fastestdet-352.toml");

    // FastestDet: batch fixed at 1, so the batcher runs the gathered frames one by one.
    let own = separate_sessions(&fastestdet, &rt, &frames);
    let (batched, stats) = through_batcher(&fastestdet, &rt, &frames);
    assert_identical("fastestdet-352", &own, &batched);
    assert_eq!(stats.images, (CAMERAS * FRAMES_PER_CAMERA) as u64);
    assert_eq!(stats.runs, stats.images, "fixed batch: one run per image");
    assert_eq!(stats.cameras.len(), CAMERAS);
    assert!(
        stats
            .cameras
            .iter()
            .all(|c| c.requests == FRAMES_PER_CAMERA as u64)
    );
    eprintln!("fastestdet-352: {stats:?}");

    // The helmet model: dynamic batch, so the cameras' frames run together.
    let own = separate_sessions(&helmet, &rt, &frames);
    let (batched, stats) = through_batcher(&helmet, &rt, &frames);
    eprintln!("helmet-yolov12m: {stats:?}");
    assert_identical("helmet-yolov12m", &own, &batched);
    assert_eq!(stats.images, (CAMERAS * FRAMES_PER_CAMERA) as u64);
    assert!(
        stats.runs < stats.images,
        "no batch of more than one image formed: {:?}",
        stats.runs_by_size
    );
}

#[test]
fn two_stage_crops_through_the_batcher_equal_their_own_session() {
    let rt = runtime();
    let frame = frames().swap_remove(0);
    let view = frame.view();
    let model = root().join("models/helmet-yolov12m.toml");
    // Three crops across the frame, as the two-stage head detection cuts around riders.
    let regions = [
        Region {
            x: 0,
            y: 200,
            width: 220,
            height: 240,
        },
        Region {
            x: 200,
            y: 180,
            width: 240,
            height: 260,
        },
        Region {
            x: 420,
            y: 220,
            width: 220,
            height: 220,
        },
    ];
    let opts = DetectOptions {
        score: ScoreMode::Fixed(0.001),
        ..DetectOptions::default()
    };
    let mut own = Detector::load(&model, &rt).expect("model");
    let expected = own
        .detect_regions(&view, &regions, 256, &opts)
        .expect("own");
    drop(own);
    let batcher = Batcher::new(
        Detector::load(&model, &rt).expect("model"),
        BatcherConfig::default(),
    )
    .expect("batcher");
    let mut shared = batcher.detector("crops");
    let got = shared
        .detect_regions(&view, &regions, 256, &opts)
        .expect("batched");
    assert_eq!(expected.len(), got.len());
    for (a, b) in expected.iter().zip(&got) {
        assert_eq!(bits(a), bits(b));
    }
    let stats = batcher.stats();
    // One request of three crops, one run.
    assert_eq!(stats.runs_by_size.get(3), Some(&1), "{stats:?}");
}

/// The whole camera pipeline (decode, FastestDet, the helmet model on the ROI crop and on the rider
/// crops, ByteTrack, signal, rules) on a generated scene: two cameras at once on shared batchers
/// (`CameraPipeline::with_shared`) report, frame by frame, exactly what a camera with sessions of its
/// own reports.
#[test]
fn cameras_on_shared_batchers_report_what_a_camera_with_its_own_sessions_does() {
    use roadwarden_media::SourceConfig;
    use roadwarden_pipeline::synth::{Scenario, render};
    use roadwarden_pipeline::{CameraPipeline, RunnerEvent, SharedInference, run_source};
    use roadwarden_rules::{CameraConfig, SiteConfig};

    let rt = runtime();
    let mut scenario = Scenario::load(&root().join("examples/scene-1.toml")).unwrap();
    scenario.duration_s = 3.0;
    let dir = tempfile::tempdir().unwrap();
    let video = dir.path().join("scene.mp4");
    render(&scenario, &video).unwrap();
    let site = SiteConfig::load(&root().join("examples/site.toml")).unwrap();
    let mut camera = site.cameras[0].clone();
    camera.heads.two_stage = true;
    camera.gating.roi_crop = true;
    camera.validate().unwrap();

    // Each analysed frame's tracks and violations, as text (f32 Debug round-trips: equal text is
    // equal bits). A violation's id (UUIDv7) and its frames' times are wall-clock, so they are left
    // out: its kind, track, confidence, thresholds and evidence frames' indexes and boxes are kept.
    let run = |pipeline: &mut CameraPipeline, camera: &CameraConfig| -> Vec<String> {
        let mut out = Vec::new();
        run_source(
            pipeline,
            SourceConfig::file(camera.id.clone(), &video),
            |r| {
                if let RunnerEvent::Frame(r) = r {
                    let violations: Vec<String> = r
                        .violations
                        .iter()
                        .map(|v| {
                            let frames: Vec<String> = v
                                .frames
                                .iter()
                                .map(|f| format!("{:?} {} {:?}", f.role, f.frame_index, f.boxes))
                                .collect();
                            format!(
                                "{:?} {} {:?} {:?} {frames:?}",
                                v.kind, v.track_id, v.confidence, v.thresholds
                            )
                        })
                        .collect();
                    out.push(format!(
                        "{} {:?} {:?} {violations:?} {:?}",
                        r.frame_index, r.heads, r.two_wheelers, r.helmet_input
                    ));
                }
            },
            || false,
        )
        .unwrap();
        out
    };
    let own = run(&mut CameraPipeline::new(&camera, &rt).unwrap(), &camera);
    assert!(own.len() >= 8, "{} frames", own.len());

    let shared = Arc::new(SharedInference::new(BatcherConfig {
        max_batch: 8,
        max_wait: Duration::from_millis(50),
    }));
    let batched: Vec<Vec<String>> = std::thread::scope(|s| {
        let threads: Vec<_> = (0..2)
            .map(|_| {
                let mut pipeline =
                    CameraPipeline::with_shared(&camera, &rt, Some(&shared)).unwrap();
                let camera = &camera;
                let run = &run;
                s.spawn(move || run(&mut pipeline, camera))
            })
            .collect();
        threads.into_iter().map(|t| t.join().unwrap()).collect()
    });
    for (c, frames) in batched.iter().enumerate() {
        assert_eq!(frames.len(), own.len(), "camera {c}");
        for (a, b) in own.iter().zip(frames) {
            if a != b {
                let at = a.bytes().zip(b.bytes()).take_while(|(x, y)| x == y).count();
                let from = a.floor_char_boundary(at.saturating_sub(300));
                panic!(
                    "camera {c}: frame reports differ at byte {at}:\nown:     ...{}\nbatched: ...{}",
                    &a[from..a.floor_char_boundary((at + 200).min(a.len()))],
                    &b[from..b.floor_char_boundary((at + 200).min(b.len()))]
                );
            }
        }
    }
    let stats = shared.stats();
    assert_eq!(stats.len(), 2, "one batcher per model: {stats:?}");
    for (model, st) in &stats {
        eprintln!(
            "{}: {} runs, {} images, runs by size {:?}",
            model.display(),
            st.runs,
            st.images,
            st.runs_by_size
        );
        assert_eq!(st.cameras.len(), 2);
    }
}
