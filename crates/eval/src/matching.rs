//! Matching the predictions of one image to its ground truths at the ten
//! IoU thresholds, as ultralytics' `match_predictions` does (in `f32`, as
//! torch computes it).

use crate::{BoxXyxy, UltralyticsVersion};

/// Number of IoU thresholds.
pub(crate) const NIOU: usize = 10;

/// `torch.linspace(0.5, 0.95, 10)` in float32: each is the `f32` nearest to
/// 0.5 + 0.05 i (checked against torch's formula, with and without FMA).
pub(crate) const IOUV: [f32; NIOU] = [0.5, 0.55, 0.6, 0.65, 0.7, 0.75, 0.8, 0.85, 0.9, 0.95];

/// torch `min` / `max` / `clamp` keep a NaN where Rust's `f32::min` drops it.
fn tmin(a: f32, b: f32) -> f32 {
    if a.is_nan() || a < b { a } else { b }
}
fn tmax(a: f32, b: f32) -> f32 {
    if a.is_nan() || a > b { a } else { b }
}
fn clamp0(v: f32) -> f32 {
    if v < 0.0 { 0.0 } else { v }
}

/// ultralytics `box_iou` for one pair, `eps = 1e-7`:
/// `inter / (area_a + area_b - inter + eps)`, areas `(x2 - x1) * (y2 - y1)`.
pub(crate) fn box_iou(a: &BoxXyxy, b: &BoxXyxy) -> f32 {
    let w = clamp0(tmin(a.x2, b.x2) - tmax(a.x1, b.x1));
    let h = clamp0(tmin(a.y2, b.y2) - tmax(a.y1, b.y1));
    let inter = w * h;
    let area_a = (a.x2 - a.x1) * (a.y2 - a.y1);
    let area_b = (b.x2 - b.x1) * (b.y2 - b.y1);
    inter / (area_a + area_b - inter + 1e-7)
}

/// `correct[pred][threshold]` for one image. `iou[label][pred]` must already
/// be 0 where the classes differ, and the predictions in descending
/// confidence order.
pub(crate) fn match_predictions(
    iou: &[Vec<f32>],
    num_preds: usize,
    version: UltralyticsVersion,
) -> Vec<[bool; NIOU]> {
    if version >= UltralyticsVersion::V8_4_176 {
        match_greedy(iou, num_preds)
    } else {
        match_unique(iou, num_preds)
    }
}

/// ultralytics up to 8.4.175, per threshold `t`:
///
/// ```python
/// matches = np.array(np.nonzero(iou >= t)).T            # (label, pred), row-major
/// if matches.shape[0] > 1:
///     matches = matches[iou[matches[:, 0], matches[:, 1]].argsort()[::-1]]
///     matches = matches[np.unique(matches[:, 1], return_index=True)[1]]
///     matches = matches[np.unique(matches[:, 0], return_index=True)[1]]
/// correct[matches[:, 1], i] = True
/// ```
///
/// After the IoU sort the first `np.unique` keeps each prediction's
/// highest-IoU pair, but returns the kept pairs in prediction order, so the
/// second one gives each label to the *lowest-index* (highest-confidence)
/// prediction that chose it, not to the one with the highest IoU. Both
/// uniques keep first occurrences (numpy sorts stably for `return_index`).
/// Equal IoUs come out of the reversed sort in reverse `nonzero` order (as
/// numpy's scalar sort leaves them), so a prediction tied between labels
/// takes the later label.
fn match_unique(iou: &[Vec<f32>], num_preds: usize) -> Vec<[bool; NIOU]> {
    let num_labels = iou.len();
    let mut correct = vec![[false; NIOU]; num_preds];
    let mut choice: Vec<Option<usize>> = vec![None; num_preds];
    let mut taken: Vec<bool> = vec![false; num_labels];
    for (ti, &t) in IOUV.iter().enumerate() {
        // Each prediction's best label at this threshold.
        for (p, slot) in choice.iter_mut().enumerate() {
            let mut best: Option<(usize, f32)> = None;
            for (l, row) in iou.iter().enumerate() {
                let v = row[p];
                if v >= t && best.is_none_or(|(_, b)| v >= b) {
                    best = Some((l, v));
                }
            }
            *slot = best.map(|(l, _)| l);
        }
        // Each label to the first prediction (in prediction order) that chose it.
        taken.iter_mut().for_each(|x| *x = false);
        for (p, slot) in choice.iter().enumerate() {
            if let Some(l) = *slot
                && !taken[l]
            {
                taken[l] = true;
                correct[p][ti] = true;
            }
        }
    }
    correct
}

/// ultralytics from 8.4.176:
///
/// ```python
/// matched = np.zeros((iou.shape[0], len(thresholds)), dtype=bool)
/// for j in np.flatnonzero((iou >= thresholds.min()).any(0)):
///     available = np.where(matched, 0, iou[:, j, None])
///     k = available.argmax(0)
///     correct[j] = available[k, range(len(thresholds))] >= thresholds
///     matched[k, range(len(thresholds))] |= correct[j]
/// ```
fn match_greedy(iou: &[Vec<f32>], num_preds: usize) -> Vec<[bool; NIOU]> {
    let num_labels = iou.len();
    let mut correct = vec![[false; NIOU]; num_preds];
    let mut matched = vec![[false; NIOU]; num_labels];
    for (j, row_out) in correct.iter_mut().enumerate() {
        if !iou.iter().any(|row| row[j] >= IOUV[0]) {
            continue;
        }
        for (ti, &t) in IOUV.iter().enumerate() {
            // argmax over labels of the still-available IoU: first maximum,
            // a NaN counting as the maximum.
            let mut k = 0;
            let mut best = f32::NEG_INFINITY;
            for (l, row) in iou.iter().enumerate() {
                let v = if matched[l][ti] { 0.0 } else { row[j] };
                if v.is_nan() {
                    k = l;
                    best = v;
                    break;
                }
                if v > best {
                    k = l;
                    best = v;
                }
            }
            let ok = best >= t;
            row_out[ti] = ok;
            matched[k][ti] |= ok;
        }
    }
    correct
}

#[cfg(test)]
mod tests {
    use super::*;

    fn b(x1: f32, y1: f32, x2: f32, y2: f32) -> BoxXyxy {
        BoxXyxy { x1, y1, x2, y2 }
    }

    #[test]
    fn thresholds_are_the_float32_linspace() {
        for (i, &t) in IOUV.iter().enumerate() {
            let exact = 0.5 + 0.05 * i as f64;
            assert_eq!(t, exact as f32);
        }
        assert_eq!(IOUV[9], 0.95f32);
    }

    #[test]
    fn iou_basics() {
        let a = b(0.0, 0.0, 10.0, 10.0);
        assert!((box_iou(&a, &a) - 1.0).abs() < 1e-6);
        // Half overlap: inter 50, union 150.
        let h = b(5.0, 0.0, 15.0, 10.0);
        assert!((box_iou(&a, &h) - 1.0 / 3.0).abs() < 1e-6);
        // Disjoint and touching boxes have no overlap.
        assert_eq!(box_iou(&a, &b(20.0, 20.0, 30.0, 30.0)), 0.0);
        assert_eq!(box_iou(&a, &b(10.0, 0.0, 20.0, 10.0)), 0.0);
        // Exact float32 expression: 100 / (100 + 100 - 100 + 1e-7).
        assert_eq!(
            box_iou(&a, &a),
            100.0f32 / (100.0f32 + 100.0 - 100.0 + 1e-7)
        );
    }

    /// iou[label][pred], two labels, two predictions (pred 0 more confident):
    ///
    /// ```text
    ///          pred0  pred1
    /// label0    0.97   0.98
    /// label1    0.00   0.60
    /// ```
    fn crossed() -> Vec<Vec<f32>> {
        vec![vec![0.97, 0.98], vec![0.0, 0.60]]
    }

    #[test]
    fn unique_matching_is_not_greedy_by_iou() {
        // Greedy by IoU pairs label0-pred1 (0.98) first; then pred0's only
        // overlap is taken, so pred1 is the TP and pred0 the FP.
        // Ultralytics: pred0 chooses label0 (its best), pred1 chooses label0
        // too (0.98 > 0.60), and label0 goes to the lower pred index, pred0.
        // So pred0 is the TP, and pred1 a FP although label1 (0.60) is free.
        let c = match_predictions(&crossed(), 2, UltralyticsVersion::V8_4_0);
        assert_eq!(c[0], [true; NIOU]);
        assert_eq!(c[1], [false; NIOU]);
        assert_eq!(
            c,
            match_predictions(&crossed(), 2, UltralyticsVersion::V8_4_37)
        );
    }

    #[test]
    fn unique_matching_prefers_prediction_order_over_iou() {
        //          pred0  pred1
        // label0    0.70   0.95
        // label1    0.60   0.00
        // Greedy by IoU: label0-pred1 then label1-pred0, both TP.
        // Ultralytics: both preds choose label0; pred0 wins it; pred1 is FP,
        // and pred0 does not fall back to label1.
        let iou = vec![vec![0.70, 0.95], vec![0.60, 0.0]];
        let c = match_predictions(&iou, 2, UltralyticsVersion::V8_4_0);
        let mut want0 = [false; NIOU];
        want0[..5].fill(true); // 0.70 >= 0.5 .. 0.7
        assert_eq!(c[0], want0);
        // Above 0.7 pred0 no longer qualifies for label0, so pred1 gets it.
        let mut want1 = [false; NIOU];
        want1[5..].fill(true);
        assert_eq!(c[1], want1);
    }

    #[test]
    fn greedy_by_confidence_falls_back_to_free_labels() {
        // From 8.4.176, pred1 finds label0 taken and takes label1 (0.60).
        let c = match_predictions(&crossed(), 2, UltralyticsVersion::V8_4_176);
        assert_eq!(c[0], [true; NIOU]);
        let mut want1 = [false; NIOU];
        want1[..3].fill(true); // 0.60 >= 0.5, 0.55, 0.6
        assert_eq!(c[1], want1);
    }

    #[test]
    fn unique_ties_take_the_later_label() {
        // One prediction with equal IoU to two labels; a second prediction
        // that only overlaps label0. Under ultralytics' tie order pred0 takes
        // label1, leaving label0 for pred1.
        let iou = vec![vec![0.8, 0.9], vec![0.8, 0.0]];
        let c = match_predictions(&iou, 2, UltralyticsVersion::V8_4_0);
        assert!(c[0][0] && c[1][0]);
        // Greedy by confidence takes the first maximum (label0) instead.
        let g = match_predictions(&iou, 2, UltralyticsVersion::V8_4_176);
        assert!(g[0][0] && !g[1][0]);
    }

    #[test]
    fn thresholds_are_inclusive() {
        let iou = vec![vec![0.75f32]];
        let c = match_predictions(&iou, 1, UltralyticsVersion::V8_4_0);
        assert_eq!(
            c[0],
            [
                true, true, true, true, true, true, false, false, false, false
            ]
        );
        let g = match_predictions(&iou, 1, UltralyticsVersion::V8_4_176);
        assert_eq!(g, c);
    }
}
