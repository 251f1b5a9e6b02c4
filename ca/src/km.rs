//! An official's key-management (km) certificate, the second of the pair a dual
//! enrolment makes. Its key is made here, not by the official, so that it can be
//! kept for recovery:
//!
//! 1. the KRA's certificate is read from the store and must be in force, with the
//!    keyRecovery purpose;
//! 2. an RSA key is made, and its PKCS#8 sealed twice: to the KRA's certificate
//!    (the archive) and to the official's one-time transport key (the delivery);
//! 3. the km certificate is planned with the signing certificate's subject and
//!    e-mail addresses, recorded, its sealed key archived (paired with the signing
//!    certificate), and only then signed (ca/src/lib.rs steps 5–7).
//!
//! The plaintext key exists only in this function's memory and is zeroed when it
//! returns; the archive holds it only sealed to the KRA, whose private key is not
//! on this host.

use der::Decode;
use gpki_kmi::envelope::{self, Recipient};
use gpki_pki::cert::SanEntry;
use gpki_pki::{Error, KeyType, Result, Signer, SoftwareKey};
use gpki_store::{CertStatus, CertificateRecord, IssuanceLog, KraRecord, NewArchive, Store};
use serde_json::json;

use crate::{Ca, IssueRequest, Issued, KeySource};

pub use gpki_pki::profile::{KM_PROFILE, SIGN_PROFILE};
/// The km key: RSA key transport, as official-km takes and Korean clients read.
pub const KM_KEY_TYPE: KeyType = KeyType::Rsa2048;

/// What to issue.
pub struct KmOrder<'a> {
    pub ca: &'a str,
    /// The official-sign certificate the km certificate pairs with: issued by `ca`.
    pub sign: &'a CertificateRecord,
    pub kra: &'a str,
    /// The official's one-time transport key (DER SubjectPublicKeyInfo, RSA), from
    /// a request whose signature was verified.
    pub transport_spki: &'a [u8],
    pub request_key: Option<String>,
    /// The km certificate this one renews.
    pub renewed_from: Option<i64>,
}

/// A km certificate issued, with its key sealed to the transport key.
pub struct KmIssued {
    pub issued: Issued,
    /// DER CMS EnvelopedData of the km private key (PKCS#8) to the transport key.
    pub delivery: Vec<u8>,
}

/// KRA `name` and its certificate, when the certificate may take archives now: in
/// force with every CA above it, and carrying the keyRecovery purpose.
pub async fn kra_certificate(store: &Store, name: &str) -> Result<(KraRecord, Vec<u8>)> {
    kra_certificate_in(&IssuanceLog::new(store.clone()), name).await
}

/// [`kra_certificate`], read through the CA's issuance log.
async fn kra_certificate_in(store: &IssuanceLog, name: &str) -> Result<(KraRecord, Vec<u8>)> {
    let kra = store.kra_by_name(name).await?;
    let row = store.certificate_by_id(kra.cert_id).await?;
    let der = row
        .der
        .ok_or_else(|| Error::conflict(format!("KRA `{name}`'s certificate is not signed")))?;
    store.signer_in_force(&der, "KRA").await?;
    let cert = x509_cert::Certificate::from_der(&der)?;
    let ekus = gpki_pki::cert::find_extension::<x509_cert::ext::pkix::ExtendedKeyUsage>(
        &cert.tbs_certificate,
        const_oid::db::rfc5280::ID_CE_EXT_KEY_USAGE,
    )?
    .map(|(_, e)| e.0)
    .unwrap_or_default();
    if !ekus.contains(&gpki_pki::profile::EKU_KEY_RECOVERY) {
        return Err(Error::policy(format!(
            "KRA `{name}`'s certificate lacks the keyRecovery purpose; keys are archived only to a key-recovery certificate"
        )));
    }
    Ok((kra, der))
}

impl Ca {
    /// Issues the km certificate of `order` (steps above).
    pub async fn issue_km(&self, order: &KmOrder<'_>) -> Result<KmIssued> {
        let sign = order.sign;
        if sign.profile != SIGN_PROFILE {
            return Err(Error::policy(format!(
                "a km certificate pairs with an {SIGN_PROFILE} certificate, not {} ({})",
                sign.profile, sign.serial
            )));
        }
        if sign.status != CertStatus::Issued || sign.not_after <= gpki_pki::time::now() {
            return Err(Error::conflict(format!(
                "certificate {} is {} (until {}); a km certificate pairs with one in force",
                sign.serial,
                sign.status,
                gpki_pki::time::rfc3339(sign.not_after)
            )));
        }
        let (kra, kra_der) = kra_certificate_in(&self.store, order.kra).await?;
        let profile = self.profiles.get(KM_PROFILE)?.clone();
        let issuer = self.issuer(order.ca).await?;
        if sign.issuer_id != issuer.record.id {
            return Err(Error::policy(format!(
                "certificate {} is not of CA `{}`",
                sign.serial, order.ca
            )));
        }
        // RSA-2048 key generation takes tens of milliseconds: off the async workers.
        let key = tokio::task::spawn_blocking(|| SoftwareKey::generate(KM_KEY_TYPE))
            .await
            .map_err(|e| Error::internal(format!("generating a km key: {e}")))??;
        let pkcs8 = zeroize::Zeroizing::new(
            key.pkey()
                .private_key_to_pkcs8()
                .map_err(|e| Error::internal(format!("km key encoding: {e}")))?,
        );
        // Sealed before anything is recorded: a transport key that cannot take it
        // (not RSA, too small) refuses the order with nothing written.
        let delivery = envelope::seal(&pkcs8, &[Recipient::PublicKey(order.transport_spki)])
            .map_err(|e| e.context("transport key"))?;
        let sealed = envelope::seal(&pkcs8, &[Recipient::Certificate(&kra_der)])?;
        drop(pkcs8);
        let tbs = x509_cert::certificate::TbsCertificate::from_der(&sign.tbs)?;
        let sans: Vec<SanEntry> = gpki_pki::cert::san_entries(&tbs)?
            .into_iter()
            .filter(|s| matches!(s, SanEntry::Email(_)))
            .collect();
        let now = gpki_pki::time::now();
        // The pair ends together: the km certificate no later than the signing one
        // (the planner keeps it within the CA's validity too).
        let days =
            ((sign.not_after - now) / 86_400).clamp(1, i64::from(profile.spec.validity_days));
        let request = IssueRequest {
            ca: order.ca.to_string(),
            profile: KM_PROFILE.to_string(),
            subject: Some(sign.subject.clone()),
            key: KeySource::PublicKey(key.public_key_der().to_vec()),
            sans,
            validity_days: Some(days as u32),
            request_key: order.request_key.clone(),
            renewed_from: order.renewed_from,
        };
        let plan = self.prepare(&issuer, &profile, &request, now)?;
        let event = self.event(
            "km.archive",
            format!("cert:{}/{}", order.ca, plan.serial().to_hex()),
            json!({
                "kra": kra.name,
                "pair": sign.serial,
                "envelope_sha256": envelope::sha256_hex(&sealed),
            }),
        );
        let issued = self
            .record_archive_sign_store(
                &issuer,
                KM_PROFILE,
                &plan,
                order.renewed_from,
                order.request_key.clone(),
                Some((
                    NewArchive {
                        cert_id: 0,
                        pair_cert_id: Some(sign.id),
                        kra_id: kra.id,
                        envelope: sealed,
                    },
                    event,
                )),
            )
            .await?;
        Ok(KmIssued { issued, delivery })
    }

    /// Revokes certificate `serial` and, with `with_pair`, the other certificate
    /// of its pair (official-sign and official-km) for the same reason, when it is
    /// issued or on hold. Returns the revoked row and the pair's row as it stands
    /// after, so a caller can offer to revoke a pair left valid.
    pub async fn revoke_with_pair(
        &self,
        ca: &str,
        serial: &str,
        reason: gpki_pki::crl::RevocationReason,
        invalidity_date: Option<i64>,
        with_pair: bool,
    ) -> Result<(CertificateRecord, Option<CertificateRecord>)> {
        let revoked = self.revoke(ca, serial, reason, invalidity_date).await?;
        let Some(pair_id) = self.store.pair_of(revoked.id).await? else {
            return Ok((revoked, None));
        };
        let pair = self.store.certificate_by_id(pair_id).await?;
        if with_pair && matches!(pair.status, CertStatus::Issued | CertStatus::Hold) {
            let pair = self
                .revoke(ca, &pair.serial, reason, invalidity_date)
                .await?;
            return Ok((revoked, Some(pair)));
        }
        Ok((revoked, Some(pair)))
    }
}
