//! The authentication service: the check of each request's bearer credential (API key or access token) and of
//! its permission, here; logins, tokens and sessions in [`sessions`], users, API keys and the first-start
//! bootstrap in [`accounts`], signing keys and incident rotation in [`keys`], the security review in [`review`].
//! API keys and signing keys are cached in memory (reloaded every [`AuthSettings::cache_refresh`] and on a
//! miss); every security-relevant event is appended to the audit log before the operation answers.

use std::collections::HashMap;
use std::sync::atomic::{AtomicI64, Ordering};
use std::sync::{Arc, RwLock};
use std::time::Duration;

use acgs_store::{AuthStore, SecurityEvent};

use crate::credentials::{api_key_id, same_hash, sha256};
use crate::error::AuthError;
use crate::roles::{Permission, RoleSet};
use crate::signing::{KeyRing, MasterKey, TokenError};

mod accounts;
mod keys;
mod review;
mod sessions;

pub use accounts::{ApiKeyView, Bootstrap, UserChanges, UserView};
pub use keys::RotateAllReport;
pub use review::SecurityAudit;
pub use sessions::Tokens;

/// The current time in microseconds since the Unix epoch (injectable for tests).
pub type Clock = Arc<dyn Fn() -> i64 + Send + Sync>;

/// The system clock.
pub fn system_clock() -> Clock {
    Arc::new(|| {
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| i64::try_from(d.as_micros()).unwrap_or(i64::MAX))
            .unwrap_or_default()
    })
}

/// Tunable behaviour of the service (documented in `docs/security.md`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AuthSettings {
    /// Lifetime of an access token.
    pub access_token_ttl: Duration,
    /// Lifetime of a refresh token (each refresh issues a new one).
    pub refresh_token_ttl: Duration,
    /// A session ends this long after its login, however often it is refreshed.
    pub session_max_age: Duration,
    /// Failed logins for one username within [`AuthSettings::lockout_window`] that lock it.
    pub lockout_threshold: u32,
    /// The window failures are counted in.
    pub lockout_window: Duration,
    /// How long a lockout lasts.
    pub lockout_duration: Duration,
    /// Failed logins from one source address within the window after which it is refused (HTTP 429).
    pub source_threshold: u32,
    /// Signing keys older than this are reported as due for rotation.
    pub signing_key_max_age: Duration,
    /// How stale the in-memory API-key and signing-key caches may get (changes made elsewhere, e.g. by the CLI
    /// or another replica, are seen within this time).
    pub cache_refresh: Duration,
}

impl Default for AuthSettings {
    fn default() -> Self {
        Self {
            access_token_ttl: Duration::from_secs(15 * 60),
            refresh_token_ttl: Duration::from_secs(24 * 3600),
            session_max_age: Duration::from_secs(7 * 24 * 3600),
            lockout_threshold: 5,
            lockout_window: Duration::from_secs(15 * 60),
            lockout_duration: Duration::from_secs(15 * 60),
            source_threshold: 20,
            signing_key_max_age: Duration::from_secs(30 * 24 * 3600),
            cache_refresh: Duration::from_secs(10),
        }
    }
}

fn micros(d: Duration) -> i64 {
    i64::try_from(d.as_micros()).unwrap_or(i64::MAX)
}

/// Who a request comes from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Principal {
    /// A user (with a session) or an API key.
    pub kind: PrincipalKind,
    /// The roles in force.
    pub roles: RoleSet,
    /// The registry entity it is bound to (an API key decides for this principal only), if any.
    pub entity: Option<Arc<acgs_store::EntityName>>,
}

/// The two kinds of principal.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PrincipalKind {
    /// A user authenticated with an access token.
    User {
        /// User id.
        id: String,
        /// Username.
        username: String,
        /// The login session the token belongs to.
        session_id: String,
    },
    /// A machine client authenticated with an API key.
    ApiKey {
        /// The key's id (visible prefix).
        id: String,
        /// The key's name.
        name: String,
    },
}

impl Principal {
    /// `user:<username>` or `api_key:<id>`, as recorded in audit events.
    pub fn label(&self) -> String {
        match &self.kind {
            PrincipalKind::User { username, .. } => format!("user:{username}"),
            PrincipalKind::ApiKey { id, .. } => format!("api_key:{id}"),
        }
    }

    /// Whether the roles grant `permission`.
    pub fn can(&self, permission: Permission) -> bool {
        self.roles.allows(permission)
    }
}

/// An API key as cached for the request path.
#[derive(Debug)]
struct CachedApiKey {
    name: String,
    secret_sha256: [u8; 32],
    roles: RoleSet,
    expires_at_us: Option<i64>,
    revoked: bool,
    entity: Option<Arc<acgs_store::EntityName>>,
    /// Latest use seen by this process, and the latest one written to the store.
    last_used_us: AtomicI64,
    flushed_us: AtomicI64,
}

/// The authentication service. Share it behind an `Arc`.
pub struct AuthService {
    store: Arc<dyn AuthStore>,
    master: MasterKey,
    settings: AuthSettings,
    clock: Clock,
    keys: RwLock<Arc<KeyRing>>,
    api_keys: RwLock<Arc<HashMap<String, Arc<CachedApiKey>>>>,
    /// When a cache miss last forced a reload (µs): misses reload at most once a second.
    last_miss_reload_us: AtomicI64,
}

impl std::fmt::Debug for AuthService {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AuthService")
            .field("settings", &self.settings)
            .finish_non_exhaustive()
    }
}

/// Roles by name; unknown names are refused.
fn roles_of(names: &[String]) -> Result<RoleSet, AuthError> {
    RoleSet::parse(names).map_err(AuthError::Invalid)
}

fn check_username(username: &str) -> Result<(), AuthError> {
    let ok = !username.is_empty()
        && username.len() <= 64
        && username
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-' | '@'));
    if ok {
        Ok(())
    } else {
        Err(AuthError::Invalid(format!(
            "invalid username `{username}` (1-64 characters: letters, digits, `.`, `_`, `-`, `@`)"
        )))
    }
}

/// Parse role names from a request or the command line.
pub fn parse_roles(names: &[String]) -> Result<RoleSet, AuthError> {
    let roles = roles_of(names)?;
    if roles.is_empty() {
        return Err(AuthError::Invalid("give at least one role".into()));
    }
    Ok(roles)
}

impl AuthService {
    /// Load the signing keys and API keys from `store`.
    pub async fn new(
        store: Arc<dyn AuthStore>,
        master: MasterKey,
        settings: AuthSettings,
        clock: Clock,
    ) -> Result<Self, AuthError> {
        let service = Self {
            store,
            master,
            settings,
            clock,
            keys: RwLock::new(Arc::new(KeyRing::new(&[], &MasterKey::generate()?, 0)?)),
            api_keys: RwLock::new(Arc::new(HashMap::new())),
            last_miss_reload_us: AtomicI64::new(i64::MIN),
        };
        service.reload().await?;
        Ok(service)
    }

    /// The settings in force.
    pub fn settings(&self) -> &AuthSettings {
        &self.settings
    }

    /// The current time (µs).
    pub fn now_us(&self) -> i64 {
        (self.clock)()
    }

    fn ring(&self) -> Arc<KeyRing> {
        self.keys
            .read()
            .map(|k| Arc::clone(&k))
            .unwrap_or_else(|p| Arc::clone(&p.into_inner()))
    }

    fn api_key_cache(&self) -> Arc<HashMap<String, Arc<CachedApiKey>>> {
        self.api_keys
            .read()
            .map(|k| Arc::clone(&k))
            .unwrap_or_else(|p| Arc::clone(&p.into_inner()))
    }

    /// Reload the signing keys and the API keys from the store.
    pub async fn reload(&self) -> Result<(), AuthError> {
        self.reload_keys().await?;
        self.reload_api_keys().await
    }

    async fn reload_keys(&self) -> Result<(), AuthError> {
        let records = self.store.signing_keys().await?;
        let ring = Arc::new(KeyRing::new(&records, &self.master, self.now_us())?);
        match self.keys.write() {
            Ok(mut k) => *k = ring,
            Err(p) => *p.into_inner() = ring,
        }
        Ok(())
    }

    async fn reload_api_keys(&self) -> Result<(), AuthError> {
        let records = self.store.api_keys().await?;
        let old = self.api_key_cache();
        let map: HashMap<String, Arc<CachedApiKey>> = records
            .into_iter()
            .map(|r| {
                let stored = r.last_used_at_us.unwrap_or(0);
                let seen = old.get(&r.id).map_or(0, |k| k.last_used_us.load(Ordering::Relaxed));
                let flushed = old
                    .get(&r.id)
                    .map_or(stored, |k| k.flushed_us.load(Ordering::Relaxed).max(stored));
                let key = CachedApiKey {
                    name: r.name,
                    secret_sha256: r.secret_sha256,
                    roles: RoleSet::from_stored(&r.roles),
                    expires_at_us: r.expires_at_us,
                    revoked: r.revoked_at_us.is_some(),
                    entity: r.entity.map(Arc::new),
                    last_used_us: AtomicI64::new(seen.max(stored)),
                    flushed_us: AtomicI64::new(flushed),
                };
                (r.id, Arc::new(key))
            })
            .collect();
        match self.api_keys.write() {
            Ok(mut k) => *k = Arc::new(map),
            Err(p) => *p.into_inner() = Arc::new(map),
        }
        Ok(())
    }

    /// Reload after a cache miss, at most once a second (misses may be an attacker's guesses).
    async fn reload_after_miss(&self) -> bool {
        let now = self.now_us();
        let last = self.last_miss_reload_us.load(Ordering::Relaxed);
        if now.saturating_sub(last) < 1_000_000
            || self
                .last_miss_reload_us
                .compare_exchange(last, now, Ordering::Relaxed, Ordering::Relaxed)
                .is_err()
        {
            return false;
        }
        self.reload().await.is_ok()
    }

    /// Periodic upkeep: reload the caches, write API keys' last use, and purge expired refresh tokens and old
    /// failed logins (older than a day beyond the longest window that reads them).
    pub async fn maintain(&self) -> Result<(), AuthError> {
        let used: Vec<(String, i64)> = self
            .api_key_cache()
            .iter()
            .filter_map(|(id, k)| {
                let seen = k.last_used_us.load(Ordering::Relaxed);
                (seen > k.flushed_us.load(Ordering::Relaxed)).then(|| {
                    k.flushed_us.store(seen, Ordering::Relaxed);
                    (id.clone(), seen)
                })
            })
            .collect();
        if !used.is_empty() {
            self.store.record_api_key_use(&used).await?;
        }
        self.reload().await?;
        let keep = micros(self.settings.lockout_window.max(Duration::from_secs(24 * 3600))) + 24 * 3600 * 1_000_000;
        self.store.purge_auth_records(self.now_us() - keep).await?;
        Ok(())
    }

    /// Append a security event to the audit log.
    pub async fn record(
        &self,
        event: &str,
        actor: Option<&str>,
        subject: Option<&str>,
        source: Option<&str>,
        detail: Option<String>,
    ) -> Result<(), AuthError> {
        metrics::counter!("acgs_auth_security_events_total", "event" => event.to_owned()).increment(1);
        self.store
            .record_security_event(
                &SecurityEvent {
                    event: event.to_owned(),
                    actor: actor.map(str::to_owned),
                    subject: subject.map(str::to_owned),
                    source: source.map(str::to_owned),
                    detail,
                },
                self.now_us(),
            )
            .await?;
        Ok(())
    }

    /// Who `authorization` (the `Authorization` header's value) authenticates.
    pub async fn authenticate(&self, authorization: Option<&str>) -> Result<Principal, AuthError> {
        let value = authorization.ok_or_else(|| AuthError::Unauthenticated("no credentials".into()))?;
        let token = value
            .split_once(' ')
            .filter(|(scheme, _)| scheme.eq_ignore_ascii_case("bearer"))
            .map(|(_, t)| t.trim())
            .ok_or_else(|| AuthError::Unauthenticated("the Authorization header is not `Bearer <token>`".into()))?;
        if let Some(id) = api_key_id(token) {
            return self.authenticate_api_key(id, token).await;
        }
        if token.split('.').count() == 3 {
            return self.authenticate_access_token(token).await;
        }
        Err(AuthError::Unauthenticated(
            "the bearer credential is neither an API key nor an access token".into(),
        ))
    }

    async fn authenticate_api_key(&self, id: &str, key: &str) -> Result<Principal, AuthError> {
        let mut cached = self.api_key_cache().get(id).cloned();
        if cached.is_none() && self.reload_after_miss().await {
            cached = self.api_key_cache().get(id).cloned();
        }
        let cached = cached.ok_or_else(|| AuthError::Unauthenticated(format!("unknown API key `{id}`")))?;
        if !same_hash(&sha256(key), &cached.secret_sha256) {
            return Err(AuthError::Unauthenticated(format!("wrong secret for API key `{id}`")));
        }
        let now = self.now_us();
        if cached.revoked {
            return Err(AuthError::Unauthenticated(format!("API key `{id}` is revoked")));
        }
        if cached.expires_at_us.is_some_and(|t| t <= now) {
            return Err(AuthError::Unauthenticated(format!("API key `{id}` expired")));
        }
        cached.last_used_us.fetch_max(now, Ordering::Relaxed);
        Ok(Principal {
            kind: PrincipalKind::ApiKey {
                id: id.to_owned(),
                name: cached.name.clone(),
            },
            roles: cached.roles.clone(),
            entity: cached.entity.clone(),
        })
    }

    async fn authenticate_access_token(&self, token: &str) -> Result<Principal, AuthError> {
        let now = self.now_us();
        let claims = match self.ring().verify(token, now) {
            Err(TokenError::UnknownKey(_)) if self.reload_after_miss().await => self.ring().verify(token, now),
            other => other,
        }
        .map_err(|e| AuthError::Unauthenticated(e.to_string()))?;
        let session = self
            .store
            .session(&claims.sid)
            .await?
            .ok_or_else(|| AuthError::Unauthenticated("the token's session does not exist".into()))?;
        if session.revoked_at_us.is_some() {
            return Err(AuthError::Unauthenticated(format!(
                "the token's session was revoked ({})",
                session.revoked_reason.as_deref().unwrap_or("no reason")
            )));
        }
        if session.expires_at_us <= now || session.user_id != claims.sub {
            return Err(AuthError::Unauthenticated("the token's session ended".into()));
        }
        let user = self
            .store
            .user_by_id(&claims.sub)
            .await?
            .ok_or_else(|| AuthError::Unauthenticated("the token's user does not exist".into()))?;
        if user.disabled {
            return Err(AuthError::Unauthenticated(format!(
                "user `{}` is disabled",
                user.username
            )));
        }
        Ok(Principal {
            kind: PrincipalKind::User {
                id: user.id,
                username: user.username,
                session_id: session.id,
            },
            roles: RoleSet::from_stored(&user.roles),
            entity: user.entity.map(Arc::new),
        })
    }

    /// Check that `principal` may do what `permission` covers.
    pub fn authorize(&self, principal: &Principal, permission: Permission) -> Result<(), AuthError> {
        if principal.can(permission) {
            Ok(())
        } else {
            Err(AuthError::Forbidden {
                principal: principal.label(),
                permission: permission.as_str().to_owned(),
            })
        }
    }

    /// The current JSON Web Key Set.
    pub fn jwks(&self) -> serde_json::Value {
        self.ring().jwks(self.now_us())
    }
}
