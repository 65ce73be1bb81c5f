use std::net::SocketAddr;
use std::path::PathBuf;

use roadwarden_evidence::EvidenceError;
use roadwarden_pipeline::PipelineError;
use roadwarden_server::ServerError;
use roadwarden_store::StoreError;

/// Why the service (or one of its parts) could not start, run or stop cleanly.
#[derive(Debug, thiserror::Error)]
pub enum ServiceError {
    #[error("cannot start the async runtime")]
    AsyncRuntime(#[source] std::io::Error),
    #[error(transparent)]
    Store(StoreError),
    #[error("opening the store in {}", dir.display())]
    OpenStore {
        dir: PathBuf,
        #[source]
        source: StoreError,
    },
    #[error("{}: no store here (pass --data DIR or --database-url URL)", .0.display())]
    NoStore(PathBuf),
    #[error("cannot create the data folder {}", dir.display())]
    DataDir {
        dir: PathBuf,
        #[source]
        source: StoreError,
    },
    #[error("cannot create {}", path.display())]
    CreateDir {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("cannot open the data folder {}", dir.display())]
    OpenRecorder {
        dir: PathBuf,
        #[source]
        source: EvidenceError,
    },
    #[error("cannot record violation {id}")]
    Record {
        id: String,
        #[source]
        source: EvidenceError,
    },
    #[error("cannot report what was recorded")]
    Report(#[source] std::io::Error),
    #[error("cannot start the {what} thread")]
    Thread {
        what: &'static str,
        #[source]
        source: std::io::Error,
    },
    #[error("the {0} thread panicked")]
    Panicked(&'static str),
    #[error("the recorder thread ended at start")]
    RecorderGone,
    #[error(transparent)]
    Pipeline(#[from] PipelineError),
    #[error(transparent)]
    Server(#[from] ServerError),
    #[error("cannot listen on {addr}")]
    Listen {
        addr: SocketAddr,
        #[source]
        source: std::io::Error,
    },
    #[error("cannot watch {signal}")]
    Signal {
        signal: &'static str,
        #[source]
        source: std::io::Error,
    },
    #[error("the HTTP server task failed")]
    ServerTask(#[source] tokio::task::JoinError),
}
