//! A file source delivers every frame, in order, with monotonic timestamps; pacing and the drop-oldest
//! queue; broken files fail clearly without disturbing other cameras.
mod common;

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use common::*;
use gst::prelude::*;
use roadwarden_media::{
    CameraState, CameraSupervisor, MediaError, QueuePolicy, Replay, SourceConfig, SourceKind,
};
use roadwarden_types::PixelFormat;

/// Counts decoded frames with a plain GStreamer pipeline, independent of the crate.
fn independent_frame_count(path: &str) -> u64 {
    gst::init().unwrap();
    let p = gst::parse::launch(&format!(
        "filesrc location=\"{path}\" ! qtdemux ! h264parse ! avdec_h264 ! fakesink name=sink signal-handoffs=true sync=false"
    ))
    .unwrap()
    .downcast::<gst::Pipeline>()
    .unwrap();
    let n = Arc::new(AtomicU64::new(0));
    let n2 = n.clone();
    p.by_name("sink")
        .unwrap()
        .connect("handoff", false, move |_| {
            n2.fetch_add(1, Ordering::SeqCst);
            None
        });
    p.set_state(gst::State::Playing).unwrap();
    let msg = p
        .bus()
        .unwrap()
        .timed_pop_filtered(
            gst::ClockTime::from_seconds(60),
            &[gst::MessageType::Eos, gst::MessageType::Error],
        )
        .expect("independent decode finished");
    assert!(matches!(msg.view(), gst::MessageView::Eos(_)), "{msg:?}");
    p.set_state(gst::State::Null).unwrap();
    n.load(Ordering::SeqCst)
}

#[test]
fn file_delivers_every_frame_in_order() {
    let expected = independent_frame_count(CLIP);
    assert_eq!(expected, CLIP_FRAMES);
    let q = queue(8);
    let sup = CameraSupervisor::start(SourceConfig::file("parking", CLIP), q.clone()).unwrap();
    let frames = collect(&q, Duration::from_secs(60), |_| {
        sup.status().state == CameraState::Finished && q.is_empty()
    });
    assert_eq!(
        sup.status().state,
        CameraState::Finished,
        "{:?}",
        sup.status()
    );
    assert_eq!(frames.len() as u64, expected);
    for (i, f) in frames.iter().enumerate() {
        assert_eq!(f.index(), i as u64);
        assert_eq!(f.camera().as_str(), "parking");
        assert_eq!((f.width(), f.height()), (768, 432));
        assert!(matches!(f.format(), PixelFormat::I420 | PixelFormat::Nv12));
        if i > 0 {
            let p = &frames[i - 1];
            assert!(f.pts().unwrap() > p.pts().unwrap(), "pts at {i}");
            assert!(f.timeline() > p.timeline(), "timeline at {i}");
            assert!(f.captured_at() > p.captured_at(), "captured_at at {i}");
        }
    }
    // 30 s of video at 12.5 fps.
    let span = frames.last().unwrap().pts().unwrap() - frames[0].pts().unwrap();
    assert!((span.as_secs_f64() - 376.0 * 0.08).abs() < 0.01, "{span:?}");
    // Pixels are readable through the planes, with the decoder's strides.
    let img = frames[100].image();
    assert_eq!(img.row(0, 431).len(), 768);
    let luma: u64 = (0..432)
        .step_by(8)
        .map(|y| img.row(0, y).iter().map(|&v| v as u64).sum::<u64>())
        .sum();
    let mean = luma as f64 / (54.0 * 768.0);
    assert!((20.0..235.0).contains(&mean), "mean luma {mean}");
    assert_eq!(sup.status().frames_dropped, 0);
    println!(
        "file: {} frames (independent count {expected}), pts span {span:?}",
        frames.len()
    );
}

#[test]
fn real_time_replay_and_pacing() {
    // Real time: 25 frames at 12.5 fps take about 2 s.
    let q = queue(64);
    let mut cfg = SourceConfig::file("rt", CLIP);
    if let SourceKind::File { replay, .. } = &mut cfg.kind {
        *replay = Replay::RealTime;
    }
    let sup = CameraSupervisor::start(cfg, q.clone()).unwrap();
    let start = Instant::now();
    let frames = collect(&q, Duration::from_secs(10), |f| f.len() >= 26);
    let took = start.elapsed();
    assert_eq!(frames.len(), 26);
    let wall = frames[25]
        .captured_at()
        .duration_since(frames[0].captured_at())
        .unwrap();
    assert!((wall.as_secs_f64() - 2.0).abs() < 0.05, "{wall:?}");
    assert!(took >= Duration::from_millis(1800), "{took:?}");
    sup.stop();

    // Pacing: 5 of 12.5 fps, spread evenly, as fast as possible.
    let q = queue(8);
    let mut cfg = SourceConfig::file("paced", CLIP);
    cfg.analysis_fps = Some(5.0);
    let sup = CameraSupervisor::start(cfg, q.clone()).unwrap();
    let frames = collect(&q, Duration::from_secs(60), |_| {
        sup.status().state == CameraState::Finished && q.is_empty()
    });
    let st = sup.status();
    assert_eq!(st.frames_decoded, CLIP_FRAMES);
    assert_eq!(st.frames_delivered as usize, frames.len());
    assert!((149..=152).contains(&frames.len()), "{}", frames.len());
    for w in frames.windows(2) {
        let gap = w[1].timeline() - w[0].timeline();
        assert!(
            gap >= Duration::from_millis(160) && gap <= Duration::from_millis(240),
            "{gap:?}"
        );
    }
}

#[test]
fn full_queue_drops_the_oldest_and_counts() {
    let q = queue(4);
    let mut cfg = SourceConfig::file("lagging", CLIP);
    cfg.queue_policy = QueuePolicy::DropOldest;
    let sup = CameraSupervisor::start(cfg, q.clone()).unwrap();
    assert_eq!(sup.wait(Duration::from_secs(60)), CameraState::Finished);
    assert_eq!(q.len(), 4);
    assert_eq!(sup.status().frames_dropped, CLIP_FRAMES - 4);
    // The newest frames survive.
    let last: Vec<u64> = std::iter::from_fn(|| q.try_pop())
        .map(|f| f.index())
        .collect();
    assert_eq!(last, vec![373, 374, 375, 376]);
}

#[test]
fn broken_files_fail_clearly_and_others_keep_going() {
    let dir = tempfile::tempdir().unwrap();
    let truncated = dir.path().join("truncated-copy.mp4");
    let data = std::fs::read(CLIP).unwrap();
    std::fs::write(&truncated, &data[..data.len() / 2]).unwrap();
    let random = dir.path().join("random-bytes.mp4");
    let mut x = 0x9e37_79b9_7f4a_7c15u64;
    let noise: Vec<u8> = (0..300_000)
        .map(|_| {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            x as u8
        })
        .collect();
    std::fs::write(&random, noise).unwrap();

    let good_q = queue(8);
    let good = CameraSupervisor::start(SourceConfig::file("good", CLIP), good_q.clone()).unwrap();
    let bad_q = queue(8);
    let trunc =
        CameraSupervisor::start(SourceConfig::file("trunc", &truncated), bad_q.clone()).unwrap();
    let rand = CameraSupervisor::start(SourceConfig::file("rand", &random), bad_q.clone()).unwrap();
    drain_in_background(&trunc, bad_q);

    let frames = collect(&good_q, Duration::from_secs(60), |_| {
        good.status().state == CameraState::Finished && good_q.is_empty()
    });
    assert_eq!(
        frames.len() as u64,
        CLIP_FRAMES,
        "the good camera is unaffected"
    );

    for (sup, path) in [(&trunc, &truncated), (&rand, &random)] {
        assert_eq!(
            sup.wait(Duration::from_secs(30)),
            CameraState::Failed,
            "{:?}",
            sup.status()
        );
        let err = sup.status().last_error.unwrap();
        assert!(
            err.contains(&path.display().to_string()),
            "error names the file: {err}"
        );
        println!("{}: {err}", sup.camera());
    }
    assert!(trunc.status().last_error.unwrap().contains("truncated"));
    assert!(trunc.status().frames_decoded > 0);

    let missing = dir.path().join("missing.mp4");
    match CameraSupervisor::start(SourceConfig::file("missing", &missing), queue(1)) {
        Err(e @ MediaError::File { .. }) => assert!(e.to_string().contains("missing.mp4"), "{e}"),
        other => panic!("{:?}", other.map(|_| ())),
    }
}

/// A transport stream cut short (as a copy interrupted half-way leaves it) reads to a clean end of
/// stream in GStreamer; it must fail, naming the file and that it is truncated, not report `Finished`.
/// The same file whole finishes. No GStreamer source path or object path is in the message.
#[test]
fn a_truncated_transport_stream_fails_naming_the_file() {
    let dir = tempfile::tempdir().unwrap();
    let whole = dir.path().join("whole.ts");
    first_frames(&whole, "mpegtsmux", 120);
    let data = std::fs::read(&whole).unwrap();
    assert_eq!(data.len() % 188, 0, "mpegtsmux writes whole packets");
    let cut = dir.path().join("cut-copy.ts");
    std::fs::write(&cut, &data[..data.len() * 2 / 3 + 77]).unwrap();

    let q = queue(8);
    let ok = CameraSupervisor::start(SourceConfig::file("whole", &whole), q.clone()).unwrap();
    drain_in_background(&ok, q);
    assert_eq!(
        ok.wait(Duration::from_secs(30)),
        CameraState::Finished,
        "{:?}",
        ok.status()
    );

    let q = queue(8);
    let sup = CameraSupervisor::start(SourceConfig::file("cut", &cut), q.clone()).unwrap();
    drain_in_background(&sup, q);
    assert_eq!(
        sup.wait(Duration::from_secs(30)),
        CameraState::Failed,
        "{:?}",
        sup.status()
    );
    let err = sup.status().last_error.unwrap();
    assert!(
        err.contains(&cut.display().to_string()) && err.contains("truncated"),
        "{err}"
    );
    assert!(sup.status().frames_decoded > 0);
}

/// An element's error says what to check, without GStreamer's debug text (its C source file and line,
/// `/GstPipeline:pipeline0/...` object paths): those stay in the debug log.
#[test]
fn element_errors_carry_no_gstreamer_source_paths() {
    let dir = tempfile::tempdir().unwrap();
    let data = std::fs::read(CLIP).unwrap();
    let mut x = 0x2545_f491_4f6c_dd1du64;
    let noise: Vec<u8> = (0..200_000)
        .map(|_| {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            x as u8
        })
        .collect();
    let files = [
        (dir.path().join("not-a-video.mp4"), noise),
        (dir.path().join("half.mp4"), data[..data.len() / 2].to_vec()),
    ];
    for (path, bytes) in &files {
        std::fs::write(path, bytes).unwrap();
        let q = queue(8);
        let sup = CameraSupervisor::start(SourceConfig::file("broken", path), q.clone()).unwrap();
        drain_in_background(&sup, q);
        assert_eq!(
            sup.wait(Duration::from_secs(30)),
            CameraState::Failed,
            "{:?}",
            sup.status()
        );
        let err = sup.status().last_error.unwrap();
        assert!(err.contains(&path.display().to_string()), "{err}");
        for leak in [".c(", "GstPipeline:", "/Gst", "gst/"] {
            assert!(!err.contains(leak), "`{leak}` in {err}");
        }
        if path.ends_with("not-a-video.mp4") {
            assert!(
                err.contains("check that the file is"),
                "says what to check: {err}"
            );
        }
        println!("{err}");
    }
}
