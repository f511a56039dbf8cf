//! One conformance suite for the credential storage ([`AuthStore`]), run against SQLite and PostgreSQL.
// Tests and benchmarks fail loudly on unexpected values.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::sync::Arc;

use acgs_audit::event::EntityName;
use acgs_store::{
    ApiKeyRecord, RefreshOutcome, RefreshTokenRecord, SecurityEvent, SessionRecord, SigningKeyRecord, Store,
    StoreError, StoreOptions, UserRecord,
};
use common::acgs_test_postgres_url;

fn user(name: &str) -> UserRecord {
    UserRecord {
        id: format!("id-{name}"),
        username: name.into(),
        password_hash: "$argon2id$v=19$m=19456,t=2,p=1$c2FsdA$aGFzaA".into(),
        roles: vec!["auditor".into(), "operator".into()],
        disabled: false,
        bootstrap_password: false,
        created_at_us: 1_000,
        password_changed_at_us: 1_000,
        entity: None,
    }
}

fn key(id: &str, byte: u8) -> ApiKeyRecord {
    ApiKeyRecord {
        id: id.into(),
        name: format!("key {id}"),
        secret_sha256: [byte; 32],
        roles: vec!["agent".into()],
        created_by: "admin".into(),
        created_at_us: 2_000 + i64::from(byte),
        expires_at_us: Some(9_000_000),
        revoked_at_us: None,
        last_used_at_us: None,
        // Every other key is bound to a registry entity.
        entity: byte.is_multiple_of(2).then(|| EntityName {
            entity_type: "Agent".into(),
            id: format!("agent-{byte}"),
        }),
    }
}

fn token(byte: u8, session: &str, issued: i64, expires: i64) -> RefreshTokenRecord {
    RefreshTokenRecord {
        token_sha256: [byte; 32],
        session_id: session.into(),
        issued_at_us: issued,
        expires_at_us: expires,
        replaced_at_us: None,
    }
}

fn session(id: &str, user_id: &str, expires: i64) -> SessionRecord {
    SessionRecord {
        id: id.into(),
        user_id: user_id.into(),
        source: "10.0.0.7".into(),
        created_at_us: 100,
        expires_at_us: expires,
        revoked_at_us: None,
        revoked_reason: None,
    }
}

async fn users_are_unique_and_updatable(store: Arc<dyn Store>) {
    let alice = user("alice");
    store.create_user(&alice).await.unwrap();
    let mut clash = user("alice");
    clash.id = "other".into();
    assert!(matches!(store.create_user(&clash).await, Err(StoreError::Conflict(_))));
    assert_eq!(store.user_by_name("alice").await.unwrap(), Some(alice.clone()));
    assert_eq!(store.user_by_id("id-alice").await.unwrap(), Some(alice.clone()));
    assert_eq!(store.user_by_name("nobody").await.unwrap(), None);
    let mut changed = alice.clone();
    changed.roles = vec!["admin".into()];
    changed.disabled = true;
    changed.bootstrap_password = true;
    changed.password_hash = "new".into();
    changed.password_changed_at_us = 5_000;
    changed.entity = Some(EntityName {
        entity_type: "User".into(),
        id: "alice".into(),
    });
    assert!(store.update_user(&changed).await.unwrap());
    assert_eq!(store.user_by_id("id-alice").await.unwrap(), Some(changed));
    let mut ghost = user("ghost");
    ghost.id = "missing".into();
    assert!(!store.update_user(&ghost).await.unwrap());
    store.create_user(&user("bob")).await.unwrap();
    let names: Vec<String> = store.users().await.unwrap().into_iter().map(|u| u.username).collect();
    assert_eq!(names, vec!["alice", "bob"]);
}

async fn failures_count_by_user_and_source_and_lockouts_expire(store: Arc<dyn Store>) {
    for (name, source, at) in [
        ("alice", "1.1.1.1", 10),
        ("alice", "1.1.1.1", 20),
        ("alice", "2.2.2.2", 30),
    ] {
        store.record_login_failure(name, source, at).await.unwrap();
    }
    store.record_login_failure("nobody", "1.1.1.1", 40).await.unwrap();
    assert_eq!(store.login_failures_for_user("alice", 0).await.unwrap(), 3);
    assert_eq!(store.login_failures_for_user("alice", 15).await.unwrap(), 2);
    assert_eq!(store.login_failures_from_source("1.1.1.1", 0).await.unwrap(), 3);
    assert_eq!(store.login_failures_from_source("1.1.1.1", 25).await.unwrap(), 1);
    let (by_user, by_source) = store.failure_counts(0, 2).await.unwrap();
    assert_eq!(by_user.len(), 1);
    assert_eq!(
        (by_user[0].key.as_str(), by_user[0].failures, by_user[0].last_at_us),
        ("alice", 3, 30)
    );
    assert_eq!(by_source.len(), 1);
    assert_eq!((by_source[0].key.as_str(), by_source[0].failures), ("1.1.1.1", 3));
    store.clear_login_failures("alice").await.unwrap();
    assert_eq!(store.login_failures_for_user("alice", 0).await.unwrap(), 0);
    assert_eq!(store.login_failures_for_user("nobody", 0).await.unwrap(), 1);

    assert_eq!(store.lockout_until("alice").await.unwrap(), None);
    store.set_lockout("alice", 100, 1_000).await.unwrap();
    store.set_lockout("alice", 200, 2_000).await.unwrap();
    store.set_lockout("nobody", 100, 500).await.unwrap();
    assert_eq!(store.lockout_until("alice").await.unwrap(), Some(2_000));
    assert_eq!(store.lockouts(600).await.unwrap(), vec![("alice".to_owned(), 2_000)]);
    assert!(store.clear_lockout("alice").await.unwrap());
    assert!(!store.clear_lockout("alice").await.unwrap());
    assert_eq!(store.lockout_until("alice").await.unwrap(), None);
}

async fn api_keys_are_stored_revoked_once_and_track_use(store: Arc<dyn Store>) {
    store.create_api_key(&key("acgs_aaaa", 1)).await.unwrap();
    store.create_api_key(&key("acgs_bbbb", 2)).await.unwrap();
    assert!(matches!(
        store.create_api_key(&key("acgs_aaaa", 3)).await,
        Err(StoreError::Conflict(_))
    ));
    let keys = store.api_keys().await.unwrap();
    assert_eq!(keys, vec![key("acgs_aaaa", 1), key("acgs_bbbb", 2)]);
    assert!(store.revoke_api_key("acgs_aaaa", 7_000).await.unwrap());
    assert!(!store.revoke_api_key("acgs_aaaa", 8_000).await.unwrap());
    assert!(!store.revoke_api_key("acgs_none", 8_000).await.unwrap());
    store
        .record_api_key_use(&[("acgs_bbbb".into(), 50), ("acgs_aaaa".into(), 60)])
        .await
        .unwrap();
    // An older use never overwrites a newer one.
    store.record_api_key_use(&[("acgs_bbbb".into(), 40)]).await.unwrap();
    let keys = store.api_keys().await.unwrap();
    assert_eq!(keys[0].revoked_at_us, Some(7_000));
    assert_eq!(keys[0].last_used_at_us, Some(60));
    assert_eq!(keys[1].last_used_at_us, Some(50));
}

async fn refresh_tokens_rotate_once_and_reuse_is_reported(store: Arc<dyn Store>) {
    store.create_user(&user("alice")).await.unwrap();
    store
        .create_session(&session("s1", "id-alice", 10_000), &token(1, "s1", 100, 5_000))
        .await
        .unwrap();
    assert_eq!(
        store.session("s1").await.unwrap(),
        Some(session("s1", "id-alice", 10_000))
    );
    // The current token rotates into the next.
    match store
        .rotate_refresh_token(&[1; 32], &token(2, "s1", 200, 6_000), 200)
        .await
        .unwrap()
    {
        RefreshOutcome::Rotated(s) => assert_eq!(s.id, "s1"),
        other => panic!("{other:?}"),
    }
    // The old one again: reuse.
    assert!(matches!(
        store.rotate_refresh_token(&[1; 32], &token(3, "s1", 300, 6_000), 300).await.unwrap(),
        RefreshOutcome::Reused(s) if s.id == "s1"
    ));
    // The next one works, once.
    assert!(matches!(
        store
            .rotate_refresh_token(&[2; 32], &token(4, "s1", 300, 6_000), 300)
            .await
            .unwrap(),
        RefreshOutcome::Rotated(_)
    ));
    assert!(matches!(
        store
            .rotate_refresh_token(&[9; 32], &token(5, "s1", 300, 6_000), 300)
            .await
            .unwrap(),
        RefreshOutcome::Unknown
    ));
    // An expired token, and a revoked session, do not rotate.
    assert!(matches!(
        store
            .rotate_refresh_token(&[4; 32], &token(6, "s1", 7_000, 9_000), 7_000)
            .await
            .unwrap(),
        RefreshOutcome::Expired(_)
    ));
    assert!(store.revoke_session("s1", 400, "logout").await.unwrap());
    assert!(!store.revoke_session("s1", 500, "logout").await.unwrap());
    assert!(matches!(
        store.rotate_refresh_token(&[4; 32], &token(7, "s1", 500, 6_000), 500).await.unwrap(),
        RefreshOutcome::Expired(s) if s.revoked_reason.as_deref() == Some("logout")
    ));
    // Revoking by user and for everybody.
    store.create_user(&user("bob")).await.unwrap();
    for (id, user_id, byte) in [("s2", "id-alice", 11), ("s3", "id-bob", 12), ("s4", "id-bob", 13)] {
        store
            .create_session(&session(id, user_id, 10_000), &token(byte, id, 100, 5_000))
            .await
            .unwrap();
    }
    assert_eq!(store.revoke_sessions(Some("id-bob"), 600, "disabled").await.unwrap(), 2);
    assert_eq!(store.revoke_sessions(None, 700, "incident").await.unwrap(), 1);
    assert_eq!(
        store.session("s2").await.unwrap().unwrap().revoked_reason.as_deref(),
        Some("incident")
    );
    assert_eq!(
        store.session("s3").await.unwrap().unwrap().revoked_reason.as_deref(),
        Some("disabled")
    );
    // Purging removes expired refresh tokens.
    assert!(store.purge_auth_records(20_000).await.unwrap() >= 4);
    assert!(matches!(
        store
            .rotate_refresh_token(&[11; 32], &token(20, "s2", 800, 9_000), 800)
            .await
            .unwrap(),
        RefreshOutcome::Unknown
    ));
}

async fn a_new_signing_key_retires_the_previous(store: Arc<dyn Store>) {
    let k = |kid: &str, at: i64| SigningKeyRecord {
        kid: kid.into(),
        public_key: [at as u8; 32],
        private_key_enc: vec![1, 2, 3],
        created_at_us: at,
        retire_after_us: None,
    };
    store.add_signing_key(&k("k1", 1), 0).await.unwrap();
    store.add_signing_key(&k("k2", 2), 900).await.unwrap();
    let keys = store.signing_keys().await.unwrap();
    assert_eq!(
        keys.iter().map(|k| k.kid.as_str()).collect::<Vec<_>>(),
        vec!["k2", "k1"]
    );
    assert_eq!(keys[0].retire_after_us, None);
    assert_eq!(keys[1].retire_after_us, Some(900));
    // Retiring everything now (incident): an earlier retirement time wins over a later one.
    store.add_signing_key(&k("k3", 3), 500).await.unwrap();
    let keys = store.signing_keys().await.unwrap();
    assert_eq!(
        keys.iter().map(|k| k.retire_after_us).collect::<Vec<_>>(),
        vec![None, Some(500), Some(500)]
    );
    assert!(matches!(
        store.add_signing_key(&k("k3", 4), 600).await,
        Err(StoreError::Conflict(_))
    ));
}

async fn security_events_are_entries_of_the_verifiable_log(store: Arc<dyn Store>) {
    let mut decisions: Vec<_> = (0..3).map(|n| common::record(n, "allow")).collect();
    store.append(&mut decisions).await.unwrap();
    let event = SecurityEvent {
        event: "login.failed".into(),
        actor: None,
        subject: Some("alice".into()),
        source: Some("10.0.0.7".into()),
        detail: Some("wrong password".into()),
    };
    assert_eq!(
        store
            .record_security_event(&event, 1_700_000_000_000_000)
            .await
            .unwrap(),
        4
    );
    let mut more = vec![common::record(10, "deny")];
    store.append(&mut more).await.unwrap();
    assert_eq!(more[0].seq, 5);
    let entry = &store.audit_entries(4, 1).await.unwrap()[0];
    assert_eq!(entry.kind, "security");
    let value: serde_json::Value = serde_json::from_str(entry.event.as_deref().unwrap()).unwrap();
    assert_eq!(value["security"]["event"], "login.failed");
    assert_eq!(value["security"]["subject"], "alice");
    assert_eq!(value["seq"], 4);
    assert!(value["security"].get("actor").is_none());
    // A security event is not a decision.
    assert_eq!(store.count().await.unwrap(), 4);
    let key = acgs_audit::LogKey::generate(Some("acgs.test/audit")).unwrap();
    let verifier = acgs_audit::VerifierKey::parse(&key.verifier_key()).unwrap();
    acgs_store::Checkpointer::new(store.clone(), key)
        .checkpoint_now()
        .await
        .unwrap();
    assert_eq!(acgs_store::verify_store(&*store, &verifier).await.unwrap().entries, 5);
}

macro_rules! conformance {
    ($($name:ident),* $(,)?) => {
        mod sqlite {
            $(
                #[tokio::test]
                async fn $name() {
                    let dir = tempfile::tempdir().unwrap();
                    let url = format!("sqlite://{}/acgs.db", dir.path().display());
                    let store = acgs_store::open(&url, &super::StoreOptions::default()).await.unwrap();
                    super::$name(store).await;
                }
            )*
        }
        mod postgres {
            $(
                #[tokio::test]
                async fn $name() {
                    let url = super::acgs_test_postgres_url();
                    let store = acgs_store::open(&url, &super::StoreOptions::default()).await.unwrap();
                    super::$name(store).await;
                }
            )*
        }
    };
}

conformance!(
    users_are_unique_and_updatable,
    failures_count_by_user_and_source_and_lockouts_expire,
    api_keys_are_stored_revoked_once_and_track_use,
    refresh_tokens_rotate_once_and_reuse_is_reported,
    a_new_signing_key_retires_the_previous,
    security_events_are_entries_of_the_verifiable_log,
);
