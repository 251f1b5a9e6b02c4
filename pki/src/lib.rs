//! What every gpki service shares: key backends behind [`Signer`], certificate
//! profiles, DER building and parsing, pre-issuance lints and the common error type.
//!
//! **Architecture invariant:** this crate never touches the store and does no network
//! I/O. It turns requests and profiles into to-be-signed structures and checks them;
//! callers decide what to record and when to sign.
#![forbid(unsafe_code)]

pub mod cert;
pub mod crl;
pub mod csr;
pub mod error;
pub mod lint;
pub mod name;
pub mod pem;
pub mod profile;
pub mod serial;
pub mod signed;
pub mod signer;
pub mod time;
pub mod tlv;

pub use error::{Error, ErrorKind, Reason, Result};
pub use signer::{KeyType, SignatureAlgorithm, Signer, SoftwareKey};
