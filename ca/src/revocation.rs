//! Revocation, hold release and CRLs: what changes a certificate's status and
//! what publishes it.

use gpki_pki::crl::{CrlHeader, CrlScope, RevocationReason};
use gpki_pki::serial::SerialNumber;
use gpki_pki::{Error, Result, Signer};
use gpki_store::{CertificateRecord, CrlRecord, NewCrl};
use serde_json::json;

use crate::{Ca, Standing};

impl Ca {
    /// Revokes a certificate of CA `ca`. `certificateHold` puts it on hold.
    pub async fn revoke(
        &self,
        ca: &str,
        serial: &str,
        reason: RevocationReason,
        invalidity_date: Option<i64>,
    ) -> Result<CertificateRecord> {
        if reason == RevocationReason::RemoveFromCrl {
            return Err(Error::malformed(
                "removeFromCRL is not a revocation reason; use `gpki cert release` to lift a hold",
            ));
        }
        let serial = serial.parse::<SerialNumber>()?.to_hex();
        let authority = self.store.authority_by_name(ca).await?;
        let now = gpki_pki::time::now();
        if invalidity_date.is_some_and(|d| d > now) {
            return Err(Error::malformed("invalidity date is in the future"));
        }
        let event = self.event(
            "cert.revoke",
            format!("cert:{ca}/{serial}"),
            json!({ "reason": reason.as_str(), "invalidity_date": invalidity_date }),
        );
        self.store
            .revoke(
                authority.id,
                &serial,
                reason.code(),
                now,
                invalidity_date,
                &event,
            )
            .await
    }

    /// Lifts a certificateHold.
    pub async fn release_hold(&self, ca: &str, serial: &str) -> Result<CertificateRecord> {
        let serial = serial.parse::<SerialNumber>()?.to_hex();
        let authority = self.store.authority_by_name(ca).await?;
        let event = self.event("cert.release", format!("cert:{ca}/{serial}"), json!({}));
        self.store.release_hold(authority.id, &serial, &event).await
    }

    /// Generates and stores a full CRL, or with `delta` a delta CRL against the
    /// newest full one.
    pub async fn generate_crl(
        &self,
        ca: &str,
        delta: bool,
        next_update_hours: u32,
    ) -> Result<CrlRecord> {
        if next_update_hours == 0 {
            return Err(Error::malformed(
                "next update must be at least one hour away",
            ));
        }
        let record = self.store.authority_by_name(ca).await?;
        let standing = self.store.standing(&record, gpki_pki::time::now()).await?;
        if standing != Standing::Active {
            tracing::warn!(ca, standing = %standing.describe(ca), "signing a CRL for a CA that signs nothing else");
        }
        let issuer = self.issuer_of(record).await?;
        let id = issuer.record.id;
        let alloc = self.store.allocate_crl(id).await?;
        let (entries, delta_base) = if delta {
            let base = alloc.previous_full.as_ref().ok_or_else(|| {
                Error::conflict(format!(
                    "CA `{ca}` has no full CRL yet to base a delta CRL on"
                ))
            })?;
            (
                self.store
                    .delta_entries(id, base.revocation_seq, alloc.watermark)
                    .await?,
                Some(base.crl_number),
            )
        } else {
            (
                self.store
                    .crl_entries(id, alloc.watermark, alloc.previous_full.as_ref())
                    .await?,
                None,
            )
        };
        let now = gpki_pki::time::now();
        // Once a CA issues delta CRLs, its full CRLs say where they are.
        let issues_deltas = delta || self.store.crl_numbers(id).await?.1.is_some();
        let header = CrlHeader {
            issuer: issuer.context.name.clone(),
            issuer_key_id: issuer.context.key_id.clone(),
            algorithm: issuer.key.algorithm(),
            this_update: now,
            next_update: now + i64::from(next_update_hours) * 3600,
            crl_number: alloc.crl_number as u64,
            delta_base: delta_base.map(|b| b as u64),
            distribution_point: issuer.record.crl_url.clone(),
            scope: if issuer.context.path_len == Some(0) {
                CrlScope::UserCerts
            } else {
                CrlScope::All
            },
            freshest: issuer
                .record
                .crl_url
                .as_deref()
                .filter(|_| issues_deltas)
                .map(gpki_pki::crl::delta_url),
        };
        let tbs = gpki_pki::crl::build_tbs(&header, &entries.der, entries.count as usize)?;
        let der = gpki_pki::crl::sign(&*issuer.key, &tbs)?;
        let event = self.event(
            if delta { "crl.generate-delta" } else { "crl.generate" },
            format!("crl:{ca}/{}", alloc.crl_number),
            json!({ "entries": entries.count, "delta_base": delta_base, "next_update": header.next_update,
                    "ca_standing": standing.label(), "ca_standing_cause": standing.cause() }),
        );
        self.store
            .record_crl(
                &NewCrl {
                    issuer_id: id,
                    crl_number: alloc.crl_number,
                    delta_base,
                    watermark: alloc.watermark,
                    this_update: header.this_update,
                    next_update: header.next_update,
                    entries: entries.count,
                    der,
                },
                &event,
            )
            .await
    }
}
