//! Latency of audit-log proofs served from storage, and the throughput of full verification.
//!
//! `cargo bench -p acgs-store --bench proofs` builds a SQLite log of 100,000 decisions (1,000 per commit, with
//! a checkpoint every 10,000), then times tree roots, inclusion proofs and consistency proofs at random
//! positions (each one reads its nodes from SQLite in one query), and `verify_store` over the whole log.

// Benchmarks fail loudly on unexpected values.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod records;

use std::time::{Duration, Instant};

use acgs_audit::{LogKey, VerifierKey};
use acgs_store::{Checkpointer, SqliteSync, StoreOptions};
use rand::{Rng as _, SeedableRng as _};
use records::record;

fn percentiles(name: &str, mut samples: Vec<Duration>) {
    samples.sort();
    let at = |q: f64| samples[((samples.len() - 1) as f64 * q) as usize].as_secs_f64() * 1e6;
    let mean = samples.iter().map(Duration::as_secs_f64).sum::<f64>() / samples.len() as f64 * 1e6;
    println!(
        "{name:<34} n={:<6} mean {mean:>7.1} µs  p50 {:>7.1} µs  p99 {:>7.1} µs",
        samples.len(),
        at(0.5),
        at(0.99)
    );
}

fn main() {
    let quick = !std::env::args().any(|a| a == "--bench");
    let (size, samples) = if quick { (2_000, 50) } else { (100_000, 2_000) };
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .unwrap();
    runtime.block_on(async {
        let dir = tempfile::tempdir().unwrap();
        let url = format!("sqlite://{}/acgs.db", dir.path().display());
        let options = StoreOptions {
            sqlite_sync: SqliteSync::Normal,
            max_connections: 0,
        };
        let store = acgs_store::open(&url, &options).await.unwrap();
        let key = LogKey::generate(Some("acgs.bench/audit")).unwrap();
        let verifier = VerifierKey::parse(&key.verifier_key()).unwrap();
        let checkpointer = Checkpointer::new(store.clone(), key);
        let started = Instant::now();
        for batch in 0..size / 1000 {
            let mut records: Vec<_> = (batch * 1000..(batch + 1) * 1000).map(record).collect();
            store.append(&mut records).await.unwrap();
            if (batch + 1) % 10 == 0 {
                checkpointer.checkpoint_now().await.unwrap();
            }
        }
        let built = started.elapsed();
        println!(
            "built a log of {size} entries in {:.1} s ({:.0} entries/s, 1000 per commit, synchronous=normal)",
            built.as_secs_f64(),
            size as f64 / built.as_secs_f64()
        );
        let size = size as u64;
        let mut rng = rand::rngs::StdRng::seed_from_u64(7);
        let mut time = async |f: &mut dyn FnMut(&mut rand::rngs::StdRng) -> (u64, u64), which: u8| {
            let mut out = Vec::with_capacity(samples);
            for _ in 0..samples {
                let (a, b) = f(&mut rng);
                let t = Instant::now();
                match which {
                    0 => drop(acgs_store::tree_root(&*store, b).await.unwrap()),
                    1 => drop(acgs_store::inclusion_proof(&*store, a, b).await.unwrap()),
                    _ => drop(acgs_store::consistency_proof(&*store, a, b).await.unwrap()),
                }
                out.push(t.elapsed());
            }
            out
        };
        percentiles(
            "tree root (random size)",
            time(&mut |r| (0, r.random_range(1..=size)), 0).await,
        );
        percentiles(
            "inclusion proof (random seq, full)",
            time(&mut |r| (r.random_range(1..=size), size), 1).await,
        );
        percentiles(
            "consistency proof (random sizes)",
            time(
                &mut |r| {
                    let a = r.random_range(1..=size);
                    (a, r.random_range(a..=size))
                },
                2,
            )
            .await,
        );
        let started = Instant::now();
        let report = acgs_store::verify_store(&*store, &verifier).await.unwrap();
        let took = started.elapsed();
        println!(
            "verify_store: {} entries, {} checkpoints in {:.2} s ({:.0} entries/s)",
            report.entries,
            report.checkpoints,
            took.as_secs_f64(),
            report.entries as f64 / took.as_secs_f64()
        );
    });
}
