//! Decoding OCSP requests (RFC 6960 §4.1) and the nonce rules of RFC 8954.

use const_oid::ObjectIdentifier;
use der::{Decode, Encode};

/// id-pkix-ocsp-nonce (RFC 6960 §4.4.1).
pub const ID_PKIX_OCSP_NONCE: ObjectIdentifier =
    ObjectIdentifier::new_unwrap("1.3.6.1.5.5.7.48.1.2");
/// RFC 8954 §2.1: a nonce is 1 to 32 octets.
pub const MAX_NONCE_OCTETS: usize = 32;

/// CertID hash algorithms the responder matches issuers by.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum HashAlg {
    Sha1,
    Sha256,
    Sha384,
    Sha512,
}

impl HashAlg {
    pub const ALL: [HashAlg; 4] = [
        HashAlg::Sha1,
        HashAlg::Sha256,
        HashAlg::Sha384,
        HashAlg::Sha512,
    ];

    pub fn from_oid(oid: &ObjectIdentifier) -> Option<HashAlg> {
        Some(match oid.to_string().as_str() {
            "1.3.14.3.2.26" => HashAlg::Sha1,
            "2.16.840.1.101.3.4.2.1" => HashAlg::Sha256,
            "2.16.840.1.101.3.4.2.2" => HashAlg::Sha384,
            "2.16.840.1.101.3.4.2.3" => HashAlg::Sha512,
            _ => return None,
        })
    }

    pub fn digest(self, data: &[u8]) -> Vec<u8> {
        match self {
            HashAlg::Sha1 => openssl::sha::sha1(data).to_vec(),
            HashAlg::Sha256 => openssl::sha::sha256(data).to_vec(),
            HashAlg::Sha384 => openssl::sha::sha384(data).to_vec(),
            HashAlg::Sha512 => openssl::sha::sha512(data).to_vec(),
        }
    }
}

/// One CertID of a request.
#[derive(Debug, Clone)]
pub struct RequestedCert {
    /// The CertID's DER, echoed in the SingleResponse.
    pub der: Vec<u8>,
    /// `None` for a hash algorithm the responder does not know.
    pub hash: Option<HashAlg>,
    pub name_hash: Vec<u8>,
    pub key_hash: Vec<u8>,
    /// The serial's magnitude (no leading zero octets).
    pub serial: Vec<u8>,
}

/// A decoded request.
#[derive(Debug, Clone)]
pub struct Parsed {
    pub certs: Vec<RequestedCert>,
    /// The nonce Extension's DER, to echo in the response.
    pub nonce: Option<Vec<u8>>,
}

/// Why a request is refused as malformed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Malformed(pub String);

/// Decodes a DER OCSPRequest. The request signature, if any, is not required and
/// not checked (RFC 6960 §4.1.2 leaves that to the responder's policy).
pub fn parse(body: &[u8], max_certs: usize) -> Result<Parsed, Malformed> {
    let req = x509_ocsp::OcspRequest::from_der(body)
        .map_err(|e| Malformed(format!("request is not a DER OCSPRequest: {e}")))?;
    let list = &req.tbs_request.request_list;
    if list.is_empty() {
        return Err(Malformed("request lists no certificates".into()));
    }
    if list.len() > max_certs {
        return Err(Malformed(format!(
            "request lists {} certificates; at most {max_certs} are answered at once",
            list.len()
        )));
    }
    let mut certs = Vec::with_capacity(list.len());
    for r in list {
        let id = &r.req_cert;
        let bytes = id.serial_number.as_bytes();
        let start = bytes.iter().position(|b| *b != 0).unwrap_or(bytes.len());
        certs.push(RequestedCert {
            der: id
                .to_der()
                .map_err(|e| Malformed(format!("CertID does not re-encode: {e}")))?,
            hash: HashAlg::from_oid(&id.hash_algorithm.oid),
            name_hash: id.issuer_name_hash.as_bytes().to_vec(),
            key_hash: id.issuer_key_hash.as_bytes().to_vec(),
            serial: bytes[start..].to_vec(),
        });
    }
    let mut nonce = None;
    if let Some(exts) = &req.tbs_request.request_extensions {
        for ext in exts.iter().filter(|e| e.extn_id == ID_PKIX_OCSP_NONCE) {
            let value = ext.extn_value.as_bytes();
            // Nonce ::= OCTET STRING inside extnValue (RFC 8954); some clients put
            // the raw octets there, which counts as the nonce itself.
            let len = match der::asn1::OctetString::from_der(value) {
                Ok(inner) => inner.as_bytes().len(),
                Err(_) => value.len(),
            };
            if len == 0 || len > MAX_NONCE_OCTETS {
                return Err(Malformed(format!(
                    "nonce is {len} octets; RFC 8954 allows 1 to {MAX_NONCE_OCTETS}"
                )));
            }
            nonce = Some(
                ext.to_der()
                    .map_err(|e| Malformed(format!("nonce does not re-encode: {e}")))?,
            );
        }
    }
    Ok(Parsed { certs, nonce })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn garbage_is_malformed() {
        for body in [
            &b""[..],
            b"\x30\x03\x02\x01\x00",
            b"hello world",
            &[0x30, 0x80, 0, 0],
        ] {
            assert!(parse(body, 16).is_err(), "{body:?}");
        }
    }
}
