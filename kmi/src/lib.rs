//! Key management for officials' key-management (encryption) keys (KMI).
//!
//! An official's km key pair is made on the CA side so that it can be kept for
//! recovery: [`envelope`] seals it in CMS EnvelopedData to the Key Recovery
//! Authority's certificate (RSA-OAEP with SHA-256, AES-256-CBC) for the archive,
//! and to the official's one-time transport key for delivery; [`keyfile`] writes
//! and reads it as PKCS#12 and as the Korean PKI clients' files
//! (`kmCert.der` + `kmPri.key`, SEED-CBC under PBKDF2); [`approval`] is the
//! statement a recovery officer signs, M of N of which release a key.
//!
//! **Architecture invariant:** like `pki`, this crate builds and checks; it never
//! touches the store or the network. Private keys leave it only encrypted, except
//! as the caller's own [`keyfile::PrivateKey`], which zeroes its bytes on drop.
#![forbid(unsafe_code)]

pub mod approval;
pub mod envelope;
pub mod keyfile;
