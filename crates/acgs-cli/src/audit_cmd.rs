//! `acgs audit verify|verify-receipt|export|prune|key`: check, export and prune the tamper-evident audit log.

use std::io::{BufRead as _, Write as _};
use std::path::{Path, PathBuf};
use std::process::ExitCode;

use acgs_audit::{LogKey, LogVerifier, Receipt, VerifierKey, VerifyReport};
use acgs_store::{AuditEntry, DecisionStore, IntegrityError};
use anyhow::{Context, Result, bail};
use base64::Engine as _;
use base64::engine::general_purpose::STANDARD as BASE64;
use serde::{Deserialize, Serialize};

use crate::config::AUDIT_KEY_FILE;
use crate::decisions_cmd::{Source, open, time};

/// Export format written by `acgs audit export`.
const EXPORT_FORMAT: &str = "acgs-audit-export/v1";

#[derive(Debug, clap::Subcommand)]
pub enum AuditCommand {
    /// Recompute the audit log from storage (or an export) and check every signed checkpoint; names the first
    /// bad sequence number. Exit status 0 only when everything verifies.
    Verify {
        #[command(flatten)]
        source: Source,
        /// Verify an export directory (from `acgs audit export`) instead of a database.
        #[arg(long)]
        dir: Option<PathBuf>,
        #[command(flatten)]
        key: KeyArgs,
    },
    /// Verify a decision receipt offline: no server, no database, only the log's public key.
    VerifyReceipt {
        /// Receipt file (JSON from GET /v1/decisions/{id}/receipt), or `-` for standard input.
        file: PathBuf,
        /// The log's public verifier key (`name+hash+key`), or a file containing it.
        #[arg(long)]
        key: String,
    },
    /// Write every entry and checkpoint to a directory that `acgs audit verify --dir` checks.
    Export {
        #[command(flatten)]
        source: Source,
        /// Output directory (created; must be empty if it exists).
        #[arg(long)]
        out: PathBuf,
        /// Audit key file whose public key to include [default: DATA_DIR/audit-log.key].
        #[arg(long, env = "ACGS_AUDIT_KEY")]
        audit_key: Option<PathBuf>,
    },
    /// Remove the bodies of events older than a duration, keeping what proofs and checkpoints need.
    Prune {
        #[command(flatten)]
        source: Source,
        /// Age of the newest event to prune, e.g. `90d`, `12h`, `30m`, `3600s`.
        #[arg(long)]
        older_than: String,
    },
    /// Print the log's public verifier key.
    Key {
        /// Data directory holding audit-log.key [default: ./acgs-data].
        #[arg(long, env = "ACGS_DATA_DIR")]
        data_dir: Option<PathBuf>,
        /// Audit key file [default: DATA_DIR/audit-log.key].
        #[arg(long, env = "ACGS_AUDIT_KEY")]
        audit_key: Option<PathBuf>,
    },
}

/// Which public key to verify with.
#[derive(Debug, clap::Args)]
pub struct KeyArgs {
    /// The log's public verifier key (`name+hash+key`) or a file containing it [default: derived from the audit
    /// key file].
    #[arg(long)]
    key: Option<String>,
    /// Audit key file to derive the public key from [default: DATA_DIR/audit-log.key].
    #[arg(long, env = "ACGS_AUDIT_KEY")]
    audit_key: Option<PathBuf>,
}

/// One line of `checkpoints.jsonl`.
#[derive(Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct CheckpointLine {
    tree_size: i64,
    root: String,
    signed_at_us: i64,
    note: String,
}

/// `manifest.json` of an export.
#[derive(Debug, Serialize, Deserialize)]
struct Manifest {
    format: String,
    tree_size: i64,
    checkpoints: u64,
    exported_at_us: i64,
    verifier_key: Option<String>,
}

pub fn run(cmd: AuditCommand) -> Result<ExitCode> {
    let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build()?;
    runtime.block_on(async {
        match cmd {
            AuditCommand::Verify { source, dir, key } => verify(&source, dir.as_deref(), &key).await,
            AuditCommand::VerifyReceipt { file, key } => verify_receipt(&file, &key),
            AuditCommand::Export { source, out, audit_key } => export(&source, &out, audit_key).await,
            AuditCommand::Prune { source, older_than } => prune(&source, &older_than).await,
            AuditCommand::Key { data_dir, audit_key } => {
                let path =
                    audit_key.unwrap_or_else(|| data_dir.unwrap_or_else(|| "acgs-data".into()).join(AUDIT_KEY_FILE));
                let key = LogKey::load(&path)?;
                println!("{}", key.verifier_key());
                Ok(ExitCode::SUCCESS)
            }
        }
    })
}

/// A verifier key from text or from a file holding it.
fn parse_verifier_key(text_or_file: &str) -> Result<VerifierKey> {
    let path = Path::new(text_or_file);
    let text = if path.is_file() {
        std::fs::read_to_string(path).with_context(|| format!("cannot read key file `{}`", path.display()))?
    } else {
        text_or_file.to_owned()
    };
    VerifierKey::parse(&text).with_context(|| format!("`{text_or_file}` is not a verifier key"))
}

fn key_from_file(path: &Path) -> Result<VerifierKey> {
    let key = LogKey::load(path).context("no --key given and the audit key file is unusable")?;
    Ok(VerifierKey::parse(&key.verifier_key())?)
}

fn report_ok(report: &VerifyReport, key: &VerifierKey) -> ExitCode {
    println!(
        "audit log verified: {} entries ({} pruned), {} signed checkpoints, root {}",
        report.entries,
        report.pruned,
        report.checkpoints,
        BASE64.encode(report.root)
    );
    println!("  key: {key}");
    if report.checkpoints == 0 && report.entries > 0 {
        println!("  warning: no checkpoint covers these entries yet; they are not protected by a signature");
    }
    ExitCode::SUCCESS
}

fn report_failure(failure: &acgs_audit::VerifyFailure) -> ExitCode {
    println!(
        "audit log verification FAILED at sequence number {}: {failure}",
        failure.seq()
    );
    ExitCode::FAILURE
}

async fn verify(source: &Source, dir: Option<&Path>, key: &KeyArgs) -> Result<ExitCode> {
    if let Some(dir) = dir {
        return verify_dir(dir, key);
    }
    let verifier_key = match (&key.key, &key.audit_key) {
        (Some(k), _) => parse_verifier_key(k)?,
        (None, Some(path)) => key_from_file(path)?,
        (None, None) => key_from_file(&source.data_dir().join(AUDIT_KEY_FILE))?,
    };
    let store = open(source).await?;
    match acgs_store::verify_store(&*store, &verifier_key).await {
        Ok(report) => Ok(report_ok(&report, &verifier_key)),
        Err(IntegrityError::Verify(failure)) => Ok(report_failure(&failure)),
        Err(IntegrityError::Index(mismatch)) => {
            println!(
                "audit log verification FAILED at sequence number {}: {mismatch}",
                mismatch.seq
            );
            Ok(ExitCode::FAILURE)
        }
        Err(e) => Err(e).context("cannot read the audit log"),
    }
}

fn verify_dir(dir: &Path, key: &KeyArgs) -> Result<ExitCode> {
    let manifest: Manifest = serde_json::from_str(
        &std::fs::read_to_string(dir.join("manifest.json"))
            .with_context(|| format!("`{}` is not an audit export (no manifest.json)", dir.display()))?,
    )
    .context("manifest.json is malformed")?;
    if manifest.format != EXPORT_FORMAT {
        bail!("unsupported export format `{}`", manifest.format);
    }
    let verifier_key = match (&key.key, &key.audit_key, &manifest.verifier_key) {
        (Some(k), _, _) => parse_verifier_key(k)?,
        (None, Some(path), _) => key_from_file(path)?,
        (None, None, Some(k)) => {
            eprintln!(
                "note: using the public key recorded in the export itself; pass --key with a key obtained \
                 independently to rule out a substituted export"
            );
            VerifierKey::parse(k)?
        }
        (None, None, None) => bail!("the export has no public key; pass --key"),
    };
    let mut checkpoints = Vec::new();
    for (i, line) in read_lines(&dir.join("checkpoints.jsonl"))?.into_iter().enumerate() {
        let c: CheckpointLine =
            serde_json::from_str(&line).with_context(|| format!("checkpoints.jsonl line {} is malformed", i + 1))?;
        checkpoints.push((c.tree_size.max(0) as u64, c.note));
    }
    checkpoints.sort_by_key(|(size, _)| *size);
    let mut checkpoints = checkpoints.into_iter().peekable();
    let mut verifier = LogVerifier::new(verifier_key.clone());
    let file = std::fs::File::open(dir.join("entries.jsonl")).context("cannot open entries.jsonl")?;
    for (i, line) in std::io::BufReader::new(file).lines().enumerate() {
        let line = line.context("cannot read entries.jsonl")?;
        let entry: AuditEntry =
            serde_json::from_str(&line).with_context(|| format!("entries.jsonl line {} is malformed", i + 1))?;
        while let Some((size, note)) = checkpoints.next_if(|(size, _)| *size <= entry.seq.max(0) as u64) {
            verifier.add_checkpoint(size, note);
        }
        if let Err(failure) = verifier.entry(entry.seq.max(0) as u64, &entry.leaf_hash, entry.event.as_deref()) {
            return Ok(report_failure(&failure));
        }
    }
    for (size, note) in checkpoints {
        verifier.add_checkpoint(size, note);
    }
    match verifier.finish() {
        Ok(report) => Ok(report_ok(&report, &verifier_key)),
        Err(failure) => Ok(report_failure(&failure)),
    }
}

fn read_lines(path: &Path) -> Result<Vec<String>> {
    let text = std::fs::read_to_string(path).with_context(|| format!("cannot read `{}`", path.display()))?;
    Ok(text
        .lines()
        .filter(|l| !l.trim().is_empty())
        .map(str::to_owned)
        .collect())
}

fn verify_receipt(file: &Path, key: &str) -> Result<ExitCode> {
    let key = parse_verifier_key(key)?;
    let text = if file == Path::new("-") {
        std::io::read_to_string(std::io::stdin()).context("cannot read the receipt from standard input")?
    } else {
        std::fs::read_to_string(file).with_context(|| format!("cannot read `{}`", file.display()))?
    };
    let receipt: Receipt = serde_json::from_str(&text).context("not a receipt (expected acgs-receipt/v1 JSON)")?;
    match receipt.verify(&key) {
        Ok(verified) => {
            let e = &verified.event;
            println!(
                "receipt verified: entry {} is in log {} (tree size {}, root {})",
                receipt.seq,
                verified.checkpoint.origin,
                verified.checkpoint.size,
                BASE64.encode(verified.checkpoint.root)
            );
            if let Some(d) = e.get("decision") {
                let s = |v: &serde_json::Value| v.as_str().unwrap_or("?").to_owned();
                println!(
                    "  decision {}: {} (answered {}) for {}::{} {} {}::{}",
                    s(&d["decision_id"]),
                    s(&d["outcome"]),
                    s(&d["effective_outcome"]),
                    s(&d["principal"]["type"]),
                    s(&d["principal"]["id"]),
                    s(&d["action"]),
                    s(&d["resource"]["type"]),
                    s(&d["resource"]["id"]),
                );
                println!(
                    "  constitution {} ({})",
                    s(&d["constitution_version"]),
                    s(&e["constitutional_hash"])
                );
            }
            if let Some(at) = e.get("recorded_at_us").and_then(serde_json::Value::as_i64) {
                println!("  recorded at {}", time(at));
            }
            Ok(ExitCode::SUCCESS)
        }
        Err(e) => {
            println!("receipt verification FAILED: {e}");
            Ok(ExitCode::FAILURE)
        }
    }
}

async fn export(source: &Source, out: &Path, audit_key: Option<PathBuf>) -> Result<ExitCode> {
    if out.exists() && std::fs::read_dir(out)?.next().is_some() {
        bail!("`{}` exists and is not empty", out.display());
    }
    std::fs::create_dir_all(out).with_context(|| format!("cannot create `{}`", out.display()))?;
    let key_path = audit_key.unwrap_or_else(|| source.data_dir().join(AUDIT_KEY_FILE));
    let verifier_key = LogKey::load(&key_path).ok().map(|k| k.verifier_key());
    let store = open(source).await?;
    // A consistent snapshot: entries up to the size at the start, and the checkpoints within it.
    let size = store.last_seq().await?;
    let mut entries = std::io::BufWriter::new(std::fs::File::create(out.join("entries.jsonl"))?);
    let mut next = 1;
    while next <= size {
        let page = store.audit_entries(next, 10_000).await?;
        let Some(last) = page.last().map(|e| e.seq) else { break };
        for e in page.iter().filter(|e| e.seq <= size) {
            writeln!(entries, "{}", serde_json::to_string(e)?)?;
        }
        next = last + 1;
    }
    entries.flush()?;
    let count = export_checkpoints(&*store, size, &out.join("checkpoints.jsonl")).await?;
    if let Some(k) = &verifier_key {
        std::fs::write(out.join("log.vkey"), format!("{k}\n"))?;
    }
    let manifest = Manifest {
        format: EXPORT_FORMAT.into(),
        tree_size: size,
        checkpoints: count,
        exported_at_us: chrono::Utc::now().timestamp_micros(),
        verifier_key,
    };
    std::fs::write(
        out.join("manifest.json"),
        serde_json::to_string_pretty(&manifest)? + "\n",
    )?;
    println!("exported {size} entries and {count} checkpoints to {}", out.display());
    Ok(ExitCode::SUCCESS)
}

async fn export_checkpoints(store: &dyn DecisionStore, size: i64, path: &Path) -> Result<u64> {
    let mut file = std::io::BufWriter::new(std::fs::File::create(path)?);
    let mut after = -1;
    let mut count = 0;
    loop {
        let page = store.checkpoints(after, 10_000).await?;
        let Some(last) = page.last().map(|c| c.tree_size) else {
            break;
        };
        for c in page.into_iter().filter(|c| c.tree_size <= size) {
            let line = CheckpointLine {
                tree_size: c.tree_size,
                root: BASE64.encode(c.root),
                signed_at_us: c.signed_at_us,
                note: c.note,
            };
            writeln!(file, "{}", serde_json::to_string(&line)?)?;
            count += 1;
        }
        if last >= size {
            break;
        }
        after = last;
    }
    file.flush()?;
    Ok(count)
}

/// `90d`, `12h`, `30m`, `3600s` as microseconds.
fn parse_age(text: &str) -> Result<i64> {
    let text = text.trim();
    let split = text.find(|c: char| !c.is_ascii_digit()).unwrap_or(text.len());
    let (number, unit) = text.split_at(split);
    let n: i64 = number
        .parse()
        .ok()
        .filter(|n| *n > 0)
        .with_context(|| format!("`{text}` is not an age like 90d, 12h, 30m or 3600s"))?;
    let seconds = match unit {
        "s" => 1,
        "m" => 60,
        "h" => 3600,
        "d" => 86_400,
        _ => bail!("`{text}` is not an age like 90d, 12h, 30m or 3600s (units: s, m, h, d)"),
    };
    n.checked_mul(seconds)
        .and_then(|s| s.checked_mul(1_000_000))
        .with_context(|| format!("`{text}` is too long"))
}

async fn prune(source: &Source, older_than: &str) -> Result<ExitCode> {
    let age = parse_age(older_than)?;
    let now = chrono::Utc::now().timestamp_micros();
    let cutoff = now - age;
    let store = open(source).await?;
    match store.prune(cutoff, now).await? {
        Some(outcome) => println!(
            "pruned {} event bodies (entries 1..={} recorded before {}); leaf hashes, tree nodes and checkpoints \
             kept; prune recorded as entry {}",
            outcome.events_pruned,
            outcome.through_seq,
            time(cutoff),
            outcome.record_seq
        ),
        None => println!("nothing to prune: no event bodies recorded before {}", time(cutoff)),
    }
    Ok(ExitCode::SUCCESS)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ages_parse_with_units_and_bad_ones_are_refused() {
        assert_eq!(parse_age("90d").unwrap(), 90 * 86_400 * 1_000_000);
        assert_eq!(parse_age("12h").unwrap(), 12 * 3600 * 1_000_000);
        assert_eq!(parse_age("3600s").unwrap(), 3600 * 1_000_000);
        for bad in ["", "d", "0d", "90", "90y", "-1d", "99999999999999d"] {
            assert!(parse_age(bad).is_err(), "{bad}");
        }
    }
}
