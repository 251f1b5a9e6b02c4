//! What the OCSP responder reads: each certificate's status, in pages for the
//! initial load, by revocation sequence for changes, and one serial at a time for a
//! cache miss. PostgreSQL announces status changes on the `gpki_status` channel.

use gpki_pki::Result;
use sqlx::any::AnyRow;
use sqlx::Row;

use crate::rows::{self, record};
use crate::{db_err, Backend, Store};

/// The channel `revoke` and `release_hold` notify on PostgreSQL, with the issuer id.
pub const STATUS_CHANNEL: &str = "gpki_status";

/// One certificate's revocation status.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StatusRow {
    pub id: i64,
    pub serial: String,
    /// `pending`, `issued`, `revoked`, `hold` or `abandoned`.
    pub status: String,
    pub revoked_at: Option<i64>,
    pub reason: Option<i64>,
    pub revocation_seq: Option<i64>,
    pub not_after: i64,
}

/// Where a responder has read up to for one CA.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct StatusMark {
    /// The highest certificate id seen.
    pub max_id: i64,
    /// The highest revocation sequence seen.
    pub revocation_seq: i64,
}

const STATUS_COLUMNS: &str = "id, serial, status, revoked_at, reason, revocation_seq, not_after";

fn status_from_row(row: &AnyRow) -> Result<StatusRow> {
    Ok(record!(
        row,
        StatusRow {
            id,
            serial,
            status,
            revoked_at,
            reason,
            revocation_seq,
            not_after
        }
    ))
}

impl Store {
    /// Up to `limit` certificates of `issuer_id` with id above `after_id`, by id.
    pub async fn status_page(
        &self,
        issuer_id: i64,
        after_id: i64,
        limit: i64,
    ) -> Result<Vec<StatusRow>> {
        let sql = format!(
            "SELECT {STATUS_COLUMNS} FROM certificates WHERE issuer_id = $1 AND id > $2 ORDER BY id LIMIT $3"
        );
        rows::all(
            self.pool(),
            sqlx::query(&sql).bind(issuer_id).bind(after_id).bind(limit),
            status_from_row,
        )
        .await
    }

    /// Certificates of `issuer_id` whose status changed after revocation sequence
    /// `since` (revocations, holds and releases), oldest change first.
    pub async fn status_changes(&self, issuer_id: i64, since: i64) -> Result<Vec<StatusRow>> {
        let sql = format!(
            "SELECT {STATUS_COLUMNS} FROM certificates WHERE issuer_id = $1 AND revocation_seq > $2 \
             ORDER BY revocation_seq"
        );
        rows::all(
            self.pool(),
            sqlx::query(&sql).bind(issuer_id).bind(since),
            status_from_row,
        )
        .await
    }

    /// The status of one serial of `issuer_id`, if the store knows it.
    pub async fn status_of(&self, issuer_id: i64, serial: &str) -> Result<Option<StatusRow>> {
        let sql = format!(
            "SELECT {STATUS_COLUMNS} FROM certificates WHERE issuer_id = $1 AND serial = $2"
        );
        rows::one(
            self.pool(),
            sqlx::query(&sql).bind(issuer_id).bind(serial),
            status_from_row,
        )
        .await
    }

    /// The newest certificate id and revocation sequence of `issuer_id`: cheap to
    /// poll, and it changes whenever a certificate is added or changes status.
    pub async fn status_mark(&self, issuer_id: i64) -> Result<StatusMark> {
        let row = sqlx::query(
            "SELECT (SELECT COALESCE(MAX(id), 0) FROM certificates WHERE issuer_id = $1) AS max_id, \
             revocation_seq FROM authorities WHERE id = $1",
        )
        .bind(issuer_id)
        .fetch_optional(self.pool())
        .await
        .map_err(db_err)?
        .ok_or_else(|| gpki_pki::Error::not_found(format!("no CA with id {issuer_id}")))?;
        Ok(StatusMark {
            max_id: row.try_get("max_id").map_err(db_err)?,
            revocation_seq: row.try_get("revocation_seq").map_err(db_err)?,
        })
    }

    /// A listener for status-change notifications: `Some` on PostgreSQL, `None` on
    /// SQLite (whose readers poll [`Store::status_mark`]).
    pub async fn status_listener(&self) -> Result<Option<StatusListener>> {
        if self.backend != Backend::Postgres {
            return Ok(None);
        }
        let mut listener = sqlx::postgres::PgListener::connect(&self.url)
            .await
            .map_err(db_err)?;
        listener.listen(STATUS_CHANNEL).await.map_err(db_err)?;
        Ok(Some(StatusListener { listener }))
    }
}

/// Receives `gpki_status` notifications from PostgreSQL.
pub struct StatusListener {
    listener: sqlx::postgres::PgListener,
}

impl StatusListener {
    /// Waits for the next notification and returns the issuer id it names. A lost
    /// connection is an `Unavailable` error; the next call reconnects.
    pub async fn recv(&mut self) -> Result<Option<i64>> {
        let n = self.listener.recv().await.map_err(db_err)?;
        Ok(n.payload().parse().ok())
    }
}

/// Tells PostgreSQL listeners that a status of `issuer_id` changed; delivered when
/// the transaction commits. Nothing on SQLite.
pub(crate) async fn notify(
    backend: Backend,
    conn: &mut sqlx::AnyConnection,
    issuer_id: i64,
) -> Result<()> {
    if backend == Backend::Postgres {
        sqlx::query("SELECT pg_notify($1, $2)")
            .bind(STATUS_CHANNEL)
            .bind(issuer_id.to_string())
            .execute(&mut *conn)
            .await
            .map_err(db_err)?;
    }
    Ok(())
}
