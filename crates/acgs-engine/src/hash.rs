//! The constitutional hash: SHA-256 over the canonical serialisation of a constitution's content.
//!
//! The canonical form is documented in `docs/constitution.md`. In short: the domain tag
//! `acgs-constitution/v1` and a newline, then one line of JSON with object keys sorted by their UTF-8
//! bytes, no insignificant whitespace, integers only, and every Cedar text normalised (line endings to
//! `\n`, trailing spaces on each line removed, leading and trailing blank lines removed). Principles,
//! policies and invariants are sorted by id and tests by name, so reordering entries in the file does not
//! change the hash; any change of content does.

use std::fmt;

use serde::Serialize;
use serde_json::{Value, json};
use sha2::{Digest, Sha256};

use acgs_audit::write_canonical_json;

use crate::document::ConstitutionDocument;
use crate::governance::Governance;

/// Domain-separation tag that starts the canonical form.
pub const CANONICAL_FORM_TAG: &str = "acgs-constitution/v1";

/// A SHA-256 constitutional hash.
#[derive(Clone, Copy, PartialEq, Eq, Hash)]
pub struct ConstitutionHash([u8; 32]);

impl ConstitutionHash {
    /// The full hash as 64 lower-case hex digits.
    pub fn to_hex(&self) -> String {
        hex::encode(self.0)
    }

    /// The short form: the first 16 hex digits (64 bits).
    pub fn short(&self) -> String {
        hex::encode(&self.0[..8])
    }

    /// The raw 32 bytes.
    pub fn as_bytes(&self) -> &[u8; 32] {
        &self.0
    }

    /// Whether `text` (full or 16-digit short form, any case) names this hash.
    pub fn matches(&self, text: &str) -> bool {
        let t = text.trim();
        let full = self.to_hex();
        (t.len() == 64 || t.len() == 16) && full[..t.len()].eq_ignore_ascii_case(t)
    }
}

impl fmt::Display for ConstitutionHash {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.to_hex())
    }
}

impl fmt::Debug for ConstitutionHash {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "ConstitutionHash({})", self.to_hex())
    }
}

/// Normalise Cedar (or any multi-line) text for the canonical form.
pub fn normalize_text(text: &str) -> String {
    let lines: Vec<&str> = text.lines().map(str::trim_end).collect();
    let joined = lines.join("\n");
    joined.trim_matches('\n').to_owned()
}

/// The canonical JSON value of a document (before serialisation).
pub(crate) fn canonical_value(doc: &ConstitutionDocument) -> Value {
    let mut principles: Vec<&crate::document::Principle> = doc.principles.iter().collect();
    principles.sort_by(|a, b| a.id.cmp(&b.id));
    let mut policies: Vec<Value> = doc
        .policies
        .iter()
        .map(|p| {
            json!({
                "id": p.id.get_ref(),
                "principle": p.principle,
                "description": p.description,
                "cedar": normalize_text(p.cedar.get_ref()),
            })
        })
        .collect();
    policies.sort_by(|a, b| a["id"].as_str().cmp(&b["id"].as_str()));
    let mut invariants: Vec<Value> = doc
        .invariants
        .iter()
        .map(|i| {
            // `matching` and `implies` appear only when given, so existing invariants hash as they always did.
            let mut value = json!({
                "id": i.id.get_ref(),
                "principle": i.principle,
                "description": i.description,
                "kind": i.kind,
            });
            if let Value::Object(map) = &mut value {
                if let Some(matching) = &i.matching {
                    map.insert("matching".into(), Value::from(normalize_text(matching.get_ref())));
                }
                if let Some(implies) = &i.implies {
                    map.insert("implies".into(), Value::from(implies.as_str()));
                }
            }
            value
        })
        .collect();
    invariants.sort_by(|a, b| a["id"].as_str().cmp(&b["id"].as_str()));
    let mut tests: Vec<&crate::document::TestCase> = doc.tests.iter().collect();
    tests.sort_by(|a, b| a.name.cmp(&b.name));
    let mut value = json!({
        "constitution": to_value(&doc.constitution),
        "schema": normalize_text(doc.schema.cedar.get_ref()),
        "principles": to_value(&principles),
        "policies": policies,
        "invariants": invariants,
        "tests": to_value(&tests),
    });
    // Only a constitution that has the section names it, so the hashes of those without one stay as they were.
    // The validated rules are hashed (seconds, basis points, sorted sets); a section that does not validate
    // (its constitution does not load) as written.
    if let (Some(section), Value::Object(map)) = (&doc.governance, &mut value) {
        let governance = match Governance::from_section(section) {
            Ok(rules) => to_value(&rules),
            Err(_) => to_value(section),
        };
        map.insert("governance".to_owned(), governance);
    }
    if let (Some(section), Value::Object(map)) = (&doc.verification, &mut value) {
        map.insert("verification".to_owned(), to_value(section));
    }
    if let (Some(sources), Value::Object(map)) = (&doc.entities, &mut value) {
        // Request attributes are a set: their order in the file does not matter.
        let sources: serde_json::Map<String, Value> = sources
            .iter()
            .map(|(entity_type, entry)| {
                let mut attributes = entry.request_attributes.clone();
                attributes.sort();
                attributes.dedup();
                let mut rule = json!({ "source": entry.source });
                if !attributes.is_empty() {
                    rule["request_attributes"] = to_value(&attributes);
                }
                if !entry.writers.is_empty() {
                    let mut writers = entry.writers.clone();
                    for writer in &mut writers {
                        if let Some(attributes) = &mut writer.attributes {
                            attributes.sort();
                            attributes.dedup();
                        }
                    }
                    writers.sort();
                    writers.dedup();
                    rule["writers"] = to_value(&writers);
                }
                (entity_type.clone(), rule)
            })
            .collect();
        map.insert("entities".to_owned(), Value::Object(sources));
    }
    if let (false, Value::Object(map)) = (doc.counters.is_empty(), &mut value) {
        let mut counters: Vec<Value> = doc
            .counters
            .iter()
            .map(|c| {
                let mut actions = c.actions.clone();
                actions.sort();
                actions.dedup();
                json!({"name": c.name, "actions": actions, "kind": c.kind, "field": c.field, "window": c.window,
                       "per": c.per})
            })
            .collect();
        counters.sort_by(|a, b| a["name"].as_str().cmp(&b["name"].as_str()));
        map.insert("counters".to_owned(), Value::Array(counters));
    }
    value
}

fn to_value<T: Serialize>(v: &T) -> Value {
    // Serialising our own plain data types to a `Value` cannot fail (string keys, no floats).
    serde_json::to_value(v).unwrap_or(Value::Null)
}

/// The canonical serialisation: tag line plus sorted-key compact JSON.
pub fn canonical_form(doc: &ConstitutionDocument) -> String {
    let mut out = String::with_capacity(16 * 1024);
    out.push_str(CANONICAL_FORM_TAG);
    out.push('\n');
    write_canonical_json(&canonical_value(doc), &mut out);
    out
}

/// Hash a document's canonical form.
pub fn hash_document(doc: &ConstitutionDocument) -> ConstitutionHash {
    ConstitutionHash(Sha256::digest(canonical_form(doc).as_bytes()).into())
}
