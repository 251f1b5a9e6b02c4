//! OCSP responses in DER (RFC 6960 §4.2.1), written directly: a pre-signed
//! response is a few hundred octets and is made for every certificate, so the
//! encoder writes each field once into one buffer and signs ResponseData as built.

use gpki_pki::signed::{header_len, push_header, push_tlv};
use gpki_pki::time::push_generalized_time;
use gpki_pki::{Result, Signer};

/// id-pkix-ocsp-basic (RFC 6960 §4.2.1).
const ID_PKIX_OCSP_BASIC: &[u8] = &[0x2b, 0x06, 0x01, 0x05, 0x05, 0x07, 0x30, 0x01, 0x01];

/// OCSPResponseStatus values (RFC 6960 §4.2.1).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ResponseStatus {
    MalformedRequest = 1,
    InternalError = 2,
    TryLater = 3,
    Unauthorized = 6,
}

impl ResponseStatus {
    pub fn label(self) -> &'static str {
        match self {
            ResponseStatus::MalformedRequest => "malformed_request",
            ResponseStatus::InternalError => "internal_error",
            ResponseStatus::TryLater => "try_later",
            ResponseStatus::Unauthorized => "unauthorized",
        }
    }
}

/// What the responder says about one certificate.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CertState {
    Good,
    /// Revoked at a time, with an RFC 5280 reason code when one was given.
    Revoked {
        at: i64,
        reason: Option<u8>,
    },
    Unknown,
}

impl CertState {
    pub fn label(self) -> &'static str {
        match self {
            CertState::Good => "good",
            CertState::Revoked { .. } => "revoked",
            CertState::Unknown => "unknown",
        }
    }
}

/// An unsuccessful OCSPResponse: the status alone, no responseBytes.
pub fn error_response(status: ResponseStatus) -> Vec<u8> {
    vec![0x30, 0x03, 0x0a, 0x01, status as u8]
}

/// Appends one SingleResponse for the CertID whose DER is `cert_id`.
pub fn push_single_response(
    out: &mut Vec<u8>,
    cert_id: &[u8],
    state: CertState,
    this_update: i64,
    next_update: i64,
) -> Result<()> {
    let mut body = Vec::with_capacity(cert_id.len() + 64);
    body.extend_from_slice(cert_id);
    match state {
        // good [0] IMPLICIT NULL
        CertState::Good => body.extend_from_slice(&[0x80, 0x00]),
        // revoked [1] IMPLICIT RevokedInfo { revocationTime, [0] EXPLICIT CRLReason OPTIONAL }
        CertState::Revoked { at, reason } => {
            let mut info = Vec::with_capacity(24);
            push_generalized_time(&mut info, at)?;
            if let Some(r) = reason {
                info.extend_from_slice(&[0xa0, 0x03, 0x0a, 0x01, r]);
            }
            push_tlv(&mut body, 0xa1, &info);
        }
        // unknown [2] IMPLICIT NULL
        CertState::Unknown => body.extend_from_slice(&[0x82, 0x00]),
    }
    push_generalized_time(&mut body, this_update)?;
    // nextUpdate [0] EXPLICIT GeneralizedTime
    body.extend_from_slice(&[0xa0, 0x11]);
    push_generalized_time(&mut body, next_update)?;
    push_tlv(out, 0x30, &body);
    Ok(())
}

/// What a responder signs with: its key and the parts of every response that
/// depend only on its certificate, encoded once.
pub struct ResponderKey {
    pub signer: Box<dyn Signer>,
    /// responderID byKey: `[2] EXPLICIT OCTET STRING` of the SHA-1 of the key.
    responder_id: Vec<u8>,
    /// The DER AlgorithmIdentifier of the signatures.
    algorithm: Vec<u8>,
    /// `certs [0] EXPLICIT SEQUENCE OF Certificate` holding the responder certificate.
    certs: Vec<u8>,
    pub cert_der: Vec<u8>,
    pub not_after: i64,
}

impl ResponderKey {
    /// `cert_der` must certify `signer`'s key; the caller checks the issuer.
    pub fn new(signer: Box<dyn Signer>, cert_der: Vec<u8>, not_after: i64) -> Result<ResponderKey> {
        use der::Encode;
        let spki = gpki_pki::signer::spki_from_der(signer.public_key_der())?;
        let key_hash = openssl::sha::sha1(spki.subject_public_key.raw_bytes());
        let mut responder_id = Vec::with_capacity(24);
        responder_id.extend_from_slice(&[0xa2, 0x16, 0x04, 0x14]);
        responder_id.extend_from_slice(&key_hash);
        let algorithm = signer.algorithm().identifier().to_der()?;
        let mut seq = Vec::with_capacity(cert_der.len() + 8);
        push_tlv(&mut seq, 0x30, &cert_der);
        let mut certs = Vec::with_capacity(seq.len() + 8);
        push_tlv(&mut certs, 0xa0, &seq);
        Ok(ResponderKey {
            signer,
            responder_id,
            algorithm,
            certs,
            cert_der,
            not_after,
        })
    }

    /// SHA-1 of the responder's public key, as in responderID byKey.
    pub fn key_hash(&self) -> &[u8] {
        &self.responder_id[4..]
    }

    /// A successful, signed OCSPResponse holding the SingleResponses `singles`
    /// (concatenated DER) and, when given, the request's nonce extension (its DER
    /// Extension, echoed as received).
    pub fn sign(&self, produced_at: i64, singles: &[u8], nonce: Option<&[u8]>) -> Result<Vec<u8>> {
        let mut body = Vec::with_capacity(singles.len() + 96);
        body.extend_from_slice(&self.responder_id);
        push_generalized_time(&mut body, produced_at)?;
        push_tlv(&mut body, 0x30, singles);
        if let Some(ext) = nonce {
            // responseExtensions [1] EXPLICIT Extensions
            let mut exts = Vec::with_capacity(ext.len() + 4);
            push_tlv(&mut exts, 0x30, ext);
            push_tlv(&mut body, 0xa1, &exts);
        }
        let mut tbs = Vec::with_capacity(body.len() + 4);
        push_tlv(&mut tbs, 0x30, &body);
        let signature = self.signer.sign(&tbs)?;

        // BasicOCSPResponse, then ResponseBytes, then OCSPResponse, sized up front.
        let bits = signature.len() + 1;
        let basic_len =
            tbs.len() + self.algorithm.len() + header_len(bits) + bits + self.certs.len();
        let octets_len = header_len(basic_len) + basic_len;
        let bytes_len = 2 + ID_PKIX_OCSP_BASIC.len() + header_len(octets_len) + octets_len;
        let explicit_len = header_len(bytes_len) + bytes_len;
        let outer_len = 3 + header_len(explicit_len) + explicit_len;
        let mut out = Vec::with_capacity(header_len(outer_len) + outer_len);
        push_header(&mut out, 0x30, outer_len);
        out.extend_from_slice(&[0x0a, 0x01, 0x00]); // successful
        push_header(&mut out, 0xa0, explicit_len);
        push_header(&mut out, 0x30, bytes_len);
        push_tlv(&mut out, 0x06, ID_PKIX_OCSP_BASIC);
        push_header(&mut out, 0x04, octets_len);
        push_header(&mut out, 0x30, basic_len);
        out.extend_from_slice(&tbs);
        out.extend_from_slice(&self.algorithm);
        push_header(&mut out, 0x03, bits);
        out.push(0);
        out.extend_from_slice(&signature);
        out.extend_from_slice(&self.certs);
        debug_assert_eq!(out.len(), out.capacity());
        Ok(out)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn generalized_time_is_fifteen_characters() {
        let mut v = Vec::new();
        push_generalized_time(&mut v, 1_700_000_000).unwrap();
        assert_eq!(&v[..2], &[0x18, 0x0f]);
        assert_eq!(&v[2..], b"20231114221320Z");
    }

    #[test]
    fn error_responses_decode() {
        use der::Decode;
        for s in [
            ResponseStatus::MalformedRequest,
            ResponseStatus::TryLater,
            ResponseStatus::Unauthorized,
        ] {
            let r = x509_ocsp::OcspResponse::from_der(&error_response(s)).unwrap();
            assert_eq!(r.response_status as u8, s as u8);
            assert!(r.response_bytes.is_none());
        }
    }
}
