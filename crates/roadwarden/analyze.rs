//! `roadwarden analyze`: a video file or RTSP camera through the detectors (`--model`: detections per
//! analysed frame, JSON lines) or through the whole per-camera pipeline (`--config`: violations, recorded
//! with their evidence into the data folder's store, or another `--database-url`, by the recorder loop
//! `serve` records with: `roadwarden_service::record_source`).

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::sync::Arc;
use std::time::{Duration, SystemTime};

use anyhow::{Context, Result, bail};
use clap::Args;
use indicatif::{ProgressBar, ProgressStyle};
use roadwarden_evidence::Recorded;
use roadwarden_infer::{DetectOptions, InputShape, ScoreMode};
use roadwarden_media::{
    CameraState, CameraSupervisor, FrameQueue, Replay, SourceConfig, SourceKind,
};
use roadwarden_pipeline::{RunnerEvent, SignalLog};
use roadwarden_rules::SiteConfig;
use roadwarden_service::{Analysed, DataDir, Handled, RecordObserver, RecordRun, record_source};
use roadwarden_types::Violation;
use serde::Serialize;

use crate::output::{JsonBox, json_boxes};
use crate::runtime::RuntimeArgs;

#[derive(Debug, Args)]
#[command(after_help = "\
Examples:
  roadwarden analyze clip.mp4 --model models/helmet-yolov12m.toml --fps 5
  roadwarden analyze rtsp://127.0.0.1:8554/stream --model models/fastestdet-352.toml --camera gate
  roadwarden analyze scene.mp4 --config examples/site.toml --data /tmp/rw-data
  roadwarden analyze scene.mp4 --config examples/site.toml --start-time 2024-05-01T08:00:00Z
  roadwarden analyze scene.mp4 --config examples/site.toml --signal-log signal.csv
  roadwarden verify --data /tmp/rw-data")]
pub(crate) struct AnalyzeArgs {
    /// A video file (MP4, MKV, TS; H.264/H.265) or an rtsp:// URL.
    #[arg(value_name = "SOURCE")]
    source: String,
    /// Site file: run the whole pipeline (tracking, signal, rules), record and print violations.
    #[arg(
        long,
        value_name = "SITE",
        conflicts_with = "model",
        required_unless_present = "model"
    )]
    config: Option<PathBuf>,
    /// With --config: which camera of the site file [default: the first]. With --model: the camera name
    /// carried by every line [default: cli].
    #[arg(long, value_name = "ID")]
    camera: Option<String>,
    /// A model manifest (TOML), e.g. models/helmet-yolov12m.toml: print its detections per analysed frame.
    #[arg(long, short, value_name = "MANIFEST")]
    model: Option<PathBuf>,
    /// With --model: frames per second to analyse, spread evenly [default: every frame]. With --config the
    /// camera's `analysis_fps` applies.
    #[arg(long, value_name = "FPS", requires = "model")]
    fps: Option<f64>,
    /// With --model: replay a file at its own speed, as a camera would deliver it.
    #[arg(long, requires = "model")]
    realtime: bool,
    /// With --model: one score threshold for every class, instead of the manifest's per-class thresholds.
    #[arg(long, value_name = "SCORE", requires = "model")]
    conf: Option<f32>,
    /// With --model: stop after this many analysed frames.
    #[arg(long, value_name = "N", requires = "model")]
    max_frames: Option<u64>,
    /// With --config: the data folder the violations and their evidence go to [default:
    /// $XDG_DATA_HOME/roadwarden or ~/.local/share/roadwarden].
    #[arg(long, value_name = "DIR", env = "ROADWARDEN_DATA")]
    data: Option<PathBuf>,
    /// With --config: the store [default: the SQLite file in the data folder].
    #[arg(
        long,
        value_name = "URL",
        env = "ROADWARDEN_DATABASE_URL",
        hide_env_values = true
    )]
    database_url: Option<String>,
    /// With --config: photos only, no video clip per violation.
    #[arg(long)]
    no_clip: bool,
    /// With --config: write the signal timeline, one row per analysed frame (frame, time, state, each
    /// lamp's level, unlit level and lit flag): CSV if FILE ends in .csv, else JSON lines.
    #[arg(long, value_name = "FILE", requires = "config")]
    signal_log: Option<PathBuf>,
    /// A file's recording start (RFC 3339, e.g. 2024-05-01T08:00:00Z or 2024-05-01T10:00:00+02:00): frames,
    /// violations and evidence folders are dated from it by their position in the file [default: the
    /// container's creation time when the file carries one, else the moment analysis starts].
    #[arg(long, value_name = "RFC3339")]
    start_time: Option<String>,
    /// No progress bar.
    #[arg(long, short)]
    quiet: bool,
}

/// Sets `--start-time` on a file source; a camera has its own clock.
fn set_start_time(config: &mut SourceConfig, start: Option<&str>) -> Result<()> {
    let Some(s) = start else {
        return Ok(());
    };
    if config.is_live() {
        bail!(
            "--start-time dates a video file; an RTSP camera's frames carry the stream's own time"
        );
    }
    let t = chrono::DateTime::parse_from_rfc3339(s.trim()).map_err(|e| {
        anyhow::anyhow!(
            "--start-time `{s}` is not an RFC 3339 time ({e}); write e.g. 2024-05-01T08:00:00Z"
        )
    })?;
    config.recording_start = Some(SystemTime::from(t));
    Ok(())
}

#[derive(Serialize)]
struct JsonFrame<'a> {
    camera: &'a str,
    frame: u64,
    /// Milliseconds since the Unix epoch, the recording's time of the frame.
    captured_at_ms: u128,
    width: u32,
    height: u32,
    detections: Vec<JsonBox<'a>>,
}

fn progress(quiet: bool, live: bool) -> ProgressBar {
    if quiet || live {
        return ProgressBar::hidden();
    }
    let pb = ProgressBar::new_spinner();
    pb.set_style(
        ProgressStyle::with_template("{spinner} {elapsed} {pos} frames analysed {msg}")
            .unwrap_or_else(|_| ProgressStyle::default_spinner()),
    );
    pb.enable_steady_tick(Duration::from_millis(200));
    pb
}

pub(crate) fn run(rt: &RuntimeArgs, args: AnalyzeArgs) -> Result<ExitCode> {
    if let Some(site) = &args.config {
        return run_config(rt, &args, site);
    }
    let Some(model) = &args.model else {
        bail!("give --config SITE or --model MANIFEST")
    };
    run_model(rt, &args, model)
}

/// `--model`: detections per analysed frame.
fn run_model(rt: &RuntimeArgs, args: &AnalyzeArgs, model: &Path) -> Result<ExitCode> {
    if let Some(fps) = args.fps
        && !(fps.is_finite() && fps > 0.0)
    {
        bail!("--fps {fps} must be a positive number");
    }
    let camera_name = args.camera.clone().unwrap_or_else(|| "cli".into());
    let mut config = SourceConfig::from_arg(camera_name.as_str(), &args.source)?;
    config.analysis_fps = args.fps;
    config.pre_event = None;
    set_start_time(&mut config, args.start_time.as_deref())?;
    let is_file = !config.is_live();
    if let SourceKind::File { path, replay, .. } = &mut config.kind {
        if !path.is_file() {
            bail!("{}: no such video file", path.display());
        }
        if args.realtime {
            *replay = Replay::RealTime;
        }
    }
    let display = config.describe();
    let mut detector = rt.detector(model)?;
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
    let progress = progress(args.quiet, !is_file);
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
                        "{display}: {}",
                        status.last_error.unwrap_or_else(|| "source failed".into())
                    );
                }
                _ => continue,
            }
        };
        let detections = detector.detect(&frame.image(), &opts)?;
        let line = JsonFrame {
            camera: &camera_name,
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
            writeln!(out).context("cannot write to stdout")?;
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

/// One recorded violation, as printed.
#[derive(Serialize)]
struct RecordedLine<'a> {
    #[serde(flatten)]
    violation: &'a Violation,
    /// `committed`, `spooled` (the store is unreachable; replayed when it returns) or `already_recorded`.
    recorded: &'static str,
    /// Position in the camera's hash chain, when committed.
    seq: Option<i64>,
    /// The evidence files, relative to the data folder, when committed.
    evidence: Vec<String>,
    /// Evidence frames whose image was no longer kept (none expected).
    missing_frames: Vec<roadwarden_types::FrameRole>,
}

/// Prints one JSON line per recorded violation, on the recorder's thread.
struct PrintRecorded {
    pb: ProgressBar,
    recorded: u64,
}

impl RecordObserver for PrintRecorded {
    fn handled(&mut self, h: &Handled<'_>) -> std::io::Result<()> {
        // A violation that could not be recorded ends the run with its error.
        let Ok(how) = &h.outcome else {
            return Ok(());
        };
        let (recorded, seq) = match how {
            Recorded::Committed { seq } => ("committed", Some(*seq)),
            Recorded::Spooled => ("spooled", None),
            Recorded::AlreadyRecorded => ("already_recorded", None),
        };
        let json = serde_json::to_string(&RecordedLine {
            violation: h.violation,
            recorded,
            seq,
            evidence: h.evidence.clone(),
            missing_frames: h.missing_frames.to_vec(),
        })?;
        self.pb
            .suspend(|| writeln!(std::io::stdout().lock(), "{json}"))?;
        self.recorded += 1;
        self.pb
            .set_message(format!("{} violation(s) recorded", self.recorded));
        Ok(())
    }
}

fn run_config(rt: &RuntimeArgs, args: &AnalyzeArgs, site: &Path) -> Result<ExitCode> {
    let cfg = SiteConfig::load(site)?;
    let cam = match &args.camera {
        Some(id) => cfg
            .camera(id)
            .with_context(|| format!("{}: no camera `{id}`", site.display()))?,
        None => &cfg.cameras[0],
    };
    let data = DataDir::new(args.data.clone().unwrap_or_else(DataDir::default_root));
    let runtime = rt.runtime()?;
    let mut source = SourceConfig::from_arg(cam.id.clone(), &args.source)?;
    set_start_time(&mut source, args.start_time.as_deref())?;
    if let SourceKind::File { path, .. } = &source.kind
        && !path.is_file()
    {
        bail!("{}: no such video file", path.display());
    }
    if let Some(d) = cam.source.as_ref().and_then(|s| s.decoder.clone()) {
        source.decoder = d;
    }
    let pb = progress(args.quiet, source.is_live());
    let run = RecordRun {
        camera: cam,
        runtime: &runtime,
        source,
        data: data.clone(),
        database_url: args.database_url.clone(),
        clips: !args.no_clip,
    };
    let printer = PrintRecorded {
        pb: pb.clone(),
        recorded: 0,
    };
    let mut signal_log = args
        .signal_log
        .as_deref()
        .map(SignalLog::create)
        .transpose()?;
    let mut log_error = None;
    let analysed = record_source(
        run,
        |event| {
            pb.inc(1);
            if let (Some(log), RunnerEvent::Frame(report)) = (signal_log.as_mut(), event)
                && let Err(e) = log.write(report)
            {
                log_error.get_or_insert(e);
            }
        },
        printer,
    );
    pb.finish_and_clear();
    let Analysed {
        summary,
        handed,
        tally,
    } = analysed?;
    if let Some(e) = log_error {
        return Err(e.into());
    }
    if let Some(log) = signal_log {
        log.finish()?;
    }
    eprintln!(
        "{} frames analysed, {} violation(s): {} committed, {} spooled, {} already recorded, {} with clips; data folder {}",
        summary.frames,
        handed,
        tally.committed,
        tally.spooled,
        tally.already,
        tally.clips,
        data.root().display()
    );
    Ok(ExitCode::SUCCESS)
}
