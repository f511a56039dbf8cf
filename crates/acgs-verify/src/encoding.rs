//! ACGS's decision semantics as Cedar policy sets the symbolic compiler can reason about.
//!
//! The engine decides a request from three groups of the policies that can apply to its action: permits `P`, hard
//! forbids `H` (a plain `forbid`) and escalation rules `E` (a `forbid` annotated `@escalate`). With no evaluation
//! error, it
//! - allows exactly when Cedar's authorizer over `A = P ∪ H ∪ E` allows (some permit applies, no forbid does);
//! - allows or escalates exactly when Cedar over `R = P ∪ H` allows (some permit applies, no hard forbid does),
//!   so it escalates when `R` allows and `A` does not, and denies when `R` does not allow.
//!
//! Any evaluation error makes the engine deny, where Cedar would skip the failing policy. So a request the engine
//! allows or escalates is one Cedar allows over `A` or `R`; the converse holds when no policy errors, which the
//! `never_errors` checks prove policy by policy. `docs/verification.md` states what follows for each check.
//!
//! Requests range over every request the schema allows for each request environment (principal type, action,
//! resource type), except for `context.detections`, which the engine fills itself: the well-formedness rule `W`
//! (a forbid, added to the set whose requests are enumerated) keeps only findings the detectors can produce —
//! kinds from their lists, `pii` exactly when some PII kind was found, `secrets` exactly when some secret kind
//! was.

use std::collections::HashMap;

use acgs_engine::{Constitution, DetectionCategory, DetectionKind, PolicyEffect};
use cedar_policy::{Effect, Policy, PolicyId, PolicySet, RequestEnv, Schema};
use cedar_policy_symcc::{CompiledPolicy, CompiledPolicySet};

use crate::VerifyError;

/// Id of the well-formedness rule for `context.detections`.
pub(crate) const WELL_FORMED_ID: &str = "acgs.detections-well-formed";
/// Id of the placeholder that makes a set allow nothing (a sole `forbid` that always applies).
const NOTHING_ID: &str = "acgs.nothing";
/// Id of the policy that makes a set allow every request.
const EVERYTHING_ID: &str = "acgs.everything";

/// The constitution's policies parsed once, by id.
pub(crate) struct ParsedPolicies {
    by_id: HashMap<String, Policy>,
}

impl ParsedPolicies {
    pub(crate) fn new(constitution: &Constitution) -> Result<Self, VerifyError> {
        let mut by_id = HashMap::new();
        for info in constitution.policies() {
            let policy = Policy::parse(Some(PolicyId::new(&info.id)), &info.cedar)
                .map_err(|e| VerifyError::Encoding(format!("policy `{}`: {e}", info.id)))?;
            by_id.insert(info.id.clone(), policy);
        }
        Ok(Self { by_id })
    }

    pub(crate) fn get(&self, id: &str) -> Option<&Policy> {
        self.by_id.get(id)
    }
}

/// One request environment with the constitution's policies for its action, grouped as the engine uses them.
#[derive(Clone)]
pub(crate) struct EnvPolicies {
    /// Principal type, action, resource type.
    pub(crate) env: RequestEnv,
    /// The action's uid text, `Action::"id"`.
    pub(crate) action: String,
    /// Permits.
    pub(crate) permits: Vec<Policy>,
    /// Plain forbids.
    pub(crate) hard: Vec<Policy>,
    /// `@escalate` forbids.
    pub(crate) escalations: Vec<Policy>,
    /// The detections well-formedness rule, for actions whose context has `detections`.
    pub(crate) well_formed: Option<Policy>,
}

impl EnvPolicies {
    /// Every request environment of `constitution`'s schema, with its policies; sorted by action, then types.
    pub(crate) fn all(constitution: &Constitution, parsed: &ParsedPolicies) -> Result<Vec<Self>, VerifyError> {
        let mut out = Vec::new();
        for env in constitution.schema().request_envs() {
            out.push(Self::for_env(constitution, parsed, env)?);
        }
        out.sort_by_key(|e| {
            (
                e.action.clone(),
                e.env.principal().to_string(),
                e.env.resource().to_string(),
            )
        });
        Ok(out)
    }

    /// The policies of `constitution` for `env` (whose action need not be declared by it: then it has none).
    pub(crate) fn for_env(
        constitution: &Constitution,
        parsed: &ParsedPolicies,
        env: RequestEnv,
    ) -> Result<Self, VerifyError> {
        let action = env.action().to_string();
        let mut group = Self {
            env,
            action: action.clone(),
            permits: Vec::new(),
            hard: Vec::new(),
            escalations: Vec::new(),
            well_formed: None,
        };
        if let Some(infos) = constitution.action_policies(&action) {
            for info in infos {
                let policy = parsed
                    .get(&info.id)
                    .ok_or_else(|| VerifyError::Encoding(format!("policy `{}` not parsed", info.id)))?
                    .clone();
                match (info.effect, info.escalation) {
                    (PolicyEffect::Permit, _) => group.permits.push(policy),
                    (PolicyEffect::Forbid, false) => group.hard.push(policy),
                    (PolicyEffect::Forbid, true) => group.escalations.push(policy),
                }
            }
        }
        Ok(group)
    }

    /// Add the well-formedness rule if the engine fills `detections` for this action in `constitution`.
    pub(crate) fn with_well_formedness(mut self, constitution: &Constitution) -> Result<Self, VerifyError> {
        if constitution.action_wants_detections(&self.action) == Some(true) {
            self.well_formed = Some(well_formed_rule(&self.action)?);
        }
        Ok(self)
    }

    /// Every policy of the action, in permit, hard, escalation order.
    pub(crate) fn all_policies(&self) -> impl Iterator<Item = &Policy> {
        self.permits.iter().chain(&self.hard).chain(&self.escalations)
    }

    /// `A`: what the engine allows outright.
    pub(crate) fn allow_set(&self) -> Vec<Policy> {
        self.all_policies().cloned().collect()
    }

    /// `R`: what the engine allows or escalates.
    pub(crate) fn pass_set(&self) -> Vec<Policy> {
        self.permits.iter().chain(&self.hard).cloned().collect()
    }

    /// `set` restricted to well-formed requests (adds `W`).
    pub(crate) fn well_formed(&self, mut set: Vec<Policy>) -> Vec<Policy> {
        if let Some(w) = &self.well_formed {
            set.push(w.clone());
        }
        set
    }

    /// The requests `matching` describes (every request when `None`), well-formed.
    pub(crate) fn domain(&self, matching: Option<&Policy>) -> Vec<Policy> {
        let base = match matching {
            Some(m) => m.clone(),
            None => everything(),
        };
        self.well_formed(vec![base])
    }

    /// Compile `set` for this environment (an empty set becomes one that allows nothing).
    pub(crate) fn compile_set(&self, schema: &Schema, set: Vec<Policy>) -> Result<CompiledPolicySet, VerifyError> {
        let set = if set.is_empty() { vec![nothing()] } else { set };
        let pset = PolicySet::from_policies(set).map_err(|e| VerifyError::Encoding(e.to_string()))?;
        CompiledPolicySet::compile(&pset, &self.env, schema).map_err(|e| VerifyError::Encoding(e.to_string()))
    }

    /// Compile one policy for this environment.
    pub(crate) fn compile_policy(&self, schema: &Schema, policy: &Policy) -> Result<CompiledPolicy, VerifyError> {
        CompiledPolicy::compile(policy, &self.env, schema).map_err(|e| VerifyError::Encoding(e.to_string()))
    }
}

/// `policy` with its effect turned into `permit`: Cedar allows with it alone exactly the requests it applies to.
pub(crate) fn as_permit(policy: &Policy) -> Result<Policy, VerifyError> {
    if policy.effect() == Effect::Permit {
        return Ok(policy.clone());
    }
    let mut json = policy.to_json().map_err(|e| VerifyError::Encoding(e.to_string()))?;
    if let Some(obj) = json.as_object_mut() {
        obj.insert("effect".into(), serde_json::Value::from("permit"));
    }
    Policy::from_json(Some(policy.id().clone()), json).map_err(|e| VerifyError::Encoding(e.to_string()))
}

/// A policy set entry that applies to every request (`permit` with no scope or condition).
fn everything() -> Policy {
    fixed(EVERYTHING_ID, "permit (principal, action, resource);")
}

/// A sole forbid that applies to every request: the set allows nothing, as an empty set would.
fn nothing() -> Policy {
    fixed(NOTHING_ID, "forbid (principal, action, resource);")
}

#[expect(clippy::expect_used, reason = "constant, valid Cedar policies")]
fn fixed(id: &str, text: &str) -> Policy {
    Policy::parse(Some(PolicyId::new(id)), text).expect("constant policy parses")
}

/// The kinds the detectors report for one category, as Cedar string literals in a set.
fn kinds_literal(category: DetectionCategory) -> String {
    let kinds: Vec<String> = DetectionKind::ALL
        .iter()
        .filter(|k| k.category() == category)
        .map(|k| format!("\"{}\"", k.as_str()))
        .collect();
    format!("[{}]", kinds.join(", "))
}

/// `W` for one action: forbids every request whose `detections` the engine could not have produced.
fn well_formed_rule(action: &str) -> Result<Policy, VerifyError> {
    let pii = kinds_literal(DetectionCategory::Pii);
    let secrets = kinds_literal(DetectionCategory::Secret);
    let text = format!(
        "forbid (principal, action == {action}, resource) when {{\n  \
           !({pii}.containsAll(context.detections.pii_kinds)) ||\n  \
           !({secrets}.containsAll(context.detections.secret_kinds)) ||\n  \
           context.detections.pii != context.detections.pii_kinds.containsAny({pii}) ||\n  \
           context.detections.secrets != context.detections.secret_kinds.containsAny({secrets})\n}};"
    );
    Policy::parse(Some(PolicyId::new(WELL_FORMED_ID)), text).map_err(|e| VerifyError::Encoding(e.to_string()))
}

/// Shared, parsed inputs of one run over a constitution.
pub(crate) struct Subject<'c> {
    pub(crate) constitution: &'c Constitution,
    pub(crate) parsed: ParsedPolicies,
    pub(crate) envs: Vec<EnvPolicies>,
}

impl<'c> Subject<'c> {
    pub(crate) fn new(constitution: &'c Constitution) -> Result<Self, VerifyError> {
        let parsed = ParsedPolicies::new(constitution)?;
        let envs = EnvPolicies::all(constitution, &parsed)?
            .into_iter()
            .map(|e| e.with_well_formedness(constitution))
            .collect::<Result<Vec<_>, _>>()?;
        Ok(Self {
            constitution,
            parsed,
            envs,
        })
    }
}
