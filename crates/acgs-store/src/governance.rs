//! Storage of governed objects (amendments, appeals, the emergency halt, …): versioned records, each a JSON body
//! with a kind, id, state and revision, changed only by compare-and-set. Every change is committed in one
//! transaction with its audit events and, when a step puts a constitution in force, the new constitution
//! version ([`GovernanceCommit`]). The store knows nothing of what the states mean; the governance service does.
//!
//! The [`GovernanceStore`] trait, its reads for both backends (one set of SQL statements, see [`crate::sql`]),
//! the checks of a commit's input, and the statements both backends' commits run; each backend commits in a
//! module of its own (`sqlite/governance.rs`, `postgres/governance.rs`), under the audit log's write lock.

use async_trait::async_trait;

use crate::sql::{Sql, statement};
use crate::{ConstitutionVersion, NewConstitutionVersion, NewEvent, StoreError};

/// One governed object as stored.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GovernanceRecord {
    /// What it is, e.g. `amendment`, `appeal`, `emergency`.
    pub kind: String,
    /// Its id, unique within its kind.
    pub id: String,
    /// 1 when created; each change adds one.
    pub revision: i64,
    /// Where it is in its life, e.g. `draft`, `voting`.
    pub state: String,
    /// When it was created (µs since the Unix epoch). A replacement keeps the stored value: a write that
    /// replaces a record cannot move it in the newest-first order.
    pub created_at_us: i64,
    /// When it last changed (µs since the Unix epoch).
    pub updated_at_us: i64,
    /// Its data, as JSON text, stored verbatim.
    pub body: String,
}

/// A write of one record: it is created when `expected_revision` is 0 (refused if it exists), otherwise it
/// replaces the stored one only if that is still at `expected_revision`. The written record's revision must be
/// `expected_revision + 1`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RecordWrite {
    /// The record as it is to be stored.
    pub record: GovernanceRecord,
    /// The revision the stored record must have (0: it must not exist).
    pub expected_revision: i64,
}

/// Everything one governance step changes, committed atomically or not at all.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct GovernanceCommit {
    /// Records to create or replace, in order.
    pub writes: Vec<RecordWrite>,
    /// Precondition: the constitution version in force has this number (0 = none yet).
    pub expect_active: Option<i64>,
    /// Put this version in force as number `expect_active + 1` (requires `expect_active`).
    pub activation: Option<NewConstitutionVersion>,
    /// Audit events appended in the same transaction, in order.
    pub events: Vec<NewEvent>,
}

impl GovernanceCommit {
    /// A commit of record writes and their audit events only (no constitution version involved).
    pub fn records(writes: Vec<RecordWrite>, events: Vec<NewEvent>) -> Self {
        Self {
            writes,
            expect_active: None,
            activation: None,
            events,
        }
    }
}

/// What a [`GovernanceCommit`] did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GovernanceCommitted {
    /// Sequence number of the first appended event (the others follow it; 0 when there were none).
    pub first_seq: i64,
    /// The version put in force, if the commit had an activation.
    pub activated: Option<ConstitutionVersion>,
}

/// Which records to list: of one kind, newest first (`created_at_us`, then `id`, descending).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct RecordQuery {
    /// Only this kind.
    pub kind: String,
    /// Only records in this state.
    pub state: Option<String>,
    /// At most this many: 0 means [`RecordQuery::DEFAULT_LIMIT`]; more than [`RecordQuery::MAX_LIMIT`] means
    /// that many.
    pub limit: u32,
    /// Only records created before this time (µs since the Unix epoch): the cursor for the next page, the
    /// `created_at_us` of the last record of the previous one.
    pub before_created_at_us: Option<i64>,
}

impl RecordQuery {
    /// Page size when none is given.
    pub const DEFAULT_LIMIT: u32 = 100;
    /// Largest page.
    pub const MAX_LIMIT: u32 = 1000;

    /// The number of records a page holds at most.
    pub fn effective_limit(&self) -> i64 {
        i64::from(match self.limit {
            0 => Self::DEFAULT_LIMIT,
            n => n.min(Self::MAX_LIMIT),
        })
    }
}

/// Storage of governed objects; both backends pass the same conformance suite
/// (`tests/governance_conformance.rs`).
#[async_trait]
pub trait GovernanceStore: Send + Sync {
    /// The record of `kind` with `id`, if there is one.
    async fn governance_record(&self, kind: &str, id: &str) -> Result<Option<GovernanceRecord>, StoreError>;
    /// The records `query` selects, newest first (`created_at_us`, then `id`, descending).
    async fn governance_records(&self, query: &RecordQuery) -> Result<Vec<GovernanceRecord>, StoreError>;
    /// Commit `commit` in one transaction under the audit log's write lock (SQLite: the writing connection's
    /// `BEGIN IMMEDIATE`; PostgreSQL: the sequencer's advisory lock): check every precondition (each write's
    /// expected revision, `expect_active`), write the records, put the constitution version in force, append
    /// the events (with their tree nodes), then commit.
    ///
    /// A failed precondition writes nothing and appends no event; the error is [`StoreError::Conflict`], whose
    /// message names what changed (e.g. "amendment `a-1` changed (revision 3, expected 2)", "amendment `a-1`
    /// already exists", "constitution version 4 is in force, not 3"). Input that can never commit (a written
    /// revision other than the expected one plus one, an empty kind or id, a body that is not JSON, an
    /// activation without `expect_active`) is refused with [`StoreError::InvalidRecord`] before anything is
    /// written.
    async fn commit_governance(&self, commit: &GovernanceCommit) -> Result<GovernanceCommitted, StoreError>;
    /// The records of `kind` whose id sorts after `after_id` (`""`: from the first), by id, at most `limit` (at
    /// most [`RecordQuery::MAX_LIMIT`]): a kind read whole, page by page, whatever the records' times.
    async fn governance_records_by_id(
        &self,
        kind: &str,
        after_id: &str,
        limit: u32,
    ) -> Result<Vec<GovernanceRecord>, StoreError>;
    /// Notice of the records other processes change, where several processes share the database (PostgreSQL:
    /// every committed record write is announced on a channel; SQLite: `None`, one server owns the file).
    async fn watch_records(&self) -> Result<Option<RecordWatch>, StoreError> {
        Ok(None)
    }
}

/// What a [`RecordWatch`] reports.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RecordChange {
    /// The record of `kind` with `id` was written (by any process, this one included).
    Written {
        /// Its kind.
        kind: String,
        /// Its id.
        id: String,
    },
    /// Notices may have been missed (the listening connection was lost and made again): read everything again.
    Resync,
}

/// The changes of records committed by any process sharing the database, in commit order per process.
pub type RecordWatch = tokio::sync::mpsc::Receiver<RecordChange>;

/// Create a record `(kind, id, revision, state, created_at_us, updated_at_us, body)`, unless one of that kind
/// and id exists (then nothing is inserted).
pub(crate) static INSERT_RECORD: Sql = Sql::new(
    "INSERT INTO governance_records (kind, id, revision, state, created_at_us, updated_at_us, body) \
     VALUES (?, ?, ?, ?, ?, ?, ?) ON CONFLICT (kind, id) DO NOTHING",
);

/// Replace a record: `(revision, state, updated_at_us, body)` of the one of kind `?` and id `?`, if its revision
/// is still `?`. Its creation time stays.
pub(crate) static UPDATE_RECORD: Sql = Sql::new(
    "UPDATE governance_records SET revision = ?, state = ?, updated_at_us = ?, body = ? \
     WHERE kind = ? AND id = ? AND revision = ?",
);

/// The stored revision of the record of kind `?` and id `?`.
pub(crate) static RECORD_REVISION: Sql = Sql::new("SELECT revision FROM governance_records WHERE kind = ? AND id = ?");

/// Why `write` was refused, given the revision stored for its record (`None`: there is no such record).
pub(crate) fn refused(write: &RecordWrite, stored: Option<i64>) -> StoreError {
    let (kind, id, expected) = (&write.record.kind, &write.record.id, write.expected_revision);
    StoreError::Conflict(match stored {
        Some(_) if expected == 0 => format!("{kind} `{id}` already exists"),
        Some(revision) => format!("{kind} `{id}` changed (revision {revision}, expected {expected})"),
        None => format!("{kind} `{id}` does not exist (expected revision {expected})"),
    })
}

/// Refuse a commit whose input could never be written (see [`GovernanceStore::commit_governance`]).
pub(crate) fn validate(commit: &GovernanceCommit) -> Result<(), StoreError> {
    for write in &commit.writes {
        let r = &write.record;
        if r.kind.is_empty() || r.id.is_empty() {
            return Err(StoreError::InvalidRecord(format!(
                "a governance record needs a kind and an id (got kind `{}`, id `{}`)",
                r.kind, r.id
            )));
        }
        if write.expected_revision < 0 || write.expected_revision.checked_add(1) != Some(r.revision) {
            return Err(StoreError::InvalidRecord(format!(
                "{} `{}` is written as revision {} after revision {}: it must be the next one",
                r.kind, r.id, r.revision, write.expected_revision
            )));
        }
        if let Err(e) = serde_json::from_str::<serde::de::IgnoredAny>(&r.body) {
            return Err(StoreError::InvalidRecord(format!(
                "{} `{}` has a body that is not JSON: {e}",
                r.kind, r.id
            )));
        }
    }
    match (commit.expect_active, &commit.activation) {
        (None, Some(_)) => Err(StoreError::InvalidRecord(
            "an activation needs `expect_active`, the number of the version in force it follows".into(),
        )),
        (Some(n), _) if n < 0 => Err(StoreError::InvalidRecord(format!(
            "`expect_active` is {n}: a constitution version number is 0 (none) or more"
        ))),
        _ => Ok(()),
    }
}

/// A `governance_records` row: `(kind, id, revision, state, created_at_us, updated_at_us, body)`.
type RecordRow = (String, String, i64, String, i64, i64, String);

fn record_from(row: RecordRow) -> GovernanceRecord {
    let (kind, id, revision, state, created_at_us, updated_at_us, body) = row;
    GovernanceRecord {
        kind,
        id,
        revision,
        state,
        created_at_us,
        updated_at_us,
        body,
    }
}

/// The records of kind `?`, as [`RecordRow`] reads them; filters follow as `AND …`.
macro_rules! select_records {
    () => {
        "SELECT kind, id, revision, state, created_at_us, updated_at_us, body FROM governance_records \
         WHERE kind = ?"
    };
}

/// A list's order and its limit `?`.
macro_rules! newest_first {
    () => {
        " ORDER BY created_at_us DESC, id DESC LIMIT ?"
    };
}

/// [`GovernanceStore`] for the backend `$db`, whose pool is the store's `pool`: the reads here, the commit in
/// the backend's own `commit_governance_checked` (after [`validate`]).
macro_rules! governance_store_impl {
    ($store:ty, $db:ty) => {
        #[async_trait]
        impl GovernanceStore for $store {
            async fn governance_record(&self, kind: &str, id: &str) -> Result<Option<GovernanceRecord>, StoreError> {
                let sql = statement!($db, select_records!(), " AND id = ?");
                let row: Option<RecordRow> = sqlx::query_as(sql)
                    .bind(kind)
                    .bind(id)
                    .fetch_optional(&self.pool)
                    .await?;
                Ok(row.map(record_from))
            }

            async fn governance_records(&self, query: &RecordQuery) -> Result<Vec<GovernanceRecord>, StoreError> {
                let sql = match (&query.state, query.before_created_at_us) {
                    (None, None) => statement!($db, select_records!(), newest_first!()),
                    (Some(_), None) => statement!($db, select_records!(), " AND state = ?", newest_first!()),
                    (None, Some(_)) => statement!($db, select_records!(), " AND created_at_us < ?", newest_first!()),
                    (Some(_), Some(_)) => statement!(
                        $db,
                        select_records!(),
                        " AND state = ? AND created_at_us < ?",
                        newest_first!()
                    ),
                };
                let mut select = sqlx::query_as::<_, RecordRow>(sql).bind(&query.kind);
                if let Some(state) = &query.state {
                    select = select.bind(state);
                }
                if let Some(before) = query.before_created_at_us {
                    select = select.bind(before);
                }
                let rows = select.bind(query.effective_limit()).fetch_all(&self.pool).await?;
                Ok(rows.into_iter().map(record_from).collect())
            }

            async fn commit_governance(&self, commit: &GovernanceCommit) -> Result<GovernanceCommitted, StoreError> {
                validate(commit)?;
                self.commit_governance_checked(commit).await
            }

            async fn governance_records_by_id(
                &self,
                kind: &str,
                after_id: &str,
                limit: u32,
            ) -> Result<Vec<GovernanceRecord>, StoreError> {
                let sql = statement!($db, select_records!(), " AND id > ? ORDER BY id LIMIT ?");
                let limit = RecordQuery {
                    limit,
                    ..RecordQuery::default()
                }
                .effective_limit();
                let rows: Vec<RecordRow> = sqlx::query_as(sql)
                    .bind(kind)
                    .bind(after_id)
                    .bind(limit)
                    .fetch_all(&self.pool)
                    .await?;
                Ok(rows.into_iter().map(record_from).collect())
            }

            async fn watch_records(&self) -> Result<Option<RecordWatch>, StoreError> {
                self.watch_record_changes().await
            }
        }
    };
}

governance_store_impl!(crate::SqliteStore, sqlx::Sqlite);
governance_store_impl!(crate::PostgresStore, sqlx::Postgres);

#[cfg(test)]
mod tests {
    use super::*;

    fn write(revision: i64, expected_revision: i64, body: &str) -> RecordWrite {
        RecordWrite {
            record: GovernanceRecord {
                kind: "amendment".into(),
                id: "a-1".into(),
                revision,
                state: "draft".into(),
                created_at_us: 1,
                updated_at_us: 1,
                body: body.into(),
            },
            expected_revision,
        }
    }

    fn commit(writes: Vec<RecordWrite>) -> GovernanceCommit {
        GovernanceCommit {
            writes,
            ..Default::default()
        }
    }

    #[test]
    fn input_that_can_never_commit_is_refused() {
        let invalid = |c: &GovernanceCommit| matches!(validate(c), Err(StoreError::InvalidRecord(_)));
        assert!(validate(&commit(vec![write(1, 0, "{}"), write(3, 2, r#"{"a":[1,"✓"]}"#)])).is_ok());
        assert!(invalid(&commit(vec![write(2, 0, "{}")])));
        assert!(invalid(&commit(vec![write(0, -1, "{}")])));
        assert!(invalid(&commit(vec![write(1, 0, "{")])));
        assert!(invalid(&commit(vec![write(1, 0, "{} x")])));
        assert!(invalid(&commit(vec![write(1, 0, "")])));
        let mut no_id = write(1, 0, "{}");
        no_id.record.id.clear();
        assert!(invalid(&commit(vec![no_id])));
        assert!(invalid(&GovernanceCommit {
            expect_active: Some(-1),
            ..Default::default()
        }));
    }

    #[test]
    fn a_page_holds_the_default_or_at_most_the_maximum() {
        let limit = |limit| {
            RecordQuery {
                limit,
                ..Default::default()
            }
            .effective_limit()
        };
        assert_eq!((limit(0), limit(7), limit(5000)), (100, 7, 1000));
    }

    #[test]
    fn a_refusal_names_what_changed() {
        let message = |w: &RecordWrite, stored| refused(w, stored).to_string();
        assert_eq!(message(&write(1, 0, "{}"), Some(4)), "amendment `a-1` already exists");
        assert_eq!(
            message(&write(3, 2, "{}"), Some(3)),
            "amendment `a-1` changed (revision 3, expected 2)"
        );
        assert_eq!(
            message(&write(3, 2, "{}"), None),
            "amendment `a-1` does not exist (expected revision 2)"
        );
    }
}
