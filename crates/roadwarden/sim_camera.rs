//! `roadwarden sim-camera`: serve a video file over RTSP on 127.0.0.1, as a
//! camera site would (the stand-in for demos and tests).

use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

use anyhow::{Result, bail};
use clap::Args;
use roadwarden_media::sim::{SimCamera, SimConfig};

#[derive(Debug, Args)]
pub(crate) struct SimCameraArgs {
    /// An H.264 video file (MP4, MKV or TS) to serve as-is, without re-encoding.
    #[arg(value_name = "FILE")]
    file: PathBuf,

    /// TCP port on 127.0.0.1; clients connect to rtsp://127.0.0.1:PORT/stream.
    #[arg(long, default_value_t = 8554)]
    port: u16,

    /// Start the file again at its end instead of ending the stream.
    #[arg(long = "loop")]
    looping: bool,

    /// Kill the server this many seconds after it starts (connections drop
    /// without a goodbye, as a camera rebooting does).
    #[arg(long, value_name = "SECS")]
    fail_after: Option<f64>,
}

pub(crate) fn run(args: SimCameraArgs) -> Result<ExitCode> {
    let fail_after = match args.fail_after {
        Some(s) if !(s.is_finite() && s > 0.0) => {
            bail!("--fail-after {s} must be a positive number of seconds")
        }
        Some(s) => Some(Duration::from_secs_f64(s)),
        None => None,
    };
    let camera = SimCamera::start(SimConfig {
        file: args.file,
        port: args.port,
        looping: args.looping,
        fail_after,
        credentials: None,
    })?;
    // Printed on stdout so scripts and tests can wait for it.
    println!("serving {}", camera.url());
    camera.wait(None);
    camera.stop();
    Ok(ExitCode::SUCCESS)
}
