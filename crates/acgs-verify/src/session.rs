//! One solver process answering a run's queries one after another: each query's answer is a proof, a
//! counterexample, or `unknown` (a time limit, a solver failure). A failed process is replaced for the next query.

use std::time::Duration;

use cedar_policy_symcc::err::Error as SymccError;
use cedar_policy_symcc::solver::LocalSolver;
use cedar_policy_symcc::{CedarSymCompiler, CompiledPolicy, CompiledPolicySet, Env};

use crate::VerifyError;
use crate::solver::SolverConfig;

/// What the solver said about a query of the form "no request has property X".
pub(crate) enum Answer {
    /// Proved: no such request.
    Proved,
    /// A request with the property.
    Found(Box<Env>),
    /// Not decided, and why.
    Unknown(String),
}

/// The solver process of one run.
pub(crate) struct Session {
    config: SolverConfig,
    symcc: Option<CedarSymCompiler<LocalSolver>>,
    /// Queries asked so far.
    pub(crate) queries: u64,
}

/// Ask one query with a time limit; on an error or timeout the solver process is dropped (and killed).
macro_rules! ask {
    ($session:expr, |$s:ident| $call:expr) => {{
        let limit = $session.config.query_timeout + Duration::from_secs(5);
        $session.queries += 1;
        match $session.solver() {
            Err(e) => Answer::Unknown(e.to_string()),
            Ok($s) => match tokio::time::timeout(limit, $call).await {
                Ok(Ok(None)) => Answer::Proved,
                Ok(Ok(Some(env))) => Answer::Found(Box::new(env)),
                Ok(Err(SymccError::SolverUnknown)) => Answer::Unknown(format!(
                    "the solver returned `unknown` (per-query limit {} ms)",
                    $session.config.query_timeout.as_millis()
                )),
                Ok(Err(e)) => {
                    $session.symcc = None;
                    Answer::Unknown(format!("the solver failed: {e}"))
                }
                Err(_) => {
                    $session.symcc = None;
                    Answer::Unknown(format!("no answer within {} ms", limit.as_millis()))
                }
            },
        }
    }};
}

impl Session {
    pub(crate) fn new(config: SolverConfig) -> Self {
        Self {
            config,
            symcc: None,
            queries: 0,
        }
    }

    fn solver(&mut self) -> Result<&mut CedarSymCompiler<LocalSolver>, VerifyError> {
        if self.symcc.is_none() {
            let solver = self.config.spawn()?;
            self.symcc = Some(CedarSymCompiler::new(solver).map_err(|e| VerifyError::Encoding(e.to_string()))?);
        }
        self.symcc
            .as_mut()
            .ok_or_else(|| VerifyError::Encoding("solver not started".into()))
    }

    /// Is there a request `set` allows? `Found` is one.
    pub(crate) async fn allowed_by(&mut self, set: &CompiledPolicySet) -> Answer {
        ask!(self, |s| s.check_always_denies_with_counterexample_opt(set))
    }

    /// Is there a request `a` allows and `b` does not? `Found` is one.
    pub(crate) async fn allowed_by_first_only(&mut self, a: &CompiledPolicySet, b: &CompiledPolicySet) -> Answer {
        ask!(self, |s| s.check_implies_with_counterexample_opt(a, b))
    }

    /// Is there a request both allow? `Found` is one.
    pub(crate) async fn allowed_by_both(&mut self, a: &CompiledPolicySet, b: &CompiledPolicySet) -> Answer {
        ask!(self, |s| s.check_disjoint_with_counterexample_opt(a, b))
    }

    /// Is there a request on which `a` and `b` decide differently? `Found` is one.
    pub(crate) async fn decided_differently(&mut self, a: &CompiledPolicySet, b: &CompiledPolicySet) -> Answer {
        ask!(self, |s| s.check_equivalent_with_counterexample_opt(a, b))
    }

    /// Is there a request on which `policy` fails to evaluate? `Found` is one.
    pub(crate) async fn errors_on(&mut self, policy: &CompiledPolicy) -> Answer {
        ask!(self, |s| s.check_never_errors_with_counterexample_opt(policy))
    }

    /// Stop the solver process.
    pub(crate) async fn close(mut self) {
        if let Some(mut symcc) = self.symcc.take() {
            let _ = symcc.solver_mut().clean_up().await;
        }
    }
}
