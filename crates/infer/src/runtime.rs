//! Finding and loading the ONNX Runtime shared library, once per process.

use std::path::{Path, PathBuf};
use std::sync::OnceLock;

use crate::InferError;

/// The ONNX Runtime release this build is made for (ort 2.0.0-rc.15, API 31).
/// `scripts/setup` installs exactly this version.
pub(crate) const ORT_VERSION: &str = "1.31.1";

/// Environment variable naming the library to load.
pub(crate) const ORT_LIB_ENV: &str = "ROADWARDEN_ORT_LIB";

/// Which hardware runs the model.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum ExecutionProvider {
    #[default]
    Cpu,
    Cuda {
        device: i32,
    },
    TensorRt {
        device: i32,
    },
}

impl std::str::FromStr for ExecutionProvider {
    type Err = String;
    /// `cpu`, `cuda`, `cuda:1`, `tensorrt`, `tensorrt:0`.
    fn from_str(s: &str) -> Result<Self, String> {
        let (name, device) = match s.split_once(':') {
            Some((n, d)) => (
                n,
                d.parse::<i32>()
                    .map_err(|_| format!("bad device number `{d}` in execution provider `{s}`"))?,
            ),
            None => (s, 0),
        };
        match name.to_ascii_lowercase().as_str() {
            "cpu" => Ok(ExecutionProvider::Cpu),
            "cuda" => Ok(ExecutionProvider::Cuda { device }),
            "tensorrt" | "trt" => Ok(ExecutionProvider::TensorRt { device }),
            _ => Err(format!(
                "unknown execution provider `{s}`: expected cpu, cuda[:N] or tensorrt[:N]"
            )),
        }
    }
}

impl std::fmt::Display for ExecutionProvider {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            ExecutionProvider::Cpu => f.write_str("cpu"),
            ExecutionProvider::Cuda { device } => write!(f, "cuda:{device}"),
            ExecutionProvider::TensorRt { device } => write!(f, "tensorrt:{device}"),
        }
    }
}

/// How sessions are created.
#[derive(Debug, Clone, Default)]
pub struct RuntimeConfig {
    /// Explicit library path (config or `--ort-lib`); else `ROADWARDEN_ORT_LIB`; else the defaults.
    pub library: Option<PathBuf>,
    pub provider: ExecutionProvider,
    /// When the provider is missing, run on the CPU (with a warning) instead of failing.
    pub allow_cpu_fallback: bool,
    /// Intra-op threads; `None` lets ONNX Runtime use every core.
    pub threads: Option<usize>,
}

/// Where the library is looked for when nothing names it: beside the
/// executable (`lib/` next to it, for installed copies), then the project's
/// own install folder that `scripts/setup` fills.
pub fn default_library_paths() -> Vec<PathBuf> {
    let mut paths = Vec::new();
    if let Ok(exe) = std::env::current_exe()
        && let Some(dir) = exe.parent()
    {
        paths.push(dir.join("lib").join("libonnxruntime.so"));
    }
    paths.push(
        Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("../../.ort/lib/libonnxruntime.so")
            .components()
            .collect(),
    );
    paths
}

/// A loaded ONNX Runtime. Only one library can be loaded per process; the
/// first successful [`Runtime::load`] wins and later calls reuse it.
#[derive(Clone)]
pub struct Runtime {
    pub library: PathBuf,
    pub config: RuntimeConfig,
    pub(crate) env: ort::environment::Environment,
}

impl std::fmt::Debug for Runtime {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Runtime")
            .field("library", &self.library)
            .field("config", &self.config)
            .finish()
    }
}

static LOADED: OnceLock<(PathBuf, ort::environment::Environment)> = OnceLock::new();

impl Runtime {
    pub fn load(config: &RuntimeConfig) -> Result<Runtime, InferError> {
        let candidates: Vec<PathBuf> = if let Some(p) = &config.library {
            vec![p.clone()]
        } else if let Some(p) = std::env::var_os(ORT_LIB_ENV).filter(|p| !p.is_empty()) {
            vec![PathBuf::from(p)]
        } else {
            default_library_paths()
        };
        if let Some((library, env)) = LOADED.get() {
            return Ok(Runtime {
                library: library.clone(),
                config: config.clone(),
                env: env.clone(),
            });
        }
        let Some(path) = candidates.iter().find(|p| p.is_file()).cloned() else {
            return Err(InferError::RuntimeMissing {
                tried: candidates,
                detail: "no such file".into(),
            });
        };
        let missing = |detail: String| InferError::RuntimeMissing {
            tried: vec![path.clone()],
            detail,
        };
        let env = ort::init_from(&path)
            .map_err(|e| missing(e.to_string()))?
            .with_name("roadwarden")
            .build()
            .map_err(|e| missing(e.to_string()))?;
        let (library, env) = LOADED.get_or_init(|| (path, env));
        tracing::debug!(library = %library.display(), "loaded ONNX Runtime");
        Ok(Runtime {
            library: library.clone(),
            config: config.clone(),
            env: env.clone(),
        })
    }
}
