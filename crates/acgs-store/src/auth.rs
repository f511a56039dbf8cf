//! Storage of who may use the API: users, failed logins and lockouts, API keys, login sessions with their
//! refresh tokens, and the keys that sign access tokens; plus security events, which become entries of the
//! audit log. The [`AuthStore`] trait, its records, and its implementation for both backends (one set of SQL
//! statements, written with `?` placeholders and numbered for PostgreSQL).

use async_trait::async_trait;
use sqlx::Pool;

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

/// A security-relevant event (login, lockout, key or permission change); recorded as an audit-log entry.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct SecurityEvent {
    /// What happened, e.g. `login.failed`, `api_key.revoked`, `permission.denied`.
    pub event: String,
    /// Who did it (a username or API key id), if known.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub actor: Option<String>,
    /// What it was done to (a username, key id, session id, route).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub subject: Option<String>,
    /// Source address of the request.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub source: Option<String>,
    /// More detail in words.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub detail: Option<String>,
    /// When (µs since the Unix epoch).
    pub recorded_at_us: i64,
}

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

    /// Append a security event to the audit log; returns its sequence number.
    async fn record_security_event(&self, event: &SecurityEvent) -> Result<i64, StoreError>;
}

/// Roles as stored.
pub(crate) fn join_roles(roles: &[String]) -> String {
    roles.join(",")
}

/// Roles as read.
pub(crate) fn split_roles(text: &str) -> Vec<String> {
    text.split(',').filter(|r| !r.is_empty()).map(str::to_owned).collect()
}

fn hash32(bytes: Vec<u8>, what: &str) -> Result<[u8; 32], StoreError> {
    <[u8; 32]>::try_from(bytes.as_slice()).map_err(|_| StoreError::Corrupt(format!("{what} is not 32 bytes")))
}

/// A database error as a [`StoreError`], with unique-key violations as [`StoreError::Conflict`].
pub(crate) fn conflict_or(e: sqlx::Error, what: &str) -> StoreError {
    match &e {
        sqlx::Error::Database(db) if db.is_unique_violation() => StoreError::Conflict(format!("{what} exists already")),
        _ => StoreError::Database(e),
    }
}

/// `?` placeholders numbered `$1, $2, …` for PostgreSQL.
pub(crate) fn numbered(sql: &str) -> String {
    let mut out = String::with_capacity(sql.len() + 16);
    let mut n = 0;
    for c in sql.chars() {
        if c == '?' {
            n += 1;
            out.push('$');
            out.push_str(&n.to_string());
        } else {
            out.push(c);
        }
    }
    out
}

type UserRow = (String, String, String, String, bool, bool, i64, i64);
const USER_COLUMNS: &str =
    "id, username, password_hash, roles, disabled, bootstrap_password, created_at_us, password_changed_at_us";

fn user_from(row: UserRow) -> UserRecord {
    UserRecord {
        id: row.0,
        username: row.1,
        password_hash: row.2,
        roles: split_roles(&row.3),
        disabled: row.4,
        bootstrap_password: row.5,
        created_at_us: row.6,
        password_changed_at_us: row.7,
    }
}

type ApiKeyRow = (
    String,
    String,
    Vec<u8>,
    String,
    String,
    i64,
    Option<i64>,
    Option<i64>,
    Option<i64>,
);
const API_KEY_COLUMNS: &str = "id, name, secret_sha256, roles, created_by, created_at_us, expires_at_us, \
     revoked_at_us, last_used_at_us";

fn api_key_from(row: ApiKeyRow) -> Result<ApiKeyRecord, StoreError> {
    Ok(ApiKeyRecord {
        id: row.0,
        name: row.1,
        secret_sha256: hash32(row.2, "an API key hash")?,
        roles: split_roles(&row.3),
        created_by: row.4,
        created_at_us: row.5,
        expires_at_us: row.6,
        revoked_at_us: row.7,
        last_used_at_us: row.8,
    })
}

type SessionRow = (String, String, String, i64, i64, Option<i64>, Option<String>);
const SESSION_COLUMNS: &str = "id, user_id, source, created_at_us, expires_at_us, revoked_at_us, revoked_reason";

fn session_from(row: SessionRow) -> SessionRecord {
    SessionRecord {
        id: row.0,
        user_id: row.1,
        source: row.2,
        created_at_us: row.3,
        expires_at_us: row.4,
        revoked_at_us: row.5,
        revoked_reason: row.6,
    }
}

type SigningKeyRow = (String, Vec<u8>, Vec<u8>, i64, Option<i64>);

fn signing_key_from(row: SigningKeyRow) -> Result<SigningKeyRecord, StoreError> {
    Ok(SigningKeyRecord {
        kid: row.0,
        public_key: hash32(row.1, "a signing key's public key")?,
        private_key_enc: row.2,
        created_at_us: row.3,
        retire_after_us: row.4,
    })
}

/// The SQL of every [`AuthStore`] operation but the security event, for one backend: `sql` turns the `?`
/// placeholders into the backend's, `begin` opens a write transaction that holds the write lock from the start.
macro_rules! auth_store_impl {
    ($store:ty, $db:ty, $sql:expr, $begin:expr) => {
        impl $store {
            fn auth_pool(&self) -> &Pool<$db> {
                &self.pool
            }
        }

        #[async_trait]
        impl AuthStore for $store {
            async fn create_user(&self, u: &UserRecord) -> Result<(), StoreError> {
                let sql = $sql(&format!(
                    "INSERT INTO auth_users ({USER_COLUMNS}) VALUES (?, ?, ?, ?, ?, ?, ?, ?)"
                ));
                sqlx::query(&sql)
                    .bind(&u.id)
                    .bind(&u.username)
                    .bind(&u.password_hash)
                    .bind(join_roles(&u.roles))
                    .bind(u.disabled)
                    .bind(u.bootstrap_password)
                    .bind(u.created_at_us)
                    .bind(u.password_changed_at_us)
                    .execute(self.auth_pool())
                    .await
                    .map_err(|e| conflict_or(e, &format!("user `{}`", u.username)))?;
                Ok(())
            }

            async fn user_by_name(&self, username: &str) -> Result<Option<UserRecord>, StoreError> {
                let sql = $sql(&format!(
                    "SELECT {USER_COLUMNS} FROM auth_users WHERE username = ?"
                ));
                let row: Option<UserRow> = sqlx::query_as(&sql)
                    .bind(username)
                    .fetch_optional(self.auth_pool())
                    .await?;
                Ok(row.map(user_from))
            }

            async fn user_by_id(&self, id: &str) -> Result<Option<UserRecord>, StoreError> {
                let sql = $sql(&format!("SELECT {USER_COLUMNS} FROM auth_users WHERE id = ?"));
                let row: Option<UserRow> = sqlx::query_as(&sql)
                    .bind(id)
                    .fetch_optional(self.auth_pool())
                    .await?;
                Ok(row.map(user_from))
            }

            async fn users(&self) -> Result<Vec<UserRecord>, StoreError> {
                let sql = format!("SELECT {USER_COLUMNS} FROM auth_users ORDER BY username");
                let rows: Vec<UserRow> = sqlx::query_as(&sql).fetch_all(self.auth_pool()).await?;
                Ok(rows.into_iter().map(user_from).collect())
            }

            async fn update_user(&self, u: &UserRecord) -> Result<bool, StoreError> {
                let sql = $sql(
                    "UPDATE auth_users SET username = ?, password_hash = ?, roles = ?, disabled = ?, \
                     bootstrap_password = ?, password_changed_at_us = ? WHERE id = ?",
                );
                let done = sqlx::query(&sql)
                    .bind(&u.username)
                    .bind(&u.password_hash)
                    .bind(join_roles(&u.roles))
                    .bind(u.disabled)
                    .bind(u.bootstrap_password)
                    .bind(u.password_changed_at_us)
                    .bind(&u.id)
                    .execute(self.auth_pool())
                    .await
                    .map_err(|e| conflict_or(e, &format!("user `{}`", u.username)))?;
                Ok(done.rows_affected() == 1)
            }

            async fn record_login_failure(&self, username: &str, source: &str, at_us: i64) -> Result<(), StoreError> {
                let sql = $sql("INSERT INTO auth_login_failures (username, source, at_us) VALUES (?, ?, ?)");
                sqlx::query(&sql)
                    .bind(username)
                    .bind(source)
                    .bind(at_us)
                    .execute(self.auth_pool())
                    .await?;
                Ok(())
            }

            async fn login_failures_for_user(&self, username: &str, since_us: i64) -> Result<i64, StoreError> {
                let sql = $sql("SELECT COUNT(*) FROM auth_login_failures WHERE username = ? AND at_us >= ?");
                Ok(sqlx::query_scalar(&sql)
                    .bind(username)
                    .bind(since_us)
                    .fetch_one(self.auth_pool())
                    .await?)
            }

            async fn login_failures_from_source(&self, source: &str, since_us: i64) -> Result<i64, StoreError> {
                let sql = $sql("SELECT COUNT(*) FROM auth_login_failures WHERE source = ? AND at_us >= ?");
                Ok(sqlx::query_scalar(&sql)
                    .bind(source)
                    .bind(since_us)
                    .fetch_one(self.auth_pool())
                    .await?)
            }

            async fn clear_login_failures(&self, username: &str) -> Result<(), StoreError> {
                let sql = $sql("DELETE FROM auth_login_failures WHERE username = ?");
                sqlx::query(&sql).bind(username).execute(self.auth_pool()).await?;
                Ok(())
            }

            async fn failure_counts(
                &self,
                since_us: i64,
                min: i64,
            ) -> Result<(Vec<FailureCount>, Vec<FailureCount>), StoreError> {
                let mut out = Vec::with_capacity(2);
                for column in ["username", "source"] {
                    let sql = $sql(&format!(
                        "SELECT {column}, COUNT(*), MAX(at_us) FROM auth_login_failures WHERE at_us >= ? \
                         GROUP BY {column} HAVING COUNT(*) >= ? ORDER BY COUNT(*) DESC, {column}"
                    ));
                    let rows: Vec<(String, i64, i64)> = sqlx::query_as(&sql)
                        .bind(since_us)
                        .bind(min)
                        .fetch_all(self.auth_pool())
                        .await?;
                    out.push(
                        rows.into_iter()
                            .map(|(key, failures, last_at_us)| FailureCount {
                                key,
                                failures,
                                last_at_us,
                            })
                            .collect(),
                    );
                }
                let sources = out.pop().unwrap_or_default();
                let users = out.pop().unwrap_or_default();
                Ok((users, sources))
            }

            async fn set_lockout(&self, username: &str, locked_at_us: i64, until_us: i64) -> Result<(), StoreError> {
                let sql = $sql(
                    "INSERT INTO auth_lockouts (username, locked_at_us, until_us) VALUES (?, ?, ?) \
                     ON CONFLICT (username) DO UPDATE SET locked_at_us = excluded.locked_at_us, \
                     until_us = excluded.until_us",
                );
                sqlx::query(&sql)
                    .bind(username)
                    .bind(locked_at_us)
                    .bind(until_us)
                    .execute(self.auth_pool())
                    .await?;
                Ok(())
            }

            async fn lockout_until(&self, username: &str) -> Result<Option<i64>, StoreError> {
                let sql = $sql("SELECT until_us FROM auth_lockouts WHERE username = ?");
                Ok(sqlx::query_scalar(&sql)
                    .bind(username)
                    .fetch_optional(self.auth_pool())
                    .await?)
            }

            async fn clear_lockout(&self, username: &str) -> Result<bool, StoreError> {
                let sql = $sql("DELETE FROM auth_lockouts WHERE username = ?");
                let done = sqlx::query(&sql).bind(username).execute(self.auth_pool()).await?;
                Ok(done.rows_affected() > 0)
            }

            async fn lockouts(&self, now_us: i64) -> Result<Vec<(String, i64)>, StoreError> {
                let sql = $sql("SELECT username, until_us FROM auth_lockouts WHERE until_us > ? ORDER BY username");
                Ok(sqlx::query_as(&sql)
                    .bind(now_us)
                    .fetch_all(self.auth_pool())
                    .await?)
            }

            async fn create_api_key(&self, k: &ApiKeyRecord) -> Result<(), StoreError> {
                let sql = $sql(&format!(
                    "INSERT INTO auth_api_keys ({API_KEY_COLUMNS}) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)"
                ));
                sqlx::query(&sql)
                    .bind(&k.id)
                    .bind(&k.name)
                    .bind(k.secret_sha256.as_slice())
                    .bind(join_roles(&k.roles))
                    .bind(&k.created_by)
                    .bind(k.created_at_us)
                    .bind(k.expires_at_us)
                    .bind(k.revoked_at_us)
                    .bind(k.last_used_at_us)
                    .execute(self.auth_pool())
                    .await
                    .map_err(|e| conflict_or(e, &format!("API key `{}`", k.id)))?;
                Ok(())
            }

            async fn api_keys(&self) -> Result<Vec<ApiKeyRecord>, StoreError> {
                let sql = format!("SELECT {API_KEY_COLUMNS} FROM auth_api_keys ORDER BY created_at_us, id");
                let rows: Vec<ApiKeyRow> = sqlx::query_as(&sql).fetch_all(self.auth_pool()).await?;
                rows.into_iter().map(api_key_from).collect()
            }

            async fn revoke_api_key(&self, id: &str, at_us: i64) -> Result<bool, StoreError> {
                let sql = $sql("UPDATE auth_api_keys SET revoked_at_us = ? WHERE id = ? AND revoked_at_us IS NULL");
                let done = sqlx::query(&sql)
                    .bind(at_us)
                    .bind(id)
                    .execute(self.auth_pool())
                    .await?;
                Ok(done.rows_affected() == 1)
            }

            async fn record_api_key_use(&self, used: &[(String, i64)]) -> Result<(), StoreError> {
                let sql = $sql(
                    "UPDATE auth_api_keys SET last_used_at_us = ? WHERE id = ? \
                     AND (last_used_at_us IS NULL OR last_used_at_us < ?)",
                );
                for (id, at_us) in used {
                    sqlx::query(&sql)
                        .bind(*at_us)
                        .bind(id)
                        .bind(*at_us)
                        .execute(self.auth_pool())
                        .await?;
                }
                Ok(())
            }

            async fn create_session(&self, s: &SessionRecord, t: &RefreshTokenRecord) -> Result<(), StoreError> {
                let mut tx = $begin(self.auth_pool()).await?;
                let sql = $sql(&format!(
                    "INSERT INTO auth_sessions ({SESSION_COLUMNS}) VALUES (?, ?, ?, ?, ?, ?, ?)"
                ));
                sqlx::query(&sql)
                    .bind(&s.id)
                    .bind(&s.user_id)
                    .bind(&s.source)
                    .bind(s.created_at_us)
                    .bind(s.expires_at_us)
                    .bind(s.revoked_at_us)
                    .bind(&s.revoked_reason)
                    .execute(&mut *tx)
                    .await?;
                let sql = $sql(
                    "INSERT INTO auth_refresh_tokens (token_sha256, session_id, issued_at_us, expires_at_us, \
                     replaced_at_us) VALUES (?, ?, ?, ?, ?)",
                );
                sqlx::query(&sql)
                    .bind(t.token_sha256.as_slice())
                    .bind(&t.session_id)
                    .bind(t.issued_at_us)
                    .bind(t.expires_at_us)
                    .bind(t.replaced_at_us)
                    .execute(&mut *tx)
                    .await?;
                tx.commit().await?;
                Ok(())
            }

            async fn session(&self, id: &str) -> Result<Option<SessionRecord>, StoreError> {
                let sql = $sql(&format!(
                    "SELECT {SESSION_COLUMNS} FROM auth_sessions WHERE id = ?"
                ));
                let row: Option<SessionRow> = sqlx::query_as(&sql)
                    .bind(id)
                    .fetch_optional(self.auth_pool())
                    .await?;
                Ok(row.map(session_from))
            }

            async fn rotate_refresh_token(
                &self,
                old_sha256: &[u8; 32],
                next: &RefreshTokenRecord,
                now_us: i64,
            ) -> Result<RefreshOutcome, StoreError> {
                let mut tx = $begin(self.auth_pool()).await?;
                let sql = $sql(&format!(
                    "SELECT t.expires_at_us, t.replaced_at_us, {} FROM auth_refresh_tokens t \
                     JOIN auth_sessions s ON s.id = t.session_id WHERE t.token_sha256 = ?",
                    SESSION_COLUMNS
                        .split(", ")
                        .map(|c| format!("s.{c}"))
                        .collect::<Vec<_>>()
                        .join(", ")
                ));
                type Found = (
                    i64,
                    Option<i64>,
                    String,
                    String,
                    String,
                    i64,
                    i64,
                    Option<i64>,
                    Option<String>,
                );
                let found: Option<Found> = sqlx::query_as(&sql)
                    .bind(old_sha256.as_slice())
                    .fetch_optional(&mut *tx)
                    .await?;
                let Some(f) = found else {
                    return Ok(RefreshOutcome::Unknown);
                };
                let (token_expires, replaced) = (f.0, f.1);
                let session = session_from((f.2, f.3, f.4, f.5, f.6, f.7, f.8));
                if replaced.is_some() {
                    return Ok(RefreshOutcome::Reused(session));
                }
                if token_expires <= now_us || session.expires_at_us <= now_us || session.revoked_at_us.is_some() {
                    return Ok(RefreshOutcome::Expired(session));
                }
                let sql = $sql(
                    "UPDATE auth_refresh_tokens SET replaced_at_us = ? WHERE token_sha256 = ? \
                     AND replaced_at_us IS NULL",
                );
                let done = sqlx::query(&sql)
                    .bind(now_us)
                    .bind(old_sha256.as_slice())
                    .execute(&mut *tx)
                    .await?;
                if done.rows_affected() != 1 {
                    return Ok(RefreshOutcome::Reused(session));
                }
                let sql = $sql(
                    "INSERT INTO auth_refresh_tokens (token_sha256, session_id, issued_at_us, expires_at_us, \
                     replaced_at_us) VALUES (?, ?, ?, ?, ?)",
                );
                sqlx::query(&sql)
                    .bind(next.token_sha256.as_slice())
                    .bind(&session.id)
                    .bind(next.issued_at_us)
                    .bind(next.expires_at_us)
                    .bind(next.replaced_at_us)
                    .execute(&mut *tx)
                    .await?;
                tx.commit().await?;
                Ok(RefreshOutcome::Rotated(session))
            }

            async fn revoke_session(&self, id: &str, at_us: i64, reason: &str) -> Result<bool, StoreError> {
                let sql = $sql(
                    "UPDATE auth_sessions SET revoked_at_us = ?, revoked_reason = ? WHERE id = ? \
                     AND revoked_at_us IS NULL",
                );
                let done = sqlx::query(&sql)
                    .bind(at_us)
                    .bind(reason)
                    .bind(id)
                    .execute(self.auth_pool())
                    .await?;
                Ok(done.rows_affected() == 1)
            }

            async fn revoke_sessions(
                &self,
                user_id: Option<&str>,
                at_us: i64,
                reason: &str,
            ) -> Result<u64, StoreError> {
                let done = match user_id {
                    Some(user) => {
                        let sql = $sql(
                            "UPDATE auth_sessions SET revoked_at_us = ?, revoked_reason = ? WHERE user_id = ? \
                             AND revoked_at_us IS NULL",
                        );
                        sqlx::query(&sql)
                            .bind(at_us)
                            .bind(reason)
                            .bind(user)
                            .execute(self.auth_pool())
                            .await?
                    }
                    None => {
                        let sql = $sql(
                            "UPDATE auth_sessions SET revoked_at_us = ?, revoked_reason = ? \
                             WHERE revoked_at_us IS NULL",
                        );
                        sqlx::query(&sql)
                            .bind(at_us)
                            .bind(reason)
                            .execute(self.auth_pool())
                            .await?
                    }
                };
                Ok(done.rows_affected())
            }

            async fn signing_keys(&self) -> Result<Vec<SigningKeyRecord>, StoreError> {
                let rows: Vec<SigningKeyRow> = sqlx::query_as(
                    "SELECT kid, public_key, private_key_enc, created_at_us, retire_after_us FROM auth_signing_keys \
                     ORDER BY created_at_us DESC, kid DESC",
                )
                .fetch_all(self.auth_pool())
                .await?;
                rows.into_iter().map(signing_key_from).collect()
            }

            async fn add_signing_key(
                &self,
                k: &SigningKeyRecord,
                retire_previous_after_us: i64,
            ) -> Result<(), StoreError> {
                let mut tx = $begin(self.auth_pool()).await?;
                let sql = $sql(
                    "UPDATE auth_signing_keys SET retire_after_us = ? \
                     WHERE retire_after_us IS NULL OR retire_after_us > ?",
                );
                sqlx::query(&sql)
                    .bind(retire_previous_after_us)
                    .bind(retire_previous_after_us)
                    .execute(&mut *tx)
                    .await?;
                let sql = $sql(
                    "INSERT INTO auth_signing_keys (kid, public_key, private_key_enc, created_at_us, retire_after_us) \
                     VALUES (?, ?, ?, ?, ?)",
                );
                sqlx::query(&sql)
                    .bind(&k.kid)
                    .bind(k.public_key.as_slice())
                    .bind(k.private_key_enc.as_slice())
                    .bind(k.created_at_us)
                    .bind(k.retire_after_us)
                    .execute(&mut *tx)
                    .await
                    .map_err(|e| conflict_or(e, &format!("signing key `{}`", k.kid)))?;
                tx.commit().await?;
                Ok(())
            }

            async fn purge_auth_records(&self, before_us: i64) -> Result<u64, StoreError> {
                let mut tx = $begin(self.auth_pool()).await?;
                let sql = $sql("DELETE FROM auth_refresh_tokens WHERE expires_at_us < ?");
                let tokens = sqlx::query(&sql)
                    .bind(before_us)
                    .execute(&mut *tx)
                    .await?
                    .rows_affected();
                let sql = $sql("DELETE FROM auth_login_failures WHERE at_us < ?");
                let failures = sqlx::query(&sql)
                    .bind(before_us)
                    .execute(&mut *tx)
                    .await?
                    .rows_affected();
                tx.commit().await?;
                Ok(tokens + failures)
            }

            async fn record_security_event(&self, event: &SecurityEvent) -> Result<i64, StoreError> {
                self.append_security_event(event).await
            }
        }
    };
}

fn same(sql: &str) -> String {
    sql.to_owned()
}

async fn begin_sqlite(pool: &Pool<sqlx::Sqlite>) -> Result<sqlx::Transaction<'static, sqlx::Sqlite>, sqlx::Error> {
    // Take the write lock at once: a deferred transaction that reads first cannot always upgrade to a writer.
    pool.begin_with("BEGIN IMMEDIATE").await
}

async fn begin_postgres(
    pool: &Pool<sqlx::Postgres>,
) -> Result<sqlx::Transaction<'static, sqlx::Postgres>, sqlx::Error> {
    pool.begin().await
}

auth_store_impl!(crate::SqliteStore, sqlx::Sqlite, same, begin_sqlite);
auth_store_impl!(crate::PostgresStore, sqlx::Postgres, numbered, begin_postgres);
