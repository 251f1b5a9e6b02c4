//! One error type for all of gpki: a [`ErrorKind`] a caller can match, and a human
//! detail. The edges (CLI exit codes, HTTP status) map kinds in one place each.

use std::fmt;

/// What went wrong, coarse enough for an edge to map to an exit or status code.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ErrorKind {
    /// Input that does not parse: bad PEM, DER, TOML, CSV, DN or argument value.
    Malformed,
    /// A signature that does not verify (CSR proof of possession, a certificate).
    BadSignature,
    /// An unknown CA, profile, serial or file.
    NotFound,
    /// Something with that name or serial exists already.
    AlreadyExists,
    /// The request is well formed but the object's state forbids it (already revoked).
    Conflict,
    /// The request asks for what the profile, key policy or name constraints forbid.
    PolicyViolation,
    /// A pre-issuance lint refused the certificate.
    LintFailed,
    /// The caller may not do this.
    Unauthorized,
    /// A private key could not be decrypted with the passphrase given.
    WrongPassphrase,
    /// The store is locked, unreachable or otherwise unavailable.
    Unavailable,
    /// A bug or an environment failure that the caller cannot fix.
    Internal,
}

impl fmt::Display for ErrorKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let s = match self {
            ErrorKind::Malformed => "malformed input",
            ErrorKind::BadSignature => "bad signature",
            ErrorKind::NotFound => "not found",
            ErrorKind::AlreadyExists => "already exists",
            ErrorKind::Conflict => "conflict",
            ErrorKind::PolicyViolation => "policy violation",
            ErrorKind::LintFailed => "lint failed",
            ErrorKind::Unauthorized => "unauthorized",
            ErrorKind::WrongPassphrase => "wrong passphrase",
            ErrorKind::Unavailable => "unavailable",
            ErrorKind::Internal => "internal error",
        };
        f.write_str(s)
    }
}

/// What a caller may need to act on beyond the kind, typed so it is matched and not
/// re-read from the detail's text. It travels over the internal APIs with the
/// error (`service::api`), so a service answers it as its store did.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "snake_case", tag = "reason")]
#[non_exhaustive]
pub enum Reason {
    /// The pre-issuance lints refused a certificate: every finding, by rule.
    LintFailed { findings: Vec<crate::lint::Finding> },
    /// The certificate is revoked already: revocation is never undone.
    AlreadyRevoked { serial: String },
    /// The certificate is on hold already (a second hold).
    AlreadyOnHold { serial: String },
    /// The certificate's row was recorded and never signed: there is nothing to
    /// revoke.
    Abandoned { serial: String },
    /// The serial or the request key is recorded already for this CA.
    AlreadyRecorded { serial: String },
    /// The mobile ID is not valid (unknown, pending or revoked already).
    CredentialNotValid { id: i64 },
    /// The public key (by the SHA-256 of its SubjectPublicKeyInfo) was revoked
    /// as compromised and is never certified again.
    KeyCompromised { spki_sha256: String },
    /// A request id already names another request (the certificate it made).
    RequestKeyReused { key: String, serial: String },
}

/// An error with a kind and a detail that names the problem. The detail never
/// contains key material.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{kind}: {detail}")]
pub struct Error {
    pub kind: ErrorKind,
    pub detail: String,
    /// The typed reason, when the failure has one a caller acts on.
    reason: Option<Box<Reason>>,
}

pub type Result<T, E = Error> = std::result::Result<T, E>;

impl Error {
    pub fn new(kind: ErrorKind, detail: impl Into<String>) -> Self {
        Error {
            kind,
            detail: detail.into(),
            reason: None,
        }
    }

    /// This error, carrying `reason`.
    pub fn because(mut self, reason: Reason) -> Self {
        self.reason = Some(Box::new(reason));
        self
    }

    /// The typed reason, when there is one.
    pub fn reason(&self) -> Option<&Reason> {
        self.reason.as_deref()
    }

    pub fn malformed(detail: impl Into<String>) -> Self {
        Self::new(ErrorKind::Malformed, detail)
    }
    pub fn not_found(detail: impl Into<String>) -> Self {
        Self::new(ErrorKind::NotFound, detail)
    }
    pub fn unauthorized(detail: impl Into<String>) -> Self {
        Self::new(ErrorKind::Unauthorized, detail)
    }
    pub fn policy(detail: impl Into<String>) -> Self {
        Self::new(ErrorKind::PolicyViolation, detail)
    }
    pub fn conflict(detail: impl Into<String>) -> Self {
        Self::new(ErrorKind::Conflict, detail)
    }
    pub fn internal(detail: impl Into<String>) -> Self {
        Self::new(ErrorKind::Internal, detail)
    }
    /// Prefixes the detail with where the error happened (a file, a CSV row).
    pub fn context(mut self, what: impl fmt::Display) -> Self {
        self.detail = format!("{what}: {}", self.detail);
        self
    }
}

impl From<der::Error> for Error {
    fn from(e: der::Error) -> Self {
        Error::malformed(format!("DER: {e}"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_reason_is_matched_not_read_from_the_text() {
        let e =
            Error::conflict("certificate 0a is already revoked").because(Reason::AlreadyRevoked {
                serial: "0a".into(),
            });
        assert_eq!(
            e.reason(),
            Some(&Reason::AlreadyRevoked {
                serial: "0a".into()
            })
        );
        // Context keeps it; the kind and the text stay what they were.
        let e = e.context("row 3");
        assert_eq!(e.kind, ErrorKind::Conflict);
        assert_eq!(e.detail, "row 3: certificate 0a is already revoked");
        assert!(matches!(e.reason(), Some(Reason::AlreadyRevoked { serial }) if serial == "0a"));
        assert_eq!(Error::conflict("other").reason(), None);
        // On the wire: tagged by its snake_case name.
        let wire = serde_json::to_value(Reason::CredentialNotValid { id: 7 }).unwrap();
        assert_eq!(
            wire,
            serde_json::json!({ "reason": "credential_not_valid", "id": 7 })
        );
        assert_eq!(
            serde_json::from_value::<Reason>(wire).unwrap(),
            Reason::CredentialNotValid { id: 7 }
        );
    }
}
