//! Two-stage head detection (`[camera.heads] two_stage = true`): on CCTV a rider's head is often 10-40 px
//! tall, where the helmet model (trained on close-ups) finds few of them on the whole frame. So, besides
//! the frame's own run, each rider is cropped, the crop upscaled into a small square input, and the helmet
//! model run on all crops in one ONNX Runtime batch ([`Detector::detect_regions`]); the heads found there
//! join the frame's.
//!
//! Where the crops go: the `person` and `two_wheeler` boxes the two-wheeler model (FastestDet) finds on
//! the frame, and the two-wheeler tracks' predicted boxes (a rider the model missed on this frame). A
//! two-wheeler box is first extended upward by its own height (its rider sits above it); each box is then
//! scaled by `crop_scale` about its centre. Crops that overlap much are merged; crops that would not be
//! upscaled at least 1.5 x more than the frame's own run are skipped (that head is seen as well already);
//! of the rest, the smallest riders go first, at most `max_crops`.
//!
//! Merging: a head found in a crop that touches a side of its crop inside the frame is cut and dropped.
//! Each crop head (best score first) that overlaps (IoU >= 0.5) no head kept so far is added; one that
//! overlaps kept heads replaces them when its score is higher than all of theirs (the upscaled crop reads
//! a small head better than the frame did), and is dropped otherwise. The frame's heads among themselves
//! are left as the frame's run gave them.
//!
//! Cost: the two-wheeler model runs once more on the frame (FastestDet, 352x352: a few ms), and the helmet
//! model on the crops' batch (`max_crops` x `crop_input`² pixels at most).

use roadwarden_infer::{DetectOptions, Detector, InferError, Region, ScoreMode};
use roadwarden_rules::HeadsConfig;
use roadwarden_types::{BBox, ClassRole, Detection, ImageView};

/// A crop head within this many crop pixels of a crop side inside the frame is cut.
const CUT_EDGE_PX: f32 = 1.0;
/// Crops overlapping this much (IoU) are merged into their union.
const MERGE_IOU: f32 = 0.5;
/// Heads from a crop and heads kept so far are the same head at this IoU.
const SAME_HEAD_IOU: f32 = 0.5;
/// A crop runs only when it upscales at least this much more than the frame's own run.
const MIN_GAIN: f32 = 1.5;

/// The settings of [`TwoStageHeads`]; see [`HeadsConfig`].
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct TwoStageParams {
    pub crop_scale: f32,
    pub crop_input: u32,
    pub max_crops: usize,
}

impl From<&HeadsConfig> for TwoStageParams {
    fn from(c: &HeadsConfig) -> Self {
        TwoStageParams {
            crop_scale: c.crop_scale,
            crop_input: c.crop_input,
            max_crops: c.max_crops as usize,
        }
    }
}

/// Where a rider's head is looked for, in frame pixels (unclipped): see the module text.
pub fn crop_box(rider: &BBox, role: ClassRole, scale: f32) -> BBox {
    let b = match role {
        ClassRole::TwoWheeler => BBox::new(rider.x1, rider.y1 - rider.height(), rider.x2, rider.y2),
        _ => *rider,
    };
    let (cx, cy) = ((b.x1 + b.x2) / 2.0, (b.y1 + b.y2) / 2.0);
    BBox::from_cxcywh(cx, cy, b.width() * scale, b.height() * scale)
}

fn union(a: &BBox, b: &BBox) -> BBox {
    BBox::new(
        a.x1.min(b.x1),
        a.y1.min(b.y1),
        a.x2.max(b.x2),
        a.y2.max(b.y2),
    )
}

/// The crops for one frame: each rider's [`crop_box`], overlapping ones merged, those whose upscale
/// into `crop_input` would not beat `frame_scale` (the frame run's input pixels per frame pixel) by
/// [`MIN_GAIN`] left out, smallest first, at most `max_crops`.
pub fn plan_regions(
    riders: &[(BBox, ClassRole)],
    frame: [u32; 2],
    frame_scale: f32,
    p: &TwoStageParams,
) -> Vec<Region> {
    let mut boxes: Vec<BBox> = Vec::new();
    for (b, role) in riders {
        let mut c = crop_box(b, *role, p.crop_scale).clip(frame[0] as f32, frame[1] as f32);
        if c.width() < 2.0 || c.height() < 2.0 {
            continue;
        }
        // Merge with every overlapping crop until none overlaps.
        while let Some(i) = boxes.iter().position(|o| o.iou(&c) >= MERGE_IOU) {
            c = union(&boxes.swap_remove(i), &c);
        }
        boxes.push(c);
    }
    boxes.retain(|b| {
        let side = b.width().max(b.height()).max(1.0);
        p.crop_input as f32 / side >= MIN_GAIN * frame_scale
    });
    boxes.sort_by(|a, b| a.area().total_cmp(&b.area()));
    boxes
        .iter()
        .filter_map(|b| Region::around(b, frame[0], frame[1]))
        .take(p.max_crops)
        .collect()
}

/// The frame's heads with the crops' heads merged in (see the module text). `crops` pairs each crop's
/// region with its heads in frame pixels.
pub fn merge_heads(
    frame_heads: Vec<Detection>,
    crops: &[(Region, Vec<Detection>)],
    frame: [u32; 2],
) -> Vec<Detection> {
    let mut found: Vec<Detection> = crops
        .iter()
        .flat_map(|(r, dets)| {
            dets.iter().filter(move |d| {
                let local = BBox::new(
                    d.bbox.x1 - r.x as f32,
                    d.bbox.y1 - r.y as f32,
                    d.bbox.x2 - r.x as f32,
                    d.bbox.y2 - r.y as f32,
                );
                !r.cuts(&local, frame[0], frame[1], CUT_EDGE_PX)
            })
        })
        .cloned()
        .collect();
    found.sort_by(|a, b| b.score.total_cmp(&a.score));
    let mut kept = frame_heads;
    for d in found {
        let same: Vec<usize> = kept
            .iter()
            .enumerate()
            .filter(|(_, k)| k.bbox.iou(&d.bbox) >= SAME_HEAD_IOU)
            .map(|(i, _)| i)
            .collect();
        if same.iter().all(|&i| kept[i].score < d.score) {
            for &i in same.iter().rev() {
                kept.remove(i);
            }
            kept.push(d);
        }
    }
    kept
}

/// Input pixels per frame pixel of `det`'s run on a `frame`-sized image with `opts`.
fn frame_scale(det: &Detector, frame: [u32; 2], opts: &DetectOptions) -> f32 {
    let lb = det.letterbox(frame[0], frame[1], opts.shape);
    lb.inner_width as f32 / frame[0].max(1) as f32
}

/// A camera's (or an evaluation's) two-stage head detection.
#[derive(Debug, Clone)]
pub struct TwoStageHeads {
    params: TwoStageParams,
}

/// What [`TwoStageHeads::detect`] did besides the heads.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct TwoStageRun {
    /// The crops the helmet model ran on.
    pub regions: Vec<Region>,
}

impl TwoStageHeads {
    pub fn new(params: TwoStageParams) -> TwoStageHeads {
        TwoStageHeads { params }
    }

    /// The camera's two-stage detection, when `[camera.heads] two_stage` is on.
    pub fn for_camera(config: &HeadsConfig) -> Option<TwoStageHeads> {
        config
            .two_stage
            .then(|| TwoStageHeads::new(TwoStageParams::from(config)))
    }

    pub fn params(&self) -> &TwoStageParams {
        &self.params
    }

    /// The person and two-wheeler boxes `rider_model` finds on `image` (at its classes' thresholds).
    pub fn riders(
        rider_model: &mut Detector,
        image: &ImageView<'_>,
    ) -> Result<Vec<(BBox, ClassRole)>, InferError> {
        let dets = rider_model.detect(
            image,
            &DetectOptions {
                score: ScoreMode::ClassThresholds,
                ..DetectOptions::default()
            },
        )?;
        Ok(dets
            .into_iter()
            .filter_map(|d| {
                let role = rider_model.classes().get(d.class_id.0)?.role;
                matches!(role, ClassRole::Person | ClassRole::TwoWheeler).then_some((d.bbox, role))
            })
            .collect())
    }

    /// Runs `helmet` on the crops around `riders` (one batch) and merges the heads found there into
    /// `frame_heads` (the frame's run of `helmet` with `opts`). Crops use `opts` too, at their square.
    pub fn detect(
        &self,
        helmet: &mut Detector,
        image: &ImageView<'_>,
        riders: &[(BBox, ClassRole)],
        opts: &DetectOptions,
        frame_heads: Vec<Detection>,
    ) -> Result<(Vec<Detection>, TwoStageRun), InferError> {
        let frame = [image.width(), image.height()];
        let scale = frame_scale(helmet, frame, opts);
        let regions = plan_regions(riders, frame, scale, &self.params);
        if regions.is_empty() {
            return Ok((frame_heads, TwoStageRun::default()));
        }
        let found = helmet.detect_regions(image, &regions, self.params.crop_input, opts)?;
        let crops: Vec<(Region, Vec<Detection>)> = regions.iter().copied().zip(found).collect();
        Ok((
            merge_heads(frame_heads, &crops, frame),
            TwoStageRun { regions },
        ))
    }

    /// The runner's step: riders from `rider_model` on this frame plus the two-wheeler tracks'
    /// `predicted` boxes, then [`detect`](Self::detect).
    pub(crate) fn refine(
        &self,
        helmet: &mut Detector,
        rider_model: &mut Detector,
        predicted: &[BBox],
        image: &ImageView<'_>,
        opts: &DetectOptions,
        frame_heads: Vec<Detection>,
    ) -> Result<Vec<Detection>, InferError> {
        let mut riders = Self::riders(rider_model, image)?;
        riders.extend(predicted.iter().map(|b| (*b, ClassRole::TwoWheeler)));
        Ok(self.detect(helmet, image, &riders, opts, frame_heads)?.0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use roadwarden_types::ClassId;

    const P: TwoStageParams = TwoStageParams {
        crop_scale: 1.5,
        crop_input: 256,
        max_crops: 12,
    };

    fn det(class: usize, score: f32, b: BBox) -> Detection {
        Detection {
            bbox: b,
            class_id: ClassId(class),
            score,
        }
    }

    #[test]
    fn a_two_wheeler_crop_reaches_up_to_its_rider() {
        let bike = BBox::new(100.0, 200.0, 140.0, 240.0);
        let c = crop_box(&bike, ClassRole::TwoWheeler, 1.0);
        assert_eq!(c, BBox::new(100.0, 160.0, 140.0, 240.0));
        let c = crop_box(&bike, ClassRole::TwoWheeler, 1.5);
        assert_eq!(c, BBox::new(90.0, 140.0, 150.0, 260.0));
        let person = BBox::new(100.0, 100.0, 120.0, 160.0);
        assert_eq!(
            crop_box(&person, ClassRole::Person, 2.0),
            BBox::new(90.0, 70.0, 130.0, 190.0)
        );
    }

    #[test]
    fn crops_merge_skip_large_riders_and_go_smallest_first() {
        let frame = [640, 480];
        // A person on its motorbike: the two crops overlap and merge into one.
        let person = (BBox::new(100.0, 100.0, 120.0, 160.0), ClassRole::Person);
        let bike = (BBox::new(98.0, 130.0, 122.0, 165.0), ClassRole::TwoWheeler);
        // A tiny rider elsewhere, and a rider 300 px tall (crop 450 px: 256 / 450 < 1.5 x 1.0).
        let tiny = (BBox::new(400.0, 50.0, 408.0, 70.0), ClassRole::Person);
        let huge = (BBox::new(300.0, 100.0, 400.0, 400.0), ClassRole::Person);
        let regions = plan_regions(&[person, bike, tiny, huge], frame, 1.0, &P);
        assert_eq!(regions.len(), 2, "{regions:?}");
        // The tiny rider's crop first (smallest), even-aligned.
        assert_eq!(
            regions[0],
            Region {
                x: 398,
                y: 44,
                width: 12,
                height: 32
            }
        );
        let merged = regions[1];
        assert!(
            merged.x <= 94 && merged.x + merged.width >= 126,
            "{merged:?}"
        );
        // The merged crop holds the bike's rider area above it and the person box.
        assert!(
            merged.y <= 85 && merged.y + merged.height >= 175,
            "{merged:?}"
        );
        // At a frame scale of 0.25 (a 2560-wide frame run at 640), even the huge rider gains.
        assert_eq!(plan_regions(&[huge], frame, 0.25, &P).len(), 1);
        let few = TwoStageParams { max_crops: 1, ..P };
        assert_eq!(
            plan_regions(&[person, tiny], frame, 1.0, &few),
            vec![regions[0]]
        );
    }

    #[test]
    fn crop_heads_join_replace_weaker_readings_and_cut_ones_are_dropped() {
        let frame = [640, 480];
        let region = Region {
            x: 100,
            y: 100,
            width: 60,
            height: 80,
        };
        let head = BBox::new(120.0, 110.0, 132.0, 124.0);
        let other = BBox::new(300.0, 300.0, 312.0, 314.0);
        let frame_heads = vec![det(0, 0.6, head), det(0, 0.4, other)];
        // The crop reads the same head as class 1 more surely: it replaces the frame's reading.
        let crop = vec![
            det(1, 0.8, BBox::new(120.5, 110.0, 132.0, 124.5)),
            // A new small head in the crop.
            det(1, 0.5, BBox::new(140.0, 150.0, 148.0, 160.0)),
            // Cut by the crop's left side (the crop starts inside the frame).
            det(1, 0.9, BBox::new(100.0, 130.0, 110.0, 140.0)),
        ];
        let merged = merge_heads(frame_heads.clone(), &[(region, crop)], frame);
        let mut got: Vec<(usize, f32)> = merged.iter().map(|d| (d.class_id.0, d.score)).collect();
        got.sort_by(|a, b| b.1.total_cmp(&a.1));
        assert_eq!(got, [(1, 0.8), (1, 0.5), (0, 0.4)]);
        // A weaker crop reading of a head the frame read surely is dropped.
        let weak = vec![det(1, 0.3, head)];
        let merged = merge_heads(frame_heads.clone(), &[(region, weak)], frame);
        assert_eq!(merged, frame_heads);
    }
}
