//! base64url without padding (RFC 4648 §5), the encoding JOSE and SD-JWT use.

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use gpki_pki::{Error, Result};

pub fn encode(bytes: &[u8]) -> String {
    URL_SAFE_NO_PAD.encode(bytes)
}

/// Decodes base64url; padding and the standard alphabet are refused.
pub fn decode(text: &str) -> Result<Vec<u8>> {
    URL_SAFE_NO_PAD
        .decode(text)
        .map_err(|e| Error::malformed(format!("not base64url without padding: {e}")))
}
