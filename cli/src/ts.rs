//! `gpki ts`: timestamping documents against a TSA, verifying tokens (ours or
//! anyone's), and finding a token in the store's log.

use std::path::{Path, PathBuf};

use clap::Subcommand;
use cms::content_info::ContentInfo;
use cms::signed_data::{SignedData, SignerIdentifier};
use const_oid::ObjectIdentifier;
use der::asn1::{Int, OctetString};
use der::{Decode, Encode};
use gpki_pki::{Error, ErrorKind, Result};
use gpki_tsa::token::{ImprintHash, ID_CT_TST_INFO, ID_SIGNED_DATA};
use openssl::stack::Stack;
use openssl::x509::store::X509StoreBuilder;
use openssl::x509::{X509PurposeId, X509StoreContext, X509};
use serde_json::json;
use spki::AlgorithmIdentifierOwned;
use x509_tsp::{MessageImprint, TimeStampReq, TimeStampResp, TspVersion, TstInfo};

use crate::{emit, read_file, Global};

const ID_CONTENT_TYPE: ObjectIdentifier = ObjectIdentifier::new_unwrap("1.2.840.113549.1.9.3");
const ID_MESSAGE_DIGEST: ObjectIdentifier = ObjectIdentifier::new_unwrap("1.2.840.113549.1.9.4");
const ID_AA_SIGNING_CERTIFICATE: ObjectIdentifier =
    ObjectIdentifier::new_unwrap("1.2.840.113549.1.9.16.2.12");
const ID_AA_SIGNING_CERTIFICATE_V2: ObjectIdentifier =
    ObjectIdentifier::new_unwrap("1.2.840.113549.1.9.16.2.47");

#[derive(Subcommand)]
pub enum TsCmd {
    /// Timestamp a file: send its hash to a TSA and write the reply (.tsr)
    Stamp {
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
    },
    /// Verify a token (.tsr reply or bare token) against a file and trust anchors
    Verify {
        #[arg(long)]
        file: PathBuf,
        #[arg(long)]
        token: PathBuf,
        /// Trust anchors (PEM)
        #[arg(long)]
        ca_file: PathBuf,
        /// More certificates: the TSA's, when the token lacks it, and intermediates
        #[arg(long)]
        untrusted: Option<PathBuf>,
        /// OCSP URL for the TSA certificate's status (default: its AIA)
        #[arg(long)]
        ocsp_url: Option<String>,
        /// Skip the TSA certificate's revocation check
        #[arg(long)]
        no_status_check: bool,
    },
    /// Find a token in the store's log by serial (hex)
    Lookup {
        #[arg(long)]
        serial: String,
    },
}

pub async fn command(g: &Global, cmd: TsCmd) -> Result<()> {
    match cmd {
        TsCmd::Stamp {
            file,
            url,
            out,
            hash,
            policy,
            no_cert,
        } => {
            let v = stamp(&file, &url, &out, &hash, policy.as_deref(), !no_cert)?;
            emit(g.output, v.clone(), || {
                format!(
                    "{}: token {} from {url}, genTime {}, written to {}",
                    file.display(),
                    v["serial"].as_str().unwrap_or(""),
                    v["gen_time"].as_str().unwrap_or(""),
                    out.display()
                )
            });
        }
        TsCmd::Verify {
            file,
            token,
            ca_file,
            untrusted,
            ocsp_url,
            no_status_check,
        } => {
            let v = verify(
                &file,
                &token,
                &ca_file,
                untrusted.as_deref(),
                ocsp_url,
                !no_status_check,
            )?;
            emit(g.output, v.clone(), || {
                format!(
                    "Verification: OK\n  serial      {}\n  genTime     {}\n  policy      {}\n  TSA         {}\n  TSA status  {}",
                    v["serial"].as_str().unwrap_or(""),
                    v["gen_time"].as_str().unwrap_or(""),
                    v["policy"].as_str().unwrap_or(""),
                    v["tsa_subject"].as_str().unwrap_or(""),
                    v["tsa_status"].as_str().unwrap_or("")
                )
            });
        }
        TsCmd::Lookup { serial } => {
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
        }
    }
    Ok(())
}

fn hash_of(name: &str) -> Result<ImprintHash> {
    ImprintHash::from_name(name).ok_or_else(|| Error::malformed(format!("unknown hash `{name}`")))
}

fn gen_time_text(t: &der::asn1::GeneralizedTime) -> String {
    gpki_pki::time::rfc3339(t.to_unix_duration().as_secs() as i64)
}

fn stamp(
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

/// The signature algorithm of a SignerInfo as a full identifier: tokens may name
/// only the key algorithm (rsaEncryption, id-ecPublicKey) beside a digest.
fn signature_identifier(
    sig: &AlgorithmIdentifierOwned,
    digest: &ObjectIdentifier,
) -> AlgorithmIdentifierOwned {
    let d = digest.to_string();
    let pick = |sha256: &str, sha384: &str, sha512: &str| {
        let oid = match d.as_str() {
            "2.16.840.1.101.3.4.2.2" => sha384,
            "2.16.840.1.101.3.4.2.3" => sha512,
            _ => sha256,
        };
        ObjectIdentifier::new_unwrap(oid)
    };
    match sig.oid.to_string().as_str() {
        "1.2.840.113549.1.1.1" => AlgorithmIdentifierOwned {
            oid: pick(
                "1.2.840.113549.1.1.11",
                "1.2.840.113549.1.1.12",
                "1.2.840.113549.1.1.13",
            ),
            parameters: Some(der::asn1::Any::null()),
        },
        "1.2.840.10045.2.1" => AlgorithmIdentifierOwned {
            oid: pick(
                "1.2.840.10045.4.3.2",
                "1.2.840.10045.4.3.3",
                "1.2.840.10045.4.3.4",
            ),
            parameters: None,
        },
        _ => sig.clone(),
    }
}

fn digest_by_oid(oid: &ObjectIdentifier, data: &[u8]) -> Result<Vec<u8>> {
    Ok(match oid.to_string().as_str() {
        "1.3.14.3.2.26" => openssl::sha::sha1(data).to_vec(),
        "2.16.840.1.101.3.4.2.1" => openssl::sha::sha256(data).to_vec(),
        "2.16.840.1.101.3.4.2.2" => openssl::sha::sha384(data).to_vec(),
        "2.16.840.1.101.3.4.2.3" => openssl::sha::sha512(data).to_vec(),
        o => {
            return Err(Error::malformed(format!(
                "unsupported digest algorithm {o}"
            )))
        }
    })
}

fn fail(what: impl Into<String>) -> Error {
    Error::new(ErrorKind::BadSignature, what.into())
}

fn verify(
    file: &Path,
    token_path: &Path,
    ca_file: &Path,
    untrusted: Option<&Path>,
    ocsp_url: Option<String>,
    check_status: bool,
) -> Result<serde_json::Value> {
    let raw = read_file(token_path, "token")?;
    if let Ok((status, text)) = reply_status(&raw) {
        if status > 1 {
            return Err(fail(format!(
                "the reply is a rejection, not a token: {}",
                text.unwrap_or_default()
            )));
        }
    }
    let token = match TimeStampResp::from_der(&raw) {
        Ok(resp) => resp
            .time_stamp_token
            .ok_or_else(|| Error::malformed("the reply holds no token"))?,
        Err(_) => ContentInfo::from_der(&raw).map_err(|e| {
            Error::malformed(format!(
                "{} is neither a TimeStampResp nor a token: {e}",
                token_path.display()
            ))
        })?,
    };
    let (sd, tst) = open_token(&token)?;
    // 1. The imprint is the file's hash.
    let data = read_file(file, "file")?;
    let imprint = digest_by_oid(&tst.message_imprint.hash_algorithm.oid, &data)?;
    if imprint != tst.message_imprint.hashed_message.as_bytes() {
        return Err(fail(format!(
            "the token is not for {}: its imprint differs",
            file.display()
        )));
    }
    // 2. The signer and its certificate.
    let [si] = sd.signer_infos.0.as_slice() else {
        return Err(fail("a token has exactly one SignerInfo"));
    };
    let mut pool: Vec<X509> = Vec::new();
    if let Some(set) = &sd.certificates {
        for c in set.0.iter() {
            if let cms::cert::CertificateChoices::Certificate(c) = c {
                pool.push(
                    X509::from_der(&c.to_der()?)
                        .map_err(|e| Error::malformed(format!("token certificate: {e}")))?,
                );
            }
        }
    }
    if let Some(p) = untrusted {
        pool.extend(
            X509::stack_from_pem(&read_file(p, "certificates")?)
                .map_err(|e| Error::malformed(format!("{}: {e}", p.display())))?,
        );
    }
    let SignerIdentifier::IssuerAndSerialNumber(ias) = &si.sid else {
        return Err(fail("the SignerInfo names its signer by key identifier; only issuer and serial is supported"));
    };
    let (signer_x509, signer_cert) = pool
        .iter()
        .find_map(|x| {
            let c = x509_cert::Certificate::from_der(&x.to_der().ok()?).ok()?;
            (c.tbs_certificate.issuer == ias.issuer
                && c.tbs_certificate.serial_number == ias.serial_number)
                .then(|| (x.clone(), c))
        })
        .ok_or_else(|| fail("the TSA certificate is neither in the token nor among --untrusted"))?;
    let signer_der = signer_cert.to_der()?;
    // 3. Signed attributes: content type, message digest, signing certificate.
    let attrs = si
        .signed_attrs
        .as_ref()
        .ok_or_else(|| fail("the SignerInfo has no signed attributes"))?;
    let econtent = sd
        .encap_content_info
        .econtent
        .as_ref()
        .expect("checked by open_token");
    let mut content_type_ok = false;
    let mut digest_ok = false;
    let mut cert_bound = false;
    for a in attrs.iter() {
        let Some(v) = a.values.iter().next() else {
            continue;
        };
        if a.oid == ID_CONTENT_TYPE {
            content_type_ok = v.decode_as::<ObjectIdentifier>().ok() == Some(ID_CT_TST_INFO);
        } else if a.oid == ID_MESSAGE_DIGEST {
            let want = digest_by_oid(&si.digest_alg.oid, econtent.value())?;
            digest_ok = v
                .decode_as::<OctetString>()
                .ok()
                .is_some_and(|o| o.as_bytes() == want.as_slice());
        } else if a.oid == ID_AA_SIGNING_CERTIFICATE_V2 || a.oid == ID_AA_SIGNING_CERTIFICATE {
            // SigningCertificate(V2) { certs SEQUENCE OF ESSCertID(v2) }: the first
            // names the signer; v2 may carry a hash algorithm (default SHA-256).
            cert_bound = first_ess_hash_matches(
                v.to_der()?.as_slice(),
                a.oid == ID_AA_SIGNING_CERTIFICATE_V2,
                &signer_der,
            )?;
        }
    }
    if !content_type_ok || !digest_ok {
        return Err(fail(
            "the signed attributes do not match the TSTInfo (content type or message digest)",
        ));
    }
    if !cert_bound {
        return Err(fail(
            "the signing-certificate attribute does not name the TSA certificate (RFC 5816)",
        ));
    }
    // 4. The signature over the signed attributes.
    let alg = signature_identifier(&si.signature_algorithm, &si.digest_alg.oid);
    let ok = gpki_pki::signer::verify_with_identifier(
        &signer_cert.tbs_certificate.subject_public_key_info,
        &alg,
        &attrs.to_der()?,
        si.signature.as_bytes(),
    )?;
    if !ok {
        return Err(fail("the token's signature does not verify"));
    }
    // 5. The TSA certificate chains to a trust anchor, for time stamping. An issuer
    //    neither in the token, nor given, nor an anchor is fetched from the
    //    caIssuers URL of the certificate it issued (RFC 5280 §4.2.2.1).
    let mut store = X509StoreBuilder::new().map_err(|e| Error::internal(format!("{e}")))?;
    let anchors = X509::stack_from_pem(&read_file(ca_file, "CA file")?)
        .map_err(|e| Error::malformed(format!("{}: {e}", ca_file.display())))?;
    let fetched = complete_chain(&signer_x509, &anchors, &mut pool)?;
    for a in anchors {
        store
            .add_cert(a)
            .map_err(|e| Error::internal(format!("{e}")))?;
    }
    store
        .set_purpose(X509PurposeId::TIMESTAMP_SIGN)
        .map_err(|e| Error::internal(format!("{e}")))?;
    let store = store.build();
    let mut chain_certs = Stack::new().map_err(|e| Error::internal(format!("{e}")))?;
    for c in &pool {
        chain_certs
            .push(c.clone())
            .map_err(|e| Error::internal(format!("{e}")))?;
    }
    let mut ctx = X509StoreContext::new().map_err(|e| Error::internal(format!("{e}")))?;
    let (valid, chain) = ctx
        .init(&store, &signer_x509, &chain_certs, |c| {
            let ok = c.verify_cert()?;
            let chain: Vec<X509> = c
                .chain()
                .map(|s| s.iter().map(|x| x.to_owned()).collect())
                .unwrap_or_default();
            if !ok {
                return Ok((Err(c.error().to_string()), chain));
            }
            Ok((Ok(()), chain))
        })
        .map_err(|e| Error::internal(format!("{e}")))?;
    valid.map_err(|e| {
        fail(format!(
            "the TSA certificate does not verify for time stamping: {e}"
        ))
    })?;
    // 6. The TSA certificate's status, over OCSP.
    let tsa_status = if check_status {
        let issuer = chain
            .get(1)
            .ok_or_else(|| fail("no issuer for the TSA certificate"))?;
        let issuer_der = issuer
            .to_der()
            .map_err(|e| Error::internal(format!("{e}")))?;
        let answer = crate::ocsp::query_x509(
            &signer_x509,
            issuer,
            &issuer_der,
            ocsp_url,
            Some(ca_file),
            "sha1",
            true,
        )
        .map_err(|e| e.context("checking the TSA certificate's status"))?;
        let status = answer["status"].as_str().unwrap_or("unknown").to_string();
        if status != "good" {
            return Err(fail(format!("the TSA certificate is {status} (OCSP)")));
        }
        status
    } else {
        "not checked".into()
    };
    Ok(json!({
        "verified": true,
        "serial": hex::encode(tst.serial_number.as_bytes()),
        "gen_time": gen_time_text(&tst.gen_time),
        "policy": tst.policy.to_string(),
        "hash": tst.message_imprint.hash_algorithm.oid.to_string(),
        "tsa_subject": signer_x509.subject_name().entries().map(|e| String::from_utf8_lossy(e.data().as_slice()).into_owned()).collect::<Vec<_>>().join(", "),
        "tsa_status": tsa_status,
        "fetched_issuers": fetched,
    }))
}

/// Largest issuer certificate fetched over AIA.
const MAX_FETCHED_CERT: u64 = 64 * 1024;

/// Walks up from `leaf` through `pool` until an anchor issued the current
/// certificate; an issuer missing from both is fetched from the current
/// certificate's caIssuers URL (DER or PEM, at most 64 KiB, 10 s) and added to
/// `pool`. Returns the URLs fetched. Fetched certificates are only candidates:
/// the chain is still verified against the anchors afterwards.
fn complete_chain(leaf: &X509, anchors: &[X509], pool: &mut Vec<X509>) -> Result<Vec<String>> {
    use openssl::x509::X509VerifyResult;
    let issued = |issuer: &X509, subject: &X509| issuer.issued(subject) == X509VerifyResult::OK;
    let mut fetched = Vec::new();
    let mut current = leaf.clone();
    for _ in 0..8 {
        if anchors
            .iter()
            .any(|a| issued(a, &current) || a.to_der().ok() == current.to_der().ok())
        {
            return Ok(fetched);
        }
        if let Some(next) = pool
            .iter()
            .find(|p| issued(p, &current) && p.to_der().ok() != current.to_der().ok())
        {
            current = next.clone();
            continue;
        }
        let Some(url) = ca_issuers_url(&current) else {
            return Ok(fetched);
        };
        let next = fetch_certificate(&url)?;
        if !issued(&next, &current) {
            return Err(fail(format!(
                "{url} does not hold the issuer of {}",
                subject_text(&current)
            )));
        }
        fetched.push(url);
        pool.push(next.clone());
        current = next;
    }
    Ok(fetched)
}

/// The first caIssuers URL (AIA) of a certificate.
fn ca_issuers_url(cert: &X509) -> Option<String> {
    cert.authority_info()?
        .iter()
        .filter(|d| d.method().nid() == openssl::nid::Nid::AD_CA_ISSUERS)
        .find_map(|d| d.location().uri().map(str::to_string))
        .filter(|u| u.starts_with("http://") || u.starts_with("https://"))
}

fn fetch_certificate(url: &str) -> Result<X509> {
    let unavailable = |e: String| {
        Error::new(
            ErrorKind::Unavailable,
            format!("fetching the issuer from {url}: {e}"),
        )
    };
    let reply = ureq::get(url)
        .timeout(std::time::Duration::from_secs(10))
        .call()
        .map_err(|e| unavailable(e.to_string()))?;
    let mut body = Vec::new();
    let reader: Box<dyn std::io::Read + Send + Sync> = reply.into_reader();
    std::io::Read::read_to_end(
        &mut std::io::Read::take(reader, MAX_FETCHED_CERT + 1),
        &mut body,
    )
    .map_err(|e| unavailable(e.to_string()))?;
    if body.len() as u64 > MAX_FETCHED_CERT {
        return Err(unavailable(format!(
            "larger than {MAX_FETCHED_CERT} octets"
        )));
    }
    let der = gpki_pki::pem::decode_pem_or_der(&body, &["CERTIFICATE"])
        .map_err(|e| Error::malformed(format!("issuer from {url}: {e}")))?;
    X509::from_der(&der).map_err(|e| Error::malformed(format!("issuer from {url}: {e}")))
}

fn subject_text(c: &X509) -> String {
    c.subject_name()
        .entries()
        .map(|e| String::from_utf8_lossy(e.data().as_slice()).into_owned())
        .collect::<Vec<_>>()
        .join(", ")
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

/// Whether the first ESSCertID(v2) in a SigningCertificate(V2) value hashes to
/// `cert_der`.
fn first_ess_hash_matches(value: &[u8], v2: bool, cert_der: &[u8]) -> Result<bool> {
    use der::asn1::AnyRef;
    use der::Tagged;
    let outer =
        AnyRef::from_der(value).map_err(|e| fail(format!("signing-certificate attribute: {e}")))?;
    let mut r = der::SliceReader::new(outer.value())?;
    let certs = AnyRef::decode(&mut r)?;
    let mut cr = der::SliceReader::new(certs.value())?;
    let first = AnyRef::decode(&mut cr)?;
    let mut er = der::SliceReader::new(first.value())?;
    let mut next = AnyRef::decode(&mut er)?;
    let mut hash_alg = if v2 {
        "2.16.840.1.101.3.4.2.1"
    } else {
        "1.3.14.3.2.26"
    }
    .parse::<ObjectIdentifier>()
    .expect("OID");
    if next.tag() == der::Tag::Sequence {
        let alg = AlgorithmIdentifierOwned::from_der(&next.to_der()?)?;
        hash_alg = alg.oid;
        next = AnyRef::decode(&mut er)?;
    }
    Ok(next.value() == digest_by_oid(&hash_alg, cert_der)?.as_slice())
}
