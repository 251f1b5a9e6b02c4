//! A recovery officer's approval: a statement naming one recovery request (its id
//! and a nonce the store drew for it), the KRA, and the archived key's certificate,
//! signed with the officer's own key. The statement is plain text, so an officer
//! (or an auditor) can read what they sign and check it with any tool:
//! `openssl dgst -sha256 -verify officer.pub -signature sig statement.txt`.
//!
//! Checking an approval here proves only that the certificate's key signed this
//! statement. Whether the certificate is an officer's of this KRA, and in force,
//! is the store's to say (`gpki km recover` asks it).

use base64::Engine as _;
use gpki_pki::{Error, ErrorKind, Result, SignatureAlgorithm, Signer};
use serde::{Deserialize, Serialize};

/// What an officer approves.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Statement {
    /// The recovery request's id in the store.
    pub recovery: i64,
    /// 256 bits the store drew for this request (hex): no two requests share a
    /// statement, even for the same certificate.
    pub nonce: String,
    pub kra: String,
    /// The archived key's certificate: its CA, serial and SHA-256 fingerprint.
    pub ca: String,
    pub serial: String,
    pub certificate_sha256: String,
    /// Why the key is recovered, as the requester said.
    pub reason: String,
    pub requested_by: String,
    pub requested_at: i64,
}

impl Statement {
    /// The bytes signed: one `name: value` line per field, in this order, after a
    /// header line. Line breaks in any field are refused.
    pub fn to_signed_bytes(&self) -> Result<Vec<u8>> {
        let fields = [
            ("recovery", self.recovery.to_string()),
            ("nonce", self.nonce.clone()),
            ("kra", self.kra.clone()),
            ("ca", self.ca.clone()),
            ("serial", self.serial.clone()),
            ("certificate-sha256", self.certificate_sha256.clone()),
            ("reason", self.reason.clone()),
            ("requested-by", self.requested_by.clone()),
            ("requested-at", self.requested_at.to_string()),
        ];
        let mut text = String::from("gpki key recovery approval v1\n");
        for (name, value) in fields {
            if value.contains(['\n', '\r']) {
                return Err(Error::malformed(format!(
                    "recovery statement field {name} holds a line break"
                )));
            }
            text.push_str(&format!("{name}: {value}\n"));
        }
        Ok(text.into_bytes())
    }
}

/// An approval as an officer hands it over (a JSON file).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Approval {
    pub statement: Statement,
    /// The officer's certificate, PEM.
    pub certificate: String,
    /// The signature algorithm, as gpki names it (ecdsa-with-SHA256, sha256WithRSAEncryption …).
    pub algorithm: String,
    /// Base64 of the signature over [`Statement::to_signed_bytes`].
    pub signature: String,
}

/// An approval whose signature checked out.
#[derive(Debug, Clone)]
pub struct Checked {
    pub certificate_der: Vec<u8>,
    /// SHA-256 of the officer's certificate (hex).
    pub certificate_sha256: String,
    /// SHA-256 of the signature (hex): an approval used once is known by it.
    pub approval_sha256: String,
}

/// Signs `statement` with the officer's key; `cert_der` is the officer's
/// certificate, which must hold that key.
pub fn sign(statement: &Statement, key: &dyn Signer, cert_der: &[u8]) -> Result<Approval> {
    let cert = gpki_pki::cert::decode(cert_der)?;
    let spki = der::Encode::to_der(&cert.tbs_certificate.subject_public_key_info)?;
    if spki != key.public_key_der() {
        return Err(Error::policy(
            "the key does not belong to the officer's certificate",
        ));
    }
    let signature = key.sign(&statement.to_signed_bytes()?)?;
    Ok(Approval {
        statement: statement.clone(),
        certificate: gpki_pki::pem::encode("CERTIFICATE", cert_der),
        algorithm: key.algorithm().to_string(),
        signature: base64::engine::general_purpose::STANDARD.encode(signature),
    })
}

impl Approval {
    /// Checks the signature with the certificate's key. Refused with
    /// [`ErrorKind::BadSignature`] when it does not verify.
    pub fn check(&self) -> Result<Checked> {
        let der = gpki_pki::pem::decode(self.certificate.as_bytes(), "CERTIFICATE")
            .map_err(|e| e.context("approval's certificate"))?;
        let cert = gpki_pki::cert::decode(&der)?;
        let spki = der::Encode::to_der(&cert.tbs_certificate.subject_public_key_info)?;
        let alg: SignatureAlgorithm = self.algorithm.parse()?;
        let signature = base64::engine::general_purpose::STANDARD
            .decode(self.signature.trim())
            .map_err(|_| Error::malformed("approval's signature is not base64"))?;
        if !gpki_pki::signer::verify(&spki, alg, &self.statement.to_signed_bytes()?, &signature)? {
            return Err(Error::new(
                ErrorKind::BadSignature,
                "the approval's signature does not verify with its certificate's key",
            ));
        }
        Ok(Checked {
            certificate_sha256: hex::encode(openssl::sha::sha256(&der)),
            approval_sha256: hex::encode(openssl::sha::sha256(&signature)),
            certificate_der: der,
        })
    }
}
