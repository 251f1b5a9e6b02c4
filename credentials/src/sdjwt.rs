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
use crate::keys::{IssuerKey, PublicKey};
use crate::model::{OfficialId, StatusRef, Validity, VCT};

/// The SD-JWT VC media type's `typ` (draft-ietf-oauth-sd-jwt-vc §3.2.1).
pub const TYP: &str = "dc+sd-jwt";
/// Octets of random salt per disclosure (RFC 9901 §4.2.1 recommends 128 bits).
const SALT: usize = 16;

/// One disclosure: its encoded form and its digest.
fn disclosure(name: &str, value: Json) -> Result<(String, String)> {
    let mut salt = [0u8; SALT];
    openssl::rand::rand_bytes(&mut salt).map_err(|e| Error::internal(format!("OpenSSL: {e}")))?;
    let array = json!([b64::encode(&salt), name, value]);
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
    for (name, value) in id.claims() {
        let (d, h) = disclosure(name, value.to_json())?;
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
