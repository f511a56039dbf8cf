//! Secrets and how they are kept: passwords (Argon2id), API keys and refresh tokens (random 256-bit secrets
//! kept as SHA-256), and the random values behind them.
//!
//! API keys are checked on every decision request, so they are not hashed with Argon2: a key is 256 random
//! bits, which no offline guessing can reach, and one SHA-256 (well under a microsecond) is all the lookup
//! needs. Passwords are chosen by people and get Argon2id with OWASP's parameters.

use argon2::password_hash::{PasswordHash, PasswordHasher, PasswordVerifier, SaltString};
use argon2::{Algorithm, Argon2, Params, Version};
use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq;

use crate::error::AuthError;

/// Shortest accepted password.
pub const MIN_PASSWORD_CHARS: usize = 12;
/// Longest accepted password (Argon2 hashes any length; this bounds the work a login request can ask for).
pub const MAX_PASSWORD_BYTES: usize = 1024;

/// Prefix of every API key.
pub const API_KEY_PREFIX: &str = "acgs_";
/// Prefix of every refresh token.
pub const REFRESH_TOKEN_PREFIX: &str = "acgs_rt_";
/// Hex digits of an API key's visible id, after the prefix.
const API_KEY_ID_HEX: usize = 12;

/// `n` random bytes from the operating system.
pub fn random_bytes<const N: usize>() -> Result<[u8; N], AuthError> {
    let mut bytes = [0u8; N];
    getrandom::fill(&mut bytes).map_err(|e| AuthError::Internal(format!("no randomness from the system: {e}")))?;
    Ok(bytes)
}

/// SHA-256 of a secret, as stored.
pub fn sha256(secret: &str) -> [u8; 32] {
    Sha256::digest(secret.as_bytes()).into()
}

/// Whether two hashes are equal, in constant time.
pub fn same_hash(a: &[u8; 32], b: &[u8; 32]) -> bool {
    a.ct_eq(b).into()
}

/// The Argon2id hasher: OWASP's recommended parameters (19 MiB, 2 passes, 1 lane).
fn argon2() -> Argon2<'static> {
    // The parameters are constants that Argon2 accepts; the fallback is the crate's own default (also Argon2id).
    let params = Params::new(19 * 1024, 2, 1, None).unwrap_or_default();
    Argon2::new(Algorithm::Argon2id, Version::V0x13, params)
}

/// Check a new password against the policy.
pub fn check_password_policy(password: &str) -> Result<(), AuthError> {
    if password.chars().count() < MIN_PASSWORD_CHARS {
        return Err(AuthError::Invalid(format!(
            "passwords have at least {MIN_PASSWORD_CHARS} characters"
        )));
    }
    if password.len() > MAX_PASSWORD_BYTES {
        return Err(AuthError::Invalid(format!(
            "passwords have at most {MAX_PASSWORD_BYTES} bytes"
        )));
    }
    Ok(())
}

/// Hash a password (Argon2id, random salt, PHC string).
pub fn hash_password(password: &str) -> Result<String, AuthError> {
    let salt = SaltString::encode_b64(&random_bytes::<16>()?)
        .map_err(|e| AuthError::Internal(format!("cannot encode a salt: {e}")))?;
    argon2()
        .hash_password(password.as_bytes(), &salt)
        .map(|h| h.to_string())
        .map_err(|e| AuthError::Internal(format!("cannot hash a password: {e}")))
}

/// Whether `password` matches the stored hash (an unparsable hash matches nothing).
pub fn verify_password(password: &str, stored: &str) -> bool {
    if password.len() > MAX_PASSWORD_BYTES {
        return false;
    }
    match PasswordHash::new(stored) {
        Ok(hash) => argon2().verify_password(password.as_bytes(), &hash).is_ok(),
        Err(_) => false,
    }
}

/// A hash to check passwords of unknown users against, so that a login for a username that does not exist
/// takes as long as one for a username that does.
pub fn decoy_password_hash() -> &'static str {
    static DECOY: std::sync::OnceLock<String> = std::sync::OnceLock::new();
    DECOY.get_or_init(|| hash_password("decoy password that no account has").unwrap_or_default())
}

/// A random password for a new account, given once to whoever creates it.
pub fn generate_password() -> Result<String, AuthError> {
    Ok(URL_SAFE_NO_PAD.encode(random_bytes::<18>()?))
}

/// A new API key: `acgs_<12 hex id>_<43 base64url characters>`. Returns (id, whole key).
pub fn generate_api_key() -> Result<(String, String), AuthError> {
    let id = format!(
        "{API_KEY_PREFIX}{}",
        &hex::encode(random_bytes::<{ API_KEY_ID_HEX / 2 }>()?)
    );
    let key = format!("{id}_{}", URL_SAFE_NO_PAD.encode(random_bytes::<32>()?));
    Ok((id, key))
}

/// The id of an API key (its visible prefix), if `key` has the shape of one.
pub fn api_key_id(key: &str) -> Option<&str> {
    let rest = key.strip_prefix(API_KEY_PREFIX)?;
    let (hex_id, secret) = rest.split_once('_')?;
    let well_formed = hex_id.len() == API_KEY_ID_HEX
        && hex_id.bytes().all(|b| b.is_ascii_hexdigit())
        && secret.len() == 43
        && secret
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_');
    well_formed.then(|| &key[..API_KEY_PREFIX.len() + API_KEY_ID_HEX])
}

/// A new refresh token: `acgs_rt_<43 base64url characters>`.
pub fn generate_refresh_token() -> Result<String, AuthError> {
    Ok(format!(
        "{REFRESH_TOKEN_PREFIX}{}",
        URL_SAFE_NO_PAD.encode(random_bytes::<32>()?)
    ))
}

/// Whether `token` has the shape of a refresh token.
pub fn is_refresh_token(token: &str) -> bool {
    token.strip_prefix(REFRESH_TOKEN_PREFIX).is_some_and(|rest| {
        rest.len() == 43
            && rest
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn passwords_verify_only_themselves() {
        let hash = hash_password("correct horse battery staple").unwrap();
        assert!(hash.starts_with("$argon2id$v=19$m=19456,t=2,p=1$"), "{hash}");
        assert!(verify_password("correct horse battery staple", &hash));
        assert!(!verify_password("correct horse battery stapler", &hash));
        assert!(!verify_password("anything", "not a hash"));
        // Two hashes of one password differ (random salt).
        assert_ne!(hash, hash_password("correct horse battery staple").unwrap());
        assert!(!verify_password(&"x".repeat(MAX_PASSWORD_BYTES + 1), &hash));
    }

    #[test]
    fn password_policy() {
        assert!(check_password_policy("short").is_err());
        assert!(check_password_policy("twelve chars").is_ok());
        assert!(check_password_policy(&"y".repeat(MAX_PASSWORD_BYTES + 1)).is_err());
        assert!(check_password_policy(&generate_password().unwrap()).is_ok());
    }

    #[test]
    fn api_keys_have_a_visible_id_and_a_secret() {
        let (id, key) = generate_api_key().unwrap();
        assert!(id.starts_with("acgs_") && id.len() == 17, "{id}");
        assert_eq!(api_key_id(&key), Some(id.as_str()));
        assert!(key.len() > 60);
        let (_, other) = generate_api_key().unwrap();
        assert_ne!(key, other);
        for bad in [
            "",
            "acgs_",
            "acgs_zzzzzzzzzzzz_AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA",
            &key[..key.len() - 1],
            &format!("{key}x"),
            "Bearer acgs",
        ] {
            assert_eq!(api_key_id(bad), None, "{bad}");
        }
        assert!(same_hash(&sha256(&key), &sha256(&key)));
        assert!(!same_hash(&sha256(&key), &sha256(&other)));
    }

    #[test]
    fn refresh_tokens_have_their_own_shape() {
        let token = generate_refresh_token().unwrap();
        assert!(is_refresh_token(&token));
        assert_eq!(api_key_id(&token), None);
        assert!(!is_refresh_token("acgs_rt_short"));
        let (_, key) = generate_api_key().unwrap();
        assert!(!is_refresh_token(&key));
    }
}
