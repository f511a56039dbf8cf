//! Checks a parsed constitution document and compiles it: ids, principles, schema, Cedar policies and
//! invariants validated (every problem reported with its line in the TOML file), then each action's policies
//! compiled into one ready-to-evaluate [`CompiledAction`].

use std::collections::{HashMap, HashSet};
use std::sync::Arc;

use cedar_policy::{
    ActionConstraint, Effect, EntityUid, Policy, PolicyId, PolicySet, Schema, ValidationMode, Validator,
};
use miette::Diagnostic;

use super::detections::detections_declarations;
use super::{
    CompiledAction, CompiledInvariant, CompiledPolicy, Constitution, DETECTIONS_ATTRIBUTE, ESCALATE_ANNOTATION,
    PolicyInfo,
};
use crate::decision::{PolicyEffect, Reason};
use crate::document::{ConstitutionDocument, InvariantKind};
use crate::error::{LoadError, Problem, ProblemKind};
use crate::governance::Governance;
use crate::hash::hash_document;
use crate::shapes::Shapes;

use super::counters::{ActionContext, Counters, USAGE_ATTRIBUTE};
use super::entity_sources::EntitySources;

/// 1-based line number of a byte offset.
pub(super) fn line_of(text: &str, offset: usize) -> usize {
    text.as_bytes()[..offset.min(text.len())]
        .iter()
        .filter(|b| **b == b'\n')
        .count()
        + 1
}

/// Line of the first character of a TOML string value whose span is `span`.
fn content_start_line(text: &str, span: std::ops::Range<usize>) -> usize {
    let raw = text.get(span.clone()).unwrap_or("");
    let mut line = line_of(text, span.start);
    // Multi-line strings (`'''` / `"""`) drop a newline directly after the opening delimiter.
    if (raw.starts_with("'''") || raw.starts_with("\"\"\"")) && raw[3..].starts_with(['\n', '\r']) {
        line += 1;
    }
    line
}

/// Offset of the first labelled source location of a Cedar diagnostic.
fn first_label_offset(d: &dyn Diagnostic) -> Option<usize> {
    let mut labels = d.labels()?;
    labels.next().map(|l| l.offset())
}

/// Full message of a Cedar diagnostic including its help text.
fn diagnostic_message(d: &(impl Diagnostic + std::fmt::Display + ?Sized)) -> String {
    let mut msg = d.to_string();
    if let Some(help) = d.help() {
        msg.push_str(&format!(" (help: {help})"));
    }
    msg
}

/// A Cedar text and the span of the TOML string it was written in.
type CedarAt<'d> = (std::ops::Range<usize>, &'d str);

/// Collects the problems of one document while it is checked and compiled.
pub(super) struct Compiler<'a> {
    text: &'a str,
    source_name: &'a str,
    problems: Vec<Problem>,
}

impl<'a> Compiler<'a> {
    pub(super) fn new(text: &'a str, source_name: &'a str) -> Self {
        Self {
            text,
            source_name,
            problems: Vec::new(),
        }
    }

    fn problem(
        &mut self,
        kind: ProblemKind,
        line: Option<usize>,
        subject: impl Into<String>,
        message: impl Into<String>,
    ) {
        self.problems.push(Problem {
            kind,
            line,
            subject: subject.into(),
            message: message.into(),
        });
    }

    /// Line of a position inside a Cedar text embedded at `span` of the TOML file.
    fn cedar_line(&self, span: std::ops::Range<usize>, cedar: &str, offset: Option<usize>) -> usize {
        let start = content_start_line(self.text, span);
        match offset {
            Some(off) => start + line_of(cedar, off) - 1,
            None => start,
        }
    }

    pub(super) fn compile(mut self, document: ConstitutionDocument) -> Result<Constitution, LoadError> {
        self.check_ids(&document);
        let governance = self.check_governance(&document);

        // Schema.
        let schema_text = document.schema.cedar.get_ref().as_str();
        let schema_span = document.schema.cedar.span();
        let mut warnings = Vec::new();
        let schema = match Schema::from_cedarschema_str(schema_text) {
            Ok((schema, schema_warnings)) => {
                for w in schema_warnings {
                    let line = self.cedar_line(schema_span.clone(), schema_text, first_label_offset(&w));
                    warnings.push(Problem {
                        kind: ProblemKind::Schema,
                        line: Some(line),
                        subject: "schema".into(),
                        message: diagnostic_message(&w),
                    });
                }
                Some(schema)
            }
            Err(e) => {
                let line = self.cedar_line(schema_span.clone(), schema_text, first_label_offset(&e));
                self.problem(ProblemKind::Schema, Some(line), "schema", diagnostic_message(&e));
                None
            }
        };

        // Policies.
        let principle_ids: HashSet<&str> = document.principles.iter().map(|p| p.id.as_str()).collect();
        let mut policies = HashMap::new();
        let mut policy_order = Vec::new();
        let mut parsed: Vec<(Policy, std::ops::Range<usize>, &str)> = Vec::new();
        for entry in &document.policies {
            let id = entry.id.get_ref();
            let subject = format!("policy `{id}`");
            let id_line = line_of(self.text, entry.id.span().start);
            if !principle_ids.contains(entry.principle.as_str()) {
                self.problem(
                    ProblemKind::UnknownPrinciple,
                    Some(id_line),
                    &subject,
                    format!("names principle `{}`, which is not defined", entry.principle),
                );
            }
            let cedar = entry.cedar.get_ref();
            let policy = match Policy::parse(Some(PolicyId::new(id)), cedar) {
                Ok(p) => p,
                Err(e) => {
                    let line = self.cedar_line(entry.cedar.span(), cedar, first_label_offset(&e));
                    self.problem(ProblemKind::PolicyParse, Some(line), &subject, diagnostic_message(&e));
                    continue;
                }
            };
            let escalation = policy.annotation(ESCALATE_ANNOTATION).is_some();
            if escalation && policy.effect() == Effect::Permit {
                self.problem(
                    ProblemKind::EscalateOnPermit,
                    Some(id_line),
                    &subject,
                    "`@escalate` marks a forbid as an escalation rule; it is not allowed on a permit",
                );
            }
            policies.insert(
                PolicyId::new(id),
                PolicyInfo {
                    id: id.clone(),
                    principle_id: entry.principle.clone(),
                    effect: match policy.effect() {
                        Effect::Permit => PolicyEffect::Permit,
                        Effect::Forbid => PolicyEffect::Forbid,
                    },
                    escalation,
                    description: entry.description.clone(),
                    cedar: crate::hash::normalize_text(cedar),
                },
            );
            policy_order.push(PolicyId::new(id));
            parsed.push((policy, entry.cedar.span(), cedar.as_str()));
        }

        // Invariants.
        let mut invariants = Vec::new();
        let mut invariant_spans = Vec::new();
        for inv in &document.invariants {
            if let Some((compiled, span)) = self.compile_invariant(inv, &principle_ids) {
                invariants.push(compiled);
                invariant_spans.push(span);
            }
        }

        if document.principles.is_empty() {
            self.problem(ProblemKind::Empty, None, "", "the constitution has no principles");
        }
        if document.policies.is_empty() {
            self.problem(ProblemKind::Empty, None, "", "the constitution has no policies");
        }

        let Some(schema) = schema else {
            return Err(self.into_error());
        };

        // Strict validation of policies and invariants against the schema.
        let mut all = PolicySet::new();
        for (policy, _, _) in &parsed {
            // Ids are unique here unless reported as duplicates above.
            let _ = all.add(policy.clone());
        }
        let validator = Validator::new(schema.clone());
        let result = validator.validate(&all, ValidationMode::Strict);
        let policy_problem = |pid: String, d: &dyn Diagnostic, message: String| Problem {
            kind: ProblemKind::PolicyValidation,
            line: parsed
                .iter()
                .find(|(p, _, _)| p.id().to_string() == pid)
                .map(|(_, span, src)| self.cedar_line(span.clone(), src, first_label_offset(d))),
            subject: format!("policy `{pid}`"),
            message,
        };
        let found = result
            .validation_errors()
            .map(|e| policy_problem(e.policy_id().to_string(), e, diagnostic_message(e)))
            .collect();
        warnings.extend(
            result
                .validation_warnings()
                .map(|w| policy_problem(w.policy_id().to_string(), w, diagnostic_message(w))),
        );
        self.add_in_order(found);
        warnings.sort_by(|a, b| (a.line, &a.subject, &a.message).cmp(&(b.line, &b.subject, &b.message)));
        warnings.dedup();
        for (inv, span) in invariants.iter().zip(&invariant_spans) {
            let (Some(matching), Some((span, src))) = (&inv.matching, span) else {
                continue;
            };
            let mut set = PolicySet::new();
            let _ = set.add(matching.clone());
            let result = validator.validate(&set, ValidationMode::Strict);
            let found = result
                .validation_errors()
                .map(|err| Problem {
                    kind: ProblemKind::Invariant,
                    line: Some(self.cedar_line(span.clone(), src, first_label_offset(err))),
                    subject: format!("invariant `{}`", inv.id),
                    message: diagnostic_message(err),
                })
                .collect();
            self.add_in_order(found);
        }

        // Actions, their hierarchy and which of them declare `detections`.
        let action_entities = match schema.action_entities() {
            Ok(e) => e,
            Err(e) => {
                self.problem(ProblemKind::Schema, None, "schema", e.to_string());
                return Err(self.into_error());
            }
        };
        let detections_by_action = match detections_declarations(schema_text) {
            Ok(map) => map,
            Err(message) => {
                self.problem(
                    ProblemKind::Detections,
                    Some(content_start_line(self.text, schema_span)),
                    "schema",
                    message,
                );
                HashMap::new()
            }
        };
        let shapes = match Shapes::from_schema(schema.as_ref()) {
            Ok(shapes) => shapes,
            Err(message) => {
                self.problem(ProblemKind::Schema, None, "schema", message);
                return Err(self.into_error());
            }
        };
        let entity_sources = match EntitySources::compile(document.entities.as_ref(), &shapes) {
            Ok(sources) => sources,
            Err(problems) => {
                let line = self
                    .text
                    .lines()
                    .position(|l| l.trim_start().starts_with("[entities"))
                    .map(|i| i + 1);
                for (subject, message) in problems {
                    self.problem(ProblemKind::EntitySources, line, subject, message);
                }
                EntitySources::default()
            }
        };
        // Each action's context as declared, for the counters (the `usage` attribute they fill is set apart).
        let declared: Vec<(String, String, crate::shapes::ActionShape)> = schema
            .actions()
            .filter_map(|uid| {
                let core_uid: &cedar_policy_core::ast::EntityUID = uid.as_ref();
                let shape = Shapes::action(schema.as_ref(), core_uid, DETECTIONS_ATTRIBUTE).ok()?;
                Some((uid.to_string(), uid.id().unescaped().to_owned(), shape))
            })
            .collect();
        let contexts: Vec<ActionContext<'_>> = declared
            .iter()
            .map(|(uid, id, shape)| ActionContext {
                uid: uid.clone(),
                id: id.clone(),
                attributes: &shape.context.attributes,
                usage: shape.context.attributes.get(USAGE_ATTRIBUTE),
            })
            .collect();
        let counters = match Counters::compile(&document.counters, &contexts) {
            Ok(counters) => counters,
            Err(problems) => {
                let line = self
                    .text
                    .lines()
                    .position(|l| l.trim_start().starts_with("[[counters"))
                    .map(|i| i + 1);
                for (subject, message) in problems {
                    self.problem(ProblemKind::Counters, line, subject, message);
                }
                Counters::default()
            }
        };
        let mut actions: HashMap<String, Arc<CompiledAction>> = HashMap::new();
        let mut ambiguous = HashSet::new();
        for uid in schema.actions() {
            let ancestors: HashSet<EntityUid> = action_entities
                .ancestors(uid)
                .map(|it| it.cloned().collect())
                .unwrap_or_default();
            let applies = |p: &Policy| match p.action_constraint() {
                ActionConstraint::Any => true,
                ActionConstraint::Eq(a) => a == *uid,
                ActionConstraint::In(list) => list.iter().any(|a| a == uid || ancestors.contains(a)),
            };
            let mut compiled: Vec<CompiledPolicy> = parsed
                .iter()
                .filter(|(p, _, _)| applies(p))
                .filter_map(|(p, _, _)| {
                    let info = policies.get(p.id())?;
                    Some(CompiledPolicy {
                        condition: condition_without_action(AsRef::<cedar_policy_core::ast::Policy>::as_ref(p)),
                        reason: Reason {
                            policy_id: info.id.clone(),
                            principle_id: info.principle_id.clone(),
                            effect: info.effect,
                            escalation: info.escalation,
                        },
                    })
                })
                .collect();
            compiled.sort_by(|a, b| a.reason.policy_id.cmp(&b.reason.policy_id));
            let core_uid: &cedar_policy_core::ast::EntityUID = uid.as_ref();
            let mut shape = match Shapes::action(schema.as_ref(), core_uid, DETECTIONS_ATTRIBUTE) {
                Ok(shape) => shape,
                Err(message) => {
                    self.problem(ProblemKind::Schema, None, "schema", message);
                    continue;
                }
            };
            let action_entity = action_entities
                .get(uid)
                .map(|e| Arc::new(AsRef::<cedar_policy_core::ast::Entity>::as_ref(e).clone()));
            let action_store = match cedar_policy_core::entities::Entities::new().add_entities(
                action_entity,
                None::<&cedar_policy_core::entities::NoEntitiesSchema>,
                cedar_policy_core::entities::TCComputation::AssumeAlreadyComputed,
                cedar_policy_core::extensions::Extensions::all_available(),
            ) {
                Ok(store) => store,
                Err(e) => {
                    self.problem(ProblemKind::Schema, None, "schema", e.to_string());
                    continue;
                }
            };
            // ACGS fills `usage` from the counters; a caller may not send it.
            let wants_usage = shape.context.attributes.remove(USAGE_ATTRIBUTE).is_some();
            let action = Arc::new(CompiledAction {
                uid: core_uid.clone(),
                counters: if wants_usage {
                    counters.by_action.get(&uid.to_string()).cloned().unwrap_or_default()
                } else {
                    Vec::new()
                },
                wants_usage,
                shape,
                policies: compiled,
                wants_detections: detections_by_action.get(&uid.to_string()).copied().unwrap_or(false),
                action_store,
            });
            actions.insert(uid.to_string(), Arc::clone(&action));
            // Bare ids are only usable when unambiguous across namespaces.
            let id = uid.id().unescaped().to_owned();
            if ambiguous.contains(&id) {
                continue;
            }
            if actions
                .insert(id.clone(), action)
                .is_some_and(|prev| prev.uid != *core_uid)
            {
                actions.remove(&id);
                ambiguous.insert(id);
            }
        }

        // Test cases must at least be well-formed requests for declared actions.
        for test in &document.tests {
            if !actions.contains_key(&test.request.action) {
                self.problem(
                    ProblemKind::TestCase,
                    None,
                    format!("test `{}`", test.name),
                    format!("unknown action `{}`", test.request.action),
                );
            }
        }

        if !self.problems.is_empty() {
            return Err(self.into_error());
        }
        let hash = hash_document(&document);
        let principles = document.principles.iter().map(|p| (p.id.clone(), p.clone())).collect();
        Ok(Constitution {
            source_name: self.source_name.to_owned(),
            hash,
            governance,
            schema,
            principles,
            policies,
            policy_order,
            actions,
            shapes,
            entity_sources,
            invariants,
            warnings,
            document,
        })
    }

    /// Check one invariant: its principle, the fields its kind needs, and its `matching` policy (parsed here,
    /// validated against the schema later, with the span and text returned for that).
    fn compile_invariant<'d>(
        &mut self,
        inv: &'d crate::document::Invariant,
        principle_ids: &HashSet<&str>,
    ) -> Option<(CompiledInvariant, Option<CedarAt<'d>>)> {
        let id = inv.id.get_ref();
        let subject = format!("invariant `{id}`");
        let id_line = line_of(self.text, inv.id.span().start);
        if !principle_ids.contains(inv.principle.as_str()) {
            self.problem(
                ProblemKind::UnknownPrinciple,
                Some(id_line),
                &subject,
                format!("names principle `{}`, which is not defined", inv.principle),
            );
        }
        let kind = inv.kind;
        let needs_matching = matches!(kind, InvariantKind::NeverAllowed | InvariantKind::AlwaysAllowed);
        match (&inv.matching, kind) {
            (None, _) if needs_matching => {
                self.problem(
                    ProblemKind::Invariant,
                    Some(id_line),
                    &subject,
                    format!(
                        "`{}` needs `matching`: a `permit` policy describing the requests concerned",
                        kind.as_str()
                    ),
                );
                return None;
            }
            (Some(_), InvariantKind::Implies | InvariantKind::NeverErrors) => {
                self.problem(
                    ProblemKind::Invariant,
                    Some(id_line),
                    &subject,
                    format!(
                        "`{}` is about every request the schema allows; it takes no `matching`",
                        kind.as_str()
                    ),
                );
                return None;
            }
            _ => {}
        }
        match (&inv.implies, kind) {
            (None, InvariantKind::Implies) => {
                self.problem(
                    ProblemKind::Invariant,
                    Some(id_line),
                    &subject,
                    "`implies` needs `implies = \"<principle id>\"`: the principle whose policies must allow what this one's allow",
                );
                return None;
            }
            (Some(other), InvariantKind::Implies) if !principle_ids.contains(other.as_str()) => {
                self.problem(
                    ProblemKind::UnknownPrinciple,
                    Some(id_line),
                    &subject,
                    format!("implies principle `{other}`, which is not defined"),
                );
                return None;
            }
            (Some(_), k) if k != InvariantKind::Implies => {
                self.problem(
                    ProblemKind::Invariant,
                    Some(id_line),
                    &subject,
                    format!(
                        "`implies = ...` belongs to invariants of kind `implies`, not `{}`",
                        k.as_str()
                    ),
                );
                return None;
            }
            _ => {}
        }
        let (matching, span) = match &inv.matching {
            None => (None, None),
            Some(spanned) => {
                let cedar = spanned.get_ref();
                match Policy::parse(Some(PolicyId::new(id)), cedar) {
                    Ok(p) if p.effect() == Effect::Permit => (Some(p), Some((spanned.span(), cedar.as_str()))),
                    Ok(_) => {
                        self.problem(
                            ProblemKind::Invariant,
                            Some(id_line),
                            &subject,
                            "`matching` must be a `permit` policy describing the requests the invariant is about",
                        );
                        return None;
                    }
                    Err(e) => {
                        let line = self.cedar_line(spanned.span(), cedar, first_label_offset(&e));
                        self.problem(ProblemKind::Invariant, Some(line), &subject, diagnostic_message(&e));
                        return None;
                    }
                }
            }
        };
        let compiled = CompiledInvariant {
            id: id.clone(),
            principle_id: inv.principle.clone(),
            description: inv.description.clone(),
            kind,
            matching,
            implies: inv.implies.clone(),
        };
        Some((compiled, span))
    }

    /// The `[governance]` section validated, if the document has one; its problems are recorded.
    fn check_governance(&mut self, document: &ConstitutionDocument) -> Option<Governance> {
        let section = document.governance.as_ref()?;
        let line = self
            .text
            .lines()
            .position(|l| l.trim_start().starts_with("[governance"))
            .map(|i| i + 1);
        match Governance::from_section(section) {
            Ok(rules) => Some(rules),
            Err(problems) => {
                for (subject, message) in problems {
                    self.problem(ProblemKind::Governance, line, subject, message);
                }
                None
            }
        }
    }

    fn check_ids(&mut self, document: &ConstitutionDocument) {
        let mut seen = HashSet::new();
        for p in &document.principles {
            if p.id.trim().is_empty() || p.id.chars().any(char::is_whitespace) {
                self.problem(
                    ProblemKind::InvalidId,
                    None,
                    "principle",
                    format!("invalid id `{}`", p.id),
                );
            }
            if !seen.insert(p.id.as_str()) {
                self.problem(
                    ProblemKind::DuplicateId,
                    None,
                    format!("principle `{}`", p.id),
                    "duplicate principle id",
                );
            }
            if p.title.trim().is_empty() || p.text.trim().is_empty() {
                self.problem(
                    ProblemKind::InvalidId,
                    None,
                    format!("principle `{}`", p.id),
                    "title and text must not be empty",
                );
            }
        }
        let mut seen = HashSet::new();
        for p in &document.policies {
            let id = p.id.get_ref();
            let line = Some(line_of(self.text, p.id.span().start));
            if !is_valid_id(id) {
                self.problem(
                    ProblemKind::InvalidId,
                    line,
                    "policy",
                    format!("invalid id `{id}` (use letters, digits, `-`, `_`, `.`)"),
                );
            }
            if !seen.insert(id.as_str()) {
                self.problem(
                    ProblemKind::DuplicateId,
                    line,
                    format!("policy `{id}`"),
                    "duplicate policy id",
                );
            }
        }
        let mut seen = HashSet::new();
        for inv in &document.invariants {
            let id = inv.id.get_ref();
            let line = Some(line_of(self.text, inv.id.span().start));
            if !is_valid_id(id) {
                self.problem(ProblemKind::InvalidId, line, "invariant", format!("invalid id `{id}`"));
            }
            if !seen.insert(id.as_str()) {
                self.problem(
                    ProblemKind::DuplicateId,
                    line,
                    format!("invariant `{id}`"),
                    "duplicate invariant id",
                );
            }
        }
        let mut seen = HashSet::new();
        for t in &document.tests {
            if !seen.insert(t.name.as_str()) {
                self.problem(
                    ProblemKind::DuplicateId,
                    None,
                    format!("test `{}`", t.name),
                    "duplicate test name",
                );
            }
        }
    }

    /// Record `found` (one validation run's problems, which Cedar reports in no fixed order and sometimes twice,
    /// once per occurrence in a condition) in the order of their lines and messages, each once.
    fn add_in_order(&mut self, mut found: Vec<Problem>) {
        found.sort_by(|a, b| (a.line, &a.subject, &a.message).cmp(&(b.line, &b.subject, &b.message)));
        found.dedup();
        for problem in found {
            if !self.problems.contains(&problem) {
                self.problems.push(problem);
            }
        }
    }

    fn into_error(self) -> LoadError {
        LoadError::Invalid {
            source_name: self.source_name.to_owned(),
            problems: self.problems,
        }
    }
}

pub(crate) fn is_valid_id(id: &str) -> bool {
    !id.is_empty()
        && id.len() <= 128
        && id
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.'))
}

/// The condition Cedar evaluates for `policy` (its scope and its `when`/`unless` clauses), without the action
/// constraint: the policy is compiled only into the actions that constraint admits (`applies` above, from the
/// same action hierarchy the evaluator would consult), where it is always true and cannot fail. Leaving it out
/// spares the evaluator an `==` or an `in` over the action hierarchy per policy and decision; the conformance
/// tests compare outcomes, deciding policies and failing policies with Cedar's own authorizer.
fn condition_without_action(policy: &cedar_policy_core::ast::Policy) -> cedar_policy_core::ast::Expr {
    use cedar_policy_core::ast::{Expr, PrincipalConstraint, ResourceConstraint};
    let body = policy
        .non_scope_constraints()
        .cloned()
        .unwrap_or_else(|| Expr::val(true));
    let resource = policy.resource_constraint();
    let body = if resource == ResourceConstraint::any() {
        body
    } else {
        Expr::and(resource.as_expr(), body)
    };
    let principal = policy.principal_constraint();
    if principal == PrincipalConstraint::any() {
        body
    } else {
        Expr::and(principal.as_expr(), body)
    }
}
