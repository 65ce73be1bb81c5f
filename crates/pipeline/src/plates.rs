//! Licence plates of offenders: when a violation is emitted, the plate detector (HyperLPR3's
//! `models/hyperlpr3-plate-y5fu-320.toml`) runs once on the offender's vehicle region of the key
//! frame, expanded, and the best plate box becomes the violation's [`PlateRead`]. Only then, so it
//! costs one small inference per violation, none per frame.

use std::path::Path;

use roadwarden_infer::{BBox, DetectOptions, Detector, ImageView, Region, Runtime};
use roadwarden_types::{FrameRole, PlateRead, ViolationKind};

use crate::{PipelineError, ViolationFrames};

/// How much the vehicle box grows on each side before the plate detector runs on it, as a
/// fraction of its width and height: plates hang below and in front of riders' boxes.
pub const DEFAULT_EXPAND: f32 = 0.15;

/// The plate detector and how it is run on a vehicle.
pub struct PlateFinder {
    detector: Detector,
    expand: f32,
}

impl PlateFinder {
    /// Loads the plate detector's manifest (SHA-256 checked).
    pub fn load(manifest: &Path, runtime: &Runtime) -> Result<PlateFinder, PipelineError> {
        Ok(PlateFinder::new(Detector::load(manifest, runtime)?))
    }

    pub fn new(detector: Detector) -> PlateFinder {
        PlateFinder {
            detector,
            expand: DEFAULT_EXPAND,
        }
    }

    /// Fills `vf.violation.plate_read` from its key frame (no-helmet) or crossing frame (red
    /// light): the plate detector runs once on the offender's vehicle region
    /// ([`offender_vehicle`]). Leaves it `None` when no plate is seen or the frame's image is
    /// not at hand.
    pub fn read_violation(&mut self, vf: &mut ViolationFrames) -> Result<(), PipelineError> {
        let v = &vf.violation;
        let Some(frame) = v
            .frames
            .iter()
            .find(|f| matches!(f.role, FrameRole::Key | FrameRole::At))
        else {
            return Ok(());
        };
        let (Some(offender), Some((_, image))) = (
            frame.boxes.first(),
            vf.images.iter().find(|(role, _)| *role == frame.role),
        ) else {
            return Ok(());
        };
        let vehicle = offender_vehicle(v.kind, &offender.bbox);
        vf.violation.plate_read = self.find(&image.view(), &vehicle)?;
        Ok(())
    }

    /// The best plate (highest detector score above the manifest's threshold) in `vehicle`
    /// expanded by [`DEFAULT_EXPAND`], in frame pixels; `None` when the detector sees none or the
    /// box is not inside the frame.
    pub fn find(
        &mut self,
        image: &ImageView<'_>,
        vehicle: &BBox,
    ) -> Result<Option<PlateRead>, PipelineError> {
        let (dx, dy) = (
            vehicle.width() * self.expand,
            vehicle.height() * self.expand,
        );
        let grown = BBox::new(
            vehicle.x1 - dx,
            vehicle.y1 - dy,
            vehicle.x2 + dx,
            vehicle.y2 + dy,
        );
        let Some(region) = Region::around(&grown, image.width(), image.height()) else {
            return Ok(None);
        };
        let (w, _) = self.detector.input_size();
        let found = self
            .detector
            .detect_regions(image, &[region], w, &DetectOptions::default())?
            .remove(0);
        Ok(found
            .into_iter()
            .max_by(|a, b| a.score.total_cmp(&b.score))
            .map(|d| PlateRead {
                bbox: d.bbox,
                confidence: d.score,
                text: None,
                text_confidence: None,
            }))
    }
}

/// The offender's vehicle region from the box a rule reports first: red light reports the
/// vehicle (or rider) itself; no-helmet reports the head, so the rider and two-wheeler below it
/// are taken as three heads wide and eight heads tall from the top of the head.
pub fn offender_vehicle(kind: ViolationKind, first_box: &BBox) -> BBox {
    match kind {
        ViolationKind::RedLight => *first_box,
        ViolationKind::NoHelmet => {
            let (w, h) = (first_box.width(), first_box.height());
            let cx = (first_box.x1 + first_box.x2) / 2.0;
            BBox::new(
                cx - 1.5 * w,
                first_box.y1,
                cx + 1.5 * w,
                first_box.y1 + 8.0 * h,
            )
        }
    }
}
