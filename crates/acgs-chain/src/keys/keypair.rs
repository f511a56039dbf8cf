//! The Solana keypair file: a JSON array of 64 numbers, the 32-byte Ed25519 secret seed followed by the 32-byte
//! public key, as `solana-keygen new` writes it and `solana`, `anchor` and `solana-keygen verify` read it; and the
//! public key's base58 form, which is the Solana address.

use std::fmt::{self, Write as _};
use std::path::Path;
use std::str::FromStr;

use ed25519_dalek::SigningKey;
use serde::de::{Deserialize, Deserializer, SeqAccess, Visitor};
use zeroize::Zeroizing;

use super::error::KeysError;

/// Bytes in a keypair file: secret seed, then public key.
pub const KEYPAIR_BYTES: usize = 64;

/// What is wrong with the contents of a keypair file.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum KeypairError {
    /// Not a JSON array of numbers from 0 to 255.
    #[error("not a Solana keypair file (a JSON array of 64 numbers from 0 to 255): {0}")]
    Format(String),
    /// An array of the wrong length.
    #[error("holds {0} numbers; a Solana keypair has 64")]
    Length(usize),
    /// The second half is not the public key of the first.
    #[error("the public half does not match the secret key (the file was damaged or altered)")]
    Mismatch,
}

/// An Ed25519 public key; displayed and parsed in base58, the Solana address form.
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct PublicKey(pub [u8; 32]);

impl fmt::Display for PublicKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&bs58::encode(self.0).into_string())
    }
}

impl fmt::Debug for PublicKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "PublicKey({self})")
    }
}

/// Why a text is not a public key (a Solana address).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum AddressError {
    /// Not base58.
    #[error("`{text}` is not base58: {reason}")]
    NotBase58 {
        /// The text given.
        text: String,
        /// What the decoder said.
        reason: String,
    },
    /// Base58 of the wrong length.
    #[error("`{text}` is {len} bytes, a public key is 32")]
    Length {
        /// The text given.
        text: String,
        /// Bytes it decodes to.
        len: usize,
    },
}

impl FromStr for PublicKey {
    type Err = AddressError;

    fn from_str(s: &str) -> Result<Self, AddressError> {
        let bytes = bs58::decode(s).into_vec().map_err(|e| AddressError::NotBase58 {
            text: s.to_owned(),
            reason: e.to_string(),
        })?;
        <[u8; 32]>::try_from(bytes.as_slice())
            .map(Self)
            .map_err(|_| AddressError::Length {
                text: s.to_owned(),
                len: bytes.len(),
            })
    }
}

/// An Ed25519 keypair whose public half is known to belong to its secret. The secret is wiped when it is dropped.
pub struct Keypair {
    secret: SigningKey,
}

impl fmt::Debug for Keypair {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Keypair({})", self.public_key())
    }
}

impl Keypair {
    /// A new keypair from 32 bytes of the operating system's randomness.
    pub fn generate() -> Result<Self, KeysError> {
        let mut seed = Zeroizing::new([0u8; 32]);
        getrandom::fill(seed.as_mut_slice()).map_err(|e| KeysError::Random(e.to_string()))?;
        Ok(Self {
            secret: SigningKey::from_bytes(&seed),
        })
    }

    /// Secret seed and public key, checked to belong together.
    pub fn from_bytes(bytes: &[u8; KEYPAIR_BYTES]) -> Result<Self, KeypairError> {
        let (seed, public) = bytes.split_at(32);
        let mut secret_seed = Zeroizing::new([0u8; 32]);
        secret_seed.copy_from_slice(seed);
        let secret = SigningKey::from_bytes(&secret_seed);
        if secret.verifying_key().as_bytes().as_slice() != public {
            return Err(KeypairError::Mismatch);
        }
        Ok(Self { secret })
    }

    /// The contents of a keypair file (whitespace anywhere is accepted, as by the Solana tools).
    pub fn from_json(text: &[u8]) -> Result<Self, KeypairError> {
        let Bytes64 { bytes, count } = serde_json::from_slice(text).map_err(|e| KeypairError::Format(e.to_string()))?;
        if count != KEYPAIR_BYTES {
            return Err(KeypairError::Length(count));
        }
        Self::from_bytes(&bytes)
    }

    /// Read and check a keypair file.
    pub fn read(path: &Path) -> Result<Self, KeysError> {
        let text = Zeroizing::new(std::fs::read(path).map_err(KeysError::io(path))?);
        Self::from_json(&text).map_err(|source| KeysError::Keypair {
            path: path.to_owned(),
            source,
        })
    }

    /// The 64 bytes of the keypair file (secret seed, then public key), for signing with the Solana crates.
    pub fn keypair_bytes(&self) -> Zeroizing<[u8; KEYPAIR_BYTES]> {
        Zeroizing::new(self.secret.to_keypair_bytes())
    }

    /// The public key.
    pub fn public_key(&self) -> PublicKey {
        PublicKey(self.secret.verifying_key().to_bytes())
    }

    /// The file contents, as `solana-keygen` writes them: `[n,n,…]`, no spaces, no final newline.
    pub fn to_json(&self) -> Zeroizing<String> {
        let bytes = Zeroizing::new(self.secret.to_keypair_bytes());
        // Room for the longest form (64 three-digit numbers, 63 commas, brackets), so the buffer never moves and
        // leaves no copy of the secret behind.
        let mut text = Zeroizing::new(String::with_capacity(KEYPAIR_BYTES * 4 + 2));
        text.push('[');
        for (i, b) in bytes.iter().enumerate() {
            if i > 0 {
                text.push(',');
            }
            // Writing to a String cannot fail.
            let _ = write!(text, "{b}");
        }
        text.push(']');
        text
    }
}

/// Up to 64 bytes of a JSON array read in place (no growing buffer holds copies of the secret), and how many
/// numbers the array had.
struct Bytes64 {
    bytes: Zeroizing<[u8; KEYPAIR_BYTES]>,
    count: usize,
}

impl<'de> Deserialize<'de> for Bytes64 {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct ArrayVisitor;
        impl<'de> Visitor<'de> for ArrayVisitor {
            type Value = Bytes64;

            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("an array of 64 numbers from 0 to 255")
            }

            fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Bytes64, A::Error> {
                let mut bytes = Zeroizing::new([0u8; KEYPAIR_BYTES]);
                let mut count = 0usize;
                while let Some(b) = seq.next_element::<u8>()? {
                    if let Some(slot) = bytes.get_mut(count) {
                        *slot = b;
                    }
                    count += 1;
                }
                Ok(Bytes64 { bytes, count })
            }
        }
        deserializer.deserialize_seq(ArrayVisitor)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// RFC 8032 section 7.1, test 1: secret key and public key.
    const RFC8032_SECRET: &str = "9d61b19deffd5a60ba844af492ec2cc44449c5697b326919703bac031cae7f60";
    const RFC8032_PUBLIC: &str = "d75a980182b10ab7d54bfed3c964073a0ee172f3daa62325af021a68f707511a";
    /// The same public key in base58, computed independently (Python, big-integer base 58 with Bitcoin's alphabet).
    const RFC8032_ADDRESS: &str = "FVen3X669xLzsi6N2V91DoiyzHzg1uAgqiT8jZ9nS96Z";

    fn unhex(h: &str) -> Vec<u8> {
        (0..h.len())
            .step_by(2)
            .map(|i| u8::from_str_radix(&h[i..i + 2], 16).unwrap())
            .collect()
    }

    fn rfc8032_file() -> String {
        let bytes: Vec<String> = [RFC8032_SECRET, RFC8032_PUBLIC]
            .iter()
            .flat_map(|h| unhex(h))
            .map(|b| b.to_string())
            .collect();
        format!("[{}]", bytes.join(","))
    }

    #[test]
    fn reads_the_rfc_8032_vector_and_gives_its_solana_address() {
        let keypair = Keypair::from_json(rfc8032_file().as_bytes()).unwrap();
        assert_eq!(keypair.public_key().0.to_vec(), unhex(RFC8032_PUBLIC));
        assert_eq!(keypair.public_key().to_string(), RFC8032_ADDRESS);
        assert_eq!(RFC8032_ADDRESS.parse::<PublicKey>().unwrap(), keypair.public_key());
        // Written back exactly as read (solana-keygen's compact form).
        assert_eq!(*keypair.to_json(), rfc8032_file());
    }

    #[test]
    fn accepts_whitespace_like_the_solana_tools() {
        let spaced = rfc8032_file().replace(',', ", ").replace('[', "[\n  ") + "\n";
        assert!(Keypair::from_json(spaced.as_bytes()).is_ok());
    }

    #[test]
    fn refuses_a_public_half_that_is_not_the_secrets() {
        let mut bytes: Vec<u8> = serde_json::from_str(&rfc8032_file()).unwrap();
        bytes[63] ^= 1;
        let text = serde_json::to_string(&bytes).unwrap();
        assert_eq!(Keypair::from_json(text.as_bytes()).unwrap_err(), KeypairError::Mismatch);
    }

    #[test]
    fn refuses_wrong_lengths_values_and_shapes() {
        let short: Vec<u8> = vec![1; 63];
        let long: Vec<u8> = vec![1; 65];
        assert_eq!(
            Keypair::from_json(serde_json::to_string(&short).unwrap().as_bytes()).unwrap_err(),
            KeypairError::Length(63)
        );
        assert_eq!(
            Keypair::from_json(serde_json::to_string(&long).unwrap().as_bytes()).unwrap_err(),
            KeypairError::Length(65)
        );
        let too_big = rfc8032_file().replacen("157", "256", 1);
        for bad in [too_big.as_str(), "{}", "", "[1,2,", "\"abc\"", "[-1]", "[1.5]"] {
            assert!(
                matches!(Keypair::from_json(bad.as_bytes()), Err(KeypairError::Format(_))),
                "{bad}"
            );
        }
    }

    #[test]
    fn generated_keypairs_are_distinct_and_round_trip() {
        let a = Keypair::generate().unwrap();
        let b = Keypair::generate().unwrap();
        assert_ne!(a.public_key(), b.public_key());
        let again = Keypair::from_json(a.to_json().as_bytes()).unwrap();
        assert_eq!(again.public_key(), a.public_key());
    }

    #[test]
    fn base58_public_keys_must_be_32_bytes() {
        assert!("".parse::<PublicKey>().is_err());
        assert!("0OIl".parse::<PublicKey>().is_err());
        assert!("3yZe7d".parse::<PublicKey>().is_err());
    }
}
