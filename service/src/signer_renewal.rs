//! A delegated signer (an OCSP responder, a TSA) renewing its own certificate
//! through the CA service, so that no process but `gpki-ca` opens a CA key: a new
//! key, a request proven by the current key, the answer checked, then the files
//! replaced by rename (the new certificate beside them first, then the key, then
//! the certificate). A reload between the two renames finds a mismatched pair,
//! refuses it and keeps the current one in memory; a process that stopped there
//! finishes the swap when it next loads ([`finish_interrupted`]).

use std::path::Path;

use gpki_pki::{Error, ErrorKind, KeyType, Result, SignatureAlgorithm, Signer, SoftwareKey};
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
    /// The key as written in `KEY.next`: encrypted PKCS#8 under the signer's passphrase.
    pub key_pem: zeroize::Zeroizing<Vec<u8>>,
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
///
/// The answer is checked before it is returned ([`check_answer`]): the new key's,
/// the same subject, issued and signed by `issuer_der` (CA `ca`'s certificate)
/// with a signature algorithm of ours that fits that CA's key.
pub async fn renew(
    client: &ApiClient,
    ca: &str,
    issuer_der: &[u8],
    current_der: &[u8],
    current: &dyn Signer,
    next_key: &Path,
    pass: &gpki_pki::signer::Passphrase,
) -> Result<Renewed> {
    let cert = gpki_pki::cert::decode(current_der)?;
    let spki = der::Encode::to_der(&cert.tbs_certificate.subject_public_key_info)?;
    // Key generation (RSA takes seconds) and the passphrase's key derivation stay
    // off the workers that answer requests.
    let (key, key_pem) = {
        let (next_key, pass) = (next_key.to_path_buf(), pass.clone());
        tokio::task::spawn_blocking(move || next_key_for(&spki, &next_key, &pass))
            .await
            .map_err(|e| Error::internal(format!("signer key generation: {e}")))??
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
    check_answer(&cert_der, &cert, ca, issuer_der, key.public_key_der())?;
    Ok(Renewed {
        key,
        key_pem,
        cert_pem,
        cert_der,
        serial: reply.serial,
    })
}

/// Checks the CA service's answer `new_der` to a renewal of `current` for the key
/// `key_spki`, before anything is written or put in force: the new key, the same
/// subject, issued by CA `ca` (certificate `issuer_der`), its two signature
/// algorithm fields the same and one of ours that fits that CA's key (no SHA-1,
/// no algorithm the CA's key cannot make), its signature verified with that key
/// over the bytes received, in force now and made after `current`. A
/// signer is not to answer with a certificate that relying parties would refuse,
/// or that another CA made.
pub fn check_answer(
    new_der: &[u8],
    current: &x509_cert::Certificate,
    ca: &str,
    issuer_der: &[u8],
    key_spki: &[u8],
) -> Result<()> {
    use der::Encode;
    let new = gpki_pki::cert::decode(new_der)?;
    let issuer = gpki_pki::cert::decode(issuer_der)?;
    let (tbs, serial) = (
        &new.tbs_certificate,
        hex::encode(new.tbs_certificate.serial_number.as_bytes()),
    );
    let refuse = |why: String| {
        Err(Error::new(
            ErrorKind::BadSignature,
            format!("the CA service answered certificate {serial}, {why}"),
        ))
    };
    if tbs.subject_public_key_info.to_der()? != key_spki {
        return refuse("for another key".into());
    }
    if tbs.subject != current.tbs_certificate.subject {
        return refuse(format!(
            "for subject {}, not {}",
            tbs.subject, current.tbs_certificate.subject
        ));
    }
    if tbs.issuer != issuer.tbs_certificate.subject {
        return refuse(format!("issued by {}, not by CA `{ca}`", tbs.issuer));
    }
    if new.signature_algorithm != tbs.signature {
        return refuse("whose two signature algorithm fields differ (RFC 5280 §4.1.1.2)".into());
    }
    let ca_key = KeyType::of_spki_info(&issuer.tbs_certificate.subject_public_key_info)?;
    match SignatureAlgorithm::from_identifier(&new.signature_algorithm) {
        Some(a) if a.fits(ca_key) => {}
        _ => {
            return refuse(format!(
                "signed with {}, which is not an algorithm of CA `{ca}`'s {} key",
                new.signature_algorithm.oid,
                ca_key.as_str()
            ))
        }
    }
    // OpenSSL verifies the bytes as received (not a re-encoding of what they
    // decode to), as relying parties will.
    let ossl = |e: openssl::error::ErrorStack| Error::malformed(format!("certificate: {e}"));
    let issuer_key = openssl::x509::X509::from_der(issuer_der)
        .and_then(|c| c.public_key())
        .map_err(ossl)?;
    if !openssl::x509::X509::from_der(new_der)
        .map_err(ossl)?
        .verify(&issuer_key)
        .unwrap_or(false)
    {
        return refuse(format!("not signed by CA `{ca}`"));
    }
    // In force now (a clock skew of five minutes allowed) and made after the
    // certificate it renews. One ending earlier than that (the CA's profile
    // shortened since) is taken, and said: the CA renews a signer once, so
    // refusing it would leave the signer to run out.
    let at = |t: &x509_cert::time::Time| gpki_pki::time::unix_seconds(t);
    let (not_before, not_after) = (at(&tbs.validity.not_before), at(&tbs.validity.not_after));
    let (current_from, current_end) = (
        at(&current.tbs_certificate.validity.not_before),
        at(&current.tbs_certificate.validity.not_after),
    );
    let now = gpki_pki::time::now();
    if not_before > now + 300 {
        return refuse(format!(
            "valid only from {}",
            gpki_pki::time::rfc3339(not_before)
        ));
    }
    if not_after <= now {
        return refuse(format!(
            "which expired at {}",
            gpki_pki::time::rfc3339(not_after)
        ));
    }
    if not_before < current_from {
        return refuse(format!(
            "valid from {}, before the certificate it renews ({})",
            gpki_pki::time::rfc3339(not_before),
            gpki_pki::time::rfc3339(current_from)
        ));
    }
    if not_after < current_end {
        tracing::warn!(
            serial = %serial,
            ends = %gpki_pki::time::rfc3339(not_after),
            current_ends = %gpki_pki::time::rfc3339(current_end),
            "the renewed signer certificate ends before the one it renews (the CA's profile is shorter now)"
        );
    }
    Ok(())
}

/// The key to renew the certificate of public key `current_spki` for: the one
/// kept at `next_key` by an earlier try when it is of the same type and not the
/// current key itself (left behind by a renewal that finished), else a new one,
/// written there first.
fn next_key_for(
    current_spki: &[u8],
    next_key: &Path,
    pass: &gpki_pki::signer::Passphrase,
) -> Result<(SoftwareKey, zeroize::Zeroizing<Vec<u8>>)> {
    let key_type = KeyType::of_spki(current_spki)?;
    if let Ok(pem) = std::fs::read(next_key).map(zeroize::Zeroizing::new) {
        match SoftwareKey::from_encrypted_pem(&pem, pass) {
            Ok(k) if k.key_type() == key_type && k.public_key_der() != current_spki => {
                return Ok((k, pem))
            }
            _ => {}
        }
    }
    let k = SoftwareKey::generate(key_type)?;
    let pem = zeroize::Zeroizing::new(k.to_encrypted_pem(pass)?);
    let _ = std::fs::remove_file(next_key);
    gpki_pki::signer::write_private_file(next_key, &pem)?;
    Ok((k, pem))
}

/// Writes the renewed pair over `key_path` and `cert_path`, so that a stop at any
/// point leaves either the old pair whole or a state [`finish_interrupted`] makes
/// whole: the new certificate goes to `CERT.next` first (beside the new key,
/// `KEY.next`), then the key is replaced, then the certificate, each rename made
/// durable by syncing its directory; the `.next` files go last.
pub fn replace_files(
    key_pem: &[u8],
    cert_pem: &str,
    key_path: &Path,
    cert_path: &Path,
) -> Result<()> {
    let next_cert = next_cert_path(cert_path);
    replace(&next_cert, cert_pem.as_bytes(), false)?;
    replace(key_path, key_pem, true)?;
    replace(cert_path, cert_pem.as_bytes(), false)?;
    // KEY.next first: left behind alone it would be the current key, which a
    // renewal cannot ask for (renew() also throws such a file away).
    for p in [next_key_path(key_path), next_cert] {
        let _ = std::fs::remove_file(&p);
        sync_dir(&p)?;
    }
    Ok(())
}

/// [`replace_files`] on a blocking thread: its file and directory syncs wait for
/// the disk, which the workers answering requests must not.
pub async fn replace_files_off_workers(
    key_pem: zeroize::Zeroizing<Vec<u8>>,
    cert_pem: String,
    key_path: std::path::PathBuf,
    cert_path: std::path::PathBuf,
) -> Result<()> {
    tokio::task::spawn_blocking(move || replace_files(&key_pem, &cert_pem, &key_path, &cert_path))
        .await
        .map_err(|e| Error::internal(format!("replacing the signer's files: {e}")))?
}

/// Finishes a renewal that stopped between replacing the key and replacing the
/// certificate: when the key at `key_path` is the key of `CERT.next`, that
/// certificate is renamed over `cert_path`. Anything else is left as it is (the old
/// pair is whole, and a renewal asks again with `KEY.next` and gets the same
/// certificate back). A signer calls it before it loads its pair; true when it
/// finished one.
pub fn finish_interrupted(
    key_path: &Path,
    cert_path: &Path,
    pass: &gpki_pki::signer::Passphrase,
) -> Result<bool> {
    let next_cert = next_cert_path(cert_path);
    let Ok(raw) = std::fs::read(&next_cert) else {
        return Ok(false);
    };
    let spki = gpki_pki::pem::decode_pem_or_der(&raw, &["CERTIFICATE"])
        .and_then(|der| gpki_pki::cert::decode(&der))
        .and_then(|c| {
            Ok(der::Encode::to_der(
                &c.tbs_certificate.subject_public_key_info,
            )?)
        });
    let Ok(spki) = spki else {
        tracing::warn!(file = %next_cert.display(), "not a certificate; left as it is");
        return Ok(false);
    };
    if SoftwareKey::read_encrypted(key_path, pass)?.public_key_der() != spki.as_slice() {
        return Ok(false);
    }
    match std::fs::rename(&next_cert, cert_path) {
        Ok(()) => {}
        // A renewal of this process finished the swap meanwhile.
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(false),
        Err(e) => {
            return Err(Error::internal(format!(
                "cannot replace {}: {e}",
                cert_path.display()
            )))
        }
    }
    sync_dir(cert_path)?;
    let next_key = next_key_path(key_path);
    let _ = std::fs::remove_file(&next_key);
    sync_dir(&next_key)?;
    tracing::warn!(cert = %cert_path.display(), "finished a signer renewal that stopped between its key and its certificate");
    Ok(true)
}

/// Where a renewal keeps the new key until it is in force: `KEY.next`.
pub fn next_key_path(key_path: &Path) -> std::path::PathBuf {
    with_suffix(key_path, ".next")
}

/// Where a renewal keeps the new certificate while the pair is replaced:
/// `CERT.next`.
pub fn next_cert_path(cert_path: &Path) -> std::path::PathBuf {
    with_suffix(cert_path, ".next")
}

fn with_suffix(path: &Path, suffix: &str) -> std::path::PathBuf {
    let mut p = path.as_os_str().to_owned();
    p.push(suffix);
    std::path::PathBuf::from(p)
}

/// Makes the renames and removals in `path`'s directory durable.
fn sync_dir(path: &Path) -> Result<()> {
    let dir = match path.parent() {
        Some(d) if !d.as_os_str().is_empty() => d,
        _ => Path::new("."),
    };
    std::fs::File::open(dir)
        .and_then(|d| d.sync_all())
        .map_err(|e| Error::internal(format!("cannot sync directory {}: {e}", dir.display())))
}

/// Writes `bytes` beside `path` (a new file, synced), renames it over `path`
/// (mode 0600 for a key) and syncs the directory.
fn replace(path: &Path, bytes: &[u8], private: bool) -> Result<()> {
    let tmp = with_suffix(path, ".renewing");
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
        .map_err(|e| Error::internal(format!("cannot replace {}: {e}", path.display())))?;
    sync_dir(path)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn p256() -> openssl::pkey::PKey<openssl::pkey::Private> {
        let group =
            openssl::ec::EcGroup::from_curve_name(openssl::nid::Nid::X9_62_PRIME256V1).unwrap();
        openssl::pkey::PKey::from_ec_key(openssl::ec::EcKey::generate(&group).unwrap()).unwrap()
    }

    /// An OpenSSL certificate `CN=signer` for `public`, valid from now for `days`.
    fn cert_of(
        public: &openssl::pkey::PKeyRef<impl openssl::pkey::HasPublic>,
        days: u32,
    ) -> openssl::x509::X509 {
        let sha256 = openssl::hash::MessageDigest::sha256();
        let der = signed_for(
            "signer",
            "signer",
            public,
            &p256(),
            sha256,
            0,
            i64::from(days) * 86_400,
        );
        openssl::x509::X509::from_der(&der).unwrap()
    }

    /// A certificate valid from now for `days`.
    fn cert(days: u32) -> Vec<u8> {
        cert_of(&p256(), days).to_der().unwrap()
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

    /// Whether OpenSSL finds the key at `key` (decrypted with `pass`) to be the key
    /// of the certificate at `cert`.
    fn openssl_pair(key: &Path, cert: &Path, pass: &[u8]) -> bool {
        let key = openssl::pkey::PKey::private_key_from_pem_passphrase(
            &std::fs::read(key).unwrap(),
            pass,
        )
        .unwrap();
        let cert = openssl::x509::X509::from_pem(&std::fs::read(cert).unwrap()).unwrap();
        cert.public_key().unwrap().public_eq(&key)
    }

    /// A renewal stopped after its key was replaced and before its certificate
    /// was: the next load finishes it; one stopped before the key was replaced is
    /// left as it was; a whole renewal leaves no `.next` file behind.
    #[test]
    fn a_renewal_stopped_between_key_and_certificate_is_finished_at_load() {
        let dir = tempfile::tempdir().unwrap();
        let pass = gpki_pki::signer::Passphrase::new(b"signer pass".to_vec());
        let (key_path, cert_path) = (dir.path().join("s.key"), dir.path().join("s.crt"));
        let pair = || {
            let key = SoftwareKey::generate(KeyType::EcP256).unwrap();
            let public = openssl::pkey::PKey::public_key_from_der(key.public_key_der()).unwrap();
            let pem = String::from_utf8(cert_of(&public, 30).to_pem().unwrap()).unwrap();
            (key.to_encrypted_pem(&pass).unwrap(), pem)
        };
        let (old_key, old_cert) = pair();
        replace(&key_path, &old_key, true).unwrap();
        replace(&cert_path, old_cert.as_bytes(), false).unwrap();
        assert!(openssl_pair(&key_path, &cert_path, b"signer pass"));

        // Stopped before the key was replaced: the old pair stays.
        let (new_key, new_cert) = pair();
        std::fs::write(next_key_path(&key_path), &new_key).unwrap();
        replace(&next_cert_path(&cert_path), new_cert.as_bytes(), false).unwrap();
        assert!(!finish_interrupted(&key_path, &cert_path, &pass).unwrap());
        assert_eq!(std::fs::read_to_string(&cert_path).unwrap(), old_cert);
        assert!(openssl_pair(&key_path, &cert_path, b"signer pass"));

        // Stopped after the key was replaced: a mismatched pair, finished at load.
        replace(&key_path, &new_key, true).unwrap();
        assert!(!openssl_pair(&key_path, &cert_path, b"signer pass"));
        assert!(finish_interrupted(&key_path, &cert_path, &pass).unwrap());
        assert_eq!(std::fs::read_to_string(&cert_path).unwrap(), new_cert);
        assert!(openssl_pair(&key_path, &cert_path, b"signer pass"));
        assert!(!next_cert_path(&cert_path).exists());
        assert!(!next_key_path(&key_path).exists());
        assert!(!finish_interrupted(&key_path, &cert_path, &pass).unwrap());

        // A whole renewal: the new pair, nothing left beside it.
        let (third_key, third_cert) = pair();
        std::fs::write(next_key_path(&key_path), &third_key).unwrap();
        replace_files(&third_key, &third_cert, &key_path, &cert_path).unwrap();
        assert!(openssl_pair(&key_path, &cert_path, b"signer pass"));
        assert_eq!(std::fs::read_to_string(&cert_path).unwrap(), third_cert);
        let left: Vec<_> = std::fs::read_dir(dir.path())
            .unwrap()
            .map(|e| e.unwrap().file_name().into_string().unwrap())
            .collect();
        let mut left = left;
        left.sort();
        assert_eq!(left, ["s.crt", "s.key"]);
    }

    /// A retry reuses the key an earlier try kept; a kept key that is already the
    /// current one (a finished renewal's leftover) is replaced by a new one.
    #[test]
    fn a_kept_next_key_is_reused_unless_it_is_the_current_key() {
        let dir = tempfile::tempdir().unwrap();
        let pass = gpki_pki::signer::Passphrase::new(b"signer pass".to_vec());
        let next = dir.path().join("s.key.next");
        let current = SoftwareKey::generate(KeyType::EcP256).unwrap();
        let (first, first_pem) = next_key_for(current.public_key_der(), &next, &pass).unwrap();
        assert_eq!(*first_pem, std::fs::read(&next).unwrap());
        assert_ne!(first.public_key_der(), current.public_key_der());
        let (again, _) = next_key_for(current.public_key_der(), &next, &pass).unwrap();
        assert_eq!(again.public_key_der(), first.public_key_der(), "reused");
        // `first` became the current key, and its file was left behind.
        let (after, _) = next_key_for(first.public_key_der(), &next, &pass).unwrap();
        assert_ne!(after.public_key_der(), first.public_key_der());
        let on_disk = SoftwareKey::read_encrypted(&next, &pass).unwrap();
        assert_eq!(on_disk.public_key_der(), after.public_key_der());
    }

    /// An OpenSSL certificate for `public` named `subject`, issued under the name
    /// `issuer` and signed by `by` with `md`, valid from now for 30 days.
    fn signed(
        subject: &str,
        issuer: &str,
        public: &openssl::pkey::PKeyRef<impl openssl::pkey::HasPublic>,
        by: &openssl::pkey::PKeyRef<openssl::pkey::Private>,
        md: openssl::hash::MessageDigest,
    ) -> Vec<u8> {
        signed_for(subject, issuer, public, by, md, 0, 30 * 86_400)
    }

    /// [`signed`], valid from `from` until `until` seconds from now.
    fn signed_for(
        subject: &str,
        issuer: &str,
        public: &openssl::pkey::PKeyRef<impl openssl::pkey::HasPublic>,
        by: &openssl::pkey::PKeyRef<openssl::pkey::Private>,
        md: openssl::hash::MessageDigest,
        from: i64,
        until: i64,
    ) -> Vec<u8> {
        let name = |cn: &str| {
            let mut n = openssl::x509::X509NameBuilder::new().unwrap();
            n.append_entry_by_text("CN", cn).unwrap();
            n.build()
        };
        let at = |s: i64| openssl::asn1::Asn1Time::from_unix(gpki_pki::time::now() + s).unwrap();
        let mut b = openssl::x509::X509Builder::new().unwrap();
        b.set_version(2).unwrap();
        let serial = openssl::bn::BigNum::from_u32(7)
            .unwrap()
            .to_asn1_integer()
            .unwrap();
        b.set_serial_number(&serial).unwrap();
        b.set_subject_name(&name(subject)).unwrap();
        b.set_issuer_name(&name(issuer)).unwrap();
        b.set_pubkey(public).unwrap();
        b.set_not_before(&at(from)).unwrap();
        b.set_not_after(&at(until)).unwrap();
        b.sign(by, md).unwrap();
        b.build().to_der().unwrap()
    }

    /// The CA service's answer is put in force only when it is the new key's,
    /// for the same subject, from the CA asked, signed by that CA's key with an
    /// algorithm of ours; each other answer is refused by name. The certificates
    /// are OpenSSL's.
    #[test]
    fn a_renewal_answer_is_checked_before_it_is_used() {
        use openssl::hash::MessageDigest;
        let (ca_key, other_ca, old_key, new_key) = (p256(), p256(), p256(), p256());
        let ca = signed("ca", "ca", &ca_key, &ca_key, MessageDigest::sha256());
        let day = 86_400;
        let sha256 = MessageDigest::sha256();
        let current = signed_for("signer", "ca", &old_key, &ca_key, sha256, -day, 20 * day);
        let current = gpki_pki::cert::decode(&current).unwrap();
        let spki = new_key.public_key_to_der().unwrap();
        let check = |answer: &[u8]| check_answer(answer, &current, "mois", &ca, &spki);

        let good = signed("signer", "ca", &new_key, &ca_key, MessageDigest::sha256());
        check(&good).unwrap();
        let refused = |answer: Vec<u8>, why: &str| {
            let e = check(&answer).unwrap_err();
            assert_eq!(e.kind, ErrorKind::BadSignature, "{e}");
            assert!(e.detail.contains(why), "{e}");
        };
        refused(
            signed("signer", "ca", &new_key, &other_ca, MessageDigest::sha256()),
            "not signed by CA `mois`",
        );
        refused(
            signed("signer", "ca", &old_key, &ca_key, MessageDigest::sha256()),
            "for another key",
        );
        refused(
            signed("someone", "ca", &new_key, &ca_key, MessageDigest::sha256()),
            "for subject CN=someone",
        );
        refused(
            signed(
                "signer",
                "other",
                &new_key,
                &ca_key,
                MessageDigest::sha256(),
            ),
            "issued by CN=other",
        );
        refused(
            signed("signer", "ca", &new_key, &ca_key, MessageDigest::sha1()),
            "not an algorithm of CA `mois`",
        );
        let lasting = |from: i64, until: i64| {
            signed_for("signer", "ca", &new_key, &ca_key, sha256, from, until)
        };
        refused(
            lasting(-2 * day, 40 * day),
            "before the certificate it renews",
        );
        refused(lasting(-2 * day, -day), "which expired");
        refused(lasting(2 * day, 40 * day), "valid only from");
        // Ending before the current one (a profile shortened since) is taken: the
        // CA renews once, and refusing would leave the signer to run out.
        check(&lasting(0, 10 * day)).unwrap();
        // The outer signature algorithm changed, the signed one kept.
        let mut mixed = gpki_pki::cert::decode(&good).unwrap();
        mixed.signature_algorithm.oid = const_oid::db::rfc5912::ECDSA_WITH_SHA_384;
        refused(
            der::Encode::to_der(&mixed).unwrap(),
            "two signature algorithm fields differ",
        );
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
