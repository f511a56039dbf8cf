//! `acgs keys …`: key management for the Quantumagi Solana deployment, over the acgs-chain library's key vault.
//! A private directory of Solana keypair files with a manifest; generation by role, listing, an audit for cron,
//! the retirement of keys replaced in a rotation, encrypted backups and their restore, and the check of single
//! keypair files. Replaces the runbook's `key_management.sh` (docs/quantumagi.md). Thin: the clap arguments, the
//! passphrase input, and the output.

use std::io::Read as _;
use std::os::unix::fs::PermissionsExt as _;
use std::path::{Path, PathBuf};
use std::process::ExitCode;

use acgs_chain::keys::audit::{self, Severity};
use acgs_chain::keys::backup::{self, BACKUP_KDF, Passphrase};
use acgs_chain::keys::directory::{InitOutcome, KeyDirectory};
use acgs_chain::keys::generate::{MAX_COUNT, generate};
use acgs_chain::keys::keypair::{Keypair, PublicKey};
use acgs_chain::keys::manifest::{Role, RotationState};
use acgs_chain::keys::retire;
use anyhow::{Context as _, Result, anyhow, bail};
use chrono::{DateTime, Utc};
use serde::Serialize;
use zeroize::Zeroizing;

/// The environment variable that may hold the backup passphrase.
const PASSPHRASE_ENV: &str = "ACGS_KEYS_PASSPHRASE";

/// The key directory option shared by the commands.
#[derive(Debug, clap::Args)]
pub struct DirArgs {
    /// The key directory.
    #[arg(long, env = "ACGS_KEYS_DIR", default_value = "acgs-keys")]
    dir: PathBuf,
}

/// Where the backup passphrase comes from: a file, standard input, or the environment variable
/// ACGS_KEYS_PASSPHRASE (in that order).
#[derive(Debug, clap::Args)]
pub struct PassphraseArgs {
    /// Read the passphrase from this file (without its final line ending).
    #[arg(long, conflicts_with = "passphrase_stdin")]
    passphrase_file: Option<PathBuf>,
    /// Read the passphrase from standard input (without its final line ending).
    #[arg(long)]
    passphrase_stdin: bool,
}

#[derive(Debug, clap::Subcommand)]
pub enum KeysCommand {
    /// Create the key directory (mode 0700) with an empty manifest; does nothing if it is already there. An
    /// existing directory whose mode is not 0700 is refused unless --fix-permissions.
    Init {
        #[command(flatten)]
        dir: DirArgs,
        /// Set an existing directory to 0700 (and its manifest to 0600) instead of refusing it.
        #[arg(long)]
        fix_permissions: bool,
    },
    /// Generate Ed25519 keypairs in the Solana keypair format (files 0600, never overwritten) and print their
    /// public keys (Solana addresses).
    Generate {
        #[command(flatten)]
        dir: DirArgs,
        /// What the keys are for; sets their rotation schedule.
        #[arg(long, value_enum)]
        role: Role,
        /// How many keys.
        #[arg(long, default_value_t = 1, value_parser = clap::value_parser!(u32).range(1..=i64::from(MAX_COUNT)))]
        count: u32,
        /// File name: NAME.json, or NAME-1.json … NAME-N.json with --count [default: ROLE-ADDR.json, ADDR the
        /// first 8 characters of the key's address].
        #[arg(long)]
        name: Option<String>,
    },
    /// List the keys: role, public key, creation date, age and rotation due date; retired keys with the date of
    /// their retirement.
    List {
        #[command(flatten)]
        dir: DirArgs,
        /// Print JSON.
        #[arg(long)]
        json: bool,
    },
    /// Check permissions and owners, that every listed key file is there and intact, files the manifest does not
    /// list, and key ages against the rotation schedule. Exits non-zero when anything is wrong (for cron).
    Audit {
        #[command(flatten)]
        dir: DirArgs,
        /// Print JSON.
        #[arg(long)]
        json: bool,
    },
    /// Retire a key replaced in a rotation: it stays in the manifest, marked retired (when, and why), and its file
    /// moves to the directory's `retired/` (0700), kept and backed up, audited for permissions and integrity but no
    /// longer for rotation. Refuses an unknown or already retired key and never replaces a file.
    Retire {
        /// The key: its file name, with or without `.json` (as `acgs keys list` shows it).
        name: String,
        #[command(flatten)]
        dir: DirArgs,
        /// Why it is retired (one line, kept in the manifest), e.g. "rotated to program-2".
        #[arg(long)]
        reason: Option<String>,
    },
    /// Write an encrypted backup (Argon2id + XChaCha20-Poly1305) of the manifest and every listed key to a new
    /// file (0600).
    Backup {
        #[command(flatten)]
        dir: DirArgs,
        /// The backup file to create (never overwritten; outside the key directory).
        #[arg(long)]
        out: PathBuf,
        #[command(flatten)]
        passphrase: PassphraseArgs,
    },
    /// Restore a backup into the key directory (created if missing): every key is checked first, existing
    /// different keys are never replaced, and nothing is written when anything is wrong.
    Restore {
        /// The backup file.
        archive: PathBuf,
        #[command(flatten)]
        dir: DirArgs,
        #[command(flatten)]
        passphrase: PassphraseArgs,
    },
    /// Check a Solana keypair file (64 numbers; the public half matches the secret) and print its public key.
    Verify {
        /// The keypair file.
        file: PathBuf,
        /// Also require this public key (base58).
        #[arg(long)]
        pubkey: Option<String>,
    },
}

/// Run an `acgs keys` command.
pub fn run(cmd: KeysCommand) -> Result<ExitCode> {
    let now = Utc::now();
    match cmd {
        KeysCommand::Init { dir, fix_permissions } => {
            let dir = KeyDirectory::new(dir.dir);
            let (outcome, fixed) = dir.init(fix_permissions)?;
            let shown = dir.path().display();
            if fixed {
                println!("set the permissions of `{shown}` to 700 (and of its manifest to 600)");
            }
            match outcome {
                InitOutcome::Created => println!("created the key directory `{shown}` (mode 700)"),
                InitOutcome::ManifestAdded => println!("`{shown}`: created an empty manifest"),
                InitOutcome::AlreadyInitialised => println!("`{shown}` is already a key directory"),
            }
        }
        KeysCommand::Generate { dir, role, count, name } => {
            let dir = KeyDirectory::new(dir.dir);
            for (path, public_key) in generate(&dir, role, count, name.as_deref(), now)? {
                println!("created {} ({role}): {public_key}", path.display());
            }
        }
        KeysCommand::List { dir, json } => list(&KeyDirectory::new(dir.dir), json, now)?,
        KeysCommand::Audit { dir, json } => {
            let report = audit::audit(&KeyDirectory::new(dir.dir), now)?;
            if json {
                println!("{}", serde_json::to_string_pretty(&report)?);
            } else {
                if report.retired > 0 {
                    println!(
                        "key directory `{}`: {} keys ({} retired)",
                        report.directory, report.keys, report.retired
                    );
                } else {
                    println!("key directory `{}`: {} keys", report.directory, report.keys);
                }
                for f in &report.findings {
                    let label = match f.severity {
                        Severity::Problem => "problem",
                        Severity::Notice => "notice",
                    };
                    println!("{label}: {}", f.message);
                }
                let problems = report
                    .findings
                    .iter()
                    .filter(|f| f.severity == Severity::Problem)
                    .count();
                if report.clean {
                    println!("keys audit: clean");
                } else {
                    println!("keys audit: {problems} problem(s)");
                }
            }
            return Ok(if report.clean {
                ExitCode::SUCCESS
            } else {
                ExitCode::FAILURE
            });
        }
        KeysCommand::Retire { name, dir, reason } => {
            let dir = KeyDirectory::new(dir.dir);
            let done = retire::retire(&dir, &name, reason.as_deref(), now)?;
            if let Some(mode) = done.tightened_from {
                eprintln!(
                    "warning: `{}` had mode {mode:o} (consider the key exposed); set to 600",
                    done.from.display()
                );
            }
            let entry = &done.entry;
            println!(
                "retired `{}` ({} key {}): moved `{}` to `{}`",
                entry.file,
                entry.role,
                entry.public_key,
                done.from.display(),
                done.to.display()
            );
            println!(
                "check that no on-chain authority is still {} (`solana program show PROGRAM_ID`, `acgs chain status`), then make a new backup (`acgs keys backup`)",
                entry.public_key
            );
        }
        KeysCommand::Backup { dir, out, passphrase } => {
            let dir = KeyDirectory::new(dir.dir);
            let passphrase = read_passphrase(&passphrase)?;
            let summary = backup::backup(&dir, &out, &passphrase, BACKUP_KDF, now)?;
            for name in &summary.unlisted {
                eprintln!(
                    "warning: `{}` is not in the manifest and was left out",
                    dir.file(name).display()
                );
            }
            println!(
                "wrote `{}`: {} keys and the manifest, encrypted (Argon2id {} MiB, {} passes; XChaCha20-Poly1305); keep it offline",
                out.display(),
                summary.keys,
                BACKUP_KDF.memory_kib / 1024,
                BACKUP_KDF.passes
            );
        }
        KeysCommand::Restore {
            archive,
            dir,
            passphrase,
        } => {
            let dir = KeyDirectory::new(dir.dir);
            let passphrase = read_passphrase(&passphrase)?;
            let summary = backup::restore(&archive, &dir, &passphrase)?;
            for name in &summary.restored {
                println!("restored {}", dir.file(name).display());
            }
            for name in &summary.present {
                println!("already present {}", dir.file(name).display());
            }
            println!(
                "restored {} keys into `{}` ({} already there); run `acgs keys audit --dir {}`",
                summary.restored.len(),
                dir.path().display(),
                summary.present.len(),
                dir.path().display()
            );
        }
        KeysCommand::Verify { file, pubkey } => {
            let keypair = Keypair::read(&file)?;
            if let Some(expected) = pubkey {
                let expected: PublicKey = expected.parse()?;
                if keypair.public_key() != expected {
                    bail!(
                        "`{}` holds the key {}, not {expected}",
                        file.display(),
                        keypair.public_key()
                    );
                }
            }
            println!("{}", keypair.public_key());
        }
    }
    Ok(ExitCode::SUCCESS)
}

/// A key as `list` shows it. A retired key is never overdue; `retired_at` and `retired_reason` are null for
/// active keys (and the reason for a key retired without one).
#[derive(Serialize)]
struct ListedKey<'a> {
    file: &'a str,
    role: Role,
    public_key: String,
    created_at: String,
    age_days: i64,
    rotation_due: String,
    rotation_overdue: bool,
    retired: bool,
    retired_at: Option<String>,
    retired_reason: Option<&'a str>,
}

fn list(dir: &KeyDirectory, json: bool, now: DateTime<Utc>) -> Result<()> {
    let manifest = dir.read_manifest()?;
    let rows: Vec<ListedKey<'_>> = manifest
        .keys
        .iter()
        .map(|k| ListedKey {
            file: &k.file,
            role: k.role,
            public_key: k.public_key.to_string(),
            created_at: k.created_at.to_rfc3339_opts(chrono::SecondsFormat::Secs, true),
            age_days: k.age_days(now),
            rotation_due: k.rotation_due().format("%Y-%m-%d").to_string(),
            rotation_overdue: !k.is_retired() && k.rotation_state(now) == RotationState::Overdue,
            retired: k.is_retired(),
            retired_at: k
                .retired
                .as_ref()
                .map(|r| r.at.to_rfc3339_opts(chrono::SecondsFormat::Secs, true)),
            retired_reason: k.retired.as_ref().and_then(|r| r.reason.as_deref()),
        })
        .collect();
    if json {
        println!("{}", serde_json::to_string_pretty(&rows)?);
        return Ok(());
    }
    println!(
        "{:<32} {:<10} {:<44} {:<10} {:>6}  ROTATE BY",
        "FILE", "ROLE", "PUBLIC KEY", "CREATED", "AGE"
    );
    for (row, key) in rows.iter().zip(&manifest.keys) {
        let rotate_by = match &key.retired {
            Some(retired) => {
                let reason = retired.reason.as_deref().map(|r| format!(": {r}")).unwrap_or_default();
                format!("retired {}{reason}", retired.at.format("%Y-%m-%d"))
            }
            None => {
                let state = match key.rotation_state(now) {
                    RotationState::Current => "",
                    RotationState::DueSoon => " (due soon)",
                    RotationState::Overdue => " (overdue)",
                };
                format!("{}{state}", row.rotation_due)
            }
        };
        println!(
            "{:<32} {:<10} {:<44} {:<10} {:>5}d  {rotate_by}",
            key.location(),
            row.role.as_str(),
            row.public_key,
            key.created_at.format("%Y-%m-%d"),
            row.age_days
        );
    }
    if rows.is_empty() {
        println!(
            "(no keys; `acgs keys generate --role ROLE --dir {}`)",
            dir.path().display()
        );
    }
    Ok(())
}

/// The passphrase from --passphrase-file, --passphrase-stdin or ACGS_KEYS_PASSPHRASE.
fn read_passphrase(args: &PassphraseArgs) -> Result<Passphrase> {
    let text = if let Some(path) = &args.passphrase_file {
        warn_if_shared(path);
        Zeroizing::new(
            std::fs::read_to_string(path)
                .with_context(|| format!("reading the passphrase from `{}`", path.display()))?,
        )
    } else if args.passphrase_stdin {
        let mut text = Zeroizing::new(String::new());
        std::io::stdin()
            .read_to_string(&mut text)
            .context("reading the passphrase from standard input")?;
        text
    } else if let Some(value) = std::env::var_os(PASSPHRASE_ENV) {
        Zeroizing::new(
            value
                .into_string()
                .map_err(|_| anyhow!("{PASSPHRASE_ENV} is not valid UTF-8"))?,
        )
    } else {
        bail!(
            "a passphrase is needed: --passphrase-file FILE, --passphrase-stdin, or the environment variable {PASSPHRASE_ENV}"
        );
    };
    Ok(Passphrase::from_input(text)?)
}

/// Warn when group or others can read a passphrase file.
fn warn_if_shared(path: &Path) {
    if let Ok(meta) = std::fs::metadata(path) {
        let mode = meta.permissions().mode() & 0o777;
        if mode & 0o077 != 0 {
            eprintln!(
                "warning: the passphrase file `{}` has mode {mode:o}; run `chmod 600 {}`",
                path.display(),
                path.display()
            );
        }
    }
}
