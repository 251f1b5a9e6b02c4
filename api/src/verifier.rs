//! The relying party's checks, put together: a certificate's path to an
//! anchor, its purpose, and the status of every certificate on the path but the
//! anchor; a signed document's signatures, signers and timestamps.

use std::sync::Arc;

use gpki_pki::ErrorKind;
use serde::Serialize;

use crate::signed;
use crate::status::{Answer, StatusChecker, StatusPolicy};
use crate::timestamp;
use crate::trust::{Path, Purpose, Trust};
use crate::{Reason, Refusal};

/// One certificate's status, as reported.
#[derive(Debug, Clone, Serialize)]
pub struct StatusReport {
    pub subject: String,
    pub status: String,
    pub source: crate::status::Source,
    pub url: String,
    pub this_update: String,
    pub next_update: Option<String>,
}

/// A certificate found good for a purpose.
#[derive(Debug, Clone, Serialize)]
pub struct CertificateReport {
    pub subject: String,
    pub issuer: String,
    pub serial: String,
    pub not_after: String,
    pub certificate_sha256: String,
    /// Subjects from the certificate to the anchor.
    pub path: Vec<String>,
    /// The status of each certificate on the path but the anchor.
    pub status: Vec<StatusReport>,
}

/// A timestamp found good.
#[derive(Debug, Clone, Serialize)]
pub struct TimestampReport {
    pub gen_time: String,
    pub serial: String,
    pub policy: String,
    pub tsa: CertificateReport,
}

/// One signer found good.
#[derive(Debug, Clone, Serialize)]
pub struct SignerReport {
    pub signer: CertificateReport,
    pub digest: &'static str,
    /// The signer's claim, not proof; the timestamp is proof.
    pub signing_time: Option<String>,
    pub timestamp: Option<TimestampReport>,
}

/// A signed document whose every signature, signer and timestamp is good.
#[derive(Debug, Clone, Serialize)]
pub struct SignedReport {
    pub content_type: String,
    pub content_sha256: String,
    pub content_length: usize,
    pub attached: bool,
    pub signers: Vec<SignerReport>,
}

/// Trust anchors and a status checker: what every check of the API shares.
pub struct Verifier {
    pub trust: Trust,
    pub status: StatusChecker,
}

fn refusal_of(e: gpki_pki::Error, what: &str) -> Refusal {
    let reason = match e.kind {
        ErrorKind::BadSignature => Reason::BadSignature,
        ErrorKind::NotFound => Reason::Untrusted,
        ErrorKind::PolicyViolation => Reason::Unsupported,
        _ => Reason::Malformed,
    };
    Refusal::new(reason, format!("{what}: {}", e.detail))
}

impl Verifier {
    pub fn new(trust: Trust, policy: StatusPolicy) -> gpki_pki::Result<Verifier> {
        Ok(Verifier {
            trust,
            status: StatusChecker::new(policy)?,
        })
    }

    /// The status of every certificate of `path` but the anchor; refuses a
    /// revoked one, and one whose status cannot be established.
    pub async fn path_status(&self, path: &Path) -> Result<Vec<Arc<Answer>>, Refusal> {
        let now = gpki_pki::time::now();
        let mut out = Vec::with_capacity(path.certs.len() - 1);
        for i in 0..path.certs.len() - 1 {
            let subject = &path.subjects()[i];
            let answer = self
                .status
                .status_hashed(
                    path.hashes[i],
                    &path.certs[i],
                    &path.ders[i],
                    &path.certs[i + 1],
                    now,
                )
                .await
                .map_err(|e| {
                    Refusal::new(
                        Reason::StatusUnknown,
                        format!("the status of `{subject}` could not be established: {e}"),
                    )
                })?;
            if !answer.is_good() {
                return Err(Refusal::new(
                    Reason::Revoked,
                    format!(
                        "`{subject}` is revoked ({}, since {}; {} {})",
                        answer.status,
                        gpki_pki::time::rfc3339(answer.revoked_at.unwrap_or_default()),
                        match answer.source {
                            crate::status::Source::Ocsp => "OCSP",
                            crate::status::Source::Crl => "CRL",
                        },
                        answer.url
                    ),
                ));
            }
            out.push(answer);
        }
        Ok(out)
    }

    /// `leaf_der`'s path (through `extra` and the configured intermediates),
    /// checked for `purpose` and status.
    pub async fn certificate(
        &self,
        leaf_der: &[u8],
        extra: &[Vec<u8>],
        purpose: Purpose,
    ) -> Result<(Arc<Path>, CertificateReport), Refusal> {
        let path = self.trust.path(leaf_der, extra)?;
        path.check_purpose(purpose)?;
        let answers = self.path_status(&path).await?;
        let report = report(&path, &answers);
        Ok((path, report))
    }

    /// Verifies a CMS SignedData document: every signature, every signer's
    /// certificate for document signing, and every timestamp's token and TSA.
    pub async fn signed(
        &self,
        der_bytes: &[u8],
        detached: Option<&[u8]>,
        extra: &[Vec<u8>],
    ) -> Result<SignedReport, Refusal> {
        let checked = signed::check(der_bytes, detached, extra)
            .map_err(|e| refusal_of(e, "signed document"))?;
        let mut signers = Vec::new();
        for s in &checked.signers {
            // Without signed attributes, a signature is over the content alone: a
            // login signature over its challenge text would read as a document.
            if !s.signed_attributes {
                return Err(Refusal::new(
                    Reason::Unsupported,
                    "a signer without signed attributes is refused (openssl cms -sign without -noattr)",
                ));
            }
            let (_, signer) = self
                .certificate(&s.certificate, &checked.certificates, Purpose::Signing)
                .await?;
            let timestamp = match &s.timestamp {
                None => None,
                Some(token) => {
                    let t = timestamp::check(token, &s.signature, &checked.certificates)
                        .map_err(|e| Refusal::new(Reason::TimestampInvalid, e.detail))?;
                    let (_, tsa) = self
                        .certificate(&t.tsa_certificate, &t.certificates, Purpose::TimeStamping)
                        .await
                        .map_err(|r| {
                            let reason = match r.reason {
                                Reason::StatusUnknown => Reason::StatusUnknown,
                                _ => Reason::TimestampInvalid,
                            };
                            Refusal::new(reason, format!("the timestamp's TSA: {}", r.detail))
                        })?;
                    Some(TimestampReport {
                        gen_time: gpki_pki::time::rfc3339(t.gen_time),
                        serial: t.serial,
                        policy: t.policy,
                        tsa,
                    })
                }
            };
            signers.push(SignerReport {
                signer,
                digest: s.digest.name(),
                signing_time: s.signing_time.map(gpki_pki::time::rfc3339),
                timestamp,
            });
        }
        Ok(SignedReport {
            content_type: checked.content_type.to_string(),
            content_sha256: hex::encode(checked.content_sha256()),
            content_length: checked.content.len(),
            attached: checked.attached,
            signers,
        })
    }
}

/// The report of a path found good with `answers`.
pub fn report(path: &Path, answers: &[Arc<Answer>]) -> CertificateReport {
    let subjects = path.subjects().to_vec();
    CertificateReport {
        subject: path.leaf.subject.clone(),
        issuer: path.leaf.issuer.clone(),
        serial: path.leaf.serial.clone(),
        not_after: gpki_pki::time::rfc3339(path.leaf.not_after),
        certificate_sha256: path.leaf.sha256.clone(),
        status: answers
            .iter()
            .zip(&subjects)
            .map(|(a, s)| StatusReport {
                subject: s.clone(),
                status: a.status.clone(),
                source: a.source,
                url: a.url.clone(),
                this_update: gpki_pki::time::rfc3339(a.this_update),
                next_update: a.next_update.map(gpki_pki::time::rfc3339),
            })
            .collect(),
        path: subjects,
    }
}
