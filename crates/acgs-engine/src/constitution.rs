//! Validation and compilation of a constitution document into an immutable, ready-to-evaluate form.
//!
//! A [`Constitution`] can only be obtained through validation, so holding one means: the TOML parsed,
//! ids are unique and well formed, every policy names an existing principle, the schema and every Cedar
//! policy parse, the policies pass strict validation against the schema, invariants are valid, and (for
//! [`Constitution::load`] / [`Constitution::from_toml`]) the constitution's own test cases pass.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::path::Path;
use std::str::FromStr;

use std::sync::Arc;

use cedar_policy::{
    ActionConstraint, Effect, EntityUid, Policy, PolicyId, PolicySet, Schema, SchemaFragment, ValidationMode, Validator,
};
use miette::Diagnostic;
use serde_json::Value;

use crate::decision::{PolicyEffect, Reason};
use crate::document::{ConstitutionDocument, InvariantKind, Principle, TestCase};
use crate::error::{LoadError, Problem, ProblemKind};
use crate::hash::{ConstitutionHash, hash_document};
use crate::shapes::{ActionShape, Shapes};
use crate::testing::TestReport;

/// Annotation that marks a `forbid` policy as an escalation rule (human approval instead of deny).
pub const ESCALATE_ANNOTATION: &str = "escalate";

/// Name of the context attribute the engine fills with detector findings.
pub const DETECTIONS_ATTRIBUTE: &str = "detections";

/// What the engine knows about one policy beyond its Cedar text.
#[derive(Debug, Clone)]
pub struct PolicyInfo {
    /// Policy id.
    pub id: String,
    /// Id of the principle it implements.
    pub principle_id: String,
    /// `permit` or `forbid`.
    pub effect: PolicyEffect,
    /// A `forbid` marked `@escalate`: yields `escalate` instead of `deny`.
    pub escalation: bool,
    /// Description from the document.
    pub description: String,
    /// Normalised Cedar text.
    pub cedar: String,
}

/// A validated invariant with its parsed `matching` policy.
#[derive(Debug, Clone)]
pub struct CompiledInvariant {
    /// Invariant id.
    pub id: String,
    /// Principle it protects.
    pub principle_id: String,
    /// The statement in words.
    pub description: String,
    /// What is asserted.
    pub kind: InvariantKind,
    /// The parsed, schema-validated policy describing the matched requests.
    pub matching: Policy,
}

/// One policy ready to evaluate: its condition expression built once, and the reason it gives when it applies.
#[derive(Debug)]
pub(crate) struct CompiledPolicy {
    /// Scope and conditions as one expression (Cedar would rebuild it on every evaluation).
    pub(crate) condition: cedar_policy_core::ast::Expr,
    /// Id, principle, effect and escalation flag, as reported when the policy applies.
    pub(crate) reason: Reason,
}

/// Everything needed to decide the requests for one action, compiled once.
#[derive(Debug)]
pub(crate) struct CompiledAction {
    /// The action's uid.
    pub(crate) uid: cedar_policy_core::ast::EntityUID,
    /// Principal, resource and context types of its requests.
    pub(crate) shape: ActionShape,
    /// Every policy whose action scope can match this action, sorted by id.
    pub(crate) policies: Vec<CompiledPolicy>,
    /// Whether the action's context type declares `detections`.
    pub(crate) wants_detections: bool,
    /// An entity store holding just this action's entity (with its action groups as ancestors), so a
    /// request adds its own entities to a small store instead of every action of the schema.
    pub(crate) action_store: cedar_policy_core::entities::Entities,
}

/// A validated, compiled constitution. Immutable; share it behind an `Arc`.
#[derive(Debug)]
pub struct Constitution {
    pub(crate) document: ConstitutionDocument,
    source_name: String,
    hash: ConstitutionHash,
    pub(crate) schema: Schema,
    principles: BTreeMap<String, Principle>,
    pub(crate) policies: HashMap<PolicyId, PolicyInfo>,
    policy_order: Vec<PolicyId>,
    /// Actions by the names requests may use: the full uid text and, when unambiguous, the bare id.
    pub(crate) actions: HashMap<String, Arc<CompiledAction>>,
    /// The schema's entity types, compiled for checking requests.
    pub(crate) shapes: Shapes,
    invariants: Vec<CompiledInvariant>,
}

impl Constitution {
    /// Read, validate and compile a constitution file, and run its test cases; fails if any test fails.
    pub fn load(path: impl AsRef<Path>) -> Result<Self, LoadError> {
        let path = path.as_ref();
        let text = std::fs::read_to_string(path).map_err(|source| LoadError::Io {
            path: path.display().to_string(),
            source,
        })?;
        Self::from_toml(&path.display().to_string(), &text)
    }

    /// Validate and compile TOML text, and run its test cases; fails if any test fails.
    pub fn from_toml(source_name: &str, text: &str) -> Result<Self, LoadError> {
        let constitution = Self::compile(source_name, text)?;
        let report = constitution.run_tests(&crate::Detectors::new());
        if report.failed() > 0 {
            return Err(LoadError::TestsFailed {
                source_name: source_name.to_owned(),
                report,
            });
        }
        Ok(constitution)
    }

    /// Read and compile a file without running its test cases (for `acgs constitution test`).
    pub fn compile_file(path: impl AsRef<Path>) -> Result<Self, LoadError> {
        let path = path.as_ref();
        let text = std::fs::read_to_string(path).map_err(|source| LoadError::Io {
            path: path.display().to_string(),
            source,
        })?;
        Self::compile(&path.display().to_string(), &text)
    }

    /// Validate and compile TOML text without running its test cases.
    pub fn compile(source_name: &str, text: &str) -> Result<Self, LoadError> {
        let invalid = |problems: Vec<Problem>| LoadError::Invalid {
            source_name: source_name.to_owned(),
            problems,
        };
        let document: ConstitutionDocument = toml::from_str(text).map_err(|e| {
            let line = e.span().map(|s| line_of(text, s.start));
            invalid(vec![Problem {
                kind: ProblemKind::Syntax,
                line,
                subject: String::new(),
                message: e.message().trim().to_owned(),
            }])
        })?;
        Compiler::new(text, source_name).compile(document)
    }

    /// The constitutional hash of this constitution's content.
    pub fn hash(&self) -> ConstitutionHash {
        self.hash
    }

    /// Name and version.
    pub fn metadata(&self) -> &crate::document::Metadata {
        &self.document.constitution
    }

    /// Where the constitution came from (a file name).
    pub fn source_name(&self) -> &str {
        &self.source_name
    }

    /// Principles by id, in id order.
    pub fn principles(&self) -> impl Iterator<Item = &Principle> {
        self.principles.values()
    }

    /// One principle.
    pub fn principle(&self, id: &str) -> Option<&Principle> {
        self.principles.get(id)
    }

    /// Policies in file order.
    pub fn policies(&self) -> impl Iterator<Item = &PolicyInfo> {
        self.policy_order.iter().filter_map(|id| self.policies.get(id))
    }

    /// Invariants in file order.
    pub fn invariants(&self) -> &[CompiledInvariant] {
        &self.invariants
    }

    /// Test cases carried by the constitution.
    pub fn tests(&self) -> &[TestCase] {
        &self.document.tests
    }

    /// The Cedar schema.
    pub fn schema(&self) -> &Schema {
        &self.schema
    }

    /// Normalised Cedar schema text.
    pub fn schema_text(&self) -> String {
        crate::hash::normalize_text(self.document.schema.cedar.get_ref())
    }

    /// Action ids declared in the schema, sorted.
    pub fn action_names(&self) -> Vec<&str> {
        let mut names: Vec<&str> = self
            .actions
            .keys()
            .map(String::as_str)
            .filter(|k| !k.contains("::"))
            .collect();
        names.sort_unstable();
        names
    }

    /// The canonical serialisation the hash is computed over.
    pub fn canonical_form(&self) -> String {
        crate::hash::canonical_form(&self.document)
    }

    /// Run the constitution's test cases.
    pub fn run_tests(&self, detectors: &crate::Detectors) -> TestReport {
        crate::testing::run(self, detectors)
    }
}

/// 1-based line number of a byte offset.
fn line_of(text: &str, offset: usize) -> usize {
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

struct Compiler<'a> {
    text: &'a str,
    source_name: &'a str,
    problems: Vec<Problem>,
}

impl<'a> Compiler<'a> {
    fn new(text: &'a str, source_name: &'a str) -> Self {
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

    fn compile(mut self, document: ConstitutionDocument) -> Result<Constitution, LoadError> {
        self.check_ids(&document);

        // Schema.
        let schema_text = document.schema.cedar.get_ref().as_str();
        let schema_span = document.schema.cedar.span();
        let schema = match Schema::from_cedarschema_str(schema_text) {
            Ok((schema, _warnings)) => Some(schema),
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
            let cedar = inv.matching.get_ref();
            match Policy::parse(Some(PolicyId::new(id)), cedar) {
                Ok(p) if p.effect() == Effect::Permit => {
                    invariant_spans.push((inv.matching.span(), cedar.as_str()));
                    invariants.push(CompiledInvariant {
                        id: id.clone(),
                        principle_id: inv.principle.clone(),
                        description: inv.description.clone(),
                        kind: inv.kind,
                        matching: p,
                    });
                }
                Ok(_) => self.problem(
                    ProblemKind::Invariant,
                    Some(id_line),
                    &subject,
                    "`matching` must be a `permit` policy describing the requests the invariant is about",
                ),
                Err(e) => {
                    let line = self.cedar_line(inv.matching.span(), cedar, first_label_offset(&e));
                    self.problem(ProblemKind::Invariant, Some(line), &subject, diagnostic_message(&e));
                }
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
        for err in result.validation_errors() {
            let pid = err.policy_id().to_string();
            let line = parsed
                .iter()
                .find(|(p, _, _)| p.id().to_string() == pid)
                .map(|(_, span, src)| self.cedar_line(span.clone(), src, first_label_offset(err)));
            self.problem(
                ProblemKind::PolicyValidation,
                line,
                format!("policy `{pid}`"),
                diagnostic_message(err),
            );
        }
        for (inv, (span, src)) in invariants.iter().zip(&invariant_spans) {
            let mut set = PolicySet::new();
            let _ = set.add(inv.matching.clone());
            let result = validator.validate(&set, ValidationMode::Strict);
            for err in result.validation_errors() {
                let line = self.cedar_line(span.clone(), src, first_label_offset(err));
                self.problem(
                    ProblemKind::Invariant,
                    Some(line),
                    format!("invariant `{}`", inv.id),
                    diagnostic_message(err),
                );
            }
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
            let shape = match Shapes::action(schema.as_ref(), core_uid, DETECTIONS_ATTRIBUTE) {
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
            let action = Arc::new(CompiledAction {
                uid: core_uid.clone(),
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
            schema,
            principles,
            policies,
            policy_order,
            actions,
            shapes,
            invariants,
            document,
        })
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

    fn into_error(self) -> LoadError {
        LoadError::Invalid {
            source_name: self.source_name.to_owned(),
            problems: self.problems,
        }
    }
}

fn is_valid_id(id: &str) -> bool {
    !id.is_empty()
        && id.len() <= 128
        && id
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.'))
}

/// For each action (by its full uid text), whether its context declares `detections` with the
/// engine's record type. Errors when a declaration has the wrong type.
fn detections_declarations(schema_text: &str) -> Result<HashMap<String, bool>, String> {
    let (fragment, _) = SchemaFragment::from_cedarschema_str(schema_text).map_err(|e| e.to_string())?;
    let json = fragment.to_json_value().map_err(|e| e.to_string())?;
    let mut out = HashMap::new();
    let Some(namespaces) = json.as_object() else {
        return Ok(out);
    };
    for (ns, body) in namespaces {
        let common = body.get("commonTypes").and_then(Value::as_object);
        let resolve = |ty: &Value| -> Option<Value> { resolve_type(ty, common, 0) };
        let Some(actions) = body.get("actions").and_then(Value::as_object) else {
            continue;
        };
        for (name, action) in actions {
            let uid_text = if ns.is_empty() {
                format!("Action::{}", Value::String(name.clone()))
            } else {
                format!("{ns}::Action::{}", Value::String(name.clone()))
            };
            let declared = action
                .get("appliesTo")
                .and_then(|a| a.get("context"))
                .and_then(&resolve)
                .and_then(|ctx| ctx.get("attributes").cloned())
                .and_then(|attrs| attrs.get(DETECTIONS_ATTRIBUTE).cloned());
            let wants = match declared {
                None => false,
                Some(attr) => {
                    let ty = resolve(&attr).unwrap_or(Value::Null);
                    if !is_detections_type(&ty, common) {
                        return Err(format!(
                            "action `{name}`: context attribute `detections` must have type \
                             {{ pii: Bool, pii_kinds: Set<String>, secrets: Bool, secret_kinds: Set<String>, prompt_injection: Bool }}"
                        ));
                    }
                    true
                }
            };
            let uid = EntityUid::from_str(&uid_text)
                .map(|u| u.to_string())
                .unwrap_or(uid_text);
            out.insert(uid, wants);
        }
    }
    Ok(out)
}

/// Follow common-type references (bounded depth) to a concrete JSON schema type.
fn resolve_type(ty: &Value, common: Option<&serde_json::Map<String, Value>>, depth: usize) -> Option<Value> {
    if depth > 8 {
        return None;
    }
    let type_name = ty.get("type")?.as_str()?;
    let reference = match type_name {
        "EntityOrCommon" => ty.get("name")?.as_str()?,
        "Record" | "Set" | "Long" | "String" | "Boolean" | "Entity" | "Extension" => return Some(ty.clone()),
        other => other,
    };
    match reference {
        "Bool" | "Boolean" => Some(serde_json::json!({"type": "Boolean"})),
        "String" => Some(serde_json::json!({"type": "String"})),
        "Long" => Some(serde_json::json!({"type": "Long"})),
        name => {
            let target = common?.get(name)?;
            resolve_type(target, common, depth + 1)
        }
    }
}

fn is_detections_type(ty: &Value, common: Option<&serde_json::Map<String, Value>>) -> bool {
    let Some(attrs) = ty.get("attributes").and_then(Value::as_object) else {
        return false;
    };
    let kind = |name: &str| attrs.get(name).and_then(|t| resolve_type(t, common, 0));
    let is_bool = |name: &str| kind(name).and_then(|t| t.get("type").cloned()) == Some(Value::from("Boolean"));
    let is_string_set = |name: &str| {
        kind(name).is_some_and(|t| {
            t.get("type") == Some(&Value::from("Set"))
                && t.get("element")
                    .and_then(|e| resolve_type(e, common, 0))
                    .and_then(|e| e.get("type").cloned())
                    == Some(Value::from("String"))
        })
    };
    attrs.len() == 5
        && is_bool("pii")
        && is_string_set("pii_kinds")
        && is_bool("secrets")
        && is_string_set("secret_kinds")
        && is_bool("prompt_injection")
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
