//! Pixel work beyond photos: converting frames (I420/NV12/RGB) to BGR, cropping, resizing, pasting, and
//! drawing lines, polygons, filled shapes and text, for `config draw`, synthetic scenes and evidence.

use opencv::core::{Mat, Point, Rect, Scalar, Size, Vector};
use opencv::imgproc;
use opencv::prelude::*;
use roadwarden_types::{BBox, ImageView, PixelFormat};

use crate::{BgrImage, ImagingError};

fn scalar(c: [u8; 3]) -> Scalar {
    Scalar::new(c[0] as f64, c[1] as f64, c[2] as f64, 0.0)
}

fn clamp_u8(v: f32) -> u8 {
    v.round().clamp(0.0, 255.0) as u8
}

/// BT.601 limited-range YUV to B, G, R.
fn yuv_to_bgr(y: u8, u: u8, v: u8) -> [u8; 3] {
    let c = 1.164 * (y as f32 - 16.0);
    let (d, e) = (u as f32 - 128.0, v as f32 - 128.0);
    [
        clamp_u8(c + 2.017 * d),
        clamp_u8(c - 0.392 * d - 0.813 * e),
        clamp_u8(c + 1.596 * e),
    ]
}

/// The BGR pixels of `rect` (x, y, w, h; already inside the image) of any view, packed.
pub(crate) fn view_region_bgr(
    image: &ImageView<'_>,
    x0: usize,
    y0: usize,
    w: usize,
    h: usize,
) -> Vec<u8> {
    let mut out = Vec::with_capacity(w * h * 3);
    for y in y0..y0 + h {
        match image.format() {
            PixelFormat::Bgr8 => out.extend_from_slice(&image.row(0, y)[3 * x0..3 * (x0 + w)]),
            PixelFormat::Rgb8 => {
                for px in image.row(0, y)[3 * x0..3 * (x0 + w)].chunks_exact(3) {
                    out.extend_from_slice(&[px[2], px[1], px[0]]);
                }
            }
            PixelFormat::I420 => {
                let (yr, ur, vr) = (image.row(0, y), image.row(1, y / 2), image.row(2, y / 2));
                for x in x0..x0 + w {
                    out.extend_from_slice(&yuv_to_bgr(yr[x], ur[x / 2], vr[x / 2]));
                }
            }
            PixelFormat::Nv12 => {
                let (yr, uv) = (image.row(0, y), image.row(1, y / 2));
                for x in x0..x0 + w {
                    out.extend_from_slice(&yuv_to_bgr(yr[x], uv[x / 2 * 2], uv[x / 2 * 2 + 1]));
                }
            }
        }
    }
    out
}

/// `b` rounded and clipped to a `width` x `height` image: (x, y, w, h), or `None` when nothing is left.
pub(crate) fn pixel_rect(
    b: &BBox,
    width: u32,
    height: u32,
) -> Option<(usize, usize, usize, usize)> {
    let c = b.clip(width as f32, height as f32);
    let (x1, y1) = (c.x1.floor() as usize, c.y1.floor() as usize);
    let (x2, y2) = (c.x2.ceil() as usize, c.y2.ceil() as usize);
    (x2 > x1 && y2 > y1).then_some((x1, y1, x2 - x1, y2 - y1))
}

impl BgrImage {
    /// A solid image.
    pub fn filled(width: u32, height: u32, color: [u8; 3]) -> Result<BgrImage, ImagingError> {
        let data: Vec<u8> = std::iter::repeat_n(color, (width * height) as usize)
            .flatten()
            .collect();
        BgrImage::from_bgr(width, height, &data)
    }

    /// The packed BGR bytes, `3 * width` a row.
    pub fn to_bgr_bytes(&self) -> Vec<u8> {
        let v = self.view();
        (0..self.height() as usize)
            .flat_map(|y| v.row(0, y).to_vec())
            .collect()
    }

    /// A copy of the part of the image inside `b` (clipped to the image).
    pub fn crop(&self, b: &BBox) -> Result<BgrImage, ImagingError> {
        let (x, y, w, h) = pixel_rect(b, self.width(), self.height())
            .ok_or_else(|| ImagingError::OpenCv(format!("crop {b:?} is outside the image")))?;
        let roi = Mat::roi(&self.mat, Rect::new(x as i32, y as i32, w as i32, h as i32))?;
        Ok(BgrImage {
            mat: roi.try_clone()?,
        })
    }

    /// A resized copy (area averaging when shrinking, linear when enlarging).
    pub fn resized(&self, width: u32, height: u32) -> Result<BgrImage, ImagingError> {
        let mut out = Mat::default();
        let shrink = width < self.width() || height < self.height();
        let interp = if shrink {
            imgproc::INTER_AREA
        } else {
            imgproc::INTER_LINEAR
        };
        imgproc::resize(
            &self.mat,
            &mut out,
            Size::new(width as i32, height as i32),
            0.0,
            0.0,
            interp,
        )?;
        Ok(BgrImage { mat: out })
    }

    /// Copies `src` with its top-left corner at (`x`, `y`); whatever falls outside is cut off.
    pub fn paste(&mut self, src: &BgrImage, x: i32, y: i32) -> Result<(), ImagingError> {
        let (w, h) = (self.width() as i32, self.height() as i32);
        let (sx0, sy0) = ((-x).max(0), (-y).max(0));
        let (dx0, dy0) = (x.max(0), y.max(0));
        let cw = (src.width() as i32 - sx0).min(w - dx0);
        let ch = (src.height() as i32 - sy0).min(h - dy0);
        if cw <= 0 || ch <= 0 {
            return Ok(());
        }
        let part = Mat::roi(&src.mat, Rect::new(sx0, sy0, cw, ch))?;
        let mut dst = Mat::roi_mut(&mut self.mat, Rect::new(dx0, dy0, cw, ch))?;
        part.copy_to(&mut dst)?;
        Ok(())
    }

    pub fn draw_line(
        &mut self,
        a: (f32, f32),
        b: (f32, f32),
        color: [u8; 3],
        thickness: i32,
    ) -> Result<(), ImagingError> {
        imgproc::line(
            &mut self.mat,
            Point::new(a.0.round() as i32, a.1.round() as i32),
            Point::new(b.0.round() as i32, b.1.round() as i32),
            scalar(color),
            thickness.max(1),
            imgproc::LINE_AA,
            0,
        )?;
        Ok(())
    }

    /// A closed outline through `points`.
    pub fn draw_polygon(
        &mut self,
        points: &[(f32, f32)],
        color: [u8; 3],
        thickness: i32,
    ) -> Result<(), ImagingError> {
        let pts: Vector<Point> = points
            .iter()
            .map(|p| Point::new(p.0.round() as i32, p.1.round() as i32))
            .collect();
        let mut all = Vector::<Vector<Point>>::new();
        all.push(pts);
        imgproc::polylines(
            &mut self.mat,
            &all,
            true,
            scalar(color),
            thickness.max(1),
            imgproc::LINE_AA,
            0,
        )?;
        Ok(())
    }

    pub fn fill_rect(&mut self, b: &BBox, color: [u8; 3]) -> Result<(), ImagingError> {
        let rect = Rect::new(
            b.x1.round() as i32,
            b.y1.round() as i32,
            (b.width().round() as i32).max(1),
            (b.height().round() as i32).max(1),
        );
        imgproc::rectangle(
            &mut self.mat,
            rect,
            scalar(color),
            imgproc::FILLED,
            imgproc::LINE_8,
            0,
        )?;
        Ok(())
    }

    /// A filled disc with a soft glow of `glow` pixels around it (a lit lamp), or without glow.
    pub fn fill_circle(
        &mut self,
        centre: (f32, f32),
        radius: f32,
        color: [u8; 3],
    ) -> Result<(), ImagingError> {
        imgproc::circle(
            &mut self.mat,
            Point::new(centre.0.round() as i32, centre.1.round() as i32),
            radius.round().max(1.0) as i32,
            scalar(color),
            imgproc::FILLED,
            imgproc::LINE_AA,
            0,
        )?;
        Ok(())
    }

    /// Text with its baseline-left corner at `at`.
    pub fn put_text(
        &mut self,
        text: &str,
        at: (f32, f32),
        scale: f64,
        color: [u8; 3],
    ) -> Result<(), ImagingError> {
        imgproc::put_text(
            &mut self.mat,
            text,
            Point::new(at.0.round() as i32, at.1.round() as i32),
            imgproc::FONT_HERSHEY_SIMPLEX,
            scale,
            scalar(color),
            1,
            imgproc::LINE_AA,
            false,
        )?;
        Ok(())
    }

    /// Draws `b`'s outline with `label` beside it, the label kept whole inside the image: right of the
    /// box where there is room, else left of it, else above or below; vertically centred on the box and
    /// clamped to the image (a signal head at the frame's edge keeps its labels readable). `scale` is the
    /// font scale (0.35 suits lamp boxes of 10-20 px).
    pub fn draw_box_label_inside(
        &mut self,
        b: &BBox,
        label: &str,
        color: [u8; 3],
        scale: f64,
    ) -> Result<(), ImagingError> {
        let (iw, ih) = (self.width() as i32, self.height() as i32);
        let rect = Rect::new(
            b.x1.round() as i32,
            b.y1.round() as i32,
            (b.width().round() as i32).max(1),
            (b.height().round() as i32).max(1),
        );
        imgproc::rectangle(&mut self.mat, rect, scalar(color), 1, imgproc::LINE_8, 0)?;
        if label.is_empty() {
            return Ok(());
        }
        let mut baseline = 0;
        let size = imgproc::get_text_size(
            label,
            imgproc::FONT_HERSHEY_SIMPLEX,
            scale,
            1,
            &mut baseline,
        )?;
        let (lw, lh) = (size.width + 4, size.height + baseline + 3);
        let cy = rect.y + rect.height / 2 - lh / 2;
        let (x, y) = if rect.x + rect.width + 2 + lw <= iw {
            (rect.x + rect.width + 2, cy)
        } else if rect.x - 2 - lw >= 0 {
            (rect.x - 2 - lw, cy)
        } else if rect.y - 2 - lh >= 0 {
            (rect.x, rect.y - 2 - lh)
        } else {
            (rect.x, rect.y + rect.height + 2)
        };
        let x = x.clamp(0, (iw - lw).max(0));
        let y = y.clamp(0, (ih - lh).max(0));
        imgproc::rectangle(
            &mut self.mat,
            Rect::new(x, y, lw, lh),
            scalar(color),
            imgproc::FILLED,
            imgproc::LINE_8,
            0,
        )?;
        // Dark text on a light label, white on a dark one.
        let luma = 0.114 * color[0] as f32 + 0.587 * color[1] as f32 + 0.299 * color[2] as f32;
        let ink = if luma > 140.0 {
            [0, 0, 0]
        } else {
            [255, 255, 255]
        };
        imgproc::put_text(
            &mut self.mat,
            label,
            Point::new(x + 2, y + size.height + 1),
            imgproc::FONT_HERSHEY_SIMPLEX,
            scale,
            scalar(ink),
            1,
            imgproc::LINE_AA,
            false,
        )?;
        Ok(())
    }

    /// Blurs the image in place with a Gaussian of `sigma` pixels (softens pasted edges, lamp glow).
    pub fn blur_region(&mut self, b: &BBox, sigma: f64) -> Result<(), ImagingError> {
        let Some((x, y, w, h)) = pixel_rect(b, self.width(), self.height()) else {
            return Ok(());
        };
        let rect = Rect::new(x as i32, y as i32, w as i32, h as i32);
        let src = Mat::roi(&self.mat, rect)?.try_clone()?;
        let mut dst = Mat::roi_mut(&mut self.mat, rect)?;
        imgproc::gaussian_blur_def(&src, &mut dst, Size::new(0, 0), sigma)?;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn paste_crop_and_resize() {
        let mut bg = BgrImage::filled(20, 10, [0, 0, 0]).unwrap();
        let fg = BgrImage::filled(4, 4, [10, 20, 30]).unwrap();
        bg.paste(&fg, 18, -2).unwrap();
        let v = bg.view();
        assert_eq!(&v.row(0, 0)[3 * 18..3 * 19], &[10, 20, 30]);
        assert_eq!(&v.row(0, 3)[3 * 18..3 * 19], &[0, 0, 0]);
        let c = bg.crop(&BBox::new(18.0, 0.0, 20.0, 2.0)).unwrap();
        assert_eq!((c.width(), c.height()), (2, 2));
        assert_eq!(c.resized(8, 6).unwrap().width(), 8);
    }

    #[test]
    fn a_label_at_the_right_edge_stays_inside_the_image() {
        let mut img = BgrImage::filled(100, 40, [0, 0, 0]).unwrap();
        img.draw_box_label_inside(
            &BBox::new(88.0, 10.0, 98.0, 22.0),
            "amber 120 lit",
            [0, 255, 255],
            0.35,
        )
        .unwrap();
        let v = img.view();
        let lit = |x: usize| (0..40).any(|y| v.row(0, y)[3 * x..3 * x + 3] != [0, 0, 0]);
        // The label went left of the box, whole: something drawn from x = 20 up to the box.
        let drawn: Vec<usize> = (0..100).filter(|&x| lit(x)).collect();
        assert!(drawn.first().is_some_and(|&x| x > 0 && x < 60), "{drawn:?}");
        assert!((60..86).all(lit) && !lit(87), "{drawn:?}");
    }

    #[test]
    fn i420_grey_converts_to_grey() {
        let y = vec![126u8; 16];
        let c = vec![128u8; 4];
        fn p(data: &[u8], stride: usize) -> roadwarden_types::Plane<'_> {
            roadwarden_types::Plane { data, stride }
        }
        let v = ImageView::i420(4, 4, p(&y, 4), p(&c, 2), p(&c, 2)).unwrap();
        let img = BgrImage::from_view(&v).unwrap();
        let px = &img.view().row(0, 1)[..3];
        assert!(px.iter().all(|&b| (127..=128).contains(&b)), "{px:?}");
    }
}
