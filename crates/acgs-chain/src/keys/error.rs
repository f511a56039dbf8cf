//! What can go wrong with keypair files, the key directory and backups: one typed error for the key vault.

use std::path::PathBuf;

use super::keypair::KeypairError;

/// An error of the key vault (`acgs keys`); the message names the file and says what to do where there is something to do.
#[derive(Debug, thiserror::Error)]
pub enum KeysError {
    /// Reading or writing a file failed.
    #[error("`{path}`: {source}")]
    Io {
        /// The file or directory.
        path: PathBuf,
        /// What the system said.
        #[source]
        source: std::io::Error,
    },
    /// A file is not a valid Solana keypair (or its halves disagree).
    #[error("`{path}`: {source}")]
    Keypair {
        /// The file.
        path: PathBuf,
        /// What is wrong with it.
        #[source]
        source: KeypairError,
    },
    /// A file would be overwritten.
    #[error("`{0}` already exists; `acgs keys` never overwrites a file")]
    Exists(PathBuf),
    /// The key directory or its manifest is missing.
    #[error("`{0}` is not a key directory (no manifest.json); run `acgs keys init --dir {0}`")]
    NotInitialised(PathBuf),
    /// The key directory can be reached by other users, or is not exactly `0700`.
    #[error("`{path}` has mode {mode:o}, not 700; run `acgs keys init --fix-permissions --dir {path}`")]
    DirectoryMode {
        /// The directory.
        path: PathBuf,
        /// Its permission bits.
        mode: u32,
    },
    /// A file or directory belongs to another user.
    #[error("`{path}` belongs to uid {owner}, not to this user (uid {me})")]
    Owner {
        /// The file or directory.
        path: PathBuf,
        /// Its owner.
        owner: u32,
        /// The effective uid of this process.
        me: u32,
    },
    /// The manifest cannot be read as one.
    #[error("manifest `{path}`: {reason}")]
    Manifest {
        /// The manifest file.
        path: PathBuf,
        /// What is wrong with it.
        reason: String,
    },
    /// A key name that cannot be a file name in the key directory.
    #[error("invalid key name `{0}`: use letters, digits, `.`, `_` and `-` (at most 100, not starting with `.`)")]
    InvalidName(String),
    /// `retire` was given a name the manifest does not list.
    #[error("no key `{name}` in `{manifest}`; `acgs keys list --dir {dir}` shows the keys")]
    UnknownKey {
        /// The name given.
        name: String,
        /// The manifest.
        manifest: PathBuf,
        /// The key directory.
        dir: PathBuf,
    },
    /// `retire` was given a key that is already retired.
    #[error("`{name}` is already retired (on {at}); its file is `{path}`")]
    AlreadyRetired {
        /// The key's file name.
        name: String,
        /// When it was retired (`YYYY-MM-DD`).
        at: String,
        /// Where its file is.
        path: PathBuf,
    },
    /// A key cannot be retired as it is (its file is missing or not the listed key).
    #[error("cannot retire `{name}`, nothing was changed: {reason}")]
    CannotRetire {
        /// The key's file name.
        name: String,
        /// Why.
        reason: String,
    },
    /// A retirement reason that cannot go into the manifest.
    #[error("--reason: {0}")]
    InvalidReason(String),
    /// The directory of retired keys is not a private directory of this user.
    #[error("`{path}`: {reason}")]
    RetiredDirectory {
        /// The `retired` directory.
        path: PathBuf,
        /// What is wrong and what to do.
        reason: String,
    },
    /// The passphrase is missing or does not meet the policy.
    #[error("passphrase: {0}")]
    Passphrase(String),
    /// A file is not a backup this version can read.
    #[error("`{path}`: {reason}")]
    Archive {
        /// The archive.
        path: PathBuf,
        /// What is wrong with it.
        reason: String,
    },
    /// Authenticated decryption failed: the passphrase is wrong or the archive was altered.
    #[error("`{0}` does not decrypt: wrong passphrase, or the archive was damaged or altered (nothing was written)")]
    Decrypt(PathBuf),
    /// A restore would replace keys that differ from the archived ones.
    #[error("restore refused, nothing was written: {}", .0.join("; "))]
    Conflict(Vec<String>),
    /// The system gave no random bytes.
    #[error("no randomness from the system: {0}")]
    Random(String),
    /// A cryptographic primitive refused its input (it should not).
    #[error("{0}")]
    Crypto(String),
}

impl KeysError {
    /// An I/O error on `path`.
    pub fn io(path: impl Into<PathBuf>) -> impl FnOnce(std::io::Error) -> Self {
        let path = path.into();
        move |source| Self::Io { path, source }
    }
}
