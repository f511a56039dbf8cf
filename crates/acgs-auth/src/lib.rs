//! Authentication and authorization of ACGS: who may use the API, and for what.
//!
//! - [`roles`]: the roles (`admin`, `council`, `proposer`, `reviewer`, `auditor`, `operator`, `agent`) and the
//!   permissions each grants — the one table behind every access decision.
//! - [`credentials`]: Argon2id password hashes; API keys and refresh tokens, 256-bit random secrets kept only as
//!   SHA-256.
//! - [`signing`]: Ed25519 access tokens (JWT, `kid` header), signing keys encrypted at rest under a master key,
//!   the key ring and its JWKS.
//! - [`AuthService`]: logins with lockout, refresh-token rotation with reuse detection, the check of each
//!   request's bearer credential, account and API-key administration, key rotation, bootstrap. State lives in an
//!   [`acgs_store::AuthStore`]; security events go to the audit log.
//!
//! ```no_run
//! # async fn demo(store: std::sync::Arc<dyn acgs_store::AuthStore>) -> Result<(), acgs_auth::AuthError> {
//! use acgs_auth::{AuthService, AuthSettings, MasterKey, Permission, system_clock};
//! let master = MasterKey::load_or_create(std::path::Path::new("acgs-data/auth-master.key"))?.0;
//! let auth = AuthService::new(store, master, AuthSettings::default(), system_clock()).await?;
//! let principal = auth.authenticate(Some("Bearer acgs_…")).await?;
//! auth.authorize(&principal, Permission::DecisionsCreate)?;
//! # Ok(()) }
//! ```
#![deny(missing_docs)]

pub mod credentials;
mod error;
pub mod roles;
mod service;
pub mod signing;

pub use error::AuthError;
pub use roles::{Permission, Role, RoleSet};
pub use service::{
    ApiKeyView, AuthService, AuthSettings, Bootstrap, Clock, Principal, PrincipalKind, RotateAllReport, SecurityAudit,
    Tokens, UserChanges, UserView, parse_roles, system_clock,
};
pub use signing::{AccessClaims, KeyRing, MasterKey, TokenError};
