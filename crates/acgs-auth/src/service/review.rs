//! The credential store's part of `acgs security audit`: what needs an administrator's attention.

use acgs_store::ApiKeyRecord;
use serde::Serialize;

use crate::error::AuthError;
use crate::roles::{Role, RoleSet};

use super::{AuthService, micros};

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

impl AuthService {
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
