//! Raw model output → candidate boxes in source-frame pixels.

use roadwarden_types::{BBox, ClassId};

use crate::Letterbox;

/// A scored box before NMS.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Candidate {
    pub bbox: BBox,
    pub score: f32,
    pub class_id: ClassId,
}

/// The output layouts this crate decodes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum OutputLayout {
    /// Ultralytics v8/v11/v12: `[B, 4 + nc, N]`, cx cy w h in input pixels, then class scores.
    YoloV8,
    /// YOLOv5-style: `[B, N, 5 + nc]`, cx cy w h, objectness, class scores.
    YoloV5,
    /// FastestDet: `[B, 5 + nc, H, W]` grid.
    FastestDet,
    /// YOLOv5-face with 4 corner landmarks: `[B, N, 13 + nc]`, cx cy w h in input pixels,
    /// objectness, 8 landmark coordinates, class scores (score = class · objectness).
    Yolo5Face,
}

impl OutputLayout {
    /// Which layout a YOLO output of `shape` with `nc` classes is, if any.
    /// Dynamic dimensions are given as -1.
    pub fn for_yolo(shape: &[i64], nc: usize) -> Option<OutputLayout> {
        let nc = nc as i64;
        match shape {
            [_, c, _] if *c == 4 + nc => Some(OutputLayout::YoloV8),
            [_, _, c] if *c == 5 + nc => Some(OutputLayout::YoloV5),
            _ => None,
        }
    }

    pub fn for_yolo5face(shape: &[i64], nc: usize) -> Option<OutputLayout> {
        match shape {
            [_, _, c] if *c == 13 + nc as i64 => Some(OutputLayout::Yolo5Face),
            _ => None,
        }
    }

    pub fn for_fastestdet(shape: &[i64], nc: usize) -> Option<OutputLayout> {
        match shape {
            [_, c, _, _] if *c == 5 + nc as i64 => Some(OutputLayout::FastestDet),
            _ => None,
        }
    }
}

/// Decodes one image's output. `data` is that image's slice of the output
/// tensor, `dims` the output shape without the batch dimension.
/// `keep(class, score)` says whether a class score passes; with
/// `multi_label` every passing class of an anchor yields a candidate (as
/// ultralytics `val` does), else only its best class.
pub fn decode(
    layout: OutputLayout,
    data: &[f32],
    dims: &[usize],
    nc: usize,
    lb: &Letterbox,
    multi_label: bool,
    keep: &dyn Fn(usize, f32) -> bool,
) -> Vec<Candidate> {
    let mut out = Vec::new();
    let mut push = |bbox: BBox, scores: &mut dyn Iterator<Item = (usize, f32)>| {
        if multi_label {
            for (c, s) in scores {
                if keep(c, s) {
                    out.push(Candidate {
                        bbox,
                        score: s,
                        class_id: ClassId(c),
                    });
                }
            }
        } else {
            // First maximum, as torch's max().
            let best = scores.fold(None::<(usize, f32)>, |best, (c, s)| match best {
                Some((_, bs)) if bs >= s => best,
                _ => Some((c, s)),
            });
            if let Some((c, s)) = best
                && keep(c, s)
            {
                out.push(Candidate {
                    bbox,
                    score: s,
                    class_id: ClassId(c),
                });
            }
        }
    };
    match layout {
        OutputLayout::YoloV8 => {
            let n = dims[1];
            let at = |row: usize, a: usize| data[row * n + a];
            for a in 0..n {
                // Cheap reject before building the box.
                if !(0..nc).any(|c| keep(c, at(4 + c, a))) {
                    continue;
                }
                let b = BBox::from_cxcywh(at(0, a), at(1, a), at(2, a), at(3, a));
                push(lb.to_source(b), &mut (0..nc).map(|c| (c, at(4 + c, a))));
            }
        }
        OutputLayout::YoloV5 => {
            let stride = dims[1];
            for row in data.chunks_exact(stride).take(dims[0]) {
                let obj = row[4];
                let scores = |c: usize| row[5 + c] * obj;
                if !(0..nc).any(|c| keep(c, scores(c))) {
                    continue;
                }
                let b = BBox::from_cxcywh(row[0], row[1], row[2], row[3]);
                push(lb.to_source(b), &mut (0..nc).map(|c| (c, scores(c))));
            }
        }
        OutputLayout::Yolo5Face => {
            let stride = dims[1];
            for row in data.chunks_exact(stride).take(dims[0]) {
                let obj = row[4];
                let scores = |c: usize| row[13 + c] * obj;
                if !(0..nc).any(|c| keep(c, scores(c))) {
                    continue;
                }
                let b = BBox::from_cxcywh(row[0], row[1], row[2], row[3]);
                push(lb.to_source(b), &mut (0..nc).map(|c| (c, scores(c))));
            }
        }
        OutputLayout::FastestDet => {
            let (gh, gw) = (dims[1], dims[2]);
            let cells = gh * gw;
            let (sw, sh) = (lb.src_width as f32, lb.src_height as f32);
            for gy in 0..gh {
                for gx in 0..gw {
                    let at = |ch: usize| data[ch * cells + gy * gw + gx];
                    let obj = at(0);
                    let score = |c: usize| obj.powf(0.6) * at(5 + c).powf(0.4);
                    if !(0..nc).any(|c| keep(c, score(c))) {
                        continue;
                    }
                    let cx = (at(1).tanh() + gx as f32) / gw as f32;
                    let cy = (at(2).tanh() + gy as f32) / gh as f32;
                    let w = sigmoid(at(3));
                    let h = sigmoid(at(4));
                    let b = BBox::from_cxcywh(cx * sw, cy * sh, w * sw, h * sh);
                    push(b, &mut (0..nc).map(|c| (c, score(c))));
                }
            }
        }
    }
    out
}

fn sigmoid(x: f32) -> f32 {
    1.0 / (1.0 + (-x).exp())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn layouts_are_recognised_from_shapes() {
        assert_eq!(
            OutputLayout::for_yolo(&[1, 6, -1], 2),
            Some(OutputLayout::YoloV8)
        );
        assert_eq!(
            OutputLayout::for_yolo(&[1, 25200, 85], 80),
            Some(OutputLayout::YoloV5)
        );
        assert_eq!(OutputLayout::for_yolo(&[1, 6, 8400], 3), None);
        assert_eq!(OutputLayout::for_yolo(&[1, 85, 22, 22], 80), None);
        assert_eq!(
            OutputLayout::for_fastestdet(&[1, 85, 22, 22], 80),
            Some(OutputLayout::FastestDet)
        );
        assert_eq!(OutputLayout::for_fastestdet(&[1, 6, 8400], 2), None);
    }

    #[test]
    fn yolov8_single_and_multi_label() {
        // Two anchors, two classes: rows cx, cy, w, h, s0, s1.
        let data = [
            100.0, 300.0, // cx
            100.0, 300.0, // cy
            20.0, 40.0, // w
            10.0, 40.0, // h
            0.9, 0.05, // class 0
            0.6, 0.02, // class 1
        ];
        let lb = Letterbox::fit(640, 640, 640, 640, None);
        let keep = |_c: usize, s: f32| s > 0.3;
        let one = decode(OutputLayout::YoloV8, &data, &[6, 2], 2, &lb, false, &keep);
        assert_eq!(one.len(), 1);
        assert_eq!(one[0].class_id, ClassId(0));
        assert_eq!(one[0].bbox, BBox::new(90.0, 95.0, 110.0, 105.0));
        let multi = decode(OutputLayout::YoloV8, &data, &[6, 2], 2, &lb, true, &keep);
        assert_eq!(multi.len(), 2);
        assert_eq!(multi[1].class_id, ClassId(1));
    }

    #[test]
    fn yolov5_multiplies_objectness() {
        let data = [50.0, 50.0, 10.0, 10.0, 0.5, 0.9, 0.1];
        let lb = Letterbox::fit(100, 100, 100, 100, None);
        let got = decode(
            OutputLayout::YoloV5,
            &data,
            &[1, 7],
            2,
            &lb,
            false,
            &|_, s| s > 0.3,
        );
        assert_eq!(got.len(), 1);
        assert!((got[0].score - 0.45).abs() < 1e-6);
    }

    #[test]
    fn yolo5face_skips_the_landmarks_and_multiplies_objectness() {
        // cx cy w h, obj, 8 corner coordinates (large, to catch their use as scores), 2 classes.
        let mut row = vec![160.0, 100.0, 40.0, 12.0, 0.8];
        row.extend([140.0, 94.0, 180.0, 94.0, 180.0, 106.0, 140.0, 106.0]);
        row.extend([0.25, 0.9]);
        let lb = Letterbox::fit(320, 320, 320, 320, None);
        let got = decode(
            OutputLayout::Yolo5Face,
            &row,
            &[1, 15],
            2,
            &lb,
            false,
            &|_, s| s > 0.5,
        );
        assert_eq!(got.len(), 1);
        assert_eq!(got[0].class_id, ClassId(1));
        assert!((got[0].score - 0.72).abs() < 1e-6);
        assert_eq!(got[0].bbox, BBox::new(140.0, 94.0, 180.0, 106.0));
        assert_eq!(
            OutputLayout::for_yolo5face(&[1, 6300, 15], 2),
            Some(OutputLayout::Yolo5Face)
        );
        assert_eq!(OutputLayout::for_yolo5face(&[1, 6300, 7], 2), None);
    }

    #[test]
    fn fastestdet_cell_decodes_to_frame_fractions() {
        // 1 class, 2x2 grid; only cell (gx=1, gy=0) fires with centred box terms.
        let cells = 4;
        let mut data = vec![0f32; 6 * cells];
        let cell = 1; // gy 0, gx 1
        data[cell] = 1.0; // objectness
        data[5 * cells + cell] = 1.0; // class prob
        // t1 = t2 = 0 -> centre at the cell's corner + 0; t3 = t4 = 0 -> w = h = 0.5
        let lb = Letterbox::stretch(200, 100, 352, 352);
        let got = decode(
            OutputLayout::FastestDet,
            &data,
            &[6, 2, 2],
            1,
            &lb,
            false,
            &|_, s| s > 0.5,
        );
        assert_eq!(got.len(), 1);
        let b = got[0].bbox;
        // cx = (0 + 1) / 2 = 0.5 of 200; w = 0.5 of 200.
        assert_eq!(b, BBox::new(50.0, -25.0, 150.0, 25.0));
        assert_eq!(got[0].score, 1.0);
    }
}
