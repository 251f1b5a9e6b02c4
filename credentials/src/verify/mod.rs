//! Verification of a presentation, as a verifier does it: the signer's chain to a
//! configured trust anchor, the signer's status by OCSP, the issuer's signature,
//! every disclosed digest, validity, the holder binding to the verifier and its
//! nonce, and the credential's entry in its status list.
//!
//! The checks run in that order and stop at the first that fails, which is
//! reported by name ([`Reason`]); a status that cannot be established (no OCSP
//! answer, no status list) is a refusal, never a pass. This module does no I/O:
//! the caller supplies OCSP answers and status list tokens through [`Online`].//!
//! Here the public types, the order of a verification's parts and the checks
//! both formats share; `x509` checks the signer's chain, purpose and status,
//! `mdoc` and `sd_jwt` the two formats, `status_list` the credential's entry in
//! its status list.

mod mdoc;
mod sd_jwt;
mod status_list;
mod x509;

use openssl::x509::X509;
use serde_json::{json, Value as Json};

use mdoc::verify_mdoc;
use sd_jwt::verify_sd_jwt;

/// Why a presentation is refused. Each has a stable name ([`Reason::name`]) that
/// the CLI prints and scripts match on.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Reason {
    /// Not a presentation gpki reads: truncated or malformed CBOR or JWT.
    Malformed,
    /// Not the mobile public-official ID (docType, vct or typ).
    WrongType,
    /// The signer's chain does not reach a configured trust anchor.
    UntrustedChain,
    /// The signer certificate lacks the purpose or key usage for what it signed.
    WrongPurpose,
    /// The SD-JWT's `iss` is not an identifier of the signer certificate.
    IssuerMismatch,
    /// The signer certificate is revoked (OCSP).
    SignerRevoked,
    /// The signer certificate's status could not be established.
    SignerStatusUnknown,
    /// The issuer's signature does not verify.
    BadSignature,
    /// A disclosed attribute's digest is not among the signed digests.
    DigestMismatch,
    NotYetValid,
    Expired,
    /// The presentation is not bound to the credential's holder key: no key
    /// binding, a signature that does not verify, an `sd_hash` over other text, or
    /// one made too long ago.
    HolderBinding,
    /// mdoc: the device signature does not verify over this verifier's and nonce's
    /// session transcript (a wrong nonce or verifier, or not the device key).
    DeviceAuth,
    /// SD-JWT: the key binding JWT names another nonce.
    WrongNonce,
    /// SD-JWT: the key binding JWT names another verifier (`aud`).
    WrongVerifier,
    /// The credential's status list entry says revoked (or suspended).
    CredentialRevoked,
    /// The status list could not be fetched, or the token is stale or expired.
    StatusUnavailable,
    /// The status list token does not verify, or is not the credential CA's.
    StatusUntrusted,
}

impl Reason {
    pub fn name(self) -> &'static str {
        match self {
            Reason::Malformed => "malformed",
            Reason::WrongType => "wrong-type",
            Reason::UntrustedChain => "untrusted-chain",
            Reason::WrongPurpose => "wrong-purpose",
            Reason::IssuerMismatch => "issuer-mismatch",
            Reason::SignerRevoked => "signer-revoked",
            Reason::SignerStatusUnknown => "signer-status-unknown",
            Reason::BadSignature => "bad-signature",
            Reason::DigestMismatch => "digest-mismatch",
            Reason::NotYetValid => "not-yet-valid",
            Reason::Expired => "expired",
            Reason::HolderBinding => "holder-binding",
            Reason::DeviceAuth => "device-auth",
            Reason::WrongNonce => "wrong-nonce",
            Reason::WrongVerifier => "wrong-verifier",
            Reason::CredentialRevoked => "credential-revoked",
            Reason::StatusUnavailable => "status-unavailable",
            Reason::StatusUntrusted => "status-untrusted",
        }
    }
}

/// A check that passed: its name and what it established.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Check {
    pub name: &'static str,
    pub detail: String,
}

/// A presentation that passed every check.
#[derive(Debug, Clone)]
pub struct Verified {
    /// "mdoc" or "sd-jwt".
    pub format: &'static str,
    pub doc_type: String,
    /// The disclosed attributes, in the order presented.
    pub disclosed: Vec<(String, Json)>,
    pub checks: Vec<Check>,
}

/// A refused presentation: the reason, what failed, and the checks that had passed.
#[derive(Debug, Clone)]
pub struct Refused {
    pub reason: Reason,
    pub detail: String,
    pub checks: Vec<Check>,
}

impl std::fmt::Display for Refused {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}: {}", self.reason.name(), self.detail)
    }
}

/// A certificate's status as an OCSP responder vouched for it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CertStatus {
    Good,
    Revoked { reason: String },
}

/// What the verifier asks the network for. Errors are reasons the status could not
/// be established, and refuse the presentation.
pub trait Online {
    /// The status of `cert` (issued by `issuer`) from a verified OCSP response.
    fn certificate_status(
        &self,
        cert: &X509,
        issuer: &X509,
    ) -> std::result::Result<CertStatus, String>;
    /// The Status List Token at `uri`: a CWT if `cwt`, else a JWT.
    fn status_list(&self, uri: &str, cwt: bool) -> std::result::Result<Vec<u8>, String>;
}

/// What a verifier accepts.
pub struct Policy<'a> {
    /// The trust anchors: the GPKI root, or the credential CA itself (the IACA role).
    pub anchors: &'a [X509],
    /// The verifier's identifier the presentation must be bound to.
    pub verifier: &'a str,
    /// The nonce the verifier issued for this presentation.
    pub nonce: &'a str,
    /// The time of verification, Unix seconds.
    pub now: i64,
    /// Tolerated clock difference, seconds.
    pub skew: i64,
    /// How old a key binding JWT (its `iat`) may be, seconds.
    pub max_presentation_age: i64,
    /// The status list token was given (an offline verifier): good until its `exp`,
    /// not only its `ttl`.
    pub offline_status: bool,
}

/// A failed check: its reason and what failed.
struct Fail(Reason, String);
/// What a check returns: its result, or the failure that ends the verification.
type R<T> = std::result::Result<T, Fail>;

/// Fails with `reason`.
fn fail<T>(reason: Reason, detail: impl Into<String>) -> R<T> {
    Err(Fail(reason, detail.into()))
}

/// An error of the model, keys or encodings as a malformed presentation.
fn malformed(e: gpki_pki::Error) -> Fail {
    Fail(Reason::Malformed, e.detail)
}

/// A verification under way: what it is checked against, and the checks passed.
struct Run<'a> {
    policy: &'a Policy<'a>,
    online: &'a dyn Online,
    checks: Vec<Check>,
}

impl Run<'_> {
    /// Records a check that passed.
    fn pass(&mut self, name: &'static str, detail: impl Into<String>) {
        self.checks.push(Check {
            name,
            detail: detail.into(),
        });
    }
}

/// Verifies a presentation (an mdoc DeviceResponse, or an SD-JWT with its key
/// binding JWT) for `policy`.
pub fn verify(
    presentation: &[u8],
    policy: &Policy,
    online: &dyn Online,
) -> std::result::Result<Verified, Refused> {
    let mut run = Run {
        policy,
        online,
        checks: Vec::new(),
    };
    let sd_jwt = presentation.starts_with(b"ey");
    let result = if sd_jwt {
        verify_sd_jwt(&mut run, presentation)
    } else {
        verify_mdoc(&mut run, presentation)
    };
    match result {
        Ok((doc_type, disclosed)) => Ok(Verified {
            format: if sd_jwt { "sd-jwt" } else { "mdoc" },
            doc_type,
            disclosed,
            checks: run.checks,
        }),
        Err(Fail(reason, detail)) => Err(Refused {
            reason,
            detail,
            checks: run.checks,
        }),
    }
}

/// Checks the credential's validity period at `now`: not before `from` (the skew
/// tolerated), and not at or after `until`.
fn check_validity(run: &mut Run, from: i64, until: i64) -> R<()> {
    let p = run.policy;
    let t = gpki_pki::time::rfc3339;
    if p.now + p.skew < from {
        return fail(
            Reason::NotYetValid,
            format!("the credential is valid from {}", t(from)),
        );
    }
    if p.now >= until {
        return fail(
            Reason::Expired,
            format!("the credential expired at {}", t(until)),
        );
    }
    run.pass("validity", format!("{} to {}", t(from), t(until)));
    Ok(())
}

/// The JSON report of a verified presentation.
pub fn report(v: &Verified) -> Json {
    json!({
        "verified": true,
        "format": v.format,
        "doc_type": v.doc_type,
        "disclosed": v.disclosed.iter().map(|(n, x)| (n.clone(), x.clone())).collect::<serde_json::Map<_, _>>(),
        "checks": v.checks.iter().map(|c| json!({"check": c.name, "detail": c.detail})).collect::<Vec<_>>(),
    })
}
