//! Audit events as leaves: the canonical JSON each event is hashed in, and what a stored entry holds.
//!
//! Every event is one JSON object in canonical form (keys sorted, no whitespace; see `docs/integrity.md`) with
//! at least `v` (format version, 1), `kind`, `seq` (its audit sequence number, so an event cannot be moved to
//! another position) and `recorded_at_us`. A decision event adds the constitutional hash in force and the
//! decision:
//!
//! ```text
//! {"constitutional_hash":"…","decision":{"action":"…","body":{…},"constitution_version":"…",
//!  "decision_id":"…","effective_outcome":"…","evaluated_in_us":12,"outcome":"…",
//!  "principal":{"id":"…","type":"…"},"resource":{"id":"…","type":"…"},"shadow":false},
//!  "kind":"decision","recorded_at_us":1763800000000000,"seq":42,"v":1}
//! ```

use acgs_audit::{Hash, PRUNE_EVENT_KIND, leaf_hash, write_json_string};
use serde::{Deserialize, Serialize};

use crate::DecisionRecord;

/// Event kind of decisions.
pub const DECISION_EVENT_KIND: &str = "decision";

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

/// Event kind of security events (logins, lockouts, credential and permission changes).
pub const SECURITY_EVENT_KIND: &str = "security";

/// An event waiting for its sequence number.
#[derive(Debug)]
pub(crate) enum PendingEvent<'a> {
    /// A decision.
    Decision(&'a DecisionRecord),
    /// A security event.
    Security(&'a crate::SecurityEvent),
    /// The record a prune leaves: event bodies up to `through_seq` were removed.
    Pruned {
        through_seq: i64,
        older_than_us: i64,
        recorded_at_us: i64,
    },
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

/// A batch ready to insert: its entries, the tree nodes above the leaves that it completes, and the decisions
/// among its events with their sequence numbers.
#[derive(Debug)]
pub(crate) struct PreparedBatch<'a> {
    pub entries: Vec<NewEntry>,
    pub nodes: Vec<(acgs_audit::NodeId, Hash)>,
    pub decisions: Vec<(&'a DecisionRecord, i64)>,
}

/// Give `events` the sequence numbers after `frontier` (the tree's right edge) and extend it with their leaves.
pub(crate) fn prepare_batch<'a>(frontier: &mut acgs_audit::Frontier, events: &[PendingEvent<'a>]) -> PreparedBatch<'a> {
    let first = frontier.size() as i64 + 1;
    let entries: Vec<NewEntry> = events.iter().enumerate().map(|(i, e)| e.at(first + i as i64)).collect();
    let mut nodes = Vec::with_capacity(entries.len());
    for entry in &entries {
        frontier.push(entry.leaf_hash, |id, hash| {
            if id.level > 0 {
                nodes.push((id, *hash));
            }
        });
    }
    let decisions = events
        .iter()
        .zip(&entries)
        .filter_map(|(event, entry)| match event {
            PendingEvent::Decision(r) => Some((*r, entry.seq)),
            PendingEvent::Pruned { .. } | PendingEvent::Security(_) => None,
        })
        .collect();
    PreparedBatch {
        entries,
        nodes,
        decisions,
    }
}

impl PendingEvent<'_> {
    /// The entry this event becomes at `seq`.
    pub(crate) fn at(&self, seq: i64) -> NewEntry {
        let (kind, recorded_at_us, event) = match self {
            Self::Decision(r) => (DECISION_EVENT_KIND, r.recorded_at_us, decision_event(r, seq)),
            Self::Security(e) => (SECURITY_EVENT_KIND, e.recorded_at_us, security_event(e, seq)),
            Self::Pruned {
                through_seq,
                older_than_us,
                recorded_at_us,
            } => (
                PRUNE_EVENT_KIND,
                *recorded_at_us,
                format!(
                    "{{\"kind\":\"{PRUNE_EVENT_KIND}\",\"pruned\":{{\"older_than_us\":{older_than_us},\
                     \"through_seq\":{through_seq}}},\"recorded_at_us\":{recorded_at_us},\"seq\":{seq},\"v\":1}}"
                ),
            ),
        };
        NewEntry {
            seq,
            kind,
            recorded_at_us,
            leaf_hash: leaf_hash(event.as_bytes()),
            event,
        }
    }
}

/// The canonical JSON of a decision at `seq`. `record.body` is already canonical JSON (or, if it is not JSON,
/// it is carried as a string).
fn decision_event(r: &DecisionRecord, seq: i64) -> String {
    let mut out = String::with_capacity(r.body.len() + 512);
    let field = |out: &mut String, name: &str, value: &str| {
        out.push('"');
        out.push_str(name);
        out.push_str("\":");
        write_json_string(value, out);
        out.push(',');
    };
    out.push('{');
    field(&mut out, "constitutional_hash", &r.constitutional_hash);
    out.push_str("\"decision\":{");
    field(&mut out, "action", &r.action);
    out.push_str("\"body\":");
    if serde_json::from_str::<serde::de::IgnoredAny>(&r.body).is_ok() {
        out.push_str(&r.body);
    } else {
        write_json_string(&r.body, &mut out);
    }
    out.push(',');
    field(&mut out, "constitution_version", &r.constitution_version);
    field(&mut out, "decision_id", &r.decision_id);
    field(&mut out, "effective_outcome", &r.effective_outcome);
    out.push_str(&format!("\"evaluated_in_us\":{},", r.evaluated_in_us));
    field(&mut out, "outcome", &r.outcome);
    out.push_str("\"principal\":{");
    field(&mut out, "id", &r.principal_id);
    out.push_str("\"type\":");
    write_json_string(&r.principal_type, &mut out);
    out.push_str("},\"resource\":{");
    field(&mut out, "id", &r.resource_id);
    out.push_str("\"type\":");
    write_json_string(&r.resource_type, &mut out);
    out.push_str(&format!(
        "}},\"shadow\":{}}},\"kind\":\"{DECISION_EVENT_KIND}\",\"recorded_at_us\":{},\"seq\":{seq},\"v\":1}}",
        r.shadow, r.recorded_at_us
    ));
    out
}

/// The canonical JSON of a security event at `seq`.
fn security_event(e: &crate::SecurityEvent, seq: i64) -> String {
    let detail = serde_json::json!({
        "actor": e.actor,
        "detail": e.detail,
        "event": e.event,
        "source": e.source,
        "subject": e.subject,
    });
    let mut fields = serde_json::Map::new();
    if let serde_json::Value::Object(map) = detail {
        for (k, v) in map {
            if !v.is_null() {
                fields.insert(k, v);
            }
        }
    }
    let value = serde_json::json!({
        "kind": SECURITY_EVENT_KIND,
        "recorded_at_us": e.recorded_at_us,
        "security": fields,
        "seq": seq,
        "v": 1,
    });
    acgs_audit::canonical_json(&value)
}

/// The decision record a decision event stored at `seq` holds: the inverse of [`decision_event`] (the body comes
/// back as canonical JSON text).
pub(crate) fn decision_record(seq: i64, event: &str) -> Result<DecisionRecord, String> {
    read_decision_event(event)
        .map(|r| DecisionRecord { seq, ..r })
        .map_err(|e| format!("the decision event at seq {seq} cannot be read: {e}"))
}

/// The decision record a decision event holds, with the sequence number the event itself names.
pub(crate) fn read_decision_event(event: &str) -> Result<DecisionRecord, serde_json::Error> {
    #[derive(Deserialize)]
    struct Named {
        id: String,
        #[serde(rename = "type")]
        kind: String,
    }
    #[derive(Deserialize)]
    struct Decision {
        action: String,
        body: serde_json::Value,
        constitution_version: String,
        decision_id: String,
        effective_outcome: String,
        evaluated_in_us: i64,
        outcome: String,
        principal: Named,
        resource: Named,
        shadow: bool,
    }
    #[derive(Deserialize)]
    struct Event {
        constitutional_hash: String,
        decision: Decision,
        recorded_at_us: i64,
        seq: i64,
    }
    let Event {
        constitutional_hash,
        decision: d,
        recorded_at_us,
        seq,
    } = serde_json::from_str(event)?;
    Ok(DecisionRecord {
        seq,
        decision_id: d.decision_id,
        recorded_at_us,
        principal_type: d.principal.kind,
        principal_id: d.principal.id,
        action: d.action,
        resource_type: d.resource.kind,
        resource_id: d.resource.id,
        outcome: d.outcome,
        effective_outcome: d.effective_outcome,
        shadow: d.shadow,
        constitutional_hash,
        constitution_version: d.constitution_version,
        evaluated_in_us: d.evaluated_in_us,
        body: acgs_audit::canonical_json(&d.body),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn decision_events_are_canonical_json_carrying_their_seq_and_hash() {
        let record = DecisionRecord {
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
        };
        let entry = PendingEvent::Decision(&record).at(42);
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

        let pruned = PendingEvent::Pruned {
            through_seq: 9,
            older_than_us: 5,
            recorded_at_us: 6,
        }
        .at(10);
        let value: serde_json::Value = serde_json::from_str(&pruned.event).unwrap();
        assert_eq!(acgs_audit::canonical_json(&value), pruned.event);
        assert_eq!(value["pruned"]["through_seq"], 9);
    }
}
