//! `roadwarden analyze SOURCE --model M`: a camera source (file or rtsp://)
//! through the detector, one JSON line of detections per analysed frame.

use std::io::Write;
use std::process::ExitCode;
use std::sync::Arc;
use std::time::{Duration, SystemTime};

use anyhow::{Result, bail};
use clap::Args;
use indicatif::{ProgressBar, ProgressStyle};
use roadwarden_infer::{DetectOptions, InputShape, ScoreMode};
use roadwarden_media::{
    CameraState, CameraSupervisor, FrameQueue, Replay, SourceConfig, SourceKind,
};
use serde::Serialize;

use crate::output::{JsonBox, json_boxes};
use crate::runtime::RuntimeArgs;

#[derive(Debug, Args)]
pub struct AnalyzeArgs {
    /// A video file (MP4, MKV, TS; H.264/H.265) or an rtsp:// URL.
    #[arg(value_name = "SOURCE")]
    source: String,

    /// The model's manifest (TOML), e.g. models/helmet-yolov12m.toml.
    #[arg(long, short, value_name = "MANIFEST")]
    model: std::path::PathBuf,

    /// Frames per second to analyse, spread evenly [default: every frame].
    #[arg(long, value_name = "FPS")]
    fps: Option<f64>,

    /// Replay a file at its own speed, as a camera would deliver it, instead of as fast as possible.
    #[arg(long)]
    realtime: bool,

    /// The camera name carried by every line.
    #[arg(long, default_value = "cli")]
    camera: String,

    /// One score threshold for every class, instead of the manifest's per-class thresholds.
    #[arg(long, value_name = "SCORE")]
    conf: Option<f32>,

    /// Stop after this many analysed frames.
    #[arg(long, value_name = "N")]
    max_frames: Option<u64>,
}

#[derive(Serialize)]
struct JsonFrame<'a> {
    camera: &'a str,
    frame: u64,
    /// Milliseconds since the Unix epoch, wall clock of capture.
    captured_at_ms: u128,
    width: u32,
    height: u32,
    detections: Vec<JsonBox<'a>>,
}

pub fn run(rt: &RuntimeArgs, args: AnalyzeArgs) -> Result<ExitCode> {
    if let Some(fps) = args.fps
        && !(fps.is_finite() && fps > 0.0)
    {
        bail!("--fps {fps} must be a positive number");
    }
    let mut config = SourceConfig::from_arg(args.camera.as_str(), &args.source)?;
    config.analysis_fps = args.fps;
    config.pre_event = None;
    let is_file = !config.is_live();
    if let SourceKind::File { path, replay, .. } = &mut config.kind {
        if !path.is_file() {
            bail!("{}: no such video file", path.display());
        }
        if args.realtime {
            *replay = Replay::RealTime;
        }
    }
    let mut detector = rt.detector(&args.model)?;
    let opts = DetectOptions {
        score: args
            .conf
            .map(ScoreMode::Fixed)
            .unwrap_or(ScoreMode::ClassThresholds),
        shape: InputShape::Rect,
        ..DetectOptions::default()
    };

    let queue = Arc::new(FrameQueue::new(8));
    let camera = CameraSupervisor::start(config, queue.clone())?;
    let progress = if is_file {
        ProgressBar::new_spinner()
    } else {
        ProgressBar::hidden()
    };
    progress.set_style(
        ProgressStyle::with_template("{spinner} analysing {pos} frames, {per_sec}, {elapsed}")
            .unwrap_or_else(|_| ProgressStyle::default_spinner()),
    );
    let stdout = std::io::stdout();
    let mut out = stdout.lock();
    let mut analysed = 0u64;
    loop {
        if args.max_frames.is_some_and(|m| analysed >= m) {
            break;
        }
        let Some(frame) = queue.pop_timeout(Duration::from_millis(200)) else {
            let status = camera.status();
            match status.state {
                CameraState::Finished | CameraState::Stopped => break,
                CameraState::Failed => {
                    progress.finish_and_clear();
                    camera.stop();
                    bail!(
                        "{}: {}",
                        args.source_for_display(),
                        status.last_error.unwrap_or_else(|| "source failed".into())
                    );
                }
                _ => continue,
            }
        };
        let detections = detector.detect(&frame.image(), &opts)?;
        let line = JsonFrame {
            camera: &args.camera,
            frame: frame.index(),
            captured_at_ms: frame
                .captured_at()
                .duration_since(SystemTime::UNIX_EPOCH)
                .map(|d| d.as_millis())
                .unwrap_or(0),
            width: frame.width(),
            height: frame.height(),
            detections: json_boxes(&detector, &detections),
        };
        progress.suspend(|| -> Result<()> {
            serde_json::to_writer(&mut out, &line)?;
            writeln!(out)?;
            Ok(())
        })?;
        analysed += 1;
        progress.inc(1);
    }
    progress.finish_and_clear();
    out.flush()?;
    camera.stop();
    Ok(ExitCode::SUCCESS)
}

impl AnalyzeArgs {
    /// The source for messages: a URL without its password.
    fn source_for_display(&self) -> String {
        SourceConfig::from_arg(self.camera.as_str(), &self.source)
            .map(|c| c.describe())
            .unwrap_or_else(|_| "source".into())
    }
}
