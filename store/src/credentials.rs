//! Mobile credentials' records: status lists and the credentials issued on them.
//!
//! A credential is recorded in two steps, as a certificate is: `allocate_credential`
//! takes a free index on a list (row `pending`, before anything is signed), and
//! `mark_credential_issued` records the signed credential's digest, makes it `valid`
//! and audits it. A crash between the two leaves a pending row whose index no valid
//! credential carries. Revocation sets the row `revoked` and moves the list's
//! `status_seq`, which a served list follows. The lists themselves are
//! `status_lists`.

use gpki_pki::{Error, Reason, Result};
use sqlx::any::AnyRow;
use sqlx::Row;

use crate::audit::append;
use crate::rows::{self, record};
use crate::{db_err, AuditEvent, Store};

mod status_lists;
#[cfg(test)]
mod tests;

pub use status_lists::StatusListRecord;
use status_lists::{list_from_row, LIST_COLUMNS};

/// A list may be filled to this share before new credentials are refused: random
/// indexes keep a credential's place in the list from saying when it was issued, and
/// a fuller list would need many draws to find a free one.
const MAX_FILL_PERCENT: i64 = 75;
/// Draws of a random index before giving up (at 75% fill, 64 draws all taken has a
/// chance of 1e-8).
const DRAWS: usize = 64;

/// What is known of a credential before it is signed.
#[derive(Debug, Clone)]
pub struct NewCredential {
    pub list_id: i64,
    /// `mdoc` or `sd-jwt`.
    pub format: String,
    pub doc_type: String,
    /// The official it is issued to (employee number).
    pub subject: String,
    /// RFC 7638 thumbprint of the holder's public key.
    pub holder_jkt: String,
    /// The signer certificate's serial.
    pub signer_serial: String,
    pub valid_until: i64,
}

#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct CredentialRecord {
    pub id: i64,
    pub list_id: i64,
    pub idx: i64,
    pub format: String,
    pub doc_type: String,
    pub subject: String,
    pub holder_jkt: String,
    pub signer_serial: String,
    /// SHA-256 (hex) of the credential as issued; none while pending.
    pub digest: Option<String>,
    pub issued_at: i64,
    pub valid_until: i64,
    /// `pending`, `valid` or `revoked`.
    pub status: String,
    pub revoked_at: Option<i64>,
    pub reason: Option<String>,
    pub replaced_by: Option<i64>,
}

const CREDENTIAL_COLUMNS: &str = "id, list_id, idx, format, doc_type, subject, holder_jkt, \
     signer_serial, digest, issued_at, valid_until, status, revoked_at, reason, replaced_by";

fn credential_from_row(r: &AnyRow) -> Result<CredentialRecord> {
    Ok(record!(
        r,
        CredentialRecord {
            id,
            list_id,
            idx,
            format,
            doc_type,
            subject,
            holder_jkt,
            signer_serial,
            digest,
            issued_at,
            valid_until,
            status,
            revoked_at,
            reason,
            replaced_by
        }
    ))
}

/// What else moves when a credential becomes valid
/// ([`Store::mark_credential_issued`]).
#[derive(Clone, Copy, Default)]
pub struct IssuedWith<'a> {
    /// Credentials of the same official it replaces, revoked `replaced`.
    pub replaces: &'a [i64],
    /// Also every other valid ID of the official (one ID per official).
    pub replace_earlier: bool,
    /// The official's certificate row, which must still be in force.
    pub official_cert: Option<i64>,
    /// The RA's offer it issues (`issuing` → `issued`), with its audit record.
    pub offer: Option<(i64, &'a AuditEvent)>,
}

/// Why a credential was revoked.
pub const REVOCATION_REASONS: &[&str] = &[
    "lost-device",
    "left-service",
    "replaced",
    "key-compromise",
    "attributes-changed",
    "certificate-revoked",
    "unspecified",
];

fn check_reason(reason: &str) -> Result<()> {
    if REVOCATION_REASONS.contains(&reason) {
        return Ok(());
    }
    Err(Error::malformed(format!(
        "unknown revocation reason `{reason}` (one of {})",
        REVOCATION_REASONS.join(", ")
    )))
}

/// The mobile IDs of an official whose official-sign certificate (`cert`, with
/// `subject`) is being revoked for good, revoked `certificate-revoked` in the same
/// transaction: an ID ends with the official's standing. Not while the official
/// holds another official-sign certificate in force (a renewal revokes the one
/// it replaced). The audit records of each, for the caller to append.
pub(crate) async fn revoke_ids_of_official(
    conn: &mut sqlx::AnyConnection,
    cert_id: i64,
    subject: &str,
    actor: &str,
    target: &str,
    now: i64,
) -> Result<Vec<AuditEvent>> {
    let Some(official) = gpki_pki::name::parse_rfc4514(subject)
        .ok()
        .and_then(|a| gpki_pki::name::official(&a))
    else {
        return Ok(Vec::new());
    };
    let other: Option<i64> = sqlx::query_scalar(
        "SELECT id FROM certificates WHERE profile = $1 AND subject = $2 AND status = 'issued' \
         AND not_after > $3 AND id <> $4 LIMIT 1",
    )
    .bind(crate::certificates::OFFICIAL_PROFILE)
    .bind(subject)
    .bind(now)
    .bind(cert_id)
    .fetch_optional(&mut *conn)
    .await
    .map_err(db_err)?;
    if other.is_some() {
        return Ok(Vec::new());
    }
    // An ID being issued (pending, not yet handed out) is stopped too: its
    // issuance then fails instead of making it valid after this.
    let stopped: Vec<i64> = sqlx::query_scalar(
        "UPDATE credentials SET status = 'revoked', revoked_at = $1, reason = 'certificate-revoked' \
         WHERE subject = $2 AND status = 'pending' RETURNING id",
    )
    .bind(now)
    .bind(&official.employee_number)
    .fetch_all(&mut *conn)
    .await
    .map_err(db_err)?;
    // By list, then id: the order an issuance takes the lists' rows in.
    let ids: Vec<i64> = sqlx::query_scalar(
        "SELECT id FROM credentials WHERE subject = $1 AND status = 'valid' ORDER BY list_id, id",
    )
    .bind(&official.employee_number)
    .fetch_all(&mut *conn)
    .await
    .map_err(db_err)?;
    let mut events: Vec<AuditEvent> = stopped
        .into_iter()
        .map(|id| {
            AuditEvent::new(
                actor,
                "credential.revoke",
                format!("credential:{id}"),
                serde_json::json!({ "reason": "certificate-revoked", "certificate": target, "stopped": "being issued" }),
            )
        })
        .collect();
    for id in ids {
        // Revoked meanwhile by another (a holder's report, a replacement): done.
        let revoked = match revoke_on(conn, id, "certificate-revoked", None, now).await {
            Ok(r) => r,
            Err(e) if matches!(e.reason(), Some(Reason::CredentialNotValid { .. })) => continue,
            Err(e) => return Err(e),
        };
        events.push(AuditEvent::new(
            actor,
            "credential.revoke",
            format!("credential:{id}"),
            serde_json::json!({ "reason": "certificate-revoked", "certificate": target, "idx": revoked.idx }),
        ));
    }
    Ok(events)
}

impl Store {
    /// Takes a free random index on the list (`draw` gives candidates in
    /// `0..size`) and records the credential `pending` there.
    pub async fn allocate_credential(
        &self,
        new: &NewCredential,
        mut draw: impl FnMut(i64) -> i64,
    ) -> Result<CredentialRecord> {
        let now = gpki_pki::time::now();
        let mut tx = self.pool().begin().await.map_err(db_err)?;
        // Taking the list's row first serialises allocations on one list, so `used`
        // is exact.
        let list = sqlx::query(&format!(
            "UPDATE status_lists SET used = used + 1 WHERE id = $1 RETURNING {LIST_COLUMNS}"
        ))
        .bind(new.list_id)
        .fetch_optional(&mut *tx)
        .await
        .map_err(db_err)?
        .map(|r| list_from_row(&r))
        .transpose()?
        .ok_or_else(|| Error::not_found(format!("no status list with id {}", new.list_id)))?;
        if (list.used - 1) * 100 >= list.size * MAX_FILL_PERCENT {
            return Err(Error::policy(format!(
                "status list {} is {MAX_FILL_PERCENT}% full ({} of {}): create a new list",
                list.name,
                list.used - 1,
                list.size
            )));
        }
        for _ in 0..DRAWS {
            let idx = draw(list.size);
            if !(0..list.size).contains(&idx) {
                return Err(Error::internal(format!(
                    "index {idx} drawn outside 0..{}",
                    list.size
                )));
            }
            let row = sqlx::query(&format!(
                "INSERT INTO credentials (list_id, idx, format, doc_type, subject, holder_jkt, \
                 signer_serial, issued_at, valid_until, status) \
                 VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, 'pending') \
                 ON CONFLICT (list_id, idx) DO NOTHING RETURNING {CREDENTIAL_COLUMNS}"
            ))
            .bind(list.id)
            .bind(idx)
            .bind(&new.format)
            .bind(&new.doc_type)
            .bind(&new.subject)
            .bind(&new.holder_jkt)
            .bind(&new.signer_serial)
            .bind(now)
            .bind(new.valid_until)
            .fetch_optional(&mut *tx)
            .await
            .map_err(db_err)?;
            if let Some(r) = row {
                let c = credential_from_row(&r)?;
                tx.commit().await.map_err(db_err)?;
                return Ok(c);
            }
        }
        Err(Error::new(
            gpki_pki::ErrorKind::Unavailable,
            format!(
                "no free index found on status list {} in {DRAWS} draws",
                list.name
            ),
        ))
    }

    /// Checks, before anything is signed, that each credential in `replaces` is valid
    /// and is the same official's credential of the same type.
    pub async fn check_replaceable(
        &self,
        subject: &str,
        doc_type: &str,
        replaces: &[i64],
    ) -> Result<()> {
        for old in replaces {
            let c = self.credential(*old).await?;
            if c.subject != subject || c.doc_type != doc_type {
                return Err(Error::policy(format!(
                    "credential {old} is not this official's {doc_type}: it cannot be replaced by this one"
                )));
            }
            if c.status != "valid" {
                return Err(Error::conflict(format!(
                    "credential {old} is not valid ({})",
                    c.status
                )));
            }
        }
        Ok(())
    }

    /// Marks a pending credential issued with its digest, audited. With `replaces`,
    /// the credentials it replaces (the same official's older ones of the same type,
    /// on another phone) are revoked `replaced` in the same transaction, each with its
    /// own `credential.revoke` record (`replaced_audit` gives its actor).
    ///
    /// With `replace_earlier`, every other valid credential of the same official and
    /// type is revoked `replaced` too, found inside the transaction after the list's
    /// row is locked, so two issuances to one official at once leave one valid. With
    /// `offer`, that credential offer (`issuing`) becomes `issued` with this
    /// credential in the same transaction, or nothing is recorded.
    pub async fn mark_credential_issued(
        &self,
        id: i64,
        digest: &str,
        with: &IssuedWith<'_>,
        audit: &AuditEvent,
    ) -> Result<CredentialRecord> {
        let IssuedWith {
            replaces,
            replace_earlier,
            official_cert,
            offer,
        } = *with;
        let now = gpki_pki::time::now();
        let mut tx = self.pool().begin().await.map_err(db_err)?;
        let row = sqlx::query(&format!(
            "UPDATE credentials SET status = 'valid', digest = $1 WHERE id = $2 AND status = 'pending' \
             RETURNING {CREDENTIAL_COLUMNS}"
        ))
        .bind(digest)
        .bind(id)
        .fetch_optional(&mut *tx)
        .await
        .map_err(db_err)?
        .ok_or_else(|| Error::conflict(format!("credential {id} is not pending")))?;
        let record = credential_from_row(&row)?;
        if let Some(cert) = official_cert {
            // Read after this row is taken: a revocation of the official that
            // committed since the check before signing is seen here, and one still
            // running waits for this row and then revokes the ID it finds valid.
            let standing = sqlx::query("SELECT status, not_after FROM certificates WHERE id = $1")
                .bind(cert)
                .fetch_optional(&mut *tx)
                .await
                .map_err(db_err)?;
            let in_force = match &standing {
                Some(r) => {
                    r.try_get::<String, _>("status").map_err(db_err)? == "issued"
                        && r.try_get::<i64, _>("not_after").map_err(db_err)? > now
                }
                None => false,
            };
            if !in_force {
                return Err(Error::conflict(format!(
                    "the official's certificate (row {cert}) is no longer in force: credential {id} is not issued"
                )));
            }
        }
        let mut sorted = replaces.to_vec();
        if replace_earlier {
            // Waits for any other issuance on this list to commit; the next
            // statement then sees what it made valid.
            sqlx::query("UPDATE status_lists SET used = used WHERE id = $1")
                .bind(record.list_id)
                .execute(&mut *tx)
                .await
                .map_err(db_err)?;
            let rows = sqlx::query(
                "SELECT id FROM credentials WHERE subject = $1 AND doc_type = $2 \
                 AND status = 'valid' AND id <> $3",
            )
            .bind(&record.subject)
            .bind(&record.doc_type)
            .bind(id)
            .fetch_all(&mut *tx)
            .await
            .map_err(db_err)?;
            for r in rows {
                sorted.push(r.try_get("id").map_err(db_err)?);
            }
        }
        if let Some((offer_id, offer_audit)) = offer {
            let moved = sqlx::query(
                "UPDATE credential_offers SET status = 'issued', credential_id = $1, updated_at = $2 \
                 WHERE id = $3 AND status = 'issuing'",
            )
            .bind(id)
            .bind(now)
            .bind(offer_id)
            .execute(&mut *tx)
            .await
            .map_err(db_err)?
            .rows_affected();
            if moved != 1 {
                return Err(Error::conflict(format!(
                    "credential offer {offer_id} is no longer being issued; credential {id} is not recorded"
                )));
            }
            append(&mut tx, offer_audit, now).await?;
        }
        sorted.sort_unstable();
        sorted.dedup();
        for old in sorted {
            if old == id {
                return Err(Error::policy("a credential cannot replace itself"));
            }
            let revoked = revoke_on(
                &mut tx,
                old,
                "replaced",
                Some((id, &record.subject, &record.doc_type)),
                now,
            )
            .await?;
            append(
                &mut tx,
                &AuditEvent::new(
                    &audit.actor,
                    "credential.revoke",
                    format!("credential:{old}"),
                    serde_json::json!({ "reason": "replaced", "replaced_by": id, "idx": revoked.idx }),
                ),
                now,
            )
            .await?;
        }
        append(&mut tx, audit, now).await?;
        tx.commit().await.map_err(db_err)?;
        Ok(record)
    }

    /// Revokes a valid credential for `reason` (one of [`REVOCATION_REASONS`]), audited.
    pub async fn revoke_credential(
        &self,
        id: i64,
        reason: &str,
        audit: &AuditEvent,
    ) -> Result<CredentialRecord> {
        check_reason(reason)?;
        let now = gpki_pki::time::now();
        let mut tx = self.pool().begin().await.map_err(db_err)?;
        let record = revoke_on(&mut tx, id, reason, None, now).await?;
        append(&mut tx, audit, now).await?;
        tx.commit().await.map_err(db_err)?;
        Ok(record)
    }

    /// Revokes every valid mobile ID of the official with `employee_number` for
    /// `reason` (a lost phone reported by the holder), each audited as
    /// `credential.revoke` by `actor`, in one transaction. None valid: a conflict.
    pub async fn revoke_official_credentials(
        &self,
        employee_number: &str,
        issued_before: i64,
        reason: &str,
        actor: &str,
        detail: serde_json::Value,
    ) -> Result<Vec<CredentialRecord>> {
        check_reason(reason)?;
        let now = gpki_pki::time::now();
        let mut tx = self.pool().begin().await.map_err(db_err)?;
        // A write first (SQLite takes its write lock now, not after a read), on the
        // lists' rows an issuance locks too, so the IDs read next are all of them.
        sqlx::query(
            "UPDATE status_lists SET used = used WHERE id IN \
             (SELECT list_id FROM credentials WHERE subject = $1 AND status = 'valid')",
        )
        .bind(employee_number)
        .execute(&mut *tx)
        .await
        .map_err(db_err)?;
        // Only IDs issued before the report was made: a report replayed later
        // never reaches the phone that replaced the lost one.
        let ids: Vec<i64> = sqlx::query_scalar(
            "SELECT id FROM credentials WHERE subject = $1 AND status = 'valid' AND issued_at <= $2 \
             ORDER BY list_id, id",
        )
        .bind(employee_number)
        .bind(issued_before)
        .fetch_all(&mut *tx)
        .await
        .map_err(db_err)?;
        if ids.is_empty() {
            return Err(Error::conflict(format!(
                "official {employee_number} holds no valid mobile ID"
            )));
        }
        let mut out = Vec::new();
        for id in ids {
            let r = revoke_on(&mut tx, id, reason, None, now).await?;
            let mut d = detail.clone();
            if let Some(o) = d.as_object_mut() {
                o.insert("reason".into(), reason.into());
                o.insert("idx".into(), r.idx.into());
            }
            append(
                &mut tx,
                &AuditEvent::new(actor, "credential.revoke", format!("credential:{id}"), d),
                now,
            )
            .await?;
            out.push(r);
        }
        tx.commit().await.map_err(db_err)?;
        Ok(out)
    }

    pub async fn credential(&self, id: i64) -> Result<CredentialRecord> {
        rows::one(
            self.pool(),
            sqlx::query(&format!(
                "SELECT {CREDENTIAL_COLUMNS} FROM credentials WHERE id = $1"
            ))
            .bind(id),
            credential_from_row,
        )
        .await?
        .ok_or_else(|| Error::not_found(format!("no credential {id}")))
    }

    /// Credentials, newest first: all, or an official's (`subject`).
    pub async fn credentials(
        &self,
        subject: Option<&str>,
        limit: i64,
    ) -> Result<Vec<CredentialRecord>> {
        let rows = match subject {
            Some(s) => sqlx::query(&format!(
                "SELECT {CREDENTIAL_COLUMNS} FROM credentials WHERE subject = $1 ORDER BY id DESC LIMIT $2"
            ))
            .bind(s)
            .bind(limit)
            .fetch_all(self.pool())
            .await,
            None => sqlx::query(&format!(
                "SELECT {CREDENTIAL_COLUMNS} FROM credentials ORDER BY id DESC LIMIT $1"
            ))
            .bind(limit)
            .fetch_all(self.pool())
            .await,
        }
        .map_err(db_err)?;
        rows.iter().map(credential_from_row).collect()
    }
}

/// Revokes credential `id` if valid, moving its list's `status_seq`. A replacement
/// (`by`: the new credential, its subject and docType) revokes only the same
/// official's credential of the same type.
async fn revoke_on(
    conn: &mut sqlx::AnyConnection,
    id: i64,
    reason: &str,
    by: Option<(i64, &str, &str)>,
    now: i64,
) -> Result<CredentialRecord> {
    let (replaced_by, subject, doc_type) = match by {
        Some((n, s, d)) => (Some(n), Some(s), Some(d)),
        None => (None, None, None),
    };
    let seq: i64 = sqlx::query(
        "UPDATE status_lists SET status_seq = status_seq + 1 \
         WHERE id = (SELECT list_id FROM credentials WHERE id = $1 AND status = 'valid' \
           AND ($2 IS NULL OR subject = $2) AND ($3 IS NULL OR doc_type = $3)) \
         RETURNING status_seq",
    )
    .bind(id)
    .bind(subject)
    .bind(doc_type)
    .fetch_optional(&mut *conn)
    .await
    .map_err(db_err)?
    .ok_or_else(|| {
        Error::conflict(format!(
            "credential {id} is not valid (unknown, pending or revoked)"
        ))
        .because(Reason::CredentialNotValid { id })
    })?
    .try_get("status_seq")
    .map_err(db_err)?;
    let row = sqlx::query(&format!(
        "UPDATE credentials SET status = 'revoked', revoked_at = $1, reason = $2, replaced_by = $3, \
         status_seq = $4 WHERE id = $5 AND status = 'valid' RETURNING {CREDENTIAL_COLUMNS}"
    ))
    .bind(now)
    .bind(reason)
    .bind(replaced_by)
    .bind(seq)
    .bind(id)
    .fetch_optional(&mut *conn)
    .await
    .map_err(db_err)?
    // Revoked by another transaction between the two statements: nothing is kept.
    .ok_or_else(|| {
        Error::conflict(format!("credential {id} was revoked meanwhile"))
            .because(Reason::CredentialNotValid { id })
    })?;
    credential_from_row(&row)
}
