//! `roadwarden verify`: recomputes every evidence file's SHA-256 and every
//! camera's hash chain, and names exactly which record or file is broken;
//! with `--package`, checks one violation's evidence package on its own.

use std::path::{Path, PathBuf};
use std::process::ExitCode;

use anyhow::{Context, Result};
use clap::Args;
use roadwarden_evidence::{Authenticity, PublicKey, check_package, verify};
use roadwarden_service::{DataDir, IfMissing, block_on, open_store};

#[derive(Debug, Args)]
#[command(after_help = "\
Exit status: 0 when everything verifies, 1 when anything is broken (each problem is one line on stdout), 2 on errors.

Examples:
  roadwarden verify
  roadwarden verify --data /srv/roadwarden --camera gate-north
  roadwarden verify --database-url postgres://roadwarden@db/roadwarden --data /srv/roadwarden
  roadwarden verify --package violation-0190f0e0-....zip --key 3b6a27bc...  (from `roadwarden key show`)")]
pub(crate) struct VerifyArgs {
    /// The data folder with the evidence files (and the SQLite store) [default: $XDG_DATA_HOME/roadwarden or ~/.local/share/roadwarden].
    #[arg(long, value_name = "DIR", env = "ROADWARDEN_DATA")]
    pub data: Option<PathBuf>,

    /// Only this camera's chain.
    #[arg(long, value_name = "CAMERA")]
    pub camera: Option<String>,

    /// The store [default: the SQLite file in the data folder].
    #[arg(
        long,
        value_name = "URL",
        env = "ROADWARDEN_DATABASE_URL",
        hide_env_values = true
    )]
    pub database_url: Option<String>,

    /// Check this evidence package (a ZIP from GET /api/violations/{id}/package.zip) instead of the store:
    /// every file against the manifest, nothing unlisted, the record hash recomputed from violation.json, the
    /// review-log entries against the decisions; with --key also the manifest's signature.
    #[arg(long, value_name = "FILE.zip", conflicts_with = "camera")]
    pub package: Option<PathBuf>,

    /// With --package: the public key of the installation that made it (64 hex digits, or a file holding them,
    /// as `roadwarden key show` prints). Without it only internal consistency is checked, which a forger who
    /// re-hashes everything passes: the output then says that authenticity was not checked.
    #[arg(long, value_name = "PUBKEY", requires = "package")]
    pub key: Option<String>,

    /// Print the report as one JSON object.
    #[arg(long)]
    pub json: bool,
}

pub(crate) fn run(args: VerifyArgs) -> Result<ExitCode> {
    // Exit 1 means "broken": an error (no store, unreachable database) must not read as tampering.
    match check(args) {
        Ok(code) => Ok(code),
        Err(e) => {
            eprintln!("error: {}", format!("{e:#}").replace('\n', " "));
            Ok(ExitCode::from(2))
        }
    }
}

/// `--package FILE.zip`: 0 when it checks, 1 naming each problem, an error when it is no package.
fn check_package_file(path: &Path, key: Option<&str>, json: bool) -> Result<ExitCode> {
    let key = key.map(parse_key).transpose()?;
    let file = std::fs::File::open(path).with_context(|| {
        format!(
            "{}: cannot open the package (expected a ZIP from GET /api/violations/{{id}}/package.zip)",
            path.display()
        )
    })?;
    let report = check_package(std::io::BufReader::new(file), key.as_ref())
        .map_err(|e| anyhow::anyhow!("{}: {e}", path.display()))?;
    if json {
        let problems: Vec<String> = report.problems.iter().map(|p| p.to_string()).collect();
        println!(
            "{}",
            serde_json::json!({
                "ok": report.ok(),
                "package": path.display().to_string(),
                "violation": report.violation,
                "record_hash": report.record_hash,
                "files": report.files,
                "key_fingerprint": report.key_fingerprint,
                "authenticity_checked": report.authenticity != Authenticity::NotChecked,
                "problems": problems,
            })
        );
    } else {
        for p in &report.problems {
            println!("{p}");
        }
        if report.ok() {
            println!(
                "package verified: {}, {} files, record hash {}",
                report.violation,
                report.files,
                report.record_hash.as_deref().unwrap_or("-")
            );
            match &report.authenticity {
                Authenticity::Checked { fingerprint } => {
                    println!("signature verified: signed by installation key {fingerprint}")
                }
                Authenticity::NotChecked => println!(
                    "authenticity NOT checked: the package is consistent, but anyone can build a consistent package; \
                     pass --key with the public key of installation {} (`roadwarden key show` there)",
                    report.key_fingerprint
                ),
            }
        } else {
            println!(
                "package BROKEN: {} ({}), {} problems",
                report.violation,
                path.display(),
                report.problems.len()
            );
        }
    }
    Ok(if report.ok() {
        ExitCode::SUCCESS
    } else {
        ExitCode::from(1)
    })
}

fn check(args: VerifyArgs) -> Result<ExitCode> {
    if let Some(package) = &args.package {
        return check_package_file(package, args.key.as_deref(), args.json);
    }
    let data = DataDir::new(args.data.clone().unwrap_or_else(DataDir::default_root));
    block_on(async {
        let store = open_store(&data, args.database_url.as_deref(), IfMissing::Refuse).await?;
        let report = verify(&store, &data, args.camera.as_deref()).await?;
        store.close().await;
        if args.json {
            let problems: Vec<String> = report.problems.iter().map(|p| p.to_string()).collect();
            println!(
                "{}",
                serde_json::json!({
                    "ok": report.ok(),
                    "cameras": report.cameras,
                    "records": report.records,
                    "tombstones": report.tombstones,
                    "files": report.files,
                    "review_entries": report.review_entries,
                    "problems": problems,
                    "in_progress": report.in_progress,
                    "clips_in_progress": report.clips_in_progress,
                    "quarantined": report.quarantined,
                    "files_elsewhere": report.files_elsewhere,
                })
            );
        } else {
            for p in &report.problems {
                println!("{p}");
            }
            for id in &report.in_progress {
                println!(
                    "in progress: violation {id} (intent record; a running `serve` is recording it, else the next start finishes it)"
                );
            }
            if report.clips_in_progress + report.quarantined > 0 {
                println!(
                    "{} clips in progress, {} files in the quarantine ({})",
                    report.clips_in_progress,
                    report.quarantined,
                    data.quarantine_dir().display()
                );
            }
            for (node, n) in &report.files_elsewhere {
                println!(
                    "{n} evidence files are held by node {node}: verify them there (roadwarden verify --data <its data folder>)"
                );
            }
            println!(
                "{}: {} cameras, {} records ({} tombstones), {} files, {} problems",
                if report.ok() { "verified" } else { "BROKEN" },
                report.cameras,
                report.records,
                report.tombstones,
                report.files,
                report.problems.len()
            );
        }
        Ok(if report.ok() {
            ExitCode::SUCCESS
        } else {
            ExitCode::from(1)
        })
    })?
}

/// `--key`: the 64 hex digits, or a file holding them.
fn parse_key(arg: &str) -> Result<PublicKey> {
    let direct = PublicKey::parse(arg);
    if let Ok(k) = direct {
        return Ok(k);
    }
    let path = Path::new(arg);
    if path.is_file() {
        let text = std::fs::read_to_string(path)
            .with_context(|| format!("--key {}: cannot read the key file", path.display()))?;
        // `key show` output pasted into a file: take the `public key:` line, else the whole text.
        let hex = text
            .lines()
            .find_map(|l| l.strip_prefix("public key:"))
            .unwrap_or(&text);
        return PublicKey::parse(hex).with_context(|| format!("--key {}", path.display()));
    }
    direct.context("--key")
}
