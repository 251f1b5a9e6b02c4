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

use crate::keys::{IssuerKey, PublicKey};
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
    for ((name, value), digest_id) in claims.iter().zip(ids) {
        let mut random = [0u8; SALT];
        openssl::rand::rand_bytes(&mut random)
            .map_err(|e| Error::internal(format!("OpenSSL: {e}")))?;
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
