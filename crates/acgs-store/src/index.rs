//! The decision index checked against the audit log. The `decisions` table only says where to look (it is
//! what queries filter and order by); every field a reader is shown comes from the signed event at the row's
//! sequence number, and a row that disagrees with its event, or whose event no longer hashes to its leaf, is an
//! [`IndexMismatch`]. Reads ([`crate::DecisionStore::get`] and [`crate::DecisionStore::list`]) fail closed on
//! one: a tampered index is an incident, not something to paper over. [`crate::verify_store`] walks every row.
//!
//! The rows are read with the statements of [`crate::queries`], written once for both backends.

use acgs_audit::leaf_hash;
use serde::Deserialize;

use crate::{AuditEntry, DECISION_EVENT_KIND, DecisionRecord, IndexMismatch, IndexProblem, StoreError};

/// A row of the decision index as stored.
#[derive(Debug, sqlx::FromRow)]
pub(crate) struct IndexRow {
    seq: i64,
    decision_id: String,
    recorded_at_us: i64,
    principal_type: String,
    principal_id: String,
    action: String,
    resource_type: String,
    resource_id: String,
    outcome: String,
    effective_outcome: String,
    shadow: bool,
    constitutional_hash: String,
    constitution_version: String,
    evaluated_in_us: i64,
}

impl From<IndexRow> for DecisionRecord {
    /// The row's fields (no body: the index has none).
    fn from(r: IndexRow) -> Self {
        Self {
            seq: r.seq,
            decision_id: r.decision_id,
            recorded_at_us: r.recorded_at_us,
            principal_type: r.principal_type,
            principal_id: r.principal_id,
            action: r.action,
            resource_type: r.resource_type,
            resource_id: r.resource_id,
            outcome: r.outcome,
            effective_outcome: r.effective_outcome,
            shadow: r.shadow,
            constitutional_hash: r.constitutional_hash,
            constitution_version: r.constitution_version,
            evaluated_in_us: r.evaluated_in_us,
            body: String::new(),
        }
    }
}

/// An index row with its audit log entry, as a decision read returns it (see [`crate::queries`]).
#[derive(Debug, sqlx::FromRow)]
pub(crate) struct DecisionRow {
    #[sqlx(flatten)]
    index: IndexRow,
    leaf_hash: Option<Vec<u8>>,
    event: Option<String>,
}

impl DecisionRow {
    /// The decision as its event holds it, or the reason the index row cannot be trusted (counted in
    /// `acgs_decision_index_mismatches_total` and logged).
    pub(crate) fn checked(self) -> Result<DecisionRecord, StoreError> {
        let index = DecisionRecord::from(self.index);
        check_row(&index, self.leaf_hash.as_deref(), self.event.as_deref()).map_err(|mismatch| {
            metrics::counter!("acgs_decision_index_mismatches_total").increment(1);
            tracing::error!(error = %mismatch, "a decision read found the decision index tampered with");
            mismatch.into()
        })
    }
}

/// The decision the event at `index.seq` holds, if it is the decision `index` describes: the entry exists, its
/// event was not pruned, still hashes to its stored leaf hash, and agrees with every indexed column.
pub(crate) fn check_row(
    index: &DecisionRecord,
    stored_leaf: Option<&[u8]>,
    event: Option<&str>,
) -> Result<DecisionRecord, IndexMismatch> {
    let mismatch = |problem| IndexMismatch {
        seq: index.seq,
        decision_id: index.decision_id.clone(),
        problem,
    };
    let Some(stored_leaf) = stored_leaf else {
        return Err(mismatch(IndexProblem::NoEvent));
    };
    let Some(event) = event else {
        return Err(mismatch(IndexProblem::Pruned));
    };
    if leaf_hash(event.as_bytes()).as_slice() != stored_leaf {
        return Err(mismatch(IndexProblem::EventModified));
    }
    let logged =
        crate::event::read_decision_event(event).map_err(|e| mismatch(IndexProblem::NotADecision(e.to_string())))?;
    if let Some((column, indexed, logged)) = first_difference(index, &logged) {
        return Err(mismatch(IndexProblem::Column {
            column,
            indexed,
            logged,
        }));
    }
    Ok(logged)
}

/// The first indexed column whose value differs between the index row and the event's record.
fn first_difference(index: &DecisionRecord, logged: &DecisionRecord) -> Option<(&'static str, String, String)> {
    let text = |column, a: &String, b: &String| (a != b).then(|| (column, a.clone(), b.clone()));
    let number = |column, a: i64, b: i64| (a != b).then(|| (column, a.to_string(), b.to_string()));
    number("seq", index.seq, logged.seq)
        .or_else(|| text("decision_id", &index.decision_id, &logged.decision_id))
        .or_else(|| number("recorded_at_us", index.recorded_at_us, logged.recorded_at_us))
        .or_else(|| text("principal_type", &index.principal_type, &logged.principal_type))
        .or_else(|| text("principal_id", &index.principal_id, &logged.principal_id))
        .or_else(|| text("action", &index.action, &logged.action))
        .or_else(|| text("resource_type", &index.resource_type, &logged.resource_type))
        .or_else(|| text("resource_id", &index.resource_id, &logged.resource_id))
        .or_else(|| text("outcome", &index.outcome, &logged.outcome))
        .or_else(|| text("effective_outcome", &index.effective_outcome, &logged.effective_outcome))
        .or_else(|| {
            (index.shadow != logged.shadow).then(|| ("shadow", index.shadow.to_string(), logged.shadow.to_string()))
        })
        .or_else(|| {
            text(
                "constitutional_hash",
                &index.constitutional_hash,
                &logged.constitutional_hash,
            )
        })
        .or_else(|| {
            text(
                "constitution_version",
                &index.constitution_version,
                &logged.constitution_version,
            )
        })
        .or_else(|| number("evaluated_in_us", index.evaluated_in_us, logged.evaluated_in_us))
}

/// For verification: check an audit log entry (already verified against its leaf hash) against the index row
/// at its sequence number, if any. A decision event must have a row that agrees with it; any other entry, and a
/// pruned one, must have none.
pub(crate) fn check_entry(entry: &AuditEntry, row: Option<&DecisionRecord>) -> Result<(), IndexMismatch> {
    #[derive(Deserialize)]
    struct Head {
        kind: String,
    }
    let Some(event) = entry.event.as_deref() else {
        return match row {
            Some(row) => check_row(row, Some(&entry.leaf_hash), None).map(drop),
            None => Ok(()),
        };
    };
    let kind = serde_json::from_str::<Head>(event).map(|h| h.kind).unwrap_or_default();
    match (row, kind == DECISION_EVENT_KIND) {
        (Some(row), true) => check_row(row, Some(&entry.leaf_hash), Some(event)).map(drop),
        (Some(row), false) => Err(IndexMismatch {
            seq: row.seq,
            decision_id: row.decision_id.clone(),
            problem: IndexProblem::NotADecision(format!("its kind is `{kind}`")),
        }),
        (None, true) => Err(IndexMismatch {
            seq: entry.seq,
            decision_id: crate::event::read_decision_event(event)
                .map(|r| r.decision_id)
                .unwrap_or_default(),
            problem: IndexProblem::NoIndexRow,
        }),
        (None, false) => Ok(()),
    }
}

/// An index row that has no entry in the log.
pub(crate) fn without_event(row: &DecisionRecord) -> IndexMismatch {
    IndexMismatch {
        seq: row.seq,
        decision_id: row.decision_id.clone(),
        problem: IndexProblem::NoEvent,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::event::NewEvent;

    fn record() -> DecisionRecord {
        DecisionRecord {
            seq: 7,
            decision_id: "d-7".into(),
            recorded_at_us: 1_700_000_000_000_007,
            principal_type: "Agent".into(),
            principal_id: "a".into(),
            action: "pay".into(),
            resource_type: "Account".into(),
            resource_id: "x".into(),
            outcome: "escalate".into(),
            effective_outcome: "escalate".into(),
            shadow: false,
            constitutional_hash: "ab".repeat(32),
            constitution_version: "1.0".into(),
            evaluated_in_us: 3,
            body: r#"{"explanation":"why"}"#.into(),
        }
    }

    #[test]
    fn a_row_is_read_from_its_event_and_any_difference_is_named() {
        let entry = NewEvent::decision(record()).unwrap().entry_at(7).unwrap();
        let index = DecisionRecord {
            body: String::new(),
            ..record()
        };
        let leaf = entry.leaf_hash;
        assert_eq!(check_row(&index, Some(&leaf), Some(&entry.event)), Ok(record()));

        let forged = DecisionRecord {
            outcome: "allow".into(),
            effective_outcome: "allow".into(),
            ..index.clone()
        };
        let problem = check_row(&forged, Some(&leaf), Some(&entry.event)).unwrap_err();
        assert_eq!(
            problem.to_string(),
            "decision index does not match its audit event at seq 7 (decision `d-7`): column `outcome` holds \
             `allow`, the event `escalate`"
        );
        let edited = entry.event.replace("escalate", "allow");
        assert_eq!(
            check_row(&index, Some(&leaf), Some(&edited)).unwrap_err().problem,
            IndexProblem::EventModified
        );
        assert_eq!(
            check_row(&index, None, None).unwrap_err().problem,
            IndexProblem::NoEvent
        );
        assert_eq!(
            check_row(&index, Some(&leaf), None).unwrap_err().problem,
            IndexProblem::Pruned
        );
        let moved = DecisionRecord {
            seq: 8,
            ..index.clone()
        };
        assert!(matches!(
            check_row(&moved, Some(&leaf), Some(&entry.event)).unwrap_err().problem,
            IndexProblem::Column { column: "seq", .. }
        ));
    }
}
