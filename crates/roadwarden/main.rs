//! The `roadwarden` binary: the command line over the library crates.
//!
//! Owns: argument parsing, turning library errors into one-line messages and
//! exit codes, progress bars, JSON output. Must not: hold pipeline logic of
//! its own; each subcommand wires crates together and reports.

mod analyze;
mod bench;
mod config_cmd;
mod detect;
mod eval;
mod eval_violations;
mod key;
mod output;
mod runtime;
mod serve;
mod sim_camera;
mod synth;
mod user;
mod verify;

use std::process::ExitCode;

use clap::{Parser, Subcommand};

/// Catches e-bike riders without helmets and riders running red lights on
/// roadside cameras, and records each violation with its evidence.
#[derive(Debug, Parser)]
#[command(name = "roadwarden", version, about, long_about = None, after_help = "\
Examples:
  roadwarden detect --model models/helmet-yolov12m.toml photo.jpg
  roadwarden detect --model models/fastestdet-352.toml --annotate out/ frames/*.jpg
  roadwarden eval-detector --model models/helmet-yolov12m.toml --images data/images --labels data/labels
  roadwarden sim-camera clip.mp4 --port 8554 --loop
  roadwarden synth examples/scene-1.toml --out scene.mp4 --truth truth.json
  roadwarden eval scene.mp4 --config examples/site.toml --truth truth.json

Logging: -v for info, -vv for debug, or RUST_LOG=roadwarden=debug.")]
struct Cli {
    #[command(flatten)]
    runtime: runtime::RuntimeArgs,

    /// More log output on stderr (-v info, -vv debug, -vvv trace).
    #[arg(short, long, action = clap::ArgAction::Count, global = true)]
    verbose: u8,

    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Run a detector on image files; prints one JSON line per image.
    Detect(detect::DetectArgs),
    /// Measure a detector's accuracy on YOLO-labelled images, as ultralytics `val` does.
    #[command(name = "eval-detector")]
    EvalDetector(eval::EvalArgs),
    /// Violation-level precision and recall of the pipeline on a scene with ground truth; --sweep the rule thresholds.
    Eval(eval_violations::EvalViolationsArgs),
    /// Serve a video file over RTSP on 127.0.0.1: a camera stand-in for demos and tests.
    #[command(name = "sim-camera")]
    SimCamera(sim_camera::SimCameraArgs),
    /// Validate a site file, or draw its stop line, zones and signal ROIs on a frame.
    Config(config_cmd::ConfigArgs),
    /// Generate a reproducible test scene (H.264 MP4) and its ground truth from a scenario file.
    Synth(synth::SynthArgs),
    /// A video file or RTSP camera: violations (--config) or detections (--model) as JSON lines.
    Analyze(analyze::AnalyzeArgs),
    /// Recompute evidence file hashes and the per-camera hash chains; name what is broken.
    Verify(verify::VerifyArgs),
    /// The HTTP service: review API, evidence download, thresholds, cameras, metrics.
    Serve(serve::ServeArgs),
    /// Users of the service (reviewer, ops, admin) and bearer tokens for machines.
    User(user::UserArgs),
    /// The installation's evidence signing key: `key show` prints its public part for `verify --package --key`.
    Key(key::KeyArgs),
    /// Throughput on one clip: decode-only, inference-only and full-pipeline fps, memory at 1/2/4 cameras.
    Bench(bench::BenchArgs),
}

fn init_logging(verbose: u8) {
    use tracing_subscriber::EnvFilter;
    // The service's own events (cameras started, reloads, the recorder's findings) show by default.
    let default = match verbose {
        0 => "warn,roadwarden_service=info",
        1 => "info,ort=warn",
        2 => "debug,ort=info",
        _ => "trace",
    };
    let filter = EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new(default));
    tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .with_target(false)
        .init();
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    init_logging(cli.verbose);
    let result = match cli.command {
        Command::Detect(args) => detect::run(&cli.runtime, args),
        Command::EvalDetector(args) => eval::run(&cli.runtime, args),
        Command::Eval(args) => eval_violations::run(&cli.runtime, args),
        Command::Config(args) => config_cmd::run(args),
        Command::Synth(args) => synth::run(args),
        Command::Analyze(args) => analyze::run(&cli.runtime, args),
        Command::SimCamera(args) => sim_camera::run(args),
        Command::Verify(args) => verify::run(args),
        Command::Serve(args) => serve::run(&cli.runtime, args),
        Command::User(args) => user::run(args),
        Command::Key(args) => key::run(args),
        Command::Bench(args) => bench::run(&cli.runtime, args),
    };
    match result {
        Ok(code) => code,
        Err(e) => {
            // One line, whatever the library put into the message.
            let msg = format!("{e:#}").replace('\n', " ");
            eprintln!("error: {msg}");
            ExitCode::FAILURE
        }
    }
}
