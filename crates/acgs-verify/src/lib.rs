//! Formal verification of constitutions: what ACGS proves about a policy set with Cedar's symbolic compiler
//! (`cedar-policy-symcc`) and the cvc5 SMT solver, over every request the schema allows.
//!
//! A [`Verifier`] checks one constitution ([`Verifier::verify_blocking`]: invariants, evaluation errors, policies that
//! match nothing, permits that never take effect, redundant policies, actions where nothing can pass) or compares
//! two ([`Verifier::compare_blocking`]: per action, which requests each allows and denies). Every refutation carries a
//! concrete request in the format of `POST /v1/decisions`, replayed through the decision engine. The encoding of
//! ACGS's decision semantics for the solver is in `encoding`; `docs/verification.md` is the user's guide.

mod change;
mod checks;
mod counterexample;
mod encoding;
mod report;
mod session;
mod solver;
mod workers;

use std::collections::HashMap;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Instant;

use acgs_engine::{Constitution, Detectors, FindingSeverity, PolicyEffect};

pub use report::{
    ActionChange, ChangeReport, CheckKind, CheckResult, Example, OutcomeChange, Verdict, VerificationReport,
};
pub use solver::{PINNED_CVC5_VERSION, SOLVER_PACKAGE, SolverConfig};

use checks::{Run, Severities};
use encoding::Subject;

/// Why a verification could not run (a verdict of `unknown` is not an error: it is in the report).
#[derive(Debug, thiserror::Error)]
pub enum VerifyError {
    /// The solver executable cannot be run.
    #[error(
        "the SMT solver cvc5 cannot be run (`{path}`: {reason}); install the Debian package `cvc5` \
         (apt-get install cvc5) or set ACGS_CVC5 to its path"
    )]
    SolverMissing {
        /// The executable tried.
        path: String,
        /// What went wrong.
        reason: String,
    },
    /// The solver is not the pinned release.
    #[error(
        "cvc5 {found} is installed, but ACGS's verdicts are pinned to cvc5 {pinned} (the regression suite's); \
         install that release (Debian 12's package `cvc5`) or allow another explicitly"
    )]
    SolverVersion {
        /// The version found.
        found: String,
        /// The version required.
        pinned: &'static str,
    },
    /// A policy set could not be encoded for the solver.
    #[error("cannot encode the constitution for the solver: {0}")]
    Encoding(String),
    /// A solver model could not be turned into a decision request.
    #[error("cannot turn the solver's model into a request: {0}")]
    Counterexample(String),
}

/// Results already proved, by (constitution hash, check): an unchanged constitution is not proved again.
#[derive(Debug, Default)]
pub struct ResultCache {
    entries: Mutex<HashMap<String, Vec<CheckResult>>>,
    changes: Mutex<HashMap<String, ChangeReport>>,
}

/// Most entries a cache keeps before it starts over.
const CACHE_CAPACITY: usize = 100_000;

impl ResultCache {
    fn get(&self, key: &str) -> Option<Vec<CheckResult>> {
        let entries = self.entries.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
        entries.get(key).map(|results| {
            results
                .iter()
                .cloned()
                .map(|mut r| {
                    r.cached = true;
                    r.took_us = 0;
                    r
                })
                .collect()
        })
    }

    fn change(&self, key: &str) -> Option<ChangeReport> {
        let changes = self.changes.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
        changes.get(key).cloned()
    }

    fn put_change(&self, key: String, report: &ChangeReport) {
        let undecided = report.actions.iter().any(|a| a.status == "unknown");
        let mut changes = self.changes.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
        if undecided {
            return;
        }
        if changes.len() >= CACHE_CAPACITY {
            changes.clear();
        }
        changes.insert(key, report.clone());
    }

    fn put(&self, key: String, results: &[CheckResult]) {
        // Unknown verdicts are not kept: a later run (perhaps with a longer time limit) asks again.
        if results.iter().any(|r| r.verdict == Verdict::Unknown) {
            return;
        }
        let mut entries = self.entries.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
        if entries.len() >= CACHE_CAPACITY {
            entries.clear();
        }
        entries.insert(key, results.to_vec());
    }
}

/// Proves things about constitutions with the configured solver.
#[derive(Debug, Clone)]
pub struct Verifier {
    config: SolverConfig,
    version: String,
    cache: Arc<ResultCache>,
}

/// Which checks a run makes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Scope {
    /// Invariants, every policy check and every action check.
    All,
    /// The invariants only (with the evaluation-error proofs they rely on, which are not reported).
    Invariants,
    /// What the amendment gate needs: the invariants, evaluation errors, and the policy and action checks whose
    /// severity is `block` (dead permits by default); checks that can only warn are left to full runs.
    Gate,
}

impl Scope {
    fn policy_key(self) -> &'static str {
        match self {
            Scope::All => "policy",
            Scope::Invariants => "policy-errors",
            Scope::Gate => "policy-gate",
        }
    }
}

/// Progress of a run: `(checks done, checks in all, what is being checked)`.
pub type Progress<'a> = &'a (dyn Fn(usize, usize, &str) + Sync);

impl Verifier {
    /// A verifier using `config`'s solver, after checking that it runs and is the pinned release.
    pub fn new(config: SolverConfig) -> Result<Self, VerifyError> {
        let version = config.check()?;
        Ok(Self {
            config,
            version,
            cache: Arc::new(ResultCache::default()),
        })
    }

    /// The solver and its version, e.g. `cvc5 1.0.3`.
    pub fn solver(&self) -> String {
        format!("cvc5 {}", self.version)
    }

    /// Every check on `constitution`. Blocks the calling thread (call it from a blocking task, not from async
    /// code) while the configured number of workers, each with a solver process, run the checks.
    pub fn verify_blocking(
        &self,
        constitution: &Constitution,
        progress: Progress<'_>,
    ) -> Result<VerificationReport, VerifyError> {
        self.verify_scope_blocking(constitution, Scope::All, progress)
    }

    /// The checks of `scope` on `constitution` (blocking, as [`Self::verify_blocking`]).
    pub fn verify_scope_blocking(
        &self,
        constitution: &Constitution,
        scope: Scope,
        progress: Progress<'_>,
    ) -> Result<VerificationReport, VerifyError> {
        let started = Instant::now();
        let hash = constitution.hash().to_hex();
        let subject = Subject::new(constitution)?;
        let detectors = Detectors::new();
        let c = subject.constitution;
        let policies: Vec<(String, PolicyEffect)> = c.policies().map(|p| (p.id.clone(), p.effect)).collect();
        let mut actions: Vec<String> = subject.envs.iter().map(|e| e.action.clone()).collect();
        actions.dedup();
        let severities = Severities::of(&subject);
        if scope == Scope::Invariants
            || (scope == Scope::Gate && severities.of_kind(CheckKind::ActionReachable) != FindingSeverity::Block)
        {
            actions.clear();
        }
        let total = policies.len() + c.invariants().len() + actions.len();
        let done = AtomicUsize::new(0);
        let step = |what: String| progress(done.fetch_add(1, Ordering::Relaxed), total, &what);
        let (workers, config) = (self.config.workers, &self.config);
        let (subject, detectors) = (&subject, &detectors);

        let per_policy = workers::for_each(&policies, workers, config, async |session, (id, effect)| {
            step(format!("policy {id}"));
            let key = format!("{hash}/{}/{id}", scope.policy_key());
            if let Some(results) = self.cache.get(&key) {
                return Ok(results);
            }
            let mut run = Run::new(subject, session, detectors, severities);
            let results = match scope {
                Scope::All => run.policy(id, *effect, true).await?,
                Scope::Gate => run.policy(id, *effect, false).await?,
                Scope::Invariants => vec![run.never_errors(id).await?],
            };
            self.cache.put(key, &results);
            Ok(results)
        })?
        .into_iter()
        .flatten()
        .collect::<Vec<_>>();
        let errors: HashMap<String, Verdict> = per_policy
            .iter()
            .filter(|r| r.check == CheckKind::NeverErrors)
            .map(|r| (r.subject.clone(), r.verdict))
            .collect();
        let mut results = workers::for_each(c.invariants(), workers, config, async |session, inv| {
            step(format!("invariant {}", inv.id));
            let key = format!("{hash}/invariant/{}", inv.id);
            if let Some(mut cached) = self.cache.get(&key).filter(|c| c.len() == 1) {
                return Ok(cached.remove(0));
            }
            let result = Run::new(subject, session, detectors, severities)
                .invariant(inv, &errors)
                .await?;
            self.cache.put(key, std::slice::from_ref(&result));
            Ok(result)
        })?;
        if scope != Scope::Invariants {
            results.extend(per_policy);
        }
        results.extend(workers::for_each(
            &actions,
            workers,
            config,
            async |session, action| {
                step(format!("action {action}"));
                let key = format!("{hash}/action/{action}");
                if let Some(mut cached) = self.cache.get(&key).filter(|c| c.len() == 1) {
                    return Ok(cached.remove(0));
                }
                let result = Run::new(subject, session, detectors, severities).action(action).await?;
                self.cache.put(key, std::slice::from_ref(&result));
                Ok(result)
            },
        )?);
        progress(total, total, "done");
        results.retain(|r| r.severity != FindingSeverity::Off);
        let blocking = results.iter().filter(|r| r.blocks()).count();
        let warnings = results.iter().filter(|r| r.warns()).count();
        Ok(VerificationReport {
            constitution_hash: hash,
            solver: self.solver(),
            passed: blocking == 0,
            blocking,
            warnings,
            checks: results,
            took_ms: u64::try_from(started.elapsed().as_millis()).unwrap_or(u64::MAX),
        })
    }

    /// How decisions change from `old` (in force) to `new` (proposed) (blocking, as [`Self::verify_blocking`]).
    pub fn compare_blocking(
        &self,
        old: &Constitution,
        new: &Constitution,
        progress: Progress<'_>,
    ) -> Result<ChangeReport, VerifyError> {
        let key = format!("{}/compare/{}", old.hash().to_hex(), new.hash().to_hex());
        if let Some(report) = self.cache.change(&key) {
            return Ok(report);
        }
        let old = Subject::new(old)?;
        let new = Subject::new(new)?;
        let report = change::compare(&old, &new, &self.config, progress)?;
        self.cache.put_change(key, &report);
        Ok(report)
    }
}

/// A runtime for one blocking call (the solver is driven through tokio's process pipes).
pub(crate) fn runtime() -> Result<tokio::runtime::Runtime, VerifyError> {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(|e| VerifyError::Encoding(format!("cannot start the solver's runtime: {e}")))
}

/// A progress callback that ignores progress.
pub fn no_progress(_done: usize, _total: usize, _what: &str) {}
