//! The authentication service over a real credential store, on SQLite and PostgreSQL: logins and lockout,
//! refresh-token rotation and reuse detection, logout, API keys, signing-key rotation without breaking live
//! sessions, incident rotation, bootstrap, and the security events each leaves in the audit log.
// Tests and benchmarks fail loudly on unexpected values.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::sync::Arc;
use std::sync::atomic::{AtomicI64, Ordering};
use std::time::Duration;

use acgs_auth::{
    AuthError, AuthService, AuthSettings, MasterKey, Permission, PrincipalKind, Role, RoleSet, UserChanges,
};
use acgs_store::{Store, StoreOptions};

const START_US: i64 = 1_800_000_000_000_000;

/// A service over `store` with a clock the test moves.
struct Harness {
    store: Arc<dyn Store>,
    auth: AuthService,
    now: Arc<AtomicI64>,
    /// Holds the master key file (and the SQLite database).
    dir: tempfile::TempDir,
}

impl Harness {
    async fn new(backend: &str) -> Self {
        let dir = tempfile::tempdir().unwrap();
        let url = match backend {
            "sqlite" => format!("sqlite://{}/acgs.db", dir.path().display()),
            _ => postgres_url(),
        };
        let store = acgs_store::open(&url, &StoreOptions::default()).await.unwrap();
        let now = Arc::new(AtomicI64::new(START_US));
        let clock_now = Arc::clone(&now);
        let (master, _) = MasterKey::load_or_create(&dir.path().join("auth-master.key")).unwrap();
        let auth = AuthService::new(
            store.clone(),
            master,
            AuthSettings::default(),
            Arc::new(move || clock_now.load(Ordering::Relaxed)),
        )
        .await
        .unwrap();
        auth.ensure_signing_key().await.unwrap();
        Self { store, auth, now, dir }
    }

    /// The master key, as another replica or the CLI would load it.
    fn master(&self) -> MasterKey {
        MasterKey::load(&self.dir.path().join("auth-master.key")).unwrap()
    }

    fn advance(&self, d: Duration) {
        self.now.fetch_add(d.as_micros() as i64, Ordering::Relaxed);
    }

    /// Security events in the audit log, as `event subject` strings.
    async fn events(&self) -> Vec<String> {
        let entries = self.store.audit_entries(1, 10_000).await.unwrap();
        entries
            .into_iter()
            .filter(|e| e.kind == "security")
            .map(|e| {
                let v: serde_json::Value = serde_json::from_str(e.event.as_deref().unwrap()).unwrap();
                format!(
                    "{} {}",
                    v["security"]["event"].as_str().unwrap(),
                    v["security"]["subject"].as_str().unwrap_or("-")
                )
            })
            .collect()
    }

    async fn user(&self, name: &str, roles: &[Role], password: &str) {
        self.auth
            .create_user("admin", name, Some(password.into()), roles.iter().copied().collect())
            .await
            .unwrap();
    }
}

/// A URL for a fresh, empty schema on the test PostgreSQL server (`ACGS_TEST_POSTGRES_URL`).
fn postgres_url() -> String {
    use std::sync::atomic::AtomicUsize;
    static N: AtomicUsize = AtomicUsize::new(0);
    let base =
        std::env::var("ACGS_TEST_POSTGRES_URL").unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432/test".into());
    let schema = format!(
        "acgs_auth_test_{}_{}_{}",
        std::process::id(),
        N.fetch_add(1, Ordering::SeqCst),
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_nanos() % 1_000_000)
            .unwrap_or(0)
    );
    let status = std::process::Command::new("psql")
        .args([base.as_str(), "-q", "-c", &format!("CREATE SCHEMA {schema}")])
        .status()
        .expect("psql runs");
    assert!(status.success(), "cannot create schema on {base}");
    let sep = if base.contains('?') { '&' } else { '?' };
    format!("{base}{sep}options=-c%20search_path%3D{schema}")
}

async fn login_lockout_and_unlock(backend: &str) {
    let h = Harness::new(backend).await;
    h.user("alice", &[Role::Auditor], "alice password 1").await;
    let tokens = h.auth.login("alice", "alice password 1", "10.0.0.1").await.unwrap();
    let principal = h
        .auth
        .authenticate(Some(&format!("Bearer {}", tokens.access_token)))
        .await
        .unwrap();
    assert!(matches!(&principal.kind, PrincipalKind::User { username, .. } if username == "alice"));
    assert!(principal.can(Permission::AuditRead) && !principal.can(Permission::DecisionsCreate));

    // Four wrong passwords: still not locked; the fifth locks the account.
    for _ in 0..4 {
        assert!(matches!(
            h.auth.login("alice", "wrong password!!", "10.0.0.2").await,
            Err(AuthError::InvalidCredentials)
        ));
    }
    assert!(h.auth.login("alice", "alice password 1", "10.0.0.2").await.is_ok());
    for _ in 0..5 {
        let _ = h.auth.login("alice", "wrong password!!", "10.0.0.2").await;
    }
    let locked = h.auth.login("alice", "alice password 1", "10.0.0.3").await;
    let Err(AuthError::Locked { until_us }) = locked else {
        panic!("expected a lockout, got {locked:?}");
    };
    assert_eq!(until_us, START_US + 15 * 60 * 1_000_000);
    assert_eq!(h.auth.users().await.unwrap()[0].locked_until_us, Some(until_us));
    // An administrator unlocks it.
    assert!(h.auth.unlock("admin", "alice").await.unwrap());
    assert!(h.auth.login("alice", "alice password 1", "10.0.0.3").await.is_ok());
    // Or it unlocks by itself after the lockout period.
    for _ in 0..5 {
        let _ = h.auth.login("alice", "wrong password!!", "10.0.0.4").await;
    }
    assert!(matches!(
        h.auth.login("alice", "alice password 1", "10.0.0.4").await,
        Err(AuthError::Locked { .. })
    ));
    h.advance(Duration::from_secs(15 * 60 + 1));
    assert!(h.auth.login("alice", "alice password 1", "10.0.0.4").await.is_ok());
    // Unknown usernames count and lock the same way (no account enumeration by behaviour).
    for _ in 0..5 {
        assert!(matches!(
            h.auth.login("mallory", "whatever password", "10.0.0.5").await,
            Err(AuthError::InvalidCredentials)
        ));
    }
    assert!(matches!(
        h.auth.login("mallory", "whatever password", "10.0.0.5").await,
        Err(AuthError::Locked { .. })
    ));
    // A source with too many failures is refused outright.
    for i in 0..20 {
        let _ = h.auth.login(&format!("user{i}"), "wrong password!!", "10.9.9.9").await;
    }
    assert!(matches!(
        h.auth.login("alice", "alice password 1", "10.9.9.9").await,
        Err(AuthError::Throttled { .. })
    ));
    let events = h.events().await;
    assert!(events.contains(&"login.locked alice".to_owned()), "{events:?}");
    assert!(events.contains(&"user.unlocked alice".to_owned()));
    assert!(events.contains(&"login.failed mallory".to_owned()));
    assert!(events.iter().filter(|e| e.starts_with("login.succeeded")).count() >= 3);
    let audit = h.auth.security_audit().await.unwrap();
    assert!(audit.locked.iter().any(|(u, _)| u == "mallory"));
    assert!(audit.failed_login_bursts_by_source.iter().any(|(s, _)| s == "10.9.9.9"));
}

async fn refresh_rotation_and_reuse_detection(backend: &str) {
    let h = Harness::new(backend).await;
    h.user("bob", &[Role::Operator], "bob password 12").await;
    let first = h.auth.login("bob", "bob password 12", "10.0.0.1").await.unwrap();
    let second = h.auth.refresh(&first.refresh_token, "10.0.0.1").await.unwrap();
    assert_ne!(second.refresh_token, first.refresh_token);
    let third = h.auth.refresh(&second.refresh_token, "10.0.0.1").await.unwrap();
    // All access tokens of the session work.
    for t in [&first, &second, &third] {
        assert!(
            h.auth
                .authenticate(Some(&format!("Bearer {}", t.access_token)))
                .await
                .is_ok()
        );
    }
    // Replaying an old refresh token revokes the whole session.
    assert!(matches!(
        h.auth.refresh(&first.refresh_token, "10.6.6.6").await,
        Err(AuthError::Unauthenticated(m)) if m.contains("already used")
    ));
    assert!(h.auth.refresh(&third.refresh_token, "10.0.0.1").await.is_err());
    for t in [&first, &second, &third] {
        assert!(
            h.auth
                .authenticate(Some(&format!("Bearer {}", t.access_token)))
                .await
                .is_err()
        );
    }
    assert!(h.events().await.iter().any(|e| e.starts_with("refresh_token.reused")));
    // A new login works; logout ends it.
    let fresh = h.auth.login("bob", "bob password 12", "10.0.0.1").await.unwrap();
    let bearer = format!("Bearer {}", fresh.access_token);
    let principal = h.auth.authenticate(Some(&bearer)).await.unwrap();
    h.auth.logout(&principal, "10.0.0.1").await.unwrap();
    assert!(h.auth.authenticate(Some(&bearer)).await.is_err());
    assert!(h.auth.refresh(&fresh.refresh_token, "10.0.0.1").await.is_err());
    // Access tokens expire; refresh tokens too.
    let session = h.auth.login("bob", "bob password 12", "10.0.0.1").await.unwrap();
    h.advance(Duration::from_secs(15 * 60));
    assert!(
        h.auth
            .authenticate(Some(&format!("Bearer {}", session.access_token)))
            .await
            .is_err()
    );
    let renewed = h.auth.refresh(&session.refresh_token, "10.0.0.1").await.unwrap();
    assert!(
        h.auth
            .authenticate(Some(&format!("Bearer {}", renewed.access_token)))
            .await
            .is_ok()
    );
    h.advance(Duration::from_secs(24 * 3600 + 1));
    assert!(h.auth.refresh(&renewed.refresh_token, "10.0.0.1").await.is_err());
    // Disabling a user ends its sessions at once.
    let live = h.auth.login("bob", "bob password 12", "10.0.0.1").await.unwrap();
    h.auth
        .update_user(
            "admin",
            "bob",
            UserChanges {
                disabled: Some(true),
                ..Default::default()
            },
        )
        .await
        .unwrap();
    assert!(
        h.auth
            .authenticate(Some(&format!("Bearer {}", live.access_token)))
            .await
            .is_err()
    );
    assert!(matches!(
        h.auth.login("bob", "bob password 12", "10.0.0.1").await,
        Err(AuthError::InvalidCredentials)
    ));
}

async fn signing_key_rotation_keeps_sessions_and_rotate_all_revokes_everything(backend: &str) {
    let h = Harness::new(backend).await;
    let first_kid = h.auth.jwks()["keys"][0]["kid"].as_str().unwrap().to_owned();
    let tour_agent = acgs_store::EntityName {
        entity_type: "Agent".into(),
        id: "ap-agent".into(),
    };
    let boot = h
        .auth
        .bootstrap(Some("admin password 1".into()), Some(tour_agent.clone()))
        .await
        .unwrap();
    assert!(boot.signing_key.is_none(), "the harness made the signing key already");
    let agent_key = boot.agent_key.clone().unwrap();
    // The agent key is bound to its agent; the gateway key to nobody, and it may decide on behalf of anyone.
    let agent = h.auth.authenticate(Some(&format!("Bearer {agent_key}"))).await.unwrap();
    assert_eq!(agent.entity.as_deref(), Some(&tour_agent));
    assert!(!agent.can(acgs_auth::Permission::DecisionsOnBehalf));
    let gateway_key = boot.gateway_key.clone().unwrap();
    let gateway = h
        .auth
        .authenticate(Some(&format!("Bearer {gateway_key}")))
        .await
        .unwrap();
    assert!(gateway.entity.is_none() && gateway.can(acgs_auth::Permission::DecisionsOnBehalf));
    assert_eq!(boot.admin.as_ref().unwrap().0, "admin");
    // A second bootstrap creates nothing.
    let again = h.auth.bootstrap(None, None).await.unwrap();
    assert!(again.signing_key.is_none() && again.admin.is_none() && again.agent_key.is_none());

    let before = h.auth.login("admin", "admin password 1", "10.0.0.1").await.unwrap();
    let kid = h.auth.rotate_signing_key("operator").await.unwrap();
    assert_ne!(kid, first_kid);
    // Tokens signed by the previous key still verify; new ones carry the new kid; both are published.
    assert!(
        h.auth
            .authenticate(Some(&format!("Bearer {}", before.access_token)))
            .await
            .is_ok()
    );
    let after = h.auth.login("admin", "admin password 1", "10.0.0.1").await.unwrap();
    let header = jsonwebtoken::decode_header(&after.access_token).unwrap();
    assert_eq!(header.kid.as_deref(), Some(kid.as_str()));
    assert_eq!(h.auth.jwks()["keys"].as_array().unwrap().len(), 2);
    // Refreshing a session started under the old key gives a token under the new one.
    let refreshed = h.auth.refresh(&before.refresh_token, "10.0.0.1").await.unwrap();
    assert_eq!(
        jsonwebtoken::decode_header(&refreshed.access_token)
            .unwrap()
            .kid
            .as_deref(),
        Some(kid.as_str())
    );
    // Once the longest token lifetime has passed the old key is gone.
    h.advance(Duration::from_secs(15 * 60 + 1));
    h.auth.reload().await.unwrap();
    assert_eq!(h.auth.jwks()["keys"].as_array().unwrap().len(), 1);

    // Incident: everything revoked at once.
    let live = h.auth.login("admin", "admin password 1", "10.0.0.1").await.unwrap();
    let agent = format!("Bearer {agent_key}");
    assert!(h.auth.authenticate(Some(&agent)).await.is_ok());
    let report = h.auth.rotate_all("operator", true).await.unwrap();
    assert!(report.sessions_revoked >= 1);
    assert_eq!(report.api_keys_revoked, 2, "the bootstrap's agent and gateway keys");
    assert!(
        h.auth
            .authenticate(Some(&format!("Bearer {}", live.access_token)))
            .await
            .is_err()
    );
    assert!(h.auth.refresh(&live.refresh_token, "10.0.0.1").await.is_err());
    assert!(h.auth.authenticate(Some(&agent)).await.is_err());
    assert_eq!(h.auth.jwks()["keys"].as_array().unwrap().len(), 1);
    assert_eq!(h.auth.jwks()["keys"][0]["kid"], report.signing_key.as_str());
    // Logging in again works under the new key.
    assert!(h.auth.login("admin", "admin password 1", "10.0.0.1").await.is_ok());
    let events = h.events().await;
    for expected in [
        "signing_key.created",
        "signing_key.rotated",
        "credentials.rotated_all",
        "user.created admin",
    ] {
        assert!(
            events.iter().any(|e| e.starts_with(expected)),
            "{expected} missing from {events:?}"
        );
    }
    // The bootstrap admin still has the bootstrap password until it changes it.
    assert_eq!(
        h.auth.security_audit().await.unwrap().admins_with_bootstrap_password,
        vec!["admin"]
    );
    let session = h.auth.login("admin", "admin password 1", "10.0.0.1").await.unwrap();
    let principal = h
        .auth
        .authenticate(Some(&format!("Bearer {}", session.access_token)))
        .await
        .unwrap();
    h.auth
        .change_password(&principal, "admin password 1", "a much better secret", "10.0.0.1")
        .await
        .unwrap();
    assert!(
        h.auth
            .security_audit()
            .await
            .unwrap()
            .admins_with_bootstrap_password
            .is_empty()
    );
    assert!(
        h.auth
            .authenticate(Some(&format!("Bearer {}", session.access_token)))
            .await
            .is_err()
    );
    assert!(h.auth.login("admin", "a much better secret", "10.0.0.1").await.is_ok());
}

async fn api_keys_authenticate_until_revoked_or_expired(backend: &str) {
    let h = Harness::new(backend).await;
    h.auth.bootstrap(None, None).await.unwrap();
    let roles: RoleSet = [Role::Agent].into_iter().collect();
    let (view, key) = h
        .auth
        .create_api_key("admin", "billing agent", roles.clone(), None)
        .await
        .unwrap();
    assert!(key.starts_with(&view.id));
    let bearer = format!("Bearer {key}");
    let principal = h.auth.authenticate(Some(&bearer)).await.unwrap();
    assert!(principal.can(Permission::DecisionsCreate));
    assert_eq!(principal.label(), format!("api_key:{}", view.id));
    // Wrong secret, wrong scheme, garbage.
    let wrong = format!("Bearer {}_{}", view.id, "A".repeat(43));
    for bad in [
        Some(wrong.as_str()),
        Some(key.as_str()),
        Some("Bearer nonsense"),
        Some("Basic x"),
        None,
    ] {
        assert!(
            matches!(h.auth.authenticate(bad).await, Err(AuthError::Unauthenticated(_))),
            "{bad:?}"
        );
    }
    // Use is recorded (at the next upkeep).
    h.auth.maintain().await.unwrap();
    let listed = h.auth.api_keys().await.unwrap();
    assert!(
        listed
            .iter()
            .find(|k| k.id == view.id)
            .unwrap()
            .last_used_at_us
            .is_some()
    );
    // The bootstrap's agent and gateway keys.
    assert!(h.auth.security_audit().await.unwrap().api_keys_never_used.len() == 2);
    h.auth.revoke_api_key("admin", &view.id).await.unwrap();
    assert!(h.auth.authenticate(Some(&bearer)).await.is_err());
    assert!(matches!(
        h.auth.revoke_api_key("admin", &view.id).await,
        Err(AuthError::NotFound(_))
    ));
    // An expiring key.
    let (expiring, key) = h
        .auth
        .create_api_key("admin", "temp", roles, Some(START_US + 60_000_000))
        .await
        .unwrap();
    let bearer = format!("Bearer {key}");
    assert!(h.auth.authenticate(Some(&bearer)).await.is_ok());
    h.advance(Duration::from_secs(61));
    assert!(h.auth.authenticate(Some(&bearer)).await.is_err());
    assert_eq!(
        h.auth.security_audit().await.unwrap().api_keys_expired,
        vec![expiring.id]
    );
    // A key created by another process (e.g. the CLI) is found on first use.
    let other = AuthService::new(
        h.store.clone(),
        h.master(),
        AuthSettings::default(),
        Arc::new(|| START_US),
    )
    .await
    .unwrap();
    let (_, elsewhere) = other
        .create_api_key("cli", "made elsewhere", [Role::Auditor].into_iter().collect(), None)
        .await
        .unwrap();
    h.advance(Duration::from_secs(2));
    assert!(h.auth.authenticate(Some(&format!("Bearer {elsewhere}"))).await.is_ok());
    let events = h.events().await;
    assert!(events.iter().filter(|e| e.starts_with("api_key.created")).count() >= 3);
    assert!(events.iter().any(|e| e.starts_with("api_key.revoked")));
}

async fn account_administration_rules(backend: &str) {
    let h = Harness::new(backend).await;
    let (view, generated) = h
        .auth
        .create_user("admin", "carol", None, [Role::Reviewer].into_iter().collect())
        .await
        .unwrap();
    let password = generated.unwrap();
    assert_eq!(view.roles, vec!["reviewer"]);
    assert!(h.auth.login("carol", &password, "10.0.0.1").await.is_ok());
    assert!(matches!(
        h.auth
            .create_user("admin", "carol", None, [Role::Agent].into_iter().collect())
            .await,
        Err(AuthError::Conflict(_))
    ));
    for bad in ["", "has space", "ünïcode", &"x".repeat(65)] {
        assert!(matches!(
            h.auth
                .create_user("admin", bad, None, [Role::Agent].into_iter().collect())
                .await,
            Err(AuthError::Invalid(_))
        ));
    }
    assert!(matches!(
        h.auth
            .create_user(
                "admin",
                "dave",
                Some("short".into()),
                [Role::Agent].into_iter().collect()
            )
            .await,
        Err(AuthError::Invalid(_))
    ));
    let updated = h
        .auth
        .update_user(
            "admin",
            "carol",
            UserChanges {
                roles: Some([Role::Auditor, Role::Council].into_iter().collect()),
                ..Default::default()
            },
        )
        .await
        .unwrap();
    assert_eq!(updated.roles, vec!["council", "auditor"]);
    // Roles take effect on the next request, even with a token issued before the change.
    let tokens = h.auth.login("carol", &password, "10.0.0.1").await.unwrap();
    h.auth
        .update_user(
            "admin",
            "carol",
            UserChanges {
                roles: Some([Role::Agent].into_iter().collect()),
                ..Default::default()
            },
        )
        .await
        .unwrap();
    let principal = h
        .auth
        .authenticate(Some(&format!("Bearer {}", tokens.access_token)))
        .await
        .unwrap();
    assert!(principal.can(Permission::DecisionsCreate) && !principal.can(Permission::AuditRead));
    assert!(matches!(
        h.auth.update_user("admin", "nobody", UserChanges::default()).await,
        Err(AuthError::NotFound(_))
    ));
    assert!(matches!(
        h.auth.update_user("admin", "carol", UserChanges::default()).await,
        Err(AuthError::Invalid(_))
    ));
}

async fn the_last_active_administrator_cannot_be_disabled_or_demoted(backend: &str) {
    let h = Harness::new(backend).await;
    h.user("root", &[Role::Admin], "root password 1").await;
    h.user("helper", &[Role::Auditor], "helper password 1").await;
    let demote = || UserChanges {
        roles: Some([Role::Auditor].into_iter().collect()),
        ..Default::default()
    };
    let disable = || UserChanges {
        disabled: Some(true),
        ..Default::default()
    };
    for changes in [demote(), disable()] {
        match h.auth.update_user("root", "root", changes).await {
            Err(AuthError::Conflict(message)) => assert!(message.contains("last active administrator"), "{message}"),
            other => panic!("the last administrator was changed: {other:?}"),
        }
    }
    let users = h.auth.users().await.unwrap();
    let root = users.iter().find(|u| u.username == "root").unwrap();
    assert!(
        !root.disabled && root.roles == vec!["admin"],
        "nothing was written: {root:?}"
    );
    // Other changes to the last administrator, and to other users, still work.
    h.auth
        .update_user(
            "root",
            "root",
            UserChanges {
                roles: Some([Role::Admin, Role::Auditor].into_iter().collect()),
                ..Default::default()
            },
        )
        .await
        .unwrap();
    h.auth.update_user("root", "helper", disable()).await.unwrap();
    // With a second active administrator, either may step down.
    h.auth
        .update_user(
            "root",
            "helper",
            UserChanges {
                roles: Some([Role::Admin].into_iter().collect()),
                disabled: Some(false),
                ..Default::default()
            },
        )
        .await
        .unwrap();
    h.auth.update_user("root", "root", disable()).await.unwrap();
    assert!(matches!(
        h.auth.update_user("helper", "helper", demote()).await,
        Err(AuthError::Conflict(_))
    ));
}

async fn own_passwords_are_changed_with_the_current_one_and_bad_usernames_are_not_logged(backend: &str) {
    let h = Harness::new(backend).await;
    h.user("root", &[Role::Admin], "root password 1").await;
    h.user("other", &[Role::Admin], "other password 1").await;
    let reset = || UserChanges {
        password: Some("a brand new password".into()),
        ..Default::default()
    };
    // An administrator's token alone cannot set its own password (a stolen token would take the account over).
    match h.auth.update_user("user:root", "root", reset()).await {
        Err(AuthError::Invalid(message)) => assert!(message.contains("/v1/auth/password"), "{message}"),
        other => panic!("an administrator reset its own password: {other:?}"),
    }
    assert!(h.auth.login("root", "root password 1", "10.0.0.1").await.is_ok());
    // Another administrator, or the host CLI, still can.
    h.auth.update_user("user:other", "root", reset()).await.unwrap();
    h.auth.update_user("cli:ops", "other", reset()).await.unwrap();
    assert!(h.auth.login("root", "a brand new password", "10.0.0.1").await.is_ok());

    // A login with a name no account can have is refused like any other, and recorded as a digest only.
    let huge = "u".repeat(100_000);
    for name in [huge.as_str(), "bad\u{0}name"] {
        assert!(matches!(
            h.auth.login(name, "whatever password", "10.0.0.2").await,
            Err(AuthError::InvalidCredentials)
        ));
    }
    let failed: Vec<String> = h
        .events()
        .await
        .into_iter()
        .filter(|e| e.starts_with("login.failed"))
        .collect();
    assert_eq!(failed.len(), 2, "{failed:?}");
    for event in &failed {
        assert!(
            event.starts_with("login.failed invalid-username:sha256:") && event.len() < 80,
            "{event}"
        );
    }
}

async fn a_lost_master_key_is_replaced_and_every_session_ends(backend: &str) {
    let h = Harness::new(backend).await;
    h.user("alice", &[Role::Auditor], "alice password 1").await;
    let (_, agent_key) = h
        .auth
        .create_api_key("admin", "bot", RoleSet::from_iter([Role::Agent]), None)
        .await
        .unwrap();
    let before = h.auth.login("alice", "alice password 1", "10.0.0.1").await.unwrap();

    // Another master key cannot open the stored signing key: no service starts with it.
    let clock_now = Arc::clone(&h.now);
    let clock: acgs_auth::Clock = Arc::new(move || clock_now.load(Ordering::Relaxed));
    let err = AuthService::new(
        h.store.clone(),
        MasterKey::generate().unwrap(),
        AuthSettings::default(),
        clock.clone(),
    )
    .await
    .unwrap_err();
    assert!(
        err.to_string().contains("does not decrypt with this master key"),
        "{err}"
    );

    // Replacing it: a new signing key under the new master key, every earlier key retired, every session ended.
    let (replaced, report) = AuthService::replace_master_key(
        h.store.clone(),
        MasterKey::generate().unwrap(),
        AuthSettings::default(),
        clock,
        "operator",
        false,
    )
    .await
    .unwrap();
    assert_eq!((report.sessions_revoked, report.api_keys_revoked), (1, 0));
    let keys = replaced.jwks()["keys"].as_array().unwrap().clone();
    assert_eq!(keys.len(), 1);
    assert_eq!(keys[0]["kid"], report.signing_key.as_str());
    assert!(
        replaced
            .authenticate(Some(&format!("Bearer {}", before.access_token)))
            .await
            .is_err()
    );
    assert!(replaced.refresh(&before.refresh_token, "10.0.0.1").await.is_err());
    assert!(
        replaced
            .authenticate(Some(&format!("Bearer {agent_key}")))
            .await
            .is_ok()
    );
    let after = replaced.login("alice", "alice password 1", "10.0.0.1").await.unwrap();
    assert!(
        replaced
            .authenticate(Some(&format!("Bearer {}", after.access_token)))
            .await
            .is_ok()
    );
    // The old master key no longer opens what signs.
    assert!(
        AuthService::new(
            h.store.clone(),
            h.master(),
            AuthSettings::default(),
            acgs_auth::system_clock()
        )
        .await
        .is_err()
    );
    assert!(h.events().await.iter().any(|e| e.starts_with("master_key.replaced ")));
}

macro_rules! on_both_backends {
    ($($name:ident),* $(,)?) => {
        mod sqlite {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn $name() {
                    super::$name("sqlite").await;
                }
            )*
        }
        mod postgres {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn $name() {
                    super::$name("postgres").await;
                }
            )*
        }
    };
}

/// An account bound to the registry entity the person is: the binding is stored, shown, in force for the person's
/// tokens, and can be removed.
async fn an_account_is_bound_to_its_registry_entity(backend: &str) {
    let h = Harness::new(backend).await;
    let (_, password) = h
        .auth
        .create_user("admin", "maria", None, [Role::Reviewer].into_iter().collect())
        .await
        .unwrap();
    let maria = acgs_store::EntityName {
        entity_type: "User".into(),
        id: "maria".into(),
    };
    let bind = |entity: Option<acgs_store::EntityName>| UserChanges {
        entity: Some(entity),
        ..Default::default()
    };
    let view = h
        .auth
        .update_user("admin", "maria", bind(Some(maria.clone())))
        .await
        .unwrap();
    assert_eq!(view.entity.as_ref(), Some(&maria));
    let login = h.auth.login("maria", &password.unwrap(), "10.0.0.1").await.unwrap();
    let principal = h
        .auth
        .authenticate(Some(&format!("Bearer {}", login.access_token)))
        .await
        .unwrap();
    assert_eq!(principal.entity.as_deref(), Some(&maria));
    let nameless = acgs_store::EntityName {
        entity_type: " ".into(),
        id: "maria".into(),
    };
    assert!(matches!(
        h.auth.update_user("admin", "maria", bind(Some(nameless))).await,
        Err(AuthError::Invalid(_))
    ));
    let view = h.auth.update_user("admin", "maria", bind(None)).await.unwrap();
    assert!(view.entity.is_none());
}

on_both_backends!(
    an_account_is_bound_to_its_registry_entity,
    login_lockout_and_unlock,
    refresh_rotation_and_reuse_detection,
    signing_key_rotation_keeps_sessions_and_rotate_all_revokes_everything,
    api_keys_authenticate_until_revoked_or_expired,
    account_administration_rules,
    the_last_active_administrator_cannot_be_disabled_or_demoted,
    own_passwords_are_changed_with_the_current_one_and_bad_usernames_are_not_logged,
    a_lost_master_key_is_replaced_and_every_session_ends,
);
