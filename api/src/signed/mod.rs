//! CMS SignedData (RFC 5652 §5) for documents: signing with any gpki [`Signer`],
//! and the cryptographic half of verification (which certificate signed, that
//! the digest and the signature hold). Whether that certificate is trusted, for
//! what and whether it is revoked is [`crate::verifier`]'s part.
//!
//! What gpki writes: version 1, one SignerInfo named by issuer and serial, the
//! digest of the signer's algorithm (SHA-256 for P-256 and RSA keys, SHA-384 for
//! P-384), signed attributes contentType, signingTime, messageDigest and
//! signingCertificateV2 (RFC 5035, binding the certificate as CAdES does), the
//! signer's certificate and any chain given, and optionally an RFC 3161 token over
//! the signature value as the unsigned attribute id-aa-timeStampToken (RFC 3161
//! Appendix A). The content is attached unless asked detached.
//!
//! What gpki reads: that, and what `openssl cms -sign` writes (DER, with or without
//! signed attributes, issuer-and-serial or subject-key-identifier signers, several
//! signers). SHA-1 digests are refused.
//!
//! The outer layers are walked in place ([`gpki_pki::tlv`]) and the output written
//! in one allocation with the content copied once: at 1 MiB the copies of owned
//! DER types cost more than the SHA-256 of the content.
//!
//! Here the algorithms, bounds and what a check establishes; `sign` writes
//! SignedData, `check` reads and checks it.
//!
//! [`Signer`]: gpki_pki::Signer

mod check;
mod sign;

use const_oid::ObjectIdentifier;
use gpki_pki::signed::push_tlv;
use gpki_pki::{Error, ErrorKind, Result, SignatureAlgorithm};

pub use check::{check, first_ess_hash_matches, signature_identifier};
pub use sign::{sign, SignOptions, Signature};

pub const ID_DATA: ObjectIdentifier = ObjectIdentifier::new_unwrap("1.2.840.113549.1.7.1");
pub const ID_SIGNED_DATA: ObjectIdentifier = ObjectIdentifier::new_unwrap("1.2.840.113549.1.7.2");
pub const ID_CT_TST_INFO: ObjectIdentifier =
    ObjectIdentifier::new_unwrap("1.2.840.113549.1.9.16.1.4");
const ID_CONTENT_TYPE: ObjectIdentifier = ObjectIdentifier::new_unwrap("1.2.840.113549.1.9.3");
const ID_MESSAGE_DIGEST: ObjectIdentifier = ObjectIdentifier::new_unwrap("1.2.840.113549.1.9.4");
const ID_SIGNING_TIME: ObjectIdentifier = ObjectIdentifier::new_unwrap("1.2.840.113549.1.9.5");
const ID_AA_SIGNING_CERTIFICATE: ObjectIdentifier =
    ObjectIdentifier::new_unwrap("1.2.840.113549.1.9.16.2.12");
const ID_AA_SIGNING_CERTIFICATE_V2: ObjectIdentifier =
    ObjectIdentifier::new_unwrap("1.2.840.113549.1.9.16.2.47");
pub const ID_AA_TIME_STAMP_TOKEN: ObjectIdentifier =
    ObjectIdentifier::new_unwrap("1.2.840.113549.1.9.16.2.14");
const ID_SHA1: ObjectIdentifier = ObjectIdentifier::new_unwrap("1.3.14.3.2.26");
const ID_RSA_ENCRYPTION: ObjectIdentifier = ObjectIdentifier::new_unwrap("1.2.840.113549.1.1.1");
const ID_EC_PUBLIC_KEY: ObjectIdentifier = ObjectIdentifier::new_unwrap("1.2.840.10045.2.1");

/// Signers and certificates a message may carry at most (a bound on the work a
/// hostile message can ask for).
pub const MAX_SIGNERS: usize = 16;
pub const MAX_CERTIFICATES: usize = 64;
/// Attributes a SignerInfo may carry, signed and unsigned each, and values an
/// attribute may have: counted before anything is decoded, since `der` sorts a SET
/// OF as it decodes it, in time quadratic in its length.
pub const MAX_ATTRIBUTES: usize = 32;
const MAX_ATTRIBUTE_VALUES: usize = 4;
/// The largest certificate read.
pub const MAX_CERTIFICATE_BYTES: usize = 64 * 1024;

/// The digests of SignedData.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Digest {
    Sha256,
    Sha384,
    Sha512,
}

impl Digest {
    pub fn name(self) -> &'static str {
        match self {
            Digest::Sha256 => "sha256",
            Digest::Sha384 => "sha384",
            Digest::Sha512 => "sha512",
        }
    }

    pub fn oid(self) -> ObjectIdentifier {
        ObjectIdentifier::new_unwrap(match self {
            Digest::Sha256 => "2.16.840.1.101.3.4.2.1",
            Digest::Sha384 => "2.16.840.1.101.3.4.2.2",
            Digest::Sha512 => "2.16.840.1.101.3.4.2.3",
        })
    }

    /// The digest an OID names; SHA-1 and the unknown refused by name.
    pub fn of_oid(oid: &ObjectIdentifier) -> Result<Digest> {
        [Digest::Sha256, Digest::Sha384, Digest::Sha512]
            .into_iter()
            .find(|d| d.oid() == *oid)
            .ok_or_else(|| {
                if *oid == ID_SHA1 {
                    Error::policy("SHA-1 digests are refused (SHA-256, SHA-384 or SHA-512)")
                } else {
                    Error::policy(format!(
                        "digest algorithm {oid} is not supported (SHA-256, SHA-384 or SHA-512)"
                    ))
                }
            })
    }

    pub fn of_algorithm(a: SignatureAlgorithm) -> Digest {
        match a {
            SignatureAlgorithm::RsaPkcs1Sha256
            | SignatureAlgorithm::RsaPssSha256
            | SignatureAlgorithm::EcdsaSha256 => Digest::Sha256,
            SignatureAlgorithm::RsaPkcs1Sha384
            | SignatureAlgorithm::RsaPssSha384
            | SignatureAlgorithm::EcdsaSha384 => Digest::Sha384,
            SignatureAlgorithm::RsaPkcs1Sha512 => Digest::Sha512,
        }
    }

    pub fn digest(self, data: &[u8]) -> Vec<u8> {
        match self {
            Digest::Sha256 => openssl::sha::sha256(data).to_vec(),
            Digest::Sha384 => openssl::sha::sha384(data).to_vec(),
            Digest::Sha512 => openssl::sha::sha512(data).to_vec(),
        }
    }

    /// The AlgorithmIdentifier, parameters absent (RFC 5754 §2).
    fn identifier_der(self) -> Vec<u8> {
        let mut body = Vec::new();
        push_tlv(&mut body, 0x06, self.oid().as_bytes());
        let mut out = Vec::new();
        push_tlv(&mut out, 0x30, &body);
        out
    }
}

/// What one SignerInfo proved.
#[derive(Debug, Clone)]
pub struct SignerFacts {
    /// The signer's certificate (DER), from the message or the certificates given.
    pub certificate: Vec<u8>,
    pub digest: Digest,
    /// The signingTime attribute, Unix seconds (a claim of the signer, not proof).
    pub signing_time: Option<i64>,
    /// The signature value (what a timestamp token is over).
    pub signature: Vec<u8>,
    /// The first id-aa-timeStampToken unsigned attribute, unchecked.
    pub timestamp: Option<Vec<u8>>,
    /// A signingCertificate(V2) attribute names this certificate.
    pub certificate_bound: bool,
    /// The message had signed attributes (else the signature is over the content).
    pub signed_attributes: bool,
}

/// A SignedData whose every signature holds.
#[derive(Debug)]
pub struct Checked<'a> {
    pub content_type: ObjectIdentifier,
    /// The signed content: inside the message, or the detached document given.
    pub content: &'a [u8],
    pub attached: bool,
    pub signers: Vec<SignerFacts>,
    /// Every certificate the message carries, and those given: candidates for a
    /// path, trusted for nothing.
    pub certificates: Vec<Vec<u8>>,
    /// The content's digests computed for the signers, each once.
    pub content_digests: Vec<(Digest, Vec<u8>)>,
}

impl Checked<'_> {
    /// The content's SHA-256, from the signers' digests when one used it.
    pub fn content_sha256(&self) -> Vec<u8> {
        match self
            .content_digests
            .iter()
            .find(|(d, _)| *d == Digest::Sha256)
        {
            Some((_, v)) => v.clone(),
            None => Digest::Sha256.digest(self.content),
        }
    }
}

fn bad(detail: impl Into<String>) -> Error {
    Error::new(ErrorKind::BadSignature, detail.into())
}

#[cfg(test)]
mod tests {
    use super::*;
    use gpki_pki::{KeyType, SoftwareKey};
    use openssl::x509::{X509Builder, X509NameBuilder};

    /// A key and a self-signed certificate for it.
    pub(super) fn signer(kt: KeyType) -> (SoftwareKey, Vec<u8>) {
        let key = SoftwareKey::generate(kt).unwrap();
        let mut name = X509NameBuilder::new().unwrap();
        name.append_entry_by_text("CN", "Hong Gildong").unwrap();
        let name = name.build();
        let mut b = X509Builder::new().unwrap();
        b.set_version(2).unwrap();
        b.set_subject_name(&name).unwrap();
        b.set_issuer_name(&name).unwrap();
        b.set_pubkey(key.pkey()).unwrap();
        b.set_not_before(&openssl::asn1::Asn1Time::days_from_now(0).unwrap())
            .unwrap();
        b.set_not_after(&openssl::asn1::Asn1Time::days_from_now(1).unwrap())
            .unwrap();
        let mut serial = openssl::bn::BigNum::new().unwrap();
        serial.rand(63, openssl::bn::MsbOption::ONE, false).unwrap();
        let serial = serial.to_asn1_integer().unwrap();
        b.set_serial_number(&serial).unwrap();
        b.sign(key.pkey(), openssl::hash::MessageDigest::sha256())
            .unwrap();
        (key, b.build().to_der().unwrap())
    }

    pub(super) fn opts(detached: bool) -> SignOptions {
        SignOptions {
            detached,
            signing_time: 1_795_000_000,
            chain: Vec::new(),
        }
    }

    #[test]
    fn signs_and_checks_attached_and_detached_with_each_key_type() {
        for kt in [KeyType::EcP256, KeyType::EcP384, KeyType::Rsa2048] {
            let (key, cert) = signer(kt);
            let doc = b"official document".repeat(100);
            let der = sign(&doc, &key, &cert, &opts(false))
                .unwrap()
                .to_der(&doc)
                .unwrap();
            let c = check(&der, None, &[]).unwrap();
            assert_eq!(c.content, doc.as_slice());
            assert!(c.attached);
            assert_eq!(c.signers[0].certificate, cert);
            assert_eq!(c.signers[0].signing_time, Some(1_795_000_000));
            assert!(c.signers[0].certificate_bound);
            let want = if kt == KeyType::EcP384 {
                Digest::Sha384
            } else {
                Digest::Sha256
            };
            assert_eq!(c.signers[0].digest, want);

            let det = sign(&doc, &key, &cert, &opts(true))
                .unwrap()
                .to_der(&doc)
                .unwrap();
            assert!(det.len() < der.len() - doc.len());
            assert!(!check(&det, Some(&doc), &[]).unwrap().attached);
            let e = check(&det, None, &[]).unwrap_err();
            assert!(e.detail.contains("detached"), "{e}");
            let e = check(&det, Some(b"other"), &[]).unwrap_err();
            assert_eq!(e.kind, ErrorKind::BadSignature, "{e}");
            assert!(e.detail.contains("changed"), "{e}");
            let e = check(&der, Some(&doc), &[]).unwrap_err();
            assert_eq!(e.kind, ErrorKind::Malformed, "{e}");
        }
    }

    #[test]
    fn a_changed_signature_content_or_key_is_refused() {
        let (key, cert) = signer(KeyType::EcP256);
        let doc = b"budget 2026".to_vec();
        let der = sign(&doc, &key, &cert, &opts(false))
            .unwrap()
            .to_der(&doc)
            .unwrap();
        // The content inside the message, changed.
        let at = der.windows(doc.len()).position(|w| w == doc).unwrap();
        let mut changed = der.clone();
        changed[at] ^= 1;
        assert_eq!(
            check(&changed, None, &[]).unwrap_err().kind,
            ErrorKind::BadSignature
        );
        // The signature value, changed (its last octet).
        let mut sig = der.clone();
        let last = sig.len() - 1;
        sig[last] ^= 1;
        assert!(check(&sig, None, &[]).is_err());
        // Another key than the certificate's.
        let (other, _) = signer(KeyType::EcP256);
        let e = sign(&doc, &other, &cert, &opts(false)).err().unwrap();
        assert_eq!(e.kind, ErrorKind::PolicyViolation, "{e}");
        // The content written must be the content signed.
        let s = sign(&doc, &key, &cert, &opts(false)).unwrap();
        assert!(s.to_der(b"not the document").is_err());
    }

    #[test]
    fn every_truncation_and_garbage_is_an_error_not_a_panic() {
        let (key, cert) = signer(KeyType::EcP256);
        let doc = b"x".to_vec();
        let der = sign(&doc, &key, &cert, &opts(false))
            .unwrap()
            .to_der(&doc)
            .unwrap();
        for n in 0..der.len() {
            assert!(check(&der[..n], None, &[]).is_err(), "prefix {n}");
        }
        for i in 0..der.len() {
            let mut m = der.clone();
            m[i] = m[i].wrapping_add(0x41);
            // A change may land where nothing is signed (the certificate, which is
            // then not the signer's): never does it pass with other content.
            if let Ok(c) = check(&m, None, &[]) {
                assert_eq!(c.content, doc.as_slice(), "octet {i}");
                assert_eq!(c.signers[0].certificate, cert, "octet {i}");
            }
        }
        assert!(check(b"\x30\x80\x00\x00", None, &[]).is_err());
    }

    #[test]
    fn sha1_is_refused_by_name() {
        let e = Digest::of_oid(&ID_SHA1).unwrap_err();
        assert!(e.detail.contains("SHA-1"), "{e}");
    }

    #[test]
    fn a_timestamp_must_be_a_sequence() {
        let (key, cert) = signer(KeyType::EcP256);
        let mut s = sign(b"d", &key, &cert, &opts(false)).unwrap();
        assert!(s.add_timestamp(b"\x04\x00").is_err());
        s.add_timestamp(b"\x30\x00").unwrap();
        // The token rides in the unsigned attributes: the signature still holds.
        let der = s.to_der(b"d").unwrap();
        let c = check(&der, None, &[]).unwrap();
        assert_eq!(c.signers[0].timestamp.as_deref(), Some(&b"\x30\x00"[..]));
    }
}
