//! Signed tree heads in the C2SP signed-note checkpoint format: an origin line, the tree size, the base64 root
//! hash, a blank line, then one signature line per signer (`— <name> <base64(key hash || signature)>`).
//!
//! Signatures are Ed25519 over the note body (the text before the blank line, with its final newline). The key
//! hash is the first four bytes of `SHA-256(name || "\n" || 0x01 || public key)`, as in the signed-note spec, so a
//! verifier can tell which of several keys signed.

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD as BASE64;
use ed25519_dalek::{Signature, Signer, SigningKey, VerifyingKey};
use sha2::{Digest, Sha256};

use crate::rfc6962::Hash;

/// Signature type byte of Ed25519 keys in signed notes.
const ED25519_TYPE: u8 = 0x01;

/// The em dash that starts every signature line.
const SIGNATURE_PREFIX: &str = "\u{2014} ";

/// A tree head: which log, how many leaves, and the root over them.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Checkpoint {
    /// Log identity, e.g. `acgs.example.org/audit` (one line, no spaces needed).
    pub origin: String,
    /// Number of leaves.
    pub size: u64,
    /// RFC 6962 root over the first `size` leaves.
    pub root: Hash,
}

/// Why a checkpoint note is not acceptable.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum CheckpointError {
    /// The note is not in the checkpoint format.
    #[error("malformed checkpoint: {0}")]
    Malformed(String),
    /// No signature line from the expected key.
    #[error("no signature by key `{0}`")]
    NoSignature(String),
    /// A signature line by the expected key does not verify.
    #[error("signature by key `{0}` does not verify")]
    BadSignature(String),
}

impl Checkpoint {
    /// The note body that is signed: `origin\nsize\nbase64(root)\n`.
    pub fn body(&self) -> String {
        format!("{}\n{}\n{}\n", self.origin, self.size, BASE64.encode(self.root))
    }

    /// The signed note: body, blank line, one signature line by `key` under `key_name`.
    pub fn sign(&self, key_name: &str, key: &SigningKey) -> String {
        let body = self.body();
        let signature = key.sign(body.as_bytes());
        let mut blob = key_hash(key_name, &key.verifying_key()).to_vec();
        blob.extend_from_slice(&signature.to_bytes());
        format!("{body}\n{SIGNATURE_PREFIX}{key_name} {}\n", BASE64.encode(blob))
    }

    /// Parse a signed note and verify its signature by `key` under `key_name`; other signers' lines are
    /// ignored.
    pub fn verify(note: &str, key_name: &str, key: &VerifyingKey) -> Result<Self, CheckpointError> {
        let malformed = |m: &str| CheckpointError::Malformed(m.to_owned());
        let (body, signatures) = note
            .split_once("\n\n")
            .ok_or_else(|| malformed("no blank line before signatures"))?;
        let body = format!("{body}\n");
        let checkpoint = Self::parse_body(&body)?;
        let expected_hash = key_hash(key_name, key);
        let mut found = false;
        for line in signatures.lines().filter(|l| !l.is_empty()) {
            let rest = line
                .strip_prefix(SIGNATURE_PREFIX)
                .ok_or_else(|| malformed("signature line without `— `"))?;
            let (name, blob) = rest
                .rsplit_once(' ')
                .ok_or_else(|| malformed("signature line without a signature"))?;
            let blob = BASE64.decode(blob).map_err(|_| malformed("signature is not base64"))?;
            if name != key_name || blob.len() < 4 || blob[..4] != expected_hash {
                continue;
            }
            found = true;
            let signature =
                Signature::from_slice(&blob[4..]).map_err(|_| malformed("signature has the wrong length"))?;
            key.verify_strict(body.as_bytes(), &signature)
                .map_err(|_| CheckpointError::BadSignature(key_name.to_owned()))?;
        }
        if !found {
            return Err(CheckpointError::NoSignature(key_name.to_owned()));
        }
        Ok(checkpoint)
    }

    fn parse_body(body: &str) -> Result<Self, CheckpointError> {
        let malformed = |m: &str| CheckpointError::Malformed(m.to_owned());
        let mut lines = body.lines();
        let origin = lines
            .next()
            .filter(|l| !l.is_empty())
            .ok_or_else(|| malformed("missing origin line"))?;
        let size = lines
            .next()
            .filter(|l| l.bytes().all(|b| b.is_ascii_digit()) && !(l.len() > 1 && l.starts_with('0')))
            .and_then(|l| l.parse::<u64>().ok())
            .ok_or_else(|| malformed("tree size is not a decimal number"))?;
        let root = lines
            .next()
            .and_then(|l| BASE64.decode(l).ok())
            .and_then(|b| Hash::try_from(b.as_slice()).ok())
            .ok_or_else(|| malformed("root is not a base64 32-byte hash"))?;
        // Extension lines, if any, are signed as part of the body but carry nothing we use.
        Ok(Self {
            origin: origin.to_owned(),
            size,
            root,
        })
    }
}

/// First four bytes of `SHA-256(name || "\n" || 0x01 || public key)`.
pub fn key_hash(key_name: &str, key: &VerifyingKey) -> [u8; 4] {
    let mut h = Sha256::new();
    h.update(key_name.as_bytes());
    h.update(b"\n");
    h.update([ED25519_TYPE]);
    h.update(key.as_bytes());
    let digest = h.finalize();
    [digest[0], digest[1], digest[2], digest[3]]
}

/// The public key in the signed-note verifier-key form: `name+hex(key hash)+base64(0x01 || key)`.
pub fn verifier_key(key_name: &str, key: &VerifyingKey) -> String {
    let mut blob = vec![ED25519_TYPE];
    blob.extend_from_slice(key.as_bytes());
    format!(
        "{key_name}+{}+{}",
        hex::encode(key_hash(key_name, key)),
        BASE64.encode(blob)
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    fn key(seed: u8) -> SigningKey {
        SigningKey::from_bytes(&[seed; 32])
    }

    fn checkpoint() -> Checkpoint {
        Checkpoint {
            origin: "acgs.test/audit".into(),
            size: 42,
            root: crate::leaf_hash(b"root"),
        }
    }

    #[test]
    fn signed_checkpoints_round_trip() {
        let note = checkpoint().sign("acgs-log", &key(1));
        assert!(note.starts_with("acgs.test/audit\n42\n"));
        assert!(note.contains("\n\n\u{2014} acgs-log "));
        let parsed = Checkpoint::verify(&note, "acgs-log", &key(1).verifying_key()).unwrap();
        assert_eq!(parsed, checkpoint());
    }

    #[test]
    fn tampering_wrong_keys_and_malformed_notes_are_refused() {
        let note = checkpoint().sign("acgs-log", &key(1));
        let tampered = note.replacen("\n42\n", "\n43\n", 1);
        assert_eq!(
            Checkpoint::verify(&tampered, "acgs-log", &key(1).verifying_key()),
            Err(CheckpointError::BadSignature("acgs-log".into()))
        );
        assert_eq!(
            Checkpoint::verify(&note, "acgs-log", &key(2).verifying_key()),
            Err(CheckpointError::NoSignature("acgs-log".into()))
        );
        assert_eq!(
            Checkpoint::verify(&note, "other-name", &key(1).verifying_key()),
            Err(CheckpointError::NoSignature("other-name".into()))
        );
        // Another key's signature with our key's hash prefix forged onto it.
        let forged_sig = checkpoint().sign("acgs-log", &key(2));
        let theirs = forged_sig.rsplit_once(' ').unwrap().1.trim();
        let mut blob = BASE64.decode(theirs).unwrap();
        blob[..4].copy_from_slice(&key_hash("acgs-log", &key(1).verifying_key()));
        let forged = format!("{}\n\u{2014} acgs-log {}\n", checkpoint().body(), BASE64.encode(blob));
        assert_eq!(
            Checkpoint::verify(&forged, "acgs-log", &key(1).verifying_key()),
            Err(CheckpointError::BadSignature("acgs-log".into()))
        );
        for bad in [
            "",
            "origin\n",
            "o\nx\nroot\n\n",
            "o\n01\nAAAA\n\n",
            "o\n1\nnot-base64!\n\n\u{2014} a b\n",
        ] {
            assert!(
                matches!(
                    Checkpoint::verify(bad, "acgs-log", &key(1).verifying_key()),
                    Err(CheckpointError::Malformed(_))
                ),
                "{bad:?}"
            );
        }
    }

    #[test]
    fn verifier_key_names_the_key() {
        let vk = key(7).verifying_key();
        let text = verifier_key("acgs-log", &vk);
        let parts: Vec<&str> = text.split('+').collect();
        assert_eq!(parts[0], "acgs-log");
        assert_eq!(parts[1], hex::encode(key_hash("acgs-log", &vk)));
        assert_eq!(BASE64.decode(parts[2]).unwrap()[1..], vk.as_bytes()[..]);
    }
}
