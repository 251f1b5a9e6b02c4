//! Keys in hardware (issue 30): a PKCS #11 backend of [`gpki_pki::Signer`], keys
//! named by RFC 7512 URIs ([`Pkcs11Uri`]).

#![forbid(unsafe_code)]

pub mod uri;

pub use uri::{LibraryVersion, ObjectType, Pin, PinSource, Pkcs11Uri};
