//! The software key backend: a key in process memory, stored on disk as
//! encrypted PKCS#8.

use std::fmt;
use std::path::Path;

use der::{Decode, Encode, Sequence};
use openssl::ec::{EcGroup, EcKey};
use openssl::nid::Nid;
use openssl::pkey::{PKey, Private};
use openssl::rsa::{Padding, Rsa};
use openssl::sign::RsaPssSaltlen;
use spki::AlgorithmIdentifierOwned;

use crate::error::{Error, ErrorKind, Result};

use super::{
    ossl, write_private_file, KeyEncryption, KeyType, Passphrase, SignatureAlgorithm, Signer,
    PBKDF2_ITERATIONS,
};

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
        let pkey =
            PKey::private_key_from_pem_passphrase(pem, passphrase.expose()).map_err(|_| {
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
