//! The program's error codes: every refusal is a `Custom(code)` a client can map back to its reason.

use pinocchio::error::ProgramError;

/// Why an instruction was refused. The numbers are part of the program's interface (documented in
/// `docs/quantumagi.md`) and never reused.
#[derive(Clone, Copy, PartialEq, Eq)]
#[cfg_attr(not(target_arch = "bpf"), derive(Debug))]
#[repr(u32)]
pub enum QgError {
    /// The instruction data is malformed (unknown tag, wrong length, a value out of range).
    InvalidInstruction = 6000,
    /// An account is not the one the instruction needs at that position (wrong address or sysvar).
    WrongAccount = 6001,
    /// An account is not owned by this program.
    WrongOwner = 6002,
    /// An account's address is not the program-derived address of its seeds.
    WrongPda = 6003,
    /// An account's data is not an account of the expected kind (size, kind tag or layout version).
    WrongAccountData = 6004,
    /// An account belongs to another governance, proposal or member than the instruction names.
    AccountMismatch = 6005,
    /// The signer is not the authority for this action.
    Unauthorized = 6006,
    /// The signer is not an active council member with the needed role.
    NotCouncilMember = 6007,
    /// The governance is halted: proposals cannot be made or executed.
    Halted = 6008,
    /// The governance is not halted (nothing to resume).
    NotHalted = 6009,
    /// The proposal is not in the state this action needs.
    WrongProposalState = 6010,
    /// The voting period is over.
    VotingClosed = 6011,
    /// The proposal is not decided yet: the voting period runs and the outcome is still open.
    VotingOpen = 6012,
    /// The timelock has not expired.
    TimelockActive = 6013,
    /// The member joined after the proposal was made and may not vote on it.
    MemberTooNew = 6014,
    /// This emergency member has already approved the open motion.
    AlreadyApproved = 6015,
    /// Another emergency motion (other action or payload) is open and has not expired.
    MotionInProgress = 6016,
    /// No authority transfer is pending.
    NoPendingTransfer = 6017,
    /// Too few of the required signers signed.
    NotEnoughSigners = 6018,
    /// The anchored audit-log tree would shrink, or the same size was anchored with another root.
    AnchorRegression = 6019,
    /// The appeal has already been ruled on.
    AppealClosed = 6020,
    /// The initial council is complete; members change only through proposals.
    SetupClosed = 6021,
    /// The initial council is not complete yet.
    SetupOpen = 6022,
    /// An arithmetic result is out of range.
    Overflow = 6023,
    /// The constitution version must increase.
    VersionNotIncreasing = 6024,
    /// The council is full, a weight is beyond the maximum, or a change would leave no voting weight.
    CouncilLimit = 6025,
    /// This member has already voted on this proposal.
    AlreadyVoted = 6026,
    /// The account to create exists already (e.g. a second appeal of the same decision).
    AlreadyExists = 6027,
}

impl QgError {
    /// Every error, in code order.
    pub const ALL: [QgError; 28] = [
        QgError::InvalidInstruction,
        QgError::WrongAccount,
        QgError::WrongOwner,
        QgError::WrongPda,
        QgError::WrongAccountData,
        QgError::AccountMismatch,
        QgError::Unauthorized,
        QgError::NotCouncilMember,
        QgError::Halted,
        QgError::NotHalted,
        QgError::WrongProposalState,
        QgError::VotingClosed,
        QgError::VotingOpen,
        QgError::TimelockActive,
        QgError::MemberTooNew,
        QgError::AlreadyApproved,
        QgError::MotionInProgress,
        QgError::NoPendingTransfer,
        QgError::NotEnoughSigners,
        QgError::AnchorRegression,
        QgError::AppealClosed,
        QgError::SetupClosed,
        QgError::SetupOpen,
        QgError::Overflow,
        QgError::VersionNotIncreasing,
        QgError::CouncilLimit,
        QgError::AlreadyVoted,
        QgError::AlreadyExists,
    ];

    /// The error with this code, if it is one of the program's.
    pub fn from_code(code: u32) -> Option<QgError> {
        QgError::ALL.into_iter().find(|e| *e as u32 == code)
    }
}

impl From<QgError> for ProgramError {
    fn from(e: QgError) -> Self {
        ProgramError::Custom(e as u32)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn codes_are_consecutive_and_round_trip() {
        for (i, e) in QgError::ALL.into_iter().enumerate() {
            assert_eq!(e as u32, 6000 + i as u32);
            assert_eq!(QgError::from_code(e as u32), Some(e));
        }
        assert_eq!(QgError::from_code(5999), None);
        assert_eq!(QgError::from_code(6028), None);
    }
}
