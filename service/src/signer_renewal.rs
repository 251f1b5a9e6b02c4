//! A delegated signer (an OCSP responder, a TSA) renewing its own certificate
//! through the CA service, so that no process but `gpki-ca` opens a CA key: a new
//! key, a request proven by the current key, the answer checked, then the files
//! replaced by rename (key first; a reload between the two renames finds a
//! mismatched pair, refuses it and keeps the current one in memory).

use std::path::Path;

use gpki_pki::{Error, KeyType, Result, Signer, SoftwareKey};
use serde::Deserialize;

use crate::api::ApiClient;
use crate::ca_api::{signer_renewal_message, CertificateReply, SignerRenewBody};
use crate::mtls::ClientTls;

/// `[renewal]` of a signer's config.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RenewalConfig {
    /// Renew a certificate with fewer days than this left.
    #[serde(default = "default_before_days")]
    pub before_days: u32,
    /// How often to look (and how soon to try again after a failure).
    #[serde(default = "default_check_secs")]
    pub check_interval_secs: u64,
    /// A certificate younger than this is not renewed, however close its end:
    /// near the issuing CA's own expiry every new certificate ends with the CA, and
    /// renewing it again each interval would only mint certificates.
    #[serde(default = "default_min_age_secs")]
    pub min_age_secs: i64,
    /// The CA service, as this signer's client certificate (role ocsp or tsa).
    pub ca: ClientTls,
}

fn default_min_age_secs() -> i64 {
    86_400
}

fn default_before_days() -> u32 {
    10
}
fn default_check_secs() -> u64 {
    3600
}

impl RenewalConfig {
    /// Whether certificate `cert_der` is due: within `before_days` of its end and
    /// at least `min_age_secs` old.
    pub fn due(&self, cert_der: &[u8]) -> bool {
        let Ok(c) = gpki_pki::cert::decode(cert_der) else {
            return false;
        };
        let v = &c.tbs_certificate.validity;
        let (not_before, not_after) = (
            gpki_pki::time::unix_seconds(&v.not_before),
            gpki_pki::time::unix_seconds(&v.not_after),
        );
        let now = gpki_pki::time::now();
        not_after - now < i64::from(self.before_days) * 86_400
            && now - not_before >= self.min_age_secs
    }
}

/// A renewed signer: the new key and its certificate, checked to belong together.
pub struct Renewed {
    pub key: SoftwareKey,
    pub cert_pem: String,
    pub cert_der: Vec<u8>,
    pub serial: String,
}

/// Asks the CA service (CA `ca`) for the next certificate of `current_der`, signed
/// for a new key of the same type; `current` is the current key, which proves the
/// request. The new key is written first to `next_key` (encrypted under `pass`,
/// mode 0600) and reused from there on a retry: the CA renews a certificate once,
/// so a retry after a lost answer must ask for the same key to get the same
/// certificate back.
pub async fn renew(
    client: &ApiClient,
    ca: &str,
    current_der: &[u8],
    current: &dyn Signer,
    next_key: &Path,
    pass: &gpki_pki::signer::Passphrase,
) -> Result<Renewed> {
    let cert = gpki_pki::cert::decode(current_der)?;
    let spki = der::Encode::to_der(&cert.tbs_certificate.subject_public_key_info)?;
    let key_type = KeyType::of_spki(&spki)?;
    let key = match SoftwareKey::read_encrypted(next_key, pass) {
        Ok(k) if k.key_type() == key_type => k,
        _ => {
            let k = SoftwareKey::generate(key_type)?;
            let _ = std::fs::remove_file(next_key);
            k.write_encrypted(next_key, pass)?;
            k
        }
    };
    let csr = gpki_pki::csr::build(&key, &cert.tbs_certificate.subject)?;
    let serial =
        gpki_pki::serial::SerialNumber::from_bytes(cert.tbs_certificate.serial_number.as_bytes())?
            .to_hex();
    let proof = current.sign(&signer_renewal_message(
        &hex::encode(openssl::sha::sha256(current_der)),
        &hex::encode(openssl::sha::sha256(key.public_key_der())),
    ))?;
    let reply: CertificateReply = client
        .post(
            "v1/signers/renew",
            &SignerRenewBody {
                ca: ca.to_string(),
                serial: serial.clone(),
                csr: String::from_utf8_lossy(&csr).into_owned(),
                proof: hex::encode(proof),
            },
        )
        .await?;
    let cert_pem = reply.certificate.ok_or_else(|| {
        Error::internal(format!(
            "the CA service answered no certificate for {serial}"
        ))
    })?;
    let cert_der = gpki_pki::pem::decode(cert_pem.as_bytes(), "CERTIFICATE")?;
    let new = gpki_pki::cert::decode(&cert_der)?;
    if der::Encode::to_der(&new.tbs_certificate.subject_public_key_info)? != key.public_key_der() {
        return Err(Error::internal(format!(
            "the CA service answered {} for another key",
            reply.serial
        )));
    }
    Ok(Renewed {
        key,
        cert_pem,
        cert_der,
        serial: reply.serial,
    })
}

/// Writes the renewed pair over `key_path` and `cert_path` (key first; the key
/// already encrypted), then drops the `.next` key.
pub fn replace_files(
    key_pem: &[u8],
    cert_pem: &str,
    key_path: &Path,
    cert_path: &Path,
) -> Result<()> {
    replace(key_path, key_pem, true)?;
    replace(cert_path, cert_pem.as_bytes(), false)?;
    let _ = std::fs::remove_file(next_key_path(key_path));
    Ok(())
}

/// Where a renewal keeps the new key until it is in force: `KEY.next`.
pub fn next_key_path(key_path: &Path) -> std::path::PathBuf {
    let mut p = key_path.as_os_str().to_owned();
    p.push(".next");
    std::path::PathBuf::from(p)
}

/// Writes `bytes` beside `path` (a new file, synced) and renames it over `path`
/// (mode 0600 for a key).
fn replace(path: &Path, bytes: &[u8], private: bool) -> Result<()> {
    let mut tmp = path.as_os_str().to_owned();
    tmp.push(".renewing");
    let tmp = std::path::PathBuf::from(tmp);
    let _ = std::fs::remove_file(&tmp);
    if private {
        gpki_pki::signer::write_private_file(&tmp, bytes)?;
    } else {
        use std::io::Write;
        std::fs::OpenOptions::new()
            .write(true)
            .create_new(true)
            .open(&tmp)
            .and_then(|mut f| f.write_all(bytes).and_then(|()| f.sync_all()))
            .map_err(|e| Error::internal(format!("cannot write {}: {e}", tmp.display())))?;
    }
    std::fs::rename(&tmp, path)
        .map_err(|e| Error::internal(format!("cannot replace {}: {e}", path.display())))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A self-signed certificate valid from now for `days`.
    fn cert(days: u32) -> Vec<u8> {
        let key = openssl::pkey::PKey::from_ec_key(
            openssl::ec::EcKey::generate(
                &openssl::ec::EcGroup::from_curve_name(openssl::nid::Nid::X9_62_PRIME256V1)
                    .unwrap(),
            )
            .unwrap(),
        )
        .unwrap();
        let mut name = openssl::x509::X509NameBuilder::new().unwrap();
        name.append_entry_by_text("CN", "signer").unwrap();
        let name = name.build();
        let mut b = openssl::x509::X509Builder::new().unwrap();
        b.set_version(2).unwrap();
        b.set_subject_name(&name).unwrap();
        b.set_issuer_name(&name).unwrap();
        b.set_pubkey(&key).unwrap();
        b.set_not_before(&openssl::asn1::Asn1Time::days_from_now(0).unwrap())
            .unwrap();
        b.set_not_after(&openssl::asn1::Asn1Time::days_from_now(days).unwrap())
            .unwrap();
        b.sign(&key, openssl::hash::MessageDigest::sha256())
            .unwrap();
        b.build().to_der().unwrap()
    }

    fn config(before_days: u32, min_age_secs: i64) -> RenewalConfig {
        RenewalConfig {
            before_days,
            check_interval_secs: 3600,
            min_age_secs,
            ca: ClientTls {
                url: "https://ca.example".into(),
                server_name: None,
                cert: "c".into(),
                key: "k".into(),
                key_pass_file: None,
                ca_file: "r".into(),
                timeout_secs: 30,
            },
        }
    }

    #[test]
    fn a_certificate_is_due_in_its_window_and_not_while_young() {
        let thirty = cert(30);
        assert!(!config(10, 0).due(&thirty), "20 days early");
        assert!(config(31, 0).due(&thirty), "inside the window");
        // A fresh certificate that ends inside the window (a CA near its own end)
        // is not renewed again at every interval.
        assert!(
            !config(31, 86_400).due(&thirty),
            "younger than min_age_secs"
        );
        assert!(!config(31, 0).due(b"not a certificate"));
    }
}
