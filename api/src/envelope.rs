//! CMS EnvelopedData to officials' key-management certificates. The message
//! format is gpki-kmi's (RSA-OAEP SHA-256 key transport, AES-256-CBC content;
//! opening also what `openssl cms -encrypt` makes); what this adds is the
//! relying party's duty before encrypting: each recipient's certificate is
//! checked for encryption, to an anchor, and not revoked.

pub use gpki_kmi::envelope::{open, open_document, recipients, seal, Recipient, RecipientName};

use crate::trust::Purpose;
use crate::verifier::{CertificateReport, Verifier};
use crate::{Reason, Refusal};

/// Encrypts `content` to every certificate of `recipients` (DER), each first
/// found good for encryption (`extra`: certificates toward the anchor).
pub async fn encrypt(
    verifier: &Verifier,
    content: &[u8],
    recipients: &[Vec<u8>],
    extra: &[Vec<u8>],
) -> Result<(Vec<u8>, Vec<CertificateReport>), Refusal> {
    if recipients.is_empty() {
        return Err(Refusal::new(Reason::Malformed, "no recipient certificate"));
    }
    let mut reports = Vec::new();
    for r in recipients {
        let (_, report) = verifier.certificate(r, extra, Purpose::Encryption).await?;
        reports.push(report);
    }
    let named: Vec<Recipient> = recipients
        .iter()
        .map(|d| Recipient::Certificate(d))
        .collect();
    let sealed = seal(content, &named).map_err(|e| Refusal::new(Reason::Malformed, e.detail))?;
    Ok((sealed, reports))
}
