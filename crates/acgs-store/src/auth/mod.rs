//! Storage of who may use the API: users, failed logins and lockouts, API keys, login sessions with their
//! refresh tokens, and the keys that sign access tokens; plus security events, which become entries of the
//! audit log. The [`AuthStore`] trait and its records; its implementation for both backends, one set of SQL
//! statements, is in [`sql`].

mod sql;

use async_trait::async_trait;

use crate::StoreError;

/// A person who logs in.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UserRecord {
    /// Stable id (UUID v7).
    pub id: String,
    /// Login name (unique).
    pub username: String,
    /// Argon2id hash in PHC string format.
    pub password_hash: String,
    /// Role names.
    pub roles: Vec<String>,
    /// A disabled user cannot log in, and its sessions stop working.
    pub disabled: bool,
    /// The password is still the one generated at bootstrap.
    pub bootstrap_password: bool,
    /// Creation time (µs since the Unix epoch).
    pub created_at_us: i64,
    /// Last password change (µs).
    pub password_changed_at_us: i64,
    /// The registry entity this person is (e.g. `User::"maria"`), if bound.
    pub entity: Option<acgs_audit::event::EntityName>,
}

/// A machine client's key (its secret is kept only as a SHA-256).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ApiKeyRecord {
    /// The key's visible prefix, e.g. `acgs_3fa1c2b9d0e4`.
    pub id: String,
    /// What the key is for.
    pub name: String,
    /// SHA-256 of the whole key.
    pub secret_sha256: [u8; 32],
    /// Role names.
    pub roles: Vec<String>,
    /// Who created it (a username, or `bootstrap`).
    pub created_by: String,
    /// Creation time (µs).
    pub created_at_us: i64,
    /// After this the key is refused.
    pub expires_at_us: Option<i64>,
    /// When it was revoked.
    pub revoked_at_us: Option<i64>,
    /// Last time it authenticated a request (recorded at most once a minute).
    pub last_used_at_us: Option<i64>,
    /// The principal entity it decides for (e.g. `Agent::"ap-agent"`), if bound.
    pub entity: Option<acgs_audit::event::EntityName>,
}

/// A login session: the family of refresh tokens issued since one login.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SessionRecord {
    /// Session id (UUID v7), the `sid` claim of its access tokens.
    pub id: String,
    /// The user.
    pub user_id: String,
    /// Source address of the login.
    pub source: String,
    /// Login time (µs).
    pub created_at_us: i64,
    /// Absolute end of the session (µs), whatever the refreshes.
    pub expires_at_us: i64,
    /// When it was revoked (logout, refresh-token reuse, incident).
    pub revoked_at_us: Option<i64>,
    /// Why.
    pub revoked_reason: Option<String>,
}

/// One refresh token (by SHA-256).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RefreshTokenRecord {
    /// SHA-256 of the token.
    pub token_sha256: [u8; 32],
    /// Its session.
    pub session_id: String,
    /// Issue time (µs).
    pub issued_at_us: i64,
    /// Expiry (µs).
    pub expires_at_us: i64,
    /// When it was used (and replaced by the next).
    pub replaced_at_us: Option<i64>,
}

/// What using a refresh token found.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RefreshOutcome {
    /// It was current and is now replaced by the new token.
    Rotated(SessionRecord),
    /// It had been used already: someone holds a copy. The caller must revoke the session.
    Reused(SessionRecord),
    /// It expired, or its session is revoked or expired.
    Expired(SessionRecord),
    /// No such token.
    Unknown,
}

/// A key that signs access tokens.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SigningKeyRecord {
    /// Key id (`kid` header).
    pub kid: String,
    /// Ed25519 public key.
    pub public_key: [u8; 32],
    /// The private key, encrypted with the master key (nonce followed by ciphertext).
    pub private_key_enc: Vec<u8>,
    /// Creation time (µs).
    pub created_at_us: i64,
    /// `None` while it is the signing key; otherwise it verifies tokens until then.
    pub retire_after_us: Option<i64>,
}

/// A security-relevant event (login, lockout, key or permission change), as the audit log records it.
pub use acgs_audit::event::SecurityEvent;

/// Failed logins grouped by username or by source address.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FailureCount {
    /// The username or source address.
    pub key: String,
    /// Failures since the given time.
    pub failures: i64,
    /// The latest one (µs).
    pub last_at_us: i64,
}

/// Storage of users, credentials and sessions. Implemented by both backends; one conformance suite
/// (`tests/auth_conformance.rs`).
#[async_trait]
pub trait AuthStore: Send + Sync + std::fmt::Debug {
    /// Create a user; [`StoreError::Conflict`] if the username is taken.
    async fn create_user(&self, user: &UserRecord) -> Result<(), StoreError>;
    /// A user by username.
    async fn user_by_name(&self, username: &str) -> Result<Option<UserRecord>, StoreError>;
    /// A user by id.
    async fn user_by_id(&self, id: &str) -> Result<Option<UserRecord>, StoreError>;
    /// Every user, by username.
    async fn users(&self) -> Result<Vec<UserRecord>, StoreError>;
    /// Replace a user's fields (by id); `false` if there is no such user.
    async fn update_user(&self, user: &UserRecord) -> Result<bool, StoreError>;

    /// Record a failed login for `username` (which may not exist) from `source`.
    async fn record_login_failure(&self, username: &str, source: &str, at_us: i64) -> Result<(), StoreError>;
    /// Failed logins for `username` since `since_us`.
    async fn login_failures_for_user(&self, username: &str, since_us: i64) -> Result<i64, StoreError>;
    /// Failed logins from `source` since `since_us`.
    async fn login_failures_from_source(&self, source: &str, since_us: i64) -> Result<i64, StoreError>;
    /// Forget `username`'s failed logins (after a successful login or an unlock).
    async fn clear_login_failures(&self, username: &str) -> Result<(), StoreError>;
    /// Usernames and sources with at least `min` failures since `since_us`, most failures first.
    async fn failure_counts(
        &self,
        since_us: i64,
        min: i64,
    ) -> Result<(Vec<FailureCount>, Vec<FailureCount>), StoreError>;
    /// Refuse logins of `username` until `until_us`.
    async fn set_lockout(&self, username: &str, locked_at_us: i64, until_us: i64) -> Result<(), StoreError>;
    /// Until when `username` is locked, if a lockout was recorded.
    async fn lockout_until(&self, username: &str) -> Result<Option<i64>, StoreError>;
    /// Lift `username`'s lockout; `true` if there was one.
    async fn clear_lockout(&self, username: &str) -> Result<bool, StoreError>;
    /// Lockouts still in force at `now_us`: (username, until).
    async fn lockouts(&self, now_us: i64) -> Result<Vec<(String, i64)>, StoreError>;

    /// Store a new API key; [`StoreError::Conflict`] if the id is taken.
    async fn create_api_key(&self, key: &ApiKeyRecord) -> Result<(), StoreError>;
    /// Every API key, revoked ones included, by creation.
    async fn api_keys(&self) -> Result<Vec<ApiKeyRecord>, StoreError>;
    /// Revoke a key; `false` if there is no such key or it was revoked already.
    async fn revoke_api_key(&self, id: &str, at_us: i64) -> Result<bool, StoreError>;
    /// Record when keys were last used.
    async fn record_api_key_use(&self, used: &[(String, i64)]) -> Result<(), StoreError>;

    /// Start a session with its first refresh token.
    async fn create_session(&self, session: &SessionRecord, token: &RefreshTokenRecord) -> Result<(), StoreError>;
    /// A session by id.
    async fn session(&self, id: &str) -> Result<Option<SessionRecord>, StoreError>;
    /// Use the refresh token `old_sha256` at `now_us`: if it is current, replace it with `next` in one step.
    async fn rotate_refresh_token(
        &self,
        old_sha256: &[u8; 32],
        next: &RefreshTokenRecord,
        now_us: i64,
    ) -> Result<RefreshOutcome, StoreError>;
    /// Revoke a session; `false` if it does not exist or was revoked already.
    async fn revoke_session(&self, id: &str, at_us: i64, reason: &str) -> Result<bool, StoreError>;
    /// Revoke every live session of `user_id`, or of everybody; returns how many.
    async fn revoke_sessions(&self, user_id: Option<&str>, at_us: i64, reason: &str) -> Result<u64, StoreError>;

    /// Every signing key, newest first.
    async fn signing_keys(&self) -> Result<Vec<SigningKeyRecord>, StoreError>;
    /// Make `key` the signing key; the previous signing key (and any key retiring later) verifies only until
    /// `retire_previous_after_us`.
    async fn add_signing_key(&self, key: &SigningKeyRecord, retire_previous_after_us: i64) -> Result<(), StoreError>;

    /// Delete refresh tokens and failed logins older than `before_us`; returns how many rows went.
    async fn purge_auth_records(&self, before_us: i64) -> Result<u64, StoreError>;

    /// Append a security event, recorded at `recorded_at_us`, to the audit log; returns its sequence number.
    async fn record_security_event(&self, event: &SecurityEvent, recorded_at_us: i64) -> Result<i64, StoreError>;
}
