//! What writing an event's leaf costs: `leaf_json` of a decision (the tour's transfer, a ~1.3 KB body), of a
//! security event, and reading a decision's leaf back. The group-commit writer writes one leaf per event.
#![allow(clippy::unwrap_used, clippy::expect_used, missing_docs)]

use acgs_audit::event::{AuditEvent, LoggedEvent};
use criterion::{Criterion, criterion_group, criterion_main};

/// A decision's leaf as the log holds it (the fixture written by an earlier build).
fn decision_leaf() -> String {
    let entries = include_str!("../tests/fixtures/log-before-typed-events/entries.jsonl");
    entries
        .lines()
        .map(|line| serde_json::from_str::<serde_json::Value>(line).unwrap())
        .find(|e| e["kind"] == "decision" && !e["event"].is_null())
        .map(|e| e["event"].as_str().unwrap().to_owned())
        .unwrap()
}

fn leaves(c: &mut Criterion) {
    let leaf = decision_leaf();
    let logged = LoggedEvent::parse(&leaf).unwrap();
    assert!(matches!(logged.event, AuditEvent::Decision { .. }));
    c.bench_function("leaf_json/decision", |b| {
        b.iter(|| acgs_audit::leaf_json(logged.seq, logged.recorded_at_us, std::hint::black_box(&logged.event)))
    });
    c.bench_function("LoggedEvent::parse/decision", |b| {
        b.iter(|| LoggedEvent::parse(std::hint::black_box(&leaf)))
    });
    println!("decision leaf: {} bytes", leaf.len());
}

criterion_group!(benches, leaves);
criterion_main!(benches);
