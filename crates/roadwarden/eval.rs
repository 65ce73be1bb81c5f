//! `roadwarden eval-detector`: accuracy of a detector on YOLO-labelled
//! images, computed as ultralytics `val` computes it.

use std::path::{Path, PathBuf};
use std::process::ExitCode;

use anyhow::{Context, Result, bail};
use clap::Args;
use indicatif::{ProgressBar, ProgressStyle};
use roadwarden_eval::{
    BoxXyxy, Evaluator, GroundTruth, Metrics, Prediction, UltralyticsVersion, read_yolo_labels_as,
};
use roadwarden_imaging::BgrImage;
use roadwarden_infer::{DetectOptions, Detector, InputShape};
use serde::Serialize;

use crate::runtime::RuntimeArgs;

const IMAGE_EXTENSIONS: [&str; 7] = ["jpg", "jpeg", "png", "bmp", "webp", "tif", "tiff"];

#[derive(Debug, Args)]
pub struct EvalArgs {
    /// The model's manifest (TOML).
    #[arg(long, short, value_name = "MANIFEST")]
    model: PathBuf,

    /// Folder of images.
    #[arg(long, value_name = "DIR")]
    images: PathBuf,

    /// Folder of YOLO label files: one `<image stem>.txt` per image, lines of
    /// `class cx cy w h` normalised to 0..1. An image without a label file has
    /// no objects.
    #[arg(long, value_name = "DIR")]
    labels: PathBuf,

    /// Print the figures as one JSON object.
    #[arg(long)]
    json: bool,

    /// Images per inference batch (models with a dynamic batch dimension).
    #[arg(long, default_value_t = 1, value_name = "N")]
    batch: usize,

    /// Feed rect inputs (smallest stride multiple) instead of ultralytics
    /// `val`'s square input.
    #[arg(long)]
    rect: bool,

    /// The ultralytics release whose metrics to reproduce: its matching, AP
    /// integration and label checks changed within 8.4. The models' reference
    /// figures come from 8.4.190.
    #[arg(long, default_value = "8.4.190", value_name = "VERSION", value_parser = parse_version)]
    ultralytics: UltralyticsVersion,
}

fn parse_version(s: &str) -> Result<UltralyticsVersion, String> {
    let patch = s
        .strip_prefix("8.4.")
        .and_then(|p| p.parse::<u32>().ok())
        .ok_or_else(|| format!("`{s}` is not an 8.4.x release (metrics are reproduced for ultralytics 8.4.0 to 8.4.190)"))?;
    Ok(match patch {
        0..=36 => UltralyticsVersion::V8_4_0,
        37..=175 => UltralyticsVersion::V8_4_37,
        176..=182 => UltralyticsVersion::V8_4_176,
        _ => UltralyticsVersion::V8_4_183,
    })
}

#[derive(Debug, Serialize)]
struct Skipped {
    file: String,
    reason: String,
}

#[derive(Serialize)]
struct ClassJson<'a> {
    class: &'a str,
    class_id: usize,
    images: usize,
    instances: usize,
    precision: f64,
    recall: f64,
    map50: f64,
    map50_95: f64,
}

#[derive(Serialize)]
struct Report<'a> {
    model: String,
    images: usize,
    instances: usize,
    precision: f64,
    recall: f64,
    map50: f64,
    map50_95: f64,
    per_class: Vec<ClassJson<'a>>,
    skipped: &'a [Skipped],
}

fn list_images(dir: &Path) -> Result<Vec<PathBuf>> {
    let entries = std::fs::read_dir(dir)
        .with_context(|| format!("{}: cannot read the --images folder", dir.display()))?;
    let mut images: Vec<PathBuf> = entries
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| {
            p.extension()
                .and_then(|e| e.to_str())
                .is_some_and(|e| IMAGE_EXTENSIONS.contains(&e.to_ascii_lowercase().as_str()))
        })
        .collect();
    images.sort();
    if images.is_empty() {
        bail!(
            "{}: no images ({}) in the --images folder",
            dir.display(),
            IMAGE_EXTENSIONS.join(", ")
        );
    }
    Ok(images)
}

struct Sample {
    image: BgrImage,
    truths: Vec<GroundTruth>,
}

pub fn run(rt: &RuntimeArgs, args: EvalArgs) -> Result<ExitCode> {
    if !args.labels.is_dir() {
        bail!(
            "{}: the --labels folder does not exist",
            args.labels.display()
        );
    }
    if args.batch == 0 {
        bail!("--batch must be at least 1");
    }
    let images = list_images(&args.images)?;
    let mut detector = rt.detector(&args.model)?;
    let nc = detector.classes().len();
    let mut opts = DetectOptions::validation();
    if args.rect {
        opts.shape = InputShape::Rect;
    }

    let progress = ProgressBar::new(images.len() as u64);
    progress.set_style(
        ProgressStyle::with_template("{prefix} {bar:40} {pos}/{len} images, {per_sec}, eta {eta}")
            .unwrap_or_else(|_| ProgressStyle::default_bar()),
    );
    progress.set_prefix("evaluating");

    let mut evaluator = Evaluator::with_version(nc, args.ultralytics);
    let mut skipped = Vec::new();
    let mut pending: Vec<Sample> = Vec::new();
    for path in &images {
        match load_sample(path, &args.labels, nc, args.ultralytics) {
            Ok(sample) => pending.push(sample),
            Err(skip) => {
                progress.suspend(
                    || tracing::info!(file = %skip.file, reason = %skip.reason, "skipped"),
                );
                skipped.push(skip);
                progress.inc(1);
            }
        }
        if pending.len() >= args.batch {
            evaluate(&mut detector, &mut pending, &opts, &mut evaluator)?;
            progress.inc(args.batch as u64);
        }
    }
    let left = pending.len() as u64;
    evaluate(&mut detector, &mut pending, &opts, &mut evaluator)?;
    progress.inc(left);
    progress.finish_and_clear();

    let metrics = evaluator.finish();
    if args.json {
        let report = report(&detector, &args.model, &metrics, &skipped);
        println!("{}", serde_json::to_string_pretty(&report)?);
    } else {
        print_table(&detector, &metrics, &skipped);
    }
    Ok(ExitCode::SUCCESS)
}

fn load_sample(
    path: &Path,
    labels: &Path,
    nc: usize,
    version: UltralyticsVersion,
) -> Result<Sample, Skipped> {
    let skip = |file: &Path, reason: String| Skipped {
        file: file.display().to_string(),
        reason,
    };
    let image = BgrImage::read(path).map_err(|e| skip(path, format!("unreadable image: {e}")))?;
    // `a.b.jpg` is labelled by `a.b.txt`: append the extension, never replace part of the stem.
    let stem = path.file_stem().unwrap_or_default().to_string_lossy();
    let label_path = labels.join(format!("{stem}.txt"));
    let truths = if label_path.is_file() {
        read_yolo_labels_as(&label_path, nc, image.width(), image.height(), version)
            .map_err(|e| skip(&label_path, e.to_string()))?
    } else {
        Vec::new()
    };
    Ok(Sample { image, truths })
}

fn evaluate(
    detector: &mut Detector,
    pending: &mut Vec<Sample>,
    opts: &DetectOptions,
    evaluator: &mut Evaluator,
) -> Result<()> {
    if pending.is_empty() {
        return Ok(());
    }
    let views: Vec<_> = pending.iter().map(|s| s.image.view()).collect();
    let results = detector.detect_batch(&views, opts)?;
    for (sample, dets) in pending.iter().zip(results) {
        let preds: Vec<Prediction> = dets
            .iter()
            .map(|d| Prediction {
                class_id: d.class_id.0,
                score: d.score,
                bbox: BoxXyxy {
                    x1: d.bbox.x1,
                    y1: d.bbox.y1,
                    x2: d.bbox.x2,
                    y2: d.bbox.y2,
                },
            })
            .collect();
        evaluator.add_image(&preds, &sample.truths);
    }
    pending.clear();
    Ok(())
}

fn report<'a>(
    detector: &'a Detector,
    model: &Path,
    m: &Metrics,
    skipped: &'a [Skipped],
) -> Report<'a> {
    Report {
        model: model.display().to_string(),
        images: m.images,
        instances: m.instances,
        precision: m.precision,
        recall: m.recall,
        map50: m.map50,
        map50_95: m.map50_95,
        per_class: m
            .per_class
            .iter()
            .map(|c| ClassJson {
                class: detector
                    .classes()
                    .get(c.class_id)
                    .map(|s| s.name.as_str())
                    .unwrap_or("?"),
                class_id: c.class_id,
                images: c.images,
                instances: c.instances,
                precision: c.precision,
                recall: c.recall,
                map50: c.map50,
                map50_95: c.map50_95,
            })
            .collect(),
        skipped,
    }
}

fn print_table(detector: &Detector, m: &Metrics, skipped: &[Skipped]) {
    for s in skipped {
        println!("skipped {}: {}", s.file, s.reason);
    }
    if !skipped.is_empty() {
        println!("{} files skipped\n", skipped.len());
    }
    println!(
        "{:>20} {:>7} {:>9} {:>9} {:>9} {:>9} {:>12}",
        "class", "images", "instances", "P", "R", "mAP50", "mAP50-95"
    );
    println!(
        "{:>20} {:>7} {:>9} {:>9.3} {:>9.3} {:>9.3} {:>12.3}",
        "all", m.images, m.instances, m.precision, m.recall, m.map50, m.map50_95
    );
    for c in &m.per_class {
        let name = detector
            .classes()
            .get(c.class_id)
            .map(|s| s.name.as_str())
            .unwrap_or("?");
        println!(
            "{:>20} {:>7} {:>9} {:>9.3} {:>9.3} {:>9.3} {:>12.3}",
            name, c.images, c.instances, c.precision, c.recall, c.map50, c.map50_95
        );
    }
}
