//! The plate crop in the evidence, on SQLite and on PostgreSQL, with the real plate detector
//! (HyperLPR3's, ONNX Runtime) on real photos (../shared/footage): where it finds a plate in the
//! key frame, the plate crop is written, hashed into the record and listed with its evidence, and
//! the plate read is in the record's detail; where it finds none, there is no plate crop and no
//! error.

mod common;

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use chrono::{TimeZone, Utc};
use common::*;
use roadwarden_evidence::*;
use roadwarden_imaging::BgrImage;
use roadwarden_infer::{
    DetectOptions, Detector, ExecutionProvider, Region, Runtime, RuntimeConfig,
};
use roadwarden_store::EvidenceKind;
use roadwarden_testkit::dual_test;
use roadwarden_types::*;

fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../..")
}

/// The plate detector's best plate in `vehicle` of `image` (as `roadwarden_pipeline::plates`
/// runs it, without its region growth).
fn detect_plate(image: &BgrImage, vehicle: &BBox) -> Option<PlateRead> {
    let lib = std::env::var_os("ROADWARDEN_ORT_LIB")
        .map(PathBuf::from)
        .or_else(|| Some(root().join(".ort/lib/libonnxruntime.so")).filter(|p| p.is_file()));
    let rt = Runtime::load(&RuntimeConfig {
        library: lib,
        provider: ExecutionProvider::Cpu,
        allow_cpu_fallback: false,
        threads: Some(2),
    })
    .expect("ONNX Runtime (run scripts/setup)");
    let mut det =
        Detector::load(&root().join("models/hyperlpr3-plate-y5fu-320.toml"), &rt).unwrap();
    let view = image.view();
    let region = Region::around(vehicle, view.width(), view.height())?;
    det.detect_regions(&view, &[region], 320, &DetectOptions::default())
        .unwrap()
        .remove(0)
        .into_iter()
        .max_by(|a, b| a.score.total_cmp(&b.score))
        .map(|d| PlateRead {
            bbox: d.bbox,
            confidence: d.score,
            text: None,
            text_confidence: None,
        })
}

/// A no-helmet capture of `image` with `vehicle` as the offender's box.
fn capture_of(image: BgrImage, vehicle: BBox, plate_read: Option<PlateRead>) -> Capture {
    let t0 = Utc.with_ymd_and_hms(2024, 5, 1, 8, 0, 0).unwrap();
    let violation = Violation {
        id: ViolationId::new(),
        kind: ViolationKind::NoHelmet,
        camera: CameraId::new("plates"),
        track_id: 1,
        occurred_at: t0,
        confidence: 0.8,
        frames: vec![EvidenceFrame {
            role: FrameRole::Key,
            frame_index: 1,
            captured_at: t0,
            analysed_at: None,
            boxes: vec![EvidenceBox {
                bbox: vehicle,
                class_id: ClassId(1),
                class_name: "Without Helmet".into(),
                score: 0.8,
            }],
        }],
        signal: vec![],
        thresholds: BTreeMap::new(),
        plate_read,
    };
    Capture {
        violation,
        frames: vec![(FrameRole::Key, FrameImage::Bgr(image))],
        clip: None,
        stop_line: None,
    }
}

fn read(path: &Path) -> BgrImage {
    BgrImage::read(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

async fn plate_crop_is_recorded_only_when_a_plate_is_found(site: &TestSite) {
    let (mut rec, report) = Recorder::open(site.data.clone(), site.url.as_deref())
        .await
        .unwrap();
    assert!(report.connected, "{:?}", report.connect_error);
    let footage = root().join("../shared/footage");

    // A riders-roboflow CCTV photo (640x640) whose labelled plate (40..103 x 186..214) the
    // detector finds; the offender's vehicle region around it.
    let image = read(&footage.join(
        "riders-roboflow/train/images/098-Rhythm2_jpg.rf.7d787fd15a46fc281481071e9c2d1f74.jpg",
    ));
    let vehicle = BBox::new(7.0, 0.0, 136.0, 280.0);
    let plate = detect_plate(&image, &vehicle).expect("the detector finds the labelled plate");
    assert!(
        plate.bbox.iou(&BBox::new(40.25, 186.25, 102.75, 213.75)) > 0.3,
        "{plate:?}"
    );
    let c = capture_of(image, vehicle, Some(plate.clone()));
    let id = c.violation.id.to_string();
    assert_eq!(rec.record(c).await.unwrap(), Recorded::Committed { seq: 1 });
    let store = rec.store().unwrap().clone();
    let stored = store.get(&id).await.unwrap().unwrap();
    let crops: Vec<_> = stored
        .evidence
        .iter()
        .filter(|e| e.item.path.ends_with("key-plate.jpg"))
        .collect();
    assert_eq!(crops.len(), 1, "{:?}", stored.evidence);
    let crop = crops[0];
    assert_eq!(
        (crop.item.kind, crop.item.role.as_deref()),
        (EvidenceKind::Crop, Some("key"))
    );
    let abs = rec.data().resolve(&crop.item.path).unwrap();
    assert_eq!(
        sha256_file(&abs).unwrap(),
        (crop.item.sha256.clone(), crop.item.size)
    );
    let crop_img = read(&abs);
    let (pw, ph) = (plate.bbox.width(), plate.bbox.height());
    assert!(
        (crop_img.width() as f32) >= pw && (crop_img.width() as f32) < pw + ph + 4.0,
        "crop {}x{} for a plate {pw}x{ph}",
        crop_img.width(),
        crop_img.height()
    );
    let detail: serde_json::Value = serde_json::from_str(&stored.fields.detail).unwrap();
    assert!(
        (detail["plate_read"]["confidence"].as_f64().unwrap() - plate.confidence as f64).abs()
            < 1e-6,
        "{detail}"
    );
    assert!(detail["plate_read"].get("text").is_none());

    // A riders-kaggle close-up of a rider's head: no plate, no plate crop, no error.
    let image = read(&footage.join("riders-kaggle/images/BikesHelmets1.jpg"));
    let whole = BBox::new(0.0, 0.0, image.width() as f32, image.height() as f32);
    let none = detect_plate(&image, &whole);
    assert!(none.is_none(), "{none:?}");
    let c = capture_of(image, whole, none);
    let id = c.violation.id.to_string();
    assert_eq!(rec.record(c).await.unwrap(), Recorded::Committed { seq: 2 });
    let stored = store.get(&id).await.unwrap().unwrap();
    assert!(
        !stored
            .evidence
            .iter()
            .any(|e| e.item.path.ends_with("-plate.jpg")),
        "{:?}",
        stored.evidence
    );
    assert!(!stored.fields.detail.contains("plate_read"));

    // Both records, the plate crop among the files, verify.
    let report = verify(&store, rec.data(), None).await.unwrap();
    assert!(report.ok(), "{:?}", report.problems);
    assert_eq!(report.records, 2);
}
dual_test!(plate_crop_is_recorded_only_when_a_plate_is_found, TestSite);
