//! What a governance step can fail with; the HTTP layer maps each kind to its status.

/// Why a governance step was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum GovernanceError {
    /// The step is not allowed in the object's current state (an illegal transition, a second approval, a
    /// stale amendment): HTTP 409.
    #[error("{0}")]
    Conflict(String),
    /// The caller is not the member, proposer or reviewer the step needs: HTTP 403.
    #[error("{0}")]
    NotAuthorized(String),
    /// The request itself is wrong (a constitution that does not parse, an empty title): HTTP 400.
    #[error("{0}")]
    Invalid(String),
    /// The proposed constitution failed the verification gate: HTTP 422 (the report is kept with it).
    #[error("{0}")]
    GateFailed(String),
    /// The active constitution has no `[governance]` section, so nothing can be governed: HTTP 409.
    #[error("the constitution in force has no [governance] section: it names no council, guardians or emergency set")]
    Ungoverned,
}
