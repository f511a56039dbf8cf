//! The decision function: a request and a constitution in, `allow` / `deny` / `escalate` out, with the
//! policies and principles that decided it. Pure and synchronous; no I/O.
//!
//! Semantics (documented in `docs/constitution.md`):
//! - default deny: nothing permits, the answer is `deny`;
//! - `forbid` beats `permit`;
//! - a `forbid` annotated `@escalate` yields `escalate` when no other forbid applies and some permit does;
//! - any policy evaluation error makes the decision `deny` (Cedar skips erroring policies; we fail closed).

use std::collections::{BTreeMap, BTreeSet, HashMap, HashSet};
use std::sync::Arc;

use cedar_policy_core::ast::{
    Context as CedarContext, Entity, EntityUID, EntityUIDEntry, Literal, PartialValue, Request as CedarRequest,
    SlotEnv, Value, ValueKind,
};
use cedar_policy_core::entities::{NoEntitiesSchema, TCComputation};
use cedar_policy_core::evaluator::Evaluator;
use cedar_policy_core::extensions::Extensions;
use serde::{Deserialize, Serialize};
use smol_str::SmolStr;

use crate::constitution::{Constitution, DETECTIONS_ATTRIBUTE, USAGE_ATTRIBUTE};
use crate::detectors::{Detection, DetectionCategory, Detectors};
use crate::document::Outcome;
use crate::error::RequestError;
use crate::registry::Registry;
use crate::request::{DecisionRequest, MAX_ANCESTOR_LINKS, MAX_HIERARCHY_DEPTH, MAX_REQUEST_ENTITIES};
use crate::shapes::CheckedEntity;

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
}

impl Engine {
    /// Build an engine for a constitution.
    pub fn new(constitution: Arc<Constitution>) -> Self {
        Self {
            constitution,
            detectors: Detectors::new(),
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

    /// Decide one request whose facts all come from the request (an empty registry), for an action that reads no
    /// counters.
    pub fn decide(&self, request: &DecisionRequest) -> Result<Decision, RequestError> {
        decide(
            &self.constitution,
            &self.detectors,
            request,
            &Registry::default(),
            &Usage::new(),
        )
    }

    /// Decide one request with the facts of `registry` (compiled for this engine's constitution) and the values
    /// of the counters its action reads (`usage`, by counter name).
    pub fn decide_with(
        &self,
        request: &DecisionRequest,
        registry: &Registry,
        usage: &Usage,
    ) -> Result<Decision, RequestError> {
        decide(&self.constitution, &self.detectors, request, registry, usage)
    }
}

/// Decide one request against a constitution (see the module docs for the semantics).
///
/// The request is checked against the schema while its values are converted (`shapes`), the facts of entities
/// whose type's source is the registry come from `registry` (`registry.rs`), its entities join the action's own
/// entity store, and Cedar's evaluator evaluates the condition of every policy that can apply to
/// the action; the outcome is then derived from which policies applied or failed.
pub fn decide(
    constitution: &Constitution,
    detectors: &Detectors,
    request: &DecisionRequest,
    registry: &Registry,
    usage: &Usage,
) -> Result<Decision, RequestError> {
    let action = constitution
        .actions
        .get(&request.action)
        .ok_or_else(|| RequestError::UnknownAction(request.action.clone()))?;
    if request.context.contains_key(DETECTIONS_ATTRIBUTE) {
        return Err(RequestError::ReservedContext);
    }
    if action.wants_usage && request.context.contains_key(USAGE_ATTRIBUTE) {
        return Err(RequestError::ReservedUsage);
    }
    if request.entities.len() > MAX_REQUEST_ENTITIES {
        return Err(RequestError::Entities(format!(
            "{} entities supplied; at most {MAX_REQUEST_ENTITIES} are accepted per request",
            request.entities.len()
        )));
    }
    let shapes = &constitution.shapes;

    let detections = match &request.content {
        Some(text) if !text.is_empty() => detectors.scan(text),
        _ => Vec::new(),
    };

    let principal = shapes.uid(&request.principal.entity_type, &request.principal.id, "principal")?;
    let resource = shapes.uid(&request.resource.entity_type, &request.resource.id, "resource")?;
    for (role, uid, allowed) in [
        ("principal", &principal, &action.shape.principal_types),
        ("resource", &resource, &action.shape.resource_types),
    ] {
        if !allowed.contains(uid.entity_type()) {
            let mut expected: Vec<String> = allowed.iter().map(ToString::to_string).collect();
            expected.sort();
            return Err(RequestError::Schema(format!(
                "{role} type `{}` is not valid for action `{}` (expected {})",
                uid.entity_type(),
                request.action,
                if expected.is_empty() {
                    "none: the action applies to no type".to_owned()
                } else {
                    expected.join(" or ")
                }
            )));
        }
    }

    let mut context = shapes.context(&request.context, &action.shape)?;
    if action.wants_usage {
        let mut record = BTreeMap::new();
        for counter in &action.counters {
            let value = usage
                .get(&counter.name)
                .ok_or_else(|| RequestError::MissingUsage(counter.name.clone()))?;
            record.insert(SmolStr::from(counter.name.as_str()), Value::from(*value));
        }
        context.insert(SmolStr::new_static(USAGE_ATTRIBUTE), Value::record(record, None));
    }
    if action.wants_detections {
        context.insert(
            SmolStr::new_static(DETECTIONS_ATTRIBUTE),
            detections_record(&detections),
        );
    }

    let checked =
        crate::registry::request_entities(constitution, registry, request, (&principal, &resource), &context)?;
    let entities = action
        .action_store
        .clone()
        .add_entities(
            close_hierarchy(checked)?,
            None::<&NoEntitiesSchema>,
            TCComputation::AssumeAlreadyComputed,
            Extensions::all_available(),
        )
        .map_err(|e| RequestError::Entities(e.to_string()))?;

    let cedar_request = CedarRequest::new_unchecked(
        EntityUIDEntry::known(principal, None),
        EntityUIDEntry::known(action.uid.clone(), None),
        EntityUIDEntry::known(resource, None),
        Some(CedarContext::Value(Arc::new(context))),
    );
    let evaluator = Evaluator::new(cedar_request, &entities, Extensions::all_available());
    let no_slots = SlotEnv::new();
    let mut forbids = Vec::new();
    let mut permits = Vec::new();
    let mut errors = Vec::new();
    for policy in &action.policies {
        match evaluator.interpret(&policy.condition, &no_slots) {
            Ok(value) => match value.value_kind() {
                ValueKind::Lit(Literal::Bool(true)) => match policy.reason.effect {
                    PolicyEffect::Permit => permits.push(policy.reason.clone()),
                    PolicyEffect::Forbid => forbids.push(policy.reason.clone()),
                },
                ValueKind::Lit(Literal::Bool(false)) => {}
                other => errors.push(EvaluationError {
                    policy_id: policy.reason.policy_id.clone(),
                    message: format!("condition evaluated to {other}, not a boolean"),
                }),
            },
            Err(e) => errors.push(EvaluationError {
                policy_id: policy.reason.policy_id.clone(),
                message: e.to_string(),
            }),
        }
    }
    Ok(outcome(forbids, permits, errors, detections))
}

/// Decide a request written with every fact in it (a constitution's test case, a verifier's counterexample): the
/// facts it states about entities whose type's source is the registry stand for what the registry holds
/// ([`crate::split_registry_facts`]).
pub fn decide_fixture(
    constitution: &Constitution,
    detectors: &Detectors,
    request: &DecisionRequest,
) -> Result<Decision, RequestError> {
    let (request, registry, usage) = fixture_parts(constitution, request)?;
    decide(constitution, detectors, &request, &registry, &usage)
}

/// A request written with every fact in it split into what a caller sends, what the registry holds
/// ([`crate::split_registry_facts`]) and the counters' values its `context.usage` states (a counter it does not
/// give is 0).
pub fn fixture_parts(
    constitution: &Constitution,
    request: &DecisionRequest,
) -> Result<(DecisionRequest, Registry, Usage), RequestError> {
    let (mut request, registry) = crate::registry::split_registry_facts(constitution, request)?;
    let mut usage = Usage::new();
    let counters = constitution.counters_for(&request.action);
    if !counters.is_empty() {
        let stated = request.context.remove(USAGE_ATTRIBUTE);
        for counter in counters {
            let value = stated
                .as_ref()
                .and_then(|u| u.get(&counter.name))
                .and_then(serde_json::Value::as_i64)
                .unwrap_or(0);
            usage.insert(counter.name.clone(), value);
        }
    }
    Ok((request, registry, usage))
}

/// The values of the counters an action reads, by counter name (`context.usage`).
pub type Usage = std::collections::BTreeMap<String, i64>;

/// The decision from the policies that applied and the ones that failed to evaluate.
fn outcome(
    forbids: Vec<Reason>,
    permits: Vec<Reason>,
    errors: Vec<EvaluationError>,
    detections: Vec<Detection>,
) -> Decision {
    if !errors.is_empty() {
        let ids: Vec<&str> = errors.iter().map(|e| e.policy_id.as_str()).collect();
        // Only forbids that applied explain a denial; permits that applied did not decide it.
        return Decision {
            outcome: Outcome::Deny,
            explanation: format!(
                "denied: policy evaluation failed ({}); ACGS fails closed on any evaluation error",
                ids.join(", ")
            ),
            reasons: forbids,
            errors,
            detections,
        };
    }
    let hard: Vec<Reason> = forbids.iter().filter(|r| !r.escalation).cloned().collect();
    if !hard.is_empty() {
        return Decision {
            outcome: Outcome::Deny,
            explanation: format!("denied by {}", list_ids(&hard)),
            reasons: hard,
            errors,
            detections,
        };
    }
    match (forbids.is_empty(), permits.is_empty()) {
        (true, true) => Decision {
            outcome: Outcome::Deny,
            explanation: "denied by default: no permit policy applies to this request".into(),
            reasons: Vec::new(),
            errors,
            detections,
        },
        (true, false) => Decision {
            outcome: Outcome::Allow,
            explanation: format!("allowed by {}", list_ids(&permits)),
            reasons: permits,
            errors,
            detections,
        },
        // Only escalation rules forbid: escalate if some permit applies, otherwise deny.
        (false, false) => {
            let explanation = format!("needs human approval: escalation rule {} applies", list_ids(&forbids));
            let mut reasons = forbids;
            reasons.extend(permits);
            Decision {
                outcome: Outcome::Escalate,
                explanation,
                reasons,
                errors,
                detections,
            }
        }
        (false, true) => Decision {
            outcome: Outcome::Deny,
            explanation: format!(
                "denied: escalation rule {} applies but no permit policy applies",
                list_ids(&forbids)
            ),
            reasons: forbids,
            errors,
            detections,
        },
    }
}

/// Turn checked entities into Cedar entities with their hierarchy closed transitively (an entity's ancestors are
/// its parents, their parents, and so on, through the entities of this request). A cycle is an error, and so is a
/// hierarchy deeper than [`MAX_HIERARCHY_DEPTH`] or one whose closure holds more than [`MAX_ANCESTOR_LINKS`].
///
/// Cedar stores every entity's full ancestor set, so the closure is as large as the sum of those sets, which is
/// quadratic for a long chain (n(n-1)/2 links for n entities). The two limits bound that size; [`Hierarchy`]
/// computes each entity's set once, from its parents' sets, and stops as soon as a limit is passed, so the work
/// of any request stays within a small bound (measured in `benches/hierarchy.rs`).
fn close_hierarchy(checked: Vec<CheckedEntity>) -> Result<Vec<Arc<Entity>>, RequestError> {
    let (keep, indirect) = {
        let hierarchy = Hierarchy::new(&checked)?;
        let indirect = hierarchy.indirect_ancestors()?;
        (hierarchy.keep, indirect)
    };
    Ok(checked
        .into_iter()
        .zip(keep)
        .filter_map(|(e, keep)| keep.then_some(e))
        .zip(indirect)
        .map(|(e, indirect)| {
            Arc::new(Entity::new_with_attr_partial_value(
                e.uid,
                e.attributes.into_iter().map(|(k, v)| (k, PartialValue::Value(v))),
                indirect,
                e.parents,
                std::iter::empty(),
            ))
        })
        .collect())
}

/// The parent graph of a request's entities, numbered: `0..n` are the distinct entities supplied (principal,
/// resource, `entities`), in request order; `n..` are parents that are referenced but not supplied (they have no
/// known parents of their own).
struct Hierarchy<'a> {
    /// Every node's uid.
    uids: Vec<&'a EntityUID>,
    /// The direct parents of each supplied node.
    parents: Vec<Vec<usize>>,
    /// For each checked entity, whether it is the first copy of its uid (later identical copies are dropped).
    keep: Vec<bool>,
}

/// Where a supplied node is in the depth-first search.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Visit {
    /// Not reached yet.
    New,
    /// On the search path: its ancestors are being computed, so meeting it again is a cycle.
    Open,
    /// Its depth and ancestors are known.
    Done,
}

impl<'a> Hierarchy<'a> {
    /// Number the entities and their parents. The same entity may be supplied twice if both copies are identical
    /// (as Cedar allows); otherwise it is ambiguous which one the policies should see.
    fn new(checked: &'a [CheckedEntity]) -> Result<Self, RequestError> {
        let mut index: HashMap<&EntityUID, usize> = HashMap::with_capacity(checked.len());
        let mut uids = Vec::with_capacity(checked.len());
        let mut first = Vec::with_capacity(checked.len());
        let mut keep = Vec::with_capacity(checked.len());
        for (i, e) in checked.iter().enumerate() {
            match index.get(&e.uid) {
                None => {
                    index.insert(&e.uid, uids.len());
                    uids.push(&e.uid);
                    first.push(i);
                    keep.push(true);
                }
                Some(&node)
                    if checked[first[node]].attributes == e.attributes && checked[first[node]].parents == e.parents =>
                {
                    keep.push(false);
                }
                Some(_) => {
                    return Err(RequestError::Entities(format!(
                        "entity `{}` is supplied twice with different attributes or parents",
                        e.uid
                    )));
                }
            }
        }
        let parents = first
            .iter()
            .map(|&i| {
                checked[i]
                    .parents
                    .iter()
                    .map(|parent| {
                        *index.entry(parent).or_insert_with(|| {
                            uids.push(parent);
                            uids.len() - 1
                        })
                    })
                    .collect()
            })
            .collect();
        Ok(Self { uids, parents, keep })
    }

    /// Each supplied entity's indirect ancestors (its ancestors that are not direct parents), in node order.
    ///
    /// Depth-first search in post-order: when a node is finished its parents are, so its depth is one more than
    /// its deepest parent's and its ancestors are its parents and their ancestors. A parent already among the
    /// ancestors (through another parent) brings no new ones and is not merged again. Stops at a cycle, at a
    /// node deeper than [`MAX_HIERARCHY_DEPTH`], and when the ancestor sets reach [`MAX_ANCESTOR_LINKS`] in all.
    /// Iterative, so a long chain cannot exhaust the stack.
    fn indirect_ancestors(&self) -> Result<Vec<HashSet<EntityUID>>, RequestError> {
        let n = self.parents.len();
        let mut visit = vec![Visit::New; n];
        let mut depth = vec![0usize; n];
        let mut ancestors: Vec<Vec<usize>> = vec![Vec::new(); n];
        // `mark[a] == v`: node `a` is already in the ancestor set being built for `v`.
        let mut mark = vec![usize::MAX; self.uids.len()];
        let mut links = 0usize;
        let mut path: Vec<(usize, usize)> = Vec::new();
        for root in 0..n {
            if visit[root] != Visit::New {
                continue;
            }
            visit[root] = Visit::Open;
            path.push((root, 0));
            while let Some((node, next)) = path.last_mut() {
                let node = *node;
                if let Some(&parent) = self.parents[node].get(*next) {
                    *next += 1;
                    if parent < n {
                        match visit[parent] {
                            Visit::New => {
                                visit[parent] = Visit::Open;
                                path.push((parent, 0));
                            }
                            Visit::Open => {
                                return Err(RequestError::Entities(format!(
                                    "entity `{}` is its own ancestor (the parents form a cycle)",
                                    self.uids[parent]
                                )));
                            }
                            Visit::Done => {}
                        }
                    }
                    continue;
                }
                path.pop();
                let deepest = self.parents[node]
                    .iter()
                    .map(|&p| if p < n { depth[p] + 1 } else { 1 })
                    .max()
                    .unwrap_or(0);
                if deepest > MAX_HIERARCHY_DEPTH {
                    return Err(RequestError::Entities(format!(
                        "entity `{}` has {deepest} levels of ancestors above it; the entity hierarchy may be at most \
                         {MAX_HIERARCHY_DEPTH} levels deep",
                        self.uids[node]
                    )));
                }
                let mut set = Vec::new();
                for &parent in &self.parents[node] {
                    if mark[parent] == node {
                        continue;
                    }
                    mark[parent] = node;
                    set.push(parent);
                    if parent < n {
                        for &a in &ancestors[parent] {
                            if mark[a] != node {
                                mark[a] = node;
                                set.push(a);
                            }
                        }
                    }
                    if links + set.len() > MAX_ANCESTOR_LINKS {
                        return Err(RequestError::Entities(format!(
                            "the entity hierarchy has more than {MAX_ANCESTOR_LINKS} ancestor links (counting each \
                             entity's direct and indirect ancestors; passed at entity `{}`); at most \
                             {MAX_ANCESTOR_LINKS} are accepted per request",
                            self.uids[node]
                        )));
                    }
                }
                links += set.len();
                depth[node] = deepest;
                ancestors[node] = set;
                visit[node] = Visit::Done;
            }
        }
        // Cedar keeps the direct parents apart from the indirect ancestors; `direct[a] == v`: `a` is a parent of `v`.
        let mut direct = vec![usize::MAX; self.uids.len()];
        Ok(ancestors
            .iter()
            .enumerate()
            .map(|(node, set)| {
                for &parent in &self.parents[node] {
                    direct[parent] = node;
                }
                let mut indirect = HashSet::with_capacity(set.len() - self.parents[node].len());
                indirect.extend(
                    set.iter()
                        .filter(|&&a| direct[a] != node)
                        .map(|&a| self.uids[a].clone()),
                );
                indirect
            })
            .collect())
    }
}

fn list_ids(reasons: &[Reason]) -> String {
    let ids: Vec<String> = reasons.iter().map(|r| format!("`{}`", r.policy_id)).collect();
    ids.join(", ")
}

/// The `context.detections` record: flags and kind sets per category.
fn detections_record(detections: &[Detection]) -> Value {
    let kinds = |category: DetectionCategory| {
        let set: BTreeSet<&'static str> = detections
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
    let string_set = |set: BTreeSet<&'static str>| Value::set(set.into_iter().map(Value::from), None);
    Value::record(
        [
            ("pii", Value::from(!pii.is_empty())),
            ("secrets", Value::from(!secrets.is_empty())),
            ("prompt_injection", Value::from(injection)),
            ("pii_kinds", string_set(pii)),
            ("secret_kinds", string_set(secrets)),
        ],
        None,
    )
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)]

    use std::collections::{BTreeMap, HashSet};

    use cedar_policy_core::ast::EntityUID;
    use rand::rngs::StdRng;
    use rand::{Rng, SeedableRng};

    use super::{CheckedEntity, close_hierarchy};

    fn role(i: usize) -> EntityUID {
        EntityUID::with_eid_and_type("Role", &format!("r{i}")).unwrap()
    }

    /// Every ancestor of `start` by walking its parents, as the closure was computed before it was memoised.
    fn walk(
        parents: &[HashSet<EntityUID>],
        index: &dyn Fn(&EntityUID) -> Option<usize>,
        start: usize,
    ) -> HashSet<EntityUID> {
        let mut seen: HashSet<EntityUID> = HashSet::new();
        let mut pending: Vec<&EntityUID> = parents[start].iter().collect();
        while let Some(uid) = pending.pop() {
            if seen.insert(uid.clone())
                && let Some(i) = index(uid)
            {
                pending.extend(parents[i].iter());
            }
        }
        seen
    }

    /// Random DAGs (edges only from lower to higher numbers, some parents not supplied): each entity's
    /// ancestors are exactly those a walk finds, split into its parents and the indirect rest.
    #[test]
    fn memoised_closure_matches_a_walk_on_random_dags() {
        let mut rng = StdRng::seed_from_u64(7);
        for _ in 0..200 {
            let n = rng.random_range(1..40);
            let supplied = rng.random_range(1..=n);
            let parents: Vec<HashSet<EntityUID>> = (0..supplied)
                .map(|i| {
                    // Parents are numbered higher (no cycles); those from `supplied` on are referenced but not supplied.
                    let count = if i + 1 < n { rng.random_range(0..4) } else { 0 };
                    (0..count).map(|_| role(rng.random_range(i + 1..n))).collect()
                })
                .collect();
            let checked: Vec<CheckedEntity> = parents
                .iter()
                .enumerate()
                .map(|(i, p)| CheckedEntity {
                    uid: role(i),
                    attributes: BTreeMap::new(),
                    parents: p.clone(),
                })
                .collect();
            let index = |uid: &EntityUID| (0..supplied).find(|&i| role(i) == *uid);
            let closed = close_hierarchy(checked).unwrap();
            assert_eq!(closed.len(), supplied);
            for (i, entity) in closed.iter().enumerate() {
                assert_eq!(*entity.uid(), role(i));
                let all: HashSet<EntityUID> = entity.ancestors().cloned().collect();
                assert_eq!(all, walk(&parents, &index, i), "ancestors of r{i}");
                let indirect: HashSet<&EntityUID> = entity.indirect_ancestors().collect();
                assert!(
                    parents[i].iter().all(|p| !indirect.contains(p)),
                    "r{i}: a parent is also indirect"
                );
            }
        }
    }
}
