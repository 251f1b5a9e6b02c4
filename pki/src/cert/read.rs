//! Reading certificates: decoding, a CA certificate's facts, and extensions.

use const_oid::db::rfc5280::ID_CE_SUBJECT_KEY_IDENTIFIER;
use const_oid::ObjectIdentifier;
use der::Decode;
use x509_cert::certificate::{Certificate, TbsCertificate};
use x509_cert::ext::pkix::{SubjectAltName, SubjectKeyIdentifier};

use crate::error::{Error, Result};
use crate::serial::SerialNumber;

use super::{key_identifier, SanEntry};

/// Decodes a certificate from PEM or DER.
pub fn decode(input: &[u8]) -> Result<Certificate> {
    let der_bytes = crate::pem::decode_pem_or_der(input, &["CERTIFICATE"])?;
    Certificate::from_der(&der_bytes)
        .map_err(|e| Error::malformed(format!("certificate is not valid DER: {e}")))
}

/// What the services read of a CA certificate with every request: its serial (hex),
/// validity and whether it is self-issued (a root, left out of the chains they
/// return).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CaFacts {
    pub serial: String,
    pub not_before: i64,
    pub not_after: i64,
    pub self_issued: bool,
}

/// [`CaFacts`] of the certificate `der`. Decoding a certificate is tens of
/// microseconds and every issuance asks about the same few CA certificates, so
/// the answers are kept, by the certificate's bytes: a changed certificate is
/// another key. At most [`CA_FACTS_KEPT`] are kept; beyond that the memory starts
/// again.
pub fn ca_facts(der: &[u8]) -> Result<std::sync::Arc<CaFacts>> {
    use std::collections::HashMap;
    use std::sync::{Arc, Mutex, OnceLock};
    static KEPT: OnceLock<Mutex<HashMap<Vec<u8>, Arc<CaFacts>>>> = OnceLock::new();
    let kept = KEPT.get_or_init(Default::default);
    if let Some(f) = kept
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner)
        .get(der)
    {
        return Ok(f.clone());
    }
    let cert = decode(der)?;
    let tbs = &cert.tbs_certificate;
    let facts = Arc::new(CaFacts {
        serial: SerialNumber::from_bytes(tbs.serial_number.as_bytes())?.to_hex(),
        not_before: crate::time::unix_seconds(&tbs.validity.not_before),
        not_after: crate::time::unix_seconds(&tbs.validity.not_after),
        self_issued: tbs.issuer == tbs.subject,
    });
    let mut kept = kept
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner);
    if kept.len() >= CA_FACTS_KEPT {
        kept.clear();
    }
    kept.insert(der.to_vec(), facts.clone());
    Ok(facts)
}

/// How many CA certificates' [`CaFacts`] a process keeps.
pub const CA_FACTS_KEPT: usize = 256;

/// Whether the certificate's key signs: keyUsage present with digitalSignature.
pub fn signs(cert: &TbsCertificate) -> Result<bool> {
    Ok(find_extension::<x509_cert::ext::pkix::KeyUsage>(
        cert,
        const_oid::db::rfc5280::ID_CE_KEY_USAGE,
    )?
    .is_some_and(|(_, ku)| ku.digital_signature()))
}

/// The extension with `oid`, decoded.
pub fn find_extension<T: for<'a> Decode<'a>>(
    cert: &TbsCertificate,
    oid: ObjectIdentifier,
) -> Result<Option<(bool, T)>> {
    for ext in cert.extensions.iter().flatten() {
        if ext.extn_id == oid {
            let v = T::from_der(ext.extn_value.as_bytes())
                .map_err(|e| Error::malformed(format!("extension {oid}: {e}")))?;
            return Ok(Some((ext.critical, v)));
        }
    }
    Ok(None)
}

/// The subjectAltName entries of a certificate (none without the extension).
pub fn san_entries(tbs: &TbsCertificate) -> Result<Vec<SanEntry>> {
    match find_extension::<SubjectAltName>(tbs, const_oid::db::rfc5280::ID_CE_SUBJECT_ALT_NAME)? {
        Some((_, san)) => san.0.iter().map(SanEntry::from_general_name).collect(),
        None => Ok(Vec::new()),
    }
}

/// The subjectKeyIdentifier of a certificate, or one computed from its key.
pub fn subject_key_id(tbs: &TbsCertificate) -> Result<Vec<u8>> {
    match find_extension::<SubjectKeyIdentifier>(tbs, ID_CE_SUBJECT_KEY_IDENTIFIER)? {
        Some((_, ski)) => Ok(ski.0.as_bytes().to_vec()),
        None => Ok(key_identifier(&tbs.subject_public_key_info)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A certificate made by OpenSSL, not by gpki: `issuer` signs it, or it signs
    /// itself.
    fn openssl_cert(
        cn: &str,
        serial: u32,
        days: u32,
        issuer: Option<(&str, &openssl::pkey::PKey<openssl::pkey::Private>)>,
    ) -> (Vec<u8>, openssl::pkey::PKey<openssl::pkey::Private>) {
        let group =
            openssl::ec::EcGroup::from_curve_name(openssl::nid::Nid::X9_62_PRIME256V1).unwrap();
        let key = openssl::pkey::PKey::from_ec_key(openssl::ec::EcKey::generate(&group).unwrap())
            .unwrap();
        let name = |cn: &str| {
            let mut n = openssl::x509::X509NameBuilder::new().unwrap();
            n.append_entry_by_text("CN", cn).unwrap();
            n.build()
        };
        let (issuer_cn, signer) = issuer.unwrap_or((cn, &key));
        let mut b = openssl::x509::X509Builder::new().unwrap();
        b.set_version(2).unwrap();
        let serial = openssl::bn::BigNum::from_u32(serial).unwrap();
        b.set_serial_number(&serial.to_asn1_integer().unwrap())
            .unwrap();
        b.set_subject_name(&name(cn)).unwrap();
        b.set_issuer_name(&name(issuer_cn)).unwrap();
        b.set_pubkey(&key).unwrap();
        b.set_not_before(&openssl::asn1::Asn1Time::from_unix(1_700_000_000).unwrap())
            .unwrap();
        b.set_not_after(
            &openssl::asn1::Asn1Time::from_unix(1_700_000_000 + 86_400 * i64::from(days)).unwrap(),
        )
        .unwrap();
        b.sign(signer, openssl::hash::MessageDigest::sha256())
            .unwrap();
        (b.build().to_der().unwrap(), key)
    }

    #[test]
    fn ca_facts_are_the_certificates_and_follow_its_bytes() {
        let (root, root_key) = openssl_cert("root", 0x1234, 10, None);
        let (sub, _) = openssl_cert("sub", 0xabcdef, 5, Some(("root", &root_key)));
        let r = ca_facts(&root).unwrap();
        assert!(r.self_issued);
        assert_eq!(r.serial, "1234");
        assert_eq!((r.not_before, r.not_after), (1_700_000_000, 1_700_864_000));
        let s = ca_facts(&sub).unwrap();
        assert!(!s.self_issued);
        assert_eq!(s.serial, "abcdef");
        assert_eq!(s.not_after, 1_700_432_000);
        // Asked again: the same answer; another certificate under the same name
        // (re-issued) has its own.
        assert_eq!(*ca_facts(&sub).unwrap(), *s);
        let (again, _) = openssl_cert("sub", 0x77, 7, Some(("root", &root_key)));
        let a = ca_facts(&again).unwrap();
        assert_eq!((a.serial.as_str(), a.not_after), ("77", 1_700_604_800));
        // Not a certificate: an error, not an answer.
        assert!(ca_facts(b"not DER").is_err());
    }
}
