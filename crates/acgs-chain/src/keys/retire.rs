//! Retiring a key (`acgs keys retire`), the last step of a rotation. The old key stays in the manifest, marked
//! retired (when, and why), and its file moves to the key directory's `retired/` subdirectory (0700), where it is
//! kept, backed up and audited for permissions and integrity, but no longer for its rotation date.
//!
//! The file moves by a hard link into `retired/` (which fails rather than replace anything there), then the
//! manifest is replaced atomically, then the old name is removed, each step flushed to disk. An interruption
//! leaves the key reachable: before the manifest changes, the file has both names and the manifest still lists it
//! as active (running `retire` again completes the move); after, `retired/` holds it and the audit names the
//! leftover second name.

use std::os::unix::fs::{MetadataExt as _, PermissionsExt as _};
use std::path::{Path, PathBuf};

use chrono::{DateTime, Utc};

use super::directory::{FILE_MODE, KeyDirectory, effective_uid};
use super::error::KeysError;
use super::keypair::Keypair;
use super::manifest::{KeyEntry, Retirement, check_reason, whole_seconds};

/// What `retire` did.
#[derive(Debug)]
pub struct Retired {
    /// The key's entry, as now recorded.
    pub entry: KeyEntry,
    /// Where its file was.
    pub from: PathBuf,
    /// Where it is now.
    pub to: PathBuf,
    /// The file's former mode, when group or others had access and it was set to 0600.
    pub tightened_from: Option<u32>,
}

/// Whether two paths name the same file (device and inode, not following a final symbolic link).
pub fn same_file(a: &Path, b: &Path) -> bool {
    match (std::fs::symlink_metadata(a), std::fs::symlink_metadata(b)) {
        (Ok(a), Ok(b)) => a.dev() == b.dev() && a.ino() == b.ino(),
        _ => false,
    }
}

/// Retire the key `name` (its file name, with or without `.json`) of `dir` at `now`, with an optional reason.
/// Refuses, changing nothing, an unknown or already retired key, a key whose file is missing, damaged or not the
/// listed key, and a `retired/` that already has a different file of that name.
pub fn retire(dir: &KeyDirectory, name: &str, reason: Option<&str>, now: DateTime<Utc>) -> Result<Retired, KeysError> {
    let reason = reason.map(check_reason).transpose().map_err(KeysError::InvalidReason)?;
    let (_lock, mut manifest) = dir.open_for_change()?;
    let index = manifest
        .find(name)
        .and_then(|found| manifest.keys.iter().position(|k| k.file == found.file))
        .ok_or_else(|| KeysError::UnknownKey {
            name: name.to_owned(),
            manifest: dir.manifest_path(),
            dir: dir.path().to_owned(),
        })?;
    let entry = manifest.keys[index].clone();
    if let Some(retired) = &entry.retired {
        return Err(KeysError::AlreadyRetired {
            name: entry.file.clone(),
            at: retired.at.format("%Y-%m-%d").to_string(),
            path: dir.key_path(&entry),
        });
    }
    let refuse = |reason: String| KeysError::CannotRetire {
        name: entry.file.clone(),
        reason,
    };

    // The file must be the listed key, intact: it is what an operator may need later.
    let from = dir.file(&entry.file);
    let shown = from.display();
    let meta = match std::fs::symlink_metadata(&from) {
        Ok(meta) => meta,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            return Err(refuse(format!(
                "its file `{shown}` is missing; restore it first (`acgs keys restore`) so that the key is kept"
            )));
        }
        Err(e) => return Err(KeysError::io(&from)(e)),
    };
    if !meta.file_type().is_file() {
        return Err(refuse(format!(
            "`{shown}` is not a regular file (a symbolic link or a directory?)"
        )));
    }
    let me = effective_uid();
    if meta.uid() != me {
        return Err(refuse(format!(
            "`{shown}` belongs to uid {}, not to this user (uid {me})",
            meta.uid()
        )));
    }
    match Keypair::read(&from) {
        Ok(keypair) if keypair.public_key() == entry.public_key => {}
        Ok(keypair) => {
            return Err(refuse(format!(
                "`{shown}` holds the key {}, not the listed {}; run `acgs keys audit`",
                keypair.public_key(),
                entry.public_key
            )));
        }
        Err(e) => return Err(refuse(format!("{e}; restore it from a backup first"))),
    }
    let mode = meta.permissions().mode() & 0o777;
    let tightened_from = if mode & 0o077 != 0 {
        std::fs::set_permissions(&from, std::fs::Permissions::from_mode(FILE_MODE)).map_err(KeysError::io(&from))?;
        Some(mode)
    } else {
        None
    };

    // Link into retired/: never replaces a file there. The same file there already is an interrupted retire.
    let to = dir.ensure_retired_dir()?.join(&entry.file);
    let linked = match std::fs::hard_link(&from, &to) {
        Ok(()) => true,
        Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => {
            if !same_file(&from, &to) {
                return Err(KeysError::Exists(to));
            }
            false
        }
        Err(e) => return Err(KeysError::io(&to)(e)),
    };
    dir.sync_retired()?;

    manifest.keys[index].retired = Some(Retirement {
        at: whole_seconds(now),
        reason,
    });
    if let Err(e) = dir.replace_manifest(manifest.to_json().as_bytes()) {
        // The key is still active and still at its old name; take back the second name.
        if linked {
            let _ = std::fs::remove_file(&to).and_then(|()| dir.sync_retired().map_err(std::io::Error::other));
        }
        return Err(e);
    }
    std::fs::remove_file(&from).map_err(KeysError::io(&from))?;
    dir.sync()?;
    Ok(Retired {
        entry: manifest.keys[index].clone(),
        from,
        to,
        tightened_from,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::keys::manifest::Role;

    fn directory_with_a_key(root: &Path) -> (KeyDirectory, KeyEntry) {
        let dir = KeyDirectory::new(root.join("keys"));
        dir.init(false).unwrap();
        let keypair = Keypair::generate().unwrap();
        dir.write_key_file("old.json", keypair.to_json().as_bytes()).unwrap();
        let entry = KeyEntry {
            file: "old.json".into(),
            role: Role::Program,
            public_key: keypair.public_key(),
            created_at: whole_seconds(Utc::now()),
            retired: None,
        };
        let (_lock, mut manifest) = dir.open_for_change().unwrap();
        manifest.keys.push(entry.clone());
        dir.replace_manifest(manifest.to_json().as_bytes()).unwrap();
        (dir, entry)
    }

    #[test]
    fn moves_the_file_and_records_the_retirement() {
        let root = tempfile::tempdir().unwrap();
        let (dir, entry) = directory_with_a_key(root.path());
        let bytes = std::fs::read(dir.file("old.json")).unwrap();
        let done = retire(&dir, "old", Some(" rotated "), Utc::now()).unwrap();
        assert_eq!(done.to, dir.retired_path().join("old.json"));
        assert!(!done.from.exists());
        assert_eq!(std::fs::read(&done.to).unwrap(), bytes);
        let manifest = dir.read_manifest().unwrap();
        let retired = manifest.keys[0].retired.as_ref().unwrap();
        assert_eq!(retired.reason.as_deref(), Some("rotated"));
        assert_eq!(manifest.keys[0].public_key, entry.public_key);
        assert!(matches!(
            retire(&dir, "old.json", None, Utc::now()),
            Err(KeysError::AlreadyRetired { .. })
        ));
    }

    #[test]
    fn completes_an_interrupted_retire_and_refuses_a_different_file() {
        let root = tempfile::tempdir().unwrap();
        let (dir, _) = directory_with_a_key(root.path());
        // Interrupted after the link: both names, the manifest still lists the key as active.
        dir.ensure_retired_dir().unwrap();
        std::fs::hard_link(dir.file("old.json"), dir.retired_path().join("old.json")).unwrap();
        retire(&dir, "old", None, Utc::now()).unwrap();
        assert!(!dir.file("old.json").exists());
        assert!(dir.read_manifest().unwrap().keys[0].is_retired());

        // A different file under the name in retired/: refused, nothing changed.
        let root = tempfile::tempdir().unwrap();
        let (dir, _) = directory_with_a_key(root.path());
        dir.ensure_retired_dir().unwrap();
        std::fs::write(dir.retired_path().join("old.json"), "someone else's").unwrap();
        let manifest = dir.read_manifest_bytes().unwrap();
        assert!(matches!(
            retire(&dir, "old", None, Utc::now()),
            Err(KeysError::Exists(_))
        ));
        assert_eq!(dir.read_manifest_bytes().unwrap(), manifest);
        assert!(dir.file("old.json").exists());
        assert_eq!(
            std::fs::read_to_string(dir.retired_path().join("old.json")).unwrap(),
            "someone else's"
        );
    }

    #[test]
    fn refuses_a_damaged_file_or_a_bad_reason_without_changes() {
        let root = tempfile::tempdir().unwrap();
        let (dir, _) = directory_with_a_key(root.path());
        let manifest = dir.read_manifest_bytes().unwrap();
        assert!(matches!(
            retire(&dir, "old", Some("a\nb"), Utc::now()),
            Err(KeysError::InvalidReason(_))
        ));
        std::fs::write(dir.file("old.json"), "[1,2,3]").unwrap();
        assert!(matches!(
            retire(&dir, "old", None, Utc::now()),
            Err(KeysError::CannotRetire { .. })
        ));
        std::fs::remove_file(dir.file("old.json")).unwrap();
        let e = retire(&dir, "old", None, Utc::now()).unwrap_err();
        assert!(e.to_string().contains("missing"), "{e}");
        assert_eq!(dir.read_manifest_bytes().unwrap(), manifest);
        assert!(!dir.retired_path().exists());
    }
}
