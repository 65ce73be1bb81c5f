//! Greedy per-class non-maximum suppression, as torchvision's `nms` with
//! ultralytics' class offsets: a box is dropped when its IoU with a kept,
//! higher-scored box of the same class is above `iou`.

use crate::decode::Candidate;

/// Keeps at most `max_det` candidates, highest score first.
pub fn nms_per_class(mut candidates: Vec<Candidate>, iou: f32, max_det: usize) -> Vec<Candidate> {
    candidates.sort_by(|a, b| b.score.total_cmp(&a.score));
    let mut kept: Vec<Candidate> = Vec::new();
    for c in candidates {
        if kept.len() >= max_det {
            break;
        }
        let area = c.bbox.area();
        let suppressed = kept.iter().any(|k| {
            if k.class_id != c.class_id {
                return false;
            }
            let inter = k.bbox.intersection(&c.bbox);
            let union = area + k.bbox.area() - inter;
            union > 0.0 && inter / union > iou
        });
        if !suppressed {
            kept.push(c);
        }
    }
    kept
}

#[cfg(test)]
mod tests {
    use super::*;
    use roadwarden_types::{BBox, ClassId};

    fn cand(x: f32, score: f32, class: usize) -> Candidate {
        Candidate {
            bbox: BBox::new(x, 0.0, x + 10.0, 10.0),
            score,
            class_id: ClassId(class),
        }
    }

    #[test]
    fn suppresses_overlaps_within_a_class_only() {
        let kept = nms_per_class(
            vec![
                cand(1.0, 0.8, 0),
                cand(0.0, 0.9, 0),
                cand(0.0, 0.7, 1),
                cand(30.0, 0.1, 0),
            ],
            0.7,
            300,
        );
        let got: Vec<(f32, usize)> = kept.iter().map(|c| (c.score, c.class_id.0)).collect();
        assert_eq!(got, vec![(0.9, 0), (0.7, 1), (0.1, 0)]);
    }

    #[test]
    fn iou_exactly_at_threshold_is_kept_and_max_det_caps() {
        // Boxes [0,10] and [5,15]: IoU 1/3.
        let kept = nms_per_class(vec![cand(0.0, 0.9, 0), cand(5.0, 0.8, 0)], 1.0 / 3.0, 300);
        assert_eq!(kept.len(), 2);
        let kept = nms_per_class(
            (0..10).map(|i| cand(i as f32 * 20.0, 0.5, 0)).collect(),
            0.5,
            3,
        );
        assert_eq!(kept.len(), 3);
    }
}
