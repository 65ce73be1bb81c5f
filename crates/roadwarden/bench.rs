//! `roadwarden bench`: whole-pipeline throughput on one clip, in one run: decode-only fps (GStreamer, the
//! media crate), inference-only fps (the same model, input shape and threads, on frames decoded beforehand),
//! full-pipeline fps (decode → inference → ByteTrack → rules with `--config`) and peak memory, at 1, 2 and 4
//! cameras. With `--config` naming a camera whose `[camera.gating]` is on (or with `--gating`), the
//! pipeline runs are of that gated camera, and one more run (`gating`) takes the clip's frames at the
//! camera's analysis rate through the gated pipeline and the same camera ungated, interleaved frame by
//! frame, and reports both analysed-frame rates. The runs are `roadwarden_pipeline::throughput`'s; this
//! command parses the arguments, sets the thread budget and prints the report.
//!
//! Thread budget (documented in benches/RESULTS.md): with N cores (`available_parallelism`, or `--threads N`),
//! each of K cameras gets `max(1, N / K)` ONNX Runtime intra-op threads; the decoder runs on GStreamer's own
//! streaming threads (`--decoder`, default `avdec_h264 max-threads=1`: one thread, mostly idle while the
//! bounded queue is full), so decoding overlaps inference instead of competing with it.

use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::{Context, Result, bail};
use clap::Args;
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
    let mut runs = Vec::new();
    for &k in &args.cameras {
        runs.push(bench.cameras(cam, &runtime, k, (budget / k).max(1))?);
    }
    let one = runs.iter().find(|r| r.cameras == 1).unwrap_or(&runs[0]);
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
