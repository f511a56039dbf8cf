//! Validation and compilation of a constitution document into an immutable, ready-to-evaluate form.
//!
//! A [`Constitution`] can only be obtained through validation, so holding one means: the TOML parsed,
//! ids are unique and well formed, every policy names an existing principle, the schema and every Cedar
//! policy parse, the policies pass strict validation against the schema, invariants are valid, and (for
//! [`Constitution::load`] / [`Constitution::from_toml`]) the constitution's own test cases pass.
//!
//! This module holds the compiled constitution and what it is read through; the checks and the compilation of
//! a parsed document are in `compile`, and the reading of `detections` declarations from the schema in
//! `detections`.

mod compile;
mod counters;
mod detections;
mod entity_sources;

pub use counters::{Counter, USAGE_ATTRIBUTE};

pub(crate) use entity_sources::{EntitySources, RegistryRule};

use std::collections::{BTreeMap, HashMap};
use std::path::Path;
use std::sync::Arc;

use cedar_policy::{Policy, PolicyId, Schema};

use crate::decision::{PolicyEffect, Reason};
use crate::document::{ConstitutionDocument, InvariantKind, Principle, TestCase};
use crate::error::{LoadError, Problem, ProblemKind};
use crate::hash::ConstitutionHash;
use crate::shapes::{ActionShape, Shapes};
use crate::testing::TestReport;

use compile::{Compiler, line_of};

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
    /// The parsed, schema-validated policy describing the requests concerned (`None` for `never_errors` and
    /// `implies`, which are about every request).
    pub matching: Option<Policy>,
    /// For [`InvariantKind::Implies`]: the principle whose policies must allow what this principle's allow.
    pub implies: Option<String>,
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
    /// Whether the action's context type declares `usage`, which ACGS fills from `counters`.
    pub(crate) wants_usage: bool,
    /// The counters its `usage` holds, by name.
    pub(crate) counters: Vec<Arc<Counter>>,
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
    /// Which entity types' facts only the registry asserts (`[entities]`).
    pub(crate) entity_sources: EntitySources,
    invariants: Vec<CompiledInvariant>,
    /// What Cedar's validator warned about (the schema and the policies), deduplicated and in line order.
    warnings: Vec<Problem>,
    /// The validated `[governance]` section, if it has one.
    governance: Option<crate::governance::Governance>,
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

    /// What Cedar's validator warned about while loading (e.g. a policy whose scope applies to no action): the
    /// constitution loads, but these usually mean a policy does not do what its author meant.
    pub fn warnings(&self) -> &[Problem] {
        &self.warnings
    }

    /// Who may change this constitution and by what rules (`None`: it has no `[governance]` section).
    pub fn governance(&self) -> Option<&crate::governance::Governance> {
        self.governance.as_ref()
    }

    /// Where the facts about entities of `type_name` come from (`caller` for a type `[entities]` does not name).
    pub fn entity_source(&self, type_name: &str) -> crate::document::EntitySource {
        let registry = self
            .shapes
            .entity_type(type_name, "entity type")
            .is_ok_and(|shape| self.entity_sources.registry_rule(&shape.entity_type).is_some());
        if registry {
            crate::document::EntitySource::Registry
        } else {
            crate::document::EntitySource::Caller
        }
    }

    /// Which account roles may change the registered entities of `type_name`, and what
    /// ([`EntityWriter::default_rules`] when the constitution names none for it).
    ///
    /// [`EntityWriter::default_rules`]: crate::EntityWriter::default_rules
    pub fn entity_writers(&self, type_name: &str) -> Vec<crate::document::EntityWriter> {
        self.entity_sources
            .writers
            .get(type_name)
            .cloned()
            .unwrap_or_else(crate::document::EntityWriter::default_rules)
    }

    /// The counters whose values the policies of `action` read in `context.usage` (none for an unknown action), by
    /// name: the usage a decision of it needs.
    pub fn counters_for(&self, action: &str) -> &[Arc<Counter>] {
        self.actions.get(action).map_or(&[], |a| a.counters.as_slice())
    }

    /// The entity types whose facts only the registry asserts, sorted.
    pub fn registry_types(&self) -> Vec<String> {
        let mut types: Vec<String> = self.entity_sources.registry.keys().map(ToString::to_string).collect();
        types.sort();
        types
    }

    /// The document as written (parsed, not yet compiled), e.g. for comparing two constitutions.
    pub fn document(&self) -> &ConstitutionDocument {
        &self.document
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

    /// The policies that can apply to an action (named by its full uid text, e.g. `Action::"read"`, or its bare
    /// id), sorted by id; `None` if the schema does not declare the action.
    pub fn action_policies(&self, action: &str) -> Option<Vec<&PolicyInfo>> {
        let compiled = self.actions.get(action)?;
        Some(
            compiled
                .policies
                .iter()
                .filter_map(|p| self.policies.get(&PolicyId::new(&p.reason.policy_id)))
                .collect(),
        )
    }

    /// Whether the engine fills `context.detections` for an action (`None`: the action is not declared).
    pub fn action_wants_detections(&self, action: &str) -> Option<bool> {
        self.actions.get(action).map(|a| a.wants_detections)
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
