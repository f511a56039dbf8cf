//! Logs written by earlier builds keep verifying, and their leaves are the bytes this build writes: an export
//! (`acgs audit export`) of a log written by the build before the typed events (decisions in enforce and shadow
//! mode, security events, a prune) is read, every leaf is parsed into `AuditEvent` and written again with
//! `leaf_json`, and the whole log is rebuilt against its signed checkpoints.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::path::PathBuf;

use acgs_audit::event::{AuditEvent, LoggedEvent, kind};
use acgs_audit::{Hash, LogVerifier, leaf_json};
use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;

/// The export of a log written on 2026-12-07 by the build before the typed events (commit ea1dbae).
fn fixture() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/log-before-typed-events")
}

#[derive(serde::Deserialize)]
struct Entry {
    seq: i64,
    kind: String,
    recorded_at_us: i64,
    leaf_hash: String,
    event: Option<String>,
}

fn entries() -> Vec<Entry> {
    std::fs::read_to_string(fixture().join("entries.jsonl"))
        .unwrap()
        .lines()
        .map(|line| serde_json::from_str(line).unwrap())
        .collect()
}

fn hash(text: &str) -> Hash {
    STANDARD.decode(text).unwrap().try_into().unwrap()
}

#[test]
fn every_leaf_written_before_reads_back_and_is_written_again_byte_for_byte() {
    let entries = entries();
    let mut kinds = std::collections::BTreeSet::new();
    for entry in &entries {
        let Some(leaf) = &entry.event else { continue };
        let logged = LoggedEvent::parse(leaf).unwrap_or_else(|e| panic!("leaf {} does not read: {e}", entry.seq));
        assert_eq!(logged.seq, entry.seq);
        assert_eq!(logged.recorded_at_us, entry.recorded_at_us);
        assert_eq!(logged.event.kind(), entry.kind);
        assert_eq!(
            &leaf_json(logged.seq, logged.recorded_at_us, &logged.event).unwrap(),
            leaf,
            "leaf {} is written differently today",
            entry.seq
        );
        assert_eq!(acgs_audit::leaf_hash(leaf.as_bytes()), hash(&entry.leaf_hash));
        kinds.insert(logged.event.kind());
        if let AuditEvent::Decision { decision, .. } = &logged.event {
            assert!(
                decision.body.as_str().starts_with('{'),
                "a decision's body is a JSON object"
            );
        }
    }
    assert_eq!(
        kinds.into_iter().collect::<Vec<_>>(),
        [kind::PRUNED, kind::DECISION, kind::SECURITY],
        "the fixture holds every kind the earlier build wrote"
    );
    assert!(
        entries.iter().any(|e| e.event.is_none()),
        "the fixture holds pruned entries"
    );
}

#[test]
fn the_log_written_before_verifies_against_its_signed_checkpoints() {
    let manifest: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(fixture().join("manifest.json")).unwrap()).unwrap();
    let key = acgs_audit::VerifierKey::parse(manifest["verifier_key"].as_str().unwrap()).unwrap();
    let mut verifier = LogVerifier::new(key);
    let checkpoints: Vec<serde_json::Value> = std::fs::read_to_string(fixture().join("checkpoints.jsonl"))
        .unwrap()
        .lines()
        .map(|line| serde_json::from_str(line).unwrap())
        .collect();
    assert!(!checkpoints.is_empty());
    for checkpoint in &checkpoints {
        verifier.add_checkpoint(
            checkpoint["tree_size"].as_u64().unwrap(),
            checkpoint["note"].as_str().unwrap().to_owned(),
        );
    }
    let entries = entries();
    for entry in &entries {
        verifier
            .entry(entry.seq as u64, &hash(&entry.leaf_hash), entry.event.as_deref())
            .unwrap();
    }
    let report = verifier.finish().unwrap();
    assert_eq!(report.entries, entries.len() as u64);
    assert_eq!(report.checkpoints, checkpoints.len() as u64);
}
