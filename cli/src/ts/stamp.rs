//! `gpki ts stamp`: a file's hash sent to a TSA, and its reply checked and kept.

use std::path::{Path, PathBuf};

use clap::Args;
use der::asn1::{Int, OctetString};
use der::{Decode, Encode};
use gpki_pki::{Error, ErrorKind, Result};
use gpki_tsa::token::ImprintHash;
use serde_json::json;
use spki::AlgorithmIdentifierOwned;
use x509_tsp::{MessageImprint, TimeStampReq, TimeStampResp, TspVersion};

use super::{gen_time_text, open_token, reply_status};
use crate::{emit, read_file, Global};

/// The arguments of `gpki ts stamp`.
#[derive(Args)]
pub struct StampArgs {
    #[arg(long)]
    file: PathBuf,
    /// TSA URL, e.g. http://127.0.0.1:8081/
    #[arg(long)]
    url: String,
    #[arg(long)]
    out: PathBuf,
    #[arg(long, default_value = "sha256", value_parser = ["sha256", "sha384", "sha512"])]
    hash: String,
    /// Ask for this policy OID
    #[arg(long)]
    policy: Option<String>,
    /// Do not ask the TSA to include its certificate
    #[arg(long)]
    no_cert: bool,
}

/// Timestamp a file: send its hash to a TSA and write the reply (.tsr)
pub(super) fn stamp(g: &Global, args: StampArgs) -> Result<()> {
    let StampArgs {
        file,
        url,
        out,
        hash,
        policy,
        no_cert,
    } = args;
    let v = request_token(&file, &url, &out, &hash, policy.as_deref(), !no_cert)?;
    emit(g.output, v.clone(), || {
        format!(
            "{}: token {} from {url}, genTime {}, written to {}",
            file.display(),
            v["serial"].as_str().unwrap_or(""),
            v["gen_time"].as_str().unwrap_or(""),
            out.display()
        )
    });
    Ok(())
}

fn hash_of(name: &str) -> Result<ImprintHash> {
    ImprintHash::from_name(name).ok_or_else(|| Error::malformed(format!("unknown hash `{name}`")))
}

/// Sends `file`'s hash to the TSA at `url`, checks the reply is for it (nonce,
/// imprint) and writes it to `out`; what `gpki ts stamp` prints.
fn request_token(
    file: &Path,
    url: &str,
    out: &Path,
    hash: &str,
    policy: Option<&str>,
    cert_req: bool,
) -> Result<serde_json::Value> {
    let h = hash_of(hash)?;
    let data = read_file(file, "file")?;
    let mut nonce = [0u8; 8];
    openssl::rand::rand_bytes(&mut nonce).map_err(|e| Error::internal(format!("CSPRNG: {e}")))?;
    // Positive and minimal as a DER INTEGER: top bit clear, first octet non-zero.
    nonce[0] = (nonce[0] & 0x7f) | 0x40;
    let req = TimeStampReq {
        version: TspVersion::V1,
        message_imprint: MessageImprint {
            hash_algorithm: AlgorithmIdentifierOwned {
                oid: h.oid(),
                parameters: None,
            },
            hashed_message: OctetString::new(h.digest(&data))?,
        },
        req_policy: policy
            .map(|p| {
                p.parse()
                    .map_err(|e| Error::malformed(format!("policy `{p}`: {e}")))
            })
            .transpose()?,
        nonce: Some(Int::new(&nonce)?),
        cert_req,
        extensions: None,
    };
    let reply = ureq::post(url)
        .set("Content-Type", "application/timestamp-query")
        .timeout(std::time::Duration::from_secs(10))
        .send_bytes(&req.to_der()?)
        .map_err(|e| {
            Error::new(
                ErrorKind::Unavailable,
                format!("timestamp request to {url}: {e}"),
            )
        })?;
    let mut der_bytes = Vec::new();
    std::io::Read::read_to_end(
        &mut std::io::Read::take(reply.into_reader(), 1 << 20),
        &mut der_bytes,
    )
    .map_err(|e| Error::new(ErrorKind::Unavailable, format!("reading the reply: {e}")))?;
    let (status, text) = reply_status(&der_bytes)?;
    if status > 1 {
        return Err(Error::new(
            ErrorKind::PolicyViolation,
            format!(
                "the TSA refused (status {status}): {}",
                text.unwrap_or_else(|| "no reason given".into())
            ),
        ));
    }
    let resp = TimeStampResp::from_der(&der_bytes)
        .map_err(|e| Error::malformed(format!("the reply is not a TimeStampResp: {e}")))?;
    let token = resp
        .time_stamp_token
        .ok_or_else(|| Error::malformed("the reply is granted but holds no token"))?;
    let (_, tst) = open_token(&token)?;
    if tst.nonce.as_ref().map(|n| n.as_bytes()) != Some(Int::new(&nonce)?.as_bytes()) {
        return Err(Error::new(
            ErrorKind::BadSignature,
            "the reply's nonce is not the one sent",
        ));
    }
    if tst.message_imprint.hashed_message.as_bytes() != h.digest(&data).as_slice() {
        return Err(Error::new(
            ErrorKind::BadSignature,
            "the token is for another imprint",
        ));
    }
    crate::write_file(out, &der_bytes)?;
    Ok(json!({
        "file": file.display().to_string(),
        "out": out.display().to_string(),
        "serial": hex::encode(tst.serial_number.as_bytes()),
        "gen_time": gen_time_text(&tst.gen_time),
        "policy": tst.policy.to_string(),
    }))
}
