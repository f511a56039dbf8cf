//! Appeals of decisions: filed by whoever asked for the decision, an operator, or the owner the request named for
//! its principal; ruled on by the constitution's reviewers before the deadline, or expired. An overturn or a
//! referral may draft an amendment (committed with the ruling) whose constitution adds the test case the ruling
//! names: the appealed request with the outcome the reviewer says is right.

use acgs_auth::{Principal, PrincipalKind, Role};
use acgs_engine::Outcome;
use acgs_governance::appeal::{Appeal, AppealState, AppealedDecision, RulingKind, with_test_case};
use acgs_governance::{GovernanceError, Step};
use acgs_store::{GovernanceCommit, GovernanceRecord, StoreError};
use serde_json::Value;

use super::{APPEAL, ATTEMPTS, DraftInput, GovernanceService, ServiceError, events, internal, record_write};

/// What an appellant sends.
#[derive(Debug, Clone)]
pub struct AppealInput {
    /// The decision appealed.
    pub decision_id: String,
    /// Why it is wrong.
    pub statement: String,
}

/// What a reviewer sends.
#[derive(Debug, Clone)]
pub struct RulingInput {
    /// Uphold, overturn or refer.
    pub ruling: RulingKind,
    /// Why.
    pub reason: String,
    /// The outcome the constitution should give the request (overturn or refer).
    pub expected_outcome: Option<Outcome>,
    /// Draft an amendment adding the request as a test case with `expected_outcome`.
    pub draft_amendment: bool,
}

impl super::Governed for Appeal {
    const KIND: &'static str = APPEAL;
    fn id(&self) -> &str {
        &self.id
    }
    fn state(&self) -> &'static str {
        self.state.as_str()
    }
    fn created_at_us(&self) -> i64 {
        self.filed_at_us
    }
}

/// The owner the request named for its principal (`owner: {__entity: {type: "User", id}}` or `{type, id}`).
fn named_owner(request: &Value) -> Option<&str> {
    let owner = request.pointer("/principal/attributes/owner")?;
    let owner = owner.get("__entity").unwrap_or(owner);
    (owner.get("type")?.as_str()? == "User").then_some(())?;
    owner.get("id")?.as_str()
}

/// Whether `principal` may appeal the decision whose logged body is `body`.
fn has_standing(principal: &Principal, body: &Value) -> bool {
    if principal.roles.contains(Role::Operator) {
        return true;
    }
    if body.get("caller").and_then(Value::as_str) == Some(principal.label().as_str()) {
        return true;
    }
    match &principal.kind {
        PrincipalKind::User { username, .. } => body.get("request").and_then(named_owner) == Some(username.as_str()),
        PrincipalKind::ApiKey { .. } => false,
    }
}

impl GovernanceService {
    /// File an appeal of a logged decision as `principal`.
    pub async fn file_appeal(&self, principal: &Principal, input: AppealInput) -> Result<Appeal, ServiceError> {
        let (_, rules) = self.rules()?;
        let record = self
            .store
            .get(&input.decision_id)
            .await?
            .ok_or_else(|| ServiceError::NotFound(format!("no decision `{}`", input.decision_id)))?;
        let body: Value = serde_json::from_str(&record.body).map_err(internal("reading a decision's body"))?;
        if !has_standing(principal, &body) {
            return Err(GovernanceError::NotAuthorized(format!(
                "only the caller that asked for decision `{}`, the owner its request named, or an operator may \
                 appeal it",
                record.decision_id
            ))
            .into());
        }
        let outcome = record
            .outcome
            .parse::<Outcome>()
            .map_err(|e| ServiceError::Internal(e.to_string()))?;
        let decision = AppealedDecision {
            decision_id: record.decision_id.clone(),
            seq: record.seq,
            outcome,
            constitutional_hash: record.constitutional_hash.clone(),
            request: body.get("request").cloned().unwrap_or(Value::Null),
        };
        let now = self.now();
        let (appeal, step) = Appeal::file(
            (self.ids)(),
            &principal.label(),
            &input.statement,
            decision,
            &rules,
            now,
        )?;
        let commit = GovernanceCommit::records(
            vec![record_write(&appeal, None, now)?],
            events(&format!("{APPEAL}/{}", appeal.id), vec![step], now),
        );
        self.store.commit_governance(&commit).await?;
        Ok(appeal)
    }

    async fn load_appeal(&self, id: &str) -> Result<(GovernanceRecord, Appeal), ServiceError> {
        self.load_record(APPEAL, id, "appeal").await
    }

    /// One appeal, expired if its deadline passed without a ruling (and recorded so).
    pub async fn appeal(&self, id: &str) -> Result<Appeal, ServiceError> {
        for _ in 0..ATTEMPTS {
            let (stored, mut appeal) = self.load_appeal(id).await?;
            let now = self.now();
            let steps = appeal.settle(now);
            if steps.is_empty() {
                return Ok(appeal);
            }
            match self.commit_appeal(&stored, &appeal, steps, now, None).await {
                Ok(()) => return Ok(appeal),
                Err(ServiceError::Rule(GovernanceError::Conflict(_))) => continue,
                Err(e) => return Err(e),
            }
        }
        Err(GovernanceError::Conflict(format!("appeal `{id}` kept changing; try again")).into())
    }

    /// Appeals, newest first, optionally only those in `state`.
    pub async fn appeals(
        &self,
        state: Option<AppealState>,
        limit: u32,
        before_created_at_us: Option<i64>,
    ) -> Result<Vec<Appeal>, ServiceError> {
        let listed = self
            .list_records(APPEAL, state.map(AppealState::as_str), limit, before_created_at_us)
            .await?;
        Ok(listed.into_iter().map(|(_, appeal)| appeal).collect())
    }

    /// A reviewer's ruling; with `draft_amendment`, the amendment adding the ruling's test case is drafted in the
    /// same commit.
    pub async fn rule(&self, reviewer: &str, id: &str, input: RulingInput) -> Result<Appeal, ServiceError> {
        let (_, rules) = self.rules()?;
        for _ in 0..ATTEMPTS {
            let (stored, mut appeal) = self.load_appeal(id).await?;
            if input.draft_amendment && input.expected_outcome.is_none() {
                return Err(GovernanceError::Invalid(
                    "drafting an amendment needs `expected_outcome`: the outcome the new test case expects".into(),
                )
                .into());
            }
            if input.draft_amendment && input.ruling == RulingKind::Uphold {
                return Err(GovernanceError::Invalid("an upheld decision needs no amendment".into()).into());
            }
            let now = self.now();
            let mut steps = appeal.settle(now);
            match appeal.rule(
                reviewer,
                input.ruling,
                &input.reason,
                input.expected_outcome,
                &rules,
                now,
            ) {
                Ok(ruled) => steps.extend(ruled),
                Err(e) => {
                    if !steps.is_empty() {
                        self.commit_appeal(&stored, &appeal, steps, now, None).await?;
                    }
                    return Err(e.into());
                }
            }
            let amendment = if input.draft_amendment {
                let case = appeal.test_case()?;
                let in_force = self.version(self.active.number()).await?;
                let source = with_test_case(&in_force.version.source, &case)?;
                let (amendment, commit) = self
                    .prepare_draft(
                        reviewer,
                        DraftInput {
                            title: format!("Appeal {}: {}", appeal.id, case.name),
                            rationale: format!(
                                "Appeal of decision {} ({}): {}\n\nRuling ({}): {}",
                                appeal.decision.decision_id,
                                appeal.decision.outcome,
                                appeal.statement,
                                reviewer,
                                input.reason
                            ),
                            constitution: Some(source),
                            restore_version: None,
                        },
                    )
                    .await?;
                if let Some(ruling) = appeal.ruling.as_mut() {
                    ruling.amendment = Some(amendment.id.clone());
                }
                Some(commit)
            } else {
                None
            };
            match self.commit_appeal(&stored, &appeal, steps, now, amendment).await {
                Ok(()) => return Ok(appeal),
                Err(ServiceError::Rule(GovernanceError::Conflict(_))) => continue,
                Err(e) => return Err(e),
            }
        }
        Err(GovernanceError::Conflict(format!("appeal `{id}` kept changing; try again")).into())
    }

    /// Commit the appeal's steps (and, with `with`, a drafted amendment's writes and events) in one transaction.
    async fn commit_appeal(
        &self,
        stored: &GovernanceRecord,
        appeal: &Appeal,
        steps: Vec<Step>,
        now: i64,
        with: Option<GovernanceCommit>,
    ) -> Result<(), ServiceError> {
        let mut commit = with.unwrap_or_default();
        commit.writes.push(record_write(appeal, Some(stored), now)?);
        commit
            .events
            .extend(events(&format!("{APPEAL}/{}", appeal.id), steps, now));
        match self.store.commit_governance(&commit).await {
            Ok(_) => Ok(()),
            Err(StoreError::Conflict(message)) => Err(GovernanceError::Conflict(message).into()),
            Err(e) => Err(e.into()),
        }
    }
}
