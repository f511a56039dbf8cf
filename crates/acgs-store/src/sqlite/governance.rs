//! The SQLite backend's governance commit: on the one writing connection, in one `BEGIN IMMEDIATE` transaction
//! ([`Appender::write_and_append`]), the records' compare-and-set writes, the check of the version in force and
//! the activation, then the audit events with their derived data. The statements are the shared ones of
//! [`crate::governance`] and [`crate::constitutions`].

use rusqlite::{Connection, OptionalExtension, params};

use super::SqliteStore;
use super::appender::Appender;
use crate::constitutions::{ACTIVE_NUMBER, INSERT_VERSION, not_in_force};
use crate::governance::{INSERT_RECORD, RECORD_REVISION, UPDATE_RECORD, refused};
use crate::{ConstitutionVersion, GovernanceCommit, GovernanceCommitted, RecordWrite, StoreError};

impl SqliteStore {
    /// See [`crate::GovernanceStore::commit_governance`]; `commit` has been validated.
    pub(crate) async fn commit_governance_checked(
        &self,
        commit: &GovernanceCommit,
    ) -> Result<GovernanceCommitted, StoreError> {
        let commit = commit.clone();
        self.write(move |appender: &mut Appender| {
            let (activated, first_seq) = appender.write_and_append(&commit.events, |tx| apply(tx, &commit))?;
            Ok(GovernanceCommitted { first_seq, activated })
        })
        .await
    }
}

/// Inside the write transaction `tx`: the writes of `commit`, then its check of the version in force and its
/// activation. Any refusal is an error, which rolls the transaction back.
fn apply(tx: &Connection, commit: &GovernanceCommit) -> Result<Option<ConstitutionVersion>, StoreError> {
    for write in &commit.writes {
        write_record(tx, write)?;
    }
    let Some(expected) = commit.expect_active else {
        return Ok(None);
    };
    let active: i64 = tx
        .prepare_cached(ACTIVE_NUMBER.text())?
        .query_row([], |row| row.get(0))?;
    if active != expected {
        return Err(StoreError::Conflict(not_in_force(active, expected)));
    }
    let Some(v) = &commit.activation else {
        return Ok(None);
    };
    let number = expected + 1;
    let inserted = tx.prepare_cached(INSERT_VERSION.text())?.execute(params![
        number,
        v.hash,
        v.version_label,
        v.name,
        v.source_name,
        v.source,
        v.activated_at_us,
        v.activated_by,
        v.reason,
        expected
    ])?;
    if inserted != 1 {
        // Not while this transaction holds the write lock; the statement checks it anyway.
        return Err(StoreError::Conflict(not_in_force(active, expected)));
    }
    Ok(Some(ConstitutionVersion {
        number,
        version: v.clone(),
    }))
}

/// Create or replace the record of `write` if its precondition holds; otherwise say what changed.
fn write_record(tx: &Connection, write: &RecordWrite) -> Result<(), StoreError> {
    let r = &write.record;
    let changed = if write.expected_revision == 0 {
        tx.prepare_cached(INSERT_RECORD.text())?.execute(params![
            r.kind,
            r.id,
            r.revision,
            r.state,
            r.created_at_us,
            r.updated_at_us,
            r.body
        ])?
    } else {
        tx.prepare_cached(UPDATE_RECORD.text())?.execute(params![
            r.revision,
            r.state,
            r.updated_at_us,
            r.body,
            r.kind,
            r.id,
            write.expected_revision
        ])?
    };
    if changed == 1 {
        return Ok(());
    }
    let stored: Option<i64> = tx
        .prepare_cached(RECORD_REVISION.text())?
        .query_row(params![r.kind, r.id], |row| row.get(0))
        .optional()?;
    Err(refused(write, stored))
}

impl crate::SqliteStore {
    /// One server owns an SQLite file: there are no other processes' changes to watch.
    pub(crate) async fn watch_record_changes(&self) -> Result<Option<crate::RecordWatch>, StoreError> {
        Ok(None)
    }
}
