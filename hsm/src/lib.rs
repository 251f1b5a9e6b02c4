//! Keys in hardware (issue 30): a PKCS #11 backend of [`gpki_pki::Signer`].
//!
//! A key is named by an RFC 7512 URI ([`Pkcs11Uri`]), e.g.
//! `pkcs11:token=CA;object=sub-ca-1;type=private?module-path=/usr/lib/softhsm/libsofthsm2.so&pin-source=file:/etc/gpki/token.pin`.
//! [`Pkcs11Key::open`] finds it and checks it can never leave the token;
//! [`keygen`] makes one in the token; [`list`] shows what tokens hold.
//!
//! **Architecture invariant:** no private key byte crosses this crate: keys are made
//! in the token (CKA_SENSITIVE, not CKA_EXTRACTABLE) and a key that could be
//! extracted is refused. The PIN comes from a [`PinSource`] (file, environment
//! variable, prompt), never from a URI or an argument, and no error or `Debug`
//! output contains it.
//!
//! Hashing is done here, the token signs the hash (CKM_RSA_PKCS over a DigestInfo,
//! CKM_RSA_PKCS_PSS, CKM_ECDSA): SoftHSM 2.6 has no CKM_ECDSA_SHA256, and one path
//! for every token is simpler to trust.

#![forbid(unsafe_code)]

mod admin;
mod key;
mod module;
mod token;
pub mod uri;

pub use admin::{keygen, list, KeyObject, TokenListing};
pub use key::{Pkcs11Key, DEFAULT_BACKOFF};
pub use uri::{LibraryVersion, ObjectType, Pin, PinSource, Pkcs11Uri};
