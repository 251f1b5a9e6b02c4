//! Mobile credentials' records: status lists and the credentials issued on them.
//!
//! A credential is recorded in two steps, as a certificate is: `allocate_credential`
//! takes a free index on a list (row `pending`, before anything is signed), and
//! `mark_credential_issued` records the signed credential's digest, makes it `valid`
//! and audits it. A crash between the two leaves a pending row whose index no valid
//! credential carries. Revocation sets the row `revoked` and moves the list's
//! `status_seq`, which a served list follows.

use gpki_pki::{Error, Reason, Result};
use sqlx::any::AnyRow;
use sqlx::Row;

use crate::audit::append;
use crate::{db_err, AuditEvent, Store};

/// A list may be filled to this share before new credentials are refused: random
/// indexes keep a credential's place in the list from saying when it was issued, and
/// a fuller list would need many draws to find a free one.
const MAX_FILL_PERCENT: i64 = 75;
/// Draws of a random index before giving up (at 75% fill, 64 draws all taken has a
/// chance of 1e-8).
const DRAWS: usize = 64;
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

fn list_from_row(r: &AnyRow) -> Result<StatusListRecord> {
    Ok(StatusListRecord {
        id: r.try_get("id").map_err(db_err)?,
        name: r.try_get("name").map_err(db_err)?,
        uri: r.try_get("uri").map_err(db_err)?,
        bits: r.try_get("bits").map_err(db_err)?,
        size: r.try_get("size").map_err(db_err)?,
        used: r.try_get("used").map_err(db_err)?,
        status_seq: r.try_get("status_seq").map_err(db_err)?,
        created_at: r.try_get("created_at").map_err(db_err)?,
    })
}

const LIST_COLUMNS: &str = "id, name, uri, bits, size, used, status_seq, created_at";

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
    Ok(CredentialRecord {
        id: r.try_get("id").map_err(db_err)?,
        list_id: r.try_get("list_id").map_err(db_err)?,
        idx: r.try_get("idx").map_err(db_err)?,
        format: r.try_get("format").map_err(db_err)?,
        doc_type: r.try_get("doc_type").map_err(db_err)?,
        subject: r.try_get("subject").map_err(db_err)?,
        holder_jkt: r.try_get("holder_jkt").map_err(db_err)?,
        signer_serial: r.try_get("signer_serial").map_err(db_err)?,
        digest: r.try_get("digest").map_err(db_err)?,
        issued_at: r.try_get("issued_at").map_err(db_err)?,
        valid_until: r.try_get("valid_until").map_err(db_err)?,
        status: r.try_get("status").map_err(db_err)?,
        revoked_at: r.try_get("revoked_at").map_err(db_err)?,
        reason: r.try_get("reason").map_err(db_err)?,
        replaced_by: r.try_get("replaced_by").map_err(db_err)?,
    })
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
        sqlx::query(&format!(
            "SELECT {LIST_COLUMNS} FROM status_lists WHERE name = $1"
        ))
        .bind(name)
        .fetch_optional(self.pool())
        .await
        .map_err(db_err)?
        .map(|r| list_from_row(&r))
        .transpose()?
        .ok_or_else(|| Error::not_found(format!("no status list named {name}")))
    }

    pub async fn status_lists(&self) -> Result<Vec<StatusListRecord>> {
        sqlx::query(&format!(
            "SELECT {LIST_COLUMNS} FROM status_lists ORDER BY id"
        ))
        .fetch_all(self.pool())
        .await
        .map_err(db_err)?
        .iter()
        .map(list_from_row)
        .collect()
    }

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
        sqlx::query(&format!(
            "SELECT {CREDENTIAL_COLUMNS} FROM credentials WHERE id = $1"
        ))
        .bind(id)
        .fetch_optional(self.pool())
        .await
        .map_err(db_err)?
        .map(|r| credential_from_row(&r))
        .transpose()?
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::test_support::{ca, event, store};
    use crate::NewCertificate;

    /// An official's IDs end with their last official-sign certificate: the valid
    /// one is revoked `certificate-revoked`, and one still being issued is
    /// stopped (its issuance then fails); a holder's report reaches only IDs
    /// issued before it was signed.
    #[tokio::test]
    async fn ids_end_with_their_official_and_reports_reach_only_earlier_ids_on_sqlite() {
        let dir = tempfile::tempdir().unwrap();
        ids_end_with_their_official(&store(&dir).await).await;
    }

    #[tokio::test]
    async fn ids_end_with_their_official_and_reports_reach_only_earlier_ids_on_postgres() {
        let Some((store, url)) = crate::test_support::pg_store().await else {
            return;
        };
        ids_end_with_their_official(&store).await;
        store.close().await;
        crate::test_support::drop_pg(&url).await;
    }

    async fn ids_end_with_their_official(store: &Store) {
        let store = store.clone();
        let ca = ca(&store).await;
        let subject = "CN=Hong Gildong(001234567), OU=people, OU=MOIS, O=Gov, C=KR";
        let cert = store
            .record_tbs(&NewCertificate {
                issuer_id: ca.id,
                serial: "01".into(),
                subject: subject.into(),
                profile: crate::certificates::OFFICIAL_PROFILE.into(),
                not_before: 0,
                not_after: 4_000_000_000,
                spki_sha256: "01".repeat(32),
                tbs: vec![0x30, 0x00],
                renewed_from: None,
                request_key: None,
            })
            .await
            .unwrap();
        store
            .mark_issued(cert, &[0x30, 0x00], &event())
            .await
            .unwrap();
        let list = store
            .create_status_list("l", "https://x/l", 1, 1024, &event())
            .await
            .unwrap();
        let mut next = 0;
        let mut id = |store: &Store| {
            next += 1;
            let n = next;
            let store = store.clone();
            async move {
                store
                    .allocate_credential(
                        &NewCredential {
                            list_id: list.id,
                            format: "mdoc".into(),
                            doc_type: "d".into(),
                            subject: "001234567".into(),
                            holder_jkt: format!("jkt-{n}"),
                            signer_serial: "s".into(),
                            valid_until: 4_000_000_000,
                        },
                        move |_| n,
                    )
                    .await
                    .unwrap()
            }
        };
        // A report signed before an ID was issued does not reach it.
        let first = id(&store).await;
        store
            .mark_credential_issued(
                first.id,
                "d1",
                &IssuedWith {
                    official_cert: Some(cert),
                    ..Default::default()
                },
                &event(),
            )
            .await
            .unwrap();
        let e = store
            .revoke_official_credentials(
                "001234567",
                first.issued_at - 1,
                "lost-device",
                "h",
                serde_json::json!({}),
            )
            .await
            .unwrap_err();
        assert!(e.detail.contains("holds no valid mobile ID"), "{e}");
        let pending = id(&store).await;
        store
            .revoke(ca.id, "01", 3, gpki_pki::time::now(), None, &event())
            .await
            .unwrap();
        let first = store.credential(first.id).await.unwrap();
        assert_eq!(
            (first.status.as_str(), first.reason.as_deref()),
            ("revoked", Some("certificate-revoked"))
        );
        assert_eq!(
            store.credential(pending.id).await.unwrap().status,
            "revoked"
        );
        let e = store
            .mark_credential_issued(
                pending.id,
                "d2",
                &IssuedWith {
                    official_cert: Some(cert),
                    ..Default::default()
                },
                &event(),
            )
            .await
            .unwrap_err();
        assert!(e.detail.contains("not pending"), "{e}");
        // Allocated after the revocation committed: the official's certificate is
        // read where the ID would become valid, and it is not.
        let late = id(&store).await;
        let e = store
            .mark_credential_issued(
                late.id,
                "d3",
                &IssuedWith {
                    official_cert: Some(cert),
                    ..Default::default()
                },
                &event(),
            )
            .await
            .unwrap_err();
        assert!(e.detail.contains("no longer in force"), "{e}");
        assert_eq!(store.credential(late.id).await.unwrap().status, "pending");
    }
}
