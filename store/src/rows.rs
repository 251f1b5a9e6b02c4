//! Reading rows: one column as its field's type ([`get`]), a record whose fields
//! are named as its columns ([`record!`]), and the rows a query selects, read by
//! a module's reader ([`one`], [`all`]).

use gpki_pki::{Error, ErrorKind, Result};
use sqlx::any::{AnyArguments, AnyRow};
use sqlx::{Any, AnyPool, Row};

use crate::db_err;

/// A query with its arguments bound.
pub(crate) type AnyQuery<'q> = sqlx::query::Query<'q, Any, AnyArguments<'q>>;

/// Column `col` of `row`.
pub(crate) fn get<'r, T>(row: &'r AnyRow, col: &str) -> Result<T>
where
    T: sqlx::Decode<'r, Any> + sqlx::Type<Any>,
{
    row.try_get(col).map_err(db_err)
}

/// Column `col` of `row`, an integer, as a flag (anything but 0 is true).
pub(crate) fn flag(row: &AnyRow, col: &str) -> Result<bool> {
    Ok(get::<i64>(row, col)? != 0)
}

/// The row `query` selects, if any, read by `read`.
pub(crate) async fn one<T>(
    pool: &AnyPool,
    query: AnyQuery<'_>,
    read: fn(&AnyRow) -> Result<T>,
) -> Result<Option<T>> {
    let row = query.fetch_optional(pool).await.map_err(db_err)?;
    row.as_ref().map(read).transpose()
}

/// Every row `query` selects, read by `read`.
pub(crate) async fn all<T>(
    pool: &AnyPool,
    query: AnyQuery<'_>,
    read: fn(&AnyRow) -> Result<T>,
) -> Result<Vec<T>> {
    let rows = query.fetch_all(pool).await.map_err(db_err)?;
    rows.iter().map(read).collect()
}

/// `Type { field, … }` from `row`, each field from the column of its name, or
/// `field: expr` for one read otherwise; inside a function that returns `Result`.
macro_rules! record {
    ($row:expr, $ty:ident { $($field:ident $(: $value:expr)?),* $(,)? }) => {
        $ty { $($field: $crate::rows::record!(@field $row, $field $(, $value)?),)* }
    };
    (@field $row:expr, $field:ident) => {
        $crate::rows::get($row, stringify!($field))?
    };
    (@field $row:expr, $field:ident, $value:expr) => {
        $value
    };
}
pub(crate) use record;

/// Runs `insert` (an INSERT … RETURNING) and appends `audit` at `now`, in one
/// transaction; the row it returns read by `read`. When `taken` is given, a key
/// recorded already is refused `AlreadyExists` with that message.
pub(crate) async fn insert_audited<T>(
    pool: &AnyPool,
    insert: AnyQuery<'_>,
    read: fn(&AnyRow) -> Result<T>,
    taken: Option<String>,
    audit: &crate::AuditEvent,
    now: i64,
) -> Result<T> {
    let mut tx = pool.begin().await.map_err(db_err)?;
    let row = insert
        .fetch_one(&mut *tx)
        .await
        .map_err(|e| match (db_err(e), taken) {
            (e, Some(taken)) if e.kind == ErrorKind::AlreadyExists => {
                Error::new(ErrorKind::AlreadyExists, taken)
            }
            (e, _) => e,
        })?;
    let value = read(&row)?;
    crate::audit::append(&mut tx, audit, now).await?;
    tx.commit().await.map_err(db_err)?;
    Ok(value)
}

/// [`insert_audited`] of an INSERT … RETURNING id: the new row's id.
pub(crate) async fn insert_id(
    pool: &AnyPool,
    insert: AnyQuery<'_>,
    taken: Option<String>,
    audit: &crate::AuditEvent,
    now: i64,
) -> Result<i64> {
    insert_audited(pool, insert, |r| get(r, "id"), taken, audit, now).await
}

/// Runs `update` and appends `audit` at `now`, in one transaction, when it
/// changes exactly one row; otherwise nothing is written and the answer is
/// `refused`.
pub(crate) async fn update_audited(
    pool: &AnyPool,
    update: AnyQuery<'_>,
    refused: Error,
    audit: &crate::AuditEvent,
    now: i64,
) -> Result<()> {
    let mut tx = pool.begin().await.map_err(db_err)?;
    let done = update.execute(&mut *tx).await.map_err(db_err)?;
    if done.rows_affected() != 1 {
        return Err(refused);
    }
    crate::audit::append(&mut tx, audit, now).await?;
    tx.commit().await.map_err(db_err)
}
