//! Command-line options shared by every subcommand that runs a model.

use std::path::{Path, PathBuf};

use anyhow::Result;
use clap::Args;
use roadwarden_infer::{Detector, ExecutionProvider, Runtime, RuntimeConfig};

#[derive(Debug, Args)]
pub(crate) struct RuntimeArgs {
    /// The ONNX Runtime library to load [default: lib/ beside the executable,
    /// then the project's .ort/lib/ that scripts/setup fills].
    #[arg(long, global = true, env = "ROADWARDEN_ORT_LIB", value_name = "PATH")]
    pub ort_lib: Option<PathBuf>,

    /// Where models run: cpu, cuda[:N] or tensorrt[:N].
    #[arg(
        long,
        global = true,
        default_value = "cpu",
        env = "ROADWARDEN_PROVIDER"
    )]
    pub provider: ExecutionProvider,

    /// Run on the CPU, with a warning, when the chosen provider is missing.
    #[arg(long, global = true)]
    pub allow_cpu_fallback: bool,

    /// Inference threads [default: all cores].
    #[arg(long, global = true, value_name = "N")]
    pub threads: Option<usize>,
}

impl RuntimeArgs {
    /// How ONNX Runtime is to be loaded.
    pub(crate) fn config(&self) -> RuntimeConfig {
        RuntimeConfig {
            library: self.ort_lib.clone(),
            provider: self.provider,
            allow_cpu_fallback: self.allow_cpu_fallback,
            threads: self.threads,
        }
    }

    pub(crate) fn runtime(&self) -> Result<Runtime> {
        Ok(Runtime::load(&self.config())?)
    }

    /// Loads the ONNX Runtime and the model a manifest describes.
    pub(crate) fn detector(&self, manifest: &Path) -> Result<Detector> {
        let runtime = self.runtime()?;
        Ok(Detector::load(manifest, &runtime)?)
    }
}
