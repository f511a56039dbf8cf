//! Accounts: users and API keys as administrators see and change them, and the first-start bootstrap.

use std::collections::HashMap;

use acgs_store::{ApiKeyRecord, EntityName, UserRecord};
use serde::Serialize;

use crate::credentials::{check_password_policy, generate_api_key, generate_password, hash_password, sha256};
use crate::error::AuthError;
use crate::roles::{Role, RoleSet};

use super::{AuthService, check_username};

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
    /// The registry entity this person is, if bound.
    #[serde(skip_serializing_if = "Option::is_none")]
    #[cfg_attr(feature = "openapi", schema(value_type = Option<Object>))]
    pub entity: Option<EntityName>,
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
    /// The principal entity it decides for, if bound.
    #[serde(skip_serializing_if = "Option::is_none")]
    #[cfg_attr(feature = "openapi", schema(value_type = Option<Object>))]
    pub entity: Option<EntityName>,
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
            entity: k.entity.clone(),
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
    /// Bind the account to the registry entity it is (`Some(Some(…))`, e.g. `User::"maria"`), or unbind it
    /// (`Some(None)`).
    pub entity: Option<Option<EntityName>>,
}

/// What the first start created.
#[derive(Debug, Clone, Default)]
pub struct Bootstrap {
    /// A signing key was created (none verified).
    pub signing_key: Option<String>,
    /// The administrator account and its password (shown once), if the store had no users.
    pub admin: Option<(String, String)>,
    /// An API key with the `agent` role for trying the API (shown once), created with the administrator and bound
    /// to the agent given to [`AuthService::bootstrap`].
    pub agent_key: Option<String>,
    /// An API key with the `gateway` role (decides for any principal), created with the administrator.
    pub gateway_key: Option<String>,
}

impl AuthService {
    /// Create what a first start needs: a signing key if none is in force, and — if there are no users at
    /// all — an administrator (with `admin_password`, or a generated one), an agent API key bound to `agent` for
    /// trying the API, and a gateway API key. Credentials are returned once and never stored in the clear.
    pub async fn bootstrap(
        &self,
        admin_password: Option<String>,
        agent: Option<EntityName>,
    ) -> Result<Bootstrap, AuthError> {
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
                entity: None,
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
                .create_api_key_for(
                    "bootstrap",
                    "tour agent (bootstrap)",
                    RoleSet::from_iter([Role::Agent]),
                    None,
                    agent,
                )
                .await?;
            let (_, gateway) = self
                .create_api_key(
                    "bootstrap",
                    "tour gateway (bootstrap)",
                    RoleSet::from_iter([Role::Gateway]),
                    None,
                )
                .await?;
            done.admin = Some(("admin".into(), password));
            done.agent_key = Some(key);
            done.gateway_key = Some(gateway);
        }
        Ok(done)
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
                entity: u.entity,
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
            entity: None,
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
        let was_active_admin = is_active_admin(&user);
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
            // One's own password is changed with the current one (`change_password`): a stolen access token must
            // not be enough to take the account over. The host CLI (actor `cli:…`) may reset any password.
            if actor == format!("user:{}", user.username) {
                return Err(AuthError::Invalid(
                    "change your own password with POST /v1/auth/password (it needs the current one)".into(),
                ));
            }
            check_password_policy(&password)?;
            user.password_hash = hash_password(&password)?;
            user.password_changed_at_us = now;
            user.bootstrap_password = false;
            end_sessions = Some("password reset");
            what.push("password reset".to_owned());
        }
        if let Some(entity) = changes.entity {
            match &entity {
                Some(e) if e.entity_type.trim().is_empty() => {
                    return Err(AuthError::Invalid(
                        "an account's entity needs a type, e.g. User::\"maria\"".into(),
                    ));
                }
                Some(e) => what.push(format!("bound to {}::{:?}", e.entity_type, e.id)),
                None => what.push("unbound".to_owned()),
            }
            user.entity = entity;
        }
        if what.is_empty() {
            return Err(AuthError::Invalid(
                "nothing to change (roles, disabled, password or entity)".into(),
            ));
        }
        if was_active_admin && !is_active_admin(&user) {
            let others = self.store.users().await?;
            if !others.iter().any(|u| u.id != user.id && is_active_admin(u)) {
                return Err(AuthError::Conflict(format!(
                    "`{username}` is the last active administrator: create or enable another administrator \
                     before disabling it or removing its `admin` role"
                )));
            }
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

    /// Create an API key bound to no entity; the key itself is returned once and only its SHA-256 is kept.
    pub async fn create_api_key(
        &self,
        actor: &str,
        name: &str,
        roles: RoleSet,
        expires_at_us: Option<i64>,
    ) -> Result<(ApiKeyView, String), AuthError> {
        self.create_api_key_for(actor, name, roles, expires_at_us, None).await
    }

    /// Create an API key, bound to the principal entity it decides for when `entity` is given (it may then ask
    /// for decisions for that principal only, unless its roles grant `decisions:on_behalf`); the key itself is
    /// returned once and only its SHA-256 is kept.
    pub async fn create_api_key_for(
        &self,
        actor: &str,
        name: &str,
        roles: RoleSet,
        expires_at_us: Option<i64>,
        entity: Option<EntityName>,
    ) -> Result<(ApiKeyView, String), AuthError> {
        if let Some(e) = &entity
            && e.entity_type.trim().is_empty()
        {
            return Err(AuthError::Invalid(
                "a key's entity needs a type, e.g. Agent::\"ap-agent\"".into(),
            ));
        }
        if name.trim().is_empty() || name.chars().count() > 200 {
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
            entity,
        };
        self.store.create_api_key(&record).await?;
        self.reload_api_keys().await?;
        self.record(
            "api_key.created",
            Some(actor),
            Some(&id),
            None,
            Some(match &record.entity {
                Some(e) => format!(
                    "{name}; roles {}; bound to {}::{:?}",
                    roles.names().join(","),
                    e.entity_type,
                    e.id
                ),
                None => format!("{name}; roles {}", roles.names().join(",")),
            }),
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
}

/// Whether `user` is enabled and holds the `admin` role (a lockout is temporary and does not count).
fn is_active_admin(user: &UserRecord) -> bool {
    !user.disabled && user.roles.iter().any(|r| r == Role::Admin.as_str())
}
