//! Appeals of decisions: someone with standing files an appeal of a logged decision with a statement; one of the
//! constitution's appeal reviewers rules `uphold`, `overturn` or `refer` (to the council) with a reason before the
//! deadline, or the appeal expires. A ruling never changes the decision or its audit event: it is a record of its
//! own, and an overturn or referral may come with the test case the reviewer says the constitution should pass
//! (the decision's request with the right outcome), from which the service drafts an amendment.
//!
//! ```text
//! filed ──rule──▶ upheld | overturned | referred
//!   └──(deadline passed)──▶ expired
//! ```

use std::fmt;

use acgs_engine::governance::Governance;
use acgs_engine::{DecisionRequest, Outcome, TestCase};
use serde::{Deserialize, Serialize};
use serde_json::json;

use crate::Step;
use crate::amendment::MAX_TEXT_CHARS;
use crate::error::GovernanceError;
use crate::motion::secs_to_us;

/// Where an appeal is.
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum AppealState {
    /// Waiting for a reviewer's ruling.
    Filed,
    /// The decision stands.
    Upheld,
    /// The decision was wrong (the decision and its audit event stay as they were).
    Overturned,
    /// Referred to the council (an amendment is the remedy).
    Referred,
    /// Nobody ruled before the deadline.
    Expired,
}

impl AppealState {
    /// Every state.
    pub const ALL: [AppealState; 5] = [
        Self::Filed,
        Self::Upheld,
        Self::Overturned,
        Self::Referred,
        Self::Expired,
    ];

    /// The state's name.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Filed => "filed",
            Self::Upheld => "upheld",
            Self::Overturned => "overturned",
            Self::Referred => "referred",
            Self::Expired => "expired",
        }
    }
}

impl fmt::Display for AppealState {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl std::str::FromStr for AppealState {
    type Err = String;
    fn from_str(word: &str) -> Result<Self, String> {
        Self::ALL
            .into_iter()
            .find(|s| s.as_str() == word)
            .ok_or_else(|| format!("`{word}` is not an appeal state"))
    }
}

/// What a reviewer rules.
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum RulingKind {
    /// The decision stands.
    Uphold,
    /// The decision was wrong.
    Overturn,
    /// The council should decide (by amendment).
    Refer,
}

/// The appealed decision, as its audit event records it.
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AppealedDecision {
    /// The decision's id.
    pub decision_id: String,
    /// Its audit sequence number.
    pub seq: i64,
    /// What was decided.
    pub outcome: Outcome,
    /// The constitution that decided.
    pub constitutional_hash: String,
    /// The request as logged (content replaced by its digest).
    #[cfg_attr(feature = "openapi", schema(value_type = Object))]
    pub request: serde_json::Value,
}

/// A reviewer's ruling.
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Ruling {
    /// The reviewer.
    pub reviewer: String,
    /// Uphold, overturn or refer.
    pub ruling: RulingKind,
    /// Why.
    pub reason: String,
    /// When (µs).
    pub at_us: i64,
    /// The outcome the reviewer says the constitution should give this request, if they say.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub expected_outcome: Option<Outcome>,
    /// The amendment drafted from the ruling, if one was.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub amendment: Option<String>,
}

/// One step of an appeal's life.
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AppealTransition {
    /// The state before (none for the filing).
    pub from: Option<AppealState>,
    /// The state after.
    pub to: AppealState,
    /// When (µs).
    pub at_us: i64,
    /// Who: the appellant's label, `user:<reviewer>`, or `clock`.
    pub actor: String,
}

/// An appeal of a decision.
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Appeal {
    /// Its id.
    pub id: String,
    /// Who filed it: `user:<name>` or `api_key:<id>`.
    pub appellant: String,
    /// Why the decision is wrong, in the appellant's words.
    pub statement: String,
    /// Where it is.
    pub state: AppealState,
    /// The decision appealed.
    pub decision: AppealedDecision,
    /// When it was filed (µs).
    pub filed_at_us: i64,
    /// Until when a reviewer may rule (µs).
    pub deadline_us: i64,
    /// The ruling, once made.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ruling: Option<Ruling>,
    /// Every transition, oldest first.
    pub history: Vec<AppealTransition>,
}

impl Appeal {
    /// File an appeal of `decision` by `appellant` (the service has checked their standing).
    pub fn file(
        id: String,
        appellant: &str,
        statement: &str,
        decision: AppealedDecision,
        rules: &Governance,
        now_us: i64,
    ) -> Result<(Self, Step), GovernanceError> {
        if statement.trim().is_empty() {
            return Err(GovernanceError::Invalid("an appeal needs a statement".into()));
        }
        if statement.chars().count() > MAX_TEXT_CHARS {
            return Err(GovernanceError::Invalid(format!(
                "the statement is longer than {MAX_TEXT_CHARS} characters"
            )));
        }
        if rules.appeal_reviewers.is_empty() {
            return Err(GovernanceError::Conflict(
                "the constitution in force names no appeal reviewers ([governance.appeals]): nobody could rule".into(),
            ));
        }
        let deadline_us = now_us.saturating_add(secs_to_us(rules.appeal_ruling_period_secs));
        let step = Step::new("appeal.filed", appellant, None, Some("filed")).detail(json!({
            "decision_id": decision.decision_id,
            "decision_seq": decision.seq,
            "outcome": decision.outcome,
            "statement": statement,
            "deadline_us": deadline_us,
        }));
        let appeal = Self {
            id,
            appellant: appellant.to_owned(),
            statement: statement.to_owned(),
            state: AppealState::Filed,
            decision,
            filed_at_us: now_us,
            deadline_us,
            ruling: None,
            history: vec![AppealTransition {
                from: None,
                to: AppealState::Filed,
                at_us: now_us,
                actor: appellant.to_owned(),
            }],
        };
        Ok((appeal, step))
    }

    fn go(&mut self, to: AppealState, actor: &str, at_us: i64, action: &str) -> Step {
        let from = self.state;
        self.state = to;
        self.history.push(AppealTransition {
            from: Some(from),
            to,
            at_us,
            actor: actor.to_owned(),
        });
        Step::new(action, actor, Some(from.as_str()), Some(to.as_str()))
    }

    /// The step time has taken by `now_us`: past its deadline without a ruling, the appeal expires.
    pub fn settle(&mut self, now_us: i64) -> Vec<Step> {
        if self.state == AppealState::Filed && now_us >= self.deadline_us {
            let deadline = self.deadline_us;
            return vec![self.go(AppealState::Expired, "clock", deadline, "appeal.expired")];
        }
        Vec::new()
    }

    /// A reviewer's ruling: one of the constitution's reviewers, not the appellant, before the deadline.
    pub fn rule(
        &mut self,
        reviewer: &str,
        ruling: RulingKind,
        reason: &str,
        expected_outcome: Option<Outcome>,
        rules: &Governance,
        now_us: i64,
    ) -> Result<Vec<Step>, GovernanceError> {
        if reason.trim().is_empty() {
            return Err(GovernanceError::Invalid("a ruling needs a reason".into()));
        }
        if reason.chars().count() > MAX_TEXT_CHARS {
            return Err(GovernanceError::Invalid(format!(
                "the reason is longer than {MAX_TEXT_CHARS} characters"
            )));
        }
        if self.state != AppealState::Filed {
            return Err(GovernanceError::Conflict(format!(
                "appeal `{}` is {}: only a filed appeal can be ruled on",
                self.id, self.state
            )));
        }
        if !rules.appeal_reviewers.iter().any(|r| r == reviewer) {
            return Err(GovernanceError::NotAuthorized(format!(
                "`{reviewer}` is not an appeal reviewer ({})",
                rules.appeal_reviewers.join(", ")
            )));
        }
        let actor = format!("user:{reviewer}");
        if actor == self.appellant {
            return Err(GovernanceError::NotAuthorized(
                "a reviewer cannot rule on their own appeal".into(),
            ));
        }
        if ruling == RulingKind::Uphold && expected_outcome.is_some() {
            return Err(GovernanceError::Invalid(
                "an upheld decision keeps its outcome: `expected_outcome` goes with overturn or refer".into(),
            ));
        }
        if expected_outcome == Some(self.decision.outcome) {
            return Err(GovernanceError::Invalid(format!(
                "the decision already was `{}`: the expected outcome must differ",
                self.decision.outcome
            )));
        }
        let (to, action) = match ruling {
            RulingKind::Uphold => (AppealState::Upheld, "appeal.upheld"),
            RulingKind::Overturn => (AppealState::Overturned, "appeal.overturned"),
            RulingKind::Refer => (AppealState::Referred, "appeal.referred"),
        };
        self.ruling = Some(Ruling {
            reviewer: reviewer.to_owned(),
            ruling,
            reason: reason.to_owned(),
            at_us: now_us,
            expected_outcome,
            amendment: None,
        });
        Ok(vec![self.go(to, &actor, now_us, action).detail(json!({
            "decision_id": self.decision.decision_id,
            "reason": reason,
            "expected_outcome": expected_outcome,
        }))])
    }

    /// The test case the ruling asks the constitution to pass: the appealed request with the expected outcome.
    pub fn test_case(&self) -> Result<TestCase, GovernanceError> {
        let expected = self
            .ruling
            .as_ref()
            .and_then(|r| r.expected_outcome)
            .ok_or_else(|| GovernanceError::Invalid("the ruling names no expected outcome".into()))?;
        let mut request = self.decision.request.clone();
        if let Some(object) = request.as_object_mut() {
            // The log keeps only the content's digest; the test decides the request without it.
            object.remove("content");
        }
        let request: DecisionRequest = serde_json::from_value(request)
            .map_err(|e| GovernanceError::Invalid(format!("the logged request does not make a test case: {e}")))?;
        Ok(TestCase {
            name: format!("appeal {} of decision {}", self.id, self.decision.decision_id),
            request,
            expect: expected,
            expect_policies: None,
        })
    }
}

/// `source` (a constitution's TOML) with `case` appended as one more `[[tests]]` entry.
pub fn with_test_case(source: &str, case: &TestCase) -> Result<String, GovernanceError> {
    #[derive(Serialize)]
    struct Tests<'a> {
        tests: [&'a TestCase; 1],
    }
    let entry = toml::to_string(&Tests { tests: [case] })
        .map_err(|e| GovernanceError::Invalid(format!("the test case cannot be written as TOML: {e}")))?;
    Ok(format!(
        "{}\n\n# Added from an appeal ruling.\n{entry}",
        source.trim_end()
    ))
}
