//! Storage of the constitution versions: every constitution the server has run, with its full source, hash,
//! version label, and when, by whom and why it was put in force. The newest is the one in force. The
//! [`ConstitutionStore`] trait and its implementation for both backends (one set of SQL statements, `?`
//! placeholders numbered for PostgreSQL once, see [`crate::sql`]).

use async_trait::async_trait;

use crate::StoreError;
use crate::error::conflict_or;
use crate::sql::{Sql, statement};

/// A constitution to put in force.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewConstitutionVersion {
    /// The canonical hash (hex) of `source`.
    pub hash: String,
    /// The constitution's own version label (`metadata.version`).
    pub version_label: String,
    /// Its name (`metadata.name`).
    pub name: String,
    /// Where the source came from (a file path, or the embedded example).
    pub source_name: String,
    /// The full TOML source.
    pub source: String,
    /// When it is put in force (µs since the Unix epoch).
    pub activated_at_us: i64,
    /// Who put it in force (`cli:<login>`, `server`, …).
    pub activated_by: String,
    /// Why (e.g. `first start`).
    pub reason: String,
}

/// A stored constitution version.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConstitutionVersion {
    /// 1 for the first; each activation adds one.
    pub number: i64,
    /// What was stored.
    pub version: NewConstitutionVersion,
}

/// Storage of constitution versions; both backends pass the same conformance suite.
#[async_trait]
pub trait ConstitutionStore: Send + Sync {
    /// The version in force (the newest), if any was ever recorded.
    async fn active_constitution(&self) -> Result<Option<ConstitutionVersion>, StoreError>;
    /// Every version, oldest first.
    async fn constitution_versions(&self) -> Result<Vec<ConstitutionVersion>, StoreError>;
    /// Put `version` in force as the next number, unless the version in force is the one numbered
    /// `expected_active` no longer (0: none yet): then another activation came first and this one is refused
    /// with [`StoreError::Conflict`].
    async fn activate_constitution(
        &self,
        expected_active: i64,
        version: &NewConstitutionVersion,
    ) -> Result<ConstitutionVersion, StoreError>;
}

type VersionRow = (i64, String, String, String, String, String, i64, String, String);

/// The columns of [`VersionRow`], in its order.
macro_rules! version_columns {
    () => {
        "number, hash, version_label, name, source_name, source, activated_at_us, activated_by, reason"
    };
}

/// The number of the version in force (0 when none is).
pub(crate) static ACTIVE_NUMBER: Sql = Sql::new("SELECT COALESCE(MAX(number), 0) FROM constitution_versions");

/// Put a version in force as number `?` with the fields of [`NewConstitutionVersion`] (in `version_columns!`'s
/// order), if the version in force is still the one numbered `?` (0: none). The number is the primary key: of
/// two activations after the same version, one inserts and the other fails on the key (or inserts nothing), so
/// neither overwrites the other.
pub(crate) static INSERT_VERSION: Sql = Sql::new(concat!(
    "INSERT INTO constitution_versions (",
    version_columns!(),
    ") SELECT ?, ?, ?, ?, ?, ?, ?, ?, ? \
     WHERE (SELECT COALESCE(MAX(number), 0) FROM constitution_versions) = ?"
));

/// The message of a refused activation: the version in force is `active`, not `expected`.
pub(crate) fn not_in_force(active: i64, expected: i64) -> String {
    match (active, expected) {
        (0, _) => format!("no constitution version is in force, not {expected}"),
        (_, 0) => format!("constitution version {active} is in force, expected none"),
        _ => format!("constitution version {active} is in force, not {expected}"),
    }
}

fn version_from(row: VersionRow) -> ConstitutionVersion {
    ConstitutionVersion {
        number: row.0,
        version: NewConstitutionVersion {
            hash: row.1,
            version_label: row.2,
            name: row.3,
            source_name: row.4,
            source: row.5,
            activated_at_us: row.6,
            activated_by: row.7,
            reason: row.8,
        },
    }
}

/// [`ConstitutionStore`] for the backend `$db`, whose pool is the store's `pool`.
macro_rules! constitution_store_impl {
    ($store:ty, $db:ty) => {
        #[async_trait]
        impl ConstitutionStore for $store {
            async fn active_constitution(&self) -> Result<Option<ConstitutionVersion>, StoreError> {
                let sql = statement!(
                    $db,
                    "SELECT ",
                    version_columns!(),
                    " FROM constitution_versions ORDER BY number DESC LIMIT 1"
                );
                let row: Option<VersionRow> = sqlx::query_as(sql).fetch_optional(&self.pool).await?;
                Ok(row.map(version_from))
            }

            async fn constitution_versions(&self) -> Result<Vec<ConstitutionVersion>, StoreError> {
                let sql = statement!(
                    $db,
                    "SELECT ",
                    version_columns!(),
                    " FROM constitution_versions ORDER BY number"
                );
                let rows: Vec<VersionRow> = sqlx::query_as(sql).fetch_all(&self.pool).await?;
                Ok(rows.into_iter().map(version_from).collect())
            }

            async fn activate_constitution(
                &self,
                expected_active: i64,
                v: &NewConstitutionVersion,
            ) -> Result<ConstitutionVersion, StoreError> {
                let number = expected_active + 1;
                let done = sqlx::query(<$db as $crate::sql::Dialect>::sql(&INSERT_VERSION))
                    .bind(number)
                    .bind(&v.hash)
                    .bind(&v.version_label)
                    .bind(&v.name)
                    .bind(&v.source_name)
                    .bind(&v.source)
                    .bind(v.activated_at_us)
                    .bind(&v.activated_by)
                    .bind(&v.reason)
                    .bind(expected_active)
                    .execute(&self.pool)
                    .await
                    .map_err(|e| conflict_or(e, &format!("constitution version {number}")))?;
                if done.rows_affected() != 1 {
                    return Err(StoreError::Conflict(format!(
                        "constitution version {expected_active} is no longer the one in force"
                    )));
                }
                Ok(ConstitutionVersion {
                    number,
                    version: v.clone(),
                })
            }
        }
    };
}

constitution_store_impl!(crate::SqliteStore, sqlx::Sqlite);
constitution_store_impl!(crate::PostgresStore, sqlx::Postgres);
