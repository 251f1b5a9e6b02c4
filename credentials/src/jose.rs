//! JWS compact serialization through josekit, signed by gpki's own key (the same
//! signer the CA uses: OpenSSL's direct ECDSA, not the EVP layer's per-call set-up).

use std::sync::Arc;

use gpki_pki::{Error, Result, Signer};
use josekit::jws::alg::ecdsa::EcdsaJwsAlgorithm;
use josekit::jws::{JwsAlgorithm, JwsHeader, JwsSigner};
use josekit::JoseError;

use crate::keys::{sign_raw, Alg, HolderKey, IssuerKey};

/// A gpki signer as josekit's.
#[derive(Clone)]
struct KeySigner {
    signer: Arc<dyn Signer>,
    alg: Alg,
    jws_alg: EcdsaJwsAlgorithm,
}

impl std::fmt::Debug for KeySigner {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("KeySigner")
            .field("alg", &self.alg)
            .finish_non_exhaustive()
    }
}

impl JwsSigner for KeySigner {
    fn algorithm(&self) -> &dyn JwsAlgorithm {
        &self.jws_alg
    }

    fn key_id(&self) -> Option<&str> {
        None
    }

    fn signature_len(&self) -> usize {
        2 * self.alg.field_len()
    }

    fn sign(&self, message: &[u8]) -> std::result::Result<Vec<u8>, JoseError> {
        sign_raw(self.signer.as_ref(), self.alg, message)
            .map_err(|e| JoseError::InvalidSignature(anyhow::anyhow!("{e}")))
    }

    fn box_clone(&self) -> Box<dyn JwsSigner> {
        Box::new(self.clone())
    }
}

fn algorithm(alg: Alg) -> EcdsaJwsAlgorithm {
    match alg {
        Alg::Es256 => EcdsaJwsAlgorithm::Es256,
        Alg::Es384 => EcdsaJwsAlgorithm::Es384,
    }
}

/// A compact JWS of `payload` with header `typ`, the key's chain in `x5c` and its
/// thumbprint as `kid` (what selects it in the issuer's JWKS and DID document).
pub fn sign(payload: &serde_json::Value, typ: &str, key: &IssuerKey) -> Result<String> {
    let mut header = JwsHeader::new();
    header.set_token_type(typ);
    header.set_key_id(key.kid());
    header.set_x509_certificate_chain(&key.chain().to_vec());
    sign_with(payload, &header, key.signer().clone(), key.alg())
}

/// A compact JWS of `payload` by the holder's key, header `typ` (a key binding JWT).
pub fn sign_holder(payload: &serde_json::Value, typ: &str, key: &HolderKey) -> Result<String> {
    let mut header = JwsHeader::new();
    header.set_token_type(typ);
    sign_with(payload, &header, key.signer().clone(), key.alg())
}

fn sign_with(
    payload: &serde_json::Value,
    header: &JwsHeader,
    signer: Arc<dyn Signer>,
    alg: Alg,
) -> Result<String> {
    let bytes =
        serde_json::to_vec(payload).map_err(|e| Error::internal(format!("JSON payload: {e}")))?;
    josekit::jws::serialize_compact(
        &bytes,
        header,
        &KeySigner {
            signer,
            alg,
            jws_alg: algorithm(alg),
        },
    )
    .map_err(|e| Error::internal(format!("JWS: {e}")))
}
