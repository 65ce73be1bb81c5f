//! Accumulating per-image results and computing precision, recall and mAP
//! as ultralytics' `DetectionValidator` / `ap_per_class` do.

use std::collections::BTreeMap;

use serde::Serialize;

use crate::matching::{NIOU, box_iou, match_predictions};
use crate::numpy;
use crate::{GroundTruth, Prediction, UltralyticsVersion};

/// Accuracy for one class that has ground truth.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ClassMetrics {
    pub class_id: usize,
    /// Images with at least one object of this class.
    pub images: usize,
    /// Objects of this class.
    pub instances: usize,
    /// Precision at the confidence that maximises the smoothed mean F1.
    pub precision: f64,
    /// Recall at that same confidence.
    pub recall: f64,
    /// AP at IoU 0.5.
    pub map50: f64,
    /// AP averaged over IoU 0.5, 0.55, ..., 0.95.
    pub map50_95: f64,
}

/// Accuracy over all images, as ultralytics prints it on its `all` row.
///
/// Classes without ground truth are neither in `per_class` nor in the means,
/// even when they were predicted. With no ground truth at all every figure
/// is 0.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Metrics {
    /// Images evaluated (calls to [`Evaluator::add_image`]).
    pub images: usize,
    /// Ground-truth objects.
    pub instances: usize,
    /// Mean over classes of [`ClassMetrics::precision`].
    pub precision: f64,
    /// Mean over classes of [`ClassMetrics::recall`].
    pub recall: f64,
    /// Mean over classes of AP at IoU 0.5.
    pub map50: f64,
    /// Mean over classes and the ten IoU thresholds.
    pub map50_95: f64,
    /// Classes with ground truth, by ascending class id.
    pub per_class: Vec<ClassMetrics>,
}

/// Collects predictions and ground truths image by image, then computes
/// [`Metrics`].
#[derive(Debug, Clone)]
pub struct Evaluator {
    version: UltralyticsVersion,
    images: usize,
    /// Per prediction, in the order images were added and, within an image,
    /// by descending score.
    pub(crate) tp: Vec<[bool; NIOU]>,
    pub(crate) conf: Vec<f32>,
    pub(crate) pred_cls: Vec<usize>,
    /// Per ground truth.
    pub(crate) target_cls: Vec<usize>,
    /// Per class: images containing it (grows past `num_classes` if needed).
    images_per_class: Vec<usize>,
}

impl Evaluator {
    /// An evaluator reproducing [`UltralyticsVersion::V8_4_0`].
    ///
    /// `num_classes` only sizes internal tables: class ids at or above it are
    /// evaluated like any other.
    pub fn new(num_classes: usize) -> Self {
        Self::with_version(num_classes, UltralyticsVersion::default())
    }

    /// An evaluator reproducing the given ultralytics release range.
    pub fn with_version(num_classes: usize, version: UltralyticsVersion) -> Self {
        Self {
            version,
            images: 0,
            tp: Vec::new(),
            conf: Vec::new(),
            pred_cls: Vec::new(),
            target_cls: Vec::new(),
            images_per_class: vec![0; num_classes],
        }
    }

    /// The release range this evaluator reproduces.
    pub fn version(&self) -> UltralyticsVersion {
        self.version
    }

    /// Adds one image: its predictions after NMS (any order; they are sorted
    /// by descending score, ties kept in the given order) and its ground
    /// truths, both in the same pixel space.
    ///
    /// An image with no truths makes every prediction a false positive; one
    /// with no predictions still counts its truths.
    pub fn add_image(&mut self, preds: &[Prediction], truths: &[GroundTruth]) {
        self.images += 1;

        let scores: Vec<f64> = preds.iter().map(|p| f64::from(p.score)).collect();
        let order = numpy::argsort_desc_stable(&scores);
        let preds: Vec<&Prediction> = order.iter().map(|&i| &preds[i]).collect();

        let correct = if preds.is_empty() || truths.is_empty() {
            vec![[false; NIOU]; preds.len()]
        } else {
            // iou[label][pred], zeroed across classes (`iou * correct_class`).
            let iou: Vec<Vec<f32>> = truths
                .iter()
                .map(|t| {
                    preds
                        .iter()
                        .map(|p| {
                            let v = box_iou(&t.bbox, &p.bbox);
                            if t.class_id == p.class_id {
                                v * 1.0
                            } else {
                                v * 0.0
                            }
                        })
                        .collect()
                })
                .collect();
            match_predictions(&iou, preds.len(), self.version)
        };

        for (p, c) in preds.iter().zip(correct) {
            self.tp.push(c);
            self.conf.push(p.score);
            self.pred_cls.push(p.class_id);
        }
        self.target_cls.extend(truths.iter().map(|t| t.class_id));

        let mut present: Vec<usize> = truths.iter().map(|t| t.class_id).collect();
        present.sort_unstable();
        present.dedup();
        for c in present {
            if c >= self.images_per_class.len() {
                self.images_per_class.resize(c + 1, 0);
            }
            self.images_per_class[c] += 1;
        }
    }

    /// Computes the metrics over all images added so far.
    pub fn finish(&self) -> Metrics {
        let classes = ap_per_class(
            &self.tp,
            &self.conf,
            &self.pred_cls,
            &self.target_cls,
            self.version,
        )
        .classes;

        let per_class: Vec<ClassMetrics> = classes
            .iter()
            .map(|c| ClassMetrics {
                class_id: c.class_id,
                images: self.images_per_class.get(c.class_id).copied().unwrap_or(0),
                instances: c.instances,
                precision: c.p,
                recall: c.r,
                map50: c.ap[0],
                map50_95: numpy::mean(&c.ap),
            })
            .collect();

        let (precision, recall, map50, map50_95) = if classes.is_empty() {
            (0.0, 0.0, 0.0, 0.0)
        } else {
            let p: Vec<f64> = classes.iter().map(|c| c.p).collect();
            let r: Vec<f64> = classes.iter().map(|c| c.r).collect();
            let ap50: Vec<f64> = classes.iter().map(|c| c.ap[0]).collect();
            // all_ap.mean() over the C-contiguous (classes, 10) array.
            let all: Vec<f64> = classes.iter().flat_map(|c| c.ap).collect();
            (
                numpy::mean(&p),
                numpy::mean(&r),
                numpy::mean(&ap50),
                numpy::mean(&all),
            )
        };

        Metrics {
            images: self.images,
            instances: self.target_cls.len(),
            precision,
            recall,
            map50,
            map50_95,
            per_class,
        }
    }
}

/// One row of `ap_per_class`'s output.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct ClassAp {
    pub class_id: usize,
    pub instances: usize,
    pub p: f64,
    pub r: f64,
    pub ap: [f64; NIOU],
}

/// What `ap_per_class` yields.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct ApPerClass {
    /// The classes present in `target_cls`, ascending.
    pub classes: Vec<ClassAp>,
    /// Index into `linspace(0, 1, 1000)` of the confidence where `p` and `r`
    /// are read (0 without classes).
    pub max_f1_index: usize,
}

/// ultralytics `ap_per_class` (eps = 1e-16), with the stable sort by
/// confidence.
pub(crate) fn ap_per_class(
    tp: &[[bool; NIOU]],
    conf: &[f32],
    pred_cls: &[usize],
    target_cls: &[usize],
    version: UltralyticsVersion,
) -> ApPerClass {
    const EPS: f64 = 1e-16;

    let conf64: Vec<f64> = conf.iter().map(|&c| f64::from(c)).collect();
    let order = numpy::argsort_desc_stable(&conf64);

    // np.unique(target_cls, return_counts=True)
    let mut sorted_targets = target_cls.to_vec();
    sorted_targets.sort_unstable();
    let mut unique: Vec<(usize, usize)> = Vec::new();
    for c in sorted_targets {
        match unique.last_mut() {
            Some((last, n)) if *last == c => *n += 1,
            _ => unique.push((c, 1)),
        }
    }
    let nc = unique.len();
    if nc == 0 {
        return ApPerClass {
            classes: Vec::new(),
            max_f1_index: 0,
        };
    }

    let x = numpy::linspace01(1000);
    let neg_x: Vec<f64> = x.iter().map(|v| -v).collect();
    let mut ap = vec![[0.0f64; NIOU]; nc];
    let mut p_curve = vec![vec![0.0f64; x.len()]; nc];
    let mut r_curve = vec![vec![0.0f64; x.len()]; nc];

    // Each class's predictions, in confidence order (`i = pred_cls == c`).
    let mut by_class: BTreeMap<usize, Vec<usize>> = BTreeMap::new();
    for &i in &order {
        by_class.entry(pred_cls[i]).or_default().push(i);
    }

    for (ci, &(c, n_l)) in unique.iter().enumerate() {
        let Some(idx) = by_class.get(&c) else {
            continue;
        };
        if n_l == 0 {
            continue;
        }
        // -conf[i], non-decreasing.
        let xp: Vec<f64> = idx.iter().map(|&i| -conf64[i]).collect();

        // One IoU threshold at a time: recall and precision after each
        // prediction, from the cumulative TP / FP counts.
        for j in 0..NIOU {
            let mut recall = Vec::with_capacity(idx.len());
            let mut precision = Vec::with_capacity(idx.len());
            let (mut tpc, mut fpc) = (0u64, 0u64);
            for &i in idx {
                if tp[i][j] {
                    tpc += 1;
                } else {
                    fpc += 1;
                }
                recall.push(tpc as f64 / (n_l as f64 + EPS));
                precision.push(tpc as f64 / (tpc + fpc) as f64);
            }
            if j == 0 {
                let r_last = recall[recall.len() - 1];
                let p_last = precision[precision.len() - 1];
                for (k, &nx) in neg_x.iter().enumerate() {
                    r_curve[ci][k] = numpy::interp(nx, &xp, &recall, 0.0, r_last);
                    p_curve[ci][k] = numpy::interp(nx, &xp, &precision, 1.0, p_last);
                }
            }
            ap[ci][j] = compute_ap(&recall, &precision, version);
        }
    }

    // f1_curve = 2 * p * r / (p + r + eps); its mean over classes (axis 0,
    // summed class by class); then the max of the smoothed mean.
    let mut f1_mean = vec![0.0f64; x.len()];
    for (pc, rc) in p_curve.iter().zip(&r_curve) {
        for ((m, &p), &r) in f1_mean.iter_mut().zip(pc).zip(rc) {
            *m += 2.0 * p * r / (p + r + EPS);
        }
    }
    for m in &mut f1_mean {
        *m /= nc as f64;
    }
    let i = numpy::argmax(&numpy::smooth(&f1_mean, 0.1)).unwrap_or(0);

    let classes = unique
        .iter()
        .enumerate()
        .map(|(ci, &(c, n_l))| ClassAp {
            class_id: c,
            instances: n_l,
            p: p_curve[ci][i],
            r: r_curve[ci][i],
            ap: ap[ci],
        })
        .collect();
    ApPerClass {
        classes,
        max_f1_index: i,
    }
}

/// ultralytics `compute_ap`: the precision envelope over recall, sampled at
/// 101 recall points and integrated by trapezoids.
///
/// Up to 8.4.36 the curve is closed with `(recall 1, precision 0)`; from
/// 8.4.37 with `(last recall, 0)` and `(1, 0)`.
pub(crate) fn compute_ap(recall: &[f64], precision: &[f64], version: UltralyticsVersion) -> f64 {
    let mut mrec = Vec::with_capacity(recall.len() + 3);
    let mut mpre = Vec::with_capacity(precision.len() + 3);
    mrec.push(0.0);
    mrec.extend_from_slice(recall);
    mpre.push(1.0);
    mpre.extend_from_slice(precision);
    if version >= UltralyticsVersion::V8_4_37 {
        mrec.push(recall.last().copied().unwrap_or(1.0));
        mpre.push(0.0);
    }
    mrec.push(1.0);
    mpre.push(0.0);

    // np.flip(np.maximum.accumulate(np.flip(mpre))); np.maximum keeps NaN.
    for k in (0..mpre.len() - 1).rev() {
        let acc = mpre[k + 1];
        let v = mpre[k];
        mpre[k] = if acc.is_nan() || acc >= v { acc } else { v };
    }

    let x = numpy::linspace01(101);
    let left = mpre[0];
    let right = mpre[mpre.len() - 1];
    let y: Vec<f64> = x
        .iter()
        .map(|&xv| numpy::interp(xv, &mrec, &mpre, left, right))
        .collect();
    numpy::trapezoid(&y, &x)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::BoxXyxy;

    const V0: UltralyticsVersion = UltralyticsVersion::V8_4_0;
    const V37: UltralyticsVersion = UltralyticsVersion::V8_4_37;
    const V176: UltralyticsVersion = UltralyticsVersion::V8_4_176;

    fn bx(x1: f32, y1: f32, x2: f32, y2: f32) -> BoxXyxy {
        BoxXyxy { x1, y1, x2, y2 }
    }
    fn gt(class_id: usize, bbox: BoxXyxy) -> GroundTruth {
        GroundTruth { class_id, bbox }
    }
    fn pred(class_id: usize, score: f32, bbox: BoxXyxy) -> Prediction {
        Prediction {
            class_id,
            score,
            bbox,
        }
    }
    const A: BoxXyxy = BoxXyxy {
        x1: 10.0,
        y1: 10.0,
        x2: 110.0,
        y2: 60.0,
    };
    const B: BoxXyxy = BoxXyxy {
        x1: 300.0,
        y1: 200.0,
        x2: 340.0,
        y2: 290.0,
    };
    const FAR: BoxXyxy = BoxXyxy {
        x1: 500.0,
        y1: 400.0,
        x2: 520.0,
        y2: 420.0,
    };

    fn run(version: UltralyticsVersion, images: &[(Vec<Prediction>, Vec<GroundTruth>)]) -> Metrics {
        let mut ev = Evaluator::with_version(3, version);
        for (p, t) in images {
            ev.add_image(p, t);
        }
        ev.finish()
    }

    #[test]
    fn perfect_predictions_score_0_995_not_1() {
        // Recall reaches 1 with precision 1 throughout, so the envelope is 1
        // on [0, 1), but at recall exactly 1 np.interp takes the right-most
        // knot with x = 1, the (1, 0) sentinel: precision 0. The 101-point
        // trapezoid is then 99 strips of 0.01 * 1 plus one of
        // 0.01 * (1 + 0) / 2: 0.99 + 0.005 = 0.995. (This is ultralytics'
        // well-known "perfect mAP50 = 0.995".)
        let images = vec![
            (
                vec![pred(0, 0.9, A), pred(1, 0.8, B)],
                vec![gt(0, A), gt(1, B)],
            ),
            (vec![pred(0, 0.7, B)], vec![gt(0, B)]),
        ];
        for v in [V0, V37, V176] {
            let m = run(v, &images);
            assert_eq!((m.images, m.instances), (2, 3));
            assert_eq!(m.precision, 1.0);
            assert_eq!(m.recall, 1.0);
            // numpy: compute_ap gives exactly 0.995 here; its pairwise mean
            // of twenty 0.995 (two classes x ten thresholds) is
            // 0.9950000000000001, of ten (one class) 0.9949999999999999.
            assert_eq!(m.map50, 0.995);
            assert_eq!(m.map50_95, 0.9950000000000001);
            assert_eq!(m.per_class[0].map50_95, 0.9949999999999999);
            assert_eq!(m.per_class.len(), 2);
            let c0 = &m.per_class[0];
            assert_eq!((c0.class_id, c0.images, c0.instances), (0, 2, 2));
            let c1 = &m.per_class[1];
            assert_eq!((c1.class_id, c1.images, c1.instances), (1, 1, 1));
        }
    }

    #[test]
    fn a_single_false_positive_scores_zero() {
        // One truth, one prediction elsewhere: recall [0], precision [0];
        // the envelope is 0 from recall 0 on, so AP = 0; P and R are 0.
        let m = run(V0, &[(vec![pred(0, 0.9, FAR)], vec![gt(0, A)])]);
        assert_eq!(
            (m.precision, m.recall, m.map50, m.map50_95),
            (0.0, 0.0, 0.0, 0.0)
        );
        assert_eq!(m.per_class.len(), 1);
        // Right box, wrong class: also a false positive.
        let m = run(V0, &[(vec![pred(1, 0.9, A)], vec![gt(0, A)])]);
        assert_eq!((m.precision, m.recall, m.map50), (0.0, 0.0, 0.0));
        assert_eq!(m.per_class.len(), 1, "class 1 has no truth, so no row");
    }

    #[test]
    fn no_ground_truth_at_all_is_all_zero() {
        let m = run(V0, &[(vec![pred(0, 0.9, A)], vec![]), (vec![], vec![])]);
        assert_eq!(m.images, 2);
        assert_eq!(m.instances, 0);
        assert_eq!(
            (m.precision, m.recall, m.map50, m.map50_95),
            (0.0, 0.0, 0.0, 0.0)
        );
        assert!(m.per_class.is_empty());
        let m = Evaluator::new(3).finish();
        assert_eq!((m.images, m.map50), (0, 0.0));
    }

    #[test]
    fn truths_without_predictions_count() {
        let m = run(
            V0,
            &[
                (vec![], vec![gt(2, A), gt(2, B)]),
                (vec![pred(2, 0.5, A)], vec![gt(2, A)]),
            ],
        );
        assert_eq!(m.instances, 3);
        assert_eq!(m.per_class[0].images, 2);
        assert_eq!(m.per_class[0].instances, 3);
        // One TP out of three truths: recall 1/3 at every confidence up to 0.5.
        assert_eq!(m.recall, 1.0 / 3.0);
        assert_eq!(m.precision, 1.0);
    }

    #[test]
    fn one_tp_then_a_lower_scored_fp() {
        // One truth: TP (0.9) then FP (0.8). recall [1, 1], precision
        // [1, 0.5]; envelope 1 up to recall 1, so AP = 0.995 as if perfect.
        let one = vec![(vec![pred(0, 0.8, FAR), pred(0, 0.9, A)], vec![gt(0, A)])];
        assert_eq!(run(V0, &one).map50, 0.995);
        assert_eq!(run(V37, &one).map50, 0.995);

        // Two truths, the second never found: recall [0.5, 0.5], precision
        // [1, 0.5].
        //
        // Up to 8.4.36: mrec = [0, .5, .5, 1], mpre = [1, 1, .5, 0], envelope
        // [1, 1, .5, 0]. On the 101 recall points: 1 for r < 0.5; at r = 0.5
        // the right-most knot, 0.5; then a line from 0.5 down to 0 at r = 1.
        // Trapezoids: 49 * 0.01 (r 0..0.49) + 0.01 * (1 + 0.5) / 2
        // (0.49..0.5) + the triangle 0.5 * 0.5 / 2 (0.5..1)
        // = 0.49 + 0.0075 + 0.125 = 0.6225.
        //
        // From 8.4.37: mrec = [0, .5, .5, .5, 1], mpre = [1, 1, .5, 0, 0]:
        // at r = 0.5 the right-most knot is now 0, and 0 after it, so
        // 0.49 + 0.01 * (1 + 0) / 2 = 0.495.
        let two = vec![(
            vec![pred(0, 0.9, A), pred(0, 0.8, FAR)],
            vec![gt(0, A), gt(0, B)],
        )];
        let m = run(V0, &two);
        assert!((m.map50 - 0.6225).abs() < 1e-12);
        assert_eq!(m.map50, 0.6224999999999999); // numpy's exact value
        let m37 = run(V37, &two);
        assert_eq!(m37.map50, 0.495);
        // Recall is 0.5 from conf 0.9 down; precision is read where the
        // smoothed F1 peaks, between the two scores, so it is interpolated
        // between 1 (at 0.9) and 0.5 (at 0.8): numpy gives 0.7492492787830924.
        assert_eq!(m.recall, 0.5);
        assert_eq!(m.precision, 0.7492492787830924);
        assert_eq!(m37.precision, m.precision);
    }

    #[test]
    fn a_higher_scored_fp_then_the_tp() {
        // FP (0.9) then TP (0.8), one truth: recall [0, 1], precision
        // [0, 0.5]; envelope over mrec [0, 0, 1, 1] is [1, .5, .5, 0]: 0.5 on
        // [0, 1) (at r = 0 the right-most knot, 0.5) and 0 at r = 1:
        // 0.99 * 0.5 + 0.01 * (0.5 + 0) / 2 = 0.4975.
        let im = vec![(vec![pred(0, 0.9, FAR), pred(0, 0.8, A)], vec![gt(0, A)])];
        for v in [V0, V37, V176] {
            let m = run(v, &im);
            assert!((m.map50 - 0.4975).abs() < 1e-12, "{v:?} {}", m.map50);
        }
    }

    #[test]
    fn ultralytics_matching_is_not_greedy_by_iou() {
        // L0 = (0,0)-(100,100), L1 = (0,0)-(62,99), same class.
        // P0 (0.9) = (0,0)-(100,97): IoU 0.97 with L0, 0.612 with L1.
        // P1 (0.8) = (0,0)-(100,99): IoU 0.99 with L0, 0.62 with L1.
        // Greedy by IoU would give L0 to P1 (0.99) and L1 to P0 (0.612):
        // two TPs at IoU 0.5 and AP50 0.995.
        // Ultralytics up to 8.4.175: both predictions choose L0; L0 goes to
        // the lower index (higher score), P0; P1 is a false positive, so at
        // IoU 0.5 recall [0.5, 0.5], precision [1, 0.5]: AP50 0.6225 (see
        // above).
        // From 8.4.176, P1 finds L0 taken and takes L1: AP50 0.995.
        let truths = vec![
            gt(0, bx(0.0, 0.0, 100.0, 100.0)),
            gt(0, bx(0.0, 0.0, 62.0, 99.0)),
        ];
        let preds = vec![
            pred(0, 0.8, bx(0.0, 0.0, 100.0, 99.0)),
            pred(0, 0.9, bx(0.0, 0.0, 100.0, 97.0)),
        ];
        let im = vec![(preds, truths)];
        let m = run(V0, &im);
        assert_eq!(m.map50, 0.6224999999999999);
        let mut ev = Evaluator::with_version(1, V0);
        ev.add_image(&im[0].0, &im[0].1);
        assert_eq!(ev.tp, vec![[true; NIOU], [false; NIOU]]);
        assert_eq!(ev.conf, vec![0.9, 0.8]);

        let m = run(V176, &im);
        assert_eq!(m.map50, 0.995);
        let mut ev = Evaluator::with_version(1, V176);
        ev.add_image(&im[0].0, &im[0].1);
        let p1 = [
            true, true, true, false, false, false, false, false, false, false,
        ];
        assert_eq!(ev.tp, vec![[true; NIOU], p1]);
    }

    #[test]
    fn prediction_order_does_not_matter() {
        let truths = vec![gt(0, A), gt(1, B), gt(0, FAR)];
        let preds = vec![
            pred(0, 0.3, A),
            pred(1, 0.9, B),
            pred(0, 0.6, bx(12.0, 10.0, 110.0, 62.0)),
            pred(0, 0.1, FAR),
        ];
        let mut reversed = preds.clone();
        reversed.reverse();
        let a = run(V0, &[(preds, truths.clone())]);
        let b = run(V0, &[(reversed, truths)]);
        assert_eq!(a, b);
    }

    #[test]
    fn class_ids_beyond_num_classes_are_evaluated() {
        let mut ev = Evaluator::new(1);
        ev.add_image(&[pred(7, 0.9, A)], &[gt(7, A)]);
        let m = ev.finish();
        assert_eq!(m.per_class.len(), 1);
        assert_eq!((m.per_class[0].class_id, m.per_class[0].images), (7, 1));
        assert_eq!(m.map50, 0.995);
    }

    #[test]
    fn metrics_serialise() {
        let m = run(V0, &[(vec![pred(0, 0.9, A)], vec![gt(0, A)])]);
        let v = serde_json::to_value(&m).unwrap();
        assert_eq!(v["images"], 1);
        assert_eq!(v["map50"], 0.995);
        assert_eq!(v["per_class"][0]["class_id"], 0);
        assert_eq!(v["per_class"][0]["instances"], 1);
    }

    #[test]
    fn default_version_is_the_oldest() {
        assert_eq!(Evaluator::new(2).version(), UltralyticsVersion::V8_4_0);
        assert!(UltralyticsVersion::V8_4_0 < UltralyticsVersion::V8_4_183);
    }
}
