//! Reading PostgreSQL's stored tree nodes: `audit_nodes` keyed by level and index, leaves from `audit_log`.

use acgs_audit::{NodeId, NodeMap};
use sqlx::PgConnection;

use crate::StoreError;
use crate::tree::node_map;

/// Stored tree nodes named by parallel arrays of levels and indexes (level 0 from the leaf hashes).
const SELECT_NODES: &str = "SELECT 0::bigint AS level, a.seq - 1 AS idx, a.leaf_hash AS hash \
     FROM UNNEST($1::bigint[], $2::bigint[]) AS j(level, idx) JOIN audit_log a ON a.seq = j.idx + 1 \
     WHERE j.level = 0 \
     UNION ALL SELECT n.level::bigint, n.idx, n.hash \
     FROM UNNEST($1::bigint[], $2::bigint[]) AS j(level, idx) JOIN audit_nodes n \
     ON n.level = j.level AND n.idx = j.idx";

/// The stored nodes among `ids`.
pub(crate) async fn select_nodes(conn: &mut PgConnection, ids: &[NodeId]) -> Result<NodeMap, StoreError> {
    let rows: Vec<(i64, i64, Vec<u8>)> = sqlx::query_as(SELECT_NODES)
        .bind(ids.iter().map(|id| i64::from(id.level)).collect::<Vec<_>>())
        .bind(ids.iter().map(|id| id.index as i64).collect::<Vec<_>>())
        .fetch_all(conn)
        .await?;
    node_map(rows)
}
