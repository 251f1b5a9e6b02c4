//! SIGNED{ToBeSigned} assembly (RFC 5280 §4.1.1.3, §5.1.1.3): the DER of a
//! to-be-signed structure, the algorithm and the signature, in one SEQUENCE. Used
//! for certificates, CRLs and re-signing a recorded tbsCertificate, byte for byte.

use der::Encode;

use crate::error::Result;
use crate::signer::SignatureAlgorithm;

/// Appends one DER TLV: `tag`, the definite length of `content`, `content`.
pub fn push_tlv(out: &mut Vec<u8>, tag: u8, content: &[u8]) {
    out.push(tag);
    push_len(out, content.len());
    out.extend_from_slice(content);
}

/// Octets a DER header with a content of `len` octets takes.
pub fn header_len(len: usize) -> usize {
    if len < 0x80 {
        2
    } else {
        2 + (usize::BITS as usize / 8 - len.leading_zeros() as usize / 8)
    }
}

/// Appends a DER tag and length; the caller appends the `len` content octets.
pub fn push_header(out: &mut Vec<u8>, tag: u8, len: usize) {
    out.push(tag);
    push_len(out, len);
}

fn push_len(out: &mut Vec<u8>, len: usize) {
    if len < 0x80 {
        out.push(len as u8);
    } else {
        let bytes = len.to_be_bytes();
        let skip = bytes.iter().take_while(|b| **b == 0).count();
        out.push(0x80 | (bytes.len() - skip) as u8);
        out.extend_from_slice(&bytes[skip..]);
    }
}

/// SEQUENCE { tbs, AlgorithmIdentifier, BIT STRING signature }, in one allocation
/// (a CRL's tbs can be tens of megabytes). Crate-private: a certificate is signed
/// only through `cert::sign` (a [`Linted`](crate::cert::Linted)), a CRL through
/// `crl::sign` (a `TbsCertList`).
pub(crate) fn assemble(
    tbs_der: &[u8],
    algorithm: SignatureAlgorithm,
    signature: &[u8],
) -> Result<Vec<u8>> {
    let alg = algorithm.identifier().to_der()?;
    let bits_len = signature.len() + 1;
    let body_len = tbs_der.len() + alg.len() + header_len(bits_len) + bits_len;
    let mut out = Vec::with_capacity(header_len(body_len) + body_len);
    push_header(&mut out, 0x30, body_len);
    out.extend_from_slice(tbs_der);
    out.extend_from_slice(&alg);
    push_header(&mut out, 0x03, bits_len);
    out.push(0); // no unused bits
    out.extend_from_slice(signature);
    debug_assert_eq!(out.len(), out.capacity());
    Ok(out)
}

#[cfg(test)]
mod tests {
    #[test]
    fn header_lengths() {
        for len in [0usize, 1, 127, 128, 255, 256, 65_535, 65_536, 50_000_000] {
            let mut v = Vec::new();
            super::push_header(&mut v, 0x30, len);
            assert_eq!(v.len(), super::header_len(len), "{len}");
        }
    }
}
