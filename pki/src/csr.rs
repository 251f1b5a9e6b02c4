//! PKCS#10 requests. The structure is decoded with x509-cert; the proof of possession
//! (the request's self-signature, over the certificationRequestInfo bytes exactly as
//! received) is checked with OpenSSL's signature primitives.
//! Only the subject, the key and requested subjectAltNames are taken from a CSR; other
//! requested extensions are ignored, so a requester cannot widen the profile.

use const_oid::db::rfc5912::ID_EXTENSION_REQ;
use der::{Decode, Encode};
use x509_cert::ext::pkix::SubjectAltName;
use x509_cert::ext::Extensions;
use x509_cert::name::Name;
use x509_cert::request::CertReq;

use crate::cert::SanEntry;
use crate::error::{Error, ErrorKind, Result};

/// What gpki uses of a verified CSR. Only [`parse_and_verify`] makes one and its
/// fields are read-only, so holding one means its key's possession was proved.
#[derive(Debug, Clone)]
pub struct VerifiedCsr {
    subject: Name,
    spki_der: Vec<u8>,
    requested_sans: Vec<SanEntry>,
}

impl VerifiedCsr {
    pub fn subject(&self) -> &Name {
        &self.subject
    }

    /// The DER SubjectPublicKeyInfo whose private key signed the request.
    pub fn spki_der(&self) -> &[u8] {
        &self.spki_der
    }

    /// The subjectAltNames of the request's extensionRequest.
    pub fn requested_sans(&self) -> &[SanEntry] {
        &self.requested_sans
    }
}

/// The certificationRequestInfo TLV as it appears in the request (RFC 2986 §4.2: the
/// signature is over these bytes).
fn request_info_bytes(der_bytes: &[u8]) -> Result<&[u8]> {
    use der::Reader;
    let mut reader = der::SliceReader::new(der_bytes)?;
    let header = der::Header::decode(&mut reader)?;
    header.tag.assert_eq(der::Tag::Sequence)?;
    Ok(reader.tlv_bytes()?)
}

/// Decodes a CSR (PEM or DER) and verifies its signature.
pub fn parse_and_verify(input: &[u8]) -> Result<VerifiedCsr> {
    let der_bytes =
        crate::pem::decode_pem_or_der(input, &["CERTIFICATE REQUEST", "NEW CERTIFICATE REQUEST"])
            .map_err(|e| e.context("CSR"))?;
    let req = CertReq::from_der(&der_bytes)
        .map_err(|e| Error::malformed(format!("CSR is not a valid PKCS#10 request: {e}")))?;
    let info = request_info_bytes(&der_bytes)?;
    let signature = req
        .signature
        .as_bytes()
        .ok_or_else(|| Error::malformed("CSR signature BIT STRING has unused bits"))?;
    let verified = crate::signer::verify_with_identifier(
        &req.info.public_key,
        &req.algorithm,
        info,
        signature,
    )?;
    if !verified {
        return Err(Error::new(
            ErrorKind::BadSignature,
            "CSR signature does not verify with its own public key (no proof of possession)",
        ));
    }
    let spki_der = req.info.public_key.to_der()?;
    let mut requested_sans = Vec::new();
    for attr in req.info.attributes.iter() {
        if attr.oid != ID_EXTENSION_REQ {
            continue;
        }
        for value in attr.values.iter() {
            let exts: Extensions = value
                .decode_as()
                .map_err(|e| Error::malformed(format!("CSR extensionRequest: {e}")))?;
            for ext in exts {
                if ext.extn_id == const_oid::db::rfc5280::ID_CE_SUBJECT_ALT_NAME {
                    let san = SubjectAltName::from_der(ext.extn_value.as_bytes())
                        .map_err(|e| Error::malformed(format!("CSR subjectAltName: {e}")))?;
                    for gn in san.0 {
                        requested_sans.push(SanEntry::from_general_name(&gn)?);
                    }
                }
            }
        }
    }
    Ok(VerifiedCsr {
        subject: req.info.subject,
        spki_der,
        requested_sans,
    })
}

/// A PKCS#10 request (PEM) for `key` with `subject`, signed by the key (SHA-384
/// for P-384, else SHA-256): what a holder, an RA operator's tool or a delegated
/// signer renewing itself sends.
pub fn build(key: &crate::SoftwareKey, subject: &Name) -> Result<Vec<u8>> {
    use openssl::x509::{X509NameRef, X509Req};
    let e = |what: &'static str| {
        move |err: openssl::error::ErrorStack| Error::internal(format!("{what}: {err}"))
    };
    let name_der = der::Encode::to_der(subject)?;
    let name = openssl::x509::X509Name::from_der(&name_der).map_err(e("request subject"))?;
    let mut b = X509Req::builder().map_err(e("request"))?;
    b.set_version(0).map_err(e("request version"))?;
    b.set_subject_name(AsRef::<X509NameRef>::as_ref(&name))
        .map_err(e("request subject"))?;
    b.set_pubkey(key.pkey()).map_err(e("request key"))?;
    let digest = match key.key_type() {
        crate::KeyType::EcP384 => openssl::hash::MessageDigest::sha384(),
        _ => openssl::hash::MessageDigest::sha256(),
    };
    b.sign(key.pkey(), digest).map_err(e("request signature"))?;
    b.build().to_pem().map_err(e("request PEM"))
}
/// Refused unless every SAN the CSR asks for (its extensionRequest) is among the
/// request's `sans`: the profile planner adds a CSR's SANs, so without this a CSR
/// could carry names past the scope check and past an approver who sees only the
/// request.
pub fn check_requested_sans(csr: &VerifiedCsr, sans: &[String]) -> Result<()> {
    let asked = sans
        .iter()
        .map(|s| s.parse::<crate::cert::SanEntry>())
        .collect::<Result<Vec<_>>>()?;
    for s in csr.requested_sans() {
        if !asked.contains(s) {
            return Err(Error::new(
                ErrorKind::Unauthorized,
                format!("the CSR asks for SAN `{s}`, which the request does not name; list every SAN in the request"),
            ));
        }
    }
    Ok(())
}
