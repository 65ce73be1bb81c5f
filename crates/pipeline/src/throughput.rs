//! Whole-pipeline throughput on one clip (what `roadwarden bench` reports): decode-only fps (GStreamer, the
//! media crate), inference-only fps (the same model, input shape and threads, on frames decoded
//! beforehand), full-pipeline fps of K cameras at once (decode → inference → ByteTrack → rules with a
//! camera config) with the process's peak memory, and a gated camera against the same camera ungated.
//!
//! Thread budget: each of K cameras runs on its own thread with the ONNX Runtime intra-op threads it is
//! given (the bench gives `max(1, N / K)` of N cores); the decoder runs on GStreamer's own streaming
//! threads, so decoding overlaps inference instead of competing with it.

use std::path::{Path, PathBuf};
use std::sync::{Arc, Barrier};
use std::time::{Duration, Instant, SystemTime};

use roadwarden_infer::{
    BatcherConfig, DetectOptions, Detector, InferError, InputShape, Runtime, ScoreMode,
};
use roadwarden_media::{
    CameraState, CameraSupervisor, Frame, FrameQueue, MediaError, SourceConfig, SourceKind,
};
use roadwarden_rules::{CameraConfig, GatingConfig};
use roadwarden_track::{Tracker, TrackerConfig};
use roadwarden_types::{ImageError, ImageView, PixelFormat, Plane};
use serde::Serialize;
use thiserror::Error;

use crate::{CameraPipeline, FrameReport, PipelineError, SharedInference};

/// How long a camera may go without a frame before the run fails.
const FRAME_WAIT: Duration = Duration::from_secs(60);

#[derive(Debug, Error)]
pub enum ThroughputError {
    #[error(transparent)]
    Pipeline(#[from] PipelineError),
    #[error(transparent)]
    Media(#[from] MediaError),
    #[error(transparent)]
    Infer(#[from] InferError),
    #[error(transparent)]
    Image(#[from] ImageError),
    #[error("camera {camera}: {reason}")]
    Source { camera: String, reason: String },
    #[error("decoder produced {0:?}")]
    Format(PixelFormat),
    #[error("{}: no frames decoded", .0.display())]
    NoFrames(PathBuf),
    #[error("the clip has no frames")]
    EmptyClip,
    #[error("a camera thread panicked")]
    Panicked,
    #[error("no frames went through the pipeline")]
    NoPipelineFrames,
    #[error(
        "input shape {}x{} for a {}x{} frame is not the rect letterbox {}x{}",
        .input.0, .input.1, .frame.0, .frame.1, .rect.0, .rect.1
    )]
    NotRect {
        input: (u32, u32),
        frame: (u32, u32),
        rect: (u32, u32),
    },
}

/// The cores this process may use (1 where that is unknown).
pub fn available_cores() -> usize {
    std::thread::available_parallelism()
        .map(|n| n.get())
        .unwrap_or(1)
}

/// Rounded to two decimals, as the bench reports figures.
pub fn round2(x: f64) -> f64 {
    (x * 100.0).round() / 100.0
}

/// Detections down to 0.1 feed ByteTrack's second association, as in the per-camera pipeline and in
/// ultralytics `track` (which lowers `conf` to 0.1).
fn track_options() -> DetectOptions {
    DetectOptions {
        score: ScoreMode::Fixed(0.1),
        ..DetectOptions::default()
    }
}

/// A decoded frame copied out of GStreamer's buffer, for the inference-only and gating runs.
pub struct OwnedFrame {
    index: u64,
    captured_at: SystemTime,
    width: u32,
    height: u32,
    format: PixelFormat,
    planes: Vec<(Vec<u8>, usize)>,
}

impl OwnedFrame {
    fn copy(frame: &Frame) -> OwnedFrame {
        let img = frame.image();
        let h = img.height() as usize;
        let rows = |p: usize| if p == 0 { h } else { h / 2 };
        let n = match img.format() {
            PixelFormat::I420 => 3,
            PixelFormat::Nv12 => 2,
            _ => 1,
        };
        let planes = (0..n)
            .map(|p| {
                let first = img.row(p, 0);
                let width = first.len();
                let data: Vec<u8> = (0..rows(p))
                    .flat_map(|y| img.row(p, y)[..width].to_vec())
                    .collect();
                (data, width)
            })
            .collect();
        OwnedFrame {
            index: frame.index(),
            captured_at: frame.captured_at(),
            width: img.width(),
            height: img.height(),
            format: img.format(),
            planes,
        }
    }

    pub fn width(&self) -> u32 {
        self.width
    }

    pub fn height(&self) -> u32 {
        self.height
    }

    pub fn view(&self) -> Result<ImageView<'_>, ThroughputError> {
        let p = |i: usize| Plane {
            data: &self.planes[i].0,
            stride: self.planes[i].1,
        };
        Ok(match self.format {
            PixelFormat::I420 => ImageView::i420(self.width, self.height, p(0), p(1), p(2))?,
            PixelFormat::Nv12 => ImageView::nv12(self.width, self.height, p(0), p(1))?,
            other => return Err(ThroughputError::Format(other)),
        })
    }
}

/// The whole clip decoded as fast as possible.
pub struct DecodeRun {
    /// Frames decoded.
    pub frames: u64,
    pub fps: f64,
    /// Copies of the first frames (as many as asked for).
    pub kept: Vec<OwnedFrame>,
}

/// One model on frames decoded beforehand.
#[derive(Debug, Clone, Copy)]
pub struct InferenceRun {
    pub fps: f64,
    /// The network input (width, height) for the clip's frames.
    pub input: (u32, u32),
    /// Whether the model takes any stride multiple (then `input` is the rect letterbox).
    pub dynamic: bool,
}

/// K cameras at once.
#[derive(Debug, Clone, Serialize)]
pub struct CameraRun {
    pub cameras: usize,
    /// The cameras' inference went through one shared batcher per model (issue 17) instead of a
    /// session per camera.
    pub batched: bool,
    /// Intra-op threads of each session (a camera's, or with `batched` the batcher's).
    pub ort_threads: usize,
    /// Frames per second over all cameras together.
    pub pipeline_fps: f64,
    pub pipeline_fps_per_camera: f64,
    /// Process peak resident memory during the run.
    pub peak_rss_mb: f64,
    /// (peak - resident before the cameras were loaded) / cameras.
    pub peak_rss_per_camera_mb: f64,
    /// With `batched`: mean images per ONNX Runtime run of the busiest model's batcher, and the mean
    /// per-camera latency of its requests (submit to output, ms); 0 otherwise.
    pub mean_batch: f64,
    pub mean_latency_ms: f64,
}

/// A gated camera against the same camera ungated.
#[derive(Debug, Clone, Serialize)]
pub struct GatingRun {
    /// Analysed frames per second, gated (the camera as configured) and with gating off.
    pub gated_fps: f64,
    pub ungated_fps: f64,
    /// gated_fps / ungated_fps.
    pub speedup: f64,
    /// Frames analysed by each (the clip at the camera's `analysis_fps`, every frame once).
    pub frames: usize,
    /// Frames the gated pipeline ran the helmet model on (motion gating and `follow` skip the rest).
    pub helmet_frames: usize,
    /// Mean helmet-model input pixels per analysed frame, gated and ungated.
    pub gated_helmet_px: f64,
    pub ungated_helmet_px: f64,
}

/// One clip, one model: what every run of the bench shares.
#[derive(Debug, Clone)]
pub struct Throughput {
    /// A video file (H.264/H.265 MP4, MKV, TS).
    pub clip: PathBuf,
    /// The detector's manifest (it replaces a camera's `models.helmet`).
    pub model: PathBuf,
    /// GStreamer decoder element(s) and properties for every run.
    pub decoder: String,
    /// Timed frames per camera for the inference-only and pipeline runs (after one warm-up frame).
    pub frames: usize,
}

impl Throughput {
    fn source(&self, camera: &str, looping: bool) -> SourceConfig {
        let mut s = SourceConfig::file(camera, &self.clip);
        if let SourceKind::File { looping: l, .. } = &mut s.kind {
            *l = looping;
        }
        s.decoder = self.decoder.clone();
        s.pre_event = None;
        s.analysis_fps = None;
        s.max_attempts = Some(1);
        s
    }

    /// Decodes the whole clip as fast as possible; keeps copies of the first `keep` frames.
    pub fn decode_only(&self, keep: usize) -> Result<DecodeRun, ThroughputError> {
        self.decode_frames("bench-decode", keep, true, |_| true)
    }

    /// Decodes the clip into the bounded frame queue, copying out the frames `keep` picks (at most
    /// `limit`); with `whole_clip` it decodes to the end anyway, else it stops at the limit.
    fn decode_frames(
        &self,
        name: &str,
        limit: usize,
        whole_clip: bool,
        mut keep: impl FnMut(&Frame) -> bool,
    ) -> Result<DecodeRun, ThroughputError> {
        let queue = Arc::new(FrameQueue::new(4));
        let start = Instant::now();
        let sup = CameraSupervisor::start(self.source(name, false), queue.clone())?;
        let mut kept = Vec::new();
        let mut n = 0u64;
        while let Some(f) = next_frame(&queue, &sup, Instant::now() + FRAME_WAIT)? {
            if kept.len() < limit && keep(&f) {
                kept.push(OwnedFrame::copy(&f));
            }
            n += 1;
            if !whole_clip && kept.len() >= limit {
                break;
            }
        }
        let secs = start.elapsed().as_secs_f64();
        sup.stop();
        if n == 0 || kept.is_empty() {
            return Err(ThroughputError::NoFrames(self.clip.clone()));
        }
        Ok(DecodeRun {
            frames: n,
            fps: n as f64 / secs,
            kept,
        })
    }

    /// The model alone on `frames` (decoded beforehand, cycled), with `threads` intra-op threads and the
    /// rect input of a dynamic model (checked against ultralytics' `rect` letterbox).
    pub fn inference_only(
        &self,
        runtime: &Runtime,
        threads: usize,
        frames: &[OwnedFrame],
    ) -> Result<InferenceRun, ThroughputError> {
        let first = frames
            .first()
            .ok_or_else(|| ThroughputError::NoFrames(self.clip.clone()))?;
        let (fw, fh) = (first.width, first.height);
        let mut r = runtime.clone();
        r.config.threads = Some(threads);
        let mut det = Detector::load(&self.model, &r)?;
        let lb = det.letterbox(fw, fh, InputShape::Rect);
        let dynamic = det.has_dynamic_size();
        if dynamic {
            // The smallest stride multiple that holds the letterboxed frame (ultralytics `rect`).
            let (w, h) = det.input_size();
            let ratio = (w as f64 / fw as f64).min(h as f64 / fh as f64);
            let up = |v: f64| ((v * ratio).round() / 32.0).ceil() as u32 * 32;
            let want = (up(fw as f64), up(fh as f64));
            if (lb.width, lb.height) != want {
                return Err(ThroughputError::NotRect {
                    input: (lb.width, lb.height),
                    frame: (fw, fh),
                    rect: want,
                });
            }
        }
        let opts = track_options();
        det.detect(&first.view()?, &opts)?; // warm-up
        let start = Instant::now();
        for i in 0..self.frames {
            let f = &frames[(i + 1) % frames.len()];
            det.detect(&f.view()?, &opts)?;
        }
        Ok(InferenceRun {
            fps: self.frames as f64 / start.elapsed().as_secs_f64(),
            input: (lb.width, lb.height),
            dynamic,
        })
    }

    /// `k` cameras at once ([`Throughput::pipeline_fps`]) with `threads` intra-op threads each, and the
    /// process's peak memory during the run (NaN where the kernel's peak mark cannot be reset).
    pub fn cameras(
        &self,
        cam: Option<&CameraConfig>,
        runtime: &Runtime,
        k: usize,
        threads: usize,
    ) -> Result<CameraRun, ThroughputError> {
        self.camera_run(cam, runtime, k, threads, None)
    }

    /// `k` cameras at once as [`cameras`](Self::cameras), their inference through one shared batcher per
    /// model (`config`) whose session has `threads` intra-op threads. The timed frames start once every
    /// camera has analysed one frame, so the batcher's stats include the warm-up frames.
    pub fn cameras_batched(
        &self,
        cam: Option<&CameraConfig>,
        runtime: &Runtime,
        k: usize,
        threads: usize,
        config: BatcherConfig,
    ) -> Result<CameraRun, ThroughputError> {
        self.camera_run(cam, runtime, k, threads, Some(config))
    }

    fn camera_run(
        &self,
        cam: Option<&CameraConfig>,
        runtime: &Runtime,
        k: usize,
        threads: usize,
        batch: Option<BatcherConfig>,
    ) -> Result<CameraRun, ThroughputError> {
        let base = rss_mb();
        let reset = reset_peak_rss();
        let shared = match batch {
            Some(config) => {
                // The batchers' sessions are loaded here, with the batcher's thread count; the cameras
                // only take handles on them.
                let shared = Arc::new(SharedInference::new(config));
                let mut rt = runtime.clone();
                rt.config.threads = Some(threads);
                let mut models = vec![self.model.clone()];
                models.extend(cam.and_then(|c| c.models.two_wheeler.clone()));
                for m in &models {
                    drop(shared.detector(m, "bench-load", &rt)?);
                }
                Some(shared)
            }
            None => None,
        };
        let fps = self.pipeline_fps_with(cam, runtime, k, threads, shared.clone())?;
        let peak = if reset { peak_rss_mb() } else { f64::NAN };
        let busiest = shared.as_ref().and_then(|s| {
            s.stats()
                .into_iter()
                .map(|(_, st)| st)
                .max_by_key(|st| st.images)
        });
        let (mean_batch, mean_latency_ms) = match &busiest {
            Some(st) => {
                let (n, total) = st.cameras.iter().fold((0u64, 0f64), |(n, t), c| {
                    (n + c.requests, t + c.total.as_secs_f64())
                });
                (st.mean_batch(), 1000.0 * total / n.max(1) as f64)
            }
            None => (0.0, 0.0),
        };
        Ok(CameraRun {
            cameras: k,
            batched: shared.is_some(),
            ort_threads: threads,
            pipeline_fps: round2(fps),
            pipeline_fps_per_camera: round2(fps / k as f64),
            peak_rss_mb: round2(peak),
            peak_rss_per_camera_mb: round2((peak - base) / k as f64),
            mean_batch: round2(mean_batch),
            mean_latency_ms: round2(mean_latency_ms),
        })
    }

    /// Frames per second over `k` cameras, each decoding the clip (looped) on GStreamer's threads into its
    /// own bounded queue and running its own worker (`cam`'s whole pipeline, or without one the model and
    /// a tracker) on its own thread; timing starts when every camera has processed one warm-up frame.
    pub fn pipeline_fps(
        &self,
        cam: Option<&CameraConfig>,
        runtime: &Runtime,
        k: usize,
        threads: usize,
    ) -> Result<f64, ThroughputError> {
        self.pipeline_fps_with(cam, runtime, k, threads, None)
    }

    /// [`pipeline_fps`](Self::pipeline_fps), the cameras' inference on `shared`'s batchers when given.
    fn pipeline_fps_with(
        &self,
        cam: Option<&CameraConfig>,
        runtime: &Runtime,
        k: usize,
        threads: usize,
        shared: Option<Arc<SharedInference>>,
    ) -> Result<f64, ThroughputError> {
        let barrier = Arc::new(Barrier::new(k));
        let handles: Vec<_> = (0..k)
            .map(|i| {
                let barrier = barrier.clone();
                let mut rt = runtime.clone();
                rt.config.threads = Some(threads);
                let src = self.source(&format!("bench-{i}"), true);
                let model = self.model.clone();
                let cam = cam.cloned();
                let shared = shared.clone();
                let n = self.frames;
                std::thread::spawn(move || -> Result<(usize, f64), ThroughputError> {
                    // Fail the barrier for nobody: every thread reaches it, errors are reported after.
                    let setup = (|| -> Result<_, ThroughputError> {
                        let mut worker =
                            Worker::new(&model, cam.as_ref(), &rt, shared.as_deref(), i)?;
                        let queue = Arc::new(FrameQueue::new(4));
                        let sup = CameraSupervisor::start(src, queue.clone())?;
                        let first = next_frame(&queue, &sup, Instant::now() + FRAME_WAIT)?
                            .ok_or(ThroughputError::EmptyClip)?;
                        worker.process(&first)?;
                        Ok((worker, queue, sup))
                    })();
                    barrier.wait();
                    let (mut worker, queue, sup) = setup?;
                    let start = Instant::now();
                    let mut done = 0;
                    while done < n {
                        let Some(f) = next_frame(&queue, &sup, Instant::now() + FRAME_WAIT)? else {
                            break;
                        };
                        worker.process(&f)?;
                        done += 1;
                    }
                    let secs = start.elapsed().as_secs_f64();
                    sup.stop();
                    Ok((done, secs))
                })
            })
            .collect();
        let mut frames = 0usize;
        let mut wall = 0f64;
        for h in handles {
            let (n, secs) = h.join().map_err(|_| ThroughputError::Panicked)??;
            frames += n;
            wall = wall.max(secs);
        }
        if frames == 0 || wall <= 0.0 {
            return Err(ThroughputError::NoPipelineFrames);
        }
        Ok(frames as f64 / wall)
    }

    /// Gated against ungated, interleaved frame by frame so that the machine's speed drifts alike for
    /// both: the clip's frames at the camera's `analysis_fps` (decoded beforehand, as the service would
    /// pick them), each through the gated pipeline and then through the same camera with gating off,
    /// each timed alone.
    pub fn gating_interleaved(
        &self,
        gated: &CameraConfig,
        runtime: &Runtime,
        threads: usize,
    ) -> Result<GatingRun, ThroughputError> {
        let step = Duration::from_secs_f64(1.0 / gated.analysis_fps.max(0.01));
        let mut next = Duration::ZERO;
        let at_analysis_rate = |f: &Frame| {
            let t = f.pts().unwrap_or(f.timeline());
            let due = t >= next;
            while next <= t {
                next += step;
            }
            due
        };
        let frames = self
            .decode_frames("bench-gating", 1000, false, at_analysis_rate)?
            .kept;
        let mut rt = runtime.clone();
        rt.config.threads = Some(threads);
        let mut off = gated.clone();
        off.gating = GatingConfig::default();
        let mut on = CameraPipeline::new(&with_model(gated, &self.model), &rt)?;
        let mut plain = CameraPipeline::new(&with_model(&off, &self.model), &rt)?;
        let (mut t_on, mut t_off) = (Duration::ZERO, Duration::ZERO);
        let (mut px_on, mut px_off, mut helmet_frames) = (0u64, 0u64, 0usize);
        let px = |r: &FrameReport| r.helmet_input.map_or(0, |(w, h)| w as u64 * h as u64);
        for (i, f) in frames.iter().enumerate() {
            let view = f.view()?;
            let start = Instant::now();
            let r = on.process(f.index, f.captured_at.into(), &view)?;
            let on_time = start.elapsed();
            let start = Instant::now();
            let r_off = plain.process(f.index, f.captured_at.into(), &view)?;
            let off_time = start.elapsed();
            if i > 0 {
                // The first frame warms both up.
                t_on += on_time;
                t_off += off_time;
                px_on += px(&r);
                px_off += px(&r_off);
                helmet_frames += usize::from(r.helmet_input.is_some());
            }
        }
        let n = frames.len().saturating_sub(1).max(1);
        let (gated_fps, ungated_fps) = (
            n as f64 / t_on.as_secs_f64().max(1e-9),
            n as f64 / t_off.as_secs_f64().max(1e-9),
        );
        Ok(GatingRun {
            gated_fps: round2(gated_fps),
            ungated_fps: round2(ungated_fps),
            speedup: round2(gated_fps / ungated_fps),
            frames: n,
            helmet_frames,
            gated_helmet_px: (px_on as f64 / n as f64).round(),
            ungated_helmet_px: (px_off as f64 / n as f64).round(),
        })
    }
}

fn proc_status_kb(key: &str) -> Option<f64> {
    let text = std::fs::read_to_string("/proc/self/status").ok()?;
    text.lines()
        .find_map(|l| l.strip_prefix(key))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse::<f64>().ok())
}

/// The process's resident memory now, MB (0 where /proc is not readable).
fn rss_mb() -> f64 {
    proc_status_kb("VmRSS:").unwrap_or(0.0) / 1024.0
}

/// Resets the kernel's peak-RSS mark (VmHWM) to the current RSS; false where that is not allowed.
fn reset_peak_rss() -> bool {
    std::fs::write("/proc/self/clear_refs", "5").is_ok()
}

fn peak_rss_mb() -> f64 {
    proc_status_kb("VmHWM:").unwrap_or(0.0) / 1024.0
}

/// Pops the next frame, or None at the end of the source (an error if it failed, or gave no frame until
/// `deadline`).
fn next_frame(
    queue: &FrameQueue,
    sup: &CameraSupervisor,
    deadline: Instant,
) -> Result<Option<Frame>, ThroughputError> {
    loop {
        if let Some(f) = queue.pop_timeout(Duration::from_millis(200)) {
            return Ok(Some(f));
        }
        let st = sup.status();
        match st.state {
            CameraState::Failed => {
                return Err(ThroughputError::Source {
                    camera: sup.camera().to_string(),
                    reason: st.last_error.unwrap_or_else(|| "source failed".into()),
                });
            }
            CameraState::Finished | CameraState::Stopped if queue.is_empty() => return Ok(None),
            _ => {}
        }
        if Instant::now() >= deadline {
            return Err(ThroughputError::Source {
                camera: sup.camera().to_string(),
                reason: "no frame for 60 s".into(),
            });
        }
    }
}

/// `cam` with `model` as its helmet model (the bench's model replaces the site file's).
fn with_model(cam: &CameraConfig, model: &Path) -> CameraConfig {
    let mut cam = cam.clone();
    cam.models.helmet = model.to_path_buf();
    cam
}

/// What one camera runs per frame: detector + tracker, or the whole per-camera pipeline.
enum Worker {
    Detect {
        det: Box<Detector>,
        tracker: Tracker,
    },
    Pipeline(Box<CameraPipeline>),
}

impl Worker {
    fn new(
        model: &Path,
        cam: Option<&CameraConfig>,
        runtime: &Runtime,
        shared: Option<&SharedInference>,
        index: usize,
    ) -> Result<Worker, ThroughputError> {
        Ok(match cam {
            Some(cam) => Worker::Pipeline(Box::new(CameraPipeline::with_shared(
                &with_model(cam, model),
                runtime,
                shared,
            )?)),
            None => Worker::Detect {
                det: Box::new(match shared {
                    Some(s) => s.detector(model, &format!("bench-{index}"), runtime)?,
                    None => Detector::load(model, runtime)?,
                }),
                tracker: Tracker::new(TrackerConfig::default()),
            },
        })
    }

    fn process(&mut self, frame: &Frame) -> Result<usize, ThroughputError> {
        Ok(match self {
            Worker::Detect { det, tracker } => {
                let dets = det.detect(&frame.image(), &track_options())?;
                tracker.update(&dets).len()
            }
            Worker::Pipeline(p) => {
                let r = p.process(frame.index(), frame.captured_at().into(), &frame.image())?;
                r.heads.len() + r.violations.len()
            }
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn figures_round_to_two_decimals() {
        assert_eq!(round2(12.345_6), 12.35);
        assert_eq!(round2(0.004), 0.0);
        assert!(round2(f64::NAN).is_nan());
    }

    #[test]
    fn memory_figures_come_from_proc() {
        // Linux: this process has a resident size and a peak at least as large.
        let rss = rss_mb();
        assert!(rss > 0.0, "VmRSS {rss} MB");
        assert!(peak_rss_mb() >= rss * 0.5, "VmHWM {} MB", peak_rss_mb());
    }

    #[test]
    fn a_missing_clip_is_an_error_naming_it() {
        let t = Throughput {
            clip: PathBuf::from("/nonexistent/clip.mp4"),
            model: PathBuf::from("/nonexistent/model.toml"),
            decoder: "avdec_h264 max-threads=1".into(),
            frames: 1,
        };
        let e = match t.decode_only(1) {
            Ok(_) => panic!("decoded a clip that does not exist"),
            Err(e) => e.to_string(),
        };
        assert_eq!(e, "video file /nonexistent/clip.mp4: no such file");
    }
}
