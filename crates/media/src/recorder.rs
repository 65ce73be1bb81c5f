use std::collections::VecDeque;
use std::path::{Path, PathBuf};
use std::sync::mpsc;
use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime};

use gst::prelude::*;
use roadwarden_types::CameraId;

use crate::bus::{clock, dur};
use crate::{MediaError, Template};

/// One encoded access unit (an H.264/H.265 frame) as it left the parser.
#[derive(Clone)]
pub(crate) struct AccessUnit {
    pub(crate) buffer: gst::Buffer,
    pub(crate) caps: gst::Caps,
    pub(crate) timeline: Duration,
    pub(crate) wall: SystemTime,
    pub(crate) key: bool,
    pub(crate) session: u64,
}

/// The evidence recorder of one camera: keeps the last `pre_event` seconds (from a key frame on) of
/// encoded video in memory and writes pre + post seconds to MP4 on request, without re-encoding.
/// Cheap to clone; clones share the ring.
#[derive(Clone)]
pub struct Recorder {
    camera: CameraId,
    inner: Arc<Mutex<Inner>>,
}

struct Inner {
    pre_event: Duration,
    ring: VecDeque<AccessUnit>,
    session: Option<u64>,
    pending: Vec<Pending>,
}

struct Pending {
    path: PathBuf,
    units: Vec<AccessUnit>,
    requested: (Duration, Duration),
    tx: mpsc::Sender<Result<ClipReport, MediaError>>,
}

/// A clip being recorded; [`ClipJob::wait`] for its report.
pub struct ClipJob {
    rx: mpsc::Receiver<Result<ClipReport, MediaError>>,
    path: PathBuf,
    /// The window asked for, on the camera's timeline ([`crate::Frame::timeline`]).
    pub requested_start: Duration,
    pub requested_end: Duration,
}

/// What a clip actually holds.
#[derive(Debug, Clone, PartialEq)]
pub struct ClipReport {
    pub path: PathBuf,
    /// Timeline positions of the first frame and of the end of the last one.
    pub start: Duration,
    pub end: Duration,
    /// Wall-clock time of the first frame.
    pub start_wall: SystemTime,
    pub frames: usize,
    /// Always true: a clip starts on a key frame (possibly earlier than asked for).
    pub starts_on_key_frame: bool,
    /// The window asked for.
    pub requested_start: Duration,
    pub requested_end: Duration,
    /// False when the stream broke (reconnect, caps change) or the camera stopped before the post window
    /// ended, or the ring did not reach back to the requested start.
    pub complete: bool,
}

impl ClipReport {
    pub fn duration(&self) -> Duration {
        self.end - self.start
    }
}

impl ClipJob {
    /// Waits for the clip to be written.
    pub fn wait(self, timeout: Duration) -> Result<ClipReport, MediaError> {
        self.rx.recv_timeout(timeout).unwrap_or_else(|_| {
            Err(MediaError::Clip {
                path: self.path.clone(),
                reason: format!("not finished within {timeout:?}"),
            })
        })
    }
}

impl Recorder {
    pub(crate) fn new(camera: CameraId, pre_event: Duration) -> Recorder {
        Recorder {
            camera,
            inner: Arc::new(Mutex::new(Inner {
                pre_event,
                ring: VecDeque::new(),
                session: None,
                pending: Vec::new(),
            })),
        }
    }

    /// Seconds of video in the ring now (from its first key frame to its newest unit).
    pub fn buffered(&self) -> Duration {
        let inner = self.inner.lock().unwrap();
        match (inner.ring.front(), inner.ring.back()) {
            (Some(a), Some(b)) => b.timeline.saturating_sub(a.timeline),
            _ => Duration::ZERO,
        }
    }

    pub(crate) fn push(&self, au: AccessUnit) {
        let mut inner = self.inner.lock().unwrap();
        let broke = inner.session != Some(au.session)
            || inner.ring.back().is_some_and(|b| b.caps != au.caps);
        if broke {
            inner.ring.clear();
            inner.session = Some(au.session);
            cut_pending(&mut inner, &self.camera);
        }
        if inner.ring.is_empty() && !au.key {
            // Joined mid-GOP: nothing decodable until the next key frame.
            return;
        }
        inner.ring.push_back(au.clone());
        // Keep the latest key frame at or before newest - pre_event.
        let horizon = au.timeline.saturating_sub(inner.pre_event);
        loop {
            let next_key = inner.ring.iter().skip(1).position(|u| u.key).map(|i| i + 1);
            match next_key {
                Some(k) if inner.ring[k].timeline <= horizon => {
                    inner.ring.drain(..k);
                }
                _ => break,
            }
        }
        let mut i = 0;
        while i < inner.pending.len() {
            inner.pending[i].units.push(au.clone());
            if au.timeline >= inner.pending[i].requested.1 {
                let p = inner.pending.swap_remove(i);
                finish(p, true, self.camera.clone());
            } else {
                i += 1;
            }
        }
    }

    /// The session ended (reconnect or stop): clips being recorded are written with what they have.
    pub(crate) fn end_session(&self) {
        let mut inner = self.inner.lock().unwrap();
        cut_pending(&mut inner, &self.camera);
    }

    /// Records `pre` seconds before the newest frame and `post` seconds after it to an MP4 at `path`.
    /// The clip starts on the latest key frame at or before the requested start, so it may begin up to one
    /// GOP early; the report says what it holds. `pre` is limited by the camera's pre-event window.
    pub fn request_clip(
        &self,
        path: &Path,
        pre: Duration,
        post: Duration,
    ) -> Result<ClipJob, MediaError> {
        let mut inner = self.inner.lock().unwrap();
        let Some(newest) = inner.ring.back() else {
            return Err(MediaError::Clip {
                path: path.to_owned(),
                reason: format!("camera {} has no recorded video yet", self.camera),
            });
        };
        let event = newest.timeline;
        let requested = (event.saturating_sub(pre), event + post);
        let start = inner
            .ring
            .iter()
            .rposition(|u| u.key && u.timeline <= requested.0)
            .unwrap_or(0);
        let (tx, rx) = mpsc::channel();
        let pending = Pending {
            path: path.to_owned(),
            units: inner.ring.iter().skip(start).cloned().collect(),
            requested,
            tx,
        };
        if post.is_zero() {
            finish(pending, true, self.camera.clone());
        } else {
            inner.pending.push(pending);
        }
        Ok(ClipJob {
            rx,
            path: path.to_owned(),
            requested_start: requested.0,
            requested_end: requested.1,
        })
    }
}

fn cut_pending(inner: &mut Inner, camera: &CameraId) {
    for p in inner.pending.drain(..) {
        finish(p, false, camera.clone());
    }
}

fn finish(p: Pending, reached_end: bool, camera: CameraId) {
    std::thread::Builder::new()
        .name("clip-writer".into())
        .spawn(move || {
            let result = write_clip(&p, reached_end);
            match &result {
                Ok(r) => {
                    tracing::info!(camera = %camera, path = %r.path.display(), frames = r.frames,
                    start = ?r.start, end = ?r.end, complete = r.complete, "clip written")
                }
                Err(e) => tracing::warn!(camera = %camera, error = %e, "clip failed"),
            }
            let _ = p.tx.send(result);
        })
        .expect("spawn clip writer");
}

fn write_clip(p: &Pending, reached_end: bool) -> Result<ClipReport, MediaError> {
    let err = |reason: String| MediaError::Clip {
        path: p.path.clone(),
        reason,
    };
    let units = &p.units;
    let Some(first) = units.first() else {
        return Err(err("no video was recorded in the requested window".into()));
    };
    let last = units.last().unwrap();
    let caps = &first.caps;
    let parser = match caps.structure(0).map(|s| s.name().as_str()) {
        Some("video/x-h264") => "h264parse",
        Some("video/x-h265") => "h265parse",
        other => return Err(err(format!("cannot mux {other:?} into MP4"))),
    };
    let text =
        Template::clip().render(&[("parser", parser), ("location", &p.path.to_string_lossy())])?;
    let pipeline = gst::parse::launch(&text)
        .map_err(|e| err(e.to_string()))?
        .downcast::<gst::Pipeline>()
        .map_err(|_| err("clip template is not a pipeline".into()))?;
    let appsrc = pipeline
        .by_name("src")
        .and_then(|e| e.downcast::<gst_app::AppSrc>().ok())
        .ok_or_else(|| err("clip template has no appsrc named src".into()))?;
    appsrc.set_caps(Some(caps));
    appsrc.set_format(gst::Format::Time);
    let result = (|| {
        pipeline
            .set_state(gst::State::Playing)
            .map_err(|e| err(format!("cannot start the muxer: {e}")))?;
        let stamps = clip_stamps(units.iter().map(|u| Stamp {
            pts: u.buffer.pts().map(dur),
            dts: u.buffer.dts().map(dur),
            timeline: u.timeline,
        }));
        for (u, (pts, dts)) in units.iter().zip(stamps) {
            let mut b = u.buffer.copy();
            {
                let b = b.get_mut().unwrap();
                b.set_pts(clock(pts));
                b.set_dts(dts.map(clock));
            }
            appsrc
                .push_buffer(b)
                .map_err(|e| err(format!("muxer refused a frame: {e:?}")))?;
        }
        appsrc.end_of_stream().map_err(|e| err(format!("{e:?}")))?;
        let bus = pipeline
            .bus()
            .ok_or_else(|| err("clip pipeline has no bus".into()))?;
        crate::bus::wait_for_eos(&bus, Duration::from_secs(20), "muxer").map_err(err)
    })();
    let _ = pipeline.set_state(gst::State::Null);
    result?;
    let frame = last
        .buffer
        .duration()
        .map(|d| Duration::from_nanos(d.nseconds()))
        .or_else(|| {
            (units.len() > 1)
                .then(|| (last.timeline.saturating_sub(first.timeline)) / (units.len() as u32 - 1))
        })
        .unwrap_or_default();
    let end = last.timeline + frame;
    Ok(ClipReport {
        path: p.path.clone(),
        start: first.timeline,
        end,
        start_wall: first.wall,
        frames: units.len(),
        starts_on_key_frame: first.key,
        requested_start: p.requested.0,
        requested_end: p.requested.1,
        complete: reached_end && first.timeline <= p.requested.0,
    })
}

/// What the clip writer knows of one access unit's time.
#[derive(Debug, Clone, Copy)]
struct Stamp {
    pts: Option<Duration>,
    dts: Option<Duration>,
    timeline: Duration,
}

/// The (PTS, DTS) each unit gets in the clip, counted from the first unit's decode time.
///
/// The muxer refuses a buffer without a PTS, and an RTP depayloader leaves one out now and then
/// (seen under CPU load): such a unit is placed by its timeline position, relative to the nearest
/// earlier unit that has a PTS (or the first later one). A unit's DTS is kept where it has one.
fn clip_stamps(stamps: impl Iterator<Item = Stamp>) -> Vec<(Duration, Option<Duration>)> {
    let stamps: Vec<Stamp> = stamps.collect();
    let mut reference = stamps.iter().find_map(|s| s.pts.map(|p| (p, s.timeline)));
    let mut filled = Vec::with_capacity(stamps.len());
    for s in &stamps {
        let pts = match (s.pts, reference) {
            (Some(p), _) => {
                reference = Some((p, s.timeline));
                p
            }
            (None, Some((rp, rt))) if s.timeline >= rt => rp + (s.timeline - rt),
            (None, Some((rp, rt))) => rp.saturating_sub(rt - s.timeline),
            (None, None) => s.timeline,
        };
        filled.push((pts, s.dts));
    }
    let base = filled
        .first()
        .map(|&(pts, dts)| dts.unwrap_or(pts))
        .unwrap_or_default();
    filled
        .into_iter()
        .map(|(pts, dts)| {
            (
                pts.saturating_sub(base),
                dts.map(|d| d.saturating_sub(base)),
            )
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ms(v: u64) -> Duration {
        Duration::from_millis(v)
    }

    fn stamp(pts: Option<u64>, dts: Option<u64>, timeline: u64) -> Stamp {
        Stamp {
            pts: pts.map(ms),
            dts: dts.map(ms),
            timeline: ms(timeline),
        }
    }

    #[test]
    fn a_unit_without_pts_is_placed_by_its_timeline() {
        // PTS 5000.. on a timeline that starts at 100; the third unit lost its PTS.
        let got = clip_stamps(
            [
                stamp(Some(5000), None, 100),
                stamp(Some(5040), None, 140),
                stamp(None, None, 181),
                stamp(Some(5120), None, 220),
            ]
            .into_iter(),
        );
        assert_eq!(
            got,
            vec![
                (ms(0), None),
                (ms(40), None),
                (ms(81), None),
                (ms(120), None)
            ]
        );
    }

    #[test]
    fn leading_units_without_pts_take_it_from_a_later_one() {
        let got = clip_stamps(
            [
                stamp(None, None, 100),
                stamp(Some(5040), None, 140),
                stamp(Some(5080), None, 180),
            ]
            .into_iter(),
        );
        assert_eq!(got, vec![(ms(0), None), (ms(40), None), (ms(80), None)]);
        // No PTS anywhere: the timeline alone.
        let got = clip_stamps([stamp(None, None, 100), stamp(None, None, 140)].into_iter());
        assert_eq!(got, vec![(ms(0), None), (ms(40), None)]);
    }

    #[test]
    fn reordered_frames_keep_their_decode_times() {
        // I P B B in decode order: DTS rises, PTS does not; counted from the first DTS.
        let got = clip_stamps(
            [
                stamp(Some(1080), Some(1000), 80),
                stamp(Some(1200), Some(1040), 200),
                stamp(Some(1120), Some(1080), 120),
                stamp(Some(1160), Some(1120), 160),
            ]
            .into_iter(),
        );
        assert_eq!(
            got,
            vec![
                (ms(80), Some(ms(0))),
                (ms(200), Some(ms(40))),
                (ms(120), Some(ms(80))),
                (ms(160), Some(ms(120)))
            ]
        );
    }
}
