//! The live channels between the HTTP service and the camera runners: the
//! status board the runners fill, the thresholds in force they follow, the
//! site in force (replaced on a reload), and the events the publishers (MQTT,
//! webhooks) forward.

use std::collections::BTreeMap;
use std::sync::{Arc, RwLock};

use chrono::{DateTime, Utc};
use roadwarden_rules::SiteConfig;
use roadwarden_store::ThresholdRow;
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

/// One camera's live status, as its runner last reported it.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct CameraStatus {
    /// `starting`, `running`, `reconnecting`, `retrying` (its runner failed; started again at
    /// `next_attempt_at`), `stopped`, ...
    pub state: String,
    pub input_fps: f64,
    pub analysed_fps: f64,
    pub last_frame_at: Option<DateTime<Utc>>,
    pub reconnects: u64,
    pub dropped_frames: u64,
    /// `red`, `green`, ... when the camera watches a signal.
    pub signal: Option<String>,
    /// Credentials already redacted by the runner.
    pub last_error: Option<String>,
    /// While `retrying`: when the runner is started again.
    #[serde(default)]
    pub next_attempt_at: Option<DateTime<Utc>>,
}

/// Upper bounds (seconds) of the [`LatencyHistogram`] buckets; the last bucket is `+Inf`.
pub const LATENCY_BOUNDS: [f64; 11] = [0.05, 0.1, 0.2, 0.35, 0.5, 0.75, 1.0, 1.5, 2.5, 5.0, 10.0];

/// A latency histogram over [`LATENCY_BOUNDS`] (Prometheus style, counts not cumulative).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct LatencyHistogram {
    /// One count per bound, then the `+Inf` bucket.
    pub counts: Vec<u64>,
    pub sum_seconds: f64,
    pub count: u64,
}

impl Default for LatencyHistogram {
    fn default() -> Self {
        LatencyHistogram {
            counts: vec![0; LATENCY_BOUNDS.len() + 1],
            sum_seconds: 0.0,
            count: 0,
        }
    }
}

impl LatencyHistogram {
    pub fn observe(&mut self, seconds: f64) {
        let s = if seconds.is_finite() {
            seconds.max(0.0)
        } else {
            0.0
        };
        let i = LATENCY_BOUNDS
            .iter()
            .position(|b| s <= *b)
            .unwrap_or(LATENCY_BOUNDS.len());
        if let Some(c) = self.counts.get_mut(i) {
            *c += 1;
        }
        self.sum_seconds += s;
        self.count += 1;
    }
}

/// What a camera's pipeline did, as its runner last reported it (beside its [`CameraStatus`]).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct PipelineStatus {
    /// When this run of the camera started: a restart (config change) changes it.
    pub started_at: Option<DateTime<Utc>>,
    pub frames_analysed: u64,
    /// The source's index of the last analysed frame.
    pub last_frame_index: Option<u64>,
    /// Frames decoded and waiting for analysis.
    pub queue_depth: u64,
    /// The class thresholds the pipeline applies, by class role.
    pub thresholds: BTreeMap<String, f64>,
    /// The first analysed frame the current `thresholds` applied to (`None`: from the start, or no frame
    /// analysed yet since they changed).
    pub thresholds_from_frame: Option<u64>,
    /// Matched tracks scoring at or above their class threshold, by class role, summed over frames.
    pub detections: BTreeMap<String, u64>,
    /// Violations the rules raised and handed to the recorder, by kind.
    pub violations: BTreeMap<String, u64>,
    /// Seconds from a frame's capture to the end of its analysis.
    pub frame_latency: LatencyHistogram,
}

/// The process's one evidence recorder.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct RecorderStatus {
    /// Violations handed to the recorder and not recorded yet.
    pub queued: u64,
    /// Records in the spool, waiting for the store.
    pub spooled: u64,
    /// Violations recorded (committed, or spooled), by camera and kind.
    pub recorded: BTreeMap<String, BTreeMap<String, u64>>,
}

/// One shared inference batcher's figures (the service's `[inference] batch`): its ONNX Runtime runs
/// by batch size and each camera's submit-to-result time.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct InferenceStatus {
    /// The model's name (its manifest's file stem).
    pub model: String,
    /// `runs_by_size[n]`: runs of n images (index 0 unused).
    pub runs_by_size: Vec<u64>,
    /// Images run.
    pub images: u64,
    pub cameras: Vec<InferenceCameraStatus>,
}

/// One camera's requests to a shared batcher.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct InferenceCameraStatus {
    pub camera: String,
    pub requests: u64,
    /// Submit to result (queueing and the run), summed over the requests.
    pub latency_seconds_sum: f64,
    pub latency_seconds_max: f64,
}

/// Reads the batchers' figures when `/metrics` is scraped.
type InferenceSource = Arc<dyn Fn() -> Vec<InferenceStatus> + Send + Sync>;

#[derive(Default)]
struct Board {
    cameras: RwLock<BTreeMap<String, CameraStatus>>,
    pipelines: RwLock<BTreeMap<String, PipelineStatus>>,
    recorder: RwLock<Option<RecorderStatus>>,
    inference: RwLock<Option<InferenceSource>>,
}

impl std::fmt::Debug for Board {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Board")
            .field("cameras", &self.cameras)
            .field("pipelines", &self.pipelines)
            .field("recorder", &self.recorder)
            .field("inference", &read(&self.inference).is_some())
            .finish()
    }
}

/// The status of every running camera, by camera id, and of the recorder.
#[derive(Debug, Clone, Default)]
pub struct CameraBoard(Arc<Board>);

fn write<T>(l: &RwLock<T>) -> std::sync::RwLockWriteGuard<'_, T> {
    l.write().unwrap_or_else(|p| p.into_inner())
}

fn read<T>(l: &RwLock<T>) -> std::sync::RwLockReadGuard<'_, T> {
    l.read().unwrap_or_else(|p| p.into_inner())
}

impl CameraBoard {
    pub fn set(&self, camera: &str, status: CameraStatus) {
        write(&self.0.cameras).insert(camera.to_owned(), status);
    }

    /// Forgets a camera (its status and pipeline status).
    pub fn remove(&self, camera: &str) {
        write(&self.0.cameras).remove(camera);
        write(&self.0.pipelines).remove(camera);
    }

    pub fn get(&self, camera: &str) -> Option<CameraStatus> {
        read(&self.0.cameras).get(camera).cloned()
    }

    pub fn snapshot(&self) -> BTreeMap<String, CameraStatus> {
        read(&self.0.cameras).clone()
    }

    pub fn set_pipeline(&self, camera: &str, status: PipelineStatus) {
        write(&self.0.pipelines).insert(camera.to_owned(), status);
    }

    pub fn pipeline(&self, camera: &str) -> Option<PipelineStatus> {
        read(&self.0.pipelines).get(camera).cloned()
    }

    pub fn pipelines(&self) -> BTreeMap<String, PipelineStatus> {
        read(&self.0.pipelines).clone()
    }

    pub fn set_recorder(&self, status: RecorderStatus) {
        *write(&self.0.recorder) = Some(status);
    }

    /// The recorder's status, once one runs.
    pub fn recorder(&self) -> Option<RecorderStatus> {
        read(&self.0.recorder).clone()
    }

    /// Where `/metrics` reads the shared inference batchers' figures from (the service sets it when
    /// its cameras share batchers).
    pub fn set_inference_source(
        &self,
        source: impl Fn() -> Vec<InferenceStatus> + Send + Sync + 'static,
    ) {
        *write(&self.0.inference) = Some(Arc::new(source));
    }

    /// The shared inference batchers' figures now; empty when cameras run their own sessions.
    pub fn inference(&self) -> Vec<InferenceStatus> {
        let source = read(&self.0.inference).clone();
        source.map(|f| f()).unwrap_or_default()
    }
}

/// The site in force: a reload swaps it whole, readers keep the version
/// they took.
#[derive(Debug)]
pub(crate) struct LiveSite(RwLock<Arc<SiteConfig>>);

impl LiveSite {
    pub(crate) fn new(site: SiteConfig) -> LiveSite {
        LiveSite(RwLock::new(Arc::new(site)))
    }

    /// The site in force now.
    pub(crate) fn get(&self) -> Arc<SiteConfig> {
        read(&self.0).clone()
    }

    /// Makes `site` the site in force.
    pub(crate) fn replace(&self, site: SiteConfig) {
        *write(&self.0) = Arc::new(site);
    }
}

/// Where a threshold in force comes from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum ThresholdSource {
    /// The site file.
    Config,
    /// Set over the API (stored).
    Api,
}

/// One threshold in force.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct Threshold {
    pub value: f64,
    pub source: ThresholdSource,
    pub updated_by: Option<String>,
    pub updated_at: Option<DateTime<Utc>>,
}

/// The score thresholds in force, by camera and class role. A class a
/// camera does not list keeps its model manifest's threshold.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Thresholds {
    pub cameras: BTreeMap<String, BTreeMap<String, Threshold>>,
}

impl Thresholds {
    /// The site file's thresholds overlaid with the stored ones (of configured cameras only).
    pub fn from_site(site: &SiteConfig, stored: &[ThresholdRow]) -> Thresholds {
        let mut t = Thresholds::default();
        for c in &site.cameras {
            let m = t.cameras.entry(c.id.to_string()).or_default();
            for (class, v) in &c.thresholds {
                m.insert(
                    class.clone(),
                    Threshold {
                        // As written in the file (0.4, not the f32's 0.4000000059604645).
                        value: (f64::from(*v) * 1e6).round() / 1e6,
                        source: ThresholdSource::Config,
                        updated_by: None,
                        updated_at: None,
                    },
                );
            }
        }
        for r in stored {
            if let Some(m) = t.cameras.get_mut(&r.camera) {
                m.insert(r.class.clone(), Threshold::stored(r));
            }
        }
        t
    }

    /// The value in force for a camera's class, if any.
    pub fn get(&self, camera: &str, class: &str) -> Option<f64> {
        self.cameras.get(camera)?.get(class).map(|t| t.value)
    }
}

impl Threshold {
    pub(crate) fn stored(r: &ThresholdRow) -> Threshold {
        Threshold {
            value: r.value,
            source: ThresholdSource::Api,
            updated_by: Some(r.updated_by.clone()),
            updated_at: Some(roadwarden_store::from_micros(r.updated_at_us)),
        }
    }
}

/// Something downstream systems hear about.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "event", rename_all = "snake_case")]
pub enum Event {
    /// A violation was recorded.
    Violation {
        id: String,
        camera: String,
        kind: String,
        occurred_at: DateTime<Utc>,
        confidence: f64,
    },
    /// A reviewer decided, or an admin reopened, a violation.
    Review {
        id: String,
        camera: String,
        kind: String,
        status: String,
        reason: Option<String>,
        by: String,
        at: DateTime<Utc>,
    },
    /// A threshold changed.
    Threshold {
        camera: String,
        class: String,
        before: Option<f64>,
        after: f64,
        by: String,
    },
}
