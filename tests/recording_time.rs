//! Evidence carries the recording's time, not the analysing machine's: `analyze --start-time` dates a
//! file's frames, violations and evidence folders from the given start; without it a file is dated from
//! its container's creation time. The real binary on real clips (a synthetic scene through the real
//! pipeline and models; the Intel parking-lot MP4 of ../shared).

mod common;

use std::path::Path;

use chrono::{DateTime, TimeDelta, Utc};
use common::*;

fn time(v: &serde_json::Value) -> DateTime<Utc> {
    v.as_str()
        .and_then(|s| DateTime::parse_from_rfc3339(s).ok())
        .map(|t| t.with_timezone(&Utc))
        .unwrap_or_else(|| panic!("not an RFC 3339 time: {v}"))
}

#[test]
fn analyze_with_a_start_time_dates_violations_and_folders_from_it() {
    let dir = tempfile::tempdir().unwrap();
    let scene = one_rider_scene(dir.path());
    let (video, truth) = (dir.path().join("s.mp4"), dir.path().join("s.json"));
    synth(&scene, &video, &truth);
    let data = dir.path().join("data");
    // Late on a leap day, so a case near the clip's end would fall on the next day's folder.
    let start: DateTime<Utc> = "2020-02-29T23:59:58.500Z".parse().unwrap();
    let before = Utc::now();
    let run = roadwarden([
        "analyze".as_ref(),
        video.as_os_str(),
        "--config".as_ref(),
        example("site.toml").as_os_str(),
        "--data".as_ref(),
        data.as_os_str(),
        "--start-time".as_ref(),
        "2020-03-01T00:59:58.500+01:00".as_ref(),
        "--quiet".as_ref(),
    ]);
    assert!(run.ok(), "{}", run.stderr);
    let lines = json_lines(&run.stdout, "one JSON line per violation");
    assert!(!lines.is_empty(), "no violation: {}", run.stderr);
    for v in &lines {
        let at = time(&v["occurred_at"]);
        // The clip is 4 s long: every time lies in it, counted from the start given.
        assert!(
            at >= start && at <= start + TimeDelta::seconds(4),
            "occurred_at {at} outside the recording {start} + 4 s: {v}"
        );
        let folder = at.format("%Y-%m-%d").to_string();
        for f in v["evidence"].as_array().unwrap() {
            let f = f.as_str().unwrap();
            assert!(
                f.starts_with(&format!("evidence/synth-cam/{folder}/")),
                "{f} not in the recording's day {folder}"
            );
            assert!(data.join(f).is_file(), "{f}");
        }
        for fr in v["frames"].as_array().unwrap() {
            let captured = time(&fr["captured_at"]);
            assert!(captured >= start && captured <= start + TimeDelta::seconds(4));
            // The machine's clock beside it: today, so the photo shows both.
            let clock = time(&fr["analysed_at"]);
            assert!(
                clock >= before - TimeDelta::seconds(1) && clock <= Utc::now(),
                "analysed_at {clock} is not the analysing machine's clock: {fr}"
            );
        }
    }
    let ok = roadwarden(["verify", "--data", data.to_str().unwrap()]);
    assert!(ok.ok(), "{}{}", ok.stdout, ok.stderr);
    assert!(ok.stdout.starts_with("verified"), "{}", ok.stdout);
}

#[test]
fn a_start_time_must_be_rfc3339_and_for_a_file() {
    let run = roadwarden([
        "analyze",
        "clip.mp4",
        "--model",
        "models/fastestdet-352.toml",
        "--start-time",
        "yesterday",
    ]);
    let line = run.one_line_error();
    assert!(
        line.contains("yesterday") && line.contains("RFC 3339"),
        "{line}"
    );
    let run = roadwarden([
        "analyze",
        "rtsp://127.0.0.1:9/none",
        "--model",
        model("fastestdet-352.toml").to_str().unwrap(),
        "--start-time",
        "2024-05-01T08:00:00Z",
    ]);
    let line = run.one_line_error();
    assert!(
        line.contains("--start-time") && line.contains("RTSP"),
        "{line}"
    );
}

#[test]
fn a_file_without_a_start_time_is_dated_from_its_container() {
    let clip = shared().join("footage/intel-parking/car-detection.mp4");
    assert!(Path::new(&clip).is_file(), "../shared footage missing");
    let run = roadwarden([
        "analyze".as_ref(),
        clip.as_os_str(),
        "--model".as_ref(),
        model("fastestdet-352.toml").as_os_str(),
        "--max-frames".as_ref(),
        "3".as_ref(),
        "--quiet".as_ref(),
    ]);
    assert!(run.ok(), "{}", run.stderr);
    let lines = json_lines(&run.stdout, "one JSON line per frame");
    assert_eq!(lines.len(), 3, "{}", run.stdout);
    // The MP4's creation time (its `mvhd` box), as `gst-launch-1.0 -t` shows it: 2018-04-19 22:46:00 UTC.
    let created: DateTime<Utc> = "2018-04-19T22:46:00Z".parse().unwrap();
    for l in &lines {
        let ms = l["captured_at_ms"].as_i64().unwrap();
        let at = DateTime::<Utc>::from_timestamp_millis(ms).unwrap();
        assert!(
            at >= created && at <= created + TimeDelta::seconds(2),
            "frame at {at}, the recording started {created}"
        );
    }
}
