//! Encrypted backups of a key directory and their restore. A backup is one file: a 62-byte header (magic,
//! version, Argon2id parameters, salt, nonce) and, encrypted with XChaCha20-Poly1305 under a key derived from a
//! passphrase with Argon2id, a JSON document holding the manifest and every listed keypair file verbatim. The
//! header is the cipher's associated data, so changing any byte of the file makes decryption fail. Retired keys
//! are carried like the others (the manifest says they are retired) and restored under `retired/`.

use std::collections::HashSet;
use std::path::{Path, PathBuf};

use argon2::{Algorithm, Argon2, Params, Version};
use chacha20poly1305::aead::{Aead, KeyInit, Payload};
use chacha20poly1305::{XChaCha20Poly1305, XNonce};
use chrono::{DateTime, SecondsFormat, Utc};
use serde::{Deserialize, Serialize};
use zeroize::{Zeroize, Zeroizing};

use super::directory::{KeyDirectory, write_new_private};
use super::error::KeysError;
use super::keypair::Keypair;
use super::manifest::{Manifest, check_file_name};

/// The first bytes of every backup.
pub const MAGIC: &[u8; 8] = b"ACGSKEYS";
/// The header format version this code writes and reads.
pub const VERSION: u8 = 1;
/// The key derivation function id for Argon2id (version 0x13, RFC 9106).
pub const KDF_ARGON2ID: u8 = 1;
/// Header length: magic 8, version 1, KDF 1, memory 4, passes 4, lanes 4, salt 16, nonce 24.
pub const HEADER_LEN: usize = 62;
/// The value of the encrypted document's `format` field.
pub const CONTENTS_FORMAT: &str = "acgs-keys-backup/v1";
/// Shortest passphrase for a new backup, in characters.
pub const MIN_PASSPHRASE_CHARS: usize = 12;
/// Longest passphrase, in bytes.
pub const MAX_PASSPHRASE_BYTES: usize = 1024;

const SALT_LEN: usize = 16;
const NONCE_LEN: usize = 24;

/// Argon2id cost parameters, as stored in the header.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct KdfParams {
    /// Memory in KiB.
    pub memory_kib: u32,
    /// Passes over the memory.
    pub passes: u32,
    /// Lanes (parallelism).
    pub lanes: u32,
}

/// The parameters of new backups: 64 MiB, 3 passes, 1 lane (RFC 9106's second recommended option, on one
/// lane). Stronger than login passwords' (19 MiB, 2 passes): a backup may be attacked offline for years, and
/// opening one is rare.
pub const BACKUP_KDF: KdfParams = KdfParams {
    memory_kib: 64 * 1024,
    passes: 3,
    lanes: 1,
};

/// The most a backup's header may ask for (1 GiB, 16 passes, 16 lanes); a larger request is refused before any
/// memory is allocated, so a crafted file cannot exhaust the machine.
pub const KDF_LIMITS: KdfParams = KdfParams {
    memory_kib: 1024 * 1024,
    passes: 16,
    lanes: 16,
};

/// A passphrase (1 to 1024 bytes), wiped when dropped.
pub struct Passphrase(Zeroizing<String>);

impl std::fmt::Debug for Passphrase {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Passphrase(…)")
    }
}

impl Passphrase {
    /// A passphrase from input text, without one final line ending (`\n` or `\r\n`).
    pub fn from_input(mut text: Zeroizing<String>) -> Result<Self, KeysError> {
        for ending in ["\r\n", "\n"] {
            if text.ends_with(ending) {
                let keep = text.len() - ending.len();
                text.truncate(keep);
                break;
            }
        }
        if text.is_empty() {
            return Err(KeysError::Passphrase("it is empty".into()));
        }
        if text.len() > MAX_PASSPHRASE_BYTES {
            return Err(KeysError::Passphrase(format!(
                "it is longer than {MAX_PASSPHRASE_BYTES} bytes"
            )));
        }
        Ok(Self(text))
    }

    /// Check the policy for a new backup: at least 12 characters.
    pub fn check_new(&self) -> Result<(), KeysError> {
        let chars = self.0.chars().count();
        if chars < MIN_PASSPHRASE_CHARS {
            return Err(KeysError::Passphrase(format!(
                "{chars} characters; a backup passphrase has at least {MIN_PASSPHRASE_CHARS}"
            )));
        }
        Ok(())
    }
}

/// A decoded header.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Header {
    kdf: KdfParams,
    salt: [u8; SALT_LEN],
    nonce: [u8; NONCE_LEN],
}

impl Header {
    fn encode(&self) -> [u8; HEADER_LEN] {
        let mut out = [0u8; HEADER_LEN];
        let fields: [&[u8]; 8] = [
            MAGIC,
            &[VERSION],
            &[KDF_ARGON2ID],
            &self.kdf.memory_kib.to_be_bytes(),
            &self.kdf.passes.to_be_bytes(),
            &self.kdf.lanes.to_be_bytes(),
            &self.salt,
            &self.nonce,
        ];
        let mut at = 0;
        for field in fields {
            out[at..at + field.len()].copy_from_slice(field);
            at += field.len();
        }
        out
    }

    /// The header and the ciphertext after it; the error says what is wrong.
    fn decode(archive: &[u8]) -> Result<(Self, &[u8]), String> {
        if archive.len() < HEADER_LEN || !archive.starts_with(MAGIC) {
            return Err("not an acgs key backup (no `ACGSKEYS` header)".into());
        }
        let (header, ciphertext) = archive.split_at(HEADER_LEN);
        if header[8] != VERSION {
            return Err(format!(
                "backup format version {}; this acgs reads version {VERSION}",
                header[8]
            ));
        }
        if header[9] != KDF_ARGON2ID {
            return Err(format!("unknown key derivation function {}", header[9]));
        }
        let u32_at = |at: usize| {
            let mut bytes = [0u8; 4];
            bytes.copy_from_slice(&header[at..at + 4]);
            u32::from_be_bytes(bytes)
        };
        let kdf = KdfParams {
            memory_kib: u32_at(10),
            passes: u32_at(14),
            lanes: u32_at(18),
        };
        if kdf.memory_kib > KDF_LIMITS.memory_kib || kdf.passes > KDF_LIMITS.passes || kdf.lanes > KDF_LIMITS.lanes {
            return Err(format!(
                "its Argon2id parameters ({} KiB, {} passes, {} lanes) exceed the limits ({} KiB, {} passes, {} lanes)",
                kdf.memory_kib, kdf.passes, kdf.lanes, KDF_LIMITS.memory_kib, KDF_LIMITS.passes, KDF_LIMITS.lanes
            ));
        }
        let mut salt = [0u8; SALT_LEN];
        salt.copy_from_slice(&header[22..22 + SALT_LEN]);
        let mut nonce = [0u8; NONCE_LEN];
        nonce.copy_from_slice(&header[38..38 + NONCE_LEN]);
        Ok((Self { kdf, salt, nonce }, ciphertext))
    }
}

/// The 256-bit encryption key: Argon2id(passphrase, salt) with the header's parameters.
fn derive_key(passphrase: &Passphrase, header: &Header) -> Result<Zeroizing<[u8; 32]>, String> {
    let params = Params::new(header.kdf.memory_kib, header.kdf.passes, header.kdf.lanes, Some(32))
        .map_err(|e| format!("invalid Argon2id parameters: {e}"))?;
    let mut key = Zeroizing::new([0u8; 32]);
    Argon2::new(Algorithm::Argon2id, Version::V0x13, params)
        .hash_password_into(passphrase.0.as_bytes(), &header.salt, key.as_mut_slice())
        .map_err(|e| format!("Argon2id: {e}"))?;
    Ok(key)
}

/// Encrypt `plaintext` into a whole archive (header and ciphertext) with the derived `key`.
fn encrypt(key: &[u8; 32], header: &Header, plaintext: &[u8]) -> Result<Vec<u8>, KeysError> {
    let aad = header.encode();
    let ciphertext = XChaCha20Poly1305::new(key.into())
        .encrypt(
            XNonce::from_slice(&header.nonce),
            Payload {
                msg: plaintext,
                aad: &aad,
            },
        )
        .map_err(|_| KeysError::Crypto("cannot encrypt the backup".into()))?;
    Ok([aad.as_slice(), &ciphertext].concat())
}

/// Decrypt an archive's ciphertext with the derived `key`; `None` when authentication fails.
fn decrypt(key: &[u8; 32], header: &Header, ciphertext: &[u8]) -> Option<Zeroizing<Vec<u8>>> {
    let aad = header.encode();
    XChaCha20Poly1305::new(key.into())
        .decrypt(
            XNonce::from_slice(&header.nonce),
            Payload {
                msg: ciphertext,
                aad: &aad,
            },
        )
        .ok()
        .map(Zeroizing::new)
}

/// Encrypt `plaintext` under `passphrase` with a fresh salt and nonce.
#[cfg(test)]
fn seal(plaintext: &[u8], passphrase: &Passphrase, kdf: KdfParams) -> Result<Vec<u8>, KeysError> {
    seal_keeping_key(plaintext, passphrase, kdf).map(|(archive, _)| archive)
}

fn seal_keeping_key(
    plaintext: &[u8],
    passphrase: &Passphrase,
    kdf: KdfParams,
) -> Result<(Vec<u8>, Zeroizing<[u8; 32]>), KeysError> {
    let mut salt = [0u8; SALT_LEN];
    let mut nonce = [0u8; NONCE_LEN];
    getrandom::fill(&mut salt)
        .and_then(|()| getrandom::fill(&mut nonce))
        .map_err(|e| KeysError::Random(e.to_string()))?;
    let header = Header { kdf, salt, nonce };
    let key = derive_key(passphrase, &header).map_err(KeysError::Crypto)?;
    Ok((encrypt(&key, &header, plaintext)?, key))
}

/// Decrypt an archive read from `path` (named in errors).
pub fn open(archive: &[u8], passphrase: &Passphrase, path: &Path) -> Result<Zeroizing<Vec<u8>>, KeysError> {
    let invalid = |reason: String| KeysError::Archive {
        path: path.to_owned(),
        reason,
    };
    let (header, ciphertext) = Header::decode(archive).map_err(invalid)?;
    let key = derive_key(passphrase, &header).map_err(invalid)?;
    decrypt(&key, &header, ciphertext).ok_or_else(|| KeysError::Decrypt(path.to_owned()))
}

/// The encrypted document.
#[derive(Serialize, Deserialize)]
struct Contents {
    format: String,
    created_at: String,
    /// `manifest.json`, byte for byte.
    manifest: String,
    keys: Vec<ArchivedKey>,
}

/// One keypair file, byte for byte; its text is wiped when dropped.
#[derive(Serialize, Deserialize)]
struct ArchivedKey {
    file: String,
    keypair: String,
}

impl Drop for ArchivedKey {
    fn drop(&mut self) {
        self.keypair.zeroize();
    }
}

/// What a backup held.
#[derive(Debug)]
pub struct BackupSummary {
    /// Keys in the backup.
    pub keys: usize,
    /// Files in the directory that the manifest does not list, left out.
    pub unlisted: Vec<String>,
}

/// Write an encrypted backup of `dir` (manifest and every listed key, each checked first) to the new file `out`
/// (0600; an existing file is never replaced), then read it back and check that it decrypts to what was written.
pub fn backup(
    dir: &KeyDirectory,
    out: &Path,
    passphrase: &Passphrase,
    kdf: KdfParams,
    now: DateTime<Utc>,
) -> Result<BackupSummary, KeysError> {
    passphrase.check_new()?;
    if out.exists() {
        return Err(KeysError::Exists(out.to_owned()));
    }
    let (_lock, manifest) = dir.open_for_change()?;
    if inside(dir.path(), out) {
        return Err(KeysError::Archive {
            path: out.to_owned(),
            reason: "write the backup outside the key directory".into(),
        });
    }
    let manifest_text = String::from_utf8(dir.read_manifest_bytes()?).map_err(|_| KeysError::Manifest {
        path: dir.manifest_path(),
        reason: "not UTF-8".into(),
    })?;
    let mut keys = Vec::with_capacity(manifest.keys.len());
    for entry in &manifest.keys {
        let path = dir.key_path(entry);
        let bytes = Zeroizing::new(std::fs::read(&path).map_err(KeysError::io(&path))?);
        let keypair = Keypair::from_json(&bytes).map_err(|source| KeysError::Keypair {
            path: path.clone(),
            source,
        })?;
        if keypair.public_key() != entry.public_key {
            return Err(KeysError::Archive {
                path: path.clone(),
                reason: format!(
                    "holds {}, not the manifest's {} (run `acgs keys audit`)",
                    keypair.public_key(),
                    entry.public_key
                ),
            });
        }
        // Valid keypair files are ASCII.
        let text = std::str::from_utf8(&bytes).unwrap_or_default();
        keys.push(ArchivedKey {
            file: entry.file.clone(),
            keypair: text.to_owned(),
        });
    }
    let unlisted = dir.unlisted(&manifest)?;
    let contents = Contents {
        format: CONTENTS_FORMAT.to_owned(),
        created_at: now.to_rfc3339_opts(SecondsFormat::Secs, true),
        manifest: manifest_text,
        keys,
    };
    // Sized up front (JSON escaping at most doubles the text) so the buffer holding the secrets never moves.
    let size = 1024
        + 2 * (contents.manifest.len()
            + contents
                .keys
                .iter()
                .map(|k| k.keypair.len() + k.file.len() + 32)
                .sum::<usize>());
    let mut plaintext = Zeroizing::new(Vec::with_capacity(size));
    serde_json::to_writer(&mut *plaintext, &contents)
        .map_err(|e| KeysError::Crypto(format!("cannot encode the backup: {e}")))?;
    let (archive, key) = seal_keeping_key(&plaintext, passphrase, kdf)?;
    write_new_private(out, &archive)?;
    // Read back what is on disk and check it opens to the same document.
    let written = std::fs::read(out).map_err(KeysError::io(out))?;
    let readable = Header::decode(&written)
        .ok()
        .and_then(|(header, ciphertext)| decrypt(&key, &header, ciphertext))
        .is_some_and(|back| *back == *plaintext);
    if !readable {
        return Err(KeysError::Archive {
            path: out.to_owned(),
            reason: "the backup written does not read back (disk error?); delete it and try again".into(),
        });
    }
    Ok(BackupSummary {
        keys: contents.keys.len(),
        unlisted,
    })
}

/// Whether `file` would land inside `dir` (compared through their canonical paths).
fn inside(dir: &Path, file: &Path) -> bool {
    let parent = match file.parent() {
        Some(p) if !p.as_os_str().is_empty() => p.to_owned(),
        _ => PathBuf::from("."),
    };
    match (dir.canonicalize(), parent.canonicalize()) {
        (Ok(d), Ok(p)) => p.starts_with(d),
        _ => false,
    }
}

/// What a restore did.
#[derive(Debug)]
pub struct RestoreSummary {
    /// Key files written, relative to the directory (`retired/FILE` for retired keys).
    pub restored: Vec<String>,
    /// Key files that were already there with the same key, relative to the directory.
    pub present: Vec<String>,
}

/// Restore the backup at `archive` into `dir` (created 0700 if missing). Everything is checked first (the
/// passphrase, every keypair against the archived manifest, and every file and manifest entry already in `dir`);
/// when anything is wrong nothing is written. Keys already present with the same public key are kept; a different
/// key under the same name, or the same key under another name, is a conflict. A key goes where the directory's
/// manifest has it if it lists it (so an old backup does not bring a retired key back), else where the backup's
/// manifest has it: retired keys under `retired/` (created 0700).
pub fn restore(archive: &Path, dir: &KeyDirectory, passphrase: &Passphrase) -> Result<RestoreSummary, KeysError> {
    let bytes = std::fs::read(archive).map_err(KeysError::io(archive))?;
    let plaintext = open(&bytes, passphrase, archive)?;
    let damaged = |reason: String| KeysError::Archive {
        path: archive.to_owned(),
        reason,
    };
    let contents: Contents =
        serde_json::from_slice(&plaintext).map_err(|e| damaged(format!("the decrypted document is not valid: {e}")))?;
    if contents.format != CONTENTS_FORMAT {
        return Err(damaged(format!(
            "document format `{}`; this acgs reads `{CONTENTS_FORMAT}`",
            contents.format
        )));
    }
    let manifest = Manifest::parse(contents.manifest.as_bytes()).map_err(|e| damaged(format!("its manifest: {e}")))?;
    let mut archived = Vec::with_capacity(contents.keys.len());
    let mut names = HashSet::new();
    for key in &contents.keys {
        check_file_name(&key.file).map_err(|e| damaged(format!("key `{}`: {e}", key.file)))?;
        if !names.insert(key.file.as_str()) {
            return Err(damaged(format!("`{}` is in it twice", key.file)));
        }
        let entry = manifest
            .get(&key.file)
            .ok_or_else(|| damaged(format!("`{}` is not in its manifest", key.file)))?;
        let keypair =
            Keypair::from_json(key.keypair.as_bytes()).map_err(|e| damaged(format!("`{}`: {e}", key.file)))?;
        if keypair.public_key() != entry.public_key {
            return Err(damaged(format!(
                "`{}` holds {}, its manifest lists {}",
                key.file,
                keypair.public_key(),
                entry.public_key
            )));
        }
        archived.push((key, entry));
    }
    if let Some(missing) = manifest.keys.iter().find(|e| !names.contains(e.file.as_str())) {
        return Err(damaged(format!(
            "its manifest lists `{}`, which it does not hold",
            missing.file
        )));
    }

    // A missing directory is created (0700) with an empty manifest, and so is a missing manifest.
    if !dir.exists() || !dir.manifest_path().exists() {
        dir.init(false)?;
    }
    let (_lock, current) = dir.open_for_change()?;

    // Plan under the lock; refuse before writing anything.
    let mut conflicts = Vec::new();
    let mut to_write = Vec::new();
    let mut present = Vec::new();
    let mut retired_dir_checked = false;
    for (key, entry) in &archived {
        if let Some(listed) = current.get(&key.file)
            && listed.public_key != entry.public_key
        {
            conflicts.push(format!(
                "`{}` is listed in `{}` with the key {}, the backup has {}",
                key.file,
                dir.manifest_path().display(),
                listed.public_key,
                entry.public_key
            ));
            continue;
        }
        if let Some(other) = current.by_public_key(&entry.public_key)
            && other.file != key.file
        {
            conflicts.push(format!(
                "the key {} of `{}` is already in the directory as `{}`",
                entry.public_key, key.file, other.file
            ));
            continue;
        }
        let target = current.get(&key.file).unwrap_or(entry);
        if target.is_retired() && !retired_dir_checked {
            dir.check_retired_dir()?;
            retired_dir_checked = true;
        }
        let location = target.location();
        let path = dir.file(&location);
        if path.exists() {
            match Keypair::read(&path) {
                Ok(k) if k.public_key() == entry.public_key => present.push(location),
                Ok(k) => conflicts.push(format!(
                    "`{}` exists and holds a different key ({}, the backup has {})",
                    path.display(),
                    k.public_key(),
                    entry.public_key
                )),
                Err(e) => conflicts.push(format!("`{}` exists and is not the backup's key: {e}", path.display())),
            }
        } else {
            to_write.push((key, location));
        }
    }
    if !conflicts.is_empty() {
        return Err(KeysError::Conflict(conflicts));
    }

    let writes_retired = to_write.iter().any(|(key, location)| *location != key.file);
    if writes_retired {
        dir.ensure_retired_dir()?;
    }
    let mut restored = Vec::new();
    for (key, location) in to_write {
        dir.write_key_file(&location, key.keypair.as_bytes())?;
        restored.push(location);
    }
    dir.sync()?;
    if writes_retired {
        dir.sync_retired()?;
    }
    if current.keys.is_empty() {
        // Byte for byte what was backed up.
        dir.replace_manifest(contents.manifest.as_bytes())?;
    } else {
        let mut merged = current.clone();
        for (_, entry) in &archived {
            if merged.get(&entry.file).is_none() {
                merged.keys.push((*entry).clone());
            }
        }
        if merged != current {
            dir.replace_manifest(merged.to_json().as_bytes())?;
        }
    }
    Ok(RestoreSummary { restored, present })
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Cheap parameters: the format, not the cost, is under test here.
    const TEST_KDF: KdfParams = KdfParams {
        memory_kib: 64,
        passes: 1,
        lanes: 1,
    };

    fn passphrase(s: &str) -> Passphrase {
        Passphrase::from_input(Zeroizing::new(s.to_owned())).unwrap()
    }

    #[test]
    fn seal_then_open() {
        let p = passphrase("correct horse battery staple");
        let archive = seal(b"the keys", &p, TEST_KDF).unwrap();
        assert_eq!(&archive[..8], MAGIC);
        assert_eq!(archive.len(), HEADER_LEN + b"the keys".len() + 16);
        assert_eq!(*open(&archive, &p, Path::new("b")).unwrap(), b"the keys");
        // Fresh salt and nonce each time.
        assert_ne!(seal(b"the keys", &p, TEST_KDF).unwrap(), archive);
    }

    #[test]
    fn the_header_holds_the_parameters() {
        let archive = seal(b"x", &passphrase("0123456789ab"), BACKUP_KDF).unwrap();
        let (header, _) = Header::decode(&archive).unwrap();
        assert_eq!(header.kdf, BACKUP_KDF);
        assert_eq!(&archive[8..22], &[1, 1, 0, 1, 0, 0, 0, 0, 0, 3, 0, 0, 0, 1]);
    }

    #[test]
    fn any_changed_byte_or_a_wrong_passphrase_fails() {
        let p = passphrase("correct horse battery staple");
        let archive = seal(b"the keys", &p, TEST_KDF).unwrap();
        assert!(matches!(
            open(&archive, &passphrase("correct horse battery stapler"), Path::new("b")),
            Err(KeysError::Decrypt(_))
        ));
        // Every byte after the version and KDF id (which have their own errors): parameters, salt, nonce,
        // ciphertext, tag.
        for i in 10..archive.len() {
            let mut changed = archive.clone();
            changed[i] ^= 0x01;
            assert!(open(&changed, &p, Path::new("b")).is_err(), "byte {i}");
        }
        assert!(open(&archive[..archive.len() - 1], &p, Path::new("b")).is_err());
    }

    #[test]
    fn refuses_what_it_cannot_read_before_deriving() {
        let p = passphrase("correct horse battery staple");
        let archive = seal(b"x", &p, TEST_KDF).unwrap();
        let error = |a: &[u8]| open(a, &p, Path::new("b")).unwrap_err().to_string();
        assert!(error(b"{\"not\": \"a backup\"}").contains("not an acgs key backup"));
        let mut v2 = archive.clone();
        v2[8] = 2;
        assert!(error(&v2).contains("version 2"));
        let mut huge = archive.clone();
        huge[10..14].copy_from_slice(&u32::MAX.to_be_bytes());
        assert!(error(&huge).contains("exceed the limits"));
    }

    #[test]
    fn passphrase_policy() {
        assert!(passphrase("12345678901\n").check_new().is_err());
        assert!(passphrase("123456789012\r\n").check_new().is_ok());
        assert_eq!(*passphrase("abc\n").0, "abc");
        // Only one line ending is removed; other whitespace is part of the passphrase.
        assert_eq!(*passphrase(" abc \n\n").0, " abc \n");
        assert!(Passphrase::from_input(Zeroizing::new("\n".into())).is_err());
        assert!(Passphrase::from_input(Zeroizing::new("x".repeat(1025))).is_err());
        // Characters, not bytes.
        assert!(passphrase("ééééééééééé").check_new().is_err());
    }
}
