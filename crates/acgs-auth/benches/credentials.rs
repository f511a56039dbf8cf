//! Criterion benchmarks of what authentication costs: Argon2id password hashing and verification (once per
//! login), the check of an API key on every agent request (a SHA-256 of the key against the in-memory cache,
//! no Argon2), and access tokens (the Ed25519 signature check alone, and the whole check including the
//! session lookup in SQLite).
//!
//! `cargo bench -p acgs-auth --bench credentials`
// Tests and benchmarks fail loudly on unexpected values.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::hint::black_box;
use std::time::Duration;

use acgs_auth::credentials::{hash_password, verify_password};
use acgs_auth::{AuthService, AuthSettings, KeyRing, MasterKey, Role, RoleSet, system_clock};
use criterion::{Criterion, criterion_group, criterion_main};

const PASSWORD: &str = "correct horse battery staple";

fn bench_credentials(c: &mut Criterion) {
    let mut group = c.benchmark_group("password");
    group.sample_size(20).measurement_time(Duration::from_secs(10));
    let stored = hash_password(PASSWORD).unwrap();
    group.bench_function("hash_argon2id", |b| {
        b.iter(|| black_box(hash_password(black_box(PASSWORD)).unwrap()))
    });
    group.bench_function("verify_argon2id", |b| {
        b.iter(|| assert!(verify_password(black_box(PASSWORD), &stored)))
    });
    group.finish();

    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let dir = tempfile::tempdir().unwrap();
    let (auth, ring, api_key, access_token) = runtime.block_on(async {
        let store = acgs_store::open(
            &format!("sqlite://{}/acgs.db", dir.path().display()),
            &Default::default(),
        )
        .await
        .unwrap();
        let master_path = dir.path().join("auth-master.key");
        let (master, _) = MasterKey::load_or_create(&master_path).unwrap();
        let auth = AuthService::new(store.clone(), master, AuthSettings::default(), system_clock())
            .await
            .unwrap();
        auth.ensure_signing_key().await.unwrap();
        let (_, api_key) = auth
            .create_api_key("bench", "agent", RoleSet::from_iter([Role::Agent]), None)
            .await
            .unwrap();
        auth.create_user(
            "bench",
            "alice",
            Some(PASSWORD.into()),
            RoleSet::from_iter([Role::Auditor]),
        )
        .await
        .unwrap();
        let tokens = auth.login("alice", PASSWORD, "127.0.0.1").await.unwrap();
        // The same keys as the service holds, loaded as a replica would.
        let ring = KeyRing::new(
            &store.signing_keys().await.unwrap(),
            &MasterKey::load(&master_path).unwrap(),
            system_clock()(),
        )
        .unwrap();
        (auth, ring, api_key, tokens.access_token)
    });
    let api_key_header = format!("Bearer {api_key}");
    let token_header = format!("Bearer {access_token}");
    let clock = system_clock();

    let mut group = c.benchmark_group("authenticate");
    group.bench_function("api_key", |b| {
        b.to_async(&runtime)
            .iter(|| async { black_box(auth.authenticate(Some(black_box(&api_key_header))).await.unwrap()) })
    });
    group.bench_function("access_token_signature_only", |b| {
        b.iter(|| black_box(ring.verify(black_box(&access_token), clock()).unwrap()))
    });
    group.bench_function("access_token_with_session_lookup", |b| {
        b.to_async(&runtime)
            .iter(|| async { black_box(auth.authenticate(Some(black_box(&token_header))).await.unwrap()) })
    });
    group.finish();
}

criterion_group!(benches, bench_credentials);
criterion_main!(benches);
