//! The credential's entry in its IETF Token Status List: the token (a JWT or a
//! CWT) signed by a status-list signer of the credential's own CA, current, for
//! the list the credential names, and the entry VALID.

use coset::cbor::value::Value as Cbor;
use coset::{CborSerializable, CoseSign1, TaggedCborSerializable};
use openssl::x509::X509;

use super::mdoc::{cose_signature, x5chain};
use super::sd_jwt::{int_claim, jws_alg, jws_chain, jws_signature};
use super::x509::{signer_status, subject, validate_chain};
use super::{fail, malformed, Fail, Reason, Run, R};
use crate::keys::PublicKey;
use crate::mdoc::get;
use crate::status::{self, StatusList};
use crate::{b64, mdoc, sdjwt};

/// A verified Status List Token's list and its claims.
struct Token {
    sub: String,
    iat: i64,
    exp: i64,
    ttl: i64,
    list: StatusList,
}

/// Fetches and verifies the status list at `uri`, and checks entry `idx`.
pub(super) fn check_status(run: &mut Run, uri: &str, idx: u64, cwt: bool, ca: &X509) -> R<()> {
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

/// The Status List Token as a JWT: its typ, alg and signer (see [`status_signer`])
/// and signature, and its claims.
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

/// The Status List Token as a CWT (a COSE_Sign1, tagged or not, of at most
/// [`status::MAX_LIST_BYTES`]): its protected typ, signer (see [`status_signer`])
/// and signature, and its claims.
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
