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
    let body_start = start + begin.len();
    let end = text[body_start..].find(&end_marker).ok_or_else(|| {
        Error::malformed(format!("PEM block `{label}` is truncated (no END line)"))
    })?;
    // RFC 7468 §2 asks parsers to be lax: any line length (76 columns from
    // Python's base64.encodebytes and MIME tools, one long line from others), CR
    // or LF, spaces. The Base64 itself is strict: an alphabet letter out of place
    // or bad padding is refused by name.
    let body: String = text[body_start..body_start + end]
        .chars()
        .filter(|c| !c.is_ascii_whitespace())
        .collect();
    if body.contains(':') {
        return Err(Error::malformed(format!(
            "PEM block `{label}` has headers (RFC 1421 encryption?): expected plain Base64"
        )));
    }
    use base64::Engine;
    let der_bytes = base64::engine::general_purpose::STANDARD
        .decode(body.as_bytes())
        .map_err(|e| Error::malformed(format!("PEM block `{label}`: invalid Base64 ({e})")))?;
    if der_bytes.is_empty() {
        return Err(Error::malformed(format!("PEM block `{label}` is empty")));
    }
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

#[cfg(test)]
mod tests {
    use super::*;

    const DER: &[u8] = &[0x30, 0x03, 0x02, 0x01, 0x05];

    fn wrap(body: &str) -> String {
        format!("-----BEGIN CERTIFICATE REQUEST-----\n{body}\n-----END CERTIFICATE REQUEST-----\n")
    }

    /// Any line length and line ending reads (RFC 7468 §2: be lax); what is
    /// written stays 64 columns.
    #[test]
    fn any_line_length_reads() {
        let long: Vec<u8> = (0..300u32).map(|i| (i % 251) as u8).collect();
        use base64::Engine;
        let b64 = base64::engine::general_purpose::STANDARD.encode(&long);
        for width in [76, 64, 1, 1000] {
            let lines: Vec<&str> = b64
                .as_bytes()
                .chunks(width)
                .map(|c| std::str::from_utf8(c).unwrap())
                .collect();
            for eol in ["\n", "\r\n"] {
                let pem = wrap(&lines.join(eol));
                assert_eq!(decode(pem.as_bytes(), "CERTIFICATE REQUEST").unwrap(), long);
            }
        }
        assert!(encode("CERTIFICATE", DER).lines().all(|l| l.len() <= 64));
    }

    /// Bad Base64 is refused by name, as are headers and an empty block.
    #[test]
    fn bad_base64_is_named() {
        for (body, why) in [
            ("MAMCAQ*=", "invalid Base64"),
            ("MAMCAQU", "invalid Base64"),
            ("Proc-Type: 4,ENCRYPTED\n\nMAMCAQU=", "has headers"),
            ("", "is empty"),
        ] {
            let e = decode(wrap(body).as_bytes(), "CERTIFICATE REQUEST").unwrap_err();
            assert!(e.to_string().contains(why), "{body}: {e}");
        }
        // Markers that overlap (found by the fuzz corpus): an error, not a panic.
        for text in [
            "--ES-----BEGIN CERTIFICATE REQUEST-----END CERTIFICATE REQUEST-----",
            "-----BEGIN CERTIFICATE REQUEST-----",
            "-----BEGIN CERTIFICATE REQUEST----------END CERTIFICATE REQUEST-----",
        ] {
            assert!(
                decode(text.as_bytes(), "CERTIFICATE REQUEST").is_err(),
                "{text}"
            );
        }
        assert_eq!(
            decode(wrap("MAMCAQU=").as_bytes(), "CERTIFICATE REQUEST").unwrap(),
            DER
        );
    }
}
