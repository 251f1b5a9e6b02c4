//! Key files: the passphrase that protects one, the key-encryption key derived
//! from it, and writing a private file.

use std::fmt;
use std::io::Write;
use std::path::Path;

use openssl::hash::MessageDigest;

use crate::error::{Error, ErrorKind, Result};

use super::ossl;

/// PBKDF2-HMAC-SHA256 iterations of encrypted key files: OWASP's 2023 figure for
/// PBKDF2-SHA256 (about a quarter of a second per key file on one core here).
pub const PBKDF2_ITERATIONS: u32 = 600_000;

/// A key-encryption key: PBKDF2-HMAC-SHA256 of a passphrase over a random salt,
/// [`PBKDF2_ITERATIONS`] rounds. Zeroed when dropped; never formatted.
pub struct KeyEncryption {
    pub(super) salt: [u8; 16],
    pub(super) key: zeroize::Zeroizing<[u8; 32]>,
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
