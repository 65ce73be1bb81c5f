use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::{Duration, Instant, SystemTime};

use gst::prelude::*;
use roadwarden_types::CameraId;

use crate::queue::QueuePolicy;
use crate::recorder::{AccessUnit, Recorder};
use crate::redact::Redactor;
use crate::source::{SourceConfig, SourceKind};
use crate::timeline::Timeline;
use crate::{ClipJob, FrameQueue, MediaError};

/// Where a camera's supervisor is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CameraState {
    /// Building the pipeline and waiting for its first frame.
    Connecting,
    /// Frames are flowing.
    Streaming,
    /// The last attempt failed; waiting before the next one.
    Backoff,
    /// Given up: a broken file, a bad config, or `max_attempts` failures in a row. See `last_error`.
    Failed,
    /// A file (not looping) played to its end.
    Finished,
    /// [`CameraSupervisor::stop`] was called.
    Stopped,
}

/// A snapshot of a camera's supervisor, for status pages and tests.
#[derive(Debug, Clone)]
pub struct CameraStatus {
    pub state: CameraState,
    /// The last error, credentials redacted.
    pub last_error: Option<String>,
    /// Pipelines built so far (1 after the first connect).
    pub sessions: u64,
    /// Pipelines rebuilt after an error, EOS of a live source, a stall or a forced reconnect.
    pub reconnects: u64,
    /// Stalls detected (no frame for `stall_timeout`).
    pub stalls: u64,
    /// Frames decoded (before pacing).
    pub frames_decoded: u64,
    /// Frames handed to the queue (after pacing).
    pub frames_delivered: u64,
    /// Frames the queue dropped because inference lagged.
    pub frames_dropped: u64,
    /// The machine's clock when the last frame was decoded (not the recording's time).
    pub last_frame_at: Option<SystemTime>,
}

/// One camera: runs its pipeline on its own thread, rebuilds it on failure, feeds a [`FrameQueue`].
pub struct CameraSupervisor {
    shared: Arc<Shared>,
    thread: Option<JoinHandle<()>>,
}

struct Shared {
    config: SourceConfig,
    redactor: Redactor,
    queue: Arc<FrameQueue>,
    recorder: Option<Recorder>,
    status: Mutex<CameraStatus>,
    stop: AtomicBool,
    force: AtomicBool,
    timeline: Mutex<Timeline>,
    next_due: Mutex<Option<Duration>>,
    epoch: Instant,
    /// Milliseconds since `epoch` of the last sign of life (a frame, or waiting on a full queue).
    progress_ms: AtomicU64,
    decoded: AtomicU64,
    session_frames: AtomicU64,
    /// End (pts + duration) of the session's last decoded frame, in ns.
    session_end_ns: AtomicU64,
}

enum Outcome {
    Stopped,
    Forced,
    Eos,
    Stall(Duration),
    Error(String),
    /// Cannot work however often it is retried.
    Fatal(String),
}

impl CameraSupervisor {
    /// Starts supervising one camera; frames go to `queue` (which several cameras may share).
    /// Fails at once on a config that cannot work (missing file, unknown decoder, broken template);
    /// everything else (unreachable camera, corrupt data) shows in [`CameraSupervisor::status`].
    pub fn start(
        config: SourceConfig,
        queue: Arc<FrameQueue>,
    ) -> Result<CameraSupervisor, MediaError> {
        crate::init()?;
        if let SourceKind::File { path, .. } = &config.kind
            && !path.is_file()
        {
            return Err(MediaError::File {
                path: path.clone(),
                reason: "no such file".into(),
            });
        }
        config.pipeline_text()?;
        let timeline = Timeline::new(config.wall_anchored(), config.recording_start);
        let shared = Arc::new(Shared {
            redactor: config.redactor(),
            recorder: config
                .pre_event
                .map(|pre| Recorder::new(config.camera.clone(), pre)),
            queue,
            status: Mutex::new(CameraStatus {
                state: CameraState::Connecting,
                last_error: None,
                sessions: 0,
                reconnects: 0,
                stalls: 0,
                frames_decoded: 0,
                frames_delivered: 0,
                frames_dropped: 0,
                last_frame_at: None,
            }),
            stop: AtomicBool::new(false),
            force: AtomicBool::new(false),
            timeline: Mutex::new(timeline),
            next_due: Mutex::new(None),
            epoch: Instant::now(),
            progress_ms: AtomicU64::new(0),
            decoded: AtomicU64::new(0),
            session_frames: AtomicU64::new(0),
            session_end_ns: AtomicU64::new(0),
            config,
        });
        let s = shared.clone();
        let thread = std::thread::Builder::new()
            .name(format!("camera-{}", shared.config.camera))
            .spawn(move || supervise(s))
            .map_err(|e| MediaError::Stream {
                camera: shared.config.camera.to_string(),
                reason: format!("cannot start its thread: {e}"),
            })?;
        Ok(CameraSupervisor {
            shared,
            thread: Some(thread),
        })
    }

    pub fn camera(&self) -> &CameraId {
        &self.shared.config.camera
    }

    /// State, last error (redacted) and counters.
    pub fn status(&self) -> CameraStatus {
        let mut s = self.shared.status.lock().unwrap().clone();
        s.frames_dropped = self.shared.queue.drops(&self.shared.config.camera);
        s
    }

    /// Tears the pipeline down and builds a new one at once (no backoff).
    pub fn force_reconnect(&self) {
        self.shared.force.store(true, Ordering::SeqCst);
    }

    /// The camera's evidence recorder (`None` when `pre_event` is `None`).
    pub fn recorder(&self) -> Option<&Recorder> {
        self.shared.recorder.as_ref()
    }

    /// Records `pre` seconds before now and `post` after to an MP4; see [`Recorder::request_clip`].
    pub fn request_clip(
        &self,
        path: &std::path::Path,
        pre: Duration,
        post: Duration,
    ) -> Result<ClipJob, MediaError> {
        match &self.shared.recorder {
            Some(r) => r.request_clip(path, pre, post),
            None => Err(MediaError::Clip {
                path: path.to_owned(),
                reason: format!("camera {} keeps no pre-event video", self.camera()),
            }),
        }
    }

    /// Waits until the supervisor ends by itself (a file `Finished`, or `Failed`) or `timeout` passes;
    /// returns the state then.
    pub fn wait(&self, timeout: Duration) -> CameraState {
        let deadline = Instant::now() + timeout;
        loop {
            let state = self.shared.status.lock().unwrap().state;
            if matches!(
                state,
                CameraState::Finished | CameraState::Failed | CameraState::Stopped
            ) || Instant::now() >= deadline
            {
                return state;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// Stops the pipeline and joins the camera's thread.
    pub fn stop(mut self) {
        self.shutdown();
    }

    fn shutdown(&mut self) {
        self.shared.stop.store(true, Ordering::SeqCst);
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

impl Drop for CameraSupervisor {
    fn drop(&mut self) {
        self.shutdown();
    }
}

impl Shared {
    fn now_ms(&self) -> u64 {
        self.epoch.elapsed().as_millis() as u64
    }

    fn progress(&self) {
        self.progress_ms.store(self.now_ms(), Ordering::Relaxed);
    }

    fn set_state(&self, state: CameraState) {
        self.status.lock().unwrap().state = state;
    }

    fn pace(&self, t: Duration) -> bool {
        let Some(fps) = self.config.analysis_fps.filter(|f| *f > 0.0) else {
            return true;
        };
        let period = Duration::from_secs_f64(1.0 / fps);
        let mut due = self.next_due.lock().unwrap();
        match *due {
            Some(d) if t + Duration::from_millis(1) < d => false,
            Some(d) => {
                let next = d + period;
                *due = Some(if next <= t { t + period } else { next });
                true
            }
            None => {
                *due = Some(t + period);
                true
            }
        }
    }

    fn error(&self, reason: &str) -> String {
        let reason = self.redactor.clean(reason);
        match &self.config.kind {
            SourceKind::File { path, .. } => MediaError::File {
                path: path.clone(),
                reason,
            },
            SourceKind::Rtsp { .. } => MediaError::Stream {
                camera: format!("{} ({})", self.config.camera, self.config.describe()),
                reason,
            },
        }
        .to_string()
    }
}

fn supervise(shared: Arc<Shared>) {
    let cfg = &shared.config;
    let camera = cfg.camera.clone();
    let mut backoff = cfg.backoff_min;
    let mut failures = 0u32;
    let mut session = 0u64;
    let mut seed = jitter_seed(&camera);
    loop {
        if shared.stop.load(Ordering::SeqCst) {
            break;
        }
        shared.set_state(CameraState::Connecting);
        {
            let mut st = shared.status.lock().unwrap();
            st.sessions += 1;
        }
        shared.timeline.lock().unwrap().new_session();
        shared.session_frames.store(0, Ordering::SeqCst);
        shared.session_end_ns.store(0, Ordering::SeqCst);
        shared.progress();
        tracing::info!(camera = %camera, source = %cfg.describe(), session, "connecting");
        let outcome = run_session(&shared, session);
        if let Some(r) = &shared.recorder {
            r.end_session();
        }
        session += 1;
        let got_frames = shared.session_frames.load(Ordering::SeqCst) > 0;
        let reason = match outcome {
            Outcome::Stopped => break,
            Outcome::Forced => {
                tracing::info!(camera = %camera, "forced reconnect");
                shared.status.lock().unwrap().reconnects += 1;
                continue;
            }
            Outcome::Fatal(e) => {
                fail(&shared, e);
                return;
            }
            Outcome::Eos => match &cfg.kind {
                SourceKind::File { looping: true, .. } if got_frames => continue,
                SourceKind::File { .. } if got_frames => {
                    tracing::info!(camera = %camera, "file finished");
                    shared.set_state(CameraState::Finished);
                    return;
                }
                SourceKind::File { .. } => {
                    fail(
                        &shared,
                        shared.error("ended without a single decodable frame"),
                    );
                    return;
                }
                SourceKind::Rtsp { .. } => shared.error("the camera ended the stream (EOS)"),
            },
            Outcome::Error(e) => {
                if matches!(cfg.kind, SourceKind::File { .. }) {
                    fail(&shared, e);
                    return;
                }
                e
            }
            Outcome::Stall(d) => {
                shared.status.lock().unwrap().stalls += 1;
                shared.error(&format!("stalled: no frame for {:.1} s", d.as_secs_f64()))
            }
        };
        tracing::warn!(camera = %camera, error = %reason, "camera lost; reconnecting");
        {
            let mut st = shared.status.lock().unwrap();
            st.last_error = Some(reason.clone());
        }
        if got_frames {
            backoff = cfg.backoff_min;
            failures = 0;
        }
        failures += 1;
        if cfg.max_attempts.is_some_and(|m| failures >= m) {
            fail(
                &shared,
                format!("{reason} (gave up after {failures} attempts)"),
            );
            return;
        }
        // Equal jitter: half the backoff fixed, half random, so cameras that failed together spread out.
        seed = xorshift(seed);
        let half = backoff / 2;
        let delay = half + half.mul_f64((seed % 1_000_000) as f64 / 1_000_000.0);
        shared.set_state(CameraState::Backoff);
        tracing::info!(camera = %camera, delay_ms = delay.as_millis() as u64, "backing off");
        let until = Instant::now() + delay;
        while Instant::now() < until && !shared.stop.load(Ordering::SeqCst) {
            std::thread::sleep(
                Duration::from_millis(10).min(until.saturating_duration_since(Instant::now())),
            );
        }
        backoff = (backoff * 2).min(cfg.backoff_max).max(cfg.backoff_min);
        shared.status.lock().unwrap().reconnects += 1;
    }
    shared.set_state(CameraState::Stopped);
}

fn fail(shared: &Shared, error: String) {
    tracing::error!(camera = %shared.config.camera, error = %error, "camera failed");
    let mut st = shared.status.lock().unwrap();
    st.last_error = Some(error);
    st.state = CameraState::Failed;
}

fn jitter_seed(camera: &CameraId) -> u64 {
    let mut h = 0xcbf2_9ce4_8422_2325u64;
    for b in camera.as_str().bytes() {
        h = (h ^ b as u64).wrapping_mul(0x100_0000_01b3);
    }
    let nanos = SystemTime::now()
        .duration_since(SystemTime::UNIX_EPOCH)
        .map(|d| d.as_nanos() as u64)
        .unwrap_or(0);
    (h ^ nanos) | 1
}

fn xorshift(mut x: u64) -> u64 {
    x ^= x << 13;
    x ^= x >> 7;
    x ^= x << 17;
    x
}

fn dur(t: Option<gst::ClockTime>) -> Option<Duration> {
    t.map(crate::bus::dur)
}

fn run_session(shared: &Arc<Shared>, session: u64) -> Outcome {
    let text = match shared.config.pipeline_text() {
        Ok(t) => t,
        Err(e) => return Outcome::Fatal(shared.error(&e.to_string())),
    };
    let pipeline = match gst::parse::launch(&text) {
        Ok(p) => p,
        Err(e) => return Outcome::Fatal(shared.error(&format!("cannot build the pipeline: {e}"))),
    };
    let Ok(pipeline) = pipeline.downcast::<gst::Pipeline>() else {
        return Outcome::Fatal(shared.error("the template is a single element, not a pipeline"));
    };
    let Some(frames) = pipeline
        .by_name("frames")
        .and_then(|e| e.downcast::<gst_app::AppSink>().ok())
    else {
        return Outcome::Fatal(shared.error("the template has no appsink named frames"));
    };
    if let SourceKind::Rtsp { url, .. } = &shared.config.kind
        && let Some(src) = pipeline.by_name("src")
    {
        if let Some(u) = &url.user {
            src.set_property("user-id", u);
        }
        if let Some(p) = &url.password {
            src.set_property("user-pw", p);
        }
    }
    if matches!(shared.config.kind, SourceKind::File { .. }) {
        watch_creation_time(shared, &frames);
    }
    let cancel = Arc::new(AtomicBool::new(false));
    install_frame_sink(shared, &frames, session, cancel.clone());
    if let Some(encoded) = pipeline
        .by_name("encoded")
        .and_then(|e| e.downcast::<gst_app::AppSink>().ok())
    {
        install_encoded_sink(shared, &encoded, session);
    }
    let bus = pipeline.bus().expect("a pipeline has a bus");
    let outcome = if pipeline.set_state(gst::State::Playing).is_err() {
        // The reason is on the bus.
        match bus.timed_pop_filtered(
            gst::ClockTime::from_mseconds(500),
            &[gst::MessageType::Error],
        ) {
            Some(msg) => match msg.view() {
                gst::MessageView::Error(e) => Outcome::Error(describe_error(shared, e)),
                _ => Outcome::Error(shared.error("the pipeline would not start")),
            },
            None => Outcome::Error(shared.error("the pipeline would not start")),
        }
    } else {
        watch(shared, &pipeline, &bus)
    };
    cancel.store(true, Ordering::SeqCst);
    let _ = pipeline.set_state(gst::State::Null);
    outcome
}

/// A file's container creation time (the `datetime` tag, e.g. an MP4's `mvhd` creation time), seen by the
/// frame sink before the first frame (events and buffers keep their order), becomes the recording's
/// start unless one was given.
fn watch_creation_time(shared: &Arc<Shared>, sink: &gst_app::AppSink) {
    let Some(pad) = sink.static_pad("sink") else {
        return;
    };
    let shared = shared.clone();
    pad.add_probe(gst::PadProbeType::EVENT_DOWNSTREAM, move |_, info| {
        if let Some(gst::PadProbeData::Event(ev)) = &info.data
            && let gst::EventView::Tag(tag) = ev.view()
            && let Some(dt) = tag.tag().get::<gst::tags::DateTime>()
            && let Ok(g) = dt.get().to_g_date_time()
            && let Ok(secs) = u64::try_from(g.to_unix())
        {
            let at = SystemTime::UNIX_EPOCH
                + Duration::from_secs(secs)
                + Duration::from_micros(g.microsecond().max(0) as u64);
            if shared.timeline.lock().unwrap().container_start(at) {
                tracing::info!(camera = %shared.config.camera, creation_unix_s = secs,
                    "the file's frames are dated from its container's creation time");
            }
        }
        gst::PadProbeReturn::Ok
    });
}

/// An element's error as a person reads it: GStreamer's message, the element, and what to check.
/// GStreamer's debug text (its C source file and line, the element's object path) goes to the debug
/// log only.
fn describe_error(shared: &Shared, e: &gst::message::Error) -> String {
    let src = e.src().map(|s| s.name().to_string()).unwrap_or_default();
    if let Some(detail) = e.debug() {
        let detail = shared.redactor.clean(detail.as_str());
        tracing::debug!(camera = %shared.config.camera, element = %src, %detail,
            "pipeline error (GStreamer's detail)");
    }
    let err = e.error();
    let mut reason = format!("{err} (from {src})");
    if let Some(hint) = crate::source::hint(&err, shared.config.is_live()) {
        reason.push_str(": ");
        reason.push_str(hint);
    }
    shared.error(&reason)
}

fn watch(shared: &Arc<Shared>, pipeline: &gst::Pipeline, bus: &gst::Bus) -> Outcome {
    let stall = shared.config.stall_timeout;
    loop {
        if shared.stop.load(Ordering::SeqCst) {
            return Outcome::Stopped;
        }
        if shared.force.swap(false, Ordering::SeqCst) {
            return Outcome::Forced;
        }
        if let Some(msg) = bus.timed_pop_filtered(
            gst::ClockTime::from_mseconds(50),
            &[
                gst::MessageType::Error,
                gst::MessageType::Eos,
                gst::MessageType::Warning,
            ],
        ) {
            match msg.view() {
                gst::MessageView::Error(e) => return Outcome::Error(describe_error(shared, e)),
                gst::MessageView::Warning(w) => {
                    tracing::debug!(camera = %shared.config.camera,
                        warning = %shared.redactor.clean(&w.error().to_string()), "pipeline warning");
                }
                gst::MessageView::Eos(_) => {
                    if let SourceKind::File { path, .. } = &shared.config.kind
                        && let Some(why) = crate::source::truncated_transport_stream(path)
                    {
                        return Outcome::Error(shared.error(&why));
                    }
                    if let SourceKind::File { .. } = shared.config.kind
                        && let Some(total) = pipeline.query_duration::<gst::ClockTime>()
                    {
                        let end =
                            Duration::from_nanos(shared.session_end_ns.load(Ordering::SeqCst));
                        let total = Duration::from_nanos(total.nseconds());
                        if shared.session_frames.load(Ordering::SeqCst) > 0
                            && end + Duration::from_millis(500) < total
                        {
                            return Outcome::Error(shared.error(&format!(
                                "truncated or corrupt: video ends at {:.2} s of {:.2} s",
                                end.as_secs_f64(),
                                total.as_secs_f64()
                            )));
                        }
                    }
                    return Outcome::Eos;
                }
                _ => {}
            }
        }
        let idle = shared
            .now_ms()
            .saturating_sub(shared.progress_ms.load(Ordering::Relaxed));
        if idle > stall.as_millis() as u64 {
            return Outcome::Stall(Duration::from_millis(idle));
        }
    }
}

fn install_frame_sink(
    shared: &Arc<Shared>,
    sink: &gst_app::AppSink,
    session: u64,
    cancel: Arc<AtomicBool>,
) {
    let shared = shared.clone();
    let info: Mutex<Option<(gst::Caps, gst_video::VideoInfo)>> = Mutex::new(None);
    sink.set_callbacks(
        gst_app::AppSinkCallbacks::builder()
            .new_sample(move |sink| {
                let sample = sink.pull_sample().map_err(|_| gst::FlowError::Flushing)?;
                let buffer = sample.buffer_owned().ok_or(gst::FlowError::Error)?;
                let caps = sample.caps_owned().ok_or(gst::FlowError::NotNegotiated)?;
                let vinfo = {
                    let mut cached = info.lock().unwrap();
                    match &*cached {
                        Some((c, i)) if *c == caps => i.clone(),
                        _ => {
                            let i = gst_video::VideoInfo::from_caps(&caps)
                                .map_err(|_| gst::FlowError::NotNegotiated)?;
                            *cached = Some((caps, i.clone()));
                            i
                        }
                    }
                };
                shared.progress();
                let index = shared.decoded.fetch_add(1, Ordering::SeqCst);
                let first = shared.session_frames.fetch_add(1, Ordering::SeqCst) == 0;
                let pts = dur(buffer.pts());
                if let Some(p) = pts {
                    let end = p + dur(buffer.duration()).unwrap_or_default();
                    shared
                        .session_end_ns
                        .fetch_max(end.as_nanos() as u64, Ordering::SeqCst);
                }
                let clock = SystemTime::now();
                let (t, wall) = {
                    let mut tl = shared.timeline.lock().unwrap();
                    let t = tl.frame(pts);
                    (t, tl.wall(t))
                };
                let keep = shared.pace(t);
                {
                    let mut st = shared.status.lock().unwrap();
                    st.frames_decoded += 1;
                    if first {
                        st.state = CameraState::Streaming;
                    }
                    st.last_frame_at = Some(clock);
                    if keep {
                        st.frames_delivered += 1;
                    }
                }
                if first {
                    tracing::info!(camera = %shared.config.camera, session, "streaming");
                }
                if !keep {
                    return Ok(gst::FlowSuccess::Ok);
                }
                let video = gst_video::VideoFrame::from_buffer_readable(buffer, &vinfo)
                    .map_err(|_| gst::FlowError::Error)?;
                let frame = match crate::Frame::new(
                    shared.config.camera.clone(),
                    index,
                    session,
                    pts,
                    t,
                    (wall, clock),
                    video,
                ) {
                    Ok(f) => f,
                    Err(e) => {
                        gst::element_error!(sink, gst::StreamError::Format, ("{}", e));
                        return Err(gst::FlowError::Error);
                    }
                };
                match shared.config.queue_policy {
                    QueuePolicy::DropOldest => {
                        shared.queue.push(frame);
                    }
                    QueuePolicy::Block => {
                        let s = shared.clone();
                        if !shared
                            .queue
                            .push_blocking(frame, &cancel, &move || s.progress())
                        {
                            return Err(gst::FlowError::Flushing);
                        }
                    }
                }
                Ok(gst::FlowSuccess::Ok)
            })
            .build(),
    );
}

fn install_encoded_sink(shared: &Arc<Shared>, sink: &gst_app::AppSink, session: u64) {
    let shared = shared.clone();
    sink.set_callbacks(
        gst_app::AppSinkCallbacks::builder()
            .new_sample(move |sink| {
                let sample = sink.pull_sample().map_err(|_| gst::FlowError::Flushing)?;
                let Some(recorder) = &shared.recorder else {
                    return Ok(gst::FlowSuccess::Ok);
                };
                let buffer = sample.buffer_owned().ok_or(gst::FlowError::Error)?;
                let caps = sample.caps_owned().ok_or(gst::FlowError::NotNegotiated)?;
                let (t, wall) = {
                    let mut tl = shared.timeline.lock().unwrap();
                    let t = tl.access_unit(dur(buffer.pts().or(buffer.dts())));
                    (t, tl.wall(t))
                };
                let key = !buffer.flags().contains(gst::BufferFlags::DELTA_UNIT);
                recorder.push(AccessUnit {
                    buffer,
                    caps,
                    timeline: t,
                    wall,
                    key,
                    session,
                });
                Ok(gst::FlowSuccess::Ok)
            })
            .build(),
    );
}
