//! `roadwarden eval`: violation-level precision and recall of the whole pipeline on a video whose ground
//! truth is known (a `roadwarden synth` scene), per rule, with the misses and false alarms; `--sweep`
//! replays the pure rules over the recorded tracks under other thresholds and plots the
//! precision/recall curve.
//!
//! The detectors and trackers run once; the recording, its replay and the sweep are
//! `roadwarden_pipeline::{replay, sweep}`. This command parses the arguments, shows progress and prints.

use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::time::Duration;

use anyhow::{Context, Result, bail};
use clap::Args;
use indicatif::{ProgressBar, ProgressStyle};
use roadwarden_media::SourceConfig;
use roadwarden_pipeline::replay::{Recording, Replay};
use roadwarden_pipeline::score::{RuleScore, Score, score};
use roadwarden_pipeline::sweep::{RuleSweep, Sweep, rule_name};
use roadwarden_pipeline::synth::Truth;
use roadwarden_pipeline::{CameraPipeline, run_source};
use roadwarden_rules::{SiteConfig, ViolationKind};
use serde::Serialize;

use crate::runtime::RuntimeArgs;

#[derive(Debug, Args)]
#[command(after_help = "\
Examples:
  roadwarden synth examples/scene-1.toml --out scene.mp4 --truth truth.json
  roadwarden eval scene.mp4 --config examples/site.toml --truth truth.json
  roadwarden eval scene.mp4 --config examples/site.toml --truth truth.json --json
  roadwarden eval scene.mp4 --config examples/site.toml --truth truth.json --sweep \\
      --plot pr.svg --table pr.csv

A reported violation matches a true one of the same type when its key-frame box overlaps
that actor's box and it falls within 1 s of the true interval. Each true violation matches
once; a second report of the same offender is a duplicate and counts as a false alarm.

--sweep varies the helmet rule's `Without Helmet` class threshold (0.10 to 0.90) and its
votes K of the configured window N, and the red-light grace time (0 to 1.5 s). Per rule it
recommends the setting with the highest F1 among those with precision >= --min-precision
(ties: higher precision, then the configured setting, then the stricter); when none reaches
it, the highest F1 overall, and says so. The models run once (about a second a frame on a
CPU); every sweep point replays the rules over the recorded tracks.")]
pub(crate) struct EvalViolationsArgs {
    /// The video (a file, e.g. from `roadwarden synth`).
    source: String,
    /// The site file the video is analysed with.
    #[arg(long, value_name = "SITE")]
    config: PathBuf,
    /// The ground truth (JSON, as `roadwarden synth --truth` writes it).
    #[arg(long, value_name = "JSON")]
    truth: PathBuf,
    /// Which camera of the site file [default: the first].
    #[arg(long, value_name = "ID")]
    camera: Option<String>,
    /// Also vary the rule thresholds: precision/recall curve (SVG) and table (CSV, and stdout).
    #[arg(long)]
    sweep: bool,
    /// Where --sweep writes the precision/recall plot.
    #[arg(long, value_name = "SVG", default_value = "eval-sweep.svg")]
    plot: PathBuf,
    /// Where --sweep writes the table.
    #[arg(long, value_name = "CSV", default_value = "eval-sweep.csv")]
    table: PathBuf,
    /// The precision a recommended setting must reach.
    #[arg(long, value_name = "P", default_value_t = 0.9)]
    min_precision: f64,
    /// Print one JSON object on stdout instead of the text report.
    #[arg(long)]
    json: bool,
    /// No progress bar.
    #[arg(long, short)]
    quiet: bool,
}

#[derive(Serialize)]
struct JsonMiss {
    rule: &'static str,
    #[serde(rename = "type")]
    kind: ViolationKind,
    actor: u32,
    time_s: f64,
}

#[derive(Serialize)]
struct JsonFalseAlarm {
    rule: &'static str,
    #[serde(rename = "type")]
    kind: ViolationKind,
    track_id: u64,
    time_s: f64,
    actor: Option<u32>,
    why: String,
}

#[derive(Serialize)]
struct Report<'a> {
    source: &'a str,
    camera: &'a str,
    frames_analysed: u64,
    /// Distinct confirmed head and two-wheeler tracks the pipeline followed.
    head_tracks: usize,
    two_wheeler_tracks: usize,
    reported: usize,
    expected: usize,
    per_rule: std::collections::BTreeMap<&'static str, RuleScore>,
    misses: Vec<JsonMiss>,
    false_alarms: Vec<JsonFalseAlarm>,
    #[serde(skip_serializing_if = "Option::is_none")]
    sweep: Option<SweepJson<'a>>,
}

/// The sweep as `--json` shows it: where its files went, between the rule and the results.
#[derive(Serialize)]
struct SweepJson<'a> {
    min_precision: f64,
    rule: &'static str,
    plot: &'a Path,
    table: &'a Path,
    /// Whether replaying the rules at the configured setting reproduced the live run's violations.
    replay_matches_live: bool,
    helmet: &'a RuleSweep,
    red_light: &'a RuleSweep,
}

fn report<'a>(
    args: &'a EvalViolationsArgs,
    camera: &'a str,
    recording: &Recording,
    frames: u64,
    truth: &Truth,
    sc: &Score,
    sweep: Option<&'a Sweep>,
) -> Report<'a> {
    Report {
        source: &args.source,
        camera,
        frames_analysed: frames,
        head_tracks: recording.head_tracks(),
        two_wheeler_tracks: recording.two_wheeler_tracks(),
        reported: recording.live.len(),
        expected: truth.violations.len(),
        per_rule: sc
            .per_rule
            .iter()
            .map(|(k, v)| (rule_name(*k), v.clone()))
            .collect(),
        misses: sc
            .misses
            .iter()
            .map(|m| JsonMiss {
                rule: rule_name(m.kind),
                kind: m.kind,
                actor: m.actor,
                time_s: m.time_s,
            })
            .collect(),
        false_alarms: sc
            .false_alarms
            .iter()
            .map(|f| JsonFalseAlarm {
                rule: rule_name(f.kind),
                kind: f.kind,
                track_id: f.track_id,
                time_s: f.time_s,
                actor: f.actor,
                why: f.why.clone(),
            })
            .collect(),
        sweep: sweep.map(|s| SweepJson {
            min_precision: s.min_precision,
            rule: Sweep::RULE,
            plot: &args.plot,
            table: &args.table,
            replay_matches_live: s.replay_matches_live,
            helmet: &s.helmet,
            red_light: &s.red_light,
        }),
    }
}

fn print_text(r: &Report<'_>) {
    println!(
        "{}: {} frames analysed ({} head and {} two-wheeler tracks), {} violation(s) reported, {} expected",
        r.source, r.frames_analysed, r.head_tracks, r.two_wheeler_tracks, r.reported, r.expected
    );
    println!(
        "  {:<10} {:>9} {:>6} {:>3} {:>3} {:>3} {:>10}",
        "rule", "precision", "recall", "tp", "fp", "fn", "duplicates"
    );
    for (k, s) in &r.per_rule {
        println!(
            "  {:<10} {:>9.3} {:>6.3} {:>3} {:>3} {:>3} {:>10}",
            k, s.precision, s.recall, s.tp, s.fp, s.fn_, s.duplicates
        );
    }
    if r.misses.is_empty() {
        println!("misses: none");
    } else {
        println!("misses:");
        for m in &r.misses {
            println!("  {}: actor {} at {:.1} s", m.rule, m.actor, m.time_s);
        }
    }
    if r.false_alarms.is_empty() {
        println!("false alarms: none");
    } else {
        println!("false alarms:");
        for f in &r.false_alarms {
            let actor = f.actor.map(|a| format!(", actor {a}")).unwrap_or_default();
            println!(
                "  {}: track {} at {:.1} s{actor}: {}",
                f.rule, f.track_id, f.time_s, f.why
            );
        }
    }
}

pub(crate) fn run(rt: &RuntimeArgs, args: EvalViolationsArgs) -> Result<ExitCode> {
    if !(args.min_precision.is_finite() && (0.0..=1.0).contains(&args.min_precision)) {
        bail!("--min-precision must be between 0 and 1");
    }
    let site = SiteConfig::load(&args.config)?;
    let cam = match &args.camera {
        Some(id) => site
            .camera(id)
            .with_context(|| format!("{}: no camera `{id}`", args.config.display()))?,
        None => &site.cameras[0],
    };
    let truth = Truth::load(&args.truth)?;
    if [truth.width, truth.height] != cam.frame {
        bail!(
            "{}: the scene is {}x{} but camera `{}` (key `frame`) is configured for {}x{}",
            args.truth.display(),
            truth.width,
            truth.height,
            cam.id,
            cam.frame[0],
            cam.frame[1]
        );
    }
    if truth.fps == 0 {
        bail!("{}: key `fps` must be positive", args.truth.display());
    }
    let mut source = SourceConfig::from_arg(cam.id.clone(), &args.source)?;
    if source.is_live() {
        bail!(
            "{}: eval needs a video file whose ground truth is {}, not a live camera",
            args.source,
            args.truth.display()
        );
    }
    if let Some(d) = cam.source.as_ref().and_then(|s| s.decoder.clone()) {
        source.decoder = d;
    }
    let runtime = rt.runtime()?;
    let mut pipeline = CameraPipeline::new(cam, &runtime)?;
    // The rules to replay, with the class thresholds the pipeline resolved.
    let replay = Replay::of(&pipeline)?;

    // The slow part: every analysed frame through the models, once.
    let expected_frames = ((truth.frames as f64 * cam.analysis_fps / truth.fps as f64).ceil()
        as u64)
        .min(truth.frames);
    let pb = if args.quiet {
        ProgressBar::hidden()
    } else {
        let pb = ProgressBar::new(expected_frames.max(1));
        pb.set_style(
            ProgressStyle::with_template(
                "{spinner} analysing {bar:30} {pos}/{len} frames, {elapsed} (eta {eta}) {msg}",
            )
            .unwrap_or_else(|_| ProgressStyle::default_bar()),
        );
        pb.enable_steady_tick(Duration::from_millis(200));
        pb
    };
    let mut recording = Recording::default();
    let summary = run_source(
        &mut pipeline,
        source,
        |r| {
            if recording.observe(r) {
                pb.inc(1);
            }
            if !recording.live.is_empty() {
                pb.set_message(format!("{} violation(s)", recording.live.len()));
            }
        },
        || false,
    )?;
    pb.finish_and_clear();
    if summary.frames == 0 {
        bail!("{}: no frame could be analysed", args.source);
    }
    let sc = score(&truth, &recording.live);

    let sweep = if args.sweep {
        let s = Sweep::run(&replay, &recording, &truth, args.min_precision);
        if !s.replay_matches_live {
            eprintln!(
                "warning: replaying the rules at the configured thresholds did not reproduce the live run's violations exactly; the sweep is approximate"
            );
        }
        std::fs::write(&args.plot, s.svg())
            .with_context(|| format!("cannot write {}", args.plot.display()))?;
        std::fs::write(&args.table, s.csv())
            .with_context(|| format!("cannot write {}", args.table.display()))?;
        Some(s)
    } else {
        None
    };

    let r = report(
        &args,
        cam.id.as_str(),
        &recording,
        summary.frames,
        &truth,
        &sc,
        sweep.as_ref(),
    );
    if args.json {
        println!("{}", serde_json::to_string_pretty(&r)?);
    } else {
        print_text(&r);
        if let Some(s) = &sweep {
            print!("{}", s.table());
        }
    }
    if sweep.is_some() {
        let wrote = format!(
            "wrote {} (precision/recall curve) and {} (table)",
            args.plot.display(),
            args.table.display()
        );
        if args.json {
            eprintln!("{wrote}");
        } else {
            println!("{wrote}");
        }
    }
    Ok(ExitCode::SUCCESS)
}
