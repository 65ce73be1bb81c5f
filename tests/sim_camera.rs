//! `roadwarden sim-camera` as a real process: it serves the file over RTSP on
//! 127.0.0.1, a real client (the media crate's supervisor) receives frames, and
//! `--fail-after` kills the server on time.

mod common;

use std::io::{BufRead, BufReader};
use std::process::{Command, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant};

use common::free_port;
use roadwarden_media::{CameraState, CameraSupervisor, FrameQueue, SourceConfig};

#[test]
fn sim_camera_serves_frames_then_fails_on_schedule() {
    let clip = common::shared().join("footage/intel-parking/car-detection.mp4");
    let port = free_port();
    let mut child = Command::new(env!("CARGO_BIN_EXE_roadwarden"))
        .args([
            "sim-camera",
            clip.to_str().unwrap(),
            "--port",
            &port.to_string(),
            "--fail-after",
            "6",
        ])
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .spawn()
        .unwrap();
    let started = Instant::now();
    let mut line = String::new();
    BufReader::new(child.stdout.take().unwrap())
        .read_line(&mut line)
        .unwrap();
    let url = format!("rtsp://127.0.0.1:{port}/stream");
    assert_eq!(line.trim(), format!("serving {url}"));

    let queue = Arc::new(FrameQueue::new(64));
    let mut config = SourceConfig::from_arg("sim", &url).unwrap();
    config.pre_event = None;
    let camera = CameraSupervisor::start(config, queue.clone()).unwrap();
    let mut frames = 0;
    let mut last = None;
    let deadline = Instant::now() + Duration::from_secs(5);
    while frames < 20 && Instant::now() < deadline {
        if let Some(f) = queue.pop_timeout(Duration::from_millis(200)) {
            assert_eq!((f.width(), f.height()), (768, 432));
            if let Some(prev) = last {
                assert!(f.captured_at() >= prev, "wall-clock time went backwards");
            }
            last = Some(f.captured_at());
            frames += 1;
        }
    }
    assert!(frames >= 20, "got {frames} frames from {url}");
    assert_eq!(camera.status().state, CameraState::Streaming);

    // --fail-after 6: the process ends by itself, successfully, about then.
    let status = loop {
        if let Some(s) = child.try_wait().unwrap() {
            break s;
        }
        if started.elapsed() > Duration::from_secs(20) {
            child.kill().unwrap();
            panic!("sim-camera did not stop after --fail-after 6");
        }
        std::thread::sleep(Duration::from_millis(50));
    };
    assert!(status.success());
    assert!(started.elapsed() >= Duration::from_secs(5));
    camera.stop();
}

/// A JPEG snapshot of a chosen decoded frame (I420/NV12 straight from the
/// decoder): encoded, decoded back, same size, not blank.
#[test]
fn jpeg_snapshot_of_a_decoded_frame() {
    let clip = common::shared().join("footage/intel-parking/car-detection.mp4");
    let queue = Arc::new(FrameQueue::new(400));
    let mut config = SourceConfig::from_arg("snap", clip.to_str().unwrap()).unwrap();
    config.pre_event = None;
    let camera = CameraSupervisor::start(config, queue.clone()).unwrap();
    let mut chosen = None;
    let deadline = Instant::now() + Duration::from_secs(20);
    while chosen.is_none() && Instant::now() < deadline {
        if let Some(f) = queue.pop_timeout(Duration::from_millis(200))
            && f.index() == 100
        {
            chosen = Some(f);
        }
    }
    let frame = chosen.expect("frame 100 of the clip");
    let jpeg = roadwarden_imaging::BgrImage::from_view(&frame.image())
        .unwrap()
        .encode(".jpg")
        .unwrap();
    let back = roadwarden_imaging::BgrImage::decode(&jpeg).unwrap();
    assert_eq!((back.width(), back.height()), (768, 432));
    let v = back.view();
    let row = v.row(0, 216);
    let (min, max) = (row.iter().min().unwrap(), row.iter().max().unwrap());
    assert!(
        max - min > 40,
        "a real parking-lot frame has contrast, got {min}..{max}"
    );
    camera.stop();
}
