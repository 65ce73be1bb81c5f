//! Site config: one TOML file per site, one `[[camera]]` table per camera.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use roadwarden_track::TrackerConfig;
use roadwarden_types::{BBox, CameraId, ClassRole};
use serde::{Deserialize, Serialize};
use thiserror::Error;

use crate::geometry::{Point, StopLine};
use crate::observation::VehicleClass;
use crate::signal::{Lamp, LampParams};

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
    #[error("key `inference.{key}`: {reason}")]
    Inference { key: &'static str, reason: String },
    #[error("key `nats.{key}`: {reason}")]
    Nats { key: &'static str, reason: String },
    #[error("camera `{0}` is configured twice (key `id`)")]
    DuplicateCamera(String),
    #[error("camera `{camera}`: key `{key}`: model manifest {} does not exist", path.display())]
    MissingModel {
        camera: String,
        key: &'static str,
        path: PathBuf,
    },
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
    /// Manifest of a licence-plate detector (e.g. `models/hyperlpr3-plate-y5fu-320.toml`): run once per
    /// violation on the offender's vehicle, its best plate becomes the evidence's plate crop and the
    /// suggested read (never the confirmed plate).
    pub plate: Option<PathBuf>,
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
    /// The lit lamp of the signal head(s) in the video: one box per lamp (`[[camera.signal.head]]`), or
    /// the older single box per head (`rois`, read by hue).
    Video,
    /// A controller feed (HTTP POST / MQTT); `unknown` while it is stale.
    External,
}

/// One signal head, one box `[x1, y1, x2, y2]` (image pixels) per lamp, drawn on the lamp's lens. At
/// least two lamps; which one is lit is judged by position, each lamp against its own unlit level.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SignalHeadConfig {
    pub red: Option<[f32; 4]>,
    pub amber: Option<[f32; 4]>,
    pub green: Option<[f32; 4]>,
}

impl SignalHeadConfig {
    /// The configured lamps with their boxes, red, amber, green.
    pub fn lamps(&self) -> Vec<(Lamp, BBox)> {
        [
            (Lamp::Red, self.red),
            (Lamp::Amber, self.amber),
            (Lamp::Green, self.green),
        ]
        .into_iter()
        .filter_map(|(l, r)| r.map(|r| (l, BBox::new(r[0], r[1], r[2], r[3]))))
        .collect()
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SignalConfig {
    pub source: SignalSource,
    /// Signal heads by lamp position (`[[camera.signal.head]]`, required for `video` unless `rois` is
    /// given). When several heads disagree the state is `unknown`.
    #[serde(default, rename = "head")]
    pub heads: Vec<SignalHeadConfig>,
    /// Fallback, the older form: one box `[x1, y1, x2, y2]` per head, read by the hue of its brightest
    /// pixels. A bright background behind the head or a washed-out lamp reads `unknown` and an orange
    /// amber lamp can read red: use `head` tables where you can. Not together with `head`.
    #[serde(default)]
    pub rois: Vec<[f32; 4]>,
    /// A change of state needs this many consecutive frames that agree (default 2).
    #[serde(default = "default_hysteresis")]
    pub hysteresis_frames: u32,
    /// An external reading wins for this long after it arrives (default 2 s).
    #[serde(default = "default_fresh")]
    pub external_fresh_s: f64,
    /// `head` lamps: a lamp is lit when its level (mean colourfulness of its box, 0..255) is at least
    /// this much above its own unlit level (default 12) ...
    #[serde(default = "default_lamp_contrast")]
    pub lamp_min_contrast: f32,
    /// ... and at least this many times as far above it as any other lamp of the head (default 2).
    #[serde(default = "default_lamp_dominance")]
    pub lamp_dominance: f32,
}

fn default_hysteresis() -> u32 {
    2
}
fn default_fresh() -> f64 {
    2.0
}
fn default_lamp_contrast() -> f32 {
    LampParams::default().min_contrast
}
fn default_lamp_dominance() -> f32 {
    LampParams::default().dominance
}

impl SignalConfig {
    /// The older single-box ROIs (`rois`).
    pub fn roi_boxes(&self) -> Vec<BBox> {
        self.rois
            .iter()
            .map(|r| BBox::new(r[0], r[1], r[2], r[3]))
            .collect()
    }

    pub fn lamp_params(&self) -> LampParams {
        LampParams {
            min_contrast: self.lamp_min_contrast,
            dominance: self.lamp_dominance,
        }
    }

    /// Every box with its key (`signal.head[0].red`, `signal.rois[1]`).
    fn boxes_with_keys(&self) -> Vec<(String, [f32; 4])> {
        let mut out = Vec::new();
        for (i, h) in self.heads.iter().enumerate() {
            for (name, r) in [("red", h.red), ("amber", h.amber), ("green", h.green)] {
                if let Some(r) = r {
                    out.push((format!("signal.head[{i}].{name}"), r));
                }
            }
        }
        for (i, r) in self.rois.iter().enumerate() {
            out.push((format!("signal.rois[{i}]"), *r));
        }
        out
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
    /// Only riders seen on a two-wheeler count, for both rules (default: whenever a two-wheeler model is
    /// configured). A head counts as on one when it rides a two-wheeler box, a rider-with-vehicle box, or a
    /// person box that sits on a two-wheeler box. `false` with a two-wheeler model: a head (helmet rule)
    /// or a person box with a rider's head (red light) is judged with no two-wheeler box, as riders the
    /// detector calls `person` are; pedestrians are then judged too.
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
    /// heights below the head (default 4). With one, riders are followed by their vehicle's (or their
    /// rider-and-vehicle) box and never by a head estimate.
    pub body_heads: f32,
    /// The vehicle classes judged (default: all of `two_wheeler`, `car`, `bus`, `truck` with a two-wheeler
    /// model, which finds all four (FastestDet); riders by their heads alone without one). A person seen
    /// sitting on a two-wheeler is a `two_wheeler`.
    pub classes: Option<Vec<VehicleClass>>,
    /// The approach area: a polygon `[[x, y], ...]` over the lanes before the line (the contra-flow lane
    /// included). A vehicle crosses when its ground point moves from inside it to past the line's
    /// infinite extension (within the polygon's reach along the line), so riders beyond the end of the
    /// drawn line or on the contra-flow side count. Unset: the drawn line only (its segment, as before).
    pub approach: Option<Vec<[f32; 2]>>,
    /// A crossing needs consistent displacement towards and past the line over this many analysed
    /// frames of the track (default 3, 2..=10): a box that jumps (a neighbour's box, a switch between
    /// detections) while the vehicle stands still is no crossing.
    pub min_frames: u32,
}

impl Default for RedLightParams {
    fn default() -> Self {
        RedLightParams {
            grace_s: 0.5,
            body_heads: 4.0,
            classes: None,
            approach: None,
            min_frames: 3,
        }
    }
}

impl RedLightParams {
    /// The approach polygon, when configured.
    pub fn approach_polygon(&self) -> Option<Vec<Point>> {
        self.approach
            .as_ref()
            .map(|ps| ps.iter().map(|p| Point::new(p[0], p[1])).collect())
    }
}

/// Per-camera inference gating (all off by default). Both gates work on the camera's *rule region*: the
/// stop line widened by `tolerance_px + margin_px` on each side (and past its ends), plus every zone grown by
/// `margin_px`. Where zones are configured the rules act inside them only; without zones they act on the
/// whole frame, and a gated camera then judges only what passes through the rule region.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct GatingConfig {
    /// Skip the detectors on frames where nothing moves in the rule region (OpenCV MOG2 background
    /// subtraction on a downscaled frame); the trackers coast and the signal and rules still see the frame.
    pub motion: bool,
    /// Width in pixels the frame is downscaled to for background subtraction (default 160).
    pub motion_width: u32,
    /// A frame has motion when at least this fraction of the rule region's downscaled pixels is foreground,
    /// in (0, 1) (default 0.004).
    pub motion_min_area: f32,
    /// Frames still analysed after the last frame with motion (hangover, default 4).
    pub motion_hold_frames: u32,
    /// MOG2 history, in analysed frames (default 50).
    pub motion_history: u32,
    /// MOG2 variance threshold (squared Mahalanobis distance, default 16).
    pub motion_var_threshold: f64,
    /// Run the detectors whose input size follows the image (dynamic-shape models such as the helmet
    /// YOLO) on the rectangle around the rule region only, at the whole frame's scale; boxes are mapped
    /// back to frame pixels. Fixed-size models (FastestDet) keep the whole frame: a crop would cost them
    /// the same work and change their scale.
    pub roi_crop: bool,
    /// Pixels the rule region reaches beyond the stop line and zones (default 160: on the generated
    /// scenes of crates/pipeline/tests/scenes.rs, 96 and 128 lost a violation or added a false alarm; a
    /// rider needs several analysed frames inside the region for the helmet votes and the crossing).
    pub margin_px: f32,
    /// Run the helmet model only around the heads it is following: the union of the head tracks' next
    /// boxes (their Kalman prediction) grown by `follow_margin_px`, inside the rule region (with
    /// `roi_crop`) or the frame; a frame with no head to follow runs no helmet inference. Every
    /// `follow_scan_frames`-th analysed frame looks at the whole region (or frame) to find new heads.
    pub follow: bool,
    /// Pixels each followed head's predicted box grows by on every side (default 48).
    pub follow_margin_px: f32,
    /// One analysed frame in this many scans the whole region for new heads (default 6, at least 1;
    /// 1 scans every frame, which is `roi_crop` alone). A new head is found within this many analysed
    /// frames (1.5 s at 4 fps): lower it where riders cross the region faster than that.
    pub follow_scan_frames: u32,
}

impl Default for GatingConfig {
    fn default() -> Self {
        GatingConfig {
            motion: false,
            motion_width: 160,
            motion_min_area: 0.004,
            motion_hold_frames: 4,
            motion_history: 50,
            motion_var_threshold: 16.0,
            roi_crop: false,
            margin_px: 160.0,
            follow: false,
            follow_margin_px: 48.0,
            follow_scan_frames: 6,
        }
    }
}

impl GatingConfig {
    /// Whether any gate is on.
    pub fn enabled(&self) -> bool {
        self.motion || self.roi_crop || self.follow
    }

    /// The checks of [`CameraConfig::validate`] for `[camera.gating]`: the key and the reason.
    fn check(&self, frame_width: u32) -> Result<(), (&'static str, String)> {
        if !(16..=frame_width.max(16)).contains(&self.motion_width) {
            return Err((
                "gating.motion_width",
                format!("must be between 16 and the frame width ({frame_width})"),
            ));
        }
        let a = self.motion_min_area;
        if !(a.is_finite() && a > 0.0 && a < 1.0) {
            return Err(("gating.motion_min_area", "must be in (0,1)".into()));
        }
        if self.motion_hold_frames > 10_000 {
            return Err((
                "gating.motion_hold_frames",
                "must be at most 10000 frames".into(),
            ));
        }
        let v = self.motion_var_threshold;
        if !(v.is_finite() && v > 0.0) {
            return Err(("gating.motion_var_threshold", "must be positive".into()));
        }
        for (key, px) in [
            ("gating.margin_px", self.margin_px),
            ("gating.follow_margin_px", self.follow_margin_px),
        ] {
            if !(px.is_finite() && px >= 0.0) {
                return Err((key, "must be a non-negative number of pixels".into()));
            }
        }
        for (key, frames) in [
            ("gating.motion_history", self.motion_history),
            ("gating.follow_scan_frames", self.follow_scan_frames),
        ] {
            if !(1..=10_000).contains(&frames) {
                return Err((key, "must be between 1 and 10000 frames".into()));
            }
        }
        Ok(())
    }
}

/// Two-stage head detection (`[camera.heads]`, off by default): besides the helmet model's run on the
/// frame, crop around each rider (a `person` or `two_wheeler` box of the two-wheeler model on this frame,
/// and the two-wheeler tracks' predicted boxes), upscale each crop into a `crop_input` square and run the
/// helmet model on all crops in one batch; heads found there join the frame's (crates/pipeline/src/heads.rs).
/// Small heads (16-40 px at CCTV scale) are what the single run misses. Needs `models.two_wheeler`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct HeadsConfig {
    pub two_stage: bool,
    /// Each crop is the rider's box (a two-wheeler's box first extended upward by its own height, where
    /// its rider sits) scaled by this factor about its centre, 1 to 4 (default 1.5).
    pub crop_scale: f32,
    /// Side of the square network input every crop is letterboxed into, a multiple of 32 from 64 to 1280
    /// (default 256).
    pub crop_input: u32,
    /// At most this many crops a frame, smallest riders first (default 12, 1 to 64).
    pub max_crops: u32,
}

impl Default for HeadsConfig {
    fn default() -> Self {
        HeadsConfig {
            two_stage: false,
            crop_scale: 1.5,
            crop_input: 256,
            max_crops: 12,
        }
    }
}

impl HeadsConfig {
    /// The checks of [`CameraConfig::validate`] for `[camera.heads]`: the key and the reason.
    fn check(&self, has_two_wheeler_model: bool) -> Result<(), (&'static str, String)> {
        let k = self.crop_scale;
        if !(k.is_finite() && (1.0..=4.0).contains(&k)) {
            return Err(("heads.crop_scale", "must be between 1 and 4".into()));
        }
        if !(64..=1280).contains(&self.crop_input) || !self.crop_input.is_multiple_of(32) {
            return Err((
                "heads.crop_input",
                "must be a multiple of 32 from 64 to 1280".into(),
            ));
        }
        if !(1..=64).contains(&self.max_crops) {
            return Err(("heads.max_crops", "must be between 1 and 64".into()));
        }
        if self.two_stage && !has_two_wheeler_model {
            return Err((
                "heads.two_stage",
                "needs `models.two_wheeler` (its person and two-wheeler boxes are where the crops go)"
                    .into(),
            ));
        }
        Ok(())
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
    /// Motion gating and ROI-crop inference (off unless configured).
    #[serde(default)]
    pub gating: GatingConfig,
    /// Two-stage head detection (off unless configured).
    #[serde(default)]
    pub heads: HeadsConfig,
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

    /// The vehicle classes the red-light rule judges (`red_light.classes`, or its default).
    pub fn red_light_classes(&self) -> Vec<VehicleClass> {
        match (&self.red_light.classes, &self.models.two_wheeler) {
            (Some(c), _) => c.clone(),
            (None, Some(_)) => VehicleClass::ALL.to_vec(),
            (None, None) => vec![VehicleClass::TwoWheeler],
        }
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
        // The id is a path segment of the API (`/api/cameras/{id}`, beside `/api/cameras/reload`).
        let id_ok = !cam.is_empty()
            && cam.len() <= 64
            && cam
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.'))
            && !cam.starts_with('.');
        if !id_ok {
            return Err(bad(
                "id",
                "use 1-64 of A-Z a-z 0-9 - _ . (not starting with a dot)".into(),
            ));
        }
        if cam == "reload" {
            return Err(bad(
                "id",
                "`reload` is reserved by the API (POST /api/cameras/reload)".into(),
            ));
        }
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
        for (key, r) in self.signal.boxes_with_keys() {
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
        if !self.signal.heads.is_empty() && !self.signal.rois.is_empty() {
            return Err(bad(
                "signal.rois",
                "use either `[[camera.signal.head]]` tables (one box per lamp) or the older `rois` \
                 (one box per head), not both: move each head's box into a head table as \
                 red = [..], amber = [..], green = [..], one box on each lamp"
                    .into(),
            ));
        }
        for (i, head) in self.signal.heads.iter().enumerate() {
            if head.lamps().len() < 2 {
                return Err(bad(
                    &format!("signal.head[{i}]"),
                    "a head needs boxes for at least two of its lamps (red, amber, green): \
                     which lamp is lit is judged against the others"
                        .into(),
                ));
            }
        }
        if self.signal.source == SignalSource::Video
            && self.signal.heads.is_empty()
            && self.signal.rois.is_empty()
        {
            return Err(bad(
                "signal.head",
                "a video signal source needs a `[[camera.signal.head]]` table with one box per lamp \
                 (red = [x1, y1, x2, y2], amber = [..], green = [..]), or the older single-box \
                 `signal.rois`"
                    .into(),
            ));
        }
        let lp = self.signal.lamp_params();
        if !(lp.min_contrast.is_finite() && lp.min_contrast > 0.0 && lp.min_contrast < 255.0) {
            return Err(bad(
                "signal.lamp_min_contrast",
                "must be in (0, 255) (lamp levels are 0..255)".into(),
            ));
        }
        if !(lp.dominance.is_finite() && lp.dominance >= 1.0) {
            return Err(bad("signal.lamp_dominance", "must be at least 1".into()));
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
        if !(2..=10).contains(&self.red_light.min_frames) {
            return Err(bad(
                "red_light.min_frames",
                "must be between 2 and 10 analysed frames".into(),
            ));
        }
        if let Some(poly) = &self.red_light.approach {
            if poly.len() < 3 {
                return Err(bad(
                    "red_light.approach",
                    "a polygon needs at least 3 points".into(),
                ));
            }
            if let Some(p) = poly.iter().find(|p| !inside(**p)) {
                return Err(bad(
                    "red_light.approach",
                    format!("point ({}, {}) is outside the {w}x{h} frame", p[0], p[1]),
                ));
            }
        }
        let vehicles = self
            .red_light
            .classes
            .iter()
            .flatten()
            .any(|c| *c != VehicleClass::TwoWheeler);
        if vehicles && self.models.two_wheeler.is_none() {
            return Err(bad(
                "red_light.classes",
                "cars, buses and trucks need a `models.two_wheeler` road-user model (FastestDet); \
                 set `classes = [\"two_wheeler\"]` without one"
                    .into(),
            ));
        }
        if !(self.track_box_scale.is_finite() && (1.0..=10.0).contains(&self.track_box_scale)) {
            return Err(bad("track_box_scale", "must be between 1 and 10".into()));
        }
        self.tracker
            .validate()
            .map_err(|e| bad("tracker", e.to_string()))?;
        self.gating
            .check(w)
            .map_err(|(key, reason)| bad(key, reason))?;
        self.heads
            .check(self.models.two_wheeler.is_some())
            .map_err(|(key, reason)| bad(key, reason))?;
        Ok(())
    }

    /// Resolves relative model paths against `base` (the site file's folder).
    fn resolve(&mut self, base: &Path) {
        for p in std::iter::once(&mut self.models.helmet)
            .chain(self.models.two_wheeler.as_mut())
            .chain(self.models.plate.as_mut())
        {
            if p.is_relative() {
                *p = base.join(&*p);
            }
        }
    }
}

/// `[inference]`: how the site's cameras run their models. With `batch`, every camera's inputs of a
/// model go to one shared batcher of that model (one session, batches of up to `max_batch` images
/// gathered within `max_wait_ms`); without it (the default) each camera has sessions of its own.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct InferenceConfig {
    pub batch: bool,
    pub max_batch: usize,
    pub max_wait_ms: u64,
}

impl Default for InferenceConfig {
    fn default() -> Self {
        InferenceConfig {
            batch: false,
            max_batch: 8,
            max_wait_ms: 5,
        }
    }
}

impl InferenceConfig {
    fn validate(&self) -> Result<(), ConfigError> {
        if !(1..=256).contains(&self.max_batch) {
            return Err(ConfigError::Inference {
                key: "max_batch",
                reason: format!("{} is not within 1..=256", self.max_batch),
            });
        }
        if self.max_wait_ms > 1000 {
            return Err(ConfigError::Inference {
                key: "max_wait_ms",
                reason: format!(
                    "{} ms is more than 1000 ms (it delays every frame)",
                    self.max_wait_ms
                ),
            });
        }
        Ok(())
    }
}

/// `[nats]`: besides MQTT, every new violation goes to this NATS JetStream server's `stream`, on the
/// subject `<subject_prefix>.<camera>` (the stream is created on the subjects `<subject_prefix>.>` when
/// missing), each message with a `Nats-Msg-Id` header = the violation id so JetStream drops a redelivery.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct NatsConfig {
    /// `nats://host:port`.
    pub url: String,
    #[serde(default = "NatsConfig::default_stream")]
    pub stream: String,
    #[serde(default = "NatsConfig::default_subject_prefix")]
    pub subject_prefix: String,
}

impl NatsConfig {
    fn default_stream() -> String {
        "ROADWARDEN".into()
    }

    fn default_subject_prefix() -> String {
        "roadwarden.violations".into()
    }

    /// The subject of `camera`'s violations: the prefix, a dot, the camera id with the characters NATS
    /// gives a meaning to (`.`, `*`, `>`, white space) replaced by `_`.
    pub fn subject(&self, camera: &str) -> String {
        let safe: String = camera
            .chars()
            .map(|c| {
                if matches!(c, '.' | '*' | '>') || c.is_whitespace() || c.is_control() {
                    '_'
                } else {
                    c
                }
            })
            .collect();
        format!("{}.{safe}", self.subject_prefix)
    }

    fn validate(&self) -> Result<(), ConfigError> {
        let bad = |key, reason: String| Err(ConfigError::Nats { key, reason });
        let Some(rest) = self.url.strip_prefix("nats://") else {
            return bad(
                "url",
                format!(
                    "`{}` is not a nats:// URL (e.g. nats://127.0.0.1:4222)",
                    self.url
                ),
            );
        };
        if rest.is_empty() || rest.starts_with(':') {
            return bad("url", format!("`{}` names no host", self.url));
        }
        let name_ok = |s: &str| {
            !s.is_empty()
                && s.len() <= 64
                && s.chars()
                    .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_')
        };
        if !name_ok(&self.stream) {
            return bad(
                "stream",
                format!(
                    "`{}` is not a stream name (1 to 64 of A-Z, a-z, 0-9, - and _)",
                    self.stream
                ),
            );
        }
        let token_ok = |t: &str| {
            !t.is_empty()
                && t.chars()
                    .all(|c| !matches!(c, '*' | '>') && !c.is_whitespace() && !c.is_control())
        };
        if !self.subject_prefix.split('.').all(token_ok) {
            return bad(
                "subject_prefix",
                format!(
                    "`{}` is not a subject prefix (dot-separated tokens, no wildcards or spaces)",
                    self.subject_prefix
                ),
            );
        }
        Ok(())
    }
}

/// A whole site: its cameras, how they run their models, and where else its events go.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct SiteConfig {
    pub cameras: Vec<CameraConfig>,
    pub inference: InferenceConfig,
    /// `[nats]`, if any: violations also go to this JetStream stream.
    pub nats: Option<NatsConfig>,
}

impl SiteConfig {
    /// Parses and validates site TOML. Relative model paths stay as written.
    pub fn parse(text: &str) -> Result<SiteConfig, ConfigError> {
        let doc: toml::Table = text
            .parse()
            .map_err(|e: toml::de::Error| ConfigError::Toml(e.message().to_string()))?;
        for key in doc.keys() {
            if key != "camera" && key != "inference" && key != "nats" {
                return Err(ConfigError::Toml(format!(
                    "unknown top-level key `{key}` (expected [[camera]] tables, [inference] and [nats])"
                )));
            }
        }
        let inference: InferenceConfig = match doc.get("inference") {
            Some(v) => v.clone().try_into().map_err(|e: toml::de::Error| {
                ConfigError::Toml(format!("[inference]: {}", e.message()))
            })?,
            None => InferenceConfig::default(),
        };
        inference.validate()?;
        let nats: Option<NatsConfig> = match doc.get("nats") {
            Some(v) => Some(v.clone().try_into().map_err(|e: toml::de::Error| {
                ConfigError::Toml(format!("[nats]: {}", e.message()))
            })?),
            None => None,
        };
        if let Some(n) = &nats {
            n.validate()?;
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
        Ok(SiteConfig {
            cameras,
            inference,
            nats,
        })
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

    /// What a site file must pass before anything runs it: [`SiteConfig::load`] (keys, geometry, class
    /// roles) and every camera's model manifests present. The one check `config check`, `serve` and a
    /// reload share, so a file one of them refuses the others refuse too.
    pub fn load_checked(path: &Path) -> Result<SiteConfig, ConfigError> {
        let site = SiteConfig::load(path)?;
        site.check_files()?;
        Ok(site)
    }

    /// Every camera's model manifests exist (paths as resolved by [`SiteConfig::load`]).
    pub fn check_files(&self) -> Result<(), ConfigError> {
        for c in &self.cameras {
            let models = std::iter::once(("models.helmet", &c.models.helmet)).chain(
                c.models
                    .two_wheeler
                    .as_ref()
                    .map(|p| ("models.two_wheeler", p))
                    .into_iter()
                    .chain(c.models.plate.as_ref().map(|p| ("models.plate", p))),
            );
            for (key, p) in models {
                if !p.is_file() {
                    return Err(ConfigError::MissingModel {
                        camera: c.id.to_string(),
                        key,
                        path: p.clone(),
                    });
                }
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod gating_tests {
    use super::*;
    use roadwarden_testkit::site::{self, SiteText};

    static CAMERA: SiteText = SiteText::new(|| {
        site::camera("gate-north")
            .helmet("models/helmet-yolov12m.toml")
            .toml()
    });

    #[test]
    fn two_stage_heads_are_off_unless_configured_and_checked() {
        let site = SiteConfig::parse(&CAMERA).unwrap();
        assert_eq!(site.cameras[0].heads, HeadsConfig::default());
        assert!(!site.cameras[0].heads.two_stage);
        // Without a two-wheeler model there is nowhere to crop.
        let on = format!("{CAMERA}[camera.heads]\ntwo_stage = true\n");
        let err = SiteConfig::parse(&on).unwrap_err();
        assert!(err.to_string().contains("heads.two_stage"), "{err}");
        let with_wheels = CAMERA.replace(
            "helmet = \"models/helmet-yolov12m.toml\"",
            "helmet = \"models/helmet-yolov12m.toml\"\ntwo_wheeler = \"models/fastestdet-352.toml\"",
        );
        let on = format!("{with_wheels}[camera.heads]\ntwo_stage = true\ncrop_scale = 2.0\n");
        let site = SiteConfig::parse(&on).unwrap();
        assert!(site.cameras[0].heads.two_stage);
        assert_eq!(site.cameras[0].heads.crop_scale, 2.0);
        for (line, key) in [
            ("crop_scale = 0.5", "heads.crop_scale"),
            ("crop_input = 100", "heads.crop_input"),
            ("max_crops = 0", "heads.max_crops"),
        ] {
            let text = format!("{with_wheels}[camera.heads]\n{line}\n");
            let err = SiteConfig::parse(&text).unwrap_err();
            assert!(err.to_string().contains(key), "{line}: {err}");
        }
    }

    #[test]
    fn nats_is_off_unless_configured_and_checked() {
        assert_eq!(SiteConfig::parse(&CAMERA).unwrap().nats, None);
        let on = format!("{CAMERA}[nats]\nurl = \"nats://127.0.0.1:4222\"\n");
        let n = SiteConfig::parse(&on).unwrap().nats.expect("[nats]");
        assert_eq!(n.stream, "ROADWARDEN");
        assert_eq!(
            n.subject("gate.north *1"),
            "roadwarden.violations.gate_north__1"
        );
        for (lines, key) in [
            ("url = \"http://x:4222\"", "nats.url"),
            ("url = \"nats://\"", "nats.url"),
            ("url = \"nats://h:1\"\nstream = \"a.b\"", "nats.stream"),
            (
                "url = \"nats://h:1\"\nsubject_prefix = \"a.>\"",
                "nats.subject_prefix",
            ),
            (
                "url = \"nats://h:1\"\nsubject_prefix = \"a..b\"",
                "nats.subject_prefix",
            ),
            ("url = \"nats://h:1\"\ntopic = \"x\"", "[nats]"),
        ] {
            let err = SiteConfig::parse(&format!("{CAMERA}[nats]\n{lines}\n")).unwrap_err();
            assert!(err.to_string().contains(key), "{lines}: {err}");
        }
    }

    #[test]
    fn shared_batching_is_off_unless_configured_and_checked() {
        let site = SiteConfig::parse(&CAMERA).unwrap();
        assert_eq!(site.inference, InferenceConfig::default());
        assert!(!site.inference.batch);
        let on = format!("{CAMERA}[inference]\nbatch = true\nmax_batch = 4\n");
        let i = SiteConfig::parse(&on).unwrap().inference;
        assert!(i.batch && i.max_batch == 4 && i.max_wait_ms == 5);
        for (line, key) in [
            ("max_batch = 0", "inference.max_batch"),
            ("max_wait_ms = 5000", "inference.max_wait_ms"),
            ("bacth = true", "bacth"),
        ] {
            let text = format!("{CAMERA}[inference]\n{line}\n");
            let err = SiteConfig::parse(&text).unwrap_err();
            assert!(err.to_string().contains(key), "{line}: {err}");
        }
    }

    #[test]
    fn gating_is_off_unless_configured() {
        let site = SiteConfig::parse(&CAMERA).unwrap();
        let g = &site.cameras[0].gating;
        assert_eq!(g, &GatingConfig::default());
        assert!(!g.enabled() && !g.motion && !g.roi_crop);
        let on =
            format!("{CAMERA}[camera.gating]\nmotion = true\nroi_crop = true\nmargin_px = 64.0\n");
        let site = SiteConfig::parse(&on).unwrap();
        let g = &site.cameras[0].gating;
        assert!(g.motion && g.roi_crop && g.enabled());
        assert_eq!(g.margin_px, 64.0);
        assert_eq!(g.motion_hold_frames, 4, "unset keys keep their defaults");
        assert!(!g.follow && g.follow_scan_frames == 6 && g.follow_margin_px == 48.0);
        let follow = format!("{CAMERA}[camera.gating]\nfollow = true\nfollow_scan_frames = 3\n");
        let g = SiteConfig::parse(&follow).unwrap().cameras[0]
            .gating
            .clone();
        assert!(g.follow && g.enabled() && !g.roi_crop && !g.motion);
        assert_eq!(g.follow_scan_frames, 3);
    }

    #[test]
    fn bad_gating_values_name_the_key() {
        for (line, key, why) in [
            (
                "motion_min_area = 1.5",
                "gating.motion_min_area",
                "must be in (0,1)",
            ),
            (
                "motion_min_area = 0.0",
                "gating.motion_min_area",
                "must be in (0,1)",
            ),
            ("motion_width = 8", "gating.motion_width", "between 16"),
            (
                "motion_width = 1000",
                "gating.motion_width",
                "frame width (640)",
            ),
            ("motion_history = 0", "gating.motion_history", "between 1"),
            (
                "motion_var_threshold = -1.0",
                "gating.motion_var_threshold",
                "positive",
            ),
            ("margin_px = -3.0", "gating.margin_px", "non-negative"),
            (
                "follow_margin_px = -1.0",
                "gating.follow_margin_px",
                "non-negative",
            ),
            (
                "follow_scan_frames = 0",
                "gating.follow_scan_frames",
                "between 1",
            ),
        ] {
            let text = format!("{CAMERA}[camera.gating]\nmotion = true\n{line}\n");
            let msg = SiteConfig::parse(&text).unwrap_err().to_string();
            assert!(
                msg.contains("gate-north")
                    && msg.contains(&format!("key `{key}`"))
                    && msg.contains(why),
                "{line}: {msg}"
            );
        }
        let typo = format!("{CAMERA}[camera.gating]\nmotoin = true\n");
        let msg = SiteConfig::parse(&typo).unwrap_err().to_string();
        assert!(msg.contains("motoin"), "{msg}");
    }
}

#[cfg(test)]
mod signal_tests {
    use super::*;
    use roadwarden_testkit::site::{self, SiteText};

    static CAMERA: SiteText = SiteText::new(|| {
        site::camera("gate-north")
            .helmet("models/helmet-yolov12m.toml")
            .signal(site::Signal::Video {
                roi: None,
                hysteresis_frames: None,
            })
            .toml()
    });

    const HEAD: &str = "[[camera.signal.head]]\nred = [610.0, 17.0, 622.0, 29.0]\n\
                        amber = [610.0, 42.0, 622.0, 54.0]\ngreen = [610.0, 67.0, 622.0, 79.0]\n";

    #[test]
    fn a_head_table_gives_one_box_per_lamp() {
        let site = SiteConfig::parse(&format!("{CAMERA}{HEAD}")).unwrap();
        let s = &site.cameras[0].signal;
        assert!(s.rois.is_empty());
        let lamps = s.heads[0].lamps();
        assert_eq!(
            lamps.iter().map(|l| l.0).collect::<Vec<_>>(),
            Lamp::ALL.to_vec()
        );
        assert_eq!(lamps[1].1, BBox::new(610.0, 42.0, 622.0, 54.0));
        assert_eq!(s.lamp_params(), LampParams::default());
        // A two-lamp head (no amber) is fine; the older single box still parses.
        let two = format!(
            "{CAMERA}[[camera.signal.head]]\nred = [610.0, 17.0, 622.0, 29.0]\ngreen = [610.0, 67.0, 622.0, 79.0]\n"
        );
        assert_eq!(
            SiteConfig::parse(&two).unwrap().cameras[0].signal.heads[0]
                .lamps()
                .len(),
            2
        );
        let old = format!("{CAMERA}rois = [[600.0, 6.0, 632.0, 90.0]]\n");
        assert_eq!(
            SiteConfig::parse(&old).unwrap().cameras[0]
                .signal
                .rois
                .len(),
            1
        );
    }

    #[test]
    fn bad_signal_heads_name_the_key_and_the_fix() {
        for (text, key, why) in [
            (
                format!("{CAMERA}rois = [[600.0, 6.0, 632.0, 90.0]]\n{HEAD}"),
                "signal.rois",
                "not both",
            ),
            (
                format!("{CAMERA}[[camera.signal.head]]\nred = [610.0, 17.0, 622.0, 29.0]\n"),
                "signal.head[0]",
                "at least two",
            ),
            (
                format!(
                    "{CAMERA}{}",
                    HEAD.replace("[610.0, 42.0, 622.0, 54.0]", "[610.0, 42.0, 700.0, 54.0]")
                ),
                "signal.head[0].amber",
                "outside",
            ),
            (CAMERA.to_string(), "signal.head", "one box per lamp"),
            (
                format!("{}lamp_min_contrast = 0.0\n{HEAD}", CAMERA),
                "signal.lamp_min_contrast",
                "(0, 255)",
            ),
            (
                format!("{}lamp_dominance = 0.5\n{HEAD}", CAMERA),
                "signal.lamp_dominance",
                "at least 1",
            ),
        ] {
            let msg = SiteConfig::parse(&text).unwrap_err().to_string();
            assert!(
                msg.contains("gate-north")
                    && msg.contains(&format!("key `{key}`"))
                    && msg.contains(why),
                "{key}: {msg}"
            );
        }
        let typo = format!("{CAMERA}[[camera.signal.head]]\nread = [610.0, 17.0, 622.0, 29.0]\n");
        let msg = SiteConfig::parse(&typo).unwrap_err().to_string();
        assert!(msg.contains("read"), "{msg}");
    }
}
