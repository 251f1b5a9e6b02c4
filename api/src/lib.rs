//! gpki-api: the standard API agency systems use with the GPKI.
//!
//! - [`login`]: certificate login. The system hands out a challenge; the official
//!   signs it; the signature, the certificate's path to a configured trust
//!   anchor, its purpose and the status of every certificate on the path (OCSP,
//!   falling back to the CRL) are checked. Anything not established refuses.
//! - [`signed`]: CMS SignedData of documents, signed with any gpki key and
//!   optionally timestamped by an RFC 3161 TSA ([`timestamp`]); verified by
//!   [`verifier::Verifier::signed`] down to the signer's and the TSA's status.
//! - [`envelope`]: CMS EnvelopedData to officials' key-management certificates
//!   (RSA-OAEP, AES-256-CBC), and opening what they receive.
//! - [`server`] (feature `server`): the same login and verification over HTTP,
//!   JSON in and out, for systems not written in Rust (the `gpki-api` binary).
//!
//! Every refusal is a [`Refusal`]: a [`Reason`] a program can branch on and a
//! detail that names the problem.
#![deny(unsafe_code)]

pub mod envelope;
pub mod login;
pub mod signed;
pub mod status;
pub mod timestamp;
pub mod trust;
pub mod verifier;

#[cfg(feature = "server")]
pub mod server;

use serde::Serialize;

/// Why a login, a verification or a certificate was refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Reason {
    /// The input does not parse.
    Malformed,
    /// An algorithm or form gpki does not accept (SHA-1, unknown digests).
    Unsupported,
    /// The challenge was not handed out here, or for another audience.
    ChallengeInvalid,
    ChallengeExpired,
    /// The challenge was used already.
    ChallengeReused,
    /// No path to a trust anchor (unknown issuer, bad certificate signature,
    /// unknown signer certificate).
    Untrusted,
    /// A certificate on the path has expired.
    Expired,
    NotYetValid,
    /// The certificate may not be used for this (key usage, extended key usage).
    WrongPurpose,
    /// A signature (of the login, the document, the content digest) does not hold.
    BadSignature,
    /// A certificate on the path is revoked (or on hold).
    Revoked,
    /// A certificate's status could not be established (no OCSP answer and no
    /// current CRL): refused, never assumed good.
    StatusUnknown,
    /// A timestamp token is not over the signature, does not verify, or its TSA
    /// is not trusted for time stamping.
    TimestampInvalid,
}

impl Reason {
    pub fn name(self) -> &'static str {
        match self {
            Reason::Malformed => "malformed",
            Reason::Unsupported => "unsupported",
            Reason::ChallengeInvalid => "challenge-invalid",
            Reason::ChallengeExpired => "challenge-expired",
            Reason::ChallengeReused => "challenge-reused",
            Reason::Untrusted => "untrusted",
            Reason::Expired => "expired",
            Reason::NotYetValid => "not-yet-valid",
            Reason::WrongPurpose => "wrong-purpose",
            Reason::BadSignature => "bad-signature",
            Reason::Revoked => "revoked",
            Reason::StatusUnknown => "status-unknown",
            Reason::TimestampInvalid => "timestamp-invalid",
        }
    }
}

/// A refusal: the reason, and a detail for people.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Refusal {
    pub reason: Reason,
    pub detail: String,
}

impl Refusal {
    pub fn new(reason: Reason, detail: impl Into<String>) -> Refusal {
        Refusal {
            reason,
            detail: detail.into(),
        }
    }
}

impl std::fmt::Display for Refusal {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}: {}", self.reason.name(), self.detail)
    }
}

impl std::error::Error for Refusal {}

impl From<Refusal> for gpki_pki::Error {
    fn from(r: Refusal) -> gpki_pki::Error {
        use gpki_pki::ErrorKind;
        let kind = match r.reason {
            Reason::Malformed => ErrorKind::Malformed,
            Reason::Unsupported | Reason::WrongPurpose => ErrorKind::PolicyViolation,
            Reason::BadSignature | Reason::TimestampInvalid => ErrorKind::BadSignature,
            Reason::StatusUnknown => ErrorKind::Unavailable,
            Reason::ChallengeInvalid
            | Reason::ChallengeExpired
            | Reason::ChallengeReused
            | Reason::Untrusted
            | Reason::Expired
            | Reason::NotYetValid
            | Reason::Revoked => ErrorKind::Unauthorized,
        };
        gpki_pki::Error::new(kind, r.to_string())
    }
}
