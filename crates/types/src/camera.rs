use serde::{Deserialize, Serialize};

/// The name a site gives one camera (`"gate-north"`); every frame, track and
/// violation carries it.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(transparent)]
pub struct CameraId(pub String);

impl CameraId {
    pub fn new(id: impl Into<String>) -> Self {
        CameraId(id.into())
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl std::fmt::Display for CameraId {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

impl From<&str> for CameraId {
    fn from(s: &str) -> Self {
        CameraId(s.to_owned())
    }
}
