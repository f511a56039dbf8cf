//! Typed errors of the engine: loading a constitution and building a decision request.

use std::fmt;

use crate::testing::TestReport;

/// What kind of problem a constitution has; lets callers and tests tell problems apart.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ProblemKind {
    /// The file is not valid TOML or does not match the document structure.
    Syntax,
    /// An id is empty or malformed.
    InvalidId,
    /// Two principles, policies, invariants or tests share an id or name.
    DuplicateId,
    /// A policy or invariant names a principle that does not exist.
    UnknownPrinciple,
    /// The Cedar schema does not parse or is inconsistent.
    Schema,
    /// A Cedar policy does not parse, or the entry does not hold exactly one policy.
    PolicyParse,
    /// A Cedar policy fails strict validation against the schema.
    PolicyValidation,
    /// `@escalate` is used on a `permit`, where it has no meaning.
    EscalateOnPermit,
    /// An invariant's `matching` is not a single `permit` policy valid against the schema.
    Invariant,
    /// An action's context type lacks the `detections` attribute the engine fills in.
    Detections,
    /// A test case's request is malformed.
    TestCase,
    /// The constitution has no principles or no policies.
    Empty,
    /// The `[governance]` section is invalid (a duration, a share, a register or an M-of-N set).
    Governance,
    /// The `[entities]` section names an undeclared type or attribute, or combines its fields wrongly.
    EntitySources,
    /// A `[[counters]]` entry or an action's `usage` declaration does not fit the other.
    Counters,
}

/// One problem found while loading a constitution.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Problem {
    /// Category of the problem.
    pub kind: ProblemKind,
    /// 1-based line in the constitution file, when known.
    pub line: Option<usize>,
    /// What the problem is about, e.g. "policy `deny-secrets`".
    pub subject: String,
    /// What is wrong.
    pub message: String,
}

impl fmt::Display for Problem {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if let Some(line) = self.line {
            write!(f, "line {line}: ")?;
        }
        if !self.subject.is_empty() {
            write!(f, "{}: ", self.subject)?;
        }
        f.write_str(&self.message)
    }
}

/// Why a constitution could not be loaded.
#[derive(Debug, thiserror::Error)]
pub enum LoadError {
    /// The file could not be read.
    #[error("cannot read constitution `{path}`: {source}")]
    Io {
        /// The path that was read.
        path: String,
        /// The underlying error.
        source: std::io::Error,
    },
    /// The constitution is invalid; every problem found is listed.
    #[error("invalid constitution `{source_name}`:{}", list_problems(problems))]
    Invalid {
        /// File name (or other label) of the constitution.
        source_name: String,
        /// All problems found.
        problems: Vec<Problem>,
    },
    /// The constitution is valid but its own test cases fail.
    #[error("constitution `{source_name}` fails {} of its {} test cases:{}", report.failed(), report.results.len(), list_failures(report))]
    TestsFailed {
        /// File name (or other label) of the constitution.
        source_name: String,
        /// The full test report.
        report: TestReport,
    },
}

impl LoadError {
    /// The problems of an invalid constitution (empty for other errors).
    pub fn problems(&self) -> &[Problem] {
        match self {
            LoadError::Invalid { problems, .. } => problems,
            _ => &[],
        }
    }
}

fn list_problems(problems: &[Problem]) -> String {
    problems.iter().map(|p| format!("\n  {p}")).collect()
}

fn list_failures(report: &TestReport) -> String {
    report
        .results
        .iter()
        .filter(|r| !r.passed())
        .map(|r| format!("\n  {}", r.summary()))
        .collect()
}

/// Why a decision request could not be evaluated (the caller's fault: maps to HTTP 400).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum RequestError {
    /// The action is not declared in the schema.
    #[error("unknown action `{0}`")]
    UnknownAction(String),
    /// An entity type is not declared in the schema.
    #[error("{field}: `{type_name}` is not an entity type of the schema")]
    InvalidEntityType {
        /// Where in the request.
        field: String,
        /// The offending type name.
        type_name: String,
    },
    /// An attribute or context value cannot be represented in Cedar.
    #[error("{path}: {message}")]
    InvalidValue {
        /// Where in the request.
        path: String,
        /// What is wrong.
        message: String,
    },
    /// The caller supplied `context.detections`, which only the engine may set.
    #[error("context.detections is reserved: the engine fills it from `content`")]
    ReservedContext,
    /// The caller supplied `context.usage`, which only ACGS sets (from its counters).
    #[error("context.usage is reserved: ACGS fills it from its own counters of earlier decisions")]
    ReservedUsage,
    /// A counter the action's `usage` needs has no value (the caller of the engine gave none).
    #[error("no value for the counter `{0}`")]
    MissingUsage(String),
    /// The request asserts facts that only the entity registry may, or names an entity that is not registered.
    #[error("entity registry: {0}")]
    Registry(String),
    /// The entities do not conform to the schema, or repeat a uid.
    #[error("entities: {0}")]
    Entities(String),
    /// The request does not conform to the schema (principal/resource type, context attributes).
    #[error("request does not match the schema: {0}")]
    Schema(String),
}
