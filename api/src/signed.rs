//! CMS SignedData (RFC 5652 §5) for documents: signing with any gpki [`Signer`],
//! and the cryptographic half of verification (which certificate signed, that
//! the digest and the signature hold). Whether that certificate is trusted, for
//! what and whether it is revoked is [`crate::verifier`]'s part.
//!
//! What gpki writes: version 1, one SignerInfo named by issuer and serial, the
//! digest of the signer's algorithm (SHA-256 for P-256 and RSA keys, SHA-384 for
//! P-384), signed attributes contentType, signingTime, messageDigest and
//! signingCertificateV2 (RFC 5035, binding the certificate as CAdES does), the
//! signer's certificate and any chain given, and optionally an RFC 3161 token over
//! the signature value as the unsigned attribute id-aa-timeStampToken (RFC 3161
//! Appendix A). The content is attached unless asked detached.
//!
//! What gpki reads: that, and what `openssl cms -sign` writes (DER, with or without
//! signed attributes, issuer-and-serial or subject-key-identifier signers, several
//! signers). SHA-1 digests are refused.
//!
//! The outer layers are walked in place ([`gpki_pki::tlv`]) and the output written
//! in one allocation with the content copied once: at 1 MiB the copies of owned
//! DER types cost more than the SHA-256 of the content.

use const_oid::ObjectIdentifier;
use der::asn1::{Any, OctetString, SetOfVec};
use der::{Decode, Encode};
use gpki_pki::signed::{header_len, push_header, push_tlv};
use gpki_pki::{Error, ErrorKind, Result, SignatureAlgorithm, Signer};
use spki::AlgorithmIdentifierOwned;
use x509_cert::attr::Attribute;
use x509_cert::Certificate;

use gpki_pki::tlv::{self, Reader};

pub const ID_DATA: ObjectIdentifier = ObjectIdentifier::new_unwrap("1.2.840.113549.1.7.1");
pub const ID_SIGNED_DATA: ObjectIdentifier = ObjectIdentifier::new_unwrap("1.2.840.113549.1.7.2");
pub const ID_CT_TST_INFO: ObjectIdentifier =
    ObjectIdentifier::new_unwrap("1.2.840.113549.1.9.16.1.4");
const ID_CONTENT_TYPE: ObjectIdentifier = ObjectIdentifier::new_unwrap("1.2.840.113549.1.9.3");
const ID_MESSAGE_DIGEST: ObjectIdentifier = ObjectIdentifier::new_unwrap("1.2.840.113549.1.9.4");
const ID_SIGNING_TIME: ObjectIdentifier = ObjectIdentifier::new_unwrap("1.2.840.113549.1.9.5");
const ID_AA_SIGNING_CERTIFICATE: ObjectIdentifier =
    ObjectIdentifier::new_unwrap("1.2.840.113549.1.9.16.2.12");
const ID_AA_SIGNING_CERTIFICATE_V2: ObjectIdentifier =
    ObjectIdentifier::new_unwrap("1.2.840.113549.1.9.16.2.47");
pub const ID_AA_TIME_STAMP_TOKEN: ObjectIdentifier =
    ObjectIdentifier::new_unwrap("1.2.840.113549.1.9.16.2.14");
const ID_SHA1: ObjectIdentifier = ObjectIdentifier::new_unwrap("1.3.14.3.2.26");
const ID_RSA_ENCRYPTION: ObjectIdentifier = ObjectIdentifier::new_unwrap("1.2.840.113549.1.1.1");
const ID_EC_PUBLIC_KEY: ObjectIdentifier = ObjectIdentifier::new_unwrap("1.2.840.10045.2.1");

/// Signers and certificates a message may carry at most (a bound on the work a
/// hostile message can ask for).
pub const MAX_SIGNERS: usize = 16;
pub const MAX_CERTIFICATES: usize = 64;
/// Attributes a SignerInfo may carry, signed and unsigned each, and values an
/// attribute may have: counted before anything is decoded, since `der` sorts a SET
/// OF as it decodes it, in time quadratic in its length.
pub const MAX_ATTRIBUTES: usize = 32;
const MAX_ATTRIBUTE_VALUES: usize = 4;
/// The largest certificate read.
pub const MAX_CERTIFICATE_BYTES: usize = 64 * 1024;

/// The digests of SignedData.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Digest {
    Sha256,
    Sha384,
    Sha512,
}

impl Digest {
    pub fn name(self) -> &'static str {
        match self {
            Digest::Sha256 => "sha256",
            Digest::Sha384 => "sha384",
            Digest::Sha512 => "sha512",
        }
    }

    pub fn oid(self) -> ObjectIdentifier {
        ObjectIdentifier::new_unwrap(match self {
            Digest::Sha256 => "2.16.840.1.101.3.4.2.1",
            Digest::Sha384 => "2.16.840.1.101.3.4.2.2",
            Digest::Sha512 => "2.16.840.1.101.3.4.2.3",
        })
    }

    /// The digest an OID names; SHA-1 and the unknown refused by name.
    pub fn of_oid(oid: &ObjectIdentifier) -> Result<Digest> {
        [Digest::Sha256, Digest::Sha384, Digest::Sha512]
            .into_iter()
            .find(|d| d.oid() == *oid)
            .ok_or_else(|| {
                if *oid == ID_SHA1 {
                    Error::policy("SHA-1 digests are refused (SHA-256, SHA-384 or SHA-512)")
                } else {
                    Error::policy(format!(
                        "digest algorithm {oid} is not supported (SHA-256, SHA-384 or SHA-512)"
                    ))
                }
            })
    }

    pub fn of_algorithm(a: SignatureAlgorithm) -> Digest {
        match a {
            SignatureAlgorithm::RsaPkcs1Sha256
            | SignatureAlgorithm::RsaPssSha256
            | SignatureAlgorithm::EcdsaSha256 => Digest::Sha256,
            SignatureAlgorithm::RsaPkcs1Sha384
            | SignatureAlgorithm::RsaPssSha384
            | SignatureAlgorithm::EcdsaSha384 => Digest::Sha384,
            SignatureAlgorithm::RsaPkcs1Sha512 => Digest::Sha512,
        }
    }

    pub fn digest(self, data: &[u8]) -> Vec<u8> {
        match self {
            Digest::Sha256 => openssl::sha::sha256(data).to_vec(),
            Digest::Sha384 => openssl::sha::sha384(data).to_vec(),
            Digest::Sha512 => openssl::sha::sha512(data).to_vec(),
        }
    }

    /// The AlgorithmIdentifier, parameters absent (RFC 5754 §2).
    fn identifier_der(self) -> Vec<u8> {
        let mut body = Vec::new();
        push_tlv(&mut body, 0x06, self.oid().as_bytes());
        let mut out = Vec::new();
        push_tlv(&mut out, 0x30, &body);
        out
    }
}

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

/// What one SignerInfo proved.
#[derive(Debug, Clone)]
pub struct SignerFacts {
    /// The signer's certificate (DER), from the message or the certificates given.
    pub certificate: Vec<u8>,
    pub digest: Digest,
    /// The signingTime attribute, Unix seconds (a claim of the signer, not proof).
    pub signing_time: Option<i64>,
    /// The signature value (what a timestamp token is over).
    pub signature: Vec<u8>,
    /// The first id-aa-timeStampToken unsigned attribute, unchecked.
    pub timestamp: Option<Vec<u8>>,
    /// A signingCertificate(V2) attribute names this certificate.
    pub certificate_bound: bool,
    /// The message had signed attributes (else the signature is over the content).
    pub signed_attributes: bool,
}

/// A SignedData whose every signature holds.
#[derive(Debug)]
pub struct Checked<'a> {
    pub content_type: ObjectIdentifier,
    /// The signed content: inside the message, or the detached document given.
    pub content: &'a [u8],
    pub attached: bool,
    pub signers: Vec<SignerFacts>,
    /// Every certificate the message carries, and those given: candidates for a
    /// path, trusted for nothing.
    pub certificates: Vec<Vec<u8>>,
    /// The content's digests computed for the signers, each once.
    pub content_digests: Vec<(Digest, Vec<u8>)>,
}

impl Checked<'_> {
    /// The content's SHA-256, from the signers' digests when one used it.
    pub fn content_sha256(&self) -> Vec<u8> {
        match self
            .content_digests
            .iter()
            .find(|(d, _)| *d == Digest::Sha256)
        {
            Some((_, v)) => v.clone(),
            None => Digest::Sha256.digest(self.content),
        }
    }
}

fn bad(detail: impl Into<String>) -> Error {
    Error::new(ErrorKind::BadSignature, detail.into())
}

/// Checks every signature of the SignedData `der` (a ContentInfo): the signer's
/// certificate is found (in the message or `extra_certs`), the message digest is
/// the content's, the content type is the signed one, and the signature verifies.
/// `detached` is the document of a detached signature.
pub fn check<'a>(
    der_bytes: &'a [u8],
    detached: Option<&'a [u8]>,
    extra_certs: &[Vec<u8>],
) -> Result<Checked<'a>> {
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
    let sd = tlv::only(explicit.value, 0x30, "SignedData")?;
    let mut r = Reader::new(sd.value);
    r.expect(0x02, "SignedData version")?;
    r.expect(0x31, "SignedData digestAlgorithms")?;
    let encap = r.expect(0x30, "encapContentInfo")?;
    let mut certificates: Vec<Vec<u8>> = Vec::new();
    if let Some(set) = r.optional(0xa0, "SignedData certificates")? {
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
    r.optional(0xa1, "SignedData crls")?;
    let infos = r.expect(0x31, "SignedData signerInfos")?;
    if !r.is_empty() {
        return Err(Error::malformed("SignedData: trailing data"));
    }
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
    let (content, attached) = match (inside, detached) {
        (Some(c), None) => (c, true),
        (None, Some(d)) => (d, false),
        (Some(_), Some(_)) => {
            return Err(Error::malformed(
                "the message carries its content; a detached document is not taken too",
            ))
        }
        (None, None) => {
            return Err(Error::malformed(
                "the signature is detached: give the signed document",
            ))
        }
    };
    let pool: Vec<Vec<u8>> = certificates
        .iter()
        .chain(
            extra_certs
                .iter()
                .filter(|c| c.len() <= MAX_CERTIFICATE_BYTES),
        )
        .cloned()
        .collect();
    let decoded: Vec<Option<Certificate>> =
        pool.iter().map(|d| Certificate::from_der(d).ok()).collect();
    let mut signers = Vec::new();
    let mut ir = Reader::new(infos.value);
    let mut digests: Vec<(Digest, Vec<u8>)> = Vec::new();
    while !ir.is_empty() {
        if signers.len() == MAX_SIGNERS {
            return Err(Error::malformed(format!(
                "the message has more than {MAX_SIGNERS} signers"
            )));
        }
        let raw = ir.expect(0x30, "SignerInfo")?;
        let facts = check_signer(
            raw.raw,
            &content_type,
            content,
            &pool,
            &decoded,
            &mut digests,
        )?;
        signers.push(facts);
    }
    if signers.is_empty() {
        return Err(bad("the message has no signer"));
    }
    Ok(Checked {
        content_type,
        content,
        attached,
        signers,
        certificates: pool,
        content_digests: digests,
    })
}

fn check_signer(
    raw: &[u8],
    content_type: &ObjectIdentifier,
    content: &[u8],
    pool: &[Vec<u8>],
    decoded: &[Option<Certificate>],
    digests: &mut Vec<(Digest, Vec<u8>)>,
) -> Result<SignerFacts> {
    use cms::signed_data::{SignerIdentifier, SignerInfo};
    // The signed attributes as they were signed: their own encoding, [0] read as
    // the SET it stands for (RFC 5652 §5.4). Attributes and values are counted
    // first, before `der` decodes (and sorts) them.
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
    let signed_raw = signed.map(|t| {
        let mut v = t.raw.to_vec();
        v[0] = 0x31;
        v
    });
    let si = SignerInfo::from_der(raw).map_err(|e| Error::malformed(format!("SignerInfo: {e}")))?;
    let found = pool.iter().zip(decoded).find(|(_, c)| {
        let Some(c) = c else { return false };
        match &si.sid {
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
        let who = match &si.sid {
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
    let digest = Digest::of_oid(&si.digest_alg.oid)?;
    let content_digest = match digests.iter().find(|(d, _)| *d == digest) {
        Some((_, v)) => v.clone(),
        None => {
            let v = digest.digest(content);
            digests.push((digest, v.clone()));
            v
        }
    };
    let mut signing_time = None;
    let mut certificate_bound = false;
    let message: Vec<u8> = match (&si.signed_attrs, signed_raw) {
        (Some(attrs), Some(raw_attrs)) => {
            let mut seen_ct = None;
            let mut seen_md = None;
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
                    seen_ct =
                        Some(one()?.decode_as::<ObjectIdentifier>().map_err(|e| {
                            Error::malformed(format!("contentType attribute: {e}"))
                        })?);
                } else if a.oid == ID_MESSAGE_DIGEST {
                    seen_md =
                        Some(one()?.decode_as::<OctetString>().map_err(|e| {
                            Error::malformed(format!("messageDigest attribute: {e}"))
                        })?);
                } else if a.oid == ID_SIGNING_TIME {
                    let t = x509_cert::time::Time::from_der(&one()?.to_der()?)
                        .map_err(|e| Error::malformed(format!("signingTime attribute: {e}")))?;
                    signing_time = Some(gpki_pki::time::unix_seconds(&t));
                } else if a.oid == ID_AA_SIGNING_CERTIFICATE_V2
                    || a.oid == ID_AA_SIGNING_CERTIFICATE
                {
                    certificate_bound = first_ess_hash_matches(
                        &one()?.to_der()?,
                        a.oid == ID_AA_SIGNING_CERTIFICATE_V2,
                        cert_der,
                    )?;
                    if !certificate_bound {
                        return Err(bad(
                            "the signing-certificate attribute names another certificate than the signer's",
                        ));
                    }
                }
            }
            if seen_ct.as_ref() != Some(content_type) {
                return Err(bad(format!(
                    "the signed contentType attribute is missing or is not the content's type {content_type}"
                )));
            }
            match seen_md {
                Some(md) if md.as_bytes() == content_digest.as_slice() => {}
                Some(_) => {
                    return Err(bad(
                        "the content's digest is not the signed messageDigest: the document was changed",
                    ))
                }
                None => return Err(bad("the signed attributes lack messageDigest")),
            }
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
    let alg = signature_identifier(&si.signature_algorithm, digest);
    let ok = gpki_pki::signer::verify_with_identifier(
        &cert.tbs_certificate.subject_public_key_info,
        &alg,
        &message,
        si.signature.as_bytes(),
    )?;
    if !ok {
        return Err(bad(format!(
            "the signature of `{}` does not verify",
            cert.tbs_certificate.subject
        )));
    }
    let timestamp = si
        .unsigned_attrs
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
        .transpose()?;
    Ok(SignerFacts {
        certificate: cert_der.clone(),
        digest,
        signing_time,
        signature: si.signature.as_bytes().to_vec(),
        timestamp,
        certificate_bound,
        signed_attributes: si.signed_attrs.is_some(),
    })
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
    use gpki_pki::{KeyType, SoftwareKey};
    use openssl::x509::{X509Builder, X509NameBuilder};

    /// A key and a self-signed certificate for it.
    fn signer(kt: KeyType) -> (SoftwareKey, Vec<u8>) {
        let key = SoftwareKey::generate(kt).unwrap();
        let mut name = X509NameBuilder::new().unwrap();
        name.append_entry_by_text("CN", "Hong Gildong").unwrap();
        let name = name.build();
        let mut b = X509Builder::new().unwrap();
        b.set_version(2).unwrap();
        b.set_subject_name(&name).unwrap();
        b.set_issuer_name(&name).unwrap();
        b.set_pubkey(key.pkey()).unwrap();
        b.set_not_before(&openssl::asn1::Asn1Time::days_from_now(0).unwrap())
            .unwrap();
        b.set_not_after(&openssl::asn1::Asn1Time::days_from_now(1).unwrap())
            .unwrap();
        let mut serial = openssl::bn::BigNum::new().unwrap();
        serial.rand(63, openssl::bn::MsbOption::ONE, false).unwrap();
        let serial = serial.to_asn1_integer().unwrap();
        b.set_serial_number(&serial).unwrap();
        b.sign(key.pkey(), openssl::hash::MessageDigest::sha256())
            .unwrap();
        (key, b.build().to_der().unwrap())
    }

    fn opts(detached: bool) -> SignOptions {
        SignOptions {
            detached,
            signing_time: 1_795_000_000,
            chain: Vec::new(),
        }
    }

    #[test]
    fn signs_and_checks_attached_and_detached_with_each_key_type() {
        for kt in [KeyType::EcP256, KeyType::EcP384, KeyType::Rsa2048] {
            let (key, cert) = signer(kt);
            let doc = b"official document".repeat(100);
            let der = sign(&doc, &key, &cert, &opts(false))
                .unwrap()
                .to_der(&doc)
                .unwrap();
            let c = check(&der, None, &[]).unwrap();
            assert_eq!(c.content, doc.as_slice());
            assert!(c.attached);
            assert_eq!(c.signers[0].certificate, cert);
            assert_eq!(c.signers[0].signing_time, Some(1_795_000_000));
            assert!(c.signers[0].certificate_bound);
            let want = if kt == KeyType::EcP384 {
                Digest::Sha384
            } else {
                Digest::Sha256
            };
            assert_eq!(c.signers[0].digest, want);

            let det = sign(&doc, &key, &cert, &opts(true))
                .unwrap()
                .to_der(&doc)
                .unwrap();
            assert!(det.len() < der.len() - doc.len());
            assert!(!check(&det, Some(&doc), &[]).unwrap().attached);
            let e = check(&det, None, &[]).unwrap_err();
            assert!(e.detail.contains("detached"), "{e}");
            let e = check(&det, Some(b"other"), &[]).unwrap_err();
            assert_eq!(e.kind, ErrorKind::BadSignature, "{e}");
            assert!(e.detail.contains("changed"), "{e}");
            let e = check(&der, Some(&doc), &[]).unwrap_err();
            assert_eq!(e.kind, ErrorKind::Malformed, "{e}");
        }
    }

    #[test]
    fn a_changed_signature_content_or_key_is_refused() {
        let (key, cert) = signer(KeyType::EcP256);
        let doc = b"budget 2026".to_vec();
        let der = sign(&doc, &key, &cert, &opts(false))
            .unwrap()
            .to_der(&doc)
            .unwrap();
        // The content inside the message, changed.
        let at = der.windows(doc.len()).position(|w| w == doc).unwrap();
        let mut changed = der.clone();
        changed[at] ^= 1;
        assert_eq!(
            check(&changed, None, &[]).unwrap_err().kind,
            ErrorKind::BadSignature
        );
        // The signature value, changed (its last octet).
        let mut sig = der.clone();
        let last = sig.len() - 1;
        sig[last] ^= 1;
        assert!(check(&sig, None, &[]).is_err());
        // Another key than the certificate's.
        let (other, _) = signer(KeyType::EcP256);
        let e = sign(&doc, &other, &cert, &opts(false)).err().unwrap();
        assert_eq!(e.kind, ErrorKind::PolicyViolation, "{e}");
        // The content written must be the content signed.
        let s = sign(&doc, &key, &cert, &opts(false)).unwrap();
        assert!(s.to_der(b"not the document").is_err());
    }

    #[test]
    fn every_truncation_and_garbage_is_an_error_not_a_panic() {
        let (key, cert) = signer(KeyType::EcP256);
        let doc = b"x".to_vec();
        let der = sign(&doc, &key, &cert, &opts(false))
            .unwrap()
            .to_der(&doc)
            .unwrap();
        for n in 0..der.len() {
            assert!(check(&der[..n], None, &[]).is_err(), "prefix {n}");
        }
        for i in 0..der.len() {
            let mut m = der.clone();
            m[i] = m[i].wrapping_add(0x41);
            // A change may land where nothing is signed (the certificate, which is
            // then not the signer's): never does it pass with other content.
            if let Ok(c) = check(&m, None, &[]) {
                assert_eq!(c.content, doc.as_slice(), "octet {i}");
                assert_eq!(c.signers[0].certificate, cert, "octet {i}");
            }
        }
        assert!(check(b"\x30\x80\x00\x00", None, &[]).is_err());
    }

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

    #[test]
    fn sha1_is_refused_by_name() {
        let e = Digest::of_oid(&ID_SHA1).unwrap_err();
        assert!(e.detail.contains("SHA-1"), "{e}");
    }

    #[test]
    fn a_timestamp_must_be_a_sequence() {
        let (key, cert) = signer(KeyType::EcP256);
        let mut s = sign(b"d", &key, &cert, &opts(false)).unwrap();
        assert!(s.add_timestamp(b"\x04\x00").is_err());
        s.add_timestamp(b"\x30\x00").unwrap();
        // The token rides in the unsigned attributes: the signature still holds.
        let der = s.to_der(b"d").unwrap();
        let c = check(&der, None, &[]).unwrap();
        assert_eq!(c.signers[0].timestamp.as_deref(), Some(&b"\x30\x00"[..]));
    }
}
