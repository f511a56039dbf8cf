//! How durable SQLite's commits are: the sync level a store is opened with, and the failed flush of the database
//! file after which every write is refused.

use std::str::FromStr;
use std::sync::{Arc, OnceLock};

use crate::StoreError;

/// How hard SQLite works to make a commit durable.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum SqliteSync {
    /// `synchronous=FULL`: every commit is fsynced; survives power loss and OS crashes.
    #[default]
    Full,
    /// `synchronous=NORMAL` (WAL): survives a crash of the process (kill -9) but not of the machine.
    Normal,
}

impl std::fmt::Display for SqliteSync {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Self::Full => "full",
            Self::Normal => "normal",
        })
    }
}

impl FromStr for SqliteSync {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s.to_ascii_lowercase().as_str() {
            "full" => Ok(Self::Full),
            "normal" => Ok(Self::Normal),
            other => Err(format!("unknown sqlite sync mode `{other}` (expected full or normal)")),
        }
    }
}

/// Set once, by the WAL checkpointer, when flushing the database file failed (see [`super::checkpointer`]);
/// from then on every write is refused.
pub(crate) type FlushFailure = Arc<OnceLock<String>>;

/// The flush failure recorded in `failure`, if any, as the error every write then returns.
pub(crate) fn flush_failure(failure: &FlushFailure) -> Result<(), StoreError> {
    match failure.get() {
        Some(reason) => Err(StoreError::FlushFailed(reason.clone())),
        None => Ok(()),
    }
}
