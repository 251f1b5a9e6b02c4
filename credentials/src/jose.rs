//! JWS compact serialization through josekit, signed by gpki's own key (the same
//! signer the CA uses: OpenSSL's direct ECDSA, not the EVP layer's per-call set-up).

use gpki_pki::{Error, Result};
use josekit::jws::alg::ecdsa::EcdsaJwsAlgorithm;
use josekit::jws::{JwsAlgorithm, JwsHeader, JwsSigner};
use josekit::JoseError;

use crate::keys::{Alg, IssuerKey};

/// An [`IssuerKey`] as josekit's signer.
#[derive(Clone)]
struct KeySigner {
    key: IssuerKey,
    alg: EcdsaJwsAlgorithm,
}

impl std::fmt::Debug for KeySigner {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("KeySigner").field("alg", &self.alg).finish()
    }
}

impl JwsSigner for KeySigner {
    fn algorithm(&self) -> &dyn JwsAlgorithm {
        &self.alg
    }

    fn key_id(&self) -> Option<&str> {
        None
    }

    fn signature_len(&self) -> usize {
        2 * self.key.alg().field_len()
    }

    fn sign(&self, message: &[u8]) -> std::result::Result<Vec<u8>, JoseError> {
        self.key
            .sign(message)
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

/// A compact JWS of `payload` with header `typ` and the key's chain in `x5c`.
pub fn sign(payload: &serde_json::Value, typ: &str, key: &IssuerKey) -> Result<String> {
    let mut header = JwsHeader::new();
    header.set_token_type(typ);
    header.set_x509_certificate_chain(&key.chain().to_vec());
    let bytes =
        serde_json::to_vec(payload).map_err(|e| Error::internal(format!("JSON payload: {e}")))?;
    josekit::jws::serialize_compact(
        &bytes,
        &header,
        &KeySigner {
            key: key.clone(),
            alg: algorithm(key.alg()),
        },
    )
    .map_err(|e| Error::internal(format!("JWS: {e}")))
}
