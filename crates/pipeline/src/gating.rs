//! Inference gating for one camera (`[camera.gating]`), in pure code: the *rule region* (the stop line
//! widened by its tolerance plus a margin, and the zones grown by the margin), its mask at the motion
//! detector's downscaled size, the crop rectangle around it (snapped to the model stride) with the view
//! of a frame it gives, and the motion gate's hangover. The background subtraction itself is
//! `roadwarden_imaging::MotionDetector` (OpenCV).

use roadwarden_imaging::{ImagingError, MotionDetector, MotionParams};
use roadwarden_infer::{Detector, InputShape};
use roadwarden_rules::{CameraConfig, Point, polygon_contains};
use roadwarden_types::{BBox, ImageError, ImageView, PixelFormat, Plane};

/// Distance from `p` to the segment `a`-`b`.
fn segment_distance(p: Point, a: Point, b: Point) -> f32 {
    let (dx, dy) = (b.x - a.x, b.y - a.y);
    let len2 = dx * dx + dy * dy;
    let t = if len2 > 0.0 {
        (((p.x - a.x) * dx + (p.y - a.y) * dy) / len2).clamp(0.0, 1.0)
    } else {
        0.0
    };
    let (qx, qy) = (a.x + t * dx - p.x, a.y + t * dy - p.y);
    (qx * qx + qy * qy).sqrt()
}

/// Where the rules look, grown by the gating margin: points within `radius` of the stop line, and
/// points inside a zone or within `margin` of its edge.
#[derive(Debug, Clone, PartialEq)]
pub struct RuleRegion {
    frame: (f32, f32),
    line: (Point, Point),
    radius: f32,
    zones: Vec<Vec<Point>>,
    margin: f32,
}

impl RuleRegion {
    /// The region of `config` with its `gating.margin_px`.
    pub fn for_camera(config: &CameraConfig) -> RuleRegion {
        let m = config.gating.margin_px.max(0.0);
        let s = &config.stop_line;
        RuleRegion {
            frame: (config.frame[0] as f32, config.frame[1] as f32),
            line: (Point::new(s.a[0], s.a[1]), Point::new(s.b[0], s.b[1])),
            radius: s.tolerance_px.max(0.0) + m,
            zones: config.zones.iter().map(|z| z.polygon()).collect(),
            margin: m,
        }
    }

    pub fn contains(&self, p: Point) -> bool {
        if segment_distance(p, self.line.0, self.line.1) <= self.radius {
            return true;
        }
        self.zones.iter().any(|z| {
            polygon_contains(z, p)
                || (0..z.len())
                    .any(|i| segment_distance(p, z[i], z[(i + 1) % z.len()]) <= self.margin)
        })
    }

    /// The region's bounding box, clipped to the frame.
    pub fn bounds(&self) -> BBox {
        let (a, b) = self.line;
        let r = self.radius;
        let (mut x1, mut y1) = (a.x.min(b.x) - r, a.y.min(b.y) - r);
        let (mut x2, mut y2) = (a.x.max(b.x) + r, a.y.max(b.y) + r);
        for z in &self.zones {
            for p in z {
                x1 = x1.min(p.x - self.margin);
                y1 = y1.min(p.y - self.margin);
                x2 = x2.max(p.x + self.margin);
                y2 = y2.max(p.y + self.margin);
            }
        }
        BBox::new(
            x1.max(0.0),
            y1.max(0.0),
            x2.min(self.frame.0),
            y2.min(self.frame.1),
        )
    }

    /// The region at `width` x `height` (the frame downscaled): one flag per pixel, row-major, set when
    /// the pixel's centre (in frame coordinates) is inside.
    pub fn mask(&self, width: u32, height: u32) -> Vec<bool> {
        let (sx, sy) = (self.frame.0 / width as f32, self.frame.1 / height as f32);
        let mut out = Vec::with_capacity((width * height) as usize);
        for y in 0..height {
            for x in 0..width {
                out.push(self.contains(Point::new((x as f32 + 0.5) * sx, (y as f32 + 0.5) * sy)));
            }
        }
        out
    }
}

/// The motion detector's downscaled size for a `frame` at `width` pixels wide (the height keeps the
/// aspect, at least 1).
pub fn motion_size(frame: [u32; 2], width: u32) -> (u32, u32) {
    let w = width.clamp(1, frame[0].max(1));
    let h = ((frame[1] as f64 * w as f64 / frame[0].max(1) as f64).round() as u32).max(1);
    (w, h)
}

/// A rectangle of the frame, in whole pixels.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct CropRect {
    pub x: u32,
    pub y: u32,
    pub width: u32,
    pub height: u32,
}

impl CropRect {
    /// The rectangle around `bounds` with its edges on multiples of `align` frame pixels (even, at least
    /// 2, so I420/NV12 chroma stays aligned), clipped to the frame.
    pub fn around(bounds: &BBox, frame: [u32; 2], align: u32) -> CropRect {
        let align = align.max(2).next_multiple_of(2);
        let (fw, fh) = (frame[0] & !1, frame[1] & !1);
        let lo = |v: f32| ((v.max(0.0).floor() as u32) / align * align).min(fw.saturating_sub(2));
        let hi = |v: f32, max: u32| {
            (v.max(0.0).ceil() as u32)
                .div_ceil(align)
                .saturating_mul(align)
                .min(max)
        };
        let (x, y) = (lo(bounds.x1), lo(bounds.y1).min(fh.saturating_sub(2)));
        let (x2, y2) = (hi(bounds.x2, fw).max(x + 2), hi(bounds.y2, fh).max(y + 2));
        CropRect {
            x,
            y,
            width: x2 - x,
            height: y2 - y,
        }
    }

    /// The whole frame (even size).
    pub fn is_whole(&self, frame: [u32; 2]) -> bool {
        self.x == 0 && self.y == 0 && self.width >= frame[0] & !1 && self.height >= frame[1] & !1
    }

    pub fn area(&self) -> u64 {
        self.width as u64 * self.height as u64
    }

    /// This rectangle of `image` as a view of the same pixels (no copy).
    pub fn view<'a>(&self, image: &ImageView<'a>) -> Result<ImageView<'a>, ImageError> {
        let (x, y) = (self.x as usize, self.y as usize);
        let (w, h) = (
            self.width.min(image.width().saturating_sub(self.x)),
            self.height.min(image.height().saturating_sub(self.y)),
        );
        let sub = |plane: usize, offset: usize| {
            let p = image.plane(plane);
            Plane {
                data: p.data.get(offset..).unwrap_or(&[]),
                stride: p.stride,
            }
        };
        match image.format() {
            f @ (PixelFormat::Bgr8 | PixelFormat::Rgb8) => {
                let p = sub(0, y * image.plane(0).stride + 3 * x);
                ImageView::packed(f, w, h, p.data, p.stride)
            }
            PixelFormat::I420 => ImageView::i420(
                w,
                h,
                sub(0, y * image.plane(0).stride + x),
                sub(1, y / 2 * image.plane(1).stride + x / 2),
                sub(2, y / 2 * image.plane(2).stride + x / 2),
            ),
            PixelFormat::Nv12 => ImageView::nv12(
                w,
                h,
                sub(0, y * image.plane(0).stride + x),
                sub(1, y / 2 * image.plane(1).stride + x),
            ),
        }
    }

    /// Whether a box (in this rectangle's pixels) reaches within `edge` pixels of a side of the rectangle
    /// that is not a side of the frame: the object is cut by the crop, and what the model saw of it is
    /// not the object (half a helmet reads as a bare head).
    pub fn cuts(&self, b: &BBox, frame: [u32; 2], edge: f32) -> bool {
        let (w, h) = (self.width as f32, self.height as f32);
        (self.x > 0 && b.x1 < edge)
            || (self.y > 0 && b.y1 < edge)
            || (self.x + self.width < frame[0] & !1 && b.x2 > w - edge)
            || (self.y + self.height < frame[1] & !1 && b.y2 > h - edge)
    }

    /// A box in this rectangle's pixels, in frame pixels.
    pub fn to_frame(&self, b: &BBox) -> BBox {
        let (dx, dy) = (self.x as f32, self.y as f32);
        BBox::new(b.x1 + dx, b.y1 + dy, b.x2 + dx, b.y2 + dy)
    }
}

/// Whether to run inference on a frame, from its motion: every frame whose changed fraction reaches
/// `min_area`, and `hold` frames after the last one. The first `hold` frames run whatever they show (the
/// background model is still learning).
#[derive(Debug, Clone, PartialEq)]
pub struct MotionGate {
    min_area: f32,
    hold: u32,
    left: u32,
}

impl MotionGate {
    pub fn new(min_area: f32, hold: u32) -> MotionGate {
        MotionGate {
            min_area,
            hold,
            left: hold,
        }
    }

    /// One frame's changed fraction of the region; true: analyse this frame.
    pub fn observe(&mut self, fraction: f32) -> bool {
        if fraction >= self.min_area {
            self.left = self.hold;
            true
        } else if self.left > 0 {
            self.left -= 1;
            true
        } else {
            false
        }
    }
}

/// The scale a dynamic-size detector runs a `frame`-sized image at (its rect letterbox), and the crop
/// alignment in frame pixels that keeps a crop's network input on the model stride; `None` when the
/// model's input size is fixed (a crop would cost it the same work) or the scale is degenerate.
pub fn crop_scale(det: &Detector, frame: [u32; 2]) -> Option<(f32, u32)> {
    if !det.has_dynamic_size() {
        return None;
    }
    let [w, h] = frame;
    let full = det.letterbox(w, h, InputShape::Rect);
    let scale = full.inner_width as f32 / w.max(1) as f32;
    if !(scale.is_finite() && scale > 0.0) {
        return None;
    }
    let stride = det.manifest().input.stride.unwrap_or(32).max(1);
    Some((scale, (stride as f32 / scale).ceil() as u32))
}

/// The crop a detector gets under `roi_crop`, and the letterbox target (width, height) that runs it at the
/// whole frame's scale; `None` when the model's input size is fixed (a crop would cost it the same work)
/// or the crop would be the whole frame.
pub fn detector_crop(det: &Detector, config: &CameraConfig) -> Option<(CropRect, (u32, u32))> {
    if !config.gating.roi_crop {
        return None;
    }
    let (scale, align) = crop_scale(det, config.frame)?;
    let stride = det.manifest().input.stride.unwrap_or(32).max(1);
    let crop = CropRect::around(
        &RuleRegion::for_camera(config).bounds(),
        config.frame,
        align,
    );
    if crop.is_whole(config.frame) {
        return None;
    }
    let target = |v: u32| {
        ((v as f32 * scale).round() as u32)
            .max(1)
            .next_multiple_of(stride)
    };
    Some((crop, (target(crop.width), target(crop.height))))
}

/// Where the helmet model looks on one analysed frame under `gating.follow`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Look {
    /// The whole area (the rule-region crop, or the frame): new heads are found here.
    Scan,
    /// Only this rectangle of it, around the heads being followed.
    Around(CropRect),
    /// Nowhere: no head to follow and no scan due.
    Nothing,
}

/// `gating.follow`: a scan of the whole area every `scan_every` analysed frames, and in between only
/// the rectangle around the followed heads' predicted boxes, each grown by `margin` pixels.
#[derive(Debug, Clone, PartialEq)]
pub struct Follow {
    scan_every: u32,
    margin: f32,
    frames: u64,
}

impl Follow {
    pub fn new(scan_every: u32, margin: f32) -> Follow {
        Follow {
            scan_every: scan_every.max(1),
            margin: margin.max(0.0),
            frames: 0,
        }
    }

    /// The look for the next analysed frame: `area` is what a scan covers (aligned to `align`, as
    /// [`CropRect::around`] aligns), `expected` the followed heads' predicted boxes in frame pixels.
    /// The first frame scans.
    pub fn plan(
        &mut self,
        area: &CropRect,
        expected: &[BBox],
        frame: [u32; 2],
        align: u32,
    ) -> Look {
        let n = self.frames;
        self.frames += 1;
        if n.is_multiple_of(u64::from(self.scan_every)) {
            return Look::Scan;
        }
        let (ax2, ay2) = ((area.x + area.width) as f32, (area.y + area.height) as f32);
        let m = self.margin;
        let union = expected
            .iter()
            .filter(|b| b.x2 + m > area.x as f32 && b.x1 - m < ax2)
            .filter(|b| b.y2 + m > area.y as f32 && b.y1 - m < ay2)
            .map(|b| BBox::new(b.x1 - m, b.y1 - m, b.x2 + m, b.y2 + m))
            .reduce(|a, b| {
                BBox::new(
                    a.x1.min(b.x1),
                    a.y1.min(b.y1),
                    a.x2.max(b.x2),
                    a.y2.max(b.y2),
                )
            });
        let Some(u) = union else {
            return Look::Nothing;
        };
        let c = CropRect::around(&u, frame, align);
        let (x, y) = (c.x.max(area.x), c.y.max(area.y));
        let x2 = (c.x + c.width).min(area.x + area.width);
        let y2 = (c.y + c.height).min(area.y + area.height);
        if x2 <= x + 1 || y2 <= y + 1 {
            return Look::Nothing;
        }
        Look::Around(CropRect {
            x,
            y,
            width: x2 - x,
            height: y2 - y,
        })
    }
}

/// A camera's motion gate: its background model over the rule region and the hangover.
pub(crate) struct MotionGating {
    detector: MotionDetector,
    gate: MotionGate,
}

impl MotionGating {
    /// The motion gate of `config`, if `gating.motion` is on.
    pub(crate) fn for_camera(config: &CameraConfig) -> Result<Option<MotionGating>, ImagingError> {
        let g = &config.gating;
        if !g.motion {
            return Ok(None);
        }
        let (w, h) = motion_size(config.frame, g.motion_width);
        let mask = RuleRegion::for_camera(config).mask(w, h);
        let detector = MotionDetector::new(
            w,
            h,
            mask,
            MotionParams {
                history: g.motion_history,
                var_threshold: g.motion_var_threshold,
            },
        )?;
        Ok(Some(MotionGating {
            detector,
            gate: MotionGate::new(g.motion_min_area, g.motion_hold_frames),
        }))
    }

    /// Feeds one frame; true: run the detectors on it.
    pub(crate) fn analyse(&mut self, image: &ImageView<'_>) -> Result<bool, ImagingError> {
        let fraction = self.detector.apply(image)?;
        Ok(self.gate.observe(fraction))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use roadwarden_rules::SiteConfig;

    fn camera(extra: &str) -> CameraConfig {
        let text = roadwarden_testkit::site::camera("gate")
            .section(extra)
            .section("[camera.gating]\nmotion = true\nroi_crop = true\nmargin_px = 50.0")
            .toml();
        SiteConfig::parse(&text).unwrap().cameras.remove(0)
    }

    #[test]
    fn the_region_is_the_widened_stop_line_and_grown_zones() {
        let r = RuleRegion::for_camera(&camera(""));
        // Tolerance 3 + margin 50 around x = 420, from y = 40 - 53 up.
        assert!(r.contains(Point::new(420.0, 200.0)));
        assert!(r.contains(Point::new(367.5, 200.0)));
        assert!(!r.contains(Point::new(366.0, 200.0)));
        assert!(
            r.contains(Point::new(450.0, 10.0)),
            "42 px from the line's end"
        );
        assert!(
            !r.contains(Point::new(470.0, 0.0)),
            "64 px from the line's end"
        );
        assert!(!r.contains(Point::new(100.0, 200.0)));
        assert_eq!(r.bounds(), BBox::new(367.0, 0.0, 473.0, 384.0));
        let z = RuleRegion::for_camera(&camera(
            "[[camera.zone]]\nname = \"box\"\npoints = [[100.0, 100.0], [200.0, 100.0], [200.0, 150.0]]",
        ));
        assert!(z.contains(Point::new(180.0, 110.0)), "inside the zone");
        assert!(
            z.contains(Point::new(150.0, 60.0)),
            "within the margin of its edge"
        );
        assert!(!z.contains(Point::new(150.0, 40.0)));
        assert_eq!(z.bounds().x1, 50.0);
    }

    #[test]
    fn the_mask_rasterises_the_region_at_the_downscaled_size() {
        let r = RuleRegion::for_camera(&camera(""));
        let (w, h) = motion_size([640, 384], 160);
        assert_eq!((w, h), (160, 96));
        let m = r.mask(w, h);
        assert_eq!(m.len(), 160 * 96);
        // Column x covers frame x in [4x, 4x + 4): the band 367..473 is columns 92..118.
        let row = &m[50 * 160..51 * 160];
        let set: Vec<usize> = (0..160).filter(|&x| row[x]).collect();
        assert_eq!((set[0], *set.last().unwrap()), (92, 117), "{set:?}");
        assert_eq!(set.len(), 26);
    }

    #[test]
    fn the_crop_snaps_to_the_stride_and_maps_boxes_back() {
        let r = RuleRegion::for_camera(&camera(""));
        let c = CropRect::around(&r.bounds(), [640, 384], 32);
        assert_eq!(
            c,
            CropRect {
                x: 352,
                y: 0,
                width: 128,
                height: 384
            }
        );
        assert!(!c.is_whole([640, 384]));
        assert_eq!(
            c.to_frame(&BBox::new(1.0, 2.0, 3.0, 4.0)),
            BBox::new(353.0, 2.0, 355.0, 4.0)
        );
        // Boxes cut by the crop's inner sides (left, right; not the frame's top and bottom).
        assert!(c.cuts(&BBox::new(0.5, 100.0, 20.0, 130.0), [640, 384], 1.0));
        assert!(c.cuts(&BBox::new(100.0, 100.0, 127.5, 130.0), [640, 384], 1.0));
        assert!(!c.cuts(&BBox::new(2.0, 0.0, 126.0, 384.0), [640, 384], 1.0));
        let whole = CropRect::around(&BBox::new(0.0, 0.0, 640.0, 384.0), [640, 384], 32);
        assert!(whole.is_whole([640, 384]));
        // A frame that is no stride multiple: the crop ends at the (even) frame edge.
        let odd = CropRect::around(&BBox::new(590.0, 5.0, 633.0, 90.0), [634, 380], 32);
        assert_eq!(
            odd,
            CropRect {
                x: 576,
                y: 0,
                width: 58,
                height: 96
            }
        );
    }

    #[test]
    fn a_crop_views_the_same_pixels_in_every_format() {
        let (w, h) = (8usize, 6usize);
        let bgr: Vec<u8> = (0..w * h * 3).map(|i| i as u8).collect();
        let c = CropRect {
            x: 2,
            y: 2,
            width: 4,
            height: 2,
        };
        let v = ImageView::packed(PixelFormat::Bgr8, 8, 6, &bgr, w * 3).unwrap();
        let cv = c.view(&v).unwrap();
        assert_eq!((cv.width(), cv.height()), (4, 2));
        assert_eq!(cv.row(0, 1), &bgr[(3 * w + 2) * 3..(3 * w + 6) * 3]);
        let y: Vec<u8> = (0..w * h).map(|i| i as u8).collect();
        let u: Vec<u8> = (0..w * h / 4).map(|i| 100 + i as u8).collect();
        let i420 = ImageView::i420(
            8,
            6,
            Plane {
                data: &y,
                stride: 8,
            },
            Plane {
                data: &u,
                stride: 4,
            },
            Plane {
                data: &u,
                stride: 4,
            },
        )
        .unwrap();
        let ci = c.view(&i420).unwrap();
        assert_eq!(ci.row(0, 0), &y[18..22]);
        assert_eq!(ci.row(1, 0), &u[5..7]);
        let uv: Vec<u8> = (0..w * h / 2).map(|i| 50 + i as u8).collect();
        let nv12 = ImageView::nv12(
            8,
            6,
            Plane {
                data: &y,
                stride: 8,
            },
            Plane {
                data: &uv,
                stride: 8,
            },
        )
        .unwrap();
        let cn = c.view(&nv12).unwrap();
        assert_eq!(cn.row(1, 0), &uv[10..14]);
    }

    #[test]
    fn follow_scans_every_k_frames_and_looks_around_the_heads_in_between() {
        let area = CropRect {
            x: 256,
            y: 0,
            width: 352,
            height: 384,
        };
        let mut f = Follow::new(3, 16.0);
        let head = BBox::new(300.0, 60.0, 340.0, 100.0);
        let far = BBox::new(10.0, 60.0, 40.0, 100.0); // outside the area: not followed
        assert_eq!(
            f.plan(&area, &[head], [640, 384], 32),
            Look::Scan,
            "first frame"
        );
        // 284..356 x 44..116, aligned to 32 and clipped to the area.
        let around = CropRect {
            x: 256,
            y: 32,
            width: 128,
            height: 96,
        };
        assert_eq!(
            f.plan(&area, &[head, far], [640, 384], 32),
            Look::Around(around)
        );
        assert_eq!(f.plan(&area, &[far], [640, 384], 32), Look::Nothing);
        assert_eq!(
            f.plan(&area, &[], [640, 384], 32),
            Look::Scan,
            "every third frame"
        );
        // Two heads: one rectangle around both.
        let other = BBox::new(500.0, 200.0, 530.0, 230.0);
        match f.plan(&area, &[head, other], [640, 384], 32) {
            Look::Around(c) => assert_eq!(
                (c.x, c.y, c.x + c.width, c.y + c.height),
                (256, 32, 576, 256)
            ),
            l => panic!("{l:?}"),
        }
        // Scanning every frame is the ROI crop alone.
        let mut every = Follow::new(1, 16.0);
        assert!((0..4).all(|_| every.plan(&area, &[head], [640, 384], 32) == Look::Scan));
    }

    #[test]
    fn the_gate_holds_for_k_frames_after_motion() {
        let mut g = MotionGate::new(0.01, 2);
        // Warm-up: the first `hold` frames run.
        assert_eq!(
            [g.observe(0.0), g.observe(0.0), g.observe(0.0)],
            [true, true, false]
        );
        assert!(g.observe(0.05), "motion");
        assert!(g.observe(0.0) && g.observe(0.009), "hangover of 2");
        assert!(!g.observe(0.0) && !g.observe(0.0), "then skipped");
        assert!(g.observe(0.01), "at the threshold counts");
        let mut none = MotionGate::new(0.01, 0);
        assert!(!none.observe(0.0) && none.observe(0.5) && !none.observe(0.0));
    }
}
