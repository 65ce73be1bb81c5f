//! Encoding raw BGR frames to an H.264 MP4 file (appsrc → videoconvert → x264enc → mp4mux), for
//! synthetic test scenes and demos.

use std::path::{Path, PathBuf};
use std::time::Duration;

use gst::prelude::*;

use crate::MediaError;

/// Writes packed BGR frames of one size at a fixed rate into an H.264 MP4.
pub struct Mp4Writer {
    path: PathBuf,
    pipeline: gst::Pipeline,
    src: gst_app::AppSrc,
    width: u32,
    height: u32,
    frame: gst::ClockTime,
    frames: u64,
}

impl std::fmt::Debug for Mp4Writer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Mp4Writer")
            .field("path", &self.path)
            .field("frames", &self.frames)
            .finish()
    }
}

impl Mp4Writer {
    /// Starts a writer; `fps` is a whole number of frames per second. Even width and height are needed
    /// (4:2:0 chroma).
    pub fn create(path: &Path, width: u32, height: u32, fps: u32) -> Result<Mp4Writer, MediaError> {
        crate::init()?;
        let err = |reason: String| MediaError::File {
            path: path.to_path_buf(),
            reason,
        };
        if width == 0 || height == 0 || width % 2 == 1 || height % 2 == 1 || fps == 0 {
            return Err(err(format!(
                "cannot encode {width}x{height} at {fps} fps (even sizes, fps > 0)"
            )));
        }
        let pipeline = gst::Pipeline::new();
        let make = |name: &str| {
            gst::ElementFactory::make(name)
                .build()
                .map_err(|_| err(format!("GStreamer element {name} is not installed")))
        };
        let src = gst_app::AppSrc::builder()
            .caps(
                &gst::Caps::builder("video/x-raw")
                    .field("format", "BGR")
                    .field("width", width as i32)
                    .field("height", height as i32)
                    .field("framerate", gst::Fraction::new(fps as i32, 1))
                    .build(),
            )
            .format(gst::Format::Time)
            .block(true)
            .build();
        let convert = make("videoconvert")?;
        let enc = make("x264enc")?;
        enc.set_property_from_str("speed-preset", "veryfast");
        enc.set_property_from_str("pass", "quant");
        enc.set_property("quantizer", 20u32);
        enc.set_property("key-int-max", fps * 2);
        let caps = gst::ElementFactory::make("capsfilter")
            .property(
                "caps",
                gst::Caps::builder("video/x-h264")
                    .field("profile", "high")
                    .build(),
            )
            .build()
            .map_err(|_| err("capsfilter missing".into()))?;
        let parse = make("h264parse")?;
        let mux = make("mp4mux")?;
        let sink = gst::ElementFactory::make("filesink")
            .property("location", path.to_string_lossy().to_string())
            .build()
            .map_err(|_| err("filesink missing".into()))?;
        let elements = [
            src.upcast_ref::<gst::Element>(),
            &convert,
            &enc,
            &caps,
            &parse,
            &mux,
            &sink,
        ];
        pipeline
            .add_many(elements)
            .map_err(|e| err(format!("cannot build the encoder: {e}")))?;
        gst::Element::link_many(elements)
            .map_err(|e| err(format!("cannot link the encoder: {e}")))?;
        pipeline
            .set_state(gst::State::Playing)
            .map_err(|e| err(format!("cannot start the encoder: {e}")))?;
        Ok(Mp4Writer {
            path: path.to_path_buf(),
            pipeline,
            src,
            width,
            height,
            frame: gst::ClockTime::from_nseconds(1_000_000_000 / fps as u64),
            frames: 0,
        })
    }

    /// Appends one frame of packed BGR (`3 * width * height` bytes).
    pub fn push_bgr(&mut self, data: &[u8]) -> Result<(), MediaError> {
        let need = 3 * (self.width * self.height) as usize;
        if data.len() != need {
            return Err(MediaError::File {
                path: self.path.clone(),
                reason: format!("frame of {} bytes, expected {need}", data.len()),
            });
        }
        let mut buf = gst::Buffer::from_slice(data.to_vec());
        {
            let b = buf.get_mut().expect("a new buffer is writable");
            b.set_pts(self.frame * self.frames);
            b.set_duration(self.frame);
        }
        self.frames += 1;
        self.src.push_buffer(buf).map_err(|e| MediaError::File {
            path: self.path.clone(),
            reason: format!("encoder refused a frame: {e:?}"),
        })?;
        Ok(())
    }

    /// Frames pushed so far.
    pub fn frames(&self) -> u64 {
        self.frames
    }

    /// Ends the stream and waits for the file to be complete.
    pub fn finish(self) -> Result<PathBuf, MediaError> {
        let err = |reason: String| MediaError::File {
            path: self.path.clone(),
            reason,
        };
        let result = (|| {
            self.src
                .end_of_stream()
                .map_err(|e| err(format!("{e:?}")))?;
            let bus = self
                .pipeline
                .bus()
                .ok_or_else(|| err("pipeline has no bus".into()))?;
            crate::bus::wait_for_eos(&bus, Duration::from_secs(60), "encoder").map_err(err)
        })();
        let _ = self.pipeline.set_state(gst::State::Null);
        result.map(|_| self.path.clone())
    }
}
