//! M-of-N approvals collected within a window: a guardian veto, an emergency halt or resume. As in the
//! Quantumagi program's `approve_motion`: the first approval opens the motion, an approval after the window
//! has passed starts it over, each member approves once, and the motion carries when M distinct members have.

use std::collections::BTreeMap;

use acgs_engine::governance::AuthoritySet;
use serde::{Deserialize, Serialize};

use crate::error::GovernanceError;

/// One member's approval.
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Approval {
    /// When (µs since the Unix epoch).
    pub at_us: i64,
    /// Why, in the member's words.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub reason: String,
}

/// Approvals being collected for one thing.
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Motion {
    /// When the first approval of this round came (µs).
    pub opened_at_us: i64,
    /// Approvals by username.
    pub approvals: BTreeMap<String, Approval>,
}

/// What an approval did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Approved {
    /// Approvals now counted.
    pub count: u32,
    /// Whether they reach the set's threshold (the caller carries the motion out and clears it).
    pub carried: bool,
}

impl Motion {
    /// Whether the motion's window has passed at `now_us`.
    pub fn lapsed(&self, now_us: i64, window_secs: u64) -> bool {
        !self.approvals.is_empty() && now_us >= self.opened_at_us.saturating_add(secs_to_us(window_secs))
    }

    /// Record `user`'s approval at `now_us`. Refused for a non-member ([`GovernanceError::NotAuthorized`]) and a
    /// second approval by the same member in the window ([`GovernanceError::Conflict`]).
    pub fn approve(
        &mut self,
        set: &AuthoritySet,
        what: &str,
        user: &str,
        reason: &str,
        now_us: i64,
        window_secs: u64,
    ) -> Result<Approved, GovernanceError> {
        if !set.contains(user) {
            return Err(GovernanceError::NotAuthorized(format!(
                "`{user}` is not a member of the {what} set ({})",
                set.members.join(", ")
            )));
        }
        if self.lapsed(now_us, window_secs) || self.approvals.is_empty() {
            *self = Motion {
                opened_at_us: now_us,
                approvals: BTreeMap::new(),
            };
        }
        if self.approvals.contains_key(user) {
            return Err(GovernanceError::Conflict(format!(
                "`{user}` has already approved this {what} motion"
            )));
        }
        self.approvals.insert(
            user.to_owned(),
            Approval {
                at_us: now_us,
                reason: reason.to_owned(),
            },
        );
        // Only members count (a member removed since cannot be in a motion the current set decides).
        let count = self.approvals.keys().filter(|u| set.contains(u)).count() as u32;
        Ok(Approved {
            count,
            carried: count >= set.threshold,
        })
    }
}

/// Seconds as microseconds, saturating.
pub fn secs_to_us(secs: u64) -> i64 {
    i64::try_from(secs).unwrap_or(i64::MAX).saturating_mul(1_000_000)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn set() -> AuthoritySet {
        AuthoritySet {
            threshold: 2,
            members: vec!["a".into(), "b".into(), "c".into()],
        }
    }

    #[test]
    fn m_minus_one_approvals_do_not_carry_and_m_do() {
        let mut m = Motion::default();
        let first = m.approve(&set(), "guardian", "a", "", 10, 60).unwrap();
        assert_eq!((first.count, first.carried), (1, false));
        let second = m.approve(&set(), "guardian", "c", "", 20, 60).unwrap();
        assert_eq!((second.count, second.carried), (2, true));
    }

    #[test]
    fn a_member_approves_once_and_a_stranger_not_at_all() {
        let mut m = Motion::default();
        m.approve(&set(), "guardian", "a", "", 10, 60).unwrap();
        assert!(matches!(
            m.approve(&set(), "guardian", "a", "", 11, 60),
            Err(GovernanceError::Conflict(_))
        ));
        assert!(matches!(
            m.approve(&set(), "guardian", "z", "", 11, 60),
            Err(GovernanceError::NotAuthorized(_))
        ));
    }

    #[test]
    fn approvals_older_than_the_window_no_longer_count() {
        let mut m = Motion::default();
        m.approve(&set(), "emergency", "a", "", 0, 60).unwrap();
        let late = m.approve(&set(), "emergency", "b", "", 60_000_000, 60).unwrap();
        assert_eq!((late.count, late.carried), (1, false), "the first approval lapsed");
        assert_eq!(m.opened_at_us, 60_000_000);
    }
}
