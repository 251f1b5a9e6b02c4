//! RFC 3161 requests and tokens, with the RFC 5816 signing-certificate attribute.
//! Types come from RustCrypto's x509-tsp and cms; gpki signs the DER of the signed
//! attributes with its own `Signer`.

use cms::cert::{CertificateChoices, IssuerAndSerialNumber};
use cms::content_info::{CmsVersion, ContentInfo};
use cms::signed_data::{
    CertificateSet, EncapsulatedContentInfo, SignedData, SignerIdentifier, SignerInfo, SignerInfos,
};
use const_oid::ObjectIdentifier;
use der::asn1::{Any, GeneralizedTime, Int, OctetString, SetOfVec};
use der::{Decode, Encode, Tag, Tagged};
use gpki_pki::signed::push_tlv;
use gpki_pki::{Result, Signer};
use spki::AlgorithmIdentifierOwned;
use x509_cert::attr::Attribute;
use x509_cert::ext::pkix::name::GeneralName;
use x509_tsp::{Accuracy, MessageImprint, TimeStampReq, TspVersion, TstInfo};

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
    Ok(Request {
        imprint: req.message_imprint,
        hash,
        nonce: req.nonce,
        cert_req: req.cert_req,
    })
}

/// What signs tokens: the key, its certificate, and what is derived from them once.
pub struct TsaKey {
    pub signer: Box<dyn Signer>,
    pub cert: x509_cert::Certificate,
    pub cert_der: Vec<u8>,
    pub not_after: i64,
    /// The signingCertificateV2 attribute value (RFC 5816), encoded once.
    signing_cert_v2: Any,
    /// Which hash the signature's digest uses.
    digest: ImprintHash,
}

impl TsaKey {
    pub fn new(signer: Box<dyn Signer>, cert_der: Vec<u8>) -> Result<TsaKey> {
        let cert = x509_cert::Certificate::from_der(&cert_der)
            .map_err(|e| gpki_pki::Error::malformed(format!("TSA certificate: {e}")))?;
        // ESSCertIDv2 { certHash (SHA-256, the default algorithm, so omitted),
        //               issuerSerial { GeneralNames { directoryName issuer }, serial } }
        let tbs = &cert.tbs_certificate;
        let mut general_names = Vec::new();
        push_tlv(&mut general_names, 0xa4, &tbs.issuer.to_der()?);
        let mut issuer_serial_body = Vec::new();
        push_tlv(&mut issuer_serial_body, 0x30, &general_names);
        issuer_serial_body.extend_from_slice(&tbs.serial_number.to_der()?);
        let mut ess_body = Vec::new();
        push_tlv(&mut ess_body, 0x04, &openssl::sha::sha256(&cert_der));
        push_tlv(&mut ess_body, 0x30, &issuer_serial_body);
        let mut ess = Vec::new();
        push_tlv(&mut ess, 0x30, &ess_body);
        let mut certs = Vec::new();
        push_tlv(&mut certs, 0x30, &ess);
        let mut v2 = Vec::new();
        push_tlv(&mut v2, 0x30, &certs);
        let signing_cert_v2 = Any::from_der(&v2)?;
        let digest = match signer.algorithm().as_str() {
            a if a.contains("384") => ImprintHash::Sha384,
            a if a.contains("512") => ImprintHash::Sha512,
            _ => ImprintHash::Sha256,
        };
        let not_after = gpki_pki::time::unix_seconds(&tbs.validity.not_after);
        Ok(TsaKey {
            signer,
            cert,
            cert_der,
            not_after,
            signing_cert_v2,
            digest,
        })
    }

    /// A granted TimeStampResp holding a token for `req`.
    pub fn token(
        &self,
        req: &Request,
        policy: &ObjectIdentifier,
        serial: u64,
        gen_time: std::time::Duration,
        accuracy_ms: u32,
    ) -> Result<Vec<u8>> {
        let accuracy = Accuracy {
            seconds: (accuracy_ms >= 1000).then_some(u64::from(accuracy_ms / 1000)),
            millis: (!accuracy_ms.is_multiple_of(1000)).then_some((accuracy_ms % 1000) as i16),
            micros: None,
        };
        let tst = TstInfo {
            version: TspVersion::V1,
            policy: *policy,
            message_imprint: req.imprint.clone(),
            serial_number: Int::new(&positive_bytes(serial))?,
            gen_time: GeneralizedTime::from_unix_duration(gen_time)?,
            accuracy: Some(accuracy),
            ordering: false,
            nonce: req.nonce.clone(),
            tsa: Some(GeneralName::DirectoryName(
                self.cert.tbs_certificate.subject.clone(),
            )),
            extensions: None,
        };
        let tst_der = tst.to_der()?;
        let attr = |oid, value: Any| -> Result<Attribute> {
            Ok(Attribute {
                oid,
                values: SetOfVec::try_from(vec![value])?,
            })
        };
        let signed_attrs = SetOfVec::try_from(vec![
            attr(ID_CONTENT_TYPE, Any::encode_from(&ID_CT_TST_INFO)?)?,
            attr(
                ID_MESSAGE_DIGEST,
                Any::new(Tag::OctetString, self.digest.digest(&tst_der))?,
            )?,
            attr(ID_AA_SIGNING_CERTIFICATE_V2, self.signing_cert_v2.clone())?,
        ])?;
        let signature = self.signer.sign(&signed_attrs.to_der()?)?;
        let digest_alg = AlgorithmIdentifierOwned {
            oid: self.digest.oid(),
            parameters: None,
        };
        let tbs = &self.cert.tbs_certificate;
        let signer_info = SignerInfo {
            version: CmsVersion::V1,
            sid: SignerIdentifier::IssuerAndSerialNumber(IssuerAndSerialNumber {
                issuer: tbs.issuer.clone(),
                serial_number: tbs.serial_number.clone(),
            }),
            digest_alg: digest_alg.clone(),
            signed_attrs: Some(signed_attrs),
            signature_algorithm: self.signer.algorithm().identifier(),
            signature: OctetString::new(signature)?,
            unsigned_attrs: None,
        };
        let certificates = if req.cert_req {
            Some(CertificateSet(SetOfVec::try_from(vec![
                CertificateChoices::Certificate(self.cert.clone()),
            ])?))
        } else {
            None
        };
        let signed_data = SignedData {
            version: CmsVersion::V3,
            digest_algorithms: SetOfVec::try_from(vec![digest_alg])?,
            encap_content_info: EncapsulatedContentInfo {
                econtent_type: ID_CT_TST_INFO,
                econtent: Some(Any::new(Tag::OctetString, tst_der)?),
            },
            certificates,
            crls: None,
            signer_infos: SignerInfos(SetOfVec::try_from(vec![signer_info])?),
        };
        let token = ContentInfo {
            content_type: ID_SIGNED_DATA,
            content: Any::encode_from(&signed_data)?,
        };
        // TimeStampResp { status PKIStatusInfo { granted }, timeStampToken }
        let token_der = token.to_der()?;
        let mut body = vec![0x30, 0x03, 0x02, 0x01, 0x00];
        body.extend_from_slice(&token_der);
        let mut out = Vec::with_capacity(body.len() + 4);
        push_tlv(&mut out, 0x30, &body);
        Ok(out)
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

#[cfg(test)]
mod tests {
    use super::*;

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
