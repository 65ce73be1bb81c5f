//! One camera's source through the pipeline, every violation recorded by the recorder loop the service
//! uses: `analyze --config` on a file or an RTSP camera.

use roadwarden_evidence::DataDir;
use roadwarden_infer::Runtime;
use roadwarden_media::SourceConfig;
use roadwarden_pipeline::{CameraPipeline, RunSummary, RunnerEvent, run_source_with};
use roadwarden_rules::CameraConfig;

use crate::ServiceError;
use crate::recorder::{
    OnFailure, RecordObserver, RecorderThread, Tally, clip_dir, evidence_options, stop_line,
};

/// What [`record_source`] runs.
pub struct RecordRun<'a> {
    pub camera: &'a CameraConfig,
    pub runtime: &'a Runtime,
    pub source: SourceConfig,
    /// The data folder the evidence (and the SQLite store, without `database_url`) goes to.
    pub data: DataDir,
    pub database_url: Option<String>,
    /// A video clip per violation, besides its photos.
    pub clips: bool,
}

/// What [`record_source`] did.
#[derive(Debug)]
pub struct Analysed {
    pub summary: RunSummary,
    /// Violations handed to the recorder.
    pub handed: u64,
    pub tally: Tally,
}

/// Runs `run.camera`'s pipeline over `run.source` until it ends, recording each violation (the
/// recorder opens first: nothing is analysed when nothing could be recorded); `on_frame` hears every
/// analysed frame, `observer` every recorded violation, in order. The first violation that cannot be
/// recorded ends the run with its error.
pub fn record_source(
    run: RecordRun<'_>,
    mut on_frame: impl FnMut(RunnerEvent<'_>),
    observer: impl RecordObserver,
) -> Result<Analysed, ServiceError> {
    let mut pipeline = CameraPipeline::new(run.camera, run.runtime)?;
    let clip_dir = clip_dir(&run.data);
    let opts = evidence_options(run.clips.then(|| clip_dir.clone()));
    if opts.clips.is_some() {
        std::fs::create_dir_all(&clip_dir).map_err(|source| ServiceError::CreateDir {
            path: clip_dir.clone(),
            source,
        })?;
    }
    let recorder = RecorderThread::spawn(
        run.data,
        run.database_url,
        clip_dir.clone(),
        OnFailure::Stop,
        observer,
    )?;
    let to_recorder = recorder.sender();
    let line = stop_line(run.camera);
    let mut handed = 0u64;
    let summary = run_source_with(
        &mut pipeline,
        run.source,
        &opts,
        |event, evidence| {
            on_frame(event);
            for vf in evidence {
                handed += 1;
                // Refused only when the recorder stopped on an error, reported below.
                let _ = to_recorder.hand(vf, line);
            }
        },
        || false,
    );
    drop(to_recorder);
    let tally = recorder.finish();
    let _ = std::fs::remove_dir(&clip_dir);
    let summary = summary?;
    Ok(Analysed {
        summary,
        handed,
        tally: tally?,
    })
}
