//! Criterion benchmarks of a request's entity hierarchy: closing it (`MAX_HIERARCHY_DEPTH`, `MAX_ANCESTOR_LINKS`)
//! for the largest hierarchies a request may carry, and refusing a chain of 1,000 roles.
//!
//! `cargo bench -p acgs-engine --bench hierarchy`
// Tests and benchmarks fail loudly on unexpected values.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::hint::black_box;
use std::sync::Arc;

use acgs_engine::{Constitution, DecisionRequest, Engine, MAX_ANCESTOR_LINKS, MAX_HIERARCHY_DEPTH, Outcome};
use criterion::{Criterion, criterion_group, criterion_main};

/// The server's allocator (see `acgs-cli`): freeing and refilling the ancestor sets is a visible share of the work.
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

#[path = "../tests/fixtures/mod.rs"]
mod fixtures;

fn request(json: &str) -> DecisionRequest {
    serde_json::from_str(json).unwrap()
}

fn bench_hierarchy(c: &mut Criterion) {
    let text = fixtures::small_with_role_hierarchy();
    let engine = Engine::new(Arc::new(Constitution::from_toml("small.toml", &text).unwrap()));

    // A chain of 1,000 roles (77 KB): refused for its depth.
    let chain_1000 = request(&fixtures::chain_request(1000));
    assert!(engine.decide(&chain_1000).is_err());
    // The deepest chain accepted: the agent MAX_HIERARCHY_DEPTH levels below `tool-user`.
    let deepest = request(&fixtures::chain_request(MAX_HIERARCHY_DEPTH - 1));
    assert_eq!(engine.decide(&deepest).unwrap().outcome, Outcome::Allow);
    // The widest accepted: 100 tops, 100 middles in every top, 199 bottoms in every middle (49,801 links, close to
    // MAX_ANCESTOR_LINKS), the shape that makes merging parents' ancestor sets the most work.
    let (tops, middles, bottoms) = (100, 100, 199);
    assert!(fixtures::wide_links(tops, middles, bottoms) <= MAX_ANCESTOR_LINKS);
    assert!(fixtures::wide_links(tops, middles, bottoms + 1) > MAX_ANCESTOR_LINKS);
    let widest = request(&fixtures::wide_request(tops, middles, bottoms));
    assert_eq!(engine.decide(&widest).unwrap().outcome, Outcome::Allow);
    // One bottom more: refused once the links pass the limit.
    let too_wide = request(&fixtures::wide_request(tops, middles, bottoms + 1));
    assert!(engine.decide(&too_wide).is_err());
    // The most links per byte: 765 roles each under two chains of 32 (49,953 links in 75 KB).
    let (chains, len, leaves) = (2, MAX_HIERARCHY_DEPTH, 765);
    assert!(fixtures::dense_links(chains, len, leaves) <= MAX_ANCESTOR_LINKS);
    assert!(fixtures::dense_links(chains, len, leaves + 1) > MAX_ANCESTOR_LINKS);
    let dense = request(&fixtures::dense_request(chains, len, leaves));
    assert_eq!(engine.decide(&dense).unwrap().outcome, Outcome::Allow);
    // For comparison, a request with a one-level hierarchy.
    let plain = request(&fixtures::role_request(&["tool-user"], &[]));
    assert_eq!(engine.decide(&plain).unwrap().outcome, Outcome::Allow);

    let mut group = c.benchmark_group("hierarchy");
    for (name, request) in [
        ("plain", &plain),
        ("chain_1000_refused", &chain_1000),
        ("chain_at_depth_limit", &deepest),
        ("wide_at_link_limit", &widest),
        ("wide_over_link_limit_refused", &too_wide),
        ("dense_at_link_limit", &dense),
    ] {
        group.bench_function(name, |b| b.iter(|| black_box(engine.decide(black_box(request)))));
    }
    group.finish();
}

criterion_group!(benches, bench_hierarchy);
criterion_main!(benches);
