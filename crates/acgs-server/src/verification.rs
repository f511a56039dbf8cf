//! The formal verifier in the server: the proof check of the amendment gate (an amendment whose constitution
//! breaks an invariant, can fail to evaluate or has a dead permit cannot open voting or execute; the proofs and the
//! change analysis against the constitution in force are kept with it), and verification jobs (`POST /v1/verify`)
//! run on the blocking pool, one at a time, off the request path.

use std::collections::VecDeque;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};

use acgs_engine::Constitution;
use acgs_governance::{ProofCheck, ProofOutcome};
use acgs_verify::{ChangeReport, Scope, SolverConfig, VerificationReport, Verifier};
use serde::Serialize;

/// Most jobs kept (finished ones beyond this are forgotten, oldest first).
const KEPT_JOBS: usize = 64;

/// The verifier, or why there is none (the solver is missing or not the pinned release).
#[derive(Clone)]
pub struct VerificationService {
    verifier: Result<Verifier, String>,
    jobs: Arc<Mutex<VecDeque<Arc<Job>>>>,
    /// One job at a time: proofs are CPU-heavy and decisions come first.
    slot: Arc<tokio::sync::Semaphore>,
}

impl std::fmt::Debug for VerificationService {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("VerificationService")
            .field("solver", &self.solver())
            .finish_non_exhaustive()
    }
}

/// A verification job as the API shows it.
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct VerificationJob {
    /// The job's id.
    pub id: String,
    /// `queued`, `running`, `done` or `failed`.
    pub status: String,
    /// Checks done so far.
    pub done: usize,
    /// Checks in all (0 until the run starts).
    pub total: usize,
    /// What is being checked now.
    pub current: String,
    /// The constitution checked (full hash).
    pub constitution_hash: String,
    /// The report, once done.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub verification: Option<VerificationReport>,
    /// What it decides differently from the constitution in force, once done.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub change: Option<ChangeReport>,
    /// Why it failed.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
}

struct Job {
    view: Mutex<VerificationJob>,
    done: AtomicUsize,
    total: AtomicUsize,
}

impl Job {
    fn snapshot(&self) -> VerificationJob {
        let mut view = lock(&self.view).clone();
        if view.status == "running" {
            view.done = self.done.load(Ordering::Relaxed);
            view.total = self.total.load(Ordering::Relaxed);
        }
        view
    }
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
}

impl VerificationService {
    /// A service on the solver `config` names (checked now: a missing solver is reported by every job and fails
    /// the amendment gate closed).
    pub fn new(config: SolverConfig) -> Self {
        Self {
            verifier: Verifier::new(config).map_err(|e| e.to_string()),
            jobs: Arc::default(),
            slot: Arc::new(tokio::sync::Semaphore::new(1)),
        }
    }

    /// The solver in use (`cvc5 1.0.3`), or why there is none.
    pub fn solver(&self) -> Result<String, String> {
        self.verifier.as_ref().map(Verifier::solver).map_err(Clone::clone)
    }

    /// The amendment gate's proof check.
    pub fn gate_check(&self) -> Arc<dyn ProofCheck> {
        Arc::new(GateProofs {
            verifier: self.verifier.clone(),
        })
    }

    /// Start verifying `candidate` (and comparing it with `active`); returns the job as queued.
    pub fn start(&self, id: String, candidate: Arc<Constitution>, active: Arc<Constitution>) -> VerificationJob {
        let job = Arc::new(Job {
            view: Mutex::new(VerificationJob {
                id: id.clone(),
                status: "queued".into(),
                done: 0,
                total: 0,
                current: String::new(),
                constitution_hash: candidate.hash().to_hex(),
                verification: None,
                change: None,
                error: None,
            }),
            done: AtomicUsize::new(0),
            total: AtomicUsize::new(0),
        });
        {
            let mut jobs = lock(&self.jobs);
            jobs.push_back(job.clone());
            while jobs.len() > KEPT_JOBS {
                jobs.pop_front();
            }
        }
        let (verifier, slot, queued) = (self.verifier.clone(), self.slot.clone(), job.snapshot());
        tokio::spawn(async move {
            let Ok(_permit) = slot.acquire_owned().await else {
                return;
            };
            lock(&job.view).status = "running".into();
            let runner = job.clone();
            let outcome = tokio::task::spawn_blocking(move || run_job(&verifier, &runner, &candidate, &active)).await;
            let mut view = lock(&job.view);
            match outcome {
                Ok(Ok((verification, change))) => {
                    view.status = "done".into();
                    view.done = verification.checks.len();
                    view.total = verification.checks.len();
                    view.verification = Some(verification);
                    view.change = Some(change);
                }
                Ok(Err(e)) => {
                    view.status = "failed".into();
                    view.error = Some(e);
                }
                Err(e) => {
                    view.status = "failed".into();
                    view.error = Some(format!("the verification task ended: {e}"));
                }
            }
        });
        queued
    }

    /// A job by id.
    pub fn job(&self, id: &str) -> Option<VerificationJob> {
        lock(&self.jobs)
            .iter()
            .find(|j| lock(&j.view).id == id)
            .map(|j| j.snapshot())
    }
}

fn run_job(
    verifier: &Result<Verifier, String>,
    job: &Job,
    candidate: &Constitution,
    active: &Constitution,
) -> Result<(VerificationReport, ChangeReport), String> {
    let verifier = verifier.as_ref().map_err(Clone::clone)?;
    let progress = |done: usize, total: usize, what: &str| {
        job.done.store(done, Ordering::Relaxed);
        job.total.store(total, Ordering::Relaxed);
        lock(&job.view).current = what.to_owned();
    };
    let verification = verifier
        .verify_blocking(candidate, &progress)
        .map_err(|e| e.to_string())?;
    let change = verifier
        .compare_blocking(active, candidate, &acgs_verify::no_progress)
        .map_err(|e| e.to_string())?;
    Ok((verification, change))
}

/// The gate's proof check: the proofs the gate needs, and the change analysis against the constitution in force.
struct GateProofs {
    verifier: Result<Verifier, String>,
}

impl ProofCheck for GateProofs {
    fn name(&self) -> &str {
        "formal_verification"
    }

    fn check(&self, candidate: &Constitution, active: &Constitution) -> ProofOutcome {
        let verifier = match &self.verifier {
            Ok(v) => v,
            Err(e) => {
                return ProofOutcome {
                    passed: false,
                    detail: format!("the proofs cannot run, so the gate stays closed: {e}"),
                    report: None,
                };
            }
        };
        let verification = match verifier.verify_scope_blocking(candidate, Scope::Gate, &acgs_verify::no_progress) {
            Ok(report) => report,
            Err(e) => {
                return ProofOutcome {
                    passed: false,
                    detail: format!("the proofs failed to run: {e}"),
                    report: None,
                };
            }
        };
        let change = verifier.compare_blocking(active, candidate, &acgs_verify::no_progress);
        let mut lines = vec![format!(
            "{} checks with {} in {} ms: {} blocking, {} warnings",
            verification.checks.len(),
            verification.solver,
            verification.took_ms,
            verification.blocking,
            verification.warnings
        )];
        lines.extend(verification.blocking_lines());
        lines.extend(
            verification
                .warning_lines()
                .into_iter()
                .map(|l| format!("warning: {l}")),
        );
        match &change {
            Ok(change) if change.equivalent => {
                lines.push("change: every request is decided as by the constitution in force".into());
            }
            Ok(change) => {
                for action in change.actions.iter().filter(|a| a.status != "unchanged") {
                    lines.push(format!("change: {} {}", action.action, action.status));
                }
            }
            Err(e) => lines.push(format!("change analysis failed: {e}")),
        }
        let report = serde_json::json!({
            "verification": verification,
            "change": change.as_ref().ok(),
        });
        ProofOutcome {
            passed: verification.passed,
            detail: lines.join("\n"),
            report: Some(report),
        }
    }
}
