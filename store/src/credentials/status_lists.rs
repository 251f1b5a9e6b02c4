//! Status lists: the bit strings credentials' statuses are published in, each
//! served at its URI, and which of a list's indexes are revoked.

use gpki_pki::{Error, Result};
use sqlx::any::AnyRow;
use sqlx::Row;

use crate::audit::append;
use crate::rows::{self, record};
use crate::{db_err, AuditEvent, Store};

/// The most bytes a status list's bit string may have (the bound its encoder and
/// every gpki verifier keep, `gpki_credentials::status::MAX_LIST_BYTES`).
pub const MAX_LIST_BYTES: i64 = 16 * 1024 * 1024;

#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct StatusListRecord {
    pub id: i64,
    pub name: String,
    pub uri: String,
    pub bits: i64,
    pub size: i64,
    pub used: i64,
    pub status_seq: i64,
    pub created_at: i64,
}

pub(super) fn list_from_row(r: &AnyRow) -> Result<StatusListRecord> {
    Ok(record!(
        r,
        StatusListRecord {
            id,
            name,
            uri,
            bits,
            size,
            used,
            status_seq,
            created_at
        }
    ))
}

pub(super) const LIST_COLUMNS: &str = "id, name, uri, bits, size, used, status_seq, created_at";

impl Store {
    /// Creates a status list of `size` entries of `bits` bits, served at `uri`.
    pub async fn create_status_list(
        &self,
        name: &str,
        uri: &str,
        bits: u8,
        size: i64,
        audit: &AuditEvent,
    ) -> Result<StatusListRecord> {
        if !matches!(bits, 1 | 2 | 4 | 8) {
            return Err(Error::malformed(format!(
                "status list bits is {bits}; it must be 1, 2, 4 or 8"
            )));
        }
        if !(8..=1 << 27).contains(&size) {
            return Err(Error::malformed(format!(
                "status list size {size} is outside 8 ..= 134217728"
            )));
        }
        // What a verifier will inflate: the same bound the list's encoder keeps.
        if (size * i64::from(bits) + 7) / 8 > MAX_LIST_BYTES {
            return Err(Error::malformed(format!(
                "a status list of {size} entries of {bits} bits is larger than {MAX_LIST_BYTES} bytes"
            )));
        }
        let now = gpki_pki::time::now();
        let mut tx = self.pool().begin().await.map_err(db_err)?;
        let exists = sqlx::query("SELECT name FROM status_lists WHERE name = $1 OR uri = $2")
            .bind(name)
            .bind(uri)
            .fetch_optional(&mut *tx)
            .await
            .map_err(db_err)?;
        if exists.is_some() {
            return Err(Error::conflict(format!(
                "a status list named {name} or served at {uri} exists"
            )));
        }
        let row = sqlx::query(&format!(
            "INSERT INTO status_lists (name, uri, bits, size, created_at) VALUES ($1, $2, $3, $4, $5) \
             RETURNING {LIST_COLUMNS}"
        ))
        .bind(name)
        .bind(uri)
        .bind(i64::from(bits))
        .bind(size)
        .bind(now)
        .fetch_one(&mut *tx)
        .await
        .map_err(db_err)?;
        let list = list_from_row(&row)?;
        append(&mut tx, audit, now).await?;
        tx.commit().await.map_err(db_err)?;
        Ok(list)
    }

    pub async fn status_list_by_name(&self, name: &str) -> Result<StatusListRecord> {
        rows::one(
            self.pool(),
            sqlx::query(&format!(
                "SELECT {LIST_COLUMNS} FROM status_lists WHERE name = $1"
            ))
            .bind(name),
            list_from_row,
        )
        .await?
        .ok_or_else(|| Error::not_found(format!("no status list named {name}")))
    }

    pub async fn status_lists(&self) -> Result<Vec<StatusListRecord>> {
        rows::all(
            self.pool(),
            sqlx::query(&format!(
                "SELECT {LIST_COLUMNS} FROM status_lists ORDER BY id"
            )),
            list_from_row,
        )
        .await
    }
    /// The indexes of a list's revoked credentials and the list's `status_seq` they
    /// are current to, read together.
    pub async fn status_list_revoked(&self, list_id: i64) -> Result<(i64, Vec<i64>)> {
        let mut tx = self.pool().begin().await.map_err(db_err)?;
        let seq: i64 = sqlx::query("SELECT status_seq FROM status_lists WHERE id = $1")
            .bind(list_id)
            .fetch_optional(&mut *tx)
            .await
            .map_err(db_err)?
            .ok_or_else(|| Error::not_found(format!("no status list with id {list_id}")))?
            .try_get("status_seq")
            .map_err(db_err)?;
        let idx = sqlx::query(
            "SELECT idx FROM credentials WHERE list_id = $1 AND status = 'revoked' ORDER BY idx",
        )
        .bind(list_id)
        .fetch_all(&mut *tx)
        .await
        .map_err(db_err)?
        .iter()
        .map(|r| r.try_get::<i64, _>("idx").map_err(db_err))
        .collect::<Result<Vec<_>>>()?;
        tx.commit().await.map_err(db_err)?;
        Ok((seq, idx))
    }
}
