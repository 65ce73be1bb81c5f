//! Shared fixtures: synthetic violations with frames, and a data folder with
//! a store on SQLite or on a PostgreSQL database of its own.

#![allow(dead_code)]

use std::collections::BTreeMap;

use chrono::{Duration, TimeZone, Utc};
use roadwarden_evidence::{Capture, DataDir, FrameImage};
use roadwarden_imaging::BgrImage;
use roadwarden_store::pgadmin;
use roadwarden_types::*;

pub(crate) const PG_ADMIN: &str = "postgres://postgres@127.0.0.1:5432/postgres";

pub(crate) fn frame(seed: u8) -> BgrImage {
    let (w, h) = (160u32, 120u32);
    let data: Vec<u8> = (0..w * h * 3)
        .map(|i| ((i / 3 % w) as u8).wrapping_mul(3).wrapping_add(seed))
        .collect();
    BgrImage::from_bgr(w, h, &data).unwrap()
}

pub(crate) fn capture(camera: &str, n: u64) -> Capture {
    let t0 = Utc.with_ymd_and_hms(2024, 5, 1, 8, 0, 0).unwrap()
        + Duration::milliseconds(1237 * n as i64);
    let boxed = |role, dt: i64| EvidenceFrame {
        role,
        frame_index: n * 10 + dt as u64,
        captured_at: t0 + Duration::milliseconds(dt * 40),
        analysed_at: None,
        boxes: vec![EvidenceBox {
            bbox: BBox::new(40.0, 30.0, 90.0, 100.0),
            class_id: ClassId(1),
            class_name: "Without Helmet".into(),
            score: 0.91,
        }],
    };
    let red = n % 2 == 1;
    let violation = Violation {
        plate_read: None,
        id: ViolationId::new(),
        kind: if red {
            ViolationKind::RedLight
        } else {
            ViolationKind::NoHelmet
        },
        camera: CameraId::new(camera),
        track_id: n,
        occurred_at: t0,
        confidence: 0.875,
        frames: if red {
            vec![
                boxed(FrameRole::Before, -1),
                boxed(FrameRole::At, 0),
                boxed(FrameRole::After, 1),
            ]
        } else {
            vec![boxed(FrameRole::Key, 0)]
        },
        signal: if red {
            vec![SignalChange {
                at: t0 - Duration::seconds(5),
                state: SignalState::Red,
            }]
        } else {
            vec![]
        },
        thresholds: BTreeMap::from([
            ("helmet.min_votes".to_owned(), 3.0),
            ("red_light.grace_s".to_owned(), 0.5),
        ]),
    };
    let frames = violation
        .frames
        .iter()
        .enumerate()
        .map(|(i, f)| {
            let img = frame(n as u8 + i as u8);
            // Hand over one frame as encoded JPEG, the rest decoded.
            if i == 0 {
                (f.role, FrameImage::Jpeg(img.encode(".jpg").unwrap()))
            } else {
                (f.role, FrameImage::Bgr(img))
            }
        })
        .collect();
    Capture {
        violation,
        frames,
        clip: None,
        stop_line: Some([(0.0, 110.0), (159.0, 110.0)]),
    }
}

/// A data folder, and the database URL to record into (None: its SQLite file).
pub(crate) struct TestSite {
    pub dir: tempfile::TempDir,
    pub data: DataDir,
    pub url: Option<String>,
    pg_name: Option<String>,
}

impl TestSite {
    pub(crate) async fn new(dialect: &str) -> TestSite {
        let dir = tempfile::tempdir().unwrap();
        let data = DataDir::new(dir.path().join("data"));
        let (url, pg_name) = if dialect == "postgres" {
            let name = format!("rw_test_{}", uuid::Uuid::new_v4().simple());
            (
                Some(pgadmin::create_database(PG_ADMIN, &name).await.unwrap()),
                Some(name),
            )
        } else {
            (None, None)
        };
        TestSite {
            dir,
            data,
            url,
            pg_name,
        }
    }
}

impl Drop for TestSite {
    fn drop(&mut self) {
        if let Some(name) = self.pg_name.take() {
            std::thread::spawn(move || {
                let rt = tokio::runtime::Builder::new_current_thread()
                    .enable_all()
                    .build()
                    .unwrap();
                rt.block_on(pgadmin::drop_database(PG_ADMIN, &name))
                    .unwrap();
            })
            .join()
            .unwrap();
        }
    }
}

impl TestSite {
    /// `dual_test!`'s harness: a fresh data folder and store (dropped with the value).
    #[allow(dead_code)] // crash.rs includes this module without dual tests
    pub(crate) async fn start(dialect: &'static str) -> TestSite {
        TestSite::new(dialect).await
    }
    #[allow(dead_code)]
    pub(crate) async fn finish(self) {}
}
