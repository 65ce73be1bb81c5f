//! The minimal site file the tests start from: one camera on a 640x384 frame with a vertical stop line at
//! x = 420 (riders come from the left) and a signal head at the top right, built up key by key.
//!
//! ```
//! let toml = roadwarden_testkit::site::camera("gate-north")
//!     .helmet("models/helmet-yolov12m.toml")
//!     .section("[camera.thresholds]\nno_helmet = 0.4")
//!     .toml();
//! assert!(toml.contains("id = \"gate-north\""));
//! ```

use std::fmt::Write as _;
use std::sync::LazyLock;

/// A site text built once, on first use, that reads as a `&str` (`&SITE`, `SITE.replace(..)`) and formats
/// as one (`format!("{SITE}[camera.gating]...")`): a test file's `static` fixture.
pub struct SiteText(LazyLock<String>);

impl SiteText {
    /// The text `build` returns, built on first use.
    pub const fn new(build: fn() -> String) -> SiteText {
        SiteText(LazyLock::new(build))
    }
}

impl std::ops::Deref for SiteText {
    type Target = str;
    fn deref(&self) -> &str {
        &self.0
    }
}

impl std::fmt::Display for SiteText {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

/// Where the camera's signal state comes from.
#[derive(Debug, Clone, PartialEq)]
pub enum Signal {
    /// Read from the video: the signal head's ROI (x1, y1, x2, y2; `None`: no box, the test adds its
    /// own), with optional hysteresis.
    Video {
        roi: Option<[f32; 4]>,
        hysteresis_frames: Option<u32>,
    },
    /// Reported by a controller over the API.
    External,
}

/// One `[[camera]]` table, built key by key; [`Camera::toml`] writes it.
#[derive(Debug, Clone)]
pub struct Camera {
    id: String,
    frame: (u32, u32),
    analysis_fps: Option<f32>,
    source_url: Option<String>,
    helmet: String,
    two_wheeler: Option<String>,
    stop_line: ([f32; 2], [f32; 2]),
    signal: Signal,
    sections: Vec<String>,
}

/// The minimal camera `id`: frame 640x384, helmet model `m.toml`, stop line (420, 384)-(420, 40) with
/// "before" on the left, signal read from the video at ROI (600, 6)-(632, 90).
pub fn camera(id: &str) -> Camera {
    Camera {
        id: id.to_owned(),
        frame: (640, 384),
        analysis_fps: None,
        source_url: None,
        helmet: "m.toml".to_owned(),
        two_wheeler: None,
        stop_line: ([420.0, 384.0], [420.0, 40.0]),
        signal: Signal::Video {
            roi: Some([600.0, 6.0, 632.0, 90.0]),
            hysteresis_frames: None,
        },
        sections: Vec::new(),
    }
}

impl Camera {
    /// The helmet model's manifest path.
    pub fn helmet(mut self, manifest: &str) -> Self {
        self.helmet = manifest.to_owned();
        self
    }
    /// The two-wheeler model's manifest path.
    pub fn two_wheeler(mut self, manifest: &str) -> Self {
        self.two_wheeler = Some(manifest.to_owned());
        self
    }
    /// `analysis_fps`.
    pub fn analysis_fps(mut self, fps: f32) -> Self {
        self.analysis_fps = Some(fps);
        self
    }
    /// `source = { url = ... }`.
    pub fn source_url(mut self, url: &str) -> Self {
        self.source_url = Some(url.to_owned());
        self
    }
    /// The stop line's two ends (before stays on the left).
    pub fn stop_line(mut self, a: [f32; 2], b: [f32; 2]) -> Self {
        self.stop_line = (a, b);
        self
    }
    /// Where the signal state comes from.
    pub fn signal(mut self, signal: Signal) -> Self {
        self.signal = signal;
        self
    }
    /// Hysteresis frames of a video signal (ignored for an external one).
    pub fn hysteresis_frames(mut self, n: u32) -> Self {
        if let Signal::Video {
            hysteresis_frames, ..
        } = &mut self.signal
        {
            *hysteresis_frames = Some(n);
        }
        self
    }
    /// Any further TOML for this camera (`[camera.thresholds]`, `[camera.gating]`, ...), written last.
    pub fn section(mut self, toml: &str) -> Self {
        self.sections.push(toml.trim().to_owned());
        self
    }

    /// The `[[camera]]` table as TOML text.
    pub fn toml(&self) -> String {
        let mut s = String::new();
        // Writing to a String cannot fail.
        let _ = writeln!(s, "[[camera]]\nid = \"{}\"", self.id);
        let _ = writeln!(s, "frame = [{}, {}]", self.frame.0, self.frame.1);
        if let Some(fps) = self.analysis_fps {
            let _ = writeln!(s, "analysis_fps = {fps:?}");
        }
        if let Some(url) = &self.source_url {
            let _ = writeln!(s, "source = {{ url = \"{url}\" }}");
        }
        let _ = writeln!(s, "[camera.models]\nhelmet = \"{}\"", self.helmet);
        if let Some(m) = &self.two_wheeler {
            let _ = writeln!(s, "two_wheeler = \"{m}\"");
        }
        let (a, b) = self.stop_line;
        let _ = writeln!(
            s,
            "[camera.stop_line]\na = [{:?}, {:?}]\nb = [{:?}, {:?}]\nbefore = \"left\"",
            a[0], a[1], b[0], b[1]
        );
        match &self.signal {
            Signal::Video {
                roi,
                hysteresis_frames,
            } => {
                let _ = writeln!(s, "[camera.signal]\nsource = \"video\"");
                if let Some(roi) = roi {
                    let _ = writeln!(
                        s,
                        "rois = [[{:?}, {:?}, {:?}, {:?}]]",
                        roi[0], roi[1], roi[2], roi[3]
                    );
                }
                if let Some(n) = hysteresis_frames {
                    let _ = writeln!(s, "hysteresis_frames = {n}");
                }
            }
            Signal::External => {
                let _ = writeln!(s, "[camera.signal]\nsource = \"external\"");
            }
        }
        for section in self.sections.iter().filter(|t| !t.is_empty()) {
            let _ = writeln!(s, "{section}");
        }
        s
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_minimal_camera_reads_as_written() {
        let t = camera("gate-north")
            .helmet("models/helmet-yolov12m.toml")
            .section("[camera.thresholds]\nno_helmet = 0.4")
            .toml();
        assert_eq!(
            t,
            "[[camera]]\nid = \"gate-north\"\nframe = [640, 384]\n[camera.models]\n\
             helmet = \"models/helmet-yolov12m.toml\"\n[camera.stop_line]\na = [420.0, 384.0]\n\
             b = [420.0, 40.0]\nbefore = \"left\"\n[camera.signal]\nsource = \"video\"\n\
             rois = [[600.0, 6.0, 632.0, 90.0]]\n[camera.thresholds]\nno_helmet = 0.4\n"
        );
    }

    #[test]
    fn external_signal_and_options() {
        let t = camera("cam")
            .analysis_fps(5.0)
            .two_wheeler("wheels.toml")
            .stop_line([420.0, 384.0], [420.0, 0.0])
            .signal(Signal::External)
            .toml();
        assert!(t.contains("analysis_fps = 5.0\n"), "{t}");
        assert!(t.contains("two_wheeler = \"wheels.toml\"\n"), "{t}");
        assert!(t.contains("b = [420.0, 0.0]\n"), "{t}");
        assert!(t.contains("source = \"external\"\n"), "{t}");
        assert!(!t.contains("rois"), "{t}");
    }
}
