//! The `[governance]` section of a constitution: who may change it and by what rules. As written it holds
//! durations (`"72h"`) and shares (`"60%"`); validated ([`Governance::from_section`]) they are whole seconds
//! and basis points, the council register is sorted by user and every set by member, and that validated form
//! is what the constitutional hash covers (so `"3d"` and `"72h"` are the same constitution).

use std::collections::BTreeSet;

use serde::{Deserialize, Serialize};

/// Longest duration a governance parameter may have: ten years.
pub const MAX_DURATION_SECS: u64 = 10 * 365 * 24 * 3600;

/// How long an emergency or guardian motion stays open for approvals when `approval_window` is not given
/// (the Quantumagi program's `MOTION_TTL_S`).
pub const DEFAULT_APPROVAL_WINDOW_SECS: u64 = 24 * 3600;

/// Most members a council, guardian set, emergency set or reviewer list may have.
pub const MAX_MEMBERS: usize = 64;

/// The `[governance]` table as written.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
#[serde(deny_unknown_fields)]
pub struct GovernanceSection {
    /// How long a vote stays open, e.g. `"72h"`.
    pub voting_period: String,
    /// Share of the council's weight that must vote (for, against or abstain), e.g. `"50%"`.
    pub quorum: String,
    /// Share of the for-weight among for + against that passes an amendment, e.g. `"60%"`.
    pub approval_threshold: String,
    /// The approval threshold of an amendment that changes `[governance]` itself; at least `approval_threshold`.
    pub governance_threshold: String,
    /// Delay between a vote passing and the amendment becoming executable, e.g. `"24h"`; may be `"0s"`.
    pub timelock: String,
    /// How long an executable amendment stays executable before it expires, e.g. `"7d"`.
    pub grace_period: String,
    /// Close a vote as soon as the votes not yet cast can no longer change its outcome (default `true`).
    #[serde(default = "default_true")]
    pub early_close: bool,
    /// How long a guardian veto, an emergency motion or an authority transfer collects its approvals
    /// (default `"24h"`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub approval_window: Option<String>,
    /// The council: who votes, with what weight.
    #[serde(default)]
    pub council: Vec<CouncilSeat>,
    /// The guardians: any `threshold` of them veto an amendment that is voting or queued.
    pub guardians: AuthoritySet,
    /// The emergency set: any `threshold` of them halt the system, and resume it.
    pub emergency: AuthoritySet,
    /// Who rules on appeals of decisions, and how long they have.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub appeals: Option<AppealsSection>,
}

fn default_true() -> bool {
    true
}

/// A council member's seat.
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
#[serde(deny_unknown_fields)]
pub struct CouncilSeat {
    /// The member's ACGS username.
    pub user: String,
    /// Their voting weight (0: may vote, counts nothing).
    pub weight: u32,
}

/// An M-of-N set of users.
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
#[serde(deny_unknown_fields)]
pub struct AuthoritySet {
    /// How many distinct members must approve (M).
    pub threshold: u32,
    /// The members' ACGS usernames (N).
    pub members: Vec<String>,
}

impl AuthoritySet {
    /// Whether `user` is a member.
    pub fn contains(&self, user: &str) -> bool {
        self.members.iter().any(|m| m == user)
    }
}

/// The `[governance.appeals]` table as written.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
#[serde(deny_unknown_fields)]
pub struct AppealsSection {
    /// The reviewers' ACGS usernames.
    pub reviewers: Vec<String>,
    /// How long reviewers have to rule on an appeal, e.g. `"5d"`.
    pub ruling_period: String,
}

/// The governance rules, validated: durations in seconds, shares in basis points (1/100 of a percent).
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
pub struct Governance {
    /// How long a vote stays open.
    pub voting_period_secs: u64,
    /// Share of the council's weight that must vote, in basis points.
    pub quorum_bps: u32,
    /// Share of for among for + against that passes an amendment, in basis points.
    pub approval_threshold_bps: u32,
    /// The same for an amendment that changes the governance rules.
    pub governance_threshold_bps: u32,
    /// Delay between passing and executable.
    pub timelock_secs: u64,
    /// How long an amendment stays executable.
    pub grace_period_secs: u64,
    /// Close votes early when the outcome can no longer change.
    pub early_close: bool,
    /// How long vetoes, emergency motions and authority transfers collect approvals.
    pub approval_window_secs: u64,
    /// The council, sorted by user.
    pub council: Vec<CouncilSeat>,
    /// The guardians (veto), members sorted.
    pub guardians: AuthoritySet,
    /// The emergency set (halt, resume), members sorted.
    pub emergency: AuthoritySet,
    /// The appeal reviewers, sorted (empty: appeals cannot be ruled on).
    pub appeal_reviewers: Vec<String>,
    /// How long reviewers have to rule (0 when there are no reviewers).
    pub appeal_ruling_period_secs: u64,
}

impl Governance {
    /// Validate the section as written. Every problem found is returned, each as `(subject, message)`.
    pub fn from_section(section: &GovernanceSection) -> Result<Self, Vec<(String, String)>> {
        let mut problems = Vec::new();
        let mut duration = |field: &str, text: &str, zero_ok: bool| match parse_duration(text) {
            Ok(0) if !zero_ok => {
                problems.push((format!("governance.{field}"), "must be longer than 0s".to_owned()));
                0
            }
            Ok(secs) => secs,
            Err(message) => {
                problems.push((format!("governance.{field}"), message));
                0
            }
        };
        let voting_period_secs = duration("voting_period", &section.voting_period, false);
        let timelock_secs = duration("timelock", &section.timelock, true);
        let grace_period_secs = duration("grace_period", &section.grace_period, false);
        let approval_window_secs = match &section.approval_window {
            Some(text) => duration("approval_window", text, false),
            None => DEFAULT_APPROVAL_WINDOW_SECS,
        };
        let appeal_ruling_period_secs = match &section.appeals {
            Some(appeals) => duration("appeals.ruling_period", &appeals.ruling_period, false),
            None => 0,
        };
        let mut share = |field: &str, text: &str, zero_ok: bool| match parse_share(text) {
            Ok(0) if !zero_ok => {
                problems.push((format!("governance.{field}"), "must be more than 0%".to_owned()));
                0
            }
            Ok(bps) => bps,
            Err(message) => {
                problems.push((format!("governance.{field}"), message));
                0
            }
        };
        let quorum_bps = share("quorum", &section.quorum, true);
        let approval_threshold_bps = share("approval_threshold", &section.approval_threshold, false);
        let governance_threshold_bps = share("governance_threshold", &section.governance_threshold, false);
        if governance_threshold_bps < approval_threshold_bps {
            problems.push((
                "governance.governance_threshold".to_owned(),
                format!(
                    "{} is below approval_threshold {}: changing the rules must need at least as much support \
                     as any other amendment",
                    section.governance_threshold, section.approval_threshold
                ),
            ));
        }

        let mut council = section.council.clone();
        council.sort_by(|a, b| a.user.cmp(&b.user));
        check_users(
            "governance.council",
            council.iter().map(|s| s.user.as_str()),
            &mut problems,
        );
        if council.is_empty() {
            problems.push(("governance.council".to_owned(), "names no member".to_owned()));
        } else if council.iter().all(|s| s.weight == 0) {
            problems.push((
                "governance.council".to_owned(),
                "every member has weight 0: nothing could ever pass".to_owned(),
            ));
        }
        if council.iter().map(|s| u64::from(s.weight)).sum::<u64>() > u64::from(u32::MAX) {
            problems.push((
                "governance.council".to_owned(),
                format!("the weights add up to more than {}", u32::MAX),
            ));
        }
        let guardians = check_set("governance.guardians", &section.guardians, &mut problems);
        let emergency = check_set("governance.emergency", &section.emergency, &mut problems);
        let mut appeal_reviewers = section
            .appeals
            .as_ref()
            .map(|a| a.reviewers.clone())
            .unwrap_or_default();
        appeal_reviewers.sort();
        check_users(
            "governance.appeals.reviewers",
            appeal_reviewers.iter().map(String::as_str),
            &mut problems,
        );
        if section.appeals.is_some() && appeal_reviewers.is_empty() {
            problems.push((
                "governance.appeals.reviewers".to_owned(),
                "names no reviewer".to_owned(),
            ));
        }

        if !problems.is_empty() {
            return Err(problems);
        }
        Ok(Self {
            voting_period_secs,
            quorum_bps,
            approval_threshold_bps,
            governance_threshold_bps,
            timelock_secs,
            grace_period_secs,
            early_close: section.early_close,
            approval_window_secs,
            council,
            guardians,
            emergency,
            appeal_reviewers,
            appeal_ruling_period_secs,
        })
    }

    /// The weight of `user` on the council, if they hold a seat.
    pub fn council_weight(&self, user: &str) -> Option<u32> {
        self.council.iter().find(|s| s.user == user).map(|s| s.weight)
    }

    /// The council's total weight.
    pub fn total_weight(&self) -> u64 {
        self.council.iter().map(|s| u64::from(s.weight)).sum()
    }

    /// Every user the rules name (council, guardians, emergency set, reviewers), sorted, each once.
    pub fn named_users(&self) -> BTreeSet<&str> {
        self.council
            .iter()
            .map(|s| s.user.as_str())
            .chain(self.guardians.members.iter().map(String::as_str))
            .chain(self.emergency.members.iter().map(String::as_str))
            .chain(self.appeal_reviewers.iter().map(String::as_str))
            .collect()
    }
}

/// Whether `name` is a valid ACGS username (1-64 letters, digits, `.`, `_`, `-`, `@`; the rule of `acgs users`).
pub fn is_valid_username(name: &str) -> bool {
    !name.is_empty()
        && name.len() <= 64
        && name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-' | '@'))
}

fn check_users<'a>(subject: &str, users: impl Iterator<Item = &'a str>, problems: &mut Vec<(String, String)>) {
    let mut seen = BTreeSet::new();
    let mut count = 0;
    for user in users {
        count += 1;
        if !is_valid_username(user) {
            problems.push((
                subject.to_owned(),
                format!("`{user}` is not a valid username (1-64 letters, digits, `.`, `_`, `-`, `@`)"),
            ));
        }
        if !seen.insert(user) {
            problems.push((subject.to_owned(), format!("names `{user}` twice")));
        }
    }
    if count > MAX_MEMBERS {
        problems.push((
            subject.to_owned(),
            format!("names {count} users; at most {MAX_MEMBERS}"),
        ));
    }
}

fn check_set(subject: &str, set: &AuthoritySet, problems: &mut Vec<(String, String)>) -> AuthoritySet {
    let mut members = set.members.clone();
    members.sort();
    check_users(subject, members.iter().map(String::as_str), problems);
    if set.threshold == 0 || set.threshold as usize > members.len() {
        problems.push((
            subject.to_owned(),
            format!(
                "threshold {} must be between 1 and the number of members ({})",
                set.threshold,
                members.len()
            ),
        ));
    }
    AuthoritySet {
        threshold: set.threshold,
        members,
    }
}

/// A duration written as a whole number and a unit: `s`, `m`, `h`, `d` or `w` (e.g. `"90m"`, `"72h"`, `"3d"`).
pub fn parse_duration(text: &str) -> Result<u64, String> {
    let t = text.trim();
    let unit_at = t.find(|c: char| !c.is_ascii_digit()).unwrap_or(t.len());
    let (number, unit) = t.split_at(unit_at);
    let scale = match unit {
        "s" => 1,
        "m" => 60,
        "h" => 3600,
        "d" => 86_400,
        "w" => 7 * 86_400,
        _ => {
            return Err(format!(
                "`{text}` is not a duration (a whole number and a unit: s, m, h, d or w, e.g. \"72h\")"
            ));
        }
    };
    let secs = number
        .parse::<u64>()
        .ok()
        .and_then(|n| n.checked_mul(scale))
        .ok_or_else(|| format!("`{text}` is not a duration (a whole number and a unit, e.g. \"72h\")"))?;
    if secs > MAX_DURATION_SECS {
        return Err(format!("`{text}` is longer than ten years"));
    }
    Ok(secs)
}

/// A share written as a percentage with at most two decimals (`"60%"`, `"66.67%"`), in basis points.
pub fn parse_share(text: &str) -> Result<u32, String> {
    let bad =
        || format!("`{text}` is not a share (a percentage from 0% to 100% with at most two decimals, e.g. \"60%\")");
    let number = text.trim().strip_suffix('%').ok_or_else(bad)?;
    let (whole, fraction) = number.split_once('.').unwrap_or((number, ""));
    if whole.is_empty()
        || fraction.len() > 2
        || !whole.chars().all(|c| c.is_ascii_digit())
        || !fraction.chars().all(|c| c.is_ascii_digit())
        || (number.contains('.') && fraction.is_empty())
    {
        return Err(bad());
    }
    let whole: u32 = whole.parse().map_err(|_| bad())?;
    let fraction: u32 = format!("{fraction:0<2}").parse().map_err(|_| bad())?;
    let bps = whole
        .checked_mul(100)
        .and_then(|w| w.checked_add(fraction))
        .ok_or_else(bad)?;
    if bps > 10_000 {
        return Err(bad());
    }
    Ok(bps)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn section() -> GovernanceSection {
        GovernanceSection {
            voting_period: "72h".into(),
            quorum: "50%".into(),
            approval_threshold: "60%".into(),
            governance_threshold: "75%".into(),
            timelock: "24h".into(),
            grace_period: "7d".into(),
            early_close: true,
            approval_window: None,
            council: vec![
                CouncilSeat {
                    user: "bob".into(),
                    weight: 2,
                },
                CouncilSeat {
                    user: "alice".into(),
                    weight: 3,
                },
            ],
            guardians: AuthoritySet {
                threshold: 2,
                members: vec!["erin".into(), "carol".into(), "dave".into()],
            },
            emergency: AuthoritySet {
                threshold: 2,
                members: vec!["alice".into(), "carol".into()],
            },
            appeals: Some(AppealsSection {
                reviewers: vec!["grace".into()],
                ruling_period: "5d".into(),
            }),
        }
    }

    #[test]
    fn a_valid_section_becomes_seconds_basis_points_and_sorted_sets() {
        let g = Governance::from_section(&section()).unwrap();
        assert_eq!(g.voting_period_secs, 72 * 3600);
        assert_eq!(
            (g.quorum_bps, g.approval_threshold_bps, g.governance_threshold_bps),
            (5000, 6000, 7500)
        );
        assert_eq!(g.council[0].user, "alice");
        assert_eq!(g.guardians.members, ["carol", "dave", "erin"]);
        assert_eq!(g.approval_window_secs, DEFAULT_APPROVAL_WINDOW_SECS);
        assert_eq!(g.appeal_ruling_period_secs, 5 * 86_400);
        assert_eq!(g.council_weight("bob"), Some(2));
        assert_eq!(g.council_weight("carol"), None);
        assert_eq!(g.total_weight(), 5);
    }

    #[test]
    fn durations_and_shares_parse_exactly_or_not_at_all() {
        assert_eq!(parse_duration("90m"), Ok(5400));
        assert_eq!(parse_duration("0s"), Ok(0));
        assert_eq!(parse_duration("2w"), Ok(14 * 86_400));
        for bad in ["", "3", "h", "3 days", "-1h", "1.5h", "99999999999999999999d", "11000d"] {
            assert!(parse_duration(bad).is_err(), "{bad}");
        }
        assert_eq!(parse_share("60%"), Ok(6000));
        assert_eq!(parse_share("66.67%"), Ok(6667));
        assert_eq!(parse_share("0.5%"), Ok(50));
        assert_eq!(parse_share("100%"), Ok(10_000));
        for bad in ["60", "100.01%", "1.234%", "%", ".5%", "5.%", "-5%", "50 %"] {
            assert!(parse_share(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn every_problem_is_reported_with_its_field() {
        let mut s = section();
        s.voting_period = "0h".into();
        s.governance_threshold = "55%".into();
        s.council.push(CouncilSeat {
            user: "alice".into(),
            weight: 1,
        });
        s.guardians.threshold = 4;
        s.emergency.members.push("bad name".into());
        let problems = Governance::from_section(&s).unwrap_err();
        let text = format!("{problems:?}");
        for needle in [
            "governance.voting_period",
            "below approval_threshold",
            "names `alice` twice",
            "threshold 4 must be between 1 and the number of members (3)",
            "`bad name` is not a valid username",
        ] {
            assert!(text.contains(needle), "{needle} missing from {text}");
        }
    }

    #[test]
    fn a_council_that_could_never_pass_anything_is_refused() {
        let mut s = section();
        for seat in &mut s.council {
            seat.weight = 0;
        }
        let problems = Governance::from_section(&s).unwrap_err();
        assert!(format!("{problems:?}").contains("weight 0"));
    }
}
