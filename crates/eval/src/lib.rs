//! Detector accuracy, computed the way ultralytics `val` computes it.
//!
//! This crate owns two things: reading YOLO-format label files
//! ([`read_yolo_labels`], faithful to ultralytics' `verify_image_label`) and
//! turning per-image predictions and ground truths into precision, recall,
//! mAP50 and mAP50-95 ([`Evaluator`], faithful to ultralytics 8.4's
//! `DetectionValidator.update_metrics`, `match_predictions`, `ap_per_class`,
//! `compute_ap` and `smooth`, down to numpy's interpolation, summation and
//! BLAS dot-product order).
//!
//! Besides, [`BandEvaluator`]: recall and precision per class by object height band at one operating
//! point (not an ultralytics metric), with the data set's class names (`data.yaml`) mapped onto the
//! model's classes ([`ClassMap`]) and image list files ([`parse_image_list`]).
//!
//! It must not decode images, run inference, or do any I/O beyond reading
//! label text files and finding a data set's images (a folder's listing, a list file): the caller
//! supplies image sizes and predictions (and the text of data.yaml files).
//!
//! ```
//! use roadwarden_eval::{BoxXyxy, Evaluator, GroundTruth, Prediction};
//!
//! let bbox = BoxXyxy { x1: 10.0, y1: 10.0, x2: 60.0, y2: 40.0 };
//! let mut ev = Evaluator::new(1);
//! ev.add_image(
//!     &[Prediction { class_id: 0, score: 0.9, bbox }],
//!     &[GroundTruth { class_id: 0, bbox }],
//! );
//! let m = ev.finish();
//! assert_eq!((m.precision, m.recall), (1.0, 1.0));
//! assert_eq!(m.map50, 0.995); // ultralytics' AP50 for a perfect detector
//! ```
//!
//! # Which ultralytics
//!
//! The 8.4 series changed its metrics twice, so [`UltralyticsVersion`] names
//! the release range to reproduce; [`Evaluator::new`] uses
//! [`UltralyticsVersion::V8_4_0`].
//!
//! # What the caller must match
//!
//! * Predictions as ultralytics `val` keeps them: NMS at `conf=0.001`,
//!   `iou=0.7`, `max_det=300`. A higher confidence threshold lowers mAP.
//! * Predictions and ground truths of one image in the same pixel space.
//!   Ultralytics matches in the letterboxed network-input space; IoU does not
//!   change under the letterbox's uniform scale and shift, except in the last
//!   float bits.
//! * Ultralytics drops an image whose label file is corrupt (any
//!   [`LabelError`]) from validation altogether, and treats a missing label
//!   file as an image with no objects; [`read_yolo_labels`] leaves both to the
//!   caller.
//!
//! # Where ultralytics itself is not deterministic
//!
//! numpy's default `argsort` is not stable and, on AVX2/AVX-512 machines,
//! orders equal keys differently from its scalar code. Ultralytics sorts by
//! confidence, and by IoU while matching, so ties there can break either way
//! in ultralytics. This crate breaks them as a stable sort would: equal scores
//! keep their input order, and a prediction whose IoU is equal with two
//! truths takes the later truth. The max-F1 smoothing uses the dot-product
//! order of OpenBLAS's Haswell kernel (the one x86-64 numpy wheels use on AVX2
//! machines without AVX-512); another kernel can move the chosen confidence
//! in rare near-ties.

mod bands;
mod dataset;
mod evaluator;
#[cfg(test)]
mod fixture_tests;
mod labels;
mod matching;
mod numpy;

pub use bands::{
    BandCounts, BandEvaluator, BandReport, BandRow, BandsError, ClassMap, DataYamlError,
    ModelClass, SizeBands, parse_data_yaml_names, parse_image_list,
};
pub use dataset::{DatasetError, IMAGE_EXTENSIONS, label_path, list_images, read_image_list};
pub use evaluator::{ClassMetrics, Evaluator, Metrics};
pub use labels::{LabelError, read_yolo_labels, read_yolo_labels_as};

use serde::{Deserialize, Serialize};

/// An axis-aligned box by its corners, in pixels (x to the right, y down).
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct BoxXyxy {
    pub x1: f32,
    pub y1: f32,
    pub x2: f32,
    pub y2: f32,
}

/// One labelled object.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct GroundTruth {
    pub class_id: usize,
    pub bbox: BoxXyxy,
}

/// One detection, after NMS.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct Prediction {
    pub class_id: usize,
    pub score: f32,
    pub bbox: BoxXyxy,
}

/// The ultralytics release range whose `val` metrics and label checks to
/// reproduce.
///
/// Each variant is named by the first release of its range. Later variants
/// compare greater.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Default)]
pub enum UltralyticsVersion {
    /// 8.4.0 to 8.4.36. `compute_ap` closes the precision envelope with a
    /// single `(recall 1, precision 0)` point, so the curve slopes down from
    /// the last recall reached to recall 1. Matching as in
    /// [`V8_4_37`](Self::V8_4_37).
    #[default]
    V8_4_0,
    /// 8.4.37 to 8.4.175. `compute_ap` drops precision to 0 right at the last
    /// recall reached. Matching, per IoU threshold: each prediction takes the
    /// truth it overlaps most, and each truth keeps the highest-confidence
    /// prediction that took it (`np.unique` matching).
    V8_4_37,
    /// 8.4.176 to 8.4.181. Matching becomes greedy in confidence order: each
    /// prediction, highest confidence first, takes the truth it overlaps most
    /// among those not yet taken.
    V8_4_176,
    /// 8.4.183 onwards (8.4.190 is the newest checked). Metrics as
    /// [`V8_4_176`](Self::V8_4_176). Label files may start with a UTF-8 byte
    /// order mark, and a slightly negative value (down to -0.01) passes only
    /// when no width or height in the file is negative. (8.4.182 has that
    /// negative rule but still rejects the byte order mark.)
    V8_4_183,
}
