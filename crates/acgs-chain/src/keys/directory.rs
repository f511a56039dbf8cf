//! The key directory on disk: creating it private (0700), checking who owns it and who can reach it, locking it
//! while it changes, reading and replacing its manifest, writing new private (0600) files that never replace an
//! existing one, and its `retired/` subdirectory (0700) for the files of retired keys.

use std::fs::{File, OpenOptions};
use std::io::Write as _;
use std::os::unix::fs::{DirBuilderExt as _, MetadataExt as _, OpenOptionsExt as _, PermissionsExt as _};
use std::path::{Path, PathBuf};

use super::error::KeysError;
use super::manifest::{KeyEntry, MANIFEST_FILE, Manifest, RETIRED_DIR};

/// Permission bits of the key directory.
pub const DIRECTORY_MODE: u32 = 0o700;
/// Permission bits of key files, the manifest and backups.
pub const FILE_MODE: u32 = 0o600;

/// What `init` did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum InitOutcome {
    /// Made the directory and an empty manifest.
    Created,
    /// The directory existed (0700); an empty manifest was added.
    ManifestAdded,
    /// Nothing to do.
    AlreadyInitialised,
}

/// A key directory: its keypair files and `manifest.json`.
#[derive(Debug, Clone)]
pub struct KeyDirectory {
    path: PathBuf,
}

/// An exclusive lock on a key directory, held while it changes (released when dropped).
#[derive(Debug)]
pub struct DirectoryLock {
    _directory: File,
}

/// Mode bits (permissions only) and owner of a file or directory, following symbolic links.
pub fn mode_and_owner(path: &Path) -> Result<(u32, u32), KeysError> {
    let meta = std::fs::metadata(path).map_err(KeysError::io(path))?;
    Ok((meta.permissions().mode() & 0o777, meta.uid()))
}

/// This process's effective user id.
pub fn effective_uid() -> u32 {
    rustix::process::geteuid().as_raw()
}

/// Create `path` with mode 0600 and `contents`, flushed to disk; an existing file is an error, never replaced.
pub fn write_new_private(path: &Path, contents: &[u8]) -> Result<(), KeysError> {
    let mut file = OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(FILE_MODE)
        .open(path)
        .map_err(|e| {
            if e.kind() == std::io::ErrorKind::AlreadyExists {
                KeysError::Exists(path.to_owned())
            } else {
                KeysError::io(path)(e)
            }
        })?;
    // The umask can only remove bits; set them anyway so the file is exactly 0600.
    file.set_permissions(std::fs::Permissions::from_mode(FILE_MODE))
        .and_then(|()| file.write_all(contents))
        .and_then(|()| file.sync_all())
        .map_err(KeysError::io(path))
}

/// Flush a directory's entries (new and renamed files) to disk.
fn sync_directory(path: &Path) -> Result<(), KeysError> {
    File::open(path).and_then(|d| d.sync_all()).map_err(KeysError::io(path))
}

impl KeyDirectory {
    /// The key directory at `path` (which need not exist yet).
    pub fn new(path: impl Into<PathBuf>) -> Self {
        Self { path: path.into() }
    }

    /// Its path.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// The path of a file in it.
    pub fn file(&self, name: &str) -> PathBuf {
        self.path.join(name)
    }

    /// The manifest's path.
    pub fn manifest_path(&self) -> PathBuf {
        self.file(MANIFEST_FILE)
    }

    /// The directory of retired keys' files, `retired/`.
    pub fn retired_path(&self) -> PathBuf {
        self.file(RETIRED_DIR)
    }

    /// Where a key's file is: `FILE`, or `retired/FILE` for a retired key.
    pub fn key_path(&self, entry: &KeyEntry) -> PathBuf {
        self.file(&entry.location())
    }

    /// Check the directory of retired keys: it must be a directory (not a link), this user's, mode 0700. Returns
    /// whether it exists.
    pub fn check_retired_dir(&self) -> Result<bool, KeysError> {
        let path = self.retired_path();
        let meta = match std::fs::symlink_metadata(&path) {
            Ok(meta) => meta,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(false),
            Err(e) => return Err(KeysError::io(&path)(e)),
        };
        if !meta.file_type().is_dir() {
            return Err(KeysError::RetiredDirectory {
                reason: format!(
                    "is not a directory (a file or a symbolic link?); `acgs keys` keeps retired keys there: move it out of `{}`",
                    self.path.display()
                ),
                path,
            });
        }
        let me = effective_uid();
        if meta.uid() != me {
            return Err(KeysError::Owner {
                path,
                owner: meta.uid(),
                me,
            });
        }
        let mode = meta.permissions().mode() & 0o777;
        if mode != DIRECTORY_MODE {
            return Err(KeysError::RetiredDirectory {
                reason: format!("has mode {mode:o}, not 700; run `chmod 700 {}`", path.display()),
                path,
            });
        }
        Ok(true)
    }

    /// Create the directory of retired keys (0700) unless it is there, checked. Call under the lock.
    pub fn ensure_retired_dir(&self) -> Result<PathBuf, KeysError> {
        let path = self.retired_path();
        if self.check_retired_dir()? {
            return Ok(path);
        }
        std::fs::DirBuilder::new()
            .mode(DIRECTORY_MODE)
            .create(&path)
            .and_then(|()| std::fs::set_permissions(&path, std::fs::Permissions::from_mode(DIRECTORY_MODE)))
            .map_err(KeysError::io(&path))?;
        sync_directory(&self.path)?;
        Ok(path)
    }

    /// Flush the entries of the directory of retired keys.
    pub fn sync_retired(&self) -> Result<(), KeysError> {
        sync_directory(&self.retired_path())
    }

    /// Whether the directory exists.
    pub fn exists(&self) -> bool {
        self.path.is_dir()
    }

    /// Create the directory (0700, parents as needed) and an empty manifest; idempotent. An existing directory
    /// must belong to this user; one whose mode is not 0700 is refused unless `fix_permissions`, which sets 0700
    /// (and 0600 on a manifest that others can reach). Returns what was done and whether permissions were fixed.
    pub fn init(&self, fix_permissions: bool) -> Result<(InitOutcome, bool), KeysError> {
        let mut created = false;
        if !self.path.exists() {
            if let Some(parent) = self.path.parent().filter(|p| !p.as_os_str().is_empty()) {
                std::fs::create_dir_all(parent).map_err(KeysError::io(parent))?;
            }
            match std::fs::DirBuilder::new().mode(DIRECTORY_MODE).create(&self.path) {
                Ok(()) => created = true,
                Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => {}
                Err(e) => return Err(KeysError::io(&self.path)(e)),
            }
            if created {
                std::fs::set_permissions(&self.path, std::fs::Permissions::from_mode(DIRECTORY_MODE))
                    .map_err(KeysError::io(&self.path))?;
            }
        }
        if !self.path.is_dir() {
            return Err(KeysError::io(&self.path)(std::io::Error::other(
                "exists and is not a directory",
            )));
        }
        let mut fixed = self.check_directory(fix_permissions)?;
        let _lock = self.lock()?;
        let manifest = self.manifest_path();
        let outcome = if manifest.exists() {
            self.read_manifest()?;
            let (mode, _) = mode_and_owner(&manifest)?;
            if mode & 0o077 != 0 && fix_permissions {
                std::fs::set_permissions(&manifest, std::fs::Permissions::from_mode(FILE_MODE))
                    .map_err(KeysError::io(&manifest))?;
                fixed = true;
            }
            InitOutcome::AlreadyInitialised
        } else {
            write_new_private(&manifest, Manifest::default().to_json().as_bytes())?;
            sync_directory(&self.path)?;
            if created {
                InitOutcome::Created
            } else {
                InitOutcome::ManifestAdded
            }
        };
        Ok((outcome, fixed))
    }

    /// Check that the directory belongs to this user and has mode 0700; with `fix`, set 0700. Returns whether it
    /// changed the mode.
    fn check_directory(&self, fix: bool) -> Result<bool, KeysError> {
        let (mode, owner) = mode_and_owner(&self.path)?;
        let me = effective_uid();
        if owner != me {
            return Err(KeysError::Owner {
                path: self.path.clone(),
                owner,
                me,
            });
        }
        if mode == DIRECTORY_MODE {
            return Ok(false);
        }
        if !fix {
            return Err(KeysError::DirectoryMode {
                path: self.path.clone(),
                mode,
            });
        }
        std::fs::set_permissions(&self.path, std::fs::Permissions::from_mode(DIRECTORY_MODE))
            .map_err(KeysError::io(&self.path))?;
        Ok(true)
    }

    /// Open the directory for changes: it must be initialised, this user's, mode 0700. Returns the lock (held
    /// until dropped; another `acgs keys` command waits for it) and the manifest read under it.
    pub fn open_for_change(&self) -> Result<(DirectoryLock, Manifest), KeysError> {
        if !self.manifest_path().exists() {
            return Err(KeysError::NotInitialised(self.path.clone()));
        }
        self.check_directory(false)?;
        let lock = self.lock()?;
        let manifest = self.read_manifest()?;
        Ok((lock, manifest))
    }

    /// An exclusive advisory lock (flock) on the directory itself.
    pub fn lock(&self) -> Result<DirectoryLock, KeysError> {
        let directory = File::open(&self.path).map_err(KeysError::io(&self.path))?;
        rustix::fs::flock(&directory, rustix::fs::FlockOperation::LockExclusive)
            .map_err(|e| KeysError::io(&self.path)(e.into()))?;
        Ok(DirectoryLock { _directory: directory })
    }

    /// The manifest's exact bytes.
    pub fn read_manifest_bytes(&self) -> Result<Vec<u8>, KeysError> {
        let path = self.manifest_path();
        std::fs::read(&path).map_err(|e| {
            if e.kind() == std::io::ErrorKind::NotFound {
                KeysError::NotInitialised(self.path.clone())
            } else {
                KeysError::io(&path)(e)
            }
        })
    }

    /// Read and check the manifest.
    pub fn read_manifest(&self) -> Result<Manifest, KeysError> {
        let bytes = self.read_manifest_bytes()?;
        Manifest::parse(&bytes).map_err(|reason| KeysError::Manifest {
            path: self.manifest_path(),
            reason,
        })
    }

    /// Replace the manifest with `text` atomically (a 0600 temporary file renamed over it). Call under the lock.
    pub fn replace_manifest(&self, text: &[u8]) -> Result<(), KeysError> {
        let temporary = self.file(&format!(".{MANIFEST_FILE}.tmp"));
        match std::fs::remove_file(&temporary) {
            Ok(()) => {}
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
            Err(e) => return Err(KeysError::io(&temporary)(e)),
        }
        write_new_private(&temporary, text)?;
        let manifest = self.manifest_path();
        std::fs::rename(&temporary, &manifest).map_err(KeysError::io(&manifest))?;
        sync_directory(&self.path)
    }

    /// Write a new key file (0600, never replacing one). Call under the lock; record it in the manifest after.
    pub fn write_key_file(&self, name: &str, contents: &[u8]) -> Result<PathBuf, KeysError> {
        let path = self.file(name);
        write_new_private(&path, contents)?;
        Ok(path)
    }

    /// Flush the directory's entries after writing files.
    pub fn sync(&self) -> Result<(), KeysError> {
        sync_directory(&self.path)
    }

    /// The names of the entries in the directory, sorted.
    pub fn entries(&self) -> Result<Vec<String>, KeysError> {
        sorted_entries(&self.path)
    }

    /// The names of the entries in the directory of retired keys, sorted (none if it is not there).
    pub fn retired_entries(&self) -> Result<Vec<String>, KeysError> {
        let path = self.retired_path();
        if !std::fs::symlink_metadata(&path).is_ok_and(|m| m.file_type().is_dir()) {
            return Ok(Vec::new());
        }
        sorted_entries(&path)
    }

    /// Files the manifest does not account for, as paths relative to the directory: entries of the directory
    /// other than the manifest, `retired` (checked on its own) and active keys' files, and entries of `retired/`
    /// other than retired keys' files.
    pub fn unlisted(&self, manifest: &Manifest) -> Result<Vec<String>, KeysError> {
        let listed = |location: &str| manifest.keys.iter().any(|k| k.location() == location);
        let mut unlisted: Vec<String> = self
            .entries()?
            .into_iter()
            .filter(|n| n != MANIFEST_FILE && n != RETIRED_DIR && !listed(n))
            .collect();
        for name in self.retired_entries()? {
            let location = format!("{RETIRED_DIR}/{name}");
            if !listed(&location) {
                unlisted.push(location);
            }
        }
        Ok(unlisted)
    }
}

/// The names of the entries of a directory, sorted.
fn sorted_entries(path: &Path) -> Result<Vec<String>, KeysError> {
    let mut names = Vec::new();
    for entry in std::fs::read_dir(path).map_err(KeysError::io(path))? {
        let entry = entry.map_err(KeysError::io(path))?;
        names.push(entry.file_name().to_string_lossy().into_owned());
    }
    names.sort();
    Ok(names)
}
