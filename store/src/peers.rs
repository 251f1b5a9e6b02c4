//! Who a TLS client is: the certificate it presented, looked up in the store.
//! The services ask this for every caller they do not hold an answer for (kept
//! at most a second, `gpki_service::mtls::AuthCache`), so a certificate revoked
//! a moment ago is refused within a second, not when the next CRL is published.

use der::Encode;
use gpki_pki::{Error, ErrorKind, Result};

use crate::{standing, AuthorityRecord, CertStatus, CertificateRecord, Store};

fn refused(detail: impl Into<String>) -> Error {
    Error::new(ErrorKind::Unauthorized, detail)
}

impl Store {
    /// [`Store::certificate_in_force`] now for a signer gpki is about to sign with
    /// (`what`: "credential signer", …): what is signed now must verify now.
    pub async fn signer_in_force(&self, der: &[u8], what: &str) -> Result<CertificateRecord> {
        self.certificate_in_force(der, gpki_pki::time::now())
            .await
            .map(|(row, _)| row)
            .map_err(|e| {
                Error::policy(format!(
                    "the {what} certificate is not in force: {}",
                    e.detail
                ))
            })
    }

    /// The store's row for `der`, when that exact certificate was issued by a CA
    /// of the store and it, and every CA certificate above it, is in force at
    /// `now`. Anything else is refused as `Unauthorized`, naming why.
    pub async fn certificate_in_force(
        &self,
        der: &[u8],
        now: i64,
    ) -> Result<(CertificateRecord, AuthorityRecord)> {
        let cert = gpki_pki::cert::decode(der)
            .map_err(|e| refused(format!("client certificate does not parse: {}", e.detail)))?;
        let issuer_name = cert.tbs_certificate.issuer.to_der()?;
        let serial = gpki_pki::serial::SerialNumber::from_bytes(
            cert.tbs_certificate.serial_number.as_bytes(),
        )
        .map_err(|e| refused(format!("client certificate: {}", e.detail)))?
        .to_hex();
        let serial = serial.as_str();
        // The cached active CAs first (every call after the first); a CA the
        // cache does not hold yet is found by reading them all.
        let mut found = None;
        for a in self.cached_cas_named(&issuer_name) {
            if let Some(row) = self.certificate(a.id, serial).await? {
                found = Some((row, a));
                break;
            }
        }
        if found.is_none() {
            for a in self.authorities().await? {
                let Some(ca_der) = &a.cert_der else { continue };
                let ca = gpki_pki::cert::decode(ca_der)?;
                if ca.tbs_certificate.subject.to_der()? != issuer_name {
                    continue;
                }
                if let Some(row) = self.certificate(a.id, serial).await? {
                    found = Some((row, a));
                    break;
                }
            }
        }
        let (row, authority) = found.ok_or_else(|| {
            refused(format!(
                "client certificate {serial} was not issued by a CA of this store"
            ))
        })?;
        if row.der.as_deref() != Some(der) {
            return Err(refused(format!(
                "client certificate {serial} differs from the one the store issued"
            )));
        }
        match row.status {
            CertStatus::Issued => {}
            s => {
                return Err(refused(format!(
                    "client certificate {serial} of CA `{}` is {s}",
                    authority.name
                )))
            }
        }
        if now < row.not_before || now > row.not_after {
            return Err(refused(format!(
                "client certificate {serial} is outside its validity"
            )));
        }
        let standing = standing(self, &authority, now).await?;
        if standing != crate::Standing::Active {
            return Err(refused(format!(
                "the CA of client certificate {serial} is not in force ({})",
                standing.label()
            )));
        }
        Ok((row, authority))
    }
}

/// What can tell whether a certificate is in force: the whole store, and the
/// role handles that read it ([`crate::RequestBook`]), so shared checks
/// (`gpki_service::credential_api::known_official`) take a role's handle
/// instead of the whole store.
pub trait InForce: sealed::Sealed {
    /// [`Store::certificate_in_force`].
    fn certificate_in_force(
        &self,
        der: &[u8],
        now: i64,
    ) -> impl std::future::Future<Output = Result<(CertificateRecord, AuthorityRecord)>> + Send;
}

mod sealed {
    /// Only the store's own types tell whether a certificate is in force: an
    /// authorisation check cannot be handed an answer made elsewhere.
    pub trait Sealed {}
    impl Sealed for crate::Store {}
    impl Sealed for crate::RequestBook {}
}

impl InForce for Store {
    async fn certificate_in_force(
        &self,
        der: &[u8],
        now: i64,
    ) -> Result<(CertificateRecord, AuthorityRecord)> {
        Store::certificate_in_force(self, der, now).await
    }
}

impl InForce for crate::RequestBook {
    async fn certificate_in_force(
        &self,
        der: &[u8],
        now: i64,
    ) -> Result<(CertificateRecord, AuthorityRecord)> {
        crate::RequestBook::certificate_in_force(self, der, now).await
    }
}
