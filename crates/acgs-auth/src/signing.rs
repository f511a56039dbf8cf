//! The keys that sign access tokens and the tokens themselves.
//!
//! Access tokens are JWTs signed with Ed25519 (`alg: EdDSA`, the key's id in the `kid` header). Signing keys live
//! in the credential store so that every replica sees the same ones; their private halves are encrypted there
//! with XChaCha20-Poly1305 under a 256-bit master key that only the servers hold (a file, mode 0600, like the
//! audit log key). A [`KeyRing`] is the set loaded from the store: the newest key without a retirement time
//! signs, and every key not yet past its retirement time verifies (and is published at
//! `/.well-known/jwks.json`).

use std::collections::HashMap;
use std::io::Write as _;
use std::path::Path;

use acgs_store::SigningKeyRecord;
use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use chacha20poly1305::aead::{Aead, KeyInit, Payload};
use chacha20poly1305::{XChaCha20Poly1305, XNonce};
use ed25519_dalek::pkcs8::EncodePrivateKey;
use jsonwebtoken::{Algorithm, DecodingKey, EncodingKey, Header, Validation};
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use crate::credentials::random_bytes;
use crate::error::AuthError;

/// Issuer and audience of every access token.
pub const TOKEN_ISSUER: &str = "acgs";

/// The 256-bit key that encrypts signing keys at rest.
pub struct MasterKey([u8; 32]);

impl std::fmt::Debug for MasterKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("MasterKey(…)")
    }
}

impl MasterKey {
    /// A random master key (for tests and first starts).
    pub fn generate() -> Result<Self, AuthError> {
        Ok(Self(random_bytes()?))
    }

    /// Read the master key file (64 hex digits), refusing one that other users can read.
    pub fn load(path: &Path) -> Result<Self, AuthError> {
        check_private(path)?;
        let text = std::fs::read_to_string(path)
            .map_err(|e| AuthError::KeyFile(format!("cannot read `{}`: {e}", path.display())))?;
        let bytes = hex::decode(text.trim())
            .ok()
            .and_then(|b| <[u8; 32]>::try_from(b.as_slice()).ok())
            .ok_or_else(|| AuthError::KeyFile(format!("`{}` does not hold 64 hex digits", path.display())))?;
        Ok(Self(bytes))
    }

    /// Read the master key file, or create it (mode 0600, directories as needed). Returns the key and whether
    /// it was created.
    pub fn load_or_create(path: &Path) -> Result<(Self, bool), AuthError> {
        if path.exists() {
            return Ok((Self::load(path)?, false));
        }
        let io = |e: std::io::Error| AuthError::KeyFile(format!("cannot create `{}`: {e}", path.display()));
        if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
            std::fs::create_dir_all(dir).map_err(io)?;
        }
        let key = Self::generate()?;
        let mut options = std::fs::OpenOptions::new();
        options.write(true).create_new(true);
        #[cfg(unix)]
        std::os::unix::fs::OpenOptionsExt::mode(&mut options, 0o600);
        let mut file = options.open(path).map_err(io)?;
        file.write_all(format!("{}\n", hex::encode(key.0)).as_bytes())
            .and_then(|()| file.sync_all())
            .map_err(io)?;
        Ok((key, true))
    }

    fn cipher(&self) -> XChaCha20Poly1305 {
        XChaCha20Poly1305::new((&self.0).into())
    }

    /// Encrypt `plaintext`, bound to `context` (the key id): nonce followed by ciphertext.
    fn seal(&self, plaintext: &[u8], context: &str) -> Result<Vec<u8>, AuthError> {
        let nonce: [u8; 24] = random_bytes()?;
        let sealed = self
            .cipher()
            .encrypt(
                XNonce::from_slice(&nonce),
                Payload {
                    msg: plaintext,
                    aad: context.as_bytes(),
                },
            )
            .map_err(|_| AuthError::Internal("cannot encrypt a signing key".into()))?;
        Ok([nonce.as_slice(), &sealed].concat())
    }

    /// Decrypt what [`MasterKey::seal`] produced for `context`.
    fn open(&self, blob: &[u8], context: &str) -> Result<Vec<u8>, AuthError> {
        let wrong = || {
            AuthError::KeyFile(format!(
                "signing key `{context}` does not decrypt with this master key (a different or damaged master key file?)"
            ))
        };
        if blob.len() < 24 {
            return Err(wrong());
        }
        let (nonce, sealed) = blob.split_at(24);
        self.cipher()
            .decrypt(
                XNonce::from_slice(nonce),
                Payload {
                    msg: sealed,
                    aad: context.as_bytes(),
                },
            )
            .map_err(|_| wrong())
    }
}

#[cfg(unix)]
fn check_private(path: &Path) -> Result<(), AuthError> {
    use std::os::unix::fs::PermissionsExt as _;
    let meta =
        std::fs::metadata(path).map_err(|e| AuthError::KeyFile(format!("cannot read `{}`: {e}", path.display())))?;
    let mode = meta.permissions().mode() & 0o777;
    if mode & 0o077 != 0 {
        return Err(AuthError::KeyFile(format!(
            "key file `{}` is readable by other users (mode {mode:o}); run `chmod 600 {}`",
            path.display(),
            path.display()
        )));
    }
    Ok(())
}

#[cfg(not(unix))]
fn check_private(_path: &Path) -> Result<(), AuthError> {
    Ok(())
}

/// A new signing key, encrypted for storage. Its id is derived from its public key.
pub fn new_signing_key(master: &MasterKey, now_us: i64) -> Result<SigningKeyRecord, AuthError> {
    let secret: [u8; 32] = random_bytes()?;
    let key = ed25519_dalek::SigningKey::from_bytes(&secret);
    let public_key = key.verifying_key().to_bytes();
    let kid = format!("k-{}", &hex::encode(Sha256::digest(public_key))[..16]);
    Ok(SigningKeyRecord {
        private_key_enc: master.seal(&secret, &kid)?,
        kid,
        public_key,
        created_at_us: now_us,
        retire_after_us: None,
    })
}

/// The claims of an access token.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AccessClaims {
    /// Issuer, `acgs`.
    pub iss: String,
    /// Audience, `acgs`.
    pub aud: String,
    /// The user's id.
    pub sub: String,
    /// The username.
    pub name: String,
    /// The user's roles when the token was issued (the server checks the current ones).
    pub roles: Vec<String>,
    /// The login session.
    pub sid: String,
    /// Issued at (seconds since the epoch).
    pub iat: i64,
    /// Expires at (seconds since the epoch).
    pub exp: i64,
    /// Token id.
    pub jti: String,
}

/// Why a token did not verify.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum TokenError {
    /// Not a JWT, or not one of ours (algorithm, issuer, audience, claims).
    #[error("malformed token: {0}")]
    Malformed(String),
    /// Signed with a key this ring does not hold (unknown or retired `kid`).
    #[error("token signed with an unknown or retired key `{0}`")]
    UnknownKey(String),
    /// The signature does not verify.
    #[error("bad token signature")]
    BadSignature,
    /// Past its expiry.
    #[error("token expired")]
    Expired,
}

struct Verifier {
    key: DecodingKey,
    public_key: [u8; 32],
    retire_after_us: Option<i64>,
}

/// The signing keys in force, loaded from the store.
pub struct KeyRing {
    signer: Option<(String, EncodingKey)>,
    verifiers: HashMap<String, Verifier>,
}

impl std::fmt::Debug for KeyRing {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("KeyRing")
            .field("signer", &self.signer.as_ref().map(|(kid, _)| kid))
            .field("verifiers", &self.verifiers.keys().collect::<Vec<_>>())
            .finish()
    }
}

impl KeyRing {
    /// The ring of `records` (newest first) at `now_us`: retired keys are left out; only the signer's private
    /// key is decrypted.
    pub fn new(records: &[SigningKeyRecord], master: &MasterKey, now_us: i64) -> Result<Self, AuthError> {
        let mut signer = None;
        let mut verifiers = HashMap::new();
        for r in records {
            if r.retire_after_us.is_some_and(|t| t <= now_us) {
                continue;
            }
            if r.retire_after_us.is_none() && signer.is_none() {
                let secret = master.open(&r.private_key_enc, &r.kid)?;
                let secret = <[u8; 32]>::try_from(secret.as_slice())
                    .map_err(|_| AuthError::KeyFile(format!("signing key `{}` is damaged", r.kid)))?;
                let key = ed25519_dalek::SigningKey::from_bytes(&secret);
                if key.verifying_key().to_bytes() != r.public_key {
                    return Err(AuthError::KeyFile(format!(
                        "signing key `{}`: the private key does not match its public key",
                        r.kid
                    )));
                }
                let der = key
                    .to_pkcs8_der()
                    .map_err(|e| AuthError::Internal(format!("cannot encode signing key `{}`: {e}", r.kid)))?;
                signer = Some((r.kid.clone(), EncodingKey::from_ed_der(der.as_bytes())));
            }
            verifiers.insert(
                r.kid.clone(),
                Verifier {
                    key: DecodingKey::from_ed_der(&r.public_key),
                    public_key: r.public_key,
                    retire_after_us: r.retire_after_us,
                },
            );
        }
        Ok(Self { signer, verifiers })
    }

    /// The signing key's id, if there is one.
    pub fn signing_kid(&self) -> Option<&str> {
        self.signer.as_ref().map(|(kid, _)| kid.as_str())
    }

    /// Whether `kid` verifies tokens at `now_us`.
    pub fn knows(&self, kid: &str, now_us: i64) -> bool {
        self.verifiers
            .get(kid)
            .is_some_and(|v| v.retire_after_us.is_none_or(|t| t > now_us))
    }

    /// Sign `claims` with the signing key.
    pub fn sign(&self, claims: &AccessClaims) -> Result<String, AuthError> {
        let (kid, key) = self
            .signer
            .as_ref()
            .ok_or_else(|| AuthError::Internal("no signing key (run `acgs auth rotate-signing-key`)".into()))?;
        let mut header = Header::new(Algorithm::EdDSA);
        header.kid = Some(kid.clone());
        jsonwebtoken::encode(&header, claims, key).map_err(|e| AuthError::Internal(format!("cannot sign a token: {e}")))
    }

    /// Verify a token's header, signature, issuer and audience, and its expiry against `now_us`.
    pub fn verify(&self, token: &str, now_us: i64) -> Result<AccessClaims, TokenError> {
        let header = jsonwebtoken::decode_header(token).map_err(|e| TokenError::Malformed(e.to_string()))?;
        if header.alg != Algorithm::EdDSA {
            return Err(TokenError::Malformed(format!(
                "algorithm {:?} is not EdDSA",
                header.alg
            )));
        }
        let kid = header
            .kid
            .ok_or_else(|| TokenError::Malformed("no `kid` in the header".into()))?;
        if !self.knows(&kid, now_us) {
            return Err(TokenError::UnknownKey(kid));
        }
        let verifier = self
            .verifiers
            .get(&kid)
            .ok_or_else(|| TokenError::UnknownKey(kid.clone()))?;
        let mut validation = Validation::new(Algorithm::EdDSA);
        validation.set_issuer(&[TOKEN_ISSUER]);
        validation.set_audience(&[TOKEN_ISSUER]);
        validation.set_required_spec_claims(&["exp", "iat", "sub", "iss", "aud"]);
        // Expiry is checked below against the service's clock.
        validation.validate_exp = false;
        let data =
            jsonwebtoken::decode::<AccessClaims>(token, &verifier.key, &validation).map_err(|e| match e.kind() {
                jsonwebtoken::errors::ErrorKind::InvalidSignature => TokenError::BadSignature,
                _ => TokenError::Malformed(e.to_string()),
            })?;
        if data.claims.exp * 1_000_000 <= now_us {
            return Err(TokenError::Expired);
        }
        Ok(data.claims)
    }

    /// The JSON Web Key Set of every key that verifies at `now_us`, newest first.
    pub fn jwks(&self, now_us: i64) -> serde_json::Value {
        let mut keys: Vec<(&String, &Verifier)> = self
            .verifiers
            .iter()
            .filter(|(_, v)| v.retire_after_us.is_none_or(|t| t > now_us))
            .collect();
        keys.sort_by(|a, b| {
            a.1.retire_after_us
                .is_some()
                .cmp(&b.1.retire_after_us.is_some())
                .then(a.0.cmp(b.0))
        });
        serde_json::json!({
            "keys": keys.iter().map(|(kid, v)| serde_json::json!({
                "kty": "OKP",
                "crv": "Ed25519",
                "alg": "EdDSA",
                "use": "sig",
                "kid": kid,
                "x": URL_SAFE_NO_PAD.encode(v.public_key),
            })).collect::<Vec<_>>()
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn claims(exp: i64) -> AccessClaims {
        AccessClaims {
            iss: TOKEN_ISSUER.into(),
            aud: TOKEN_ISSUER.into(),
            sub: "u1".into(),
            name: "alice".into(),
            roles: vec!["auditor".into()],
            sid: "s1".into(),
            iat: 1_000,
            exp,
            jti: "t1".into(),
        }
    }

    #[test]
    fn tokens_verify_with_their_key_until_they_expire() {
        let master = MasterKey::generate().unwrap();
        let record = new_signing_key(&master, 0).unwrap();
        let ring = KeyRing::new(std::slice::from_ref(&record), &master, 0).unwrap();
        assert_eq!(ring.signing_kid(), Some(record.kid.as_str()));
        let token = ring.sign(&claims(2_000)).unwrap();
        let header = jsonwebtoken::decode_header(&token).unwrap();
        assert_eq!(header.kid.as_deref(), Some(record.kid.as_str()));
        assert_eq!(header.alg, Algorithm::EdDSA);
        assert_eq!(ring.verify(&token, 1_999_999_999).unwrap(), claims(2_000));
        assert_eq!(ring.verify(&token, 2_000_000_000), Err(TokenError::Expired));
        // A flipped signature byte, a different key, garbage.
        let mut tampered = token.clone().into_bytes();
        let last = tampered.len() - 3;
        tampered[last] = if tampered[last] == b'A' { b'B' } else { b'A' };
        let tampered = String::from_utf8(tampered).unwrap();
        assert!(matches!(
            ring.verify(&tampered, 0),
            Err(TokenError::BadSignature | TokenError::Malformed(_))
        ));
        let other = KeyRing::new(&[new_signing_key(&master, 0).unwrap()], &master, 0).unwrap();
        assert!(matches!(other.verify(&token, 0), Err(TokenError::UnknownKey(_))));
        assert!(matches!(ring.verify("not.a.jwt", 0), Err(TokenError::Malformed(_))));
    }

    #[test]
    fn retiring_keys_verify_until_their_time_and_are_published() {
        let master = MasterKey::generate().unwrap();
        let mut old = new_signing_key(&master, 0).unwrap();
        let new = new_signing_key(&master, 10).unwrap();
        let old_ring = KeyRing::new(std::slice::from_ref(&old), &master, 0).unwrap();
        let old_token = old_ring.sign(&claims(10_000)).unwrap();
        old.retire_after_us = Some(5_000_000);
        let ring = KeyRing::new(&[new.clone(), old.clone()], &master, 1_000_000).unwrap();
        assert_eq!(ring.signing_kid(), Some(new.kid.as_str()));
        assert!(ring.verify(&old_token, 1_000_000).is_ok());
        let jwks = ring.jwks(1_000_000);
        assert_eq!(jwks["keys"].as_array().unwrap().len(), 2);
        assert_eq!(jwks["keys"][0]["kid"], new.kid.as_str());
        assert_eq!(jwks["keys"][0]["kty"], "OKP");
        // After its retirement time the old key neither verifies nor is published.
        assert!(matches!(
            ring.verify(&old_token, 5_000_000),
            Err(TokenError::UnknownKey(_))
        ));
        assert_eq!(ring.jwks(5_000_000)["keys"].as_array().unwrap().len(), 1);
        let later = KeyRing::new(&[new, old], &master, 6_000_000).unwrap();
        assert!(!later.knows(
            &jsonwebtoken::decode_header(&old_token).unwrap().kid.unwrap(),
            6_000_000
        ));
    }

    #[test]
    fn signing_keys_need_their_master_key() {
        let master = MasterKey::generate().unwrap();
        let record = new_signing_key(&master, 0).unwrap();
        let other = MasterKey::generate().unwrap();
        let err = KeyRing::new(std::slice::from_ref(&record), &other, 0).unwrap_err();
        assert!(err.to_string().contains("does not decrypt"), "{err}");
        // A ciphertext moved to another key id does not decrypt either.
        let mut moved = new_signing_key(&master, 0).unwrap();
        moved.private_key_enc = record.private_key_enc.clone();
        assert!(KeyRing::new(&[moved], &master, 0).is_err());
    }

    #[test]
    fn master_key_files_are_private() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("sub/auth-master.key");
        let (created, fresh) = MasterKey::load_or_create(&path).unwrap();
        assert!(fresh);
        let (loaded, fresh) = MasterKey::load_or_create(&path).unwrap();
        assert!(!fresh);
        assert_eq!(created.0, loaded.0);
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt as _;
            assert_eq!(std::fs::metadata(&path).unwrap().permissions().mode() & 0o777, 0o600);
            std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o640)).unwrap();
            let err = MasterKey::load(&path).unwrap_err();
            assert!(err.to_string().contains("chmod 600"), "{err}");
        }
        std::fs::write(dir.path().join("bad.key"), "zz").unwrap();
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt as _;
            std::fs::set_permissions(dir.path().join("bad.key"), std::fs::Permissions::from_mode(0o600)).unwrap();
        }
        assert!(MasterKey::load(&dir.path().join("bad.key")).is_err());
    }
}
