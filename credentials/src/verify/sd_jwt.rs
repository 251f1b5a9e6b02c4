//! The SD-JWT VC: the issuer JWT signed by the credential signer (x5c), its `iss`
//! the signer's URI, every disclosure among its signed digests, and the key
//! binding JWT by the holder's key (cnf) over this presentation, for this verifier
//! and nonce, made recently.

use serde_json::Value as Json;

use super::status_list::check_status;
use super::x509::{signer_status, uri_sans, validate_chain};
use super::{check_validity, fail, malformed, Fail, Reason, Run, R};
use crate::keys::{Alg, PublicKey};
use crate::model::VCT;
use crate::{b64, sdjwt};

/// Verifies an SD-JWT presentation: the issuer JWT of the official ID's typ and
/// vct; its signer chained, of the mdlDS purpose, named by `iss` and good by OCSP;
/// its `kid` and signature; every disclosure against `_sd`; validity; the key
/// binding JWT; and the credential's status list entry. The disclosed
/// attributes, in order.
pub(super) fn verify_sd_jwt(run: &mut Run, bytes: &[u8]) -> R<(String, Vec<(String, Json)>)> {
    let text = std::str::from_utf8(bytes)
        .map_err(|_| Fail(Reason::Malformed, "the SD-JWT is not UTF-8".into()))?;
    let parts = sdjwt::split(text).map_err(malformed)?;
    let (header, payload) = sdjwt::unverified(parts.jws).map_err(malformed)?;
    let vct = official_id_type(&header, &payload)?;
    let alg = jws_alg(&header, "the issuer JWT")?;

    let chain = jws_chain(&header, "the issuer JWT")?;
    let (leaf, issuer) = validate_chain(
        run,
        &chain,
        gpki_pki::profile::EKU_MDL_DS,
        "mdlDS",
        "the issuer JWT",
    )?;
    iss_is_the_signers(run, &payload, &chain[0])?;
    signer_status(run, &leaf, &issuer, "the issuer JWT signer")?;
    issuer_signature(run, &header, parts.jws, alg, &leaf)?;

    // Every disclosure against the signed digests.
    let disclosed = disclosures_signed(run, &payload, &parts.disclosures)?;
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
    key_binding(run, text, &payload, parts.kb)?;

    let (uri, idx) = status_ref(&payload)?;
    check_status(run, &uri, idx, false, &issuer)?;
    Ok((vct.to_string(), disclosed))
}

/// The issuer JWT's vct, refused unless its typ is the SD-JWT VC's and its vct the
/// mobile public-official ID's.
fn official_id_type<'a>(header: &Json, payload: &'a Json) -> R<&'a str> {
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
    Ok(vct)
}

/// Refuses an `iss` that is not a URI subjectAltName of the signer certificate
/// (DER `leaf_der`): the issuer is who the certificate says, not who the JWT says.
fn iss_is_the_signers(run: &mut Run, payload: &Json, leaf_der: &[u8]) -> R<()> {
    let iss = payload["iss"].as_str().unwrap_or_default();
    let sans = uri_sans(leaf_der)?;
    if !sans.iter().any(|s| s == iss) {
        return fail(
            Reason::IssuerMismatch,
            format!("iss `{iss}` is not a URI SAN of the signer certificate ({sans:?})"),
        );
    }
    run.pass("issuer", format!("iss `{iss}` is the signer's URI SAN"));
    Ok(())
}

/// Checks the issuer JWT's signature with the x5c signer's key, and that a `kid`,
/// if any, is that key's thumbprint.
fn issuer_signature(
    run: &mut Run,
    header: &Json,
    jws: &str,
    alg: Alg,
    leaf: &openssl::x509::X509,
) -> R<()> {
    let key = PublicKey::from_x509(leaf).map_err(malformed)?;
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
    if !jws_signature(jws, alg, &key)? {
        return fail(
            Reason::BadSignature,
            "the issuer JWT's signature does not verify with its signer's key",
        );
    }
    run.pass("signature", format!("the issuer JWT: {}", alg.jose()));
    Ok(())
}

/// Every disclosure, its digest among the signed `_sd` (by SHA-256, the only
/// `_sd_alg` taken), each disclosed once; the disclosed attributes in order.
fn disclosures_signed(
    run: &mut Run,
    payload: &Json,
    disclosures: &[&str],
) -> R<Vec<(String, Json)>> {
    if payload.get("_sd_alg").is_some_and(|a| a != "sha-256") {
        return fail(Reason::Malformed, "_sd_alg is not sha-256");
    }
    let sd: Vec<&str> = payload["_sd"]
        .as_array()
        .map(|a| a.iter().filter_map(Json::as_str).collect())
        .unwrap_or_default();
    let mut disclosed: Vec<(String, Json)> = Vec::new();
    let mut seen = std::collections::HashSet::new();
    for d in disclosures {
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
    Ok(disclosed)
}

/// Checks the key binding JWT `kb` of the presentation `text`: present, signed by
/// the credential's holder key (cnf), over this presentation (sd_hash), for this
/// verifier and nonce, and made within the accepted age.
fn key_binding(run: &mut Run, text: &str, payload: &Json, kb: Option<&str>) -> R<()> {
    let Some(kb) = kb else {
        return fail(
            Reason::HolderBinding,
            "the presentation has no key binding JWT",
        );
    };
    let cnf = PublicKey::from_jwk(&payload["cnf"]["jwk"])
        .map_err(|e| Fail(Reason::Malformed, format!("cnf: {}", e.detail)))?;
    let kb_payload = kb_signed_by_holder(kb, &cnf)?;
    let presented = &text.trim_end()[..text.trim_end().len() - kb.len()];
    if kb_payload["sd_hash"].as_str() != Some(&sdjwt::digest(presented)) {
        return fail(
            Reason::HolderBinding,
            "the key binding JWT's sd_hash does not cover this presentation",
        );
    }
    kb_for_this_verifier_now(run, &kb_payload)?;
    run.pass(
        "holder-binding",
        format!(
            "key binding JWT signed by cnf key {} for verifier `{}` and the nonce",
            cnf.thumbprint(),
            run.policy.verifier
        ),
    );
    Ok(())
}

/// The key binding JWT's payload, refused unless it is a three-part JWS of the
/// key binding typ, signed by the holder key `cnf`.
fn kb_signed_by_holder(kb: &str, cnf: &PublicKey) -> R<Json> {
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
    if !jws_signature(kb, kb_alg, cnf)? {
        return fail(
            Reason::HolderBinding,
            "the key binding JWT is not signed by the credential's holder key (cnf)",
        );
    }
    Ok(kb_payload)
}

/// Refuses a key binding JWT for another verifier (`aud`) or nonce, or made
/// outside the accepted age (a replay, or a presentation made ahead).
fn kb_for_this_verifier_now(run: &Run, kb_payload: &Json) -> R<()> {
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
    let iat = int_claim(kb_payload, "iat", "the key binding JWT")?;
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
    Ok(())
}

/// The SD-JWT's status list reference: its URI and the credential's index.
fn status_ref(payload: &Json) -> R<(String, u64)> {
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
    Ok((uri, idx))
}

/// The certificates of an x5c header (standard base64 DER, leaf first).
pub(super) fn jws_chain(header: &Json, what: &str) -> R<Vec<Vec<u8>>> {
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

/// A JWS header's alg: ES256 or ES384, nothing else.
pub(super) fn jws_alg(header: &Json, what: &str) -> R<Alg> {
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
pub(super) fn jws_signature(jws: &str, alg: Alg, key: &PublicKey) -> R<bool> {
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

/// A numeric claim, or a refusal naming it.
pub(super) fn int_claim(payload: &Json, name: &str, what: &str) -> R<i64> {
    payload[name]
        .as_i64()
        .ok_or_else(|| Fail(Reason::Malformed, format!("{what} has no numeric `{name}`")))
}
