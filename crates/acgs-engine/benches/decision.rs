//! Criterion benchmarks of the in-process decision path on the example constitution.
//!
//! `cargo bench -p acgs-engine --bench decision`
// Tests and benchmarks fail loudly on unexpected values.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::hint::black_box;

use acgs_engine::{Constitution, Detectors};
use criterion::{Criterion, criterion_group, criterion_main};
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};

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
    // The same requests naming agents, users and roles registered in ACGS (with 10,000 other agents registered).
    let (registry_engine, registered) = mix::example_registry();
    let mut k = 0usize;
    group.bench_function("example_mix_registry", |b| {
        b.iter(|| {
            k = (k + 1) % registered.len();
            let (request, registry, usage) = &registered[k];
            black_box(registry_engine.decide_with(black_box(request), registry, usage))
        })
    });
    group.finish();

    let detectors = Detectors::new();
    c.bench_function("detectors/scan_1kb_prose", |b| {
        b.iter(|| black_box(detectors.scan(black_box(mix::PROSE_1KB))))
    });
    // The content of a 1 MiB request made of findings: where the detectors' own work is largest.
    let mut group = c.benchmark_group("detectors");
    group.sample_size(10);
    for (name, text) in adversarial_content() {
        group.bench_function(name, |b| b.iter(|| black_box(detectors.scan(black_box(&text)))));
    }
    group.finish();
    c.bench_function("constitution/load_example", |b| {
        b.iter(|| black_box(Constitution::compile("example", black_box(mix::example_text()))))
    });
}

/// 1 MiB texts of findings: half JWTs and half assigned keys (each key checked against each JWT until the sweep in
/// `finish`), and tokens separated by commas only (each looked back 2 KiB for a URL until `UrlTracker`).
fn adversarial_content() -> [(&'static str, String); 2] {
    const MIB: usize = 1 << 20;
    let mut rng = StdRng::seed_from_u64(1);
    let mut token = |len: usize| -> String {
        const CHARS: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789";
        (0..len)
            .map(|_| char::from(CHARS[rng.random_range(0..CHARS.len())]))
            .collect()
    };
    let mut secrets = String::with_capacity(MIB + 64);
    while secrets.len() < MIB / 2 {
        secrets.push_str(&format!("eyJ{}.{}. ", token(7), token(2)));
    }
    while secrets.len() < MIB {
        secrets.push_str(&format!("secret={} ", token(16)));
    }
    let mut tokens = String::with_capacity(MIB + 64);
    while tokens.len() < MIB {
        tokens.push_str(&token(32));
        tokens.push(',');
    }
    [("scan_1mib_jwts_and_keys", secrets), ("scan_1mib_comma_tokens", tokens)]
}

criterion_group!(benches, bench_decisions);
criterion_main!(benches);
