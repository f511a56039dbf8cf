//! One SQL text for both backends: a statement is written once, with `?` placeholders, which SQLite takes as
//! they are and which PostgreSQL gets numbered `$1, $2, …`, once per statement, the first time it runs.

use std::sync::OnceLock;

use sqlx::{Postgres, Sqlite};

/// A statement written once for both backends, with `?` placeholders.
#[derive(Debug)]
pub(crate) struct Sql {
    text: &'static str,
    numbered: OnceLock<String>,
}

impl Sql {
    /// The statement `text`, with `?` placeholders.
    pub(crate) const fn new(text: &'static str) -> Self {
        Self {
            text,
            numbered: OnceLock::new(),
        }
    }

    /// The statement as written (SQLite's, for sqlx and for the rusqlite writing connection).
    pub(crate) const fn text(&self) -> &'static str {
        self.text
    }

    /// The statement with PostgreSQL's numbered placeholders, numbered the first time it is asked for.
    pub(crate) fn numbered(&self) -> &str {
        self.numbered.get_or_init(|| numbered(self.text))
    }
}

/// A database the store runs on, as far as the text of a shared statement differs: how it spells placeholders.
pub(crate) trait Dialect: sqlx::Database {
    /// `statement` as this database takes it.
    fn sql(statement: &'static Sql) -> &'static str;
}

impl Dialect for Sqlite {
    fn sql(statement: &'static Sql) -> &'static str {
        statement.text()
    }
}

impl Dialect for Postgres {
    fn sql(statement: &'static Sql) -> &'static str {
        statement.numbered()
    }
}

/// `?` placeholders numbered `$1, $2, …` for PostgreSQL.
fn numbered(sql: &str) -> String {
    let mut out = String::with_capacity(sql.len() + 16);
    let mut n = 0;
    for c in sql.chars() {
        if c == '?' {
            n += 1;
            out.push('$');
            out.push_str(&n.to_string());
        } else {
            out.push(c);
        }
    }
    out
}

/// The statement concatenated from `text` (string literals, or macros that expand to them), with `?`
/// placeholders, as the database `$db` takes it: a [`Sql`] kept in a static of its own, so that PostgreSQL's
/// numbering is done once.
macro_rules! statement {
    ($db:ty, $($text:expr),+ $(,)?) => {{
        static STATEMENT: $crate::sql::Sql = $crate::sql::Sql::new(concat!($($text),+));
        <$db as $crate::sql::Dialect>::sql(&STATEMENT)
    }};
}
pub(crate) use statement;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn placeholders_are_numbered_in_order_for_postgres_only() {
        static UPDATE: Sql = Sql::new("UPDATE t SET a = ? WHERE b = ? AND c = ?");
        assert_eq!(Sqlite::sql(&UPDATE), "UPDATE t SET a = ? WHERE b = ? AND c = ?");
        assert_eq!(Postgres::sql(&UPDATE), "UPDATE t SET a = $1 WHERE b = $2 AND c = $3");
        assert_eq!(
            statement!(Postgres, "SELECT ", "x FROM t WHERE y = ?"),
            "SELECT x FROM t WHERE y = $1"
        );
    }
}
