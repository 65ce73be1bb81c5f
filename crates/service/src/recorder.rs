//! The recorder: the process's one evidence [`Recorder`] (the single writer of the hash chains) on a
//! thread of its own, with its own current-thread runtime. Camera runners hand it each violation with its
//! evidence frames ([`ToRecorder::hand`]); it waits for the violation's clip (so the analysis keeps
//! feeding the stream the clip's post window needs), writes the evidence, commits it or spools it while
//! the store is down, and tells its [`RecordObserver`] (the status board and events for `serve`, one
//! JSON line per violation for `analyze`).

use std::path::PathBuf;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::mpsc::RecvTimeoutError;
use std::sync::{Arc, mpsc};
use std::thread::JoinHandle;
use std::time::Duration;

use roadwarden_evidence::{Capture, DataDir, Recorded, Recorder};
use roadwarden_pipeline::{ClipOptions, EvidenceOptions, ViolationFrames};
use roadwarden_rules::CameraConfig;
use roadwarden_types::{FrameRole, Violation};

use crate::ServiceError;

/// A stop line in frame pixels, drawn on red-light photos.
pub type StopLine = [(f32, f32); 2];

/// The camera's stop line in frame pixels.
pub fn stop_line(cam: &CameraConfig) -> StopLine {
    let l = &cam.stop_line;
    [(l.a[0], l.a[1]), (l.b[0], l.b[1])]
}

/// Where clips are written while their post window runs, before the recorder copies them in (at open,
/// the recorder finishes or quarantines whatever a crash left there).
pub fn clip_dir(data: &DataDir) -> PathBuf {
    data.clips_in_progress_dir()
}

/// What the pipeline keeps for evidence: the camera's frame ring, and (given a folder) a clip per
/// violation, 5 s before it and 2 s after.
pub fn evidence_options(clips: Option<PathBuf>) -> EvidenceOptions {
    EvidenceOptions {
        ring: None,
        clips: clips.map(|dir| ClipOptions {
            dir,
            pre: Duration::from_secs(5),
            post: Duration::from_secs(2),
        }),
    }
}

/// What the recorder did with the violations handed to it.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct Tally {
    pub handed: u64,
    pub committed: u64,
    pub spooled: u64,
    pub already: u64,
    pub failed: u64,
    /// Violations whose clip made it into the evidence.
    pub clips: u64,
}

/// What the recorder does when a violation cannot be recorded (its evidence cannot be written, or
/// neither the store nor the spool takes it).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum OnFailure {
    /// Stop recording and report the error (`analyze`: a one-off run must not claim success).
    Stop,
    /// Count it, log it and go on with the next (`serve`: one bad violation must not stop a site).
    GoOn,
}

/// One violation the recorder has dealt with.
#[derive(Debug)]
pub struct Handled<'a> {
    pub violation: &'a Violation,
    /// Evidence frames whose image was no longer kept (none expected).
    pub missing_frames: &'a [FrameRole],
    /// How it was recorded; `Err` with [`OnFailure::GoOn`] only.
    pub outcome: Result<Recorded, &'a ServiceError>,
    /// Whether its clip made it into the evidence.
    pub clip: bool,
    /// The evidence files, relative to the data folder, when committed.
    pub evidence: Vec<String>,
    /// Violations handed over and not yet recorded.
    pub queued: u64,
    /// Records waiting in the spool for the store.
    pub spooled: usize,
}

/// Hears what the recorder does, on the recorder's thread.
pub trait RecordObserver: Send + 'static {
    /// The recorder is open; `spooled` records wait in the spool.
    fn opened(&mut self, _spooled: usize) {}
    /// One violation dealt with; an error stops the recorder (the output it writes to is gone).
    fn handled(&mut self, handled: &Handled<'_>) -> std::io::Result<()>;
    /// The background replay moved records out of the spool: `spooled` are left in it.
    fn spool_replayed(&mut self, _spooled: usize) {}
}

/// How often an idle recorder retries the store while records wait in the spool (the evidence
/// recorder's own retry interval spaces the reconnect attempts).
pub const REPLAY_TICK: Duration = Duration::from_millis(500);

type Handoff = (ViolationFrames, StopLine);

/// Hands violations to the recorder; cheap to clone, one per camera runner.
#[derive(Clone)]
pub struct ToRecorder {
    tx: mpsc::Sender<Handoff>,
    queued: Arc<AtomicU64>,
}

impl ToRecorder {
    /// Queues `vf` for recording; `false` when the recorder has stopped (the violation is lost).
    pub fn hand(&self, vf: ViolationFrames, line: StopLine) -> bool {
        self.queued.fetch_add(1, Ordering::SeqCst);
        if self.tx.send((vf, line)).is_err() {
            self.queued.fetch_sub(1, Ordering::SeqCst);
            return false;
        }
        true
    }
}

/// The recorder thread; ends once every [`ToRecorder`] is dropped and what they handed is recorded.
pub struct RecorderThread {
    to: ToRecorder,
    thread: JoinHandle<Result<Tally, ServiceError>>,
}

impl RecorderThread {
    /// Opens the data folder's recorder and store on a new thread (replaying the spool, reconciling
    /// orphan evidence) and returns once it is open: an error here means nothing could be recorded.
    pub fn spawn(
        data: DataDir,
        database_url: Option<String>,
        clip_dir: PathBuf,
        on_failure: OnFailure,
        observer: impl RecordObserver,
    ) -> Result<RecorderThread, ServiceError> {
        let (tx, rx) = mpsc::channel();
        let (ready_tx, ready_rx) = mpsc::channel();
        let queued = Arc::new(AtomicU64::new(0));
        let thread = {
            let queued = queued.clone();
            std::thread::Builder::new()
                .name("recorder".into())
                .spawn(move || {
                    let recording = match Recording::open(&data, database_url.as_deref(), clip_dir)
                    {
                        Ok(r) => {
                            let _ = ready_tx.send(Ok(()));
                            r
                        }
                        Err(e) => {
                            let _ = ready_tx.send(Err(e));
                            return Ok(Tally::default());
                        }
                    };
                    record_loop(recording, rx, queued, on_failure, observer)
                })
                .map_err(|source| ServiceError::Thread {
                    what: "recorder",
                    source,
                })?
        };
        match ready_rx.recv() {
            Ok(Ok(())) => Ok(RecorderThread {
                to: ToRecorder { tx, queued },
                thread,
            }),
            Ok(Err(e)) => {
                let _ = thread.join();
                Err(e)
            }
            Err(_) => Err(ServiceError::RecorderGone),
        }
    }

    /// A handle for one more sender (a camera runner).
    pub fn sender(&self) -> ToRecorder {
        self.to.clone()
    }

    /// Waits until what was handed over is recorded (every other [`ToRecorder`] must be dropped by
    /// then), flushes the spool and closes the store.
    pub fn finish(self) -> Result<Tally, ServiceError> {
        drop(self.to);
        self.thread
            .join()
            .map_err(|_| ServiceError::Panicked("recorder"))?
    }
}

/// THE recorder loop: records what the runners hand over, in order, and tells the observer; between
/// violations (every [`REPLAY_TICK`] while none comes) replays the spool as soon as the store is
/// reachable, so spooled records reach it without waiting for the next violation; ends when every
/// sender is gone (or at the first failure with [`OnFailure::Stop`]).
fn record_loop(
    mut recording: Recording,
    rx: mpsc::Receiver<Handoff>,
    queued: Arc<AtomicU64>,
    on_failure: OnFailure,
    mut observer: impl RecordObserver,
) -> Result<Tally, ServiceError> {
    observer.opened(recording.spooled());
    let mut tally = Tally::default();
    let mut stopped = None;
    loop {
        let (vf, line) = match rx.recv_timeout(REPLAY_TICK) {
            Ok(handoff) => handoff,
            Err(RecvTimeoutError::Timeout) => {
                let before = recording.spooled();
                if before > 0 {
                    let left = recording.replay_spool();
                    if left != before {
                        observer.spool_replayed(left);
                    }
                }
                continue;
            }
            Err(RecvTimeoutError::Disconnected) => break,
        };
        tally.handed += 1;
        let (violation, missing) = (vf.violation.clone(), vf.missing.clone());
        let recorded = recording.record(vf, line);
        let left = queued.fetch_sub(1, Ordering::SeqCst).saturating_sub(1);
        let (outcome, clip) = match &recorded {
            Ok((how, clip)) => {
                match how {
                    Recorded::AlreadyRecorded => tally.already += 1,
                    Recorded::Committed { .. } => tally.committed += 1,
                    Recorded::Spooled => tally.spooled += 1,
                }
                tally.clips += u64::from(*clip);
                (Ok(how.clone()), *clip)
            }
            Err(e) => {
                tally.failed += 1;
                if on_failure == OnFailure::GoOn {
                    tracing::warn!("{}", chain(e));
                }
                (Err(e), false)
            }
        };
        let evidence = match &outcome {
            Ok(Recorded::Committed { .. }) => recording.evidence(&violation.id.to_string()),
            _ => Vec::new(),
        };
        let handled = Handled {
            violation: &violation,
            missing_frames: &missing,
            outcome,
            clip,
            evidence,
            queued: left,
            spooled: recording.spooled(),
        };
        let reported = observer.handled(&handled);
        if let Err(e) = recorded
            && on_failure == OnFailure::Stop
        {
            stopped = Some(e);
            break;
        }
        if let Err(e) = reported {
            stopped = Some(ServiceError::Report(e));
            break;
        }
    }
    recording.close();
    match stopped {
        Some(e) => Err(e),
        None => Ok(tally),
    }
}

/// An error with its sources, on one line.
pub(crate) fn chain(e: &dyn std::error::Error) -> String {
    let mut s = e.to_string();
    let mut next = e.source();
    while let Some(cause) = next {
        s.push_str(": ");
        s.push_str(&cause.to_string());
        next = cause.source();
    }
    s
}

/// The recorder and its runtime: the store is async, the recorder thread is not.
struct Recording {
    rt: tokio::runtime::Runtime,
    recorder: Recorder,
    clip_dir: PathBuf,
}

impl Recording {
    /// Opens the data folder's recorder and store; logs what it found (an unreachable store, a replayed
    /// spool, orphan or missing evidence).
    fn open(
        data: &DataDir,
        database_url: Option<&str>,
        clip_dir: PathBuf,
    ) -> Result<Recording, ServiceError> {
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .map_err(ServiceError::AsyncRuntime)?;
        let (recorder, startup) = rt
            .block_on(Recorder::open(data.clone(), database_url))
            .map_err(|source| ServiceError::OpenRecorder {
                dir: data.root().to_owned(),
                source,
            })?;
        if let Some(e) = &startup.connect_error {
            tracing::warn!("{e}; violations go to the spool until it is back");
        }
        if let Some(r) = &startup.replayed
            && r.inserted + r.already_present > 0
        {
            tracing::info!(
                "spool replayed: {} inserted, {} already present",
                r.inserted,
                r.already_present
            );
        }
        let rc = &startup.recovery;
        if !rc.finished.is_empty()
            || !rc.already_recorded.is_empty()
            || !rc.quarantined_intents.is_empty()
            || !rc.kept.is_empty()
            || !rc.quarantined_clips.is_empty()
        {
            tracing::warn!(
                "crash recovery: {} violation(s) in progress finished, {} already recorded, {} intent(s) quarantined, {} kept for the next start, {} orphan clip(s) quarantined",
                rc.finished.len(),
                rc.already_recorded.len(),
                rc.quarantined_intents.len(),
                rc.kept.len(),
                rc.quarantined_clips.len()
            );
        }
        if let Some(r) = &startup.reconcile {
            for (from, to) in &r.quarantined {
                tracing::warn!("orphan evidence file {from} quarantined as {to}");
            }
            for m in &r.missing {
                tracing::warn!("evidence file {m} is missing");
            }
        }
        Ok(Recording {
            rt,
            recorder,
            clip_dir,
        })
    }

    /// Waits for the violation's clip, writes its evidence and commits it, or spools it while the store
    /// is down; also says whether its clip made it in.
    fn record(
        &mut self,
        vf: ViolationFrames,
        line: StopLine,
    ) -> Result<(Recorded, bool), ServiceError> {
        let id = vf.violation.id.to_string();
        let clip_path = self.clip_dir.join(format!("{id}.mp4"));
        // Durable before anything else (and before the clip's post window ends): from here a crash
        // does not lose the violation.
        let capture = Capture::new(vf.violation, vf.images).with_stop_line(line);
        let capture = self
            .recorder
            .intend(capture, vf.clip.is_some().then_some(clip_path.as_path()))
            .map_err(|source| ServiceError::Record {
                id: id.clone(),
                source,
            })?;
        tracing::info!(violation = %id, "violation received by the recorder (intent written)");
        let clip = vf.clip.and_then(|job| {
            let path = clip_path.clone();
            match job.wait(Duration::from_secs(20)) {
                Ok(report) => Some(report.path),
                Err(e) => {
                    tracing::warn!(violation = %id, "no clip: {e}");
                    let _ = std::fs::remove_file(path);
                    None
                }
            }
        });
        let clip_file = clip.clone();
        let capture = capture.with_clip(clip);
        let how = self
            .rt
            .block_on(self.recorder.record(capture))
            .map_err(|source| ServiceError::Record { id, source })?;
        if let Some(c) = &clip_file {
            let _ = std::fs::remove_file(c);
        }
        Ok((how, clip_file.is_some()))
    }

    /// The evidence files of a committed violation, relative to the data folder.
    fn evidence(&self, id: &str) -> Vec<String> {
        match self.recorder.store().map(|s| self.rt.block_on(s.get(id))) {
            Some(Ok(Some(r))) => r.evidence.into_iter().map(|e| e.item.path).collect(),
            _ => Vec::new(),
        }
    }

    /// Records waiting in the spool.
    fn spooled(&self) -> usize {
        self.recorder.spooled()
    }

    /// Replays the spool if the store is reachable (see [`Recorder::replay_spool`]); what is left in it.
    fn replay_spool(&mut self) -> usize {
        self.rt.block_on(self.recorder.replay_spool())
    }

    /// Replays the spool if the store is reachable and closes it; warns when records are left in it.
    fn close(mut self) {
        let left = self.rt.block_on(self.recorder.flush());
        if let Some(store) = self.recorder.store() {
            self.rt.block_on(store.close());
        }
        if left > 0 {
            tracing::warn!(
                "{left} violation(s) wait in the spool {} for the store to come back",
                self.recorder.data().spool_path().display()
            );
        }
    }
}
