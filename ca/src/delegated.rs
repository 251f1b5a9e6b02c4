//! Certificates for delegated signers (OCSP responders, the TSA): the CA side
//! makes the key pair, issues the certificate and hands both over as files. The
//! signer's process only ever reads those files; it never opens a CA key
//! (design invariant 10).

use std::path::Path;

use gpki_pki::signer::Passphrase;
use gpki_pki::{Error, KeyType, Result, Signer, SoftwareKey};

use crate::{Ca, IssueRequest, Issued, KeySource};

/// What a delegated signer certificate is for.
#[derive(Debug, Clone)]
pub struct DelegatedSigner<'a> {
    /// The issuing CA.
    pub ca: &'a str,
    /// `ocsp-signer` or `tsa`.
    pub profile: &'a str,
    pub subject: String,
    pub key_type: KeyType,
}

impl Ca {
    /// Issues a certificate for a new key of `signer.key_type` and writes the key
    /// (encrypted PKCS#8 under `key_pass`) and the certificate (PEM). Each file is
    /// written aside and renamed over the old one, key first, so a process watching
    /// them sees either the old pair, the new pair, or a new key beside the old
    /// certificate, which it refuses as a mismatch, never a half-written file.
    pub async fn issue_delegated(
        &self,
        signer: &DelegatedSigner<'_>,
        key_pass: &Passphrase,
        cert_path: &Path,
        key_path: &Path,
    ) -> Result<Issued> {
        if cert_path == key_path {
            return Err(Error::malformed(format!(
                "the certificate and the key would both be written to {}",
                cert_path.display()
            )));
        }
        let key = SoftwareKey::generate(signer.key_type)?;
        let issued = self
            .issue(&IssueRequest {
                ca: signer.ca.to_string(),
                profile: signer.profile.to_string(),
                subject: Some(signer.subject.clone()),
                key: KeySource::PublicKey(key.public_key_der().to_vec()),
                sans: Vec::new(),
                validity_days: None,
                request_key: None,
                renewed_from: None,
            })
            .await?;
        for p in [cert_path, key_path] {
            if let Some(dir) = p.parent().filter(|d| !d.as_os_str().is_empty()) {
                std::fs::create_dir_all(dir).map_err(|e| {
                    Error::internal(format!("cannot create {}: {e}", dir.display()))
                })?;
            }
        }
        // Temporary names of their own (file name + .new.PID.RANDOM), created new, so
        // two files, or two runs, never share one.
        let mut tag = [0u8; 6];
        openssl::rand::rand_bytes(&mut tag).map_err(|e| Error::internal(format!("random: {e}")))?;
        let aside = |p: &Path| {
            let mut name = p.file_name().unwrap_or_default().to_os_string();
            name.push(format!(".new.{}.{}", std::process::id(), hex::encode(tag)));
            p.with_file_name(name)
        };
        let tmp_key = aside(key_path);
        let tmp_cert = aside(cert_path);
        key.write_encrypted(&tmp_key, key_pass)?;
        gpki_pki::signer::write_private_file(
            &tmp_cert,
            gpki_pki::pem::encode("CERTIFICATE", &issued.der).as_bytes(),
        )?;
        for (from, to) in [(&tmp_key, key_path), (&tmp_cert, cert_path)] {
            std::fs::rename(from, to).map_err(|e| {
                Error::internal(format!(
                    "cannot move {} to {}: {e}",
                    from.display(),
                    to.display()
                ))
            })?;
        }
        Ok(issued)
    }
}
