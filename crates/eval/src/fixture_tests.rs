//! Bit-for-bit comparison with ultralytics' own code.
//!
//! `tests/fixtures/*.json` hold what ultralytics 8.4.0, 8.4.36, 8.4.37,
//! 8.4.175, 8.4.176, 8.4.181, 8.4.183 and 8.4.190 (`match_predictions`,
//! `ap_per_class`, `compute_ap`, `smooth`, `verify_image_label`, run on numpy
//! 2.4 with OpenBLAS's Haswell kernel) return for synthetic data; see
//! `tests/fixtures/make_fixtures.py`. Every float is compared exactly.

use std::collections::BTreeMap;

use serde::Deserialize;

use crate::evaluator::ap_per_class;
use crate::labels::parse_yolo_labels;
use crate::{BoxXyxy, Evaluator, GroundTruth, Prediction, UltralyticsVersion};

const SCENARIOS: &[(&str, &str)] = &[
    (
        "random",
        include_str!("../tests/fixtures/metrics_random.json"),
    ),
    (
        "crowded",
        include_str!("../tests/fixtures/metrics_crowded.json"),
    ),
    (
        "many_classes",
        include_str!("../tests/fixtures/metrics_many_classes.json"),
    ),
    (
        "high_precision",
        include_str!("../tests/fixtures/metrics_high_precision.json"),
    ),
    ("ties", include_str!("../tests/fixtures/metrics_ties.json")),
    (
        "no_truths",
        include_str!("../tests/fixtures/metrics_no_truths.json"),
    ),
    (
        "no_preds",
        include_str!("../tests/fixtures/metrics_no_preds.json"),
    ),
    (
        "perfect",
        include_str!("../tests/fixtures/metrics_perfect.json"),
    ),
];

#[derive(Deserialize)]
struct Doc {
    scenario: String,
    num_classes: usize,
    images: Vec<Image>,
    expected: BTreeMap<String, Expected>,
}

/// `[class, x1, y1, x2, y2]`, floats as Python's `repr`.
type TruthRow = (usize, String, String, String, String);

#[derive(Deserialize)]
struct Image {
    truths: Vec<TruthRow>,
    preds: Vec<(usize, String, String, String, String, String)>,
}

#[derive(Deserialize)]
struct Expected {
    tp: Vec<Vec<u16>>,
    class_ids: Vec<usize>,
    p: Vec<String>,
    r: Vec<String>,
    ap: Vec<Vec<String>>,
    ap_mean: Vec<String>,
    max_f1_index: usize,
    precision: String,
    recall: String,
    map50: String,
    map50_95: String,
    instances: usize,
    images_per_class: BTreeMap<String, usize>,
}

fn version(name: &str) -> UltralyticsVersion {
    match name {
        "V8_4_0" => UltralyticsVersion::V8_4_0,
        "V8_4_37" => UltralyticsVersion::V8_4_37,
        "V8_4_176" => UltralyticsVersion::V8_4_176,
        "V8_4_183" => UltralyticsVersion::V8_4_183,
        other => panic!("unknown version {other}"),
    }
}

fn f(s: &str) -> f64 {
    s.parse().unwrap()
}

fn f32_(s: &str) -> f32 {
    s.parse().unwrap()
}

fn bx(x1: &str, y1: &str, x2: &str, y2: &str) -> BoxXyxy {
    BoxXyxy {
        x1: f32_(x1),
        y1: f32_(y1),
        x2: f32_(x2),
        y2: f32_(y2),
    }
}

/// Exact equality, NaN included.
fn same(a: f64, b: f64) -> bool {
    a.to_bits() == b.to_bits() || (a == b)
}

#[test]
fn metrics_match_ultralytics_bit_for_bit() {
    let mut checked = 0;
    for (name, text) in SCENARIOS {
        let doc: Doc = serde_json::from_str(text).unwrap();
        assert_eq!(&doc.scenario, name);
        for (vname, exp) in &doc.expected {
            let ctx = format!("{name} {vname}");
            let mut ev = Evaluator::with_version(doc.num_classes, version(vname));
            for (k, im) in doc.images.iter().enumerate() {
                let truths: Vec<GroundTruth> = im
                    .truths
                    .iter()
                    .map(|(c, a, b, x, y)| GroundTruth {
                        class_id: *c,
                        bbox: bx(a, b, x, y),
                    })
                    .collect();
                let preds: Vec<Prediction> = im
                    .preds
                    .iter()
                    .map(|(c, s, a, b, x, y)| Prediction {
                        class_id: *c,
                        score: f32_(s),
                        bbox: bx(a, b, x, y),
                    })
                    .collect();
                let start = ev.tp.len();
                ev.add_image(&preds, &truths);
                let got: Vec<u16> = ev.tp[start..]
                    .iter()
                    .map(|row| {
                        row.iter()
                            .enumerate()
                            .map(|(j, &b)| u16::from(b) << j)
                            .sum()
                    })
                    .collect();
                assert_eq!(got, exp.tp[k], "{ctx}: tp of image {k}");
            }

            let apc = ap_per_class(&ev.tp, &ev.conf, &ev.pred_cls, &ev.target_cls, ev.version());
            assert_eq!(apc.max_f1_index, exp.max_f1_index, "{ctx}: max-F1 index");
            let ids: Vec<usize> = apc.classes.iter().map(|c| c.class_id).collect();
            assert_eq!(ids, exp.class_ids, "{ctx}");
            for (ci, c) in apc.classes.iter().enumerate() {
                assert!(
                    same(c.p, f(&exp.p[ci])),
                    "{ctx}: p[{ci}] {} vs {}",
                    c.p,
                    exp.p[ci]
                );
                assert!(
                    same(c.r, f(&exp.r[ci])),
                    "{ctx}: r[{ci}] {} vs {}",
                    c.r,
                    exp.r[ci]
                );
                for j in 0..10 {
                    assert!(
                        same(c.ap[j], f(&exp.ap[ci][j])),
                        "{ctx}: ap[{ci}][{j}] {} vs {}",
                        c.ap[j],
                        exp.ap[ci][j]
                    );
                }
            }

            let m = ev.finish();
            assert_eq!(m.images, doc.images.len());
            assert_eq!(m.instances, exp.instances, "{ctx}");
            for (got, want, what) in [
                (m.precision, &exp.precision, "precision"),
                (m.recall, &exp.recall, "recall"),
                (m.map50, &exp.map50, "map50"),
                (m.map50_95, &exp.map50_95, "map50_95"),
            ] {
                assert!(same(got, f(want)), "{ctx}: {what} {got} vs {want}");
            }
            assert_eq!(m.per_class.len(), exp.class_ids.len());
            for (ci, c) in m.per_class.iter().enumerate() {
                assert_eq!(c.class_id, exp.class_ids[ci]);
                assert!(
                    same(c.map50_95, f(&exp.ap_mean[ci])),
                    "{ctx}: class {ci} map50_95"
                );
                assert!(same(c.map50, f(&exp.ap[ci][0])));
                assert!(same(c.precision, f(&exp.p[ci])));
                assert!(same(c.recall, f(&exp.r[ci])));
                assert_eq!(
                    c.images,
                    exp.images_per_class[&c.class_id.to_string()],
                    "{ctx}: images of class {}",
                    c.class_id
                );
            }
            checked += 1;
        }
    }
    assert_eq!(checked, SCENARIOS.len() * 4);
}

#[derive(Deserialize)]
struct LabelDoc {
    width: u32,
    height: u32,
    num_classes: usize,
    cases: Vec<LabelCase>,
}

#[derive(Deserialize)]
struct LabelCase {
    text: String,
    expected: BTreeMap<String, Option<Vec<TruthRow>>>,
}

#[test]
fn labels_match_ultralytics_verify_image_label() {
    let doc: LabelDoc =
        serde_json::from_str(include_str!("../tests/fixtures/labels.json")).unwrap();
    let mut rejected = 0;
    for case in &doc.cases {
        for (vname, want) in &case.expected {
            let got = parse_yolo_labels(
                &case.text,
                doc.num_classes,
                doc.width,
                doc.height,
                version(vname),
            );
            match (got, want) {
                (Err(_), None) => rejected += 1,
                (Ok(got), Some(want)) => {
                    let want: Vec<GroundTruth> = want
                        .iter()
                        .map(|(c, a, b, x, y)| GroundTruth {
                            class_id: *c,
                            bbox: bx(a, b, x, y),
                        })
                        .collect();
                    assert_eq!(got, want, "{vname} {:?}", case.text);
                }
                (got, want) => panic!("{vname} {:?}: got {got:?}, ultralytics {want:?}", case.text),
            }
        }
    }
    assert!(rejected > 40, "{rejected}");
}

#[test]
fn smooth_matches_numpy_bit_for_bit() {
    let doc: BTreeMap<String, Vec<String>> =
        serde_json::from_str(include_str!("../tests/fixtures/smooth.json")).unwrap();
    // The same curves as make_fixtures.py builds, with the same float ops.
    let curve = |name: &str, i: f64| match name {
        "golden" => (i * 0.6180339887498949) % 1.0 * 0.8,
        "parabola" => i * (999.0 - i) / 249500.0 * 0.9,
        "plateau" => {
            (i * 0.1234567) % 1.0 * 1e-3
                + if (400.0..700.0).contains(&i) {
                    0.5
                } else {
                    0.0
                }
        }
        other => panic!("{other}"),
    };
    assert_eq!(doc.len(), 3);
    for (name, want) in &doc {
        let y: Vec<f64> = (0..1000).map(|i| curve(name, f64::from(i))).collect();
        let got = crate::numpy::smooth(&y, 0.1);
        assert_eq!(got.len(), want.len());
        for (k, (g, w)) in got.iter().zip(want).enumerate() {
            assert!(same(*g, f(w)), "{name}[{k}]: {g} vs {w}");
        }
    }
}
