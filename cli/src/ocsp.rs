//! `gpki ocsp`: provisioning responder certificates and asking a responder.

use std::path::{Path, PathBuf};

use clap::{Args, Subcommand};
use der::Decode;
use gpki_pki::signed::push_tlv;
use gpki_pki::{Error, ErrorKind, KeyType, Result};
use openssl::hash::MessageDigest;
use openssl::ocsp::{OcspCertId, OcspCertStatus, OcspFlag, OcspResponse, OcspResponseStatus};
use openssl::stack::Stack;
use openssl::x509::store::X509StoreBuilder;
use openssl::x509::verify::X509VerifyFlags;
use openssl::x509::X509;
use serde_json::json;

use crate::{emit, read_file, Global};

#[derive(Subcommand)]
pub enum OcspCmd {
    /// Issue a delegated responder certificate (profile ocsp-signer) with a new key
    IssueSigner(IssueSignerArgs),
    /// Renew the responder certificates of an ocsp.toml that are near expiry (new
    /// key each): the CA side's job, for an operator or a timer; the responder picks
    /// up the new files by itself (or on SIGHUP) without a restart
    RenewSigners(RenewSignersArgs),
    /// Ask an OCSP responder for a certificate's status
    Query(QueryArgs),
}

pub async fn run(g: &Global, cmd: OcspCmd) -> Result<()> {
    match cmd {
        OcspCmd::IssueSigner(a) => issue_signer(g, a).await,
        OcspCmd::RenewSigners(a) => renew_signers(g, a).await,
        OcspCmd::Query(a) => query(g, a),
    }
}

/// The arguments of `gpki ocsp issue-signer`.
#[derive(Args)]
pub struct IssueSignerArgs {
    /// The CA the responder answers for
    #[arg(long)]
    ca: String,
    #[arg(long, default_value = "p256")]
    key_type: KeyType,
    /// Default: DATA_DIR/ocsp/CA.crt.pem
    #[arg(long)]
    cert_out: Option<PathBuf>,
    /// Default: DATA_DIR/ocsp/CA.key.pem (encrypted with the key passphrase)
    #[arg(long)]
    key_out: Option<PathBuf>,
}

/// Issue a delegated responder certificate (profile ocsp-signer) with a new key
async fn issue_signer(g: &Global, args: IssueSignerArgs) -> Result<()> {
    let IssueSignerArgs {
        ca,
        key_type,
        cert_out,
        key_out,
    } = args;
    let dir = g.data_dir.join("ocsp");
    let cert_path = cert_out.unwrap_or_else(|| dir.join(format!("{ca}.crt.pem")));
    let key_path = key_out.unwrap_or_else(|| dir.join(format!("{ca}.key.pem")));
    let authority = g.ca().await?;
    let pass = g.passphrase()?;
    let issued =
        issue_responder_certificate(&authority, &ca, key_type, &pass, &cert_path, &key_path)
            .await?;
    let r = &issued.record;
    emit(
        g.output,
        json!({ "ca": ca, "serial": r.serial, "subject": r.subject, "not_after": gpki_pki::time::rfc3339(r.not_after),
                "cert": cert_path.display().to_string(), "key": key_path.display().to_string() }),
        || {
            format!(
                "issued responder certificate {} for CA {ca}, valid until {}\n  certificate {}\n  key         {} (encrypted)",
                r.serial,
                gpki_pki::time::rfc3339(r.not_after),
                cert_path.display(),
                key_path.display()
            )
        },
    );
    Ok(())
}

/// The arguments of `gpki ocsp renew-signers`.
#[derive(Args)]
pub struct RenewSignersArgs {
    /// The responder's configuration: which CAs, which files, which passphrase
    #[arg(long)]
    config: PathBuf,
    /// Renew a certificate with fewer days than this left
    #[arg(long, default_value_t = 10)]
    before_days: u32,
    /// Renew every one, whatever its expiry
    #[arg(long)]
    force: bool,
    #[arg(long, default_value = "p256")]
    key_type: KeyType,
}

/// Renew the responder certificates of an ocsp.toml that are near expiry (new
/// key each): the CA side's job, for an operator or a timer; the responder picks
/// up the new files by itself (or on SIGHUP) without a restart
async fn renew_signers(g: &Global, args: RenewSignersArgs) -> Result<()> {
    let RenewSignersArgs {
        config,
        before_days,
        force,
        key_type,
    } = args;
    let config = gpki_ocsp::Config::load(&config)?;
    let responder_pass =
        gpki_service::passphrase(config.key_pass_file.as_deref(), "the responder keys")?;
    let authority = g.ca().await?;
    let now = gpki_pki::time::now();
    let mut out = Vec::new();
    for ca in &config.cas {
        let left = responder_not_after(&ca.cert).map(|t| t - now);
        let due = force || left.is_none_or(|s| s < i64::from(before_days) * 86_400);
        if !due {
            out.push(
                json!({ "ca": ca.name, "renewed": false, "cert": ca.cert.display().to_string() }),
            );
            continue;
        }
        let issued = issue_responder_certificate(
            &authority,
            &ca.name,
            key_type,
            &responder_pass,
            &ca.cert,
            &ca.key,
        )
        .await?;
        out.push(
            json!({ "ca": ca.name, "renewed": true, "serial": issued.record.serial,
                         "not_after": gpki_pki::time::rfc3339(issued.record.not_after),
                         "cert": ca.cert.display().to_string() }),
        );
    }
    let value = serde_json::Value::Array(out);
    emit(g.output, value.clone(), || {
        value
            .as_array()
            .into_iter()
            .flatten()
            .map(|v| match v["renewed"].as_bool() {
                Some(true) => format!(
                    "{}: renewed, serial {}, valid until {}",
                    v["ca"].as_str().unwrap_or(""),
                    v["serial"].as_str().unwrap_or(""),
                    v["not_after"].as_str().unwrap_or("")
                ),
                _ => format!("{}: not due", v["ca"].as_str().unwrap_or("")),
            })
            .collect::<Vec<_>>()
            .join("\n")
    });
    Ok(())
}

/// The arguments of `gpki ocsp query`.
#[derive(Args)]
pub struct QueryArgs {
    /// The certificate (PEM or DER)
    #[arg(long)]
    cert: PathBuf,
    /// Its issuer's certificate
    #[arg(long)]
    issuer: PathBuf,
    /// Responder URL (default: the certificate's AIA OCSP URL)
    #[arg(long)]
    url: Option<String>,
    /// Trust anchors to verify the response with (default: trust the issuer)
    #[arg(long)]
    ca_file: Option<PathBuf>,
    /// CertID hash algorithm
    #[arg(long, default_value = "sha1", value_parser = ["sha1", "sha256"])]
    hash: String,
    /// Send no nonce (lets the responder answer from its pre-signed cache)
    #[arg(long)]
    no_nonce: bool,
}

/// Ask an OCSP responder for a certificate's status
fn query(g: &Global, args: QueryArgs) -> Result<()> {
    let QueryArgs {
        cert,
        issuer,
        url,
        ca_file,
        hash,
        no_nonce,
    } = args;
    let answer = query_files(&cert, &issuer, url, ca_file.as_deref(), &hash, !no_nonce)?;
    emit(g.output, answer.clone(), || {
        let mut t = format!(
            "{}: {}",
            answer["serial"].as_str().unwrap_or(""),
            answer["status"].as_str().unwrap_or("")
        );
        if let Some(r) = answer["reason"].as_str() {
            t += &format!(
                " ({r}, at {})",
                answer["revocation_time"].as_str().unwrap_or("")
            );
        }
        t += &format!(
            "\n  this update {}\n  next update {}\n  responder   {} (signature verified)\n  nonce       {}",
            answer["this_update"].as_str().unwrap_or(""),
            answer["next_update"].as_str().unwrap_or("-"),
            answer["url"].as_str().unwrap_or(""),
            answer["nonce"].as_str().unwrap_or("")
        );
        t
    });
    Ok(())
}

/// Issues a responder certificate for CA `ca_name` with a fresh key (profile
/// ocsp-signer) and writes both files, each replaced whole by a rename.
pub async fn issue_responder_certificate(
    ca: &gpki_ca::Ca,
    ca_name: &str,
    key_type: KeyType,
    key_pass: &gpki_pki::signer::Passphrase,
    cert_path: &Path,
    key_path: &Path,
) -> Result<gpki_ca::Issued> {
    let signer = gpki_ca::DelegatedSigner {
        ca: ca_name,
        profile: "ocsp-signer",
        subject: format!("CN={ca_name} OCSP Responder, OU=GPKI, O=Government of Korea, C=KR"),
        key_type,
    };
    ca.issue_delegated(&signer, key_pass, cert_path, key_path)
        .await
}

/// notAfter of the certificate in `path`, if it reads.
fn responder_not_after(path: &Path) -> Option<i64> {
    let raw = std::fs::read(path).ok()?;
    let der = gpki_pki::pem::decode_pem_or_der(&raw, &["CERTIFICATE"]).ok()?;
    let c = gpki_pki::cert::decode(&der).ok()?;
    Some(gpki_pki::time::unix_seconds(
        &c.tbs_certificate.validity.not_after,
    ))
}

fn ossl(what: &'static str) -> impl Fn(openssl::error::ErrorStack) -> Error {
    move |e| Error::malformed(format!("{what}: {e}"))
}

fn load_x509(path: &Path, what: &str) -> Result<(X509, Vec<u8>)> {
    let raw = read_file(path, what)?;
    let der = gpki_pki::pem::decode_pem_or_der(&raw, &["CERTIFICATE"])
        .map_err(|e| e.context(path.display()))?;
    let x = X509::from_der(&der).map_err(ossl("certificate"))?;
    Ok((x, der))
}

/// The AIA id-ad-ocsp URL of a certificate.
fn aia_ocsp_url(cert: &X509) -> Option<String> {
    cert.ocsp_responders()
        .ok()?
        .iter()
        .next()
        .map(|s| s.to_string())
}

const NONCE_OID: &[u8] = &[0x2b, 0x06, 0x01, 0x05, 0x05, 0x07, 0x30, 0x01, 0x02];

fn build_request(
    issuer_der: &[u8],
    serial: &[u8],
    hash: &str,
    nonce: Option<&[u8]>,
) -> Result<Vec<u8>> {
    use der::Encode;
    let issuer = x509_cert::Certificate::from_der(issuer_der)
        .map_err(|e| Error::malformed(format!("issuer certificate: {e}")))?;
    let tbs = &issuer.tbs_certificate;
    let name = tbs.subject.to_der()?;
    let key = tbs.subject_public_key_info.subject_public_key.raw_bytes();
    let (alg, nh, kh): (&[u8], Vec<u8>, Vec<u8>) = match hash {
        "sha256" => (
            &[
                0x30, 0x0d, 0x06, 0x09, 0x60, 0x86, 0x48, 0x01, 0x65, 0x03, 0x04, 0x02, 0x01, 0x05,
                0x00,
            ],
            openssl::sha::sha256(&name).to_vec(),
            openssl::sha::sha256(key).to_vec(),
        ),
        _ => (
            &[
                0x30, 0x09, 0x06, 0x05, 0x2b, 0x0e, 0x03, 0x02, 0x1a, 0x05, 0x00,
            ],
            openssl::sha::sha1(&name).to_vec(),
            openssl::sha::sha1(key).to_vec(),
        ),
    };
    let mut id = alg.to_vec();
    push_tlv(&mut id, 0x04, &nh);
    push_tlv(&mut id, 0x04, &kh);
    push_tlv(&mut id, 0x02, serial);
    let mut cert_id = Vec::new();
    push_tlv(&mut cert_id, 0x30, &id);
    let mut request = Vec::new();
    push_tlv(&mut request, 0x30, &cert_id);
    let mut list = Vec::new();
    push_tlv(&mut list, 0x30, &request);
    let mut tbs_request = list;
    if let Some(n) = nonce {
        let mut inner = Vec::new();
        push_tlv(&mut inner, 0x04, n);
        let mut ext = Vec::new();
        push_tlv(&mut ext, 0x06, NONCE_OID);
        push_tlv(&mut ext, 0x04, &inner);
        let mut exts = Vec::new();
        let mut one = Vec::new();
        push_tlv(&mut one, 0x30, &ext);
        push_tlv(&mut exts, 0x30, &one);
        push_tlv(&mut tbs_request, 0xa2, &exts);
    }
    let mut tbs_seq = Vec::new();
    push_tlv(&mut tbs_seq, 0x30, &tbs_request);
    let mut out = Vec::new();
    push_tlv(&mut out, 0x30, &tbs_seq);
    Ok(out)
}

fn reason_name(code: i32) -> &'static str {
    gpki_pki::crl::RevocationReason::from_code(code as i64)
        .map(|r| r.as_str())
        .unwrap_or("unspecified")
}

fn rfc3339(t: &x509_ocsp::OcspGeneralizedTime) -> String {
    gpki_pki::time::rfc3339(t.0.to_unix_duration().as_secs() as i64)
}

/// Reads the certificate and its issuer's, then asks as `query_x509` does.
fn query_files(
    cert_path: &Path,
    issuer_path: &Path,
    url: Option<String>,
    ca_file: Option<&Path>,
    hash: &str,
    send_nonce: bool,
) -> Result<serde_json::Value> {
    let (cert, _) = load_x509(cert_path, "certificate")?;
    let (issuer, issuer_der) = load_x509(issuer_path, "issuer certificate")?;
    query_x509(&cert, &issuer, &issuer_der, url, ca_file, hash, send_nonce)
}

/// Asks the responder (`url`, else the certificate's AIA) for `cert`'s status and
/// verifies the answer; the JSON `gpki ocsp query` prints.
pub fn query_x509(
    cert: &X509,
    issuer: &X509,
    issuer_der: &[u8],
    url: Option<String>,
    ca_file: Option<&Path>,
    hash: &str,
    send_nonce: bool,
) -> Result<serde_json::Value> {
    let (cert, issuer) = (cert.clone(), issuer.clone());
    let url = url
        .or_else(|| aia_ocsp_url(&cert))
        .ok_or_else(|| Error::malformed("the certificate names no OCSP responder; give --url"))?;
    let serial = cert
        .serial_number()
        .to_bn()
        .map_err(ossl("serial"))?
        .to_vec();
    let mut serial_int = serial.clone();
    if serial_int.first().is_some_and(|b| b & 0x80 != 0) {
        serial_int.insert(0, 0);
    }
    let nonce = if send_nonce {
        let mut n = [0u8; 16];
        openssl::rand::rand_bytes(&mut n).map_err(ossl("CSPRNG"))?;
        Some(n)
    } else {
        None
    };
    let body = build_request(
        issuer_der,
        &serial_int,
        hash,
        nonce.as_ref().map(|n| &n[..]),
    )?;
    let der_bytes = post_request(&url, &body)?;
    let response = OcspResponse::from_der(&der_bytes).map_err(ossl("OCSP response"))?;
    check_response_status(&response, &url)?;
    let basic = response.basic().map_err(ossl("basic response"))?;
    verify_response(&basic, &issuer, ca_file, &url)?;
    let digest = if hash == "sha256" {
        MessageDigest::sha256()
    } else {
        MessageDigest::sha1()
    };
    let id = OcspCertId::from_cert(digest, &cert, &issuer).map_err(ossl("CertID"))?;
    let single = basic.find_status(&id).ok_or_else(|| {
        Error::malformed(format!(
            "the response from {url} does not cover this certificate"
        ))
    })?;
    single
        .check_validity(300, None)
        .map_err(|e| Error::malformed(format!("the response is not current: {e}")))?;
    let decoded = decode_basic(&der_bytes)?;
    let times = response_times(&decoded, &serial)?;
    let nonce_state = nonce_state(&decoded, nonce)?;
    let status_name = match single.status {
        OcspCertStatus::GOOD => "good",
        OcspCertStatus::REVOKED => "revoked",
        _ => "unknown",
    };
    let revoked = single.status == OcspCertStatus::REVOKED;
    Ok(json!({
        "url": url,
        "serial": hex::encode(&serial),
        "status": status_name,
        "reason": if revoked { Some(reason_name(single.reason.as_raw())) } else { None },
        "revocation_time": times.revocation_time,
        "this_update": times.this_update,
        "next_update": times.next_update,
        "nonce": nonce_state,
        "verified": true,
    }))
}

/// Posts the request to the responder; its reply's body, at most 1 MiB.
fn post_request(url: &str, body: &[u8]) -> Result<Vec<u8>> {
    let reply = ureq::post(url)
        .set("Content-Type", "application/ocsp-request")
        .timeout(std::time::Duration::from_secs(10))
        .send_bytes(body)
        .map_err(|e| {
            Error::new(
                ErrorKind::Unavailable,
                format!("OCSP request to {url}: {e}"),
            )
        })?;
    let mut der_bytes = Vec::new();
    std::io::Read::read_to_end(
        &mut std::io::Read::take(reply.into_reader(), 1 << 20),
        &mut der_bytes,
    )
    .map_err(|e| {
        Error::new(
            ErrorKind::Unavailable,
            format!("reading the OCSP response: {e}"),
        )
    })?;
    Ok(der_bytes)
}

/// A response that is not `successful` is refused, by its status's name.
fn check_response_status(response: &OcspResponse, url: &str) -> Result<()> {
    let status = response.status();
    if status != OcspResponseStatus::SUCCESSFUL {
        let name = match status {
            OcspResponseStatus::MALFORMED_REQUEST => "malformedRequest",
            OcspResponseStatus::INTERNAL_ERROR => "internalError",
            OcspResponseStatus::TRY_LATER => "tryLater",
            OcspResponseStatus::SIG_REQUIRED => "sigRequired",
            OcspResponseStatus::UNAUTHORIZED => "unauthorized",
            _ => "unknown status",
        };
        return Err(Error::new(
            ErrorKind::PolicyViolation,
            format!("responder {url} answered {name}"),
        ));
    }
    Ok(())
}

/// The response's signature verifies against `ca_file`'s anchors, else against
/// the issuer alone.
fn verify_response(
    basic: &openssl::ocsp::OcspBasicResponse,
    issuer: &X509,
    ca_file: Option<&Path>,
    url: &str,
) -> Result<()> {
    let mut trust = X509StoreBuilder::new().map_err(ossl("trust store"))?;
    match ca_file {
        Some(path) => {
            let pem = read_file(path, "CA file")?;
            for c in X509::stack_from_pem(&pem).map_err(ossl("CA file"))? {
                trust.add_cert(c).map_err(ossl("CA file"))?;
            }
        }
        None => {
            trust.add_cert(issuer.clone()).map_err(ossl("issuer"))?;
            trust
                .set_flags(X509VerifyFlags::PARTIAL_CHAIN)
                .map_err(ossl("trust store"))?;
        }
    }
    let trust = trust.build();
    let mut untrusted = Stack::new().map_err(ossl("stack"))?;
    untrusted.push(issuer.clone()).map_err(ossl("stack"))?;
    basic
        .verify(&untrusted, &trust, OcspFlag::empty())
        .map_err(|e| {
            Error::new(
                ErrorKind::BadSignature,
                format!("the response from {url} does not verify: {e}"),
            )
        })
}

/// The response decoded a second time, to read its times and extensions.
fn decode_basic(der_bytes: &[u8]) -> Result<x509_ocsp::BasicOcspResponse> {
    x509_ocsp::OcspResponse::from_der(der_bytes)
        .ok()
        .and_then(|r| r.response_bytes)
        .and_then(|b| x509_ocsp::BasicOcspResponse::from_der(b.response.as_bytes()).ok())
        .ok_or_else(|| Error::malformed("the response does not decode as a BasicOCSPResponse"))
}

/// The times of the answer for `serial`, as RFC 3339.
struct Times {
    revocation_time: Option<String>,
    this_update: String,
    next_update: Option<String>,
}

/// The times of the single response for `serial`.
fn response_times(decoded: &x509_ocsp::BasicOcspResponse, serial: &[u8]) -> Result<Times> {
    let mine = decoded
        .tbs_response_data
        .responses
        .iter()
        .find(|r| {
            let b = r.cert_id.serial_number.as_bytes();
            b[b.iter().position(|x| *x != 0).unwrap_or(b.len())..] == serial[..]
        })
        .ok_or_else(|| Error::malformed("the response does not cover this certificate"))?;
    let revocation_time = match &mine.cert_status {
        x509_ocsp::CertStatus::Revoked(info) => Some(rfc3339(&info.revocation_time)),
        _ => None,
    };
    Ok(Times {
        revocation_time,
        this_update: rfc3339(&mine.this_update),
        next_update: mine.next_update.as_ref().map(rfc3339),
    })
}

/// What became of the nonce sent: "matched", "not echoed" or "not sent"; another
/// nonce (a replayed response?) is refused.
fn nonce_state(
    decoded: &x509_ocsp::BasicOcspResponse,
    nonce: Option<[u8; 16]>,
) -> Result<&'static str> {
    Ok(match nonce {
        None => "not sent",
        Some(n) => {
            let echoed = decoded
                .tbs_response_data
                .response_extensions
                .clone()
                .and_then(|exts| {
                    exts.into_iter()
                        .find(|e| e.extn_id.as_bytes() == NONCE_OID)
                        .map(|e| e.extn_value.as_bytes().to_vec())
                });
            let mut expected = Vec::new();
            push_tlv(&mut expected, 0x04, &n);
            match echoed {
                Some(v) if v == expected => "matched",
                Some(_) => {
                    return Err(Error::new(
                        ErrorKind::BadSignature,
                        "the response's nonce is not the one sent (a replayed response?)",
                    ))
                }
                None => "not echoed",
            }
        }
    })
}
