#![allow(dead_code)]
use std::sync::Arc;
use std::time::{Duration, Instant};

use roadwarden_media::{CameraSupervisor, Frame, FrameQueue};

pub(crate) const CLIP: &str = concat!(
    env!("CARGO_MANIFEST_DIR"),
    "/../../../shared/footage/intel-parking/car-detection.mp4"
);
/// Frames in CLIP, as counted by `gst-launch-1.0 filesrc ! qtdemux ! h264parse ! avdec_h264 ! identity` (377).
pub(crate) const CLIP_FRAMES: u64 = 377;
/// Key-frame interval of CLIP (every 60 frames at 12.5 fps).
pub(crate) const CLIP_GOP: Duration = Duration::from_millis(4800);

/// A free TCP port on 127.0.0.1.
pub(crate) fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// Pops frames until `done` says so or `timeout` passes.
pub(crate) fn collect(
    queue: &FrameQueue,
    timeout: Duration,
    mut done: impl FnMut(&[Frame]) -> bool,
) -> Vec<Frame> {
    let deadline = Instant::now() + timeout;
    let mut out = Vec::new();
    while Instant::now() < deadline && !done(&out) {
        if let Some(f) = queue.pop_timeout(Duration::from_millis(50)) {
            out.push(f);
        }
    }
    out
}

/// Waits until `cond` holds, up to `timeout`; returns how long it took.
pub(crate) fn wait_for(timeout: Duration, mut cond: impl FnMut() -> bool) -> Option<Duration> {
    let start = Instant::now();
    while start.elapsed() < timeout {
        if cond() {
            return Some(start.elapsed());
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    None
}

pub(crate) fn queue(n: usize) -> Arc<FrameQueue> {
    Arc::new(FrameQueue::new(n))
}

pub(crate) fn drain_in_background(sup: &CameraSupervisor, queue: Arc<FrameQueue>) {
    let _ = sup;
    std::thread::spawn(move || {
        while Arc::strong_count(&queue) > 1 {
            let _ = queue.pop_timeout(Duration::from_millis(50));
        }
    });
}

/// The first `frames` frames of CLIP (one GOP is 60), remuxed without re-encoding by a plain GStreamer
/// pipeline into `out` with `muxer` (`mp4mux`, `mpegtsmux`): a short clip for looping and truncation.
pub(crate) fn first_frames(out: &std::path::Path, muxer: &str, frames: u32) {
    use gst::prelude::*;
    gst::init().unwrap();
    let p = gst::parse::launch(&format!(
        "filesrc location=\"{CLIP}\" ! qtdemux ! h264parse ! identity eos-after={frames} \
         ! h264parse ! {muxer} ! filesink location=\"{}\"",
        out.display()
    ))
    .unwrap()
    .downcast::<gst::Pipeline>()
    .unwrap();
    p.set_state(gst::State::Playing).unwrap();
    let msg = p
        .bus()
        .unwrap()
        .timed_pop_filtered(
            gst::ClockTime::from_seconds(60),
            &[gst::MessageType::Eos, gst::MessageType::Error],
        )
        .expect("the remux finished");
    assert!(matches!(msg.view(), gst::MessageView::Eos(_)), "{msg:?}");
    p.set_state(gst::State::Null).unwrap();
}
