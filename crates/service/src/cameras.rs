//! The cameras of the service: a runner thread per configured camera (its `CameraPipeline` over
//! `run_source_observed`, stopped by a flag) and the recorder thread of the process ([`crate::recorder`]),
//! which commits each violation and then announces it with `state.publish`. Both publish their status on
//! the service's board; runners follow the thresholds in force and take signal reports from the API.

use std::cell::RefCell;
use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, mpsc};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use chrono::{DateTime, Utc};
use roadwarden_evidence::{DataDir, Recorded};
use roadwarden_infer::{BatcherConfig, BatcherStats, Runtime, RuntimeConfig};
use roadwarden_media::redact::redact_url;
use roadwarden_media::{CameraState, QueuePolicy, Replay, SourceConfig, SourceKind};
use roadwarden_pipeline::{
    CameraPipeline, RunnerEvent, SharedInference, SourceTick, run_source_observed,
};
use roadwarden_rules::{CameraConfig, InferenceConfig, SiteConfig};
use roadwarden_server::{
    AppState, CameraBoard, CameraStatus, Event, InferenceCameraStatus, InferenceStatus,
    PipelineStatus, RecorderStatus, ReloadReport, Thresholds,
};
use roadwarden_types::{ClassRole, SignalState};

use crate::ServiceError;
use crate::recorder::{
    Handled, OnFailure, RecordObserver, RecorderThread, Tally, ToRecorder, clip_dir,
    evidence_options, stop_line,
};
use crate::reload::plan;

/// How often a runner publishes its status: between frames, so a slower frame delays it.
const PUBLISH_EVERY: Duration = Duration::from_millis(500);

type SignalReport = (DateTime<Utc>, SignalState);

/// The thread budget: `--threads N` (default: every core this process may use) is shared by the site's K
/// cameras, `max(1, N / K)` ONNX Runtime intra-op threads each, so K cameras do not oversubscribe the cores
/// (the same split as `roadwarden bench`). Cameras started by a reload get the split of the new site.
fn threads_per_camera(threads: Option<usize>, cameras: usize) -> usize {
    let n = threads.unwrap_or_else(|| std::thread::available_parallelism().map_or(1, |n| n.get()));
    (n / cameras.max(1)).max(1)
}

/// Where the cameras' evidence goes and how models run.
pub struct CameraSetup {
    /// Relative file sources are found from here (the site file's folder).
    pub base: PathBuf,
    pub ort: RuntimeConfig,
    pub data: DataDir,
    pub database_url: Option<String>,
    /// Several nodes share the site (PostgreSQL): only the cameras whose lease this node holds run
    /// ([`Cameras::run_only`]), none at start.
    pub leased: bool,
}

struct Runner {
    config: CameraConfig,
    stop: Arc<AtomicBool>,
    signals: mpsc::Sender<SignalReport>,
    thread: Option<JoinHandle<()>>,
}

/// The running cameras and the recorder.
pub struct Cameras {
    state: AppState,
    base: PathBuf,
    ort: RuntimeConfig,
    runtime: Option<Runtime>,
    clip_dir: PathBuf,
    runners: BTreeMap<String, Runner>,
    recorder: RecorderThread,
    /// `[inference] batch`: one batcher per model shared by every camera (fixed at start: a reload
    /// that changes `[inference]` takes effect at the next start).
    inference: InferenceConfig,
    shared: Option<Arc<SharedInference>>,
    /// With leases, the cameras this node may run (the others of the site run on other nodes).
    held: Option<BTreeSet<String>>,
}

/// A shared batcher's figures as `/metrics` shows them.
fn inference_status((model, st): (PathBuf, BatcherStats)) -> InferenceStatus {
    InferenceStatus {
        model: model
            .file_stem()
            .map(|s| s.to_string_lossy().into_owned())
            .unwrap_or_else(|| model.display().to_string()),
        runs_by_size: st.runs_by_size,
        images: st.images,
        cameras: st
            .cameras
            .into_iter()
            .map(|c| InferenceCameraStatus {
                camera: c.camera,
                requests: c.requests,
                latency_seconds_sum: c.total.as_secs_f64(),
                latency_seconds_max: c.max.as_secs_f64(),
            })
            .collect(),
    }
}

impl Cameras {
    /// Opens the recorder (refusing to run when nothing could be recorded) and starts `site`'s cameras.
    pub fn start(
        state: AppState,
        site: &SiteConfig,
        setup: CameraSetup,
    ) -> Result<Cameras, ServiceError> {
        let clip_dir = clip_dir(&setup.data);
        std::fs::create_dir_all(&clip_dir).map_err(|source| ServiceError::CreateDir {
            path: clip_dir.clone(),
            source,
        })?;
        let board = BoardObserver::new(state.clone());
        let recorder = RecorderThread::spawn(
            setup.data,
            setup.database_url,
            clip_dir.clone(),
            OnFailure::GoOn,
            board,
        )?;
        let mut cameras = Cameras {
            state,
            base: setup.base,
            ort: setup.ort,
            runtime: None,
            clip_dir,
            runners: BTreeMap::new(),
            recorder,
            held: setup.leased.then(BTreeSet::new),
            inference: site.inference,
            shared: site.inference.batch.then(|| {
                Arc::new(SharedInference::new(BatcherConfig {
                    max_batch: site.inference.max_batch,
                    max_wait: Duration::from_millis(site.inference.max_wait_ms),
                }))
            }),
        };
        if let Some(shared) = &cameras.shared {
            let shared = Arc::downgrade(shared);
            cameras.state.camera_board().set_inference_source(move || {
                shared
                    .upgrade()
                    .map(|s| s.stats().into_iter().map(inference_status).collect())
                    .unwrap_or_default()
            });
        }
        let started = cameras.apply(site);
        if cameras.held.is_some() {
            tracing::info!("cameras: as leased (several nodes share the site)");
        } else {
            tracing::info!("cameras: {}", started.added.join(", "));
        }
        Ok(cameras)
    }

    /// With leases: runs only `held` of `site`'s cameras (starting and stopping through [`Cameras::apply`]).
    pub fn run_only(&mut self, held: BTreeSet<String>, site: &SiteConfig) -> ReloadReport {
        self.held = Some(held);
        self.apply(site)
    }

    /// Makes the running cameras those of `site` (see [`plan`]): starts new ones, stops removed ones,
    /// restarts those whose config changed and leaves the others alone.
    pub fn apply(&mut self, site: &SiteConfig) -> ReloadReport {
        let leased;
        let site = match &self.held {
            None => site,
            Some(held) => {
                leased = SiteConfig {
                    cameras: site
                        .cameras
                        .iter()
                        .filter(|c| held.contains(c.id.as_str()))
                        .cloned()
                        .collect(),
                    ..site.clone()
                };
                &leased
            }
        };
        let running = self.runners.iter().map(|(id, r)| (id.as_str(), &r.config));
        let report = plan(running, site);
        let going = report.removed.iter().chain(&report.restarted);
        stop_all(going.filter_map(|id| self.runners.remove(id)).collect());
        let board = self.state.camera_board();
        for id in &report.removed {
            board.remove(id);
        }
        if site.inference != self.inference {
            tracing::warn!(
                "[inference] changed in the site file: it takes effect when the service starts again"
            );
        }
        // A shared batcher runs one model at a time on all the cores; sessions of each camera's own
        // share them.
        let sessions = if self.shared.is_some() {
            1
        } else {
            site.cameras.len()
        };
        let threads = threads_per_camera(self.ort.threads, sessions);
        for cam in &site.cameras {
            let id = cam.id.to_string();
            if !self.runners.contains_key(&id) {
                let runner = self.spawn(cam, threads);
                self.runners.insert(id, runner);
            }
        }
        report
    }

    /// Hands a controller's signal report to a camera's runner, for its next frame.
    pub fn signal(
        &self,
        camera: &str,
        at: DateTime<Utc>,
        state: SignalState,
    ) -> Result<(), String> {
        let not_running = || format!("camera `{camera}` is not running (see its status)");
        let r = self.runners.get(camera).ok_or_else(not_running)?;
        if r.thread.as_ref().is_none_or(|t| t.is_finished()) {
            return Err(not_running());
        }
        r.signals.send((at, state)).map_err(|_| not_running())
    }

    /// Stops every camera (their last violations still go to the recorder), lets the recorder commit
    /// what it was handed and flush the spool.
    pub fn shutdown(self) -> Result<Tally, ServiceError> {
        stop_all(self.runners.into_values().collect());
        for (model, st) in self.shared.as_ref().map(|s| s.stats()).unwrap_or_default() {
            let latency_ms: Vec<String> = st
                .cameras
                .iter()
                .map(|c| format!("{} {:.1}", c.camera, 1000.0 * c.mean().as_secs_f64()))
                .collect();
            tracing::info!(
                model = %model.display(),
                runs = st.runs,
                images = st.images,
                mean_batch = st.mean_batch(),
                runs_by_size = ?st.runs_by_size,
                mean_latency_ms = %latency_ms.join(", "),
                "shared inference batcher"
            );
        }
        self.recorder.finish()
    }

    /// The shared batchers' metrics (batch sizes, per-camera latency) by model; empty unless the site
    /// file's `[inference] batch` was on at start.
    pub fn inference_stats(&self) -> Vec<(PathBuf, BatcherStats)> {
        self.shared.as_ref().map(|s| s.stats()).unwrap_or_default()
    }

    /// ONNX Runtime is loaded once; each camera's sessions get their own thread count.
    fn runtime(&mut self) -> Result<Runtime, String> {
        if let Some(r) = &self.runtime {
            return Ok(r.clone());
        }
        let r = Runtime::load(&self.ort).map_err(|e| e.to_string())?;
        self.runtime = Some(r.clone());
        Ok(r)
    }

    fn spawn(&mut self, cam: &CameraConfig, threads: usize) -> Runner {
        let (signals, signal_rx) = mpsc::channel();
        let stop = Arc::new(AtomicBool::new(false));
        let mut ort = self.ort.clone();
        ort.threads = Some(threads);
        let runtime = self.runtime().map(|mut rt| {
            rt.config.threads = Some(threads);
            rt
        });
        let job = Job {
            config: cam.clone(),
            base: self.base.clone(),
            ort,
            runtime,
            state: self.state.clone(),
            signals: signal_rx,
            stop: stop.clone(),
            to_recorder: self.recorder.sender(),
            clip_dir: self.clip_dir.clone(),
            shared: self.shared.clone(),
        };
        let thread = std::thread::Builder::new()
            .name(format!("cam-{}", cam.id))
            .spawn(move || job.run());
        let thread = match thread {
            Ok(t) => Some(t),
            Err(e) => {
                let live = Live::new(cam.id.as_str(), self.state.camera_board());
                live.end("failed", Some(format!("cannot start its thread: {e}")));
                None
            }
        };
        Runner {
            config: cam.clone(),
            stop,
            signals,
            thread,
        }
    }
}

/// Raises every runner's stop flag, then waits for each.
fn stop_all(runners: Vec<Runner>) {
    for r in &runners {
        r.stop.store(true, Ordering::SeqCst);
    }
    for r in runners {
        if let Some(t) = r.thread
            && t.join().is_err()
        {
            tracing::error!(camera = %r.config.id, "the camera's runner panicked");
        }
    }
}

/// The camera's source: a file (relative to `base`) played at its own pace and dropping frames when
/// analysis lags, as a live camera does; or an RTSP URL.
fn source_for(cam: &CameraConfig, base: &Path) -> Result<SourceConfig, String> {
    let spec = cam.source.as_ref();
    let Some(url) = spec.and_then(|s| s.url.as_deref()) else {
        return Err(format!(
            "camera `{}` has no `source.url` in the site file: nothing to analyse",
            cam.id
        ));
    };
    let mut source = if url.contains("://") {
        SourceConfig::rtsp(cam.id.clone(), url).map_err(|e| e.to_string())?
    } else {
        let path = base.join(url);
        if !path.is_file() {
            return Err(format!(
                "key `source.url`: {}: no such video file",
                path.display()
            ));
        }
        let mut s = SourceConfig::file(cam.id.clone(), path);
        if let SourceKind::File { replay, .. } = &mut s.kind {
            *replay = Replay::RealTime;
        }
        s.queue_policy = QueuePolicy::DropOldest;
        s
    };
    if let Some(d) = spec.and_then(|s| s.decoder.clone()) {
        source.decoder = d;
    }
    Ok(source)
}

/// The first wait before a failed runner is started again; each failure in a row doubles it, up to
/// [`RETRY_MAX`]. An attempt that ran at least [`RETRY_MAX`] starts the count again.
pub(crate) const RETRY_FIRST: Duration = Duration::from_secs(1);
/// The longest wait between two attempts of a failed runner.
pub(crate) const RETRY_MAX: Duration = Duration::from_secs(60);

/// The wait before the next attempt of a runner that failed after `failures` failures in a row (1..).
fn retry_after(failures: u32) -> Duration {
    let doubled = RETRY_FIRST.saturating_mul(1u32 << failures.saturating_sub(1).min(16));
    doubled.min(RETRY_MAX)
}

/// One camera's runner, as its thread gets it.
struct Job {
    config: CameraConfig,
    /// Relative file sources are found from here.
    base: PathBuf,
    /// How this camera's models run (its thread share), to load ONNX Runtime again if it failed.
    ort: RuntimeConfig,
    runtime: Result<Runtime, String>,
    state: AppState,
    signals: mpsc::Receiver<SignalReport>,
    stop: Arc<AtomicBool>,
    to_recorder: ToRecorder,
    clip_dir: PathBuf,
    /// The site's shared batchers (`[inference] batch`), else `None`: sessions of its own.
    shared: Option<Arc<SharedInference>>,
}

/// How one attempt of a runner ended.
enum Ended {
    /// Stopped, or the source ended as it should (a file played to its end): the runner is done.
    Done(&'static str, Option<String>),
    /// It failed (setup, models, pipeline, source given up): started again after a wait.
    Failed(String),
}

impl Job {
    /// Runs the camera; an attempt that failed before analysing a frame (its source, ONNX Runtime, its
    /// models, its pipeline) is retried after [`retry_after`] (1 s doubling to 60 s), its config
    /// unchanged, until it runs or the runner is stopped. The board says `retrying`, the error
    /// and when the next attempt is.
    fn run(mut self) {
        let id = self.config.id.to_string();
        let mut live = Live::new(&id, self.state.camera_board());
        let mut failures = 0u32;
        loop {
            let began = Instant::now();
            let error = match self.attempt(&mut live) {
                Ended::Done(state, error) => return live.end(state, error),
                Ended::Failed(e) => e,
            };
            if self.stopped() {
                return live.end("stopped", Some(error));
            }
            failures = if began.elapsed() >= RETRY_MAX {
                1
            } else {
                failures + 1
            };
            let wait = retry_after(failures);
            live.retrying(&error, wait, failures);
            let until = Instant::now() + wait;
            while Instant::now() < until {
                if self.stopped() {
                    return live.end("stopped", Some(error));
                }
                std::thread::sleep(Duration::from_millis(100).min(until - Instant::now()));
            }
        }
    }

    fn stopped(&self) -> bool {
        self.stop.load(Ordering::SeqCst)
    }

    /// One start of the camera: its source, ONNX Runtime, its pipeline, then frames until the end.
    fn attempt(&mut self, live: &mut Live) -> Ended {
        let source = match source_for(&self.config, &self.base) {
            Ok(s) => s,
            Err(e) => return Ended::Failed(e),
        };
        if self.runtime.is_err() {
            self.runtime = Runtime::load(&self.ort).map_err(|e| e.to_string());
        }
        let runtime = match &self.runtime {
            Ok(r) => r,
            Err(e) => return Ended::Failed(e.clone()),
        };
        let mut pipeline =
            match CameraPipeline::with_shared(&self.config, runtime, self.shared.as_deref()) {
                Ok(p) => p,
                Err(e) => return Ended::Failed(e.to_string()),
            };
        let id = self.config.id.to_string();
        live.starting();
        let analysed_before = live.pipeline.frames_analysed;
        let mut thresholds = self.state.thresholds();
        live.follow(&mut pipeline, &thresholds.borrow_and_update(), true);
        let (opts, line) = (
            evidence_options(Some(self.clip_dir.clone())),
            stop_line(&self.config),
        );
        let live = RefCell::new(live);
        let result = run_source_observed(
            &mut pipeline,
            source,
            &opts,
            |p, tick| {
                let mut live = live.borrow_mut();
                while let Ok((at, s)) = self.signals.try_recv() {
                    p.external_signal(at, s);
                }
                if thresholds.has_changed().unwrap_or(false) {
                    let t = thresholds.borrow_and_update().clone();
                    live.follow(p, &t, false);
                }
                live.source(tick);
            },
            |event, evidence| {
                live.borrow_mut().frame(event);
                for vf in evidence {
                    if !self.to_recorder.hand(vf, line) {
                        tracing::error!(camera = %id, "the recorder has stopped: a violation is lost");
                    }
                }
            },
            || self.stop.load(Ordering::SeqCst),
        );
        // A source that failed after frames were analysed (a file broken half-way) would be analysed
        // again from its start, recording its violations twice: that ends the runner. One that never
        // delivered a frame is retried.
        let started = live.into_inner().pipeline.frames_analysed > analysed_before;
        match result {
            Ok(_) if self.stopped() => Ended::Done("stopped", None),
            Ok(s) if s.state == CameraState::Failed && !started => Ended::Failed(
                s.last_error
                    .unwrap_or_else(|| "its source failed and was given up".to_owned()),
            ),
            Ok(s) => Ended::Done(state_name(s.state), s.last_error),
            Err(e) if !started => Ended::Failed(e.to_string()),
            Err(e) => Ended::Done("failed", Some(e.to_string())),
        }
    }
}

fn state_name(s: CameraState) -> &'static str {
    match s {
        CameraState::Connecting => "connecting",
        CameraState::Streaming => "running",
        CameraState::Backoff => "reconnecting",
        CameraState::Failed => "failed",
        CameraState::Finished => "finished",
        CameraState::Stopped => "stopped",
    }
}

fn signal_name(s: SignalState) -> &'static str {
    match s {
        SignalState::Red => "red",
        SignalState::Amber => "amber",
        SignalState::Green => "green",
        SignalState::Unknown => "unknown",
    }
}

/// A runner's status, published on the board.
struct Live {
    camera: String,
    board: CameraBoard,
    status: CameraStatus,
    pipeline: PipelineStatus,
    /// The class thresholds the pipeline applies.
    applied: Vec<(&'static str, f32)>,
    /// The next analysed frame is the first with changed thresholds.
    changed: bool,
    published: Instant,
    /// Start of the rate window: when, frames decoded, frames analysed.
    window: (Instant, u64, u64),
}

impl Live {
    fn new(camera: &str, board: CameraBoard) -> Live {
        let mut live = Live {
            camera: camera.to_owned(),
            board,
            status: CameraStatus {
                state: "starting".into(),
                ..CameraStatus::default()
            },
            pipeline: PipelineStatus {
                started_at: Some(Utc::now()),
                ..PipelineStatus::default()
            },
            applied: Vec::new(),
            changed: false,
            published: Instant::now(),
            window: (Instant::now(), 0, 0),
        };
        live.publish();
        live
    }

    /// Applies the thresholds in force for this camera to `p`; a change counts from the next frame.
    fn follow(&mut self, p: &mut CameraPipeline, t: &Thresholds, initial: bool) {
        for (class, th) in t.cameras.get(&self.camera).into_iter().flatten() {
            let role = ClassRole::ALL.into_iter().find(|r| r.as_str() == class);
            if !role.is_some_and(|r| p.set_class_threshold(r, th.value as f32)) {
                tracing::debug!(camera = %self.camera, class, "threshold of a class the pipeline does not use");
            }
        }
        let now = p.class_thresholds();
        if now == self.applied {
            return;
        }
        if !initial {
            tracing::info!(camera = %self.camera, thresholds = ?now, "thresholds changed; applied from the next frame");
            self.changed = true;
        }
        // Reported as the API set them (0.95, not the f32's 0.949999988).
        let round = |v: f32| (f64::from(v) * 1e6).round() / 1e6;
        self.pipeline.thresholds = now
            .iter()
            .map(|(k, v)| ((*k).to_owned(), round(*v)))
            .collect();
        self.applied = now;
    }

    fn source(&mut self, tick: &SourceTick) {
        let s = &tick.status;
        // The source may be over while queued frames are still analysed: the runner's end says so.
        if !matches!(
            s.state,
            CameraState::Finished | CameraState::Failed | CameraState::Stopped
        ) {
            self.status.state = state_name(s.state).into();
        }
        self.status.reconnects = s.reconnects;
        self.status.dropped_frames = s.frames_dropped;
        self.status.last_frame_at = s.last_frame_at.map(DateTime::<Utc>::from);
        self.status.last_error = s.last_error.as_deref().map(redact_url);
        self.pipeline.queue_depth = tick.queued as u64;
        let (since, decoded, analysed) = self.window;
        let dt = since.elapsed().as_secs_f64();
        if dt >= 1.0 {
            let rate = |n: u64| (n as f64 / dt * 100.0).round() / 100.0;
            self.status.input_fps = rate(s.frames_decoded.saturating_sub(decoded));
            self.status.analysed_fps = rate(self.pipeline.frames_analysed.saturating_sub(analysed));
            self.window = (
                Instant::now(),
                s.frames_decoded,
                self.pipeline.frames_analysed,
            );
        }
        self.publish_if_due();
    }

    fn frame(&mut self, event: RunnerEvent<'_>) {
        let p = &mut self.pipeline;
        for v in event.violations() {
            *p.violations.entry(v.kind.as_str().to_owned()).or_default() += 1;
        }
        let signal = match event {
            RunnerEvent::Frame(r) => r.signal,
            RunnerEvent::EndOfStream { signal, .. } => signal,
        };
        self.status.signal = Some(signal_name(signal).to_owned());
        if let RunnerEvent::Frame(r) = event {
            p.frames_analysed += 1;
            if p.frames_analysed == 1 {
                tracing::info!(camera = %self.camera, "camera analysing frames");
            }
            p.last_frame_index = Some(r.frame_index);
            if std::mem::take(&mut self.changed) {
                p.thresholds_from_frame = Some(r.frame_index);
            }
            p.frame_latency
                .observe((Utc::now() - r.at).as_seconds_f64());
            for o in r.heads.iter().chain(&r.two_wheelers) {
                let role = o.role.as_str();
                let over = self
                    .applied
                    .iter()
                    .any(|(k, t)| *k == role && o.score >= *t);
                if o.matched && over {
                    *p.detections.entry(role.to_owned()).or_default() += 1;
                }
            }
        }
        self.publish_if_due();
    }

    fn publish_if_due(&mut self) {
        if self.published.elapsed() >= PUBLISH_EVERY {
            self.publish();
        }
    }

    fn publish(&mut self) {
        self.board.set(&self.camera, self.status.clone());
        self.board.set_pipeline(&self.camera, self.pipeline.clone());
        self.published = Instant::now();
    }

    /// A new attempt of the runner: `starting`, no next attempt.
    fn starting(&mut self) {
        if self.status.next_attempt_at.take().is_some() {
            self.status.state = "starting".into();
            self.publish();
        }
    }

    /// The attempt failed: `retrying`, why, and when the next attempt is.
    fn retrying(&mut self, error: &str, wait: Duration, failures: u32) {
        let e = redact_url(error);
        tracing::warn!(
            "camera {}: failed ({failures} in a row): {e}; retrying in {wait:?}",
            self.camera
        );
        self.status.state = "retrying".into();
        self.status.last_error = Some(e);
        self.status.next_attempt_at = Some(
            Utc::now() + chrono::Duration::from_std(wait).unwrap_or(chrono::Duration::seconds(60)),
        );
        self.status.input_fps = 0.0;
        self.status.analysed_fps = 0.0;
        self.publish();
    }

    /// The runner's last word: its final state, and why when it failed.
    fn end(mut self, state: &str, error: Option<String>) {
        if let Some(e) = error {
            let e = redact_url(&e);
            tracing::warn!("camera {}: {state}: {e}", self.camera);
            self.status.last_error = Some(e);
        }
        self.status.state = state.to_owned();
        self.status.next_attempt_at = None;
        self.status.input_fps = 0.0;
        self.status.analysed_fps = 0.0;
        self.publish();
        tracing::info!(camera = %self.camera, state, frames = self.pipeline.frames_analysed, "camera runner ended");
    }
}

/// The recorder's observer in the service: announces each new violation (MQTT, webhook) and publishes
/// the recorder's status (queue, spool, recorded counts) on the board.
struct BoardObserver {
    state: AppState,
    board: CameraBoard,
    status: RecorderStatus,
}

impl BoardObserver {
    fn new(state: AppState) -> BoardObserver {
        BoardObserver {
            board: state.camera_board(),
            state,
            status: RecorderStatus::default(),
        }
    }
}

impl RecordObserver for BoardObserver {
    fn opened(&mut self, spooled: usize) {
        self.status.spooled = spooled as u64;
        self.board.set_recorder(self.status.clone());
    }

    fn handled(&mut self, h: &Handled<'_>) -> std::io::Result<()> {
        if let Ok(how) = &h.outcome
            && *how != Recorded::AlreadyRecorded
        {
            let v = h.violation;
            let (camera, kind) = (v.camera.to_string(), v.kind.as_str().to_owned());
            let by_kind = self.status.recorded.entry(camera.clone()).or_default();
            *by_kind.entry(kind.clone()).or_default() += 1;
            self.state.publish(Event::Violation {
                id: v.id.to_string(),
                camera,
                kind,
                occurred_at: v.occurred_at,
                confidence: f64::from(v.confidence),
            });
        }
        self.status.queued = h.queued;
        self.status.spooled = h.spooled as u64;
        self.board.set_recorder(self.status.clone());
        Ok(())
    }

    fn spool_replayed(&mut self, spooled: usize) {
        self.status.spooled = spooled as u64;
        self.board.set_recorder(self.status.clone());
    }
}

#[cfg(test)]
mod tests {
    use super::{RETRY_FIRST, RETRY_MAX, retry_after, threads_per_camera};
    use std::time::Duration;

    #[test]
    fn a_failed_runner_waits_1_s_doubling_to_60_s() {
        let waits: Vec<u64> = (1..=9).map(|n| retry_after(n).as_secs()).collect();
        assert_eq!(waits, [1, 2, 4, 8, 16, 32, 60, 60, 60]);
        assert_eq!(retry_after(0), RETRY_FIRST);
        assert_eq!(retry_after(u32::MAX), RETRY_MAX);
        assert_eq!(RETRY_MAX, Duration::from_secs(60));
    }

    #[test]
    fn cameras_share_the_thread_budget() {
        assert_eq!(threads_per_camera(Some(8), 1), 8);
        assert_eq!(threads_per_camera(Some(8), 3), 2);
        assert_eq!(threads_per_camera(Some(2), 4), 1);
        assert_eq!(threads_per_camera(Some(2), 0), 2);
        assert!(threads_per_camera(None, 1) >= 1);
    }
}
