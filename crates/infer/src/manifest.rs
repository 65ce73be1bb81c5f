//! The model manifest: a TOML file beside the ONNX file that says everything
//! the pipeline needs to know about the model. Only `file` is required for an
//! ultralytics export: input, classes and sizes are then read from the model.

use std::path::{Path, PathBuf};

use roadwarden_types::ClassRole;
use serde::Deserialize;

use crate::InferError;

/// How the raw output tensor is laid out.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, Default)]
#[serde(rename_all = "lowercase")]
pub enum ModelFormat {
    /// Ultralytics YOLO: v8/v11/v12 `[B, 4+nc, N]` or v5 `[B, N, 5+nc]`.
    #[default]
    Yolo,
    /// FastestDet: `[B, 5+nc, H, W]` grid.
    Fastestdet,
    /// YOLOv5-face with 4 corner landmarks (HyperLPR3's plate detector):
    /// `[B, N, 5 + 8 + nc]`, cx cy w h, objectness, 4 corners, class scores.
    Yolo5face,
}

impl std::fmt::Display for ModelFormat {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            ModelFormat::Yolo => "yolo",
            ModelFormat::Fastestdet => "fastestdet",
            ModelFormat::Yolo5face => "yolo5face",
        })
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, Default)]
#[serde(rename_all = "lowercase")]
pub enum ColorOrder {
    #[default]
    Rgb,
    Bgr,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, Default)]
#[serde(rename_all = "lowercase")]
pub enum ResizeMode {
    /// Keep the aspect ratio, pad with `pad` grey, centred (ultralytics).
    #[default]
    Letterbox,
    /// Stretch to the input size, aspect ratio lost.
    Stretch,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, Default)]
#[serde(rename_all = "lowercase")]
pub enum Layout {
    #[default]
    Nchw,
}

/// The model input, as declared. Unset fields come from the model itself.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct InputSpec {
    pub name: Option<String>,
    /// Network input width and height in pixels (the square size for a
    /// dynamic model). Default: the model's static size, its `imgsz`
    /// metadata, or 640.
    pub width: Option<u32>,
    pub height: Option<u32>,
    #[serde(default)]
    pub layout: Layout,
    #[serde(default)]
    pub color: ColorOrder,
    /// Per channel (in `color` order), applied as `(value - mean) / std` to
    /// 0..255 values. Default mean 0, std 255: values 0..1.
    #[serde(default = "zero3")]
    pub mean: [f32; 3],
    #[serde(default = "std255")]
    pub std: [f32; 3],
    #[serde(default)]
    pub resize: ResizeMode,
    /// Letterbox padding value, 0..255.
    #[serde(default = "pad114")]
    pub pad: u8,
    /// Dynamic inputs are padded to a multiple of this (ultralytics `rect`).
    pub stride: Option<u32>,
}

impl Default for InputSpec {
    /// An ultralytics export: RGB, 0..1, letterboxed with 114 grey.
    fn default() -> Self {
        InputSpec {
            name: None,
            width: None,
            height: None,
            layout: Layout::Nchw,
            color: ColorOrder::Rgb,
            mean: zero3(),
            std: std255(),
            resize: ResizeMode::Letterbox,
            pad: pad114(),
            stride: None,
        }
    }
}

fn zero3() -> [f32; 3] {
    [0.0; 3]
}
fn std255() -> [f32; 3] {
    [255.0; 3]
}
fn pad114() -> u8 {
    114
}

/// One detector class.
#[derive(Debug, Clone, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct ClassSpec {
    pub name: String,
    #[serde(default = "other_role")]
    pub role: ClassRole,
    /// Minimum score for a detection of this class to be reported.
    pub threshold: Option<f32>,
}

fn other_role() -> ClassRole {
    ClassRole::Other
}

#[derive(Debug, Clone, Deserialize, Default)]
#[serde(deny_unknown_fields)]
pub struct OutputSpec {
    pub name: Option<String>,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawManifest {
    file: PathBuf,
    sha256: Option<String>,
    #[serde(default)]
    format: ModelFormat,
    name: Option<String>,
    description: Option<String>,
    licence: Option<String>,
    provenance: Option<String>,
    #[serde(default)]
    input: InputSpec,
    #[serde(default)]
    output: OutputSpec,
    /// Default threshold for classes that set none.
    threshold: Option<f32>,
    /// IoU above which a lower-scored box of the same class is suppressed.
    nms_iou: Option<f32>,
    /// Class names in output order; alternatively `classes_file` (one name a line).
    #[serde(default)]
    classes: Vec<ClassSpec>,
    classes_file: Option<PathBuf>,
}

/// A validated manifest, paths resolved against the manifest's folder.
#[derive(Debug, Clone)]
pub struct Manifest {
    pub path: PathBuf,
    pub name: String,
    pub model_file: PathBuf,
    pub sha256: Option<String>,
    pub format: ModelFormat,
    pub description: Option<String>,
    pub licence: Option<String>,
    pub provenance: Option<String>,
    pub input: InputSpec,
    pub output: OutputSpec,
    pub default_threshold: f32,
    pub nms_iou: f32,
    /// Empty when the manifest leaves class names to the model's metadata.
    pub classes: Vec<ClassSpec>,
}

pub(crate) const DEFAULT_THRESHOLD: f32 = 0.25;
pub(crate) const DEFAULT_NMS_IOU: f32 = 0.7;

impl Manifest {
    pub fn load(path: &Path) -> Result<Manifest, InferError> {
        let text = std::fs::read_to_string(path).map_err(|source| InferError::ManifestRead {
            path: path.to_path_buf(),
            source,
        })?;
        Manifest::parse(&text, path)
    }

    /// Parses and validates manifest text; `path` locates relative files and names errors.
    pub fn parse(text: &str, path: &Path) -> Result<Manifest, InferError> {
        let invalid = |message: String| InferError::ManifestInvalid {
            path: path.to_path_buf(),
            message,
        };
        let raw: RawManifest = toml::from_str(text).map_err(|e| {
            // toml's message already names the key and the line.
            invalid(e.to_string().trim().replace('\n', " "))
        })?;
        let dir = path.parent().unwrap_or(Path::new("."));
        let mut classes = raw.classes;
        if let Some(names) = &raw.classes_file {
            if !classes.is_empty() {
                return Err(invalid("give `classes` or `classes_file`, not both".into()));
            }
            let file = dir.join(names);
            let text = std::fs::read_to_string(&file)
                .map_err(|e| invalid(format!("classes_file {}: {e}", file.display())))?;
            classes = text
                .lines()
                .map(str::trim)
                .filter(|l| !l.is_empty())
                .map(|name| ClassSpec {
                    name: name.to_string(),
                    role: ClassRole::Other,
                    threshold: None,
                })
                .collect();
        }
        if let Some(sha) = &raw.sha256
            && (sha.len() != 64 || !sha.bytes().all(|b| b.is_ascii_hexdigit()))
        {
            return Err(invalid(format!("sha256 `{sha}` is not 64 hex digits")));
        }
        let check_unit = |key: &str, v: Option<f32>| -> Result<(), InferError> {
            match v {
                Some(t) if !(0.0..=1.0).contains(&t) || t.is_nan() => {
                    Err(invalid(format!("{key} = {t} is outside 0..1")))
                }
                _ => Ok(()),
            }
        };
        check_unit("threshold", raw.threshold)?;
        check_unit("nms_iou", raw.nms_iou)?;
        for (i, c) in classes.iter().enumerate() {
            check_unit(&format!("classes[{i}].threshold ({})", c.name), c.threshold)?;
        }
        for (key, v) in [
            ("input.width", raw.input.width),
            ("input.height", raw.input.height),
        ] {
            if v == Some(0) {
                return Err(invalid(format!("{key} must be positive")));
            }
        }
        if raw.input.std.contains(&0.0) {
            return Err(invalid("input.std must not contain 0".into()));
        }
        let name = raw.name.unwrap_or_else(|| {
            raw.file
                .file_stem()
                .map(|s| s.to_string_lossy().into_owned())
                .unwrap_or_else(|| "model".into())
        });
        Ok(Manifest {
            path: path.to_path_buf(),
            name,
            model_file: dir.join(&raw.file),
            sha256: raw.sha256.map(|s| s.to_ascii_lowercase()),
            format: raw.format,
            description: raw.description,
            licence: raw.licence,
            provenance: raw.provenance,
            input: raw.input,
            output: raw.output,
            default_threshold: raw.threshold.unwrap_or(DEFAULT_THRESHOLD),
            nms_iou: raw.nms_iou.unwrap_or(DEFAULT_NMS_IOU),
            classes,
        })
    }
}

/// Parses the `names` entry ultralytics writes into ONNX metadata, a Python
/// dict literal such as `{0: 'With Helmet', 1: 'Without Helmet'}`.
pub(crate) fn parse_ultralytics_names(text: &str) -> Option<Vec<String>> {
    let body = text.trim().strip_prefix('{')?.strip_suffix('}')?;
    let mut names: Vec<(usize, String)> = Vec::new();
    let mut rest = body.trim();
    while !rest.is_empty() {
        let (key, after) = rest.split_once(':')?;
        let idx: usize = key.trim().parse().ok()?;
        let after = after.trim_start();
        let quote = after.chars().next().filter(|c| *c == '\'' || *c == '"')?;
        let mut value = String::new();
        let mut chars = after[1..].char_indices();
        let mut end = None;
        while let Some((i, c)) = chars.next() {
            if c == '\\' {
                if let Some((_, n)) = chars.next() {
                    value.push(n);
                }
            } else if c == quote {
                end = Some(i + 2);
                break;
            } else {
                value.push(c);
            }
        }
        names.push((idx, value));
        rest = after[end?..].trim_start();
        rest = rest.strip_prefix(',').unwrap_or(rest).trim_start();
    }
    names.sort_by_key(|(i, _)| *i);
    if names.iter().enumerate().any(|(i, (k, _))| i != *k) {
        return None;
    }
    Some(names.into_iter().map(|(_, n)| n).collect())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(text: &str) -> Result<Manifest, InferError> {
        Manifest::parse(text, Path::new("/models/m.toml"))
    }

    #[test]
    fn file_alone_is_a_valid_manifest() {
        let m = parse("file = \"yolo.onnx\"\n").unwrap();
        assert_eq!(m.model_file, Path::new("/models/yolo.onnx"));
        assert_eq!(m.format, ModelFormat::Yolo);
        assert_eq!(m.input.pad, 114);
        assert_eq!(m.input.std, [255.0; 3]);
        assert_eq!(m.default_threshold, DEFAULT_THRESHOLD);
        assert!(m.classes.is_empty());
        assert_eq!(m.name, "yolo");
    }

    #[test]
    fn roles_and_thresholds_are_read_and_checked() {
        let m = parse(
            "file = \"a.onnx\"\n[[classes]]\nname = \"With Helmet\"\nrole = \"helmet\"\nthreshold = 0.3\n",
        )
        .unwrap();
        assert_eq!(m.classes[0].role, ClassRole::Helmet);
        assert_eq!(m.classes[0].threshold, Some(0.3));

        let err = parse("file = \"a.onnx\"\n[[classes]]\nname = \"x\"\nrole = \"unicorn\"\n")
            .unwrap_err();
        let msg = err.to_string();
        assert!(
            msg.contains("unicorn") && msg.contains("/models/m.toml"),
            "{msg}"
        );

        let err =
            parse("file = \"a.onnx\"\n[[classes]]\nname = \"x\"\nthreshold = 1.5\n").unwrap_err();
        assert!(err.to_string().contains("classes[0].threshold"), "{err}");

        let err = parse("file = \"a.onnx\"\nsha256 = \"abc\"\n").unwrap_err();
        assert!(err.to_string().contains("64 hex"), "{err}");

        let err = parse("sha256 = \"abc\"\n").unwrap_err();
        assert!(err.to_string().contains("file"), "{err}");

        let err = parse("file = \"a.onnx\"\n[input]\ncolour = \"rgb\"\n").unwrap_err();
        assert!(err.to_string().contains("colour"), "{err}");
    }

    #[test]
    fn ultralytics_metadata_names_parse() {
        assert_eq!(
            parse_ultralytics_names("{0: 'With Helmet', 1: 'Without Helmet'}").unwrap(),
            vec!["With Helmet", "Without Helmet"]
        );
        assert_eq!(
            parse_ultralytics_names("{0: \"it's\", 1: 'a, b: c'}").unwrap(),
            vec!["it's", "a, b: c"]
        );
        assert_eq!(parse_ultralytics_names("{}").unwrap(), Vec::<String>::new());
        assert!(parse_ultralytics_names("[1, 2]").is_none());
        assert!(parse_ultralytics_names("{1: 'a'}").is_none());
    }
}
