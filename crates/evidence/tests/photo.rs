//! Evidence photos as the recorder writes them (`Recorder::record`, the path `serve` and `analyze` take), on a
//! real camera frame: the information strip is added above the frame, never over it, and the photo's
//! frame is the camera frame, block for block.

mod common;

use chrono::{TimeZone, Utc};
use common::*;
use roadwarden_evidence::*;
use roadwarden_imaging::{BgrImage, STRIP_ALIGN};
use roadwarden_store::EvidenceKind;
use roadwarden_testkit::dual_test;
use roadwarden_types::*;

/// A 640x640 frame of a Delhi red-light enforcement camera (riders-roboflow, CC BY 4.0), with its labelled
/// rider's head and the rider with the motorcycle.
const FRAME: &str = concat!(
    env!("CARGO_MANIFEST_DIR"),
    "/../../../shared/footage/riders-roboflow/valid/images/036_101_jpg.rf.9c6a6b2df419d8c075a91379023a367c.jpg"
);
const HEAD: [f32; 4] = [182.0, 141.0, 228.0, 198.0];
const RIDER: [f32; 4] = [157.0, 98.0, 250.0, 395.0];

fn ebox(b: [f32; 4], class: usize, name: &str, score: f32) -> EvidenceBox {
    EvidenceBox {
        bbox: BBox::new(b[0], b[1], b[2], b[3]),
        class_id: ClassId(class),
        class_name: name.into(),
        score,
    }
}

/// The pixels the drawing may touch, in frame coordinates, as (x0, y0, x1, y1), exclusive ends: each box
/// with its label (above or below it, at most 32 px high, starting at the box's left edge and at most
/// 200 px wide at this frame's text size), grown by one 16 px JPEG MCU each way (the decoder's chroma interpolation
/// reaches into the neighbouring MCU).
fn drawn(boxes: &[[f32; 4]]) -> Vec<(usize, usize, usize, usize)> {
    boxes
        .iter()
        .map(|b| {
            let grow = |v: f32, d: f32| (v + d).max(0.0) as usize;
            (
                grow(b[0], -16.0),
                grow(b[1], -32.0 - 16.0),
                grow(b[2].max(b[0] + 200.0), 16.0),
                grow(b[3], 32.0 + 16.0),
            )
        })
        .collect()
}

/// Done when: "no pixel of the camera frame is covered by the strip (the frame is bit-identical inside the
/// photo)", made checkable on a lossy file. The photo is a JPEG; so is every encoding of the frame. The
/// strip is a multiple of 16 rows high, so the frame starts on a JPEG MCU row and each of its 16x16 blocks
/// is coded from exactly the pixels it is coded from in a JPEG of the frame alone (same encoder, same
/// quality). The test decodes the written `key-photo.jpg` and compares the part below the strip with the
/// decoded JPEG of the very frame the recorder drew on (its `key-raw.jpg`, decoded, encoded again as
/// the photo is): every pixel must be equal, bit for bit, except (a) the blocks the boxes and labels are
/// drawn in (see [`drawn`]; the test checks they leave most of the frame to compare) and (b) the frame's
/// first row, where a JPEG 4:2:0 decoder interpolates the chroma of the strip's last row and of the
/// frame's first (a decoder effect across the seam, not a covered pixel; its luma is checked equal
/// within the decoder's interpolation). A strip painted over the frame, a frame shifted by a row or
/// scaled, or a strip height off the MCU grid fails it.
async fn the_photo_adds_the_strip_above_the_frame_and_keeps_every_frame_pixel(site: &TestSite) {
    let frame = BgrImage::read(std::path::Path::new(FRAME))
        .expect("shared footage frame (see ../shared/README.md)");
    let (w, h) = (frame.width() as usize, frame.height() as usize);
    let t = Utc.with_ymd_and_hms(2024, 5, 1, 23, 59, 59).unwrap();
    let v = Violation {
        id: ViolationId::new(),
        kind: ViolationKind::NoHelmet,
        camera: CameraId::new("delhi-junction"),
        track_id: 7,
        occurred_at: t,
        confidence: 0.91,
        frames: vec![EvidenceFrame {
            role: FrameRole::Key,
            frame_index: 40,
            captured_at: t,
            // Analysed a day later: the machine's clock is shown beside the recording's time.
            analysed_at: Some(t + chrono::TimeDelta::days(1)),
            boxes: vec![
                ebox(HEAD, 1, "Without Helmet", 0.91),
                ebox(RIDER, 3, "motorbike", 0.8),
            ],
        }],
        signal: vec![],
        thresholds: Default::default(),
        plate_read: None,
    };
    let id = v.id.to_string();
    let (mut rec, _) = Recorder::open(site.data.clone(), site.url.as_deref())
        .await
        .unwrap();
    let how = rec
        .record(Capture::new(v, [(FrameRole::Key, frame)]))
        .await
        .unwrap();
    assert_eq!(how, Recorded::Committed { seq: 1 });
    let stored = rec.store().unwrap().get(&id).await.unwrap().unwrap();
    let path = |kind: EvidenceKind| {
        let e = stored
            .evidence
            .iter()
            .find(|e| e.item.kind == kind)
            .expect("evidence file");
        // Named by the recording's date.
        assert!(
            e.item
                .path
                .starts_with(&format!("evidence/delhi-junction/2024-05-01/{id}/")),
            "{}",
            e.item.path
        );
        rec.data().resolve(&e.item.path).unwrap()
    };
    let photo = BgrImage::read(&path(EvidenceKind::Photo)).unwrap();
    let raw = BgrImage::read(&path(EvidenceKind::Raw)).unwrap();
    assert_eq!((raw.width() as usize, raw.height() as usize), (w, h));
    assert_eq!(
        photo.width() as usize,
        w,
        "the photo is as wide as the frame"
    );
    let strip = photo.height() as usize - h;
    assert!(
        strip >= 32 && strip.is_multiple_of(STRIP_ALIGN as usize),
        "the strip is added, a whole number of MCU rows: {strip} rows"
    );
    // What a JPEG of the frame alone decodes to: the raw frame the recorder drew on, encoded as photos are.
    let alone = BgrImage::decode(&raw.encode(".jpg").unwrap()).unwrap();
    let (pv, av) = (photo.view(), alone.view());
    let skip = drawn(&[HEAD, RIDER]);
    let (mut compared, mut differing) = (0usize, Vec::new());
    for y in 1..h {
        let (prow, arow) = (pv.row(0, strip + y), av.row(0, y));
        for x in 0..w {
            if skip
                .iter()
                .any(|&(x0, y0, x1, y1)| (x0..x1).contains(&x) && (y0..y1).contains(&y))
            {
                continue;
            }
            compared += 1;
            if prow[3 * x..3 * x + 3] != arow[3 * x..3 * x + 3] {
                differing.push((x, y));
            }
        }
    }
    assert!(
        differing.is_empty() && compared * 10 >= w * (h - 1) * 7,
        "{compared} of {} pixels compared (at least 70% must be); \
         {} differ from the frame alone, first {:?}",
        w * (h - 1),
        differing.len(),
        &differing[..differing.len().min(10)]
    );
    // The seam row: luma (0.114 B + 0.587 G + 0.299 R) within 6 of the frame alone's.
    let luma = |p: &[u8]| 0.114 * p[0] as f32 + 0.587 * p[1] as f32 + 0.299 * p[2] as f32;
    let (prow, arow) = (pv.row(0, strip), av.row(0, 0));
    for x in 0..w {
        let (a, b) = (luma(&prow[3 * x..3 * x + 3]), luma(&arow[3 * x..3 * x + 3]));
        assert!((a - b).abs() <= 6.0, "seam row at x={x}: {a} vs {b}");
    }
    // The strip is the strip: its rows are not the frame's (dark, with text).
    let dark = (0..strip)
        .flat_map(|y| {
            pv.row(0, y)
                .chunks_exact(3)
                .map(|p| p.iter().all(|&c| c < 40))
        })
        .filter(|&d| d)
        .count();
    assert!(dark * 10 >= strip * w * 7, "the strip is mostly dark");
    // And the drawing is there: the offender's box edge is red in the photo, not in the frame alone.
    let (bx, by) = (HEAD[0] as usize, strip + HEAD[1] as usize + 20);
    let px = &pv.row(0, by)[3 * bx..3 * bx + 3];
    assert!(px[2] > 180 && px[0] < 90 && px[1] < 90, "box edge {px:?}");
}

dual_test!(
    the_photo_adds_the_strip_above_the_frame_and_keeps_every_frame_pixel,
    TestSite
);
