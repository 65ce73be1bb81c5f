//! Evidence-frame retention: a small ring of the last analysed frames, unmarked and in the decoder's
//! own layout (I420/NV12: half the bytes of BGR, and no colour conversion for the frames no rule
//! needs), keyed by frame index, so that when a rule fires (often a few frames after its key frame)
//! the images of the violation's evidence frames can be handed out with it, converted to BGR then.

use std::collections::VecDeque;

use chrono::{DateTime, Utc};
use roadwarden_imaging::{BgrImage, ImagingError};
use roadwarden_media::ClipJob;
use roadwarden_rules::CameraConfig;
use roadwarden_types::{FrameRole, ImageView, OwnedImage, Violation};

/// The last analysed frames of one camera, oldest first.
pub struct FrameRing {
    capacity: usize,
    frames: VecDeque<(u64, OwnedImage)>,
    /// The analysing machine's clock when each kept frame was decoded, where known, by index.
    clocks: VecDeque<(u64, DateTime<Utc>)>,
}

impl std::fmt::Debug for FrameRing {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("FrameRing")
            .field("capacity", &self.capacity)
            .field("len", &self.frames.len())
            .finish()
    }
}

impl FrameRing {
    /// A ring of `capacity` frames (0 keeps nothing).
    pub fn new(capacity: usize) -> FrameRing {
        FrameRing {
            capacity,
            frames: VecDeque::with_capacity(capacity),
            clocks: VecDeque::with_capacity(capacity),
        }
    }

    /// A ring deep enough for `config`'s rules: the helmet rule's key frame is at most `window` of a
    /// head's observations back and a head's votes live 3 s without a sighting; a red-light crossing
    /// waits up to 1 s for its "after" frame. So: 4 s of analysed frames, and at least `window` + 2.
    pub fn for_camera(config: &CameraConfig) -> FrameRing {
        let by_time = (config.analysis_fps * 4.0).ceil().max(0.0) as usize;
        let by_votes = config.helmet.window as usize + 2;
        FrameRing::new(by_time.max(by_votes).min(256))
    }

    pub fn capacity(&self) -> usize {
        self.capacity
    }

    pub fn len(&self) -> usize {
        self.frames.len()
    }

    pub fn is_empty(&self) -> bool {
        self.frames.is_empty()
    }

    /// Keeps a copy of `image` as frame `index`, dropping the oldest frame when full. Indices must
    /// not go back.
    pub fn push(&mut self, index: u64, image: &ImageView<'_>) {
        if self.capacity == 0 {
            return;
        }
        // When the ring is full the oldest frame goes, and its allocation takes the new one.
        let reused = if self.frames.len() >= self.capacity {
            self.frames.pop_front()
        } else {
            None
        };
        let copy = match reused {
            Some((_, mut old)) => {
                old.copy_from(image);
                old
            }
            None => OwnedImage::copy_of(image),
        };
        self.frames.push_back((index, copy));
    }

    /// [`FrameRing::push`], noting the analysing machine's clock when the frame was decoded (handed out
    /// as each evidence frame's `analysed_at`).
    pub fn push_clocked(&mut self, index: u64, image: &ImageView<'_>, clock: DateTime<Utc>) {
        if self.capacity == 0 {
            return;
        }
        self.push(index, image);
        self.clocks.push_back((index, clock));
        let oldest = self.frames.front().map(|(i, _)| *i).unwrap_or(index);
        while self.clocks.front().is_some_and(|(i, _)| *i < oldest) {
            self.clocks.pop_front();
        }
    }

    /// Bytes of pixels held.
    pub fn len_bytes(&self) -> usize {
        self.frames.iter().map(|(_, f)| f.len_bytes()).sum()
    }

    /// Frame `index`, if it is still in the ring.
    pub fn get(&self, index: u64) -> Option<&OwnedImage> {
        self.frames
            .binary_search_by_key(&index, |(i, _)| *i)
            .ok()
            .map(|k| &self.frames[k].1)
    }

    /// Copies of the images of `violation`'s evidence frames, by role, and the roles whose frame is no
    /// longer (or was never) in the ring.
    /// Each evidence frame whose clock the ring noted gets it as `analysed_at`.
    pub fn evidence_for(&self, mut violation: Violation) -> Result<ViolationFrames, ImagingError> {
        let mut images = Vec::new();
        let mut missing = Vec::new();
        for f in &mut violation.frames {
            if let Ok(k) = self
                .clocks
                .binary_search_by_key(&f.frame_index, |(i, _)| *i)
            {
                f.analysed_at = Some(self.clocks[k].1);
            }
        }
        for f in &violation.frames {
            match self.get(f.frame_index) {
                Some(img) => images.push((f.role, BgrImage::from_view(&img.view())?)),
                None => missing.push(f.role),
            }
        }
        Ok(ViolationFrames {
            violation,
            images,
            missing,
            clip: None,
        })
    }
}

/// A violation as the runner hands it out for recording: its evidence frames' unmarked images and,
/// when clips were asked for, the clip being written.
pub struct ViolationFrames {
    pub violation: Violation,
    /// One unmarked image per evidence frame still in the ring, by role (in `violation.frames` order).
    pub images: Vec<(FrameRole, BgrImage)>,
    /// Evidence frames whose image was not kept (should not happen with [`FrameRing::for_camera`]).
    pub missing: Vec<FrameRole>,
    /// The camera's clip around the violation, still being recorded; wait for it off the analysis thread.
    pub clip: Option<ClipJob>,
}

impl std::fmt::Debug for ViolationFrames {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ViolationFrames")
            .field("violation", &self.violation.id)
            .field(
                "images",
                &self.images.iter().map(|(r, _)| *r).collect::<Vec<_>>(),
            )
            .field("missing", &self.missing)
            .field("clip", &self.clip.is_some())
            .finish()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A `w`x`h` I420 frame whose Y plane is all `v` (grey).
    fn frame(w: u32, h: u32, v: u8) -> (Vec<u8>, Vec<u8>) {
        (vec![v; (w * h) as usize], vec![128; (w * h / 4) as usize])
    }

    fn view<'a>(w: u32, h: u32, (y, c): &'a (Vec<u8>, Vec<u8>)) -> ImageView<'a> {
        use roadwarden_types::Plane;
        let cw = w as usize / 2;
        ImageView::i420(
            w,
            h,
            Plane {
                data: y,
                stride: w as usize,
            },
            Plane {
                data: c,
                stride: cw,
            },
            Plane {
                data: c,
                stride: cw,
            },
        )
        .unwrap()
    }

    #[test]
    fn keeps_the_last_frames_by_index() {
        let mut ring = FrameRing::new(3);
        for i in [2u64, 4, 6, 8] {
            ring.push(i, &view(4, 2, &frame(4, 2, i as u8)));
        }
        assert_eq!(ring.len(), 3);
        assert!(ring.get(2).is_none(), "oldest dropped");
        assert!(ring.get(5).is_none());
        assert_eq!(ring.get(6).unwrap().view().row(0, 0)[0], 6);
        assert_eq!(ring.get(8).unwrap().view().row(0, 0)[0], 8);
        let mut none = FrameRing::new(0);
        none.push(1, &view(4, 2, &frame(4, 2, 1)));
        assert!(none.is_empty());
    }

    #[test]
    fn frames_are_kept_in_the_decoders_layout_and_converted_when_asked() {
        // 1080p I420: 1.5 bytes a pixel in the ring, where BGR copies took 3.
        let mut ring = FrameRing::new(2);
        let f = frame(1920, 1080, 120);
        for i in 0..5 {
            ring.push(i, &view(1920, 1080, &f));
        }
        assert_eq!(ring.len_bytes(), 2 * 1920 * 1080 * 3 / 2);
        let bgr = BgrImage::from_view(&ring.get(4).unwrap().view()).unwrap();
        let direct = BgrImage::from_view(&view(1920, 1080, &f)).unwrap();
        assert_eq!(bgr.to_bgr_bytes(), direct.to_bgr_bytes());
        assert_eq!((bgr.width(), bgr.height()), (1920, 1080));
    }
}
