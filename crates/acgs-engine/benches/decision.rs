//! Criterion benchmarks of the in-process decision path on the example constitution.
//!
//! `cargo bench -p acgs-engine --bench decision`
// Tests and benchmarks fail loudly on unexpected values.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::hint::black_box;
use std::sync::Arc;

use acgs_engine::{Constitution, ConstitutionDocument, DecisionRequest, Detectors, Engine};
use criterion::{Criterion, criterion_group, criterion_main};

const EXAMPLE: &str = include_str!("../../../examples/constitution.toml");

/// About 1 KB of ordinary business prose (no PII or secrets): the common case for `content`.
const PROSE_1KB: &str = include_str!("prose_1kb.txt");

fn requests() -> Vec<DecisionRequest> {
    let doc: ConstitutionDocument = toml::from_str(EXAMPLE).expect("example parses");
    doc.tests.into_iter().map(|t| t.request).collect()
}

fn bench_decisions(c: &mut Criterion) {
    let constitution = Constitution::from_toml("example", EXAMPLE).expect("example is valid");
    let engine = Engine::new(Arc::new(constitution));
    let plain = requests();
    let with_content: Vec<DecisionRequest> = plain
        .iter()
        .cloned()
        .map(|mut r| {
            r.content = Some(PROSE_1KB.to_owned());
            r
        })
        .collect();

    let mut group = c.benchmark_group("decide");
    let mut i = 0usize;
    group.bench_function("example_mix", |b| {
        b.iter(|| {
            i = (i + 1) % plain.len();
            black_box(engine.decide(black_box(&plain[i])))
        })
    });
    let mut j = 0usize;
    group.bench_function("example_mix_1kb_content", |b| {
        b.iter(|| {
            j = (j + 1) % with_content.len();
            black_box(engine.decide(black_box(&with_content[j])))
        })
    });
    group.finish();

    let detectors = Detectors::new();
    c.bench_function("detectors/scan_1kb_prose", |b| {
        b.iter(|| black_box(detectors.scan(black_box(PROSE_1KB))))
    });
    c.bench_function("constitution/load_example", |b| {
        b.iter(|| black_box(Constitution::compile("example", black_box(EXAMPLE))))
    });
}

criterion_group!(benches, bench_decisions);
criterion_main!(benches);
