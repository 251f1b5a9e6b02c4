//! Credential offers: a mobile ID issued through an RA. The RA records an offer for
//! an official it knows, with a fresh nonce; the holder's wallet signs the nonce with
//! the key the credential will be bound to; the RA checks that proof and the offer
//! moves `offered` → `proven`; the CA service takes it (`issuing`, before anything is
//! signed, so an offer makes at most one credential) and marks it `issued` with the
//! credential. Every move is a compare-and-set with its audit record.

use gpki_pki::{Error, Result};
use sqlx::any::AnyRow;

use crate::audit::append;
use crate::rows::{self, record};
use crate::{db_err, AuditEvent, Store};

/// An offer as the RA records it.
#[derive(Debug, Clone)]
pub struct NewOffer {
    pub ra_id: i64,
    pub idempotency_key: String,
    /// SHA-256 (hex) of what was asked: a replay must ask the same.
    pub body_sha256: String,
    pub official_cert_id: i64,
    /// `mdoc` or `sd-jwt`.
    pub format: String,
    /// The attributes the operator gave (JSON).
    pub attributes: String,
    pub nonce: String,
    pub expires_at: i64,
    pub submitted_by: i64,
}

#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct OfferRecord {
    pub id: i64,
    pub ra_id: i64,
    pub idempotency_key: String,
    #[serde(skip)]
    pub body_sha256: String,
    pub official_cert_id: i64,
    pub format: String,
    #[serde(skip)]
    pub attributes: String,
    pub nonce: String,
    pub expires_at: i64,
    /// `offered`, `proven`, `issuing` or `issued`.
    pub status: String,
    pub holder_jkt: Option<String>,
    pub submitted_by: i64,
    pub credential_id: Option<i64>,
    pub created_at: i64,
    pub updated_at: i64,
}

const OFFER_COLUMNS: &str = "id, ra_id, idempotency_key, body_sha256, official_cert_id, format, \
     attributes, nonce, expires_at, status, holder_jkt, submitted_by, credential_id, created_at, \
     updated_at";

fn offer_from_row(r: &AnyRow) -> Result<OfferRecord> {
    Ok(record!(
        r,
        OfferRecord {
            id,
            ra_id,
            idempotency_key,
            body_sha256,
            official_cert_id,
            format,
            attributes,
            nonce,
            expires_at,
            status,
            holder_jkt,
            submitted_by,
            credential_id,
            created_at,
            updated_at
        }
    ))
}

impl Store {
    /// Records an offer, audited; `(offer, true)`. A key recorded before with the
    /// same body answers `(first offer, false)`; with another body, a conflict.
    pub async fn create_offer(
        &self,
        new: &NewOffer,
        audit: &AuditEvent,
    ) -> Result<(OfferRecord, bool)> {
        if let Some(first) = self.offer_by_key(new.ra_id, &new.idempotency_key).await? {
            return replayed(first, new);
        }
        let now = gpki_pki::time::now();
        let mut tx = self.pool().begin().await.map_err(db_err)?;
        let inserted = sqlx::query(&format!(
            "INSERT INTO credential_offers (ra_id, idempotency_key, body_sha256, official_cert_id, \
             format, attributes, nonce, expires_at, status, submitted_by, created_at, updated_at) \
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, 'offered', $9, $10, $10) \
             ON CONFLICT DO NOTHING RETURNING {OFFER_COLUMNS}"
        ))
        .bind(new.ra_id)
        .bind(&new.idempotency_key)
        .bind(&new.body_sha256)
        .bind(new.official_cert_id)
        .bind(&new.format)
        .bind(&new.attributes)
        .bind(&new.nonce)
        .bind(new.expires_at)
        .bind(new.submitted_by)
        .bind(now)
        .fetch_optional(&mut *tx)
        .await
        .map_err(db_err)?;
        let Some(row) = inserted else {
            // A concurrent submission with the same key won.
            drop(tx);
            return match self.offer_by_key(new.ra_id, &new.idempotency_key).await? {
                Some(first) => replayed(first, new),
                None => Err(Error::conflict("the offer's nonce is taken; ask again")),
            };
        };
        let offer = offer_from_row(&row)?;
        let mut audit = audit.clone();
        audit.target = format!("credential-offer:{}", offer.id);
        append(&mut tx, &audit, now).await?;
        tx.commit().await.map_err(db_err)?;
        Ok((offer, true))
    }

    /// The RA offer that made credential `credential_id`, if an RA's offer did.
    pub async fn offer_of_credential(&self, credential_id: i64) -> Result<Option<OfferRecord>> {
        rows::one(
            self.pool(),
            sqlx::query(&format!(
                "SELECT {OFFER_COLUMNS} FROM credential_offers WHERE credential_id = $1"
            ))
            .bind(credential_id),
            offer_from_row,
        )
        .await
    }

    pub async fn offer(&self, id: i64) -> Result<OfferRecord> {
        rows::one(
            self.pool(),
            sqlx::query(&format!(
                "SELECT {OFFER_COLUMNS} FROM credential_offers WHERE id = $1"
            ))
            .bind(id),
            offer_from_row,
        )
        .await?
        .ok_or_else(|| Error::not_found(format!("no credential offer {id}")))
    }

    async fn offer_by_key(&self, ra_id: i64, key: &str) -> Result<Option<OfferRecord>> {
        rows::one(self.pool(), sqlx::query(&format!(
            "SELECT {OFFER_COLUMNS} FROM credential_offers WHERE ra_id = $1 AND idempotency_key = $2"
        )).bind(ra_id).bind(key), offer_from_row).await
    }

    /// Moves offer `id` from `from` to `to`, audited, in one transaction: a
    /// compare-and-set, so of two racing moves one fails by name. Moving to `proven`
    /// sets the holder key's thumbprint; leaving `offered` and taking an offer for issuance are refused past `expires_at`; moving to
    /// `issued` sets the credential.
    pub async fn move_offer(
        &self,
        id: i64,
        from: &str,
        to: &str,
        holder_jkt: Option<&str>,
        credential_id: Option<i64>,
        audit: &AuditEvent,
    ) -> Result<OfferRecord> {
        let now = gpki_pki::time::now();
        let mut tx = self.pool().begin().await.map_err(db_err)?;
        let row = sqlx::query(&format!(
            "UPDATE credential_offers SET status = $1, updated_at = $2, \
             holder_jkt = COALESCE($3, holder_jkt), credential_id = COALESCE($4, credential_id) \
             WHERE id = $5 AND status = $6 AND ($7 = 0 OR expires_at > $2) RETURNING {OFFER_COLUMNS}"
        ))
        .bind(to)
        .bind(now)
        .bind(holder_jkt)
        .bind(credential_id)
        .bind(id)
        .bind(from)
        .bind(i64::from(from == "offered" || to == "issuing"))
        .fetch_optional(&mut *tx)
        .await
        .map_err(db_err)?;
        let Some(row) = row else {
            drop(tx);
            let now_is = self.offer(id).await?;
            let why = if now_is.status == from {
                "it has expired".to_string()
            } else {
                format!("it is {}", now_is.status)
            };
            return Err(Error::conflict(format!(
                "credential offer {id} cannot become {to}: {why}"
            )));
        };
        let offer = offer_from_row(&row)?;
        append(&mut tx, audit, now).await?;
        tx.commit().await.map_err(db_err)?;
        Ok(offer)
    }
}

fn replayed(first: OfferRecord, new: &NewOffer) -> Result<(OfferRecord, bool)> {
    if first.body_sha256 == new.body_sha256 {
        Ok((first, false))
    } else {
        Err(Error::conflict(format!(
            "idempotency key `{}` was used for another offer ({})",
            new.idempotency_key, first.id
        )))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::test_support::{ca, event};
    use crate::{NewCertificate, NewRa};

    async fn exercise(store: &Store) {
        let ca = ca(store).await;
        let cert_id = store
            .record_tbs(&NewCertificate {
                issuer_id: ca.id,
                serial: "01".into(),
                subject: "CN=Hong Gildong, O=A, C=KR".into(),
                profile: "official-sign".into(),
                not_before: 0,
                not_after: 4_000_000_000,
                spki_sha256: "00".into(),
                tbs: vec![0x30, 0x00],
                renewed_from: None,
                request_key: None,
            })
            .await
            .unwrap();
        let ra = store
            .create_ra(
                &NewRa {
                    name: "A".into(),
                    ca_name: "ca".into(),
                    subtrees: vec!["O=A, C=KR".into()],
                    profiles: vec!["official-sign".into()],
                    dual_control: vec![],
                    renew_window_days: 30,
                    host: "ra-host-1".into(),
                    domains: vec![],
                },
                &event(),
            )
            .await
            .unwrap();
        let op = store
            .add_operator(ra.id, "op", cert_id, true, &event())
            .await
            .unwrap();
        let now = gpki_pki::time::now();
        let new = |key: &str, body: &str, nonce: &str, expires_at: i64| NewOffer {
            ra_id: ra.id,
            idempotency_key: key.into(),
            body_sha256: body.into(),
            official_cert_id: cert_id,
            format: "mdoc".into(),
            attributes: "{}".into(),
            nonce: nonce.into(),
            expires_at,
            submitted_by: op.id,
        };
        let (offer, fresh) = store
            .create_offer(&new("k1", "b1", "n1", now + 600), &event())
            .await
            .unwrap();
        assert!(fresh);
        assert_eq!(
            (offer.status.as_str(), offer.holder_jkt.as_deref()),
            ("offered", None)
        );
        // A replay answers the first offer (its nonce); another body is a conflict.
        let (again, fresh) = store
            .create_offer(&new("k1", "b1", "n-other", now + 600), &event())
            .await
            .unwrap();
        assert!(!fresh);
        assert_eq!(again, offer);
        let e = store
            .create_offer(&new("k1", "b2", "n2", now + 600), &event())
            .await
            .unwrap_err();
        assert!(e.detail.contains("another offer"), "{e}");

        // An expired offer cannot be proven, and stays offered.
        let (stale, _) = store
            .create_offer(&new("k2", "b3", "n3", now - 1), &event())
            .await
            .unwrap();
        let e = store
            .move_offer(stale.id, "offered", "proven", Some("jkt"), None, &event())
            .await
            .unwrap_err();
        assert!(e.detail.contains("expired"), "{e}");
        assert_eq!(store.offer(stale.id).await.unwrap().status, "offered");

        // Proven once, with its key; a second move from offered fails by name.
        let proven = store
            .move_offer(offer.id, "offered", "proven", Some("jkt-1"), None, &event())
            .await
            .unwrap();
        assert_eq!(proven.holder_jkt.as_deref(), Some("jkt-1"));
        let e = store
            .move_offer(offer.id, "offered", "proven", Some("jkt-2"), None, &event())
            .await
            .unwrap_err();
        assert!(e.detail.contains("it is proven"), "{e}");
        // Taken for issuance once; a retry puts it back with its key kept.
        store
            .move_offer(offer.id, "proven", "issuing", None, None, &event())
            .await
            .unwrap();
        let e = store
            .move_offer(offer.id, "proven", "issuing", None, None, &event())
            .await
            .unwrap_err();
        assert!(e.detail.contains("it is issuing"), "{e}");
        let back = store
            .move_offer(offer.id, "issuing", "proven", None, None, &event())
            .await
            .unwrap();
        assert_eq!(back.holder_jkt.as_deref(), Some("jkt-1"));
        // A proven offer past its time is not taken for issuance either.
        sqlx::query("UPDATE credential_offers SET expires_at = $1 WHERE id = $2")
            .bind(now - 1)
            .bind(offer.id)
            .execute(store.pool())
            .await
            .unwrap();
        let e = store
            .move_offer(offer.id, "proven", "issuing", None, None, &event())
            .await
            .unwrap_err();
        assert!(e.detail.contains("expired"), "{e}");
    }

    crate::test_support::on_both_backends!(
        offers_move_once_each_way_on_sqlite,
        offers_move_once_each_way_on_postgres,
        exercise
    );
}
