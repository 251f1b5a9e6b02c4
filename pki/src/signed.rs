//! SIGNED{ToBeSigned} assembly (RFC 5280 §4.1.1.3, §5.1.1.3): the DER of a
//! to-be-signed structure, the algorithm and the signature, in one SEQUENCE. Used
//! for certificates, CRLs and re-signing a recorded tbsCertificate, byte for byte.

use der::Encode;

use crate::error::Result;
use crate::signer::SignatureAlgorithm;

pub(crate) fn push_tlv(out: &mut Vec<u8>, tag: u8, content: &[u8]) {
    out.push(tag);
    push_len(out, content.len());
    out.extend_from_slice(content);
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

/// SEQUENCE { tbs, AlgorithmIdentifier, BIT STRING signature }.
pub fn assemble(
    tbs_der: &[u8],
    algorithm: SignatureAlgorithm,
    signature: &[u8],
) -> Result<Vec<u8>> {
    let mut body = Vec::with_capacity(tbs_der.len() + signature.len() + 32);
    body.extend_from_slice(tbs_der);
    body.extend_from_slice(&algorithm.identifier().to_der()?);
    let mut bits = Vec::with_capacity(signature.len() + 1);
    bits.push(0); // no unused bits
    bits.extend_from_slice(signature);
    push_tlv(&mut body, 0x03, &bits);
    let mut out = Vec::with_capacity(body.len() + 8);
    push_tlv(&mut out, 0x30, &body);
    Ok(out)
}
