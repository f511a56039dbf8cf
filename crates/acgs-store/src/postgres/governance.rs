//! The PostgreSQL backend's governance commit: one transaction holding the sequencer lock
//! ([`begin_sequencing`]), so that it is ordered with every other replica's appends and governance commits: the
//! records' compare-and-set writes, the check of the version in force and the activation, then the audit
//! events through the [`super::sequencer`]. The statements are the shared ones of [`crate::governance`] and
//! [`crate::constitutions`].

use sqlx::postgres::PgListener;
use sqlx::{PgConnection, Postgres};

use super::PostgresStore;
use super::sequencer::{append_events, begin_sequencing};
use crate::constitutions::{ACTIVE_NUMBER, INSERT_VERSION, not_in_force};
use crate::error::conflict_or;
use crate::governance::{INSERT_RECORD, RECORD_REVISION, UPDATE_RECORD, refused};
use crate::sql::Dialect;
use crate::{
    ConstitutionVersion, GovernanceCommit, GovernanceCommitted, RecordChange, RecordWatch, RecordWrite, StoreError,
};

/// The channel on which every committed record write is announced, as `<kind>/<id>`.
const RECORDS_CHANNEL: &str = "acgs_records";

/// How many notices may wait for the watcher before the listener waits for it.
const WATCH_BUFFER: usize = 1024;

impl PostgresStore {
    /// Listen on [`RECORDS_CHANNEL`] on a connection of its own, for as long as the returned receiver is kept.
    /// When the connection is lost the listener makes it again and reports [`RecordChange::Resync`], since
    /// notices sent meanwhile are lost.
    pub(crate) async fn watch_record_changes(&self) -> Result<Option<RecordWatch>, StoreError> {
        let mut listener = PgListener::connect_with(&self.pool).await?;
        listener.listen(RECORDS_CHANNEL).await?;
        let (sender, receiver) = tokio::sync::mpsc::channel(WATCH_BUFFER);
        tokio::spawn(async move {
            loop {
                let change = match listener.try_recv().await {
                    Ok(Some(notice)) => match notice.payload().split_once('/') {
                        Some((kind, id)) => RecordChange::Written {
                            kind: kind.to_owned(),
                            id: id.to_owned(),
                        },
                        None => continue,
                    },
                    // The connection was lost; the next `try_recv` connects again.
                    Ok(None) => RecordChange::Resync,
                    Err(e) => {
                        tracing::warn!(error = %e, "listening for record changes failed; trying again");
                        tokio::time::sleep(std::time::Duration::from_secs(1)).await;
                        RecordChange::Resync
                    }
                };
                if sender.send(change).await.is_err() {
                    return; // nobody watches any more
                }
            }
        });
        Ok(Some(receiver))
    }

    /// See [`crate::GovernanceStore::commit_governance`]; `commit` has been validated.
    pub(crate) async fn commit_governance_checked(
        &self,
        commit: &GovernanceCommit,
    ) -> Result<GovernanceCommitted, StoreError> {
        // A refusal returns before the commit: dropping the transaction rolls it back.
        let mut tx = self.pool.begin_with(begin_sequencing()).await?;
        for write in &commit.writes {
            write_record(&mut tx, write).await?;
        }
        let activated = activate(&mut tx, commit).await?;
        let appended = if commit.events.is_empty() {
            None
        } else {
            Some(append_events(&mut tx, &commit.events, self.take_frontier()).await?)
        };
        tx.commit().await?;
        let first_seq = match appended {
            None => 0,
            Some((entries, frontier)) => {
                self.keep_frontier(frontier);
                entries
                    .first()
                    .map(|e| e.seq)
                    .ok_or_else(|| StoreError::Corrupt("an appended event got no sequence number".into()))?
            }
        };
        Ok(GovernanceCommitted { first_seq, activated })
    }
}

/// Check the version in force against `commit.expect_active` and put `commit.activation` in force after it.
async fn activate(
    conn: &mut PgConnection,
    commit: &GovernanceCommit,
) -> Result<Option<ConstitutionVersion>, StoreError> {
    let Some(expected) = commit.expect_active else {
        return Ok(None);
    };
    let active: i64 = sqlx::query_scalar(Postgres::sql(&ACTIVE_NUMBER))
        .fetch_one(&mut *conn)
        .await?;
    if active != expected {
        return Err(StoreError::Conflict(not_in_force(active, expected)));
    }
    let Some(v) = &commit.activation else {
        return Ok(None);
    };
    let number = expected + 1;
    // `activate_constitution` does not take the sequencer lock: if it put this number in force since the check,
    // the primary key refuses this one.
    let inserted = sqlx::query(Postgres::sql(&INSERT_VERSION))
        .bind(number)
        .bind(&v.hash)
        .bind(&v.version_label)
        .bind(&v.name)
        .bind(&v.source_name)
        .bind(&v.source)
        .bind(v.activated_at_us)
        .bind(&v.activated_by)
        .bind(&v.reason)
        .bind(expected)
        .execute(&mut *conn)
        .await
        .map_err(|e| conflict_or(e, &format!("constitution version {number}")))?
        .rows_affected();
    if inserted != 1 {
        return Err(StoreError::Conflict(format!(
            "constitution version {expected} is no longer the one in force"
        )));
    }
    Ok(Some(ConstitutionVersion {
        number,
        version: v.clone(),
    }))
}

/// Create or replace the record of `write` if its precondition holds; otherwise say what changed.
async fn write_record(conn: &mut PgConnection, write: &RecordWrite) -> Result<(), StoreError> {
    let r = &write.record;
    let changed = if write.expected_revision == 0 {
        sqlx::query(Postgres::sql(&INSERT_RECORD))
            .bind(&r.kind)
            .bind(&r.id)
            .bind(r.revision)
            .bind(&r.state)
            .bind(r.created_at_us)
            .bind(r.updated_at_us)
            .bind(&r.body)
            .execute(&mut *conn)
            .await?
    } else {
        sqlx::query(Postgres::sql(&UPDATE_RECORD))
            .bind(r.revision)
            .bind(&r.state)
            .bind(r.updated_at_us)
            .bind(&r.body)
            .bind(&r.kind)
            .bind(&r.id)
            .bind(write.expected_revision)
            .execute(&mut *conn)
            .await?
    }
    .rows_affected();
    if changed == 1 {
        // Delivered to every listening replica when (and only if) the transaction commits.
        sqlx::query("SELECT pg_notify($1, $2)")
            .bind(RECORDS_CHANNEL)
            .bind(format!("{}/{}", r.kind, r.id))
            .execute(&mut *conn)
            .await?;
        return Ok(());
    }
    let stored: Option<i64> = sqlx::query_scalar(Postgres::sql(&RECORD_REVISION))
        .bind(&r.kind)
        .bind(&r.id)
        .fetch_optional(&mut *conn)
        .await?;
    Err(refused(write, stored))
}
