//! The burned-in evidence overlay: the offender's boxes, the stop line, the
//! signal state, the camera's name, the time to the millisecond and the
//! violation id, drawn into the pixels of an evidence photo.

use opencv::core::{Point, Rect, Scalar};
use opencv::imgproc;
use opencv::prelude::*;
use roadwarden_types::{BBox, SignalState};

use crate::{BgrImage, ImagingError};

/// Everything an evidence photo's overlay shows. Texts come preformatted
/// (the caller owns time zones and formats).
#[derive(Debug, Clone, PartialEq)]
pub struct EvidenceOverlay {
    /// Boxes with their labels (`"Without Helmet 0.91"`).
    pub boxes: Vec<(BBox, String)>,
    /// The stop line, two points in frame pixels.
    pub stop_line: Option<[(f32, f32); 2]>,
    /// The signal state at this frame, if the case involves one.
    pub signal: Option<SignalState>,
    /// What happened (`"RED LIGHT"`, `"NO HELMET"`) and the frame's role.
    pub title: String,
    pub camera: String,
    /// The frame's time, to the millisecond (`"2024-05-01 08:00:00.123 UTC"`).
    pub time: String,
    pub violation_id: String,
}

fn signal_text(s: SignalState) -> (&'static str, [u8; 3]) {
    match s {
        SignalState::Red => ("SIGNAL RED", [0, 0, 255]),
        SignalState::Amber => ("SIGNAL AMBER", [0, 191, 255]),
        SignalState::Green => ("SIGNAL GREEN", [0, 200, 0]),
        SignalState::Unknown => ("SIGNAL UNKNOWN", [200, 200, 200]),
    }
}

fn scalar(c: [u8; 3]) -> Scalar {
    Scalar::new(c[0] as f64, c[1] as f64, c[2] as f64, 0.0)
}

impl BgrImage {
    /// A deep copy (the unmarked frame stays as it was while the copy gets the overlay).
    pub fn try_clone(&self) -> Result<BgrImage, ImagingError> {
        Ok(BgrImage {
            mat: self.mat.try_clone()?,
        })
    }

    /// Burns `o` into the image: boxes and stop line in place, and a black
    /// band across the top with the texts.
    pub fn burn_overlay(&mut self, o: &EvidenceOverlay) -> Result<(), ImagingError> {
        let (w, h) = (self.width() as i32, self.height() as i32);
        let thickness = ((w.max(h) as f32 / 400.0).ceil() as i32).max(1);
        for (b, label) in &o.boxes {
            self.draw_box(b, label, [0, 0, 255])?;
        }
        if let Some([a, b]) = o.stop_line {
            imgproc::line(
                &mut self.mat,
                Point::new(a.0.round() as i32, a.1.round() as i32),
                Point::new(b.0.round() as i32, b.1.round() as i32),
                scalar([255, 255, 255]),
                thickness + 1,
                imgproc::LINE_8,
                0,
            )?;
        }
        let mut lines: Vec<(String, [u8; 3])> =
            vec![(format!("{}  {}", o.title, o.camera), [255, 255, 255])];
        lines.push((o.time.clone(), [255, 255, 255]));
        if let Some(s) = o.signal {
            let (t, c) = signal_text(s);
            lines.push((t.to_owned(), c));
        }
        lines.push((format!("ID {}", o.violation_id), [255, 255, 255]));
        let scale = (w as f64 / 1400.0).clamp(0.3, 1.5);
        let mut baseline = 0;
        let line_h =
            imgproc::get_text_size("Ag", imgproc::FONT_HERSHEY_SIMPLEX, scale, 1, &mut baseline)?
                .height
                + baseline
                + 4;
        let band = (line_h * lines.len() as i32 + 4).min(h);
        imgproc::rectangle(
            &mut self.mat,
            Rect::new(0, 0, w, band),
            scalar([0, 0, 0]),
            imgproc::FILLED,
            imgproc::LINE_8,
            0,
        )?;
        for (i, (text, color)) in lines.iter().enumerate() {
            imgproc::put_text(
                &mut self.mat,
                text,
                Point::new(4, line_h * (i as i32 + 1) - baseline),
                imgproc::FONT_HERSHEY_SIMPLEX,
                scale,
                scalar(*color),
                1,
                imgproc::LINE_AA,
                false,
            )?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn overlay_marks_the_copy_and_leaves_the_original() {
        let raw = BgrImage::from_bgr(320, 240, &vec![90u8; 320 * 240 * 3]).unwrap();
        let mut marked = raw.try_clone().unwrap();
        marked
            .burn_overlay(&EvidenceOverlay {
                boxes: vec![(
                    BBox::new(100.0, 100.0, 160.0, 200.0),
                    "Without Helmet 0.90".into(),
                )],
                stop_line: Some([(0.0, 220.0), (319.0, 220.0)]),
                signal: Some(SignalState::Red),
                title: "RED LIGHT".into(),
                camera: "gate-north".into(),
                time: "2024-05-01 08:00:00.123 UTC".into(),
                violation_id: "0190f0e0-0000-7000-8000-000000000000".into(),
            })
            .unwrap();
        assert!(
            raw.view().row(0, 2).iter().all(|&b| b == 90),
            "original untouched"
        );
        assert_eq!(
            &marked.view().row(0, 2)[..3],
            &[0, 0, 0],
            "text band at the top"
        );
        assert_eq!(
            &marked.view().row(0, 220)[150..153],
            &[255, 255, 255],
            "stop line"
        );
        assert_eq!(
            &marked.view().row(0, 150)[300..303],
            &[0, 0, 255],
            "box edge"
        );
    }
}
