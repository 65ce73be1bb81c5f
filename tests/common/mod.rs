//! Helpers shared by the integration tests: running the real binary, and
//! finding the project's models and the shared footage.

#![allow(dead_code)]

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

pub fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

/// `../shared` beside the project: real footage and labels (CI has it too).
pub fn shared() -> PathBuf {
    root().join("../shared")
}

pub fn model(name: &str) -> PathBuf {
    root().join("models").join(name)
}

pub struct Run {
    pub code: Option<i32>,
    pub stdout: String,
    pub stderr: String,
}

impl Run {
    pub fn ok(&self) -> bool {
        self.code == Some(0)
    }

    /// The stderr lines that are errors.
    pub fn error_lines(&self) -> Vec<&str> {
        self.stderr
            .lines()
            .filter(|l| l.starts_with("error:"))
            .collect()
    }

    /// A failure the way users should see one: a non-zero exit, exactly one
    /// `error:` line, no panic. Returns that line.
    pub fn one_line_error(&self) -> &str {
        assert!(
            !self.ok(),
            "expected failure, got success; stdout: {}",
            self.stdout
        );
        assert_eq!(self.code, Some(1), "exit code; stderr: {}", self.stderr);
        assert!(
            !self.stderr.contains("panicked"),
            "panicked: {}",
            self.stderr
        );
        let lines = self.error_lines();
        assert_eq!(
            lines.len(),
            1,
            "expected one error line, got: {}",
            self.stderr
        );
        lines[0]
    }
}

pub fn roadwarden<I, S>(args: I) -> Run
where
    I: IntoIterator<Item = S>,
    S: AsRef<std::ffi::OsStr>,
{
    let out: Output = Command::new(env!("CARGO_BIN_EXE_roadwarden"))
        .args(args)
        .env_remove("ROADWARDEN_ORT_LIB")
        .env_remove("RUST_LOG")
        .output()
        .expect("run roadwarden");
    Run {
        code: out.status.code(),
        stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
        stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
    }
}

pub fn write(path: &Path, text: &str) {
    std::fs::write(path, text).expect("write test file");
}
