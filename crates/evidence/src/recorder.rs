//! The recorder: turns a violation and its frames into durable evidence files
//! and a committed chain record, or a spooled one while the store is down.

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use roadwarden_imaging::{BgrImage, EvidenceOverlay};
use roadwarden_store::{
    DataDir, EvidenceItem, EvidenceKind, GENESIS_HASH, InsertOutcome, NewViolation, NodeId,
    ReconcileReport, ReplayReport, Spool, Store, redact_url,
};
use roadwarden_types::{FrameRole, SignalState, Violation, ViolationKind};

use crate::EvidenceError;
use crate::chain::record_hash;
use crate::files::{copy_atomic, write_atomic};
use crate::intent;

/// One evidence frame as the pipeline hands it over.
pub enum FrameImage {
    /// Decoded pixels; the unmarked copy is encoded as JPEG.
    Bgr(BgrImage),
    /// An encoded JPEG; stored byte for byte as the unmarked copy.
    Jpeg(Vec<u8>),
}

/// Everything the pipeline has for one violation.
pub struct Capture {
    pub violation: Violation,
    /// One image per evidence frame, by role (as in `violation.frames`).
    pub frames: Vec<(FrameRole, FrameImage)>,
    /// The clip the media recorder wrote, copied into the data folder.
    pub clip: Option<PathBuf>,
    /// The camera's stop line in frame pixels, drawn on red-light photos.
    pub stop_line: Option<[(f32, f32); 2]>,
}

impl Capture {
    /// The capture of `violation` from the unmarked images of its evidence frames, by role (as the
    /// pipeline's frame ring hands them out): photos with the overlay, the raw frames and the offender
    /// crops are made from these.
    pub fn new(
        violation: Violation,
        images: impl IntoIterator<Item = (FrameRole, BgrImage)>,
    ) -> Capture {
        Capture {
            violation,
            frames: images
                .into_iter()
                .map(|(r, i)| (r, FrameImage::Bgr(i)))
                .collect(),
            clip: None,
            stop_line: None,
        }
    }

    /// The camera's stop line (drawn on red-light photos).
    pub fn with_stop_line(mut self, line: [(f32, f32); 2]) -> Capture {
        self.stop_line = Some(line);
        self
    }

    /// A clip file to copy into the data folder with the photos.
    pub fn with_clip(mut self, clip: Option<PathBuf>) -> Capture {
        self.clip = clip;
        self
    }
}

/// The offender crop of an evidence frame: its first box (the head for no-helmet, the rider for red
/// light) grown by half its size each way (at least 16 px), clipped to the image.
fn offender_crop(v: &Violation, role: FrameRole, img: &BgrImage) -> Option<BgrImage> {
    let f = v.frames.iter().find(|f| f.role == role)?;
    let b = f.boxes.first()?.bbox;
    let (w, h) = (b.width().max(16.0), b.height().max(16.0));
    let (cx, cy) = ((b.x1 + b.x2) / 2.0, (b.y1 + b.y2) / 2.0);
    let grown = roadwarden_types::BBox::from_cxcywh(cx, cy, w * 2.0, h * 2.0);
    match img.crop(&grown) {
        Ok(c) => Some(c),
        Err(e) => {
            tracing::warn!(violation = %v.id, "no crop: {e}");
            None
        }
    }
}

/// The plate crop: the plate detector's box on the frame it was found in (the key frame for
/// no-helmet, the crossing for red light), grown by a quarter of its height each way, clipped.
fn plate_crop(v: &Violation, img: &BgrImage) -> Option<BgrImage> {
    let b = v.plate_read.as_ref()?.bbox;
    let m = b.height().max(4.0) / 4.0;
    let grown = roadwarden_types::BBox::new(b.x1 - m, b.y1 - m, b.x2 + m, b.y2 + m);
    match img.crop(&grown) {
        Ok(c) => Some(c),
        Err(e) => {
            tracing::warn!(violation = %v.id, "no plate crop: {e}");
            None
        }
    }
}

/// Where a recorded violation ended up.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Recorded {
    /// In the store as record `seq` of its camera's chain.
    Committed { seq: i64 },
    /// Already recorded (same violation id); nothing written.
    AlreadyRecorded,
    /// The store is unreachable: in the spool, fsynced, to be replayed in order.
    Spooled,
}

/// What opening a recorder found.
#[derive(Debug, Clone, Default)]
pub struct StartupReport {
    pub connected: bool,
    /// Why the store could not be reached (URL redacted).
    pub connect_error: Option<String>,
    pub replayed: Option<ReplayReport>,
    pub reconcile: Option<ReconcileReport>,
    /// Records still waiting in the spool.
    pub spooled: usize,
    /// What became of the violations and clips a crash left in progress.
    pub recovery: Recovery,
}

/// What opening a recorder did with the intents and clips in progress that a crash left.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Recovery {
    /// Violations already committed or spooled whose intent was left: the intent was dropped.
    pub already_recorded: Vec<String>,
    /// Violations finished from their intent: (id, how, whether their clip made it in).
    pub finished: Vec<(String, Recorded, bool)>,
    /// Intents that could not be finished, moved to the quarantine: (relative path there, why).
    pub quarantined_intents: Vec<(String, String)>,
    /// Intents kept for the next start (an I/O error while finishing them): (id, the error).
    pub kept: Vec<(String, String)>,
    /// Clips in progress that no violation took: (relative path before, relative path in the quarantine).
    pub quarantined_clips: Vec<(String, String)>,
}

pub struct Recorder {
    data: DataDir,
    /// The data folder's node id: every violation this recorder inserts names it as the holder of
    /// its evidence files.
    node: NodeId,
    url: String,
    store: Option<Store>,
    spool: Spool,
    next_connect: Instant,
    retry: Duration,
}

fn role_name(r: FrameRole) -> &'static str {
    match r {
        FrameRole::Key => "key",
        FrameRole::Before => "before",
        FrameRole::At => "at",
        FrameRole::After => "after",
    }
}

fn safe_component(s: &str) -> String {
    let out: String = s
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.') {
                c
            } else {
                '_'
            }
        })
        .collect();
    if out.is_empty() || out.starts_with('.') {
        format!("_{out}")
    } else {
        out
    }
}

impl Recorder {
    /// Opens the data folder and the store at `database_url` (default: the
    /// SQLite file in the data folder). If the store is reachable, replays the
    /// spool and reconciles the evidence folder; if not, records go to the
    /// spool until it is.
    pub async fn open(
        data: DataDir,
        database_url: Option<&str>,
    ) -> Result<(Recorder, StartupReport), EvidenceError> {
        data.create()?;
        let node = data.ensure_node_id(None)?;
        let spool = Spool::open(&data.spool_path())?;
        let url = database_url
            .map(str::to_owned)
            .unwrap_or_else(|| data.sqlite_path().to_string_lossy().into_owned());
        let mut rec = Recorder {
            data,
            node,
            url,
            store: None,
            spool,
            next_connect: Instant::now(),
            retry: Duration::from_millis(500),
        };
        let mut report = StartupReport::default();
        match Store::connect(&rec.url).await {
            Ok(store) => {
                let store = store.with_node(Some(rec.node.clone()));
                report.connected = true;
                match store.replay(&mut rec.spool, record_hash).await {
                    Ok(r) => report.replayed = Some(r),
                    Err(e) => tracing::warn!("spool replay failed, will retry: {e}"),
                }
                rec.store = Some(store);
            }
            Err(e) => {
                tracing::warn!("store unreachable, spooling: {e}");
                report.connect_error = Some(e.to_string());
                rec.next_connect = Instant::now() + rec.retry;
            }
        }
        report.recovery = rec.recover().await?;
        if let Some(store) = &rec.store {
            report.reconcile = Some(store.reconcile(&rec.data, &rec.spool).await?);
        }
        report.spooled = rec.spool.len();
        Ok((rec, report))
    }

    /// Finishes every intent a crash left (commits or spools its violation from the frames kept in it,
    /// with its clip if that was finished), drops those already recorded, quarantines what cannot be
    /// finished, and quarantines every clip in progress that no violation took. Logs what it did.
    async fn recover(&mut self) -> Result<Recovery, EvidenceError> {
        let mut out = Recovery::default();
        let stamp = DataDir::quarantine_stamp();
        // Temp files of intents whose write a crash cut short: never acknowledged, nothing refers to them.
        for tmp in intent::list_dir(&self.data.intents_dir(), |n| n.starts_with('.'))? {
            std::fs::remove_file(&tmp).map_err(|e| EvidenceError::io(&tmp, e))?;
        }
        for file in intent::list(&self.data)? {
            let name = file
                .file_name()
                .map(|n| n.to_string_lossy().into_owned())
                .unwrap_or_default();
            let rel = format!("intents/{name}");
            let it = match intent::read(&file) {
                Ok(it) => it,
                Err(e) => {
                    let to = self.data.quarantine_file(&rel, &stamp)?;
                    tracing::error!(intent = %rel, quarantine = %to, "unreadable intent quarantined: {e}");
                    out.quarantined_intents.push((to, e.to_string()));
                    continue;
                }
            };
            let id = it.violation.id.to_string();
            let clip = it.clip.clone().filter(|c| intent::clip_complete(c));
            if let Some(c) = it.clip.as_ref().filter(|c| c.exists() && clip.is_none()) {
                tracing::warn!(violation = %id, clip = %c.display(), "the clip in progress was cut off by the crash; recording the violation without it");
            }
            let capture = Capture {
                violation: it.violation,
                frames: it
                    .frames
                    .into_iter()
                    .map(|(r, b)| (r, FrameImage::Jpeg(b)))
                    .collect(),
                clip: clip.clone(),
                stop_line: it.stop_line,
            };
            match self.record(capture).await {
                Ok(Recorded::AlreadyRecorded) => {
                    tracing::info!(violation = %id, "intent left by a crash: the violation was already recorded");
                    out.already_recorded.push(id);
                }
                Ok(how) => {
                    tracing::warn!(violation = %id, outcome = ?how, clip = clip.is_some(), "violation left in progress by a crash finished from its intent");
                    if let Some(c) = &clip {
                        let _ = std::fs::remove_file(c);
                    }
                    out.finished.push((id, how, clip.is_some()));
                }
                Err(e @ EvidenceError::Io { .. }) => {
                    tracing::error!(violation = %id, "intent left by a crash could not be finished, kept for the next start: {e}");
                    out.kept.push((id, e.to_string()));
                }
                Err(e) => {
                    let to = self.data.quarantine_file(&rel, &stamp)?;
                    tracing::error!(violation = %id, quarantine = %to, "intent left by a crash cannot be recorded, quarantined: {e}");
                    out.quarantined_intents.push((to, e.to_string()));
                }
            }
        }
        let clips = self.data.clips_in_progress_dir();
        for file in intent::list_dir(&clips, |_| true)? {
            let name = file
                .file_name()
                .map(|n| n.to_string_lossy().into_owned())
                .unwrap_or_default();
            let rel = format!("clips-in-progress/{name}");
            let to = self.data.quarantine_file(&rel, &stamp)?;
            tracing::warn!(clip = %rel, quarantine = %to, "clip in progress left by a crash, taken by no violation, quarantined");
            out.quarantined_clips.push((rel, to));
        }
        Ok(out)
    }

    /// How long to wait between reconnect attempts while the store is down.
    pub fn set_retry_interval(&mut self, d: Duration) {
        self.retry = d;
    }

    pub fn data(&self) -> &DataDir {
        &self.data
    }

    /// The store, while it is reachable.
    pub fn store(&self) -> Option<&Store> {
        self.store.as_ref()
    }

    /// Records waiting in the spool.
    pub fn spooled(&self) -> usize {
        self.spool.len()
    }

    /// Reconnects if needed and replays the spool; returns how many records are still spooled.
    pub async fn flush(&mut self) -> usize {
        if self.store.is_none() {
            self.next_connect = Instant::now();
        }
        self.ensure_flushed().await;
        self.spool.len()
    }

    /// The background retry: replays the spool if the store is reachable, reconnecting first if it was
    /// lost and the retry interval since the last attempt has passed (so a caller may tick often);
    /// returns how many records are still spooled. Nothing is recorded here: it only moves the spool.
    pub async fn replay_spool(&mut self) -> usize {
        if !self.spool.is_empty() {
            self.ensure_flushed().await;
        }
        self.spool.len()
    }

    /// True when the store is connected and the spool empty (so new records may go straight in).
    async fn ensure_flushed(&mut self) -> bool {
        if self.store.is_none() && Instant::now() >= self.next_connect {
            match Store::connect(&self.url).await {
                Ok(s) => {
                    let s = s.with_node(Some(self.node.clone()));
                    tracing::info!(url = %redact_url(&self.url), "store reachable again");
                    self.store = Some(s);
                }
                Err(e) => {
                    tracing::debug!("store still unreachable: {e}");
                    self.next_connect = Instant::now() + self.retry;
                }
            }
        }
        let Some(store) = &self.store else {
            return false;
        };
        if self.spool.is_empty() {
            return true;
        }
        match store.replay(&mut self.spool, record_hash).await {
            Ok(r) => {
                tracing::info!(
                    inserted = r.inserted,
                    already = r.already_present,
                    "spool replayed"
                );
                true
            }
            Err(e) if e.is_unreachable() => {
                tracing::warn!("spool replay failed, store unreachable: {e}");
                self.disconnect();
                false
            }
            Err(e) => {
                tracing::error!("spool replay refused by the store (the spool is kept): {e}");
                false
            }
        }
    }

    fn disconnect(&mut self) {
        self.store = None;
        self.next_connect = Instant::now() + self.retry;
    }

    /// Writes the violation's intent record durably (the violation, its evidence frames as JPEG, and
    /// the clip it expects at `clip`), before any of its evidence files: from then on a crash does not
    /// lose it ([`Recorder::open`] finishes it). Returns the capture with its frames as those JPEGs, for
    /// [`Recorder::record`]. Needs no store.
    pub fn intend(
        &mut self,
        mut capture: Capture,
        clip: Option<&Path>,
    ) -> Result<Capture, EvidenceError> {
        let mut frames = Vec::with_capacity(capture.frames.len());
        for (role, image) in capture.frames {
            let bytes = match image {
                FrameImage::Bgr(img) => img.encode(".jpg")?,
                FrameImage::Jpeg(b) => b,
            };
            frames.push((role, bytes));
        }
        let refs: Vec<(FrameRole, &[u8])> = frames.iter().map(|(r, b)| (*r, &b[..])).collect();
        intent::write(
            &self.data,
            &capture.violation,
            capture.stop_line,
            clip.or(capture.clip.as_deref()),
            &refs,
        )?;
        capture.frames = frames
            .into_iter()
            .map(|(r, b)| (r, FrameImage::Jpeg(b)))
            .collect();
        Ok(capture)
    }

    /// Writes the violation's intent (unless [`Recorder::intend`] did), the evidence files (each durable
    /// before anything refers to it), then commits the record, or spools it if the store is down, and
    /// drops the intent. When this returns Ok the violation survives a crash; from the moment its intent
    /// is written, so does its recording.
    pub async fn record(&mut self, capture: Capture) -> Result<Recorded, EvidenceError> {
        let id = capture.violation.id.to_string();
        let intended = intent::path(&self.data, &id).is_file()
            && capture
                .frames
                .iter()
                .all(|(_, f)| matches!(f, FrameImage::Jpeg(_)));
        let capture = if intended {
            capture
        } else {
            self.intend(capture, None)?
        };
        let how = self.record_intended(capture).await?;
        intent::remove(&self.data, &id)?;
        Ok(how)
    }

    async fn record_intended(&mut self, capture: Capture) -> Result<Recorded, EvidenceError> {
        let id = capture.violation.id.to_string();
        if self.spool.contains(&id) {
            return Ok(Recorded::AlreadyRecorded);
        }
        if let Some(store) = &self.store {
            match store.contains(&id).await {
                Ok(true) => return Ok(Recorded::AlreadyRecorded),
                Ok(false) => {}
                Err(e) if e.is_unreachable() => {
                    tracing::warn!("store unreachable, spooling: {e}");
                    self.disconnect();
                }
                Err(e) => return Err(e.into()),
            }
        }
        let evidence = self.write_files(&capture)?;
        let new = NewViolation {
            violation: capture.violation,
            evidence,
        };
        new.chain_fields(0, GENESIS_HASH)?; // refuse what no store could take, before spooling it
        if self.ensure_flushed().await
            && let Some(store) = &self.store
        {
            match store.insert(&new, record_hash).await {
                Ok(InsertOutcome::Inserted { seq, .. }) => return Ok(Recorded::Committed { seq }),
                Ok(InsertOutcome::AlreadyPresent) => return Ok(Recorded::AlreadyRecorded),
                Err(e) if e.is_unreachable() => {
                    tracing::warn!("insert failed, store unreachable, spooling {id}: {e}");
                    self.disconnect();
                }
                // Not an outage: the store refused this record, and it would refuse it from the spool too
                // (blocking every record behind it). Its evidence files stay for `verify` to report.
                Err(e) => return Err(e.into()),
            }
        }
        self.spool.append(&new)?;
        Ok(Recorded::Spooled)
    }

    fn write_files(&self, c: &Capture) -> Result<Vec<EvidenceItem>, EvidenceError> {
        let v = &c.violation;
        let rel_dir = format!(
            "evidence/{}/{}/{}",
            safe_component(v.camera.as_str()),
            v.occurred_at.format("%Y-%m-%d"),
            v.id
        );
        let mut items = Vec::new();
        let mut put = |kind: EvidenceKind, role: Option<FrameRole>, name: String, bytes: &[u8]| {
            let rel = format!("{rel_dir}/{name}");
            let (sha, size) = write_atomic(&self.data.resolve(&rel)?, bytes)?;
            items.push(EvidenceItem::new(kind, role, rel, sha, size));
            Ok::<(), EvidenceError>(())
        };
        for (role, image) in &c.frames {
            let (raw_bytes, decoded);
            let base: &BgrImage = match image {
                FrameImage::Bgr(img) => {
                    raw_bytes = img.encode(".jpg")?;
                    img
                }
                FrameImage::Jpeg(bytes) => {
                    raw_bytes = bytes.clone();
                    decoded = BgrImage::decode(bytes)?;
                    &decoded
                }
            };
            let marked = base.evidence_photo(&overlay_for(v, *role, c.stop_line))?;
            let name = role_name(*role);
            put(
                EvidenceKind::Raw,
                Some(*role),
                format!("{name}-raw.jpg"),
                &raw_bytes,
            )?;
            put(
                EvidenceKind::Photo,
                Some(*role),
                format!("{name}-photo.jpg"),
                &marked.encode(".jpg")?,
            )?;
            if matches!(role, FrameRole::Key | FrameRole::At)
                && let Some(crop) = offender_crop(v, *role, base)
            {
                put(
                    EvidenceKind::Crop,
                    Some(*role),
                    format!("{name}-crop.jpg"),
                    &crop.encode(".jpg")?,
                )?;
            }
            if matches!(role, FrameRole::Key | FrameRole::At)
                && let Some(crop) = plate_crop(v, base)
            {
                put(
                    EvidenceKind::Crop,
                    Some(*role),
                    format!("{name}-plate.jpg"),
                    &crop.encode(".jpg")?,
                )?;
            }
        }
        if let Some(clip) = &c.clip {
            let ext = clip
                .extension()
                .map(|e| safe_component(&e.to_string_lossy()))
                .unwrap_or_else(|| "mp4".into());
            let rel = format!("{rel_dir}/clip.{ext}");
            let (sha, size) = copy_atomic(clip, &self.data.resolve(&rel)?)?;
            items.push(EvidenceItem::new(EvidenceKind::Clip, None, rel, sha, size));
        }
        Ok(items)
    }
}

/// The vehicle class a detector class names, as the evidence photo says it (`None`: no vehicle, e.g. a
/// head class). A rider-with-vehicle or person class is the rider of a two-wheeler: the rules follow a
/// person only when it rides one.
fn vehicle_name(class_name: &str) -> Option<&'static str> {
    let n = class_name.to_ascii_lowercase();
    let has = |w: &[&str]| w.iter().any(|w| n.contains(w));
    Some(if has(&["motorbike", "motorcycle", "moto"]) {
        "motorcycle"
    } else if has(&["scooter"]) {
        "scooter"
    } else if has(&["bicycle", "cycle", "bike"]) {
        "bicycle"
    } else if has(&["bus"]) {
        "bus"
    } else if has(&["truck", "lorry"]) {
        "truck"
    } else if has(&["car", "van", "vehicle"]) {
        "car"
    } else if has(&["rider", "person", "two_wheeler", "two-wheeler"]) {
        "two-wheeler"
    } else {
        return None;
    })
}

/// The label of each box of an evidence frame: the offender's (the first box) says the violation kind and
/// the vehicle class (`"no helmet · motorcycle"`, `"red light · car"`); a no-helmet case's second box
/// (the two-wheeler the head was seen on) its vehicle class. A vehicle the boxes do not name is a
/// two-wheeler (a head is judged only as a rider's; a red-light box of a head class is the rider's body
/// estimated from the head).
fn box_labels(kind: ViolationKind, boxes: &[roadwarden_types::EvidenceBox]) -> Vec<String> {
    let vehicle = match kind {
        ViolationKind::NoHelmet => boxes.get(1),
        ViolationKind::RedLight => boxes.first(),
    }
    .and_then(|b| vehicle_name(&b.class_name))
    .unwrap_or("two-wheeler");
    let what = match kind {
        ViolationKind::NoHelmet => "no helmet",
        ViolationKind::RedLight => "red light",
    };
    boxes
        .iter()
        .enumerate()
        .map(|(i, b)| {
            if i == 0 {
                format!("{what} · {vehicle}")
            } else {
                vehicle_name(&b.class_name)
                    .unwrap_or(&b.class_name)
                    .to_owned()
            }
        })
        .collect()
}

/// How evidence photos write a time: UTC to the millisecond.
fn photo_time(t: chrono::DateTime<chrono::Utc>) -> String {
    t.format("%Y-%m-%d %H:%M:%S%.3f UTC").to_string()
}

/// The overlay for one evidence frame of `v`: the recording's time of the frame, and the analysing
/// machine's clock beside it when the two differ by more than a second.
pub(crate) fn overlay_for(
    v: &Violation,
    role: FrameRole,
    stop_line: Option<[(f32, f32); 2]>,
) -> EvidenceOverlay {
    let frame = v.frames.iter().find(|f| f.role == role);
    let at = frame.map(|f| f.captured_at).unwrap_or(v.occurred_at);
    let clock = frame
        .and_then(|f| f.analysed_at)
        .filter(|c| (*c - at).abs() > chrono::TimeDelta::seconds(1))
        .map(photo_time);
    let signal = if v.signal.is_empty() {
        None
    } else {
        Some(
            v.signal
                .iter()
                .rev()
                .find(|s| s.at <= at)
                .map(|s| s.state)
                .unwrap_or(SignalState::Unknown),
        )
    };
    let title = match v.kind {
        ViolationKind::NoHelmet => "NO HELMET",
        ViolationKind::RedLight => "RED LIGHT",
    };
    EvidenceOverlay {
        boxes: frame
            .map(|f| {
                f.boxes
                    .iter()
                    .map(|b| b.bbox)
                    .zip(box_labels(v.kind, &f.boxes))
                    .collect()
            })
            .unwrap_or_default(),
        stop_line: if v.kind == ViolationKind::RedLight {
            stop_line
        } else {
            None
        },
        signal,
        title: format!("{title} [{}]", role_name(role)),
        camera: v.camera.to_string(),
        time: photo_time(at),
        clock,
        violation_id: v.id.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use roadwarden_types::{BBox, ClassId, EvidenceBox};

    fn b(name: &str) -> EvidenceBox {
        EvidenceBox {
            bbox: BBox::new(0.0, 0.0, 10.0, 10.0),
            class_id: ClassId(0),
            class_name: name.into(),
            score: 0.3,
        }
    }

    #[test]
    fn boxes_are_labelled_with_the_kind_and_the_vehicle_class() {
        use ViolationKind::*;
        assert_eq!(
            box_labels(NoHelmet, &[b("Without Helmet"), b("motorbike")]),
            ["no helmet · motorcycle", "motorcycle"]
        );
        assert_eq!(
            box_labels(NoHelmet, &[b("Without Helmet")]),
            ["no helmet · two-wheeler"]
        );
        assert_eq!(box_labels(RedLight, &[b("car")]), ["red light · car"]);
        assert_eq!(box_labels(RedLight, &[b("bus")]), ["red light · bus"]);
        assert_eq!(
            box_labels(RedLight, &[b("bicycle")]),
            ["red light · bicycle"]
        );
        // Heads only: the box is the rider's body estimated from a head, never "With Helmet 0.30".
        assert_eq!(
            box_labels(RedLight, &[b("With Helmet")]),
            ["red light · two-wheeler"]
        );
        assert_eq!(
            box_labels(RedLight, &[b("person")]),
            ["red light · two-wheeler"]
        );
    }
}
