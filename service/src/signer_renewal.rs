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
    /// The CA service, as this signer's client certificate (role ocsp or tsa).
    pub ca: ClientTls,
}

fn default_before_days() -> u32 {
    10
}
fn default_check_secs() -> u64 {
    3600
}

impl RenewalConfig {
    /// Whether a certificate valid until `not_after` is due.
    pub fn due(&self, not_after: i64) -> bool {
        not_after - gpki_pki::time::now() < i64::from(self.before_days) * 86_400
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
