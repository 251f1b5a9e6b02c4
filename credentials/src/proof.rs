//! The holder's proof of possession at issuance (OpenID4VCI 1.0 Appendix F.1, proof
//! type `jwt`): a JWS by the key the credential will be bound to, with that key in
//! its header (`jwk`), over the issuer's audience and the nonce the RA handed out.
//! The RA checks it before asking the CA, and the CA checks it again.

use gpki_pki::{Error, Result};
use serde_json::{json, Value as Json};

use crate::{b64, Alg, HolderKey, PublicKey};

/// The proof JWT's `typ`.
pub const TYP: &str = "openid4vci-proof+jwt";
/// How far a proof's `iat` may be from the checker's clock, in seconds.
pub const MAX_SKEW: i64 = 300;
/// The largest proof gpki reads.
pub const MAX_PROOF: usize = 8 * 1024;

/// A proof by `key` over `nonce` for `audience`, made at `iat`.
pub fn sign(key: &HolderKey, audience: &str, nonce: &str, iat: i64) -> Result<String> {
    let header = json!({ "typ": TYP, "alg": key.alg().jose(), "jwk": key.public().to_jwk() });
    let payload = json!({ "aud": audience, "iat": iat, "nonce": nonce });
    let input = format!(
        "{}.{}",
        b64::encode(&serde_json::to_vec(&header).map_err(|e| Error::internal(e.to_string()))?),
        b64::encode(&serde_json::to_vec(&payload).map_err(|e| Error::internal(e.to_string()))?)
    );
    let sig = key.sign(input.as_bytes())?;
    Ok(format!("{input}.{}", b64::encode(&sig)))
}

/// The holder key a proof proves, when it is a JWS of type [`TYP`] whose header key
/// signed it, for `audience`, over `nonce`, made within [`MAX_SKEW`] of `now`. Each
/// refusal names what is wrong.
pub fn verify(proof: &str, audience: &str, nonce: &str, now: i64) -> Result<PublicKey> {
    let bad = |why: String| Error::policy(format!("holder proof refused: {why}"));
    if proof.len() > MAX_PROOF {
        return Err(bad(format!("longer than {MAX_PROOF} bytes")));
    }
    let mut parts = proof.split('.');
    let (Some(h), Some(p), Some(s), None) =
        (parts.next(), parts.next(), parts.next(), parts.next())
    else {
        return Err(bad("not a compact JWS".into()));
    };
    let json = |seg: &str, what: &str| -> Result<Json> {
        let bytes = b64::decode(seg).map_err(|e| bad(format!("{what}: {}", e.detail)))?;
        let v: Json =
            serde_json::from_slice(&bytes).map_err(|e| bad(format!("{what} is not JSON: {e}")))?;
        if !v.is_object() {
            return Err(bad(format!("{what} is not a JSON object")));
        }
        Ok(v)
    };
    let header = json(h, "header")?;
    let payload = json(p, "payload")?;
    if header["typ"] != TYP {
        return Err(bad(format!("typ is {}, not {TYP}", header["typ"])));
    }
    let alg = header["alg"]
        .as_str()
        .and_then(Alg::from_jose)
        .ok_or_else(|| bad("alg is not ES256 or ES384".into()))?;
    if header.get("x5c").is_some() || header.get("kid").is_some() {
        return Err(bad("the key must be given as jwk alone".into()));
    }
    let key = PublicKey::from_jwk(&header["jwk"]).map_err(|e| bad(format!("jwk: {}", e.detail)))?;
    let sig = b64::decode(s).map_err(|e| bad(format!("signature: {}", e.detail)))?;
    let input = &proof[..h.len() + 1 + p.len()];
    if !key.verify(alg, input.as_bytes(), &sig)? {
        return Err(bad("the signature does not verify with its jwk".into()));
    }
    if payload["aud"].as_str() != Some(audience) {
        return Err(bad(format!("aud is {}, not {audience}", payload["aud"])));
    }
    let given = payload["nonce"].as_str().unwrap_or_default();
    if given.len() != nonce.len() || !openssl::memcmp::eq(given.as_bytes(), nonce.as_bytes()) {
        return Err(bad("nonce is not the one this offer handed out".into()));
    }
    let iat = payload["iat"]
        .as_i64()
        .ok_or_else(|| bad("no numeric iat".into()))?;
    if iat
        .checked_sub(now)
        .is_none_or(|d| d.unsigned_abs() > MAX_SKEW as u64)
    {
        return Err(bad(format!(
            "iat {iat} is more than {MAX_SKEW}s from now ({now})"
        )));
    }
    Ok(key)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::Arc;

    fn holder() -> HolderKey {
        let key = gpki_pki::SoftwareKey::generate(gpki_pki::KeyType::EcP256).unwrap();
        HolderKey::new(Arc::new(key)).unwrap()
    }

    #[test]
    fn a_proof_verifies_and_every_wrong_part_is_refused_by_name() {
        let k = holder();
        let now = 1_800_000_000;
        let good = sign(&k, "https://id.gpki.go.kr", "n-1", now).unwrap();
        let key = verify(&good, "https://id.gpki.go.kr", "n-1", now + 10).unwrap();
        assert_eq!(key.thumbprint(), k.public().thumbprint());
        for (proof, aud, nonce, at, why) in [
            (good.clone(), "https://other", "n-1", now, "aud"),
            (good.clone(), "https://id.gpki.go.kr", "n-2", now, "nonce"),
            (
                good.clone(),
                "https://id.gpki.go.kr",
                "n-1",
                now + 301,
                "iat",
            ),
            (
                format!("{good}x"),
                "https://id.gpki.go.kr",
                "n-1",
                now,
                "signature",
            ),
            (
                "a.b".to_string(),
                "https://id.gpki.go.kr",
                "n-1",
                now,
                "compact",
            ),
        ] {
            let e = verify(&proof, aud, nonce, at).unwrap_err();
            assert!(e.detail.contains(why), "{why}: {}", e.detail);
        }
        // An iat that overflows the difference is refused, not wrapped.
        let far = sign(&k, "https://id.gpki.go.kr", "n-1", i64::MIN + 10).unwrap();
        let e = verify(&far, "https://id.gpki.go.kr", "n-1", now).unwrap_err();
        assert!(e.detail.contains("iat"), "{}", e.detail);
        // Signed by another key than the header's jwk.
        let other = holder();
        let forged = sign(&other, "https://id.gpki.go.kr", "n-1", now).unwrap();
        let (h, _) = good.split_once('.').unwrap();
        let (_, rest) = forged.split_once('.').unwrap();
        let e = verify(&format!("{h}.{rest}"), "https://id.gpki.go.kr", "n-1", now).unwrap_err();
        assert!(e.detail.contains("does not verify"), "{}", e.detail);
    }
}
