//! Keys and signatures. [`Signer`] is the seam every key backend fits behind: the
//! software backend ([`SoftwareKey`]), PKCS#11 later. Nothing in this module formats
//! key material into a string, and [`SoftwareKey`]'s `Debug` shows only the key type.
//!
//! Here: key types and the [`Signer`] trait. Signature algorithms and verification
//! are in `algorithm`, the software key in `software`, key files and their
//! passphrases in `key_file`.

mod algorithm;
mod key_file;
mod software;
#[cfg(test)]
mod tests;

pub use algorithm::{verify, verify_with_identifier, SignatureAlgorithm};
pub use key_file::{write_private_file, KeyEncryption, Passphrase, PBKDF2_ITERATIONS};
pub use software::SoftwareKey;

use std::fmt;
use std::str::FromStr;

use const_oid::ObjectIdentifier;
use der::{Decode, Encode, Sequence};
use openssl::nid::Nid;
use openssl::pkey::{Id, PKey};

use crate::error::{Error, Result};

/// Key algorithms and sizes gpki generates and accepts.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, serde::Serialize, serde::Deserialize)]
pub enum KeyType {
    #[serde(rename = "rsa2048")]
    Rsa2048,
    #[serde(rename = "rsa3072")]
    Rsa3072,
    #[serde(rename = "rsa4096")]
    Rsa4096,
    #[serde(rename = "p256")]
    EcP256,
    #[serde(rename = "p384")]
    EcP384,
}

impl KeyType {
    pub const ALL: [KeyType; 5] = [
        KeyType::Rsa2048,
        KeyType::Rsa3072,
        KeyType::Rsa4096,
        KeyType::EcP256,
        KeyType::EcP384,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            KeyType::Rsa2048 => "rsa2048",
            KeyType::Rsa3072 => "rsa3072",
            KeyType::Rsa4096 => "rsa4096",
            KeyType::EcP256 => "p256",
            KeyType::EcP384 => "p384",
        }
    }

    pub fn is_rsa(self) -> bool {
        matches!(self, KeyType::Rsa2048 | KeyType::Rsa3072 | KeyType::Rsa4096)
    }

    /// The signature algorithm used when none is asked for.
    pub fn default_signature_algorithm(self) -> SignatureAlgorithm {
        match self {
            KeyType::Rsa2048 | KeyType::Rsa3072 => SignatureAlgorithm::RsaPkcs1Sha256,
            KeyType::Rsa4096 => SignatureAlgorithm::RsaPkcs1Sha384,
            KeyType::EcP256 => SignatureAlgorithm::EcdsaSha256,
            KeyType::EcP384 => SignatureAlgorithm::EcdsaSha384,
        }
    }

    /// Classifies a DER SubjectPublicKeyInfo. Keys of other kinds or sizes are refused
    /// with a message that names what was found. Pure DER: no OpenSSL decoder on the
    /// hot path of issuance.
    pub fn of_spki(spki_der: &[u8]) -> Result<KeyType> {
        let spki = spki_from_der(spki_der)?;
        Self::of_spki_info(&spki)
    }

    /// [`KeyType::of_spki`] for a decoded SubjectPublicKeyInfo.
    pub fn of_spki_info(spki: &spki::SubjectPublicKeyInfoOwned) -> Result<KeyType> {
        let key = spki
            .subject_public_key
            .as_bytes()
            .ok_or_else(|| Error::malformed("public key BIT STRING has unused bits"))?;
        match spki.algorithm.oid {
            OID_RSA_ENCRYPTION => {
                // RFC 3279 §2.3.1: the parameters MUST be NULL. Anything else would give
                // the same key a second encoding, and a second SPKI hash for the
                // compromised-key check to miss.
                if spki.algorithm.parameters.as_ref().map(|p| p.to_der())
                    != Some(Ok(vec![0x05, 0x00]))
                {
                    return Err(Error::malformed(
                        "rsaEncryption parameters must be NULL (RFC 3279 §2.3.1)",
                    ));
                }
                let rsa = RsaPublicKey::from_der(key)
                    .map_err(|e| Error::malformed(format!("RSA public key: {e}")))?;
                let m = rsa.modulus.as_bytes();
                let bits = m.len() * 8 - m.first().map_or(8, |b| b.leading_zeros() as usize);
                match bits {
                    2048 => Ok(KeyType::Rsa2048),
                    3072 => Ok(KeyType::Rsa3072),
                    4096 => Ok(KeyType::Rsa4096),
                    n => Err(Error::policy(format!(
                        "RSA key of {n} bits is not supported (2048, 3072 or 4096)"
                    ))),
                }
            }
            OID_EC_PUBLIC_KEY => {
                let curve: ObjectIdentifier = spki
                    .algorithm
                    .parameters
                    .as_ref()
                    .and_then(|p| p.decode_as().ok())
                    .ok_or_else(|| {
                        Error::policy("EC key with explicit curve parameters is not supported")
                    })?;
                let (kt, len) = match curve {
                    OID_P256 => (KeyType::EcP256, 65),
                    OID_P384 => (KeyType::EcP384, 97),
                    other => {
                        return Err(Error::policy(format!(
                            "EC curve {other} is not supported (P-256 or P-384)"
                        )))
                    }
                };
                if key.len() != len || key[0] != 0x04 {
                    return Err(Error::malformed(
                        "EC public key is not an uncompressed point of its curve",
                    ));
                }
                Ok(kt)
            }
            other => Err(Error::policy(format!(
                "key algorithm {other} is not supported (RSA or ECDSA)"
            ))),
        }
    }

    fn of_pkey<T: openssl::pkey::HasPublic>(pkey: &PKey<T>) -> Result<KeyType> {
        match pkey.id() {
            Id::RSA => match pkey.bits() {
                2048 => Ok(KeyType::Rsa2048),
                3072 => Ok(KeyType::Rsa3072),
                4096 => Ok(KeyType::Rsa4096),
                n => Err(Error::policy(format!(
                    "RSA key of {n} bits is not supported (2048, 3072 or 4096)"
                ))),
            },
            Id::EC => {
                let ec = pkey
                    .ec_key()
                    .map_err(|_| Error::malformed("EC key without parameters"))?;
                match ec.group().curve_name() {
                    Some(Nid::X9_62_PRIME256V1) => Ok(KeyType::EcP256),
                    Some(Nid::SECP384R1) => Ok(KeyType::EcP384),
                    Some(nid) => Err(Error::policy(format!(
                        "EC curve {} is not supported (P-256 or P-384)",
                        nid.short_name().unwrap_or("unknown")
                    ))),
                    None => Err(Error::policy(
                        "EC key with explicit curve parameters is not supported",
                    )),
                }
            }
            other => Err(Error::policy(format!(
                "key algorithm {other:?} is not supported (RSA or ECDSA)"
            ))),
        }
    }
}

impl fmt::Display for KeyType {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for KeyType {
    type Err = Error;
    fn from_str(s: &str) -> Result<Self> {
        by_name(&KeyType::ALL, KeyType::as_str, "key type", s)
    }
}

/// The one of `all` that `name` calls `s` (in any case), or an error that lists
/// the names.
fn by_name<T: Copy>(all: &[T], name: fn(T) -> &'static str, what: &str, s: &str) -> Result<T> {
    all.iter()
        .copied()
        .find(|v| name(*v).eq_ignore_ascii_case(s))
        .ok_or_else(|| {
            let names: Vec<&str> = all.iter().map(|v| name(*v)).collect();
            Error::malformed(format!(
                "unknown {what} `{s}` (one of {})",
                names.join(", ")
            ))
        })
}

const OID_RSA_ENCRYPTION: ObjectIdentifier = ObjectIdentifier::new_unwrap("1.2.840.113549.1.1.1");
const OID_EC_PUBLIC_KEY: ObjectIdentifier = ObjectIdentifier::new_unwrap("1.2.840.10045.2.1");
const OID_P256: ObjectIdentifier = ObjectIdentifier::new_unwrap("1.2.840.10045.3.1.7");
const OID_P384: ObjectIdentifier = ObjectIdentifier::new_unwrap("1.3.132.0.34");

/// RFC 8017 A.1.1 RSAPublicKey.
#[derive(Sequence)]
struct RsaPublicKey<'a> {
    modulus: der::asn1::UintRef<'a>,
    public_exponent: der::asn1::UintRef<'a>,
}

/// A private key that signs. One doc line a method, no I/O assumptions, so a
/// PKCS#11 token or a KMS fits behind it as an added file.
pub trait Signer: Send + Sync {
    /// The algorithm every signature made by this signer uses.
    fn algorithm(&self) -> SignatureAlgorithm;
    /// The DER SubjectPublicKeyInfo of the key.
    fn public_key_der(&self) -> &[u8];
    /// Signs `message`, returning the signature value as it goes in the BIT STRING.
    fn sign(&self, message: &[u8]) -> Result<Vec<u8>>;
}

/// Maps an OpenSSL error to an internal error naming the operation. OpenSSL's own
/// text is kept: it never contains key bytes.
pub(crate) fn ossl(what: &'static str) -> impl Fn(openssl::error::ErrorStack) -> Error {
    move |e| Error::internal(format!("{what}: {e}"))
}

/// Decodes a DER SubjectPublicKeyInfo.
pub fn spki_from_der(der_bytes: &[u8]) -> Result<spki::SubjectPublicKeyInfoOwned> {
    spki::SubjectPublicKeyInfoOwned::from_der(der_bytes)
        .map_err(|e| Error::malformed(format!("SubjectPublicKeyInfo: {e}")))
}
