//! ByteTrack's association loop (`byte_tracker.py`, ultralytics `BYTETracker`).

use roadwarden_types::{BBox, ClassId, Detection};
use serde::{Deserialize, Serialize};
use thiserror::Error;

use crate::assignment::linear_assignment;
use crate::kalman::{KalmanFilter, KalmanState, bbox_to_xyah};

/// Cost limit of the second association (low-score detections against tracked tracks), as in
/// the reference.
pub const LOW_SCORE_MATCH_THRESH: f32 = 0.5;
/// Cost limit of the association of tentative tracks with the leftover high-score detections.
pub const UNCONFIRMED_MATCH_THRESH: f32 = 0.7;
/// A tracked and a lost track whose IoU distance (1 - IoU) is below this are duplicates; the
/// younger is dropped (`remove_duplicate_stracks`).
pub const DUPLICATE_IOU_DISTANCE: f32 = 0.15;

/// A track's identity: strictly increasing per [`Tracker`], starting at 1, never reused.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(transparent)]
pub struct TrackId(pub u64);

impl std::fmt::Display for TrackId {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        self.0.fmt(f)
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum TrackState {
    /// Started from one detection and not yet matched again (ByteTrack: tracked, not
    /// activated). Rules should ignore it: it may be a one-frame false positive.
    Tentative,
    /// Matched on at least two consecutive frames (or started on the tracker's first frame).
    Confirmed,
    /// Confirmed before, unmatched since; kept and predicted for up to the track buffer.
    Lost,
    /// Gone for good; its id is never used again.
    Removed,
}

/// One tracked object, as of the tracker's latest frame.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Track {
    pub id: TrackId,
    pub state: TrackState,
    /// The Kalman filter's estimate: corrected by this frame's detection if matched,
    /// otherwise predicted.
    pub bbox: BBox,
    /// The class of the latest matched detection.
    pub class_id: ClassId,
    /// The score of the latest matched detection.
    pub score: f32,
    /// Detections matched so far, including the one that started the track.
    pub hits: u32,
    /// Frames since the track started (0 on its first frame).
    pub age: u32,
    /// Frames since it was last matched (0 if matched this frame).
    pub frames_since_update: u32,
    /// Index into this frame's detections of the one matched (or that started the track).
    pub last_detection: Option<usize>,
}

impl Track {
    pub fn is_confirmed(&self) -> bool {
        self.state == TrackState::Confirmed
    }

    pub fn is_tentative(&self) -> bool {
        self.state == TrackState::Tentative
    }
}

/// The confirmed tracks among `tracks` (e.g. the output of [`Tracker::update`]).
pub fn confirmed(tracks: &[Track]) -> impl Iterator<Item = &Track> {
    tracks.iter().filter(|t| t.is_confirmed())
}

/// ByteTrack's parameters; the defaults are ultralytics' `bytetrack.yaml`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct TrackerConfig {
    /// Detections scoring at least this take part in the first association.
    pub track_high_thresh: f32,
    /// Detections scoring above this (and below `track_high_thresh`) take part in the second
    /// association; those at or below it are ignored.
    pub track_low_thresh: f32,
    /// An unmatched high-score detection starts a track if it scores at least this.
    pub new_track_thresh: f32,
    /// Frames (at 30 fps) a lost track is kept before it is removed.
    pub track_buffer: u32,
    /// The stream's frame rate; the kept-lost age is `track_buffer * frame_rate / 30`.
    pub frame_rate: f64,
    /// Cost limit (cost = 1 - IoU, or 1 - IoU * score with `fuse_score`) of the first
    /// association: pairs costing more never match.
    pub match_thresh: f32,
    /// Weigh IoU by the detection score in the first and the tentative associations.
    pub fuse_score: bool,
    /// Match detections only to tracks of the same class.
    pub per_class: bool,
}

impl Default for TrackerConfig {
    fn default() -> Self {
        TrackerConfig {
            track_high_thresh: 0.25,
            track_low_thresh: 0.1,
            new_track_thresh: 0.25,
            track_buffer: 30,
            frame_rate: 30.0,
            match_thresh: 0.8,
            fuse_score: true,
            per_class: false,
        }
    }
}

#[derive(Debug, Error, Clone, PartialEq)]
pub enum ConfigError {
    #[error("tracker setting {field} must be a finite number, got {value}")]
    NotFinite { field: &'static str, value: f64 },
    #[error("tracker setting track_low_thresh ({low}) is above track_high_thresh ({high})")]
    LowAboveHigh { low: f32, high: f32 },
    #[error("tracker setting frame_rate must be positive, got {0}")]
    FrameRate(f64),
}

impl TrackerConfig {
    pub fn validate(&self) -> Result<(), ConfigError> {
        for (field, value) in [
            ("track_high_thresh", self.track_high_thresh),
            ("track_low_thresh", self.track_low_thresh),
            ("new_track_thresh", self.new_track_thresh),
            ("match_thresh", self.match_thresh),
        ] {
            if !value.is_finite() {
                return Err(ConfigError::NotFinite {
                    field,
                    value: value as f64,
                });
            }
        }
        if self.track_low_thresh > self.track_high_thresh {
            return Err(ConfigError::LowAboveHigh {
                low: self.track_low_thresh,
                high: self.track_high_thresh,
            });
        }
        if !(self.frame_rate.is_finite() && self.frame_rate > 0.0) {
            return Err(ConfigError::FrameRate(self.frame_rate));
        }
        Ok(())
    }

    /// Frames a lost track is kept: `int(frame_rate / 30 * track_buffer)` as in the reference.
    pub fn max_time_lost(&self) -> u64 {
        (self.frame_rate / 30.0 * self.track_buffer as f64) as u64
    }
}

/// A track with its filter state.
#[derive(Debug, Clone)]
struct Slot {
    track: Track,
    kf: KalmanState,
    /// Frame the track started on.
    start_frame: u64,
    /// Frame it was last matched on (ByteTrack's `frame_id` / `end_frame`).
    last_frame: u64,
}

impl Slot {
    /// Tracked in ByteTrack's sense: tentative or confirmed.
    fn is_tracked(&self) -> bool {
        matches!(
            self.track.state,
            TrackState::Tentative | TrackState::Confirmed
        )
    }
}

/// ByteTrack over the detections of one camera, one frame at a time.
#[derive(Debug, Clone)]
pub struct Tracker {
    config: TrackerConfig,
    max_time_lost: u64,
    kf: KalmanFilter,
    /// Live tracks (tentative, confirmed, lost) in order of creation, so by id.
    slots: Vec<Slot>,
    /// Tracks removed during the latest frame.
    removed: Vec<Track>,
    frame: u64,
    next_id: u64,
}

/// A detection that can be tracked: a finite box with positive width and height.
fn is_trackable(d: &Detection) -> bool {
    let b = &d.bbox;
    [b.x1, b.y1, b.x2, b.y2, d.score]
        .iter()
        .all(|x| x.is_finite())
        && b.x2 > b.x1
        && b.y2 > b.y1
}

impl Tracker {
    /// # Panics
    /// If the config is invalid ([`TrackerConfig::validate`]); use [`Tracker::try_new`] for
    /// configs from users.
    pub fn new(config: TrackerConfig) -> Self {
        match Self::try_new(config) {
            Ok(t) => t,
            Err(e) => panic!("{e}"),
        }
    }

    pub fn try_new(config: TrackerConfig) -> Result<Self, ConfigError> {
        config.validate()?;
        Ok(Tracker {
            max_time_lost: config.max_time_lost(),
            config,
            kf: KalmanFilter::new(),
            slots: Vec::new(),
            removed: Vec::new(),
            frame: 0,
            next_id: 1,
        })
    }

    pub fn config(&self) -> &TrackerConfig {
        &self.config
    }

    /// Frames seen so far, updated and coasted.
    pub fn frame(&self) -> u64 {
        self.frame
    }

    /// Live tracks, including lost ones, in order of id.
    pub fn tracks(&self) -> impl Iterator<Item = &Track> {
        self.slots.iter().map(|s| &s.track)
    }

    /// Where each live track (tentative, confirmed or lost) is expected in the next frame: its filter
    /// predicted one step ahead, as the next [`update`](Self::update) will predict it, without changing
    /// the tracker. For inference that looks only where the objects are going.
    pub fn predicted(&self) -> Vec<(TrackId, TrackState, BBox)> {
        self.slots
            .iter()
            .map(|s| (s.track.id, s.track.state, self.next_state(s).bbox()))
            .collect()
    }

    /// Tracks removed during the latest [`update`](Self::update) or [`coast`](Self::coast)
    /// (state [`TrackState::Removed`]), so downstream state keyed by id can be dropped.
    pub fn removed(&self) -> &[Track] {
        &self.removed
    }

    /// One frame of detections. Returns the tracks matched to a detection this frame or
    /// started by one, in order of id; check [`Track::state`] (or use [`confirmed`]) before
    /// acting on them, since tentative tracks are included.
    pub fn update(&mut self, detections: &[Detection]) -> Vec<Track> {
        self.begin_frame();
        let frame = self.frame;
        let cfg = self.config.clone();

        let mut high = Vec::new();
        let mut low = Vec::new();
        for (i, d) in detections.iter().enumerate() {
            if !is_trackable(d) {
                continue;
            }
            if d.score >= cfg.track_high_thresh {
                high.push(i);
            } else if d.score > cfg.track_low_thresh {
                low.push(i);
            }
        }

        let unconfirmed: Vec<usize> = self.indices(|s| s.track.state == TrackState::Tentative);
        let was_lost: Vec<usize> = self.indices(|s| s.track.state == TrackState::Lost);
        // ByteTrack's strack_pool: confirmed tracks, then lost ones, all predicted.
        let mut pool: Vec<usize> = self.indices(|s| s.track.state == TrackState::Confirmed);
        pool.extend(&was_lost);
        for &i in &pool {
            self.predict(i);
        }

        // 1. High-score detections against confirmed and lost tracks.
        let a = self.associate(&pool, &high, detections, cfg.fuse_score, cfg.match_thresh);
        for &(r, c) in &a.matches {
            self.matched(pool[r], high[c], &detections[high[c]], frame);
        }
        let remaining_high: Vec<usize> = a.unmatched_cols.iter().map(|&c| high[c]).collect();

        // 2. Low-score detections against the still unmatched tracks that were not lost.
        let r_tracked: Vec<usize> = a
            .unmatched_rows
            .iter()
            .map(|&r| pool[r])
            .filter(|&i| self.slots[i].track.state == TrackState::Confirmed)
            .collect();
        let a = self.associate(&r_tracked, &low, detections, false, LOW_SCORE_MATCH_THRESH);
        for &(r, c) in &a.matches {
            self.matched(r_tracked[r], low[c], &detections[low[c]], frame);
        }
        for &r in &a.unmatched_rows {
            self.slots[r_tracked[r]].track.state = TrackState::Lost;
        }

        // 3. Tentative tracks against the high-score detections left over.
        let a = self.associate(
            &unconfirmed,
            &remaining_high,
            detections,
            cfg.fuse_score,
            UNCONFIRMED_MATCH_THRESH,
        );
        for &(r, c) in &a.matches {
            let d = remaining_high[c];
            self.matched(unconfirmed[r], d, &detections[d], frame);
        }
        for &r in &a.unmatched_rows {
            self.slots[unconfirmed[r]].track.state = TrackState::Removed;
        }

        // 4. New tracks from what is left, if confident enough.
        for &c in &a.unmatched_cols {
            let d = remaining_high[c];
            if detections[d].score >= cfg.new_track_thresh {
                self.start(d, &detections[d]);
            }
        }

        // 5. Lost tracks past the buffer are removed.
        for &i in &was_lost {
            let s = &mut self.slots[i];
            if s.track.state == TrackState::Lost && frame - s.last_frame > self.max_time_lost {
                s.track.state = TrackState::Removed;
            }
        }

        self.remove_duplicates();
        self.end_frame();
        self.slots
            .iter()
            .filter(|s| s.track.last_detection.is_some())
            .map(|s| s.track.clone())
            .collect()
    }

    /// A frame without inference (e.g. skipped by motion gating): confirmed and lost tracks
    /// move on by one prediction step, nothing is matched, nothing becomes lost, and lost
    /// tracks past the buffer are removed. Tentative tracks wait for the next update, as
    /// ByteTrack never predicts them.
    pub fn coast(&mut self) {
        self.begin_frame();
        let frame = self.frame;
        for i in self.indices(|s| matches!(s.track.state, TrackState::Confirmed | TrackState::Lost))
        {
            self.predict(i);
        }
        for s in &mut self.slots {
            if s.track.state == TrackState::Lost && frame - s.last_frame > self.max_time_lost {
                s.track.state = TrackState::Removed;
            }
        }
        self.end_frame();
    }

    fn begin_frame(&mut self) {
        self.frame += 1;
        self.removed.clear();
        for s in &mut self.slots {
            s.track.last_detection = None;
        }
    }

    /// Drops removed tracks (into `self.removed`) and refreshes the public view of the rest.
    fn end_frame(&mut self) {
        let frame = self.frame;
        let mut kept = Vec::with_capacity(self.slots.len());
        for mut s in self.slots.drain(..) {
            s.track.bbox = s.kf.bbox();
            s.track.age = u32::try_from(frame - s.start_frame).unwrap_or(u32::MAX);
            s.track.frames_since_update = u32::try_from(frame - s.last_frame).unwrap_or(u32::MAX);
            if s.track.state == TrackState::Removed {
                s.track.last_detection = None;
                self.removed.push(s.track);
            } else {
                kept.push(s);
            }
        }
        self.slots = kept;
    }

    fn indices(&self, keep: impl Fn(&Slot) -> bool) -> Vec<usize> {
        (0..self.slots.len())
            .filter(|&i| keep(&self.slots[i]))
            .collect()
    }

    /// A slot's filter state one step ahead (its own state untouched).
    fn next_state(&self, s: &Slot) -> KalmanState {
        let mut kf = s.kf;
        if !s.is_tracked() {
            // As the reference: a lost track's height stops changing.
            kf.mean[7] = 0.0;
        }
        self.kf.predict(&mut kf);
        kf
    }

    fn predict(&mut self, i: usize) {
        self.slots[i].kf = self.next_state(&self.slots[i]);
    }

    /// IoU-based association of the slots `tracks` with the detections `dets` (indices).
    fn associate(
        &self,
        tracks: &[usize],
        dets: &[usize],
        detections: &[Detection],
        fuse_score: bool,
        thresh: f32,
    ) -> crate::Assignment {
        let mut cost = Vec::with_capacity(tracks.len() * dets.len());
        for &t in tracks {
            let s = &self.slots[t];
            let tb = s.kf.bbox();
            for &d in dets {
                let d = &detections[d];
                if self.config.per_class && d.class_id != s.track.class_id {
                    cost.push(f64::INFINITY);
                    continue;
                }
                let iou = tb.iou(&d.bbox);
                let sim = if fuse_score { iou * d.score } else { iou };
                cost.push((1.0 - sim) as f64);
            }
        }
        linear_assignment(&cost, tracks.len(), dets.len(), thresh as f64)
    }

    /// Slot `i` takes detection `index` (ByteTrack's `update`, or `re_activate` for a lost track).
    fn matched(&mut self, i: usize, index: usize, d: &Detection, frame: u64) {
        let s = &mut self.slots[i];
        let z = bbox_to_xyah(&d.bbox);
        if self.kf.update(&mut s.kf, z).is_err() {
            // Not reachable with positive-height boxes; restart the filter rather than panic.
            s.kf = self.kf.initiate(z);
        }
        s.last_frame = frame;
        s.track.state = TrackState::Confirmed;
        s.track.class_id = d.class_id;
        s.track.score = d.score;
        s.track.hits = s.track.hits.saturating_add(1);
        s.track.last_detection = Some(index);
    }

    /// A new track from detection `index` (ByteTrack's `activate`): it takes the next id, and
    /// is confirmed at once only on the tracker's first frame.
    fn start(&mut self, index: usize, d: &Detection) {
        let id = TrackId(self.next_id);
        self.next_id += 1;
        let kf = self.kf.initiate(bbox_to_xyah(&d.bbox));
        let state = if self.frame == 1 {
            TrackState::Confirmed
        } else {
            TrackState::Tentative
        };
        self.slots.push(Slot {
            track: Track {
                id,
                state,
                bbox: kf.bbox(),
                class_id: d.class_id,
                score: d.score,
                hits: 1,
                age: 0,
                frames_since_update: 0,
                last_detection: Some(index),
            },
            kf,
            start_frame: self.frame,
            last_frame: self.frame,
        });
    }

    /// ByteTrack's `remove_duplicate_stracks`: of a tracked and a lost track covering the same
    /// object, the one with the shorter history goes (the tracked one on a tie).
    fn remove_duplicates(&mut self) {
        let tracked = self.indices(Slot::is_tracked);
        let lost = self.indices(|s| s.track.state == TrackState::Lost);
        let mut drop = vec![false; self.slots.len()];
        for &p in &tracked {
            for &q in &lost {
                let (a, b) = (&self.slots[p], &self.slots[q]);
                if self.config.per_class && a.track.class_id != b.track.class_id {
                    continue;
                }
                if 1.0 - a.kf.bbox().iou(&b.kf.bbox()) < DUPLICATE_IOU_DISTANCE {
                    let time_p = a.last_frame - a.start_frame;
                    let time_q = b.last_frame - b.start_frame;
                    if time_p > time_q {
                        drop[q] = true;
                    } else {
                        drop[p] = true;
                    }
                }
            }
        }
        for (s, drop) in self.slots.iter_mut().zip(drop) {
            if drop {
                s.track.state = TrackState::Removed;
            }
        }
    }
}
