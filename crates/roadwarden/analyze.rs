//! `roadwarden analyze`: a video file or RTSP camera through the detectors (`--model`: detections per
//! analysed frame, JSON lines) or through the whole per-camera pipeline (`--config`: violations, recorded
//! with their evidence into the data folder's store, or another `--database-url`, exactly as `serve`
//! records them: pipeline → evidence frames → `evidence::Capture` → `evidence::Recorder`).

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::sync::Arc;
use std::sync::mpsc;
use std::time::{Duration, SystemTime};

use anyhow::{Context, Result, bail};
use clap::Args;
use indicatif::{ProgressBar, ProgressStyle};
use roadwarden_evidence::{Capture, DataDir, Recorded, Recorder};
use roadwarden_infer::{DetectOptions, InputShape, ScoreMode};
use roadwarden_media::{
    CameraState, CameraSupervisor, FrameQueue, Replay, SourceConfig, SourceKind,
};
use roadwarden_pipeline::{
    CameraPipeline, ClipOptions, EvidenceOptions, SignalLog, ViolationFrames, run_source_with,
};
use roadwarden_rules::{CameraConfig, SiteConfig};
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
  roadwarden analyze scene.mp4 --config examples/site.toml --signal-log signal.csv
  roadwarden verify --data /tmp/rw-data")]
pub struct AnalyzeArgs {
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
    /// No progress bar.
    #[arg(long, short)]
    quiet: bool,
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

pub fn run(rt: &RuntimeArgs, args: AnalyzeArgs) -> Result<ExitCode> {
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

#[derive(Default)]
struct Tally {
    committed: u64,
    spooled: u64,
    already: u64,
    clips: u64,
}

/// The camera's stop line in frame pixels, drawn on red-light photos.
pub(crate) fn stop_line(cam: &CameraConfig) -> [(f32, f32); 2] {
    let l = &cam.stop_line;
    [(l.a[0], l.a[1]), (l.b[0], l.b[1])]
}

/// Where clips are written while their post window runs, before the recorder copies them in.
pub(crate) fn clip_dir(data: &DataDir) -> PathBuf {
    data.root().join("clips-in-progress")
}

/// What the pipeline keeps for evidence: the camera's frame ring, and (given a folder) a clip per
/// violation, 5 s before it and 2 s after.
pub(crate) fn evidence_options(clips: Option<PathBuf>) -> EvidenceOptions {
    EvidenceOptions {
        ring: None,
        clips: clips.map(|dir| ClipOptions {
            dir,
            pre: Duration::from_secs(5),
            post: Duration::from_secs(2),
        }),
    }
}

/// The recording glue `analyze --config` and `serve` share: the process's one evidence [`Recorder`] (the
/// single writer of the hash chains) on its own current-thread runtime, so it must live on a thread of
/// its own. Each violation's clip is awaited here, so the analysis keeps feeding the stream the clip's
/// post window needs.
pub(crate) struct Recording {
    rt: tokio::runtime::Runtime,
    recorder: Recorder,
    clip_dir: PathBuf,
}

/// One violation, recorded.
pub(crate) struct RecordedOne {
    pub(crate) how: Recorded,
    /// Whether its clip made it into the evidence.
    pub(crate) clip: bool,
}

impl Recording {
    /// Opens the data folder's recorder and store (replaying the spool, reconciling orphan evidence);
    /// also returns the lines worth showing about what it found.
    pub(crate) fn open(
        data: &DataDir,
        database_url: Option<&str>,
        clip_dir: PathBuf,
    ) -> Result<(Recording, Vec<String>)> {
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .context("cannot start the async runtime")?;
        let (recorder, startup) = rt
            .block_on(Recorder::open(data.clone(), database_url))
            .with_context(|| format!("cannot open the data folder {}", data.root().display()))?;
        let mut notes = Vec::new();
        if let Some(e) = &startup.connect_error {
            notes.push(format!(
                "warning: {e}; violations go to the spool until it is back"
            ));
        }
        if let Some(r) = &startup.replayed
            && r.inserted + r.already_present > 0
        {
            notes.push(format!(
                "spool replayed: {} inserted, {} already present",
                r.inserted, r.already_present
            ));
        }
        if let Some(r) = &startup.reconcile {
            for (from, to) in &r.quarantined {
                notes.push(format!(
                    "warning: orphan evidence file {from} quarantined as {to}"
                ));
            }
            for m in &r.missing {
                notes.push(format!("warning: evidence file {m} is missing"));
            }
        }
        let rec = Recording {
            rt,
            recorder,
            clip_dir,
        };
        Ok((rec, notes))
    }

    /// Waits for the violation's clip (`warn` hears why there is none), writes its evidence and commits
    /// it, or spools it while the store is down.
    pub(crate) fn record(
        &mut self,
        vf: ViolationFrames,
        line: [(f32, f32); 2],
        warn: impl Fn(String),
    ) -> Result<RecordedOne> {
        let id = vf.violation.id.to_string();
        let clip = vf.clip.and_then(|job| {
            let path = self.clip_dir.join(format!("{id}.mp4"));
            match job.wait(Duration::from_secs(20)) {
                Ok(report) => Some(report.path),
                Err(e) => {
                    warn(format!("violation {id}: no clip: {e}"));
                    let _ = std::fs::remove_file(path);
                    None
                }
            }
        });
        let clip_file = clip.clone();
        let capture = Capture::new(vf.violation, vf.images)
            .with_stop_line(line)
            .with_clip(clip);
        let how = self
            .rt
            .block_on(self.recorder.record(capture))
            .with_context(|| format!("cannot record violation {id}"))?;
        if let Some(c) = &clip_file {
            let _ = std::fs::remove_file(c);
        }
        Ok(RecordedOne {
            how,
            clip: clip_file.is_some(),
        })
    }

    /// The evidence files of a committed violation, relative to the data folder.
    pub(crate) fn evidence(&self, id: &str) -> Vec<String> {
        match self.recorder.store().map(|s| self.rt.block_on(s.get(id))) {
            Some(Ok(Some(r))) => r.evidence.into_iter().map(|e| e.item.path).collect(),
            _ => Vec::new(),
        }
    }

    /// Records waiting in the spool.
    pub(crate) fn spooled(&self) -> usize {
        self.recorder.spooled()
    }

    /// Replays the spool if the store is reachable and closes it; a warning when records are left in
    /// the spool.
    pub(crate) fn close(mut self) -> Option<String> {
        let left = self.rt.block_on(self.recorder.flush());
        if let Some(store) = self.recorder.store() {
            self.rt.block_on(store.close());
        }
        (left > 0).then(|| {
            format!(
                "warning: {left} violation(s) wait in the spool {} for the store to come back",
                self.recorder.data().spool_path().display()
            )
        })
    }
}

/// Records what the pipeline hands out, in order, on its own thread; prints one JSON line per violation.
fn record_all(
    data: DataDir,
    database_url: Option<String>,
    line: [(f32, f32); 2],
    clip_dir: PathBuf,
    rx: mpsc::Receiver<ViolationFrames>,
    pb: ProgressBar,
    ready: mpsc::Sender<Result<()>>,
) -> Result<Tally> {
    let (mut recording, notes) = match Recording::open(&data, database_url.as_deref(), clip_dir) {
        Ok(x) => {
            let _ = ready.send(Ok(()));
            x
        }
        Err(e) => {
            let _ = ready.send(Err(anyhow::anyhow!("{e:#}")));
            return Err(e);
        }
    };
    for n in &notes {
        pb.suspend(|| eprintln!("{n}"));
    }
    let mut tally = Tally::default();
    let stdout = std::io::stdout();
    for vf in rx {
        let (violation, missing) = (vf.violation.clone(), vf.missing.clone());
        let id = violation.id.to_string();
        let one = recording.record(vf, line, |w| pb.suspend(|| eprintln!("warning: {w}")))?;
        if one.clip {
            tally.clips += 1;
        }
        let (recorded, seq) = match one.how {
            Recorded::Committed { seq } => {
                tally.committed += 1;
                ("committed", Some(seq))
            }
            Recorded::Spooled => {
                tally.spooled += 1;
                ("spooled", None)
            }
            Recorded::AlreadyRecorded => {
                tally.already += 1;
                ("already_recorded", None)
            }
        };
        let evidence = match seq {
            Some(_) => recording.evidence(&id),
            None => Vec::new(),
        };
        let json = serde_json::to_string(&RecordedLine {
            violation: &violation,
            recorded,
            seq,
            evidence,
            missing_frames: missing,
        })?;
        pb.suspend(|| writeln!(stdout.lock(), "{json}"))
            .context("cannot write to stdout")?;
        pb.set_message(format!(
            "{} violation(s) recorded",
            tally.committed + tally.spooled + tally.already
        ));
    }
    if let Some(w) = recording.close() {
        eprintln!("{w}");
    }
    Ok(tally)
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
    let mut pipeline = CameraPipeline::new(cam, &runtime)?;
    let mut source = SourceConfig::from_arg(cam.id.clone(), &args.source)?;
    if let SourceKind::File { path, .. } = &source.kind
        && !path.is_file()
    {
        bail!("{}: no such video file", path.display());
    }
    if let Some(d) = cam.source.as_ref().and_then(|s| s.decoder.clone()) {
        source.decoder = d;
    }
    let pb = progress(args.quiet, source.is_live());
    let clip_dir = clip_dir(&data);
    let opts = evidence_options((!args.no_clip).then(|| clip_dir.clone()));
    if opts.clips.is_some() {
        std::fs::create_dir_all(&clip_dir)
            .with_context(|| format!("cannot create {}", clip_dir.display()))?;
    }
    let (tx, rx) = mpsc::channel::<ViolationFrames>();
    let (ready_tx, ready_rx) = mpsc::channel();
    let worker = {
        let (data, url, line, dir, pb) = (
            data.clone(),
            args.database_url.clone(),
            stop_line(cam),
            clip_dir.clone(),
            pb.clone(),
        );
        std::thread::Builder::new()
            .name("recorder".into())
            .spawn(move || record_all(data, url, line, dir, rx, pb, ready_tx))
            .context("cannot start the recorder thread")?
    };
    // Refuse to analyse when nothing could be recorded.
    if let Ok(Err(e)) = ready_rx.recv() {
        pb.finish_and_clear();
        let _ = worker.join();
        return Err(e);
    }
    let mut handed = 0u64;
    let mut signal_log = args
        .signal_log
        .as_deref()
        .map(SignalLog::create)
        .transpose()?;
    let mut log_error = None;
    let summary = run_source_with(
        &mut pipeline,
        source,
        &opts,
        |report, evidence| {
            pb.inc(1);
            if let Some(log) = signal_log.as_mut()
                && let Err(e) = log.write(report)
            {
                log_error.get_or_insert(e);
            }
            for vf in evidence {
                handed += 1;
                // A send fails only when the recorder stopped on an error, reported below.
                let _ = tx.send(vf);
            }
        },
        || false,
    );
    drop(tx);
    let recorded = worker
        .join()
        .map_err(|_| anyhow::anyhow!("the recorder thread panicked"))?;
    pb.finish_and_clear();
    let _ = std::fs::remove_dir(&clip_dir);
    let summary = summary?;
    let tally = recorded?;
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
