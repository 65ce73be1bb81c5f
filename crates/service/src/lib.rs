//! The running roadwarden service, as `roadwarden serve` and `roadwarden analyze --config` run it: the
//! site's cameras (a runner thread per camera over the pipeline, stopped by a flag), hot reload (which
//! cameras to start, stop or restart: [`reload::plan`], a pure function), the one recorder loop of the
//! process (the evidence `Recorder` is the single writer of the hash chains: [`recorder`]), the status
//! board, the HTTP server and the MQTT / webhook publishers, and the order they stop in. Also where the
//! command line opens the store ([`open_store`]).
//!
//! Owns: threads, channels and the async runtime of the service; the lifecycle of cameras, recorder and
//! publishers. Must not: parse arguments or print results (the binary does), hold pipeline, rule, SQL or
//! HTTP logic (pipeline, rules, store and server do). Service events go to `tracing`.

mod analyze;
mod cameras;
mod error;
pub mod nodes;
pub mod recorder;
pub mod reload;
mod service;

pub use analyze::{Analysed, RecordRun, record_source};
pub use cameras::{CameraSetup, Cameras};
pub use error::ServiceError;
pub use recorder::{Handled, RecordObserver, Tally};
pub use roadwarden_store::{DataDir, NodeId, Role, Store, UserDeleted, UserState};
pub use service::{Events, Service, Setup, Shutdown};

use std::future::Future;

/// What to do when the data folder holds no SQLite store yet (and no `--database-url` names another).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum IfMissing {
    /// Create it (`user add` on a fresh install, `serve`).
    Create,
    /// Refuse: reading an empty store would report nothing as if all were well (`verify`).
    Refuse,
}

/// Opens the store at `database_url`, or the SQLite file in `data` when there is none.
pub async fn open_store(
    data: &DataDir,
    database_url: Option<&str>,
    if_missing: IfMissing,
) -> Result<Store, ServiceError> {
    if let Some(url) = database_url {
        return Store::connect(url).await.map_err(ServiceError::Store);
    }
    if if_missing == IfMissing::Refuse && !data.sqlite_path().exists() {
        return Err(ServiceError::NoStore(data.sqlite_path()));
    }
    Store::open_data_dir(data)
        .await
        .map_err(|source| ServiceError::OpenStore {
            dir: data.root().to_owned(),
            source,
        })
}

/// Runs one command's async work (a store query, a verification) to completion on a runtime of its own.
pub fn block_on<F: Future>(work: F) -> Result<F::Output, ServiceError> {
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(ServiceError::AsyncRuntime)?;
    Ok(rt.block_on(work))
}
