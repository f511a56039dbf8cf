//! Why an authentication or account operation failed. The HTTP layer maps each kind to one status code.

use acgs_store::StoreError;

/// Errors of authentication, authorization and account management.
#[derive(Debug, thiserror::Error)]
pub enum AuthError {
    /// No credentials, or credentials that do not authenticate anyone (HTTP 401). The reason is for the log;
    /// callers are told only that authentication failed.
    #[error("authentication required: {0}")]
    Unauthenticated(String),
    /// Wrong username or password (HTTP 401).
    #[error("invalid username or password")]
    InvalidCredentials,
    /// The username is locked after too many failed logins (HTTP 401 with the time it unlocks).
    #[error("account locked until {until_us} (µs since the epoch) after too many failed logins")]
    Locked {
        /// When logins are accepted again.
        until_us: i64,
    },
    /// Too many failed logins from this source address (HTTP 429).
    #[error("too many failed logins from this address; retry after {retry_after_s} s")]
    Throttled {
        /// Seconds until the window has passed.
        retry_after_s: u64,
    },
    /// Authenticated, but the roles do not grant the permission (HTTP 403).
    #[error("`{principal}` lacks the permission `{permission}`")]
    Forbidden {
        /// Who asked.
        principal: String,
        /// What was needed.
        permission: String,
    },
    /// A malformed request or a value that breaks a rule (HTTP 400).
    #[error("{0}")]
    Invalid(String),
    /// A user or key with that name exists (HTTP 409).
    #[error("{0}")]
    Conflict(String),
    /// No such user, key or session (HTTP 404).
    #[error("{0}")]
    NotFound(String),
    /// A key file could not be read or created.
    #[error("{0}")]
    KeyFile(String),
    /// The credential store failed (HTTP 503).
    #[error("credential store: {0}")]
    Store(#[source] StoreError),
    /// A bug or a broken environment (HTTP 500).
    #[error("{0}")]
    Internal(String),
}

impl From<StoreError> for AuthError {
    fn from(e: StoreError) -> Self {
        match e {
            StoreError::Conflict(message) => AuthError::Conflict(message),
            other => AuthError::Store(other),
        }
    }
}
