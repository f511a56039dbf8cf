//! The Quantumagi program's accounts read from the cluster as typed values: any account checked to belong to the
//! program and decoded by its layout ([`read_account`]), the governance, a proposal, the audit-log anchor, and the
//! governance's status (the governance with its anchor).

use quantumagi_program::client::GovernanceClient;
use quantumagi_program::state::{AccountLayout, Anchor, Governance, KeySet, Proposal};

use crate::Key;
use crate::address::address;
use crate::error::ChainError;
use crate::rpc::Rpc;

/// The account at `at`, which must exist, belong to the program and decode as `T`; `what` names it in errors
/// (`governance`, `proposal`).
pub async fn read_account<T: AccountLayout>(
    rpc: &Rpc,
    gov: &GovernanceClient,
    at: &Key,
    what: &str,
) -> Result<T, ChainError> {
    let account = rpc.account(at).await?.ok_or_else(|| ChainError::MissingAccount {
        what: what.to_owned(),
        at: address(at),
    })?;
    if account.owner != gov.program_id {
        return Err(ChainError::ForeignAccount {
            what: what.to_owned(),
            at: address(at),
            program: address(&gov.program_id),
        });
    }
    T::decode(&account.data).map_err(|reason| ChainError::Undecodable {
        what: what.to_owned(),
        at: address(at),
        reason,
    })
}

/// The governance account.
pub async fn governance(rpc: &Rpc, gov: &GovernanceClient) -> Result<Governance, ChainError> {
    read_account(rpc, gov, &gov.governance, "governance").await
}

/// Proposal `id`.
pub async fn proposal(rpc: &Rpc, gov: &GovernanceClient, id: u64) -> Result<Proposal, ChainError> {
    read_account(rpc, gov, &gov.proposal_address(id), "proposal").await
}

/// The audit-log anchor, if one was written (an account there that is not the program's anchor counts as none).
pub async fn anchor(rpc: &Rpc, gov: &GovernanceClient) -> Result<Option<Anchor>, ChainError> {
    Ok(match rpc.account(&gov.anchor_address()).await? {
        Some(account) if account.owner == gov.program_id => Anchor::decode(&account.data).ok(),
        _ => None,
    })
}

/// The governance on chain, as `acgs chain status` shows it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Status {
    /// The governance account.
    pub governance: Governance,
    /// The latest audit-log anchor, if any.
    pub anchor: Option<Anchor>,
}

/// Read the governance and its anchor.
pub async fn status(rpc: &Rpc, gov: &GovernanceClient) -> Result<Status, ChainError> {
    let governance = governance(rpc, gov).await?;
    let anchor = anchor(rpc, gov).await?;
    Ok(Status { governance, anchor })
}

/// The addresses of a key set's members, in base58.
pub fn key_set_addresses(set: &KeySet) -> Vec<String> {
    set.keys.iter().take(usize::from(set.count)).map(address).collect()
}

/// Where the emergency motion stands after an approval.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MotionState {
    /// It reached its threshold and was carried out; whether the governance is now halted.
    CarriedOut {
        /// The halt state after it.
        halted: bool,
    },
    /// It is still collecting approvals.
    Pending {
        /// Approvals so far.
        approvals: u32,
        /// Approvals it needs (M).
        needed: u8,
    },
}

impl MotionState {
    /// Where the motion of `state` stands.
    pub fn of(state: &Governance) -> Self {
        if state.motion.approvals == 0 {
            Self::CarriedOut { halted: state.halted }
        } else {
            Self::Pending {
                approvals: state.motion.approvals.count_ones(),
                needed: state.emergency.threshold,
            }
        }
    }
}
