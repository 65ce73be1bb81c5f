//! Running a model on regions of a frame (two-stage inference): each region is cut from the frame
//! without copying ([`Region::view`]), letterboxed (upscaled) into one common square input, all regions
//! run as one ONNX Runtime batch where the model's batch dimension is dynamic (one run per region where
//! it is fixed at 1), and the boxes come back in frame pixels.

use roadwarden_types::{BBox, Detection, ImageError, ImageView, PixelFormat, Plane};

use crate::InferError;
use crate::detector::{DetectOptions, Detector};
use crate::preprocess::Letterbox;

/// A rectangle of a frame in whole pixels, its corners on even coordinates (so an I420/NV12 crop keeps
/// its chroma aligned) and inside the frame.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Region {
    pub x: u32,
    pub y: u32,
    pub width: u32,
    pub height: u32,
}

impl Region {
    /// The even-aligned rectangle that holds `b` (grown outward to even pixels), clipped to a
    /// `frame_width` x `frame_height` frame; `None` when less than 2x2 pixels of it are inside.
    pub fn around(b: &BBox, frame_width: u32, frame_height: u32) -> Option<Region> {
        let (fw, fh) = (frame_width & !1, frame_height & !1);
        if !(b.x1.is_finite() && b.y1.is_finite() && b.x2.is_finite() && b.y2.is_finite()) {
            return None;
        }
        let lo = |v: f32, max: u32| ((v.max(0.0).floor() as u32) & !1).min(max);
        let hi = |v: f32, max: u32| ((v.max(0.0).ceil() as u32).next_multiple_of(2)).min(max);
        let (x1, y1) = (lo(b.x1, fw), lo(b.y1, fh));
        let (x2, y2) = (hi(b.x2, fw), hi(b.y2, fh));
        (x2 >= x1 + 2 && y2 >= y1 + 2).then_some(Region {
            x: x1,
            y: y1,
            width: x2 - x1,
            height: y2 - y1,
        })
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

    /// A box in this region's pixels, in frame pixels.
    pub fn to_frame(&self, b: &BBox) -> BBox {
        let (dx, dy) = (self.x as f32, self.y as f32);
        BBox::new(b.x1 + dx, b.y1 + dy, b.x2 + dx, b.y2 + dy)
    }

    /// Whether a box (in this region's pixels) reaches within `edge` pixels of a side of the region
    /// that is not a side of the frame: the object is cut by the crop.
    pub fn cuts(&self, b: &BBox, frame_width: u32, frame_height: u32, edge: f32) -> bool {
        let (w, h) = (self.width as f32, self.height as f32);
        (self.x > 0 && b.x1 < edge)
            || (self.y > 0 && b.y1 < edge)
            || (self.x + self.width < frame_width & !1 && b.x2 > w - edge)
            || (self.y + self.height < frame_height & !1 && b.y2 > h - edge)
    }
}

impl Detector {
    /// Detects in each of `regions` of `image`: every region is letterboxed into a `side` x `side`
    /// input (upscaled when it is smaller; models with a fixed input size use theirs and ignore
    /// `side`), all regions run as one batch when the model's batch dimension is dynamic, in sequence
    /// otherwise ([`Detector::has_dynamic_batch`]). Boxes are in frame pixels, clipped to the region.
    /// `opts.shape` is not used: the input is always the square.
    pub fn detect_regions(
        &mut self,
        image: &ImageView<'_>,
        regions: &[Region],
        side: u32,
        opts: &DetectOptions,
    ) -> Result<Vec<Vec<Detection>>, InferError> {
        let views = regions
            .iter()
            .map(|r| r.view(image))
            .collect::<Result<Vec<_>, _>>()?;
        let boxes: Vec<Letterbox> = views
            .iter()
            .map(|v| self.square_letterbox(v.width(), v.height(), side))
            .collect();
        let mut out = self.detect_letterboxed(&views, &boxes, opts)?;
        for (dets, r) in out.iter_mut().zip(regions) {
            for d in dets.iter_mut() {
                d.bbox = r.to_frame(&d.bbox);
            }
        }
        Ok(out)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn regions_grow_to_even_pixels_and_stay_in_the_frame() {
        let r = Region::around(&BBox::new(10.5, 21.2, 40.1, 60.0), 640, 480).unwrap();
        assert_eq!(
            r,
            Region {
                x: 10,
                y: 20,
                width: 32,
                height: 40
            }
        );
        let r = Region::around(&BBox::new(-20.0, -5.0, 700.0, 500.0), 641, 481).unwrap();
        assert_eq!((r.x, r.y, r.width, r.height), (0, 0, 640, 480));
        assert_eq!(
            Region::around(&BBox::new(700.0, 10.0, 760.0, 40.0), 640, 480),
            None
        );
        assert_eq!(
            Region::around(&BBox::new(f32::NAN, 10.0, 60.0, 40.0), 640, 480),
            None
        );
    }

    #[test]
    fn a_region_views_the_same_pixels_in_every_format() {
        let (w, h) = (8u32, 6u32);
        let bgr: Vec<u8> = (0..(w * h * 3) as usize).map(|i| i as u8).collect();
        let image = ImageView::packed(PixelFormat::Bgr8, w, h, &bgr, 3 * w as usize).unwrap();
        let r = Region {
            x: 2,
            y: 2,
            width: 4,
            height: 2,
        };
        let v = r.view(&image).unwrap();
        assert_eq!((v.width(), v.height()), (4, 2));
        assert_eq!(v.row(0, 0), &bgr[(2 * 24 + 6)..(2 * 24 + 18)]);
        assert_eq!(v.row(0, 1)[0], bgr[3 * 24 + 6]);

        let y: Vec<u8> = (0..48).collect();
        let u: Vec<u8> = (100..112).collect();
        let vv: Vec<u8> = (200..212).collect();
        let i420 = ImageView::i420(
            w,
            h,
            Plane {
                data: &y,
                stride: 8,
            },
            Plane {
                data: &u,
                stride: 4,
            },
            Plane {
                data: &vv,
                stride: 4,
            },
        )
        .unwrap();
        let c = r.view(&i420).unwrap();
        assert_eq!(c.row(0, 0), &y[18..22]);
        assert_eq!(c.row(1, 0), &u[5..7]);
        assert_eq!(c.row(2, 0), &vv[5..7]);

        let uv: Vec<u8> = (100..124).collect();
        let nv12 = ImageView::nv12(
            w,
            h,
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
        let c = r.view(&nv12).unwrap();
        assert_eq!(c.row(1, 0), &uv[10..14]);
    }

    #[test]
    fn boxes_map_back_and_cut_objects_are_told() {
        let r = Region {
            x: 100,
            y: 50,
            width: 60,
            height: 80,
        };
        assert_eq!(
            r.to_frame(&BBox::new(1.0, 2.0, 11.0, 22.0)),
            BBox::new(101.0, 52.0, 111.0, 72.0)
        );
        // Touching the left side of a region that starts inside the frame: cut.
        assert!(r.cuts(&BBox::new(0.0, 10.0, 10.0, 20.0), 640, 480, 1.0));
        assert!(!r.cuts(&BBox::new(5.0, 10.0, 15.0, 20.0), 640, 480, 1.0));
        // A region at the frame's top-left corner: its left and top sides are the frame's.
        let corner = Region {
            x: 0,
            y: 0,
            width: 60,
            height: 80,
        };
        assert!(!corner.cuts(&BBox::new(0.0, 0.0, 10.0, 20.0), 640, 480, 1.0));
        assert!(corner.cuts(&BBox::new(10.0, 10.0, 60.0, 20.0), 640, 480, 1.0));
    }
}
