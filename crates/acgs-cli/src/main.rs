//! `acgs`: the ACGS binary. Runs the server, checks constitutions, reads the decision log, verifies the
//! audit log, administers users and keys, governs the constitution on a running server as a logged-in user
//! (amendments, the emergency halt, authority transfers, appeals), and generates load. Thin: each subcommand
//! lives in its own module.

mod amendments_cmd;
mod appeals_cmd;
mod audit_cmd;
mod auth_cmd;
mod bench;
mod chain;
mod config;
mod constitution_cmd;
mod constitution_versions;
mod decide_cmd;
mod decisions_cmd;
mod emergency_cmd;
mod entities_cmd;
mod keys;
mod login_cmd;
mod server_cmd;
mod session;
mod transfer_cmd;
mod verify_cmd;

use std::process::ExitCode;

use clap::{Parser, Subcommand};

/// mimalloc: the decision path allocates many small objects (Cedar values, entities); it is faster there than
/// the system allocator (`cargo bench -p acgs-engine --bench decision_latency`).
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

/// The example constitution, compiled into the binary so `acgs up` works from any directory.
pub const EXAMPLE_CONSTITUTION: &str = include_str!("../../../examples/constitution.toml");

/// Name under which the embedded example constitution is reported.
pub const EXAMPLE_CONSTITUTION_NAME: &str = "examples/constitution.toml (embedded)";

#[derive(Debug, Parser)]
#[command(name = "acgs", version, about = "AI Constitutional Governance System")]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Run everything with embedded defaults: SQLite under ./acgs-data, the example constitution, port 8080.
    Up(server_cmd::UpArgs),
    /// Run the server from a config file, environment variables and flags (in rising precedence).
    Serve(server_cmd::ServeArgs),
    /// Validate, hash, show or test a constitution file.
    #[command(subcommand)]
    Constitution(constitution_cmd::ConstitutionCommand),
    /// Decide one request, in-process against a constitution file or via a running server.
    Decide(decide_cmd::DecideArgs),
    /// Prove a constitution's invariants and check its policies with the SMT solver (cvc5); with --against, what
    /// it decides differently from another constitution.
    Verify(verify_cmd::VerifyArgs),
    /// Read the durable decision log.
    #[command(subcommand)]
    Decisions(decisions_cmd::DecisionsCommand),
    /// Verify, export and prune the tamper-evident audit log; verify decision receipts offline.
    #[command(subcommand)]
    Audit(audit_cmd::AuditCommand),
    /// Open-loop HTTP load generator: fixed arrival rate, latency from the intended send time.
    Bench(bench::BenchArgs),
    /// Manage users (on the server's database).
    #[command(subcommand)]
    Users(auth_cmd::UsersCommand),
    /// Manage API keys and the access-token signing keys (on the server's database).
    #[command(subcommand)]
    Auth(auth_cmd::AuthCommand),
    /// Security checks of the credentials and the key files.
    #[command(subcommand)]
    Security(auth_cmd::SecurityCommand),
    /// Log in to a running server as a user: governance steps are taken with this session.
    Login(login_cmd::LoginArgs),
    /// End the session on the server and delete the session file.
    Logout,
    /// Amendments to the constitution on a running server: draft, list, show, diff, open, vote, cancel, veto,
    /// execute (as the logged-in user).
    #[command(subcommand)]
    Amendments(amendments_cmd::AmendmentsCommand),
    /// The emergency halt on a running server: halt, resume, status; authority transfers: transfer,
    /// transfer-approve, accept, transfers, transfer-show (as the logged-in user).
    #[command(subcommand)]
    Emergency(emergency_cmd::EmergencyCommand),
    /// Appeals of decisions on a running server: file (with an agent's API key or as the logged-in user), list,
    /// show, rule (as a reviewer).
    #[command(subcommand)]
    Appeals(appeals_cmd::AppealsCommand),
    /// The entity registry on a running server: list, show, put, set, delete, import, export (as the logged-in
    /// user, or with an API key via --url).
    Entities(entities_cmd::EntitiesArgs),
    /// Key management for the Quantumagi Solana deployment: Solana keypairs by role, audit, encrypted backups.
    #[command(subcommand)]
    Keys(keys::KeysCommand),
    /// The Quantumagi program on a Solana cluster: status, verify against the server, anchor the audit log,
    /// and every governance instruction (over JSON-RPC).
    #[command(subcommand)]
    Chain(chain::ChainCommand),
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let result = match cli.command {
        Command::Up(args) => server_cmd::up(args),
        Command::Serve(args) => server_cmd::serve(args),
        Command::Constitution(cmd) => constitution_cmd::run(cmd),
        Command::Decide(args) => decide_cmd::run(args),
        Command::Verify(args) => verify_cmd::run(args),
        Command::Decisions(cmd) => decisions_cmd::run(cmd),
        Command::Audit(cmd) => audit_cmd::run(cmd),
        Command::Bench(args) => bench::run(args),
        Command::Users(cmd) => auth_cmd::run_users(cmd),
        Command::Auth(cmd) => auth_cmd::run_auth(cmd),
        Command::Security(cmd) => auth_cmd::run_security(cmd),
        Command::Login(args) => login_cmd::login(args),
        Command::Logout => login_cmd::logout(),
        Command::Amendments(cmd) => amendments_cmd::run(cmd),
        Command::Emergency(cmd) => emergency_cmd::run(cmd),
        Command::Appeals(cmd) => appeals_cmd::run(cmd),
        Command::Entities(args) => entities_cmd::run(args),
        Command::Keys(cmd) => keys::run(cmd),
        Command::Chain(cmd) => chain::run(cmd),
    };
    match result {
        Ok(code) => code,
        Err(e) => {
            eprintln!("error: {e:#}");
            ExitCode::FAILURE
        }
    }
}
