//! Checking SignedData: the outer layers walked in place, every SignerInfo's
//! certificate found, its signed attributes read (each at most once, each with one
//! value), the content's digest and type compared with the signed ones, and the
//! signature verified.

use cms::signed_data::{SignerIdentifier, SignerInfo};
use const_oid::ObjectIdentifier;
use der::asn1::{Any, OctetString, SetOfVec};
use der::{Decode, Encode};
use gpki_pki::{Error, Result};
use spki::AlgorithmIdentifierOwned;
use x509_cert::attr::Attribute;
use x509_cert::Certificate;

use gpki_pki::tlv::{self, Reader, Tlv};

use super::{
    bad, Checked, Digest, SignerFacts, ID_AA_SIGNING_CERTIFICATE, ID_AA_SIGNING_CERTIFICATE_V2,
    ID_AA_TIME_STAMP_TOKEN, ID_CONTENT_TYPE, ID_DATA, ID_EC_PUBLIC_KEY, ID_MESSAGE_DIGEST,
    ID_RSA_ENCRYPTION, ID_SIGNED_DATA, ID_SIGNING_TIME, MAX_ATTRIBUTES, MAX_ATTRIBUTE_VALUES,
    MAX_CERTIFICATES, MAX_CERTIFICATE_BYTES, MAX_SIGNERS,
};

/// The content's digests, one per algorithm the signers used.
type ContentDigests = Vec<(Digest, Vec<u8>)>;

/// Checks every signature of the SignedData `der` (a ContentInfo): the signer's
/// certificate is found (in the message or `extra_certs`), the message digest is
/// the content's, the content type is the signed one, and the signature verifies.
/// `detached` is the document of a detached signature.
pub fn check<'a>(
    der_bytes: &'a [u8],
    detached: Option<&'a [u8]>,
    extra_certs: &[Vec<u8>],
) -> Result<Checked<'a>> {
    let sd = signed_data(der_bytes)?;
    let mut r = Reader::new(sd);
    r.expect(0x02, "SignedData version")?;
    r.expect(0x31, "SignedData digestAlgorithms")?;
    let encap = r.expect(0x30, "encapContentInfo")?;
    let certificates = message_certificates(r.optional(0xa0, "SignedData certificates")?)?;
    r.optional(0xa1, "SignedData crls")?;
    let infos = r.expect(0x31, "SignedData signerInfos")?;
    if !r.is_empty() {
        return Err(Error::malformed("SignedData: trailing data"));
    }
    let (content_type, inside) = encapsulated_content(encap)?;
    let (content, attached) = content_checked(inside, detached)?;
    let pool = candidate_certificates(&certificates, extra_certs);
    let (signers, digests) = check_signers(infos, &content_type, content, &pool)?;
    Ok(Checked {
        content_type,
        content,
        attached,
        signers,
        certificates: pool,
        content_digests: digests,
    })
}

/// The SignedData inside the ContentInfo `der_bytes`, refusing any other content
/// (an EnvelopedData among them) and trailing data.
fn signed_data(der_bytes: &[u8]) -> Result<&[u8]> {
    let ci = tlv::only(der_bytes, 0x30, "ContentInfo")?;
    let mut r = Reader::new(ci.value);
    let ct = r.expect(0x06, "ContentInfo contentType")?;
    if ObjectIdentifier::from_bytes(ct.value).ok() != Some(ID_SIGNED_DATA) {
        return Err(Error::malformed(
            "the message is not CMS SignedData (an EnvelopedData is opened with decrypt)",
        ));
    }
    let explicit = r.expect(0xa0, "ContentInfo content")?;
    if !r.is_empty() {
        return Err(Error::malformed("ContentInfo: trailing data"));
    }
    Ok(tlv::only(explicit.value, 0x30, "SignedData")?.value)
}

/// The X.509 certificates the message carries (attribute and other certificates
/// are skipped), refusing one over [`MAX_CERTIFICATE_BYTES`] or more than
/// [`MAX_CERTIFICATES`]: a bound on the work a hostile message can ask for.
fn message_certificates(set: Option<Tlv<'_>>) -> Result<Vec<Vec<u8>>> {
    let mut certificates: Vec<Vec<u8>> = Vec::new();
    if let Some(set) = set {
        let mut cr = Reader::new(set.value);
        while !cr.is_empty() {
            let c = cr.next("SignedData certificate")?;
            // Only X.509 certificates; attribute and other certificates are skipped.
            if c.tag == 0x30 {
                if c.raw.len() > MAX_CERTIFICATE_BYTES {
                    return Err(Error::malformed(format!(
                        "a certificate in the message is over {MAX_CERTIFICATE_BYTES} octets"
                    )));
                }
                if certificates.len() == MAX_CERTIFICATES {
                    return Err(Error::malformed(format!(
                        "the message carries more than {MAX_CERTIFICATES} certificates"
                    )));
                }
                certificates.push(c.raw.to_vec());
            }
        }
    }
    Ok(certificates)
}

/// The encapsulated content's type, and its content when the message carries it.
fn encapsulated_content<'a>(encap: Tlv<'a>) -> Result<(ObjectIdentifier, Option<&'a [u8]>)> {
    let mut er = Reader::new(encap.value);
    let ect = er.expect(0x06, "eContentType")?;
    let content_type = ObjectIdentifier::from_bytes(ect.value)
        .map_err(|e| Error::malformed(format!("eContentType: {e}")))?;
    let inside = match er.optional(0xa0, "eContent")? {
        Some(e) => {
            let octets = tlv::only(e.value, 0x04, "eContent")?;
            Some(octets.value)
        }
        None => None,
    };
    Ok((content_type, inside))
}

/// The content the signatures are checked over, and whether it was attached: the
/// message's own, or the detached document given; never both, never neither.
fn content_checked<'a>(
    inside: Option<&'a [u8]>,
    detached: Option<&'a [u8]>,
) -> Result<(&'a [u8], bool)> {
    match (inside, detached) {
        (Some(c), None) => Ok((c, true)),
        (None, Some(d)) => Ok((d, false)),
        (Some(_), Some(_)) => Err(Error::malformed(
            "the message carries its content; a detached document is not taken too",
        )),
        (None, None) => Err(Error::malformed(
            "the signature is detached: give the signed document",
        )),
    }
}

/// The certificates a signer's may be among: the message's, then those given
/// (those over [`MAX_CERTIFICATE_BYTES`] left out). Candidates, trusted for
/// nothing.
fn candidate_certificates(certificates: &[Vec<u8>], extra_certs: &[Vec<u8>]) -> Vec<Vec<u8>> {
    certificates
        .iter()
        .chain(
            extra_certs
                .iter()
                .filter(|c| c.len() <= MAX_CERTIFICATE_BYTES),
        )
        .cloned()
        .collect()
}

/// Checks every SignerInfo of the SET `infos` (at most [`MAX_SIGNERS`], at least
/// one): their facts, and the content's digests computed for them, each once.
fn check_signers(
    infos: Tlv<'_>,
    content_type: &ObjectIdentifier,
    content: &[u8],
    pool: &[Vec<u8>],
) -> Result<(Vec<SignerFacts>, ContentDigests)> {
    let decoded: Vec<Option<Certificate>> =
        pool.iter().map(|d| Certificate::from_der(d).ok()).collect();
    let mut signers = Vec::new();
    let mut ir = Reader::new(infos.value);
    let mut digests: ContentDigests = Vec::new();
    while !ir.is_empty() {
        if signers.len() == MAX_SIGNERS {
            return Err(Error::malformed(format!(
                "the message has more than {MAX_SIGNERS} signers"
            )));
        }
        let raw = ir.expect(0x30, "SignerInfo")?;
        let facts = check_signer(raw.raw, content_type, content, pool, &decoded, &mut digests)?;
        signers.push(facts);
    }
    if signers.is_empty() {
        return Err(bad("the message has no signer"));
    }
    Ok((signers, digests))
}

/// Checks one SignerInfo (DER `raw`): its attributes counted, its certificate
/// found in `pool`, its digest algorithm accepted, its signed attributes read and
/// their contentType and messageDigest the content's (or, without signed
/// attributes, the content id-data), and its signature verified.
fn check_signer(
    raw: &[u8],
    content_type: &ObjectIdentifier,
    content: &[u8],
    pool: &[Vec<u8>],
    decoded: &[Option<Certificate>],
    digests: &mut ContentDigests,
) -> Result<SignerFacts> {
    let signed_raw = counted_signed_attributes(raw)?;
    let si = SignerInfo::from_der(raw).map_err(|e| Error::malformed(format!("SignerInfo: {e}")))?;
    let (cert_der, cert) = signer_certificate(&si.sid, pool, decoded)?;
    let digest = Digest::of_oid(&si.digest_alg.oid)?;
    let content_digest = content_digest(digest, content, digests);
    let mut attributes = SignedAttributes::default();
    let message: Vec<u8> = match (&si.signed_attrs, signed_raw) {
        (Some(attrs), Some(raw_attrs)) => {
            attributes = read_signed_attributes(attrs, cert_der)?;
            signed_content_type_is(&attributes, content_type)?;
            signed_digest_is(&attributes, &content_digest)?;
            raw_attrs
        }
        (None, None) => {
            if *content_type != ID_DATA {
                return Err(bad(
                    "a signer without signed attributes may sign only id-data content",
                ));
            }
            content.to_vec()
        }
        _ => return Err(Error::malformed("SignerInfo signedAttrs")),
    };
    signature_verifies(&si, digest, cert, &message)?;
    let timestamp = first_timestamp_token(&si)?;
    Ok(SignerFacts {
        certificate: cert_der.clone(),
        digest,
        signing_time: attributes.signing_time,
        signature: si.signature.as_bytes().to_vec(),
        timestamp,
        certificate_bound: attributes.certificate_bound,
        signed_attributes: si.signed_attrs.is_some(),
    })
}

/// The signed attributes as they were signed: their own encoding, `[0]` read as the
/// SET it stands for (RFC 5652 §5.4). Attributes and values, signed and unsigned,
/// are counted first, before `der` decodes (and sorts) them.
fn counted_signed_attributes(raw: &[u8]) -> Result<Option<Vec<u8>>> {
    let mut r = Reader::new(tlv::only(raw, 0x30, "SignerInfo")?.value);
    r.next("SignerInfo version")?;
    r.next("SignerInfo sid")?;
    r.next("SignerInfo digestAlgorithm")?;
    let signed = r.optional(0xa0, "signedAttrs")?;
    r.next("SignerInfo signatureAlgorithm")?;
    r.next("SignerInfo signature")?;
    let unsigned = r.optional(0xa1, "unsignedAttrs")?;
    for attrs in [signed, unsigned].into_iter().flatten() {
        count_attributes(attrs.value)?;
    }
    Ok(signed.map(|t| {
        let mut v = t.raw.to_vec();
        v[0] = 0x31;
        v
    }))
}

/// The certificate (DER and decoded) that `sid` names, by issuer and serial or by
/// subject key identifier, among the candidates; refused, naming what was sought,
/// when none is.
fn signer_certificate<'a>(
    sid: &SignerIdentifier,
    pool: &'a [Vec<u8>],
    decoded: &'a [Option<Certificate>],
) -> Result<(&'a Vec<u8>, &'a Certificate)> {
    let found = pool.iter().zip(decoded).find(|(_, c)| {
        let Some(c) = c else { return false };
        match sid {
            SignerIdentifier::IssuerAndSerialNumber(ias) => {
                c.tbs_certificate.issuer == ias.issuer
                    && c.tbs_certificate.serial_number == ias.serial_number
            }
            SignerIdentifier::SubjectKeyIdentifier(ski) => {
                gpki_pki::cert::subject_key_id(&c.tbs_certificate)
                    .ok()
                    .is_some_and(|k| k == ski.0.as_bytes())
            }
        }
    });
    let Some((cert_der, Some(cert))) = found else {
        let who = match sid {
            SignerIdentifier::IssuerAndSerialNumber(ias) => format!(
                "serial {} of `{}`",
                hex::encode(ias.serial_number.as_bytes()),
                ias.issuer
            ),
            SignerIdentifier::SubjectKeyIdentifier(ski) => {
                format!("key identifier {}", hex::encode(ski.0.as_bytes()))
            }
        };
        return Err(Error::not_found(format!(
            "the signer's certificate ({who}) is neither in the message nor among the certificates given"
        )));
    };
    Ok((cert_der, cert))
}

/// The content's `digest`, computed once per algorithm for all the signers.
fn content_digest(digest: Digest, content: &[u8], digests: &mut ContentDigests) -> Vec<u8> {
    match digests.iter().find(|(d, _)| *d == digest) {
        Some((_, v)) => v.clone(),
        None => {
            let v = digest.digest(content);
            digests.push((digest, v.clone()));
            v
        }
    }
}

/// What the signed attributes said.
#[derive(Default)]
struct SignedAttributes {
    content_type: Option<ObjectIdentifier>,
    message_digest: Option<OctetString>,
    /// signingTime, Unix seconds.
    signing_time: Option<i64>,
    /// A signingCertificate(V2) attribute names the signer's certificate.
    certificate_bound: bool,
}

/// Reads the signed attributes, in order: each may appear once and must have
/// exactly one value; contentType, messageDigest and signingTime must decode; a
/// signingCertificate(V2) must name the signer's certificate `cert_der` (else it
/// binds the signature to another certificate than the one it verifies with).
fn read_signed_attributes(
    attrs: &SetOfVec<Attribute>,
    cert_der: &[u8],
) -> Result<SignedAttributes> {
    let mut read = SignedAttributes::default();
    let mut seen = Vec::new();
    for a in attrs.iter() {
        if seen.contains(&a.oid) {
            return Err(Error::malformed(format!(
                "signed attribute {} appears twice",
                a.oid
            )));
        }
        seen.push(a.oid);
        let one = || -> Result<&Any> {
            match a.values.as_slice() {
                [v] => Ok(v),
                _ => Err(Error::malformed(format!(
                    "signed attribute {} must have exactly one value",
                    a.oid
                ))),
            }
        };
        if a.oid == ID_CONTENT_TYPE {
            read.content_type = Some(
                one()?
                    .decode_as::<ObjectIdentifier>()
                    .map_err(|e| Error::malformed(format!("contentType attribute: {e}")))?,
            );
        } else if a.oid == ID_MESSAGE_DIGEST {
            read.message_digest = Some(
                one()?
                    .decode_as::<OctetString>()
                    .map_err(|e| Error::malformed(format!("messageDigest attribute: {e}")))?,
            );
        } else if a.oid == ID_SIGNING_TIME {
            let t = x509_cert::time::Time::from_der(&one()?.to_der()?)
                .map_err(|e| Error::malformed(format!("signingTime attribute: {e}")))?;
            read.signing_time = Some(gpki_pki::time::unix_seconds(&t));
        } else if a.oid == ID_AA_SIGNING_CERTIFICATE_V2 || a.oid == ID_AA_SIGNING_CERTIFICATE {
            read.certificate_bound = first_ess_hash_matches(
                &one()?.to_der()?,
                a.oid == ID_AA_SIGNING_CERTIFICATE_V2,
                cert_der,
            )?;
            if !read.certificate_bound {
                return Err(bad(
                    "the signing-certificate attribute names another certificate than the signer's",
                ));
            }
        }
    }
    Ok(read)
}

/// Refuses signed attributes without a contentType, or with another than the
/// content's: what was signed must say what it is.
fn signed_content_type_is(
    attributes: &SignedAttributes,
    content_type: &ObjectIdentifier,
) -> Result<()> {
    if attributes.content_type.as_ref() != Some(content_type) {
        return Err(bad(format!(
            "the signed contentType attribute is missing or is not the content's type {content_type}"
        )));
    }
    Ok(())
}

/// Refuses signed attributes without a messageDigest, or with one that is not the
/// content's digest: the document was changed after it was signed.
fn signed_digest_is(attributes: &SignedAttributes, content_digest: &[u8]) -> Result<()> {
    match &attributes.message_digest {
        Some(md) if md.as_bytes() == content_digest => Ok(()),
        Some(_) => Err(bad(
            "the content's digest is not the signed messageDigest: the document was changed",
        )),
        None => Err(bad("the signed attributes lack messageDigest")),
    }
}

/// Verifies the signature over `message` (the signed attributes, or the content
/// without them) with the certificate's public key.
fn signature_verifies(
    si: &SignerInfo,
    digest: Digest,
    cert: &Certificate,
    message: &[u8],
) -> Result<()> {
    let alg = signature_identifier(&si.signature_algorithm, digest);
    let ok = gpki_pki::signer::verify_with_identifier(
        &cert.tbs_certificate.subject_public_key_info,
        &alg,
        message,
        si.signature.as_bytes(),
    )?;
    if !ok {
        return Err(bad(format!(
            "the signature of `{}` does not verify",
            cert.tbs_certificate.subject
        )));
    }
    Ok(())
}

/// The first id-aa-timeStampToken unsigned attribute's value, unchecked (the
/// verifier checks it); an attribute without a value is refused.
fn first_timestamp_token(si: &SignerInfo) -> Result<Option<Vec<u8>>> {
    si.unsigned_attrs
        .iter()
        .flat_map(|u| u.iter())
        .find(|a| a.oid == ID_AA_TIME_STAMP_TOKEN)
        .map(|a| {
            a.values
                .as_slice()
                .first()
                .ok_or_else(|| Error::malformed("id-aa-timeStampToken without a value"))
                .and_then(|v| Ok(v.to_der()?))
        })
        .transpose()
}

/// Refuses more than [`MAX_ATTRIBUTES`] attributes, or an attribute with more than
/// a few values, in the content of an attribute SET.
fn count_attributes(set: &[u8]) -> Result<()> {
    let mut r = Reader::new(set);
    let mut n = 0;
    while !r.is_empty() {
        n += 1;
        if n > MAX_ATTRIBUTES {
            return Err(Error::malformed(format!(
                "a SignerInfo has more than {MAX_ATTRIBUTES} attributes"
            )));
        }
        let a = r.expect(0x30, "Attribute")?;
        let mut ar = Reader::new(a.value);
        ar.expect(0x06, "Attribute type")?;
        let values = ar.expect(0x31, "Attribute values")?;
        let mut vr = Reader::new(values.value);
        let mut v = 0;
        while !vr.is_empty() {
            vr.next("Attribute value")?;
            v += 1;
            if v > MAX_ATTRIBUTE_VALUES {
                return Err(Error::malformed(format!(
                    "an attribute has more than {MAX_ATTRIBUTE_VALUES} values"
                )));
            }
        }
    }
    Ok(())
}

/// The signature algorithm of a SignerInfo as a full identifier: CMS may name
/// only the key algorithm (rsaEncryption, id-ecPublicKey) beside the digest.
pub fn signature_identifier(
    sig: &AlgorithmIdentifierOwned,
    digest: Digest,
) -> AlgorithmIdentifierOwned {
    let pick = |sha256: &str, sha384: &str, sha512: &str| {
        ObjectIdentifier::new_unwrap(match digest {
            Digest::Sha256 => sha256,
            Digest::Sha384 => sha384,
            Digest::Sha512 => sha512,
        })
    };
    if sig.oid == ID_RSA_ENCRYPTION {
        AlgorithmIdentifierOwned {
            oid: pick(
                "1.2.840.113549.1.1.11",
                "1.2.840.113549.1.1.12",
                "1.2.840.113549.1.1.13",
            ),
            parameters: Some(Any::null()),
        }
    } else if sig.oid == ID_EC_PUBLIC_KEY {
        AlgorithmIdentifierOwned {
            oid: pick(
                "1.2.840.10045.4.3.2",
                "1.2.840.10045.4.3.3",
                "1.2.840.10045.4.3.4",
            ),
            parameters: None,
        }
    } else {
        sig.clone()
    }
}

/// Whether the first ESSCertID(v2) of a SigningCertificate(V2) value hashes to
/// `cert_der`.
pub fn first_ess_hash_matches(value: &[u8], v2: bool, cert_der: &[u8]) -> Result<bool> {
    let outer = tlv::only(value, 0x30, "signing-certificate attribute")?;
    let mut r = Reader::new(outer.value);
    let certs = r.expect(0x30, "signing-certificate certs")?;
    let mut cr = Reader::new(certs.value);
    let first = cr.expect(0x30, "ESSCertID")?;
    let mut er = Reader::new(first.value);
    let mut next = er.next("ESSCertID")?;
    let mut digest = if v2 { Some(Digest::Sha256) } else { None };
    if next.tag == 0x30 {
        let alg = AlgorithmIdentifierOwned::from_der(next.raw)
            .map_err(|e| Error::malformed(format!("ESSCertIDv2 hashAlgorithm: {e}")))?;
        digest = Some(Digest::of_oid(&alg.oid)?);
        next = er.next("ESSCertID certHash")?;
    }
    if next.tag != 0x04 {
        return Err(Error::malformed(
            "ESSCertID certHash is not an OCTET STRING",
        ));
    }
    Ok(match digest {
        Some(d) => next.value == d.digest(cert_der).as_slice(),
        // ESSCertID (v1) is SHA-1 by definition: a hash, not a signature, here.
        None => next.value == openssl::sha::sha1(cert_der).as_slice(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use gpki_pki::signed::push_tlv;

    #[test]
    fn attribute_floods_are_refused_before_decoding() {
        let mut attrs = Vec::new();
        for i in 0..(MAX_ATTRIBUTES + 1) as u8 {
            let mut a = Vec::new();
            push_tlv(&mut a, 0x06, &[0x2a, i]);
            push_tlv(&mut a, 0x31, &[0x05, 0x00]);
            push_tlv(&mut attrs, 0x30, &a);
        }
        let e = count_attributes(&attrs).unwrap_err();
        assert!(e.detail.contains("more than 32 attributes"), "{e}");
        let mut a = Vec::new();
        push_tlv(&mut a, 0x06, &[0x2a, 1]);
        push_tlv(&mut a, 0x31, &[0x05, 0x00].repeat(5));
        let mut one = Vec::new();
        push_tlv(&mut one, 0x30, &a);
        assert!(count_attributes(&one).is_err());
    }
}
