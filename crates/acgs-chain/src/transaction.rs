//! The one way an instruction reaches the chain: converted to Solana's instruction type, put in a message with
//! the latest blockhash, signed (the first signer pays), encoded, sent and confirmed ([`send`]). Also the signers
//! themselves: keypair files read through the key vault's checks ([`read_signer`]).

use std::path::Path;

use quantumagi_program::client::ClientInstruction;
use solana_keypair::Keypair;
use solana_signer::Signer as _;

use crate::Key;
use crate::error::ChainError;
use crate::keys::keypair::Keypair as VaultKeypair;
use crate::rpc::Rpc;

/// The signature of a confirmed transaction, in base58.
pub type Signature = String;

/// Read a Solana keypair file (checked like `acgs keys verify`: 64 numbers, the public half matching the
/// secret) as a signer.
pub fn read_signer(path: &Path) -> Result<Keypair, ChainError> {
    let keypair = VaultKeypair::read(path)?;
    Keypair::try_from(&keypair.keypair_bytes()[..]).map_err(|e| ChainError::Signer {
        path: path.to_owned(),
        reason: e.to_string(),
    })
}

/// A signer's address.
pub fn signer_address(signer: &Keypair) -> Key {
    signer.pubkey().to_bytes()
}

/// The program crate's instruction as Solana's.
pub fn to_instruction(ci: &ClientInstruction) -> solana_instruction::Instruction {
    solana_instruction::Instruction {
        program_id: solana_address_of(&ci.program_id),
        accounts: ci
            .accounts
            .iter()
            .map(|a| solana_instruction::AccountMeta {
                pubkey: solana_address_of(&a.pubkey),
                is_signer: a.is_signer,
                is_writable: a.is_writable,
            })
            .collect(),
        data: ci.data.clone(),
    }
}

fn solana_address_of(key: &Key) -> solana_transaction::Address {
    solana_transaction::Address::new_from_array(*key)
}

/// Sign `instruction` with `signers` (the first pays), send it, wait for confirmation; returns its signature.
pub async fn send(rpc: &Rpc, instruction: &ClientInstruction, signers: &[&Keypair]) -> Result<Signature, ChainError> {
    let payer = signers.first().ok_or(ChainError::NoSigner)?.pubkey();
    let blockhash = solana_hash::Hash::new_from_array(rpc.latest_blockhash().await?);
    let message = solana_message::Message::new_with_blockhash(&[to_instruction(instruction)], Some(&payer), &blockhash);
    let mut transaction = solana_transaction::Transaction::new_unsigned(message);
    transaction.try_sign(signers, blockhash).map_err(ChainError::Signing)?;
    let bytes = wincode::serialize(&transaction).map_err(ChainError::Encoding)?;
    rpc.send_and_confirm(&bytes).await
}

#[cfg(test)]
mod tests {
    use quantumagi_program::client::AccountMeta;

    use super::*;

    #[test]
    fn instructions_keep_their_accounts_and_data() {
        let ci = ClientInstruction {
            program_id: [9; 32],
            accounts: vec![
                AccountMeta {
                    pubkey: [1; 32],
                    is_signer: true,
                    is_writable: true,
                },
                AccountMeta {
                    pubkey: [2; 32],
                    is_signer: false,
                    is_writable: false,
                },
            ],
            data: vec![1, 2, 3],
        };
        let ix = to_instruction(&ci);
        assert_eq!(ix.program_id.to_bytes(), [9; 32]);
        assert_eq!(ix.data, [1, 2, 3]);
        assert_eq!(ix.accounts.len(), 2);
        assert_eq!(ix.accounts[0].pubkey.to_bytes(), [1; 32]);
        assert!(ix.accounts[0].is_signer && ix.accounts[0].is_writable);
        assert!(!ix.accounts[1].is_signer && !ix.accounts[1].is_writable);
    }

    #[test]
    fn signers_are_read_through_the_vaults_checks() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("k.json");
        let keypair = VaultKeypair::generate().unwrap();
        std::fs::write(&path, keypair.to_json().as_bytes()).unwrap();
        assert_eq!(signer_address(&read_signer(&path).unwrap()), keypair.public_key().0);
        std::fs::write(&path, "[1,2,3]").unwrap();
        assert!(matches!(read_signer(&path), Err(ChainError::Keys(_))));
    }
}
