//! The decision function: a request and a constitution in, `allow` / `deny` / `escalate` out, with the
//! policies and principles that decided it. Pure and synchronous; no I/O.
//!
//! Semantics (documented in `docs/constitution.md`):
//! - default deny: nothing permits, the answer is `deny`;
//! - `forbid` beats `permit`;
//! - a `forbid` annotated `@escalate` yields `escalate` when no other forbid applies and some permit does;
//! - any policy evaluation error makes the decision `deny` (Cedar skips erroring policies; we fail closed).

use std::collections::HashSet;
use std::sync::Arc;

use cedar_policy::{Authorizer, Context, Decision as CedarDecision, Request, RestrictedExpression};
use serde::{Deserialize, Serialize};

use crate::constitution::{Constitution, DETECTIONS_ATTRIBUTE};
use crate::detectors::{Detection, DetectionCategory, Detectors};
use crate::document::Outcome;
use crate::error::RequestError;
use crate::request::{DecisionRequest, ValuePath, json_to_expr};

/// Why a decision came out as it did: one deciding policy.
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Reason {
    /// The deciding policy.
    pub policy_id: String,
    /// The principle that policy implements.
    pub principle_id: String,
    /// `permit` or `forbid`.
    pub effect: PolicyEffect,
    /// Whether the policy is an escalation rule (`@escalate` forbid).
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub escalation: bool,
}

/// Effect of a policy.
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum PolicyEffect {
    /// Allows when it applies.
    Permit,
    /// Denies when it applies.
    Forbid,
}

/// A policy that failed to evaluate (which makes the decision `deny`).
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct EvaluationError {
    /// The policy that errored.
    pub policy_id: String,
    /// The error message.
    pub message: String,
}

/// The outcome of one decision, with its explanation.
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Decision {
    /// `allow`, `deny` or `escalate`.
    pub outcome: Outcome,
    /// Deciding policies (for `deny`: the forbids that applied; for `allow`: the permits; for `escalate`:
    /// the escalation rules and the permits).
    pub reasons: Vec<Reason>,
    /// Policy evaluation errors; non-empty means the decision is `deny` (fail closed).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub errors: Vec<EvaluationError>,
    /// Detector findings on the request's content.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub detections: Vec<Detection>,
    /// One sentence for humans.
    pub explanation: String,
}

impl Decision {
    /// Ids of the deciding policies, sorted: the policies in `reasons` and, for a fail-closed denial,
    /// the policies whose evaluation failed.
    pub fn policy_ids(&self) -> Vec<String> {
        let mut ids: Vec<String> = self
            .reasons
            .iter()
            .map(|r| r.policy_id.clone())
            .chain(self.errors.iter().map(|e| e.policy_id.clone()))
            .collect();
        ids.sort();
        ids.dedup();
        ids
    }
}

/// A constitution ready to decide, with the content detectors. Cheap to share behind an `Arc`.
#[derive(Debug)]
pub struct Engine {
    constitution: Arc<Constitution>,
    detectors: Detectors,
    authorizer: Authorizer,
}

impl Engine {
    /// Build an engine for a constitution.
    pub fn new(constitution: Arc<Constitution>) -> Self {
        Self {
            constitution,
            detectors: Detectors::new(),
            authorizer: Authorizer::new(),
        }
    }

    /// The active constitution.
    pub fn constitution(&self) -> &Arc<Constitution> {
        &self.constitution
    }

    /// The content detectors.
    pub fn detectors(&self) -> &Detectors {
        &self.detectors
    }

    /// Decide one request.
    pub fn decide(&self, request: &DecisionRequest) -> Result<Decision, RequestError> {
        decide(&self.constitution, &self.detectors, &self.authorizer, request)
    }
}

/// Decide one request against a constitution (see the module docs for the semantics).
pub(crate) fn decide(
    constitution: &Constitution,
    detectors: &Detectors,
    authorizer: &Authorizer,
    request: &DecisionRequest,
) -> Result<Decision, RequestError> {
    let action = constitution
        .actions
        .get(&request.action)
        .ok_or_else(|| RequestError::UnknownAction(request.action.clone()))?;
    let Some(policies) = constitution.per_action.get(action) else {
        return Err(RequestError::UnknownAction(request.action.clone()));
    };
    let types = &constitution.entity_types;
    if request.context.contains_key(DETECTIONS_ATTRIBUTE) {
        return Err(RequestError::ReservedContext);
    }

    let detections = match &request.content {
        Some(text) if !text.is_empty() => detectors.scan(text),
        _ => Vec::new(),
    };

    // Context from typed values (much cheaper than Cedar's schema-driven JSON parser).
    let mut pairs = Vec::with_capacity(request.context.len() + 1);
    for (key, value) in &request.context {
        pairs.push((
            key.clone(),
            json_to_expr(types, value, ValuePath::Field(&ValuePath::Root("context"), key), 0)?,
        ));
    }
    if policies.wants_detections {
        pairs.push((DETECTIONS_ATTRIBUTE.to_owned(), detections_record(&detections)?));
    }
    let context = Context::from_pairs(pairs).map_err(|e| RequestError::InvalidValue {
        path: "context".into(),
        message: e.to_string(),
    })?;

    let principal = request.principal.uid(types, "principal")?;
    let resource = request.resource.uid(types, "resource")?;
    let mut entities = Vec::with_capacity(2 + request.entities.len());
    entities.push(request.principal.to_entity(types, "principal")?);
    if resource != principal {
        entities.push(request.resource.to_entity(types, "resource")?);
    }
    for (i, e) in request.entities.iter().enumerate() {
        if e.entity_type == "Action" || e.entity_type.ends_with("::Action") {
            return Err(RequestError::Entities(format!(
                "entities[{i}]: action entities come from the schema and cannot be supplied"
            )));
        }
        entities.push(e.to_entity(types, &format!("entities[{i}]"))?);
    }
    // The request's entities are validated against the schema as they join the action's own entity.
    let entities = policies
        .action_store
        .clone()
        .add_entities(entities, Some(&constitution.schema))
        .map_err(|e| RequestError::Entities(diagnostic_chain(&e)))?;

    let cedar_request = Request::new(principal, action.clone(), resource, context, Some(&constitution.schema))
        .map_err(|e| RequestError::Schema(diagnostic_chain(&e)))?;

    let response = authorizer.is_authorized(&cedar_request, &policies.all, &entities);
    let errors = evaluation_errors(&response);
    let reasons = reasons_of(constitution, response.diagnostics().reason());

    if !errors.is_empty() {
        let ids: Vec<&str> = errors.iter().map(|e| e.policy_id.as_str()).collect();
        // Only forbids that applied explain a denial; permits that applied did not decide it.
        let reasons = reasons
            .into_iter()
            .filter(|r| r.effect == PolicyEffect::Forbid)
            .collect();
        return Ok(Decision {
            outcome: Outcome::Deny,
            explanation: format!(
                "denied: policy evaluation failed ({}); ACGS fails closed on any evaluation error",
                ids.join(", ")
            ),
            reasons,
            errors,
            detections,
        });
    }

    match response.decision() {
        CedarDecision::Allow => Ok(Decision {
            outcome: Outcome::Allow,
            explanation: format!("allowed by {}", list_ids(&reasons)),
            reasons,
            errors,
            detections,
        }),
        CedarDecision::Deny if reasons.is_empty() => Ok(Decision {
            outcome: Outcome::Deny,
            explanation: "denied by default: no permit policy applies to this request".into(),
            reasons,
            errors,
            detections,
        }),
        CedarDecision::Deny if reasons.iter().all(|r| r.escalation) => {
            // Only escalation rules forbid: escalate if some permit applies, otherwise deny.
            let permits = authorizer.is_authorized(&cedar_request, &policies.permits, &entities);
            let permit_errors = evaluation_errors(&permits);
            if !permit_errors.is_empty() {
                return Ok(Decision {
                    outcome: Outcome::Deny,
                    explanation: "denied: policy evaluation failed; ACGS fails closed on any evaluation error".into(),
                    reasons,
                    errors: permit_errors,
                    detections,
                });
            }
            if permits.decision() == CedarDecision::Allow {
                let mut all = reasons;
                let escalation_ids = list_ids(&all);
                all.extend(reasons_of(constitution, permits.diagnostics().reason()));
                Ok(Decision {
                    outcome: Outcome::Escalate,
                    explanation: format!("needs human approval: escalation rule {escalation_ids} applies"),
                    reasons: all,
                    errors,
                    detections,
                })
            } else {
                Ok(Decision {
                    outcome: Outcome::Deny,
                    explanation: format!(
                        "denied: escalation rule {} applies but no permit policy applies",
                        list_ids(&reasons)
                    ),
                    reasons,
                    errors,
                    detections,
                })
            }
        }
        CedarDecision::Deny => {
            let hard: Vec<Reason> = reasons.into_iter().filter(|r| !r.escalation).collect();
            Ok(Decision {
                outcome: Outcome::Deny,
                explanation: format!("denied by {}", list_ids(&hard)),
                reasons: hard,
                errors,
                detections,
            })
        }
    }
}

fn reasons_of<'a>(constitution: &Constitution, ids: impl Iterator<Item = &'a cedar_policy::PolicyId>) -> Vec<Reason> {
    let mut reasons: Vec<Reason> = ids
        .filter_map(|id| constitution.policies.get(id))
        .map(|info| Reason {
            policy_id: info.id.clone(),
            principle_id: info.principle_id.clone(),
            effect: info.effect,
            escalation: info.escalation,
        })
        .collect();
    reasons.sort_by(|a, b| a.policy_id.cmp(&b.policy_id));
    reasons
}

/// A Cedar error with its causes and help text, e.g. "entity does not conform to the schema: in
/// attribute `trust_level` on `Agent::"a"`, type mismatch: ...".
fn diagnostic_chain(e: &(dyn miette::Diagnostic + 'static)) -> String {
    let mut message = e.to_string();
    let mut source = std::error::Error::source(e);
    while let Some(cause) = source {
        let text = cause.to_string();
        if !message.contains(&text) {
            message.push_str(": ");
            message.push_str(&text);
        }
        source = cause.source();
    }
    if let Some(help) = e.help() {
        message.push_str(&format!(" (help: {help})"));
    }
    message
}

fn evaluation_errors(response: &cedar_policy::Response) -> Vec<EvaluationError> {
    response
        .diagnostics()
        .errors()
        .map(|e| match e {
            cedar_policy::AuthorizationError::PolicyEvaluationError(pe) => EvaluationError {
                policy_id: pe.policy_id().to_string(),
                message: pe.inner().to_string(),
            },
        })
        .collect()
}

fn list_ids(reasons: &[Reason]) -> String {
    let ids: Vec<String> = reasons.iter().map(|r| format!("`{}`", r.policy_id)).collect();
    ids.join(", ")
}

/// The `context.detections` record: flags and kind sets per category.
fn detections_record(detections: &[Detection]) -> Result<RestrictedExpression, RequestError> {
    let kinds = |category: DetectionCategory| {
        let set: HashSet<&'static str> = detections
            .iter()
            .filter(|d| d.category == category)
            .map(|d| d.kind.as_str())
            .collect();
        set
    };
    let pii = kinds(DetectionCategory::Pii);
    let secrets = kinds(DetectionCategory::Secret);
    let injection = detections
        .iter()
        .any(|d| d.category == DetectionCategory::PromptInjection);
    let string_set = |set: HashSet<&'static str>| {
        RestrictedExpression::new_set(set.into_iter().map(|k| RestrictedExpression::new_string(k.to_owned())))
    };
    RestrictedExpression::new_record([
        ("pii".to_owned(), RestrictedExpression::new_bool(!pii.is_empty())),
        (
            "secrets".to_owned(),
            RestrictedExpression::new_bool(!secrets.is_empty()),
        ),
        ("prompt_injection".to_owned(), RestrictedExpression::new_bool(injection)),
        ("pii_kinds".to_owned(), string_set(pii)),
        ("secret_kinds".to_owned(), string_set(secrets)),
    ])
    .map_err(|e| RequestError::InvalidValue {
        path: "context.detections".into(),
        message: e.to_string(),
    })
}
