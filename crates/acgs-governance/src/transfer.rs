//! Emergency authority transfer: the current emergency set (M of N) proposes new authorities — a new emergency
//! set, guardian set or list of appeal reviewers — and the transfer takes effect only when the new authorities
//! accept it (M of N of each new set; a majority of a new reviewer list) within the approval window. Completed, it
//! becomes a new constitution version: the one in force with its `[governance]` authorities replaced (the rest of
//! the file, comments included, as it was), whose history names the transfer, its proposers and its acceptors.
//!
//! ```text
//! proposed ──(M of the current emergency set)──▶ accepting ──(each new set's M)──▶ completed
//!    └──(window lapses)──▶ lapsed ◀──(window lapses)──┘      (any open state ──▶ stale: another version in force)
//! ```

use std::collections::BTreeMap;
use std::fmt;

use acgs_engine::governance::{AuthoritySet, Governance};
use serde::{Deserialize, Serialize};
use serde_json::json;

use crate::Step;
use crate::amendment::{MAX_TEXT_CHARS, VersionRef};
use crate::error::GovernanceError;
use crate::motion::{Approval, Motion, secs_to_us};

/// Where a transfer is.
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum TransferState {
    /// Collecting the current emergency set's approvals.
    Proposed,
    /// Approved by the current set; collecting the new authorities' acceptances.
    Accepting,
    /// Accepted: in force as a new constitution version.
    Completed,
    /// A window lapsed first: nothing changed.
    Lapsed,
    /// Another version was put in force meanwhile: nothing changed; propose again.
    Stale,
}

impl TransferState {
    /// The state's name.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Proposed => "proposed",
            Self::Accepting => "accepting",
            Self::Completed => "completed",
            Self::Lapsed => "lapsed",
            Self::Stale => "stale",
        }
    }

    /// Whether the transfer can still complete.
    pub fn is_open(self) -> bool {
        matches!(self, Self::Proposed | Self::Accepting)
    }
}

impl fmt::Display for TransferState {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// The new authorities (each one left out stays as it is).
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TransferTarget {
    /// A new guardian set.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub guardians: Option<AuthoritySet>,
    /// A new emergency set.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub emergency: Option<AuthoritySet>,
    /// A new list of appeal reviewers.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub appeal_reviewers: Option<Vec<String>>,
}

impl TransferTarget {
    /// The sets whose acceptance the transfer needs, by name: each new set with its threshold (a reviewer list
    /// needs a majority).
    pub fn acceptors(&self) -> Vec<(&'static str, AuthoritySet)> {
        let mut sets = Vec::new();
        if let Some(set) = &self.emergency {
            sets.push(("emergency", set.clone()));
        }
        if let Some(set) = &self.guardians {
            sets.push(("guardians", set.clone()));
        }
        if let Some(reviewers) = &self.appeal_reviewers {
            sets.push((
                "appeal_reviewers",
                AuthoritySet {
                    threshold: (reviewers.len() / 2 + 1) as u32,
                    members: reviewers.clone(),
                },
            ));
        }
        sets
    }
}

/// An authority transfer.
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Transfer {
    /// Its id.
    pub id: String,
    /// Where it is.
    pub state: TransferState,
    /// Why, in the first proposer's words.
    pub reason: String,
    /// The new authorities.
    pub target: TransferTarget,
    /// The version in force it changes.
    pub base: VersionRef,
    /// The constitution it puts in force: the base with the authorities replaced (TOML).
    pub source: String,
    /// Its hash.
    pub proposed_hash: String,
    /// When it was proposed (µs).
    pub created_at_us: i64,
    /// Until when the current stage collects approvals (µs).
    pub lapses_at_us: i64,
    /// The current emergency set's approvals.
    pub proposal: Motion,
    /// The new authorities' acceptances, by user.
    #[serde(default)]
    pub acceptances: BTreeMap<String, Approval>,
    /// The version it became, once completed.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub completed_as_version: Option<i64>,
}

impl Transfer {
    /// Propose `target`: the first approval of a member of the current emergency set. `source`/`proposed_hash`:
    /// the constitution with the new authorities (the service writes and checks it: [`with_authorities`]).
    #[allow(clippy::too_many_arguments)]
    pub fn propose(
        id: String,
        user: &str,
        reason: &str,
        target: TransferTarget,
        (base, source, proposed_hash): (VersionRef, String, String),
        rules: &Governance,
        now_us: i64,
    ) -> Result<(Self, Vec<Step>), GovernanceError> {
        if reason.trim().is_empty() || reason.chars().count() > MAX_TEXT_CHARS {
            return Err(GovernanceError::Invalid(format!(
                "a transfer needs a reason of 1-{MAX_TEXT_CHARS} characters"
            )));
        }
        if target.acceptors().is_empty() {
            return Err(GovernanceError::Invalid(
                "name at least one new authority: `emergency`, `guardians` or `appeal_reviewers`".into(),
            ));
        }
        let mut transfer = Self {
            id,
            state: TransferState::Proposed,
            reason: reason.to_owned(),
            target,
            base,
            source,
            proposed_hash,
            created_at_us: now_us,
            lapses_at_us: now_us.saturating_add(secs_to_us(rules.approval_window_secs)),
            proposal: Motion::default(),
            acceptances: BTreeMap::new(),
            completed_as_version: None,
        };
        let first = Step::new("transfer.proposed", &format!("user:{user}"), None, Some("proposed")).detail(json!({
            "reason": reason,
            "target": transfer.target,
            "base_version": transfer.base.number,
            "proposed_hash": transfer.proposed_hash,
        }));
        let mut steps = vec![first];
        steps.extend(transfer.approve(user, reason, rules, now_us)?);
        Ok((transfer, steps))
    }

    fn go(&mut self, to: TransferState, actor: &str, action: &str) -> Step {
        let from = self.state;
        self.state = to;
        Step::new(action, actor, Some(from.as_str()), Some(to.as_str()))
    }

    /// A current emergency-set member's approval; at M the new authorities' acceptance window opens.
    pub fn approve(
        &mut self,
        user: &str,
        reason: &str,
        rules: &Governance,
        now_us: i64,
    ) -> Result<Vec<Step>, GovernanceError> {
        if self.state != TransferState::Proposed {
            return Err(GovernanceError::Conflict(format!(
                "transfer `{}` is {}: approvals are collected only while it is proposed",
                self.id, self.state
            )));
        }
        let window = rules.approval_window_secs;
        let approved = self
            .proposal
            .approve(&rules.emergency, "emergency", user, reason, now_us, window)?;
        let actor = format!("user:{user}");
        let mut steps = vec![
            Step::new("transfer.approved", &actor, Some("proposed"), Some("proposed")).detail(json!({
                "approvals": approved.count,
                "threshold": rules.emergency.threshold,
            })),
        ];
        if approved.carried {
            self.lapses_at_us = now_us.saturating_add(secs_to_us(window));
            let proposers: Vec<&String> = self.proposal.approvals.keys().collect();
            let detail = json!({"proposers": proposers, "accept_by_us": self.lapses_at_us});
            steps.push(
                self.go(TransferState::Accepting, &actor, "transfer.accepting")
                    .detail(detail),
            );
        }
        Ok(steps)
    }

    /// A new authority's acceptance; when every new set has its threshold, the transfer is complete (the service
    /// then puts [`Transfer::source`] in force as `version`).
    pub fn accept(&mut self, user: &str, version: i64, now_us: i64) -> Result<Vec<Step>, GovernanceError> {
        if self.state != TransferState::Accepting {
            return Err(GovernanceError::Conflict(format!(
                "transfer `{}` is {}: it can be accepted only once the current emergency set approved it",
                self.id, self.state
            )));
        }
        let sets = self.target.acceptors();
        if !sets.iter().any(|(_, set)| set.contains(user)) {
            return Err(GovernanceError::NotAuthorized(format!(
                "`{user}` is not among the new authorities of transfer `{}`",
                self.id
            )));
        }
        if self.acceptances.contains_key(user) {
            return Err(GovernanceError::Conflict(format!(
                "`{user}` has already accepted transfer `{}`",
                self.id
            )));
        }
        self.acceptances.insert(
            user.to_owned(),
            Approval {
                at_us: now_us,
                reason: String::new(),
            },
        );
        let missing: Vec<String> = sets
            .iter()
            .filter_map(|(name, set)| {
                let count = set.members.iter().filter(|m| self.acceptances.contains_key(*m)).count() as u32;
                (count < set.threshold).then(|| format!("{name} {count}/{}", set.threshold))
            })
            .collect();
        let actor = format!("user:{user}");
        let mut steps = vec![
            Step::new("transfer.accepted", &actor, Some("accepting"), Some("accepting"))
                .detail(json!({"still_needed": missing})),
        ];
        if missing.is_empty() {
            self.completed_as_version = Some(version);
            let acceptors: Vec<&String> = self.acceptances.keys().collect();
            let detail = json!({"version": version, "hash": self.proposed_hash, "acceptors": acceptors});
            steps.push(
                self.go(TransferState::Completed, &actor, "transfer.completed")
                    .detail(detail),
            );
        }
        Ok(steps)
    }

    /// The steps time has taken: a stage whose window lapsed ends the transfer; a transfer whose base is no longer
    /// in force (`in_force`) is stale.
    pub fn settle(&mut self, in_force: i64, now_us: i64) -> Vec<Step> {
        if !self.state.is_open() {
            return Vec::new();
        }
        if in_force != self.base.number {
            return vec![
                self.go(TransferState::Stale, "clock", "transfer.stale")
                    .detail(json!({"base_version": self.base.number, "active_version": in_force})),
            ];
        }
        if now_us >= self.lapses_at_us {
            return vec![self.go(TransferState::Lapsed, "clock", "transfer.lapsed")];
        }
        Vec::new()
    }

    /// The reason the version it becomes records: how it came about.
    pub fn history_note(&self) -> String {
        let proposers: Vec<&str> = self.proposal.approvals.keys().map(String::as_str).collect();
        let acceptors: Vec<&str> = self.acceptances.keys().map(String::as_str).collect();
        format!(
            "authority transfer {}: {}; proposed by {} (emergency set); accepted by {}",
            self.id,
            self.reason,
            proposers.join(", "),
            acceptors.join(", ")
        )
    }
}

/// `source` (a constitution's TOML) with its `[governance]` authorities replaced by `target`'s; everything else,
/// comments included, is left as written.
pub fn with_authorities(source: &str, target: &TransferTarget) -> Result<String, GovernanceError> {
    let mut doc: toml_edit::DocumentMut = source
        .parse()
        .map_err(|e| GovernanceError::Invalid(format!("the constitution in force does not parse: {e}")))?;
    let governance = doc
        .get_mut("governance")
        .and_then(toml_edit::Item::as_table_mut)
        .ok_or(GovernanceError::Ungoverned)?;
    let members = |users: &[String]| {
        let mut array = toml_edit::Array::new();
        for user in users {
            array.push(user.as_str());
        }
        toml_edit::value(array)
    };
    let mut set = |name: &str, new: &AuthoritySet| -> Result<(), GovernanceError> {
        // In place, so the table keeps its position and comments.
        let table = governance
            .entry(name)
            .or_insert_with(|| toml_edit::Item::Table(toml_edit::Table::new()))
            .as_table_mut()
            .ok_or_else(|| GovernanceError::Invalid(format!("`[governance.{name}]` is not a table")))?;
        table["threshold"] = toml_edit::value(i64::from(new.threshold));
        table["members"] = members(&new.members);
        Ok(())
    };
    if let Some(new) = &target.guardians {
        set("guardians", new)?;
    }
    if let Some(new) = &target.emergency {
        set("emergency", new)?;
    }
    if let Some(reviewers) = &target.appeal_reviewers {
        let appeals = governance
            .entry("appeals")
            .or_insert_with(|| toml_edit::Item::Table(toml_edit::Table::new()));
        let appeals = appeals
            .as_table_mut()
            .ok_or_else(|| GovernanceError::Invalid("`[governance.appeals]` is not a table".into()))?;
        appeals["reviewers"] = members(reviewers);
        if !appeals.contains_key("ruling_period") {
            appeals["ruling_period"] = toml_edit::value("5d");
        }
    }
    Ok(doc.to_string())
}
