//! The authentication service: logins with lockout, refresh-token rotation with reuse detection, logouts, the
//! check of each request's bearer credential (API key or access token), account and API-key administration,
//! signing-key rotation and the first-start bootstrap. API keys and signing keys are cached in memory (reloaded
//! every [`AuthSettings::cache_refresh`] and on a miss); every security-relevant event is appended to the audit
//! log before the operation answers.

use std::collections::HashMap;
use std::sync::atomic::{AtomicI64, Ordering};
use std::sync::{Arc, RwLock};
use std::time::Duration;

use acgs_store::{
    ApiKeyRecord, AuthStore, RefreshOutcome, RefreshTokenRecord, SecurityEvent, SessionRecord, UserRecord,
};
use serde::Serialize;

use crate::credentials::{
    api_key_id, check_password_policy, decoy_password_hash, generate_api_key, generate_password,
    generate_refresh_token, hash_password, is_refresh_token, same_hash, sha256, verify_password,
};
use crate::error::AuthError;
use crate::roles::{Permission, Role, RoleSet};
use crate::signing::{AccessClaims, KeyRing, MasterKey, TOKEN_ISSUER, TokenError, new_signing_key};

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

/// Tokens handed out by a login or a refresh.
#[derive(Debug, Clone, Serialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct Tokens {
    /// The access token (a JWT; send it as `Authorization: Bearer …`).
    pub access_token: String,
    /// Always `Bearer`.
    pub token_type: &'static str,
    /// Seconds until the access token expires.
    pub expires_in: u64,
    /// The refresh token: use it once, at `POST /v1/auth/refresh`, for the next pair.
    pub refresh_token: String,
    /// Seconds until the refresh token expires.
    pub refresh_expires_in: u64,
}

/// A user as shown to administrators (no password hash).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct UserView {
    /// User id.
    pub id: String,
    /// Username.
    pub username: String,
    /// Roles.
    pub roles: Vec<String>,
    /// Disabled users cannot log in.
    pub disabled: bool,
    /// Still the password generated (or given) at bootstrap.
    pub bootstrap_password: bool,
    /// Creation time (µs since the epoch).
    pub created_at_us: i64,
    /// Last password change (µs).
    pub password_changed_at_us: i64,
    /// Locked after failed logins until then (µs), if locked now.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub locked_until_us: Option<i64>,
}

/// An API key as shown to administrators (never its secret).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct ApiKeyView {
    /// The key's id: the visible prefix of the key.
    pub id: String,
    /// What it is for.
    pub name: String,
    /// Roles.
    pub roles: Vec<String>,
    /// Who created it.
    pub created_by: String,
    /// Creation time (µs).
    pub created_at_us: i64,
    /// Expiry (µs), if any.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub expires_at_us: Option<i64>,
    /// Revocation time (µs), if revoked.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub revoked_at_us: Option<i64>,
    /// Last use (µs, recorded at most every few seconds), if ever used.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub last_used_at_us: Option<i64>,
}

impl From<&ApiKeyRecord> for ApiKeyView {
    fn from(k: &ApiKeyRecord) -> Self {
        Self {
            id: k.id.clone(),
            name: k.name.clone(),
            roles: k.roles.clone(),
            created_by: k.created_by.clone(),
            created_at_us: k.created_at_us,
            expires_at_us: k.expires_at_us,
            revoked_at_us: k.revoked_at_us,
            last_used_at_us: k.last_used_at_us,
        }
    }
}

/// Changes to a user (absent fields stay as they are).
#[derive(Debug, Clone, Default)]
pub struct UserChanges {
    /// New roles.
    pub roles: Option<RoleSet>,
    /// Disable or enable.
    pub disabled: Option<bool>,
    /// A new password (set by an administrator: it counts as a password the user has not chosen).
    pub password: Option<String>,
}

/// What the first start created.
#[derive(Debug, Clone, Default)]
pub struct Bootstrap {
    /// A signing key was created (none verified).
    pub signing_key: Option<String>,
    /// The administrator account and its password (shown once), if the store had no users.
    pub admin: Option<(String, String)>,
    /// An API key with the `agent` role for trying the API (shown once), created with the administrator.
    pub agent_key: Option<String>,
}

/// What `rotate_all` did.
#[derive(Debug, Clone, Serialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct RotateAllReport {
    /// Sessions revoked (their refresh and access tokens stop working).
    pub sessions_revoked: u64,
    /// API keys revoked (only when asked for).
    pub api_keys_revoked: u64,
    /// The new signing key; every earlier key is retired at once.
    pub signing_key: String,
}

/// Findings of `acgs security audit` that come from the credential store.
#[derive(Debug, Clone, Default, Serialize)]
pub struct SecurityAudit {
    /// Usernames locked now, with the time they unlock (µs).
    pub locked: Vec<(String, i64)>,
    /// Usernames with at least the lockout threshold of failed logins in the last 24 hours.
    pub failed_login_bursts_by_user: Vec<(String, i64)>,
    /// Source addresses with at least the source threshold of failed logins in the last 24 hours.
    pub failed_login_bursts_by_source: Vec<(String, i64)>,
    /// Live API keys never used.
    pub api_keys_never_used: Vec<String>,
    /// API keys past their expiry and not revoked.
    pub api_keys_expired: Vec<String>,
    /// The signing key, if older than the rotation schedule: (kid, age in days).
    pub signing_key_due: Option<(String, i64)>,
    /// Administrators still using the bootstrap password.
    pub admins_with_bootstrap_password: Vec<String>,
}

impl SecurityAudit {
    /// Whether anything needs attention.
    pub fn is_clean(&self) -> bool {
        self.locked.is_empty()
            && self.failed_login_bursts_by_user.is_empty()
            && self.failed_login_bursts_by_source.is_empty()
            && self.api_keys_never_used.is_empty()
            && self.api_keys_expired.is_empty()
            && self.signing_key_due.is_none()
            && self.admins_with_bootstrap_password.is_empty()
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

    /// Recover from a lost (or compromised) master key: with `master` a new master key, revoke every session,
    /// put a new signing key encrypted under `master` in force and retire every earlier one at once (their
    /// private halves, sealed under the old master key, are never needed again), record it, and return the
    /// service. Every access token stops working; API keys keep working unless `revoke_api_keys`.
    pub async fn replace_master_key(
        store: Arc<dyn AuthStore>,
        master: MasterKey,
        settings: AuthSettings,
        clock: Clock,
        actor: &str,
        revoke_api_keys: bool,
    ) -> Result<(Self, RotateAllReport), AuthError> {
        let now = clock();
        let sessions_revoked = store.revoke_sessions(None, now, "master key replaced").await?;
        let mut api_keys_revoked = 0;
        if revoke_api_keys {
            for key in store.api_keys().await?.iter().filter(|k| k.revoked_at_us.is_none()) {
                if store.revoke_api_key(&key.id, now).await? {
                    api_keys_revoked += 1;
                }
            }
        }
        let record = new_signing_key(&master, now)?;
        store.add_signing_key(&record, now).await?;
        let service = Self::new(store, master, settings, clock).await?;
        service
            .record(
                "master_key.replaced",
                Some(actor),
                Some(&record.kid),
                None,
                Some(format!(
                    "{sessions_revoked} sessions and {api_keys_revoked} API keys revoked; every earlier signing key retired"
                )),
            )
            .await?;
        Ok((
            service,
            RotateAllReport {
                sessions_revoked,
                api_keys_revoked,
                signing_key: record.kid,
            },
        ))
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
            .record_security_event(&SecurityEvent {
                event: event.to_owned(),
                actor: actor.map(str::to_owned),
                subject: subject.map(str::to_owned),
                source: source.map(str::to_owned),
                detail,
                recorded_at_us: self.now_us(),
            })
            .await?;
        Ok(())
    }

    /// Create what a first start needs: a signing key if none is in force, and — if there are no users at
    /// all — an administrator (with `admin_password`, or a generated one) and an agent API key for trying the
    /// API. Credentials are returned once and never stored in the clear.
    pub async fn bootstrap(&self, admin_password: Option<String>) -> Result<Bootstrap, AuthError> {
        let mut done = Bootstrap {
            signing_key: self.ensure_signing_key().await?,
            ..Bootstrap::default()
        };
        if self.store.users().await?.is_empty() {
            let password = match admin_password {
                Some(p) => {
                    check_password_policy(&p)?;
                    p
                }
                None => generate_password()?,
            };
            let now = self.now_us();
            let admin = UserRecord {
                id: uuid::Uuid::now_v7().to_string(),
                username: "admin".into(),
                password_hash: hash_password(&password)?,
                roles: vec![Role::Admin.as_str().to_owned()],
                disabled: false,
                bootstrap_password: true,
                created_at_us: now,
                password_changed_at_us: now,
            };
            self.store.create_user(&admin).await?;
            self.record(
                "user.created",
                Some("bootstrap"),
                Some("admin"),
                None,
                Some("roles admin".into()),
            )
            .await?;
            let (_, key) = self
                .create_api_key(
                    "bootstrap",
                    "tour agent (bootstrap)",
                    RoleSet::from_iter([Role::Agent]),
                    None,
                )
                .await?;
            done.admin = Some(("admin".into(), password));
            done.agent_key = Some(key);
        }
        Ok(done)
    }

    /// Create a signing key if none signs; returns its id if one was created.
    pub async fn ensure_signing_key(&self) -> Result<Option<String>, AuthError> {
        if self.ring().signing_kid().is_some() {
            return Ok(None);
        }
        let kid = self.add_signing_key(self.now_us()).await?;
        self.record("signing_key.created", Some("bootstrap"), Some(&kid), None, None)
            .await?;
        Ok(Some(kid))
    }

    async fn add_signing_key(&self, retire_previous_after_us: i64) -> Result<String, AuthError> {
        let record = new_signing_key(&self.master, self.now_us())?;
        self.store.add_signing_key(&record, retire_previous_after_us).await?;
        self.reload_keys().await?;
        Ok(record.kid)
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

    /// Log in with a username and password from `source`. Too many failures lock the username; too many from
    /// one source refuse the source for a while.
    pub async fn login(&self, username: &str, password: &str, source: &str) -> Result<Tokens, AuthError> {
        let now = self.now_us();
        let window_start = now - micros(self.settings.lockout_window);
        let from_source = self.store.login_failures_from_source(source, window_start).await?;
        if from_source >= i64::from(self.settings.source_threshold) {
            metrics::counter!("acgs_auth_login_refusals_total", "reason" => "source_throttled").increment(1);
            return Err(AuthError::Throttled {
                retry_after_s: self.settings.lockout_window.as_secs(),
            });
        }
        if let Some(until_us) = self.store.lockout_until(username).await?.filter(|t| *t > now) {
            metrics::counter!("acgs_auth_login_refusals_total", "reason" => "locked").increment(1);
            return Err(AuthError::Locked { until_us });
        }
        let user = self.store.user_by_name(username).await?;
        let hash = user
            .as_ref()
            .map_or(decoy_password_hash(), |u| u.password_hash.as_str());
        let password_ok = verify_password(password, hash);
        let user = match user {
            Some(u) if password_ok && !u.disabled => u,
            found => {
                let reason = match &found {
                    Some(u) if u.disabled && password_ok => "account disabled",
                    Some(_) => "wrong password",
                    None => "unknown username",
                };
                return Err(self.failed_login(username, source, reason, now, window_start).await?);
            }
        };
        self.store.clear_login_failures(username).await?;
        let tokens = self.start_session(&user, source, now).await?;
        metrics::counter!("acgs_auth_logins_total").increment(1);
        self.record(
            "login.succeeded",
            Some(&user.username),
            Some(&user.username),
            Some(source),
            None,
        )
        .await?;
        Ok(tokens)
    }

    /// Count a failed login, lock the username if it crossed the threshold, and say why it failed.
    async fn failed_login(
        &self,
        username: &str,
        source: &str,
        reason: &str,
        now: i64,
        window_start: i64,
    ) -> Result<AuthError, AuthError> {
        metrics::counter!("acgs_auth_login_failures_total").increment(1);
        self.store.record_login_failure(username, source, now).await?;
        self.record(
            "login.failed",
            None,
            Some(username),
            Some(source),
            Some(reason.to_owned()),
        )
        .await?;
        let failures = self.store.login_failures_for_user(username, window_start).await?;
        if failures >= i64::from(self.settings.lockout_threshold) {
            let until_us = now + micros(self.settings.lockout_duration);
            self.store.set_lockout(username, now, until_us).await?;
            metrics::counter!("acgs_auth_lockouts_total").increment(1);
            self.record(
                "login.locked",
                None,
                Some(username),
                Some(source),
                Some(format!(
                    "{failures} failed logins within {} s",
                    self.settings.lockout_window.as_secs()
                )),
            )
            .await?;
        }
        Ok(AuthError::InvalidCredentials)
    }

    async fn start_session(&self, user: &UserRecord, source: &str, now: i64) -> Result<Tokens, AuthError> {
        let session = SessionRecord {
            id: uuid::Uuid::now_v7().to_string(),
            user_id: user.id.clone(),
            source: source.to_owned(),
            created_at_us: now,
            expires_at_us: now + micros(self.settings.session_max_age),
            revoked_at_us: None,
            revoked_reason: None,
        };
        let refresh = generate_refresh_token()?;
        let record = self.refresh_record(&refresh, &session, now);
        self.store.create_session(&session, &record).await?;
        self.tokens(user, &session, refresh, record.expires_at_us, now)
    }

    fn refresh_record(&self, token: &str, session: &SessionRecord, now: i64) -> RefreshTokenRecord {
        RefreshTokenRecord {
            token_sha256: sha256(token),
            session_id: session.id.clone(),
            issued_at_us: now,
            expires_at_us: (now + micros(self.settings.refresh_token_ttl)).min(session.expires_at_us),
            replaced_at_us: None,
        }
    }

    fn tokens(
        &self,
        user: &UserRecord,
        session: &SessionRecord,
        refresh_token: String,
        refresh_expires_us: i64,
        now: i64,
    ) -> Result<Tokens, AuthError> {
        let ttl = self.settings.access_token_ttl.as_secs();
        let exp = (now / 1_000_000 + i64::try_from(ttl).unwrap_or(i64::MAX)).min(session.expires_at_us / 1_000_000);
        let claims = AccessClaims {
            iss: TOKEN_ISSUER.into(),
            aud: TOKEN_ISSUER.into(),
            sub: user.id.clone(),
            name: user.username.clone(),
            roles: user.roles.clone(),
            sid: session.id.clone(),
            iat: now / 1_000_000,
            exp,
            jti: uuid::Uuid::now_v7().to_string(),
        };
        Ok(Tokens {
            access_token: self.ring().sign(&claims)?,
            token_type: "Bearer",
            expires_in: u64::try_from(exp - now / 1_000_000).unwrap_or(0),
            refresh_token,
            refresh_expires_in: u64::try_from((refresh_expires_us - now) / 1_000_000).unwrap_or(0),
        })
    }

    /// Use a refresh token: it is replaced by a new one (and a new access token). Using one that was used
    /// already means someone else holds a copy: the whole session is revoked.
    pub async fn refresh(&self, refresh_token: &str, source: &str) -> Result<Tokens, AuthError> {
        if !is_refresh_token(refresh_token) {
            return Err(AuthError::Unauthenticated("not a refresh token".into()));
        }
        let now = self.now_us();
        let next = generate_refresh_token()?;
        let placeholder = SessionRecord {
            id: String::new(),
            user_id: String::new(),
            source: String::new(),
            created_at_us: now,
            expires_at_us: i64::MAX,
            revoked_at_us: None,
            revoked_reason: None,
        };
        let mut record = self.refresh_record(&next, &placeholder, now);
        match self
            .store
            .rotate_refresh_token(&sha256(refresh_token), &record, now)
            .await?
        {
            RefreshOutcome::Rotated(session) => {
                let user = self
                    .store
                    .user_by_id(&session.user_id)
                    .await?
                    .filter(|u| !u.disabled)
                    .ok_or_else(|| AuthError::Unauthenticated("the session's user is disabled or gone".into()))?;
                record.expires_at_us = record.expires_at_us.min(session.expires_at_us);
                self.tokens(&user, &session, next, record.expires_at_us, now)
            }
            RefreshOutcome::Reused(session) => {
                self.store
                    .revoke_session(&session.id, now, "refresh token reused")
                    .await?;
                metrics::counter!("acgs_auth_refresh_reuse_total").increment(1);
                self.record(
                    "refresh_token.reused",
                    None,
                    Some(&session.id),
                    Some(source),
                    Some("a used refresh token was presented again; the session is revoked".into()),
                )
                .await?;
                Err(AuthError::Unauthenticated(
                    "refresh token already used; the session is revoked".into(),
                ))
            }
            RefreshOutcome::Expired(_) => Err(AuthError::Unauthenticated("refresh token expired or revoked".into())),
            RefreshOutcome::Unknown => Err(AuthError::Unauthenticated("unknown refresh token".into())),
        }
    }

    /// End the principal's session (its refresh and access tokens stop working).
    pub async fn logout(&self, principal: &Principal, source: &str) -> Result<(), AuthError> {
        match &principal.kind {
            PrincipalKind::User {
                username, session_id, ..
            } => {
                self.store.revoke_session(session_id, self.now_us(), "logout").await?;
                self.record("logout", Some(username), Some(session_id), Some(source), None)
                    .await
            }
            PrincipalKind::ApiKey { .. } => Err(AuthError::Invalid(
                "API keys have no session to end; an administrator revokes them".into(),
            )),
        }
    }

    /// Change one's own password (users only). Every session of the user ends, this one included: log in
    /// again with the new password.
    pub async fn change_password(
        &self,
        principal: &Principal,
        current: &str,
        new: &str,
        source: &str,
    ) -> Result<(), AuthError> {
        let PrincipalKind::User { id, .. } = &principal.kind else {
            return Err(AuthError::Invalid("API keys have no password".into()));
        };
        let mut user = self
            .store
            .user_by_id(id)
            .await?
            .ok_or_else(|| AuthError::NotFound("no such user".into()))?;
        if !verify_password(current, &user.password_hash) {
            return Err(AuthError::Invalid("the current password is wrong".into()));
        }
        check_password_policy(new)?;
        if current == new {
            return Err(AuthError::Invalid("the new password is the current one".into()));
        }
        let now = self.now_us();
        user.password_hash = hash_password(new)?;
        user.bootstrap_password = false;
        user.password_changed_at_us = now;
        self.store.update_user(&user).await?;
        self.store
            .revoke_sessions(Some(&user.id), now, "password changed")
            .await?;
        self.record(
            "password.changed",
            Some(&user.username),
            Some(&user.username),
            Some(source),
            None,
        )
        .await
    }

    /// Every user, with their lock status.
    pub async fn users(&self) -> Result<Vec<UserView>, AuthError> {
        let now = self.now_us();
        let locked: HashMap<String, i64> = self.store.lockouts(now).await?.into_iter().collect();
        Ok(self
            .store
            .users()
            .await?
            .into_iter()
            .map(|u| UserView {
                locked_until_us: locked.get(&u.username).copied(),
                id: u.id,
                username: u.username,
                roles: u.roles,
                disabled: u.disabled,
                bootstrap_password: u.bootstrap_password,
                created_at_us: u.created_at_us,
                password_changed_at_us: u.password_changed_at_us,
            })
            .collect())
    }

    /// Create a user. Without a password one is generated and returned (once).
    pub async fn create_user(
        &self,
        actor: &str,
        username: &str,
        password: Option<String>,
        roles: RoleSet,
    ) -> Result<(UserView, Option<String>), AuthError> {
        check_username(username)?;
        let (password, generated) = match password {
            Some(p) => {
                check_password_policy(&p)?;
                (p, None)
            }
            None => {
                let p = generate_password()?;
                (p.clone(), Some(p))
            }
        };
        let now = self.now_us();
        let user = UserRecord {
            id: uuid::Uuid::now_v7().to_string(),
            username: username.to_owned(),
            password_hash: hash_password(&password)?,
            roles: roles.names(),
            disabled: false,
            bootstrap_password: false,
            created_at_us: now,
            password_changed_at_us: now,
        };
        self.store.create_user(&user).await?;
        self.record(
            "user.created",
            Some(actor),
            Some(username),
            None,
            Some(format!("roles {}", roles.names().join(","))),
        )
        .await?;
        let view = self
            .users()
            .await?
            .into_iter()
            .find(|u| u.username == username)
            .ok_or_else(|| AuthError::Internal("a created user is missing".into()))?;
        Ok((view, generated))
    }

    /// Change a user's roles, disabled flag or password. Disabling (or a new password) ends the user's
    /// sessions.
    pub async fn update_user(&self, actor: &str, username: &str, changes: UserChanges) -> Result<UserView, AuthError> {
        let mut user = self
            .store
            .user_by_name(username)
            .await?
            .ok_or_else(|| AuthError::NotFound(format!("no user `{username}`")))?;
        let now = self.now_us();
        let mut what = Vec::new();
        let mut end_sessions = None;
        if let Some(roles) = changes.roles {
            what.push(format!("roles {}", roles.names().join(",")));
            user.roles = roles.names();
        }
        if let Some(disabled) = changes.disabled {
            if disabled && !user.disabled {
                end_sessions = Some("user disabled");
            }
            what.push(if disabled { "disabled" } else { "enabled" }.to_owned());
            user.disabled = disabled;
        }
        if let Some(password) = changes.password {
            check_password_policy(&password)?;
            user.password_hash = hash_password(&password)?;
            user.password_changed_at_us = now;
            user.bootstrap_password = false;
            end_sessions = Some("password reset");
            what.push("password reset".to_owned());
        }
        if what.is_empty() {
            return Err(AuthError::Invalid(
                "nothing to change (roles, disabled or password)".into(),
            ));
        }
        self.store.update_user(&user).await?;
        if let Some(reason) = end_sessions {
            self.store.revoke_sessions(Some(&user.id), now, reason).await?;
        }
        self.record("user.updated", Some(actor), Some(username), None, Some(what.join("; ")))
            .await?;
        self.users()
            .await?
            .into_iter()
            .find(|u| u.username == username)
            .ok_or_else(|| AuthError::NotFound(format!("no user `{username}`")))
    }

    /// Lift a lockout (and forget the failed logins behind it).
    pub async fn unlock(&self, actor: &str, username: &str) -> Result<bool, AuthError> {
        let had = self.store.clear_lockout(username).await?;
        self.store.clear_login_failures(username).await?;
        self.record("user.unlocked", Some(actor), Some(username), None, None)
            .await?;
        Ok(had)
    }

    /// Every API key (revoked ones included), never their secrets.
    pub async fn api_keys(&self) -> Result<Vec<ApiKeyView>, AuthError> {
        Ok(self.store.api_keys().await?.iter().map(ApiKeyView::from).collect())
    }

    /// Create an API key; the key itself is returned once and only its SHA-256 is kept.
    pub async fn create_api_key(
        &self,
        actor: &str,
        name: &str,
        roles: RoleSet,
        expires_at_us: Option<i64>,
    ) -> Result<(ApiKeyView, String), AuthError> {
        if name.trim().is_empty() || name.len() > 200 {
            return Err(AuthError::Invalid("an API key's name has 1-200 characters".into()));
        }
        if roles.is_empty() {
            return Err(AuthError::Invalid("an API key needs at least one role".into()));
        }
        let now = self.now_us();
        if expires_at_us.is_some_and(|t| t <= now) {
            return Err(AuthError::Invalid("the expiry is in the past".into()));
        }
        let (id, key) = generate_api_key()?;
        let record = ApiKeyRecord {
            id: id.clone(),
            name: name.to_owned(),
            secret_sha256: sha256(&key),
            roles: roles.names(),
            created_by: actor.to_owned(),
            created_at_us: now,
            expires_at_us,
            revoked_at_us: None,
            last_used_at_us: None,
        };
        self.store.create_api_key(&record).await?;
        self.reload_api_keys().await?;
        self.record(
            "api_key.created",
            Some(actor),
            Some(&id),
            None,
            Some(format!("{name}; roles {}", roles.names().join(","))),
        )
        .await?;
        Ok((ApiKeyView::from(&record), key))
    }

    /// Revoke an API key (immediately on this server; elsewhere within the cache refresh time).
    pub async fn revoke_api_key(&self, actor: &str, id: &str) -> Result<(), AuthError> {
        if !self.store.revoke_api_key(id, self.now_us()).await? {
            return Err(AuthError::NotFound(format!("no live API key `{id}`")));
        }
        self.reload_api_keys().await?;
        self.record("api_key.revoked", Some(actor), Some(id), None, None).await
    }

    /// Make a new signing key; the previous one keeps verifying for the longest access-token lifetime, so no
    /// session breaks.
    pub async fn rotate_signing_key(&self, actor: &str) -> Result<String, AuthError> {
        let retire_at = self.now_us() + micros(self.settings.access_token_ttl);
        let kid = self.add_signing_key(retire_at).await?;
        self.record(
            "signing_key.rotated",
            Some(actor),
            Some(&kid),
            None,
            Some(format!("previous keys verify until {retire_at} (µs)")),
        )
        .await?;
        Ok(kid)
    }

    /// Incident response: revoke every session (and, if asked, every API key) and replace the signing key,
    /// retiring all earlier keys at once.
    pub async fn rotate_all(&self, actor: &str, revoke_api_keys: bool) -> Result<RotateAllReport, AuthError> {
        let now = self.now_us();
        let sessions_revoked = self.store.revoke_sessions(None, now, "credentials rotated").await?;
        let mut api_keys_revoked = 0;
        if revoke_api_keys {
            for key in self
                .store
                .api_keys()
                .await?
                .iter()
                .filter(|k| k.revoked_at_us.is_none())
            {
                if self.store.revoke_api_key(&key.id, now).await? {
                    api_keys_revoked += 1;
                }
            }
            self.reload_api_keys().await?;
        }
        let signing_key = self.add_signing_key(now).await?;
        self.record(
            "credentials.rotated_all",
            Some(actor),
            Some(&signing_key),
            None,
            Some(format!(
                "{sessions_revoked} sessions and {api_keys_revoked} API keys revoked; new signing key"
            )),
        )
        .await?;
        Ok(RotateAllReport {
            sessions_revoked,
            api_keys_revoked,
            signing_key,
        })
    }

    /// What the credential store says needs attention.
    pub async fn security_audit(&self) -> Result<SecurityAudit, AuthError> {
        let now = self.now_us();
        let day_ago = now - 24 * 3600 * 1_000_000;
        let (by_user, _) = self
            .store
            .failure_counts(day_ago, i64::from(self.settings.lockout_threshold))
            .await?;
        let (_, by_source) = self
            .store
            .failure_counts(day_ago, i64::from(self.settings.source_threshold))
            .await?;
        let keys = self.store.api_keys().await?;
        let live = |k: &&ApiKeyRecord| k.revoked_at_us.is_none();
        let signing = self.store.signing_keys().await?;
        let signing_key_due = signing.iter().find(|k| k.retire_after_us.is_none()).and_then(|k| {
            let age = now - k.created_at_us;
            (age > micros(self.settings.signing_key_max_age)).then(|| (k.kid.clone(), age / (24 * 3600 * 1_000_000)))
        });
        Ok(SecurityAudit {
            locked: self.store.lockouts(now).await?,
            failed_login_bursts_by_user: by_user.into_iter().map(|f| (f.key, f.failures)).collect(),
            failed_login_bursts_by_source: by_source.into_iter().map(|f| (f.key, f.failures)).collect(),
            api_keys_never_used: keys
                .iter()
                .filter(live)
                .filter(|k| k.last_used_at_us.is_none() && k.expires_at_us.is_none_or(|t| t > now))
                .map(|k| k.id.clone())
                .collect(),
            api_keys_expired: keys
                .iter()
                .filter(live)
                .filter(|k| k.expires_at_us.is_some_and(|t| t <= now))
                .map(|k| k.id.clone())
                .collect(),
            signing_key_due,
            admins_with_bootstrap_password: self
                .store
                .users()
                .await?
                .into_iter()
                .filter(|u| u.bootstrap_password && RoleSet::from_stored(&u.roles).contains(Role::Admin))
                .map(|u| u.username)
                .collect(),
        })
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
