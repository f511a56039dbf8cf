//! Per-decision latency distribution (p50/p90/p99/p99.9) of the in-process decision path on the example
//! constitution, each decision timed individually into an HDR histogram. Criterion (`--bench decision`)
//! reports means; this reports the tail the targets are stated in.
//!
//! `cargo bench -p acgs-engine --bench decision_latency` (env `ACGS_BENCH_ITERATIONS`, default 200000)
// Tests and benchmarks fail loudly on unexpected values.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::time::Instant;

use acgs_engine::{DecisionRequest, Engine};
use hdrhistogram::Histogram;

/// The allocator the `acgs` binary uses, so the numbers match the server's.
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

mod mix;

fn measure(engine: &Engine, requests: &[DecisionRequest], iterations: usize) -> Histogram<u64> {
    let mut histogram = Histogram::<u64>::new_with_bounds(1, 10_000_000, 3).expect("histogram bounds");
    // Warm-up.
    for r in requests.iter().cycle().take(iterations / 10) {
        let _ = std::hint::black_box(engine.decide(r));
    }
    for r in requests.iter().cycle().take(iterations) {
        let started = Instant::now();
        let decision = engine.decide(std::hint::black_box(r));
        let nanos = started.elapsed().as_nanos() as u64;
        std::hint::black_box(decision).ok();
        histogram.saturating_record(nanos.max(1));
    }
    histogram
}

/// [`measure`] for requests whose agents, users and roles come from a registry and whose counters are given.
fn measure_registry(
    engine: &Engine,
    requests: &[(
        DecisionRequest,
        std::sync::Arc<acgs_engine::Registry>,
        acgs_engine::Usage,
    )],
    iterations: usize,
) -> Histogram<u64> {
    let mut histogram = Histogram::<u64>::new_with_bounds(1, 10_000_000, 3).expect("histogram bounds");
    for (r, registry, usage) in requests.iter().cycle().take(iterations / 10) {
        let _ = std::hint::black_box(engine.decide_with(r, registry, usage));
    }
    for (r, registry, usage) in requests.iter().cycle().take(iterations) {
        let started = Instant::now();
        let decision = engine.decide_with(std::hint::black_box(r), registry, usage);
        let nanos = started.elapsed().as_nanos() as u64;
        std::hint::black_box(decision).ok();
        histogram.saturating_record(nanos.max(1));
    }
    histogram
}

fn report(name: &str, h: &Histogram<u64>) {
    let us = |q: f64| h.value_at_quantile(q) as f64 / 1000.0;
    println!(
        "{name:<28} n={:<7} p50={:>6.1}µs p90={:>6.1}µs p99={:>6.1}µs p99.9={:>6.1}µs max={:>7.1}µs mean={:>6.1}µs",
        h.len(),
        us(0.5),
        us(0.9),
        us(0.99),
        us(0.999),
        h.max() as f64 / 1000.0,
        h.mean() / 1000.0
    );
}

fn main() {
    // `cargo test --benches` runs bench binaries with `--bench` absent; keep that quick.
    let quick = !std::env::args().any(|a| a == "--bench");
    let iterations: usize = std::env::var("ACGS_BENCH_ITERATIONS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(if quick { 2_000 } else { 200_000 });
    let (engine, plain, with_content) = mix::example();
    println!(
        "in-process decision latency, example constitution, {} request templates",
        plain.len()
    );
    report("decide (example mix)", &measure(&engine, &plain, iterations));
    report("decide + 1 KB content", &measure(&engine, &with_content, iterations));
    // The example as it is: agents, users and roles from the registry (10,000 other agents registered), the
    // counters' values given, as the server's decision service gives them.
    let (registry_engine, registered) = mix::example_registry();
    report(
        "decide, registry + counters",
        &measure_registry(&registry_engine, &registered, iterations),
    );

    // Which request shapes are dearest: median per template.
    let mut per_template: Vec<(f64, usize, &DecisionRequest)> = plain
        .iter()
        .enumerate()
        .map(|(i, r)| {
            let h = measure(&engine, std::slice::from_ref(r), (iterations / plain.len()).max(200));
            (h.value_at_quantile(0.5) as f64 / 1000.0, i, r)
        })
        .collect();
    per_template.sort_by(|a, b| b.0.total_cmp(&a.0));
    println!("dearest request templates (median):");
    for (median, i, r) in per_template.iter().take(5) {
        println!(
            "  #{i:<3} {median:>6.1}µs  {} on {}::{}",
            r.action, r.resource.entity_type, r.resource.id
        );
    }
    let cheapest = per_template.last().map(|t| t.0).unwrap_or_default();
    println!("cheapest template median: {cheapest:.1}µs");
}
