//! `roadwarden synth`: a reproducible test scene (H.264 MP4) and its ground truth from a scenario file.

use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::{Context, Result};
use clap::Args;
use roadwarden_pipeline::synth::{Scenario, render};

#[derive(Debug, Args)]
pub(crate) struct SynthArgs {
    /// The scenario (TOML): background, signal schedule, stop line, actors, seed.
    scenario: PathBuf,
    /// The video to write (H.264 MP4).
    #[arg(long, value_name = "MP4")]
    out: PathBuf,
    /// The ground truth to write (JSON): expected violations and every actor's boxes.
    #[arg(long, value_name = "JSON")]
    truth: PathBuf,
}

pub(crate) fn run(args: SynthArgs) -> Result<ExitCode> {
    let scenario = Scenario::load(&args.scenario)?;
    let truth = render(&scenario, &args.out)?;
    let json = serde_json::to_string_pretty(&truth)?;
    std::fs::write(&args.truth, json)
        .with_context(|| format!("cannot write {}", args.truth.display()))?;
    eprintln!(
        "wrote {} ({} frames) and {} ({} expected violations)",
        args.out.display(),
        truth.frames,
        args.truth.display(),
        truth.violations.len()
    );
    Ok(ExitCode::SUCCESS)
}
