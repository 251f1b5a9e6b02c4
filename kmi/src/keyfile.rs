//! Key files as officials' software reads them.
//!
//! - **PKCS#12** (`openssl pkcs12`, no `-legacy`): AES-256-CBC under
//!   PBKDF2-HMAC-SHA-256 for the key and certificates and an HMAC-SHA-256 MAC,
//!   each at the 600,000 rounds of every other gpki key file (OpenSSL's default
//!   of 2,048 would make the file, and its MAC, a cheap password oracle).
//! - **Korean PKI client files**: a directory holding `signCert.der` and
//!   `signPri.key` (the signing pair) and `kmCert.der` and `kmPri.key` (the
//!   key-management pair). A certificate file is the DER certificate; a key file is
//!   a DER PKCS#8 EncryptedPrivateKeyInfo under PBES2 (RFC 8018) with
//!   PBKDF2-HMAC-SHA-256 and SEED-CBC (RFC 4269, KISA's OID 1.2.410.200004.1.4), which
//!   `openssl pkcs8 -provider legacy -provider default` opens. Reading also takes
//!   PBKDF2 with HMAC-SHA-1/384/512 and AES-CBC, as other tools write them.
//!
//! SEED lives in OpenSSL 3's legacy provider, loaded on first use beside the default
//! one. A wrong password is [`ErrorKind::WrongPassphrase`] and names the file;
//! neither the key nor the password reaches a message.

use std::path::{Path, PathBuf};
use std::sync::OnceLock;

use const_oid::ObjectIdentifier;
use der::asn1::{Null, OctetString};
use der::{Any, Decode, Encode, Sequence};
use gpki_pki::signer::Passphrase;
use gpki_pki::{Error, ErrorKind, Result};
use openssl::hash::MessageDigest;
use openssl::pkey::{PKey, Private};
use openssl::symm::Cipher;
use openssl::x509::X509;
use spki::AlgorithmIdentifierOwned;
use zeroize::Zeroizing;

const PBES2: ObjectIdentifier = ObjectIdentifier::new_unwrap("1.2.840.113549.1.5.13");
const PBKDF2: ObjectIdentifier = ObjectIdentifier::new_unwrap("1.2.840.113549.1.5.12");
const HMAC_SHA1: ObjectIdentifier = ObjectIdentifier::new_unwrap("1.2.840.113549.2.7");
const HMAC_SHA256: ObjectIdentifier = ObjectIdentifier::new_unwrap("1.2.840.113549.2.9");
const HMAC_SHA384: ObjectIdentifier = ObjectIdentifier::new_unwrap("1.2.840.113549.2.10");
const HMAC_SHA512: ObjectIdentifier = ObjectIdentifier::new_unwrap("1.2.840.113549.2.11");
/// KISA's SEED-CBC (RFC 4269 §3).
pub const SEED_CBC: ObjectIdentifier = ObjectIdentifier::new_unwrap("1.2.410.200004.1.4");
/// KISA's older pbeWithSHA1AndSEED-CBC: named in the refusal, not read.
const PBE_SHA1_SEED: ObjectIdentifier = ObjectIdentifier::new_unwrap("1.2.410.200004.1.15");
const AES128_CBC: ObjectIdentifier = ObjectIdentifier::new_unwrap("2.16.840.1.101.3.4.1.2");
const AES256_CBC: ObjectIdentifier = ObjectIdentifier::new_unwrap("2.16.840.1.101.3.4.1.42");

/// PBKDF2 rounds of the key files gpki writes: those of its own key files.
pub const ITERATIONS: u32 = gpki_pki::signer::PBKDF2_ITERATIONS;
/// The most rounds a key file may ask for before gpki refuses to spend them.
pub const MAX_ITERATIONS: u32 = 10_000_000;

#[derive(Clone, Debug, Sequence)]
struct EncryptedPrivateKeyInfo {
    algorithm: AlgorithmIdentifierOwned,
    data: OctetString,
}

#[derive(Clone, Debug, Sequence)]
struct Pbes2Params {
    kdf: AlgorithmIdentifierOwned,
    scheme: AlgorithmIdentifierOwned,
}

#[derive(Clone, Debug, Sequence)]
struct Pbkdf2Params {
    salt: OctetString,
    iterations: u32,
    #[asn1(optional = "true")]
    key_length: Option<u32>,
    #[asn1(optional = "true")]
    prf: Option<AlgorithmIdentifierOwned>,
}

/// Which pair a Korean key directory's files hold.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Pair {
    /// `signCert.der` + `signPri.key`.
    Sign,
    /// `kmCert.der` + `kmPri.key`.
    Km,
}

impl Pair {
    pub fn files(self, dir: &Path) -> (PathBuf, PathBuf) {
        match self {
            Pair::Sign => (dir.join("signCert.der"), dir.join("signPri.key")),
            Pair::Km => (dir.join("kmCert.der"), dir.join("kmPri.key")),
        }
    }
}

fn ossl(what: &'static str) -> impl Fn(openssl::error::ErrorStack) -> Error {
    move |e| Error::internal(format!("{what}: {e}"))
}

/// SEED-CBC from OpenSSL's legacy provider, loaded once beside the default one.
fn seed_cbc() -> Result<Cipher> {
    static LEGACY: OnceLock<std::result::Result<openssl::provider::Provider, String>> =
        OnceLock::new();
    let loaded = LEGACY.get_or_init(|| {
        // retain_fallbacks: the default provider stays loaded for everything else.
        openssl::provider::Provider::try_load(None, "legacy", true).map_err(|e| e.to_string())
    });
    if let Err(e) = loaded {
        return Err(Error::new(
            ErrorKind::Unavailable,
            format!("SEED-CBC needs OpenSSL's legacy provider, which did not load ({e})"),
        ));
    }
    Ok(Cipher::seed_cbc())
}

fn prf_digest(prf: Option<&AlgorithmIdentifierOwned>) -> Result<MessageDigest> {
    Ok(match prf.map(|p| p.oid).unwrap_or(HMAC_SHA1) {
        HMAC_SHA1 => MessageDigest::sha1(),
        HMAC_SHA256 => MessageDigest::sha256(),
        HMAC_SHA384 => MessageDigest::sha384(),
        HMAC_SHA512 => MessageDigest::sha512(),
        other => {
            return Err(Error::policy(format!(
                "PBKDF2 PRF {other} is not supported"
            )))
        }
    })
}

/// The key as a Korean client's `*Pri.key`: DER EncryptedPrivateKeyInfo, PBES2 with
/// PBKDF2-HMAC-SHA-256 ([`ITERATIONS`] rounds, 16-byte salt) and SEED-CBC.
pub fn to_seed_pkcs8(key: &PKey<Private>, password: &Passphrase) -> Result<Vec<u8>> {
    if password.expose().is_empty() {
        return Err(Error::policy(
            "refusing to write a private key with an empty password",
        ));
    }
    let cipher = seed_cbc()?;
    let plain = Zeroizing::new(
        key.private_key_to_pkcs8()
            .map_err(ossl("PKCS#8 encoding"))?,
    );
    let mut salt = [0u8; 16];
    let mut iv = [0u8; 16];
    openssl::rand::rand_bytes(&mut salt).map_err(ossl("random"))?;
    openssl::rand::rand_bytes(&mut iv).map_err(ossl("random"))?;
    let mut kek = Zeroizing::new([0u8; 16]);
    openssl::pkcs5::pbkdf2_hmac(
        password.expose(),
        &salt,
        ITERATIONS as usize,
        MessageDigest::sha256(),
        &mut kek[..],
    )
    .map_err(ossl("PBKDF2"))?;
    let data =
        openssl::symm::encrypt(cipher, &kek[..], Some(&iv), &plain).map_err(ossl("SEED-CBC"))?;
    let kdf = Pbkdf2Params {
        salt: OctetString::new(salt.to_vec())?,
        iterations: ITERATIONS,
        key_length: None,
        prf: Some(AlgorithmIdentifierOwned {
            oid: HMAC_SHA256,
            parameters: Some(Any::encode_from(&Null)?),
        }),
    };
    let params = Pbes2Params {
        kdf: AlgorithmIdentifierOwned {
            oid: PBKDF2,
            parameters: Some(Any::encode_from(&kdf)?),
        },
        scheme: AlgorithmIdentifierOwned {
            oid: SEED_CBC,
            parameters: Some(Any::encode_from(&OctetString::new(iv.to_vec())?)?),
        },
    };
    Ok(EncryptedPrivateKeyInfo {
        algorithm: AlgorithmIdentifierOwned {
            oid: PBES2,
            parameters: Some(Any::encode_from(&params)?),
        },
        data: OctetString::new(data)?,
    }
    .to_der()?)
}

/// Opens a `*Pri.key` (DER or PEM EncryptedPrivateKeyInfo; PBES2 with PBKDF2 and
/// SEED-CBC or AES-CBC). `what` names the file in errors.
pub fn from_encrypted_pkcs8(
    bytes: &[u8],
    password: &Passphrase,
    what: &str,
) -> Result<PKey<Private>> {
    let der = if bytes.starts_with(b"-----BEGIN") {
        gpki_pki::pem::decode(bytes, "ENCRYPTED PRIVATE KEY")?
    } else {
        bytes.to_vec()
    };
    let bad = |e: &dyn std::fmt::Display| {
        Error::malformed(format!(
            "{what} is not a PKCS#8 EncryptedPrivateKeyInfo ({e})"
        ))
    };
    let info = EncryptedPrivateKeyInfo::from_der(&der).map_err(|e| bad(&e))?;
    if info.algorithm.oid == PBE_SHA1_SEED {
        return Err(Error::policy(format!(
            "{what} uses KISA's older pbeWithSHA1AndSEED-CBC (1.2.410.200004.1.15), which gpki does not read; \
             re-export it with PBES2"
        )));
    }
    if info.algorithm.oid != PBES2 {
        return Err(Error::policy(format!(
            "{what}: encryption {} is not supported (PBES2)",
            info.algorithm.oid
        )));
    }
    // An algorithm's parameters, which each of these must have.
    let params_of = |alg: &AlgorithmIdentifierOwned, name: &str| -> Result<Any> {
        alg.parameters
            .clone()
            .ok_or_else(|| bad(&format!("{name} without parameters")))
    };
    let params: Pbes2Params = params_of(&info.algorithm, "PBES2")?
        .decode_as()
        .map_err(|e| bad(&e))?;
    if params.kdf.oid != PBKDF2 {
        return Err(Error::policy(format!(
            "{what}: key derivation {} is not supported (PBKDF2)",
            params.kdf.oid
        )));
    }
    let kdf: Pbkdf2Params = params_of(&params.kdf, "PBKDF2")?
        .decode_as()
        .map_err(|e| bad(&e))?;
    if kdf.iterations == 0 || kdf.iterations > MAX_ITERATIONS {
        return Err(Error::policy(format!(
            "{what} asks for {} PBKDF2 rounds; 1 to {MAX_ITERATIONS} are accepted",
            kdf.iterations
        )));
    }
    let cipher = match params.scheme.oid {
        SEED_CBC => seed_cbc()?,
        AES128_CBC => Cipher::aes_128_cbc(),
        AES256_CBC => Cipher::aes_256_cbc(),
        other => {
            return Err(Error::policy(format!(
                "{what}: cipher {other} is not supported (SEED-CBC, AES-CBC)"
            )))
        }
    };
    if kdf
        .key_length
        .is_some_and(|l| l as usize != cipher.key_len())
    {
        return Err(bad(&"PBKDF2 key length does not fit the cipher"));
    }
    let iv: OctetString = params_of(&params.scheme, "the cipher")?
        .decode_as()
        .map_err(|e| bad(&e))?;
    if iv.as_bytes().len() != 16 {
        return Err(bad(&"IV is not 16 bytes"));
    }
    let mut kek = Zeroizing::new(vec![0u8; cipher.key_len()]);
    openssl::pkcs5::pbkdf2_hmac(
        password.expose(),
        kdf.salt.as_bytes(),
        kdf.iterations as usize,
        prf_digest(kdf.prf.as_ref())?,
        &mut kek[..],
    )
    .map_err(ossl("PBKDF2"))?;
    let wrong = || {
        Error::new(
            ErrorKind::WrongPassphrase,
            format!("the password does not open {what}"),
        )
    };
    let plain = Zeroizing::new(
        openssl::symm::decrypt(cipher, &kek, Some(iv.as_bytes()), info.data.as_bytes())
            .map_err(|_| wrong())?,
    );
    // A wrong password passes the padding check once in 256 tries: then the
    // plaintext is not a PrivateKeyInfo.
    PKey::private_key_from_pkcs8(&plain).map_err(|_| wrong())
}

/// PKCS#12 of the key, its certificate and the chain (issuing CA first):
/// AES-256-CBC under PBKDF2-HMAC-SHA-256 and an HMAC-SHA-256 MAC, both at
/// [`gpki_pki::signer::PBKDF2_ITERATIONS`] rounds.
pub fn to_pkcs12(
    key: &PKey<Private>,
    cert_der: &[u8],
    chain: &[Vec<u8>],
    name: &str,
    password: &Passphrase,
) -> Result<Vec<u8>> {
    let pass = std::str::from_utf8(password.expose())
        .map_err(|_| Error::malformed("a PKCS#12 password must be UTF-8"))?;
    if pass.is_empty() {
        return Err(Error::policy(
            "refusing to write a PKCS#12 file with an empty password",
        ));
    }
    let cert = X509::from_der(cert_der).map_err(|_| Error::malformed("certificate is not DER"))?;
    if !cert
        .public_key()
        .map_err(ossl("certificate key"))?
        .public_eq(key)
    {
        return Err(Error::policy("the key does not belong to the certificate"));
    }
    let mut stack = openssl::stack::Stack::new().map_err(ossl("stack"))?;
    for c in chain {
        stack
            .push(X509::from_der(c).map_err(|_| Error::malformed("chain certificate is not DER"))?)
            .map_err(ossl("stack"))?;
    }
    let rounds = gpki_pki::signer::PBKDF2_ITERATIONS;
    openssl::pkcs12::Pkcs12::builder()
        .name(name)
        .pkey(key)
        .cert(&cert)
        .ca(stack)
        .key_algorithm(openssl::nid::Nid::AES_256_CBC)
        .cert_algorithm(openssl::nid::Nid::AES_256_CBC)
        .key_iter(rounds)
        .mac_iter(rounds)
        .mac_md(openssl::hash::MessageDigest::sha256())
        .build2(pass)
        .and_then(|p| p.to_der())
        .map_err(ossl("PKCS#12"))
}

/// A key with its certificate, as read from a file.
pub struct KeyPair {
    pub key: PKey<Private>,
    pub cert_der: Vec<u8>,
    pub chain: Vec<Vec<u8>>,
}

impl std::fmt::Debug for KeyPair {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("KeyPair").finish_non_exhaustive()
    }
}

/// Reads a PKCS#12 file; a wrong password is named.
pub fn from_pkcs12(der: &[u8], password: &Passphrase, what: &str) -> Result<KeyPair> {
    let p12 = openssl::pkcs12::Pkcs12::from_der(der)
        .map_err(|_| Error::malformed(format!("{what} is not a PKCS#12 file")))?;
    let pass = std::str::from_utf8(password.expose())
        .map_err(|_| Error::malformed("a PKCS#12 password must be UTF-8"))?;
    let parsed = p12.parse2(pass).map_err(|_| {
        Error::new(
            ErrorKind::WrongPassphrase,
            format!("the password does not open {what}"),
        )
    })?;
    let (Some(key), Some(cert)) = (parsed.pkey, parsed.cert) else {
        return Err(Error::malformed(format!(
            "{what} holds no key with its certificate"
        )));
    };
    let chain = match parsed.ca {
        Some(s) => s
            .iter()
            .map(|c| c.to_der().map_err(ossl("certificate")))
            .collect::<Result<_>>()?,
        None => Vec::new(),
    };
    Ok(KeyPair {
        key,
        cert_der: cert.to_der().map_err(ossl("certificate"))?,
        chain,
    })
}

/// Writes a Korean key directory's pair (`kmCert.der` + `kmPri.key`, or the sign
/// pair): the certificate, and the key under SEED-CBC, mode 0600, never over an
/// existing file. The key must belong to the certificate.
pub fn write_korean(
    dir: &Path,
    pair: Pair,
    key: &PKey<Private>,
    cert_der: &[u8],
    password: &Passphrase,
) -> Result<(PathBuf, PathBuf)> {
    let cert = X509::from_der(cert_der).map_err(|_| Error::malformed("certificate is not DER"))?;
    if !cert
        .public_key()
        .map_err(ossl("certificate key"))?
        .public_eq(key)
    {
        return Err(Error::policy("the key does not belong to the certificate"));
    }
    std::fs::create_dir_all(dir)
        .map_err(|e| Error::internal(format!("cannot create {}: {e}", dir.display())))?;
    let (cert_path, key_path) = pair.files(dir);
    for p in [&cert_path, &key_path] {
        if p.exists() {
            return Err(Error::new(
                ErrorKind::AlreadyExists,
                format!("{} exists; refusing to overwrite it", p.display()),
            ));
        }
    }
    let encrypted = to_seed_pkcs8(key, password)?;
    gpki_pki::signer::write_private_file(&key_path, &encrypted)?;
    std::fs::write(&cert_path, cert_der)
        .map_err(|e| Error::internal(format!("cannot write {}: {e}", cert_path.display())))?;
    Ok((cert_path, key_path))
}

/// Reads a Korean key directory's pair and checks the key is the certificate's.
pub fn read_korean(dir: &Path, pair: Pair, password: &Passphrase) -> Result<KeyPair> {
    let (cert_path, key_path) = pair.files(dir);
    let read = |p: &Path| {
        std::fs::read(p).map_err(|e| Error::not_found(format!("cannot read {}: {e}", p.display())))
    };
    let cert_der = read(&cert_path)?;
    let cert = X509::from_der(&cert_der).map_err(|_| {
        Error::malformed(format!("{} is not a DER certificate", cert_path.display()))
    })?;
    let key = from_encrypted_pkcs8(&read(&key_path)?, password, &key_path.display().to_string())?;
    if !cert
        .public_key()
        .map_err(ossl("certificate key"))?
        .public_eq(&key)
    {
        return Err(Error::policy(format!(
            "{} does not hold the key of {}",
            key_path.display(),
            cert_path.display()
        )));
    }
    Ok(KeyPair {
        key,
        cert_der,
        chain: Vec::new(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn seed_key_files_round_trip_and_name_a_wrong_password() {
        let key = PKey::from_rsa(openssl::rsa::Rsa::generate(2048).unwrap()).unwrap();
        let pass = Passphrase::new(b"correct horse".to_vec());
        let der = to_seed_pkcs8(&key, &pass).unwrap();
        let back = from_encrypted_pkcs8(&der, &pass, "kmPri.key").unwrap();
        assert!(back.public_eq(&key));
        let e = from_encrypted_pkcs8(&der, &Passphrase::new(b"wrong".to_vec()), "kmPri.key")
            .unwrap_err();
        assert_eq!(e.kind, ErrorKind::WrongPassphrase);
        assert_eq!(e.detail, "the password does not open kmPri.key");
        let e = from_encrypted_pkcs8(&der[..20], &pass, "kmPri.key").unwrap_err();
        assert_eq!(e.kind, ErrorKind::Malformed, "{e}");
    }
}
