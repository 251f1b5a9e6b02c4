//! The IETF SD-JWT VC (RFC 9901 SD-JWT, draft-ietf-oauth-sd-jwt-vc): one disclosure
//! per attribute, their digests in `_sd`, the holder's key in `cnf`, the signer's
//! chain in the `x5c` header.
//!
//! ```text
//! <issuer JWS>~<disclosure>~…~<disclosure>~          (as issued)
//! disclosure = base64url(JSON [salt, name, value]);  digest = base64url(SHA-256(disclosure))
//! ```

use gpki_pki::{Error, Result};
use serde_json::{json, Value as Json};

use crate::b64;
use crate::keys::{HolderKey, IssuerKey, PublicKey};
use crate::model::{OfficialId, StatusRef, Validity, VCT};

/// The SD-JWT VC media type's `typ` (draft-ietf-oauth-sd-jwt-vc §3.2.1).
pub const TYP: &str = "dc+sd-jwt";
/// Octets of random salt per disclosure (RFC 9901 §4.2.1 recommends 128 bits).
const SALT: usize = 16;

/// One disclosure with its salt: its encoded form and its digest.
fn disclosure(salt: &[u8], name: &str, value: Json) -> Result<(String, String)> {
    let array = json!([b64::encode(salt), name, value]);
    let encoded = b64::encode(array.to_string().as_bytes());
    let digest = digest(&encoded);
    Ok((encoded, digest))
}

/// base64url(SHA-256(ASCII text)): a disclosure's digest, and `sd_hash`.
pub fn digest(ascii: &str) -> String {
    b64::encode(&openssl::sha::sha256(ascii.as_bytes()))
}

/// Issues the ID as an SD-JWT VC to the holder's key, by issuer `iss`: the SD-JWT
/// with every disclosure, as the wallet keeps it.
pub fn issue(
    id: &OfficialId,
    holder: &PublicKey,
    status: &StatusRef,
    validity: Validity,
    iss: &str,
    key: &IssuerKey,
) -> Result<String> {
    let mut disclosures = Vec::new();
    let mut digests = Vec::new();
    let claims = id.claims();
    // Every salt from one draw of the CSPRNG.
    let mut salts = vec![0u8; SALT * claims.len()];
    openssl::rand::rand_bytes(&mut salts).map_err(|e| Error::internal(format!("OpenSSL: {e}")))?;
    for ((name, value), salt) in claims.into_iter().zip(salts.chunks(SALT)) {
        let (d, h) = disclosure(salt, name, value.to_json())?;
        disclosures.push(d);
        digests.push(h);
    }
    // Sorted, so the order of the digests says nothing about which claim is which
    // (RFC 9901 §4.2.4.1).
    digests.sort();
    let payload = json!({
        "iss": iss,
        "iat": validity.signed,
        "nbf": validity.valid_from,
        "exp": validity.valid_until,
        "vct": VCT,
        "cnf": { "jwk": holder.to_jwk() },
        "status": { "status_list": { "idx": status.idx, "uri": status.uri } },
        "_sd": digests,
        "_sd_alg": "sha-256",
    });
    let jws = crate::jose::sign(&payload, TYP, key)?;
    let mut out = jws;
    for d in &disclosures {
        out.push('~');
        out.push_str(d);
    }
    out.push('~');
    Ok(out)
}

/// The largest SD-JWT gpki reads.
pub const MAX_SD_JWT: usize = 1024 * 1024;
/// The key binding JWT's `typ` (RFC 9901 §4.3).
pub const KB_TYP: &str = "kb+jwt";

/// An SD-JWT split at its `~`s; nothing is verified yet.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Parts<'a> {
    pub jws: &'a str,
    pub disclosures: Vec<&'a str>,
    /// The key binding JWT, in a presentation.
    pub kb: Option<&'a str>,
}

pub fn split(text: &str) -> Result<Parts<'_>> {
    if text.len() > MAX_SD_JWT {
        return Err(Error::malformed(format!(
            "the SD-JWT is {} bytes; at most {MAX_SD_JWT}",
            text.len()
        )));
    }
    let mut parts: Vec<&str> = text.trim_end().split('~').collect();
    if parts.len() < 2 {
        return Err(Error::malformed(
            "malformed SD-JWT: no `~` after the issuer-signed JWT",
        ));
    }
    let last = parts.pop().expect("two or more");
    let kb = (!last.is_empty()).then_some(last);
    let jws = parts.remove(0);
    if jws.split('.').count() != 3 {
        return Err(Error::malformed(
            "malformed JWT: the issuer-signed part is not three base64url parts",
        ));
    }
    if parts.iter().any(|d| d.is_empty()) {
        return Err(Error::malformed("malformed SD-JWT: an empty disclosure"));
    }
    Ok(Parts {
        jws,
        disclosures: parts,
        kb,
    })
}

/// A JWS's header and payload as JSON, unverified.
pub fn unverified(jws: &str) -> Result<(Json, Json)> {
    let mut it = jws.split('.');
    let mut part = |what: &str| -> Result<Json> {
        let text = it
            .next()
            .ok_or_else(|| Error::malformed(format!("malformed JWT: no {what}")))?;
        let bytes = b64::decode(text).map_err(|e| e.context(format!("malformed JWT {what}")))?;
        serde_json::from_slice(&bytes)
            .map_err(|e| Error::malformed(format!("malformed JWT {what}: {e}")))
    };
    let header = part("header")?;
    let payload = part("payload")?;
    Ok((header, payload))
}

/// A disclosure's claim name and value (its salt is only hashed).
pub fn disclosure_claim(d: &str) -> Result<(String, Json)> {
    let bytes = b64::decode(d).map_err(|e| e.context("malformed disclosure"))?;
    let v: Json = serde_json::from_slice(&bytes)
        .map_err(|e| Error::malformed(format!("malformed disclosure: {e}")))?;
    match v.as_array().map(Vec::as_slice) {
        Some([Json::String(_salt), Json::String(name), value]) => Ok((name.clone(), value.clone())),
        _ => Err(Error::malformed(
            "malformed disclosure: not [salt, claim name, value]",
        )),
    }
}

/// A presentation of the SD-JWT VC that discloses only `disclose`, bound to the
/// holder's key and to the verifier (`aud`) and its `nonce` by a key binding JWT.
pub fn present(
    sd_jwt: &str,
    disclose: &[String],
    holder: &HolderKey,
    aud: &str,
    nonce: &str,
    iat: i64,
) -> Result<String> {
    let parts = split(sd_jwt)?;
    if parts.kb.is_some() {
        return Err(Error::malformed(
            "this is a presentation already (it ends with a key binding JWT), not an issued SD-JWT",
        ));
    }
    let (_, payload) = unverified(parts.jws)?;
    let cnf = PublicKey::from_jwk(&payload["cnf"]["jwk"]).map_err(|e| e.context("cnf"))?;
    if &cnf != holder.public() {
        return Err(Error::policy(
            "the holder key is not the key the credential was issued to (cnf)",
        ));
    }
    let mut out = format!("{}~", parts.jws);
    let mut seen = std::collections::HashSet::new();
    for want in disclose.iter().filter(|d| seen.insert(d.as_str())) {
        let mut found = false;
        for d in &parts.disclosures {
            if disclosure_claim(d)?.0 == *want {
                out.push_str(d);
                out.push('~');
                found = true;
            }
        }
        if !found {
            return Err(Error::malformed(format!(
                "attribute `{want}` is not in the credential"
            )));
        }
    }
    let kb = json!({ "iat": iat, "aud": aud, "nonce": nonce, "sd_hash": digest(&out) });
    out.push_str(&crate::jose::sign_holder(&kb, KB_TYP, holder)?);
    Ok(out)
}
