//! Motion in a region of a camera's frames: OpenCV's MOG2 background subtractor on a downscaled grey copy
//! of each frame, counted inside a mask (the caller's rule region, rasterised by the caller at the
//! downscaled size). Used to skip inference while nothing moves where the rules look.

use opencv::core::{Mat, Size};
use opencv::imgproc;
use opencv::prelude::*;
use opencv::video;
use roadwarden_types::{ImageView, PixelFormat};

use crate::ImagingError;

/// MOG2's parameters, as OpenCV names them.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct MotionParams {
    /// Frames of history the background model adapts over.
    pub history: u32,
    /// Squared Mahalanobis distance above which a pixel is foreground.
    pub var_threshold: f64,
}

impl Default for MotionParams {
    fn default() -> Self {
        MotionParams {
            history: 50,
            var_threshold: 16.0,
        }
    }
}

/// One camera's background model and the mask it counts motion in.
pub struct MotionDetector {
    mog: opencv::core::Ptr<video::BackgroundSubtractorMOG2>,
    /// Downscaled size.
    width: u32,
    height: u32,
    /// `width * height` flags, row-major: pixels that count.
    mask: Vec<bool>,
    mask_pixels: usize,
    grey: Vec<u8>,
    small: Mat,
    foreground: Mat,
}

impl std::fmt::Debug for MotionDetector {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("MotionDetector")
            .field("size", &(self.width, self.height))
            .field("mask_pixels", &self.mask_pixels)
            .finish()
    }
}

impl MotionDetector {
    /// A detector that downscales frames to `width` x `height` and counts foreground pixels where `mask`
    /// (row-major, `width * height` flags) is set.
    pub fn new(
        width: u32,
        height: u32,
        mask: Vec<bool>,
        params: MotionParams,
    ) -> Result<MotionDetector, ImagingError> {
        if width == 0 || height == 0 || mask.len() != (width * height) as usize {
            return Err(ImagingError::OpenCv(format!(
                "motion mask of {} flags does not fit a {width}x{height} image",
                mask.len()
            )));
        }
        let mask_pixels = mask.iter().filter(|m| **m).count();
        if mask_pixels == 0 {
            return Err(ImagingError::OpenCv(
                "motion mask is empty: the region covers no pixel".into(),
            ));
        }
        let history = i32::try_from(params.history).unwrap_or(i32::MAX).max(1);
        let mog = video::create_background_subtractor_mog2(history, params.var_threshold, false)?;
        Ok(MotionDetector {
            mog,
            width,
            height,
            mask,
            mask_pixels,
            grey: Vec::new(),
            small: Mat::default(),
            foreground: Mat::default(),
        })
    }

    /// The downscaled size.
    pub fn size(&self) -> (u32, u32) {
        (self.width, self.height)
    }

    /// Pixels of the mask.
    pub fn mask_pixels(&self) -> usize {
        self.mask_pixels
    }

    /// Feeds one frame to the background model and returns the fraction (0..1) of the mask's pixels that
    /// are foreground in it. The first frame only starts the model and reads as all foreground.
    pub fn apply(&mut self, image: &ImageView<'_>) -> Result<f32, ImagingError> {
        let (w, h) = (image.width() as usize, image.height() as usize);
        self.grey.clear();
        self.grey.reserve(w * h);
        for y in 0..h {
            let row = image.row(0, y);
            match image.format() {
                PixelFormat::I420 | PixelFormat::Nv12 => self.grey.extend_from_slice(row),
                PixelFormat::Bgr8 | PixelFormat::Rgb8 => {
                    let (r, b) = if image.format() == PixelFormat::Bgr8 {
                        (2, 0)
                    } else {
                        (0, 2)
                    };
                    self.grey.extend(row.chunks_exact(3).map(|p| {
                        ((p[r] as u32 * 77 + p[1] as u32 * 150 + p[b] as u32 * 29) >> 8) as u8
                    }));
                }
            }
        }
        let flat = Mat::from_slice(&self.grey)?;
        let grey = flat.reshape(1, h as i32)?;
        imgproc::resize(
            &grey,
            &mut self.small,
            Size::new(self.width as i32, self.height as i32),
            0.0,
            0.0,
            imgproc::INTER_AREA,
        )?;
        video::BackgroundSubtractorMOG2Trait::apply(
            &mut self.mog,
            &self.small,
            &mut self.foreground,
            -1.0,
        )?;
        let fg = self.foreground.data_bytes()?;
        if fg.len() != self.mask.len() {
            return Err(ImagingError::OpenCv(format!(
                "MOG2 returned {} mask bytes for a {}x{} image",
                fg.len(),
                self.width,
                self.height
            )));
        }
        let moving = fg
            .iter()
            .zip(&self.mask)
            .filter(|(v, m)| **m && **v > 0)
            .count();
        Ok(moving as f32 / self.mask_pixels as f32)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A 64x48 grey BGR frame with a bright 8x8 square at (x, y).
    fn frame(x: usize, y: usize) -> Vec<u8> {
        let (w, h) = (64, 48);
        let mut d = vec![60u8; w * h * 3];
        for yy in y..y + 8 {
            for xx in x..x + 8 {
                d[(yy * w + xx) * 3..(yy * w + xx) * 3 + 3].copy_from_slice(&[230, 230, 230]);
            }
        }
        d
    }

    #[test]
    fn a_moving_square_is_motion_only_inside_the_mask() {
        // Downscale 64x48 to 32x24; the mask is the right half.
        let (w, h) = (32u32, 24u32);
        let mask: Vec<bool> = (0..w * h).map(|i| i % w >= w / 2).collect();
        let mut m = MotionDetector::new(w, h, mask, MotionParams::default()).unwrap();
        assert_eq!(m.mask_pixels(), 16 * 24);
        let mut apply = |d: &[u8]| {
            m.apply(&ImageView::packed(PixelFormat::Bgr8, 64, 48, d, 64 * 3).unwrap())
                .unwrap()
        };
        assert!(
            apply(&frame(4, 20)) > 0.0,
            "the first frame is all foreground"
        );
        // Still frames with the square parked on the left: the model learns them.
        let mut last = 1.0;
        for _ in 0..30 {
            last = apply(&frame(4, 20));
        }
        assert_eq!(last, 0.0, "a still scene has no motion");
        // The square moves on the left half: outside the mask.
        assert_eq!(
            apply(&frame(16, 20)),
            0.0,
            "motion outside the mask does not count"
        );
        // It moves into the right half: inside (16 of the mask's 384 downscaled pixels, and the edges).
        let f = apply(&frame(44, 20));
        assert!(f > 0.02 && f < 0.2, "fraction {f}");
    }

    #[test]
    fn a_mask_that_does_not_fit_is_refused() {
        let err = MotionDetector::new(4, 4, vec![true; 15], MotionParams::default()).unwrap_err();
        assert!(err.to_string().contains("4x4"), "{err}");
        let err = MotionDetector::new(4, 4, vec![false; 16], MotionParams::default()).unwrap_err();
        assert!(err.to_string().contains("empty"), "{err}");
    }
}
