//! `roadwarden config check|draw`: validate a site file; draw its stop line, zones and signal ROIs on a frame.

use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::{Context, Result, bail};
use clap::{Args, Subcommand};
use roadwarden_imaging::BgrImage;
use roadwarden_rules::SiteConfig;

#[derive(Debug, Args)]
pub(crate) struct ConfigArgs {
    #[command(subcommand)]
    command: ConfigCommand,
}

#[derive(Debug, Subcommand)]
enum ConfigCommand {
    /// Validate a site file: every camera's keys, geometry inside its frame, known class roles.
    Check {
        /// The site file (TOML, one [[camera]] table per camera).
        site: PathBuf,
    },
    /// Render a camera's stop line (before side marked), zones and signal boxes on a frame, as PNG: each
    /// lamp box labelled with its lamp, its level and whether it reads lit on this frame (older single
    /// boxes: the colour read there).
    Draw {
        site: PathBuf,
        /// A frame of that camera (image file of the configured frame size).
        #[arg(long, value_name = "IMG")]
        frame: PathBuf,
        /// Where to write the PNG.
        #[arg(long, value_name = "PNG")]
        out: PathBuf,
        /// Which camera [default: the first].
        #[arg(long, value_name = "ID")]
        camera: Option<String>,
    },
}

pub(crate) fn run(args: ConfigArgs) -> Result<ExitCode> {
    match args.command {
        ConfigCommand::Check { site } => {
            let cfg = SiteConfig::load_checked(&site)?;
            let ids: Vec<&str> = cfg.cameras.iter().map(|c| c.id.as_str()).collect();
            println!(
                "{}: ok, {} camera(s): {}",
                site.display(),
                ids.len(),
                ids.join(", ")
            );
            Ok(ExitCode::SUCCESS)
        }
        ConfigCommand::Draw {
            site,
            frame,
            out,
            camera,
        } => {
            let cfg = SiteConfig::load(&site)?;
            let cam = match &camera {
                Some(id) => cfg
                    .camera(id)
                    .with_context(|| format!("{}: no camera `{id}`", site.display()))?,
                None => &cfg.cameras[0],
            };
            let mut img = BgrImage::read(&frame)?;
            let [w, h] = cam.frame;
            if (img.width(), img.height()) != (w, h) {
                bail!(
                    "camera `{}`: key `frame`: configured for {w}x{h} but {} is {}x{}",
                    cam.id,
                    frame.display(),
                    img.width(),
                    img.height()
                );
            }
            let thick = ((w.max(h) as f32 / 320.0).ceil() as i32).max(1);
            for z in &cam.zones {
                let pts: Vec<(f32, f32)> = z.points.iter().map(|p| (p[0], p[1])).collect();
                img.draw_polygon(&pts, [255, 200, 0], thick)?;
                if let Some(p) = pts.first() {
                    img.put_text(&z.name, (p.0 + 3.0, p.1 + 14.0), 0.45, [255, 200, 0])?;
                }
            }
            let sl = &cam.stop_line;
            img.draw_line(
                (sl.a[0], sl.a[1]),
                (sl.b[0], sl.b[1]),
                [0, 0, 255],
                thick + 1,
            )?;
            // An arrow from the before side across the line, at its middle.
            let line = sl.line();
            let mid = ((sl.a[0] + sl.b[0]) / 2.0, (sl.a[1] + sl.b[1]) / 2.0);
            let (dx, dy) = (sl.b[0] - sl.a[0], sl.b[1] - sl.a[1]);
            let len = (dx * dx + dy * dy).sqrt().max(1.0);
            let mut normal = (-dy / len, dx / len);
            let probe =
                roadwarden_rules::Point::new(mid.0 + normal.0 * 10.0, mid.1 + normal.1 * 10.0);
            if line.side(probe) != roadwarden_rules::Side::Before {
                normal = (-normal.0, -normal.1);
            }
            let from = (mid.0 + normal.0 * 30.0, mid.1 + normal.1 * 30.0);
            img.draw_line(from, mid, [0, 0, 255], thick)?;
            img.put_text("before", (from.0 + 3.0, from.1), 0.45, [0, 0, 255])?;
            img.put_text(
                "stop line",
                (sl.a[0] + 3.0, sl.a[1] - 4.0),
                0.45,
                [0, 0, 255],
            )?;
            roadwarden_pipeline::draw_signal_boxes(&mut img, cam)?;
            img.write(&out)?;
            eprintln!("wrote {}", out.display());
            Ok(ExitCode::SUCCESS)
        }
    }
}
