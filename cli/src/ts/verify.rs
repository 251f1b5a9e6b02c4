//! `gpki ts verify`: a token checked against a file and trust anchors, step by
//! step (`verify_token`), the TSA certificate's chain completed over AIA when
//! needed and its status asked over OCSP.

use std::path::{Path, PathBuf};

use clap::Args;
use cms::content_info::ContentInfo;
use cms::signed_data::{SignedData, SignerIdentifier};
use const_oid::ObjectIdentifier;
use der::asn1::OctetString;
use der::{Decode, Encode};
use gpki_pki::{Error, ErrorKind, Result};
use gpki_tsa::token::ID_CT_TST_INFO;
use openssl::stack::Stack;
use openssl::x509::store::X509StoreBuilder;
use openssl::x509::{X509PurposeId, X509StoreContext, X509};
use serde_json::json;
use spki::AlgorithmIdentifierOwned;
use x509_tsp::{TimeStampResp, TstInfo};

use super::{gen_time_text, open_token, reply_status};
use crate::{emit, read_file, Global};

const ID_CONTENT_TYPE: ObjectIdentifier = ObjectIdentifier::new_unwrap("1.2.840.113549.1.9.3");

const ID_MESSAGE_DIGEST: ObjectIdentifier = ObjectIdentifier::new_unwrap("1.2.840.113549.1.9.4");

const ID_AA_SIGNING_CERTIFICATE: ObjectIdentifier =
    ObjectIdentifier::new_unwrap("1.2.840.113549.1.9.16.2.12");

const ID_AA_SIGNING_CERTIFICATE_V2: ObjectIdentifier =
    ObjectIdentifier::new_unwrap("1.2.840.113549.1.9.16.2.47");

/// The arguments of `gpki ts verify`.
#[derive(Args)]
pub struct VerifyArgs {
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
}

/// Verify a token (.tsr reply or bare token) against a file and trust anchors
pub(super) fn verify(g: &Global, args: VerifyArgs) -> Result<()> {
    let VerifyArgs {
        file,
        token,
        ca_file,
        untrusted,
        ocsp_url,
        no_status_check,
    } = args;
    let v = verify_token(
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
    Ok(())
}

/// Verifies the token in `token_path` for `file`, step by step: the imprint is
/// the file's hash (1), the signer's certificate is found (2), the signed
/// attributes bind the TSTInfo and the certificate (3), the signature verifies
/// (4), the certificate chains to a trust anchor for time stamping (5) and, when
/// asked, is good over OCSP (6). What `gpki ts verify` prints.
fn verify_token(
    file: &Path,
    token_path: &Path,
    ca_file: &Path,
    untrusted: Option<&Path>,
    ocsp_url: Option<String>,
    check_status: bool,
) -> Result<serde_json::Value> {
    let token = read_token(token_path)?;
    let (sd, tst) = open_token(&token)?;
    check_imprint(file, &tst)?;
    let [si] = sd.signer_infos.0.as_slice() else {
        return Err(fail("a token has exactly one SignerInfo"));
    };
    let mut pool = certificate_pool(&sd, untrusted)?;
    let (signer_x509, signer_cert) = signer_certificate(si, &pool)?;
    let signer_der = signer_cert.to_der()?;
    let attrs = check_signed_attributes(&sd, si, &signer_der)?;
    check_signature(si, attrs, &signer_cert)?;
    let (chain, fetched) = verify_chain(&signer_x509, ca_file, &mut pool)?;
    let tsa_status = if check_status {
        tsa_status(&signer_x509, &chain, ocsp_url, ca_file)?
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

/// The token in `token_path`: a TimeStampResp's (a rejection refused), or a bare
/// token.
fn read_token(token_path: &Path) -> Result<ContentInfo> {
    let raw = read_file(token_path, "token")?;
    if let Ok((status, text)) = reply_status(&raw) {
        if status > 1 {
            return Err(fail(format!(
                "the reply is a rejection, not a token: {}",
                text.unwrap_or_default()
            )));
        }
    }
    Ok(match TimeStampResp::from_der(&raw) {
        Ok(resp) => resp
            .time_stamp_token
            .ok_or_else(|| Error::malformed("the reply holds no token"))?,
        Err(_) => ContentInfo::from_der(&raw).map_err(|e| {
            Error::malformed(format!(
                "{} is neither a TimeStampResp nor a token: {e}",
                token_path.display()
            ))
        })?,
    })
}

/// Step 1: the imprint is the file's hash.
fn check_imprint(file: &Path, tst: &TstInfo) -> Result<()> {
    let data = read_file(file, "file")?;
    let imprint = digest_by_oid(&tst.message_imprint.hash_algorithm.oid, &data)?;
    if imprint != tst.message_imprint.hashed_message.as_bytes() {
        return Err(fail(format!(
            "the token is not for {}: its imprint differs",
            file.display()
        )));
    }
    Ok(())
}

/// The certificates the signer's may be among: the token's, then `untrusted`'s.
fn certificate_pool(sd: &SignedData, untrusted: Option<&Path>) -> Result<Vec<X509>> {
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
    Ok(pool)
}

/// Step 2: the certificate of the SignerInfo's issuer and serial, from `pool`.
fn signer_certificate(
    si: &cms::signed_data::SignerInfo,
    pool: &[X509],
) -> Result<(X509, x509_cert::Certificate)> {
    let SignerIdentifier::IssuerAndSerialNumber(ias) = &si.sid else {
        return Err(fail("the SignerInfo names its signer by key identifier; only issuer and serial is supported"));
    };
    pool.iter()
        .find_map(|x| {
            let c = x509_cert::Certificate::from_der(&x.to_der().ok()?).ok()?;
            (c.tbs_certificate.issuer == ias.issuer
                && c.tbs_certificate.serial_number == ias.serial_number)
                .then(|| (x.clone(), c))
        })
        .ok_or_else(|| fail("the TSA certificate is neither in the token nor among --untrusted"))
}

/// Step 3: the signed attributes (content type, message digest, signing
/// certificate) bind the TSTInfo and the signer's certificate. The attributes,
/// checked.
fn check_signed_attributes<'a>(
    sd: &SignedData,
    si: &'a cms::signed_data::SignerInfo,
    signer_der: &[u8],
) -> Result<&'a cms::signed_data::SignedAttributes> {
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
                signer_der,
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
    Ok(attrs)
}

/// Step 4: the signature over the signed attributes verifies.
fn check_signature(
    si: &cms::signed_data::SignerInfo,
    attrs: &cms::signed_data::SignedAttributes,
    signer_cert: &x509_cert::Certificate,
) -> Result<()> {
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
    Ok(())
}

/// Step 5: the TSA certificate chains to a trust anchor, for time stamping. An
/// issuer neither in the token, nor given, nor an anchor is fetched from the
/// caIssuers URL of the certificate it issued (RFC 5280 §4.2.2.1). The chain
/// verified, and the URLs fetched.
fn verify_chain(
    signer_x509: &X509,
    ca_file: &Path,
    pool: &mut Vec<X509>,
) -> Result<(Vec<X509>, Vec<String>)> {
    let mut store = X509StoreBuilder::new().map_err(|e| Error::internal(format!("{e}")))?;
    let anchors = X509::stack_from_pem(&read_file(ca_file, "CA file")?)
        .map_err(|e| Error::malformed(format!("{}: {e}", ca_file.display())))?;
    let fetched = complete_chain(signer_x509, &anchors, pool)?;
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
    for c in pool.iter() {
        chain_certs
            .push(c.clone())
            .map_err(|e| Error::internal(format!("{e}")))?;
    }
    let mut ctx = X509StoreContext::new().map_err(|e| Error::internal(format!("{e}")))?;
    let (valid, chain) = ctx
        .init(&store, signer_x509, &chain_certs, |c| {
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
    Ok((chain, fetched))
}

/// Step 6: the TSA certificate's status, over OCSP: "good", or the refusal.
fn tsa_status(
    signer_x509: &X509,
    chain: &[X509],
    ocsp_url: Option<String>,
    ca_file: &Path,
) -> Result<String> {
    let issuer = chain
        .get(1)
        .ok_or_else(|| fail("no issuer for the TSA certificate"))?;
    let issuer_der = issuer
        .to_der()
        .map_err(|e| Error::internal(format!("{e}")))?;
    let answer = crate::ocsp::query_x509(
        signer_x509,
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
    Ok(status)
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
