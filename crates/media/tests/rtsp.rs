//! RTSP from the simulated camera: frames arrive, a killed-and-restarted server is reconnected to while
//! another camera keeps delivering, and a stalled (silent) server is detected and reconnected.
mod common;

use std::sync::Arc;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use common::*;
use roadwarden_media::sim::{SimCamera, SimConfig};
use roadwarden_media::{CameraState, CameraSupervisor, Frame, FrameQueue, SourceConfig};

fn sim(port: u16) -> SimCamera {
    let mut c = SimConfig::new(CLIP, port);
    c.looping = true;
    SimCamera::start(c).unwrap()
}

fn rtsp_config(name: &str, url: &str) -> SourceConfig {
    let mut cfg = SourceConfig::rtsp(name, url).unwrap();
    cfg.backoff_min = Duration::from_millis(200);
    cfg.backoff_max = Duration::from_secs(1);
    cfg.stall_timeout = Duration::from_secs(2);
    cfg
}

/// Records (arrival, frame) for everything a queue yields, on a thread.
struct Recorder {
    frames: Arc<Mutex<Vec<(Instant, Frame)>>>,
    stop: Arc<std::sync::atomic::AtomicBool>,
}

impl Recorder {
    fn new(queue: Arc<FrameQueue>) -> Recorder {
        let frames = Arc::new(Mutex::new(Vec::new()));
        let stop = Arc::new(std::sync::atomic::AtomicBool::new(false));
        let (f, s) = (frames.clone(), stop.clone());
        std::thread::spawn(move || {
            while !s.load(std::sync::atomic::Ordering::SeqCst) {
                if let Some(fr) = queue.pop_timeout(Duration::from_millis(20)) {
                    f.lock().unwrap().push((Instant::now(), fr));
                }
            }
        });
        Recorder { frames, stop }
    }
    fn count(&self) -> usize {
        self.frames.lock().unwrap().len()
    }
    fn last_session(&self) -> Option<u64> {
        self.frames.lock().unwrap().last().map(|(_, f)| f.session())
    }
    fn check_monotonic(&self) {
        let frames = self.frames.lock().unwrap();
        for w in frames.windows(2) {
            assert!(
                w[1].1.timeline() > w[0].1.timeline(),
                "{:?} then {:?}",
                w[0].1,
                w[1].1
            );
            assert!(w[1].1.captured_at() > w[0].1.captured_at());
            assert!(w[1].1.index() > w[0].1.index());
        }
    }
}

impl Drop for Recorder {
    fn drop(&mut self) {
        self.stop.store(true, std::sync::atomic::Ordering::SeqCst);
    }
}

#[test]
fn server_killed_and_restarted_while_another_camera_keeps_delivering() {
    let (pa, pb) = (free_port(), free_port());
    let mut ca = SimConfig::new(CLIP, pa);
    ca.looping = true;
    ca.fail_after = Some(Duration::from_secs(4));
    let sim_a = SimCamera::start(ca).unwrap();
    let sim_b = sim(pb);
    let (qa, qb) = (queue(16), queue(16));
    let a = CameraSupervisor::start(rtsp_config("a", &sim_a.url()), qa.clone()).unwrap();
    let b = CameraSupervisor::start(rtsp_config("b", &sim_b.url()), qb.clone()).unwrap();
    let (ra, rb) = (Recorder::new(qa), Recorder::new(qb));

    assert!(
        wait_for(Duration::from_secs(10), || ra.count() >= 10
            && rb.count() >= 10)
        .is_some(),
        "frames arrive"
    );
    // fail_after kills the server mid-stream.
    sim_a.wait(Some(Duration::from_secs(10)));
    assert!(!sim_a.is_running());
    let killed = Instant::now();
    let before = ra.count();
    let session_before = ra.last_session().unwrap();
    drop(sim_a);
    assert!(
        wait_for(Duration::from_secs(3), || a.status().state
            != CameraState::Streaming)
        .is_some(),
        "the loss is noticed: {:?}",
        a.status()
    );
    std::thread::sleep(Duration::from_secs(3).saturating_sub(killed.elapsed()));
    let b_during_outage = rb.count();
    let sim_a = sim(pa);
    let restarted = Instant::now();
    let resumed = wait_for(Duration::from_secs(8), || {
        ra.last_session().is_some_and(|s| s > session_before)
    });
    let resumed = resumed.expect("frames resume after the restart");
    println!(
        "a: {before} frames before the kill, resumed {resumed:?} after the restart; status {:?}",
        a.status()
    );
    assert!(resumed < Duration::from_secs(5), "{resumed:?}");
    assert!(restarted.duration_since(killed) >= Duration::from_secs(3));
    // The other camera kept delivering through the outage (12.5 fps; allow slack).
    let b_frames = rb.frames.lock().unwrap();
    let during: Vec<_> = b_frames
        .iter()
        .filter(|(t, _)| *t > killed && *t < restarted)
        .collect();
    assert!(
        during.len() >= 25,
        "b delivered {} frames during the outage",
        during.len()
    );
    for w in during.windows(2) {
        assert!(w[1].0 - w[0].0 < Duration::from_millis(800));
    }
    drop(b_frames);
    assert!(b_during_outage > 0);
    assert_eq!(b.status().reconnects, 0);
    ra.check_monotonic();
    rb.check_monotonic();
    assert!(a.status().reconnects >= 1);
    assert!(a.status().last_error.is_some());
    a.stop();
    b.stop();
    drop(sim_a);
    drop(sim_b);
}

#[test]
fn stalled_server_is_detected_and_reconnected() {
    let port = free_port();
    let cam = sim(port);
    let q = queue(16);
    let cfg = rtsp_config("stally", &cam.url());
    let stall_timeout = cfg.stall_timeout;
    let sup = CameraSupervisor::start(cfg, q.clone()).unwrap();
    let r = Recorder::new(q);
    assert!(wait_for(Duration::from_secs(10), || r.count() >= 10).is_some());
    // The session that stalls. (Read before the stall: the new session may deliver a frame the
    // server still holds before this thread looks again.)
    let session = r.last_session().unwrap();
    cam.set_paused(true);
    // The last frame before the stall.
    std::thread::sleep(Duration::from_millis(300));
    let last = r.frames.lock().unwrap().last().unwrap().0;
    wait_for(Duration::from_secs(10), || sup.status().stalls >= 1).expect("stall detected");
    let since_last = last.elapsed();
    let st = sup.status();
    println!("stall detected; status {st:?}");
    assert!(st.last_error.as_deref().unwrap().contains("stalled"));
    // Detected within the stall timeout (plus polling slack) of the last frame.
    assert!(
        since_last <= stall_timeout + Duration::from_millis(700),
        "{since_last:?}"
    );
    let before_resume = r.count();
    cam.set_paused(false);
    let resumed = wait_for(Duration::from_secs(8), || {
        r.last_session().is_some_and(|s| s > session) && r.count() >= before_resume + 5
    });
    assert!(
        resumed.is_some(),
        "reconnected and streaming again: {:?}",
        sup.status()
    );
    assert!(sup.status().reconnects >= 1);
    r.check_monotonic();
}

/// `sim-camera --loop` serves a file forever: an RTSP client keeps receiving frames well past twice the
/// file's length, for an MP4 and for an MPEG-TS file, with time never going backwards.
#[test]
fn a_looping_sim_camera_serves_past_twice_the_file() {
    const FRAMES: u32 = 60; // one GOP, 4.8 s at 12.5 fps
    let dir = tempfile::tempdir().unwrap();
    for (name, muxer) in [("gop.mp4", "mp4mux"), ("gop.ts", "mpegtsmux")] {
        let file = dir.path().join(name);
        first_frames(&file, muxer, FRAMES);
        let mut c = SimConfig::new(&file, free_port());
        c.looping = true;
        let cam = SimCamera::start(c).unwrap();
        let q = queue(64);
        let sup =
            CameraSupervisor::start(rtsp_config(&name.replace('.', "-"), &cam.url()), q.clone())
                .unwrap();
        let want = 2 * FRAMES as usize + 15;
        let frames = collect(&q, Duration::from_secs(40), |f| f.len() >= want);
        assert!(
            frames.len() >= want,
            "{name}: {} frames of {want} ({:?})",
            frames.len(),
            sup.status()
        );
        assert!(cam.is_running(), "{name}: the camera still serves");
        let span = frames[frames.len() - 1]
            .captured_at()
            .duration_since(frames[0].captured_at())
            .unwrap_or_default();
        assert!(span >= Duration::from_millis(2 * 4800), "{name}: {span:?}");
        assert!(
            frames
                .windows(2)
                .all(|w| w[1].captured_at() >= w[0].captured_at()),
            "{name}: time went backwards"
        );
        assert_eq!(sup.status().reconnects, 0, "{name}: {:?}", sup.status());
        sup.stop();
        cam.stop();
    }
}
