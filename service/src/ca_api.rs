//! The CA service's API, as both ends see it: the JSON bodies of
//! docs/api/ca.md and the statements callers sign. The rules applied to them
//! live beside the decisions they feed: an RA's scope is `RaRecord`'s
//! (`gpki_store`), a CSR's names are `gpki_pki::csr`'s.

use gpki_pki::{Error, Result};
use serde::{Deserialize, Serialize};

/// What issue asks: for RA `ra`, its request `request_id` (the idempotency key:
/// the same RA and id never make a second certificate).
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct IssueBody {
    pub ra: String,
    pub request_id: String,
    pub profile: String,
    pub subject: String,
    /// PEM PKCS#10; its signature proves possession of the key.
    pub csr: String,
    #[serde(default)]
    pub sans: Vec<String>,
    #[serde(default)]
    pub validity_days: Option<u32>,
    /// A dual enrolment (official-sign): the km certificate too, its key made by
    /// the CA, archived to the KRA, and sealed to this transport key.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub km: Option<KmAsk>,
}

/// The km half of a dual enrolment or renewal.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct KmAsk {
    /// PEM PKCS#10 of the official's one-time RSA transport key: its signature
    /// proves the official holds the key the km key is sealed to.
    pub transport: String,
}

/// Renewal of certificate `serial` of the RA's CA, with a new key when `csr` is
/// given.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RenewBody {
    pub ra: String,
    pub request_id: String,
    pub serial: String,
    #[serde(default)]
    pub csr: Option<String>,
    /// Required when the certificate has a km pair: the pair is renewed together,
    /// with a new km key.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub km: Option<KmAsk>,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RevokeBody {
    pub ra: String,
    pub serial: String,
    /// RFC 5280 reason name: keyCompromise, superseded, cessationOfOperation …
    pub reason: String,
    #[serde(default)]
    pub invalidity_date: Option<i64>,
}

/// A certificate as the CA service returns it.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct CertificateReply {
    pub ca: String,
    pub serial: String,
    pub profile: String,
    pub subject: String,
    pub status: String,
    pub not_before: i64,
    pub not_after: i64,
    /// PEM; absent for a certificate not yet signed.
    pub certificate: Option<String>,
    /// PEM, the issuing CA first, up to (not including) the root.
    #[serde(default)]
    pub chain: Vec<String>,
    /// True when this answers a replayed request with the certificate it made.
    #[serde(default)]
    pub replayed: bool,
    /// The km certificate made with this one (a dual enrolment or renewal).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub km: Option<Box<KmReply>>,
    /// The other certificate of this one's pair (official-sign and official-km),
    /// as it stands: a revocation names a pair it left valid.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub pair: Option<PairReply>,
}

impl CertificateReply {
    /// `record`, a certificate of CA `ca`, as it stands: its PEM when it is
    /// signed, no chain, not a replay, no km certificate or pair.
    pub fn of(ca: &str, record: &gpki_store::CertificateRecord) -> CertificateReply {
        CertificateReply {
            ca: ca.to_string(),
            serial: record.serial.clone(),
            profile: record.profile.clone(),
            subject: record.subject.clone(),
            status: record.status.to_string(),
            not_before: record.not_before,
            not_after: record.not_after,
            certificate: record
                .der
                .as_deref()
                .map(|d| gpki_pki::pem::encode("CERTIFICATE", d)),
            chain: Vec::new(),
            replayed: false,
            km: None,
            pair: None,
        }
    }

    /// With the chain (PEM, the issuing CA first).
    pub fn with_chain(self, chain: Vec<String>) -> CertificateReply {
        CertificateReply { chain, ..self }
    }

    /// As the answer to a replayed request.
    pub fn replayed(self) -> CertificateReply {
        CertificateReply {
            replayed: true,
            ..self
        }
    }
}

/// The km certificate of a dual enrolment, and its key for the official.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct KmReply {
    pub certificate: CertificateReply,
    /// PEM `CMS`: the km private key (PKCS#8) in EnvelopedData to the transport
    /// key (`gpki km open`, `openssl cms -decrypt -inform PEM`). Only the call that
    /// made it carries it: the CA keeps the key only sealed to the KRA, so a lost
    /// answer is a recovery (`gpki km recover`), not a replay.
    #[serde(default)]
    pub delivery: Option<String>,
}

/// A certificate's pair as it stands.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
pub struct PairReply {
    pub serial: String,
    pub profile: String,
    pub status: String,
}

/// The profile a km certificate pairs with, and the km certificate's.
pub use gpki_pki::profile::{KM_PROFILE, SIGN_PROFILE};

/// Refused unless `pem` is a PKCS#10 request whose signature verifies, for an RSA
/// key of 2048 bits or more: the km key is sealed to it with RSA-OAEP.
pub fn check_transport(pem: &str) -> Result<gpki_pki::csr::VerifiedCsr> {
    let csr = gpki_pki::csr::parse_and_verify(pem.as_bytes())
        .map_err(|e| e.context("km transport request"))?;
    match gpki_pki::KeyType::of_spki(csr.spki_der())? {
        gpki_pki::KeyType::Rsa2048 | gpki_pki::KeyType::Rsa3072 | gpki_pki::KeyType::Rsa4096 => Ok(csr),
        other => Err(Error::policy(format!(
            "the km transport key is {other}; it must be RSA of 2048 bits or more (the km key is sealed to it with RSA-OAEP)"
        ))),
    }
}

/// A chain as a TLS peer or a relying party wants it beside a certificate: PEM,
/// the issuing CA first, the self-signed root left out.
pub fn chain_pem(chain: &[Vec<u8>]) -> Vec<String> {
    chain
        .iter()
        .take_while(|c| gpki_pki::cert::ca_facts(c).is_ok_and(|f| !f.self_issued))
        .map(|c| gpki_pki::pem::encode("CERTIFICATE", c))
        .collect()
}

/// The key under which the CA records the certificate it makes for RA `ra`'s
/// request `request_id` (neither holds `:`), so a replay finds it.
pub fn ca_request_key(ra: &str, request_id: &str) -> String {
    format!("ra:{ra}:{request_id}")
}

/// The request id an RA sends the CA for its request `id`.
pub fn ra_request_id(id: i64) -> String {
    format!("req-{id}")
}

/// `POST /v1/signers/renew`: a delegated signer (an OCSP responder, a TSA) asks
/// for the next certificate of its current one, for a new key. Callers are
/// service clients of role `ocsp` (renewing ocsp-signer certificates) or `tsa`
/// (tsa certificates).
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SignerRenewBody {
    /// The CA that issued the current certificate.
    pub ca: String,
    /// The current certificate's serial.
    pub serial: String,
    /// PEM PKCS#10 for the new key, with the current certificate's subject.
    pub csr: String,
    /// Hex of a signature by the current certificate's key over
    /// [`signer_renewal_message`]: the caller holds the signer it renews, so a
    /// host serving one CA cannot obtain another CA's signer certificate.
    pub proof: String,
}

/// What a delegated signer signs with its current key to renew: the current
/// certificate's SHA-256 and the new key's SubjectPublicKeyInfo SHA-256 (hex).
pub fn signer_renewal_message(cert_sha256: &str, new_spki_sha256: &str) -> Vec<u8> {
    format!(
        "gpki signer renewal request v1\ncertificate-sha256: {cert_sha256}\nnew-key-sha256: {new_spki_sha256}\n"
    )
    .into_bytes()
}

/// A holder's own revocation request (`POST /v1/holder/revocations` at the RA): no
/// operator, no client certificate; the holder proves possession of the
/// certificate's key by signing [`holder_revocation_message`].
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct HolderRevocationBody {
    /// The certificate to revoke (PEM).
    pub certificate: String,
    /// An RFC 5280 reason a holder may give: keyCompromise, affiliationChanged,
    /// superseded, cessationOfOperation or unspecified.
    pub reason: String,
    /// Unix seconds; the RA accepts the request within five minutes of it.
    pub signed_at: i64,
    /// Hex of the signature over the message, by the certificate's key, with the
    /// key type's default algorithm (ECDSA with SHA-256/384, RSA PKCS#1 v1.5
    /// with SHA-256).
    pub signature: String,
}

/// What a holder signs, with their official-sign key, to report their mobile ID
/// lost (`POST /v1/holder/credential-revocations`): a statement of its own, so
/// neither it nor a certificate revocation reads as the other.
pub fn holder_credential_revocation_message(
    cert_sha256: &str,
    reason: &str,
    signed_at: i64,
) -> Vec<u8> {
    format!(
        "gpki holder mobile ID revocation request v1\ncertificate-sha256: {cert_sha256}\nreason: {reason}\nsigned_at: {signed_at}\n"
    )
    .into_bytes()
}

/// What a holder signs to revoke the certificate whose DER has SHA-256
/// `cert_sha256` (lower-case hex): the purpose, the certificate, the reason and
/// the time, one per line, so a signature made for anything else (a document, a
/// login challenge) never reads as a revocation. The fingerprint, not a DN, names
/// the certificate, so any client computes the same bytes (`openssl x509
/// -fingerprint -sha256`).
pub fn holder_revocation_message(cert_sha256: &str, reason: &str, signed_at: i64) -> Vec<u8> {
    format!(
        "gpki holder revocation request v1\ncertificate-sha256: {cert_sha256}\nreason: {reason}\nsigned_at: {signed_at}\n"
    )
    .into_bytes()
}
