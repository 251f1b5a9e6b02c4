//! The mdoc (ISO/IEC 18013-5): a DeviceResponse of one document, its MSO signed
//! by the credential signer (COSE_Sign1 with x5chain), every disclosed item
//! against the MSO's digests, and the device signature over this verifier's and
//! nonce's session transcript.

use coset::cbor::value::Value as Cbor;
use coset::{AsCborValue, CoseSign1};
use openssl::x509::X509;
use serde_json::Value as Json;

use super::status_list::check_status;
use super::x509::{signer_status, validate_chain};
use super::{check_validity, fail, malformed, Fail, Reason, Run, R};
use crate::keys::{Alg, PublicKey};
use crate::mdoc::{self, get};
use crate::model::{self, DOC_TYPE};

/// Verifies an mdoc DeviceResponse: one document of the official ID's docType;
/// its MSO's signer chained, of the mdlDS purpose and good by OCSP; the MSO's
/// signature; the MSO for this docType, by SHA-256; every disclosed item against
/// its digest; validity; the device signature for this verifier and nonce; and
/// the credential's status list entry. The disclosed attributes, in order.
pub(super) fn verify_mdoc(run: &mut Run, bytes: &[u8]) -> R<(String, Vec<(String, Json)>)> {
    let response = mdoc::decode(bytes, "the DeviceResponse").map_err(malformed)?;
    let document = the_one_document(&response)?;
    let doc_type = official_id_doc_type(document)?;
    let (issuer_signed, auth) = issuer_auth(document)?;

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
    mso_is_for(&mso, &doc_type)?;
    let (from, until) = mso_validity(&mso)?;

    // Every disclosed item against its signed digest.
    let disclosed = disclosed_items(run, &mso, issuer_signed)?;
    check_validity(run, from, until)?;

    // Bound to the holder's device and to this verifier's nonce.
    let device_key = mso_device_key(&mso)?;
    device_signed(run, document, &doc_type, &device_key)?;

    let (uri, idx) = mso_status_ref(&mso)?;
    check_status(run, &uri, idx, true, &issuer)?;
    Ok((doc_type, disclosed))
}

/// The DeviceResponse's documents, refused unless there is exactly one: one is
/// verified at a time.
fn the_one_document(response: &Cbor) -> R<&Cbor> {
    let Some(Cbor::Array(documents)) = get(response, "documents") else {
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
    Ok(document)
}

/// The document's docType, refused unless it is the mobile public-official ID's.
fn official_id_doc_type(document: &Cbor) -> R<String> {
    let doc_type = text_of(get(document, "docType"), "the document's docType")?.to_string();
    if doc_type != DOC_TYPE {
        return fail(
            Reason::WrongType,
            format!("docType `{doc_type}` is not `{DOC_TYPE}`"),
        );
    }
    Ok(doc_type)
}

/// The document's issuerSigned and its issuerAuth as a COSE_Sign1 (unverified).
fn issuer_auth(document: &Cbor) -> R<(&Cbor, CoseSign1)> {
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
    Ok((issuer_signed, auth))
}

/// Refuses an MSO for another docType than the document's, or whose digests are
/// not SHA-256.
fn mso_is_for(mso: &Cbor, doc_type: &str) -> R<()> {
    let mso_type = text_of(get(mso, "docType"), "the MSO's docType")?;
    if mso_type != doc_type {
        return fail(
            Reason::WrongType,
            format!("the MSO is for `{mso_type}`, the document says `{doc_type}`"),
        );
    }
    if text_of(get(mso, "digestAlgorithm"), "digestAlgorithm")? != "SHA-256" {
        return fail(
            Reason::Malformed,
            "the MSO's digestAlgorithm is not SHA-256",
        );
    }
    Ok(())
}

/// The MSO's validFrom and validUntil, Unix seconds.
fn mso_validity(mso: &Cbor) -> R<(i64, i64)> {
    let validity = get(mso, "validityInfo")
        .ok_or_else(|| Fail(Reason::Malformed, "the MSO has no validityInfo".into()))?;
    let from = tdate(get(validity, "validFrom"), "validFrom")?;
    let until = tdate(get(validity, "validUntil"), "validUntil")?;
    Ok((from, until))
}

/// Every item of issuerSigned's nameSpaces checked against the digest the MSO
/// signed for it under its digestID, each attribute disclosed at most once; the
/// disclosed attributes in the order presented.
fn disclosed_items(run: &mut Run, mso: &Cbor, issuer_signed: &Cbor) -> R<Vec<(String, Json)>> {
    let digests = get(mso, "valueDigests")
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
            let (id, item) = item_matching_its_digest(tagged, signed, ns_name)?;
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
    Ok(disclosed)
}

/// An IssuerSignedItem (`#6.24` as it travels), decoded, whose SHA-256 over its
/// tagged bytes is the digest `signed` (its namespace's digests in the MSO) holds
/// under its digestID; its elementIdentifier and the item.
fn item_matching_its_digest(
    tagged: &Cbor,
    signed: Option<&Cbor>,
    ns_name: &str,
) -> R<(String, Cbor)> {
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
    Ok((id, item))
}

/// The holder's device key, as the MSO signed it.
fn mso_device_key(mso: &Cbor) -> R<PublicKey> {
    let device_key = get(mso, "deviceKeyInfo")
        .and_then(|d| get(d, "deviceKey"))
        .cloned()
        .ok_or_else(|| Fail(Reason::Malformed, "the MSO has no deviceKey".into()))?;
    coset::CoseKey::from_cbor_value(device_key)
        .map_err(|e| Fail(Reason::Malformed, format!("deviceKey: {e}")))
        .and_then(|k| PublicKey::from_cose_key(&k).map_err(malformed))
}

/// Checks the document's deviceSigned: a detached device signature (no MAC) by
/// the MSO's device key over the DeviceAuthentication of this verifier's and
/// nonce's session transcript, so the presentation is the holder's, for this
/// verifier, now.
fn device_signed(run: &mut Run, document: &Cbor, doc_type: &str, device_key: &PublicKey) -> R<()> {
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
    let detached = mdoc::device_authentication_bytes(&transcript, doc_type, device_ns);
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
    Ok(())
}

/// The MSO's status list reference: its URI and the credential's index.
fn mso_status_ref(mso: &Cbor) -> R<(String, u64)> {
    let status_ref = get(mso, "status")
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
    Ok((uri, idx))
}

/// A text value, or a refusal naming `what`.
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
pub(super) fn x5chain(sign1: &CoseSign1, what: &str) -> R<Vec<Vec<u8>>> {
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

/// The protected alg of a COSE_Sign1: ES256 or ES384, nothing else.
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
pub(super) fn cose_signature(run: &mut Run, sign1: &CoseSign1, leaf: &X509, what: &str) -> R<()> {
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
