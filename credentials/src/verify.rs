//! Verification of a presentation, as a verifier does it: the signer's chain to a
//! configured trust anchor, the signer's status by OCSP, the issuer's signature,
//! every disclosed digest, validity, the holder binding to the verifier and its
//! nonce, and the credential's entry in its status list.
//!
//! The checks run in that order and stop at the first that fails, which is
//! reported by name ([`Reason`]); a status that cannot be established (no OCSP
//! answer, no status list) is a refusal, never a pass. This module does no I/O:
//! the caller supplies OCSP answers and status list tokens through [`Online`].

use coset::cbor::value::Value as Cbor;
use coset::{AsCborValue, CborSerializable, CoseSign1, TaggedCborSerializable};
use openssl::stack::Stack;
use openssl::x509::store::X509StoreBuilder;
use openssl::x509::verify::X509VerifyFlags;
use openssl::x509::{X509StoreContext, X509};
use serde_json::{json, Value as Json};

use crate::keys::{extended_key_usages, Alg, PublicKey};
use crate::mdoc::{self, get};
use crate::model::{self, DOC_TYPE, VCT};
use crate::status::{self, StatusList};
use crate::{b64, sdjwt};

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

struct Fail(Reason, String);
type R<T> = std::result::Result<T, Fail>;

fn fail<T>(reason: Reason, detail: impl Into<String>) -> R<T> {
    Err(Fail(reason, detail.into()))
}

fn malformed(e: gpki_pki::Error) -> Fail {
    Fail(Reason::Malformed, e.detail)
}

struct Run<'a> {
    policy: &'a Policy<'a>,
    online: &'a dyn Online,
    checks: Vec<Check>,
}

impl Run<'_> {
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

fn subject(c: &X509) -> String {
    c.subject_name()
        .entries()
        .filter_map(|e| {
            let key = e.object().nid().short_name().unwrap_or("?");
            Some(format!("{key}={}", e.data().to_string().ok()?))
        })
        .collect::<Vec<_>>()
        .join(", ")
}

/// The chain's leaf, checked to reach an anchor at `now` through `chain[1..]`, to
/// carry `purpose` and digitalSignature; returns it and its issuer.
fn validate_chain(
    run: &mut Run,
    chain: &[Vec<u8>],
    purpose: const_oid::ObjectIdentifier,
    purpose_name: &str,
    what: &str,
) -> R<(X509, X509)> {
    let certs = chain
        .iter()
        .map(|d| X509::from_der(d))
        .collect::<std::result::Result<Vec<_>, _>>()
        .map_err(|e| Fail(Reason::Malformed, format!("{what}'s chain: {e}")))?;
    if certs.is_empty() {
        return fail(Reason::Malformed, format!("{what} carries no certificate"));
    }
    let leaf = &certs[0];
    let built =
        (|| -> std::result::Result<(bool, String, Vec<X509>), openssl::error::ErrorStack> {
            let mut store = X509StoreBuilder::new()?;
            for a in run.policy.anchors {
                store.add_cert(a.clone())?;
            }
            // An anchor may be a CA below a root: a verifier that trusts the credential
            // CA alone (ISO/IEC 18013-5's IACA role) stops there.
            store.set_flags(X509VerifyFlags::PARTIAL_CHAIN)?;
            let mut param = openssl::x509::verify::X509VerifyParam::new()?;
            param.set_time(run.policy.now as _);
            store.set_param(&param)?;
            let store = store.build();
            let mut untrusted = Stack::new()?;
            for c in &certs[1..] {
                untrusted.push(c.clone())?;
            }
            let mut ctx = X509StoreContext::new()?;
            ctx.init(&store, leaf, &untrusted, |c| {
                let ok = c.verify_cert()?;
                let path = c
                    .chain()
                    .map(|s| s.iter().map(|x| x.to_owned()).collect())
                    .unwrap_or_default();
                Ok((ok, c.error().error_string().to_string(), path))
            })
        })()
        .map_err(|e| Fail(Reason::UntrustedChain, format!("{what}'s chain: {e}")))?;
    let (ok, error, path) = built;
    if !ok {
        return fail(
            Reason::UntrustedChain,
            format!(
                "{what}'s certificate `{}` does not chain to a trust anchor: {error}",
                subject(leaf)
            ),
        );
    }
    let Some(issuer) = path.get(1).cloned() else {
        return fail(
            Reason::UntrustedChain,
            format!("{what}'s certificate is itself a trust anchor; configure its CA instead"),
        );
    };
    // ISO/IEC 18013-5's model: the signer's own CA (the IACA role) is the anchor. A
    // root above several CAs would let any of them mint credentials.
    let issuer_der = issuer.to_der().unwrap_or_default();
    if !run
        .policy
        .anchors
        .iter()
        .any(|a| a.to_der().ok().as_deref() == Some(issuer_der.as_slice()))
    {
        return fail(
            Reason::UntrustedChain,
            format!(
                "{what}'s certificate `{}` is issued by `{}`, which is not a configured trust anchor: anchor the credential CA itself, not a root above it",
                subject(leaf),
                subject(&issuer)
            ),
        );
    }
    let decoded = gpki_pki::cert::decode(&chain[0]).map_err(malformed)?;
    let ekus = extended_key_usages(&decoded).map_err(malformed)?;
    if !ekus.contains(&purpose) {
        return fail(
            Reason::WrongPurpose,
            format!(
                "{what}'s certificate `{}` lacks the {purpose_name} extended key usage",
                subject(leaf)
            ),
        );
    }
    let ku = gpki_pki::cert::find_extension::<x509_cert::ext::pkix::KeyUsage>(
        &decoded.tbs_certificate,
        const_oid::db::rfc5280::ID_CE_KEY_USAGE,
    )
    .map_err(malformed)?;
    if !ku.is_some_and(|(_, k)| k.digital_signature()) {
        return fail(
            Reason::WrongPurpose,
            format!("{what}'s certificate does not allow digitalSignature"),
        );
    }
    let names: Vec<String> = path.iter().map(subject).collect();
    run.pass(
        "chain",
        format!(
            "{what}: {} (to anchor `{}`, {purpose_name})",
            names.join(" <- "),
            names.last().cloned().unwrap_or_default()
        ),
    );
    Ok((leaf.clone(), issuer))
}

/// The signer's status by OCSP: good passes; revoked or unknown refuses.
fn signer_status(run: &mut Run, leaf: &X509, issuer: &X509, what: &str) -> R<()> {
    match run.online.certificate_status(leaf, issuer) {
        Ok(CertStatus::Good) => {
            run.pass(
                "signer-status",
                format!("{what}'s certificate is good (OCSP)"),
            );
            Ok(())
        }
        Ok(CertStatus::Revoked { reason }) => fail(
            Reason::SignerRevoked,
            format!(
                "{what}'s certificate `{}` is revoked ({reason})",
                subject(leaf)
            ),
        ),
        Err(e) => fail(
            Reason::SignerStatusUnknown,
            format!("{what}'s certificate status could not be established: {e}"),
        ),
    }
}

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

// ---------------------------------------------------------------- mdoc

fn text_of<'a>(v: Option<&'a Cbor>, what: &str) -> R<&'a str> {
    match v {
        Some(Cbor::Text(t)) => Ok(t),
        _ => fail(Reason::Malformed, format!("{what} is not text")),
    }
}

/// A `tdate` (tag 0) as Unix seconds.
fn tdate(v: Option<&Cbor>, what: &str) -> R<i64> {
    match v {
        Some(Cbor::Tag(0, inner)) => match inner.as_ref() {
            Cbor::Text(s) => gpki_pki::time::parse_rfc3339(s).map_err(malformed),
            _ => fail(Reason::Malformed, format!("{what} is not a tdate")),
        },
        _ => fail(Reason::Malformed, format!("{what} is not a tdate")),
    }
}

/// The certificates of an x5chain header (one byte string, or an array of them).
fn x5chain(sign1: &CoseSign1, what: &str) -> R<Vec<Vec<u8>>> {
    let value = sign1
        .unprotected
        .rest
        .iter()
        .chain(sign1.protected.header.rest.iter())
        .find(|(l, _)| *l == coset::Label::Int(mdoc::X5CHAIN))
        .map(|(_, v)| v);
    match value {
        Some(Cbor::Bytes(b)) => Ok(vec![b.clone()]),
        Some(Cbor::Array(a)) if !a.is_empty() => a
            .iter()
            .map(|c| match c {
                Cbor::Bytes(b) => Ok(b.clone()),
                _ => fail(
                    Reason::Malformed,
                    format!("{what}'s x5chain holds a non-bstr"),
                ),
            })
            .collect(),
        _ => fail(Reason::Malformed, format!("{what} has no x5chain")),
    }
}

fn cose_alg(sign1: &CoseSign1, what: &str) -> R<Alg> {
    sign1
        .protected
        .header
        .alg
        .as_ref()
        .and_then(Alg::from_cose)
        .ok_or_else(|| {
            Fail(
                Reason::Malformed,
                format!("{what}'s protected alg is not ES256 or ES384"),
            )
        })
}

/// Checks a COSE_Sign1's signature (attached payload) with the leaf's key.
fn cose_signature(run: &mut Run, sign1: &CoseSign1, leaf: &X509, what: &str) -> R<()> {
    let alg = cose_alg(sign1, what)?;
    let key = PublicKey::from_x509(leaf).map_err(malformed)?;
    let ok = key
        .verify(alg, &sign1.tbs_data(b""), &sign1.signature)
        .map_err(malformed)?;
    if !ok {
        return fail(
            Reason::BadSignature,
            format!("{what}'s signature does not verify with its signer's key"),
        );
    }
    run.pass("signature", format!("{what}: {}", alg.jose()));
    Ok(())
}

fn verify_mdoc(run: &mut Run, bytes: &[u8]) -> R<(String, Vec<(String, Json)>)> {
    let response = mdoc::decode(bytes, "the DeviceResponse").map_err(malformed)?;
    let Some(Cbor::Array(documents)) = get(&response, "documents") else {
        return fail(Reason::Malformed, "the DeviceResponse has no documents");
    };
    let [document] = documents.as_slice() else {
        return fail(
            Reason::Malformed,
            format!(
                "the DeviceResponse holds {} documents; one is verified at a time",
                documents.len()
            ),
        );
    };
    let doc_type = text_of(get(document, "docType"), "the document's docType")?.to_string();
    if doc_type != DOC_TYPE {
        return fail(
            Reason::WrongType,
            format!("docType `{doc_type}` is not `{DOC_TYPE}`"),
        );
    }
    let issuer_signed = get(document, "issuerSigned")
        .ok_or_else(|| Fail(Reason::Malformed, "the document has no issuerSigned".into()))?;
    let auth = CoseSign1::from_cbor_value(
        get(issuer_signed, "issuerAuth")
            .cloned()
            .ok_or_else(|| Fail(Reason::Malformed, "issuerSigned has no issuerAuth".into()))?,
    )
    .map_err(|e| {
        Fail(
            Reason::Malformed,
            format!("issuerAuth is not a COSE_Sign1: {e}"),
        )
    })?;

    // Who signed, and may they.
    let chain = x5chain(&auth, "the MSO")?;
    let (leaf, issuer) = validate_chain(
        run,
        &chain,
        gpki_pki::profile::EKU_MDL_DS,
        "mdlDS",
        "the MSO",
    )?;
    signer_status(run, &leaf, &issuer, "the MSO signer")?;
    cose_signature(run, &auth, &leaf, "the MSO")?;

    // What they signed.
    let mso = mdoc::mso_of(&auth).map_err(malformed)?;
    let mso_type = text_of(get(&mso, "docType"), "the MSO's docType")?;
    if mso_type != doc_type {
        return fail(
            Reason::WrongType,
            format!("the MSO is for `{mso_type}`, the document says `{doc_type}`"),
        );
    }
    if text_of(get(&mso, "digestAlgorithm"), "digestAlgorithm")? != "SHA-256" {
        return fail(
            Reason::Malformed,
            "the MSO's digestAlgorithm is not SHA-256",
        );
    }
    let validity = get(&mso, "validityInfo")
        .ok_or_else(|| Fail(Reason::Malformed, "the MSO has no validityInfo".into()))?;
    let from = tdate(get(validity, "validFrom"), "validFrom")?;
    let until = tdate(get(validity, "validUntil"), "validUntil")?;

    // Every disclosed item against its signed digest.
    let digests = get(&mso, "valueDigests")
        .ok_or_else(|| Fail(Reason::Malformed, "the MSO has no valueDigests".into()))?;
    let Some(Cbor::Map(namespaces)) = get(issuer_signed, "nameSpaces") else {
        return fail(Reason::Malformed, "issuerSigned has no nameSpaces map");
    };
    let mut disclosed = Vec::new();
    for (ns, items) in namespaces {
        let Cbor::Text(ns_name) = ns else {
            return fail(Reason::Malformed, "a namespace name is not text");
        };
        let Cbor::Array(items) = items else {
            return fail(Reason::Malformed, "a namespace's items are not an array");
        };
        let signed = get(digests, ns_name);
        for tagged in items {
            let item = mdoc::untag24(tagged, "an IssuerSignedItem").map_err(malformed)?;
            let id = text_of(get(&item, "elementIdentifier"), "elementIdentifier")?.to_string();
            let Some(Cbor::Integer(digest_id)) = get(&item, "digestID") else {
                return fail(Reason::Malformed, format!("item `{id}` has no digestID"));
            };
            let digest = openssl::sha::sha256(&mdoc::encode(tagged));
            let expected = signed.and_then(|m| match m {
                Cbor::Map(e) => e
                    .iter()
                    .find(|(k, _)| matches!(k, Cbor::Integer(i) if i == digest_id))
                    .map(|(_, v)| v),
                _ => None,
            });
            match expected {
                Some(Cbor::Bytes(b)) if b.as_slice() == digest.as_slice() => {}
                _ => {
                    return fail(
                        Reason::DigestMismatch,
                        format!("attribute `{id}` ({ns_name}) does not match its signed digest"),
                    )
                }
            }
            if disclosed.iter().any(|(n, _)| *n == id) {
                return fail(Reason::Malformed, format!("attribute `{id}` appears twice"));
            }
            let value = element_json(get(&item, "elementValue"), &id)?;
            disclosed.push((id, value));
        }
    }
    run.pass(
        "digests",
        format!("{} disclosed attribute(s) match the MSO", disclosed.len()),
    );
    check_validity(run, from, until)?;

    // Bound to the holder's device and to this verifier's nonce.
    let device_key = get(&mso, "deviceKeyInfo")
        .and_then(|d| get(d, "deviceKey"))
        .cloned()
        .ok_or_else(|| Fail(Reason::Malformed, "the MSO has no deviceKey".into()))?;
    let device_key = coset::CoseKey::from_cbor_value(device_key)
        .map_err(|e| Fail(Reason::Malformed, format!("deviceKey: {e}")))
        .and_then(|k| PublicKey::from_cose_key(&k).map_err(malformed))?;
    let device_signed = get(document, "deviceSigned").ok_or_else(|| {
        Fail(
            Reason::HolderBinding,
            "the document has no deviceSigned".into(),
        )
    })?;
    let device_ns = get(device_signed, "nameSpaces")
        .ok_or_else(|| Fail(Reason::Malformed, "deviceSigned has no nameSpaces".into()))?;
    let signature = get(device_signed, "deviceAuth")
        .and_then(|a| get(a, "deviceSignature"))
        .cloned()
        .ok_or_else(|| {
            Fail(
                Reason::HolderBinding,
                "deviceAuth has no deviceSignature (gpki accepts no deviceMac)".into(),
            )
        })?;
    let signature = CoseSign1::from_cbor_value(signature)
        .map_err(|e| Fail(Reason::Malformed, format!("deviceSignature: {e}")))?;
    if signature.payload.is_some() {
        return fail(
            Reason::Malformed,
            "deviceSignature carries a payload; it must be detached",
        );
    }
    let alg = cose_alg(&signature, "deviceSignature")?;
    let transcript = mdoc::session_transcript(run.policy.verifier, run.policy.nonce);
    let detached = mdoc::device_authentication_bytes(&transcript, &doc_type, device_ns);
    let ok = device_key
        .verify(
            alg,
            &signature.tbs_detached_data(&detached, b""),
            &signature.signature,
        )
        .map_err(malformed)?;
    if !ok {
        return fail(
            Reason::DeviceAuth,
            format!(
                "the device signature does not verify over the session transcript of verifier `{}` and this nonce (a wrong nonce or verifier, or not the device key)",
                run.policy.verifier
            ),
        );
    }
    run.pass(
        "holder-binding",
        format!(
            "DeviceAuth signed by the MSO's device key {} for verifier `{}` and the nonce",
            device_key.thumbprint(),
            run.policy.verifier
        ),
    );

    let status_ref = get(&mso, "status")
        .and_then(|s| get(s, "status_list"))
        .ok_or_else(|| {
            Fail(
                Reason::StatusUnavailable,
                "the MSO names no status list".into(),
            )
        })?;
    let uri = text_of(get(status_ref, "uri"), "status_list uri")?.to_string();
    let idx = match get(status_ref, "idx") {
        Some(Cbor::Integer(i)) => u64::try_from(i128::from(*i))
            .map_err(|_| Fail(Reason::Malformed, "status_list idx is negative".into()))?,
        _ => return fail(Reason::Malformed, "status_list idx is not an integer"),
    };
    check_status(run, &uri, idx, true, &issuer)?;
    Ok((doc_type, disclosed))
}

/// An element value as the report shows it (the JSON form of the data model).
fn element_json(v: Option<&Cbor>, id: &str) -> R<Json> {
    let value = match v {
        Some(Cbor::Text(t)) => model::Value::Text(t.clone()),
        Some(Cbor::Tag(1004, inner)) => match inner.as_ref() {
            Cbor::Text(t) => model::Value::Date(model::parse_date(t).map_err(malformed)?),
            _ => return fail(Reason::Malformed, format!("`{id}` is not a full-date")),
        },
        Some(Cbor::Bytes(b)) => model::Value::Jpeg(b.clone()),
        _ => {
            return fail(
                Reason::Malformed,
                format!("`{id}` has a value type gpki does not issue"),
            )
        }
    };
    Ok(value.to_json())
}

// ---------------------------------------------------------------- SD-JWT

fn jws_chain(header: &Json, what: &str) -> R<Vec<Vec<u8>>> {
    let Some(x5c) = header["x5c"].as_array().filter(|a| !a.is_empty()) else {
        return fail(Reason::Malformed, format!("{what} has no x5c header"));
    };
    x5c.iter()
        .map(|c| {
            let text = c.as_str().ok_or_else(|| {
                Fail(
                    Reason::Malformed,
                    format!("{what}'s x5c holds a non-string"),
                )
            })?;
            base64::Engine::decode(&base64::engine::general_purpose::STANDARD, text)
                .map_err(|e| Fail(Reason::Malformed, format!("{what}'s x5c: {e}")))
        })
        .collect()
}

fn jws_alg(header: &Json, what: &str) -> R<Alg> {
    header["alg"]
        .as_str()
        .and_then(Alg::from_jose)
        .ok_or_else(|| {
            Fail(
                Reason::Malformed,
                format!("{what}'s alg is not ES256 or ES384"),
            )
        })
}

/// Checks a compact JWS's signature with `key`.
fn jws_signature(jws: &str, alg: Alg, key: &PublicKey) -> R<bool> {
    let (input, sig) = jws
        .rsplit_once('.')
        .ok_or_else(|| Fail(Reason::Malformed, "malformed JWT".into()))?;
    let sig = b64::decode(sig).map_err(|e| {
        Fail(
            Reason::Malformed,
            format!("malformed JWT signature: {}", e.detail),
        )
    })?;
    key.verify(alg, input.as_bytes(), &sig).map_err(malformed)
}

fn int_claim(payload: &Json, name: &str, what: &str) -> R<i64> {
    payload[name]
        .as_i64()
        .ok_or_else(|| Fail(Reason::Malformed, format!("{what} has no numeric `{name}`")))
}

fn verify_sd_jwt(run: &mut Run, bytes: &[u8]) -> R<(String, Vec<(String, Json)>)> {
    let text = std::str::from_utf8(bytes)
        .map_err(|_| Fail(Reason::Malformed, "the SD-JWT is not UTF-8".into()))?;
    let parts = sdjwt::split(text).map_err(malformed)?;
    let (header, payload) = sdjwt::unverified(parts.jws).map_err(malformed)?;
    if header["typ"] != sdjwt::TYP {
        return fail(
            Reason::WrongType,
            format!(
                "the issuer JWT's typ is {}, not {}",
                header["typ"],
                sdjwt::TYP
            ),
        );
    }
    let vct = payload["vct"].as_str().unwrap_or_default();
    if vct != VCT {
        return fail(Reason::WrongType, format!("vct `{vct}` is not `{VCT}`"));
    }
    let alg = jws_alg(&header, "the issuer JWT")?;

    let chain = jws_chain(&header, "the issuer JWT")?;
    let (leaf, issuer) = validate_chain(
        run,
        &chain,
        gpki_pki::profile::EKU_MDL_DS,
        "mdlDS",
        "the issuer JWT",
    )?;
    let iss = payload["iss"].as_str().unwrap_or_default();
    let sans = uri_sans(&chain[0])?;
    if !sans.iter().any(|s| s == iss) {
        return fail(
            Reason::IssuerMismatch,
            format!("iss `{iss}` is not a URI SAN of the signer certificate ({sans:?})"),
        );
    }
    run.pass("issuer", format!("iss `{iss}` is the signer's URI SAN"));
    signer_status(run, &leaf, &issuer, "the issuer JWT signer")?;
    let key = PublicKey::from_x509(&leaf).map_err(malformed)?;
    // A verifier that selects the key by `kid` from the issuer's metadata or DID
    // document must reach the key x5c names, or the two would judge different keys.
    if let Some(kid) = header.get("kid") {
        if kid.as_str() != Some(key.thumbprint().as_str()) {
            return fail(
                Reason::IssuerMismatch,
                format!("kid {kid} is not the thumbprint of the x5c signer's key"),
            );
        }
    }
    if !jws_signature(parts.jws, alg, &key)? {
        return fail(
            Reason::BadSignature,
            "the issuer JWT's signature does not verify with its signer's key",
        );
    }
    run.pass("signature", format!("the issuer JWT: {}", alg.jose()));

    // Every disclosure against the signed digests.
    if payload.get("_sd_alg").is_some_and(|a| a != "sha-256") {
        return fail(Reason::Malformed, "_sd_alg is not sha-256");
    }
    let sd: Vec<&str> = payload["_sd"]
        .as_array()
        .map(|a| a.iter().filter_map(Json::as_str).collect())
        .unwrap_or_default();
    let mut disclosed: Vec<(String, Json)> = Vec::new();
    let mut seen = std::collections::HashSet::new();
    for d in &parts.disclosures {
        let digest = sdjwt::digest(d);
        let (name, value) = sdjwt::disclosure_claim(d).map_err(malformed)?;
        if !sd.contains(&digest.as_str()) {
            return fail(
                Reason::DigestMismatch,
                format!("attribute `{name}`'s disclosure is not among the signed digests (_sd)"),
            );
        }
        if !seen.insert(digest) || disclosed.iter().any(|(n, _)| *n == name) {
            return fail(
                Reason::Malformed,
                format!("attribute `{name}` is disclosed twice"),
            );
        }
        disclosed.push((name, value));
    }
    run.pass(
        "digests",
        format!("{} disclosed attribute(s) match _sd", disclosed.len()),
    );
    check_validity(
        run,
        if payload.get("nbf").is_some() {
            int_claim(&payload, "nbf", "the issuer JWT")?
        } else {
            int_claim(&payload, "iat", "the issuer JWT")?
        },
        int_claim(&payload, "exp", "the issuer JWT")?,
    )?;

    // The key binding JWT: the holder's key, this verifier, this nonce.
    let Some(kb) = parts.kb else {
        return fail(
            Reason::HolderBinding,
            "the presentation has no key binding JWT",
        );
    };
    let cnf = PublicKey::from_jwk(&payload["cnf"]["jwk"])
        .map_err(|e| Fail(Reason::Malformed, format!("cnf: {}", e.detail)))?;
    if kb.split('.').count() != 3 {
        return fail(
            Reason::Malformed,
            "malformed JWT: the key binding JWT is not three parts",
        );
    }
    let (kb_header, kb_payload) = sdjwt::unverified(kb).map_err(malformed)?;
    if kb_header["typ"] != sdjwt::KB_TYP {
        return fail(
            Reason::HolderBinding,
            format!(
                "the key binding JWT's typ is {}, not {}",
                kb_header["typ"],
                sdjwt::KB_TYP
            ),
        );
    }
    let kb_alg = jws_alg(&kb_header, "the key binding JWT")?;
    if !jws_signature(kb, kb_alg, &cnf)? {
        return fail(
            Reason::HolderBinding,
            "the key binding JWT is not signed by the credential's holder key (cnf)",
        );
    }
    let presented = &text.trim_end()[..text.trim_end().len() - kb.len()];
    if kb_payload["sd_hash"].as_str() != Some(&sdjwt::digest(presented)) {
        return fail(
            Reason::HolderBinding,
            "the key binding JWT's sd_hash does not cover this presentation",
        );
    }
    let p = run.policy;
    if kb_payload["aud"].as_str() != Some(p.verifier) {
        return fail(
            Reason::WrongVerifier,
            format!(
                "the presentation is for verifier {}, not `{}`",
                kb_payload["aud"], p.verifier
            ),
        );
    }
    if kb_payload["nonce"].as_str() != Some(p.nonce) {
        return fail(
            Reason::WrongNonce,
            "the key binding JWT's nonce is not the nonce this verifier issued",
        );
    }
    let iat = int_claim(&kb_payload, "iat", "the key binding JWT")?;
    if iat > p.now + p.skew || iat < p.now - p.max_presentation_age {
        return fail(
            Reason::HolderBinding,
            format!(
                "the key binding JWT was made at {}, outside the {} s a presentation is accepted",
                gpki_pki::time::rfc3339(iat),
                p.max_presentation_age
            ),
        );
    }
    run.pass(
        "holder-binding",
        format!(
            "key binding JWT signed by cnf key {} for verifier `{}` and the nonce",
            cnf.thumbprint(),
            p.verifier
        ),
    );

    let uri = payload["status"]["status_list"]["uri"]
        .as_str()
        .ok_or_else(|| {
            Fail(
                Reason::StatusUnavailable,
                "the SD-JWT names no status list".into(),
            )
        })?
        .to_string();
    let idx = payload["status"]["status_list"]["idx"]
        .as_u64()
        .ok_or_else(|| {
            Fail(
                Reason::Malformed,
                "status_list idx is not a non-negative integer".into(),
            )
        })?;
    check_status(run, &uri, idx, false, &issuer)?;
    Ok((vct.to_string(), disclosed))
}

fn uri_sans(der: &[u8]) -> R<Vec<String>> {
    let cert = gpki_pki::cert::decode(der).map_err(malformed)?;
    let san = gpki_pki::cert::find_extension::<x509_cert::ext::pkix::SubjectAltName>(
        &cert.tbs_certificate,
        const_oid::db::rfc5280::ID_CE_SUBJECT_ALT_NAME,
    )
    .map_err(malformed)?;
    Ok(san
        .map(|(_, s)| {
            s.0.iter()
                .filter_map(|n| match n {
                    x509_cert::ext::pkix::name::GeneralName::UniformResourceIdentifier(u) => {
                        Some(u.to_string())
                    }
                    _ => None,
                })
                .collect()
        })
        .unwrap_or_default())
}

// ---------------------------------------------------------------- status list

/// A verified Status List Token's list and its claims.
struct Token {
    sub: String,
    iat: i64,
    exp: i64,
    ttl: i64,
    list: StatusList,
}

/// Fetches and verifies the status list at `uri`, and checks entry `idx`.
fn check_status(run: &mut Run, uri: &str, idx: u64, cwt: bool, ca: &X509) -> R<()> {
    let unavailable = |e: String| Fail(Reason::StatusUnavailable, e);
    let bytes = run
        .online
        .status_list(uri, cwt)
        .map_err(|e| unavailable(format!("status list {uri}: {e}")))?;
    // A token given offline may be either form; a fetched one is what was asked for.
    let token = if !bytes.starts_with(b"ey") {
        status_cwt(run, &bytes, ca)
    } else {
        status_jwt(run, &bytes, ca)
    }
    .map_err(|Fail(_, e)| Fail(Reason::StatusUntrusted, format!("status list {uri}: {e}")))?;
    let p = run.policy;
    if token.sub != uri {
        return fail(
            Reason::StatusUnavailable,
            format!("the token fetched from {uri} is for {}", token.sub),
        );
    }
    if !p.offline_status && token.iat + token.ttl + p.skew < p.now {
        return fail(
            Reason::StatusUnavailable,
            format!(
                "the status list token of {uri} was issued at {} and is stale after its ttl of {} s",
                gpki_pki::time::rfc3339(token.iat),
                token.ttl
            ),
        );
    }
    if token.exp <= p.now {
        return fail(
            Reason::StatusUnavailable,
            format!(
                "the status list token of {uri} expired at {}",
                gpki_pki::time::rfc3339(token.exp)
            ),
        );
    }
    if token.iat > p.now + p.skew {
        return fail(
            Reason::StatusUnavailable,
            format!("the status list token of {uri} is issued in the future"),
        );
    }
    match token.list.get(idx) {
        Some(status::VALID) => {
            run.pass(
                "status",
                format!(
                    "entry {idx} of {uri} is VALID (list of {} entries issued {})",
                    token.list.len(),
                    gpki_pki::time::rfc3339(token.iat)
                ),
            );
            Ok(())
        }
        Some(status::INVALID) => fail(
            Reason::CredentialRevoked,
            format!("entry {idx} of {uri} is INVALID: the credential is revoked"),
        ),
        Some(status::SUSPENDED) => fail(
            Reason::CredentialRevoked,
            format!("entry {idx} of {uri} is SUSPENDED"),
        ),
        Some(other) => fail(
            Reason::CredentialRevoked,
            format!("entry {idx} of {uri} has status {other:#04x}, which is not VALID"),
        ),
        None => fail(
            Reason::StatusUnavailable,
            format!(
                "entry {idx} is beyond the {} entries of {uri}",
                token.list.len()
            ),
        ),
    }
}

/// The status list token's signer: chained to an anchor with the status-list
/// purpose, issued by the credential signer's own CA (a status-list signer of
/// another CA could otherwise clear anyone's revocation), and good by OCSP.
fn status_signer(run: &mut Run, chain: &[Vec<u8>], ca: &X509) -> R<X509> {
    let (leaf, issuer) = validate_chain(
        run,
        chain,
        gpki_pki::profile::EKU_STATUS_LIST_SIGNING,
        "statusListSigning",
        "the status list token",
    )?;
    if issuer.to_der().ok() != ca.to_der().ok() {
        return fail(
            Reason::StatusUntrusted,
            format!(
                "the token is signed under `{}`, not the credential's CA `{}`",
                subject(&issuer),
                subject(ca)
            ),
        );
    }
    signer_status(run, &leaf, &issuer, "the status list signer")?;
    Ok(leaf)
}

fn status_jwt(run: &mut Run, bytes: &[u8], ca: &X509) -> R<Token> {
    let text = std::str::from_utf8(bytes)
        .map_err(|_| Fail(Reason::Malformed, "the token is not UTF-8".into()))?
        .trim();
    if text.split('.').count() != 3 {
        return fail(Reason::Malformed, "malformed JWT: not three parts");
    }
    let (header, payload) = sdjwt::unverified(text).map_err(malformed)?;
    if header["typ"] != status::JWT_TYP {
        return fail(
            Reason::Malformed,
            format!("typ is {}, not {}", header["typ"], status::JWT_TYP),
        );
    }
    let alg = jws_alg(&header, "the status list token")?;
    let chain = jws_chain(&header, "the status list token")?;
    let leaf = status_signer(run, &chain, ca)?;
    let key = PublicKey::from_x509(&leaf).map_err(malformed)?;
    if !jws_signature(text, alg, &key)? {
        return fail(
            Reason::BadSignature,
            "the status list token's signature does not verify",
        );
    }
    let bits = payload["status_list"]["bits"]
        .as_u64()
        .and_then(|b| u8::try_from(b).ok())
        .ok_or_else(|| Fail(Reason::Malformed, "status_list has no bits".into()))?;
    let lst = payload["status_list"]["lst"]
        .as_str()
        .ok_or_else(|| Fail(Reason::Malformed, "status_list has no lst".into()))
        .and_then(|l| b64::decode(l).map_err(malformed))?;
    Ok(Token {
        sub: payload["sub"].as_str().unwrap_or_default().to_string(),
        iat: int_claim(&payload, "iat", "the status list token")?,
        exp: int_claim(&payload, "exp", "the status list token")?,
        ttl: int_claim(&payload, "ttl", "the status list token")?,
        list: StatusList::from_compressed(&lst, bits).map_err(malformed)?,
    })
}

fn status_cwt(run: &mut Run, bytes: &[u8], ca: &X509) -> R<Token> {
    if bytes.len() > status::MAX_LIST_BYTES {
        return fail(Reason::Malformed, "the token is too large");
    }
    let sign1 = CoseSign1::from_tagged_slice(bytes)
        .or_else(|_| CoseSign1::from_slice(bytes))
        .map_err(|e| Fail(Reason::Malformed, format!("not a COSE_Sign1: {e}")))?;
    let typ = sign1
        .protected
        .header
        .rest
        .iter()
        .find(|(l, _)| *l == coset::Label::Int(status::COSE_TYP))
        .map(|(_, v)| v);
    if !matches!(typ, Some(Cbor::Text(t)) if t == status::CWT_TYP) {
        return fail(
            Reason::Malformed,
            format!("the protected typ is not {}", status::CWT_TYP),
        );
    }
    let chain = x5chain(&sign1, "the status list token")?;
    let leaf = status_signer(run, &chain, ca)?;
    cose_signature(run, &sign1, &leaf, "the status list token")?;
    let claims = mdoc::decode_bounded(
        sign1.payload.as_deref().unwrap_or_default(),
        status::MAX_LIST_BYTES,
        "the status list claims",
    )
    .map_err(malformed)?;
    let Cbor::Map(entries) = &claims else {
        return fail(Reason::Malformed, "the claims are not a map");
    };
    let claim = |key: i64| {
        entries
            .iter()
            .find(|(k, _)| matches!(k, Cbor::Integer(i) if i128::from(*i) == i128::from(key)))
            .map(|(_, v)| v)
    };
    let int = |key: i64, name: &str| match claim(key) {
        Some(Cbor::Integer(i)) => i64::try_from(i128::from(*i))
            .map_err(|_| Fail(Reason::Malformed, format!("{name} is out of range"))),
        _ => fail(Reason::Malformed, format!("the token has no {name}")),
    };
    let list = claim(status::CWT_STATUS_LIST)
        .ok_or_else(|| Fail(Reason::Malformed, "the token has no status_list".into()))?;
    let bits = match get(list, "bits") {
        Some(Cbor::Integer(b)) => u8::try_from(i128::from(*b))
            .map_err(|_| Fail(Reason::Malformed, "bits is out of range".into()))?,
        _ => return fail(Reason::Malformed, "status_list has no bits"),
    };
    let Some(Cbor::Bytes(lst)) = get(list, "lst") else {
        return fail(Reason::Malformed, "status_list has no lst");
    };
    Ok(Token {
        sub: match claim(status::CWT_SUB) {
            Some(Cbor::Text(t)) => t.clone(),
            _ => String::new(),
        },
        iat: int(status::CWT_IAT, "iat")?,
        exp: int(status::CWT_EXP, "exp")?,
        ttl: int(status::CWT_TTL, "ttl")?,
        list: StatusList::from_compressed(lst, bits).map_err(malformed)?,
    })
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
