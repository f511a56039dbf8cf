//! The events of the audit log, typed: every kind of event is a variant of [`AuditEvent`], and every event
//! becomes its leaf through one function, [`leaf_json`], which writes it in canonical JSON with the sequence
//! number and time the log gives it. Adding a kind of event is adding a variant here; the storage backends
//! store whatever this module writes.
//!
//! A leaf is one JSON object in canonical form (keys sorted, no whitespace; see `docs/integrity.md`) holding `v`
//! (the format version, [`EVENT_FORMAT`]), `kind`, `seq` (its audit sequence number, so an event cannot be moved
//! to another position), `recorded_at_us`, and the fields of its kind. A decision:
//!
//! ```text
//! {"constitutional_hash":"…","decision":{"action":"…","body":{…},"constitution_version":"…",
//!  "decision_id":"…","effective_outcome":"…","evaluated_in_us":12,"outcome":"…",
//!  "principal":{"id":"…","type":"…"},"resource":{"id":"…","type":"…"},"shadow":false},
//!  "kind":"decision","recorded_at_us":1763800000000000,"seq":42,"v":1}
//! ```
//!
//! The bytes of a kind's leaves never change once logs hold them: `tests/event_format.rs` keeps leaves written
//! by earlier builds and requires that they read back and are written again byte for byte.

use serde::de::IgnoredAny;
use serde::{Deserialize, Deserializer, Serialize, Serializer};

use crate::canonical::{
    CanonicalJsonError, JSON_TEXT_TOKEN, canonical_json, to_canonical_json_with, write_json_string,
};

/// The format version every leaf carries as `v`.
pub const EVENT_FORMAT: u8 = 1;

/// The `kind` of each variant of [`AuditEvent`], as its leaves name it.
pub mod kind {
    /// [`super::AuditEvent::Decision`].
    pub const DECISION: &str = "decision";
    /// [`super::AuditEvent::Security`].
    pub const SECURITY: &str = "security";
    /// [`super::AuditEvent::Pruned`].
    pub const PRUNED: &str = "audit.pruned";
    /// [`super::AuditEvent::Governance`].
    pub const GOVERNANCE: &str = "governance";
}

/// Something that happened, as the audit log records it. The variant is the leaf's `kind`; its fields are the
/// leaf's fields besides `v`, `seq`, `kind` and `recorded_at_us`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "kind")]
pub enum AuditEvent {
    /// A decision on an agent's request.
    #[serde(rename = "decision")]
    Decision {
        /// The constitutional hash in force when it was decided (64 hex digits).
        constitutional_hash: String,
        /// The decision.
        decision: DecisionEvent,
    },
    /// A security-relevant event: a login, a lockout, a credential or permission change, a refused request.
    #[serde(rename = "security")]
    Security {
        /// What happened.
        security: SecurityEvent,
    },
    /// The record a prune leaves: the bodies of the events up to `through_seq` were removed.
    #[serde(rename = "audit.pruned")]
    Pruned {
        /// What was pruned.
        pruned: PrunedRange,
    },
    /// A governance action: an amendment's step, a vote, a veto, an emergency approval, halt or resume, a
    /// constitution put in force, an appeal's step.
    #[serde(rename = "governance")]
    Governance {
        /// What happened.
        governance: GovernanceEvent,
    },
}

impl AuditEvent {
    /// The leaf's `kind` (one of [`kind`]).
    pub fn kind(&self) -> &'static str {
        match self {
            Self::Decision { .. } => kind::DECISION,
            Self::Security { .. } => kind::SECURITY,
            Self::Pruned { .. } => kind::PRUNED,
            Self::Governance { .. } => kind::GOVERNANCE,
        }
    }
}

/// A decision as its leaf holds it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct DecisionEvent {
    /// Unique decision id (UUID v7) returned to the caller.
    pub decision_id: String,
    /// The principal (the agent).
    pub principal: EntityName,
    /// Action id.
    pub action: String,
    /// The resource.
    pub resource: EntityName,
    /// What the constitution decided.
    pub outcome: Outcome,
    /// What the caller was told to do (differs from `outcome` in shadow mode).
    pub effective_outcome: Outcome,
    /// Whether the server was in shadow mode.
    pub shadow: bool,
    /// Version label of the constitution in force.
    pub constitution_version: String,
    /// Engine evaluation time in microseconds.
    pub evaluated_in_us: i64,
    /// The request (content replaced by its digest), reasons, detections, errors and explanation.
    pub body: JsonText,
}

/// A decision's outcome: what the engine decides, what a test case expects, what the API answers and what a
/// decision's leaf names (one type for all of them).
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Outcome {
    /// The action may proceed.
    Allow,
    /// The action must not proceed.
    Deny,
    /// The action needs human approval.
    Escalate,
}

impl std::fmt::Display for Outcome {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

impl Outcome {
    /// `allow`, `deny` or `escalate`.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Allow => "allow",
            Self::Deny => "deny",
            Self::Escalate => "escalate",
        }
    }
}

/// A word that is not an outcome.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("`{0}` is not an outcome (expected allow, deny or escalate)")]
pub struct UnknownOutcome(pub String);

impl std::str::FromStr for Outcome {
    type Err = UnknownOutcome;
    fn from_str(word: &str) -> Result<Self, UnknownOutcome> {
        match word {
            "allow" => Ok(Self::Allow),
            "deny" => Ok(Self::Deny),
            "escalate" => Ok(Self::Escalate),
            other => Err(UnknownOutcome(other.to_owned())),
        }
    }
}

/// An entity named by type and id.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct EntityName {
    /// Entity type.
    #[serde(rename = "type")]
    pub entity_type: String,
    /// Entity id.
    pub id: String,
}

/// A security-relevant event as its leaf holds it (the fields that are `None` are left out).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct SecurityEvent {
    /// What happened, e.g. `login.failed`, `api_key.revoked`, `permission.denied`.
    pub event: String,
    /// Who did it (a username or API key id), if known.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub actor: Option<String>,
    /// What it was done to (a username, key id, session id, route).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub subject: Option<String>,
    /// Source address of the request.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub source: Option<String>,
    /// More detail in words.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub detail: Option<String>,
}

/// A governance action as its leaf holds it: who did what to which governed object, the state it moved it
/// from and to, and the action's own data (a vote's choice and weight, a reason, the hashes an amendment names).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct GovernanceEvent {
    /// What happened, e.g. `amendment.opened`, `amendment.voted`, `emergency.halted`, `constitution.activated`.
    pub action: String,
    /// What it happened to, e.g. `amendment/<id>`, `emergency/halt`, `constitution/3`.
    pub subject: String,
    /// Who did it: `user:<name>`, or `clock` for a step that time took (a vote closing, a deadline passing).
    pub actor: String,
    /// The subject's state before, if it has one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub from_state: Option<String>,
    /// The subject's state after, if it has one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub to_state: Option<String>,
    /// The action's own data (left out when there is none).
    #[serde(default, skip_serializing_if = "serde_json::Value::is_null")]
    pub detail: serde_json::Value,
}

/// What a prune removed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct PrunedRange {
    /// Events with sequence numbers up to this one no longer have a body.
    pub through_seq: i64,
    /// The prune removed the events recorded before this time (µs since the Unix epoch).
    pub older_than_us: i64,
}

/// JSON text carried in an event as it is (a decision's body, which the decision service writes in canonical
/// form). Text that is not JSON is carried as a JSON string holding it. Written verbatim by [`leaf_json`]; other
/// serializers see a string. Read back from any JSON value, in canonical form.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct JsonText(String);

impl JsonText {
    /// `text` as it is when it is JSON; otherwise the JSON string holding it.
    pub fn new(text: String) -> Self {
        if serde_json::from_str::<IgnoredAny>(&text).is_ok() {
            Self(text)
        } else {
            let mut quoted = String::with_capacity(text.len() + 2);
            write_json_string(&text, &mut quoted);
            Self(quoted)
        }
    }

    /// The JSON text.
    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// The JSON text, owned.
    pub fn into_string(self) -> String {
        self.0
    }
}

impl Serialize for JsonText {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_newtype_struct(JSON_TEXT_TOKEN, &self.0)
    }
}

impl<'de> Deserialize<'de> for JsonText {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        serde_json::Value::deserialize(deserializer).map(|value| Self(canonical_json(&value)))
    }
}

/// A leaf as read back: the event with the sequence number and time it names.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
pub struct LoggedEvent {
    /// The format version ([`EVENT_FORMAT`]).
    pub v: u8,
    /// Its audit sequence number.
    pub seq: i64,
    /// When it was recorded (µs since the Unix epoch).
    pub recorded_at_us: i64,
    /// What happened.
    #[serde(flatten)]
    pub event: AuditEvent,
}

impl LoggedEvent {
    /// Read a leaf. Fails on text that is not a leaf of a kind this build knows.
    pub fn parse(leaf: &str) -> Result<Self, serde_json::Error> {
        serde_json::from_str(leaf)
    }
}

/// The leaf of `event` at `seq`, recorded at `recorded_at_us`: its canonical JSON, the bytes the log hashes (the
/// event's object with `v`, `seq` and `recorded_at_us` added).
pub fn leaf_json(seq: i64, recorded_at_us: i64, event: &AuditEvent) -> Result<String, CanonicalJsonError> {
    to_canonical_json_with(
        event,
        &[
            ("v", i64::from(EVENT_FORMAT)),
            ("seq", seq),
            ("recorded_at_us", recorded_at_us),
        ],
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    fn decision(body: &str) -> AuditEvent {
        AuditEvent::Decision {
            constitutional_hash: "ab".repeat(32),
            decision: DecisionEvent {
                decision_id: "d-1".into(),
                principal: EntityName {
                    entity_type: "Agent".into(),
                    id: "a\"b".into(),
                },
                action: "read".into(),
                resource: EntityName {
                    entity_type: "Doc".into(),
                    id: "x".into(),
                },
                outcome: Outcome::Deny,
                effective_outcome: Outcome::Allow,
                shadow: true,
                constitution_version: "1.0".into(),
                evaluated_in_us: 17,
                body: JsonText::new(body.into()),
            },
        }
    }

    #[test]
    fn a_leaf_is_the_canonical_json_of_its_event_and_reads_back_as_it() {
        let event = decision(r#"{"explanation":"no","reasons":[{"id":"p\n1"}]}"#);
        let leaf = leaf_json(42, 7, &event).unwrap();
        let value: serde_json::Value = serde_json::from_str(&leaf).unwrap();
        assert_eq!(canonical_json(&value), leaf, "the leaf is in canonical form");
        assert_eq!(value["seq"], 42);
        assert_eq!(value["v"], 1);
        assert_eq!(
            value["decision"]["body"]["reasons"][0]["id"], "p\n1",
            "the body is JSON, not a string"
        );
        let read = LoggedEvent::parse(&leaf).unwrap();
        assert_eq!(
            read,
            LoggedEvent {
                v: 1,
                seq: 42,
                recorded_at_us: 7,
                event
            }
        );
    }

    #[test]
    fn every_kind_is_named_as_its_leaves_name_it() {
        let events = [
            decision("{}"),
            AuditEvent::Security {
                security: SecurityEvent {
                    event: "login.failed".into(),
                    ..Default::default()
                },
            },
            AuditEvent::Pruned {
                pruned: PrunedRange {
                    through_seq: 9,
                    older_than_us: 5,
                },
            },
            AuditEvent::Governance {
                governance: GovernanceEvent {
                    action: "amendment.voted".into(),
                    subject: "amendment/a-1".into(),
                    actor: "user:alice".into(),
                    from_state: Some("voting".into()),
                    to_state: Some("voting".into()),
                    detail: serde_json::json!({"choice": "for", "weight": 3}),
                },
            },
        ];
        for event in events {
            let leaf: serde_json::Value = serde_json::from_str(&leaf_json(1, 2, &event).unwrap()).unwrap();
            assert_eq!(leaf["kind"], event.kind());
        }
    }

    #[test]
    fn a_body_that_is_not_json_is_carried_as_a_string() {
        let leaf = leaf_json(1, 2, &decision("not json")).unwrap();
        let value: serde_json::Value = serde_json::from_str(&leaf).unwrap();
        assert_eq!(value["decision"]["body"], "not json");
        assert_eq!(
            JsonText::new("[1, 2]".into()).as_str(),
            "[1, 2]",
            "JSON text is kept as it is"
        );
    }

    #[test]
    fn leaves_of_an_unknown_kind_or_without_their_fields_are_refused() {
        assert!(LoggedEvent::parse(r#"{"kind":"unknown","recorded_at_us":1,"seq":1,"v":1}"#).is_err());
        assert!(LoggedEvent::parse(r#"{"kind":"audit.pruned","recorded_at_us":1,"seq":1,"v":1}"#).is_err());
    }
}
