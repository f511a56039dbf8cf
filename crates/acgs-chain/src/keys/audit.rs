//! The audit of a key directory (`acgs keys audit`): permissions and owners, that every listed key file (retired
//! keys' under `retired/`) exists and holds the listed key intact, files the manifest does not list, and active
//! keys' ages against the rotation schedule.

use std::os::unix::fs::{MetadataExt as _, PermissionsExt as _};

use chrono::{DateTime, Duration, Utc};
use serde::Serialize;

use super::directory::{KeyDirectory, effective_uid};
use super::error::KeysError;
use super::keypair::{Keypair, KeypairError};
use super::manifest::{KeyEntry, MANIFEST_FILE, RETIRED_DIR, RotationState};
use super::retire::same_file;

/// How much a finding matters.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Severity {
    /// Something is wrong: the audit fails.
    Problem,
    /// Worth knowing (a rotation due soon); the audit still passes.
    Notice,
}

/// Which check found something.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Check {
    /// The directory's (or `retired/`'s) mode lets group or others in.
    DirectoryPermissions,
    /// The directory, `retired/`, a key file or the manifest belongs to another user.
    Owner,
    /// The manifest is missing or unreadable.
    Manifest,
    /// A key file's or the manifest's mode lets group or others in.
    FilePermissions,
    /// A listed key file is not there.
    MissingFile,
    /// A listed name is a symbolic link, a directory or another kind of file; or `retired` is not a directory.
    NotARegularFile,
    /// A key file is not a valid Solana keypair.
    InvalidKeypair,
    /// A key file's public half does not match its secret.
    Tampered,
    /// A key file holds a valid keypair, but not the key the manifest lists.
    WrongKey,
    /// A file in the directory that the manifest does not list.
    Unlisted,
    /// A key's creation time is in the future.
    CreatedInFuture,
    /// An active key is past its rotation date (retired keys have none).
    RotationOverdue,
    /// A key's rotation date is near.
    RotationDueSoon,
}

/// One finding.
#[derive(Debug, Clone, Serialize)]
pub struct Finding {
    /// Problem or notice.
    pub severity: Severity,
    /// Which check.
    pub check: Check,
    /// The file (name in the directory) it concerns, if any.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub file: Option<String>,
    /// What was found and what to do.
    pub message: String,
}

/// The result of an audit.
#[derive(Debug, Clone, Serialize)]
pub struct AuditReport {
    /// The key directory.
    pub directory: String,
    /// Keys the manifest lists, retired ones included.
    pub keys: usize,
    /// Of those, retired keys.
    pub retired: usize,
    /// Whether no problem was found (notices allowed).
    pub clean: bool,
    /// Everything found, problems first.
    pub findings: Vec<Finding>,
}

/// Creation times up to this far ahead of the clock are accepted (clocks of different machines differ).
const CLOCK_SKEW_MINUTES: i64 = 5;

/// Audit the key directory at time `now`. Errors only when there is no directory to audit.
pub fn audit(dir: &KeyDirectory, now: DateTime<Utc>) -> Result<AuditReport, KeysError> {
    if !dir.exists() {
        return Err(KeysError::NotInitialised(dir.path().to_owned()));
    }
    let mut findings = Vec::new();
    let mut problem = |check: Check, file: Option<&str>, message: String| {
        findings.push(Finding {
            severity: Severity::Problem,
            check,
            file: file.map(str::to_owned),
            message,
        });
    };
    let me = effective_uid();
    let shown = dir.path().display();

    let meta = std::fs::metadata(dir.path()).map_err(KeysError::io(dir.path()))?;
    directory_access(&meta, None, &shown.to_string(), "the keys", me, &mut problem);

    let manifest_path = dir.manifest_path();
    let manifest = match std::fs::symlink_metadata(&manifest_path) {
        Err(_) => {
            problem(
                Check::Manifest,
                Some(MANIFEST_FILE),
                format!("no `{}`: run `acgs keys init --dir {shown}`", manifest_path.display()),
            );
            None
        }
        Ok(meta) => {
            file_access(
                &meta,
                MANIFEST_FILE,
                &manifest_path.display().to_string(),
                me,
                &mut problem,
            );
            match dir.read_manifest() {
                Ok(m) => Some(m),
                Err(e) => {
                    problem(Check::Manifest, Some(MANIFEST_FILE), e.to_string());
                    None
                }
            }
        }
    };

    let retired_path = dir.retired_path();
    if let Ok(meta) = std::fs::symlink_metadata(&retired_path) {
        let shown = retired_path.display();
        if !meta.file_type().is_dir() {
            problem(
                Check::NotARegularFile,
                Some(RETIRED_DIR),
                format!(
                    "`{shown}` is not a directory (a file or a symbolic link?): it is where retired keys are kept; move it out of the key directory"
                ),
            );
        } else {
            directory_access(
                &meta,
                Some(RETIRED_DIR),
                &shown.to_string(),
                "the retired keys",
                me,
                &mut problem,
            );
        }
    }

    if let Some(manifest) = &manifest {
        for entry in &manifest.keys {
            check_key(dir, entry, me, &mut problem);
        }
        for location in dir.unlisted(manifest)? {
            let path = dir.file(&location);
            let retired_copy = manifest
                .get(&location)
                .filter(|e| e.is_retired())
                .map(|e| dir.key_path(e))
                .filter(|retired| same_file(&path, retired));
            let message = match retired_copy {
                Some(retired) => format!(
                    "`{}` is a second name of the retired key's file `{}` (an interrupted `acgs keys retire`): remove `{}`",
                    path.display(),
                    retired.display(),
                    path.display()
                ),
                None => format!(
                    "`{}` is not in the manifest: a key made outside `acgs keys`, or a leftover; move it out of the key directory",
                    path.display()
                ),
            };
            problem(Check::Unlisted, Some(&location), message);
        }
        for entry in manifest.keys.iter().filter(|k| !k.is_retired()) {
            rotation(entry, now, &mut findings);
        }
    }

    findings.sort_by_key(|f| f.severity == Severity::Notice);
    Ok(AuditReport {
        directory: dir.path().display().to_string(),
        keys: manifest.as_ref().map_or(0, |m| m.keys.len()),
        retired: manifest
            .as_ref()
            .map_or(0, |m| m.keys.iter().filter(|k| k.is_retired()).count()),
        clean: findings.iter().all(|f| f.severity == Severity::Notice),
        findings,
    })
}

/// The finding when `shown` (`name` in the directory; `None`: the directory itself) belongs to another user.
fn owner(
    meta: &std::fs::Metadata,
    name: Option<&str>,
    shown: &str,
    me: u32,
    problem: &mut impl FnMut(Check, Option<&str>, String),
) {
    if meta.uid() != me {
        problem(
            Check::Owner,
            name,
            format!("`{shown}` belongs to uid {}, not to this user (uid {me})", meta.uid()),
        );
    }
}

/// Owner and permission findings for a directory holding `what`.
fn directory_access(
    meta: &std::fs::Metadata,
    name: Option<&str>,
    shown: &str,
    what: &str,
    me: u32,
    problem: &mut impl FnMut(Check, Option<&str>, String),
) {
    owner(meta, name, shown, me, problem);
    let mode = meta.permissions().mode() & 0o777;
    if mode & 0o077 != 0 {
        problem(
            Check::DirectoryPermissions,
            name,
            format!("`{shown}` has mode {mode:o}: group or others can reach {what}; run `chmod 700 {shown}`"),
        );
    }
}

/// Owner and permission findings for one file.
fn file_access(
    meta: &std::fs::Metadata,
    name: &str,
    shown: &str,
    me: u32,
    problem: &mut impl FnMut(Check, Option<&str>, String),
) {
    owner(meta, Some(name), shown, me, problem);
    let mode = meta.permissions().mode() & 0o777;
    if mode & 0o077 != 0 {
        problem(
            Check::FilePermissions,
            Some(name),
            format!(
                "`{shown}` has mode {mode:o}: group or others can read it; run `chmod 600 {shown}`, and consider the key exposed"
            ),
        );
    }
}

/// Findings for one listed key (a retired key's file is under `retired/`): present, a regular file, private,
/// intact, and the listed key.
fn check_key(dir: &KeyDirectory, entry: &KeyEntry, me: u32, problem: &mut impl FnMut(Check, Option<&str>, String)) {
    let path = dir.key_path(entry);
    let shown = path.display().to_string();
    let location = entry.location();
    let name = Some(location.as_str());
    let retired = if entry.is_retired() { "retired " } else { "" };
    let meta = match std::fs::symlink_metadata(&path) {
        Ok(meta) => meta,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            problem(
                Check::MissingFile,
                name,
                format!(
                    "`{shown}` ({retired}{} key {}) is in the manifest but missing: restore it (`acgs keys restore`)",
                    entry.role, entry.public_key
                ),
            );
            return;
        }
        Err(e) => {
            problem(Check::MissingFile, name, format!("`{shown}`: {e}"));
            return;
        }
    };
    if !meta.file_type().is_file() {
        problem(
            Check::NotARegularFile,
            name,
            format!("`{shown}` is not a regular file (a symbolic link or a directory?)"),
        );
        return;
    }
    file_access(&meta, &location, &shown, me, problem);
    match Keypair::read(&path) {
        Ok(keypair) if keypair.public_key() == entry.public_key => {}
        Ok(keypair) => problem(
            Check::WrongKey,
            name,
            format!(
                "`{shown}` holds the key {}, but the manifest lists {} for it",
                keypair.public_key(),
                entry.public_key
            ),
        ),
        Err(KeysError::Keypair {
            source: KeypairError::Mismatch,
            ..
        }) => problem(
            Check::Tampered,
            name,
            format!(
                "`{shown}`: the public half does not match the secret key: the file was damaged or altered; restore it from a backup"
            ),
        ),
        Err(e) => problem(Check::InvalidKeypair, name, e.to_string()),
    }
}

/// Rotation findings for one key.
fn rotation(entry: &KeyEntry, now: DateTime<Utc>, findings: &mut Vec<Finding>) {
    let due = entry.rotation_due();
    let what = format!(
        "{} key `{}` ({}), created {}",
        entry.role,
        entry.file,
        entry.public_key,
        entry.created_at.format("%Y-%m-%d")
    );
    let months = entry.role.rotation_months();
    let (severity, check, message) = if entry.created_at > now + Duration::minutes(CLOCK_SKEW_MINUTES) {
        (
            Severity::Problem,
            Check::CreatedInFuture,
            format!("{what}: its creation time is in the future (a wrong clock, or an edited manifest)"),
        )
    } else {
        match entry.rotation_state(now) {
            RotationState::Current => return,
            RotationState::Overdue => (
                Severity::Problem,
                Check::RotationOverdue,
                format!(
                    "{what}, is {} days old: rotation was due on {} (every {months} months)",
                    entry.age_days(now),
                    due.format("%Y-%m-%d")
                ),
            ),
            RotationState::DueSoon => (
                Severity::Notice,
                Check::RotationDueSoon,
                format!(
                    "{what}: rotation due on {}, in {} days (every {months} months)",
                    due.format("%Y-%m-%d"),
                    (due - now).num_days()
                ),
            ),
        }
    };
    findings.push(Finding {
        severity,
        check,
        file: Some(entry.file.clone()),
        message,
    });
}
