//! The request mix both decision benchmarks use: the example constitution's test-case requests, plain and
//! with about 1 KB of benign business prose as `content`.

// Benchmarks fail loudly on unexpected values.
#![allow(clippy::expect_used, dead_code)]

use std::sync::Arc;

use acgs_engine::{Constitution, ConstitutionDocument, DecisionRequest, Engine};

const EXAMPLE: &str = include_str!("../../../../examples/constitution.toml");

/// About 1 KB of ordinary business prose (no PII or secrets): the common case for `content`.
pub const PROSE_1KB: &str = include_str!("prose_1kb.txt");

/// The engine on the example constitution, and its requests without and with 1 KB of content.
pub fn example() -> (Engine, Vec<DecisionRequest>, Vec<DecisionRequest>) {
    let constitution = Constitution::from_toml("example", EXAMPLE).expect("example is valid");
    let doc: ConstitutionDocument = toml::from_str(EXAMPLE).expect("example parses");
    let plain: Vec<DecisionRequest> = doc.tests.into_iter().map(|t| t.request).collect();
    let with_content = plain
        .iter()
        .cloned()
        .map(|mut r| {
            r.content = Some(PROSE_1KB.to_owned());
            r
        })
        .collect();
    (Engine::new(Arc::new(constitution)), plain, with_content)
}

/// Constitution text, for the load benchmark.
pub fn example_text() -> &'static str {
    EXAMPLE
}
