//! Quantumagi: the ACGS constitution governed on Solana.
//!
//! A governance account holds the active constitution's hash and version, the council's totals, the voting
//! rules, an M-of-N emergency set and the halt state. Council members (weights and roles in a register only
//! the governance can change) propose changes — a new constitution hash, a policy activated or deactivated by
//! hash, new voting rules, a council member added, changed or removed, a new anchor authority — vote on them,
//! and after quorum, threshold and a timelock anyone may execute them. The emergency set can halt (nothing is
//! proposed or executed), resume, veto, and hand its authority to a new set that must accept. Appeals of ACGS
//! decisions are ruled on by reviewers, and the ACGS audit log's signed checkpoints are anchored.
//!
//! `no_std`, built for SBF with pinocchio; its own code is safe Rust only, enforced by the workspace lints (the
//! runbook's pre-deployment grep of `programs/` finds nothing). Layouts: [`state`]; instructions and their
//! accounts: [`instruction`]; rules: [`rules`]; errors: [`error`]; building instructions off chain: `client`
//! (host builds only).
#![no_std]

pub mod accounts;
#[cfg(not(target_arch = "bpf"))]
pub mod client;
pub mod error;
pub mod events;
pub mod instruction;
pub mod processor;
pub mod rules;
pub mod state;

// Host builds (clients, tests) link std for its panic handler and allocator; the SBF build has neither.
#[cfg(not(target_arch = "bpf"))]
extern crate std;

/// The SBF entrypoint (only in the program binary): no heap, panics abort with their location.
#[cfg(target_arch = "bpf")]
mod entrypoint {
    pinocchio::program_entrypoint!(crate::processor::process_instruction);
    pinocchio::no_allocator!();
    pinocchio::nostd_panic_handler!();
}
