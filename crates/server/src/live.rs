//! The live channels between the HTTP service and the camera runners: the
//! status board the runners fill, the thresholds in force they follow, and the
//! events the publishers (MQTT, webhooks) forward.

use std::collections::BTreeMap;
use std::sync::{Arc, RwLock};

use chrono::{DateTime, Utc};
use roadwarden_rules::SiteConfig;
use roadwarden_store::ThresholdRow;
use serde::{Deserialize, Serialize};

/// One camera's live status, as its runner last reported it.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct CameraStatus {
    /// `starting`, `running`, `reconnecting`, `stopped`, ...
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
}

/// The status of every running camera, by camera id.
#[derive(Debug, Clone, Default)]
pub struct CameraBoard(Arc<RwLock<BTreeMap<String, CameraStatus>>>);

impl CameraBoard {
    pub fn set(&self, camera: &str, status: CameraStatus) {
        let mut m = self.0.write().unwrap_or_else(|p| p.into_inner());
        m.insert(camera.to_owned(), status);
    }

    pub fn remove(&self, camera: &str) {
        let mut m = self.0.write().unwrap_or_else(|p| p.into_inner());
        m.remove(camera);
    }

    pub fn get(&self, camera: &str) -> Option<CameraStatus> {
        let m = self.0.read().unwrap_or_else(|p| p.into_inner());
        m.get(camera).cloned()
    }

    pub fn snapshot(&self) -> BTreeMap<String, CameraStatus> {
        self.0.read().unwrap_or_else(|p| p.into_inner()).clone()
    }
}

/// Where a threshold in force comes from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ThresholdSource {
    /// The site file.
    Config,
    /// Set over the API (stored).
    Api,
}

/// One threshold in force.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
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
                        value: f64::from(*v),
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
