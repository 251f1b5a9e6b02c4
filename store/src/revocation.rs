//! Revocation and hold release: a certificate's status changes, its CRL entry
//! is written with it, a compromised key takes every certificate of that key,
//! and an official's last certificate takes their mobile IDs.

use gpki_pki::{Error, Reason, Result};
use sqlx::Row;

use crate::audit::{append, append_many, AuditEvent};
use crate::certificates::{
    bump_revocation_seq, cert_from_row, key_lock, CertStatus, CertificateRecord, CERT_COLUMNS,
    OFFICIAL_PROFILE,
};
use crate::crls::crl_entry;
use crate::{db_err, Store};

impl Store {
    /// Revokes a certificate. Only `issued`, `pending` and `hold` certificates can be
    /// revoked; a held certificate may be revoked for good with another reason.
    /// `reason` is an RFC 5280 code; 6 (certificateHold) puts it on hold.
    pub async fn revoke(
        &self,
        issuer_id: i64,
        serial: &str,
        reason: i64,
        revoked_at: i64,
        invalidity_date: Option<i64>,
        audit: &AuditEvent,
    ) -> Result<CertificateRecord> {
        let mut tx = self.pool().begin().await.map_err(db_err)?;
        // Lock the issuer's counter first so concurrent revocations serialise.
        let seq = bump_revocation_seq(&mut tx, issuer_id).await?;
        let sql =
            format!("SELECT {CERT_COLUMNS} FROM certificates WHERE issuer_id = $1 AND serial = $2");
        let current = sqlx::query(&sql)
            .bind(issuer_id)
            .bind(serial)
            .fetch_optional(&mut *tx)
            .await
            .map_err(db_err)?
            .as_ref()
            .map(cert_from_row)
            .transpose()?
            .ok_or_else(|| {
                Error::not_found(format!("no certificate with serial {serial} from this CA"))
            })?;
        let hold = reason == 6;
        refuse_revoking(&current, serial, hold)?;
        let status = if hold { "hold" } else { "revoked" };
        // RFC 5280 §5.3.1: a certificate revoked for good after a hold keeps the
        // date it first went on the CRL.
        let at = if current.status == CertStatus::Hold {
            current.revoked_at.unwrap_or(revoked_at)
        } else {
            revoked_at
        };
        let entry = crl_entry(serial, at, reason, invalidity_date)?;
        if reason == 1 || reason == 2 {
            // Before the audit head, as a group of recordings takes them (key
            // locks, then the head): the two orders would deadlock.
            key_lock(self.backend(), &mut tx, &current.spki_sha256).await?;
        }
        sqlx::query(
            "UPDATE certificates SET status = $1, revoked_at = $2, reason = $3, invalidity_date = $4, revocation_seq = $5, \
             crl_entry = $6 WHERE id = $7",
        )
        .bind(status)
        .bind(at)
        .bind(reason)
        .bind(invalidity_date)
        .bind(seq)
        .bind(entry)
        .bind(current.id)
        .execute(&mut *tx)
        .await
        .map_err(db_err)?;
        crate::status::notify(self.backend(), &mut tx, issuer_id).await?;
        let mut events = vec![audit.clone()];
        if reason == 1 || reason == 2 {
            events.extend(
                revoke_same_key(self, &mut tx, &current, revoked_at, invalidity_date, audit)
                    .await?,
            );
        }
        if !hold && current.profile == OFFICIAL_PROFILE {
            // The official's mobile ID goes with their certificate, its bit set on
            // the status list in this transaction.
            events.extend(
                crate::credentials::revoke_ids_of_official(
                    &mut tx,
                    current.id,
                    &current.subject,
                    &audit.actor,
                    &audit.target,
                    gpki_pki::time::now(),
                )
                .await?,
            );
        }
        // The audit head last, as a group of the writer takes it: a group holding
        // a pending row of this key (being marked issued) waits here for the
        // head, so the rows above must not be taken after it.
        let events: Vec<&AuditEvent> = events.iter().collect();
        append_many(&mut tx, &events, gpki_pki::time::now()).await?;
        tx.commit().await.map_err(db_err)?;
        self.certificate_by_id(current.id).await
    }

    /// Releases a certificate from certificateHold: it is valid again, and the next
    /// delta CRL lists it with removeFromCRL.
    pub async fn release_hold(
        &self,
        issuer_id: i64,
        serial: &str,
        audit: &AuditEvent,
    ) -> Result<CertificateRecord> {
        let mut tx = self.pool().begin().await.map_err(db_err)?;
        let seq = bump_revocation_seq(&mut tx, issuer_id).await?;
        let row =
            sqlx::query("SELECT id, status FROM certificates WHERE issuer_id = $1 AND serial = $2")
                .bind(issuer_id)
                .bind(serial)
                .fetch_optional(&mut *tx)
                .await
                .map_err(db_err)?
                .ok_or_else(|| {
                    Error::not_found(format!("no certificate with serial {serial} from this CA"))
                })?;
        let id: i64 = row.try_get("id").map_err(db_err)?;
        let status: String = row.try_get("status").map_err(db_err)?;
        if status != "hold" {
            return Err(Error::conflict(format!(
                "certificate {serial} is {status}, not on hold; only certificateHold can be released"
            )));
        }
        // reason 8 (removeFromCRL) with status issued marks a release for delta CRLs.
        let now = gpki_pki::time::now();
        let entry = crl_entry(serial, now, 8, None)?;
        sqlx::query(
            "UPDATE certificates SET status = 'issued', revoked_at = $1, reason = 8, invalidity_date = NULL, \
             revocation_seq = $2, crl_entry = $3 WHERE id = $4",
        )
        .bind(now)
        .bind(seq)
        .bind(entry)
        .bind(id)
        .execute(&mut *tx)
        .await
        .map_err(db_err)?;
        crate::status::notify(self.backend(), &mut tx, issuer_id).await?;
        append(&mut tx, audit, gpki_pki::time::now()).await?;
        tx.commit().await.map_err(db_err)?;
        self.certificate_by_id(id).await
    }
}

/// Refused when `current` cannot take this revocation: revoked already (never
/// undone), on hold already (a second hold), or never signed.
fn refuse_revoking(current: &CertificateRecord, serial: &str, hold: bool) -> Result<()> {
    let (why, reason) = match current.status {
        CertStatus::Revoked => (
            "is already revoked; revocation is never undone",
            Reason::AlreadyRevoked {
                serial: serial.to_string(),
            },
        ),
        CertStatus::Hold if hold => (
            "is already on hold",
            Reason::AlreadyOnHold {
                serial: serial.to_string(),
            },
        ),
        CertStatus::Abandoned => (
            "was never signed (abandoned)",
            Reason::Abandoned {
                serial: serial.to_string(),
            },
        ),
        _ => return Ok(()),
    };
    Err(Error::conflict(format!("certificate {serial} {why}")).because(reason))
}

/// BR §4.9.1.1: every other certificate of `current`'s key, compromised, is
/// revoked too, by whichever CA of the store issued it, in the same
/// transaction (whose key lock the caller took); an official's takes their
/// mobile ID with it. Answers the audit records of what it revoked.
async fn revoke_same_key(
    store: &Store,
    tx: &mut sqlx::AnyConnection,
    current: &CertificateRecord,
    revoked_at: i64,
    invalidity_date: Option<i64>,
    audit: &AuditEvent,
) -> Result<Vec<AuditEvent>> {
    let others = sqlx::query(
        "SELECT c.id AS id, c.issuer_id AS issuer_id, c.serial AS serial, a.name AS ca, \
         c.profile AS profile, c.subject AS subject \
         FROM certificates c JOIN authorities a ON a.id = c.issuer_id \
         WHERE c.spki_sha256 = $1 AND c.id <> $2 AND c.status IN ('issued', 'pending', 'hold') ORDER BY c.id",
    )
    .bind(&current.spki_sha256)
    .bind(current.id)
    .fetch_all(&mut *tx)
    .await
    .map_err(db_err)?;
    let mut events = Vec::new();
    for row in others {
        let id: i64 = row.try_get("id").map_err(db_err)?;
        let other_issuer: i64 = row.try_get("issuer_id").map_err(db_err)?;
        let other_serial: String = row.try_get("serial").map_err(db_err)?;
        let other_ca: String = row.try_get("ca").map_err(db_err)?;
        let seq = bump_revocation_seq(&mut *tx, other_issuer).await?;
        let entry = crl_entry(&other_serial, revoked_at, 1, invalidity_date)?;
        sqlx::query(
            "UPDATE certificates SET status = 'revoked', revoked_at = $1, reason = 1, invalidity_date = $2, \
             revocation_seq = $3, crl_entry = $4 WHERE id = $5",
        )
        .bind(revoked_at)
        .bind(invalidity_date)
        .bind(seq)
        .bind(entry)
        .bind(id)
        .execute(&mut *tx)
        .await
        .map_err(db_err)?;
        crate::status::notify(store.backend(), &mut *tx, other_issuer).await?;
        let target = format!("cert:{other_ca}/{other_serial}");
        events.push(AuditEvent::new(
            &audit.actor,
            "cert.revoke",
            &target,
            serde_json::json!({ "reason": "keyCompromise", "same_key_as": audit.target }),
        ));
        let profile: String = row.try_get("profile").map_err(db_err)?;
        if profile == OFFICIAL_PROFILE {
            // An official's certificate revoked by the cascade takes their
            // mobile ID with it, as a direct revocation does.
            let subject: String = row.try_get("subject").map_err(db_err)?;
            events.extend(
                crate::credentials::revoke_ids_of_official(
                    &mut *tx,
                    id,
                    &subject,
                    &audit.actor,
                    &target,
                    gpki_pki::time::now(),
                )
                .await?,
            );
        }
    }
    Ok(events)
}
