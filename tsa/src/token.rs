//! RFC 3161 requests and tokens, with the RFC 5816 signing-certificate attribute.
//! Requests are decoded with RustCrypto's x509-tsp; tokens are written directly
//! around parts encoded once per key, and signed with gpki's own `Signer`.

use const_oid::ObjectIdentifier;
use der::asn1::Int;
use der::{Decode, Encode, Tag, Tagged};
use gpki_pki::signed::push_tlv;
use gpki_pki::{Result, Signer};
use x509_tsp::{MessageImprint, TimeStampReq};

pub const ID_SIGNED_DATA: ObjectIdentifier = ObjectIdentifier::new_unwrap("1.2.840.113549.1.7.2");
pub const ID_CT_TST_INFO: ObjectIdentifier =
    ObjectIdentifier::new_unwrap("1.2.840.113549.1.9.16.1.4");
const ID_CONTENT_TYPE: ObjectIdentifier = ObjectIdentifier::new_unwrap("1.2.840.113549.1.9.3");
const ID_MESSAGE_DIGEST: ObjectIdentifier = ObjectIdentifier::new_unwrap("1.2.840.113549.1.9.4");
const ID_AA_SIGNING_CERTIFICATE_V2: ObjectIdentifier =
    ObjectIdentifier::new_unwrap("1.2.840.113549.1.9.16.2.47");
const ID_SHA256: ObjectIdentifier = ObjectIdentifier::new_unwrap("2.16.840.1.101.3.4.2.1");
const ID_SHA384: ObjectIdentifier = ObjectIdentifier::new_unwrap("2.16.840.1.101.3.4.2.2");
const ID_SHA512: ObjectIdentifier = ObjectIdentifier::new_unwrap("2.16.840.1.101.3.4.2.3");

/// PKIFailureInfo bits (RFC 3161 §2.4.2).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FailInfo {
    BadAlg = 0,
    BadRequest = 2,
    BadDataFormat = 5,
    TimeNotAvailable = 14,
    UnacceptedPolicy = 15,
    UnacceptedExtension = 16,
    SystemFailure = 25,
}

impl FailInfo {
    pub fn label(self) -> &'static str {
        match self {
            FailInfo::BadAlg => "bad_alg",
            FailInfo::BadRequest => "bad_request",
            FailInfo::BadDataFormat => "bad_data_format",
            FailInfo::TimeNotAvailable => "time_not_available",
            FailInfo::UnacceptedPolicy => "unaccepted_policy",
            FailInfo::UnacceptedExtension => "unaccepted_extension",
            FailInfo::SystemFailure => "system_failure",
        }
    }
}

/// A refused request: what to tell the requester.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Refusal {
    pub fail: FailInfo,
    pub text: String,
}

fn refuse(fail: FailInfo, text: impl Into<String>) -> Refusal {
    Refusal {
        fail,
        text: text.into(),
    }
}

/// The hash algorithms accepted in a messageImprint.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ImprintHash {
    Sha256,
    Sha384,
    Sha512,
}

impl ImprintHash {
    pub fn name(self) -> &'static str {
        match self {
            ImprintHash::Sha256 => "sha256",
            ImprintHash::Sha384 => "sha384",
            ImprintHash::Sha512 => "sha512",
        }
    }
    fn len(self) -> usize {
        match self {
            ImprintHash::Sha256 => 32,
            ImprintHash::Sha384 => 48,
            ImprintHash::Sha512 => 64,
        }
    }
    pub fn digest(self, data: &[u8]) -> Vec<u8> {
        match self {
            ImprintHash::Sha256 => openssl::sha::sha256(data).to_vec(),
            ImprintHash::Sha384 => openssl::sha::sha384(data).to_vec(),
            ImprintHash::Sha512 => openssl::sha::sha512(data).to_vec(),
        }
    }
    pub fn oid(self) -> ObjectIdentifier {
        match self {
            ImprintHash::Sha256 => ID_SHA256,
            ImprintHash::Sha384 => ID_SHA384,
            ImprintHash::Sha512 => ID_SHA512,
        }
    }
    pub fn from_name(name: &str) -> Option<ImprintHash> {
        Some(match name {
            "sha256" => ImprintHash::Sha256,
            "sha384" => ImprintHash::Sha384,
            "sha512" => ImprintHash::Sha512,
            _ => return None,
        })
    }
}

/// A checked request.
#[derive(Debug, Clone)]
pub struct Request {
    pub imprint: MessageImprint,
    /// The messageImprint's DER, copied into the TSTInfo.
    pub imprint_der: Vec<u8>,
    pub hash: ImprintHash,
    pub nonce: Option<Int>,
    pub cert_req: bool,
}

/// Decodes and checks a TimeStampReq against the TSA's policy.
pub fn check_request(
    body: &[u8],
    policy: &ObjectIdentifier,
) -> std::result::Result<Request, Refusal> {
    let req = TimeStampReq::from_der(body).map_err(|e| {
        refuse(
            FailInfo::BadDataFormat,
            format!("request is not a DER TimeStampReq: {e}"),
        )
    })?;
    let alg = &req.message_imprint.hash_algorithm;
    let hash = match alg.oid {
        o if o == ID_SHA256 => ImprintHash::Sha256,
        o if o == ID_SHA384 => ImprintHash::Sha384,
        o if o == ID_SHA512 => ImprintHash::Sha512,
        o => {
            return Err(refuse(
                FailInfo::BadAlg,
                format!("hash algorithm {o} is not accepted (SHA-256, SHA-384, SHA-512)"),
            ))
        }
    };
    if alg
        .parameters
        .as_ref()
        .is_some_and(|p| p.tag() != Tag::Null)
    {
        return Err(refuse(
            FailInfo::BadAlg,
            "hash algorithm parameters must be absent or NULL",
        ));
    }
    let got = req.message_imprint.hashed_message.as_bytes().len();
    if got != hash.len() {
        return Err(refuse(
            FailInfo::BadDataFormat,
            format!(
                "{} imprint is {got} octets, not {}",
                hash.name(),
                hash.len()
            ),
        ));
    }
    if let Some(p) = &req.req_policy {
        if p != policy {
            return Err(refuse(
                FailInfo::UnacceptedPolicy,
                format!("policy {p} is not this TSA's ({policy})"),
            ));
        }
    }
    if req.extensions.as_ref().is_some_and(|e| !e.is_empty()) {
        return Err(refuse(
            FailInfo::UnacceptedExtension,
            "request extensions are not supported",
        ));
    }
    if req.nonce.as_ref().is_some_and(|n| n.as_bytes().len() > 64) {
        return Err(refuse(
            FailInfo::BadRequest,
            "nonce is longer than 64 octets",
        ));
    }
    let imprint_der = req.message_imprint.to_der().map_err(|e| {
        refuse(
            FailInfo::BadDataFormat,
            format!("messageImprint does not re-encode: {e}"),
        )
    })?;
    Ok(Request {
        imprint_der,
        imprint: req.message_imprint,
        hash,
        nonce: req.nonce,
        cert_req: req.cert_req,
    })
}

/// What signs tokens: the key, its certificate, and every part of a token that
/// depends only on them, encoded once. A token is then a TSTInfo, a digest and a
/// signature put together around those parts (RFC 3161 §2.4.2, RFC 5652 §5).
pub struct TsaKey {
    pub signer: Box<dyn Signer>,
    pub cert: x509_cert::Certificate,
    pub cert_der: Vec<u8>,
    pub not_after: i64,
    /// TSTInfo `tsa [0] EXPLICIT GeneralName` (directoryName [4] EXPLICIT Name).
    tsa_name: Vec<u8>,
    /// SignerInfo `sid`: IssuerAndSerialNumber.
    sid: Vec<u8>,
    /// The digest AlgorithmIdentifier (SignerInfo and SignedData).
    digest_alg: Vec<u8>,
    /// The signature AlgorithmIdentifier.
    sig_alg: Vec<u8>,
    /// SignedData `certificates [0] IMPLICIT` holding the TSA certificate and the
    /// CA certificates between it and its root.
    certs_field: Vec<u8>,
    /// The contentType and signingCertificateV2 (RFC 5816) signed attributes.
    attr_content_type: Vec<u8>,
    attr_signing_cert: Vec<u8>,
    /// Which hash the signature's digest uses.
    digest: ImprintHash,
}

fn seq(content: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(content.len() + 4);
    push_tlv(&mut out, 0x30, content);
    out
}

fn attribute(oid: &ObjectIdentifier, value_der: &[u8]) -> Result<Vec<u8>> {
    let mut set = Vec::with_capacity(value_der.len() + 4);
    push_tlv(&mut set, 0x31, value_der);
    let mut body = oid.to_der()?;
    body.extend_from_slice(&set);
    Ok(seq(&body))
}

impl TsaKey {
    /// Puts the CA certificates above the TSA certificate (not the root, which a
    /// relying party holds as its trust anchor) into tokens with certReq, so a
    /// verifier needs nothing but the root (RFC 3161 §2.4.1 requires only the TSA
    /// certificate; RFC 5652's CertificateSet may hold the path).
    pub fn with_chain(mut self, chain: &[Vec<u8>]) -> TsaKey {
        let mut all: Vec<&[u8]> = Vec::with_capacity(chain.len() + 1);
        all.push(&self.cert_der);
        all.extend(chain.iter().map(|c| c.as_slice()));
        // DER SET OF: members in ascending order of their encodings (X.690 §11.6).
        all.sort();
        all.dedup();
        let mut set = Vec::with_capacity(all.iter().map(|c| c.len()).sum());
        for c in all {
            set.extend_from_slice(c);
        }
        let mut field = Vec::with_capacity(set.len() + 4);
        push_tlv(&mut field, 0xa0, &set);
        self.certs_field = field;
        self
    }

    pub fn new(signer: Box<dyn Signer>, cert_der: Vec<u8>) -> Result<TsaKey> {
        let cert = x509_cert::Certificate::from_der(&cert_der)
            .map_err(|e| gpki_pki::Error::malformed(format!("TSA certificate: {e}")))?;
        let tbs = &cert.tbs_certificate;
        let issuer = tbs.issuer.to_der()?;
        let serial = tbs.serial_number.to_der()?;
        // ESSCertIDv2 { certHash (SHA-256, the default algorithm, so omitted),
        //               issuerSerial { GeneralNames { directoryName issuer }, serial } }
        let mut general_names = Vec::new();
        push_tlv(&mut general_names, 0xa4, &issuer);
        let mut issuer_serial = seq(&general_names);
        issuer_serial.extend_from_slice(&serial);
        let mut ess = Vec::new();
        push_tlv(&mut ess, 0x04, &openssl::sha::sha256(&cert_der));
        ess.extend_from_slice(&seq(&issuer_serial));
        let signing_cert_v2 = seq(&seq(&seq(&ess)));
        let digest = match signer.algorithm().as_str() {
            a if a.contains("384") => ImprintHash::Sha384,
            a if a.contains("512") => ImprintHash::Sha512,
            _ => ImprintHash::Sha256,
        };
        let mut dn = Vec::new();
        push_tlv(&mut dn, 0xa4, &tbs.subject.to_der()?);
        let mut tsa_name = Vec::new();
        push_tlv(&mut tsa_name, 0xa0, &dn);
        let mut sid = issuer.clone();
        sid.extend_from_slice(&serial);
        let mut certs_field = Vec::new();
        push_tlv(&mut certs_field, 0xa0, &cert_der);
        Ok(TsaKey {
            not_after: gpki_pki::time::unix_seconds(&tbs.validity.not_after),
            tsa_name,
            sid: seq(&sid),
            digest_alg: seq(&digest.oid().to_der()?),
            sig_alg: signer.algorithm().identifier().to_der()?,
            certs_field,
            attr_content_type: attribute(&ID_CONTENT_TYPE, &ID_CT_TST_INFO.to_der()?)?,
            attr_signing_cert: attribute(&ID_AA_SIGNING_CERTIFICATE_V2, &signing_cert_v2)?,
            digest,
            signer,
            cert,
            cert_der,
        })
    }

    /// A granted TimeStampResp holding a token for `req`. `policy_der` is the
    /// policy OID's DER.
    pub fn token(
        &self,
        req: &Request,
        policy_der: &[u8],
        serial: u64,
        gen_time: std::time::Duration,
        accuracy_ms: Option<u32>,
    ) -> Result<Vec<u8>> {
        // TSTInfo (RFC 3161 §2.4.2)
        let mut tst = Vec::with_capacity(160 + self.tsa_name.len() + req.imprint_der.len());
        tst.extend_from_slice(&[0x02, 0x01, 0x01]);
        tst.extend_from_slice(policy_der);
        tst.extend_from_slice(&req.imprint_der);
        push_tlv(&mut tst, 0x02, &positive_bytes(serial));
        push_gen_time(&mut tst, gen_time)?;
        // Accuracy { seconds INTEGER OPTIONAL, millis [0] INTEGER OPTIONAL }
        if let Some(accuracy_ms) = accuracy_ms {
            let mut accuracy = Vec::with_capacity(12);
            if accuracy_ms >= 1000 {
                push_tlv(
                    &mut accuracy,
                    0x02,
                    &positive_bytes(u64::from(accuracy_ms / 1000)),
                );
            }
            if !accuracy_ms.is_multiple_of(1000) {
                push_tlv(
                    &mut accuracy,
                    0x80,
                    &positive_bytes(u64::from(accuracy_ms % 1000)),
                );
            }
            push_tlv(&mut tst, 0x30, &accuracy);
        }
        if let Some(n) = &req.nonce {
            push_tlv(&mut tst, 0x02, n.as_bytes());
        }
        tst.extend_from_slice(&self.tsa_name);
        let tst = seq(&tst);

        // Signed attributes: a DER SET OF, so sorted by encoding.
        let mut md = Vec::with_capacity(70);
        push_tlv(&mut md, 0x04, &self.digest.digest(&tst));
        let attr_md = attribute(&ID_MESSAGE_DIGEST, &md)?;
        let mut attrs = [
            &self.attr_content_type[..],
            &attr_md[..],
            &self.attr_signing_cert[..],
        ];
        attrs.sort_unstable();
        let attrs = attrs.concat();
        let mut signed = Vec::with_capacity(attrs.len() + 4);
        push_tlv(&mut signed, 0x31, &attrs);
        let signature = self.signer.sign(&signed)?;

        // SignerInfo { 1, sid, digestAlg, [0] signedAttrs, signatureAlg, signature }
        let mut si = Vec::with_capacity(signed.len() + signature.len() + 256);
        si.extend_from_slice(&[0x02, 0x01, 0x01]);
        si.extend_from_slice(&self.sid);
        si.extend_from_slice(&self.digest_alg);
        push_tlv(&mut si, 0xa0, &attrs);
        si.extend_from_slice(&self.sig_alg);
        push_tlv(&mut si, 0x04, &signature);
        let si = seq(&si);

        // SignedData { 3, {digestAlg}, encapContentInfo, [0] certificates, {SignerInfo} }
        let mut econtent = Vec::with_capacity(tst.len() + 4);
        push_tlv(&mut econtent, 0x04, &tst);
        let mut encap = ID_CT_TST_INFO.to_der()?;
        push_tlv(&mut encap, 0xa0, &econtent);
        let mut sd = Vec::with_capacity(tst.len() + si.len() + self.certs_field.len() + 64);
        sd.extend_from_slice(&[0x02, 0x01, 0x03]);
        push_tlv(&mut sd, 0x31, &self.digest_alg);
        push_tlv(&mut sd, 0x30, &encap);
        if req.cert_req {
            sd.extend_from_slice(&self.certs_field);
        }
        push_tlv(&mut sd, 0x31, &si);
        let sd = seq(&sd);

        // ContentInfo, inside TimeStampResp { PKIStatusInfo { granted }, token }
        let mut ci = ID_SIGNED_DATA.to_der()?;
        push_tlv(&mut ci, 0xa0, &sd);
        let mut body = Vec::with_capacity(ci.len() + 16);
        body.extend_from_slice(&[0x30, 0x03, 0x02, 0x01, 0x00]);
        push_tlv(&mut body, 0x30, &ci);
        Ok(seq(&body))
    }
}

/// The minimal positive big-endian encoding of `v`.
fn positive_bytes(v: u64) -> Vec<u8> {
    let b = v.to_be_bytes();
    let start = b.iter().position(|x| *x != 0).unwrap_or(7);
    let mut out = Vec::with_capacity(9);
    if b[start] & 0x80 != 0 {
        out.push(0);
    }
    out.extend_from_slice(&b[start..]);
    out
}

/// A rejection TimeStampResp: PKIStatusInfo { rejection, statusString, failInfo }.
pub fn rejection(r: &Refusal) -> Vec<u8> {
    let bit = r.fail as usize;
    let mut bits = vec![(7 - bit % 8) as u8];
    bits.extend(std::iter::repeat_n(0u8, bit / 8 + 1));
    bits[1 + bit / 8] = 0x80 >> (bit % 8);
    let mut text = Vec::new();
    push_tlv(&mut text, 0x0c, r.text.as_bytes());
    let mut info = vec![0x02, 0x01, 0x02];
    push_tlv(&mut info, 0x30, &text);
    push_tlv(&mut info, 0x03, &bits);
    let mut status = Vec::new();
    push_tlv(&mut status, 0x30, &info);
    let mut out = Vec::new();
    push_tlv(&mut out, 0x30, &status);
    out
}

/// genTime as DER GeneralizedTime: whole seconds, or with the milliseconds of
/// `t` as a fraction, trailing zeros dropped and no point when there are none
/// (X.690 §11.7, RFC 3161 §2.4.2).
pub fn push_gen_time(out: &mut Vec<u8>, t: std::time::Duration) -> Result<()> {
    let mut whole = Vec::with_capacity(17);
    gpki_pki::time::push_generalized_time(&mut whole, t.as_secs() as i64)?;
    let millis = t.subsec_millis();
    if millis == 0 {
        out.extend_from_slice(&whole);
        return Ok(());
    }
    // whole = 0x18 0x0f YYYYMMDDHHMMSS Z
    let mut text = whole[2..whole.len() - 1].to_vec();
    let fraction = format!("{millis:03}");
    text.push(b'.');
    text.extend_from_slice(fraction.trim_end_matches('0').as_bytes());
    text.push(b'Z');
    push_tlv(out, 0x18, &text);
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn gen_time(secs: u64, millis: u64) -> String {
        let mut out = Vec::new();
        push_gen_time(
            &mut out,
            std::time::Duration::from_millis(secs * 1000 + millis),
        )
        .unwrap();
        assert_eq!(out[0], 0x18);
        assert_eq!(usize::from(out[1]), out.len() - 2);
        String::from_utf8(out[2..].to_vec()).unwrap()
    }

    // X.690 §11.7.3–4: no trailing zeros in the fraction, no point without one.
    #[test]
    fn gen_time_fractions_follow_der() {
        assert_eq!(gen_time(1_700_000_000, 0), "20231114221320Z");
        assert_eq!(gen_time(1_700_000_000, 123), "20231114221320.123Z");
        assert_eq!(gen_time(1_700_000_000, 120), "20231114221320.12Z");
        assert_eq!(gen_time(1_700_000_000, 100), "20231114221320.1Z");
        assert_eq!(gen_time(1_700_000_000, 5), "20231114221320.005Z");
    }

    #[test]
    fn rejections_decode_with_the_failure_bit() {
        for fail in [
            FailInfo::BadAlg,
            FailInfo::BadDataFormat,
            FailInfo::UnacceptedPolicy,
            FailInfo::SystemFailure,
        ] {
            let der = rejection(&refuse(fail, "why"));
            use der::Encode as _;
            // TimeStampResp { PKIStatusInfo { rejection (2), statusString, failInfo } }
            // and no token (cmpv2 0.2 cannot decode failInfo bits past 15).
            let outer = der::asn1::AnyRef::from_der(&der).unwrap();
            let info = der::asn1::AnyRef::from_der(outer.value()).unwrap();
            assert_eq!(
                info.encoded_len().unwrap(),
                der::Length::try_from(outer.value().len()).unwrap()
            );
            assert_eq!(&info.value()[..3], &[0x02, 0x01, 0x02]);
            // The failInfo BIT STRING (the last element): named bit `fail` set, as
            // few octets as it needs, the unused bits counted (X.690 11.2.2).
            let bits = &der[der.len() - (2 + 1 + fail as usize / 8 + 1)..];
            let n = fail as usize;
            assert_eq!(bits[0], 0x03, "{fail:?}");
            assert_eq!(bits[2] as usize, 7 - n % 8, "{fail:?}");
            assert_eq!(bits[3 + n / 8], 0x80 >> (n % 8), "{fail:?}");
            assert!(bits[3..3 + n / 8].iter().all(|b| *b == 0), "{fail:?}");
        }
    }

    #[test]
    fn serials_are_minimal_positive_integers() {
        assert_eq!(positive_bytes(1), vec![1]);
        assert_eq!(positive_bytes(0x80), vec![0, 0x80]);
        assert_eq!(positive_bytes(0x0102), vec![1, 2]);
    }
}
