//! The tamper-evident audit log: the log's public key, signed checkpoints, entries, inclusion and consistency
//! proofs, and decision receipts that verify offline.

use acgs_audit::{Hash, RECEIPT_FORMAT, Receipt, encode_hashes};
use acgs_store::{IntegrityError, StoredCheckpoint};
use axum::Json;
use axum::extract::{Path, State};
use base64::Engine as _;
use base64::engine::general_purpose::STANDARD as BASE64;
use serde::{Deserialize, Serialize};

use crate::error::{ApiError, Problem};
use crate::extract::QueryParams;
use crate::state::AppState;

impl From<IntegrityError> for ApiError {
    fn from(e: IntegrityError) -> Self {
        match e {
            IntegrityError::Store(e) => e.into(),
            IntegrityError::Proof(e) => ApiError::BadRequest(e.to_string()),
            IntegrityError::Verify(e) => ApiError::Internal(format!("stored log fails verification: {e}")),
            IntegrityError::Index(e) => ApiError::Integrity(e.to_string()),
        }
    }
}

fn b64(hash: &Hash) -> String {
    BASE64.encode(hash)
}

/// The log's public key.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct LogKeyInfo {
    /// Log identity: the checkpoint origin and key name.
    pub origin: String,
    /// Always `ed25519`.
    pub algorithm: &'static str,
    /// The raw 32-byte public key, base64.
    pub public_key: String,
    /// The key in signed-note verifier-key form (`name+hash+base64key`), as `acgs audit verify-receipt --key`
    /// takes it.
    pub verifier_key: String,
}

/// The public key that signs checkpoints.
#[utoipa::path(get, path = "/v1/audit/key", tag = "audit", responses((status = 200, body = LogKeyInfo)))]
pub async fn key(State(state): State<AppState>) -> Json<LogKeyInfo> {
    let key = state.checkpointer.key();
    Json(LogKeyInfo {
        origin: key.name().to_owned(),
        algorithm: "ed25519",
        public_key: BASE64.encode(key.verifying_key().as_bytes()),
        verifier_key: key.verifier_key(),
    })
}

/// A signed tree head.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct CheckpointView {
    /// Number of entries covered.
    pub tree_size: i64,
    /// RFC 6962 root over them, base64.
    pub root: String,
    /// When it was signed (µs since the Unix epoch).
    pub signed_at_us: i64,
    /// The C2SP signed note.
    pub note: String,
}

impl From<StoredCheckpoint> for CheckpointView {
    fn from(c: StoredCheckpoint) -> Self {
        Self {
            tree_size: c.tree_size,
            root: b64(&c.root),
            signed_at_us: c.signed_at_us,
            note: c.note,
        }
    }
}

/// The latest signed checkpoint (one is signed first if none covers the log yet).
#[utoipa::path(
    get, path = "/v1/audit/checkpoint", tag = "audit",
    responses((status = 200, body = CheckpointView), (status = 503, body = Problem))
)]
pub async fn checkpoint(State(state): State<AppState>) -> Result<Json<CheckpointView>, ApiError> {
    let latest = match state.log.store().latest_checkpoint().await? {
        Some(c) => c,
        None => state.checkpointer.checkpoint_now().await?,
    };
    Ok(Json(latest.into()))
}

/// One entry of the audit log.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct EntryView {
    /// Audit sequence number (leaf index + 1).
    pub seq: i64,
    /// Event kind (`decision`, `audit.pruned`).
    pub kind: String,
    /// When it was recorded (µs since the Unix epoch).
    pub recorded_at_us: i64,
    /// RFC 6962 leaf hash, base64.
    pub leaf_hash: String,
    /// The leaf data: the event's canonical JSON, byte for byte; `null` once pruned.
    pub event: Option<String>,
}

fn parse_seq(text: &str) -> Result<u64, ApiError> {
    text.parse::<u64>()
        .ok()
        .and_then(valid_seq)
        .ok_or_else(|| ApiError::BadRequest(format!("`{text}` is not a sequence number (1, 2, ...)")))
}

/// Sequence numbers start at 1 and are stored as `i64`.
fn valid_seq(seq: u64) -> Option<u64> {
    (1..=i64::MAX as u64).contains(&seq).then_some(seq)
}

/// One audit entry by sequence number.
#[utoipa::path(
    get, path = "/v1/audit/entries/{seq}", tag = "audit",
    params(("seq" = u64, Path, minimum = 1, maximum = 9223372036854775807_u64, description = "Audit sequence number")),
    responses((status = 200, body = EntryView), (status = 400, body = Problem), (status = 404, body = Problem))
)]
pub async fn entry(State(state): State<AppState>, Path(seq): Path<String>) -> Result<Json<EntryView>, ApiError> {
    let seq = parse_seq(&seq)? as i64;
    let entry = state
        .log
        .store()
        .audit_entries(seq, 1)
        .await?
        .into_iter()
        .find(|e| e.seq == seq)
        .ok_or_else(|| ApiError::NotFound(format!("no audit entry {seq}")))?;
    Ok(Json(EntryView {
        seq: entry.seq,
        kind: entry.kind,
        recorded_at_us: entry.recorded_at_us,
        leaf_hash: b64(&entry.leaf_hash),
        event: entry.event,
    }))
}

/// Parameters of an inclusion proof.
#[derive(Debug, Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(deny_unknown_fields)]
pub struct InclusionParams {
    /// The entry's sequence number.
    #[param(minimum = 1, maximum = 9223372036854775807_u64)]
    pub seq: u64,
    /// Tree size to prove inclusion in, at least `seq` [default: the latest checkpoint, signing one if it does
    /// not cover `seq`].
    #[param(minimum = 1, maximum = 9223372036854775807_u64)]
    pub size: Option<u64>,
}

/// An inclusion proof.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct InclusionView {
    /// The entry's sequence number.
    pub seq: u64,
    /// Its leaf index (`seq - 1`).
    pub leaf_index: u64,
    /// The tree size the proof is for.
    pub tree_size: u64,
    /// The entry's leaf hash, base64.
    pub leaf_hash: String,
    /// Audit path (RFC 9162), base64 hashes, bottom-up.
    pub proof: Vec<String>,
    /// The signed checkpoint for `tree_size`, when one exists.
    pub checkpoint: Option<String>,
}

/// Inclusion proof of an entry in a tree size.
#[utoipa::path(
    get, path = "/v1/audit/proof/inclusion", tag = "audit", params(InclusionParams),
    responses((status = 200, body = InclusionView), (status = 400, body = Problem), (status = 404, body = Problem))
)]
pub async fn inclusion(
    State(state): State<AppState>,
    QueryParams(params): QueryParams<InclusionParams>,
) -> Result<Json<InclusionView>, ApiError> {
    let seq = valid_seq(params.seq)
        .ok_or_else(|| ApiError::BadRequest(format!("`{}` is not a sequence number (1, 2, ...)", params.seq)))?;
    if let Some(size) = params.size
        && valid_seq(size).is_none()
    {
        return Err(ApiError::BadRequest(format!("`{size}` is not a tree size (1, 2, ...)")));
    }
    let store = state.log.store();
    if seq as i64 > store.last_seq().await? {
        return Err(ApiError::NotFound(format!("no audit entry {seq}")));
    }
    let (size, note) = match params.size {
        Some(size) => {
            let note = store
                .checkpoints(size as i64 - 1, 1)
                .await?
                .into_iter()
                .find(|c| c.tree_size == size as i64)
                .map(|c| c.note);
            (size, note)
        }
        None => {
            let c = state.checkpointer.checkpoint_covering(seq as i64).await?;
            (c.tree_size as u64, Some(c.note))
        }
    };
    if seq > size {
        return Err(ApiError::BadRequest(format!(
            "entry {seq} is not in a tree of size {size}"
        )));
    }
    let proof = acgs_store::inclusion_proof(&**store, seq, size).await?;
    let leaf = store
        .tree_nodes(&[acgs_audit::NodeId {
            level: 0,
            index: seq - 1,
        }])
        .await?;
    let leaf = acgs_audit::SubtreeSource::subtree_root(&leaf, seq - 1, seq)
        .map_err(|e| ApiError::Internal(format!("leaf {seq}: {e}")))?;
    Ok(Json(InclusionView {
        seq,
        leaf_index: seq - 1,
        tree_size: size,
        leaf_hash: b64(&leaf),
        proof: encode_hashes(&proof),
        checkpoint: note,
    }))
}

/// Parameters of a consistency proof.
#[derive(Debug, Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(deny_unknown_fields)]
pub struct ConsistencyParams {
    /// Older tree size.
    #[param(maximum = 9223372036854775807_u64)]
    pub from: u64,
    /// Newer tree size, at least `from`.
    #[param(maximum = 9223372036854775807_u64)]
    pub to: u64,
}

/// A consistency proof.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct ConsistencyView {
    /// Older tree size.
    pub from: u64,
    /// Newer tree size.
    pub to: u64,
    /// RFC 9162 consistency proof, base64 hashes.
    pub proof: Vec<String>,
}

/// Proof that the tree of size `to` extends the tree of size `from`.
#[utoipa::path(
    get, path = "/v1/audit/proof/consistency", tag = "audit", params(ConsistencyParams),
    responses((status = 200, body = ConsistencyView), (status = 400, body = Problem))
)]
pub async fn consistency(
    State(state): State<AppState>,
    QueryParams(params): QueryParams<ConsistencyParams>,
) -> Result<Json<ConsistencyView>, ApiError> {
    if params.from > params.to {
        return Err(ApiError::BadRequest(format!(
            "`from` ({}) must not exceed `to` ({})",
            params.from, params.to
        )));
    }
    let proof = acgs_store::consistency_proof(&**state.log.store(), params.from, params.to).await?;
    Ok(Json(ConsistencyView {
        from: params.from,
        to: params.to,
        proof: encode_hashes(&proof),
    }))
}

/// A decision receipt: the event, its inclusion proof and a signed checkpoint; verifies offline with
/// `acgs audit verify-receipt`.
#[utoipa::path(
    get, path = "/v1/decisions/{decision_id}/receipt", tag = "audit",
    params(("decision_id" = String, Path, description = "Decision id")),
    responses((status = 200, body = Object), (status = 404, body = Problem))
)]
pub async fn receipt(
    State(state): State<AppState>,
    Path(decision_id): Path<String>,
) -> Result<Json<Receipt>, ApiError> {
    let store = state.log.store();
    let record = store
        .get(&decision_id)
        .await?
        .ok_or_else(|| ApiError::NotFound(format!("no decision `{decision_id}` in the log")))?;
    let entry = store
        .audit_entries(record.seq, 1)
        .await?
        .into_iter()
        .find(|e| e.seq == record.seq)
        .ok_or_else(|| ApiError::Internal(format!("decision `{decision_id}` has no audit entry")))?;
    let event = entry
        .event
        .ok_or_else(|| ApiError::NotFound(format!("decision `{decision_id}` was pruned")))?;
    let checkpoint = state.checkpointer.checkpoint_covering(record.seq).await?;
    let size = checkpoint.tree_size as u64;
    let proof = acgs_store::inclusion_proof(&**store, record.seq as u64, size).await?;
    Ok(Json(Receipt {
        format: RECEIPT_FORMAT.to_owned(),
        seq: record.seq as u64,
        event,
        tree_size: size,
        inclusion_proof: encode_hashes(&proof),
        checkpoint: checkpoint.note,
    }))
}
