//! Paths to the configured trust anchors, and what a certificate may be used
//! for. A validated path is kept, keyed by the leaf's hash, until the first of
//! its certificates expires: the signatures of a path never change, so an
//! official who logs in all day has the path built once (revocation is
//! [`crate::status`]'s, checked on every use).

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use const_oid::ObjectIdentifier;
use der::Decode;
use gpki_pki::profile::{EKU_ANY, EKU_CLIENT_AUTH, EKU_EMAIL, EKU_TIME_STAMPING};
use gpki_pki::{Error, Result, SignatureAlgorithm};
use openssl::ec::EcKey;
use openssl::ecdsa::EcdsaSig;
use openssl::nid::Nid;
use openssl::pkey::{PKey, Public};
use openssl::stack::Stack;
use openssl::x509::store::{X509Store, X509StoreBuilder};
use openssl::x509::verify::X509VerifyFlags;
use openssl::x509::{X509StoreContext, X509};
use x509_cert::ext::pkix::{ExtendedKeyUsage, KeyUsage, KeyUsages};
use x509_cert::Certificate;

use crate::{Reason, Refusal};

/// RFC 9336 id-kp-documentSigning.
pub const EKU_DOCUMENT_SIGNING: ObjectIdentifier =
    ObjectIdentifier::new_unwrap("1.3.6.1.5.5.7.3.36");

/// Paths kept at most; the cache starts afresh beyond (bounded memory under a
/// flood of distinct certificates).
const PATH_CACHE_ENTRIES: usize = 65_536;

/// What a certificate is being used for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Purpose {
    /// Logging in: digitalSignature, and clientAuth when the EKU is present.
    Login,
    /// Signing documents: digitalSignature or nonRepudiation, and
    /// emailProtection or documentSigning when the EKU is present.
    Signing,
    /// An RFC 3161 token: timeStamping, which must be present.
    TimeStamping,
    /// Being encrypted to: keyEncipherment, and emailProtection when the EKU is
    /// present.
    Encryption,
}

impl Purpose {
    pub fn name(self) -> &'static str {
        match self {
            Purpose::Login => "login",
            Purpose::Signing => "document signing",
            Purpose::TimeStamping => "time stamping",
            Purpose::Encryption => "encryption",
        }
    }

    fn check(self, leaf: &Leaf) -> std::result::Result<(), String> {
        if leaf.is_ca {
            // An end entity's use: a CA certificate (cA TRUE) logs no one in and
            // signs no document, and the status rules for CAs do not apply to it.
            return Err(format!(
                "`{}` is a CA certificate, not for {}",
                leaf.subject,
                self.name()
            ));
        }
        let ku_ok = |wanted: &[KeyUsages]| match leaf.key_usage {
            None => true,
            Some(ku) => wanted.iter().any(|w| ku.0.contains(*w)),
        };
        let eku_ok = |wanted: &[ObjectIdentifier]| match &leaf.ekus {
            None => true,
            Some(ekus) => ekus.iter().any(|e| *e == EKU_ANY || wanted.contains(e)),
        };
        let (ku, eku, ku_name, eku_name) = match self {
            Purpose::Login => (
                ku_ok(&[KeyUsages::DigitalSignature]),
                eku_ok(&[EKU_CLIENT_AUTH]),
                "digitalSignature",
                "clientAuth",
            ),
            Purpose::Signing => (
                ku_ok(&[KeyUsages::DigitalSignature, KeyUsages::NonRepudiation]),
                eku_ok(&[EKU_EMAIL, EKU_DOCUMENT_SIGNING]),
                "digitalSignature or nonRepudiation",
                "emailProtection or documentSigning",
            ),
            // RFC 3161 §2.3: timeStamping alone, critical.
            Purpose::TimeStamping => (
                ku_ok(&[KeyUsages::DigitalSignature, KeyUsages::NonRepudiation]),
                leaf.eku_critical && leaf.ekus.as_deref() == Some(&[EKU_TIME_STAMPING][..]),
                "digitalSignature or nonRepudiation",
                "timeStamping alone, critical",
            ),
            Purpose::Encryption => (
                ku_ok(&[KeyUsages::KeyEncipherment]),
                eku_ok(&[EKU_EMAIL]),
                "keyEncipherment",
                "emailProtection",
            ),
        };
        if !ku {
            return Err(format!(
                "`{}` is not for {}: its key usage lacks {ku_name}",
                leaf.subject,
                self.name()
            ));
        }
        if !eku {
            return Err(format!(
                "`{}` is not for {}: its extended key usage lacks {eku_name}",
                leaf.subject,
                self.name()
            ));
        }
        Ok(())
    }
}

/// A public key decoded once, for the signatures it checks.
pub enum PublicKey {
    Ec(EcKey<Public>, SignatureAlgorithm),
    Rsa(PKey<Public>),
}

impl PublicKey {
    fn of(cert: &X509) -> Result<PublicKey> {
        let pkey = cert
            .public_key()
            .map_err(|_| Error::malformed("the certificate's public key is not readable"))?;
        if let Ok(ec) = pkey.ec_key() {
            let alg = match ec.group().curve_name() {
                Some(Nid::X9_62_PRIME256V1) => SignatureAlgorithm::EcdsaSha256,
                Some(Nid::SECP384R1) => SignatureAlgorithm::EcdsaSha384,
                _ => return Err(Error::policy("EC keys are P-256 or P-384")),
            };
            return Ok(PublicKey::Ec(ec, alg));
        }
        if pkey.rsa().is_ok() {
            return Ok(PublicKey::Rsa(pkey));
        }
        Err(Error::policy("keys are RSA or ECDSA"))
    }

    /// The algorithm a signature by this key is taken to use when none is named.
    pub fn default_algorithm(&self) -> SignatureAlgorithm {
        match self {
            PublicKey::Ec(_, a) => *a,
            PublicKey::Rsa(_) => SignatureAlgorithm::RsaPkcs1Sha256,
        }
    }

    /// Whether `signature` is this key's, with `algorithm`, over `message`.
    pub fn verify(
        &self,
        algorithm: SignatureAlgorithm,
        message: &[u8],
        signature: &[u8],
    ) -> Result<bool> {
        match self {
            PublicKey::Ec(ec, _) => {
                let hash = match algorithm {
                    SignatureAlgorithm::EcdsaSha256 => openssl::sha::sha256(message).to_vec(),
                    SignatureAlgorithm::EcdsaSha384 => openssl::sha::sha384(message).to_vec(),
                    other => return Err(Error::policy(format!("{other} does not fit an EC key"))),
                };
                let Ok(sig) = EcdsaSig::from_der(signature) else {
                    return Ok(false);
                };
                Ok(sig.verify(&hash, ec).unwrap_or(false))
            }
            PublicKey::Rsa(pkey) => {
                use openssl::hash::MessageDigest;
                use openssl::rsa::Padding;
                use openssl::sign::RsaPssSaltlen;
                let (md, pss) = match algorithm {
                    SignatureAlgorithm::RsaPkcs1Sha256 => (MessageDigest::sha256(), false),
                    SignatureAlgorithm::RsaPkcs1Sha384 => (MessageDigest::sha384(), false),
                    SignatureAlgorithm::RsaPkcs1Sha512 => (MessageDigest::sha512(), false),
                    SignatureAlgorithm::RsaPssSha256 => (MessageDigest::sha256(), true),
                    SignatureAlgorithm::RsaPssSha384 => (MessageDigest::sha384(), true),
                    other => return Err(Error::policy(format!("{other} does not fit an RSA key"))),
                };
                let ossl = |e: openssl::error::ErrorStack| Error::internal(format!("RSA: {e}"));
                let mut v = openssl::sign::Verifier::new(md, pkey).map_err(ossl)?;
                if pss {
                    v.set_rsa_padding(Padding::PKCS1_PSS)
                        .and_then(|_| v.set_rsa_pss_saltlen(RsaPssSaltlen::DIGEST_LENGTH))
                        .and_then(|_| v.set_rsa_mgf1_md(md))
                        .map_err(ossl)?;
                }
                v.update(message).map_err(ossl)?;
                Ok(v.verify(signature).unwrap_or(false))
            }
        }
    }
}

/// The facts of a path's leaf that each use needs, decoded once.
pub struct Leaf {
    pub subject: String,
    pub issuer: String,
    /// Hex, as gpki names serials.
    pub serial: String,
    pub not_before: i64,
    pub not_after: i64,
    pub sha256: String,
    key_usage: Option<KeyUsage>,
    ekus: Option<Vec<ObjectIdentifier>>,
    eku_critical: bool,
    /// basicConstraints cA: a CA certificate is no official's, whatever its key
    /// usage says.
    is_ca: bool,
    pub key: PublicKey,
}

/// A validated path: the leaf first, the anchor last.
pub struct Path {
    pub certs: Vec<X509>,
    pub ders: Vec<Vec<u8>>,
    /// The SHA-256 of each certificate, taken once: the status cache's keys.
    pub hashes: Vec<[u8; 32]>,
    /// When the first certificate of the path expires, Unix seconds.
    pub not_after: i64,
    pub leaf: Leaf,
    subjects: Vec<String>,
}

impl Path {
    /// Refuses when the leaf may not be used for `purpose`.
    pub fn check_purpose(&self, purpose: Purpose) -> std::result::Result<(), Refusal> {
        purpose
            .check(&self.leaf)
            .map_err(|d| Refusal::new(Reason::WrongPurpose, d))
    }

    /// The subjects from the leaf to the anchor.
    pub fn subjects(&self) -> &[String] {
        &self.subjects
    }
}

/// The trust anchors (and known intermediates) a relying system accepts.
pub struct Trust {
    store: X509Store,
    anchors: Vec<Vec<u8>>,
    intermediates: Vec<X509>,
    paths: Mutex<HashMap<[u8; 32], Arc<Path>>>,
}

impl Trust {
    /// Anchors and intermediates as PEM bundles (intermediates may be empty: a
    /// message or a login may carry its chain).
    pub fn from_pem(anchors_pem: &[u8], intermediates_pem: &[u8]) -> Result<Trust> {
        let anchors = X509::stack_from_pem(anchors_pem)
            .map_err(|e| Error::malformed(format!("trust anchors: {e}")))?;
        if anchors.is_empty() {
            return Err(Error::malformed("no trust anchor given"));
        }
        let intermediates = if intermediates_pem.iter().all(u8::is_ascii_whitespace) {
            Vec::new()
        } else {
            X509::stack_from_pem(intermediates_pem)
                .map_err(|e| Error::malformed(format!("intermediates: {e}")))?
        };
        Trust::new(anchors, intermediates)
    }

    pub fn new(anchors: Vec<X509>, intermediates: Vec<X509>) -> Result<Trust> {
        let ossl = |e: openssl::error::ErrorStack| Error::internal(format!("trust store: {e}"));
        let mut b = X509StoreBuilder::new().map_err(ossl)?;
        let mut ders = Vec::new();
        for a in anchors {
            ders.push(a.to_der().map_err(ossl)?);
            b.add_cert(a).map_err(ossl)?;
        }
        // An anchor may be a CA below the root: a system that trusts one CA alone
        // stops there.
        b.set_flags(X509VerifyFlags::PARTIAL_CHAIN).map_err(ossl)?;
        Ok(Trust {
            store: b.build(),
            anchors: ders,
            intermediates,
            paths: Mutex::new(HashMap::new()),
        })
    }

    /// The path from `leaf_der` to an anchor, through `extra` (certificates
    /// the caller offers) and the configured intermediates, valid now.
    pub fn path(
        &self,
        leaf_der: &[u8],
        extra: &[Vec<u8>],
    ) -> std::result::Result<Arc<Path>, Refusal> {
        let key = openssl::sha::sha256(leaf_der);
        let now = gpki_pki::time::now();
        if let Some(p) = self.paths.lock().expect("path cache").get(&key) {
            if now <= p.not_after && now >= p.leaf.not_before {
                return Ok(p.clone());
            }
        }
        let path = Arc::new(self.build(leaf_der, extra)?);
        let mut paths = self.paths.lock().expect("path cache");
        if paths.len() >= PATH_CACHE_ENTRIES {
            paths.clear();
        }
        paths.insert(key, path.clone());
        Ok(path)
    }

    fn build(&self, leaf_der: &[u8], extra: &[Vec<u8>]) -> std::result::Result<Path, Refusal> {
        let malformed =
            |what: &str, e: String| Refusal::new(Reason::Malformed, format!("{what}: {e}"));
        let leaf = X509::from_der(leaf_der).map_err(|e| malformed("certificate", e.to_string()))?;
        let decoded =
            Certificate::from_der(leaf_der).map_err(|e| malformed("certificate", e.to_string()))?;
        let internal =
            |e: openssl::error::ErrorStack| Refusal::new(Reason::Untrusted, e.to_string());
        let mut untrusted = Stack::new().map_err(internal)?;
        for d in extra {
            let c = X509::from_der(d).map_err(|e| malformed("chain certificate", e.to_string()))?;
            untrusted.push(c).map_err(internal)?;
        }
        for c in &self.intermediates {
            untrusted.push(c.clone()).map_err(internal)?;
        }
        let mut ctx = X509StoreContext::new().map_err(internal)?;
        let (ok, error, certs) = ctx
            .init(&self.store, &leaf, &untrusted, |c| {
                let ok = c.verify_cert()?;
                let certs: Vec<X509> = c
                    .chain()
                    .map(|s| s.iter().map(|x| x.to_owned()).collect())
                    .unwrap_or_default();
                Ok((ok, c.error(), certs))
            })
            .map_err(internal)?;
        let subject = decoded.tbs_certificate.subject.to_string();
        if !ok {
            let reason = if error.as_raw() == 10 {
                Reason::Expired
            } else if error.as_raw() == 9 {
                Reason::NotYetValid
            } else {
                Reason::Untrusted
            };
            return Err(Refusal::new(
                reason,
                format!(
                    "`{subject}` does not chain to a trust anchor: {}",
                    error.error_string()
                ),
            ));
        }
        let ders = certs
            .iter()
            .map(|c| c.to_der())
            .collect::<std::result::Result<Vec<_>, _>>()
            .map_err(internal)?;
        if ders.len() < 2 {
            return Err(Refusal::new(
                Reason::Untrusted,
                format!("`{subject}` is itself a trust anchor; it cannot be checked as a leaf"),
            ));
        }
        debug_assert!(self.anchors.contains(ders.last().expect("two or more")));
        let hashes: Vec<[u8; 32]> = ders.iter().map(|d| openssl::sha::sha256(d)).collect();
        let mut not_after = i64::MAX;
        let mut subjects = Vec::new();
        for d in &ders {
            let c =
                Certificate::from_der(d).map_err(|e| malformed("certificate", e.to_string()))?;
            subjects.push(c.tbs_certificate.subject.to_string());
            not_after = not_after.min(gpki_pki::time::unix_seconds(
                &c.tbs_certificate.validity.not_after,
            ));
        }
        let tbs = &decoded.tbs_certificate;
        let key_usage = gpki_pki::cert::find_extension::<KeyUsage>(
            tbs,
            const_oid::db::rfc5280::ID_CE_KEY_USAGE,
        )
        .map_err(|e| malformed("key usage", e.detail))?
        .map(|(_, k)| k);
        let eku = gpki_pki::cert::find_extension::<ExtendedKeyUsage>(
            tbs,
            const_oid::db::rfc5280::ID_CE_EXT_KEY_USAGE,
        )
        .map_err(|e| malformed("extended key usage", e.detail))?;
        let eku_critical = eku.as_ref().is_some_and(|(c, _)| *c);
        let ekus = eku.map(|(_, e)| e.0);
        let key = PublicKey::of(&leaf).map_err(|e| Refusal::new(Reason::Malformed, e.detail))?;
        let is_ca = gpki_pki::cert::find_extension::<x509_cert::ext::pkix::BasicConstraints>(
            tbs,
            const_oid::db::rfc5280::ID_CE_BASIC_CONSTRAINTS,
        )
        .map_err(|e| malformed("basic constraints", e.detail))?
        .is_some_and(|(_, bc)| bc.ca);
        Ok(Path {
            leaf: Leaf {
                subject,
                issuer: tbs.issuer.to_string(),
                serial: hex::encode(tbs.serial_number.as_bytes()),
                not_before: gpki_pki::time::unix_seconds(&tbs.validity.not_before),
                not_after: gpki_pki::time::unix_seconds(&tbs.validity.not_after),
                sha256: hex::encode(hashes[0]),
                key_usage,
                ekus,
                eku_critical,
                is_ca,
                key,
            },
            certs,
            ders,
            hashes,
            not_after,
            subjects,
        })
    }
}
