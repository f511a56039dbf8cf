//! The `acgs chain` commands that only read: the governance's status, one proposal, and the comparison of the
//! on-chain constitution hash with a server's (or a file's). Text or JSON output.

use std::path::Path;
use std::process::ExitCode;

use acgs_chain::accounts::{self, key_set_addresses};
use acgs_chain::address::address;
use anyhow::{Context, Result, bail, ensure};

use super::{Target, constitution_hash};

/// `acgs chain status`.
pub async fn status(target: &Target, json: bool) -> Result<ExitCode> {
    let (rpc, gov) = target.connect()?;
    let accounts::Status {
        governance: state,
        anchor,
    } = accounts::status(&rpc, &gov).await?;
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
        "emergency": key_set_addresses(&state.emergency),
        "pending_emergency": (state.pending_emergency.count > 0).then(|| key_set_addresses(&state.pending_emergency)),
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

/// `acgs chain proposal`.
pub async fn proposal(target: &Target, id: u64, json: bool) -> Result<ExitCode> {
    let (rpc, gov) = target.connect()?;
    let p = accounts::proposal(&rpc, &gov, id).await?;
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

/// `acgs chain verify`: exit status 1 on a mismatch.
pub async fn verify(
    target: &Target,
    server: Option<&str>,
    api_key: Option<&str>,
    file: Option<&Path>,
) -> Result<ExitCode> {
    let (rpc, gov) = target.connect()?;
    let state = accounts::governance(&rpc, &gov).await?;
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
