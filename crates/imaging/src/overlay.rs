//! The evidence photo: the camera frame with the offender's boxes (labelled with the violation kind and
//! the vehicle class) and the stop line drawn on it, under an information strip (what, where, the
//! recording's time, the analysing machine's clock when it differs, the signal state, the violation id)
//! that is added above the frame, never painted over it: the photo is taller than the frame.
//!
//! The strip's height is a multiple of [`STRIP_ALIGN`] (16 rows, the height of a JPEG 4:2:0 MCU), so the
//! frame starts on an MCU row of the photo's JPEG and every block of it that carries no drawing is coded
//! exactly as in a JPEG of the frame alone.

use opencv::core::{Point, Rect, Scalar};
use opencv::imgproc;
use opencv::prelude::*;
use roadwarden_types::{BBox, SignalState};

use crate::{BgrImage, ImagingError};

/// The strip above the frame is a whole number of these rows (a JPEG 4:2:0 MCU is 16 rows high).
pub const STRIP_ALIGN: u32 = 16;

/// Everything an evidence photo shows besides the frame. Texts come preformatted (the caller owns
/// time zones and formats).
#[derive(Debug, Clone, PartialEq)]
pub struct EvidenceOverlay {
    /// Boxes with their labels, the offender's first (`"no helmet · motorcycle"`); a `·` in a label is
    /// drawn as a dot (the built-in fonts are ASCII only).
    pub boxes: Vec<(BBox, String)>,
    /// The stop line, two points in frame pixels.
    pub stop_line: Option<[(f32, f32); 2]>,
    /// The signal state at this frame, if the case involves one.
    pub signal: Option<SignalState>,
    /// What happened (`"RED LIGHT"`, `"NO HELMET"`) and the frame's role.
    pub title: String,
    pub camera: String,
    /// The recording's time of the frame, to the millisecond (`"2024-05-01 08:00:00.123 UTC"`).
    pub time: String,
    /// The analysing machine's clock at this frame, shown beside the recording's time (set by the caller
    /// when the two differ by more than a second).
    pub clock: Option<String>,
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

const FONT: i32 = imgproc::FONT_HERSHEY_SIMPLEX;
/// The offender's box and label (B, G, R).
const OFFENDER: [u8; 3] = [0, 0, 255];
/// Any other box (the offender's vehicle).
const OTHER: [u8; 3] = [0, 165, 255];

/// A text drawn in parts split at `·`, with a dot between them: its size and how to draw it.
struct Label<'a> {
    parts: Vec<&'a str>,
    scale: f64,
    /// Width of each part, the dot's gap, the text height and baseline.
    widths: Vec<i32>,
    gap: i32,
    height: i32,
    baseline: i32,
}

impl<'a> Label<'a> {
    fn new(text: &'a str, scale: f64) -> Result<Label<'a>, ImagingError> {
        let parts: Vec<&str> = text.split('·').map(str::trim).collect();
        let mut widths = Vec::with_capacity(parts.len());
        let (mut height, mut baseline) = (0, 0);
        for p in &parts {
            let mut b = 0;
            let s = imgproc::get_text_size(p, FONT, scale, 1, &mut b)?;
            widths.push(s.width);
            height = height.max(s.height);
            baseline = baseline.max(b);
        }
        let mut b = 0;
        let gap = imgproc::get_text_size("  ", FONT, scale, 1, &mut b)?.width;
        Ok(Label {
            parts,
            scale,
            widths,
            gap,
            height,
            baseline,
        })
    }

    fn width(&self) -> i32 {
        self.widths.iter().sum::<i32>() + self.gap * (self.parts.len() as i32 - 1).max(0)
    }

    /// Draws the text with its baseline at `y`, from `x`.
    fn draw(&self, img: &mut BgrImage, x: i32, y: i32, color: [u8; 3]) -> Result<(), ImagingError> {
        let mut cx = x;
        for (i, p) in self.parts.iter().enumerate() {
            if i > 0 {
                let r = (self.height / 6).max(1);
                imgproc::circle(
                    &mut img.mat,
                    Point::new(cx + self.gap / 2, y - self.height / 2),
                    r,
                    scalar(color),
                    imgproc::FILLED,
                    imgproc::LINE_AA,
                    0,
                )?;
                cx += self.gap;
            }
            imgproc::put_text(
                &mut img.mat,
                p,
                Point::new(cx, y),
                FONT,
                self.scale,
                scalar(color),
                1,
                imgproc::LINE_AA,
                false,
            )?;
            cx += self.widths[i];
        }
        Ok(())
    }
}

/// The largest scale up to `scale` at which `text` is at most `max_w` pixels wide (never below 0.25).
fn fitting<'a>(text: &'a str, scale: f64, max_w: i32) -> Result<Label<'a>, ImagingError> {
    let mut l = Label::new(text, scale)?;
    while l.width() > max_w && l.scale > 0.25 {
        l = Label::new(text, l.scale * 0.9)?;
    }
    Ok(l)
}

impl BgrImage {
    /// A deep copy (the unmarked frame stays as it was while the copy gets the overlay).
    pub fn try_clone(&self) -> Result<BgrImage, ImagingError> {
        Ok(BgrImage {
            mat: self.mat.try_clone()?,
        })
    }

    /// Draws a box with its label, the label kept inside the image: above the box where there is room,
    /// else below it, else inside its top; moved left where it would pass the right edge, and made
    /// smaller where it is wider than the image.
    fn draw_labelled_box(
        &mut self,
        b: &BBox,
        label: &str,
        color: [u8; 3],
        thickness: i32,
    ) -> Result<(), ImagingError> {
        let (w, h) = (self.width() as i32, self.height() as i32);
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
            thickness,
            imgproc::LINE_8,
            0,
        )?;
        if label.is_empty() {
            return Ok(());
        }
        let scale = (w.max(h) as f64 / 1600.0).clamp(0.4, 1.2);
        let l = fitting(label, scale, w - 6)?;
        let (lw, lh) = (l.width() + 6, l.height + l.baseline + 6);
        let x = rect.x.clamp(0, (w - lw).max(0));
        let below = rect.y + rect.height;
        let y = if rect.y - lh >= 0 {
            rect.y - lh
        } else if below + lh <= h {
            below
        } else {
            rect.y.clamp(0, (h - lh).max(0))
        };
        imgproc::rectangle(
            &mut self.mat,
            Rect::new(x, y, lw.min(w), lh.min(h)),
            scalar(color),
            imgproc::FILLED,
            imgproc::LINE_8,
            0,
        )?;
        l.draw(self, x + 3, y + 3 + l.height, [255, 255, 255])
    }

    /// The evidence photo of this frame: the frame with `o`'s boxes and stop line drawn on it, under an
    /// information strip added above it (a multiple of [`STRIP_ALIGN`] rows high, the frame's width).
    /// The frame is not covered anywhere: the photo is `strip + frame` rows high.
    pub fn evidence_photo(&self, o: &EvidenceOverlay) -> Result<BgrImage, ImagingError> {
        let (w, h) = (self.width() as i32, self.height() as i32);
        let thickness = ((w.max(h) as f32 / 400.0).ceil() as i32).max(1);
        let mut frame = self.try_clone()?;
        if let Some([a, b]) = o.stop_line {
            imgproc::line(
                &mut frame.mat,
                Point::new(a.0.round() as i32, a.1.round() as i32),
                Point::new(b.0.round() as i32, b.1.round() as i32),
                scalar([255, 255, 255]),
                thickness + 1,
                imgproc::LINE_8,
                0,
            )?;
        }
        // The offender's box last, so its label is on top.
        for (i, (b, label)) in o.boxes.iter().enumerate().rev() {
            let color = if i == 0 { OFFENDER } else { OTHER };
            frame.draw_labelled_box(b, label, color, thickness)?;
        }

        let mut time = format!("recorded {}", o.time);
        if let Some(c) = &o.clock {
            time.push_str(&format!("   (analysing clock {c})"));
        }
        let mut third = vec![(format!("ID {}", o.violation_id), [255, 255, 255])];
        if let Some(s) = o.signal {
            let (t, c) = signal_text(s);
            third.insert(0, (t.to_owned(), c));
        }
        let rows: Vec<Vec<(String, [u8; 3])>> = vec![
            vec![
                (o.title.clone(), [255, 255, 255]),
                (format!("camera {}", o.camera), [255, 255, 255]),
            ],
            vec![(time, [255, 255, 255])],
            third,
        ];
        // One scale for the whole strip: the largest at which every row fits the width.
        let mut scale = (w as f64 / 1100.0).clamp(0.4, 1.4);
        let row_text = |r: &[(String, [u8; 3])]| {
            r.iter()
                .map(|(t, _)| t.as_str())
                .collect::<Vec<_>>()
                .join(" · ")
        };
        for r in &rows {
            scale = scale.min(fitting(&row_text(r), scale, w - 8)?.scale);
        }
        let probe = Label::new("Ag", scale)?;
        let line_h = probe.height + probe.baseline + 6;
        let needed = (line_h * rows.len() as i32 + 6) as u32;
        let strip = needed.div_ceil(STRIP_ALIGN) * STRIP_ALIGN;
        let mut photo = BgrImage::filled(w as u32, strip + h as u32, [0, 0, 0])?;
        for (i, r) in rows.iter().enumerate() {
            let y = 4 + line_h * (i as i32 + 1) - probe.baseline - 3;
            let mut x = 4;
            for (k, (text, color)) in r.iter().enumerate() {
                if k > 0 {
                    let dot = Label::new("", scale)?;
                    let r = (dot.height / 6).max(1);
                    imgproc::circle(
                        &mut photo.mat,
                        Point::new(x + dot.gap / 2, y - dot.height / 2),
                        r,
                        scalar([160, 160, 160]),
                        imgproc::FILLED,
                        imgproc::LINE_AA,
                        0,
                    )?;
                    x += dot.gap;
                }
                let l = Label::new(text, scale)?;
                l.draw(&mut photo, x, y, *color)?;
                x += l.width();
            }
        }
        photo.paste(&frame, 0, strip as i32)?;
        Ok(photo)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn overlay(boxes: Vec<(BBox, String)>) -> EvidenceOverlay {
        EvidenceOverlay {
            boxes,
            stop_line: Some([(0.0, 220.0), (319.0, 220.0)]),
            signal: Some(SignalState::Red),
            title: "RED LIGHT [at]".into(),
            camera: "gate-north".into(),
            time: "2024-05-01 08:00:00.123 UTC".into(),
            clock: Some("2026-12-06 00:13:16.000 UTC".into()),
            violation_id: "0190f0e0-0000-7000-8000-000000000000".into(),
        }
    }

    #[test]
    fn the_strip_is_added_above_the_frame_and_the_frame_keeps_its_pixels() {
        let raw = BgrImage::from_bgr(320, 240, &vec![90u8; 320 * 240 * 3]).unwrap();
        let photo = raw
            .evidence_photo(&overlay(vec![(
                BBox::new(100.0, 100.0, 160.0, 200.0),
                "red light · car".into(),
            )]))
            .unwrap();
        let strip = photo.height() - raw.height();
        assert!(
            strip > 0 && strip.is_multiple_of(STRIP_ALIGN),
            "strip {strip}"
        );
        assert_eq!(photo.width(), raw.width());
        assert!(
            raw.view().row(0, 2).iter().all(|&b| b == 90),
            "original untouched"
        );
        let v = photo.view();
        assert_eq!(&v.row(0, 1)[..3], &[0, 0, 0], "strip at the top");
        let s = strip as usize;
        assert!(
            v.row(0, s).iter().all(|&b| b == 90),
            "the frame's first row is all frame"
        );
        assert_eq!(&v.row(0, s + 220)[150..153], &[255, 255, 255], "stop line");
        assert_eq!(&v.row(0, s + 150)[300..303], &OFFENDER, "box edge");
    }

    #[test]
    fn labels_stay_inside_the_picture_at_the_edges() {
        let raw = BgrImage::from_bgr(320, 240, &vec![90u8; 320 * 240 * 3]).unwrap();
        // A box at the top right corner: its label can go neither above it nor past the right edge.
        let photo = raw
            .evidence_photo(&overlay(vec![(
                BBox::new(300.0, 0.0, 319.0, 30.0),
                "no helmet · motorcycle".into(),
            )]))
            .unwrap();
        let s = (photo.height() - raw.height()) as usize;
        let v = photo.view();
        // The label's background is painted from the right edge leftwards, below the box.
        let row = v.row(0, s + 36);
        let red = |x: usize| row[3 * x..3 * x + 3] == OFFENDER;
        assert!(red(318), "label reaches the right edge inside the picture");
        let left = (0..320).find(|&x| red(x)).unwrap();
        assert!(left < 300, "label moved left of the box: starts at {left}");
        // Nothing of the label is in the strip: the strip's last row is black.
        assert!(v.row(0, s - 1).iter().all(|&b| b == 0));
    }
}
