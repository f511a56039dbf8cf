//! The Quantumagi client: JSON-RPC to a Solana cluster, reading the Quantumagi program's accounts, one generic
//! build → sign → send path for every governance instruction, and the key vault (the key management of the
//! deployment). The instructions themselves come from the program crate's `client` module, the same builders the
//! SVM tests send; the `acgs chain` and `acgs keys` commands are a thin layer over this crate.
//!
//! - [`rpc`]: the few Solana JSON-RPC calls the client needs;
//! - [`address`]: Solana addresses in base58;
//! - [`transaction`]: build, sign and send one instruction ([`transaction::send`]);
//! - [`session`]: a cluster, a governance and a fee payer together ([`GovernanceSession::submit`]);
//! - [`accounts`]: the program's accounts read as typed values;
//! - [`payload`]: the arguments of governance instructions, parsed and checked;
//! - [`error`]: what can go wrong on the chain side;
//! - [`keys`]: the key vault (keypair files, manifest, audit, retirement, encrypted backups).

pub mod accounts;
pub mod address;
pub mod error;
pub mod keys;
pub mod payload;
pub mod rpc;
pub mod session;
pub mod transaction;

pub use error::ChainError;
/// The Quantumagi program crate: its account layouts, errors and instruction builders.
pub use quantumagi_program as program;
pub use quantumagi_program::client::{ClientInstruction, GovernanceClient, InitializeArgs};
pub use quantumagi_program::state::Key;
pub use session::GovernanceSession;
pub use solana_keypair::Keypair as SolanaKeypair;
