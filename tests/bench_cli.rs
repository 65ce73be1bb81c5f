//! `roadwarden bench` on the real clip with the real helmet model: one camera, a few frames. Checks the
//! report's shape and that every figure is a positive number, and that a 768x432 camera gets the rect input
//! (640x384) of the dynamic model. Never asserts speeds.

mod common;

use common::{model, roadwarden, shared};

#[test]
fn bench_reports_positive_figures_and_rect_input() {
    let clip = shared().join("footage/intel-parking/car-detection.mp4");
    let manifest = model("helmet-yolov12m.toml");
    let mut args: Vec<std::ffi::OsString> = vec!["--threads".into(), "2".into(), "bench".into()];
    args.push(clip.into());
    args.extend(["--model".into(), manifest.into()]);
    args.extend(["--json", "--cameras", "1", "--frames", "2"].map(Into::into));
    let run = roadwarden(args);
    assert!(run.ok(), "bench failed: {}", run.stderr);
    let v: serde_json::Value = serde_json::from_str(&run.stdout)
        .unwrap_or_else(|e| panic!("not JSON ({e}): {}", run.stdout));
    for key in [
        "decode_fps",
        "inference_fps",
        "pipeline_fps",
        "peak_rss_mb",
        "peak_rss_per_camera_mb",
        "pipeline_vs_inference",
        "decode_vs_inference",
    ] {
        let x = v[key]
            .as_f64()
            .unwrap_or_else(|| panic!("`{key}` missing or not a number: {v}"));
        assert!(x.is_finite() && x > 0.0, "`{key}` = {x}");
    }
    assert_eq!(v["decoded_frames"], 377, "the clip has 377 frames");
    assert_eq!(v["timed_frames"], 2);
    assert_eq!(v["input_dynamic"], true);
    assert_eq!(
        (v["input_width"].as_u64(), v["input_height"].as_u64()),
        (Some(640), Some(384)),
        "rect letterbox of 768x432"
    );
    let runs = v["runs"].as_array().expect("runs is an array");
    assert_eq!(runs.len(), 1);
    assert_eq!(runs[0]["cameras"], 1);
    assert_eq!(runs[0]["ort_threads"], 2);
    for key in ["pipeline_fps", "peak_rss_mb"] {
        assert!(
            runs[0][key].as_f64().is_some_and(|x| x > 0.0),
            "runs[0].{key}: {}",
            runs[0]
        );
    }
}

/// Issue 17: every K >= 2 runs twice in one bench, with a session per camera and through one shared
/// batcher per model, and both report their total fps (FastestDet, whose batch is fixed at 1: the
/// batcher runs the images one by one, mean batch 1).
#[test]
fn bench_reports_cameras_with_and_without_batching() {
    let clip = shared().join("footage/intel-parking/car-detection.mp4");
    let manifest = model("fastestdet-352.toml");
    let mut args: Vec<std::ffi::OsString> = vec!["--threads".into(), "2".into(), "bench".into()];
    args.push(clip.into());
    args.extend(["--model".into(), manifest.into()]);
    args.extend(["--json", "--cameras", "2", "--frames", "3"].map(Into::into));
    let run = roadwarden(args);
    assert!(run.ok(), "bench failed: {}", run.stderr);
    let v: serde_json::Value = serde_json::from_str(&run.stdout)
        .unwrap_or_else(|e| panic!("not JSON ({e}): {}", run.stdout));
    let runs = v["runs"].as_array().expect("runs is an array");
    assert_eq!(runs.len(), 2, "{runs:?}");
    assert_eq!(runs[0]["batched"], false);
    assert_eq!(runs[1]["batched"], true);
    for r in runs {
        assert_eq!(r["cameras"], 2);
        assert!(r["pipeline_fps"].as_f64().is_some_and(|x| x > 0.0), "{r}");
    }
    assert_eq!(
        runs[1]["ort_threads"], 2,
        "the batcher's session gets every thread"
    );
    assert_eq!(runs[1]["mean_batch"], 1.0, "fixed batch: one image a run");
    assert!(runs[1]["mean_latency_ms"].as_f64().is_some_and(|x| x > 0.0));
}
