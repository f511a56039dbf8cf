//! A governance session: one cluster, one governance and the keypair that signs and pays. Every governance
//! instruction goes through [`GovernanceSession::submit`] (or [`GovernanceSession::act`], which builds it for the
//! payer first): build → sign → send → confirm, in one place.

use quantumagi_program::client::{ClientInstruction, GovernanceClient};
use quantumagi_program::error::QgError;
use quantumagi_program::state::{Governance, Proposal};
use solana_keypair::Keypair;

use crate::Key;
use crate::accounts;
use crate::error::ChainError;
use crate::rpc::Rpc;
use crate::transaction::{self, Signature, signer_address};

/// A cluster, a governance on it and the fee payer.
#[derive(Debug)]
pub struct GovernanceSession {
    rpc: Rpc,
    client: GovernanceClient,
    payer: Keypair,
}

impl GovernanceSession {
    /// A session on `rpc` for the governance `client` addresses, paid and signed by `payer`.
    pub fn new(rpc: Rpc, client: GovernanceClient, payer: Keypair) -> Self {
        Self { rpc, client, payer }
    }

    /// The RPC endpoint.
    pub fn rpc(&self) -> &Rpc {
        &self.rpc
    }

    /// The governance's instruction builder and addresses.
    pub fn client(&self) -> &GovernanceClient {
        &self.client
    }

    /// The payer's address (the acting member, proposer, voter …).
    pub fn payer(&self) -> Key {
        signer_address(&self.payer)
    }

    /// Sign `instruction` by the payer and `extra_signers`, send it and wait for its confirmation; returns its
    /// signature.
    pub async fn submit(
        &self,
        instruction: ClientInstruction,
        extra_signers: &[&Keypair],
    ) -> Result<Signature, ChainError> {
        let signers: Vec<&Keypair> = std::iter::once(&self.payer)
            .chain(extra_signers.iter().copied())
            .collect();
        transaction::send(&self.rpc, &instruction, &signers).await
    }

    /// Build an instruction with the governance's builder for the payer's address (`build(client, payer)`), then
    /// [`submit`](Self::submit) it signed by the payer alone.
    pub async fn act(
        &self,
        build: impl FnOnce(&GovernanceClient, &Key) -> Result<ClientInstruction, QgError>,
    ) -> Result<Signature, ChainError> {
        let instruction = build(&self.client, &self.payer())?;
        self.submit(instruction, &[]).await
    }

    /// The governance account.
    pub async fn governance(&self) -> Result<Governance, ChainError> {
        accounts::governance(&self.rpc, &self.client).await
    }

    /// Proposal `id`.
    pub async fn proposal(&self, id: u64) -> Result<Proposal, ChainError> {
        accounts::proposal(&self.rpc, &self.client, id).await
    }
}
