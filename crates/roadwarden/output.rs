//! The JSON shape of detections that `detect` and `analyze` print.

use roadwarden_infer::{Detection, Detector};
use serde::Serialize;

/// One detection: class, its role for the rules, score, and the box
/// (x1, y1, x2, y2) in source-image pixels.
#[derive(Serialize)]
pub(crate) struct JsonBox<'a> {
    pub class: &'a str,
    pub class_id: usize,
    pub role: &'a str,
    pub score: f32,
    pub bbox: [f32; 4],
}

pub(crate) fn json_boxes<'a>(detector: &'a Detector, detections: &[Detection]) -> Vec<JsonBox<'a>> {
    detections
        .iter()
        .map(|d| {
            let spec = &detector.classes()[d.class_id.0];
            JsonBox {
                class: &spec.name,
                class_id: d.class_id.0,
                role: spec.role.as_str(),
                score: d.score,
                bbox: [d.bbox.x1, d.bbox.y1, d.bbox.x2, d.bbox.y2],
            }
        })
        .collect()
}
