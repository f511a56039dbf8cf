//! Criterion benchmarks of the in-process decision path on the example constitution.
//!
//! `cargo bench -p acgs-engine --bench decision`
// Tests and benchmarks fail loudly on unexpected values.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::hint::black_box;

use acgs_engine::{Constitution, Detectors};
use criterion::{Criterion, criterion_group, criterion_main};

mod mix;

fn bench_decisions(c: &mut Criterion) {
    let (engine, plain, with_content) = mix::example();

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
        b.iter(|| black_box(detectors.scan(black_box(mix::PROSE_1KB))))
    });
    c.bench_function("constitution/load_example", |b| {
        b.iter(|| black_box(Constitution::compile("example", black_box(mix::example_text()))))
    });
}

criterion_group!(benches, bench_decisions);
criterion_main!(benches);
