use thiserror::Error;

#[derive(Debug, Error)]
pub enum PipelineError {
    #[error(transparent)]
    Config(#[from] roadwarden_rules::ConfigError),
    #[error(transparent)]
    Infer(#[from] roadwarden_infer::InferError),
    #[error(transparent)]
    Media(#[from] roadwarden_media::MediaError),
    #[error(transparent)]
    Imaging(#[from] roadwarden_imaging::ImagingError),
    #[error("camera {camera}: {reason}")]
    Camera { camera: String, reason: String },
    #[error("scenario {path}: {reason}")]
    Scenario { path: String, reason: String },
    #[error("signal log {path}: {source}")]
    SignalLog {
        path: String,
        #[source]
        source: std::io::Error,
    },
    #[error("truth file {path}: {reason}")]
    Truth { path: String, reason: String },
}
