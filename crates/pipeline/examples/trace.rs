//! Prints what the pipeline sees frame by frame, then the score: `trace SITE SCENARIO.toml [OUT_DIR]` renders
//! the scenario (to OUT_DIR, default a temp folder), runs the site's first camera over it and prints each
//! analysed frame's tracks next to the truth, the violations, and the misses and false alarms (ORT from
//! ROADWARDEN_ORT_LIB or .ort/).

use std::path::PathBuf;

use roadwarden_infer::{ExecutionProvider, Runtime, RuntimeConfig};
use roadwarden_media::SourceConfig;
use roadwarden_pipeline::score::score;
use roadwarden_pipeline::synth::{Scenario, render};
use roadwarden_pipeline::{CameraPipeline, run_source};
use roadwarden_rules::SiteConfig;

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let args: Vec<String> = std::env::args().collect();
    let (site, scen) = (args.get(1).ok_or("SITE")?, args.get(2).ok_or("SCENARIO")?);
    let out = args
        .get(3)
        .map(PathBuf::from)
        .unwrap_or_else(std::env::temp_dir);
    std::fs::create_dir_all(&out)?;
    let cfg = SiteConfig::load(std::path::Path::new(site))?;
    let scenario = Scenario::load(std::path::Path::new(scen))?;
    let video = out.join(format!("scene-{}.mp4", scenario.seed));
    let truth = render(&scenario, &video)?;
    std::fs::write(
        out.join(format!("truth-{}.json", scenario.seed)),
        serde_json::to_string_pretty(&truth)?,
    )?;
    for v in &truth.violations {
        println!(
            "TRUTH {} actor {} t {:.1} ({:.1}..{:.1}) at {:?}",
            v.kind, v.actor, v.time_s, v.from_s, v.to_s, v.position
        );
    }
    for a in &truth.actors {
        println!(
            "ACTOR {} {:?} helmet {} src {} crossed {:?} {:?}",
            a.id, a.kind, a.helmet, a.source, a.crossed_at_s, a.signal_at_crossing
        );
    }
    let lib = std::env::var_os("ROADWARDEN_ORT_LIB")
        .map(PathBuf::from)
        .or_else(|| Some(PathBuf::from(".ort/lib/libonnxruntime.so")).filter(|p| p.is_file()));
    let rt = Runtime::load(&RuntimeConfig {
        library: lib,
        provider: ExecutionProvider::Cpu,
        allow_cpu_fallback: false,
        threads: None,
    })?;
    let mut p = CameraPipeline::new(&cfg.cameras[0], &rt)?;
    let fps = truth.fps as f64;
    let mut reported = Vec::new();
    run_source(
        &mut p,
        SourceConfig::file("trace", &video),
        |e| {
            let Some(r) = e.frame() else {
                reported.extend(e.violations().iter().cloned());
                return;
            };
            let heads: Vec<String> = r
                .heads
                .iter()
                .map(|h| {
                    format!(
                        "#{}{}{} {} {:.2} x{:.0} y{:.0} w{:.0}",
                        h.track_id,
                        match h.state {
                            roadwarden_track::TrackState::Confirmed => "",
                            roadwarden_track::TrackState::Tentative => "?",
                            _ => "~",
                        },
                        if h.matched { "" } else { "(p)" },
                        if h.role == roadwarden_types::ClassRole::NoHelmet {
                            "NH"
                        } else {
                            "H"
                        },
                        h.score,
                        h.bbox.x1,
                        h.bbox.y1,
                        h.bbox.width()
                    )
                })
                .collect();
            let wheels: Vec<String> = r
                .two_wheelers
                .iter()
                .map(|h| {
                    format!(
                        "#{} {} {:.2} x{:.0}-{:.0} y{:.0}-{:.0}",
                        h.track_id,
                        h.class_name,
                        h.score,
                        h.bbox.x1,
                        h.bbox.x2,
                        h.bbox.y1,
                        h.bbox.y2
                    )
                })
                .collect();
            let truth_now: Vec<String> = truth
                .actors
                .iter()
                .filter_map(|a| {
                    a.frames.iter().find(|f| f.frame == r.frame_index).map(|f| {
                        format!(
                            "A{}{} x{:.0} y{:.0} w{:.0}",
                            a.id,
                            if a.helmet { "H" } else { "NH" },
                            f.head.x1,
                            f.head.y1,
                            f.head.width()
                        )
                    })
                })
                .collect();
            println!(
                "{:.1} {:?} truth {:?}\n     heads {:?} wheels {:?}",
                r.frame_index as f64 / fps,
                r.signal,
                truth_now,
                heads,
                wheels
            );
            for v in &r.violations {
                println!(
                    "  VIOLATION {} track {} frames {:?}",
                    v.kind,
                    v.track_id,
                    v.frames.iter().map(|f| f.frame_index).collect::<Vec<_>>()
                );
            }
            reported.extend(r.violations.iter().cloned());
        },
        || false,
    )?;
    let s = score(&truth, &reported);
    println!("SCORE {:?}", s.per_rule);
    for m in &s.misses {
        println!("MISS {m:?}");
    }
    for f in &s.false_alarms {
        println!("FALSE {f:?}");
    }
    Ok(())
}
