//! The arguments of governance instructions, from text to checked values: council roles, key sets, hashes, vote
//! choices and rulings, voting rules, and a proposal's change as its kind and payload. Text that goes on chain only
//! as its SHA-256 (reasons, decision ids, rulings) is hashed here.
//!
//! Where an error names the input, the caller gives its name (`what`: the flag, such as `--hash`).

use quantumagi_program::instruction::payload;
use quantumagi_program::state::{
    AppealStatus, Choice, KeySet, MAX_EMERGENCY_KEYS, PAYLOAD_LEN, Params, ProposalKind, roles,
};
use sha2::{Digest, Sha256};

use crate::Key;
use crate::address::parse_address;
use crate::error::ChainError;
use crate::keys::keypair::AddressError;

/// Why an instruction's arguments are not valid.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum PayloadError {
    /// A council role that does not exist.
    #[error("unknown role `{0}` (voter, proposer, reviewer)")]
    UnknownRole(String),
    /// A key set with no keys or more than the program holds.
    #[error("give 1 to {MAX_EMERGENCY_KEYS} keys")]
    KeyCount,
    /// A key set whose threshold or keys do not make an M-of-N set.
    #[error("the set must have 1 ≤ M ≤ N distinct keys (M = {threshold})")]
    InvalidKeySet {
        /// The threshold given (M).
        threshold: u8,
    },
    /// Voting rules out of range.
    #[error("voting rules out of range (basis points 1–10000, period ≥ 1 s)")]
    InvalidParams,
    /// A hash that is not hex.
    #[error("{what} is not hex")]
    NotHex {
        /// The input's name.
        what: String,
        /// What the decoder said.
        #[source]
        source: hex::FromHexError,
    },
    /// A hash that is not 32 bytes.
    #[error("{what} must be 32 bytes")]
    HashLength {
        /// The input's name.
        what: String,
    },
    /// A vote choice that does not exist.
    #[error("{what} `{text}`: yes, no or abstain")]
    UnknownChoice {
        /// The input's name.
        what: String,
        /// The text given.
        text: String,
    },
    /// A ruling that does not exist.
    #[error("{what} `{text}`: upheld or overturned")]
    UnknownRuling {
        /// The input's name.
        what: String,
        /// The text given.
        text: String,
    },
    /// An address in a key set is not one.
    #[error(transparent)]
    Address(#[from] AddressError),
}

/// SHA-256 of `text`: how reasons, decision ids and rulings go on chain.
pub fn sha256(text: &[u8]) -> Key {
    Sha256::digest(text).into()
}

/// The on-chain key of an ACGS decision: the SHA-256 of its id (surrounding whitespace ignored).
pub fn decision_hash(decision_id: &str) -> Key {
    sha256(decision_id.trim().as_bytes())
}

/// Council roles by name (voter, proposer, reviewer; surrounding whitespace ignored) as the program's role bits.
pub fn parse_roles<S: AsRef<str>>(names: &[S]) -> Result<u8, PayloadError> {
    names.iter().try_fold(0u8, |bits, name| {
        Ok(bits
            | match name.as_ref().trim() {
                "voter" => roles::VOTER,
                "proposer" => roles::PROPOSER,
                "reviewer" => roles::REVIEWER,
                other => return Err(PayloadError::UnknownRole(other.to_owned())),
            })
    })
}

/// An M-of-N key set: threshold M and 1 to [`MAX_EMERGENCY_KEYS`] distinct addresses.
pub fn key_set<S: AsRef<str>>(threshold: u8, keys: &[S]) -> Result<KeySet, PayloadError> {
    if keys.is_empty() || keys.len() > MAX_EMERGENCY_KEYS {
        return Err(PayloadError::KeyCount);
    }
    let mut set = KeySet::EMPTY;
    set.threshold = threshold;
    set.count = u8::try_from(keys.len()).map_err(|_| PayloadError::KeyCount)?;
    for (slot, text) in set.keys.iter_mut().zip(keys) {
        *slot = parse_address(text.as_ref())?;
    }
    set.validate().map_err(|_| PayloadError::InvalidKeySet { threshold })?;
    Ok(set)
}

/// A SHA-256 given as 64 hex digits (surrounding whitespace ignored).
pub fn parse_hash(what: &str, text: &str) -> Result<Key, PayloadError> {
    let bytes = hex::decode(text.trim()).map_err(|source| PayloadError::NotHex {
        what: what.to_owned(),
        source,
    })?;
    Key::try_from(bytes.as_slice()).map_err(|_| PayloadError::HashLength { what: what.to_owned() })
}

/// A vote's choice by name: yes, no or abstain.
pub fn parse_choice(what: &str, text: &str) -> Result<Choice, PayloadError> {
    match text {
        "no" => Ok(Choice::No),
        "yes" => Ok(Choice::Yes),
        "abstain" => Ok(Choice::Abstain),
        other => Err(PayloadError::UnknownChoice {
            what: what.to_owned(),
            text: other.to_owned(),
        }),
    }
}

/// A ruling on an appeal by name: upheld or overturned.
pub fn parse_ruling(what: &str, text: &str) -> Result<AppealStatus, PayloadError> {
    match text {
        "upheld" => Ok(AppealStatus::Upheld),
        "overturned" => Ok(AppealStatus::Overturned),
        other => Err(PayloadError::UnknownRuling {
            what: what.to_owned(),
            text: other.to_owned(),
        }),
    }
}

/// Check voting rules: basis points 1–10000, a voting period of at least 1 s, a timelock of at least 0 s.
pub fn check_params(params: &Params) -> Result<(), PayloadError> {
    params.validate().map_err(|_| PayloadError::InvalidParams)
}

/// What a proposal changes, with its values parsed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Change {
    /// A new constitution: its hash and version number.
    Constitution {
        /// The constitution's hash.
        hash: Key,
        /// Its version number (must exceed the current one).
        version: u64,
    },
    /// Activate or deactivate a policy, by the hash of its text.
    Policy {
        /// The policy's SHA-256.
        hash: Key,
        /// Activate (else deactivate).
        active: bool,
    },
    /// Add, reweight or remove (weight 0) a council member.
    Member {
        /// The member's address.
        member: Key,
        /// Weight (0 removes).
        weight: u32,
        /// Role bits ([`parse_roles`]).
        roles: u8,
    },
    /// New voting rules.
    Params(Params),
    /// A new anchor authority.
    AnchorAuthority(Key),
}

impl Change {
    /// The proposal's kind and payload (voting rules are checked first).
    pub fn payload(&self) -> Result<(ProposalKind, [u8; PAYLOAD_LEN]), ChainError> {
        Ok(match self {
            Change::Constitution { hash, version } => (
                ProposalKind::UpdateConstitution,
                payload::update_constitution(hash, *version),
            ),
            Change::Policy { hash, active } => (ProposalKind::SetPolicy, payload::set_policy(hash, *active)),
            Change::Member { member, weight, roles } => {
                (ProposalKind::SetMember, payload::set_member(member, *weight, *roles))
            }
            Change::Params(params) => {
                check_params(params)?;
                (ProposalKind::SetParams, payload::set_params(params)?)
            }
            Change::AnchorAuthority(key) => (ProposalKind::SetAnchorAuthority, payload::set_anchor_authority(key)),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::address::address;

    #[test]
    fn roles_and_key_sets_are_checked() {
        assert_eq!(parse_roles(&["voter", "reviewer"]).unwrap(), 5);
        assert!(parse_roles(&["king"]).is_err());
        let a = address(&[1; 32]);
        let b = address(&[2; 32]);
        assert_eq!(key_set(2, &[a.clone(), b.clone()]).unwrap().count, 2);
        assert!(key_set(3, &[a.clone(), b]).is_err(), "M > N");
        assert!(key_set(1, &[a.clone(), a]).is_err(), "duplicates");
        assert!(key_set::<String>(1, &[]).is_err());
    }

    #[test]
    fn payloads_are_built_for_their_kind() {
        let hash = parse_hash("--hash", &"ab".repeat(32)).unwrap();
        let (kind, data) = Change::Policy { hash, active: false }.payload().unwrap();
        assert_eq!(kind, ProposalKind::SetPolicy);
        assert_eq!(data[..32], [0xab; 32]);
        assert_eq!(data[32], 0);
        assert_eq!(
            parse_hash("--hash", "abc").unwrap_err().to_string(),
            "--hash is not hex"
        );
        assert_eq!(
            parse_hash("--hash", "abcd").unwrap_err().to_string(),
            "--hash must be 32 bytes"
        );
        assert!(
            Change::Params(Params {
                approval_threshold_bps: 0,
                quorum_bps: 1,
                voting_period_s: 1,
                timelock_s: 0
            })
            .payload()
            .is_err()
        );
    }

    #[test]
    fn choices_and_rulings_by_name() {
        assert_eq!(parse_choice("--choice", "yes").unwrap() as u8, 1);
        assert_eq!(parse_choice("--choice", "no").unwrap() as u8, 0);
        assert_eq!(parse_choice("--choice", "abstain").unwrap() as u8, 2);
        assert_eq!(
            parse_choice("--choice", "maybe").unwrap_err().to_string(),
            "--choice `maybe`: yes, no or abstain"
        );
        assert_eq!(parse_ruling("--ruling", "upheld").unwrap() as u8, 2);
        assert_eq!(parse_ruling("--ruling", "overturned").unwrap() as u8, 3);
        assert!(parse_ruling("--ruling", "dismissed").is_err());
    }
}
