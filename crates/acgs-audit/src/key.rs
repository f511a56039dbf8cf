//! The log's signing key: an Ed25519 key kept in a file readable only by its owner, in the signed-note
//! private-key form `PRIVATE+KEY+<name>+<key hash>+<base64(0x01 || seed)>`, and the public verifier key
//! `<name>+<key hash>+<base64(0x01 || public key)>` that anyone uses to check checkpoints and receipts.
//!
//! The key name is also the checkpoint origin, so a checkpoint names the log it belongs to.

use std::io::Write as _;
use std::path::{Path, PathBuf};

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD as BASE64;
use ed25519_dalek::{SigningKey, VerifyingKey};

use crate::checkpoint::{Checkpoint, key_hash, verifier_key};

const PRIVATE_PREFIX: &str = "PRIVATE+KEY+";
const ED25519_TYPE: u8 = 0x01;

/// Why a key could not be created, read or parsed.
#[derive(Debug, thiserror::Error)]
pub enum KeyError {
    /// The key file could not be read or written.
    #[error("key file `{path}`: {source}")]
    Io {
        /// The file.
        path: PathBuf,
        /// The underlying error.
        source: std::io::Error,
    },
    /// The key file can be read by users other than its owner.
    #[error("key file `{path}` is readable by other users (mode {mode:o}); run `chmod 600 {path}`")]
    TooOpen {
        /// The file.
        path: PathBuf,
        /// Its permission bits.
        mode: u32,
    },
    /// The text is not a key of the expected form.
    #[error("malformed key: {0}")]
    Malformed(String),
    /// A key name that cannot appear in a note.
    #[error("invalid key name `{0}`: use letters, digits and `.-_/:`, no `+` or spaces")]
    InvalidName(String),
}

/// The log's Ed25519 signing key and its name.
#[derive(Clone)]
pub struct LogKey {
    name: String,
    key: SigningKey,
}

impl std::fmt::Debug for LogKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("LogKey")
            .field("name", &self.name)
            .field("verifier_key", &self.verifier_key())
            .finish_non_exhaustive()
    }
}

fn check_name(name: &str) -> Result<(), KeyError> {
    let ok = !name.is_empty()
        && name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '-' | '_' | '/' | ':'));
    if ok {
        Ok(())
    } else {
        Err(KeyError::InvalidName(name.to_owned()))
    }
}

impl LogKey {
    /// A new random key named `name`, or, when `name` is `None`, `acgs.local/audit/<first 8 hex digits of the
    /// public key>`.
    pub fn generate(name: Option<&str>) -> Result<Self, KeyError> {
        let mut seed = [0u8; 32];
        getrandom::fill(&mut seed).map_err(|e| KeyError::Malformed(format!("no randomness: {e}")))?;
        let key = SigningKey::from_bytes(&seed);
        let name = match name {
            Some(n) => n.to_owned(),
            None => format!("acgs.local/audit/{}", hex::encode(&key.verifying_key().as_bytes()[..4])),
        };
        check_name(&name)?;
        Ok(Self { name, key })
    }

    /// A key from its private-key text.
    pub fn parse(text: &str) -> Result<Self, KeyError> {
        let malformed = |m: &str| KeyError::Malformed(m.to_owned());
        let rest = text
            .trim()
            .strip_prefix(PRIVATE_PREFIX)
            .ok_or_else(|| malformed("does not start with PRIVATE+KEY+"))?;
        let mut parts = rest.splitn(3, '+');
        let (Some(name), Some(hash), Some(blob)) = (parts.next(), parts.next(), parts.next()) else {
            return Err(malformed("expected PRIVATE+KEY+<name>+<hash>+<key>"));
        };
        check_name(name)?;
        let blob = BASE64.decode(blob).map_err(|_| malformed("key is not base64"))?;
        let seed: [u8; 32] = match blob.split_first() {
            Some((&ED25519_TYPE, seed)) => seed.try_into().map_err(|_| malformed("Ed25519 seed is not 32 bytes"))?,
            _ => return Err(malformed("not an Ed25519 key")),
        };
        let key = SigningKey::from_bytes(&seed);
        if hex::encode(key_hash(name, &key.verifying_key())) != hash {
            return Err(malformed("key hash does not match the key"));
        }
        Ok(Self {
            name: name.to_owned(),
            key,
        })
    }

    /// The private-key text (what the key file holds).
    pub fn to_private_text(&self) -> String {
        let mut blob = vec![ED25519_TYPE];
        blob.extend_from_slice(self.key.as_bytes());
        format!(
            "{PRIVATE_PREFIX}{}+{}+{}",
            self.name,
            hex::encode(key_hash(&self.name, &self.key.verifying_key())),
            BASE64.encode(blob)
        )
    }

    /// Read the key at `path`, refusing a file others can read.
    pub fn load(path: &Path) -> Result<Self, KeyError> {
        let io = |source| KeyError::Io {
            path: path.to_owned(),
            source,
        };
        check_private(path)?;
        Self::parse(&std::fs::read_to_string(path).map_err(io)?)
    }

    /// Read the key at `path`, or create it (mode 0600, parent directories as needed) if there is no file.
    /// Returns the key and whether it was created.
    pub fn load_or_create(path: &Path, name: Option<&str>) -> Result<(Self, bool), KeyError> {
        if path.exists() {
            return Ok((Self::load(path)?, false));
        }
        let io = |source| KeyError::Io {
            path: path.to_owned(),
            source,
        };
        if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
            std::fs::create_dir_all(dir).map_err(io)?;
        }
        let key = Self::generate(name)?;
        let mut options = std::fs::OpenOptions::new();
        options.write(true).create_new(true);
        #[cfg(unix)]
        std::os::unix::fs::OpenOptionsExt::mode(&mut options, 0o600);
        let mut file = options.open(path).map_err(io)?;
        file.write_all(format!("{}\n", key.to_private_text()).as_bytes())
            .and_then(|()| file.sync_all())
            .map_err(io)?;
        Ok((key, true))
    }

    /// The key name (also the checkpoint origin).
    pub fn name(&self) -> &str {
        &self.name
    }

    /// The public key.
    pub fn verifying_key(&self) -> VerifyingKey {
        self.key.verifying_key()
    }

    /// The public key in verifier-key form.
    pub fn verifier_key(&self) -> String {
        verifier_key(&self.name, &self.key.verifying_key())
    }

    /// Sign a tree head of this log (origin = key name) as a checkpoint note.
    pub fn sign_checkpoint(&self, size: u64, root: crate::Hash) -> String {
        Checkpoint {
            origin: self.name.clone(),
            size,
            root,
        }
        .sign(&self.name, &self.key)
    }
}

#[cfg(unix)]
fn check_private(path: &Path) -> Result<(), KeyError> {
    use std::os::unix::fs::PermissionsExt as _;
    let meta = std::fs::metadata(path).map_err(|source| KeyError::Io {
        path: path.to_owned(),
        source,
    })?;
    let mode = meta.permissions().mode() & 0o777;
    if mode & 0o077 != 0 {
        return Err(KeyError::TooOpen {
            path: path.to_owned(),
            mode,
        });
    }
    Ok(())
}

#[cfg(not(unix))]
fn check_private(_path: &Path) -> Result<(), KeyError> {
    Ok(())
}

/// A public key given as verifier-key text: its name and key.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct VerifierKey {
    /// Key name (the log's origin).
    pub name: String,
    /// The Ed25519 public key.
    pub key: VerifyingKey,
}

impl VerifierKey {
    /// Parse `<name>+<key hash>+<base64(0x01 || public key)>`.
    pub fn parse(text: &str) -> Result<Self, KeyError> {
        let malformed = |m: &str| KeyError::Malformed(m.to_owned());
        let text = text.trim();
        if text.starts_with(PRIVATE_PREFIX) {
            return Err(malformed("this is a private key; give the public verifier key"));
        }
        let mut parts = text.splitn(3, '+');
        let (Some(name), Some(hash), Some(blob)) = (parts.next(), parts.next(), parts.next()) else {
            return Err(malformed("expected <name>+<hash>+<key>"));
        };
        check_name(name)?;
        let blob = BASE64.decode(blob).map_err(|_| malformed("key is not base64"))?;
        let bytes: [u8; 32] = match blob.split_first() {
            Some((&ED25519_TYPE, bytes)) => bytes.try_into().map_err(|_| malformed("Ed25519 key is not 32 bytes"))?,
            _ => return Err(malformed("not an Ed25519 key")),
        };
        let key = VerifyingKey::from_bytes(&bytes).map_err(|_| malformed("not a valid Ed25519 public key"))?;
        if hex::encode(key_hash(name, &key)) != hash {
            return Err(malformed("key hash does not match the key"));
        }
        Ok(Self {
            name: name.to_owned(),
            key,
        })
    }

    /// Verify a checkpoint note signed by this key for this log (origin = key name).
    pub fn verify_checkpoint(&self, note: &str) -> Result<Checkpoint, crate::CheckpointError> {
        let checkpoint = Checkpoint::verify(note, &self.name, &self.key)?;
        if checkpoint.origin != self.name {
            return Err(crate::CheckpointError::Malformed(format!(
                "origin `{}` is not the key's log `{}`",
                checkpoint.origin, self.name
            )));
        }
        Ok(checkpoint)
    }
}

impl std::fmt::Display for VerifierKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&verifier_key(&self.name, &self.key))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_round_trip_through_their_text_forms_and_sign_checkpoints() {
        let key = LogKey::generate(Some("acgs.test/log")).unwrap();
        let again = LogKey::parse(&key.to_private_text()).unwrap();
        assert_eq!(again.verifier_key(), key.verifier_key());
        let verifier = VerifierKey::parse(&key.verifier_key()).unwrap();
        assert_eq!(verifier.to_string(), key.verifier_key());
        let note = key.sign_checkpoint(7, [9; 32]);
        let checkpoint = verifier.verify_checkpoint(&note).unwrap();
        assert_eq!((checkpoint.size, checkpoint.root), (7, [9; 32]));
        let other = VerifierKey::parse(&LogKey::generate(None).unwrap().verifier_key()).unwrap();
        assert!(other.verify_checkpoint(&note).is_err());
    }

    #[test]
    fn malformed_keys_and_names_are_refused() {
        assert!(LogKey::generate(Some("has space")).is_err());
        assert!(LogKey::generate(Some("a+b")).is_err());
        assert!(LogKey::parse("nonsense").is_err());
        let key = LogKey::generate(None).unwrap();
        assert!(VerifierKey::parse(&key.to_private_text()).is_err());
        let mut text = key.verifier_key();
        text.replace_range(text.len() - 8..text.len() - 4, "AAAA");
        assert!(VerifierKey::parse(&text).is_err());
    }

    #[cfg(unix)]
    #[test]
    fn key_files_are_created_private_and_refused_when_readable_by_others() {
        use std::os::unix::fs::PermissionsExt as _;
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("keys/audit-log.key");
        let (key, created) = LogKey::load_or_create(&path, None).unwrap();
        assert!(created);
        assert_eq!(std::fs::metadata(&path).unwrap().permissions().mode() & 0o777, 0o600);
        let (again, created) = LogKey::load_or_create(&path, None).unwrap();
        assert!(!created);
        assert_eq!(again.verifier_key(), key.verifier_key());
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o644)).unwrap();
        assert!(matches!(LogKey::load(&path), Err(KeyError::TooOpen { .. })));
    }
}
