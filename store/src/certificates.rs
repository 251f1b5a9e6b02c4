//! Certificates. A certificate row is written in state `pending`, with its serial
//! and tbsCertificate, before the CA signs (invariant 1); the signed DER is
//! attached afterwards. Revocation is revocation.rs, CRLs crls.rs.

use gpki_pki::{Error, ErrorKind, Reason, Result};
use sqlx::any::AnyRow;
use sqlx::Row;

use crate::audit::{append, append_many, AuditEvent};
use crate::rows::{self, get, record};
use std::sync::Arc;

use crate::writer::Done;
use crate::{db_err, Store};

mod official;
#[cfg(test)]
mod tests;

use official::bind_official;
pub(crate) use official::{backfill_official_numbers, OFFICIAL_PROFILE};

/// Where a certificate is in its life.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum CertStatus {
    /// Recorded, not (known to be) signed.
    Pending,
    Issued,
    Revoked,
    /// Revoked with certificateHold; may be released.
    Hold,
    /// Recorded, then given up before signing (its key was lost).
    Abandoned,
}

impl CertStatus {
    pub fn as_str(self) -> &'static str {
        match self {
            CertStatus::Pending => "pending",
            CertStatus::Issued => "issued",
            CertStatus::Revoked => "revoked",
            CertStatus::Hold => "hold",
            CertStatus::Abandoned => "abandoned",
        }
    }
}

impl std::str::FromStr for CertStatus {
    type Err = Error;
    fn from_str(s: &str) -> Result<Self> {
        Ok(match s {
            "pending" => CertStatus::Pending,
            "issued" => CertStatus::Issued,
            "revoked" => CertStatus::Revoked,
            "hold" => CertStatus::Hold,
            "abandoned" => CertStatus::Abandoned,
            _ => {
                return Err(Error::malformed(format!(
                    "unknown status `{s}` (pending, issued, revoked, hold, abandoned)"
                )))
            }
        })
    }
}

impl std::fmt::Display for CertStatus {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A certificate to record before signing.
#[derive(Debug, Clone)]
pub struct NewCertificate {
    pub issuer_id: i64,
    pub serial: String,
    pub subject: String,
    pub profile: String,
    pub not_before: i64,
    pub not_after: i64,
    pub spki_sha256: String,
    pub tbs: Vec<u8>,
    pub renewed_from: Option<i64>,
    /// Idempotency key of a batch row: one certificate per (issuer, key).
    pub request_key: Option<String>,
}

#[derive(Debug, Clone, serde::Serialize)]
pub struct CertificateRecord {
    pub id: i64,
    pub issuer_id: i64,
    pub serial: String,
    pub subject: String,
    pub profile: String,
    pub status: CertStatus,
    pub not_before: i64,
    pub not_after: i64,
    pub spki_sha256: String,
    #[serde(skip)]
    pub tbs: Vec<u8>,
    #[serde(skip)]
    pub der: Option<Vec<u8>>,
    pub revoked_at: Option<i64>,
    pub reason: Option<i64>,
    pub invalidity_date: Option<i64>,
    pub revocation_seq: Option<i64>,
    pub renewed_from: Option<i64>,
    pub request_key: Option<String>,
    pub created_at: i64,
}

/// Filters for `gpki cert list`.
#[derive(Debug, Clone, Default)]
pub struct CertFilter {
    pub issuer_id: Option<i64>,
    pub status: Option<CertStatus>,
    pub profile: Option<String>,
    pub subject_contains: Option<String>,
    pub expires_before: Option<i64>,
    pub limit: i64,
}

pub(crate) const CERT_COLUMNS: &str = "id, issuer_id, serial, subject, profile, status, not_before, not_after, spki_sha256, \
    tbs, der, revoked_at, reason, invalidity_date, revocation_seq, renewed_from, request_key, created_at";

pub(crate) fn cert_from_row(row: &AnyRow) -> Result<CertificateRecord> {
    let status: String = get(row, "status")?;
    Ok(record!(
        row,
        CertificateRecord {
            id,
            issuer_id,
            serial,
            subject,
            profile,
            status: status.parse()?,
            not_before,
            not_after,
            spki_sha256,
            tbs,
            der,
            revoked_at,
            reason,
            invalidity_date,
            revocation_seq,
            renewed_from,
            request_key,
            created_at
        }
    ))
}

fn duplicate_serial(e: Error, serial: &str) -> Error {
    if e.kind == ErrorKind::AlreadyExists {
        Error::new(
            ErrorKind::AlreadyExists,
            format!("serial {serial} or its request key is already recorded for this CA"),
        )
        .because(Reason::AlreadyRecorded {
            serial: serial.to_string(),
        })
    } else {
        e
    }
}

/// Serialises, per public key, recording a certificate and revoking one for key
/// compromise. PostgreSQL (READ COMMITTED) would otherwise let an INSERT miss a
/// revocation committed while it ran; SQLite has one writer at a time already.
/// The writer's groups take the same locks (`admit_locked`), by the same hash.
pub(crate) async fn key_lock(
    backend: crate::Backend,
    conn: &mut sqlx::AnyConnection,
    spki_sha256: &str,
) -> Result<()> {
    if backend == crate::Backend::Postgres {
        sqlx::query("SELECT pg_advisory_xact_lock(hashtextextended($1, 0))")
            .bind(spki_sha256)
            .execute(&mut *conn)
            .await
            .map_err(db_err)?;
    }
    Ok(())
}

/// RFC 5280 reason codes that say the private key is in other hands: keyCompromise
/// and cACompromise. A key revoked for either is never certified again.
const COMPROMISED: &str = "status = 'revoked' AND reason IN (1, 2)";

/// [`COMPROMISED`] for the certificates row named `alias` in a query.
pub(crate) fn compromised_in(alias: &str) -> String {
    format!("{alias}.status = 'revoked' AND {alias}.reason IN (1, 2)")
}

/// Records `c` as pending. The outer error is the store's (the transaction is
/// spoiled); the inner one a refusal that wrote nothing (its key is compromised,
/// its request key recorded already), which leaves the transaction usable.
async fn insert_pending(
    conn: &mut sqlx::AnyConnection,
    c: &NewCertificate,
    now: i64,
) -> Result<Result<i64>> {
    // The compromised-key check and the insert are one statement: no revocation
    // can slip between them. A request key recorded before inserts nothing
    // rather than failing the statement (and a group's transaction with it).
    let sql = format!(
        "INSERT INTO certificates (issuer_id, serial, subject, profile, status, not_before, not_after, spki_sha256, \
         tbs, renewed_from, request_key, created_at) \
         SELECT $1, $2, $3, $4, 'pending', $5, $6, $7, $8, $9, $10, $11 \
         WHERE NOT EXISTS (SELECT 1 FROM certificates WHERE spki_sha256 = $7 AND {COMPROMISED}) \
         ON CONFLICT (issuer_id, request_key) WHERE request_key IS NOT NULL DO NOTHING RETURNING id"
    );
    let row = sqlx::query(&sql)
        .bind(c.issuer_id)
        .bind(&c.serial)
        .bind(&c.subject)
        .bind(&c.profile)
        .bind(c.not_before)
        .bind(c.not_after)
        .bind(&c.spki_sha256)
        .bind(&c.tbs)
        .bind(c.renewed_from)
        .bind(&c.request_key)
        .bind(now)
        .fetch_optional(&mut *conn)
        .await
        .map_err(|e| duplicate_serial(db_err(e), &c.serial))?;
    if let Some(row) = row {
        let id: i64 = row.try_get("id").map_err(db_err)?;
        if let Err(refused) = bind_official(conn, c, now).await? {
            // Never visible outside this transaction: taken back, nothing written.
            sqlx::query("DELETE FROM certificates WHERE id = $1")
                .bind(id)
                .execute(&mut *conn)
                .await
                .map_err(db_err)?;
            return Ok(Err(refused));
        }
        return Ok(Ok(id));
    }
    if let Some(key) = &c.request_key {
        let taken: Option<i64> = sqlx::query_scalar(
            "SELECT id FROM certificates WHERE issuer_id = $1 AND request_key = $2",
        )
        .bind(c.issuer_id)
        .bind(key)
        .fetch_optional(&mut *conn)
        .await
        .map_err(db_err)?;
        if taken.is_some() {
            return Ok(Err(duplicate_serial(
                Error::new(ErrorKind::AlreadyExists, "request key recorded"),
                &c.serial,
            )));
        }
    }
    let compromised: Option<i64> = sqlx::query_scalar(&format!(
        "SELECT id FROM certificates WHERE spki_sha256 = $1 AND {COMPROMISED} LIMIT 1"
    ))
    .bind(&c.spki_sha256)
    .fetch_optional(&mut *conn)
    .await
    .map_err(db_err)?;
    if compromised.is_some() {
        return Ok(Err(compromised_error(conn, &c.spki_sha256).await));
    }
    // Neither is there now: the row that took the key was renamed (abandoned)
    // since the insert looked. Not a refusal to keep.
    Ok(Err(Error::new(
        ErrorKind::Unavailable,
        format!(
            "the record of request key {} changed while serial {} was recorded; ask again",
            c.request_key.as_deref().unwrap_or("(none)"),
            c.serial
        ),
    )))
}
/// Attaches the signed DER to pending row `id` and marks it issued.
async fn set_issued(conn: &mut sqlx::AnyConnection, id: i64, der: &[u8]) -> Result<()> {
    let done = sqlx::query(
        "UPDATE certificates SET status = 'issued', der = $1 WHERE id = $2 AND status = 'pending'",
    )
    .bind(der)
    .bind(id)
    .execute(&mut *conn)
    .await
    .map_err(db_err)?;
    if done.rows_affected() != 1 {
        return Err(Error::conflict(format!(
            "certificate row {id} is not pending"
        )));
    }
    Ok(())
}

/// The refusal for a compromised key, naming the certificate that was revoked.
async fn compromised_error(conn: &mut sqlx::AnyConnection, spki_sha256: &str) -> Error {
    let sql = format!(
        "SELECT a.name AS ca, c.serial AS serial, c.reason AS reason FROM certificates c \
         JOIN authorities a ON a.id = c.issuer_id WHERE c.spki_sha256 = $1 AND {} LIMIT 1",
        compromised_in("c")
    );
    let found = sqlx::query(&sql)
        .bind(spki_sha256)
        .fetch_optional(&mut *conn)
        .await;
    let named = match found {
        Ok(Some(r)) => {
            let ca: String = r.try_get("ca").unwrap_or_default();
            let serial: String = r.try_get("serial").unwrap_or_default();
            let reason: i64 = r.try_get("reason").unwrap_or(1);
            let why = if reason == 2 {
                "cACompromise"
            } else {
                "keyCompromise"
            };
            format!(" (certificate {serial} of CA `{ca}`, revoked for {why})")
        }
        _ => String::new(),
    };
    Error::policy(format!(
        "this public key was revoked as compromised{named} and is never certified again \
         (CA/Browser Forum BR §4.9.1.1, §6.1.1.3)"
    ))
    .because(Reason::KeyCompromised {
        spki_sha256: spki_sha256.to_string(),
    })
}

pub(crate) async fn bump_revocation_seq(
    conn: &mut sqlx::AnyConnection,
    issuer_id: i64,
) -> Result<i64> {
    let row = sqlx::query("UPDATE authorities SET revocation_seq = revocation_seq + 1 WHERE id = $1 RETURNING revocation_seq")
        .bind(issuer_id)
        .fetch_one(&mut *conn)
        .await
        .map_err(db_err)?;
    row.try_get("revocation_seq").map_err(db_err)
}

impl Store {
    /// Step 5 of issuance (after the request is verified, planned and linted):
    /// records the serial and tbsCertificate as `pending`, before any signature.
    /// A duplicate serial (or batch request key) for the same CA is refused.
    /// Committed with the other writes of the moment (group commit).
    pub async fn record_tbs(&self, cert: &NewCertificate) -> Result<i64> {
        let cert = Arc::new(cert.clone());
        // The key's lock (see `key_lock`), taken by the group in its order.
        self.writer
            .admit_locked::<Result<i64>>(vec![cert.spki_sha256.clone()], move |conn| {
                let cert = cert.clone();
                Box::pin(async move {
                    // A refusal is this job's answer, not the group's failure.
                    let id = insert_pending(conn, &cert, gpki_pki::time::now()).await?;
                    Ok(Done::new(id, Vec::new()))
                })
            })
            .await?
    }

    /// Records many pending certificates in one transaction (bulk issuance).
    pub async fn record_tbs_many(&self, certs: &[NewCertificate]) -> Result<Vec<i64>> {
        let mut tx = self.pool().begin().await.map_err(db_err)?;
        let now = gpki_pki::time::now();
        // In one order, so two batches cannot deadlock on their key locks.
        let mut keys: Vec<&str> = certs.iter().map(|c| c.spki_sha256.as_str()).collect();
        keys.sort_unstable();
        keys.dedup();
        for k in keys {
            key_lock(self.backend(), &mut tx, k).await?;
        }
        let mut ids = Vec::with_capacity(certs.len());
        for c in certs {
            ids.push(insert_pending(&mut tx, c, now).await??);
        }
        tx.commit().await.map_err(db_err)?;
        Ok(ids)
    }

    /// Which of `spki_sha256` (SubjectPublicKeyInfo SHA-256, hex) belong to a key
    /// revoked for keyCompromise or cACompromise, with the refusal for each.
    pub async fn compromised_keys(&self, spki_sha256: &[String]) -> Result<Vec<(String, Error)>> {
        let mut out = Vec::new();
        for chunk in spki_sha256.chunks(500) {
            let marks: Vec<String> = (1..=chunk.len()).map(|i| format!("${i}")).collect();
            let sql = format!(
                "SELECT DISTINCT spki_sha256 FROM certificates WHERE spki_sha256 IN ({}) AND {COMPROMISED}",
                marks.join(", ")
            );
            let mut q = sqlx::query(&sql);
            for k in chunk {
                q = q.bind(k);
            }
            let rows = q.fetch_all(self.pool()).await.map_err(db_err)?;
            if rows.is_empty() {
                continue;
            }
            let mut conn = self.pool().acquire().await.map_err(db_err)?;
            for r in rows {
                let k: String = r.try_get("spki_sha256").map_err(db_err)?;
                let e = compromised_error(&mut conn, &k).await;
                out.push((k, e));
            }
        }
        Ok(out)
    }

    /// Final step of issuance: attaches the signed DER and marks the row issued.
    /// Committed with the other writes of the moment (group commit). Returns
    /// the row as it now stands.
    pub async fn mark_issued(
        &self,
        id: i64,
        der: &[u8],
        audit: &AuditEvent,
    ) -> Result<CertificateRecord> {
        let (der, audit) = (Arc::new(der.to_vec()), audit.clone());
        self.writer
            .write(move |conn| {
                let (der, audit) = (der.clone(), audit.clone());
                Box::pin(async move {
                    let row = sqlx::query(&format!(
                        "UPDATE certificates SET status = 'issued', der = $1 \
                         WHERE id = $2 AND status = 'pending' RETURNING {CERT_COLUMNS}"
                    ))
                    .bind(&*der)
                    .bind(id)
                    .fetch_optional(&mut *conn)
                    .await
                    .map_err(db_err)?
                    .ok_or_else(|| {
                        Error::conflict(format!("certificate row {id} is not pending"))
                    })?;
                    Ok(Done::new(cert_from_row(&row)?, vec![audit]))
                })
            })
            .await
    }

    /// [`Store::mark_issued`] for many rows in one transaction.
    pub async fn mark_issued_many(&self, issued: &[(i64, Vec<u8>, AuditEvent)]) -> Result<()> {
        let mut tx = self.pool().begin().await.map_err(db_err)?;
        let now = gpki_pki::time::now();
        for (id, der, _) in issued {
            set_issued(&mut tx, *id, der).await?;
        }
        let events: Vec<&AuditEvent> = issued.iter().map(|(_, _, e)| e).collect();
        append_many(&mut tx, &events, now).await?;
        tx.commit().await.map_err(db_err)
    }

    /// Gives up a pending row whose key is lost; its serial stays reserved, and its
    /// request key is set aside so the request can be issued afresh.
    /// Returns whether this call abandoned it (false: it was signed, or abandoned,
    /// meanwhile; nothing is written then, not even the audit record).
    pub async fn abandon(&self, id: i64, audit: &AuditEvent) -> Result<bool> {
        let mut tx = self.pool().begin().await.map_err(db_err)?;
        // A status change like a revocation: a running responder that saw the row
        // pending (and answered good) follows the issuer's revocation sequence and
        // the notification, and answers unknown from its next read. The first
        // statement writes (SQLite: a transaction that read first could not take
        // the write lock once another writer moved on), and locks the issuer's
        // counter first, as a revocation does.
        let Some(row) = sqlx::query(
            "UPDATE authorities SET revocation_seq = revocation_seq + 1 \
             WHERE id = (SELECT issuer_id FROM certificates WHERE id = $1 AND status = 'pending') \
             RETURNING id, revocation_seq",
        )
        .bind(id)
        .fetch_optional(&mut *tx)
        .await
        .map_err(db_err)?
        else {
            return Ok(false);
        };
        let issuer_id: i64 = row.try_get("id").map_err(db_err)?;
        let seq: i64 = row.try_get("revocation_seq").map_err(db_err)?;
        let changed = sqlx::query(
            "UPDATE certificates SET status = 'abandoned', revocation_seq = $2, \
             request_key = CASE WHEN request_key IS NULL THEN NULL ELSE request_key || '~abandoned-' || CAST(id AS TEXT) END \
             WHERE id = $1 AND status = 'pending'",
        )
        .bind(id)
        .bind(seq)
        .execute(&mut *tx)
        .await
        .map_err(db_err)?
        .rows_affected();
        if changed != 1 {
            return Ok(false);
        }
        // The employee number it bound stays bound: the request is asked again
        // for the same official, and a binding released here could go to another
        // official before it is.
        crate::status::notify(self.backend(), &mut tx, issuer_id).await?;
        append(&mut tx, audit, gpki_pki::time::now()).await?;
        tx.commit().await.map_err(db_err)?;
        Ok(true)
    }

    pub async fn certificate(
        &self,
        issuer_id: i64,
        serial: &str,
    ) -> Result<Option<CertificateRecord>> {
        let sql =
            format!("SELECT {CERT_COLUMNS} FROM certificates WHERE issuer_id = $1 AND serial = $2");
        rows::one(
            self.pool(),
            sqlx::query(&sql).bind(issuer_id).bind(serial),
            cert_from_row,
        )
        .await
    }

    pub async fn certificate_by_id(&self, id: i64) -> Result<CertificateRecord> {
        let sql = format!("SELECT {CERT_COLUMNS} FROM certificates WHERE id = $1");
        rows::one(self.pool(), sqlx::query(&sql).bind(id), cert_from_row)
            .await?
            .ok_or_else(|| Error::not_found(format!("no certificate row {id}")))
    }

    /// Certificates with any of `serials` under `issuer_id` (any status).
    pub async fn certificate_by_request_key(
        &self,
        issuer_id: i64,
        key: &str,
    ) -> Result<Option<CertificateRecord>> {
        let sql = format!(
            "SELECT {CERT_COLUMNS} FROM certificates WHERE issuer_id = $1 AND request_key = $2"
        );
        rows::one(
            self.pool(),
            sqlx::query(&sql).bind(issuer_id).bind(key),
            cert_from_row,
        )
        .await
    }

    /// Request keys already used under `issuer_id` that start with `prefix`, with
    /// their status (for resuming a batch without one query per row).
    pub async fn request_keys(
        &self,
        issuer_id: i64,
        prefix: &str,
    ) -> Result<Vec<(String, CertStatus, i64)>> {
        let rows = sqlx::query(
            "SELECT request_key, status, id FROM certificates WHERE issuer_id = $1 AND request_key IS NOT NULL \
             AND substr(request_key, 1, CAST($2 AS INTEGER)) = $3",
        )
        .bind(issuer_id)
        .bind(prefix.len() as i64)
        .bind(prefix)
        .fetch_all(self.pool())
        .await
        .map_err(db_err)?;
        rows.iter()
            .map(|r| {
                let s: String = r.try_get("status").map_err(db_err)?;
                Ok((
                    r.try_get("request_key").map_err(db_err)?,
                    s.parse()?,
                    r.try_get("id").map_err(db_err)?,
                ))
            })
            .collect()
    }

    /// Lists certificates, newest first.
    pub async fn list_certificates(&self, filter: &CertFilter) -> Result<Vec<CertificateRecord>> {
        let mut sql = format!("SELECT {CERT_COLUMNS} FROM certificates WHERE 1 = 1");
        let mut n = 0;
        let mut next = || {
            n += 1;
            format!("${n}")
        };
        if filter.issuer_id.is_some() {
            sql += &format!(" AND issuer_id = {}", next());
        }
        if filter.status.is_some() {
            sql += &format!(" AND status = {}", next());
        }
        if filter.profile.is_some() {
            sql += &format!(" AND profile = {}", next());
        }
        if filter.subject_contains.is_some() {
            sql += &format!(" AND subject LIKE {}", next());
        }
        if filter.expires_before.is_some() {
            sql += &format!(" AND not_after < {}", next());
        }
        sql += &format!(" ORDER BY id DESC LIMIT {}", next());
        let mut q = sqlx::query(&sql);
        if let Some(v) = filter.issuer_id {
            q = q.bind(v);
        }
        if let Some(v) = filter.status {
            q = q.bind(v.as_str());
        }
        if let Some(v) = &filter.profile {
            q = q.bind(v.clone());
        }
        if let Some(v) = &filter.subject_contains {
            q = q.bind(format!("%{v}%"));
        }
        if let Some(v) = filter.expires_before {
            q = q.bind(v);
        }
        q = q.bind(if filter.limit > 0 { filter.limit } else { 1000 });
        let rows = q.fetch_all(self.pool()).await.map_err(db_err)?;
        rows.iter().map(cert_from_row).collect()
    }
}
