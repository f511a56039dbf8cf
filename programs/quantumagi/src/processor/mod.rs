//! The instruction processor: decodes the instruction and hands it to the handler of its area. Each handler
//! checks its accounts ([`crate::accounts`]), applies the rules ([`crate::rules`]), writes the state back and
//! logs an event.

mod emergency;
mod proposals;
mod records;
mod setup;

use pinocchio::{AccountView, Address, ProgramResult};

use crate::instruction::Instruction;

/// The program's entry: every instruction passes here. Each handler is a function of its own (never inlined),
/// so each instruction's state copies live in its own stack frame.
pub fn process_instruction(program_id: &Address, accounts: &[AccountView], data: &[u8]) -> ProgramResult {
    let ctx = Ctx { program_id, accounts };
    match Instruction::decode(data)? {
        Instruction::Initialize {
            constitution_hash,
            constitution_version,
            params,
            emergency,
            anchor_authority,
        } => setup::initialize(
            &ctx,
            &setup::InitArgs {
                constitution_hash,
                constitution_version,
                params,
                emergency,
                anchor_authority,
            },
        ),
        Instruction::AddMember { key, weight, roles } => setup::add_member(&ctx, &key, weight, roles),
        Instruction::FinishSetup => setup::finish_setup(&ctx),
        Instruction::Propose { kind, payload } => proposals::propose(&ctx, kind, &payload),
        Instruction::Vote { choice } => proposals::vote(&ctx, choice),
        Instruction::Finalize => proposals::finalize(&ctx),
        Instruction::Execute => proposals::execute(&ctx),
        Instruction::Cancel => proposals::cancel(&ctx),
        Instruction::EmergencyApprove { kind, payload, new_set } => emergency::approve(&ctx, kind, &payload, &new_set),
        Instruction::AcceptAuthority => emergency::accept_authority(&ctx),
        Instruction::SubmitAppeal {
            decision_hash,
            reason_hash,
        } => records::submit_appeal(&ctx, &decision_hash, &reason_hash),
        Instruction::RuleAppeal { ruling, ruling_hash } => records::rule_appeal(&ctx, ruling, &ruling_hash),
        Instruction::AnchorCheckpoint {
            tree_size,
            root,
            checkpoint_time,
        } => records::anchor_checkpoint(&ctx, tree_size, &root, checkpoint_time),
    }
}

/// What every handler gets: the program's id and the instruction's accounts.
pub(crate) struct Ctx<'a> {
    program_id: &'a Address,
    accounts: &'a [AccountView],
}
