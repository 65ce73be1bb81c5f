//! `roadwarden eval`: violation-level precision and recall of the whole pipeline on a video whose ground
//! truth is known (a `roadwarden synth` scene), per rule, with the misses and false alarms; `--sweep`
//! replays the pure rules over the recorded tracks under other thresholds and plots the
//! precision/recall curve.
//!
//! The detectors and trackers run once (they do not depend on the rule thresholds: heads are detected
//! down to the pipeline's fixed floor and the class threshold only decides the helmet rule's votes);
//! every sweep point replays `roadwarden_rules::CameraRules` over the recorded per-frame tracks and
//! signal states, which takes milliseconds.

use std::fmt::Write as _;
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::time::Duration;

use anyhow::{Context, Result, bail};
use clap::Args;
use indicatif::{ProgressBar, ProgressStyle};
use roadwarden_infer::Manifest;
use roadwarden_media::SourceConfig;
use roadwarden_pipeline::score::{RuleScore, Score, score};
use roadwarden_pipeline::synth::Truth;
use roadwarden_pipeline::{CameraPipeline, RunnerEvent, run_source};
use roadwarden_rules::{
    CameraConfig, CameraRules, ClassThreshold, FrameObservation, SignalState, SiteConfig,
    TrackedObject, Violation, ViolationKind,
};
use roadwarden_types::ClassRole;
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
pub struct EvalViolationsArgs {
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

/// The rule a violation type belongs to, as the report names it.
fn rule_key(kind: ViolationKind) -> &'static str {
    match kind {
        ViolationKind::NoHelmet => "helmet",
        ViolationKind::RedLight => "red_light",
    }
}

/// The class threshold for `role`: the site's, else the manifest's class threshold, else its default.
fn class_threshold(
    cam: &CameraConfig,
    manifest: &Path,
    role: ClassRole,
    key: &str,
) -> Result<ClassThreshold> {
    let m =
        Manifest::load(manifest).with_context(|| format!("camera `{}`: key `{key}`", cam.id))?;
    let Some(class) = m.classes.iter().find(|c| c.role == role) else {
        bail!(
            "camera `{}`: key `{key}`: model manifest {} has no class with role {}",
            cam.id,
            manifest.display(),
            role.as_str()
        );
    };
    Ok(ClassThreshold {
        name: class.name.clone(),
        value: cam
            .threshold(role)
            .or(class.threshold)
            .unwrap_or(m.default_threshold),
    })
}

/// One analysed frame as the rules saw it.
struct Recorded {
    obs: FrameObservation,
    signal: SignalState,
}

/// The rules' parameters a sweep point changes.
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
struct Setting {
    no_helmet_threshold: f32,
    min_votes: u32,
    window: u32,
    grace_s: f64,
}

impl Setting {
    fn of(cam: &CameraConfig, no_helmet: &ClassThreshold) -> Setting {
        Setting {
            no_helmet_threshold: no_helmet.value,
            min_votes: cam.helmet.min_votes,
            window: cam.helmet.window,
            grace_s: cam.red_light.grace_s,
        }
    }
}

/// Replays the pure rules over recorded frames under `s`. The recorded signal state is already
/// debounced, so the replay takes it as is (hysteresis 1): the timeline is the one the live run had.
fn replay(
    cam: &CameraConfig,
    no_helmet: &ClassThreshold,
    two_wheeler: Option<&ClassThreshold>,
    frames: &[Recorded],
    s: Setting,
) -> Vec<Violation> {
    let mut cfg = cam.clone();
    cfg.signal.hysteresis_frames = 1;
    cfg.helmet.min_votes = s.min_votes;
    cfg.helmet.window = s.window;
    cfg.red_light.grace_s = s.grace_s;
    let nh = ClassThreshold {
        name: no_helmet.name.clone(),
        value: s.no_helmet_threshold,
    };
    let mut rules = CameraRules::new(&cfg, nh, two_wheeler.cloned());
    let mut out = Vec::new();
    for f in frames {
        rules.signal_mut().observe_video(f.obs.at, f.signal);
        out.extend(rules.observe(&f.obs));
    }
    out.extend(rules.finish());
    out
}

/// F1 from counts; 1 when there was nothing to find and nothing was reported.
fn f1(r: &RuleScore) -> f64 {
    let d = 2 * r.tp + r.fp + r.fn_;
    if d == 0 {
        1.0
    } else {
        2.0 * r.tp as f64 / d as f64
    }
}

#[derive(Debug, Clone, Serialize)]
struct SweepPoint {
    #[serde(flatten)]
    setting: Setting,
    precision: f64,
    recall: f64,
    f1: f64,
    tp: u32,
    fp: u32,
    #[serde(rename = "fn")]
    fn_: u32,
    configured: bool,
}

#[derive(Debug, Clone, Serialize)]
struct RuleSweep {
    /// Which parameters vary for this rule.
    varies: &'static [&'static str],
    points: Vec<SweepPoint>,
    /// Index into `points`.
    recommended: usize,
    /// Whether the recommended point reaches the precision floor.
    meets_min_precision: bool,
}

#[derive(Debug, Clone, Serialize)]
struct Sweep {
    min_precision: f64,
    rule: &'static str,
    plot: PathBuf,
    table: PathBuf,
    /// Whether replaying the rules at the configured setting reproduced the live run's violations.
    replay_matches_live: bool,
    helmet: RuleSweep,
    red_light: RuleSweep,
}

/// Best point: max F1 among those reaching `min_p`; ties go to the higher precision, then to the configured
/// setting (no change for nothing), then to the stricter one (later in `points`, which run from loose to
/// strict). None reaching `min_p`: the same over all points.
fn recommend(points: &[SweepPoint], min_p: f64) -> (usize, bool) {
    let best = |pred: &dyn Fn(&SweepPoint) -> bool| {
        points
            .iter()
            .enumerate()
            .filter(|(_, p)| pred(p))
            .max_by(|(i, a), (j, b)| {
                a.f1.total_cmp(&b.f1)
                    .then(a.precision.total_cmp(&b.precision))
                    .then(a.configured.cmp(&b.configured))
                    .then(i.cmp(j))
            })
            .map(|(i, _)| i)
    };
    match best(&|p| p.precision >= min_p - 1e-9) {
        Some(i) => (i, true),
        None => (best(&|_| true).unwrap_or(0), false),
    }
}

fn point(
    truth: &Truth,
    violations: &[Violation],
    kind: ViolationKind,
    s: Setting,
    configured: Setting,
) -> SweepPoint {
    let sc = score(truth, violations);
    let r = sc.per_rule.get(&kind).cloned().unwrap_or_default();
    SweepPoint {
        setting: s,
        precision: r.precision,
        recall: r.recall,
        f1: f1(&r),
        tp: r.tp,
        fp: r.fp,
        fn_: r.fn_,
        configured: s == configured,
    }
}

fn run_sweep(
    cam: &CameraConfig,
    no_helmet: &ClassThreshold,
    two_wheeler: Option<&ClassThreshold>,
    frames: &[Recorded],
    truth: &Truth,
    live: &[Violation],
    args: &EvalViolationsArgs,
) -> Sweep {
    let configured = Setting::of(cam, no_helmet);
    // The configured setting is always a point, so the table shows where the site file stands.
    let mut thresholds: Vec<f32> = (2..=18).map(|i| i as f32 * 0.05).collect();
    thresholds.push(configured.no_helmet_threshold);
    thresholds.sort_by(f32::total_cmp);
    thresholds.dedup_by(|a, b| (*a - *b).abs() < 1e-4);
    let mut helmet = Vec::new();
    // Loose to strict: lower thresholds first, then fewer votes.
    for &t in &thresholds {
        for k in 1..=configured.window {
            let s = Setting {
                no_helmet_threshold: t,
                min_votes: k,
                ..configured
            };
            let v = replay(cam, no_helmet, two_wheeler, frames, s);
            let mut p = point(truth, &v, ViolationKind::NoHelmet, s, configured);
            p.configured =
                (t - configured.no_helmet_threshold).abs() < 1e-4 && k == configured.min_votes;
            helmet.push(p);
        }
    }
    let mut graces: Vec<f64> = (0..=15).map(|i| i as f64 * 0.1).collect();
    graces.push(configured.grace_s);
    graces.sort_by(f64::total_cmp);
    graces.dedup_by(|a, b| (*a - *b).abs() < 1e-6);
    let mut red = Vec::new();
    for &g in &graces {
        let s = Setting {
            grace_s: g,
            ..configured
        };
        let v = replay(cam, no_helmet, two_wheeler, frames, s);
        let mut p = point(truth, &v, ViolationKind::RedLight, s, configured);
        p.configured = (g - configured.grace_s).abs() < 1e-6;
        red.push(p);
    }
    let again = replay(cam, no_helmet, two_wheeler, frames, configured);
    let key = |v: &Violation| (v.kind, v.track_id, v.occurred_at);
    let mut a: Vec<_> = again.iter().map(key).collect();
    let mut b: Vec<_> = live.iter().map(key).collect();
    a.sort();
    b.sort();
    let (hr, hm) = recommend(&helmet, args.min_precision);
    let (rr, rm) = recommend(&red, args.min_precision);
    Sweep {
        min_precision: args.min_precision,
        rule: "max F1 subject to precision >= min_precision (ties: higher precision, then the configured setting, then the stricter)",
        plot: args.plot.clone(),
        table: args.table.clone(),
        replay_matches_live: a == b,
        helmet: RuleSweep {
            varies: &["no_helmet_threshold", "min_votes"],
            points: helmet,
            recommended: hr,
            meets_min_precision: hm,
        },
        red_light: RuleSweep {
            varies: &["grace_s"],
            points: red,
            recommended: rr,
            meets_min_precision: rm,
        },
    }
}

fn csv(sweep: &Sweep) -> String {
    let mut s = String::from(
        "rule,no_helmet_threshold,min_votes,window,grace_s,precision,recall,f1,tp,fp,fn,configured,recommended\n",
    );
    for (name, r) in [("helmet", &sweep.helmet), ("red_light", &sweep.red_light)] {
        for (i, p) in r.points.iter().enumerate() {
            let _ = writeln!(
                s,
                "{name},{:.2},{},{},{:.2},{:.4},{:.4},{:.4},{},{},{},{},{}",
                p.setting.no_helmet_threshold,
                p.setting.min_votes,
                p.setting.window,
                p.setting.grace_s,
                p.precision,
                p.recall,
                p.f1,
                p.tp,
                p.fp,
                p.fn_,
                p.configured,
                i == r.recommended
            );
        }
    }
    s
}

fn describe(rule: &str, p: &SweepPoint) -> String {
    match rule {
        "helmet" => format!(
            "no_helmet threshold {:.2}, {} of {} votes",
            p.setting.no_helmet_threshold, p.setting.min_votes, p.setting.window
        ),
        _ => format!("grace {:.1} s", p.setting.grace_s),
    }
}

fn text_table(sweep: &Sweep) -> String {
    let mut s = String::new();
    for (name, r) in [("helmet", &sweep.helmet), ("red_light", &sweep.red_light)] {
        let _ = writeln!(s, "sweep {name} (varies {}):", r.varies.join(", "));
        let _ = writeln!(
            s,
            "  {:>9} {:>5} {:>7} {:>9} {:>6} {:>6} {:>3} {:>3} {:>3}",
            "threshold", "votes", "grace_s", "precision", "recall", "f1", "tp", "fp", "fn"
        );
        for (i, p) in r.points.iter().enumerate() {
            let mut mark = String::new();
            if p.configured {
                mark.push_str(" configured");
            }
            if i == r.recommended {
                mark.push_str(" <- recommended");
            }
            let _ = writeln!(
                s,
                "  {:>9.2} {:>5} {:>7.1} {:>9.3} {:>6.3} {:>6.3} {:>3} {:>3} {:>3}{mark}",
                p.setting.no_helmet_threshold,
                format!("{}/{}", p.setting.min_votes, p.setting.window),
                p.setting.grace_s,
                p.precision,
                p.recall,
                p.f1,
                p.tp,
                p.fp,
                p.fn_,
            );
        }
        let best = &r.points[r.recommended];
        let _ = writeln!(
            s,
            "  recommended for {name}: {} (precision {:.3}, recall {:.3}, F1 {:.3}){}",
            describe(name, best),
            best.precision,
            best.recall,
            best.f1,
            if r.meets_min_precision {
                String::new()
            } else {
                format!(
                    "; no setting reaches precision {:.2}, this is the best F1",
                    sweep.min_precision
                )
            }
        );
    }
    s
}

fn esc(s: &str) -> String {
    s.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
}

const COLOURS: [&str; 8] = [
    "#1f77b4", "#ff7f0e", "#2ca02c", "#d62728", "#9467bd", "#8c564b", "#e377c2", "#17becf",
];

/// One precision/recall panel: `series` are (label, points in loose-to-strict order).
fn panel(
    svg: &mut String,
    x0: f64,
    title: &str,
    series: &[(String, Vec<&SweepPoint>)],
    recommended: &SweepPoint,
    rec_label: &str,
    min_p: f64,
) {
    let (w, h, top) = (380.0, 340.0, 50.0);
    let left = x0 + 60.0;
    let px = |r: f64| left + r.clamp(0.0, 1.0) * w;
    let py = |p: f64| top + (1.0 - p.clamp(0.0, 1.0)) * h;
    let _ = writeln!(
        svg,
        r#"<text x="{:.1}" y="30" font-size="15" font-weight="bold">{}</text>"#,
        left,
        esc(title)
    );
    let _ = writeln!(
        svg,
        r##"<rect x="{left:.1}" y="{top:.1}" width="{w}" height="{h}" fill="none" stroke="#333"/>"##
    );
    for i in 0..=10 {
        let v = i as f64 / 10.0;
        let _ = writeln!(
            svg,
            r##"<line x1="{:.1}" y1="{top:.1}" x2="{:.1}" y2="{:.1}" stroke="#ddd"/><line x1="{left:.1}" y1="{:.1}" x2="{:.1}" y2="{:.1}" stroke="#ddd"/>"##,
            px(v),
            px(v),
            top + h,
            py(v),
            left + w,
            py(v)
        );
        let _ = writeln!(
            svg,
            r#"<text x="{:.1}" y="{:.1}" font-size="10" text-anchor="middle">{v:.1}</text><text x="{:.1}" y="{:.1}" font-size="10" text-anchor="end">{v:.1}</text>"#,
            px(v),
            top + h + 14.0,
            left - 4.0,
            py(v) + 3.0
        );
    }
    let _ = writeln!(
        svg,
        r#"<text x="{:.1}" y="{:.1}" font-size="12" text-anchor="middle">recall</text><text x="{:.1}" y="{:.1}" font-size="12" text-anchor="middle" transform="rotate(-90 {:.1} {:.1})">precision</text>"#,
        left + w / 2.0,
        top + h + 32.0,
        x0 + 18.0,
        top + h / 2.0,
        x0 + 18.0,
        top + h / 2.0
    );
    let _ = writeln!(
        svg,
        r##"<line x1="{left:.1}" y1="{:.1}" x2="{:.1}" y2="{:.1}" stroke="#999" stroke-dasharray="5,4"/><text x="{:.1}" y="{:.1}" font-size="10" fill="#666" text-anchor="end">precision floor {min_p:.2}</text>"##,
        py(min_p),
        left + w,
        py(min_p),
        left + w - 4.0,
        py(min_p) - 4.0
    );
    for (si, (label, pts)) in series.iter().enumerate() {
        let c = COLOURS[si % COLOURS.len()];
        let path: Vec<String> = pts
            .iter()
            .map(|p| format!("{:.1},{:.1}", px(p.recall), py(p.precision)))
            .collect();
        let _ = writeln!(
            svg,
            r#"<polyline points="{}" fill="none" stroke="{c}" stroke-width="1.5" opacity="0.8"/>"#,
            path.join(" ")
        );
        for p in pts {
            let _ = writeln!(
                svg,
                r#"<circle cx="{:.1}" cy="{:.1}" r="3" fill="{c}"><title>{} {}: precision {:.3}, recall {:.3}</title></circle>"#,
                px(p.recall),
                py(p.precision),
                esc(label),
                esc(&format!(
                    "t={:.2} K={}/{} grace={:.1}",
                    p.setting.no_helmet_threshold,
                    p.setting.min_votes,
                    p.setting.window,
                    p.setting.grace_s
                )),
                p.precision,
                p.recall
            );
            if p.configured {
                let _ = writeln!(
                    svg,
                    r##"<rect x="{:.1}" y="{:.1}" width="10" height="10" fill="none" stroke="#000" stroke-width="1.5"><title>configured</title></rect>"##,
                    px(p.recall) - 5.0,
                    py(p.precision) - 5.0
                );
            }
        }
        let ly = top + h + 50.0 + 14.0 * si as f64;
        let _ = writeln!(
            svg,
            r#"<line x1="{left:.1}" y1="{ly:.1}" x2="{:.1}" y2="{ly:.1}" stroke="{c}" stroke-width="3"/><text x="{:.1}" y="{:.1}" font-size="11">{}</text>"#,
            left + 20.0,
            left + 26.0,
            ly + 4.0,
            esc(label)
        );
    }
    let (rx, ry) = (px(recommended.recall), py(recommended.precision));
    let _ = writeln!(
        svg,
        r##"<circle cx="{rx:.1}" cy="{ry:.1}" r="9" fill="none" stroke="#e00" stroke-width="2.5"/><text x="{:.1}" y="{:.1}" font-size="11" fill="#e00" text-anchor="end">recommended: {}</text>"##,
        rx.max(left + 200.0) - 12.0,
        (ry + 22.0).min(top + h - 6.0),
        esc(rec_label)
    );
}

fn svg(sweep: &Sweep) -> String {
    let helmet = &sweep.helmet;
    let red = &sweep.red_light;
    let window = helmet.points.first().map(|p| p.setting.window).unwrap_or(0);
    let series_h: Vec<(String, Vec<&SweepPoint>)> = (1..=window)
        .map(|k| {
            (
                format!("K = {k} of {window} votes, threshold 0.10 to 0.90"),
                helmet
                    .points
                    .iter()
                    .filter(|p| p.setting.min_votes == k)
                    .collect(),
            )
        })
        .collect();
    let series_r = vec![(
        "grace 0 to 1.5 s".to_string(),
        red.points.iter().collect::<Vec<_>>(),
    )];
    let height = 50.0 + 340.0 + 60.0 + 14.0 * window.max(1) as f64 + 20.0;
    let mut s = format!(
        r#"<?xml version="1.0" encoding="UTF-8"?>
<svg xmlns="http://www.w3.org/2000/svg" width="960" height="{height:.0}" viewBox="0 0 960 {height:.0}" font-family="sans-serif">
<rect width="100%" height="100%" fill="white"/>
"#
    );
    let hp = &helmet.points[helmet.recommended];
    let rp = &red.points[red.recommended];
    panel(
        &mut s,
        0.0,
        "helmet rule: precision / recall",
        &series_h,
        hp,
        &describe("helmet", hp),
        sweep.min_precision,
    );
    panel(
        &mut s,
        480.0,
        "red-light rule: precision / recall",
        &series_r,
        rp,
        &describe("red_light", rp),
        sweep.min_precision,
    );
    let _ = writeln!(
        s,
        r##"<text x="60" y="{:.1}" font-size="10" fill="#555">square: configured setting; red ring: {}</text>"##,
        height - 6.0,
        esc(sweep.rule)
    );
    s.push_str("</svg>\n");
    s
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
    sweep: Option<&'a Sweep>,
}

/// Distinct confirmed tracks among `pick`'s objects over all frames.
fn tracks(frames: &[Recorded], pick: fn(&FrameObservation) -> &[TrackedObject]) -> usize {
    let ids: std::collections::BTreeSet<u64> = frames
        .iter()
        .flat_map(|f| {
            pick(&f.obs)
                .iter()
                .filter(|o| o.is_live())
                .map(|o| o.track_id)
        })
        .collect();
    ids.len()
}

#[allow(clippy::too_many_arguments)]
fn report<'a>(
    args: &'a EvalViolationsArgs,
    cam: &'a CameraConfig,
    recorded: &[Recorded],
    frames: u64,
    reported: usize,
    truth: &Truth,
    sc: &Score,
    sweep: Option<&'a Sweep>,
) -> Report<'a> {
    Report {
        source: &args.source,
        camera: cam.id.as_str(),
        frames_analysed: frames,
        head_tracks: tracks(recorded, |o| &o.heads),
        two_wheeler_tracks: tracks(recorded, |o| &o.two_wheelers),
        reported,
        expected: truth.violations.len(),
        per_rule: sc
            .per_rule
            .iter()
            .map(|(k, v)| (rule_key(*k), v.clone()))
            .collect(),
        misses: sc
            .misses
            .iter()
            .map(|m| JsonMiss {
                rule: rule_key(m.kind),
                kind: m.kind,
                actor: m.actor,
                time_s: m.time_s,
            })
            .collect(),
        false_alarms: sc
            .false_alarms
            .iter()
            .map(|f| JsonFalseAlarm {
                rule: rule_key(f.kind),
                kind: f.kind,
                track_id: f.track_id,
                time_s: f.time_s,
                actor: f.actor,
                why: f.why.clone(),
            })
            .collect(),
        sweep,
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

pub fn run(rt: &RuntimeArgs, args: EvalViolationsArgs) -> Result<ExitCode> {
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
    let no_helmet = class_threshold(
        cam,
        &cam.models.helmet,
        ClassRole::NoHelmet,
        "models.helmet",
    )?;
    let two_wheeler = match &cam.models.two_wheeler {
        Some(p) => Some(class_threshold(
            cam,
            p,
            ClassRole::TwoWheeler,
            "models.two_wheeler",
        )?),
        None => None,
    };
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
    let mut frames: Vec<Recorded> = Vec::new();
    let mut live: Vec<Violation> = Vec::new();
    let summary = run_source(
        &mut pipeline,
        source,
        |r| {
            if let RunnerEvent::Frame(r) = r {
                pb.inc(1);
                frames.push(Recorded {
                    obs: FrameObservation {
                        frame_index: r.frame_index,
                        at: r.at,
                        heads: r.heads.clone(),
                        two_wheelers: r.two_wheelers.clone(),
                    },
                    signal: r.signal,
                });
            }
            live.extend(r.violations().iter().cloned());
            if !live.is_empty() {
                pb.set_message(format!("{} violation(s)", live.len()));
            }
        },
        || false,
    )?;
    pb.finish_and_clear();
    if summary.frames == 0 {
        bail!("{}: no frame could be analysed", args.source);
    }
    let sc = score(&truth, &live);

    let sweep = if args.sweep {
        let s = run_sweep(
            cam,
            &no_helmet,
            two_wheeler.as_ref(),
            &frames,
            &truth,
            &live,
            &args,
        );
        if !s.replay_matches_live {
            eprintln!(
                "warning: replaying the rules at the configured thresholds did not reproduce the live run's violations exactly; the sweep is approximate"
            );
        }
        std::fs::write(&args.plot, svg(&s))
            .with_context(|| format!("cannot write {}", args.plot.display()))?;
        std::fs::write(&args.table, csv(&s))
            .with_context(|| format!("cannot write {}", args.table.display()))?;
        Some(s)
    } else {
        None
    };

    let r = report(
        &args,
        cam,
        &frames,
        summary.frames,
        live.len(),
        &truth,
        &sc,
        sweep.as_ref(),
    );
    if args.json {
        println!("{}", serde_json::to_string_pretty(&r)?);
    } else {
        print_text(&r);
        if let Some(s) = &sweep {
            print!("{}", text_table(s));
            println!(
                "wrote {} (precision/recall curve) and {} (table)",
                args.plot.display(),
                args.table.display()
            );
        }
    }
    if let Some(s) = &sweep
        && args.json
    {
        eprintln!(
            "wrote {} (precision/recall curve) and {} (table)",
            s.plot.display(),
            s.table.display()
        );
    }
    Ok(ExitCode::SUCCESS)
}
