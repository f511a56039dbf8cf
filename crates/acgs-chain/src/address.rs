//! Solana addresses (32-byte keys) in their base58 text form, read and written.

use crate::Key;
use crate::keys::keypair::{AddressError, PublicKey};

/// Parse a base58 address (the `acgs keys` public-key form); surrounding whitespace is ignored.
pub fn parse_address(text: &str) -> Result<Key, AddressError> {
    text.trim().parse::<PublicKey>().map(|k| k.0)
}

/// An address in base58.
pub fn address(key: &Key) -> String {
    PublicKey(*key).to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn addresses_round_trip_and_bad_ones_are_refused() {
        let key = [7u8; 32];
        assert_eq!(parse_address(&address(&key)).unwrap(), key);
        assert!(parse_address("0OIl").is_err());
        assert!(parse_address("11111111").is_err());
    }
}
