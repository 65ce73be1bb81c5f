//! `roadwarden key show`: the installation's public key, with which anyone
//! checks that an evidence package came from this installation unchanged.

use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::{Context, Result};
use clap::{Args, Subcommand};
use roadwarden_evidence::{DataDir, InstallationKey};

#[derive(Debug, Args)]
pub(crate) struct KeyArgs {
    #[command(subcommand)]
    command: KeyCommand,
}

#[derive(Debug, Subcommand)]
enum KeyCommand {
    /// Print the installation's public key (64 hex digits) and its fingerprint.
    #[command(after_help = "\
Every evidence package's manifest.json is signed (manifest.sig) with this installation's Ed25519 key. Its private \
part lives in DATA/signing-key.ed25519 (mode 0600; created at the first `roadwarden serve`, or here) and is never \
printed or exported: back the file up with the data folder. Hand the public key to whoever checks packages:
  roadwarden verify --package violation.zip --key <PUBLIC KEY>

Output: `public key: <64 hex digits>` (the raw 32-byte Ed25519 key in hex) and `fingerprint: <16 hex digits>` (the \
first 16 hex digits of the SHA-256 of the key's 32 bytes; packages name the key that signed them by it).

Examples:
  roadwarden key show
  roadwarden key show --data /srv/roadwarden
  roadwarden key show --json")]
    Show(ShowArgs),
}

#[derive(Debug, Args)]
struct ShowArgs {
    /// The data folder [default: $XDG_DATA_HOME/roadwarden or ~/.local/share/roadwarden].
    #[arg(long, value_name = "DIR", env = "ROADWARDEN_DATA")]
    data: Option<PathBuf>,

    /// Print one JSON object: {"public_key": ..., "fingerprint": ...}.
    #[arg(long)]
    json: bool,
}

pub(crate) fn run(args: KeyArgs) -> Result<ExitCode> {
    match args.command {
        KeyCommand::Show(a) => {
            let data = DataDir::new(a.data.unwrap_or_else(DataDir::default_root));
            let (key, created) = InstallationKey::load_or_create(&data).with_context(|| {
                format!("the signing key of data folder {}", data.root().display())
            })?;
            let public = key.public();
            if created {
                eprintln!(
                    "created a new signing key in {}",
                    data.signing_key_path().display()
                );
            }
            if a.json {
                println!(
                    "{}",
                    serde_json::json!({ "public_key": public.hex(), "fingerprint": public.fingerprint() })
                );
            } else {
                println!("public key: {}", public.hex());
                println!("fingerprint: {}", public.fingerprint());
            }
            Ok(ExitCode::SUCCESS)
        }
    }
}
