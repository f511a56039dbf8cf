//! `acgs verify FILE [--against FILE]` and `acgs constitution validate --prove`: the formal verifier run locally on
//! constitution files, printed as text or JSON, with progress on standard error; the exit status says whether
//! anything blocks.

use std::io::{IsTerminal, Write};
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::sync::Arc;
use std::time::Duration;

use acgs_engine::Constitution;
use acgs_verify::{ChangeReport, CheckKind, SolverConfig, Verdict, VerificationReport, Verifier};
use anyhow::{Context, Result};

/// `acgs verify`.
#[derive(Debug, clap::Args)]
pub struct VerifyArgs {
    /// Constitution file (TOML) to verify.
    pub file: PathBuf,
    /// Also compare it with this constitution (the one in force): what the change allows or denies differently.
    #[arg(long, value_name = "FILE")]
    pub against: Option<PathBuf>,
    /// Print the report as JSON.
    #[arg(long)]
    pub json: bool,
    /// Most time one solver query may take (ms); a query that runs out of time is `unknown`.
    #[arg(long, value_name = "MS", env = "ACGS_SOLVER_TIMEOUT_MS", default_value_t = 10_000)]
    pub timeout_ms: u64,
    /// Accept a cvc5 release other than the pinned one.
    #[arg(long)]
    pub allow_any_solver_version: bool,
    /// Print every check, not only the ones that do not hold.
    #[arg(long)]
    pub all: bool,
}

/// Run `acgs verify`: exit 0 when nothing blocks, 1 when something does (a violated invariant, a possible
/// evaluation error, a dead permit, or `unknown` where a proof was required), 2 when it could not run.
pub fn run(args: VerifyArgs) -> Result<ExitCode> {
    let candidate = load(&args.file)?;
    let against = args.against.as_deref().map(load).transpose()?;
    let verifier = match verifier(args.timeout_ms, args.allow_any_solver_version) {
        Ok(v) => v,
        Err(e) => {
            eprintln!("error: {e}");
            return Ok(ExitCode::from(2));
        }
    };
    let progress = progress_printer();
    let report = verifier
        .verify_blocking(&candidate, &progress)
        .context("verification failed")?;
    let change = match against {
        Some(old) => Some(
            verifier
                .compare_blocking(&old, &candidate, &progress)
                .context("change analysis failed")?,
        ),
        None => None,
    };
    clear_progress();
    if args.json {
        let value = serde_json::json!({ "verification": report, "change": change });
        println!("{}", serde_json::to_string_pretty(&value)?);
    } else {
        print_report(&args.file, &report, args.all);
        if let Some(change) = &change {
            println!();
            print_change(change);
        }
    }
    Ok(if report.passed {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    })
}

/// `acgs constitution validate --prove`: the proofs after a successful validation. Returns whether all passed.
pub fn prove(file: &Path, constitution: Constitution) -> Result<bool> {
    // The per-query limit from ACGS_SOLVER_TIMEOUT_MS, as for `acgs verify`.
    let verifier = Verifier::new(SolverConfig::from_env())?;
    let progress = progress_printer();
    let report = verifier
        .verify_blocking(&constitution, &progress)
        .context("verification failed")?;
    clear_progress();
    print_report(file, &report, false);
    Ok(report.passed)
}

fn verifier(timeout_ms: u64, allow_any_version: bool) -> Result<Verifier> {
    let mut config = SolverConfig::from_env();
    config.query_timeout = Duration::from_millis(timeout_ms.max(1));
    config.allow_any_version = allow_any_version;
    Ok(Verifier::new(config)?)
}

fn load(path: &Path) -> Result<Arc<Constitution>> {
    // The file's own test cases are not required to pass: the proofs say more about a draft than its examples.
    Constitution::compile_file(path)
        .map(Arc::new)
        .map_err(|e| anyhow::anyhow!("{e}"))
}

/// Progress on standard error when it is a terminal, or every tenth of the run when it is not.
fn progress_printer() -> impl Fn(usize, usize, &str) + Sync {
    let terminal = std::io::stderr().is_terminal();
    move |done: usize, total: usize, what: &str| {
        let mut err = std::io::stderr();
        if terminal {
            let _ = write!(err, "\r\x1b[2K[{done}/{total}] {what}");
            let _ = err.flush();
        } else if total >= 10 && done.is_multiple_of(total / 10) && done < total {
            let _ = writeln!(err, "[{done}/{total}] {what}");
        }
    }
}

fn clear_progress() {
    if std::io::stderr().is_terminal() {
        eprint!("\r\x1b[2K");
    }
}

fn verdict_word(v: Verdict) -> &'static str {
    match v {
        Verdict::Holds => "holds",
        Verdict::Violated => "VIOLATED",
        Verdict::Unknown => "UNKNOWN",
    }
}

fn print_report(file: &Path, report: &VerificationReport, all: bool) {
    println!(
        "{}: {} ({} blocking, {} warnings; {} checks in {} ms with {})",
        file.display(),
        if report.passed { "verified" } else { "NOT verified" },
        report.blocking,
        report.warnings,
        report.checks.len(),
        report.took_ms,
        report.solver
    );
    println!("constitutional hash: {}", report.constitution_hash);
    for kind in [
        CheckKind::Invariant,
        CheckKind::NeverErrors,
        CheckKind::PolicyMatches,
        CheckKind::PermitTakesEffect,
        CheckKind::PolicyNeeded,
        CheckKind::ActionReachable,
    ] {
        let of_kind: Vec<_> = report.checks.iter().filter(|c| c.check == kind).collect();
        if of_kind.is_empty() {
            continue;
        }
        let holding = of_kind.iter().filter(|c| c.verdict == Verdict::Holds).count();
        println!();
        println!("{} ({holding} of {} hold)", kind.as_str(), of_kind.len());
        for c in of_kind {
            if c.verdict == Verdict::Holds && !all && kind != CheckKind::Invariant {
                continue;
            }
            let mark = if c.blocks() {
                " [blocks]"
            } else if c.warns() {
                " [warning]"
            } else {
                ""
            };
            println!(
                "  {:<9} {}{mark}: {} ({} ms{})",
                verdict_word(c.verdict),
                c.subject,
                c.detail,
                c.took_us / 1000,
                if c.cached { ", cached" } else { "" }
            );
            if c.verdict != Verdict::Holds
                && let Some(ex) = &c.example
            {
                println!(
                    "            {}; the engine decides {:?} ({})",
                    ex.shows,
                    ex.outcome,
                    ex.policies.join(", ")
                );
                println!(
                    "            request: {}",
                    serde_json::to_string(&ex.request).unwrap_or_default()
                );
            }
        }
    }
}

fn print_change(change: &ChangeReport) {
    println!(
        "change: {} ({} → {}, {} ms)",
        if change.equivalent {
            "equivalent: every request is decided the same way"
        } else {
            "NOT equivalent"
        },
        &change.old_hash[..16.min(change.old_hash.len())],
        &change.new_hash[..16.min(change.new_hash.len())],
        change.took_ms
    );
    for action in &change.actions {
        println!("  {:<10} {}", action.status, action.action);
        for outcome in action.outcomes.iter().filter(|o| o.verdict != Verdict::Holds) {
            println!("      {}: {}", outcome.outcome, outcome.detail);
            for ex in [&outcome.only_new, &outcome.only_old].into_iter().flatten() {
                println!(
                    "        {}: new {:?}, old {}",
                    ex.shows,
                    ex.outcome,
                    ex.old_outcome.map_or("refused".to_owned(), |o| format!("{o:?}"))
                );
                println!(
                    "        request: {}",
                    serde_json::to_string(&ex.request).unwrap_or_default()
                );
            }
        }
    }
}
