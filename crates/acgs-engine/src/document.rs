//! The constitution document as written (TOML), before validation: the raw, serde-parsed form.

use std::fmt;

use serde::{Deserialize, Serialize};

use crate::request::DecisionRequest;

/// A constitution exactly as parsed from its TOML file, not yet validated.
///
/// Use [`crate::Constitution::load`] / [`crate::Constitution::from_toml`] to get a validated, compiled
/// constitution; this type only mirrors the file format documented in `docs/constitution.md`.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ConstitutionDocument {
    /// Name, version and description.
    pub constitution: Metadata,
    /// The Cedar schema describing principals, actions, resources and context.
    pub schema: SchemaSection,
    /// Human-readable principles.
    #[serde(default)]
    pub principles: Vec<Principle>,
    /// Cedar policies, each implementing one principle.
    #[serde(default)]
    pub policies: Vec<PolicyEntry>,
    /// Statements that must always hold.
    #[serde(default)]
    pub invariants: Vec<Invariant>,
    /// Test cases the constitution must pass to be accepted.
    #[serde(default)]
    pub tests: Vec<TestCase>,
    /// Who may change the constitution and by what rules (none: it changes only by `acgs constitution activate`).
    #[serde(default)]
    pub governance: Option<crate::governance::GovernanceSection>,
    /// How the formal verifier's findings about the policies weigh in the amendment gate (none: the defaults).
    #[serde(default)]
    pub verification: Option<VerificationSettings>,
    /// Where the facts about each entity type come from (none: every type's from the caller, as sent).
    #[serde(default)]
    pub entities: Option<std::collections::BTreeMap<String, EntitySourceEntry>>,
    /// Usage counters ACGS keeps from its own decisions, which policies read in `context.usage`.
    #[serde(default)]
    pub counters: Vec<CounterEntry>,
}

/// What a counter adds up.
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[derive(Debug, Clone, Copy, Serialize, Deserialize, PartialEq, Eq, Hash)]
#[serde(rename_all = "snake_case")]
pub enum CounterKind {
    /// How many allowed decisions.
    Count,
    /// The sum of a `Long` context field over the allowed decisions (e.g. an amount).
    Sum,
}

/// Whose usage a counter keeps apart.
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[derive(Debug, Clone, Copy, Default, Serialize, Deserialize, PartialEq, Eq, Hash)]
#[serde(rename_all = "snake_case")]
pub enum CounterScope {
    /// One count per principal.
    #[default]
    Principal,
    /// One count per resource (e.g. per account).
    Resource,
    /// One count per principal and resource.
    PrincipalAndResource,
}

/// One `[[counters]]` entry: usage ACGS counts from its own allowed decisions over a sliding window, which the
/// policies of the actions it names read as `context.usage.<name>`.
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
#[serde(deny_unknown_fields)]
pub struct CounterEntry {
    /// The counter's name: the attribute of `context.usage` that holds it.
    pub name: String,
    /// The actions whose allowed decisions it counts (each declares `usage: { <name>: Long, … }`).
    pub actions: Vec<String>,
    /// `count` or `sum`.
    pub kind: CounterKind,
    /// For `sum`: the `Long` context field added up.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub field: Option<String>,
    /// The sliding window, e.g. `60s`, `1h`, `24h`.
    pub window: String,
    /// Whose usage is kept apart (default `principal`).
    #[serde(default)]
    pub per: CounterScope,
}

/// Who asserts the facts (attributes and parents) about the entities of one type.
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[derive(Debug, Clone, Copy, Serialize, Deserialize, PartialEq, Eq, Hash)]
#[serde(rename_all = "snake_case")]
pub enum EntitySource {
    /// Only the facts stored in ACGS's entity registry count; a request names the entity by type and id.
    Registry,
    /// The caller sends the facts with each request (for data the orchestrator owns).
    Caller,
}

/// One `[entities.<Type>]` table: where the facts about entities of that type come from.
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
#[serde(deny_unknown_fields)]
pub struct EntitySourceEntry {
    /// `registry` or `caller`.
    pub source: EntitySource,
    /// For a `registry` type: attributes that are facts of the request, not of the entity, which the caller
    /// sends (and which replace a stored value of the same name for that one request).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub request_attributes: Vec<String>,
    /// Which ACGS account roles may change the registered entities of this type (none given: `operator`, fully).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub writers: Vec<EntityWriter>,
}

/// One `[[entities.<Type>.writers]]` rule: an account role and what it may change.
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq, PartialOrd, Ord)]
#[serde(deny_unknown_fields)]
pub struct EntityWriter {
    /// The ACGS account role (`operator`, `monitor`, …) the rule is for.
    pub role: String,
    /// Only these attributes of entities that exist (none given: anything — create, delete, every attribute
    /// and the parents).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub attributes: Option<Vec<String>>,
    /// A change this rule allows is held until another principal whose rules allow it too approves it (e.g. a
    /// role grant, four eyes).
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub needs_approval: bool,
}

impl EntityWriter {
    /// The rule when a type names no writers: operators change its entities fully.
    pub fn default_rules() -> Vec<Self> {
        vec![Self {
            role: "operator".into(),
            attributes: None,
            needs_approval: false,
        }]
    }
}

/// What a kind of finding does in the verification gate.
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[derive(Debug, Clone, Copy, Serialize, Deserialize, PartialEq, Eq, Hash)]
#[serde(rename_all = "snake_case")]
pub enum FindingSeverity {
    /// The finding fails the gate: the amendment cannot open voting or execute.
    Block,
    /// The finding is reported; the gate passes.
    Warn,
    /// The check is not run.
    Off,
}

/// The `[verification]` table: per kind of finding about the policies, whether it blocks an amendment, is only
/// reported, or is not checked. Violated invariants and possible evaluation errors always block.
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[derive(Debug, Clone, Copy, Default, Serialize, Deserialize, PartialEq, Eq)]
#[serde(deny_unknown_fields)]
pub struct VerificationSettings {
    /// A permit that every request it applies to is denied by a forbid (default `block`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub dead_permits: Option<FindingSeverity>,
    /// A policy that applies to no request at all (default `warn`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub unmatched_policies: Option<FindingSeverity>,
    /// A policy whose removal changes no decision (default `warn`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub redundant_policies: Option<FindingSeverity>,
    /// An action for which no request can be allowed or escalated (default `warn`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub unreachable_actions: Option<FindingSeverity>,
}

/// Metadata of a constitution.
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
#[serde(deny_unknown_fields)]
pub struct Metadata {
    /// Human name of the constitution.
    pub name: String,
    /// Version label, e.g. `1.2.0`.
    pub version: String,
    /// Optional longer description.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub description: String,
}

/// The `[schema]` table: Cedar schema text.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SchemaSection {
    /// Schema in Cedar's human-readable schema syntax.
    pub cedar: toml::Spanned<String>,
}

/// How severe a violation of a principle is.
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[derive(Debug, Clone, Copy, Serialize, Deserialize, PartialEq, Eq, PartialOrd, Ord, Hash)]
#[serde(rename_all = "snake_case")]
pub enum Severity {
    /// Must never happen.
    Critical,
    /// Serious harm.
    High,
    /// Moderate harm.
    Medium,
    /// Minor harm.
    Low,
}

impl fmt::Display for Severity {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Severity::Critical => "critical",
            Severity::High => "high",
            Severity::Medium => "medium",
            Severity::Low => "low",
        })
    }
}

/// A principle: the human statement that policies implement.
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
#[serde(deny_unknown_fields)]
pub struct Principle {
    /// Identifier such as `P-001`.
    pub id: String,
    /// Short title.
    pub title: String,
    /// The principle's full text.
    pub text: String,
    /// Free-form category such as `security` or `privacy`.
    pub category: String,
    /// Priority, 1 is the most important.
    pub priority: u32,
    /// Severity of a violation.
    pub severity: Severity,
}

/// A policy entry: one Cedar policy and the principle it implements.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PolicyEntry {
    /// Policy identifier, unique in the constitution.
    pub id: toml::Spanned<String>,
    /// Id of the principle this policy implements.
    pub principle: String,
    /// What the policy does, in words.
    #[serde(default)]
    pub description: String,
    /// Exactly one Cedar policy (`permit` or `forbid`). A `forbid` annotated `@escalate` is an escalation rule.
    pub cedar: toml::Spanned<String>,
}

/// What an invariant asserts; proved over every request the schema allows (`docs/verification.md`).
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[derive(Debug, Clone, Copy, Serialize, Deserialize, PartialEq, Eq, Hash)]
#[serde(rename_all = "snake_case")]
pub enum InvariantKind {
    /// Every request `matching` describes is denied: never allowed, never escalated.
    NeverAllowed,
    /// Every request `matching` describes is allowed outright (not escalated).
    AlwaysAllowed,
    /// No policy fails to evaluate on any request.
    NeverErrors,
    /// Every request the invariant's principle's policies allow (taken on their own) is also allowed by the
    /// policies of the principle named in `implies`.
    Implies,
}

impl InvariantKind {
    /// The snake_case name, as written in the file.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::NeverAllowed => "never_allowed",
            Self::AlwaysAllowed => "always_allowed",
            Self::NeverErrors => "never_errors",
            Self::Implies => "implies",
        }
    }
}

/// A statement that must always hold about the policy set.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Invariant {
    /// Identifier such as `INV-001`.
    pub id: toml::Spanned<String>,
    /// Principle the invariant protects.
    pub principle: String,
    /// The statement in words.
    pub description: String,
    /// What is asserted.
    pub kind: InvariantKind,
    /// A Cedar `permit` policy whose scope and conditions describe the requests the invariant is about (required
    /// for `never_allowed` and `always_allowed`, absent for `never_errors` and `implies`).
    #[serde(default)]
    pub matching: Option<toml::Spanned<String>>,
    /// For `implies`: the principle whose policies must allow whatever this invariant's principle's policies do.
    #[serde(default)]
    pub implies: Option<String>,
}

/// The outcome a test case (or a caller) expects: the one outcome type, shared with the audit log's events.
pub use acgs_audit::event::Outcome;

/// A test case carried by the constitution.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TestCase {
    /// Unique name.
    pub name: String,
    /// The request to decide.
    pub request: DecisionRequest,
    /// The expected outcome.
    pub expect: Outcome,
    /// If given, the exact set of policy ids expected to decide.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub expect_policies: Option<Vec<String>>,
}
