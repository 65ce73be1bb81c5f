//! `roadwarden user add|token|list|disable|enable|delete|unlock`: the accounts of the review service.

use std::io::{BufRead, IsTerminal};
use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::{Context, Result, bail};
use clap::{Args, Subcommand};
use roadwarden_service::{
    DataDir, IfMissing, Role, Store, UserDeleted, UserState, block_on, open_store,
};

#[derive(Debug, Args)]
#[command(after_help = "\
Examples:
  roadwarden user add rita --role reviewer
  printf '%s\\n' \"$PW\" | roadwarden user add otto --role ops --password-stdin
  roadwarden user token prometheus-scraper --label metrics
  roadwarden user token revoke prometheus-scraper --label metrics
  roadwarden user disable rita
  roadwarden user unlock rita
  roadwarden user list --database-url postgres://roadwarden@db/roadwarden")]
pub(crate) struct UserArgs {
    #[command(subcommand)]
    command: UserCommand,

    #[command(flatten)]
    store: StoreArgs,
}

/// Where the store is; shared by `user` and `serve`.
#[derive(Debug, Clone, Args)]
pub(crate) struct StoreArgs {
    /// The data folder (evidence files and the SQLite store) [default: $XDG_DATA_HOME/roadwarden or ~/.local/share/roadwarden].
    #[arg(long, value_name = "DIR", env = "ROADWARDEN_DATA", global = true)]
    pub data: Option<PathBuf>,

    /// The store [default: the SQLite file in the data folder].
    #[arg(
        long,
        value_name = "URL",
        env = "ROADWARDEN_DATABASE_URL",
        hide_env_values = true,
        global = true
    )]
    pub database_url: Option<String>,
}

impl StoreArgs {
    pub(crate) fn data_dir(&self) -> DataDir {
        DataDir::new(self.data.clone().unwrap_or_else(DataDir::default_root))
    }

    /// The store these options name (created in the data folder when there is none yet).
    pub(crate) async fn open(&self) -> Result<Store> {
        let data = self.data_dir();
        Ok(open_store(&data, self.database_url.as_deref(), IfMissing::Create).await?)
    }
}

fn parse_role(s: &str) -> Result<Role, String> {
    Role::parse(s).map_err(|e| e.to_string())
}

#[derive(Debug, Subcommand)]
enum UserCommand {
    /// Create a user, or set an existing user's role and password (asks for the password).
    Add {
        name: String,
        /// reviewer (decides violations), ops (tunes thresholds), or admin (both, reopens decisions, manages users).
        #[arg(long, value_parser = parse_role)]
        role: Role,
        /// Read the password from the first line of standard input instead of asking.
        #[arg(long)]
        password_stdin: bool,
    },
    /// Create a bearer token for a machine (metrics scraper, integration); prints it once.
    /// `user token revoke NAME` revokes tokens instead.
    #[command(args_conflicts_with_subcommands = true, subcommand_negates_reqs = true)]
    Token {
        /// The user the token acts as (its role applies).
        #[arg(required = true)]
        name: Option<String>,
        /// What the token is for.
        #[arg(long, default_value = "machine")]
        label: String,
        #[command(subcommand)]
        action: Option<TokenCommand>,
    },
    /// List users and roles.
    List,
    /// Disable a user: every session and bearer token of theirs ends at once, and they cannot log in.
    Disable { name: String },
    /// Enable a disabled user again (their revoked tokens stay revoked).
    Enable { name: String },
    /// Delete a user who has decided no violation (disable one who has), with their sessions and tokens.
    Delete { name: String },
    /// Forget a user's failed logins, so a locked-out user can log in at once.
    Unlock { name: String },
}

#[derive(Debug, Subcommand)]
enum TokenCommand {
    /// Revoke a user's bearer tokens (all of them, or those with --label).
    Revoke {
        /// The user whose tokens go.
        name: String,
        /// Only the tokens with this label.
        #[arg(long)]
        label: Option<String>,
    },
}

fn no_user(name: &str) -> anyhow::Error {
    anyhow::anyhow!("no user `{name}` (roadwarden user list shows them)")
}

fn read_password(from_stdin: bool) -> Result<String> {
    if from_stdin {
        let mut line = String::new();
        std::io::stdin()
            .lock()
            .read_line(&mut line)
            .context("reading the password from standard input")?;
        return Ok(line.trim_end_matches(['\n', '\r']).to_owned());
    }
    if !std::io::stdin().is_terminal() {
        bail!(
            "no terminal to ask for the password on; pass --password-stdin to read it from standard input"
        );
    }
    let pw = rpassword::prompt_password("Password: ").context("reading the password")?;
    let again = rpassword::prompt_password("Password again: ").context("reading the password")?;
    if pw != again {
        bail!("the two passwords differ; nothing was changed");
    }
    Ok(pw)
}

pub(crate) fn run(args: UserArgs) -> Result<ExitCode> {
    // Ask before touching the store, so a typo leaves nothing behind.
    let password = match &args.command {
        UserCommand::Add { password_stdin, .. } => Some(read_password(*password_stdin)?),
        _ => None,
    };
    block_on(async {
        let store = args.store.open().await?;
        let actor = format!(
            "cli:{}",
            std::env::var("USER").unwrap_or_else(|_| "unknown".into())
        );
        let result = match args.command {
            UserCommand::Add { name, role, .. } => {
                let password = password.unwrap_or_default();
                let hash = roadwarden_server::auth::hash_password(&password)?;
                let existed = store.user_by_name(&name).await?.is_some();
                store.put_user(&name, role, &hash, &actor).await?;
                println!(
                    "user {name} ({role}) {}",
                    if existed { "updated" } else { "added" }
                );
                Ok(ExitCode::SUCCESS)
            }
            UserCommand::Token {
                action: Some(TokenCommand::Revoke { name, label }),
                ..
            } => {
                let Some(n) = store
                    .revoke_user_tokens(&name, label.as_deref(), &actor)
                    .await?
                else {
                    bail!(no_user(&name));
                };
                println!("{n} token(s) of {name} revoked");
                Ok(ExitCode::SUCCESS)
            }
            UserCommand::Token {
                name: Some(name),
                label,
                action: None,
            } => {
                let Some(user) = store.user_by_name(&name).await? else {
                    bail!("no user `{name}` (add it first: roadwarden user add {name} --role R)");
                };
                let token = roadwarden_server::auth::new_bearer_token();
                store
                    .create_api_token(
                        &user,
                        &label,
                        &roadwarden_server::auth::token_hash(&token),
                        &actor,
                    )
                    .await?;
                eprintln!(
                    "bearer token for {name} ({}); it is shown only now:",
                    user.role
                );
                println!("{token}");
                Ok(ExitCode::SUCCESS)
            }
            UserCommand::Token {
                name: None,
                action: None,
                ..
            } => bail!("name the user the token is for: roadwarden user token NAME"),
            UserCommand::Disable { name } => {
                let Some(ended) = store
                    .set_user_state(&name, UserState::Disabled, &actor)
                    .await?
                else {
                    bail!(no_user(&name));
                };
                println!(
                    "user {name} disabled ({} session(s) ended, {} token(s) revoked)",
                    ended.sessions, ended.tokens
                );
                Ok(ExitCode::SUCCESS)
            }
            UserCommand::Enable { name } => {
                if store
                    .set_user_state(&name, UserState::Enabled, &actor)
                    .await?
                    .is_none()
                {
                    bail!(no_user(&name));
                }
                println!("user {name} enabled");
                Ok(ExitCode::SUCCESS)
            }
            UserCommand::Delete { name } => match store.delete_user(&name, &actor).await? {
                UserDeleted::Deleted(ended) => {
                    println!(
                        "user {name} deleted ({} session(s) ended, {} token(s) revoked)",
                        ended.sessions, ended.tokens
                    );
                    Ok(ExitCode::SUCCESS)
                }
                UserDeleted::NoSuchUser => bail!(no_user(&name)),
                UserDeleted::HasReviews(n) => bail!(
                    "user `{name}` decided {n} violation(s), which name them; nothing was deleted (roadwarden user disable {name} cuts their access instead)"
                ),
            },
            UserCommand::Unlock { name } => {
                let Some(n) = store.unlock_user(&name, &actor).await? else {
                    bail!(no_user(&name));
                };
                println!("user {name} unlocked ({n} failed login(s) forgotten)");
                Ok(ExitCode::SUCCESS)
            }
            UserCommand::List => {
                for u in store.users().await? {
                    let login = if u.disabled_at_us.is_some() {
                        "  (disabled)"
                    } else if u.password_hash.is_some() {
                        ""
                    } else {
                        "  (no password)"
                    };
                    println!("{}\t{}{login}", u.name, u.role);
                }
                Ok(ExitCode::SUCCESS)
            }
        };
        store.close().await;
        result
    })?
}
