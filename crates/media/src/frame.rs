use std::time::{Duration, SystemTime};

use gst_video::prelude::*;
use gst_video::video_frame::Readable;
use roadwarden_types::{CameraId, ImageError, ImageView, PixelFormat, Plane};

/// One decoded frame of one camera. Owns (a reference to) GStreamer's buffer, mapped for reading, so
/// cloning is not offered: pass it on by value. Pixels stay in the decoder's I420 or NV12 layout.
pub struct Frame {
    camera: CameraId,
    index: u64,
    session: u64,
    pts: Option<Duration>,
    timeline: Duration,
    captured_at: SystemTime,
    received_at: SystemTime,
    format: PixelFormat,
    video: gst_video::VideoFrame<Readable>,
}

impl Frame {
    /// Wraps a decoded buffer, captured at the recording's time and received at the machine's clock; fails when its format is not I420/NV12 or its planes are too short for its size.
    pub(crate) fn new(
        camera: CameraId,
        index: u64,
        session: u64,
        pts: Option<Duration>,
        timeline: Duration,
        (captured_at, received_at): (SystemTime, SystemTime),
        video: gst_video::VideoFrame<Readable>,
    ) -> Result<Frame, String> {
        let format = match video.format() {
            gst_video::VideoFormat::I420 => PixelFormat::I420,
            gst_video::VideoFormat::Nv12 => PixelFormat::Nv12,
            other => return Err(format!("decoder produced {other:?}, expected I420 or NV12")),
        };
        let frame = Frame {
            camera,
            index,
            session,
            pts,
            timeline,
            captured_at,
            received_at,
            format,
            video,
        };
        frame.try_image().map_err(|e| e.to_string())?;
        Ok(frame)
    }

    pub fn camera(&self) -> &CameraId {
        &self.camera
    }

    /// Position of this frame among every frame the camera decoded (0-based, across reconnects, counting
    /// frames that pacing skipped): gaps show pacing or drops.
    pub fn index(&self) -> u64 {
        self.index
    }

    /// Which pipeline (connection) of the camera produced it: 0 for the first, +1 per rebuild.
    pub fn session(&self) -> u64 {
        self.session
    }

    /// The buffer's presentation time within its session, as GStreamer stamped it. Restarts at each
    /// reconnect; use [`Frame::timeline`] or [`Frame::captured_at`] to order frames.
    pub fn pts(&self) -> Option<Duration> {
        self.pts
    }

    /// Time since the camera's supervisor started, strictly increasing across reconnects.
    pub fn timeline(&self) -> Duration {
        self.timeline
    }

    /// The recording's time of the frame: for live sources and real-time replay, when the frame was
    /// captured as far as the pipeline knows (arrival of its session's first frame + PTS); for a file
    /// replayed as fast as possible, the recording's start ([`crate::SourceConfig::recording_start`], else
    /// the container's creation time, else the supervisor's start) + position in the file. Never goes
    /// backwards for a camera.
    pub fn captured_at(&self) -> SystemTime {
        self.captured_at
    }

    /// The analysing machine's clock when the frame was decoded. For a live source close to
    /// [`Frame::captured_at`]; for a file analysed later, the day of analysis.
    pub fn received_at(&self) -> SystemTime {
        self.received_at
    }

    pub fn width(&self) -> u32 {
        self.video.width()
    }

    pub fn height(&self) -> u32 {
        self.video.height()
    }

    pub fn format(&self) -> PixelFormat {
        self.format
    }

    /// The frame's planes, with GStreamer's plane offsets and strides, for letterboxing or JPEG encoding.
    pub fn image(&self) -> ImageView<'_> {
        self.try_image()
            .expect("planes were checked when the frame was made")
    }

    fn try_image(&self) -> Result<ImageView<'_>, ImageError> {
        let v = &self.video;
        let stride = v.plane_stride();
        let plane = |i: u32| Plane {
            data: v.plane_data(i).unwrap_or(&[]),
            stride: stride.get(i as usize).copied().unwrap_or(0).max(0) as usize,
        };
        match self.format {
            PixelFormat::I420 => {
                ImageView::i420(v.width(), v.height(), plane(0), plane(1), plane(2))
            }
            _ => ImageView::nv12(v.width(), v.height(), plane(0), plane(1)),
        }
    }
}

impl std::fmt::Debug for Frame {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Frame")
            .field("camera", &self.camera)
            .field("index", &self.index)
            .field("session", &self.session)
            .field("pts", &self.pts)
            .field("timeline", &self.timeline)
            .field("size", &(self.width(), self.height()))
            .field("format", &self.format)
            .finish()
    }
}
