//! One camera's frames through detectors, trackers, signal and rules.

use std::sync::Arc;
use std::time::{Duration, SystemTime};

use chrono::{DateTime, Utc};
use roadwarden_infer::{DetectOptions, Detector, InputShape, Runtime, ScoreMode};
use roadwarden_media::{CameraState, CameraSupervisor, FrameQueue, SourceConfig};
use roadwarden_rules::{
    CameraConfig, CameraRules, ClassThreshold, FrameObservation, TrackedObject,
};
use roadwarden_track::{Track, Tracker, TrackerConfig};
use roadwarden_types::{BBox, ClassRole, Detection, ImageView, SignalState, Violation};

use crate::PipelineError;
use crate::SharedInference;
use crate::frames::{FrameRing, ViolationFrames};
use crate::gating::{CropRect, Follow, Look, MotionGating, crop_scale, detector_crop};
use crate::heads::TwoStageHeads;
use crate::plates::PlateFinder;
use crate::signal::{SignalReading, VideoSignal};

/// Head detections below this still feed ByteTrack's second association; votes need the class threshold.
const HEAD_DETECT_FLOOR: f32 = 0.1;

/// Track ids of the road-user model's vehicle (car, bus, truck) and person trackers carry these bits,
/// so they never equal a two-wheeler track's id: the rules key road users by track id.
const VEHICLE_IDS: u64 = 1 << 40;
const PERSON_IDS: u64 = 1 << 41;

/// Under ROI crop, detections this close to a side of the crop inside the frame are dropped (cut objects).
const CROP_EDGE_PX: f32 = 1.0;

fn scale_box(b: &BBox, k: f32) -> BBox {
    let (cx, cy) = ((b.x1 + b.x2) / 2.0, (b.y1 + b.y2) / 2.0);
    BBox::from_cxcywh(cx, cy, b.width() * k, b.height() * k)
}

/// What one analysed frame gave.
#[derive(Debug, Clone)]
pub struct FrameReport {
    pub frame_index: u64,
    pub at: DateTime<Utc>,
    pub signal: SignalState,
    /// This frame's video reading of the signal head(s) before hysteresis, with each lamp's level
    /// (`None` when the signal is not read from video).
    pub signal_reading: Option<SignalReading>,
    /// The head tracks of this frame, and the road-user tracks (two-wheelers, persons, cars, buses,
    /// trucks: see `FrameObservation::two_wheelers`).
    pub heads: Vec<TrackedObject>,
    pub two_wheelers: Vec<TrackedObject>,
    pub violations: Vec<Violation>,
    /// Motion gating skipped the detectors on this frame (nothing moved in the rule region): the
    /// trackers coasted and the signal and rules still saw it.
    pub gated: bool,
    /// Network input (width, height) of the helmet detector on this frame (`None` when gated, or when
    /// `gating.follow` had no head to follow on a frame that was not a scan).
    pub helmet_input: Option<(u32, u32)>,
    /// Network input of the two-wheeler detector (`None` when gated or without one).
    pub two_wheeler_input: Option<(u32, u32)>,
}

/// What the runner hands its callback: each analysed frame, then once at the end of the stream the
/// violations still pending then (e.g. red-light crossings waiting for their window).
#[derive(Debug, Clone, Copy)]
pub enum RunnerEvent<'a> {
    /// An analysed frame, with the violations it completed.
    Frame(&'a FrameReport),
    /// The stream is over: the violations the rules completed at its end, and the signal then.
    EndOfStream {
        violations: &'a [Violation],
        signal: SignalState,
    },
}

impl<'a> RunnerEvent<'a> {
    /// The violations this event completed.
    pub fn violations(&self) -> &'a [Violation] {
        match self {
            RunnerEvent::Frame(r) => &r.violations,
            RunnerEvent::EndOfStream { violations, .. } => violations,
        }
    }

    /// The analysed frame, `None` at the end of the stream.
    pub fn frame(&self) -> Option<&'a FrameReport> {
        match self {
            RunnerEvent::Frame(r) => Some(r),
            RunnerEvent::EndOfStream { .. } => None,
        }
    }
}

impl FrameReport {
    /// Network input pixels this frame's inference ran on (all detectors), a measure of its work.
    pub fn inference_pixels(&self) -> u64 {
        [self.helmet_input, self.two_wheeler_input]
            .iter()
            .flatten()
            .map(|(w, h)| *w as u64 * *h as u64)
            .sum()
    }
}

/// One camera's detectors, trackers and rules.
pub struct CameraPipeline {
    config: CameraConfig,
    helmet: Detector,
    two_wheeler: Option<Detector>,
    head_tracker: Tracker,
    wheel_tracker: Tracker,
    video_signal: Option<VideoSignal>,
    /// Cars, buses and trucks (one class each), and persons, of the two-wheeler model: tracked apart
    /// from the two-wheelers so a rider's person box and motorbike box keep their own tracks.
    vehicle_tracker: Tracker,
    person_tracker: Tracker,
    /// Score thresholds of the `vehicle` and `person` roles (the site's, else the model's).
    road_thresholds: (f32, f32),
    rules: CameraRules,
    two_wheeler_threshold: Option<f32>,
    /// `[camera.gating]`: the motion gate, and the crops the helmet / two-wheeler detectors run on.
    motion: Option<MotionGating>,
    helmet_crop: Option<CropRect>,
    wheel_crop: Option<CropRect>,
    /// `gating.follow`: the helmet model's scan/follow plan (dynamic-size helmet models only).
    follow: Option<Following>,
    /// `[camera.heads] two_stage`: the helmet model also runs on crops around the riders.
    heads: Option<TwoStageHeads>,
    /// `models.plate`: the plate detector, run once per violation on the offender's vehicle.
    plates: Option<PlateFinder>,
}

/// `gating.follow` state: the plan, the area a scan covers, and the scale and crop alignment of the
/// helmet model on the whole frame.
struct Following {
    plan: Follow,
    area: CropRect,
    scale: f32,
    align: u32,
}

/// `det` again, with the letterbox target that runs `config`'s ROI crop at the whole frame's scale, and
/// that crop; `det` itself when it gets no crop (see [`detector_crop`]).
fn with_crop(
    det: Detector,
    config: &CameraConfig,
    runtime: &Runtime,
) -> Result<(Detector, Option<CropRect>), PipelineError> {
    let Some((crop, (tw, th))) = detector_crop(&det, config) else {
        return Ok((det, None));
    };
    Ok((det.with_input_size(tw, th, runtime)?, Some(crop)))
}

/// Runs `det` on `crop` of `image` (or the whole image) and maps the boxes to frame pixels; also
/// returns the network input size used.
fn detect_in(
    camera: &str,
    det: &mut Detector,
    image: &ImageView<'_>,
    crop: Option<&CropRect>,
    opts: &DetectOptions,
) -> Result<(Vec<Detection>, (u32, u32)), PipelineError> {
    let view = match crop {
        Some(c) => c.view(image).map_err(|e| PipelineError::Camera {
            camera: camera.to_string(),
            reason: format!("key `gating.roi_crop`: cannot crop {c:?} from the frame: {e}"),
        })?,
        None => *image,
    };
    let lb = det.letterbox(view.width(), view.height(), opts.shape);
    let mut dets = det.detect(&view, opts)?;
    if let Some(c) = crop {
        let frame = [image.width(), image.height()];
        dets.retain(|d| !c.cuts(&d.bbox, frame, CROP_EDGE_PX));
        for d in &mut dets {
            d.bbox = c.to_frame(&d.bbox);
        }
    }
    Ok((dets, (lb.width, lb.height)))
}

impl std::fmt::Debug for CameraPipeline {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("CameraPipeline")
            .field("camera", &self.config.id)
            .finish()
    }
}

fn camera_err(config: &CameraConfig, reason: String) -> PipelineError {
    PipelineError::Camera {
        camera: config.id.to_string(),
        reason,
    }
}

fn class_of_role(det: &Detector, role: ClassRole) -> Option<(usize, String)> {
    det.classes()
        .iter()
        .position(|c| c.role == role)
        .map(|i| (i, det.classes()[i].name.clone()))
}

impl CameraPipeline {
    /// Loads the camera's models and checks they fit its config (the helmet model must have a `no_helmet`
    /// class; the two-wheeler model a `two_wheeler` one).
    pub fn new(config: &CameraConfig, runtime: &Runtime) -> Result<CameraPipeline, PipelineError> {
        CameraPipeline::with_shared(config, runtime, None)
    }

    /// [`new`](Self::new), the models' inference on `shared`'s batchers (one per model, shared with the
    /// other cameras built with it) when given, else on sessions of this camera's own.
    pub fn with_shared(
        config: &CameraConfig,
        runtime: &Runtime,
        shared: Option<&SharedInference>,
    ) -> Result<CameraPipeline, PipelineError> {
        config.validate()?;
        let load = |manifest: &std::path::Path| match shared {
            Some(s) => s.detector(manifest, config.id.as_str(), runtime),
            None => Detector::load(manifest, runtime),
        };
        let helmet = load(&config.models.helmet)?;
        // The helmet model's scale on the whole frame, before an ROI crop replaces its input size.
        let helmet_scale = crop_scale(&helmet, config.frame);
        let (helmet, helmet_crop) = with_crop(helmet, config, runtime)?;
        let Some((nh, nh_name)) = class_of_role(&helmet, ClassRole::NoHelmet) else {
            return Err(camera_err(
                config,
                format!(
                    "key `models.helmet`: model {} has no class with role no_helmet",
                    config.models.helmet.display()
                ),
            ));
        };
        let no_helmet = ClassThreshold {
            value: config
                .threshold(ClassRole::NoHelmet)
                .unwrap_or_else(|| helmet.threshold(roadwarden_types::ClassId(nh))),
            name: nh_name,
        };
        let (two_wheeler, wheel_crop) = match &config.models.two_wheeler {
            Some(p) => {
                let (d, c) = with_crop(load(p)?, config, runtime)?;
                (Some(d), c)
            }
            None => (None, None),
        };
        let mut tw_threshold = None;
        let mut tw_class = None;
        let mut road_thresholds = (1.0, 1.0);
        if let Some(d) = &two_wheeler {
            let Some((i, name)) = class_of_role(d, ClassRole::TwoWheeler) else {
                return Err(camera_err(
                    config,
                    "key `models.two_wheeler`: model has no class with role two_wheeler".into(),
                ));
            };
            let value = config
                .threshold(ClassRole::TwoWheeler)
                .unwrap_or_else(|| d.threshold(roadwarden_types::ClassId(i)));
            tw_threshold = Some(value);
            tw_class = Some(ClassThreshold { name, value });
            let of_role = |role: ClassRole| {
                config.threshold(role).unwrap_or_else(|| {
                    class_of_role(d, role)
                        .map(|(i, _)| d.threshold(roadwarden_types::ClassId(i)))
                        .unwrap_or(1.0)
                })
            };
            road_thresholds = (of_role(ClassRole::Vehicle), of_role(ClassRole::Person));
        }
        let follow = match (config.gating.follow, helmet_scale) {
            (true, Some((scale, align))) => {
                let [w, h] = config.frame;
                Some(Following {
                    plan: Follow::new(
                        config.gating.follow_scan_frames,
                        config.gating.follow_margin_px,
                    ),
                    area: helmet_crop.unwrap_or(CropRect {
                        x: 0,
                        y: 0,
                        width: w & !1,
                        height: h & !1,
                    }),
                    scale,
                    align,
                })
            }
            (true, None) => {
                tracing::warn!(
                    camera = %config.id,
                    model = %config.models.helmet.display(),
                    "gating.follow is on but the helmet model's input size is fixed: it keeps the whole frame"
                );
                None
            }
            (false, _) => None,
        };
        let tracker_config = TrackerConfig {
            frame_rate: config.analysis_fps,
            ..config.tracker.clone()
        };
        tracker_config
            .validate()
            .map_err(|e| camera_err(config, format!("key `tracker`: {e}")))?;
        Ok(CameraPipeline {
            head_tracker: Tracker::new(tracker_config.clone()),
            vehicle_tracker: Tracker::new(TrackerConfig {
                per_class: true,
                ..tracker_config.clone()
            }),
            person_tracker: Tracker::new(tracker_config.clone()),
            road_thresholds,
            wheel_tracker: Tracker::new(tracker_config),
            rules: CameraRules::new(config, no_helmet, tw_class),
            video_signal: VideoSignal::for_camera(config),
            config: config.clone(),
            helmet,
            two_wheeler,
            two_wheeler_threshold: tw_threshold,
            motion: MotionGating::for_camera(config)?,
            helmet_crop,
            wheel_crop,
            follow,
            heads: TwoStageHeads::for_camera(&config.heads),
            plates: match &config.models.plate {
                Some(p) => Some(
                    PlateFinder::load(p, runtime)
                        .map_err(|e| camera_err(config, format!("key `models.plate`: {e}")))?,
                ),
                None => None,
            },
        })
    }

    pub fn config(&self) -> &CameraConfig {
        &self.config
    }

    /// Fills each violation's suggested plate (`plate_read`) with the plate detector of `models.plate`,
    /// when the camera has one; a failure is logged and leaves the violation without a plate.
    pub fn read_plates(&mut self, evidence: &mut [ViolationFrames]) {
        let Some(finder) = self.plates.as_mut() else {
            return;
        };
        for vf in evidence {
            if let Err(e) = finder.read_violation(vf) {
                tracing::warn!(violation = %vf.violation.id, "no plate read: {e}");
            }
        }
    }

    /// A controller's report of the signal (HTTP / MQTT feed).
    pub fn external_signal(&mut self, at: DateTime<Utc>, state: SignalState) {
        self.rules.signal_mut().observe_external(at, state);
    }

    fn objects(tracks: &[Track], det: &Detector) -> Vec<TrackedObject> {
        tracks
            .iter()
            .map(|t| {
                let role = det
                    .classes()
                    .get(t.class_id.0)
                    .map(|c| c.role)
                    .unwrap_or(ClassRole::Other);
                TrackedObject {
                    track_id: t.id.0,
                    state: t.state,
                    bbox: t.bbox,
                    class_id: t.class_id,
                    class_name: det.class_name(t.class_id).to_string(),
                    role,
                    score: t.score,
                    matched: t.frames_since_update == 0,
                }
            })
            .collect()
    }

    /// Analyses one frame.
    pub fn process(
        &mut self,
        frame_index: u64,
        at: DateTime<Utc>,
        image: &ImageView<'_>,
    ) -> Result<FrameReport, PipelineError> {
        let [w, h] = self.config.frame;
        if image.width() != w || image.height() != h {
            return Err(camera_err(
                &self.config,
                format!(
                    "key `frame`: configured for {w}x{h} but the source delivers {}x{}",
                    image.width(),
                    image.height()
                ),
            ));
        }
        let signal_reading = match &mut self.video_signal {
            Some(v) => {
                let reading = v.read(at, image)?;
                self.rules.signal_mut().observe_video(at, reading.state);
                Some(reading)
            }
            None => None,
        };
        // Motion gating: nothing moves in the rule region, so no inference; the trackers coast (their
        // confirmed tracks stay confirmed, keeping their ids) and the rules still see the frame, so the
        // signal timeline and the rules' timers advance.
        let run = match &mut self.motion {
            Some(m) => m.analyse(image)?,
            None => true,
        };
        if !run {
            self.head_tracker.coast();
            self.wheel_tracker.coast();
            self.vehicle_tracker.coast();
            self.person_tracker.coast();
            let obs = FrameObservation {
                frame_index,
                at,
                heads: Vec::new(),
                two_wheelers: Vec::new(),
            };
            let violations = self.rules.observe(&obs);
            return Ok(FrameReport {
                frame_index,
                at,
                signal: self.rules.signal().current(),
                signal_reading,
                heads: obs.heads,
                two_wheelers: obs.two_wheelers,
                violations,
                gated: true,
                helmet_input: None,
                two_wheeler_input: None,
            });
        }
        let opts = DetectOptions {
            score: ScoreMode::Fixed(
                HEAD_DETECT_FLOOR.min(self.config.tracker.track_low_thresh.max(0.01)),
            ),
            ..DetectOptions::default()
        };
        let camera = self.config.id.as_str();
        let k = self.config.track_box_scale;
        let look = match &mut self.follow {
            Some(f) => {
                let expected: Vec<BBox> = self
                    .head_tracker
                    .predicted()
                    .into_iter()
                    .map(|(_, _, b)| scale_box(&b, 1.0 / k))
                    .collect();
                f.plan.plan(&f.area, &expected, self.config.frame, f.align)
            }
            None => Look::Scan,
        };
        let (heads, helmet_input) = match look {
            Look::Scan => {
                let (d, input) = detect_in(
                    camera,
                    &mut self.helmet,
                    image,
                    self.helmet_crop.as_ref(),
                    &opts,
                )?;
                (d, Some(input))
            }
            Look::Around(c) => {
                let scale = self.follow.as_ref().map_or(1.0, |f| f.scale);
                let target = |v: u32| ((v as f32 * scale).round() as u32).max(1);
                let around = DetectOptions {
                    shape: InputShape::RectWithin {
                        width: target(c.width),
                        height: target(c.height),
                    },
                    ..opts
                };
                let (d, input) = detect_in(camera, &mut self.helmet, image, Some(&c), &around)?;
                (d, Some(input))
            }
            Look::Nothing => (Vec::new(), None),
        };
        let heads = match (&self.heads, &mut self.two_wheeler) {
            (Some(two), Some(riders)) => {
                let predicted: Vec<BBox> = self
                    .wheel_tracker
                    .predicted()
                    .into_iter()
                    .map(|(_, _, b)| b)
                    .collect();
                two.refine(&mut self.helmet, riders, &predicted, image, &opts, heads)?
            }
            _ => heads,
        };
        let buffered: Vec<Detection> = heads
            .iter()
            .map(|d| Detection {
                bbox: scale_box(&d.bbox, k),
                ..d.clone()
            })
            .collect();
        let mut head_tracks = self.head_tracker.update(&buffered);
        for t in &mut head_tracks {
            t.bbox = match t
                .last_detection
                .filter(|_| t.frames_since_update == 0)
                .and_then(|i| heads.get(i))
            {
                Some(d) => d.bbox,
                None => scale_box(&t.bbox, 1.0 / k),
            };
        }
        let mut wheel_tracks = Vec::new();
        let mut road = Vec::new();
        let mut two_wheeler_input = None;
        if let Some(d) = &mut self.two_wheeler {
            let (vehicle_min, person_min) = self.road_thresholds;
            let min = self
                .two_wheeler_threshold
                .unwrap_or(0.4)
                .min(vehicle_min)
                .min(person_min);
            let (found, input) = detect_in(
                camera,
                d,
                image,
                self.wheel_crop.as_ref(),
                &DetectOptions {
                    score: ScoreMode::Fixed(min),
                    ..DetectOptions::default()
                },
            )?;
            two_wheeler_input = Some(input);
            let role = |x: &Detection| d.classes().get(x.class_id.0).map(|c| c.role);
            let wheel_min = self.two_wheeler_threshold.unwrap_or(0.4);
            let of = |r: ClassRole, at_least: f32| -> Vec<Detection> {
                found
                    .iter()
                    .filter(|x| role(x) == Some(r) && x.score >= at_least)
                    .cloned()
                    .collect()
            };
            wheel_tracks = self
                .wheel_tracker
                .update(&of(ClassRole::TwoWheeler, wheel_min));
            let tagged = |tracks: Vec<Track>, bits: u64| {
                tracks.into_iter().map(move |mut t| {
                    t.id.0 |= bits;
                    t
                })
            };
            road.extend(tagged(
                self.vehicle_tracker
                    .update(&of(ClassRole::Vehicle, vehicle_min)),
                VEHICLE_IDS,
            ));
            road.extend(tagged(
                self.person_tracker
                    .update(&of(ClassRole::Person, person_min)),
                PERSON_IDS,
            ));
        }
        let obs = FrameObservation {
            frame_index,
            at,
            heads: Self::objects(&head_tracks, &self.helmet),
            two_wheelers: match &self.two_wheeler {
                Some(d) => {
                    let mut all = Self::objects(&wheel_tracks, d);
                    all.extend(Self::objects(&road, d));
                    all
                }
                None => Vec::new(),
            },
        };
        let violations = self.rules.observe(&obs);
        Ok(FrameReport {
            frame_index,
            at,
            signal: self.rules.signal().current(),
            signal_reading,
            heads: obs.heads,
            two_wheelers: obs.two_wheelers,
            violations,
            gated: false,
            helmet_input,
            two_wheeler_input,
        })
    }

    /// End of stream: violations still waiting for their last evidence frame.
    pub fn finish(&mut self) -> Vec<Violation> {
        self.rules.finish()
    }

    /// Sets the score threshold of a class role (`no_helmet`; `two_wheeler` with a two-wheeler model: its
    /// detections and the rules), in force from the next analysed frame. False for a role it does not use
    /// or a value outside (0, 1].
    pub fn set_class_threshold(&mut self, role: ClassRole, value: f32) -> bool {
        let in_range = value > 0.0 && value <= 1.0;
        if !(in_range && self.rules.set_class_threshold(role, value)) {
            return false;
        }
        if role == ClassRole::TwoWheeler {
            self.two_wheeler_threshold = Some(value);
        }
        true
    }

    /// The class thresholds in force, by role name (`no_helmet`, `two_wheeler`).
    pub fn class_thresholds(&self) -> Vec<(&'static str, f32)> {
        self.rules
            .class_thresholds()
            .into_iter()
            .map(|(role, c)| (role.as_str(), c.value))
            .collect()
    }
}

/// How a run ended.
#[derive(Debug, Clone)]
pub struct RunSummary {
    pub frames: u64,
    pub violations: u64,
    pub state: CameraState,
    pub last_error: Option<String>,
}

fn wall(t: SystemTime) -> DateTime<Utc> {
    DateTime::<Utc>::from(t)
}

/// Runs one camera from `source` until a file ends (or `stop` returns true): every analysed frame's
/// report goes to `on_frame`, violations included, then the violations completed at the end of the stream.
pub fn run_source(
    pipeline: &mut CameraPipeline,
    source: SourceConfig,
    mut on_frame: impl FnMut(RunnerEvent<'_>),
    stop: impl Fn() -> bool,
) -> Result<RunSummary, PipelineError> {
    let opts = EvidenceOptions {
        ring: Some(0),
        clips: None,
    };
    run_source_with(pipeline, source, &opts, |r, _| on_frame(r), stop)
}

/// Clips around violations: the media recorder keeps `pre` of encoded video and writes `pre` + `post`
/// to `<dir>/<violation id>.mp4` when a violation fires.
#[derive(Debug, Clone)]
pub struct ClipOptions {
    pub dir: std::path::PathBuf,
    pub pre: Duration,
    pub post: Duration,
}

/// What [`run_source_with`] keeps for evidence.
#[derive(Debug, Clone, Default)]
pub struct EvidenceOptions {
    /// Analysed frames kept as images for evidence: `None` sizes the ring for the camera's rules
    /// ([`FrameRing::for_camera`]), `Some(0)` keeps none.
    pub ring: Option<usize>,
    /// Also record a clip per violation.
    pub clips: Option<ClipOptions>,
}

/// [`run_source`], handing out with each report the evidence of its violations: the unmarked images of
/// their evidence frames (from a [`FrameRing`]) and, with `opts.clips`, their clips being recorded.
pub fn run_source_with(
    pipeline: &mut CameraPipeline,
    source: SourceConfig,
    opts: &EvidenceOptions,
    on_frame: impl FnMut(RunnerEvent<'_>, Vec<ViolationFrames>),
    stop: impl Fn() -> bool,
) -> Result<RunSummary, PipelineError> {
    run_source_observed(pipeline, source, opts, |_, _| {}, on_frame, stop)
}

/// What [`run_source_observed`] shows its `tick`.
#[derive(Debug, Clone)]
pub struct SourceTick {
    /// The camera's supervisor: state, counters, last error (credentials redacted).
    pub status: roadwarden_media::CameraStatus,
    /// Frames waiting for analysis.
    pub queued: usize,
}

/// [`run_source_with`], calling `tick` before each analysed frame (and every 200 ms while none comes) with
/// the pipeline, so a service can apply threshold changes and signal reports from the next frame on, and
/// with the source's status.
pub fn run_source_observed(
    pipeline: &mut CameraPipeline,
    mut source: SourceConfig,
    opts: &EvidenceOptions,
    mut tick: impl FnMut(&mut CameraPipeline, &SourceTick),
    mut on_frame: impl FnMut(RunnerEvent<'_>, Vec<ViolationFrames>),
    stop: impl Fn() -> bool,
) -> Result<RunSummary, PipelineError> {
    source.analysis_fps = Some(pipeline.config().analysis_fps);
    source.pre_event = opts.clips.as_ref().map(|c| c.pre);
    if !source.is_live() {
        source.max_attempts = Some(1);
    }
    let mut ring = match opts.ring {
        Some(n) => FrameRing::new(n),
        None => FrameRing::for_camera(pipeline.config()),
    };
    let queue = Arc::new(FrameQueue::new(4));
    let sup = CameraSupervisor::start(source, queue.clone())?;
    // `ended`: the stream is over, so a clip gets no post window (it is written at once).
    let hand_out = |ring: &FrameRing,
                    violations: &[Violation],
                    ended: bool|
     -> Result<Vec<ViolationFrames>, PipelineError> {
        let mut out = Vec::with_capacity(violations.len());
        for v in violations {
            let mut vf = ring.evidence_for(v.clone())?;
            if let Some(c) = &opts.clips {
                let path = c.dir.join(format!("{}.mp4", v.id));
                // A file's session may be over while queued frames are still analysed: no post window then.
                let over = ended
                    || matches!(
                        sup.status().state,
                        CameraState::Finished | CameraState::Failed | CameraState::Stopped
                    );
                let post = if over { Duration::ZERO } else { c.post };
                match sup.request_clip(&path, c.pre, post) {
                    Ok(job) => vf.clip = Some(job),
                    Err(e) => tracing::warn!(violation = %v.id, "no clip: {e}"),
                }
            }
            out.push(vf);
        }
        Ok(out)
    };
    let mut frames = 0u64;
    let mut violations = 0u64;
    loop {
        if stop() {
            break;
        }
        let status = sup.status();
        let queued = queue.len();
        tick(pipeline, &SourceTick { status, queued });
        match queue.pop_timeout(Duration::from_millis(200)) {
            Some(frame) => {
                if ring.capacity() > 0 {
                    ring.push_clocked(frame.index(), &frame.image(), wall(frame.received_at()));
                }
                let report =
                    pipeline.process(frame.index(), wall(frame.captured_at()), &frame.image())?;
                frames += 1;
                violations += report.violations.len() as u64;
                let mut evidence = hand_out(&ring, &report.violations, false)?;
                pipeline.read_plates(&mut evidence);
                on_frame(RunnerEvent::Frame(&report), evidence);
            }
            None => {
                let st = sup.status().state;
                if matches!(
                    st,
                    CameraState::Finished | CameraState::Failed | CameraState::Stopped
                ) && queue.is_empty()
                {
                    break;
                }
            }
        }
    }
    let rest = pipeline.finish();
    if !rest.is_empty() {
        violations += rest.len() as u64;
        let mut evidence = hand_out(&ring, &rest, true)?;
        pipeline.read_plates(&mut evidence);
        let signal = pipeline.rules.signal().current();
        on_frame(
            RunnerEvent::EndOfStream {
                violations: &rest,
                signal,
            },
            evidence,
        );
    }
    let status = sup.status();
    sup.stop();
    if status.state == CameraState::Failed && frames == 0 {
        return Err(PipelineError::Camera {
            camera: pipeline.config().id.to_string(),
            reason: status.last_error.unwrap_or_else(|| "source failed".into()),
        });
    }
    Ok(RunSummary {
        frames,
        violations,
        state: status.state,
        last_error: status.last_error,
    })
}
