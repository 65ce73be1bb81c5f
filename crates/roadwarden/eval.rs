//! `roadwarden eval-detector`: accuracy of a detector on YOLO-labelled
//! images, computed as ultralytics `val` computes it; optionally recall and precision by object size
//! band (`--bands`), on a list file's images (`--list`) with the data set's class names (`--data`), and
//! single- against two-stage head detection (`--two-stage`, logic in `roadwarden_pipeline::heads`).

use std::path::{Path, PathBuf};
use std::process::ExitCode;

use anyhow::{Context, Result, bail};
use clap::Args;
use indicatif::{ProgressBar, ProgressStyle};
use roadwarden_eval::{
    BandEvaluator, BandReport, BoxXyxy, ClassMap, Evaluator, GroundTruth, Metrics, ModelClass,
    Prediction, SizeBands, UltralyticsVersion, label_path, list_images, parse_data_yaml_names,
    read_image_list, read_yolo_labels_as,
};
use roadwarden_imaging::BgrImage;
use roadwarden_infer::{DetectOptions, Detector, InputShape};
use roadwarden_pipeline::heads::{TwoStageHeads, TwoStageParams};
use serde::Serialize;

use crate::runtime::RuntimeArgs;

#[derive(Debug, Args)]
pub(crate) struct EvalArgs {
    /// The model's manifest (TOML).
    #[arg(long, short, value_name = "MANIFEST")]
    model: PathBuf,

    /// Folder of images (with `--list`: the folder the list's relative paths start from).
    #[arg(long, value_name = "DIR")]
    images: PathBuf,

    /// Folder of YOLO label files: one `<image stem>.txt` per image, lines of
    /// `class cx cy w h` normalised to 0..1. An image without a label file has
    /// no objects. With `--list` it may be left out: each image's label is then
    /// where ultralytics looks (`.../images/x.jpg` → `.../labels/x.txt`).
    #[arg(long, value_name = "DIR")]
    labels: Option<PathBuf>,

    /// Evaluate only the images in this list file (one path a line, relative to
    /// `--images`), e.g. `models/splits/riders-roboflow-test.txt`.
    #[arg(long, value_name = "FILE")]
    list: Option<PathBuf>,

    /// The labels' data.yaml: its `names` are mapped onto the model's classes by
    /// class name or role (`no_helmet`, `helmet`, ...); labels of classes that map
    /// to none are left out. Without it, label class ids are the model's.
    #[arg(long, value_name = "FILE")]
    data: Option<PathBuf>,

    /// Also report recall and precision per class by object height band (source
    /// pixels), at the model's class thresholds: the edges, e.g. `16,24,40` for
    /// `<16, 16-24, 24-40, >=40` (the default when given without a value).
    #[arg(long, value_name = "EDGES", num_args = 0..=1, default_missing_value = "16,24,40")]
    bands: Option<String>,

    /// Compare single-stage with two-stage head detection (the helmet model also
    /// run on upscaled crops around the riders `--rider-model` finds), both at
    /// predict settings (rect input, class thresholds) as the pipeline runs them;
    /// prints the two band tables (no mAP).
    #[arg(long, requires = "rider_model")]
    two_stage: bool,

    /// The model whose `person` / `two_wheeler` boxes place the crops (`--two-stage`).
    #[arg(long, value_name = "MANIFEST")]
    rider_model: Option<PathBuf>,

    /// `--two-stage`: each crop is the rider's box scaled by this (as `[camera.heads] crop_scale`).
    #[arg(long, default_value_t = 1.5, value_name = "K")]
    crop_scale: f32,

    /// `--two-stage`: the square input side each crop is letterboxed into.
    #[arg(long, default_value_t = 256, value_name = "PX")]
    crop_input: u32,

    /// `--two-stage`: at most this many crops an image.
    #[arg(long, default_value_t = 12, value_name = "N")]
    max_crops: usize,

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
    #[serde(skip_serializing_if = "Option::is_none")]
    bands: Option<BandsJson<'a>>,
}

/// A band table with the model's class names.
#[derive(Serialize)]
struct BandsJson<'a> {
    classes: Vec<&'a str>,
    #[serde(flatten)]
    report: &'a BandReport,
}

struct Sample {
    image: BgrImage,
    truths: Vec<GroundTruth>,
}

/// The images of `--list` (relative to `--images`), or every image of the `--images` folder.
fn images_of(args: &EvalArgs) -> Result<Vec<PathBuf>> {
    Ok(match &args.list {
        Some(list) => read_image_list(list, &args.images)?,
        None => list_images(&args.images)?,
    })
}

/// The `--data` class map onto `detector`'s classes, and the label files' class count.
fn class_map(args: &EvalArgs, detector: &Detector) -> Result<(Option<ClassMap>, usize)> {
    let nc = detector.classes().len();
    let Some(path) = &args.data else {
        return Ok((None, nc));
    };
    let text = std::fs::read_to_string(path)
        .with_context(|| format!("{}: cannot read the --data file", path.display()))?;
    let names = parse_data_yaml_names(&text).with_context(|| format!("{}", path.display()))?;
    let model: Vec<ModelClass> = detector
        .classes()
        .iter()
        .map(|c| ModelClass {
            name: c.name.clone(),
            role: c.role.as_str().to_string(),
        })
        .collect();
    let map = ClassMap::resolve(&names, &model);
    if map.to_model.iter().all(Option::is_none) {
        bail!(
            "{}: none of the classes {names:?} is a class name or role of the model {}; name them as the model's classes or roles",
            path.display(),
            args.model.display()
        );
    }
    for n in map.unmapped() {
        tracing::info!(
            class = n,
            "not a class of the model: its labels are left out"
        );
    }
    Ok((Some(map), names.len()))
}

pub(crate) fn run(rt: &RuntimeArgs, args: EvalArgs) -> Result<ExitCode> {
    match &args.labels {
        Some(l) if !l.is_dir() => bail!("{}: the --labels folder does not exist", l.display()),
        None if args.list.is_none() => {
            bail!(
                "--labels is needed unless --list is given (then labels are found beside images/)"
            )
        }
        _ => {}
    }
    if args.batch == 0 {
        bail!("--batch must be at least 1");
    }
    let bands = match (&args.bands, args.two_stage) {
        (Some(b), _) => Some(SizeBands::parse(b)?),
        (None, true) => Some(SizeBands::heads()),
        (None, false) => None,
    };
    let images = images_of(&args)?;
    let mut detector = rt.detector(&args.model)?;
    let (map, label_nc) = class_map(&args, &detector)?;
    if args.two_stage {
        let rider_path = args.rider_model.clone().unwrap_or_default();
        let riders = rt.detector(&rider_path)?;
        let bands = bands.unwrap_or_else(SizeBands::heads);
        return two_stage(
            &args,
            detector,
            riders,
            map.as_ref(),
            label_nc,
            &images,
            bands,
        );
    }
    let mut band_eval = bands.map(BandEvaluator::new);
    let thresholds: Vec<f32> = (0..detector.classes().len())
        .map(|c| detector.threshold(roadwarden_infer::ClassId(c)))
        .collect();
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
        match load_sample(
            path,
            &label_path(path, args.labels.as_deref()),
            label_nc,
            map.as_ref(),
            args.ultralytics,
        ) {
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
            let n = pending.len() as u64;
            evaluate(
                &mut detector,
                &mut pending,
                &opts,
                &mut evaluator,
                band_eval.as_mut().map(|b| (b, thresholds.as_slice())),
            )?;
            progress.inc(n);
        }
    }
    let left = pending.len() as u64;
    evaluate(
        &mut detector,
        &mut pending,
        &opts,
        &mut evaluator,
        band_eval.as_mut().map(|b| (b, thresholds.as_slice())),
    )?;
    progress.inc(left);
    progress.finish_and_clear();

    let metrics = evaluator.finish();
    let band_report = band_eval.map(|b| b.finish());
    if args.json {
        let mut report = report(&detector, &args.model, &metrics, &skipped);
        report.bands = band_report.as_ref().map(|r| BandsJson {
            classes: class_names(&detector),
            report: r,
        });
        println!("{}", serde_json::to_string_pretty(&report)?);
    } else {
        print_table(&detector, &metrics, &skipped);
        if let Some(r) = &band_report {
            println!(
                "\nby height (source pixels), at the model's class thresholds, IoU {}:",
                r.iou
            );
            print_bands(&class_names(&detector), r);
        }
    }
    Ok(ExitCode::SUCCESS)
}

fn load_sample(
    path: &Path,
    label_path: &Path,
    nc: usize,
    map: Option<&ClassMap>,
    version: UltralyticsVersion,
) -> Result<Sample, Skipped> {
    let skip = |file: &Path, reason: String| Skipped {
        file: file.display().to_string(),
        reason,
    };
    let image = BgrImage::read(path).map_err(|e| skip(path, format!("unreadable image: {e}")))?;
    let truths = if label_path.is_file() {
        read_yolo_labels_as(label_path, nc, image.width(), image.height(), version)
            .map_err(|e| skip(label_path, e.to_string()))?
    } else {
        Vec::new()
    };
    let truths = match map {
        Some(m) => m.apply(&truths),
        None => truths,
    };
    Ok(Sample { image, truths })
}

fn evaluate(
    detector: &mut Detector,
    pending: &mut Vec<Sample>,
    opts: &DetectOptions,
    evaluator: &mut Evaluator,
    mut bands: Option<(&mut BandEvaluator, &[f32])>,
) -> Result<()> {
    if pending.is_empty() {
        return Ok(());
    }
    let views: Vec<_> = pending.iter().map(|s| s.image.view()).collect();
    let results = detector.detect_batch(&views, opts)?;
    for (sample, dets) in pending.iter().zip(results) {
        let preds = predictions(&dets);
        evaluator.add_image(&preds, &sample.truths);
        if let Some((b, thresholds)) = &mut bands {
            let kept: Vec<Prediction> = preds
                .iter()
                .filter(|p| thresholds.get(p.class_id).is_some_and(|&t| p.score > t))
                .copied()
                .collect();
            b.add_image(&kept, &sample.truths);
        }
    }
    pending.clear();
    Ok(())
}

fn predictions(dets: &[roadwarden_infer::Detection]) -> Vec<Prediction> {
    dets.iter()
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
        .collect()
}

fn class_name(detector: &Detector, id: usize) -> &str {
    detector.classes().get(id).map_or("?", |c| c.name.as_str())
}

fn class_names(detector: &Detector) -> Vec<&str> {
    detector.classes().iter().map(|c| c.name.as_str()).collect()
}

fn print_bands(classes: &[&str], r: &BandReport) {
    let fmt = |v: Option<f64>| v.map_or_else(|| "-".to_string(), |v| format!("{v:.3}"));
    println!(
        "{:>16} {:>7} {:>7} {:>5} {:>5} {:>6} {:>7} {:>9}",
        "class", "height", "truths", "TP", "FP", "R", "P", "found-any"
    );
    for row in &r.rows {
        let c = &row.counts;
        println!(
            "{:>16} {:>7} {:>7} {:>5} {:>5} {:>6} {:>7} {:>9}",
            classes.get(row.class_id).copied().unwrap_or("?"),
            row.band,
            c.truths,
            c.true_positives,
            c.false_positives,
            fmt(row.recall),
            fmt(row.precision),
            c.found_any_class
        );
    }
}

#[derive(Serialize)]
struct TwoStageJson<'a> {
    model: String,
    rider_model: String,
    list: Option<String>,
    images: usize,
    crop_scale: f32,
    crop_input: u32,
    max_crops: usize,
    crops: usize,
    single_stage_s: f64,
    two_stage_extra_s: f64,
    single_stage: BandsJson<'a>,
    two_stage: BandsJson<'a>,
    skipped: &'a [Skipped],
}

/// `--two-stage`: single- against two-stage head detection, image by image, at predict settings.
fn two_stage(
    args: &EvalArgs,
    mut helmet: Detector,
    mut riders: Detector,
    map: Option<&ClassMap>,
    label_nc: usize,
    images: &[PathBuf],
    bands: SizeBands,
) -> Result<ExitCode> {
    let heads = TwoStageHeads::new(TwoStageParams {
        crop_scale: args.crop_scale,
        crop_input: args.crop_input,
        max_crops: args.max_crops,
    });
    let opts = DetectOptions::default();
    let mut single = BandEvaluator::new(bands.clone());
    let mut double = BandEvaluator::new(bands);
    let (mut crops, mut t_single, mut t_extra) = (0usize, 0f64, 0f64);
    let mut skipped = Vec::new();
    let progress = ProgressBar::new(images.len() as u64);
    progress.set_style(
        ProgressStyle::with_template("{prefix} {bar:40} {pos}/{len} images, {per_sec}, eta {eta}")
            .unwrap_or_else(|_| ProgressStyle::default_bar()),
    );
    progress.set_prefix("two-stage");
    for path in images {
        progress.inc(1);
        let label = label_path(path, args.labels.as_deref());
        let sample = match load_sample(path, &label, label_nc, map, args.ultralytics) {
            Ok(s) => s,
            Err(skip) => {
                skipped.push(skip);
                continue;
            }
        };
        let view = sample.image.view();
        let t = std::time::Instant::now();
        let frame_heads = helmet.detect(&view, &opts)?;
        t_single += t.elapsed().as_secs_f64();
        let t = std::time::Instant::now();
        let found = TwoStageHeads::riders(&mut riders, &view)?;
        let (merged, run) = heads.detect(&mut helmet, &view, &found, &opts, frame_heads.clone())?;
        t_extra += t.elapsed().as_secs_f64();
        crops += run.regions.len();
        single.add_image(&predictions(&frame_heads), &sample.truths);
        double.add_image(&predictions(&merged), &sample.truths);
    }
    progress.finish_and_clear();
    let (a, b) = (single.finish(), double.finish());
    let names = class_names(&helmet);
    if args.json {
        let report = TwoStageJson {
            model: args.model.display().to_string(),
            rider_model: args
                .rider_model
                .clone()
                .unwrap_or_default()
                .display()
                .to_string(),
            list: args.list.as_ref().map(|l| l.display().to_string()),
            images: a.images,
            crop_scale: args.crop_scale,
            crop_input: args.crop_input,
            max_crops: args.max_crops,
            crops,
            single_stage_s: t_single,
            two_stage_extra_s: t_extra,
            single_stage: BandsJson {
                classes: names.clone(),
                report: &a,
            },
            two_stage: BandsJson {
                classes: names,
                report: &b,
            },
            skipped: &skipped,
        };
        println!("{}", serde_json::to_string_pretty(&report)?);
    } else {
        for s in &skipped {
            println!("skipped {}: {}", s.file, s.reason);
        }
        println!(
            "{} images, predict settings (rect input, class thresholds), IoU {}",
            a.images, a.iou
        );
        println!("\nsingle-stage ({:.1} s):", t_single);
        print_bands(&names, &a);
        println!(
            "\ntwo-stage: + {crops} crops (scale {}, {}x{} input, at most {} an image), + {:.1} s:",
            args.crop_scale, args.crop_input, args.crop_input, args.max_crops, t_extra
        );
        print_bands(&names, &b);
    }
    Ok(ExitCode::SUCCESS)
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
                class: class_name(detector, c.class_id),
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
        bands: None,
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
        let name = class_name(detector, c.class_id);
        println!(
            "{:>20} {:>7} {:>9} {:>9.3} {:>9.3} {:>9.3} {:>12.3}",
            name, c.images, c.instances, c.precision, c.recall, c.map50, c.map50_95
        );
    }
}
