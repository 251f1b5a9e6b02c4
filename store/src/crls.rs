//! CRLs: numbers allocated with the revocation watermark they cover, the
//! entries each CRL lists, and the CRLs recorded.

use gpki_pki::{Error, Result};
use sqlx::any::AnyRow;
use sqlx::Row;

use crate::audit::AuditEvent;
use crate::rows::{self, record};
use crate::{db_err, Store};

/// The entries of a CRL as the store holds them: `count` entries, their DER
/// concatenated (each made by `pki::crl::encode_entry` when the status changed).
#[derive(Debug, Clone)]
pub struct CrlEntries {
    pub count: i64,
    pub der: Vec<u8>,
}

/// A reserved CRL number and the revocation watermark it covers.
#[derive(Debug, Clone)]
pub struct CrlAllocation {
    pub crl_number: i64,
    pub watermark: i64,
    /// The newest full CRL before this one, if any.
    pub previous_full: Option<CrlRecord>,
}

#[derive(Debug, Clone, serde::Serialize)]
pub struct CrlRecord {
    pub id: i64,
    pub issuer_id: i64,
    pub crl_number: i64,
    pub delta_base: Option<i64>,
    pub revocation_seq: i64,
    pub this_update: i64,
    pub next_update: i64,
    pub entries: i64,
    #[serde(skip)]
    pub der: Vec<u8>,
}

#[derive(Debug, Clone)]
pub struct NewCrl {
    pub issuer_id: i64,
    pub crl_number: i64,
    pub delta_base: Option<i64>,
    pub watermark: i64,
    pub this_update: i64,
    pub next_update: i64,
    pub entries: i64,
    pub der: Vec<u8>,
}

/// The columns `crl_from_row` reads.
const CRL_COLUMNS: &str =
    "id, issuer_id, crl_number, delta_base, revocation_seq, this_update, next_update, entries, der";

fn crl_from_row(row: &AnyRow) -> Result<CrlRecord> {
    Ok(record!(
        row,
        CrlRecord {
            id,
            issuer_id,
            crl_number,
            delta_base,
            revocation_seq,
            this_update,
            next_update,
            entries,
            der
        }
    ))
}

impl Store {
    /// Reserves the next CRL number for `issuer_id` and reads the revocation
    /// watermark the CRL will cover, atomically.
    pub async fn allocate_crl(&self, issuer_id: i64) -> Result<CrlAllocation> {
        let mut tx = self.pool().begin().await.map_err(db_err)?;
        let row = sqlx::query("UPDATE authorities SET crl_seq = crl_seq + 1 WHERE id = $1 RETURNING crl_seq, revocation_seq")
            .bind(issuer_id)
            .fetch_one(&mut *tx)
            .await
            .map_err(db_err)?;
        let crl_number: i64 = row.try_get("crl_seq").map_err(db_err)?;
        let watermark: i64 = row.try_get("revocation_seq").map_err(db_err)?;
        tx.commit().await.map_err(db_err)?;
        let previous_full = self.latest_crl(issuer_id, true).await?;
        Ok(CrlAllocation {
            crl_number,
            watermark,
            previous_full,
        })
    }

    /// Entries of a full CRL: every revoked or held certificate up to `watermark`,
    /// except those that expired before the previous full CRL was issued and were
    /// already listed on it (RFC 5280 §3.3 lets expired entries drop off).
    pub async fn crl_entries(
        &self,
        issuer_id: i64,
        watermark: i64,
        previous: Option<&CrlRecord>,
    ) -> Result<CrlEntries> {
        let (cutoff, prev_mark) = previous
            .map(|p| (p.this_update, p.revocation_seq))
            .unwrap_or((0, 0));
        let sql = format!(
            "SELECT COUNT(*) AS n, {} AS entries FROM certificates \
             WHERE issuer_id = $1 AND status IN ('revoked', 'hold') AND revocation_seq <= $2 \
             AND (not_after >= $3 OR revocation_seq > $4)",
            self.concat_blobs("crl_entry")
        );
        let row = sqlx::query(&sql)
            .bind(issuer_id)
            .bind(watermark)
            .bind(cutoff)
            .bind(prev_mark)
            .fetch_one(self.pool())
            .await
            .map_err(db_err)?;
        entries_from_row(&row)
    }

    /// Entries of a delta CRL: changes after `base_watermark` up to `watermark`,
    /// releases from hold included (reason removeFromCRL).
    pub async fn delta_entries(
        &self,
        issuer_id: i64,
        base_watermark: i64,
        watermark: i64,
    ) -> Result<CrlEntries> {
        let sql = format!(
            "SELECT COUNT(*) AS n, {} AS entries FROM certificates \
             WHERE issuer_id = $1 AND revocation_seq > $2 AND revocation_seq <= $3 \
             AND (status IN ('revoked', 'hold') OR (status = 'issued' AND reason = 8))",
            self.concat_blobs("crl_entry")
        );
        let row = sqlx::query(&sql)
            .bind(issuer_id)
            .bind(base_watermark)
            .bind(watermark)
            .fetch_one(self.pool())
            .await
            .map_err(db_err)?;
        entries_from_row(&row)
    }

    /// An aggregate that concatenates a BLOB column in the database. SQLite's
    /// group_concat appends a BLOB's bytes as they are; the CAST reads them back as
    /// a BLOB.
    fn concat_blobs(&self, column: &str) -> String {
        match self.backend() {
            crate::Backend::Sqlite => format!("CAST(group_concat({column}, '') AS BLOB)"),
            crate::Backend::Postgres => format!("string_agg({column}, ''::bytea)"),
        }
    }

    /// Stores a signed CRL.
    pub async fn record_crl(&self, crl: &NewCrl, audit: &AuditEvent) -> Result<CrlRecord> {
        let now = gpki_pki::time::now();
        let insert = sqlx::query(
            "INSERT INTO crls (issuer_id, crl_number, delta_base, revocation_seq, this_update, next_update, entries, der, created_at) \
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9) RETURNING id",
        )
        .bind(crl.issuer_id)
        .bind(crl.crl_number)
        .bind(crl.delta_base)
        .bind(crl.watermark)
        .bind(crl.this_update)
        .bind(crl.next_update)
        .bind(crl.entries)
        .bind(&crl.der)
        .bind(now);
        let id: i64 = rows::insert_id(self.pool(), insert, None, audit, now).await?;
        Ok(CrlRecord {
            id,
            issuer_id: crl.issuer_id,
            crl_number: crl.crl_number,
            delta_base: crl.delta_base,
            revocation_seq: crl.watermark,
            this_update: crl.this_update,
            next_update: crl.next_update,
            entries: crl.entries,
            der: crl.der.clone(),
        })
    }

    /// The newest CRL of `issuer_id` (full only, or full or delta).
    /// The newest full and delta CRL numbers of `issuer_id`: cheap to poll, so a
    /// server can tell whether the CRL it holds is still the newest.
    pub async fn crl_numbers(&self, issuer_id: i64) -> Result<(Option<i64>, Option<i64>)> {
        let row = sqlx::query(
            "SELECT MAX(CASE WHEN delta_base IS NULL THEN crl_number END) AS full_n, \
             MAX(CASE WHEN delta_base IS NOT NULL THEN crl_number END) AS delta_n \
             FROM crls WHERE issuer_id = $1",
        )
        .bind(issuer_id)
        .fetch_one(self.pool())
        .await
        .map_err(db_err)?;
        Ok((
            row.try_get("full_n").map_err(db_err)?,
            row.try_get("delta_n").map_err(db_err)?,
        ))
    }

    /// One CRL of `issuer_id` by its number.
    pub async fn crl_by_number(
        &self,
        issuer_id: i64,
        crl_number: i64,
    ) -> Result<Option<CrlRecord>> {
        let sql =
            format!("SELECT {CRL_COLUMNS} FROM crls WHERE issuer_id = $1 AND crl_number = $2");
        rows::one(
            self.pool(),
            sqlx::query(&sql).bind(issuer_id).bind(crl_number),
            crl_from_row,
        )
        .await
    }

    pub async fn latest_crl(&self, issuer_id: i64, full_only: bool) -> Result<Option<CrlRecord>> {
        let kind = if full_only {
            "AND delta_base IS NULL "
        } else {
            ""
        };
        let sql = format!(
            "SELECT {CRL_COLUMNS} FROM crls WHERE issuer_id = $1 {kind}ORDER BY crl_number DESC LIMIT 1"
        );
        rows::one(self.pool(), sqlx::query(&sql).bind(issuer_id), crl_from_row).await
    }
}

fn entries_from_row(row: &AnyRow) -> Result<CrlEntries> {
    let count: i64 = row.try_get("n").map_err(db_err)?;
    let der: Option<Vec<u8>> = row.try_get("entries").map_err(db_err)?;
    Ok(CrlEntries {
        count,
        der: der.unwrap_or_default(),
    })
}

/// The CRL entry DER of a certificate in its new status.
pub(crate) fn crl_entry(
    serial_hex: &str,
    revoked_at: i64,
    reason: i64,
    invalidity_date: Option<i64>,
) -> Result<Vec<u8>> {
    use gpki_pki::crl::{encode_entry, CrlEntry, RevocationReason};
    let serial = hex::decode(serial_hex)
        .map_err(|_| Error::malformed(format!("serial `{serial_hex}` is not hex")))?;
    let reason = RevocationReason::from_code(reason)
        .ok_or_else(|| Error::malformed(format!("unknown reason code {reason}")))?;
    encode_entry(&CrlEntry {
        serial,
        revoked_at,
        reason,
        invalidity_date,
    })
}
