//! The ACGS decision engine: constitutions, their hash, content detectors and Cedar-based decisions.
//!
//! A constitution (TOML, see `docs/constitution.md`) is parsed into a [`ConstitutionDocument`], then
//! validated and compiled into a [`Constitution`]: schema and policies checked strictly, policy sets
//! pre-filtered per action, and the [`ConstitutionHash`] computed from the canonical content. An
//! [`Engine`] pairs a constitution with the [`Detectors`] and decides [`DecisionRequest`]s:
//!
//! ```no_run
//! use std::sync::Arc;
//! use acgs_engine::{Constitution, DecisionRequest, Engine};
//!
//! let constitution = Constitution::load("examples/constitution.toml").expect("valid constitution");
//! println!("hash {}", constitution.hash().short());
//! let engine = Engine::new(Arc::new(constitution));
//! let request: DecisionRequest = serde_json::from_str(r#"{
//!     "principal": {"type": "Agent", "id": "a1", "attributes": {}},
//!     "action": "invoke_tool",
//!     "resource": {"type": "Tool", "id": "search"}
//! }"#).expect("json");
//! let decision = engine.decide(&request).expect("well-formed request");
//! println!("{} because {}", decision.outcome, decision.explanation);
//! ```
//!
//! Everything here is synchronous and free of I/O except [`Constitution::load`], which reads a file.
#![deny(missing_docs)]

mod constitution;
mod decision;
mod detectors;
mod document;
mod error;
pub mod governance;
mod hash;
mod json;
mod registry;
mod request;
mod shapes;
mod testing;

pub use constitution::{
    CompiledInvariant, Constitution, Counter, DETECTIONS_ATTRIBUTE, ESCALATE_ANNOTATION, PolicyInfo, USAGE_ATTRIBUTE,
};
pub use decision::{
    Decision, Engine, EvaluationError, PolicyEffect, Reason, Usage, decide, decide_fixture, fixture_parts,
};
pub use detectors::{Detection, DetectionCategory, DetectionKind, Detectors, EXAMPLE_SEPARATOR};
pub use document::{
    ConstitutionDocument, CounterEntry, CounterKind, CounterScope, EntitySource, EntitySourceEntry, EntityWriter,
    FindingSeverity, Invariant, InvariantKind, Metadata, Outcome, PolicyEntry, Principle, SchemaSection, Severity,
    TestCase, VerificationSettings,
};
pub use error::{LoadError, Problem, ProblemKind, RequestError};
pub use hash::{CANONICAL_FORM_TAG, ConstitutionHash, canonical_form, hash_document, normalize_text};
pub use json::reject_duplicate_keys;
pub use registry::{RegisteredEntity, Registry, Unregistrable, split_registry_facts};
pub use request::{
    DecisionRequest, EntityInput, EntityRef, MAX_ANCESTOR_LINKS, MAX_HIERARCHY_DEPTH, MAX_REQUEST_ENTITIES,
    MAX_VALUE_DEPTH,
};
pub use testing::{TestReport, TestResult};
