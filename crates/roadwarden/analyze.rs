//! `roadwarden analyze`: a video file or RTSP camera through the detectors (`--model`: detections per
//! analysed frame, JSON lines) or through the whole per-camera pipeline (`--config`: violations, recorded
//! with their evidence into the data folder's store, or another `--database-url`, exactly as `serve`
//! records them: pipeline → evidence frames → `evidence::Capture` → `evidence::Recorder`).

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::sync::Arc;
use std::sync::mpsc;
use std::time::Duration;

use anyhow::{Context, Result, bail};
use clap::Args;
use indicatif::{ProgressBar, ProgressStyle};
use roadwarden_evidence::{Capture, DataDir, Recorded, Recorder};
use roadwarden_infer::DetectOptions;
use roadwarden_media::{CameraState, CameraSupervisor, FrameQueue, SourceConfig};
use roadwarden_pipeline::{
    CameraPipeline, ClipOptions, EvidenceOptions, ViolationFrames, run_source_with,
};
use roadwarden_rules::{CameraConfig, SiteConfig};
use roadwarden_types::Violation;
use serde::Serialize;

use crate::runtime::RuntimeArgs;

#[derive(Debug, Args)]
pub struct AnalyzeArgs {
    /// A video file or an rtsp:// URL.
    source: String,
    /// Site file: run the rules and print violations.
    #[arg(
        long,
        value_name = "SITE",
        conflicts_with = "model",
        required_unless_present = "model"
    )]
    config: Option<PathBuf>,
    /// Which camera of the site file [default: the first].
    #[arg(long, value_name = "ID", requires = "config")]
    camera: Option<String>,
    /// A model manifest: print its detections per analysed frame instead.
    #[arg(long, short, value_name = "MANIFEST")]
    model: Option<PathBuf>,
    /// Analysed frames per second with --model [default: 5].
    #[arg(long, value_name = "FPS", default_value_t = 5.0)]
    fps: f64,
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
    /// No progress bar.
    #[arg(long, short)]
    quiet: bool,
}

#[derive(Serialize)]
struct JsonDet<'a> {
    class: &'a str,
    class_id: usize,
    score: f32,
    bbox: [f32; 4],
}

#[derive(Serialize)]
struct JsonFrame<'a> {
    frame: u64,
    captured_at: chrono::DateTime<chrono::Utc>,
    detections: Vec<JsonDet<'a>>,
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
    let stdout = std::io::stdout();
    let Some(model) = &args.model else {
        bail!("give --config SITE or --model MANIFEST")
    };
    if !(args.fps.is_finite() && args.fps > 0.0) {
        bail!("--fps must be positive");
    }
    let mut det = rt.detector(model)?;
    let mut source = SourceConfig::from_arg("analyze", &args.source)?;
    source.analysis_fps = Some(args.fps);
    source.pre_event = None;
    if !source.is_live() {
        source.max_attempts = Some(1);
    }
    let pb = progress(args.quiet, source.is_live());
    let queue = Arc::new(FrameQueue::new(4));
    let sup = CameraSupervisor::start(source, queue.clone())?;
    let opts = DetectOptions::default();
    let mut out = stdout.lock();
    let mut frames = 0u64;
    loop {
        match queue.pop_timeout(Duration::from_millis(200)) {
            Some(frame) => {
                let dets = det.detect(&frame.image(), &opts)?;
                let json = JsonFrame {
                    frame: frame.index(),
                    captured_at: frame.captured_at().into(),
                    detections: dets
                        .iter()
                        .map(|d| JsonDet {
                            class: det.class_name(d.class_id),
                            class_id: d.class_id.0,
                            score: d.score,
                            bbox: [d.bbox.x1, d.bbox.y1, d.bbox.x2, d.bbox.y2],
                        })
                        .collect(),
                };
                writeln!(out, "{}", serde_json::to_string(&json)?)
                    .context("cannot write to stdout")?;
                frames += 1;
                pb.inc(1);
            }
            None => {
                let st = sup.status();
                if matches!(
                    st.state,
                    CameraState::Finished | CameraState::Failed | CameraState::Stopped
                ) && queue.is_empty()
                {
                    if st.state == CameraState::Failed && frames == 0 {
                        bail!(
                            "{}",
                            st.last_error.unwrap_or_else(|| "source failed".into())
                        );
                    }
                    break;
                }
            }
        }
    }
    pb.finish_and_clear();
    sup.stop();
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

fn stop_line(cam: &CameraConfig) -> [(f32, f32); 2] {
    let l = &cam.stop_line;
    [(l.a[0], l.a[1]), (l.b[0], l.b[1])]
}

/// Records what the pipeline hands out, in order, on its own thread (waiting for each clip there, so the
/// analysis keeps feeding the stream the clip's post window needs); prints one JSON line per violation.
fn record_all(
    data: DataDir,
    database_url: Option<String>,
    line: [(f32, f32); 2],
    clip_dir: PathBuf,
    rx: mpsc::Receiver<ViolationFrames>,
    pb: ProgressBar,
    ready: mpsc::Sender<Result<()>>,
) -> Result<Tally> {
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .context("cannot start the async runtime")?;
    let opened = rt.block_on(Recorder::open(data.clone(), database_url.as_deref()));
    let (mut recorder, startup) = match opened {
        Ok(x) => {
            let _ = ready.send(Ok(()));
            x
        }
        Err(e) => {
            let e = anyhow::Error::new(e).context(format!(
                "cannot open the data folder {}",
                data.root().display()
            ));
            let _ = ready.send(Err(anyhow::anyhow!("{e:#}")));
            return Err(e);
        }
    };
    if let Some(e) = &startup.connect_error {
        pb.suspend(|| eprintln!("warning: {e}; violations go to the spool until it is back"));
    }
    if let Some(r) = &startup.replayed
        && r.inserted + r.already_present > 0
    {
        pb.suspend(|| {
            eprintln!(
                "spool replayed: {} inserted, {} already present",
                r.inserted, r.already_present
            )
        });
    }
    if let Some(r) = &startup.reconcile {
        for (from, to) in &r.quarantined {
            pb.suspend(|| eprintln!("warning: orphan evidence file {from} quarantined as {to}"));
        }
        for m in &r.missing {
            pb.suspend(|| eprintln!("warning: evidence file {m} is missing"));
        }
    }
    let mut tally = Tally::default();
    let stdout = std::io::stdout();
    for vf in rx {
        let clip = vf.clip.and_then(|job| {
            let path = clip_dir.join(format!("{}.mp4", vf.violation.id));
            match job.wait(Duration::from_secs(20)) {
                Ok(report) => Some(report.path),
                Err(e) => {
                    pb.suspend(|| {
                        eprintln!("warning: violation {}: no clip: {e}", vf.violation.id)
                    });
                    let _ = std::fs::remove_file(path);
                    None
                }
            }
        });
        let clip_file = clip.clone();
        let capture = Capture::new(vf.violation.clone(), vf.images)
            .with_stop_line(line)
            .with_clip(clip);
        let id = vf.violation.id.to_string();
        let how = rt
            .block_on(recorder.record(capture))
            .with_context(|| format!("cannot record violation {id}"))?;
        if let Some(c) = clip_file {
            tally.clips += 1;
            let _ = std::fs::remove_file(c);
        }
        let (recorded, seq) = match how {
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
        let mut evidence = Vec::new();
        if seq.is_some()
            && let Some(store) = recorder.store()
            && let Ok(Some(r)) = rt.block_on(store.get(&id))
        {
            evidence = r.evidence.into_iter().map(|e| e.item.path).collect();
        }
        let json = serde_json::to_string(&RecordedLine {
            violation: &vf.violation,
            recorded,
            seq,
            evidence,
            missing_frames: vf.missing,
        })?;
        pb.suspend(|| writeln!(stdout.lock(), "{json}"))
            .context("cannot write to stdout")?;
        pb.set_message(format!(
            "{} violation(s) recorded",
            tally.committed + tally.spooled + tally.already
        ));
    }
    let left = rt.block_on(recorder.flush());
    if left > 0 {
        eprintln!(
            "warning: {left} violation(s) wait in the spool {} for the store to come back",
            data.spool_path().display()
        );
    }
    if let Some(store) = recorder.store() {
        rt.block_on(store.close());
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
    if let Some(d) = cam.source.as_ref().and_then(|s| s.decoder.clone()) {
        source.decoder = d;
    }
    let pb = progress(args.quiet, source.is_live());
    let clip_dir = data.root().join("clips-in-progress");
    let opts = EvidenceOptions {
        ring: None,
        clips: (!args.no_clip).then(|| ClipOptions {
            dir: clip_dir.clone(),
            pre: Duration::from_secs(5),
            post: Duration::from_secs(2),
        }),
    };
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
    let summary = run_source_with(
        &mut pipeline,
        source,
        &opts,
        |_report, evidence| {
            pb.inc(1);
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
