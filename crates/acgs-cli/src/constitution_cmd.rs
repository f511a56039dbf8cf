//! `acgs constitution validate|hash|show|test FILE`, and the stored versions: `versions`, `activate FILE`.

use std::path::PathBuf;
use std::process::ExitCode;

use acgs_engine::{Constitution, Detectors, LoadError};
use anyhow::Result;

#[derive(Debug, clap::Subcommand)]
pub enum ConstitutionCommand {
    /// Check syntax, ids, principles, Cedar schema and policies (strict) and the test cases.
    Validate {
        /// Constitution file (TOML).
        file: PathBuf,
        /// Then prove its invariants and check its policies with the SMT solver (as `acgs verify`).
        #[arg(long)]
        prove: bool,
    },
    /// Print the constitutional hash (full and short).
    Hash {
        /// Constitution file (TOML).
        file: PathBuf,
        /// Print the canonical form the hash is computed over instead.
        #[arg(long)]
        canonical: bool,
    },
    /// Summarise principles, policies and invariants.
    Show {
        /// Constitution file (TOML).
        file: PathBuf,
        /// Print as JSON.
        #[arg(long)]
        json: bool,
    },
    /// Run the constitution's own test cases with a pass/fail report.
    Test {
        /// Constitution file (TOML).
        file: PathBuf,
        /// Print the report as JSON.
        #[arg(long)]
        json: bool,
    },
    /// List the constitution versions a server's database holds; the last is in force.
    Versions {
        #[command(flatten)]
        source: crate::decisions_cmd::Source,
        /// Print as JSON.
        #[arg(long)]
        json: bool,
    },
    /// Put a constitution file in force as the next version; servers run it from their next start.
    Activate {
        /// Constitution file (TOML); it must validate and pass its tests.
        file: PathBuf,
        /// Why the constitution changes (recorded with the version).
        #[arg(long)]
        reason: String,
        #[command(flatten)]
        source: crate::decisions_cmd::Source,
    },
}

pub fn run(cmd: ConstitutionCommand) -> Result<ExitCode> {
    match cmd {
        ConstitutionCommand::Versions { source, json } => block_on(async move {
            let store = crate::decisions_cmd::open(&source).await?;
            let versions = store.constitution_versions().await?;
            if json {
                let rows: Vec<serde_json::Value> = versions.iter().map(version_json).collect();
                println!("{}", serde_json::to_string_pretty(&rows)?);
            } else if versions.is_empty() {
                println!("no constitution version recorded yet (the server records one on its first start)");
            } else {
                for v in &versions {
                    println!(
                        "{:>4}  {}  {} v{}  {}  by {}: {}",
                        v.number,
                        &v.version.hash[..16],
                        v.version.name,
                        v.version.version_label,
                        crate::decisions_cmd::time(v.version.activated_at_us),
                        v.version.activated_by,
                        v.version.reason
                    );
                }
                if let Some(last) = versions.last() {
                    println!("in force: version {} ({})", last.number, last.version.source_name);
                }
            }
            Ok(ExitCode::SUCCESS)
        }),
        ConstitutionCommand::Activate { file, reason, source } => block_on(async move {
            let store = crate::decisions_cmd::open(&source).await?;
            let now = chrono::Utc::now().timestamp_micros();
            let actor = format!("cli:{}", std::env::var("USER").unwrap_or_else(|_| "unknown".into()));
            let version = crate::constitution_versions::activate(&*store, &file, now, &actor, &reason).await?;
            println!(
                "version {} is in force: {} v{}, hash {}; running servers switch to it within a second",
                version.number, version.version.name, version.version.version_label, version.version.hash
            );
            Ok(ExitCode::SUCCESS)
        }),
        ConstitutionCommand::Validate { file, prove } => match Constitution::load(&file) {
            Ok(c) => {
                println!(
                    "{}: valid ({} principles, {} policies, {} invariants, {} test cases passed)",
                    file.display(),
                    c.principles().count(),
                    c.policies().count(),
                    c.invariants().len(),
                    c.tests().len()
                );
                println!("constitutional hash: {} (short {})", c.hash(), c.hash().short());
                for w in c.warnings() {
                    println!("warning: {w}");
                }
                if prove {
                    println!();
                    if !crate::verify_cmd::prove(&file, c)? {
                        return Ok(ExitCode::FAILURE);
                    }
                }
                Ok(ExitCode::SUCCESS)
            }
            Err(e) => report_load_error(e),
        },
        ConstitutionCommand::Hash { file, canonical } => match Constitution::compile_file(&file) {
            Ok(c) if canonical => {
                println!("{}", c.canonical_form());
                Ok(ExitCode::SUCCESS)
            }
            Ok(c) => {
                println!("{}  {}", c.hash(), file.display());
                println!("short: {}", c.hash().short());
                Ok(ExitCode::SUCCESS)
            }
            Err(e) => report_load_error(e),
        },
        ConstitutionCommand::Show { file, json } => match Constitution::compile_file(&file) {
            Ok(c) if json => {
                let view = acgs_server::routes::constitution::ConstitutionView::from(&c);
                println!("{}", serde_json::to_string_pretty(&view)?);
                Ok(ExitCode::SUCCESS)
            }
            Ok(c) => {
                print_summary(&c);
                Ok(ExitCode::SUCCESS)
            }
            Err(e) => report_load_error(e),
        },
        ConstitutionCommand::Test { file, json } => match Constitution::compile_file(&file) {
            Ok(c) => {
                let report = c.run_tests(&Detectors::new());
                if json {
                    println!("{}", serde_json::to_string_pretty(&report)?);
                } else {
                    println!("{report}");
                }
                Ok(if report.failed() == 0 {
                    ExitCode::SUCCESS
                } else {
                    ExitCode::FAILURE
                })
            }
            Err(e) => report_load_error(e),
        },
    }
}

fn block_on(work: impl std::future::Future<Output = Result<ExitCode>>) -> Result<ExitCode> {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?
        .block_on(work)
}

fn version_json(v: &acgs_store::ConstitutionVersion) -> serde_json::Value {
    serde_json::json!({
        "number": v.number,
        "hash": v.version.hash,
        "name": v.version.name,
        "version": v.version.version_label,
        "source_name": v.version.source_name,
        "activated_at": crate::decisions_cmd::time(v.version.activated_at_us),
        "activated_by": v.version.activated_by,
        "reason": v.version.reason,
    })
}

fn report_load_error(e: LoadError) -> Result<ExitCode> {
    eprintln!("error: {e}");
    Ok(ExitCode::FAILURE)
}

fn print_summary(c: &Constitution) {
    let meta = c.metadata();
    println!("{} v{}", meta.name, meta.version);
    if !meta.description.is_empty() {
        println!("{}", meta.description.trim());
    }
    println!("hash: {} (short {})", c.hash(), c.hash().short());
    println!("actions: {}", c.action_names().join(", "));
    println!();
    for p in c.principles() {
        println!(
            "{} [{} | {} | priority {}] {}",
            p.id, p.category, p.severity, p.priority, p.title
        );
        for pol in c.policies().filter(|pol| pol.principle_id == p.id) {
            let effect = match pol.effect {
                acgs_engine::PolicyEffect::Permit => "permit",
                acgs_engine::PolicyEffect::Forbid if pol.escalation => "escalate",
                acgs_engine::PolicyEffect::Forbid => "forbid",
            };
            println!("    {effect:<8} {}  {}", pol.id, pol.description);
        }
    }
    if !c.invariants().is_empty() {
        println!();
        println!("invariants:");
        for inv in c.invariants() {
            println!("    {} ({}) {}", inv.id, inv.principle_id, inv.description);
        }
    }
    println!();
    println!("{} test cases", c.tests().len());
}
