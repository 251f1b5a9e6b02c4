//! The ISO/IEC 18013-5 mdoc: issuer-signed items, each with a random salt, and the
//! Mobile Security Object that holds their digests, signed as COSE_Sign1 with the
//! signer's certificate chain in `x5chain`.
//!
//! ```text
//! IssuerSigned = { "nameSpaces": { ns: [ #6.24(bstr .cbor IssuerSignedItem) ] },
//!                  "issuerAuth": COSE_Sign1(payload = #6.24(bstr .cbor MSO)) }
//! IssuerSignedItem = { "digestID": uint, "random": bstr, "elementIdentifier": tstr,
//!                      "elementValue": any }
//! MSO = { "version", "digestAlgorithm", "valueDigests": { ns: { digestID: bstr } },
//!         "deviceKeyInfo": { "deviceKey": COSE_Key }, "docType",
//!         "validityInfo": { "signed", "validFrom", "validUntil" },
//!         "status": { "status_list": { "idx", "uri" } } }
//! ```
//!
//! The digest of an item is SHA-256 over its tagged bytes exactly as they travel, so
//! the items are kept as encoded and never re-encoded.

use coset::cbor::value::Value as Cbor;
use coset::{AsCborValue, CoseSign1, CoseSign1Builder, HeaderBuilder};
use gpki_pki::{Error, Result};

use crate::keys::{HolderKey, IssuerKey, PublicKey};
use crate::model::{OfficialId, StatusRef, Validity, Value, DOC_TYPE, NAMESPACE};

/// COSE header parameter x5chain (RFC 9360).
pub const X5CHAIN: i64 = 33;
/// Octets of random salt per item (ISO/IEC 18013-5 §9.1.2.5: at least 16).
const SALT: usize = 16;

pub(crate) fn encode(v: &Cbor) -> Vec<u8> {
    let mut out = Vec::new();
    // Writing to a Vec cannot fail.
    ciborium::into_writer(v, &mut out).expect("CBOR into a Vec");
    out
}

/// `#6.24(bstr .cbor v)`: an embedded CBOR data item.
pub(crate) fn tag24(encoded: Vec<u8>) -> Cbor {
    Cbor::Tag(24, Box::new(Cbor::Bytes(encoded)))
}

/// `tdate` (RFC 8949 tag 0) without fractional seconds, as ISO/IEC 18013-5 requires.
fn tdate(unix_seconds: i64) -> Cbor {
    Cbor::Tag(
        0,
        Box::new(Cbor::Text(gpki_pki::time::rfc3339(unix_seconds))),
    )
}

fn text(s: &str) -> Cbor {
    Cbor::Text(s.to_string())
}

fn element_value(v: &Value) -> Cbor {
    match v {
        Value::Text(t) => Cbor::Text(t.clone()),
        Value::Date(d) => Cbor::Tag(1004, Box::new(Cbor::Text(crate::model::format_date(*d)))),
        Value::Jpeg(b) => Cbor::Bytes(b.clone()),
    }
}

/// A random permutation of `0..n`, from OpenSSL's CSPRNG: digest IDs that say
/// nothing about which attribute an ID belongs to.
fn shuffled(n: usize) -> Result<Vec<u64>> {
    let mut ids: Vec<u64> = (0..n as u64).collect();
    let mut r = vec![0u8; 4 * n];
    openssl::rand::rand_bytes(&mut r).map_err(|e| Error::internal(format!("OpenSSL: {e}")))?;
    for i in (1..n).rev() {
        let x = u32::from_le_bytes([r[4 * i], r[4 * i + 1], r[4 * i + 2], r[4 * i + 3]]);
        ids.swap(i, x as usize % (i + 1));
    }
    Ok(ids)
}

/// Issues the ID as an mdoc to the holder's device key: the IssuerSigned structure
/// (CBOR) the wallet keeps.
pub fn issue(
    id: &OfficialId,
    device_key: &PublicKey,
    status: &StatusRef,
    validity: Validity,
    key: &IssuerKey,
) -> Result<Vec<u8>> {
    let claims = id.claims();
    let ids = shuffled(claims.len())?;
    let mut items = Vec::with_capacity(claims.len());
    let mut digests = Vec::with_capacity(claims.len());
    // Every item's salt from one draw: each call into the CSPRNG costs a lock and
    // a fork check, more than the bytes.
    let mut salts = vec![0u8; SALT * claims.len()];
    openssl::rand::rand_bytes(&mut salts).map_err(|e| Error::internal(format!("OpenSSL: {e}")))?;
    for (((name, value), digest_id), random) in claims.iter().zip(ids).zip(salts.chunks(SALT)) {
        let item = Cbor::Map(vec![
            (text("digestID"), Cbor::Integer(digest_id.into())),
            (text("random"), Cbor::Bytes(random.to_vec())),
            (text("elementIdentifier"), text(name)),
            (text("elementValue"), element_value(value)),
        ]);
        let tagged = tag24(encode(&item));
        digests.push((
            Cbor::Integer(digest_id.into()),
            Cbor::Bytes(openssl::sha::sha256(&encode(&tagged)).to_vec()),
        ));
        items.push(tagged);
    }
    let mso = Cbor::Map(vec![
        (text("version"), text("1.0")),
        (text("digestAlgorithm"), text("SHA-256")),
        (
            text("valueDigests"),
            Cbor::Map(vec![(text(NAMESPACE), Cbor::Map(digests))]),
        ),
        (
            text("deviceKeyInfo"),
            Cbor::Map(vec![(
                text("deviceKey"),
                device_key
                    .to_cose_key()
                    .to_cbor_value()
                    .map_err(|e| Error::internal(format!("COSE_Key: {e}")))?,
            )]),
        ),
        (text("docType"), text(DOC_TYPE)),
        (
            text("validityInfo"),
            Cbor::Map(vec![
                (text("signed"), tdate(validity.signed)),
                (text("validFrom"), tdate(validity.valid_from)),
                (text("validUntil"), tdate(validity.valid_until)),
            ]),
        ),
        (
            text("status"),
            Cbor::Map(vec![(
                text("status_list"),
                Cbor::Map(vec![
                    (text("idx"), Cbor::Integer(status.idx.into())),
                    (text("uri"), text(&status.uri)),
                ]),
            )]),
        ),
    ]);
    let issuer_auth = sign1(encode(&tag24(encode(&mso))), key)?;
    let issuer_signed = Cbor::Map(vec![
        (
            text("nameSpaces"),
            Cbor::Map(vec![(text(NAMESPACE), Cbor::Array(items))]),
        ),
        (
            text("issuerAuth"),
            issuer_auth
                .to_cbor_value()
                .map_err(|e| Error::internal(format!("COSE_Sign1: {e}")))?,
        ),
    ]);
    Ok(encode(&issuer_signed))
}

/// An untagged COSE_Sign1 over `payload`: alg protected, the chain in x5chain.
pub(crate) fn sign1(payload: Vec<u8>, key: &IssuerKey) -> Result<CoseSign1> {
    let mut s = CoseSign1Builder::new()
        .protected(HeaderBuilder::new().algorithm(key.alg().cose()).build())
        .unprotected(
            HeaderBuilder::new()
                .value(X5CHAIN, x5chain(key.chain()))
                .build(),
        )
        .payload(payload)
        .build();
    s.signature = key.sign(&s.tbs_data(b""))?;
    Ok(s)
}

/// x5chain: one certificate as a byte string, more as an array (RFC 9360 §2).
pub(crate) fn x5chain(chain: &[Vec<u8>]) -> Cbor {
    match chain {
        [one] => Cbor::Bytes(one.clone()),
        many => Cbor::Array(many.iter().map(|c| Cbor::Bytes(c.clone())).collect()),
    }
}

/// The largest mdoc structure gpki decodes.
pub const MAX_MDOC: usize = 1024 * 1024;

pub(crate) fn decode(bytes: &[u8], what: &str) -> Result<Cbor> {
    decode_bounded(bytes, MAX_MDOC, what)
}

/// [`decode`] of at most `max` bytes.
pub(crate) fn decode_bounded(bytes: &[u8], max: usize, what: &str) -> Result<Cbor> {
    if bytes.len() > max {
        return Err(Error::malformed(format!(
            "{what} is {} bytes; at most {max}",
            bytes.len()
        )));
    }
    let mut reader = bytes;
    let v: Cbor = ciborium::de::from_reader_with_recursion_limit(&mut reader, 32)
        .map_err(|e| Error::malformed(format!("truncated or malformed CBOR in {what}: {e}")))?;
    if !reader.is_empty() {
        return Err(Error::malformed(format!(
            "malformed CBOR in {what}: {} bytes after its data item",
            reader.len()
        )));
    }
    Ok(v)
}

/// Map lookup by text key.
pub(crate) fn get<'a>(map: &'a Cbor, key: &str) -> Option<&'a Cbor> {
    match map {
        Cbor::Map(entries) => entries
            .iter()
            .find(|(k, _)| matches!(k, Cbor::Text(t) if t == key))
            .map(|(_, v)| v),
        _ => None,
    }
}

pub(crate) fn need<'a>(map: &'a Cbor, key: &str, what: &str) -> Result<&'a Cbor> {
    get(map, key).ok_or_else(|| Error::malformed(format!("{what} has no `{key}`")))
}

/// The embedded item of `#6.24(bstr)`, decoded.
pub(crate) fn untag24(v: &Cbor, what: &str) -> Result<Cbor> {
    match v {
        Cbor::Tag(24, inner) => match inner.as_ref() {
            Cbor::Bytes(b) => decode(b, what),
            _ => Err(Error::malformed(format!(
                "{what}: tag 24 holds no byte string"
            ))),
        },
        _ => Err(Error::malformed(format!("{what} is not #6.24(bstr .cbor)"))),
    }
}

/// The session transcript of a QR presentation: ISO/IEC 18013-5's
/// `[DeviceEngagementBytes, EReaderKeyBytes, Handover]` with no engagement and no
/// reader key (the holder shows a QR code, nothing is exchanged before), and
/// OpenID4VP 1.0's handover (Appendix B.2.6.1):
/// `["OpenID4VPHandover", SHA-256(CBOR [clientId, nonce, jwkThumbprint, responseUri])]`
/// with the verifier's identifier as clientId, no response encryption key (null),
/// and, since a QR presentation is handed over rather than posted, the verifier's
/// identifier again as responseUri.
pub fn session_transcript(verifier: &str, nonce: &str) -> Cbor {
    let info = encode(&Cbor::Array(vec![
        text(verifier),
        text(nonce),
        Cbor::Null,
        text(verifier),
    ]));
    Cbor::Array(vec![
        Cbor::Null,
        Cbor::Null,
        Cbor::Array(vec![
            text("OpenID4VPHandover"),
            Cbor::Bytes(openssl::sha::sha256(&info).to_vec()),
        ]),
    ])
}

/// `#6.24(bstr .cbor DeviceAuthentication)`, what the device signs.
pub fn device_authentication_bytes(transcript: &Cbor, doc_type: &str, device_ns: &Cbor) -> Vec<u8> {
    encode(&tag24(encode(&Cbor::Array(vec![
        text("DeviceAuthentication"),
        transcript.clone(),
        text(doc_type),
        device_ns.clone(),
    ]))))
}

/// The MSO of an IssuerSigned's issuerAuth, unverified.
pub(crate) fn mso_of(issuer_auth: &CoseSign1) -> Result<Cbor> {
    let payload = issuer_auth
        .payload
        .as_deref()
        .ok_or_else(|| Error::malformed("issuerAuth has no payload"))?;
    untag24(&decode(payload, "the MSO")?, "the MSO")
}

/// A DeviceResponse (ISO/IEC 18013-5 §8.3.2.1.2.2) that discloses only `disclose` of
/// the mdoc, signed by the holder's device key over the QR session transcript.
pub fn present(
    issuer_signed: &[u8],
    disclose: &[String],
    holder: &HolderKey,
    verifier: &str,
    nonce: &str,
) -> Result<Vec<u8>> {
    let is = decode(issuer_signed, "the mdoc")?;
    let auth_value = need(&is, "issuerAuth", "IssuerSigned")?.clone();
    let auth = CoseSign1::from_cbor_value(auth_value.clone())
        .map_err(|e| Error::malformed(format!("issuerAuth is not a COSE_Sign1: {e}")))?;
    let mso = mso_of(&auth)?;
    let doc_type = match need(&mso, "docType", "the MSO")? {
        Cbor::Text(t) => t.clone(),
        _ => return Err(Error::malformed("the MSO's docType is not text")),
    };
    let device_key = coset::CoseKey::from_cbor_value(
        need(
            need(&mso, "deviceKeyInfo", "the MSO")?,
            "deviceKey",
            "deviceKeyInfo",
        )?
        .clone(),
    )
    .map_err(|e| Error::malformed(format!("deviceKey is not a COSE_Key: {e}")))?;
    if &PublicKey::from_cose_key(&device_key)? != holder.public() {
        return Err(Error::policy("the holder key is not the mdoc's device key"));
    }
    let Cbor::Map(namespaces) = need(&is, "nameSpaces", "IssuerSigned")? else {
        return Err(Error::malformed("IssuerSigned nameSpaces is not a map"));
    };
    let mut kept_ns = Vec::new();
    let mut found = vec![false; disclose.len()];
    for (ns, items) in namespaces {
        let Cbor::Array(items) = items else {
            return Err(Error::malformed("a namespace's items are not an array"));
        };
        let mut kept = Vec::new();
        for tagged in items {
            let item = untag24(tagged, "an IssuerSignedItem")?;
            let Some(Cbor::Text(id)) = get(&item, "elementIdentifier") else {
                return Err(Error::malformed(
                    "an IssuerSignedItem has no elementIdentifier",
                ));
            };
            let mut wanted = false;
            for (i, d) in disclose.iter().enumerate() {
                if d == id {
                    found[i] = true;
                    wanted = true;
                }
            }
            if wanted {
                kept.push(tagged.clone());
            }
        }
        if !kept.is_empty() {
            kept_ns.push((ns.clone(), Cbor::Array(kept)));
        }
    }
    if let Some(i) = found.iter().position(|f| !f) {
        return Err(Error::malformed(format!(
            "attribute `{}` is not in the credential",
            disclose[i]
        )));
    }
    let device_ns = tag24(encode(&Cbor::Map(vec![])));
    let transcript = session_transcript(verifier, nonce);
    let detached = device_authentication_bytes(&transcript, &doc_type, &device_ns);
    let mut device_sig = CoseSign1Builder::new()
        .protected(HeaderBuilder::new().algorithm(holder.alg().cose()).build())
        .build();
    device_sig.signature = holder.sign(&device_sig.tbs_detached_data(&detached, b""))?;
    let document = Cbor::Map(vec![
        (text("docType"), text(&doc_type)),
        (
            text("issuerSigned"),
            Cbor::Map(vec![
                (text("nameSpaces"), Cbor::Map(kept_ns)),
                (text("issuerAuth"), auth_value),
            ]),
        ),
        (
            text("deviceSigned"),
            Cbor::Map(vec![
                (text("nameSpaces"), device_ns),
                (
                    text("deviceAuth"),
                    Cbor::Map(vec![(
                        text("deviceSignature"),
                        device_sig
                            .to_cbor_value()
                            .map_err(|e| Error::internal(format!("COSE_Sign1: {e}")))?,
                    )]),
                ),
            ]),
        ),
    ]);
    Ok(encode(&Cbor::Map(vec![
        (text("version"), text("1.0")),
        (text("documents"), Cbor::Array(vec![document])),
        (text("status"), Cbor::Integer(0.into())),
    ])))
}
