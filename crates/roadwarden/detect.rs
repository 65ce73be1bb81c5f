//! `roadwarden detect`: a detector over image files, JSON lines out.

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::ExitCode;

use anyhow::{Context, Result};
use clap::Args;
use roadwarden_imaging::{BgrImage, class_color};
use roadwarden_infer::{DetectOptions, Detector, InputShape, ScoreMode};
use serde::Serialize;

use crate::output::{JsonBox, json_boxes};
use crate::runtime::RuntimeArgs;

#[derive(Debug, Args)]
pub(crate) struct DetectArgs {
    /// The model's manifest (TOML), e.g. models/helmet-yolov12m.toml.
    #[arg(long, short, value_name = "MANIFEST")]
    model: PathBuf,

    /// Image files (JPEG, PNG, BMP, WebP).
    #[arg(required = true, value_name = "IMAGE")]
    images: Vec<PathBuf>,

    /// Also write each image with its boxes drawn into DIR (same file name).
    #[arg(long, value_name = "DIR")]
    annotate: Option<PathBuf>,

    /// One score threshold for every class, instead of the manifest's per-class thresholds.
    #[arg(long, value_name = "SCORE")]
    conf: Option<f32>,

    /// NMS IoU threshold [default: the manifest's].
    #[arg(long, value_name = "IOU")]
    iou: Option<f32>,

    /// Feed the model its full square input even when it accepts smaller
    /// (rect) inputs.
    #[arg(long)]
    square: bool,
}

#[derive(Serialize)]
struct JsonImage<'a> {
    file: String,
    width: u32,
    height: u32,
    detections: Vec<JsonBox<'a>>,
}

fn check_unit(name: &str, v: Option<f32>) -> Result<()> {
    if let Some(v) = v
        && !(0.0..=1.0).contains(&v)
    {
        anyhow::bail!("--{name} {v} is outside 0..1");
    }
    Ok(())
}

pub(crate) fn run(rt: &RuntimeArgs, args: DetectArgs) -> Result<ExitCode> {
    check_unit("conf", args.conf)?;
    check_unit("iou", args.iou)?;
    if let Some(dir) = &args.annotate {
        std::fs::create_dir_all(dir)
            .with_context(|| format!("{}: cannot create the --annotate folder", dir.display()))?;
    }
    let mut detector = rt.detector(&args.model)?;
    let opts = DetectOptions {
        score: args
            .conf
            .map(ScoreMode::Fixed)
            .unwrap_or(ScoreMode::ClassThresholds),
        iou: args.iou,
        shape: if args.square {
            InputShape::Square
        } else {
            InputShape::Rect
        },
        ..DetectOptions::default()
    };
    let stdout = std::io::stdout();
    let mut out = stdout.lock();
    let mut failed = 0usize;
    for path in &args.images {
        if let Err(e) = detect_one(
            &mut detector,
            path,
            &opts,
            args.annotate.as_deref(),
            &mut out,
        ) {
            eprintln!("error: {}", format!("{e:#}").replace('\n', " "));
            failed += 1;
        }
    }
    out.flush()?;
    if failed > 0 {
        if args.images.len() > 1 {
            eprintln!("error: {failed} of {} images failed", args.images.len());
        }
        return Ok(ExitCode::FAILURE);
    }
    Ok(ExitCode::SUCCESS)
}

fn detect_one(
    detector: &mut Detector,
    path: &Path,
    opts: &DetectOptions,
    annotate: Option<&Path>,
    out: &mut impl Write,
) -> Result<()> {
    let mut image = BgrImage::read(path)?;
    let detections = detector.detect(&image.view(), opts)?;
    let line = JsonImage {
        file: path.display().to_string(),
        width: image.width(),
        height: image.height(),
        detections: json_boxes(detector, &detections),
    };
    serde_json::to_writer(&mut *out, &line)?;
    writeln!(out)?;
    if let Some(dir) = annotate {
        for d in &detections {
            let label = format!("{} {:.2}", detector.class_name(d.class_id), d.score);
            image.draw_box(&d.bbox, &label, class_color(d.class_id.0))?;
        }
        let name = path.file_name().context("image path has no file name")?;
        image.write(&dir.join(name))?;
    }
    Ok(())
}
