//! `acgs chain`: the Quantumagi program on a Solana cluster, over JSON-RPC. Shows the on-chain governance
//! (`status`, `proposal`), checks that the server enforces the constitution the chain holds (`verify`), anchors
//! the audit log's latest signed checkpoint (`anchor`), and builds, signs and sends every governance
//! instruction. The instructions come from the program crate's `client` module, the same builders the SVM tests
//! send.

mod rpc;

use std::path::{Path, PathBuf};
use std::process::ExitCode;

use anyhow::{Context, Result, bail, ensure};
use quantumagi_program::client::{ClientInstruction, GovernanceClient, InitializeArgs};
use quantumagi_program::instruction::payload;
use quantumagi_program::state::{
    AccountLayout, Anchor, Governance, Key, KeySet, MAX_EMERGENCY_KEYS, PAYLOAD_LEN, Params, Proposal, ProposalKind,
    roles,
};
use rpc::{Rpc, address, parse_address};
use sha2::{Digest, Sha256};
use solana_signer::Signer as _;

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

fn sha256(text: &[u8]) -> Key {
    Sha256::digest(text).into()
}

fn read_signer(path: &Path) -> Result<solana_keypair::Keypair> {
    let keypair = crate::keys::keypair::Keypair::read(path)?;
    solana_keypair::Keypair::try_from(&keypair.keypair_bytes()[..])
        .map_err(|e| anyhow::anyhow!("`{}`: {e}", path.display()))
}

fn parse_roles(names: &[String]) -> Result<u8> {
    names.iter().try_fold(0u8, |bits, name| {
        Ok(bits
            | match name.trim() {
                "voter" => roles::VOTER,
                "proposer" => roles::PROPOSER,
                "reviewer" => roles::REVIEWER,
                other => bail!("unknown role `{other}` (voter, proposer, reviewer)"),
            })
    })
}

fn constitution_hash(path: &Path) -> Result<Key> {
    let constitution = acgs_engine::Constitution::load(path).with_context(|| format!("`{}`", path.display()))?;
    Ok(*constitution.hash().as_bytes())
}

fn key_set(threshold: u8, keys: &[String]) -> Result<KeySet> {
    ensure!(
        !keys.is_empty() && keys.len() <= MAX_EMERGENCY_KEYS,
        "give 1 to {MAX_EMERGENCY_KEYS} keys"
    );
    let mut set = KeySet::EMPTY;
    set.threshold = threshold;
    set.count = u8::try_from(keys.len())?;
    for (slot, text) in set.keys.iter_mut().zip(keys) {
        *slot = parse_address(text)?;
    }
    set.validate()
        .map_err(|_| anyhow::anyhow!("the set must have 1 ≤ M ≤ N distinct keys (M = {threshold})"))?;
    Ok(set)
}

fn to_instruction(ci: &ClientInstruction) -> solana_instruction::Instruction {
    solana_instruction::Instruction {
        program_id: solana_address_of(&ci.program_id),
        accounts: ci
            .accounts
            .iter()
            .map(|a| solana_instruction::AccountMeta {
                pubkey: solana_address_of(&a.pubkey),
                is_signer: a.is_signer,
                is_writable: a.is_writable,
            })
            .collect(),
        data: ci.data.clone(),
    }
}

fn solana_address_of(key: &Key) -> solana_transaction::Address {
    solana_transaction::Address::new_from_array(*key)
}

/// Sign `instruction` with `signers` (the first pays), send it, wait for confirmation; print the signature.
async fn send(rpc: &Rpc, instruction: &ClientInstruction, signers: &[&solana_keypair::Keypair]) -> Result<()> {
    let payer = signers.first().context("no signer")?.pubkey();
    let blockhash = solana_hash::Hash::new_from_array(rpc.latest_blockhash().await?);
    let message = solana_message::Message::new_with_blockhash(&[to_instruction(instruction)], Some(&payer), &blockhash);
    let mut transaction = solana_transaction::Transaction::new_unsigned(message);
    transaction
        .try_sign(signers, blockhash)
        .context("signing the transaction (a required signer's keypair is missing?)")?;
    let bytes = wincode::serialize(&transaction).context("encoding the transaction")?;
    let signature = rpc.send_and_confirm(&bytes).await?;
    println!("confirmed: {signature}");
    Ok(())
}

async fn read_account<T: AccountLayout>(rpc: &Rpc, gov: &GovernanceClient, at: &Key, what: &str) -> Result<T> {
    let account = rpc
        .account(at)
        .await?
        .with_context(|| format!("no {what} at {}", address(at)))?;
    ensure!(
        account.owner == gov.program_id,
        "the {what} at {} is not owned by the program {}",
        address(at),
        address(&gov.program_id)
    );
    T::decode(&account.data).map_err(|e| anyhow::anyhow!("the {what} at {} does not decode: {e:?}", address(at)))
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
        ChainCommand::Status { target, json } => status(&target, json).await,
        ChainCommand::Proposal { target, id, json } => show_proposal(&target, id, json).await,
        ChainCommand::Verify {
            target,
            server,
            api_key,
            constitution,
        } => verify(&target, server.as_deref(), api_key.as_deref(), constitution.as_deref()).await,
        ChainCommand::Anchor { target, payer, source } => anchor(&target, &payer, &source).await,
        ChainCommand::Init(args) => {
            let signer = read_signer(&args.payer.keypair)?;
            let gov = args.target.client()?;
            let creator = signer.pubkey().to_bytes();
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
            init.params
                .validate()
                .map_err(|_| anyhow::anyhow!("voting rules out of range (basis points 1–10000, period ≥ 1 s)"))?;
            let rpc = Rpc::new(&args.target.rpc_url)?;
            send(
                &rpc,
                &gov.initialize(&creator, &init).map_err(program_error)?,
                &[&signer],
            )
            .await?;
            println!("governance {}", address(&gov.governance));
            Ok(ExitCode::SUCCESS)
        }
        ChainCommand::AddMember {
            target,
            payer,
            member,
            weight,
            roles,
        } => {
            let (rpc, gov, signer) = open(&target, &payer)?;
            let ix = gov
                .add_member(
                    &signer.pubkey().to_bytes(),
                    &parse_address(&member).context("--member")?,
                    weight,
                    parse_roles(&roles)?,
                )
                .map_err(program_error)?;
            send(&rpc, &ix, &[&signer]).await?;
            Ok(ExitCode::SUCCESS)
        }
        ChainCommand::FinishSetup { target, payer } => {
            let (rpc, gov, signer) = open(&target, &payer)?;
            let ix = gov.finish_setup(&signer.pubkey().to_bytes()).map_err(program_error)?;
            send(&rpc, &ix, &[&signer]).await?;
            Ok(ExitCode::SUCCESS)
        }
        ChainCommand::Propose { target, payer, change } => {
            let (rpc, gov, signer) = open(&target, &payer)?;
            let (kind, data) = change_payload(&change)?;
            let state: Governance = read_account(&rpc, &gov, &gov.governance, "governance").await?;
            let id = state.next_proposal_id;
            let ix = gov
                .propose(&signer.pubkey().to_bytes(), id, kind, &data)
                .map_err(program_error)?;
            send(&rpc, &ix, &[&signer]).await?;
            println!("proposal {id}");
            Ok(ExitCode::SUCCESS)
        }
        ChainCommand::Vote {
            target,
            payer,
            proposal,
            choice,
        } => {
            let choice = match choice.as_str() {
                "no" => 0,
                "yes" => 1,
                "abstain" => 2,
                other => bail!("--choice `{other}`: yes, no or abstain"),
            };
            let (rpc, gov, signer) = open(&target, &payer)?;
            let ix = gov
                .vote(&signer.pubkey().to_bytes(), proposal, choice)
                .map_err(program_error)?;
            send(&rpc, &ix, &[&signer]).await?;
            Ok(ExitCode::SUCCESS)
        }
        ChainCommand::Finalize {
            target,
            payer,
            proposal,
        } => {
            let (rpc, gov, signer) = open(&target, &payer)?;
            send(&rpc, &gov.finalize(proposal).map_err(program_error)?, &[&signer]).await?;
            let p: Proposal = read_account(&rpc, &gov, &gov.proposal_address(proposal), "proposal").await?;
            println!("proposal {proposal}: {:?}", p.state);
            Ok(ExitCode::SUCCESS)
        }
        ChainCommand::Execute {
            target,
            payer,
            proposal,
        } => {
            let (rpc, gov, signer) = open(&target, &payer)?;
            let p: Proposal = read_account(&rpc, &gov, &gov.proposal_address(proposal), "proposal").await?;
            let ix = gov
                .execute(&signer.pubkey().to_bytes(), proposal, p.kind, &p.payload)
                .map_err(program_error)?;
            send(&rpc, &ix, &[&signer]).await?;
            Ok(ExitCode::SUCCESS)
        }
        ChainCommand::Cancel {
            target,
            payer,
            proposal,
        } => {
            let (rpc, gov, signer) = open(&target, &payer)?;
            let ix = gov
                .cancel(&signer.pubkey().to_bytes(), proposal)
                .map_err(program_error)?;
            send(&rpc, &ix, &[&signer]).await?;
            Ok(ExitCode::SUCCESS)
        }
        ChainCommand::Halt { target, payer, reason } => {
            ensure!(!reason.trim().is_empty(), "--reason must say why");
            let (rpc, gov, signer) = open(&target, &payer)?;
            let ix = gov
                .approve_halt(&signer.pubkey().to_bytes(), &sha256(reason.as_bytes()))
                .map_err(program_error)?;
            send(&rpc, &ix, &[&signer]).await?;
            report_motion(&rpc, &gov).await
        }
        ChainCommand::Resume { target, payer } => {
            let (rpc, gov, signer) = open(&target, &payer)?;
            let ix = gov.approve_resume(&signer.pubkey().to_bytes()).map_err(program_error)?;
            send(&rpc, &ix, &[&signer]).await?;
            report_motion(&rpc, &gov).await
        }
        ChainCommand::Veto {
            target,
            payer,
            proposal,
        } => {
            let (rpc, gov, signer) = open(&target, &payer)?;
            let ix = gov
                .approve_veto(&signer.pubkey().to_bytes(), proposal)
                .map_err(program_error)?;
            send(&rpc, &ix, &[&signer]).await?;
            report_motion(&rpc, &gov).await
        }
        ChainCommand::TransferAuthority {
            target,
            payer,
            threshold,
            keys,
        } => {
            let set = key_set(threshold, &keys)?;
            let (rpc, gov, signer) = open(&target, &payer)?;
            let ix = gov
                .approve_transfer(&signer.pubkey().to_bytes(), &set)
                .map_err(program_error)?;
            send(&rpc, &ix, &[&signer]).await?;
            report_motion(&rpc, &gov).await
        }
        ChainCommand::AcceptAuthority { target, keypairs } => {
            let gov = target.client()?;
            let rpc = Rpc::new(&target.rpc_url)?;
            let signers = keypairs.iter().map(|p| read_signer(p)).collect::<Result<Vec<_>>>()?;
            let keys: Vec<Key> = signers.iter().map(|s| s.pubkey().to_bytes()).collect();
            let refs: Vec<&solana_keypair::Keypair> = signers.iter().collect();
            send(&rpc, &gov.accept_authority(&keys).map_err(program_error)?, &refs).await?;
            println!("the new emergency set is in force");
            Ok(ExitCode::SUCCESS)
        }
        ChainCommand::Appeal {
            target,
            payer,
            decision,
            reason,
        } => {
            let (rpc, gov, signer) = open(&target, &payer)?;
            let decision_hash = sha256(decision.trim().as_bytes());
            let ix = gov
                .submit_appeal(&signer.pubkey().to_bytes(), &decision_hash, &sha256(reason.as_bytes()))
                .map_err(program_error)?;
            send(&rpc, &ix, &[&signer]).await?;
            println!("appeal {}", address(&gov.appeal_address(&decision_hash)));
            Ok(ExitCode::SUCCESS)
        }
        ChainCommand::RuleAppeal {
            target,
            payer,
            decision,
            ruling,
            text,
        } => {
            let ruling = match ruling.as_str() {
                "upheld" => 2,
                "overturned" => 3,
                other => bail!("--ruling `{other}`: upheld or overturned"),
            };
            let (rpc, gov, signer) = open(&target, &payer)?;
            let ix = gov
                .rule_appeal(
                    &signer.pubkey().to_bytes(),
                    &sha256(decision.trim().as_bytes()),
                    ruling,
                    &sha256(text.as_bytes()),
                )
                .map_err(program_error)?;
            send(&rpc, &ix, &[&signer]).await?;
            Ok(ExitCode::SUCCESS)
        }
    }
}

fn program_error(e: quantumagi_program::error::QgError) -> anyhow::Error {
    anyhow::anyhow!("cannot build the instruction: {e:?}")
}

fn open(target: &Target, payer: &Payer) -> Result<(Rpc, GovernanceClient, solana_keypair::Keypair)> {
    Ok((
        Rpc::new(&target.rpc_url)?,
        target.client()?,
        read_signer(&payer.keypair)?,
    ))
}

fn change_payload(change: &Change) -> Result<(ProposalKind, [u8; PAYLOAD_LEN])> {
    Ok(match change {
        Change::Constitution { file, version } => (
            ProposalKind::UpdateConstitution,
            payload::update_constitution(&constitution_hash(file)?, *version),
        ),
        Change::Policy { hash, deactivate } => {
            let bytes = hex::decode(hash.trim()).context("--hash is not hex")?;
            let hash = <Key>::try_from(bytes.as_slice()).map_err(|_| anyhow::anyhow!("--hash must be 32 bytes"))?;
            (ProposalKind::SetPolicy, payload::set_policy(&hash, !deactivate))
        }
        Change::Member { member, weight, roles } => (
            ProposalKind::SetMember,
            payload::set_member(
                &parse_address(member).context("--member")?,
                *weight,
                parse_roles(roles)?,
            ),
        ),
        Change::Params {
            threshold_bps,
            quorum_bps,
            voting_period,
            timelock,
        } => {
            let params = Params {
                approval_threshold_bps: *threshold_bps,
                quorum_bps: *quorum_bps,
                voting_period_s: *voting_period,
                timelock_s: *timelock,
            };
            params
                .validate()
                .map_err(|_| anyhow::anyhow!("voting rules out of range (basis points 1–10000, period ≥ 1 s)"))?;
            (
                ProposalKind::SetParams,
                payload::set_params(&params).map_err(program_error)?,
            )
        }
        Change::AnchorAuthority { key } => (
            ProposalKind::SetAnchorAuthority,
            payload::set_anchor_authority(&parse_address(key).context("--key")?),
        ),
    })
}

async fn report_motion(rpc: &Rpc, gov: &GovernanceClient) -> Result<ExitCode> {
    let state: Governance = read_account(rpc, gov, &gov.governance, "governance").await?;
    if state.motion.approvals == 0 {
        println!("carried out (halted: {})", state.halted);
    } else {
        println!(
            "approved: {} of {} needed",
            state.motion.approvals.count_ones(),
            state.emergency.threshold
        );
    }
    Ok(ExitCode::SUCCESS)
}

async fn status(target: &Target, json: bool) -> Result<ExitCode> {
    let gov = target.client()?;
    let rpc = Rpc::new(&target.rpc_url)?;
    let state: Governance = read_account(&rpc, &gov, &gov.governance, "governance").await?;
    let anchor = match rpc.account(&gov.anchor_address()).await? {
        Some(account) if account.owner == gov.program_id => Anchor::decode(&account.data).ok(),
        _ => None,
    };
    let emergency: Vec<String> = state
        .emergency
        .keys
        .iter()
        .take(usize::from(state.emergency.count))
        .map(address)
        .collect();
    let value = serde_json::json!({
        "program_id": address(&gov.program_id),
        "governance": address(&gov.governance),
        "creator": address(&state.creator),
        "constitution_hash": hex::encode(state.constitution_hash),
        "constitution_version": state.constitution_version,
        "halted": state.halted,
        "halted_since": state.halted_since,
        "halt_reason_sha256": state.halted.then(|| hex::encode(state.halt_reason)),
        "setup_open": state.setup_open,
        "members": state.member_count,
        "total_weight": state.total_weight,
        "next_proposal_id": state.next_proposal_id,
        "approval_threshold_bps": state.params.approval_threshold_bps,
        "quorum_bps": state.params.quorum_bps,
        "voting_period_s": state.params.voting_period_s,
        "timelock_s": state.params.timelock_s,
        "emergency_threshold": state.emergency.threshold,
        "emergency": emergency,
        "pending_emergency": (state.pending_emergency.count > 0).then(|| state
            .pending_emergency
            .keys
            .iter()
            .take(usize::from(state.pending_emergency.count))
            .map(address)
            .collect::<Vec<_>>()),
        "anchor_authority": address(&state.anchor_authority),
        "anchor": anchor.map(|a| serde_json::json!({
            "tree_size": a.tree_size,
            "root": hex::encode(a.root),
            "checkpoint_time": a.checkpoint_time,
            "anchored_at": a.anchored_at,
        })),
        "appeals": state.appeals,
    });
    if json {
        println!("{}", serde_json::to_string_pretty(&value)?);
    } else {
        println!(
            "governance {} (program {})",
            address(&gov.governance),
            address(&gov.program_id)
        );
        println!(
            "  constitution: {} v{}",
            hex::encode(state.constitution_hash),
            state.constitution_version
        );
        println!("  halted: {}", if state.halted { "YES" } else { "no" });
        println!(
            "  council: {} members, total weight {}{}",
            state.member_count,
            state.total_weight,
            if state.setup_open { " (setup open)" } else { "" }
        );
        println!(
            "  rules: threshold {} bps, quorum {} bps, voting {} s, timelock {} s",
            state.params.approval_threshold_bps,
            state.params.quorum_bps,
            state.params.voting_period_s,
            state.params.timelock_s
        );
        println!(
            "  emergency set: {} of {}",
            state.emergency.threshold, state.emergency.count
        );
        println!("  proposals so far: {}", state.next_proposal_id.saturating_sub(1));
        match anchor {
            Some(a) => println!("  anchored: tree size {}, root {}", a.tree_size, hex::encode(a.root)),
            None => println!("  anchored: nothing yet"),
        }
    }
    Ok(ExitCode::SUCCESS)
}

async fn show_proposal(target: &Target, id: u64, json: bool) -> Result<ExitCode> {
    let gov = target.client()?;
    let rpc = Rpc::new(&target.rpc_url)?;
    let p: Proposal = read_account(&rpc, &gov, &gov.proposal_address(id), "proposal").await?;
    let value = serde_json::json!({
        "id": p.id,
        "address": address(&gov.proposal_address(id)),
        "kind": format!("{:?}", p.kind),
        "payload": hex::encode(p.payload),
        "state": format!("{:?}", p.state),
        "proposer": address(&p.proposer),
        "yes": p.yes, "no": p.no, "abstain": p.abstain, "voters": p.voters,
        "weight_snapshot": p.weight_snapshot,
        "created_at": p.created_at, "voting_ends_at": p.voting_ends_at, "executable_at": p.executable_at,
    });
    if json {
        println!("{}", serde_json::to_string_pretty(&value)?);
    } else {
        println!("proposal {id}: {:?} {:?}", p.kind, p.state);
        println!(
            "  yes {} / no {} / abstain {} of {} ({} voters)",
            p.yes, p.no, p.abstain, p.weight_snapshot, p.voters
        );
        println!("  voting ends {}; executable at {}", p.voting_ends_at, p.executable_at);
    }
    Ok(ExitCode::SUCCESS)
}

async fn verify(target: &Target, server: Option<&str>, api_key: Option<&str>, file: Option<&Path>) -> Result<ExitCode> {
    let gov = target.client()?;
    let rpc = Rpc::new(&target.rpc_url)?;
    let state: Governance = read_account(&rpc, &gov, &gov.governance, "governance").await?;
    let on_chain = hex::encode(state.constitution_hash);
    let (source, active) = match (server, file) {
        (Some(url), _) => {
            let mut request = reqwest::Client::new().get(format!("{}/v1/constitution", url.trim_end_matches('/')));
            if let Some(key) = api_key {
                request = request.bearer_auth(key);
            }
            let response = request.send().await.with_context(|| format!("cannot reach {url}"))?;
            let status = response.status();
            let body: serde_json::Value = response.json().await.context("the server sent no JSON")?;
            ensure!(status.is_success(), "{url} answered {status}: {body}");
            let hash = body["hash"]
                .as_str()
                .context("the server's constitution has no hash")?
                .to_owned();
            (url.to_owned(), hash)
        }
        (None, Some(path)) => (path.display().to_string(), hex::encode(constitution_hash(path)?)),
        (None, None) => bail!("give --server URL (with --api-key) or --constitution FILE"),
    };
    if active == on_chain {
        println!(
            "match: {source} enforces constitution {on_chain} (v{} on chain)",
            state.constitution_version
        );
        Ok(ExitCode::SUCCESS)
    } else {
        println!(
            "MISMATCH: the chain holds {on_chain} (v{}), {source} has {active}",
            state.constitution_version
        );
        Ok(ExitCode::FAILURE)
    }
}

async fn anchor(target: &Target, payer: &Payer, source: &crate::decisions_cmd::Source) -> Result<ExitCode> {
    let (rpc, gov, signer) = open(target, payer)?;
    let store = crate::decisions_cmd::open(source).await?;
    let checkpoint = store
        .latest_checkpoint()
        .await?
        .context("the audit log has no signed checkpoint yet")?;
    let tree_size = u64::try_from(checkpoint.tree_size).context("checkpoint size")?;
    let root: Key = checkpoint.root;
    let time = checkpoint.signed_at_us / 1_000_000;
    let ix = gov
        .anchor_checkpoint(&signer.pubkey().to_bytes(), tree_size, &root, time)
        .map_err(program_error)?;
    send(&rpc, &ix, &[&signer]).await?;
    println!("anchored: tree size {tree_size}, root {}", hex::encode(root));
    Ok(ExitCode::SUCCESS)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn roles_and_key_sets_are_checked() {
        assert_eq!(parse_roles(&["voter".into(), "reviewer".into()]).unwrap(), 5);
        assert!(parse_roles(&["king".into()]).is_err());
        let a = address(&[1; 32]);
        let b = address(&[2; 32]);
        assert_eq!(key_set(2, &[a.clone(), b.clone()]).unwrap().count, 2);
        assert!(key_set(3, &[a.clone(), b]).is_err(), "M > N");
        assert!(key_set(1, &[a.clone(), a]).is_err(), "duplicates");
        assert!(key_set(1, &[]).is_err());
    }

    #[test]
    fn payloads_are_built_for_their_kind() {
        let (kind, data) = change_payload(&Change::Policy {
            hash: "ab".repeat(32),
            deactivate: true,
        })
        .unwrap();
        assert_eq!(kind, ProposalKind::SetPolicy);
        assert_eq!(data[..32], [0xab; 32]);
        assert_eq!(data[32], 0);
        assert!(
            change_payload(&Change::Policy {
                hash: "abc".into(),
                deactivate: false
            })
            .is_err()
        );
        assert!(
            change_payload(&Change::Params {
                threshold_bps: 0,
                quorum_bps: 1,
                voting_period: 1,
                timelock: 0
            })
            .is_err()
        );
    }
}
