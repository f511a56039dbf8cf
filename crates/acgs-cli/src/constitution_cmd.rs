//! `acgs constitution validate|hash|show|test FILE`.

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
}

pub fn run(cmd: ConstitutionCommand) -> Result<ExitCode> {
    match cmd {
        ConstitutionCommand::Validate { file } => match Constitution::load(&file) {
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
