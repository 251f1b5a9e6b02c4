//! PEM in and out. Inputs may be PEM or raw DER; the label is checked so a key file
//! handed in where a CSR belongs is refused by name.

use crate::error::{Error, Result};

/// Encodes DER as PEM with `label`, 64-column lines and a final newline.
pub fn encode(label: &str, der_bytes: &[u8]) -> String {
    der::pem::encode_string(label, der::pem::LineEnding::LF, der_bytes)
        .expect("PEM encoding of bytes cannot fail")
}

/// Decodes one PEM block with `label` (the first such block when several are present).
pub fn decode(input: &[u8], label: &str) -> Result<Vec<u8>> {
    let text = std::str::from_utf8(input).map_err(|_| Error::malformed("PEM is not UTF-8"))?;
    let begin = format!("-----BEGIN {label}-----");
    let start = text
        .find(&begin)
        .ok_or_else(|| Error::malformed(format!("no `{begin}` block found")))?;
    let end_marker = format!("-----END {label}-----");
    let end = text[start..].find(&end_marker).ok_or_else(|| {
        Error::malformed(format!("PEM block `{label}` is truncated (no END line)"))
    })?;
    let block = &text[start..start + end + end_marker.len()];
    let (found, der_bytes) = der::pem::decode_vec(block.as_bytes())
        .map_err(|e| Error::malformed(format!("PEM block `{label}`: {e}")))?;
    debug_assert_eq!(found, label);
    Ok(der_bytes)
}

/// Accepts PEM with one of `labels` or raw DER (anything starting with a SEQUENCE tag).
pub fn decode_pem_or_der(input: &[u8], labels: &[&str]) -> Result<Vec<u8>> {
    if input.first() == Some(&0x30) {
        return Ok(input.to_vec());
    }
    let text = String::from_utf8_lossy(input);
    for label in labels {
        if text.contains(&format!("-----BEGIN {label}-----")) {
            return decode(input, label);
        }
    }
    if let Some(other) = text.find("-----BEGIN ").map(|i| {
        text[i + 11..]
            .split("-----")
            .next()
            .unwrap_or("")
            .to_string()
    }) {
        return Err(Error::malformed(format!(
            "expected PEM {} but found `{other}`",
            labels.join(" or ")
        )));
    }
    Err(Error::malformed(format!(
        "input is neither DER nor PEM {}",
        labels.join(" or ")
    )))
}

/// Decodes every PEM block with `label`, in order (a certificate chain file).
pub fn decode_all(input: &[u8], label: &str) -> Result<Vec<Vec<u8>>> {
    let text = std::str::from_utf8(input).map_err(|_| Error::malformed("PEM is not UTF-8"))?;
    let begin = format!("-----BEGIN {label}-----");
    let mut out = Vec::new();
    let mut rest = text;
    while let Some(i) = rest.find(&begin) {
        let block = &rest[i..];
        out.push(decode(block.as_bytes(), label)?);
        rest = &block[begin.len()..];
    }
    Ok(out)
}
