//! Accuracy parity with the frameworks the models were trained in, on real
//! labelled photos from ../shared:
//! - the helmet model under `eval-detector` reproduces ultralytics `val`
//!   (../shared/footage/riders-kaggle/REFERENCE.md);
//! - FastestDet finds the riders in the Delhi enforcement frames.

mod common;

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};

use common::{model, roadwarden, shared};
use roadwarden_types::BBox;

#[test]
fn helmet_model_reproduces_the_ultralytics_reference() {
    let data = shared().join("footage/riders-kaggle");
    let m = model("helmet-yolov12m.toml");
    let run = roadwarden([
        "eval-detector",
        "--json",
        "--model",
        m.to_str().unwrap(),
        "--images",
        data.join("images").to_str().unwrap(),
        "--labels",
        data.join("labels").to_str().unwrap(),
    ]);
    assert!(run.ok(), "{}", run.stderr);
    let v: serde_json::Value = serde_json::from_str(&run.stdout).expect("JSON report");
    let f = |k: &str| v[k].as_f64().unwrap_or_else(|| panic!("no {k} in {v}"));
    eprintln!(
        "map50 {:.4} map50_95 {:.4} P {:.4} R {:.4}",
        f("map50"),
        f("map50_95"),
        f("precision"),
        f("recall")
    );
    // REFERENCE.md: all 601 images, 1140 instances, mAP@0.5 0.739, mAP@0.5:0.95 0.293.
    assert_eq!(v["images"], 601);
    assert_eq!(v["instances"], 1140);
    assert!(
        (f("map50") - 0.739).abs() <= 0.005,
        "mAP@0.5 {}",
        f("map50")
    );
    assert!(
        (f("map50_95") - 0.293).abs() <= 0.005,
        "mAP@0.5:0.95 {}",
        f("map50_95")
    );
    assert!(
        (f("precision") - 0.733).abs() <= 0.02,
        "P {}",
        f("precision")
    );
    assert!((f("recall") - 0.685).abs() <= 0.02, "R {}", f("recall"));

    let per_class = v["per_class"].as_array().unwrap();
    let class = |name: &str| per_class.iter().find(|c| c["class"] == name).unwrap();
    assert_eq!(class("With Helmet")["instances"], 771);
    assert_eq!(class("Without Helmet")["instances"], 369);
    assert!((class("With Helmet")["map50"].as_f64().unwrap() - 0.814).abs() <= 0.01);
    assert!((class("Without Helmet")["map50"].as_f64().unwrap() - 0.664).abs() <= 0.01);

    // The ten label files with out-of-range coordinates, named and left out.
    let skipped: BTreeSet<String> = v["skipped"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| {
            assert!(
                s["reason"].as_str().unwrap().contains("out of range"),
                "{s}"
            );
            Path::new(s["file"].as_str().unwrap())
                .file_stem()
                .unwrap()
                .to_string_lossy()
                .into_owned()
        })
        .collect();
    let expected: BTreeSet<String> = [103, 279, 326, 343, 441, 444, 616, 671, 706, 764]
        .iter()
        .map(|n| format!("BikesHelmets{n}"))
        .collect();
    assert_eq!(skipped, expected);
}

/// Class-4 ("motorcycle with its rider") boxes of a riders-roboflow label file, in pixels.
fn rider_boxes(label: &Path, w: f32, h: f32) -> Vec<BBox> {
    std::fs::read_to_string(label)
        .unwrap()
        .lines()
        .filter_map(|l| {
            let v: Vec<f32> = l.split_whitespace().map(|x| x.parse().unwrap()).collect();
            (v.len() == 5 && v[0] == 4.0)
                .then(|| BBox::from_cxcywh(v[1] * w, v[2] * h, v[3] * w, v[4] * h))
        })
        .collect()
}

#[test]
fn fastestdet_finds_riders_in_the_delhi_enforcement_frames() {
    let train = shared().join("footage/riders-roboflow/train");
    let mut frames: Vec<PathBuf> = std::fs::read_dir(train.join("images"))
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.file_name().unwrap().to_string_lossy().starts_with("036_"))
        .collect();
    frames.sort();
    frames.truncate(40);
    assert_eq!(frames.len(), 40);

    let m = model("fastestdet-352.toml");
    let mut args = vec![
        "detect".to_string(),
        "--model".into(),
        m.display().to_string(),
    ];
    args.extend(frames.iter().map(|p| p.display().to_string()));
    let run = roadwarden(&args);
    assert!(run.ok(), "{}", run.stderr);
    let lines: Vec<serde_json::Value> = run
        .stdout
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(lines.len(), 40);

    let (mut riders, mut matched) = (0usize, 0usize);
    for (frame, line) in frames.iter().zip(&lines) {
        assert_eq!(line["file"].as_str().unwrap(), frame.display().to_string());
        let (w, h) = (
            line["width"].as_f64().unwrap() as f32,
            line["height"].as_f64().unwrap() as f32,
        );
        let dets: Vec<BBox> = line["detections"]
            .as_array()
            .unwrap()
            .iter()
            .filter(|d| ["motorbike", "bicycle", "person"].contains(&d["class"].as_str().unwrap()))
            .map(|d| {
                let b: Vec<f32> = d["bbox"]
                    .as_array()
                    .unwrap()
                    .iter()
                    .map(|x| x.as_f64().unwrap() as f32)
                    .collect();
                BBox::new(b[0], b[1], b[2], b[3])
            })
            .collect();
        // Roboflow names hold dots (`036_100_jpg.rf.<hash>.jpg`): append, never replace, the extension.
        let label = train.join("labels").join(format!(
            "{}.txt",
            frame.file_stem().unwrap().to_string_lossy()
        ));
        for rider in rider_boxes(&label, w, h) {
            riders += 1;
            if dets.iter().any(|d| d.iou(&rider) >= 0.5) {
                matched += 1;
            }
        }
    }
    eprintln!("FastestDet matched {matched} of {riders} rider boxes at IoU >= 0.5");
    assert!(
        riders >= 80,
        "the first 40 Delhi frames hold about 105 rider boxes, found {riders}"
    );
    assert!(
        matched as f64 >= 0.4 * riders as f64,
        "matched {matched} of {riders}"
    );
}
