//! The real plate detector (HyperLPR3's, ONNX Runtime) on real CCTV photos of riders-roboflow
//! (../shared, CC BY 4.0): run on the rider whose plate is labelled it finds that plate; on a close-up
//! photo of a rider's head (riders-kaggle) with no plate in it, it finds nothing and raises no error.

use std::path::PathBuf;

use roadwarden_imaging::BgrImage;
use roadwarden_infer::{BBox, ExecutionProvider, Runtime, RuntimeConfig};
use roadwarden_pipeline::plates::PlateFinder;

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

/// A labelled photo's boxes of class `class`, in pixels.
fn labelled(stem: &str, class: u32, w: f32, h: f32) -> Vec<BBox> {
    let path = root().join(format!(
        "../shared/footage/riders-roboflow/train/labels/{stem}.txt"
    ));
    std::fs::read_to_string(&path)
        .expect("riders-roboflow labels")
        .lines()
        .filter_map(|l| {
            let v: Vec<f32> = l
                .split_whitespace()
                .filter_map(|x| x.parse().ok())
                .collect();
            (v.len() == 5 && v[0] == class as f32)
                .then(|| BBox::from_cxcywh(v[1] * w, v[2] * h, v[3] * w, v[4] * h))
        })
        .collect()
}

/// Photos whose widest labelled plate (class 0) this detector finds on the whole frame (it finds
/// only 4 of the 1585 labelled Indian plates of riders-roboflow: models/README.md).
const WITH_PLATE: [&str; 2] = [
    "098-Rhythm2_jpg.rf.7d787fd15a46fc281481071e9c2d1f74",
    "098-Rhythm14_jpg.rf.5f095dba70734ef9af0b5668da491c1d",
];

#[test]
fn finds_the_labelled_plate_on_the_riders_vehicle() {
    let rt = runtime();
    let mut finder =
        PlateFinder::load(&root().join("models/hyperlpr3-plate-y5fu-320.toml"), &rt).unwrap();
    for stem in WITH_PLATE {
        let image = BgrImage::read(&root().join(format!(
            "../shared/footage/riders-roboflow/train/images/{stem}.jpg"
        )))
        .expect("riders-roboflow photo");
        let (w, h) = (image.width() as f32, image.height() as f32);
        let plate = labelled(stem, 0, w, h)
            .into_iter()
            .max_by(|a, b| a.width().total_cmp(&b.width()))
            .expect("a labelled plate");
        // The offender's vehicle region: the labelled rider (class 4) that holds the plate, or,
        // where the plate's rider is not labelled, a rider-sized box around the plate.
        let vehicle = labelled(stem, 4, w, h)
            .into_iter()
            .find(|r| r.intersection(&plate) > 0.9 * plate.area())
            .unwrap_or_else(|| {
                let (cx, cy) = ((plate.x1 + plate.x2) / 2.0, (plate.y1 + plate.y2) / 2.0);
                BBox::from_cxcywh(cx, cy - 0.25 * h / 2.0, 0.2 * w, 0.5 * h)
            });
        let read = finder
            .find(&image.view(), &vehicle)
            .unwrap()
            .unwrap_or_else(|| panic!("{stem}: no plate found on the vehicle {vehicle:?}"));
        eprintln!(
            "{stem}: vehicle {vehicle:?}, plate {:?} score {:.3}, labelled {:?}, IoU {:.2}",
            read.bbox,
            read.confidence,
            plate,
            read.bbox.iou(&plate)
        );
        assert!(
            read.bbox.iou(&plate) > 0.3,
            "{stem}: found {:?}, labelled {:?}",
            read.bbox,
            plate
        );
        assert!(read.confidence > 0.5 && read.text.is_none());
    }
}

#[test]
fn a_head_close_up_without_a_plate_gives_none() {
    let rt = runtime();
    let mut finder =
        PlateFinder::load(&root().join("models/hyperlpr3-plate-y5fu-320.toml"), &rt).unwrap();
    let dir = root().join("../shared/footage/riders-kaggle/images");
    let mut names: Vec<_> = std::fs::read_dir(&dir)
        .expect("riders-kaggle images")
        .filter_map(|e| e.ok().map(|e| e.path()))
        .collect();
    names.sort();
    let image = BgrImage::read(&names[0]).expect("riders-kaggle photo");
    let whole = BBox::new(0.0, 0.0, image.width() as f32, image.height() as f32);
    let read = finder.find(&image.view(), &whole).unwrap();
    assert!(read.is_none(), "{}: {read:?}", names[0].display());
    // A box outside the frame: nothing to look at, no error.
    let outside = BBox::new(-50.0, -50.0, -10.0, -10.0);
    assert!(finder.find(&image.view(), &outside).unwrap().is_none());
}

/// A red-light violation whose crossing frame is the photo with a plate: `read_violation` fills
/// its plate read from the offender's box; with no image at hand it leaves it empty.
#[test]
fn read_violation_fills_the_plate_from_the_crossing_frame() {
    use chrono::Utc;
    use roadwarden_pipeline::ViolationFrames;
    use roadwarden_types::{
        CameraId, ClassId, EvidenceBox, EvidenceFrame, FrameRole, Violation, ViolationId,
        ViolationKind,
    };
    let rt = runtime();
    let mut finder =
        PlateFinder::load(&root().join("models/hyperlpr3-plate-y5fu-320.toml"), &rt).unwrap();
    let stem = WITH_PLATE[0];
    let image = BgrImage::read(&root().join(format!(
        "../shared/footage/riders-roboflow/train/images/{stem}.jpg"
    )))
    .expect("riders-roboflow photo");
    let vehicle = BBox::new(7.0, 0.0, 136.0, 280.0);
    let violation = Violation {
        id: ViolationId::new(),
        kind: ViolationKind::RedLight,
        camera: CameraId::new("plates"),
        track_id: 1,
        occurred_at: Utc::now(),
        confidence: 0.9,
        frames: vec![EvidenceFrame {
            role: FrameRole::At,
            frame_index: 1,
            captured_at: Utc::now(),
            analysed_at: None,
            boxes: vec![EvidenceBox {
                bbox: vehicle,
                class_id: ClassId(3),
                class_name: "motorbike".into(),
                score: 0.9,
            }],
        }],
        signal: vec![],
        thresholds: Default::default(),
        plate_read: None,
    };
    let mut without_image = ViolationFrames {
        violation: violation.clone(),
        images: vec![],
        missing: vec![FrameRole::At],
        clip: None,
    };
    finder.read_violation(&mut without_image).unwrap();
    assert!(without_image.violation.plate_read.is_none());
    let mut vf = ViolationFrames {
        violation,
        images: vec![(FrameRole::At, image)],
        missing: vec![],
        clip: None,
    };
    finder.read_violation(&mut vf).unwrap();
    let read = vf.violation.plate_read.expect("the plate on the vehicle");
    assert!(
        read.bbox.iou(&BBox::new(40.25, 186.25, 102.75, 213.75)) > 0.3,
        "{read:?}"
    );
}
