//! Cost of committing decision records to SQLite through the store, by batch size and durability level. Each
//! record becomes an audit leaf: canonical event, leaf hash, the tree nodes it completes and an index row.
//!
//! `cargo bench -p acgs-store --bench append` (writes under the system temp directory). Each batch is one call to
//! `DecisionStore::append`, i.e. one commit, as the group-commit writer does; records carry a 900-byte body, about
//! the size the server logs for the example constitution's requests.

// Benchmarks fail loudly on unexpected values.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod records;

use std::time::Instant;

use acgs_store::{SqliteSync, StoreOptions};
use records::record;

fn main() {
    let quick = !std::env::args().any(|a| a == "--bench");
    let records_per_case = if quick { 64 } else { 3_000 };
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .expect("runtime");
    runtime.block_on(async {
        let mut n = 0;
        for sync in [SqliteSync::Full, SqliteSync::Normal] {
            let dir = tempfile::tempdir().expect("tempdir");
            let url = format!("sqlite://{}/acgs.db", dir.path().display());
            let store = acgs_store::open(&url, &StoreOptions { sqlite_sync: sync, max_connections: 0 }).await.unwrap();
            for batch in [1usize, 4, 32, 256] {
                let rounds = (records_per_case / batch).max(1);
                let started = Instant::now();
                for _ in 0..rounds {
                    let mut records: Vec<_> = (0..batch)
                        .map(|_| {
                            n += 1;
                            record(n)
                        })
                        .collect();
                    store.append(&mut records).await.unwrap();
                }
                let us = started.elapsed().as_secs_f64() * 1e6;
                println!(
                    "sqlite {sync:<6} batch {batch:>3}: {:>8.1} µs per commit, {:>6.1} µs per record, {:>7.0} records/s",
                    us / rounds as f64,
                    us / (rounds * batch) as f64,
                    (rounds * batch) as f64 / (us / 1e6)
                );
            }
        }
    });
}
