//! What the store appends and how it becomes leaves. An event on its way into the log is a [`NewEvent`]: an
//! `acgs_audit::AuditEvent` (the one typed enum of every kind of event) with the time it was recorded.
//! [`prepare_batch`] gives a batch of them their sequence numbers and makes each its leaf with
//! `acgs_audit::leaf_json` (the one writer of leaves), its leaf hash, the tree nodes the batch completes and the
//! decision-index rows of the decisions among them. Both backends insert what it prepares; neither writes
//! event JSON of its own. [`AuditEntry`] is an entry as stored.

use acgs_audit::event::{AuditEvent, DecisionEvent, EntityName, JsonText, LoggedEvent, Outcome, PrunedRange};
use acgs_audit::{Hash, leaf_hash, leaf_json};
use serde::{Deserialize, Serialize};

use crate::{DecisionRecord, StoreError};

pub use acgs_audit::event::kind::{DECISION as DECISION_EVENT_KIND, SECURITY as SECURITY_EVENT_KIND};

/// One entry of the audit log as stored.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AuditEntry {
    /// Audit sequence number (leaf index + 1).
    pub seq: i64,
    /// Event kind, e.g. `decision` or `audit.pruned`.
    pub kind: String,
    /// When the event was recorded (µs since the Unix epoch).
    pub recorded_at_us: i64,
    /// RFC 6962 leaf hash of the event (base64 in JSON).
    #[serde(with = "base64_hash")]
    pub leaf_hash: Hash,
    /// The event's canonical JSON (the leaf data); `None` once pruned.
    pub event: Option<String>,
}

mod base64_hash {
    use base64::Engine as _;
    use base64::engine::general_purpose::STANDARD;
    use serde::{Deserialize, Deserializer, Serializer};

    pub fn serialize<S: Serializer>(hash: &[u8; 32], s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&STANDARD.encode(hash))
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<[u8; 32], D::Error> {
        let text = String::deserialize(d)?;
        STANDARD
            .decode(&text)
            .ok()
            .and_then(|b| <[u8; 32]>::try_from(b.as_slice()).ok())
            .ok_or_else(|| serde::de::Error::custom("expected a base64 32-byte hash"))
    }
}

/// An event on its way into the log: what happened and when. The log gives it its sequence number.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewEvent {
    /// When it happened (µs since the Unix epoch).
    pub recorded_at_us: i64,
    /// What happened.
    pub event: AuditEvent,
}

impl NewEvent {
    /// A decision, as its record holds it (its `seq` is left out: the log assigns it). Fails with
    /// [`StoreError::InvalidRecord`] when an outcome is not `allow`, `deny` or `escalate`.
    pub fn decision(record: DecisionRecord) -> Result<Self, StoreError> {
        let outcome = |what: &str, word: &str| {
            word.parse::<Outcome>()
                .map_err(|e| StoreError::InvalidRecord(format!("decision `{}` has {what} {e}", record.decision_id)))
        };
        let (outcome, effective_outcome) = (
            outcome("outcome", &record.outcome)?,
            outcome("effective outcome", &record.effective_outcome)?,
        );
        Ok(Self {
            recorded_at_us: record.recorded_at_us,
            event: AuditEvent::Decision {
                constitutional_hash: record.constitutional_hash,
                decision: DecisionEvent {
                    decision_id: record.decision_id,
                    principal: EntityName {
                        entity_type: record.principal_type,
                        id: record.principal_id,
                    },
                    action: record.action,
                    resource: EntityName {
                        entity_type: record.resource_type,
                        id: record.resource_id,
                    },
                    outcome,
                    effective_outcome,
                    shadow: record.shadow,
                    constitution_version: record.constitution_version,
                    evaluated_in_us: record.evaluated_in_us,
                    body: JsonText::new(record.body),
                },
            },
        })
    }

    /// A security event, recorded at `recorded_at_us`.
    pub fn security(security: acgs_audit::event::SecurityEvent, recorded_at_us: i64) -> Self {
        Self {
            recorded_at_us,
            event: AuditEvent::Security { security },
        }
    }

    /// A governance action, recorded at `recorded_at_us`.
    pub fn governance(governance: acgs_audit::event::GovernanceEvent, recorded_at_us: i64) -> Self {
        Self {
            recorded_at_us,
            event: AuditEvent::Governance { governance },
        }
    }

    /// The record a prune leaves: event bodies up to `through_seq`, recorded before `older_than_us`, were removed.
    pub(crate) fn pruned(through_seq: i64, older_than_us: i64, recorded_at_us: i64) -> Self {
        Self {
            recorded_at_us,
            event: AuditEvent::Pruned {
                pruned: PrunedRange {
                    through_seq,
                    older_than_us,
                },
            },
        }
    }
}

impl NewEvent {
    /// The entry this event becomes at `seq`: its leaf and leaf hash.
    pub(crate) fn entry_at(&self, seq: i64) -> Result<NewEntry, StoreError> {
        let event = leaf_json(seq, self.recorded_at_us, &self.event).map_err(|e| StoreError::Encode(e.to_string()))?;
        Ok(NewEntry {
            seq,
            kind: self.event.kind(),
            recorded_at_us: self.recorded_at_us,
            leaf_hash: leaf_hash(event.as_bytes()),
            event,
        })
    }
}

/// A new entry ready to insert.
#[derive(Debug)]
pub(crate) struct NewEntry {
    pub seq: i64,
    pub kind: &'static str,
    pub recorded_at_us: i64,
    pub event: String,
    pub leaf_hash: Hash,
}

/// A decision among a batch's events: what its decision-index row holds.
#[derive(Debug, Clone, Copy)]
pub(crate) struct IndexedDecision<'a> {
    pub seq: i64,
    pub recorded_at_us: i64,
    pub constitutional_hash: &'a str,
    pub decision: &'a DecisionEvent,
}

impl IndexedDecision<'_> {
    /// The index row as a record (without a body: the index has none).
    pub(crate) fn record(&self) -> DecisionRecord {
        let d = self.decision;
        DecisionRecord {
            seq: self.seq,
            decision_id: d.decision_id.clone(),
            recorded_at_us: self.recorded_at_us,
            principal_type: d.principal.entity_type.clone(),
            principal_id: d.principal.id.clone(),
            action: d.action.clone(),
            resource_type: d.resource.entity_type.clone(),
            resource_id: d.resource.id.clone(),
            outcome: d.outcome.as_str().to_owned(),
            effective_outcome: d.effective_outcome.as_str().to_owned(),
            shadow: d.shadow,
            constitutional_hash: self.constitutional_hash.to_owned(),
            constitution_version: d.constitution_version.clone(),
            evaluated_in_us: d.evaluated_in_us,
            body: String::new(),
        }
    }
}

/// A batch ready to insert: its entries, the tree nodes above the leaves that it completes, and the decisions
/// among its events with their sequence numbers.
#[derive(Debug)]
pub(crate) struct PreparedBatch<'a> {
    pub entries: Vec<NewEntry>,
    pub nodes: Vec<(acgs_audit::NodeId, Hash)>,
    pub decisions: Vec<IndexedDecision<'a>>,
}

/// Give `events` the sequence numbers after `frontier` (the tree's right edge), make each its leaf, and extend
/// the frontier with their leaf hashes.
pub(crate) fn prepare_batch<'a>(
    frontier: &mut acgs_audit::Frontier,
    events: &'a [NewEvent],
) -> Result<PreparedBatch<'a>, StoreError> {
    let first = frontier.size() as i64 + 1;
    let mut entries = Vec::with_capacity(events.len());
    let mut decisions = Vec::new();
    for (seq, new) in (first..).zip(events) {
        if let AuditEvent::Decision {
            constitutional_hash,
            decision,
        } = &new.event
        {
            decisions.push(IndexedDecision {
                seq,
                recorded_at_us: new.recorded_at_us,
                constitutional_hash,
                decision,
            });
        }
        entries.push(new.entry_at(seq)?);
    }
    let mut nodes = Vec::with_capacity(entries.len());
    for entry in &entries {
        frontier.push(entry.leaf_hash, |id, hash| {
            if id.level > 0 {
                nodes.push((id, *hash));
            }
        });
    }
    Ok(PreparedBatch {
        entries,
        nodes,
        decisions,
    })
}

/// The decision record a decision event stored at `seq` holds (the body comes back as canonical JSON text).
pub(crate) fn decision_record(seq: i64, event: &str) -> Result<DecisionRecord, String> {
    read_decision_event(event)
        .map(|r| DecisionRecord { seq, ..r })
        .map_err(|e| format!("the decision event at seq {seq} cannot be read: {e}"))
}

/// The decision record a decision event holds, with the sequence number the event itself names.
pub(crate) fn read_decision_event(event: &str) -> Result<DecisionRecord, serde_json::Error> {
    let LoggedEvent {
        seq,
        recorded_at_us,
        event,
        ..
    } = LoggedEvent::parse(event)?;
    let AuditEvent::Decision {
        constitutional_hash,
        decision: d,
    } = event
    else {
        return Err(serde::de::Error::custom(format_args!(
            "a `{}` event, not a decision",
            event.kind()
        )));
    };
    Ok(DecisionRecord {
        seq,
        decision_id: d.decision_id,
        recorded_at_us,
        principal_type: d.principal.entity_type,
        principal_id: d.principal.id,
        action: d.action,
        resource_type: d.resource.entity_type,
        resource_id: d.resource.id,
        outcome: d.outcome.as_str().to_owned(),
        effective_outcome: d.effective_outcome.as_str().to_owned(),
        shadow: d.shadow,
        constitutional_hash,
        constitution_version: d.constitution_version,
        evaluated_in_us: d.evaluated_in_us,
        body: d.body.into_string(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn record() -> DecisionRecord {
        DecisionRecord {
            decision_id: "d-1".into(),
            recorded_at_us: 1_700_000_000_000_000,
            principal_type: "Agent".into(),
            principal_id: "a\"b".into(),
            action: "read".into(),
            resource_type: "Doc".into(),
            resource_id: "x".into(),
            outcome: "deny".into(),
            effective_outcome: "allow".into(),
            shadow: true,
            constitutional_hash: "ab".repeat(32),
            constitution_version: "1.0".into(),
            evaluated_in_us: 17,
            body: r#"{"explanation":"no","reasons":[]}"#.into(),
            ..Default::default()
        }
    }

    #[test]
    fn decision_events_are_canonical_json_carrying_their_seq_and_hash() {
        let record = record();
        let events = [NewEvent::decision(record.clone()).unwrap(), NewEvent::pruned(9, 5, 6)];
        let mut frontier = acgs_audit::Frontier::from_hashes(41, &[[1; 32], [2; 32], [3; 32]]).unwrap();
        let batch = prepare_batch(&mut frontier, &events).unwrap();
        let entry = &batch.entries[0];
        assert_eq!(entry.seq, 42);
        let value: serde_json::Value = serde_json::from_str(&entry.event).unwrap();
        assert_eq!(
            acgs_audit::canonical_json(&value),
            entry.event,
            "the event is in canonical form"
        );
        assert_eq!(value["seq"], 42);
        assert_eq!(value["decision"]["principal"]["id"], "a\"b");
        assert_eq!(value["constitutional_hash"], "ab".repeat(32));
        assert_eq!(entry.leaf_hash, leaf_hash(entry.event.as_bytes()));
        assert_eq!(
            decision_record(42, &entry.event).unwrap(),
            DecisionRecord {
                seq: 42,
                ..record.clone()
            },
            "the event reads back as the record it was made from"
        );
        assert!(decision_record(42, &entry.event.replace("\"outcome\"", "\"result\"")).is_err());
        assert_eq!(batch.decisions.len(), 1, "only the decision has an index row");
        assert_eq!(
            batch.decisions[0].record(),
            DecisionRecord {
                seq: 42,
                body: String::new(),
                ..record
            }
        );

        let pruned = &batch.entries[1];
        assert_eq!(pruned.seq, 43);
        let value: serde_json::Value = serde_json::from_str(&pruned.event).unwrap();
        assert_eq!(acgs_audit::canonical_json(&value), pruned.event);
        assert_eq!(value["pruned"]["through_seq"], 9);
        assert!(
            decision_record(43, &pruned.event).is_err(),
            "a prune record is not a decision"
        );
    }
}
