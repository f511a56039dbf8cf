//! `GET /v1/constitution` and `GET /v1/constitution/principles`: the active constitution and its hash.

use acgs_engine::{Constitution, InvariantKind, Principle, Severity};
use axum::Json;
use axum::extract::State;
use serde::Serialize;

use crate::state::AppState;

/// A policy as published.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct PolicyView {
    /// Policy id.
    pub id: String,
    /// Principle implemented.
    pub principle_id: String,
    /// `permit` or `forbid`.
    pub effect: acgs_engine::PolicyEffect,
    /// Escalation rule (`@escalate` forbid).
    pub escalation: bool,
    /// What it does.
    pub description: String,
    /// Cedar text (normalised).
    pub cedar: String,
}

/// An invariant as published.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct InvariantView {
    /// Invariant id.
    pub id: String,
    /// Principle protected.
    pub principle_id: String,
    /// Statement.
    pub description: String,
    /// `never_allowed`, `always_allowed`, `never_errors` or `implies`.
    pub kind: InvariantKind,
    /// Cedar `permit` describing the requests concerned (absent: every request the schema allows).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub matching: Option<String>,
    /// For `implies`: the principle whose policies must allow whatever this principle's policies allow.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub implies: Option<String>,
}

/// The active constitution.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct ConstitutionView {
    /// Name.
    pub name: String,
    /// Version label.
    pub version: String,
    /// Description.
    pub description: String,
    /// Full constitutional hash (SHA-256 of the canonical form, 64 hex digits).
    pub hash: String,
    /// Short hash (first 16 hex digits).
    pub hash_short: String,
    /// Principles in id order.
    pub principles: Vec<Principle>,
    /// Policies in file order.
    pub policies: Vec<PolicyView>,
    /// Invariants.
    pub invariants: Vec<InvariantView>,
    /// Cedar schema text.
    pub schema: String,
    /// Number of test cases the constitution carries (all passed when it was loaded).
    pub test_cases: usize,
}

impl From<&Constitution> for ConstitutionView {
    fn from(c: &Constitution) -> Self {
        Self {
            name: c.metadata().name.clone(),
            version: c.metadata().version.clone(),
            description: c.metadata().description.clone(),
            hash: c.hash().to_hex(),
            hash_short: c.hash().short(),
            principles: c.principles().cloned().collect(),
            policies: c
                .policies()
                .map(|p| PolicyView {
                    id: p.id.clone(),
                    principle_id: p.principle_id.clone(),
                    effect: p.effect,
                    escalation: p.escalation,
                    description: p.description.clone(),
                    cedar: p.cedar.clone(),
                })
                .collect(),
            invariants: c
                .invariants()
                .iter()
                .map(|i| InvariantView {
                    id: i.id.clone(),
                    principle_id: i.principle_id.clone(),
                    description: i.description.clone(),
                    kind: i.kind,
                    matching: i.matching.as_ref().map(ToString::to_string),
                    implies: i.implies.clone(),
                })
                .collect(),
            schema: c.schema_text(),
            test_cases: c.tests().len(),
        }
    }
}

/// A principle with the policies that implement it: the principle's own fields (as in [`Principle`]) and
/// `policies`. Spelled out rather than a flattened `Principle`, whose schema allows no further member.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct PrincipleView {
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
    /// Ids of the policies implementing it.
    pub policies: Vec<String>,
}

impl PrincipleView {
    fn new(principle: &Principle, policies: Vec<String>) -> Self {
        Self {
            id: principle.id.clone(),
            title: principle.title.clone(),
            text: principle.text.clone(),
            category: principle.category.clone(),
            priority: principle.priority,
            severity: principle.severity,
            policies,
        }
    }
}

/// The active constitution: metadata, hash, principles, policies, invariants and schema.
#[utoipa::path(get, path = "/v1/constitution", tag = "constitution", responses((status = 200, body = ConstitutionView)))]
pub async fn show(State(state): State<AppState>) -> Json<ConstitutionView> {
    Json(ConstitutionView::from(state.active.constitution().as_ref()))
}

/// The principles of the active constitution, each with its policies.
#[utoipa::path(get, path = "/v1/constitution/principles", tag = "constitution", responses((status = 200, body = Vec<PrincipleView>)))]
pub async fn principles(State(state): State<AppState>) -> Json<Vec<PrincipleView>> {
    let c = state.active.constitution();
    Json(
        c.principles()
            .map(|p| {
                let policies = c
                    .policies()
                    .filter(|pol| pol.principle_id == p.id)
                    .map(|pol| pol.id.clone())
                    .collect();
                PrincipleView::new(p, policies)
            })
            .collect(),
    )
}
