//! `gpki ts`: timestamping documents against a TSA, verifying tokens (ours or
//! anyone's), and finding a token in the store's log.

mod stamp;
mod verify;

use clap::{Args, Subcommand};
use cms::content_info::ContentInfo;
use cms::signed_data::SignedData;
use der::Decode;
use gpki_pki::{Error, Result};
use gpki_tsa::token::{ID_CT_TST_INFO, ID_SIGNED_DATA};
use serde_json::json;
use x509_tsp::TstInfo;

use crate::{emit, Global};

#[derive(Subcommand)]
pub enum TsCmd {
    /// Timestamp a file: send its hash to a TSA and write the reply (.tsr)
    Stamp(stamp::StampArgs),
    /// Verify a token (.tsr reply or bare token) against a file and trust anchors
    Verify(verify::VerifyArgs),
    /// Find a token in the store's log by serial (hex)
    Lookup(LookupArgs),
}

pub async fn run(g: &Global, cmd: TsCmd) -> Result<()> {
    match cmd {
        TsCmd::Stamp(a) => stamp::stamp(g, a),
        TsCmd::Verify(a) => verify::verify(g, a),
        TsCmd::Lookup(a) => lookup(g, a).await,
    }
}

/// The arguments of `gpki ts lookup`.
#[derive(Args)]
pub struct LookupArgs {
    #[arg(long)]
    serial: String,
}

/// Find a token in the store's log by serial (hex)
async fn lookup(g: &Global, args: LookupArgs) -> Result<()> {
    let LookupArgs { serial } = args;
    let store = g.store().await?;
    let serial = serial.trim_start_matches("0x").to_ascii_lowercase();
    let serial = serial.trim_start_matches('0');
    let found = store.token_by_serial(serial).await?;
    if found.is_empty() {
        return Err(Error::not_found(format!(
            "no token with serial {serial} in the log"
        )));
    }
    emit(g.output, json!(found), || {
        found
            .iter()
            .map(|t| {
                format!(
                    "token {} by {}: genTime {}, policy {}, {} {}{}",
                    t.serial,
                    t.tsa,
                    gpki_pki::time::rfc3339(t.gen_time),
                    t.policy,
                    t.hash_alg,
                    t.imprint,
                    t.nonce
                        .as_ref()
                        .map(|n| format!(", nonce {n}"))
                        .unwrap_or_default()
                )
            })
            .collect::<Vec<_>>()
            .join("\n")
    });
    Ok(())
}

fn gen_time_text(t: &der::asn1::GeneralizedTime) -> String {
    gpki_pki::time::rfc3339(t.to_unix_duration().as_secs() as i64)
}

/// The SignedData and TSTInfo of a token.
fn open_token(token: &ContentInfo) -> Result<(SignedData, TstInfo)> {
    if token.content_type != ID_SIGNED_DATA {
        return Err(Error::malformed("the token is not CMS SignedData"));
    }
    let sd: SignedData = token
        .content
        .decode_as()
        .map_err(|e| Error::malformed(format!("token SignedData: {e}")))?;
    if sd.encap_content_info.econtent_type != ID_CT_TST_INFO {
        return Err(Error::malformed("the token's content is not a TSTInfo"));
    }
    let econtent = sd
        .encap_content_info
        .econtent
        .as_ref()
        .ok_or_else(|| Error::malformed("the token has no TSTInfo"))?;
    let tst = TstInfo::from_der(econtent.value())
        .map_err(|e| Error::malformed(format!("TSTInfo: {e}")))?;
    Ok((sd, tst))
}

/// The PKIStatus and first statusString of a TimeStampResp, read directly: cmpv2's
/// failInfo type cannot hold the failure bits above 15 that TSAs send.
fn reply_status(der_bytes: &[u8]) -> Result<(u8, Option<String>)> {
    use der::asn1::AnyRef;
    use der::Tagged;
    let bad = |e: der::Error| Error::malformed(format!("the reply is not a TimeStampResp: {e}"));
    let outer = AnyRef::from_der(der_bytes).map_err(bad)?;
    let mut r = der::SliceReader::new(outer.value()).map_err(bad)?;
    let info = AnyRef::decode(&mut r).map_err(bad)?;
    let mut ir = der::SliceReader::new(info.value()).map_err(bad)?;
    let status = AnyRef::decode(&mut ir).map_err(bad)?;
    if status.tag() != der::Tag::Integer || status.value().len() != 1 {
        return Err(Error::malformed(
            "the reply's PKIStatus is not a small INTEGER",
        ));
    }
    let mut text = None;
    if let Ok(next) = AnyRef::decode(&mut ir) {
        if next.tag() == der::Tag::Sequence {
            let mut sr = der::SliceReader::new(next.value()).map_err(bad)?;
            if let Ok(s) = AnyRef::decode(&mut sr) {
                text = Some(String::from_utf8_lossy(s.value()).into_owned());
            }
        }
    }
    Ok((status.value()[0], text))
}
