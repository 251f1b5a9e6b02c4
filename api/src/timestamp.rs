//! RFC 3161 timestamps of signatures: asking a TSA for a token over a signature
//! value, and checking a token's own signature and imprint. Whether the TSA is
//! trusted for time stamping and not revoked is [`crate::verifier`]'s part.

use std::time::Duration;

use der::asn1::{Int, OctetString};
use der::{Decode, Encode};
use gpki_pki::{Error, ErrorKind, Result};
use spki::AlgorithmIdentifierOwned;
use x509_tsp::{MessageImprint, TimeStampReq, TspVersion, TstInfo};

use crate::signed::{self, Digest, ID_CT_TST_INFO};
use gpki_pki::tlv;

/// The largest TSA reply read.
const MAX_REPLY: usize = 1 << 20;

/// What a checked token says.
#[derive(Debug, Clone)]
pub struct Token {
    /// genTime, Unix seconds.
    pub gen_time: i64,
    /// The token's serial, hex.
    pub serial: String,
    pub policy: String,
    /// The TSA's certificate (DER) and the certificates the token carries.
    pub tsa_certificate: Vec<u8>,
    pub certificates: Vec<Vec<u8>>,
}

/// Asks the TSA at `url` for a token over `data` (hashed with `digest`), with a
/// nonce, and the TSA's certificate in the token. Returns the token (ContentInfo).
pub async fn request(
    client: &reqwest::Client,
    url: &str,
    digest: Digest,
    data: &[u8],
    timeout: Duration,
) -> Result<Vec<u8>> {
    let mut nonce = [0u8; 8];
    openssl::rand::rand_bytes(&mut nonce).map_err(|e| Error::internal(format!("CSPRNG: {e}")))?;
    // Positive and minimal as a DER INTEGER: top bit clear, first octet non-zero.
    nonce[0] = (nonce[0] & 0x7f) | 0x40;
    let imprint = digest.digest(data);
    let req = TimeStampReq {
        version: TspVersion::V1,
        message_imprint: MessageImprint {
            hash_algorithm: AlgorithmIdentifierOwned {
                oid: digest.oid(),
                parameters: None,
            },
            hashed_message: OctetString::new(imprint.clone())?,
        },
        req_policy: None,
        nonce: Some(Int::new(&nonce)?),
        cert_req: true,
        extensions: None,
    };
    let unavailable =
        |e: String| Error::new(ErrorKind::Unavailable, format!("timestamp from {url}: {e}"));
    let reply = client
        .post(url)
        .header("Content-Type", "application/timestamp-query")
        .timeout(timeout)
        .body(req.to_der()?)
        .send()
        .await
        .map_err(|e| unavailable(e.to_string()))?;
    if !reply.status().is_success() {
        return Err(unavailable(format!("HTTP {}", reply.status())));
    }
    let body = crate::status::read_limited(reply, MAX_REPLY)
        .await
        .map_err(unavailable)?;
    // TimeStampResp { status PKIStatusInfo { status, ... }, timeStampToken }, read
    // directly: cmpv2's failInfo type cannot hold the failure bits above 15 that
    // TSAs send in refusals.
    let resp = tlv::only(&body, 0x30, "the TSA's reply")?;
    let mut r = tlv::Reader::new(resp.value);
    let info = r.expect(0x30, "the TSA's reply PKIStatusInfo")?;
    let status = tlv::Reader::new(info.value).expect(0x02, "PKIStatus")?;
    if status.value != [0] && status.value != [1] {
        return Err(Error::new(
            ErrorKind::Unavailable,
            format!(
                "the TSA at {url} refused (PKIStatus {})",
                hex::encode(status.value)
            ),
        ));
    }
    let token = r
        .expect(0x30, "the TSA's reply timeStampToken")?
        .raw
        .to_vec();
    check(&token, data, &[])?;
    let tst = tst_info(&token)?;
    if tst.nonce.as_ref().map(|n| n.as_bytes()) != Some(Int::new(&nonce)?.as_bytes()) {
        return Err(Error::new(
            ErrorKind::BadSignature,
            "the TSA's token does not carry the nonce sent",
        ));
    }
    Ok(token)
}

fn tst_info(token: &[u8]) -> Result<TstInfo> {
    let ci = cms::content_info::ContentInfo::from_der(token)
        .map_err(|e| Error::malformed(format!("timestamp token: {e}")))?;
    let sd: cms::signed_data::SignedData = ci
        .content
        .decode_as()
        .map_err(|e| Error::malformed(format!("timestamp token SignedData: {e}")))?;
    let econtent = sd
        .encap_content_info
        .econtent
        .ok_or_else(|| Error::malformed("the timestamp token has no TSTInfo"))?;
    let octets = OctetString::from_der(&econtent.to_der()?)
        .map_err(|e| Error::malformed(format!("TSTInfo: {e}")))?;
    TstInfo::from_der(octets.as_bytes()).map_err(|e| Error::malformed(format!("TSTInfo: {e}")))
}

/// Checks that `token` is a TimeStampToken over `data`: its signature holds, it
/// binds the TSA certificate (RFC 5816 / RFC 2634 signing-certificate attribute),
/// and its imprint is `data`'s hash.
pub fn check(token: &[u8], data: &[u8], extra_certs: &[Vec<u8>]) -> Result<Token> {
    let checked =
        signed::check(token, None, extra_certs).map_err(|e| e.context("timestamp token"))?;
    if checked.content_type != ID_CT_TST_INFO {
        return Err(Error::malformed(
            "the timestamp token's content is not a TSTInfo",
        ));
    }
    let [signer] = checked.signers.as_slice() else {
        return Err(Error::malformed("a timestamp token has exactly one signer"));
    };
    if !signer.certificate_bound {
        return Err(Error::new(
            ErrorKind::BadSignature,
            "the timestamp token does not bind its TSA certificate (signing-certificate attribute)",
        ));
    }
    let tst = TstInfo::from_der(checked.content)
        .map_err(|e| Error::malformed(format!("TSTInfo: {e}")))?;
    let digest = Digest::of_oid(&tst.message_imprint.hash_algorithm.oid)?;
    if tst.message_imprint.hashed_message.as_bytes() != digest.digest(data).as_slice() {
        return Err(Error::new(
            ErrorKind::BadSignature,
            "the timestamp token is over something else: its imprint is not the signature's",
        ));
    }
    Ok(Token {
        gen_time: tst.gen_time.to_unix_duration().as_secs() as i64,
        serial: hex::encode(tst.serial_number.as_bytes()),
        policy: tst.policy.to_string(),
        tsa_certificate: signer.certificate.clone(),
        certificates: checked.certificates.clone(),
    })
}
