//! Bad input through the real binary: each gives one `error:` line that names
//! the file and the problem, exit code 1, and never a panic.

mod common;

use common::{model, roadwarden, write};

fn image() -> String {
    common::shared()
        .join("footage/riders-kaggle/images/BikesHelmets1.jpg")
        .display()
        .to_string()
}

#[test]
fn help_teaches_the_subcommands() {
    let run = roadwarden(["--help"]);
    assert!(run.ok());
    for word in [
        "detect",
        "eval-detector",
        "--provider",
        "--ort-lib",
        "Examples",
    ] {
        assert!(
            run.stdout.contains(word),
            "--help lacks {word}: {}",
            run.stdout
        );
    }
    let run = roadwarden(["eval-detector", "--help"]);
    assert!(run.ok() && run.stdout.contains("--labels") && run.stdout.contains("YOLO"));
}

#[test]
fn missing_model_file() {
    let dir = tempfile::tempdir().unwrap();
    let manifest = dir.path().join("m.toml");
    write(&manifest, "file = \"nope.onnx\"\n");
    let run = roadwarden(["detect", "--model", manifest.to_str().unwrap(), &image()]);
    let line = run.one_line_error();
    assert!(
        line.contains("nope.onnx") && line.contains("not found"),
        "{line}"
    );
}

#[test]
fn missing_manifest() {
    let run = roadwarden(["detect", "--model", "/nonexistent/model.toml", &image()]);
    let line = run.one_line_error();
    assert!(
        line.contains("/nonexistent/model.toml") && line.contains("cannot read model manifest"),
        "{line}"
    );
}

#[test]
fn sha256_mismatch() {
    let dir = tempfile::tempdir().unwrap();
    let manifest = dir.path().join("m.toml");
    let onnx = model("fastestdet-352.onnx");
    write(
        &manifest,
        &format!(
            "file = {:?}\nformat = \"fastestdet\"\nsha256 = \"{}\"\nclasses_file = {:?}\n",
            onnx,
            "0".repeat(64),
            model("fastestdet-coco.names")
        ),
    );
    let run = roadwarden(["detect", "--model", manifest.to_str().unwrap(), &image()]);
    let line = run.one_line_error();
    assert!(
        line.contains("fastestdet-352.onnx") && line.contains("sha256 mismatch"),
        "{line}"
    );
    assert!(
        line.contains("31cb14c017fce347"),
        "names the actual hash: {line}"
    );
}

#[test]
fn file_that_is_not_onnx() {
    let dir = tempfile::tempdir().unwrap();
    let fake = dir.path().join("fake.onnx");
    write(&fake, "this is a text file, not a protobuf model\n");
    let manifest = dir.path().join("m.toml");
    write(
        &manifest,
        "file = \"fake.onnx\"\n[[classes]]\nname = \"a\"\n",
    );
    let run = roadwarden(["detect", "--model", manifest.to_str().unwrap(), &image()]);
    let line = run.one_line_error();
    assert!(
        line.contains("fake.onnx") && line.contains("not a loadable ONNX model"),
        "{line}"
    );
}

#[test]
fn output_shape_that_does_not_fit_the_format() {
    // FastestDet's [1, 85, 22, 22] declared as a two-class YOLO model.
    let dir = tempfile::tempdir().unwrap();
    let manifest = dir.path().join("m.toml");
    write(
        &manifest,
        &format!(
            "file = {:?}\nformat = \"yolo\"\n[[classes]]\nname = \"a\"\n[[classes]]\nname = \"b\"\n",
            model("fastestdet-352.onnx")
        ),
    );
    let run = roadwarden(["detect", "--model", manifest.to_str().unwrap(), &image()]);
    let line = run.one_line_error();
    assert!(
        line.contains("fastestdet-352.onnx")
            && line.contains("does not fit the declared format `yolo`"),
        "{line}"
    );
    assert!(line.contains("[1, 85, 22, 22]"), "{line}");

    // The helmet model declared with three classes.
    write(
        &manifest,
        &format!(
            "file = {:?}\n[[classes]]\nname = \"a\"\n[[classes]]\nname = \"b\"\n[[classes]]\nname = \"c\"\n",
            model("helmet-yolov12m.onnx")
        ),
    );
    let run = roadwarden(["detect", "--model", manifest.to_str().unwrap(), &image()]);
    let line = run.one_line_error();
    assert!(
        line.contains("helmet-yolov12m.onnx") && line.contains("3 classes"),
        "{line}"
    );
}

#[test]
fn unreadable_image() {
    let dir = tempfile::tempdir().unwrap();
    let bad = dir.path().join("truncated.jpg");
    let good = std::fs::read(image()).unwrap();
    std::fs::write(&bad, &good[..40]).unwrap();
    let m = model("fastestdet-352.toml");
    let run = roadwarden([
        "detect",
        "--model",
        m.to_str().unwrap(),
        bad.to_str().unwrap(),
    ]);
    let line = run.one_line_error();
    assert!(
        line.contains("truncated.jpg") && line.contains("cannot read image"),
        "{line}"
    );

    let missing = dir.path().join("missing.jpg");
    let run = roadwarden([
        "detect",
        "--model",
        m.to_str().unwrap(),
        missing.to_str().unwrap(),
    ]);
    let line = run.one_line_error();
    assert!(line.contains("missing.jpg"), "{line}");
}

#[test]
fn missing_onnx_runtime_library() {
    let m = model("fastestdet-352.toml");
    let run = roadwarden([
        "--ort-lib",
        "/nonexistent/libonnxruntime.so",
        "detect",
        "--model",
        m.to_str().unwrap(),
        &image(),
    ]);
    let line = run.one_line_error();
    assert!(
        line.contains("/nonexistent/libonnxruntime.so") && line.contains("scripts/setup"),
        "{line}"
    );

    // A file that exists but is not a shared library.
    let dir = tempfile::tempdir().unwrap();
    let lib = dir.path().join("libonnxruntime.so");
    write(&lib, "not an ELF file");
    let run = roadwarden([
        "--ort-lib",
        lib.to_str().unwrap(),
        "detect",
        "--model",
        m.to_str().unwrap(),
        &image(),
    ]);
    let line = run.one_line_error();
    assert!(
        line.contains(lib.to_str().unwrap()) && line.contains("not loadable"),
        "{line}"
    );
}

#[test]
fn invalid_manifest_names_the_key() {
    let dir = tempfile::tempdir().unwrap();
    let manifest = dir.path().join("m.toml");
    write(
        &manifest,
        "file = \"x.onnx\"\n[[classes]]\nname = \"a\"\nrole = \"unicorn\"\n",
    );
    let run = roadwarden(["detect", "--model", manifest.to_str().unwrap(), &image()]);
    let line = run.one_line_error();
    assert!(
        line.contains("m.toml") && line.contains("unicorn") && line.contains("role"),
        "{line}"
    );
}

#[test]
fn unavailable_execution_provider_is_an_error_unless_fallback() {
    let m = model("fastestdet-352.toml");
    let run = roadwarden([
        "--provider",
        "cuda",
        "detect",
        "--model",
        m.to_str().unwrap(),
        &image(),
    ]);
    let line = run.one_line_error();
    assert!(
        line.contains("CUDA") && line.contains("--allow-cpu-fallback"),
        "{line}"
    );

    let run = roadwarden([
        "--provider",
        "cuda",
        "--allow-cpu-fallback",
        "detect",
        "--model",
        m.to_str().unwrap(),
        &image(),
    ]);
    assert!(run.ok(), "{}", run.stderr);
    assert!(
        run.stderr.contains("falling back to the CPU"),
        "warns: {}",
        run.stderr
    );
}

#[test]
fn detect_prints_json_and_annotates() {
    let dir = tempfile::tempdir().unwrap();
    let m = model("helmet-yolov12m.toml");
    let run = roadwarden([
        "detect",
        "--model",
        m.to_str().unwrap(),
        "--annotate",
        dir.path().to_str().unwrap(),
        &image(),
    ]);
    assert!(run.ok(), "{}", run.stderr);
    let v: serde_json::Value = serde_json::from_str(run.stdout.trim()).expect("one JSON line");
    assert_eq!(v["width"], 224);
    let dets = v["detections"].as_array().unwrap();
    assert!(!dets.is_empty(), "BikesHelmets1 shows riders' heads: {v}");
    for d in dets {
        assert!(["With Helmet", "Without Helmet"].contains(&d["class"].as_str().unwrap()));
        assert!(d["score"].as_f64().unwrap() > 0.25);
        let b: Vec<f64> = d["bbox"]
            .as_array()
            .unwrap()
            .iter()
            .map(|x| x.as_f64().unwrap())
            .collect();
        assert!(
            b[0] >= 0.0 && b[2] <= 224.0 && b[0] < b[2] && b[1] < b[3],
            "{b:?}"
        );
    }
    let annotated = dir.path().join("BikesHelmets1.jpg");
    assert!(std::fs::metadata(&annotated).unwrap().len() > 1000);
}

#[test]
fn analyze_a_video_file_paced_to_the_analysis_rate() {
    let clip = common::shared().join("footage/intel-parking/car-detection.mp4");
    let m = model("fastestdet-352.toml");
    // 30 s at 12.5 fps, analysed at 2.5 fps: about 75 of its 377 frames.
    let run = roadwarden([
        "analyze",
        clip.to_str().unwrap(),
        "--model",
        m.to_str().unwrap(),
        "--fps",
        "2.5",
    ]);
    assert!(run.ok(), "{}", run.stderr);
    let lines: Vec<serde_json::Value> = run
        .stdout
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert!(
        (70..=80).contains(&lines.len()),
        "analysed {} frames",
        lines.len()
    );
    let mut last = (None::<u64>, 0u64);
    for l in &lines {
        assert_eq!(
            (l["width"].as_u64(), l["height"].as_u64()),
            (Some(768), Some(432))
        );
        assert_eq!(l["camera"], "cli");
        let (frame, at) = (
            l["frame"].as_u64().unwrap(),
            l["captured_at_ms"].as_u64().unwrap(),
        );
        if let Some(prev) = last.0 {
            assert!(
                frame > prev && at >= last.1,
                "frames in order with monotonic times"
            );
        }
        last = (Some(frame), at);
        assert!(l["detections"].is_array());
    }
}

#[test]
fn analyze_a_corrupt_video_names_it() {
    let dir = tempfile::tempdir().unwrap();
    let bad = dir.path().join("garbage.mp4");
    std::fs::write(&bad, vec![0x5au8; 64 * 1024]).unwrap();
    let m = model("fastestdet-352.toml");
    let run = roadwarden([
        "analyze",
        bad.to_str().unwrap(),
        "--model",
        m.to_str().unwrap(),
    ]);
    let line = run.one_line_error();
    assert!(line.contains("garbage.mp4"), "{line}");
    let run = roadwarden([
        "analyze",
        "/nonexistent/clip.mp4",
        "--model",
        m.to_str().unwrap(),
    ]);
    let line = run.one_line_error();
    assert!(
        line.contains("/nonexistent/clip.mp4") && line.contains("no such video file"),
        "{line}"
    );
}

/// `--data data`, a relative one-part folder (whose parent is the empty path): the key is created in
/// it, under the working folder.
#[test]
fn key_show_creates_the_key_in_a_relative_data_folder() {
    let dir = tempfile::tempdir().unwrap();
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_roadwarden"))
        .args(["key", "show", "--json", "--data", "data"])
        .current_dir(dir.path())
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{stderr}");
    assert!(stderr.contains("created a new signing key"), "{stderr}");
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(v["public_key"].as_str().map(str::len), Some(64), "{v}");
    assert!(dir.path().join("data/signing-key.ed25519").is_file());
}
