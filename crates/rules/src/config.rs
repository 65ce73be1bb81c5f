//! Site config: one TOML file per site, one `[[camera]]` table per camera.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use roadwarden_track::TrackerConfig;
use roadwarden_types::{BBox, CameraId, ClassRole};
use serde::{Deserialize, Serialize};
use thiserror::Error;

use crate::geometry::{Point, StopLine};

/// A config that cannot work. Every message names the camera and the key.
#[derive(Debug, Error, Clone, PartialEq)]
pub enum ConfigError {
    #[error("{}: cannot read site config: {reason}", path.display())]
    Unreadable { path: PathBuf, reason: String },
    #[error("site config is not valid TOML: {0}")]
    Toml(String),
    #[error("site config has no [[camera]] table")]
    NoCamera,
    #[error("camera {camera}: {reason}")]
    Parse { camera: String, reason: String },
    #[error("camera `{camera}`: key `{key}`: {reason}")]
    Invalid {
        camera: String,
        key: String,
        reason: String,
    },
    #[error("camera `{0}` is configured twice (key `id`)")]
    DuplicateCamera(String),
}

/// Where a camera's frames come from.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SourceSpec {
    /// A file path or an `rtsp://` URL; the command line may override it.
    pub url: Option<String>,
    /// GStreamer decoder element(s); default `decodebin`.
    pub decoder: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ModelsConfig {
    /// Manifest of the head detector (`With Helmet` / `Without Helmet`).
    pub helmet: PathBuf,
    /// Manifest of a two-wheeler detector (FastestDet); when set, only heads on a two-wheeler count and the
    /// red-light rule follows two-wheelers.
    pub two_wheeler: Option<PathBuf>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum BeforeSide {
    Left,
    Right,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct StopLineConfig {
    /// First end of the line, image pixels.
    pub a: [f32; 2],
    /// Second end.
    pub b: [f32; 2],
    /// The approach side, as seen looking from `a` to `b` (image y grows downwards).
    pub before: BeforeSide,
    /// Jitter band around the line, pixels (default 3).
    #[serde(default = "default_tolerance")]
    pub tolerance_px: f32,
}

fn default_tolerance() -> f32 {
    3.0
}

impl StopLineConfig {
    pub fn line(&self) -> StopLine {
        StopLine::new(
            Point::new(self.a[0], self.a[1]),
            Point::new(self.b[0], self.b[1]),
            self.before == BeforeSide::Left,
            self.tolerance_px,
        )
    }
}

/// A polygon where the rules apply.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Zone {
    pub name: String,
    pub points: Vec<[f32; 2]>,
}

impl Zone {
    pub fn polygon(&self) -> Vec<Point> {
        self.points.iter().map(|p| Point::new(p[0], p[1])).collect()
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum SignalSource {
    /// The colour of the lit lamp in the signal-head ROI(s).
    Video,
    /// A controller feed (HTTP POST / MQTT); `unknown` while it is stale.
    External,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SignalConfig {
    pub source: SignalSource,
    /// Signal-head ROIs `[x1, y1, x2, y2]`, image pixels (required for `video`). When several disagree the
    /// state is `unknown`.
    #[serde(default)]
    pub rois: Vec<[f32; 4]>,
    /// A change of state needs this many consecutive frames that agree (default 2).
    #[serde(default = "default_hysteresis")]
    pub hysteresis_frames: u32,
    /// An external reading wins for this long after it arrives (default 2 s).
    #[serde(default = "default_fresh")]
    pub external_fresh_s: f64,
}

fn default_hysteresis() -> u32 {
    2
}
fn default_fresh() -> f64 {
    2.0
}

impl SignalConfig {
    pub fn roi_boxes(&self) -> Vec<BBox> {
        self.rois
            .iter()
            .map(|r| BBox::new(r[0], r[1], r[2], r[3]))
            .collect()
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct HelmetParams {
    /// Fire when at least `min_votes` of the last `window` observations of a head are `Without Helmet`.
    pub min_votes: u32,
    pub window: u32,
    /// The head box's smaller side must be at least this many pixels for an observation to count.
    pub min_head_px: f32,
    /// Only heads on a two-wheeler count (default: whenever a two-wheeler model is configured).
    pub require_two_wheeler: Option<bool>,
}

impl Default for HelmetParams {
    fn default() -> Self {
        HelmetParams {
            min_votes: 3,
            window: 5,
            min_head_px: 16.0,
            require_two_wheeler: None,
        }
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct RedLightParams {
    /// The signal must have been red at least this long when the line is crossed (default 0.5 s).
    pub grace_s: f64,
    /// Without a two-wheeler model, a rider's box is estimated from its head: it reaches this many head
    /// heights below the head (default 4).
    pub body_heads: f32,
}

impl Default for RedLightParams {
    fn default() -> Self {
        RedLightParams {
            grace_s: 0.5,
            body_heads: 4.0,
        }
    }
}

/// One camera, as written in the site file.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CameraConfig {
    pub id: CameraId,
    #[serde(default)]
    pub source: Option<SourceSpec>,
    /// Frame size `[width, height]` the geometry is drawn for.
    pub frame: [u32; 2],
    /// Frames per second analysed (default 5).
    #[serde(default = "default_fps")]
    pub analysis_fps: f64,
    pub models: ModelsConfig,
    pub stop_line: StopLineConfig,
    #[serde(default, rename = "zone")]
    pub zones: Vec<Zone>,
    pub signal: SignalConfig,
    /// Score thresholds by class role (`no_helmet = 0.5`); a role not named keeps the manifest's threshold.
    #[serde(default)]
    pub thresholds: BTreeMap<String, f32>,
    #[serde(default)]
    pub helmet: HelmetParams,
    #[serde(default)]
    pub red_light: RedLightParams,
    #[serde(default)]
    pub tracker: TrackerConfig,
    /// Heads are tracked on boxes scaled by this factor about their centre (buffered IoU, as in C-BIoU):
    /// a small head that moves more than its own width between analysed frames still overlaps its track.
    #[serde(default = "default_track_scale")]
    pub track_box_scale: f32,
}

fn default_track_scale() -> f32 {
    3.0
}

fn default_fps() -> f64 {
    5.0
}

impl CameraConfig {
    /// The threshold configured for a role, if any.
    pub fn threshold(&self, role: ClassRole) -> Option<f32> {
        self.thresholds.get(role.as_str()).copied()
    }

    pub fn require_two_wheeler(&self) -> bool {
        self.helmet
            .require_two_wheeler
            .unwrap_or(self.models.two_wheeler.is_some())
    }

    /// Checks what serde cannot: geometry inside the frame, known roles, sane parameters.
    pub fn validate(&self) -> Result<(), ConfigError> {
        let cam = self.id.to_string();
        let bad = |key: &str, reason: String| ConfigError::Invalid {
            camera: cam.clone(),
            key: key.to_string(),
            reason,
        };
        let [w, h] = self.frame;
        if w == 0 || h == 0 {
            return Err(bad("frame", format!("frame size {w}x{h} is empty")));
        }
        let (wf, hf) = (w as f32, h as f32);
        let inside = |p: [f32; 2]| {
            p[0].is_finite()
                && p[1].is_finite()
                && (0.0..=wf).contains(&p[0])
                && (0.0..=hf).contains(&p[1])
        };
        for (key, p) in [
            ("stop_line.a", self.stop_line.a),
            ("stop_line.b", self.stop_line.b),
        ] {
            if !inside(p) {
                return Err(bad(
                    key,
                    format!("point ({}, {}) is outside the {w}x{h} frame", p[0], p[1]),
                ));
            }
        }
        if self.stop_line.a == self.stop_line.b {
            return Err(bad("stop_line", "its two ends are the same point".into()));
        }
        if !(self.stop_line.tolerance_px.is_finite() && self.stop_line.tolerance_px >= 0.0) {
            return Err(bad(
                "stop_line.tolerance_px",
                "must be a non-negative number".into(),
            ));
        }
        for (i, z) in self.zones.iter().enumerate() {
            let key = format!("zone[{i}].points");
            if z.points.len() < 3 {
                return Err(bad(
                    &key,
                    format!("zone `{}` needs at least 3 points", z.name),
                ));
            }
            if let Some(p) = z.points.iter().find(|p| !inside(**p)) {
                return Err(bad(
                    &key,
                    format!(
                        "point ({}, {}) of zone `{}` is outside the {w}x{h} frame",
                        p[0], p[1], z.name
                    ),
                ));
            }
        }
        for (i, r) in self.signal.rois.iter().enumerate() {
            let key = format!("signal.rois[{i}]");
            if !(inside([r[0], r[1]]) && inside([r[2], r[3]])) {
                return Err(bad(
                    &key,
                    format!(
                        "ROI [{}, {}, {}, {}] is outside the {w}x{h} frame",
                        r[0], r[1], r[2], r[3]
                    ),
                ));
            }
            if r[2] - r[0] < 2.0 || r[3] - r[1] < 2.0 {
                return Err(bad(
                    &key,
                    "ROI must be x1 < x2 and y1 < y2, at least 2 pixels each way".into(),
                ));
            }
        }
        if self.signal.source == SignalSource::Video && self.signal.rois.is_empty() {
            return Err(bad(
                "signal.rois",
                "a video signal source needs at least one ROI".into(),
            ));
        }
        if self.signal.hysteresis_frames == 0 {
            return Err(bad("signal.hysteresis_frames", "must be at least 1".into()));
        }
        if !(self.signal.external_fresh_s.is_finite() && self.signal.external_fresh_s > 0.0) {
            return Err(bad(
                "signal.external_fresh_s",
                "must be a positive number of seconds".into(),
            ));
        }
        for (role, t) in &self.thresholds {
            let key = format!("thresholds.{role}");
            if !ClassRole::ALL.iter().any(|r| r.as_str() == role) {
                let known: Vec<_> = ClassRole::ALL.iter().map(|r| r.as_str()).collect();
                return Err(bad(
                    &key,
                    format!("unknown class role `{role}` (known: {})", known.join(", ")),
                ));
            }
            if !(t.is_finite() && (0.0..=1.0).contains(t)) {
                return Err(bad(&key, format!("threshold {t} is not in 0..1")));
            }
        }
        if !(self.analysis_fps.is_finite() && self.analysis_fps > 0.0) {
            return Err(bad("analysis_fps", "must be a positive number".into()));
        }
        let hp = &self.helmet;
        if hp.window == 0 || hp.min_votes == 0 || hp.min_votes > hp.window {
            return Err(bad(
                "helmet.min_votes",
                format!(
                    "needs 1 <= min_votes ({}) <= window ({})",
                    hp.min_votes, hp.window
                ),
            ));
        }
        if !(hp.min_head_px.is_finite() && hp.min_head_px >= 0.0) {
            return Err(bad(
                "helmet.min_head_px",
                "must be a non-negative number".into(),
            ));
        }
        if self.require_two_wheeler() && self.models.two_wheeler.is_none() {
            return Err(bad(
                "helmet.require_two_wheeler",
                "is true but no `models.two_wheeler` is configured".into(),
            ));
        }
        if !(self.red_light.grace_s.is_finite() && self.red_light.grace_s >= 0.0) {
            return Err(bad(
                "red_light.grace_s",
                "must be a non-negative number of seconds".into(),
            ));
        }
        if !(self.red_light.body_heads.is_finite() && self.red_light.body_heads > 0.0) {
            return Err(bad("red_light.body_heads", "must be positive".into()));
        }
        if !(self.track_box_scale.is_finite() && (1.0..=10.0).contains(&self.track_box_scale)) {
            return Err(bad("track_box_scale", "must be between 1 and 10".into()));
        }
        self.tracker
            .validate()
            .map_err(|e| bad("tracker", e.to_string()))?;
        Ok(())
    }

    /// Resolves relative model paths against `base` (the site file's folder).
    fn resolve(&mut self, base: &Path) {
        for p in std::iter::once(&mut self.models.helmet).chain(self.models.two_wheeler.as_mut()) {
            if p.is_relative() {
                *p = base.join(&*p);
            }
        }
    }
}

/// A whole site: its cameras.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct SiteConfig {
    pub cameras: Vec<CameraConfig>,
}

impl SiteConfig {
    /// Parses and validates site TOML. Relative model paths stay as written.
    pub fn parse(text: &str) -> Result<SiteConfig, ConfigError> {
        let doc: toml::Table = text
            .parse()
            .map_err(|e: toml::de::Error| ConfigError::Toml(e.message().to_string()))?;
        for key in doc.keys() {
            if key != "camera" {
                return Err(ConfigError::Toml(format!(
                    "unknown top-level key `{key}` (expected [[camera]] tables)"
                )));
            }
        }
        let Some(list) = doc.get("camera").and_then(|v| v.as_array()) else {
            return Err(ConfigError::NoCamera);
        };
        if list.is_empty() {
            return Err(ConfigError::NoCamera);
        }
        let mut cameras: Vec<CameraConfig> = Vec::new();
        for (i, v) in list.iter().enumerate() {
            let name = v
                .get("id")
                .and_then(|id| id.as_str())
                .map(|s| format!("`{s}`"))
                .unwrap_or_else(|| format!("#{} (no `id`)", i + 1));
            let cam: CameraConfig =
                v.clone()
                    .try_into()
                    .map_err(|e: toml::de::Error| ConfigError::Parse {
                        camera: name.clone(),
                        reason: e.message().to_string(),
                    })?;
            cam.validate()?;
            if cameras.iter().any(|c| c.id == cam.id) {
                return Err(ConfigError::DuplicateCamera(cam.id.to_string()));
            }
            cameras.push(cam);
        }
        Ok(SiteConfig { cameras })
    }

    /// Reads, parses and validates a site file; model paths are resolved against its folder.
    pub fn load(path: &Path) -> Result<SiteConfig, ConfigError> {
        let text = std::fs::read_to_string(path).map_err(|e| ConfigError::Unreadable {
            path: path.to_path_buf(),
            reason: e.to_string(),
        })?;
        let mut site = SiteConfig::parse(&text)?;
        let base = path.parent().unwrap_or(Path::new("."));
        for c in &mut site.cameras {
            c.resolve(base);
        }
        Ok(site)
    }

    pub fn camera(&self, id: &str) -> Option<&CameraConfig> {
        self.cameras.iter().find(|c| c.id.as_str() == id)
    }
}
