use std::path::PathBuf;
use thiserror::Error;

/// Everything that can go wrong between a manifest path and a list of
/// detections. Each message names the file involved and, where there is one,
/// the fix.
#[derive(Debug, Error)]
pub enum InferError {
    #[error("{}: cannot read model manifest: {source}", path.display())]
    ManifestRead {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("{}: invalid model manifest: {message}", path.display())]
    ManifestInvalid { path: PathBuf, message: String },
    #[error("{}: model file not found (named by manifest {})", path.display(), manifest.display())]
    ModelMissing { path: PathBuf, manifest: PathBuf },
    #[error("{}: cannot read model file: {source}", path.display())]
    ModelRead {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("{}: sha256 mismatch: the manifest expects {expected}, the file has {actual} (wrong or corrupted model file)", path.display())]
    Sha256Mismatch {
        path: PathBuf,
        expected: String,
        actual: String,
    },
    #[error("{}: not a loadable ONNX model: {message}", path.display())]
    NotOnnx { path: PathBuf, message: String },
    #[error("{}: {message}", path.display())]
    ModelMismatch { path: PathBuf, message: String },
    #[error("{}: output shape {shape:?} does not fit the declared format `{format}`: {expected}", path.display())]
    OutputShape {
        path: PathBuf,
        shape: Vec<i64>,
        format: String,
        expected: String,
    },
    #[error(
        "ONNX Runtime library not found or not loadable (tried {}): {detail}. Run `scripts/setup` to install it, or point --ort-lib / ROADWARDEN_ORT_LIB at libonnxruntime.so {}",
        tried.iter().map(|p| p.display().to_string()).collect::<Vec<_>>().join(", "),
        crate::runtime::ORT_VERSION
    )]
    RuntimeMissing { tried: Vec<PathBuf>, detail: String },
    #[error("execution provider {provider} is not available: {detail}")]
    ProviderUnavailable { provider: String, detail: String },
    #[error("{}: inference failed: {message}", path.display())]
    Run { path: PathBuf, message: String },
    #[error("shared inference batcher: {0}")]
    Batcher(String),
    #[error("bad input image: {0}")]
    Image(#[from] roadwarden_types::ImageError),
}
