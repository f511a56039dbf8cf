//! The SMT solver ACGS proves with: where the cvc5 executable is, which version it must be, how long one query may
//! take, and starting a solver process for a verification run.

use std::path::PathBuf;
use std::process::Command;
use std::time::Duration;

use cedar_policy_symcc::solver::LocalSolver;

use crate::VerifyError;

/// The cvc5 release whose verdicts the regression suite (`crates/acgs-verify/tests/regression.rs`) was recorded
/// with: Debian 12's package `cvc5`. Another release is refused unless explicitly allowed, so that a solver change
/// cannot silently flip a verdict.
pub const PINNED_CVC5_VERSION: &str = "1.0.3";

/// The Debian package that provides the solver (named in the error when it is missing).
pub const SOLVER_PACKAGE: &str = "cvc5";

/// How the solver is found and run.
#[derive(Debug, Clone)]
pub struct SolverConfig {
    /// The cvc5 executable (default: `cvc5` on `PATH`; `ACGS_CVC5` overrides).
    pub path: PathBuf,
    /// Most time one query may take; a query that runs out of time is reported `unknown`, never as holding.
    pub query_timeout: Duration,
    /// Accept a cvc5 release other than [`PINNED_CVC5_VERSION`] (its verdicts have not been checked against the
    /// regression suite).
    pub allow_any_version: bool,
    /// Worker threads of a run, each with its own solver process (default: the CPUs, at most 8).
    pub workers: usize,
}

impl Default for SolverConfig {
    fn default() -> Self {
        Self {
            path: PathBuf::from("cvc5"),
            query_timeout: Duration::from_secs(10),
            allow_any_version: false,
            workers: std::thread::available_parallelism()
                .map_or(1, std::num::NonZeroUsize::get)
                .clamp(1, 8),
        }
    }
}

impl SolverConfig {
    /// The defaults, with `ACGS_CVC5` (the executable), `ACGS_SOLVER_TIMEOUT_MS` (per query) and
    /// `ACGS_SOLVER_WORKERS` (threads of a run) from the environment when set.
    pub fn from_env() -> Self {
        let mut config = Self::default();
        if let Some(path) = std::env::var_os("ACGS_CVC5").filter(|p| !p.is_empty()) {
            config.path = PathBuf::from(path);
        }
        if let Some(ms) = std::env::var("ACGS_SOLVER_TIMEOUT_MS")
            .ok()
            .and_then(|v| v.parse::<u64>().ok())
            .filter(|ms| *ms > 0)
        {
            config.query_timeout = Duration::from_millis(ms);
        }
        if let Some(n) = std::env::var("ACGS_SOLVER_WORKERS")
            .ok()
            .and_then(|v| v.parse::<usize>().ok())
            .filter(|n| *n > 0)
        {
            config.workers = n;
        }
        config
    }

    /// Run `cvc5 --version` and check the release against the pin. Returns the version.
    pub fn check(&self) -> Result<String, VerifyError> {
        let output = Command::new(&self.path)
            .arg("--version")
            .output()
            .map_err(|e| VerifyError::SolverMissing {
                path: self.path.display().to_string(),
                reason: e.to_string(),
            })?;
        let text = String::from_utf8_lossy(&output.stdout);
        let version = parse_version(&text).ok_or_else(|| VerifyError::SolverMissing {
            path: self.path.display().to_string(),
            reason: format!("`{} --version` did not print a cvc5 version", self.path.display()),
        })?;
        if version != PINNED_CVC5_VERSION && !self.allow_any_version {
            return Err(VerifyError::SolverVersion {
                found: version,
                pinned: PINNED_CVC5_VERSION,
            });
        }
        Ok(version)
    }

    /// Start one solver process (it answers the queries of one run, one after another).
    pub(crate) fn spawn(&self) -> Result<LocalSolver, VerifyError> {
        let mut command = tokio::process::Command::new(&self.path);
        command
            .args(["--lang", "smt"])
            .arg(format!("--tlimit-per={}", self.query_timeout.as_millis().max(1)))
            .kill_on_drop(true);
        LocalSolver::from_command(&mut command).map_err(|e| VerifyError::SolverMissing {
            path: self.path.display().to_string(),
            reason: e.to_string(),
        })
    }
}

/// The version in `cvc5 --version`'s first line ("This is cvc5 version 1.0.3 [...]").
fn parse_version(text: &str) -> Option<String> {
    let line = text.lines().next()?;
    let rest = line.split("cvc5 version").nth(1)?.trim();
    let version = rest.split_whitespace().next()?;
    Some(version.to_owned())
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use super::parse_version;

    #[test]
    fn reads_the_version_line_cvc5_prints() {
        assert_eq!(
            parse_version("This is cvc5 version 1.0.3 [git tag 1.0.3 branch HEAD]\ncompiled with GCC\n").unwrap(),
            "1.0.3"
        );
        assert_eq!(parse_version("z3 version 4.8.12\n"), None);
        assert_eq!(parse_version(""), None);
    }
}
