//! Writing SignedData: the signer's attributes (contentType, signingTime,
//! messageDigest, signingCertificateV2) signed, an RFC 3161 token optionally added
//! over the signature value, and the ContentInfo written in one allocation.

use const_oid::ObjectIdentifier;
use der::asn1::{Any, SetOfVec};
use der::{Decode, Encode};
use gpki_pki::signed::{header_len, push_header, push_tlv};
use gpki_pki::{Error, Result, Signer};
use x509_cert::attr::Attribute;
use x509_cert::Certificate;

use gpki_pki::tlv;

use super::{
    Digest, ID_AA_SIGNING_CERTIFICATE_V2, ID_AA_TIME_STAMP_TOKEN, ID_CONTENT_TYPE, ID_DATA,
    ID_MESSAGE_DIGEST, ID_SIGNED_DATA, ID_SIGNING_TIME,
};

/// How to sign.
#[derive(Debug, Clone, Default)]
pub struct SignOptions {
    /// Leave the content out of the message (the verifier has the document).
    pub detached: bool,
    /// The signingTime attribute, Unix seconds.
    pub signing_time: i64,
    /// Certificates to carry beside the signer's (its CA, up to the root).
    pub chain: Vec<Vec<u8>>,
}

/// A signature made and not yet written: a timestamp may still be added over its
/// value before [`Signature::to_der`].
pub struct Signature {
    digest: Digest,
    sid: Vec<u8>,
    signed_attrs: Vec<u8>,
    algorithm: Vec<u8>,
    value: Vec<u8>,
    certificates: Vec<Vec<u8>>,
    unsigned_attrs: Vec<Vec<u8>>,
    detached: bool,
    content_len: usize,
}

fn oid_tlv(oid: &ObjectIdentifier) -> Vec<u8> {
    let mut out = Vec::new();
    push_tlv(&mut out, 0x06, oid.as_bytes());
    out
}

fn attribute(oid: ObjectIdentifier, value_der: &[u8]) -> Result<Attribute> {
    let value = Any::from_der(value_der)?;
    Ok(Attribute {
        oid,
        values: SetOfVec::try_from(vec![value])?,
    })
}

/// Signs `content` with `key`, whose certificate is `cert_der`.
pub fn sign(
    content: &[u8],
    key: &dyn Signer,
    cert_der: &[u8],
    opts: &SignOptions,
) -> Result<Signature> {
    let cert = Certificate::from_der(cert_der)
        .map_err(|e| Error::malformed(format!("signer certificate: {e}")))?;
    let tbs = &cert.tbs_certificate;
    if tbs.subject_public_key_info.to_der()? != key.public_key_der() {
        return Err(Error::policy(
            "the key is not the signer certificate's: they name different public keys",
        ));
    }
    let digest = Digest::of_algorithm(key.algorithm());
    let issuer = tbs.issuer.to_der()?;
    let serial = tbs.serial_number.to_der()?;
    let mut sid_body = issuer.clone();
    sid_body.extend_from_slice(&serial);
    let mut sid = Vec::new();
    push_tlv(&mut sid, 0x30, &sid_body);

    // signingCertificateV2 { certs { ESSCertIDv2 { certHash, issuerSerial } } },
    // SHA-256 being the default hash algorithm, left out.
    let mut general_names = Vec::new();
    push_tlv(&mut general_names, 0xa4, &issuer);
    let mut issuer_serial = Vec::new();
    push_tlv(&mut issuer_serial, 0x30, &general_names);
    issuer_serial.extend_from_slice(&serial);
    let mut ess_id = Vec::new();
    push_tlv(&mut ess_id, 0x04, &openssl::sha::sha256(cert_der));
    push_tlv(&mut ess_id, 0x30, &issuer_serial);
    let mut ess_ids = Vec::new();
    push_tlv(&mut ess_ids, 0x30, &ess_id);
    let mut certs_seq = Vec::new();
    push_tlv(&mut certs_seq, 0x30, &ess_ids);
    let mut signing_certificate = Vec::new();
    push_tlv(&mut signing_certificate, 0x30, &certs_seq);

    let mut message_digest = Vec::new();
    push_tlv(&mut message_digest, 0x04, &digest.digest(content));
    let attrs = SetOfVec::try_from(vec![
        attribute(ID_CONTENT_TYPE, &oid_tlv(&ID_DATA))?,
        attribute(
            ID_SIGNING_TIME,
            &gpki_pki::time::x509_time(opts.signing_time)?.to_der()?,
        )?,
        attribute(ID_MESSAGE_DIGEST, &message_digest)?,
        attribute(ID_AA_SIGNING_CERTIFICATE_V2, &signing_certificate)?,
    ])?;
    let signed_attrs = attrs.to_der()?;
    let value = key.sign(&signed_attrs)?;
    let mut certificates = vec![cert_der.to_vec()];
    certificates.extend(opts.chain.iter().filter(|c| *c != cert_der).cloned());
    Ok(Signature {
        digest,
        sid,
        signed_attrs,
        algorithm: key.algorithm().identifier().to_der()?,
        value,
        certificates,
        unsigned_attrs: Vec::new(),
        detached: opts.detached,
        content_len: content.len(),
    })
}

impl Signature {
    /// The signature value: what an RFC 3161 token of the signature is over.
    pub fn value(&self) -> &[u8] {
        &self.value
    }

    pub fn digest(&self) -> Digest {
        self.digest
    }

    /// Adds `token` (a TimeStampToken, CMS ContentInfo) as id-aa-timeStampToken.
    pub fn add_timestamp(&mut self, token: &[u8]) -> Result<()> {
        tlv::only(token, 0x30, "timestamp token")?;
        let mut set = Vec::new();
        push_tlv(&mut set, 0x31, token);
        let mut body = oid_tlv(&ID_AA_TIME_STAMP_TOKEN);
        body.extend_from_slice(&set);
        let mut attr = Vec::new();
        push_tlv(&mut attr, 0x30, &body);
        self.unsigned_attrs.push(attr);
        Ok(())
    }

    /// The ContentInfo, with `content` inside unless detached (then `content` is
    /// not read). `content` must be what was signed.
    pub fn to_der(&self, content: &[u8]) -> Result<Vec<u8>> {
        if !self.detached && content.len() != self.content_len {
            return Err(Error::internal(
                "the content written is not the content signed",
            ));
        }
        let digest_alg = self.digest.identifier_der();
        // SignerInfo.
        let mut si = Vec::new();
        push_tlv(&mut si, 0x02, &[1]);
        si.extend_from_slice(&self.sid);
        si.extend_from_slice(&digest_alg);
        si.push(0xa0); // [0] IMPLICIT SET OF Attribute
        si.extend_from_slice(&self.signed_attrs[1..]);
        si.extend_from_slice(&self.algorithm);
        push_tlv(&mut si, 0x04, &self.value);
        if !self.unsigned_attrs.is_empty() {
            let mut attrs = self.unsigned_attrs.clone();
            attrs.sort_by(|a, b| der_set_order(a, b));
            push_tlv(&mut si, 0xa1, &attrs.concat());
        }
        let mut signer_info = Vec::new();
        push_tlv(&mut signer_info, 0x30, &si);
        let mut signer_infos = Vec::new();
        push_tlv(&mut signer_infos, 0x31, &signer_info);
        let mut head = Vec::new();
        push_tlv(&mut head, 0x02, &[1]);
        push_tlv(&mut head, 0x31, &digest_alg);
        let mut sorted: Vec<&Vec<u8>> = self.certificates.iter().collect();
        sorted.sort_by(|a, b| der_set_order(a, b));
        let mut certs = Vec::new();
        push_tlv(
            &mut certs,
            0xa0,
            &sorted.into_iter().flatten().copied().collect::<Vec<u8>>(),
        );
        // encapContentInfo { eContentType, [0] EXPLICIT OCTET STRING }.
        let data_oid = oid_tlv(&ID_DATA);
        let (octets_len, explicit_len) = if self.detached {
            (0, 0)
        } else {
            let o = header_len(content.len()) + content.len();
            (o, header_len(o) + o)
        };
        let encap_len = data_oid.len() + explicit_len;
        let sd_len =
            head.len() + header_len(encap_len) + encap_len + certs.len() + signer_infos.len();
        let signed_oid = oid_tlv(&ID_SIGNED_DATA);
        let ci_len = signed_oid.len()
            + header_len(header_len(sd_len) + sd_len)
            + header_len(sd_len)
            + sd_len;
        let mut out = Vec::with_capacity(header_len(ci_len) + ci_len);
        push_header(&mut out, 0x30, ci_len);
        out.extend_from_slice(&signed_oid);
        push_header(&mut out, 0xa0, header_len(sd_len) + sd_len);
        push_header(&mut out, 0x30, sd_len);
        out.extend_from_slice(&head);
        push_header(&mut out, 0x30, encap_len);
        out.extend_from_slice(&data_oid);
        if !self.detached {
            push_header(&mut out, 0xa0, octets_len);
            push_header(&mut out, 0x04, content.len());
            out.extend_from_slice(content);
        }
        out.extend_from_slice(&certs);
        out.extend_from_slice(&signer_infos);
        debug_assert_eq!(out.len(), out.capacity());
        Ok(out)
    }
}

/// DER's order of a SET OF (X.690 §11.6): the encodings compared as octet
/// strings, the shorter padded with zeros.
fn der_set_order(a: &[u8], b: &[u8]) -> std::cmp::Ordering {
    let n = a.len().max(b.len());
    let pad = |x: &[u8], i: usize| x.get(i).copied().unwrap_or(0);
    (0..n)
        .map(|i| pad(a, i).cmp(&pad(b, i)))
        .find(|o| o.is_ne())
        .unwrap_or(std::cmp::Ordering::Equal)
}

#[cfg(test)]
mod tests {
    use super::super::tests::{opts, signer};
    use super::*;
    use crate::signed::check;
    use gpki_pki::KeyType;

    #[test]
    fn certificates_are_written_in_der_set_order() {
        use std::cmp::Ordering;
        assert_eq!(der_set_order(b"\x30\x01", b"\x30\x02"), Ordering::Less);
        assert_eq!(der_set_order(b"\x30", b"\x30\x00"), Ordering::Equal);
        assert_eq!(der_set_order(b"\x31", b"\x30\xff"), Ordering::Greater);
        let (key, cert) = signer(KeyType::EcP256);
        let (_, other) = signer(KeyType::EcP256);
        let mut o = opts(false);
        o.chain = vec![other.clone()];
        let der = sign(b"d", &key, &cert, &o).unwrap().to_der(b"d").unwrap();
        let c = check(&der, None, &[]).unwrap();
        let mut want = vec![cert.clone(), other];
        want.sort_by(|a, b| der_set_order(a, b));
        assert_eq!(c.certificates, want);
    }
}
