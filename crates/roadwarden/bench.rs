//! `roadwarden bench`: whole-pipeline throughput on one clip, in one run: decode-only fps (GStreamer, the
//! media crate), inference-only fps (the same model, input shape and threads, on frames decoded beforehand),
//! full-pipeline fps (decode → inference → ByteTrack → rules with `--config`) and peak memory, at 1, 2 and 4
//! cameras. With `--config` naming a camera whose `[camera.gating]` is on (or with `--gating`), the
//! pipeline runs are of that gated camera, and one more run (`gating`) takes the clip's frames at the
//! camera's analysis rate through the gated pipeline and the same camera ungated, interleaved frame by
//! frame, and reports both analysed-frame rates. Every K of 2 or more also runs with the cameras' inference
//! through one shared batcher per model (issue 17: `--max-batch`, `--max-wait-ms`; its session gets all N
//! threads), so one run reports total analysed fps with and without batching (`--no-batching` skips it).
//! The runs are `roadwarden_pipeline::throughput`'s; this
//! command parses the arguments, sets the thread budget and prints the report.
//!
//! Thread budget (documented in benches/RESULTS.md): with N cores (`available_parallelism`, or `--threads N`),
//! each of K cameras gets `max(1, N / K)` ONNX Runtime intra-op threads; the decoder runs on GStreamer's own
//! streaming threads (`--decoder`, default `avdec_h264 max-threads=1`: one thread, mostly idle while the
//! bounded queue is full), so decoding overlaps inference instead of competing with it.

use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

use anyhow::{Context, Result, bail};
use clap::Args;
use roadwarden_infer::BatcherConfig;
use roadwarden_pipeline::throughput::{CameraRun, GatingRun, Throughput, available_cores, round2};
use roadwarden_rules::SiteConfig;
use serde::Serialize;

use crate::runtime::RuntimeArgs;

#[derive(Debug, Args)]
pub(crate) struct BenchArgs {
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
    /// Skip the batched runs (cameras through one shared batcher per model).
    #[arg(long)]
    no_batching: bool,
    /// Batched runs: images per ONNX Runtime run, at most.
    #[arg(long, default_value_t = 8, value_name = "N")]
    max_batch: usize,
    /// Batched runs: how long the first request of a batch waits for the other cameras'.
    #[arg(long, default_value_t = 5, value_name = "MS")]
    max_wait_ms: u64,
    /// GStreamer decoder element(s) and properties for every run.
    #[arg(
        long,
        default_value = "avdec_h264 max-threads=1",
        value_name = "ELEMENT"
    )]
    decoder: String,
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

pub(crate) fn run(rt: &RuntimeArgs, args: BenchArgs) -> Result<ExitCode> {
    if args.frames == 0 {
        bail!("--frames must be at least 1");
    }
    if args.cameras.is_empty() || args.cameras.contains(&0) {
        bail!("--cameras takes positive counts, e.g. 1,2,4");
    }
    if args.max_batch == 0 {
        bail!("--max-batch must be at least 1");
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
    let cores = available_cores();
    let budget = rt.threads.unwrap_or(cores).max(1);
    let runtime = rt.runtime()?;
    let bench = Throughput {
        clip: args.clip.clone(),
        model: args.model.clone(),
        decoder: args.decoder.clone(),
        frames: args.frames,
    };

    // 1. Decode only.
    let decode = bench.decode_only((args.frames + 1).min(100))?;
    let (fw, fh) = (decode.kept[0].width(), decode.kept[0].height());

    // 2. Inference only, on the decoded copies, with the 1-camera thread count.
    let ort_threads = budget;
    let inference = bench.inference_only(&runtime, ort_threads, &decode.kept)?;
    let (decoded, decode_fps) = (decode.frames, decode.fps);
    drop(decode);
    let (inference_fps, input, dynamic) = (inference.fps, inference.input, inference.dynamic);

    // 3. Full pipeline at K cameras.
    // Each K >= 2 also with one shared batcher per model, right after the same K without, so that the
    // two see the machine alike.
    let batching = BatcherConfig {
        max_batch: args.max_batch,
        max_wait: Duration::from_millis(args.max_wait_ms),
    };
    let mut runs = Vec::new();
    for &k in &args.cameras {
        runs.push(bench.cameras(cam, &runtime, k, (budget / k).max(1))?);
        if k >= 2 && !args.no_batching {
            runs.push(bench.cameras_batched(cam, &runtime, k, budget, batching)?);
        }
    }
    let one = runs
        .iter()
        .find(|r| r.cameras == 1 && !r.batched)
        .unwrap_or(&runs[0]);
    let gating = match cam.filter(|c| c.gating.enabled()) {
        Some(c) => Some(bench.gating_interleaved(c, &runtime, budget)?),
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
        println!(
            "cameras  batched  ort threads  fps(all)  fps/cam  peak RSS MB  per camera MB  mean batch  latency ms"
        );
        for r in &report.runs {
            let (batch, latency) = if r.batched {
                (
                    format!("{:.2}", r.mean_batch),
                    format!("{:.1}", r.mean_latency_ms),
                )
            } else {
                ("-".into(), "-".into())
            };
            println!(
                "{:>7}  {:>7}  {:>11}  {:>8.2}  {:>7.2}  {:>11.1}  {:>13.1}  {:>10}  {:>10}",
                r.cameras,
                if r.batched { "yes" } else { "no" },
                r.ort_threads,
                r.pipeline_fps,
                r.pipeline_fps_per_camera,
                r.peak_rss_mb,
                r.peak_rss_per_camera_mb,
                batch,
                latency
            );
        }
        for b in report.runs.iter().filter(|r| r.batched) {
            if let Some(p) = report
                .runs
                .iter()
                .find(|r| r.cameras == b.cameras && !r.batched)
            {
                println!(
                    "{} cameras: {:.2} fps analysed in all without batching, {:.2} with (max_batch {}, max_wait {} ms) = {:.2} ×",
                    b.cameras,
                    p.pipeline_fps,
                    b.pipeline_fps,
                    args.max_batch,
                    args.max_wait_ms,
                    b.pipeline_fps / p.pipeline_fps.max(1e-9)
                );
            }
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
