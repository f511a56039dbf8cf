//! `acgs chain`: the Quantumagi program on a Solana cluster, over JSON-RPC. Shows the on-chain governance
//! (`status`, `proposal`), checks that the server enforces the constitution the chain holds (`verify`), anchors
//! the audit log's latest signed checkpoint (`anchor`), and sends every governance instruction. Thin: the clap
//! arguments, their conversion to the acgs-chain library's values, and the output; each instruction is built by
//! the program crate's `client` module and sent through one path, `GovernanceSession::submit`.

mod show;

use std::path::{Path, PathBuf};
use std::process::ExitCode;

use acgs_chain::accounts::MotionState;
use acgs_chain::address::{address, parse_address};
use acgs_chain::payload::{self, check_params, decision_hash, key_set, parse_roles, sha256};
use acgs_chain::program::state::Params;
use acgs_chain::rpc::Rpc;
use acgs_chain::transaction::{read_signer, signer_address};
use acgs_chain::{GovernanceClient, GovernanceSession, InitializeArgs, Key};
use anyhow::{Context, Result, bail, ensure};

/// Where the program and the governance are.
#[derive(Debug, Clone, clap::Args)]
pub struct Target {
    /// The cluster's JSON-RPC URL (devnet: `https://api.devnet.solana.com`).
    #[arg(long, env = "ACGS_SOLANA_RPC_URL", default_value = "http://127.0.0.1:8899")]
    rpc_url: String,
    /// The Quantumagi program's address.
    #[arg(long, env = "ACGS_QUANTUMAGI_PROGRAM_ID")]
    program_id: String,
    /// The address of the key that created the governance (its account is derived from it).
    #[arg(long, env = "ACGS_QUANTUMAGI_CREATOR")]
    creator: String,
}

impl Target {
    fn client(&self) -> Result<GovernanceClient> {
        let program_id = parse_address(&self.program_id).context("--program-id")?;
        let creator = parse_address(&self.creator).context("--creator")?;
        Ok(GovernanceClient::new(program_id, &creator))
    }
}

/// The signer of a transaction (its fee payer).
#[derive(Debug, Clone, clap::Args)]
pub struct Payer {
    /// Keypair file (Solana JSON format) that signs and pays.
    #[arg(long, env = "ACGS_SOLANA_KEYPAIR")]
    keypair: PathBuf,
}

#[derive(Debug, clap::Subcommand)]
pub enum ChainCommand {
    /// The governance on chain: constitution hash and version, halt state, voting rules, council totals,
    /// emergency set, pending transfer, anchor.
    Status {
        #[command(flatten)]
        target: Target,
        /// Print JSON.
        #[arg(long)]
        json: bool,
    },
    /// One proposal: kind, payload, state, tally, times.
    Proposal {
        #[command(flatten)]
        target: Target,
        /// Its id.
        id: u64,
        /// Print JSON.
        #[arg(long)]
        json: bool,
    },
    /// Compare the on-chain constitution hash with a server's active constitution (or a file); exit status 1
    /// on a mismatch.
    Verify {
        #[command(flatten)]
        target: Target,
        /// An ACGS server's base URL (reads GET /v1/constitution).
        #[arg(long, conflicts_with = "constitution")]
        server: Option<String>,
        /// API key or access token for the server (any role may read the constitution).
        #[arg(long, env = "ACGS_API_KEY", hide_env_values = true)]
        api_key: Option<String>,
        /// A constitution file to hash instead.
        #[arg(long)]
        constitution: Option<PathBuf>,
    },
    /// Anchor the audit log's latest signed checkpoint (signed by the anchor authority's keypair).
    Anchor {
        #[command(flatten)]
        target: Target,
        #[command(flatten)]
        payer: Payer,
        #[command(flatten)]
        source: crate::decisions_cmd::Source,
    },
    /// Create the governance (the keypair is its creator).
    Init(Box<InitArgs>),
    /// Add a member to the initial council (creator, setup only).
    AddMember {
        #[command(flatten)]
        target: Target,
        #[command(flatten)]
        payer: Payer,
        /// The member's address.
        #[arg(long)]
        member: String,
        /// Voting weight (1–1,000,000).
        #[arg(long)]
        weight: u32,
        /// Roles, comma-separated: voter, proposer, reviewer.
        #[arg(long, value_delimiter = ',', default_value = "voter,proposer,reviewer")]
        roles: Vec<String>,
    },
    /// Close the initial council's setup (creator).
    FinishSetup {
        #[command(flatten)]
        target: Target,
        #[command(flatten)]
        payer: Payer,
    },
    /// Propose a change (council member with the proposer role).
    Propose {
        #[command(flatten)]
        target: Target,
        #[command(flatten)]
        payer: Payer,
        #[command(subcommand)]
        change: Change,
    },
    /// Vote on a proposal (council member with the voter role).
    Vote {
        #[command(flatten)]
        target: Target,
        #[command(flatten)]
        payer: Payer,
        /// The proposal's id.
        #[arg(long)]
        proposal: u64,
        /// yes, no or abstain.
        #[arg(long)]
        choice: String,
    },
    /// Close a proposal's vote (anyone).
    Finalize {
        #[command(flatten)]
        target: Target,
        #[command(flatten)]
        payer: Payer,
        /// The proposal's id.
        #[arg(long)]
        proposal: u64,
    },
    /// Execute a passed proposal after its timelock (anyone).
    Execute {
        #[command(flatten)]
        target: Target,
        #[command(flatten)]
        payer: Payer,
        /// The proposal's id.
        #[arg(long)]
        proposal: u64,
    },
    /// Withdraw one's own proposal while it is voted on.
    Cancel {
        #[command(flatten)]
        target: Target,
        #[command(flatten)]
        payer: Payer,
        /// The proposal's id.
        #[arg(long)]
        proposal: u64,
    },
    /// Approve an emergency halt (emergency set member; takes effect at M approvals).
    Halt {
        #[command(flatten)]
        target: Target,
        #[command(flatten)]
        payer: Payer,
        /// The reason (its SHA-256 goes on chain).
        #[arg(long)]
        reason: String,
    },
    /// Approve resuming after a halt (emergency set member).
    Resume {
        #[command(flatten)]
        target: Target,
        #[command(flatten)]
        payer: Payer,
    },
    /// Approve vetoing a proposal not yet executed (emergency set member).
    Veto {
        #[command(flatten)]
        target: Target,
        #[command(flatten)]
        payer: Payer,
        /// The proposal's id.
        #[arg(long)]
        proposal: u64,
    },
    /// Approve handing the emergency authority to a new M-of-N set (emergency set member); the new set must
    /// accept.
    TransferAuthority {
        #[command(flatten)]
        target: Target,
        #[command(flatten)]
        payer: Payer,
        /// Approvals the new set needs (M).
        #[arg(long)]
        threshold: u8,
        /// The new set's addresses, comma-separated.
        #[arg(long, value_delimiter = ',', required = true)]
        keys: Vec<String>,
    },
    /// Accept a pending emergency authority: M keypairs of the new set sign (the first pays).
    AcceptAuthority {
        #[command(flatten)]
        target: Target,
        /// Keypair files of the new set (repeat --keypair).
        #[arg(long = "keypair", required = true)]
        keypairs: Vec<PathBuf>,
    },
    /// Appeal an ACGS decision (by its id).
    Appeal {
        #[command(flatten)]
        target: Target,
        #[command(flatten)]
        payer: Payer,
        /// The decision's id (its SHA-256 goes on chain).
        #[arg(long)]
        decision: String,
        /// The appellant's statement (its SHA-256 goes on chain).
        #[arg(long)]
        reason: String,
    },
    /// Rule on an appeal (council member with the reviewer role).
    RuleAppeal {
        #[command(flatten)]
        target: Target,
        #[command(flatten)]
        payer: Payer,
        /// The decision's id.
        #[arg(long)]
        decision: String,
        /// upheld or overturned.
        #[arg(long)]
        ruling: String,
        /// The ruling's text (its SHA-256 goes on chain).
        #[arg(long)]
        text: String,
    },
}

/// `acgs chain init`.
#[derive(Debug, clap::Args)]
pub struct InitArgs {
    #[command(flatten)]
    target: Target,
    #[command(flatten)]
    payer: Payer,
    /// The constitution file whose hash the governance starts with.
    #[arg(long)]
    constitution: PathBuf,
    /// The constitution's version number on chain.
    #[arg(long, default_value_t = 1)]
    version: u64,
    /// Approval threshold: share of yes in yes + no, in basis points.
    #[arg(long, default_value_t = 6000)]
    threshold_bps: u16,
    /// Quorum: share of the council's weight that must vote, in basis points.
    #[arg(long, default_value_t = 5000)]
    quorum_bps: u16,
    /// Voting period in seconds.
    #[arg(long, default_value_t = 3 * 86_400)]
    voting_period: i64,
    /// Timelock in seconds between passing and execution.
    #[arg(long, default_value_t = 86_400)]
    timelock: i64,
    /// The emergency set's addresses, comma-separated (at most 7).
    #[arg(long, value_delimiter = ',', required = true)]
    emergency: Vec<String>,
    /// Approvals the emergency set needs (M).
    #[arg(long)]
    emergency_threshold: u8,
    /// The address that may anchor audit-log checkpoints.
    #[arg(long)]
    anchor_authority: String,
}

/// What a proposal changes.
#[derive(Debug, clap::Subcommand)]
pub enum Change {
    /// A new constitution: the file's hash, and its version number.
    Constitution {
        /// The constitution file.
        #[arg(long)]
        file: PathBuf,
        /// Its version number (must exceed the current one).
        #[arg(long)]
        version: u64,
    },
    /// Activate or deactivate a policy, by the hash of its text.
    Policy {
        /// The policy's SHA-256 (64 hex digits).
        #[arg(long)]
        hash: String,
        /// Deactivate instead of activate.
        #[arg(long)]
        deactivate: bool,
    },
    /// Add, reweight or remove (weight 0) a council member.
    Member {
        /// The member's address.
        #[arg(long)]
        member: String,
        /// Weight (0 removes).
        #[arg(long)]
        weight: u32,
        /// Roles, comma-separated: voter, proposer, reviewer (none when removing).
        #[arg(long, value_delimiter = ',')]
        roles: Vec<String>,
    },
    /// New voting rules.
    Params {
        /// Approval threshold in basis points.
        #[arg(long)]
        threshold_bps: u16,
        /// Quorum in basis points.
        #[arg(long)]
        quorum_bps: u16,
        /// Voting period in seconds.
        #[arg(long)]
        voting_period: i64,
        /// Timelock in seconds.
        #[arg(long)]
        timelock: i64,
    },
    /// A new anchor authority.
    AnchorAuthority {
        /// Its address.
        #[arg(long)]
        key: String,
    },
}

impl Target {
    /// The cluster and the governance, for the commands that only read.
    fn connect(&self) -> Result<(Rpc, GovernanceClient)> {
        let client = self.client()?;
        Ok((Rpc::new(&self.rpc_url)?, client))
    }

    /// A session paid and signed by `payer`'s keypair.
    fn session(&self, payer: &Payer) -> Result<GovernanceSession> {
        let rpc = Rpc::new(&self.rpc_url)?;
        let client = self.client()?;
        Ok(GovernanceSession::new(rpc, client, read_signer(&payer.keypair)?))
    }
}

/// The hash of a constitution file, as the chain holds it.
fn constitution_hash(path: &Path) -> Result<Key> {
    let constitution = acgs_engine::Constitution::load(path).with_context(|| format!("`{}`", path.display()))?;
    Ok(*constitution.hash().as_bytes())
}

/// Print a confirmed transaction's signature.
fn confirmed(signature: &str) {
    println!("confirmed: {signature}");
}

fn runtime() -> Result<tokio::runtime::Runtime> {
    Ok(tokio::runtime::Builder::new_current_thread().enable_all().build()?)
}

/// Run an `acgs chain` command.
pub fn run(cmd: ChainCommand) -> Result<ExitCode> {
    runtime()?.block_on(run_async(cmd))
}

async fn run_async(cmd: ChainCommand) -> Result<ExitCode> {
    match cmd {
        ChainCommand::Status { target, json } => show::status(&target, json).await,
        ChainCommand::Proposal { target, id, json } => show::proposal(&target, id, json).await,
        ChainCommand::Verify {
            target,
            server,
            api_key,
            constitution,
        } => show::verify(&target, server.as_deref(), api_key.as_deref(), constitution.as_deref()).await,
        ChainCommand::Anchor { target, payer, source } => anchor(&target, &payer, &source).await,
        ChainCommand::Init(args) => init(*args).await,
        ChainCommand::AddMember {
            target,
            payer,
            member,
            weight,
            roles,
        } => {
            let session = target.session(&payer)?;
            let member = parse_address(&member).context("--member")?;
            let roles = parse_roles(&roles)?;
            confirmed(
                &session
                    .act(|gov, me| gov.add_member(me, &member, weight, roles))
                    .await?,
            );
            Ok(ExitCode::SUCCESS)
        }
        ChainCommand::FinishSetup { target, payer } => {
            let session = target.session(&payer)?;
            confirmed(&session.act(|gov, me| gov.finish_setup(me)).await?);
            Ok(ExitCode::SUCCESS)
        }
        ChainCommand::Propose { target, payer, change } => {
            let session = target.session(&payer)?;
            let (kind, data) = parse_change(&change)?.payload()?;
            let id = session.governance().await?.next_proposal_id;
            confirmed(&session.act(|gov, me| gov.propose(me, id, kind, &data)).await?);
            println!("proposal {id}");
            Ok(ExitCode::SUCCESS)
        }
        ChainCommand::Vote {
            target,
            payer,
            proposal,
            choice,
        } => {
            let choice = payload::parse_choice("--choice", &choice)?;
            let session = target.session(&payer)?;
            confirmed(&session.act(|gov, me| gov.vote(me, proposal, choice as u8)).await?);
            Ok(ExitCode::SUCCESS)
        }
        ChainCommand::Finalize {
            target,
            payer,
            proposal,
        } => {
            let session = target.session(&payer)?;
            confirmed(&session.act(|gov, _| gov.finalize(proposal)).await?);
            let p = session.proposal(proposal).await?;
            println!("proposal {proposal}: {:?}", p.state);
            Ok(ExitCode::SUCCESS)
        }
        ChainCommand::Execute {
            target,
            payer,
            proposal,
        } => {
            let session = target.session(&payer)?;
            let p = session.proposal(proposal).await?;
            confirmed(
                &session
                    .act(|gov, me| gov.execute(me, proposal, p.kind, &p.payload))
                    .await?,
            );
            Ok(ExitCode::SUCCESS)
        }
        ChainCommand::Cancel {
            target,
            payer,
            proposal,
        } => {
            let session = target.session(&payer)?;
            confirmed(&session.act(|gov, me| gov.cancel(me, proposal)).await?);
            Ok(ExitCode::SUCCESS)
        }
        ChainCommand::Halt { target, payer, reason } => {
            ensure!(!reason.trim().is_empty(), "--reason must say why");
            let session = target.session(&payer)?;
            confirmed(
                &session
                    .act(|gov, me| gov.approve_halt(me, &sha256(reason.as_bytes())))
                    .await?,
            );
            report_motion(&session).await
        }
        ChainCommand::Resume { target, payer } => {
            let session = target.session(&payer)?;
            confirmed(&session.act(|gov, me| gov.approve_resume(me)).await?);
            report_motion(&session).await
        }
        ChainCommand::Veto {
            target,
            payer,
            proposal,
        } => {
            let session = target.session(&payer)?;
            confirmed(&session.act(|gov, me| gov.approve_veto(me, proposal)).await?);
            report_motion(&session).await
        }
        ChainCommand::TransferAuthority {
            target,
            payer,
            threshold,
            keys,
        } => {
            let set = key_set(threshold, &keys)?;
            let session = target.session(&payer)?;
            confirmed(&session.act(|gov, me| gov.approve_transfer(me, &set)).await?);
            report_motion(&session).await
        }
        ChainCommand::AcceptAuthority { target, keypairs } => {
            let gov = target.client()?;
            let rpc = Rpc::new(&target.rpc_url)?;
            let mut signers = keypairs.iter().map(|p| read_signer(p)).collect::<Result<Vec<_>, _>>()?;
            let keys: Vec<Key> = signers.iter().map(signer_address).collect();
            let instruction = gov.accept_authority(&keys).map_err(acgs_chain::ChainError::from)?;
            if signers.is_empty() {
                bail!(acgs_chain::ChainError::NoSigner);
            }
            // The first of the new set pays; the others sign along.
            let payer = signers.remove(0);
            let session = GovernanceSession::new(rpc, gov, payer);
            let others: Vec<&acgs_chain::SolanaKeypair> = signers.iter().collect();
            confirmed(&session.submit(instruction, &others).await?);
            println!("the new emergency set is in force");
            Ok(ExitCode::SUCCESS)
        }
        ChainCommand::Appeal {
            target,
            payer,
            decision,
            reason,
        } => {
            let session = target.session(&payer)?;
            let decision_hash = decision_hash(&decision);
            let reason_hash = sha256(reason.as_bytes());
            confirmed(
                &session
                    .act(|gov, me| gov.submit_appeal(me, &decision_hash, &reason_hash))
                    .await?,
            );
            println!("appeal {}", address(&session.client().appeal_address(&decision_hash)));
            Ok(ExitCode::SUCCESS)
        }
        ChainCommand::RuleAppeal {
            target,
            payer,
            decision,
            ruling,
            text,
        } => {
            let ruling = payload::parse_ruling("--ruling", &ruling)?;
            let session = target.session(&payer)?;
            let (decision_hash, text_hash) = (decision_hash(&decision), sha256(text.as_bytes()));
            confirmed(
                &session
                    .act(|gov, me| gov.rule_appeal(me, &decision_hash, ruling as u8, &text_hash))
                    .await?,
            );
            Ok(ExitCode::SUCCESS)
        }
    }
}

/// `acgs chain init`: the keypair creates the governance.
async fn init(args: InitArgs) -> Result<ExitCode> {
    let signer = read_signer(&args.payer.keypair)?;
    let gov = args.target.client()?;
    let creator = signer_address(&signer);
    ensure!(
        gov == GovernanceClient::new(gov.program_id, &creator),
        "--creator must be the keypair's address ({}) when creating the governance",
        address(&creator)
    );
    let init = InitializeArgs {
        constitution_hash: constitution_hash(&args.constitution)?,
        constitution_version: args.version,
        params: Params {
            approval_threshold_bps: args.threshold_bps,
            quorum_bps: args.quorum_bps,
            voting_period_s: args.voting_period,
            timelock_s: args.timelock,
        },
        emergency: key_set(args.emergency_threshold, &args.emergency)?,
        anchor_authority: parse_address(&args.anchor_authority).context("--anchor-authority")?,
    };
    check_params(&init.params)?;
    let session = GovernanceSession::new(Rpc::new(&args.target.rpc_url)?, gov, signer);
    confirmed(&session.act(|gov, me| gov.initialize(me, &init)).await?);
    println!("governance {}", address(&gov.governance));
    Ok(ExitCode::SUCCESS)
}

/// A proposal's change from its arguments (a constitution file is read for its hash).
fn parse_change(change: &Change) -> Result<payload::Change> {
    Ok(match change {
        Change::Constitution { file, version } => payload::Change::Constitution {
            hash: constitution_hash(file)?,
            version: *version,
        },
        Change::Policy { hash, deactivate } => payload::Change::Policy {
            hash: payload::parse_hash("--hash", hash)?,
            active: !deactivate,
        },
        Change::Member { member, weight, roles } => payload::Change::Member {
            member: parse_address(member).context("--member")?,
            weight: *weight,
            roles: parse_roles(roles)?,
        },
        Change::Params {
            threshold_bps,
            quorum_bps,
            voting_period,
            timelock,
        } => payload::Change::Params(Params {
            approval_threshold_bps: *threshold_bps,
            quorum_bps: *quorum_bps,
            voting_period_s: *voting_period,
            timelock_s: *timelock,
        }),
        Change::AnchorAuthority { key } => payload::Change::AnchorAuthority(parse_address(key).context("--key")?),
    })
}

/// Print where the emergency motion stands after an approval.
async fn report_motion(session: &GovernanceSession) -> Result<ExitCode> {
    match MotionState::of(&session.governance().await?) {
        MotionState::CarriedOut { halted } => println!("carried out (halted: {halted})"),
        MotionState::Pending { approvals, needed } => println!("approved: {approvals} of {needed} needed"),
    }
    Ok(ExitCode::SUCCESS)
}

/// `acgs chain anchor`: the audit log's latest signed checkpoint goes on chain.
async fn anchor(target: &Target, payer: &Payer, source: &crate::decisions_cmd::Source) -> Result<ExitCode> {
    let session = target.session(payer)?;
    let store = crate::decisions_cmd::open(source).await?;
    let checkpoint = store
        .latest_checkpoint()
        .await?
        .context("the audit log has no signed checkpoint yet")?;
    let tree_size = u64::try_from(checkpoint.tree_size).context("checkpoint size")?;
    let root: Key = checkpoint.root;
    let time = checkpoint.signed_at_us / 1_000_000;
    confirmed(
        &session
            .act(|gov, me| gov.anchor_checkpoint(me, tree_size, &root, time))
            .await?,
    );
    println!("anchored: tree size {tree_size}, root {}", hex::encode(root));
    Ok(ExitCode::SUCCESS)
}
