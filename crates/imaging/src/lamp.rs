//! Signal lamps: the level of one lamp's box ([`lamp_level`], for heads configured one box per lamp;
//! which lamp is lit is judged from these levels by `roadwarden_rules::LampHead`), and the older
//! single-ROI colour classifier ([`LampClassifier`], the fallback for heads configured as one box).
//!
//! [`LampClassifier`]: the ROI is converted to HSV (OpenCV). Brightness is normalised to the ROI's brightest pixel: a pixel is
//! part of a lit lamp when its value is at least [`LampClassifier::lit_fraction`] of that peak and it is
//! saturated; lit pixels vote by hue for red, amber or green. A dark ROI (peak below
//! [`LampClassifier::min_peak`]), too few lit pixels, or no clear winner reads as `unknown`.

use opencv::core::Mat;
use opencv::imgproc;
use opencv::prelude::*;
use roadwarden_types::{BBox, ImageView, SignalState};

use crate::canvas::{pixel_rect, view_region_bgr};
use crate::{BgrImage, ImagingError};

/// The level of one lamp's box in one frame.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct LampLevel {
    /// Mean colourfulness of the box's pixels, `max(B, G, R) - min(B, G, R)` (HSV saturation times
    /// value), 0..255: high on a lit coloured lamp, low on an unlit lens, on a grey housing and on a white
    /// sky, wall or glare behind the head.
    pub level: f32,
    /// Mean HSV value (brightness), 0..255, for the log.
    pub value: f32,
}

/// The level of the lamp whose lens `roi` covers, in `image` (any pixel format). The box should sit on the
/// lens; what else it holds adds the same in every frame, which the judging (each lamp against its own
/// unlit level) takes out.
pub fn lamp_level(image: &ImageView<'_>, roi: &BBox) -> Result<LampLevel, ImagingError> {
    let (x, y, w, h) = pixel_rect(roi, image.width(), image.height())
        .ok_or_else(|| ImagingError::OpenCv(format!("lamp box {roi:?} is outside the frame")))?;
    let px = view_region_bgr(image, x, y, w, h);
    let (mut chroma, mut value) = (0u64, 0u64);
    for p in px.chunks_exact(3) {
        let hi = p[0].max(p[1]).max(p[2]);
        let lo = p[0].min(p[1]).min(p[2]);
        chroma += (hi - lo) as u64;
        value += hi as u64;
    }
    let n = (w * h).max(1) as f32;
    Ok(LampLevel {
        level: chroma as f32 / n,
        value: value as f32 / n,
    })
}

/// One reading of one ROI.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct LampReading {
    pub state: SignalState,
    /// Lit pixels of each colour, as fractions of the ROI.
    pub red: f32,
    pub amber: f32,
    pub green: f32,
    /// The ROI's brightest value (HSV V, 0..255).
    pub peak: u8,
}

/// The classifier's parameters.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct LampClassifier {
    /// Below this peak brightness the head is dark: `unknown`.
    pub min_peak: u8,
    /// A lit pixel is at least this fraction of the ROI's peak brightness.
    pub lit_fraction: f32,
    /// ... and at least this saturated (0..255).
    pub min_saturation: u8,
    /// The winning colour must cover at least this fraction of the ROI ...
    pub min_area: f32,
    /// ... and outnumber the runner-up by this factor.
    pub dominance: f32,
    /// Hues (OpenCV, 0..180) up to this, and from 160 up, are red. An over-exposed red lamp's glow turns
    /// orange (hue 8..12) around its white core; amber lamps sit at 15..25.
    pub red_max_hue: u8,
    /// Hues above `red_max_hue` up to this are amber; 40..100 is green.
    pub amber_max_hue: u8,
}

impl Default for LampClassifier {
    fn default() -> Self {
        LampClassifier {
            min_peak: 110,
            lit_fraction: 0.6,
            min_saturation: 120,
            min_area: 0.01,
            dominance: 2.0,
            red_max_hue: 12,
            amber_max_hue: 33,
        }
    }
}

impl LampClassifier {
    /// Reads the lamp in `roi` of `image` (any pixel format).
    pub fn classify(&self, image: &ImageView<'_>, roi: &BBox) -> Result<LampReading, ImagingError> {
        let (x, y, w, h) = pixel_rect(roi, image.width(), image.height()).ok_or_else(|| {
            ImagingError::OpenCv(format!("signal ROI {roi:?} is outside the frame"))
        })?;
        let bgr = BgrImage::from_bgr(w as u32, h as u32, &view_region_bgr(image, x, y, w, h))?;
        let mut hsv = Mat::default();
        imgproc::cvt_color_def(&bgr.mat, &mut hsv, imgproc::COLOR_BGR2HSV)?;
        let data = hsv.data_bytes()?;
        let peak = data.chunks_exact(3).map(|p| p[2]).max().unwrap_or(0);
        let total = (w * h) as f32;
        let mut reading = LampReading {
            state: SignalState::Unknown,
            red: 0.0,
            amber: 0.0,
            green: 0.0,
            peak,
        };
        if peak < self.min_peak {
            return Ok(reading);
        }
        let lit = (self.lit_fraction * peak as f32).max(self.min_peak as f32 * 0.8);
        let (mut r, mut a, mut g) = (0u32, 0u32, 0u32);
        for p in data.chunks_exact(3) {
            let (hue, sat, val) = (p[0], p[1], p[2]);
            if (val as f32) < lit || sat < self.min_saturation {
                continue;
            }
            // OpenCV hue is 0..180.
            match hue {
                h if h <= self.red_max_hue || h >= 160 => r += 1,
                h if h <= self.amber_max_hue => a += 1,
                40..=100 => g += 1,
                _ => {}
            }
        }
        reading.red = r as f32 / total;
        reading.amber = a as f32 / total;
        reading.green = g as f32 / total;
        let mut votes = [
            (SignalState::Red, r),
            (SignalState::Amber, a),
            (SignalState::Green, g),
        ];
        votes.sort_by_key(|v| std::cmp::Reverse(v.1));
        let (best, n) = votes[0];
        let runner = votes[1].1;
        if n as f32 >= (self.min_area * total).max(3.0)
            && n as f32 >= self.dominance * runner as f32
        {
            reading.state = best;
        }
        Ok(reading)
    }

    /// Reads every ROI; they must agree, else `unknown`.
    pub fn classify_all(
        &self,
        image: &ImageView<'_>,
        rois: &[BBox],
    ) -> Result<SignalState, ImagingError> {
        let mut state = None;
        for roi in rois {
            let s = self.classify(image, roi)?.state;
            match state {
                None => state = Some(s),
                Some(prev) if prev != s => return Ok(SignalState::Unknown),
                _ => {}
            }
        }
        Ok(state.unwrap_or(SignalState::Unknown))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_lit_lamp_has_a_higher_level_than_grey_or_white_around_it() {
        let mut img = BgrImage::filled(60, 20, [245, 245, 240]).unwrap();
        img.fill_rect(&BBox::new(0.0, 0.0, 20.0, 20.0), [40, 40, 40])
            .unwrap();
        img.fill_rect(&BBox::new(20.0, 0.0, 40.0, 20.0), [30, 90, 200])
            .unwrap();
        let level = |x: f32| {
            lamp_level(&img.view(), &BBox::new(x, 0.0, x + 20.0, 20.0))
                .unwrap()
                .level
        };
        let (dark, lit, sky) = (level(0.0), level(20.0), level(40.0));
        assert!(
            dark < 1.0 && sky < 6.0 && (lit - 170.0).abs() < 1.0,
            "{dark} {lit} {sky}"
        );
        assert!(lamp_level(&img.view(), &BBox::new(70.0, 0.0, 80.0, 5.0)).is_err());
    }
}
