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
