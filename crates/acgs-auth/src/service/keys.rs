//! Signing keys: the first one, monthly rotation, incident rotation of every credential, and recovery from a
//! lost master key.

use std::sync::Arc;

use acgs_store::AuthStore;
use serde::Serialize;

use crate::error::AuthError;
use crate::signing::{MasterKey, new_signing_key};

use super::{AuthService, AuthSettings, Clock, micros};

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

impl AuthService {
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
        let api_keys_revoked = if revoke_api_keys {
            revoke_every_api_key(store.as_ref(), now).await?
        } else {
            0
        };
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
            api_keys_revoked = revoke_every_api_key(self.store.as_ref(), now).await?;
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
}

/// Revoke every API key not revoked yet; returns how many.
async fn revoke_every_api_key(store: &dyn AuthStore, now_us: i64) -> Result<u64, AuthError> {
    let mut revoked = 0;
    for key in store.api_keys().await?.iter().filter(|k| k.revoked_at_us.is_none()) {
        if store.revoke_api_key(&key.id, now_us).await? {
            revoked += 1;
        }
    }
    Ok(revoked)
}
