//! Signature algorithms: their identifiers, their hashes, and verification.

use std::fmt;
use std::str::FromStr;

use const_oid::ObjectIdentifier;
use der::asn1::AnyRef;
use der::{Decode, Encode, Sequence};
use openssl::ec::{EcGroup, EcKey};
use openssl::hash::MessageDigest;
use openssl::nid::Nid;
use openssl::pkey::{PKey, Public};
use openssl::rsa::{Padding, Rsa};
use openssl::sign::RsaPssSaltlen;
use spki::AlgorithmIdentifierOwned;

use crate::error::{Error, Result};

use super::{ossl, KeyType, RsaPublicKey};

/// Signature algorithms a CA, OCSP responder or TSA key signs with.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum SignatureAlgorithm {
    RsaPkcs1Sha256,
    RsaPkcs1Sha384,
    RsaPkcs1Sha512,
    RsaPssSha256,
    RsaPssSha384,
    EcdsaSha256,
    EcdsaSha384,
}

const OID_ECDSA_SHA512: ObjectIdentifier = ObjectIdentifier::new_unwrap("1.2.840.10045.4.3.4");

/// RFC 8017 §9.2 note 1: DER of DigestInfo up to the hash value.
const DIGEST_INFO_SHA256: &[u8] = &[
    0x30, 0x31, 0x30, 0x0d, 0x06, 0x09, 0x60, 0x86, 0x48, 0x01, 0x65, 0x03, 0x04, 0x02, 0x01, 0x05,
    0x00, 0x04, 0x20,
];
const DIGEST_INFO_SHA384: &[u8] = &[
    0x30, 0x41, 0x30, 0x0d, 0x06, 0x09, 0x60, 0x86, 0x48, 0x01, 0x65, 0x03, 0x04, 0x02, 0x02, 0x05,
    0x00, 0x04, 0x30,
];
const DIGEST_INFO_SHA512: &[u8] = &[
    0x30, 0x51, 0x30, 0x0d, 0x06, 0x09, 0x60, 0x86, 0x48, 0x01, 0x65, 0x03, 0x04, 0x02, 0x03, 0x05,
    0x00, 0x04, 0x40,
];

#[derive(Clone, Copy)]
pub(super) enum Hash {
    Sha256,
    Sha384,
    Sha512,
}

impl Hash {
    pub(super) fn digest(self, msg: &[u8]) -> Vec<u8> {
        match self {
            Hash::Sha256 => openssl::sha::sha256(msg).to_vec(),
            Hash::Sha384 => openssl::sha::sha384(msg).to_vec(),
            Hash::Sha512 => openssl::sha::sha512(msg).to_vec(),
        }
    }

    pub(super) fn digest_info(self, msg: &[u8]) -> Vec<u8> {
        let prefix = match self {
            Hash::Sha256 => DIGEST_INFO_SHA256,
            Hash::Sha384 => DIGEST_INFO_SHA384,
            Hash::Sha512 => DIGEST_INFO_SHA512,
        };
        let mut out = prefix.to_vec();
        out.extend_from_slice(&self.digest(msg));
        out
    }
}

const OID_SHA256_RSA: ObjectIdentifier = ObjectIdentifier::new_unwrap("1.2.840.113549.1.1.11");
const OID_SHA384_RSA: ObjectIdentifier = ObjectIdentifier::new_unwrap("1.2.840.113549.1.1.12");
const OID_SHA512_RSA: ObjectIdentifier = ObjectIdentifier::new_unwrap("1.2.840.113549.1.1.13");
const OID_RSA_PSS: ObjectIdentifier = ObjectIdentifier::new_unwrap("1.2.840.113549.1.1.10");
const OID_MGF1: ObjectIdentifier = ObjectIdentifier::new_unwrap("1.2.840.113549.1.1.8");
const OID_SHA256: ObjectIdentifier = ObjectIdentifier::new_unwrap("2.16.840.1.101.3.4.2.1");
const OID_SHA384: ObjectIdentifier = ObjectIdentifier::new_unwrap("2.16.840.1.101.3.4.2.2");
const OID_ECDSA_SHA256: ObjectIdentifier = ObjectIdentifier::new_unwrap("1.2.840.10045.4.3.2");
const OID_ECDSA_SHA384: ObjectIdentifier = ObjectIdentifier::new_unwrap("1.2.840.10045.4.3.3");

/// RFC 4055 §3.1 RSASSA-PSS-params, with every field present (RFC 4055 §3.3 wants
/// the hash and MGF hash to match and the salt as long as the hash).
#[derive(Sequence)]
struct RsaPssParams {
    #[asn1(context_specific = "0", tag_mode = "EXPLICIT")]
    hash: AlgorithmIdentifierOwned,
    #[asn1(context_specific = "1", tag_mode = "EXPLICIT")]
    mask_gen: AlgorithmIdentifierOwned,
    #[asn1(context_specific = "2", tag_mode = "EXPLICIT")]
    salt_length: u8,
}

fn hash_identifier(oid: ObjectIdentifier) -> AlgorithmIdentifierOwned {
    // RFC 4055 §2.1: the hash parameters are NULL in RSASSA-PSS-params.
    AlgorithmIdentifierOwned {
        oid,
        parameters: Some(AnyRef::NULL.into()),
    }
}

impl SignatureAlgorithm {
    pub const ALL: [SignatureAlgorithm; 7] = [
        SignatureAlgorithm::RsaPkcs1Sha256,
        SignatureAlgorithm::RsaPkcs1Sha384,
        SignatureAlgorithm::RsaPkcs1Sha512,
        SignatureAlgorithm::RsaPssSha256,
        SignatureAlgorithm::RsaPssSha384,
        SignatureAlgorithm::EcdsaSha256,
        SignatureAlgorithm::EcdsaSha384,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            SignatureAlgorithm::RsaPkcs1Sha256 => "rsa-sha256",
            SignatureAlgorithm::RsaPkcs1Sha384 => "rsa-sha384",
            SignatureAlgorithm::RsaPkcs1Sha512 => "rsa-sha512",
            SignatureAlgorithm::RsaPssSha256 => "rsa-pss-sha256",
            SignatureAlgorithm::RsaPssSha384 => "rsa-pss-sha384",
            SignatureAlgorithm::EcdsaSha256 => "ecdsa-sha256",
            SignatureAlgorithm::EcdsaSha384 => "ecdsa-sha384",
        }
    }

    pub(super) fn digest(self) -> MessageDigest {
        match self {
            SignatureAlgorithm::RsaPkcs1Sha256
            | SignatureAlgorithm::RsaPssSha256
            | SignatureAlgorithm::EcdsaSha256 => MessageDigest::sha256(),
            SignatureAlgorithm::RsaPkcs1Sha384
            | SignatureAlgorithm::RsaPssSha384
            | SignatureAlgorithm::EcdsaSha384 => MessageDigest::sha384(),
            SignatureAlgorithm::RsaPkcs1Sha512 => MessageDigest::sha512(),
        }
    }

    /// The hash of a PKCS#1 v1.5 or ECDSA algorithm; None for PSS.
    pub(super) fn pkcs1_or_ecdsa_hash(self) -> Option<Hash> {
        match self {
            SignatureAlgorithm::RsaPkcs1Sha256 | SignatureAlgorithm::EcdsaSha256 => {
                Some(Hash::Sha256)
            }
            SignatureAlgorithm::RsaPkcs1Sha384 | SignatureAlgorithm::EcdsaSha384 => {
                Some(Hash::Sha384)
            }
            SignatureAlgorithm::RsaPkcs1Sha512 => Some(Hash::Sha512),
            SignatureAlgorithm::RsaPssSha256 | SignatureAlgorithm::RsaPssSha384 => None,
        }
    }

    pub(super) fn is_pss(self) -> bool {
        matches!(
            self,
            SignatureAlgorithm::RsaPssSha256 | SignatureAlgorithm::RsaPssSha384
        )
    }

    /// Whether a key of `key_type` can make this signature.
    pub fn fits(self, key_type: KeyType) -> bool {
        match self {
            SignatureAlgorithm::EcdsaSha256 => key_type == KeyType::EcP256,
            SignatureAlgorithm::EcdsaSha384 => key_type == KeyType::EcP384,
            _ => key_type.is_rsa(),
        }
    }

    /// The AlgorithmIdentifier that goes in `signature` / `signatureAlgorithm`.
    pub fn identifier(self) -> AlgorithmIdentifierOwned {
        match self {
            // RFC 4055 §5: the parameters of the PKCS#1 v1.5 identifiers are NULL.
            SignatureAlgorithm::RsaPkcs1Sha256 => hash_identifier(OID_SHA256_RSA),
            SignatureAlgorithm::RsaPkcs1Sha384 => hash_identifier(OID_SHA384_RSA),
            SignatureAlgorithm::RsaPkcs1Sha512 => hash_identifier(OID_SHA512_RSA),
            SignatureAlgorithm::RsaPssSha256 | SignatureAlgorithm::RsaPssSha384 => {
                let (hash_oid, salt_length) = if self == SignatureAlgorithm::RsaPssSha256 {
                    (OID_SHA256, 32)
                } else {
                    (OID_SHA384, 48)
                };
                let mgf_param = hash_identifier(hash_oid);
                let params = RsaPssParams {
                    hash: hash_identifier(hash_oid),
                    mask_gen: AlgorithmIdentifierOwned {
                        oid: OID_MGF1,
                        parameters: Some(
                            der::Any::encode_from(&mgf_param).expect("static DER encodes"),
                        ),
                    },
                    salt_length,
                };
                AlgorithmIdentifierOwned {
                    oid: OID_RSA_PSS,
                    parameters: Some(der::Any::encode_from(&params).expect("static DER encodes")),
                }
            }
            // RFC 5758 §3.2: the ECDSA identifiers have absent parameters.
            SignatureAlgorithm::EcdsaSha256 => AlgorithmIdentifierOwned {
                oid: OID_ECDSA_SHA256,
                parameters: None,
            },
            SignatureAlgorithm::EcdsaSha384 => AlgorithmIdentifierOwned {
                oid: OID_ECDSA_SHA384,
                parameters: None,
            },
        }
    }

    /// Recognises an AlgorithmIdentifier this module produces.
    pub fn from_identifier(id: &AlgorithmIdentifierOwned) -> Option<SignatureAlgorithm> {
        SignatureAlgorithm::ALL
            .into_iter()
            .find(|a| a.identifier() == *id)
    }
}

impl fmt::Display for SignatureAlgorithm {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for SignatureAlgorithm {
    type Err = Error;
    fn from_str(s: &str) -> Result<Self> {
        super::by_name(
            &SignatureAlgorithm::ALL,
            SignatureAlgorithm::as_str,
            "signature algorithm",
            s,
        )
    }
}

/// Verifies `signature` over `message` with the DER SubjectPublicKeyInfo `spki`.
pub fn verify(
    spki: &[u8],
    algorithm: SignatureAlgorithm,
    message: &[u8],
    signature: &[u8],
) -> Result<bool> {
    let pkey: PKey<Public> = PKey::public_key_from_der(spki)
        .map_err(|_| Error::malformed("public key is not a valid SubjectPublicKeyInfo"))?;
    let mut verifier = openssl::sign::Verifier::new(algorithm.digest(), &pkey)
        .map_err(|_| Error::policy(format!("{algorithm} does not fit this public key")))?;
    if algorithm.is_pss() {
        verifier
            .set_rsa_padding(Padding::PKCS1_PSS)
            .and_then(|_| verifier.set_rsa_pss_saltlen(RsaPssSaltlen::DIGEST_LENGTH))
            .and_then(|_| verifier.set_rsa_mgf1_md(algorithm.digest()))
            .map_err(ossl("RSA-PSS setup"))?;
    }
    verifier.update(message).map_err(ossl("verification"))?;
    Ok(verifier.verify(signature).unwrap_or(false))
}

/// Verifies a signature made with the AlgorithmIdentifier `algorithm` by the key
/// `spki`, as found in a CSR or a certificate. ECDSA and PKCS#1 v1.5 go through
/// OpenSSL's direct functions (the point is checked to be on its curve); RSA-PSS
/// through the EVP layer. `Ok(false)` means the signature does not verify.
pub fn verify_with_identifier(
    spki: &spki::SubjectPublicKeyInfoOwned,
    algorithm: &AlgorithmIdentifierOwned,
    message: &[u8],
    signature: &[u8],
) -> Result<bool> {
    let key_type = KeyType::of_spki_info(spki)?;
    let key = spki.subject_public_key.raw_bytes();
    let ecdsa_hash = match algorithm.oid {
        OID_ECDSA_SHA256 => Some(Hash::Sha256),
        OID_ECDSA_SHA384 => Some(Hash::Sha384),
        OID_ECDSA_SHA512 => Some(Hash::Sha512),
        _ => None,
    };
    let rsa_hash = match algorithm.oid {
        OID_SHA256_RSA => Some(Hash::Sha256),
        OID_SHA384_RSA => Some(Hash::Sha384),
        OID_SHA512_RSA => Some(Hash::Sha512),
        _ => None,
    };
    if let Some(hash) = ecdsa_hash {
        if key_type.is_rsa() {
            return Ok(false);
        }
        let group = curve_group(key_type)?;
        let mut ctx = openssl::bn::BigNumContext::new().map_err(ossl("BN context"))?;
        let point = openssl::ec::EcPoint::from_bytes(group, key, &mut ctx)
            .map_err(|_| Error::malformed("EC public key is not a point on its curve"))?;
        let ec = EcKey::from_public_key(group, &point).map_err(ossl("EC key"))?;
        let Ok(sig) = openssl::ecdsa::EcdsaSig::from_der(signature) else {
            return Ok(false);
        };
        return Ok(sig.verify(&hash.digest(message), &ec).unwrap_or(false));
    }
    if let Some(hash) = rsa_hash {
        if !key_type.is_rsa() {
            return Ok(false);
        }
        let pk = RsaPublicKey::from_der(key)
            .map_err(|e| Error::malformed(format!("RSA public key: {e}")))?;
        let n =
            openssl::bn::BigNum::from_slice(pk.modulus.as_bytes()).map_err(ossl("RSA modulus"))?;
        let e = openssl::bn::BigNum::from_slice(pk.public_exponent.as_bytes())
            .map_err(ossl("RSA exponent"))?;
        let rsa = Rsa::from_public_components(n, e).map_err(ossl("RSA key"))?;
        let mut out = vec![0u8; rsa.size() as usize];
        return Ok(
            match rsa.public_decrypt(signature, &mut out, Padding::PKCS1) {
                Ok(len) => out[..len] == hash.digest_info(message)[..],
                Err(_) => false,
            },
        );
    }
    match SignatureAlgorithm::from_identifier(algorithm) {
        Some(alg) => verify(&spki.to_der()?, alg, message, signature),
        None => Err(Error::policy(format!(
            "signature algorithm {} is not supported",
            algorithm.oid
        ))),
    }
}

/// The curve of an EC key type, built once: building it costs as much as a signature.
fn curve_group(key_type: KeyType) -> Result<&'static EcGroup> {
    static P256: std::sync::OnceLock<EcGroup> = std::sync::OnceLock::new();
    static P384: std::sync::OnceLock<EcGroup> = std::sync::OnceLock::new();
    let (cell, nid) = match key_type {
        KeyType::EcP256 => (&P256, Nid::X9_62_PRIME256V1),
        KeyType::EcP384 => (&P384, Nid::SECP384R1),
        other => return Err(Error::internal(format!("{other} is not an EC key type"))),
    };
    if let Some(g) = cell.get() {
        return Ok(g);
    }
    let g = EcGroup::from_curve_name(nid).map_err(ossl("EC group"))?;
    Ok(cell.get_or_init(|| g))
}
