//! A clip request yields an MP4 that decodes back and covers the requested window to within one GOP,
//! from a file replayed in real time and from an RTSP camera.
mod common;

use std::time::Duration;

use common::*;
use roadwarden_media::sim::{SimCamera, SimConfig};
use roadwarden_media::{
    CameraState, CameraSupervisor, ClipReport, Replay, SourceConfig, SourceKind,
};

const PRE: Duration = Duration::from_secs(3);
const POST: Duration = Duration::from_secs(2);

/// Decodes the clip with the crate's own file source and checks it against the report.
fn decode_back(report: &ClipReport) {
    let q = queue(8);
    let sup = CameraSupervisor::start(SourceConfig::file("clip", &report.path), q.clone()).unwrap();
    let frames = collect(&q, Duration::from_secs(30), |_| {
        sup.status().state == CameraState::Finished && q.is_empty()
    });
    assert_eq!(
        sup.status().state,
        CameraState::Finished,
        "{:?}",
        sup.status()
    );
    assert_eq!(frames.len(), report.frames, "every recorded frame decodes");
    let first = frames[0].pts().unwrap();
    let last = frames.last().unwrap().pts().unwrap();
    let decoded = last - first + Duration::from_millis(80);
    let diff = (decoded.as_secs_f64() - report.duration().as_secs_f64()).abs();
    assert!(
        diff < 0.1,
        "decoded {decoded:?}, reported {:?}",
        report.duration()
    );
}

fn check_window(report: &ClipReport) {
    println!("{report:?} (duration {:?})", report.duration());
    assert!(report.starts_on_key_frame);
    assert!(report.complete);
    assert!(
        report.start <= report.requested_start,
        "starts at or before the window (on a key frame)"
    );
    assert!(
        report.requested_start - report.start <= CLIP_GOP,
        "at most one GOP early"
    );
    assert!(
        report.end >= report.requested_end,
        "covers the end of the window"
    );
    assert!(report.end - report.requested_end <= CLIP_GOP);
}

#[test]
fn clip_from_a_file_replayed_in_real_time() {
    let mut cfg = SourceConfig::file("rt", CLIP);
    if let SourceKind::File { replay, .. } = &mut cfg.kind {
        *replay = Replay::RealTime;
    }
    let q = queue(4);
    let sup = CameraSupervisor::start(cfg, q.clone()).unwrap();
    drain_in_background(&sup, q);
    assert!(
        wait_for(Duration::from_secs(15), || sup.status().frames_decoded
            >= 75)
        .is_some()
    );
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("event.mp4");
    let job = sup.request_clip(&path, PRE, POST).unwrap();
    let report = job.wait(Duration::from_secs(15)).unwrap();
    check_window(&report);
    assert!(report.duration() >= PRE + POST);
    decode_back(&report);
}

#[test]
fn clip_from_an_rtsp_camera() {
    let mut c = SimConfig::new(CLIP, free_port());
    c.looping = true;
    let cam = SimCamera::start(c).unwrap();
    let q = queue(4);
    let sup = CameraSupervisor::start(SourceConfig::rtsp("live", &cam.url()).unwrap(), q.clone())
        .unwrap();
    drain_in_background(&sup, q);
    assert!(
        wait_for(Duration::from_secs(15), || sup
            .recorder()
            .unwrap()
            .buffered()
            >= PRE)
        .is_some()
    );
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("live.mp4");
    let report = sup
        .request_clip(&path, PRE, POST)
        .unwrap()
        .wait(Duration::from_secs(15))
        .unwrap();
    check_window(&report);
    decode_back(&report);
    sup.stop();
}
