//! The decision record both store benchmarks append: about the size the server logs for the example
//! constitution's requests (a 900-byte body).

use acgs_store::DecisionRecord;

/// Record number `n`.
pub fn record(n: usize) -> DecisionRecord {
    DecisionRecord {
        decision_id: format!("{n:036}"),
        recorded_at_us: n as i64,
        principal_type: "Agent".into(),
        principal_id: "ap-agent".into(),
        action: "transfer_funds".into(),
        resource_type: "Account".into(),
        resource_id: "opex-eur".into(),
        outcome: "allow".into(),
        effective_outcome: "allow".into(),
        constitutional_hash: "ab".repeat(32),
        constitution_version: "1.0.0".into(),
        evaluated_in_us: 30,
        body: format!(r#"{{"explanation":"{}"}}"#, "x".repeat(880)),
        ..Default::default()
    }
}
