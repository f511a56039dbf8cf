//! Generating keys into a key directory: new Ed25519 keypairs by role, written as Solana keypair files (0600,
//! never replacing a file) and recorded in the manifest.

use std::path::PathBuf;

use chrono::{DateTime, Utc};

use super::directory::KeyDirectory;
use super::error::KeysError;
use super::keypair::{Keypair, PublicKey};
use super::manifest::{KeyEntry, Role, check_file_name, whole_seconds};

/// Most keys one `generate` makes.
pub const MAX_COUNT: u32 = 100;

/// Generate `count` keys of `role` into `dir` and record them in its manifest; returns their paths and public
/// keys. Files are named `NAME.json` (one key) or `NAME-1.json` … `NAME-N.json` with `name`, else
/// `ROLE-ADDR.json` (ADDR the first 8 characters of the key's address). Names are checked before any key is made;
/// keys written before a failure are still recorded.
pub fn generate(
    dir: &KeyDirectory,
    role: Role,
    count: u32,
    name: Option<&str>,
    now: DateTime<Utc>,
) -> Result<Vec<(PathBuf, PublicKey)>, KeysError> {
    let (_lock, mut manifest) = dir.open_for_change()?;
    let names: Option<Vec<String>> = name.map(|n| {
        let base = n.strip_suffix(".json").unwrap_or(n);
        if count == 1 {
            vec![format!("{base}.json")]
        } else {
            (1..=count).map(|i| format!("{base}-{i}.json")).collect()
        }
    });
    for file in names.iter().flatten() {
        check_file_name(file).map_err(|_| KeysError::InvalidName(file.clone()))?;
        // A retired key keeps its name: its file is under retired/.
        if let Some(listed) = manifest.get(file) {
            return Err(KeysError::Exists(dir.key_path(listed)));
        }
        if dir.file(file).exists() {
            return Err(KeysError::Exists(dir.file(file)));
        }
    }
    let created_at = whole_seconds(now);
    let mut made = Vec::new();
    let mut failure = None;
    for i in 0..count as usize {
        let keypair = match Keypair::generate() {
            Ok(k) => k,
            Err(e) => {
                failure = Some(e);
                break;
            }
        };
        let public_key = keypair.public_key();
        let file = match &names {
            Some(names) => names[i].clone(),
            None => format!("{role}-{}.json", &public_key.to_string()[..8]),
        };
        if let Some(listed) = manifest.get(&file) {
            failure = Some(KeysError::Exists(dir.key_path(listed)));
            break;
        }
        match dir.write_key_file(&file, keypair.to_json().as_bytes()) {
            Ok(path) => made.push((path, public_key)),
            Err(e) => {
                failure = Some(e);
                break;
            }
        }
        manifest.keys.push(KeyEntry {
            file,
            role,
            public_key,
            created_at,
            retired: None,
        });
    }
    if !made.is_empty() {
        dir.replace_manifest(manifest.to_json().as_bytes())?;
    }
    match failure {
        Some(e) => Err(e),
        None => Ok(made),
    }
}
