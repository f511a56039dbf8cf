//! The key vault: key management for the Quantumagi Solana deployment. A private directory of Solana keypair files
//! with a manifest; generation by role, an audit, the retirement of keys replaced in a rotation, encrypted backups
//! and their restore, and the check of single keypair files. `acgs keys` is the command line over it (it replaces
//! the runbook's `key_management.sh`, docs/quantumagi.md).

pub mod audit;
pub mod backup;
pub mod directory;
pub mod error;
pub mod generate;
pub mod keypair;
pub mod manifest;
pub mod retire;

pub use error::KeysError;
