//! The SQL of [`AuthStore`] for both backends: one set of statements, written with `?` placeholders (numbered for
//! PostgreSQL once, see [`crate::sql`]), and the rows they read mapped to the records.

use async_trait::async_trait;
use sqlx::Pool;

use super::{
    ApiKeyRecord, AuthStore, FailureCount, RefreshOutcome, RefreshTokenRecord, SecurityEvent, SessionRecord,
    SigningKeyRecord, UserRecord,
};
use crate::StoreError;
use crate::error::conflict_or;
use crate::sql::statement;
use acgs_audit::event::EntityName;

/// Roles as stored.
fn join_roles(roles: &[String]) -> String {
    roles.join(",")
}

/// Roles as read.
fn split_roles(text: &str) -> Vec<String> {
    text.split(',').filter(|r| !r.is_empty()).map(str::to_owned).collect()
}

/// 32 stored bytes as an array.
fn hash32(bytes: Vec<u8>, what: &str) -> Result<[u8; 32], StoreError> {
    <[u8; 32]>::try_from(bytes.as_slice()).map_err(|_| StoreError::Corrupt(format!("{what} is not 32 bytes")))
}

type UserRow = (
    String,
    String,
    String,
    String,
    bool,
    bool,
    i64,
    i64,
    Option<String>,
    Option<String>,
);

/// The columns of [`UserRow`], in its order.
macro_rules! user_columns {
    () => {
        "id, username, password_hash, roles, disabled, bootstrap_password, created_at_us, password_changed_at_us, \
         entity_type, entity_id"
    };
}

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
        entity: entity_from(row.8, row.9),
    }
}

/// A bound entity as read: both columns or neither.
fn entity_from(entity_type: Option<String>, id: Option<String>) -> Option<EntityName> {
    Some(EntityName {
        entity_type: entity_type?,
        id: id?,
    })
}

/// A bound entity as written: `(type, id)`.
fn entity_columns(entity: &Option<EntityName>) -> (Option<&str>, Option<&str>) {
    match entity {
        Some(e) => (Some(e.entity_type.as_str()), Some(e.id.as_str())),
        None => (None, None),
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
    Option<String>,
    Option<String>,
);

/// The columns of [`ApiKeyRow`], in its order.
macro_rules! api_key_columns {
    () => {
        "id, name, secret_sha256, roles, created_by, created_at_us, expires_at_us, revoked_at_us, last_used_at_us, \
         entity_type, entity_id"
    };
}

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
        entity: entity_from(row.9, row.10),
    })
}

type SessionRow = (String, String, String, i64, i64, Option<i64>, Option<String>);

/// The columns of [`SessionRow`], in its order, each after `prefix` (a table alias and its dot, or nothing).
#[rustfmt::skip]
macro_rules! session_columns {
    ($prefix:literal) => {
        concat!(
            $prefix, "id, ", $prefix, "user_id, ", $prefix, "source, ", $prefix, "created_at_us, ",
            $prefix, "expires_at_us, ", $prefix, "revoked_at_us, ", $prefix, "revoked_reason"
        )
    };
}

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

/// Failed logins since `?` grouped by `column` (`username` or `source`), those with at least `?`, most first.
#[rustfmt::skip]
macro_rules! failures_by {
    ($column:literal) => {
        concat!(
            "SELECT ", $column, ", COUNT(*), MAX(at_us) FROM auth_login_failures WHERE at_us >= ? GROUP BY ", $column,
            " HAVING COUNT(*) >= ? ORDER BY COUNT(*) DESC, ", $column
        )
    };
}

/// The SQL of every [`AuthStore`] operation but the security event, for the backend `$db`, whose pool is the
/// store's `pool`: `begin` opens a write transaction that holds the write lock from the start.
macro_rules! auth_store_impl {
    ($store:ty, $db:ty, $begin:expr) => {
        impl $store {
            fn auth_pool(&self) -> &Pool<$db> {
                &self.pool
            }
        }

        #[async_trait]
        impl AuthStore for $store {
            async fn create_user(&self, u: &UserRecord) -> Result<(), StoreError> {
                let sql = statement!(
                    $db,
                    "INSERT INTO auth_users (",
                    user_columns!(),
                    ") VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)"
                );
                let (entity_type, entity_id) = entity_columns(&u.entity);
                sqlx::query(sql)
                    .bind(&u.id)
                    .bind(&u.username)
                    .bind(&u.password_hash)
                    .bind(join_roles(&u.roles))
                    .bind(u.disabled)
                    .bind(u.bootstrap_password)
                    .bind(u.created_at_us)
                    .bind(u.password_changed_at_us)
                    .bind(entity_type)
                    .bind(entity_id)
                    .execute(self.auth_pool())
                    .await
                    .map_err(|e| conflict_or(e, &format!("user `{}`", u.username)))?;
                Ok(())
            }

            async fn user_by_name(&self, username: &str) -> Result<Option<UserRecord>, StoreError> {
                let sql = statement!(
                    $db,
                    "SELECT ",
                    user_columns!(),
                    " FROM auth_users WHERE username = ?"
                );
                let row: Option<UserRow> = sqlx::query_as(sql)
                    .bind(username)
                    .fetch_optional(self.auth_pool())
                    .await?;
                Ok(row.map(user_from))
            }

            async fn user_by_id(&self, id: &str) -> Result<Option<UserRecord>, StoreError> {
                let sql = statement!($db, "SELECT ", user_columns!(), " FROM auth_users WHERE id = ?");
                let row: Option<UserRow> = sqlx::query_as(sql)
                    .bind(id)
                    .fetch_optional(self.auth_pool())
                    .await?;
                Ok(row.map(user_from))
            }

            async fn users(&self) -> Result<Vec<UserRecord>, StoreError> {
                let sql = statement!(
                    $db,
                    "SELECT ",
                    user_columns!(),
                    " FROM auth_users ORDER BY username"
                );
                let rows: Vec<UserRow> = sqlx::query_as(sql).fetch_all(self.auth_pool()).await?;
                Ok(rows.into_iter().map(user_from).collect())
            }

            async fn update_user(&self, u: &UserRecord) -> Result<bool, StoreError> {
                let sql = statement!(
                    $db,
                    "UPDATE auth_users SET username = ?, password_hash = ?, roles = ?, disabled = ?, \
                     bootstrap_password = ?, password_changed_at_us = ?, entity_type = ?, entity_id = ? WHERE id = ?",
                );
                let (entity_type, entity_id) = entity_columns(&u.entity);
                let done = sqlx::query(sql)
                    .bind(&u.username)
                    .bind(&u.password_hash)
                    .bind(join_roles(&u.roles))
                    .bind(u.disabled)
                    .bind(u.bootstrap_password)
                    .bind(u.password_changed_at_us)
                    .bind(entity_type)
                    .bind(entity_id)
                    .bind(&u.id)
                    .execute(self.auth_pool())
                    .await
                    .map_err(|e| conflict_or(e, &format!("user `{}`", u.username)))?;
                Ok(done.rows_affected() == 1)
            }

            async fn record_login_failure(&self, username: &str, source: &str, at_us: i64) -> Result<(), StoreError> {
                let sql = statement!(
                    $db,
                    "INSERT INTO auth_login_failures (username, source, at_us) VALUES (?, ?, ?)"
                );
                sqlx::query(sql)
                    .bind(username)
                    .bind(source)
                    .bind(at_us)
                    .execute(self.auth_pool())
                    .await?;
                Ok(())
            }

            async fn login_failures_for_user(&self, username: &str, since_us: i64) -> Result<i64, StoreError> {
                let sql = statement!(
                    $db,
                    "SELECT COUNT(*) FROM auth_login_failures WHERE username = ? AND at_us >= ?"
                );
                Ok(sqlx::query_scalar(sql)
                    .bind(username)
                    .bind(since_us)
                    .fetch_one(self.auth_pool())
                    .await?)
            }

            async fn login_failures_from_source(&self, source: &str, since_us: i64) -> Result<i64, StoreError> {
                let sql = statement!(
                    $db,
                    "SELECT COUNT(*) FROM auth_login_failures WHERE source = ? AND at_us >= ?"
                );
                Ok(sqlx::query_scalar(sql)
                    .bind(source)
                    .bind(since_us)
                    .fetch_one(self.auth_pool())
                    .await?)
            }

            async fn clear_login_failures(&self, username: &str) -> Result<(), StoreError> {
                let sql = statement!($db, "DELETE FROM auth_login_failures WHERE username = ?");
                sqlx::query(sql).bind(username).execute(self.auth_pool()).await?;
                Ok(())
            }

            async fn failure_counts(
                &self,
                since_us: i64,
                min: i64,
            ) -> Result<(Vec<FailureCount>, Vec<FailureCount>), StoreError> {
                let mut out = Vec::with_capacity(2);
                for sql in [
                    statement!($db, failures_by!("username")),
                    statement!($db, failures_by!("source")),
                ] {
                    let rows: Vec<(String, i64, i64)> = sqlx::query_as(sql)
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
                let sql = statement!(
                    $db,
                    "INSERT INTO auth_lockouts (username, locked_at_us, until_us) VALUES (?, ?, ?) \
                     ON CONFLICT (username) DO UPDATE SET locked_at_us = excluded.locked_at_us, \
                     until_us = excluded.until_us",
                );
                sqlx::query(sql)
                    .bind(username)
                    .bind(locked_at_us)
                    .bind(until_us)
                    .execute(self.auth_pool())
                    .await?;
                Ok(())
            }

            async fn lockout_until(&self, username: &str) -> Result<Option<i64>, StoreError> {
                let sql = statement!($db, "SELECT until_us FROM auth_lockouts WHERE username = ?");
                Ok(sqlx::query_scalar(sql)
                    .bind(username)
                    .fetch_optional(self.auth_pool())
                    .await?)
            }

            async fn clear_lockout(&self, username: &str) -> Result<bool, StoreError> {
                let sql = statement!($db, "DELETE FROM auth_lockouts WHERE username = ?");
                let done = sqlx::query(sql).bind(username).execute(self.auth_pool()).await?;
                Ok(done.rows_affected() > 0)
            }

            async fn lockouts(&self, now_us: i64) -> Result<Vec<(String, i64)>, StoreError> {
                let sql = statement!(
                    $db,
                    "SELECT username, until_us FROM auth_lockouts WHERE until_us > ? ORDER BY username"
                );
                Ok(sqlx::query_as(sql)
                    .bind(now_us)
                    .fetch_all(self.auth_pool())
                    .await?)
            }

            async fn create_api_key(&self, k: &ApiKeyRecord) -> Result<(), StoreError> {
                let sql = statement!(
                    $db,
                    "INSERT INTO auth_api_keys (",
                    api_key_columns!(),
                    ") VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)"
                );
                let (entity_type, entity_id) = entity_columns(&k.entity);
                sqlx::query(sql)
                    .bind(&k.id)
                    .bind(&k.name)
                    .bind(k.secret_sha256.as_slice())
                    .bind(join_roles(&k.roles))
                    .bind(&k.created_by)
                    .bind(k.created_at_us)
                    .bind(k.expires_at_us)
                    .bind(k.revoked_at_us)
                    .bind(k.last_used_at_us)
                    .bind(entity_type)
                    .bind(entity_id)
                    .execute(self.auth_pool())
                    .await
                    .map_err(|e| conflict_or(e, &format!("API key `{}`", k.id)))?;
                Ok(())
            }

            async fn api_keys(&self) -> Result<Vec<ApiKeyRecord>, StoreError> {
                let sql = statement!(
                    $db,
                    "SELECT ",
                    api_key_columns!(),
                    " FROM auth_api_keys ORDER BY created_at_us, id"
                );
                let rows: Vec<ApiKeyRow> = sqlx::query_as(sql).fetch_all(self.auth_pool()).await?;
                rows.into_iter().map(api_key_from).collect()
            }

            async fn revoke_api_key(&self, id: &str, at_us: i64) -> Result<bool, StoreError> {
                let sql = statement!(
                    $db,
                    "UPDATE auth_api_keys SET revoked_at_us = ? WHERE id = ? AND revoked_at_us IS NULL"
                );
                let done = sqlx::query(sql)
                    .bind(at_us)
                    .bind(id)
                    .execute(self.auth_pool())
                    .await?;
                Ok(done.rows_affected() == 1)
            }

            async fn record_api_key_use(&self, used: &[(String, i64)]) -> Result<(), StoreError> {
                let sql = statement!(
                    $db,
                    "UPDATE auth_api_keys SET last_used_at_us = ? WHERE id = ? \
                     AND (last_used_at_us IS NULL OR last_used_at_us < ?)",
                );
                for (id, at_us) in used {
                    sqlx::query(sql)
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
                let sql = statement!(
                    $db,
                    "INSERT INTO auth_sessions (",
                    session_columns!(""),
                    ") VALUES (?, ?, ?, ?, ?, ?, ?)"
                );
                sqlx::query(sql)
                    .bind(&s.id)
                    .bind(&s.user_id)
                    .bind(&s.source)
                    .bind(s.created_at_us)
                    .bind(s.expires_at_us)
                    .bind(s.revoked_at_us)
                    .bind(&s.revoked_reason)
                    .execute(&mut *tx)
                    .await?;
                let sql = statement!(
                    $db,
                    "INSERT INTO auth_refresh_tokens (token_sha256, session_id, issued_at_us, expires_at_us, \
                     replaced_at_us) VALUES (?, ?, ?, ?, ?)",
                );
                sqlx::query(sql)
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
                let sql = statement!(
                    $db,
                    "SELECT ",
                    session_columns!(""),
                    " FROM auth_sessions WHERE id = ?"
                );
                let row: Option<SessionRow> = sqlx::query_as(sql)
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
                let sql = statement!(
                    $db,
                    "SELECT t.expires_at_us, t.replaced_at_us, ",
                    session_columns!("s."),
                    " FROM auth_refresh_tokens t JOIN auth_sessions s ON s.id = t.session_id \
                     WHERE t.token_sha256 = ?"
                );
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
                let found: Option<Found> = sqlx::query_as(sql)
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
                let sql = statement!(
                    $db,
                    "UPDATE auth_refresh_tokens SET replaced_at_us = ? WHERE token_sha256 = ? \
                     AND replaced_at_us IS NULL",
                );
                let done = sqlx::query(sql)
                    .bind(now_us)
                    .bind(old_sha256.as_slice())
                    .execute(&mut *tx)
                    .await?;
                if done.rows_affected() != 1 {
                    return Ok(RefreshOutcome::Reused(session));
                }
                let sql = statement!(
                    $db,
                    "INSERT INTO auth_refresh_tokens (token_sha256, session_id, issued_at_us, expires_at_us, \
                     replaced_at_us) VALUES (?, ?, ?, ?, ?)",
                );
                sqlx::query(sql)
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
                let sql = statement!(
                    $db,
                    "UPDATE auth_sessions SET revoked_at_us = ?, revoked_reason = ? WHERE id = ? \
                     AND revoked_at_us IS NULL",
                );
                let done = sqlx::query(sql)
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
                        let sql = statement!(
                            $db,
                            "UPDATE auth_sessions SET revoked_at_us = ?, revoked_reason = ? WHERE user_id = ? \
                             AND revoked_at_us IS NULL",
                        );
                        sqlx::query(sql)
                            .bind(at_us)
                            .bind(reason)
                            .bind(user)
                            .execute(self.auth_pool())
                            .await?
                    }
                    None => {
                        let sql = statement!(
                            $db,
                            "UPDATE auth_sessions SET revoked_at_us = ?, revoked_reason = ? \
                             WHERE revoked_at_us IS NULL",
                        );
                        sqlx::query(sql)
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
                let sql = statement!(
                    $db,
                    "UPDATE auth_signing_keys SET retire_after_us = ? \
                     WHERE retire_after_us IS NULL OR retire_after_us > ?",
                );
                sqlx::query(sql)
                    .bind(retire_previous_after_us)
                    .bind(retire_previous_after_us)
                    .execute(&mut *tx)
                    .await?;
                let sql = statement!(
                    $db,
                    "INSERT INTO auth_signing_keys (kid, public_key, private_key_enc, created_at_us, retire_after_us) \
                     VALUES (?, ?, ?, ?, ?)",
                );
                sqlx::query(sql)
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
                let sql = statement!($db, "DELETE FROM auth_refresh_tokens WHERE expires_at_us < ?");
                let tokens = sqlx::query(sql)
                    .bind(before_us)
                    .execute(&mut *tx)
                    .await?
                    .rows_affected();
                let sql = statement!($db, "DELETE FROM auth_login_failures WHERE at_us < ?");
                let failures = sqlx::query(sql)
                    .bind(before_us)
                    .execute(&mut *tx)
                    .await?
                    .rows_affected();
                tx.commit().await?;
                Ok(tokens + failures)
            }

            async fn record_security_event(
                &self,
                event: &SecurityEvent,
                recorded_at_us: i64,
            ) -> Result<i64, StoreError> {
                let event = crate::NewEvent::security(event.clone(), recorded_at_us);
                crate::DecisionStore::append_events(self, &[event]).await
            }
        }
    };
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

auth_store_impl!(crate::SqliteStore, sqlx::Sqlite, begin_sqlite);
auth_store_impl!(crate::PostgresStore, sqlx::Postgres, begin_postgres);
