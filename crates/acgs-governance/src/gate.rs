//! The verification gate an amendment's constitution must pass before its vote opens and again before it is
//! executed: full validation (TOML, schema, every policy strictly against the schema, invariants, the
//! `[governance]` section), its own test cases, and every further check registered as a [`ProofCheck`] (the
//! formal verifier's proofs plug in here). The report is kept with the amendment.

use std::sync::Arc;
use std::time::Instant;

use acgs_engine::{Constitution, Detectors, LoadError};
use serde::{Deserialize, Serialize};

/// One check of the gate.
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct GateCheck {
    /// What was checked: `validation`, `tests`, or a proof check's name.
    pub name: String,
    /// Whether it passed.
    pub passed: bool,
    /// What was found, in words (each problem or failing test on a line of its own).
    pub detail: String,
    /// How long it took (µs).
    pub took_us: u64,
    /// The check's full, structured report, when it has one (the formal verifier's: every proof with its
    /// counterexample, and the change analysis against the constitution in force).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[cfg_attr(feature = "openapi", schema(value_type = Option<Object>))]
    pub report: Option<serde_json::Value>,
}

/// The gate's verdict on one constitution.
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct GateReport {
    /// Whether every check passed.
    pub passed: bool,
    /// For which step: `open` or `execute`.
    pub stage: String,
    /// When it ran (µs since the Unix epoch).
    pub checked_at_us: i64,
    /// The hash of the constitution checked (empty when it did not validate).
    pub constitution_hash: String,
    /// Every check, in the order they ran.
    pub checks: Vec<GateCheck>,
}

impl GateReport {
    /// The failed checks, one line each, for an error message.
    pub fn failures(&self) -> String {
        self.checks
            .iter()
            .filter(|c| !c.passed)
            .map(|c| format!("{}: {}", c.name, c.detail))
            .collect::<Vec<_>>()
            .join("\n")
    }
}

/// What a [`ProofCheck`] found.
#[derive(Debug, Clone, PartialEq)]
pub struct ProofOutcome {
    /// Whether the gate may pass on this check.
    pub passed: bool,
    /// What was found, in words.
    pub detail: String,
    /// The full report, kept with the amendment.
    pub report: Option<serde_json::Value>,
}

/// A further check of the gate, run on a constitution that validated and passed its tests, against the one in
/// force (e.g. proofs that its invariants hold). It may take a while: the gate runs off the request path.
pub trait ProofCheck: Send + Sync {
    /// The check's name in the report.
    fn name(&self) -> &str;
    /// Check `candidate` (with `active` in force).
    fn check(&self, candidate: &Constitution, active: &Constitution) -> ProofOutcome;
}

/// Run the gate on `source` (a constitution's TOML) at `stage`, with the constitution in force `active`.
/// Returns the report and, when it validated, the compiled constitution.
pub fn run_gate(
    stage: &str,
    source_name: &str,
    source: &str,
    active: &Constitution,
    proofs: &[Arc<dyn ProofCheck>],
    now_us: i64,
) -> (GateReport, Option<Arc<Constitution>>) {
    let mut checks = Vec::new();
    let started = Instant::now();
    let compiled = Constitution::compile(source_name, source);
    let validated = match compiled {
        Ok(constitution) => {
            checks.push(GateCheck {
                name: "validation".into(),
                passed: true,
                detail: format!(
                    "{} principles, {} policies, {} invariants, {} tests; every policy valid against the schema",
                    constitution.principles().count(),
                    constitution.policies().count(),
                    constitution.invariants().len(),
                    constitution.tests().len()
                ),
                took_us: elapsed_us(started),
                report: None,
            });
            Some(Arc::new(constitution))
        }
        Err(error) => {
            let detail = match &error {
                LoadError::Invalid { problems, .. } => {
                    problems.iter().map(ToString::to_string).collect::<Vec<_>>().join("\n")
                }
                other => other.to_string(),
            };
            checks.push(GateCheck {
                name: "validation".into(),
                passed: false,
                detail,
                took_us: elapsed_us(started),
                report: None,
            });
            None
        }
    };
    if let Some(candidate) = &validated {
        let started = Instant::now();
        let report = candidate.run_tests(&Detectors::new());
        let failing: Vec<String> = report
            .results
            .iter()
            .filter(|r| !r.passed())
            .map(|r| r.summary())
            .collect();
        let tests_passed = failing.is_empty();
        checks.push(GateCheck {
            name: "tests".into(),
            passed: tests_passed,
            detail: if tests_passed {
                format!("all {} test cases pass", report.results.len())
            } else {
                format!(
                    "{} of {} test cases fail:\n{}",
                    failing.len(),
                    report.results.len(),
                    failing.join("\n")
                )
            },
            took_us: elapsed_us(started),
            report: None,
        });
        if candidate.governance().is_none() {
            checks.push(GateCheck {
                name: "governance".into(),
                passed: false,
                detail: "the constitution has no [governance] section: once in force, nobody could amend it".into(),
                took_us: 0,
                report: None,
            });
        }
        if tests_passed {
            for proof in proofs {
                let started = Instant::now();
                let ProofOutcome { passed, detail, report } = proof.check(candidate, active);
                checks.push(GateCheck {
                    name: proof.name().to_owned(),
                    passed,
                    detail,
                    took_us: elapsed_us(started),
                    report,
                });
            }
        }
    }
    let passed = checks.iter().all(|c| c.passed);
    let report = GateReport {
        passed,
        stage: stage.to_owned(),
        checked_at_us: now_us,
        constitution_hash: validated.as_ref().map(|c| c.hash().to_hex()).unwrap_or_default(),
        checks,
    };
    (report, validated.filter(|_| passed))
}

fn elapsed_us(started: Instant) -> u64 {
    u64::try_from(started.elapsed().as_micros()).unwrap_or(u64::MAX)
}
