//! Key management (KMI): Key Recovery Authorities and their officers, the key
//! archive (km private keys as CMS EnvelopedData to a KRA, never in plaintext) and
//! recovery requests, released once with M of N officers' approvals.
//!
//! The store records; it does not judge approvals. `gpki km recover` checks each
//! approval's signature and officer, and hands the store only those it accepted,
//! which are then recorded, with the release, in one transaction: an approval is
//! used once, and a request is released once.

use gpki_pki::{Error, ErrorKind, Result};
use sqlx::any::AnyRow;
use sqlx::Row;

use crate::audit::{append, append_many};
use crate::ra::check_name;
use crate::rows::{self, record};
use crate::{db_err, AuditEvent, Store};

#[derive(Debug, Clone, serde::Serialize)]
pub struct KraRecord {
    pub id: i64,
    pub name: String,
    pub cert_id: i64,
    /// Approvals needed to release a key.
    pub quorum: i64,
    pub created_at: i64,
}

#[derive(Debug, Clone, serde::Serialize)]
pub struct OfficerRecord {
    pub id: i64,
    pub kra_id: i64,
    pub name: String,
    pub cert_id: i64,
    /// `active` or `removed`.
    pub status: String,
    pub created_at: i64,
    pub updated_at: i64,
}

/// A key to archive: the km certificate's row (recorded, not yet signed), the
/// certificate issued with it, and the envelope.
#[derive(Debug, Clone)]
pub struct NewArchive {
    pub cert_id: i64,
    pub pair_cert_id: Option<i64>,
    pub kra_id: i64,
    /// DER ContentInfo (EnvelopedData) to the KRA's certificate.
    pub envelope: Vec<u8>,
}

#[derive(Debug, Clone, serde::Serialize)]
pub struct ArchiveRecord {
    pub id: i64,
    pub cert_id: i64,
    pub pair_cert_id: Option<i64>,
    pub kra_id: i64,
    #[serde(skip)]
    pub envelope: Vec<u8>,
    pub created_at: i64,
}

#[derive(Debug, Clone, serde::Serialize)]
pub struct RecoveryRecord {
    pub id: i64,
    pub archive_id: i64,
    pub nonce: String,
    pub reason: String,
    pub requested_by: String,
    /// `requested`, `released` or `cancelled`.
    pub status: String,
    pub created_at: i64,
    pub released_at: Option<i64>,
    pub released_by: Option<String>,
}

/// An approval a release used.
#[derive(Debug, Clone)]
pub struct NewApproval {
    pub officer_id: i64,
    /// SHA-256 (hex) of the approval's signature.
    pub approval_sha256: String,
    /// The approval as presented (JSON).
    pub approval: String,
}

const KRA_COLUMNS: &str = "id, name, cert_id, quorum, created_at";
const OFFICER_COLUMNS: &str = "id, kra_id, name, cert_id, status, created_at, updated_at";
const ARCHIVE_COLUMNS: &str = "id, cert_id, pair_cert_id, kra_id, envelope, created_at";
const RECOVERY_COLUMNS: &str =
    "id, archive_id, nonce, reason, requested_by, status, created_at, released_at, released_by";

fn kra_from_row(r: &AnyRow) -> Result<KraRecord> {
    Ok(record!(
        r,
        KraRecord {
            id,
            name,
            cert_id,
            quorum,
            created_at
        }
    ))
}

fn officer_from_row(r: &AnyRow) -> Result<OfficerRecord> {
    Ok(record!(
        r,
        OfficerRecord {
            id,
            kra_id,
            name,
            cert_id,
            status,
            created_at,
            updated_at
        }
    ))
}

fn archive_from_row(r: &AnyRow) -> Result<ArchiveRecord> {
    Ok(record!(
        r,
        ArchiveRecord {
            id,
            cert_id,
            pair_cert_id,
            kra_id,
            envelope,
            created_at
        }
    ))
}

fn recovery_from_row(r: &AnyRow) -> Result<RecoveryRecord> {
    Ok(record!(
        r,
        RecoveryRecord {
            id,
            archive_id,
            nonce,
            reason,
            requested_by,
            status,
            created_at,
            released_at,
            released_by
        }
    ))
}

impl Store {
    /// Registers a KRA by its certificate (a row of this store), audited.
    pub async fn create_kra(
        &self,
        name: &str,
        cert_id: i64,
        quorum: i64,
        audit: &AuditEvent,
    ) -> Result<KraRecord> {
        check_name("KRA", name)?;
        if !(2..=16).contains(&quorum) {
            return Err(Error::malformed(
                "a KRA's quorum must be 2 to 16 officers: one person never releases a key",
            ));
        }
        let now = gpki_pki::time::now();
        let sql = format!(
            "INSERT INTO kras (name, cert_id, quorum, created_at) VALUES ($1, $2, $3, $4) \
             RETURNING {KRA_COLUMNS}"
        );
        let insert = sqlx::query(&sql)
            .bind(name)
            .bind(cert_id)
            .bind(quorum)
            .bind(now);
        let kra = rows::insert_audited(
            self.pool(),
            insert,
            kra_from_row,
            Some(format!("a KRA named `{name}` exists already")),
            audit,
            now,
        )
        .await?;
        Ok(kra)
    }

    pub async fn kra_by_name(&self, name: &str) -> Result<KraRecord> {
        rows::one(
            self.pool(),
            sqlx::query(&format!("SELECT {KRA_COLUMNS} FROM kras WHERE name = $1")).bind(name),
            kra_from_row,
        )
        .await?
        .ok_or_else(|| Error::not_found(format!("no KRA named `{name}`")))
    }

    pub async fn kra(&self, id: i64) -> Result<KraRecord> {
        rows::one(
            self.pool(),
            sqlx::query(&format!("SELECT {KRA_COLUMNS} FROM kras WHERE id = $1")).bind(id),
            kra_from_row,
        )
        .await?
        .ok_or_else(|| Error::not_found(format!("no KRA with id {id}")))
    }

    pub async fn kras(&self) -> Result<Vec<KraRecord>> {
        rows::all(
            self.pool(),
            sqlx::query(&format!("SELECT {KRA_COLUMNS} FROM kras ORDER BY name")),
            kra_from_row,
        )
        .await
    }

    /// Makes the holder of certificate `cert_id` a recovery officer of KRA
    /// `kra_id`, audited.
    pub async fn add_officer(
        &self,
        kra_id: i64,
        name: &str,
        cert_id: i64,
        audit: &AuditEvent,
    ) -> Result<OfficerRecord> {
        check_name("officer", name)?;
        let now = gpki_pki::time::now();
        let sql = format!(
            "INSERT INTO kra_officers (kra_id, name, cert_id, status, created_at, updated_at) \
             VALUES ($1, $2, $3, 'active', $4, $4) RETURNING {OFFICER_COLUMNS}"
        );
        let insert = sqlx::query(&sql)
            .bind(kra_id)
            .bind(name)
            .bind(cert_id)
            .bind(now);
        let officer = rows::insert_audited(
            self.pool(),
            insert,
            officer_from_row,
            Some(format!(
                "officer `{name}`, or that certificate, is an officer of this KRA already"
            )),
            audit,
            now,
        )
        .await?;
        Ok(officer)
    }

    /// Sets officer `name`'s status (`active` or `removed`), audited.
    pub async fn set_officer_status(
        &self,
        kra_id: i64,
        name: &str,
        status: &str,
        audit: &AuditEvent,
    ) -> Result<OfficerRecord> {
        if !["active", "removed"].contains(&status) {
            return Err(Error::malformed("an officer is active or removed"));
        }
        let now = gpki_pki::time::now();
        let mut tx = self.pool().begin().await.map_err(db_err)?;
        let row = sqlx::query(&format!(
            "UPDATE kra_officers SET status = $1, updated_at = $2 WHERE kra_id = $3 AND name = $4 \
             RETURNING {OFFICER_COLUMNS}"
        ))
        .bind(status)
        .bind(now)
        .bind(kra_id)
        .bind(name)
        .fetch_optional(&mut *tx)
        .await
        .map_err(db_err)?
        .ok_or_else(|| Error::not_found(format!("no officer `{name}` of this KRA")))?;
        let officer = officer_from_row(&row)?;
        append(&mut tx, audit, now).await?;
        tx.commit().await.map_err(db_err)?;
        Ok(officer)
    }

    pub async fn officers(&self, kra_id: i64) -> Result<Vec<OfficerRecord>> {
        rows::all(
            self.pool(),
            sqlx::query(&format!(
                "SELECT {OFFICER_COLUMNS} FROM kra_officers WHERE kra_id = $1 ORDER BY name"
            ))
            .bind(kra_id),
            officer_from_row,
        )
        .await
    }

    /// Archives a km key, audited: called after its certificate is recorded and
    /// before it is signed, so no km certificate exists whose key the archive
    /// lacks.
    pub async fn archive_key(&self, new: &NewArchive, audit: &AuditEvent) -> Result<ArchiveRecord> {
        let now = gpki_pki::time::now();
        let mut tx = self.pool().begin().await.map_err(db_err)?;
        let row = sqlx::query(&format!(
            "INSERT INTO key_archive (cert_id, pair_cert_id, kra_id, envelope, created_at) \
             VALUES ($1, $2, $3, $4, $5) RETURNING {ARCHIVE_COLUMNS}"
        ))
        .bind(new.cert_id)
        .bind(new.pair_cert_id)
        .bind(new.kra_id)
        .bind(&new.envelope)
        .bind(now)
        .fetch_one(&mut *tx)
        .await
        .map_err(|e| match db_err(e) {
            e if e.kind == ErrorKind::AlreadyExists => Error::conflict(
                "that certificate's key, or a km key paired with that signing certificate, is archived already",
            ),
            e => e,
        })?;
        let archive = archive_from_row(&row)?;
        append(&mut tx, audit, now).await?;
        tx.commit().await.map_err(db_err)?;
        Ok(archive)
    }

    /// The archived key of km certificate `cert_id`, if any.
    pub async fn archive_of(&self, cert_id: i64) -> Result<Option<ArchiveRecord>> {
        rows::one(
            self.pool(),
            sqlx::query(&format!(
                "SELECT {ARCHIVE_COLUMNS} FROM key_archive WHERE cert_id = $1"
            ))
            .bind(cert_id),
            archive_from_row,
        )
        .await
    }

    pub async fn archive(&self, id: i64) -> Result<ArchiveRecord> {
        rows::one(
            self.pool(),
            sqlx::query(&format!(
                "SELECT {ARCHIVE_COLUMNS} FROM key_archive WHERE id = $1"
            ))
            .bind(id),
            archive_from_row,
        )
        .await?
        .ok_or_else(|| Error::not_found(format!("no archived key {id}")))
    }

    /// The other certificate of a dual pair (an official-sign certificate and the
    /// km certificate issued with it), by id.
    pub async fn pair_of(&self, cert_id: i64) -> Result<Option<i64>> {
        let row = sqlx::query(
            "SELECT cert_id, pair_cert_id FROM key_archive WHERE cert_id = $1 OR pair_cert_id = $1",
        )
        .bind(cert_id)
        .fetch_optional(self.pool())
        .await
        .map_err(db_err)?;
        let Some(row) = row else { return Ok(None) };
        let km: i64 = row.try_get("cert_id").map_err(db_err)?;
        let sign: Option<i64> = row.try_get("pair_cert_id").map_err(db_err)?;
        Ok(if km == cert_id { sign } else { Some(km) })
    }

    /// Opens a recovery request for archived key `archive_id`, audited. One
    /// request per key is open at a time.
    pub async fn request_recovery(
        &self,
        archive_id: i64,
        reason: &str,
        requested_by: &str,
        nonce: &str,
        audit: &AuditEvent,
    ) -> Result<RecoveryRecord> {
        if reason.trim().is_empty() || reason.len() > 512 || reason.contains(['\n', '\r']) {
            return Err(Error::malformed(
                "a recovery reason is one line of 1 to 512 characters",
            ));
        }
        // Both go into the statement officers sign, one line each.
        if requested_by.is_empty()
            || requested_by.len() > 256
            || requested_by.contains(['\n', '\r'])
        {
            return Err(Error::malformed(
                "the requester's name is one line of 1 to 256 characters",
            ));
        }
        let now = gpki_pki::time::now();
        let mut tx = self.pool().begin().await.map_err(db_err)?;
        let row = sqlx::query(&format!(
            "INSERT INTO key_recoveries (archive_id, nonce, reason, requested_by, status, created_at) \
             VALUES ($1, $2, $3, $4, 'requested', $5) RETURNING {RECOVERY_COLUMNS}"
        ))
        .bind(archive_id)
        .bind(nonce)
        .bind(reason)
        .bind(requested_by)
        .bind(now)
        .fetch_one(&mut *tx)
        .await
        .map_err(db_err);
        let row = match row {
            Ok(r) => r,
            Err(e) if e.kind == ErrorKind::AlreadyExists => {
                drop(tx);
                let open = self.open_recovery(archive_id).await?;
                return Err(Error::conflict(match open {
                    Some(o) => format!(
                        "recovery request {} for this key is open already; its officers approve that one",
                        o.id
                    ),
                    None => "a recovery request for this key was opened meanwhile".into(),
                }));
            }
            Err(e) => return Err(e),
        };
        let mut audit = audit.clone();
        let recovery = recovery_from_row(&row)?;
        audit.target = format!("key-recovery:{}", recovery.id);
        append(&mut tx, &audit, now).await?;
        tx.commit().await.map_err(db_err)?;
        Ok(recovery)
    }

    pub async fn recovery(&self, id: i64) -> Result<RecoveryRecord> {
        rows::one(
            self.pool(),
            sqlx::query(&format!(
                "SELECT {RECOVERY_COLUMNS} FROM key_recoveries WHERE id = $1"
            ))
            .bind(id),
            recovery_from_row,
        )
        .await?
        .ok_or_else(|| Error::not_found(format!("no recovery request {id}")))
    }

    pub async fn open_recovery(&self, archive_id: i64) -> Result<Option<RecoveryRecord>> {
        rows::one(self.pool(), sqlx::query(&format!(
            "SELECT {RECOVERY_COLUMNS} FROM key_recoveries WHERE archive_id = $1 AND status = 'requested'"
        )).bind(archive_id), recovery_from_row).await
    }

    /// Releases recovery `id` with the approvals the caller accepted, in one
    /// transaction: each approval recorded (audited with its event) and never
    /// used again, then the request `released` (audited with `release`). A
    /// request not open, an approval used before or an officer counted twice
    /// fails the whole and changes nothing.
    pub async fn release_recovery(
        &self,
        id: i64,
        approvals: &[(NewApproval, AuditEvent)],
        released_by: &str,
        release: &AuditEvent,
    ) -> Result<RecoveryRecord> {
        let now = gpki_pki::time::now();
        let mut tx = self.pool().begin().await.map_err(db_err)?;
        let row = sqlx::query(&format!(
            "UPDATE key_recoveries SET status = 'released', released_at = $1, released_by = $2 \
             WHERE id = $3 AND status = 'requested' RETURNING {RECOVERY_COLUMNS}"
        ))
        .bind(now)
        .bind(released_by)
        .bind(id)
        .fetch_optional(&mut *tx)
        .await
        .map_err(db_err)?;
        let Some(row) = row else {
            drop(tx);
            let r = self.recovery(id).await?;
            return Err(Error::conflict(format!(
                "recovery request {id} is {}; a request is released once (open a new one)",
                r.status
            )));
        };
        for (a, _) in approvals {
            // The officer is checked again here, in the transaction that counts the
            // approval: one removed, or whose certificate was revoked or put on hold
            // since the caller looked, counts for nothing.
            let done = sqlx::query(
                "INSERT INTO key_recovery_approvals (recovery_id, officer_id, approval_sha256, approval, created_at) \
                 SELECT $1, $2, $3, $4, $5 WHERE EXISTS (SELECT 1 FROM kra_officers o \
                   JOIN certificates c ON c.id = o.cert_id JOIN key_archive k ON k.kra_id = o.kra_id \
                   JOIN key_recoveries r ON r.archive_id = k.id \
                   WHERE o.id = $2 AND o.status = 'active' AND c.status = 'issued' AND c.not_after >= $5 \
                   AND r.id = $1)",
            )
            .bind(id)
            .bind(a.officer_id)
            .bind(&a.approval_sha256)
            .bind(&a.approval)
            .bind(now)
            .execute(&mut *tx)
            .await
            .map_err(|e| match db_err(e) {
                e if e.kind == ErrorKind::AlreadyExists => Error::conflict(
                    "an approval was used before, or one officer approved twice; each approval counts once",
                ),
                e => e,
            })?;
            if done.rows_affected() != 1 {
                return Err(Error::new(
                    ErrorKind::Unauthorized,
                    format!(
                        "officer {} is no longer an active officer of this key's KRA with a certificate in force; nothing is released",
                        a.officer_id
                    ),
                ));
            }
        }
        // The quorum as the store holds it now, in this transaction: the approvals
        // just counted (each of an active officer in force) must reach it.
        let quorum: i64 = sqlx::query(
            "SELECT k.quorum FROM key_recoveries r JOIN key_archive a ON a.id = r.archive_id \
             JOIN kras k ON k.id = a.kra_id WHERE r.id = $1",
        )
        .bind(id)
        .fetch_one(&mut *tx)
        .await
        .map_err(db_err)?
        .try_get("quorum")
        .map_err(db_err)?;
        if (approvals.len() as i64) < quorum {
            return Err(Error::policy(format!(
                "{quorum} officers' approvals release this key; {} given",
                approvals.len()
            )));
        }
        let mut events: Vec<&AuditEvent> = approvals.iter().map(|(_, e)| e).collect();
        events.push(release);
        append_many(&mut tx, &events, now).await?;
        tx.commit().await.map_err(db_err)?;
        recovery_from_row(&row)
    }

    /// The approvals a released request used (JSON as presented), in order.
    pub async fn recovery_approvals(&self, id: i64) -> Result<Vec<(i64, String)>> {
        sqlx::query(
            "SELECT officer_id, approval FROM key_recovery_approvals WHERE recovery_id = $1 ORDER BY id",
        )
        .bind(id)
        .fetch_all(self.pool())
        .await
        .map_err(db_err)?
        .iter()
        .map(|r| {
            Ok((
                r.try_get("officer_id").map_err(db_err)?,
                r.try_get("approval").map_err(db_err)?,
            ))
        })
        .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::test_support::{ca, event};
    use crate::NewCertificate;

    async fn cert(store: &Store, issuer: i64, serial: &str, profile: &str) -> i64 {
        let id = store
            .record_tbs(&NewCertificate {
                issuer_id: issuer,
                serial: serial.into(),
                subject: "CN=Hong Gildong(001), O=A, C=KR".into(),
                profile: profile.into(),
                not_before: 0,
                not_after: 4_000_000_000,
                spki_sha256: format!("{serial:0>64}"),
                tbs: vec![0x30, 0x00],
                renewed_from: None,
                request_key: None,
            })
            .await
            .unwrap();
        store
            .mark_issued(id, &[0x30, 0x00], &event())
            .await
            .unwrap();
        id
    }

    async fn exercise(store: &Store) {
        let ca = ca(store).await;
        let kra_cert = cert(store, ca.id, "0a", "key-recovery").await;
        let kra = store
            .create_kra("kra", kra_cert, 2, &event())
            .await
            .unwrap();
        assert!(store
            .create_kra("kra", kra_cert, 2, &event())
            .await
            .is_err());
        let e = store
            .create_kra("kra2", kra_cert, 1, &event())
            .await
            .unwrap_err();
        assert_eq!(e.kind, ErrorKind::Malformed);
        let (o1, o2) = (
            cert(store, ca.id, "0b", "official-sign").await,
            cert(store, ca.id, "0c", "official-sign").await,
        );
        let kim = store
            .add_officer(kra.id, "kim", o1, &event())
            .await
            .unwrap();
        let lee = store
            .add_officer(kra.id, "lee", o2, &event())
            .await
            .unwrap();
        // One certificate is one officer.
        let e = store
            .add_officer(kra.id, "park", o1, &event())
            .await
            .unwrap_err();
        assert_eq!(e.kind, ErrorKind::AlreadyExists);

        let sign = cert(store, ca.id, "01", "official-sign").await;
        let km = cert(store, ca.id, "02", "official-km").await;
        let archive = store
            .archive_key(
                &NewArchive {
                    cert_id: km,
                    pair_cert_id: Some(sign),
                    kra_id: kra.id,
                    envelope: vec![1, 2, 3],
                },
                &event(),
            )
            .await
            .unwrap();
        assert_eq!(store.pair_of(sign).await.unwrap(), Some(km));
        assert_eq!(store.pair_of(km).await.unwrap(), Some(sign));
        assert_eq!(store.pair_of(o1).await.unwrap(), None);
        // A km key is archived once, and a signing certificate pairs with one km key.
        let km2 = cert(store, ca.id, "03", "official-km").await;
        let e = store
            .archive_key(
                &NewArchive {
                    cert_id: km2,
                    pair_cert_id: Some(sign),
                    kra_id: kra.id,
                    envelope: vec![4],
                },
                &event(),
            )
            .await
            .unwrap_err();
        assert_eq!(e.kind, ErrorKind::Conflict, "{e}");

        let r = store
            .request_recovery(archive.id, "lost laptop", "op", "n1", &event())
            .await
            .unwrap();
        // One open request per key.
        let e = store
            .request_recovery(archive.id, "again", "op", "n2", &event())
            .await
            .unwrap_err();
        assert!(
            e.detail
                .contains(&format!("request {} for this key is open", r.id)),
            "{e}"
        );
        let approval = |officer: i64, sha: &str| {
            (
                NewApproval {
                    officer_id: officer,
                    approval_sha256: sha.into(),
                    approval: "{}".into(),
                },
                event(),
            )
        };
        // Fewer than the quorum (none at all, or one): refused, still open.
        let e = store
            .release_recovery(r.id, &[], "op", &event())
            .await
            .unwrap_err();
        assert!(e.detail.contains("2 officers' approvals"), "{e}");
        let e = store
            .release_recovery(r.id, &[approval(kim.id, "a0")], "op", &event())
            .await
            .unwrap_err();
        assert!(e.detail.contains("1 given"), "{e}");
        assert_eq!(store.recovery(r.id).await.unwrap().status, "requested");
        // One officer twice: the whole refused, the request still open.
        let e = store
            .release_recovery(
                r.id,
                &[approval(kim.id, "a1"), approval(kim.id, "a2")],
                "op",
                &event(),
            )
            .await
            .unwrap_err();
        assert_eq!(e.kind, ErrorKind::Conflict, "{e}");
        assert_eq!(store.recovery(r.id).await.unwrap().status, "requested");
        let done = store
            .release_recovery(
                r.id,
                &[approval(kim.id, "a1"), approval(lee.id, "a2")],
                "op",
                &event(),
            )
            .await
            .unwrap();
        assert_eq!(done.status, "released");
        assert_eq!(store.recovery_approvals(r.id).await.unwrap().len(), 2);
        // Released once; a new request may reuse no approval.
        let e = store
            .release_recovery(r.id, &[], "op", &event())
            .await
            .unwrap_err();
        assert!(e.detail.contains("is released"), "{e}");
        let r2 = store
            .request_recovery(archive.id, "lost again", "op", "n3", &event())
            .await
            .unwrap();
        let e = store
            .release_recovery(
                r2.id,
                &[approval(kim.id, "a1"), approval(lee.id, "a3")],
                "op",
                &event(),
            )
            .await
            .unwrap_err();
        assert!(e.detail.contains("used before"), "{e}");
        assert_eq!(store.recovery(r2.id).await.unwrap().status, "requested");
        let removed = store
            .set_officer_status(kra.id, "lee", "removed", &event())
            .await
            .unwrap();
        assert_eq!(removed.status, "removed");
        // A removed officer counts for nothing at release, whatever the caller read.
        let e = store
            .release_recovery(
                r2.id,
                &[approval(kim.id, "a4"), approval(lee.id, "a5")],
                "op",
                &event(),
            )
            .await
            .unwrap_err();
        assert_eq!(e.kind, ErrorKind::Unauthorized, "{e}");
        assert_eq!(store.recovery(r2.id).await.unwrap().status, "requested");
    }

    crate::test_support::on_both_backends!(
        archive_and_recovery_records_on_sqlite,
        archive_and_recovery_records_on_postgres,
        exercise
    );
}
