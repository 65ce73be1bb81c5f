//! `roadwarden bench`: whole-pipeline throughput on one clip, in one run: decode-only fps (GStreamer, the
//! media crate), inference-only fps (the same model, input shape and threads, on frames decoded beforehand),
//! full-pipeline fps (decode → inference → ByteTrack → rules with `--config`) and peak memory, at 1, 2 and 4
//! cameras. With `--config` naming a camera whose `[camera.gating]` is on (or with `--gating`), the
//! pipeline runs are of that gated camera, and one more run (`gating`) takes the clip's frames at the
//! camera's analysis rate through the gated pipeline and the same camera ungated, interleaved frame by
//! frame, and reports both analysed-frame rates.
//!
//! Thread budget (documented in benches/RESULTS.md): with N cores (`available_parallelism`, or `--threads N`),
//! each of K cameras gets `max(1, N / K)` ONNX Runtime intra-op threads; the decoder runs on GStreamer's own
//! streaming threads (`--decoder`, default `avdec_h264 max-threads=1`: one thread, mostly idle while the
//! bounded queue is full), so decoding overlaps inference instead of competing with it.

use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::{Arc, Barrier};
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail};
use clap::Args;
use roadwarden_infer::{DetectOptions, Detector, InputShape, Runtime, ScoreMode};
use roadwarden_media::{
    CameraState, CameraSupervisor, Frame, FrameQueue, SourceConfig, SourceKind,
};
use roadwarden_pipeline::CameraPipeline;
use roadwarden_rules::{CameraConfig, GatingConfig, SiteConfig};
use roadwarden_track::{Tracker, TrackerConfig};
use roadwarden_types::{ImageView, PixelFormat, Plane};
use serde::Serialize;

use crate::runtime::RuntimeArgs;

#[derive(Debug, Args)]
pub struct BenchArgs {
    /// A video file (H.264/H.265 MP4, MKV, TS).
    clip: PathBuf,
    /// The detector's manifest (with --config it replaces the camera's `models.helmet`).
    #[arg(long, short, value_name = "MANIFEST")]
    model: PathBuf,
    /// Site file: the full pipeline runs that camera's rules too (its `frame` must match the clip).
    #[arg(long, value_name = "SITE")]
    config: Option<PathBuf>,
    /// Which camera of the site file [default: the first].
    #[arg(long, value_name = "ID", requires = "config")]
    camera: Option<String>,
    /// Turn the camera's `[camera.gating]` motion gate, ROI crop and head following on (its other
    /// gating keys as configured): the 1-camera pipeline then runs gated and ungated, and both rates
    /// are reported.
    #[arg(long, requires = "config")]
    gating: bool,
    /// Print one JSON object instead of a table.
    #[arg(long)]
    json: bool,
    /// Camera counts for the full-pipeline runs (each camera decodes the clip on its own).
    #[arg(
        long,
        value_delimiter = ',',
        default_value = "1,2,4",
        value_name = "K,.."
    )]
    cameras: Vec<usize>,
    /// Timed frames per camera for the inference-only and pipeline runs (after one warm-up frame).
    #[arg(long, default_value_t = 30, value_name = "N")]
    frames: usize,
    /// GStreamer decoder element(s) and properties for every run.
    #[arg(
        long,
        default_value = "avdec_h264 max-threads=1",
        value_name = "ELEMENT"
    )]
    decoder: String,
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
struct OwnedFrame {
    index: u64,
    captured_at: std::time::SystemTime,
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

    fn view(&self) -> Result<ImageView<'_>> {
        let p = |i: usize| Plane {
            data: &self.planes[i].0,
            stride: self.planes[i].1,
        };
        Ok(match self.format {
            PixelFormat::I420 => ImageView::i420(self.width, self.height, p(0), p(1), p(2))?,
            PixelFormat::Nv12 => ImageView::nv12(self.width, self.height, p(0), p(1))?,
            other => bail!("decoder produced {other:?}"),
        })
    }
}

#[derive(Debug, Serialize)]
struct CameraRun {
    cameras: usize,
    ort_threads: usize,
    /// Frames per second over all cameras together.
    pipeline_fps: f64,
    pipeline_fps_per_camera: f64,
    /// Process peak resident memory during the run.
    peak_rss_mb: f64,
    /// (peak - resident before the cameras were loaded) / cameras.
    peak_rss_per_camera_mb: f64,
}

#[derive(Debug, Serialize)]
struct Report {
    clip: String,
    model: String,
    rules: bool,
    frame_width: u32,
    frame_height: u32,
    input_width: u32,
    input_height: u32,
    input_dynamic: bool,
    cores: usize,
    ort_threads: usize,
    decoder: String,
    decoded_frames: u64,
    timed_frames: usize,
    decode_fps: f64,
    inference_fps: f64,
    pipeline_fps: f64,
    /// pipeline_fps / inference_fps (1 camera): how well decoding and tracking hide behind inference.
    pipeline_vs_inference: f64,
    /// decode_fps / inference_fps: decoding headroom.
    decode_vs_inference: f64,
    peak_rss_mb: f64,
    peak_rss_per_camera_mb: f64,
    runs: Vec<CameraRun>,
    /// Only for a camera with `[camera.gating]` on: its 1-camera pipeline with and without gating.
    #[serde(skip_serializing_if = "Option::is_none")]
    gating: Option<GatingRun>,
}

#[derive(Debug, Serialize)]
struct GatingRun {
    /// Analysed frames per second, gated (the camera as configured) and with gating off.
    gated_fps: f64,
    ungated_fps: f64,
    /// gated_fps / ungated_fps.
    speedup: f64,
    /// Frames analysed by each (the clip at the camera's `analysis_fps`, every frame once).
    frames: usize,
    /// Frames the gated pipeline ran the helmet model on (motion gating and `follow` skip the rest).
    helmet_frames: usize,
    /// Mean helmet-model input pixels per analysed frame, gated and ungated.
    gated_helmet_px: f64,
    ungated_helmet_px: f64,
}

/// Gated against ungated, interleaved frame by frame so that the machine's speed drifts alike for both:
/// the clip's frames at the camera's `analysis_fps` (decoded beforehand, as the service would pick them),
/// each through the gated pipeline and then through the same camera with gating off, each timed alone.
fn gating_interleaved(
    args: &BenchArgs,
    gated: &CameraConfig,
    runtime: &Runtime,
    threads: usize,
) -> Result<GatingRun> {
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
    let (_, _, frames) = decode_frames(args, "bench-gating", 1000, false, at_analysis_rate)?;
    let mut rt = runtime.clone();
    rt.config.threads = Some(threads);
    let mut off = gated.clone();
    off.gating = GatingConfig::default();
    let mut on = CameraPipeline::new(&with_model(gated, &args.model), &rt)?;
    let mut plain = CameraPipeline::new(&with_model(&off, &args.model), &rt)?;
    let (mut t_on, mut t_off) = (Duration::ZERO, Duration::ZERO);
    let (mut px_on, mut px_off, mut helmet_frames) = (0u64, 0u64, 0usize);
    let px = |r: &roadwarden_pipeline::FrameReport| {
        r.helmet_input.map_or(0, |(w, h)| w as u64 * h as u64)
    };
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

fn proc_status_kb(key: &str) -> Option<f64> {
    let text = std::fs::read_to_string("/proc/self/status").ok()?;
    text.lines()
        .find_map(|l| l.strip_prefix(key))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse::<f64>().ok())
}

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

fn source(args: &BenchArgs, camera: &str, looping: bool) -> SourceConfig {
    let mut s = SourceConfig::file(camera, &args.clip);
    if let SourceKind::File { looping: l, .. } = &mut s.kind {
        *l = looping;
    }
    s.decoder = args.decoder.clone();
    s.pre_event = None;
    s.analysis_fps = None;
    s.max_attempts = Some(1);
    s
}

/// Pops the next frame, or None at the end of the source (an error if it failed before any frame).
fn next_frame(
    queue: &FrameQueue,
    sup: &CameraSupervisor,
    deadline: Instant,
) -> Result<Option<Frame>> {
    loop {
        if let Some(f) = queue.pop_timeout(Duration::from_millis(200)) {
            return Ok(Some(f));
        }
        let st = sup.status();
        match st.state {
            CameraState::Failed => bail!(
                "camera {}: {}",
                sup.camera(),
                st.last_error.unwrap_or_else(|| "source failed".into())
            ),
            CameraState::Finished | CameraState::Stopped if queue.is_empty() => return Ok(None),
            _ => {}
        }
        if Instant::now() >= deadline {
            bail!("camera {}: no frame for 60 s", sup.camera());
        }
    }
}

const FRAME_WAIT: Duration = Duration::from_secs(60);

/// Decodes the whole clip as fast as possible; keeps copies of the first `keep` frames.
fn decode_only(args: &BenchArgs, keep: usize) -> Result<(u64, f64, Vec<OwnedFrame>)> {
    decode_frames(args, "bench-decode", keep, true, |_| true)
}

/// Decodes the clip into the bounded frame queue, copying out the frames `keep` picks (at most `limit`);
/// with `whole_clip` it decodes to the end anyway, else it stops at the limit. Returns the frames decoded,
/// their rate and the copies.
fn decode_frames(
    args: &BenchArgs,
    name: &str,
    limit: usize,
    whole_clip: bool,
    mut keep: impl FnMut(&Frame) -> bool,
) -> Result<(u64, f64, Vec<OwnedFrame>)> {
    let queue = Arc::new(FrameQueue::new(4));
    let start = Instant::now();
    let sup = CameraSupervisor::start(source(args, name, false), queue.clone())?;
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
        bail!("{}: no frames decoded", args.clip.display());
    }
    Ok((n, n as f64 / secs, kept))
}

/// `cam` with `model` as its helmet model (the bench's `--model` replaces the site file's).
fn with_model(cam: &CameraConfig, model: &std::path::Path) -> CameraConfig {
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
        model: &std::path::Path,
        cam: Option<&CameraConfig>,
        runtime: &Runtime,
    ) -> Result<Worker> {
        Ok(match cam {
            Some(cam) => Worker::Pipeline(Box::new(CameraPipeline::new(
                &with_model(cam, model),
                runtime,
            )?)),
            None => Worker::Detect {
                det: Box::new(Detector::load(model, runtime)?),
                tracker: Tracker::new(TrackerConfig::default()),
            },
        })
    }

    fn process(&mut self, frame: &Frame) -> Result<usize> {
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

/// K cameras, each decoding the clip (looped) on GStreamer's threads into its own bounded queue and running
/// its own worker; timing starts when every camera has processed one warm-up frame.
fn pipeline_run(
    args: &BenchArgs,
    cam: Option<&CameraConfig>,
    runtime: &Runtime,
    k: usize,
    threads: usize,
) -> Result<(f64, f64)> {
    let barrier = Arc::new(Barrier::new(k));
    let handles: Vec<_> = (0..k)
        .map(|i| {
            let barrier = barrier.clone();
            let mut rt = runtime.clone();
            rt.config.threads = Some(threads);
            let src = source(args, &format!("bench-{i}"), true);
            let model = args.model.clone();
            let cam = cam.cloned();
            let n = args.frames;
            std::thread::spawn(move || -> Result<(usize, f64)> {
                // Fail the barrier for nobody: every thread reaches it, errors are reported after.
                let setup = (|| -> Result<_> {
                    let mut worker = Worker::new(&model, cam.as_ref(), &rt)?;
                    let queue = Arc::new(FrameQueue::new(4));
                    let sup = CameraSupervisor::start(src, queue.clone())?;
                    let first = next_frame(&queue, &sup, Instant::now() + FRAME_WAIT)?
                        .context("the clip has no frames")?;
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
        let (n, secs) = h
            .join()
            .map_err(|_| anyhow::anyhow!("a camera thread panicked"))??;
        frames += n;
        wall = wall.max(secs);
    }
    if frames == 0 || wall <= 0.0 {
        bail!("no frames went through the pipeline");
    }
    Ok((frames as f64 / wall, frames as f64))
}

fn round2(x: f64) -> f64 {
    (x * 100.0).round() / 100.0
}

pub fn run(rt: &RuntimeArgs, args: BenchArgs) -> Result<ExitCode> {
    if args.frames == 0 {
        bail!("--frames must be at least 1");
    }
    if args.cameras.is_empty() || args.cameras.contains(&0) {
        bail!("--cameras takes positive counts, e.g. 1,2,4");
    }
    if !args.clip.is_file() {
        bail!("{}: no such file", args.clip.display());
    }
    let site = match &args.config {
        Some(p) => Some(SiteConfig::load(p)?),
        None => None,
    };
    let cam = match (&site, &args.camera) {
        (Some(s), Some(id)) => Some(
            s.camera(id)
                .with_context(|| format!("no camera `{id}` in the site file"))?,
        ),
        (Some(s), None) => s.cameras.first(),
        _ => None,
    };
    let gated_camera = cam.filter(|_| args.gating).map(|c| {
        let mut c = c.clone();
        c.gating.motion = true;
        c.gating.roi_crop = true;
        c.gating.follow = true;
        c
    });
    let cam = gated_camera.as_ref().or(cam);
    let cores = std::thread::available_parallelism()
        .map(|n| n.get())
        .unwrap_or(1);
    let budget = rt.threads.unwrap_or(cores).max(1);
    let runtime = rt.runtime()?;

    // 1. Decode only.
    let keep = (args.frames + 1).min(100);
    let (decoded, decode_fps, frames) = decode_only(&args, keep)?;
    let (fw, fh) = (frames[0].width, frames[0].height);

    // 2. Inference only, on the decoded copies, with the 1-camera thread count.
    let ort_threads = budget;
    let (inference_fps, input, dynamic) = {
        let mut r = runtime.clone();
        r.config.threads = Some(ort_threads);
        let mut det = Detector::load(&args.model, &r)?;
        let lb = det.letterbox(fw, fh, InputShape::Rect);
        let dynamic = det.has_dynamic_size();
        if dynamic {
            // The smallest stride multiple that holds the letterboxed frame (ultralytics `rect`).
            let (w, h) = det.input_size();
            let ratio = (w as f64 / fw as f64).min(h as f64 / fh as f64);
            let up = |v: f64| ((v * ratio).round() / 32.0).ceil() as u32 * 32;
            let want = (up(fw as f64), up(fh as f64));
            if (lb.width, lb.height) != want {
                bail!(
                    "input shape {}x{} for a {fw}x{fh} frame is not the rect letterbox {}x{}",
                    lb.width,
                    lb.height,
                    want.0,
                    want.1
                );
            }
        }
        let opts = track_options();
        det.detect(&frames[0].view()?, &opts)?; // warm-up
        let start = Instant::now();
        for i in 0..args.frames {
            let f = &frames[(i + 1) % frames.len()];
            det.detect(&f.view()?, &opts)?;
        }
        (
            args.frames as f64 / start.elapsed().as_secs_f64(),
            (lb.width, lb.height),
            dynamic,
        )
    };
    drop(frames);

    // 3. Full pipeline at K cameras.
    let mut runs = Vec::new();
    for &k in &args.cameras {
        let threads = (budget / k).max(1);
        let base = rss_mb();
        let reset = reset_peak_rss();
        let (fps, _) = pipeline_run(&args, cam, &runtime, k, threads)?;
        let peak = if reset { peak_rss_mb() } else { f64::NAN };
        runs.push(CameraRun {
            cameras: k,
            ort_threads: threads,
            pipeline_fps: round2(fps),
            pipeline_fps_per_camera: round2(fps / k as f64),
            peak_rss_mb: round2(peak),
            peak_rss_per_camera_mb: round2((peak - base) / k as f64),
        });
    }
    let one = runs.iter().find(|r| r.cameras == 1).unwrap_or(&runs[0]);
    let gating = match cam.filter(|c| c.gating.enabled()) {
        Some(c) => Some(gating_interleaved(&args, c, &runtime, budget)?),
        None => None,
    };
    let report = Report {
        clip: args.clip.display().to_string(),
        model: args.model.display().to_string(),
        rules: cam.is_some(),
        frame_width: fw,
        frame_height: fh,
        input_width: input.0,
        input_height: input.1,
        input_dynamic: dynamic,
        cores,
        ort_threads,
        decoder: args.decoder.clone(),
        decoded_frames: decoded,
        timed_frames: args.frames,
        decode_fps: round2(decode_fps),
        inference_fps: round2(inference_fps),
        pipeline_fps: one.pipeline_fps_per_camera,
        pipeline_vs_inference: (one.pipeline_fps_per_camera / inference_fps * 1000.0).round()
            / 1000.0,
        decode_vs_inference: round2(decode_fps / inference_fps),
        peak_rss_mb: one.peak_rss_mb,
        peak_rss_per_camera_mb: one.peak_rss_per_camera_mb,
        runs,
        gating,
    };
    if args.json {
        println!("{}", serde_json::to_string_pretty(&report)?);
    } else {
        println!(
            "{} ({}x{}), {} → input {}x{}{}, {} cores, decoder `{}`",
            report.clip,
            fw,
            fh,
            report.model,
            input.0,
            input.1,
            if dynamic { " (rect)" } else { " (static)" },
            cores,
            report.decoder
        );
        println!(
            "decode only     {:>8.2} fps ({} frames)",
            report.decode_fps, decoded
        );
        println!(
            "inference only  {:>8.2} fps ({} frames, {} threads)",
            report.inference_fps, args.frames, ort_threads
        );
        println!(
            "pipeline        {:>8.2} fps = {:.3} × inference; decode = {:.2} × inference",
            report.pipeline_fps, report.pipeline_vs_inference, report.decode_vs_inference
        );
        println!("cameras  threads/cam  fps(all)  fps/cam  peak RSS MB  per camera MB");
        for r in &report.runs {
            println!(
                "{:>7}  {:>11}  {:>8.2}  {:>7.2}  {:>11.1}  {:>13.1}",
                r.cameras,
                r.ort_threads,
                r.pipeline_fps,
                r.pipeline_fps_per_camera,
                r.peak_rss_mb,
                r.peak_rss_per_camera_mb
            );
        }
        if let Some(g) = &report.gating {
            println!(
                "gating (1 camera, {} frames at the camera's analysis rate, interleaved): {:.2} fps gated, \
                 {:.2} fps ungated = {:.2} × (helmet model on {} frames, {:.0} vs {:.0} input px a frame)",
                g.frames,
                g.gated_fps,
                g.ungated_fps,
                g.speedup,
                g.helmet_frames,
                g.gated_helmet_px,
                g.ungated_helmet_px
            );
        }
    }
    Ok(ExitCode::SUCCESS)
}
