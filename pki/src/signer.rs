//! Keys and signatures. [`Signer`] is the seam every key backend fits behind: the
//! software backend here, PKCS#11 later. Nothing in this module formats key material
//! into a string, and [`SoftwareKey`]'s `Debug` shows only the key type.

use std::fmt;
use std::io::Write;
use std::path::Path;
use std::str::FromStr;

use const_oid::ObjectIdentifier;
use der::asn1::AnyRef;
use der::{Decode, Encode, Sequence};
use openssl::ec::{EcGroup, EcKey};
use openssl::hash::MessageDigest;
use openssl::nid::Nid;
use openssl::pkey::{Id, PKey, Private, Public};
use openssl::rsa::{Padding, Rsa};
use openssl::sign::RsaPssSaltlen;
use spki::AlgorithmIdentifierOwned;

use crate::error::{Error, ErrorKind, Result};

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
        KeyType::ALL
            .into_iter()
            .find(|k| k.as_str().eq_ignore_ascii_case(s))
            .ok_or_else(|| {
                Error::malformed(format!(
                    "unknown key type `{s}` (one of rsa2048, rsa3072, rsa4096, p256, p384)"
                ))
            })
    }
}

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

const OID_RSA_ENCRYPTION: ObjectIdentifier = ObjectIdentifier::new_unwrap("1.2.840.113549.1.1.1");
const OID_EC_PUBLIC_KEY: ObjectIdentifier = ObjectIdentifier::new_unwrap("1.2.840.10045.2.1");
const OID_P256: ObjectIdentifier = ObjectIdentifier::new_unwrap("1.2.840.10045.3.1.7");
const OID_P384: ObjectIdentifier = ObjectIdentifier::new_unwrap("1.3.132.0.34");
const OID_ECDSA_SHA512: ObjectIdentifier = ObjectIdentifier::new_unwrap("1.2.840.10045.4.3.4");

/// RFC 8017 A.1.1 RSAPublicKey.
#[derive(Sequence)]
struct RsaPublicKey<'a> {
    modulus: der::asn1::UintRef<'a>,
    public_exponent: der::asn1::UintRef<'a>,
}

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
enum Hash {
    Sha256,
    Sha384,
    Sha512,
}

impl Hash {
    fn digest(self, msg: &[u8]) -> Vec<u8> {
        match self {
            Hash::Sha256 => openssl::sha::sha256(msg).to_vec(),
            Hash::Sha384 => openssl::sha::sha384(msg).to_vec(),
            Hash::Sha512 => openssl::sha::sha512(msg).to_vec(),
        }
    }

    fn digest_info(self, msg: &[u8]) -> Vec<u8> {
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

    fn digest(self) -> MessageDigest {
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
    fn pkcs1_or_ecdsa_hash(self) -> Option<Hash> {
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

    fn is_pss(self) -> bool {
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
        SignatureAlgorithm::ALL
            .into_iter()
            .find(|a| a.as_str().eq_ignore_ascii_case(s))
            .ok_or_else(|| {
                Error::malformed(format!(
                    "unknown signature algorithm `{s}` (one of rsa-sha256, rsa-sha384, \
                     rsa-sha512, rsa-pss-sha256, rsa-pss-sha384, ecdsa-sha256, ecdsa-sha384)"
                ))
            })
    }
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

/// A key held in process memory, stored on disk as encrypted PKCS#8.
pub struct SoftwareKey {
    pkey: PKey<Private>,
    /// The same key through OpenSSL's direct ECDSA/RSA functions, which skip the
    /// per-call algorithm fetching of the EVP layer (costly in OpenSSL 3).
    raw: RawKey,
    key_type: KeyType,
    algorithm: SignatureAlgorithm,
    spki: Vec<u8>,
}

enum RawKey {
    Ec(EcKey<Private>),
    Rsa(Rsa<Private>),
}

impl fmt::Debug for SoftwareKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SoftwareKey")
            .field("key_type", &self.key_type)
            .field("algorithm", &self.algorithm)
            .finish_non_exhaustive()
    }
}

impl SoftwareKey {
    /// Generates a fresh key from OpenSSL's CSPRNG.
    pub fn generate(key_type: KeyType) -> Result<SoftwareKey> {
        let pkey = match key_type {
            KeyType::Rsa2048 | KeyType::Rsa3072 | KeyType::Rsa4096 => {
                let bits = match key_type {
                    KeyType::Rsa2048 => 2048,
                    KeyType::Rsa3072 => 3072,
                    _ => 4096,
                };
                let rsa = Rsa::generate(bits).map_err(ossl("RSA key generation"))?;
                PKey::from_rsa(rsa).map_err(ossl("RSA key generation"))?
            }
            KeyType::EcP256 | KeyType::EcP384 => {
                let nid = if key_type == KeyType::EcP256 {
                    Nid::X9_62_PRIME256V1
                } else {
                    Nid::SECP384R1
                };
                let group = EcGroup::from_curve_name(nid).map_err(ossl("EC group"))?;
                let ec = EcKey::generate(&group).map_err(ossl("EC key generation"))?;
                PKey::from_ec_key(ec).map_err(ossl("EC key generation"))?
            }
        };
        Self::from_pkey(pkey)
    }

    /// A key already in memory (read from PKCS#12 or a Korean key file).
    pub fn from_pkey(pkey: PKey<Private>) -> Result<SoftwareKey> {
        let key_type = KeyType::of_pkey(&pkey)?;
        let spki = pkey
            .public_key_to_der()
            .map_err(ossl("public key encoding"))?;
        let raw = if key_type.is_rsa() {
            RawKey::Rsa(pkey.rsa().map_err(ossl("RSA key"))?)
        } else {
            RawKey::Ec(pkey.ec_key().map_err(ossl("EC key"))?)
        };
        Ok(SoftwareKey {
            pkey,
            raw,
            key_type,
            algorithm: key_type.default_signature_algorithm(),
            spki,
        })
    }

    /// Chooses the signature algorithm; refuses one the key cannot make.
    pub fn with_algorithm(mut self, algorithm: SignatureAlgorithm) -> Result<SoftwareKey> {
        if !algorithm.fits(self.key_type) {
            return Err(Error::policy(format!(
                "signature algorithm {algorithm} does not fit a {} key",
                self.key_type
            )));
        }
        self.algorithm = algorithm;
        Ok(self)
    }

    pub fn key_type(&self) -> KeyType {
        self.key_type
    }

    /// The OpenSSL handle, for PKCS#12 export. Never formatted or logged.
    pub fn pkey(&self) -> &PKey<Private> {
        &self.pkey
    }

    /// Encrypted PKCS#8 PEM: PBES2 with PBKDF2-HMAC-SHA256 at [`PBKDF2_ITERATIONS`]
    /// (OpenSSL's default is 2,048) and AES-256-CBC, which `openssl pkey` reads. The
    /// plaintext PKCS#8 exists only in a buffer that is zeroed when dropped.
    pub fn to_encrypted_pem(&self, passphrase: &Passphrase) -> Result<Vec<u8>> {
        self.to_encrypted_pem_with(&KeyEncryption::derive(passphrase)?)
    }

    /// [`SoftwareKey::to_encrypted_pem`] with a key-encryption key derived once: a
    /// batch writing many key files under one passphrase pays for PBKDF2 once. Each
    /// file still gets its own IV.
    pub fn to_encrypted_pem_with(&self, kek: &KeyEncryption) -> Result<Vec<u8>> {
        let plain = zeroize::Zeroizing::new(
            self.pkey
                .private_key_to_pkcs8()
                .map_err(ossl("private key encoding"))?,
        );
        let mut iv = [0u8; 16];
        openssl::rand::rand_bytes(&mut iv).map_err(ossl("random"))?;
        // RFC 8018 PBES2: AES-256-CBC with PKCS#7 padding (OpenSSL) under the
        // PBKDF2 key; the structure from the pkcs8/pkcs5 crates.
        let encrypted = openssl::symm::encrypt(
            openssl::symm::Cipher::aes_256_cbc(),
            &kek.key[..],
            Some(&iv),
            &plain,
        )
        .map_err(ossl("private key encryption"))?;
        let params = pkcs8::pkcs5::pbes2::Parameters::pbkdf2_sha256_aes256cbc(
            PBKDF2_ITERATIONS,
            &kek.salt,
            &iv,
        )
        .map_err(|e| Error::internal(format!("PBES2 parameters: {e}")))?;
        let info = pkcs8::EncryptedPrivateKeyInfo {
            encryption_algorithm: pkcs8::pkcs5::EncryptionScheme::Pbes2(params),
            encrypted_data: &encrypted,
        };
        Ok(crate::pem::encode("ENCRYPTED PRIVATE KEY", &info.to_der()?).into_bytes())
    }

    /// Reads encrypted PKCS#8 PEM. A wrong passphrase and a damaged file get different
    /// error kinds; neither message contains the key or the passphrase.
    pub fn from_encrypted_pem(pem: &[u8], passphrase: &Passphrase) -> Result<SoftwareKey> {
        let text = std::str::from_utf8(pem).unwrap_or("");
        if !text.contains("-----BEGIN ENCRYPTED PRIVATE KEY-----") {
            return Err(Error::malformed(
                "key file is not an encrypted PKCS#8 PEM (ENCRYPTED PRIVATE KEY)",
            ));
        }
        let block = crate::pem::decode(pem, "ENCRYPTED PRIVATE KEY")?;
        if pkcs8_envelope_is_malformed(&block) {
            return Err(Error::malformed(
                "key file's EncryptedPrivateKeyInfo is not valid DER",
            ));
        }
        let pkey = PKey::private_key_from_pem_passphrase(pem, &passphrase.0).map_err(|_| {
            Error::new(
                ErrorKind::WrongPassphrase,
                "the passphrase does not decrypt the private key",
            )
        })?;
        Self::from_pkey(pkey)
    }

    /// Writes the encrypted key to `path`, created new with mode 0600; an existing
    /// file is never overwritten.
    pub fn write_encrypted(&self, path: &Path, passphrase: &Passphrase) -> Result<()> {
        let pem = self.to_encrypted_pem(passphrase)?;
        write_private_file(path, &pem)
    }

    /// [`SoftwareKey::write_encrypted`] under a key-encryption key derived once.
    pub fn write_encrypted_with(&self, path: &Path, kek: &KeyEncryption) -> Result<()> {
        let pem = self.to_encrypted_pem_with(kek)?;
        write_private_file(path, &pem)
    }

    /// Reads and decrypts a key file written by [`SoftwareKey::write_encrypted`].
    pub fn read_encrypted(path: &Path, passphrase: &Passphrase) -> Result<SoftwareKey> {
        let pem = std::fs::read(path).map_err(|e| {
            Error::not_found(format!("cannot read key file {}: {e}", path.display()))
        })?;
        Self::from_encrypted_pem(&pem, passphrase)
            .map_err(|e| e.context(format!("key file {}", path.display())))
    }
}

fn pkcs8_envelope_is_malformed(der_bytes: &[u8]) -> bool {
    #[derive(Sequence)]
    struct EncryptedPrivateKeyInfo {
        algorithm: AlgorithmIdentifierOwned,
        data: der::asn1::OctetString,
    }
    EncryptedPrivateKeyInfo::from_der(der_bytes).is_err()
}

impl Signer for SoftwareKey {
    fn algorithm(&self) -> SignatureAlgorithm {
        self.algorithm
    }

    fn public_key_der(&self) -> &[u8] {
        &self.spki
    }

    fn sign(&self, message: &[u8]) -> Result<Vec<u8>> {
        match (&self.raw, self.algorithm.pkcs1_or_ecdsa_hash()) {
            (RawKey::Ec(key), Some(hash)) => {
                let digest = hash.digest(message);
                return openssl::ecdsa::EcdsaSig::sign(&digest, key)
                    .and_then(|sig| sig.to_der())
                    .map_err(ossl("ECDSA signing"));
            }
            (RawKey::Rsa(key), Some(hash)) => {
                // RSASSA-PKCS1-v1_5 (RFC 8017 §8.2.1): EMSA-PKCS1-v1_5 over DigestInfo.
                let info = hash.digest_info(message);
                let mut out = vec![0u8; key.size() as usize];
                let n = key
                    .private_encrypt(&info, &mut out, Padding::PKCS1)
                    .map_err(ossl("RSA signing"))?;
                out.truncate(n);
                return Ok(out);
            }
            _ => {}
        }
        let mut signer = openssl::sign::Signer::new(self.algorithm.digest(), &self.pkey)
            .map_err(ossl("signer setup"))?;
        if self.algorithm.is_pss() {
            signer
                .set_rsa_padding(Padding::PKCS1_PSS)
                .and_then(|_| signer.set_rsa_pss_saltlen(RsaPssSaltlen::DIGEST_LENGTH))
                .and_then(|_| signer.set_rsa_mgf1_md(self.algorithm.digest()))
                .map_err(ossl("RSA-PSS setup"))?;
        }
        signer.update(message).map_err(ossl("signing"))?;
        signer.sign_to_vec().map_err(ossl("signing"))
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

/// PBKDF2-HMAC-SHA256 iterations of encrypted key files: OWASP's 2023 figure for
/// PBKDF2-SHA256 (about a quarter of a second per key file on one core here).
pub const PBKDF2_ITERATIONS: u32 = 600_000;

/// A key-encryption key: PBKDF2-HMAC-SHA256 of a passphrase over a random salt,
/// [`PBKDF2_ITERATIONS`] rounds. Zeroed when dropped; never formatted.
pub struct KeyEncryption {
    salt: [u8; 16],
    key: zeroize::Zeroizing<[u8; 32]>,
}

impl KeyEncryption {
    /// Derives a key-encryption key from `passphrase` (about a quarter of a second).
    pub fn derive(passphrase: &Passphrase) -> Result<KeyEncryption> {
        if passphrase.0.is_empty() {
            return Err(Error::policy(
                "refusing to write a private key with an empty passphrase",
            ));
        }
        let mut salt = [0u8; 16];
        openssl::rand::rand_bytes(&mut salt).map_err(ossl("random"))?;
        let mut key = zeroize::Zeroizing::new([0u8; 32]);
        openssl::pkcs5::pbkdf2_hmac(
            passphrase.expose(),
            &salt,
            PBKDF2_ITERATIONS as usize,
            MessageDigest::sha256(),
            &mut key[..],
        )
        .map_err(ossl("PBKDF2"))?;
        Ok(KeyEncryption { salt, key })
    }
}

impl fmt::Debug for KeyEncryption {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("KeyEncryption(..)")
    }
}

/// A passphrase that protects a private key. `Debug` never shows it; its bytes are
/// zeroed when it is dropped.
#[derive(Clone, zeroize::ZeroizeOnDrop)]
pub struct Passphrase(Vec<u8>);

impl Passphrase {
    pub fn new(bytes: impl Into<Vec<u8>>) -> Passphrase {
        Passphrase(bytes.into())
    }

    /// Reads a passphrase file: its first line, without the line ending.
    pub fn from_file(path: &Path) -> Result<Passphrase> {
        let text = zeroize::Zeroizing::new(std::fs::read(path).map_err(|e| {
            Error::not_found(format!(
                "cannot read passphrase file {}: {e}",
                path.display()
            ))
        })?);
        let line = text.split(|b| *b == b'\n').next().unwrap_or(&[]);
        let line = line.strip_suffix(b"\r").unwrap_or(line);
        if line.is_empty() {
            return Err(Error::malformed(format!(
                "passphrase file {} is empty",
                path.display()
            )));
        }
        Ok(Passphrase(line.to_vec()))
    }

    /// A random passphrase (32 bytes from the CSPRNG, hex) for development set-ups.
    pub fn random() -> Result<Passphrase> {
        let mut buf = [0u8; 32];
        openssl::rand::rand_bytes(&mut buf).map_err(ossl("random"))?;
        Ok(Passphrase(hex::encode(buf).into_bytes()))
    }

    pub fn expose(&self) -> &[u8] {
        &self.0
    }
}

impl fmt::Debug for Passphrase {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Passphrase(..)")
    }
}

/// Creates `path` with mode 0600 and writes `bytes`. Fails if the file exists, so a
/// CA key is never clobbered.
pub fn write_private_file(path: &Path, bytes: &[u8]) -> Result<()> {
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create_new(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        options.mode(0o600);
    }
    let mut file = options.open(path).map_err(|e| {
        let kind = if e.kind() == std::io::ErrorKind::AlreadyExists {
            ErrorKind::AlreadyExists
        } else {
            ErrorKind::Internal
        };
        Error::new(kind, format!("cannot create {}: {e}", path.display()))
    })?;
    file.write_all(bytes)
        .and_then(|_| file.sync_all())
        .map_err(|e| Error::internal(format!("cannot write {}: {e}", path.display())))
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

#[cfg(test)]
mod tests {
    // One key, one encoding: an RSA SPKI without NULL parameters is refused, so the
    // compromised-key check cannot be dodged by re-encoding the same key.
    #[test]
    fn rsa_spki_parameters_must_be_null() {
        let key = SoftwareKey::generate(KeyType::Rsa2048).unwrap();
        let good = key.public_key_der().to_vec();
        assert_eq!(KeyType::of_spki(&good).unwrap(), KeyType::Rsa2048);
        let mut spki = spki_from_der(&good).unwrap();
        spki.algorithm.parameters = None;
        let absent = spki.to_der().unwrap();
        let err = KeyType::of_spki(&absent).unwrap_err();
        assert!(err.detail.contains("must be NULL"), "{err}");
        spki.algorithm.parameters = Some(der::Any::encode_from(&0u8).unwrap());
        assert!(KeyType::of_spki(&spki.to_der().unwrap()).is_err());
    }

    use super::*;

    #[test]
    fn every_algorithm_signs_and_verifies() {
        for key_type in [KeyType::Rsa2048, KeyType::EcP256, KeyType::EcP384] {
            for alg in SignatureAlgorithm::ALL
                .into_iter()
                .filter(|a| a.fits(key_type))
            {
                let key = SoftwareKey::generate(key_type)
                    .unwrap()
                    .with_algorithm(alg)
                    .unwrap();
                let sig = key.sign(b"tbs").unwrap();
                assert!(
                    verify(key.public_key_der(), alg, b"tbs", &sig).unwrap(),
                    "{alg}"
                );
                assert!(
                    !verify(key.public_key_der(), alg, b"tbS", &sig).unwrap(),
                    "{alg}"
                );
                assert_eq!(
                    SignatureAlgorithm::from_identifier(&alg.identifier()),
                    Some(alg)
                );
            }
        }
    }

    #[test]
    fn identifier_verification_agrees_with_evp() {
        for key_type in [KeyType::Rsa2048, KeyType::EcP256, KeyType::EcP384] {
            for alg in SignatureAlgorithm::ALL
                .into_iter()
                .filter(|a| a.fits(key_type))
            {
                let key = SoftwareKey::generate(key_type)
                    .unwrap()
                    .with_algorithm(alg)
                    .unwrap();
                let spki = spki_from_der(key.public_key_der()).unwrap();
                let sig = key.sign(b"request info").unwrap();
                assert!(
                    verify_with_identifier(&spki, &alg.identifier(), b"request info", &sig)
                        .unwrap(),
                    "{alg}"
                );
                assert!(
                    !verify_with_identifier(&spki, &alg.identifier(), b"request inf0", &sig)
                        .unwrap(),
                    "{alg}"
                );
                let mut bad = sig.clone();
                let last = bad.len() - 1;
                bad[last] ^= 1;
                assert!(
                    !verify_with_identifier(&spki, &alg.identifier(), b"request info", &bad)
                        .unwrap(),
                    "{alg}"
                );
            }
        }
    }

    #[test]
    fn wrong_passphrase_and_damaged_file_are_told_apart() {
        let key = SoftwareKey::generate(KeyType::EcP256).unwrap();
        let pem = key.to_encrypted_pem(&Passphrase::new("right")).unwrap();
        let err = SoftwareKey::from_encrypted_pem(&pem, &Passphrase::new("wrong")).unwrap_err();
        assert_eq!(err.kind, ErrorKind::WrongPassphrase);
        let text = String::from_utf8(pem.clone()).unwrap();
        let damaged = text.replacen("MI", "MX", 1);
        let err = SoftwareKey::from_encrypted_pem(damaged.as_bytes(), &Passphrase::new("right"))
            .unwrap_err();
        assert_eq!(err.kind, ErrorKind::Malformed);
        let back = SoftwareKey::from_encrypted_pem(&pem, &Passphrase::new("right")).unwrap();
        assert_eq!(back.public_key_der(), key.public_key_der());
        assert!(!format!("{back:?}").contains("BEGIN"));
    }

    #[test]
    fn key_file_is_private_and_never_overwritten() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("ca.key.pem");
        let key = SoftwareKey::generate(KeyType::EcP256).unwrap();
        key.write_encrypted(&path, &Passphrase::new("pw")).unwrap();
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            let mode = std::fs::metadata(&path).unwrap().permissions().mode();
            assert_eq!(mode & 0o777, 0o600);
        }
        let err = key
            .write_encrypted(&path, &Passphrase::new("pw"))
            .unwrap_err();
        assert_eq!(err.kind, ErrorKind::AlreadyExists);
    }
}
