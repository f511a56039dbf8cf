//! Logins (with lockout and per-address throttling), the tokens they hand out, refresh-token rotation with
//! reuse detection, logouts and password changes.

use acgs_store::{RefreshOutcome, RefreshTokenRecord, SessionRecord, UserRecord};
use serde::Serialize;

use crate::credentials::{
    check_password_policy, decoy_password_hash, generate_refresh_token, hash_password, is_refresh_token, sha256,
    verify_password,
};
use crate::error::AuthError;
use crate::signing::{AccessClaims, TOKEN_ISSUER};

use super::{AuthService, Principal, PrincipalKind, check_username, micros};

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

impl AuthService {
    /// Log in with a username and password from `source`. Too many failures lock the username; too many from
    /// one source refuse the source for a while.
    pub async fn login(&self, username: &str, password: &str, source: &str) -> Result<Tokens, AuthError> {
        // A name no account can have (too long, control characters, …) is counted and recorded as a digest, so
        // an unauthenticated caller cannot write arbitrary bytes into the audit log or the failure table.
        let digest;
        let username = if check_username(username).is_ok() {
            username
        } else {
            digest = format!("invalid-username:sha256:{}", &hex::encode(sha256(username))[..16]);
            digest.as_str()
        };
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
}
