//! Weighted votes: quorum, approval and when a vote is decided, with the meaning of the Quantumagi program's
//! `rules.rs` (`quorum_reached`, `approved`, `outcome`), in exact integer arithmetic.

use serde::{Deserialize, Serialize};

/// How a council member votes.
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Choice {
    /// In favour.
    For,
    /// Against.
    Against,
    /// Counts towards quorum, not towards approval.
    Abstain,
}

impl std::str::FromStr for Choice {
    type Err = String;
    fn from_str(word: &str) -> Result<Self, String> {
        match word {
            "for" => Ok(Self::For),
            "against" => Ok(Self::Against),
            "abstain" => Ok(Self::Abstain),
            other => Err(format!("`{other}` is not a vote (expected for, against or abstain)")),
        }
    }
}

/// The weight cast each way.
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Tally {
    /// Weight for.
    pub for_weight: u64,
    /// Weight against.
    pub against_weight: u64,
    /// Weight abstaining.
    pub abstain_weight: u64,
}

impl Tally {
    /// Add a vote of `weight`.
    pub fn add(&mut self, choice: Choice, weight: u64) {
        match choice {
            Choice::For => self.for_weight += weight,
            Choice::Against => self.against_weight += weight,
            Choice::Abstain => self.abstain_weight += weight,
        }
    }

    /// Everything cast.
    pub fn turnout(&self) -> u64 {
        self.for_weight + self.against_weight + self.abstain_weight
    }
}

/// The rules one vote is counted by, fixed when it opens.
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct VoteRules {
    /// The council's total weight when the vote opened.
    pub total_weight: u64,
    /// Share of `total_weight` that must vote, in basis points.
    pub quorum_bps: u32,
    /// Share of for among for + against that passes, in basis points.
    pub threshold_bps: u32,
    /// Whether the vote closes as soon as its outcome can no longer change.
    pub early_close: bool,
}

/// Whether `part` is at least `bps` basis points of `whole`.
fn at_least(part: u64, whole: u64, bps: u32) -> bool {
    u128::from(part) * 10_000 >= u128::from(whole) * u128::from(bps)
}

/// Quorum: for, against and abstain together reach the quorum share of the council's weight.
pub fn quorum_reached(tally: &Tally, rules: &VoteRules) -> bool {
    at_least(tally.turnout(), rules.total_weight, rules.quorum_bps)
}

/// Approval: for reaches the threshold share of for + against (abstentions do not count); nothing cast either
/// way is no approval.
pub fn approved(for_weight: u64, against_weight: u64, threshold_bps: u32) -> bool {
    let cast = for_weight + against_weight;
    cast > 0 && at_least(for_weight, cast, threshold_bps)
}

/// The outcome of a vote: `Some(true)` passed, `Some(false)` failed, `None` still open. When `closed` (the
/// voting period is over) the tally decides; before that, with early close, only when the weight not yet cast
/// can no longer change the result, whichever way it goes.
pub fn outcome(tally: &Tally, rules: &VoteRules, closed: bool) -> Option<bool> {
    if closed {
        return Some(
            quorum_reached(tally, rules) && approved(tally.for_weight, tally.against_weight, rules.threshold_bps),
        );
    }
    if !rules.early_close {
        return None;
    }
    let outstanding = rules.total_weight.saturating_sub(tally.turnout());
    // Passes whatever is still cast: quorum is already there, and all outstanding weight against keeps it approved.
    if quorum_reached(tally, rules)
        && approved(
            tally.for_weight,
            tally.against_weight + outstanding,
            rules.threshold_bps,
        )
    {
        return Some(true);
    }
    // Fails whatever is still cast: all outstanding weight for would not approve it.
    if !approved(
        tally.for_weight + outstanding,
        tally.against_weight,
        rules.threshold_bps,
    ) {
        return Some(false);
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rules(total: u64, quorum: u32, threshold: u32) -> VoteRules {
        VoteRules {
            total_weight: total,
            quorum_bps: quorum,
            threshold_bps: threshold,
            early_close: true,
        }
    }

    fn tally(f: u64, a: u64, x: u64) -> Tally {
        Tally {
            for_weight: f,
            against_weight: a,
            abstain_weight: x,
        }
    }

    #[test]
    fn exactly_at_the_threshold_passes_and_just_below_fails() {
        let r = rules(10, 5000, 6000);
        assert_eq!(outcome(&tally(6, 4, 0), &r, true), Some(true), "6 of 10 is exactly 60%");
        assert_eq!(outcome(&tally(5, 4, 0), &r, true), Some(false), "5 of 9 is 55.6%");
        assert_eq!(
            outcome(&tally(3, 2, 0), &r, true),
            Some(true),
            "quorum exactly 50%, 60% for"
        );
        assert_eq!(
            outcome(&tally(2, 2, 0), &r, true),
            Some(false),
            "quorum 40% is below 50%"
        );
    }

    #[test]
    fn a_tie_passes_only_at_a_fifty_percent_threshold() {
        assert_eq!(outcome(&tally(5, 5, 0), &rules(10, 5000, 5000), true), Some(true));
        assert_eq!(outcome(&tally(5, 5, 0), &rules(10, 5000, 5001), true), Some(false));
    }

    #[test]
    fn abstentions_count_for_quorum_but_alone_pass_nothing() {
        let r = rules(10, 5000, 5000);
        assert!(quorum_reached(&tally(0, 0, 10), &r));
        assert_eq!(outcome(&tally(0, 0, 10), &r, true), Some(false));
        assert_eq!(outcome(&tally(1, 0, 9), &r, true), Some(true));
    }

    #[test]
    fn early_close_only_when_no_outstanding_weight_could_change_the_result() {
        let r = rules(10, 5000, 6000);
        // 6 for: even 4 more against leaves 60%.
        assert_eq!(outcome(&tally(6, 0, 0), &r, false), Some(true));
        // 5 for: 5 more against would make it 50%.
        assert_eq!(outcome(&tally(5, 0, 0), &r, false), None);
        // 5 against: even 5 more for is 50%.
        assert_eq!(outcome(&tally(0, 5, 0), &r, false), Some(false));
        let mut no_early = r;
        no_early.early_close = false;
        assert_eq!(outcome(&tally(10, 0, 0), &no_early, false), None);
    }

    #[test]
    fn large_weights_do_not_overflow() {
        let r = rules(u64::from(u32::MAX), 10_000, 10_000);
        let t = tally(u64::from(u32::MAX), 0, 0);
        assert_eq!(outcome(&t, &r, true), Some(true));
    }
}
