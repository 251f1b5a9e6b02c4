//! Credentials issued and presentations verified per second, in one process on one
//! thread, and the size of a 1,000,000-entry status list with 1% revoked: the
//! figures of docs/benchmarks.md, beside `openssl speed ecdsap256` (benches/credentials.sh).
//!
//!   cargo run --release -p gpki-credentials --example credential-throughput [SECONDS]
//!
//! The signer is a P-256 key with a credential-signer certificate under a P-256 CA,
//! made here with OpenSSL. Verification runs every check of `verify::verify` with
//! the network answered from memory, as a verifier with a warm cache does: the
//! signer's OCSP status known good, the status list token already fetched (each
//! verification still checks the token's chain and signature and inflates its list).

use std::sync::Arc;
use std::time::{Duration, Instant};

use gpki_credentials::keys::HolderKey;
use gpki_credentials::status::{self, Issued, StatusList};
use gpki_credentials::verify::{self, CertStatus, Online, Policy};
use gpki_credentials::{mdoc, sdjwt, IssuerKey, OfficialId, PublicKey, StatusRef, Validity};
use gpki_pki::{KeyType, Signer, SoftwareKey};
use openssl::asn1::Asn1Time;
use openssl::bn::BigNum;
use openssl::hash::MessageDigest;
use openssl::x509::extension::{
    BasicConstraints, ExtendedKeyUsage, KeyUsage, SubjectAlternativeName,
};
use openssl::x509::{X509Name, X509};

const ATTRS: &str = r#"{"name": "Hong Gildong", "employee_number": "001234567",
  "institution": "Ministry of the Interior and Safety", "department": "Digital Government Bureau",
  "position": "Deputy Director", "issue_date": "2026-11-24", "expiry_date": "2031-11-23"}"#;
const URI: &str = "https://id.gpki.go.kr/statuslists/mpoid-1";

fn name(cn: &str) -> X509Name {
    let mut n = X509Name::builder().unwrap();
    n.append_entry_by_text("C", "KR").unwrap();
    n.append_entry_by_text("O", "Government of Korea").unwrap();
    n.append_entry_by_text("CN", cn).unwrap();
    n.build()
}

/// A certificate for `key`, signed by `ca` (self-signed when `ca` is None).
fn certificate(
    key: &SoftwareKey,
    cn: &str,
    ca: Option<(&X509, &SoftwareKey)>,
    eku: Option<&str>,
) -> X509 {
    let mut b = X509::builder().unwrap();
    b.set_version(2).unwrap();
    let mut serial = BigNum::new().unwrap();
    serial
        .rand(64, openssl::bn::MsbOption::MAYBE_ZERO, false)
        .unwrap();
    b.set_serial_number(&serial.to_asn1_integer().unwrap())
        .unwrap();
    b.set_subject_name(&name(cn)).unwrap();
    b.set_issuer_name(ca.map_or(&name(cn), |(c, _)| c.subject_name()))
        .unwrap();
    b.set_pubkey(key.pkey()).unwrap();
    b.set_not_before(&Asn1Time::days_from_now(0).unwrap())
        .unwrap();
    b.set_not_after(&Asn1Time::days_from_now(400).unwrap())
        .unwrap();
    match eku {
        None => {
            b.append_extension(BasicConstraints::new().critical().ca().build().unwrap())
                .unwrap();
            b.append_extension(KeyUsage::new().critical().key_cert_sign().build().unwrap())
                .unwrap();
        }
        Some(oid) => {
            b.append_extension(
                KeyUsage::new()
                    .critical()
                    .digital_signature()
                    .build()
                    .unwrap(),
            )
            .unwrap();
            b.append_extension(ExtendedKeyUsage::new().other(oid).build().unwrap())
                .unwrap();
            let ctx = b.x509v3_context(ca.map(|(c, _)| c.as_ref()), None);
            let san = SubjectAlternativeName::new()
                .uri("https://id.gpki.go.kr")
                .build(&ctx)
                .unwrap();
            b.append_extension(san).unwrap();
        }
    }
    let signer = ca.map_or(key, |(_, k)| k);
    b.sign(signer.pkey(), MessageDigest::sha256()).unwrap();
    b.build()
}

struct Warm {
    jwt: Vec<u8>,
    cwt: Vec<u8>,
}

impl Online for Warm {
    fn certificate_status(&self, _: &X509, _: &X509) -> Result<CertStatus, String> {
        Ok(CertStatus::Good)
    }
    fn status_list(&self, _: &str, cwt: bool) -> Result<Vec<u8>, String> {
        Ok(if cwt {
            self.cwt.clone()
        } else {
            self.jwt.clone()
        })
    }
}

/// Runs `f` for `secs` seconds; operations per second.
fn rate(secs: f64, mut f: impl FnMut()) -> f64 {
    let start = Instant::now();
    let mut n = 0u64;
    while start.elapsed() < Duration::from_secs_f64(secs) {
        f();
        n += 1;
    }
    n as f64 / start.elapsed().as_secs_f64()
}

/// The CA, the credential signer and the status-list signer under it.
struct Issuers {
    ca: X509,
    signer: IssuerKey,
    list_signer: IssuerKey,
}

/// A P-256 credential CA with a credential signer and a status-list signer under it.
fn issuers() -> Issuers {
    let ca_key = SoftwareKey::generate(KeyType::EcP256).unwrap();
    let ca = certificate(&ca_key, "Bench Credential CA", None, None);
    let signer_key = SoftwareKey::generate(KeyType::EcP256).unwrap();
    let signer_cert = certificate(
        &signer_key,
        "Bench Signer",
        Some((&ca, &ca_key)),
        Some("1.0.18013.5.1.2"),
    );
    let list_key = SoftwareKey::generate(KeyType::EcP256).unwrap();
    let list_cert = certificate(
        &list_key,
        "Bench Status List",
        Some((&ca, &ca_key)),
        Some("1.2.410.100001.2.3.1"),
    );
    let der = |c: &X509| c.to_der().unwrap();
    let signer = IssuerKey::new(
        Arc::new(signer_key),
        vec![der(&signer_cert)],
        gpki_pki::profile::EKU_MDL_DS,
        "credential signer",
    )
    .unwrap();
    let list_signer = IssuerKey::new(
        Arc::new(list_key),
        vec![der(&list_cert)],
        gpki_pki::profile::EKU_STATUS_LIST_SIGNING,
        "status-list signer",
    )
    .unwrap();
    Issuers {
        ca,
        signer,
        list_signer,
    }
}

/// What one credential is issued with: the ID, its holder, validity and status entry.
struct Subject {
    id: OfficialId,
    holder_pub: PublicKey,
    holder: HolderKey,
    validity: Validity,
    status_ref: StatusRef,
}

/// The official's ID and a fresh P-256 holder key, valid a year from `now`.
fn subject(now: i64) -> Subject {
    let holder_key = SoftwareKey::generate(KeyType::EcP256).unwrap();
    let holder_pub = PublicKey::from_spki(holder_key.public_key_der()).unwrap();
    let holder = HolderKey::new(Arc::new(holder_key)).unwrap();
    Subject {
        id: OfficialId::from_json(ATTRS.as_bytes(), None).unwrap(),
        holder_pub,
        holder,
        validity: Validity {
            signed: now,
            valid_from: now,
            valid_until: now + 365 * 86_400,
        },
        status_ref: StatusRef {
            uri: URI.into(),
            idx: 4242,
        },
    }
}

/// Issues an mdoc of `s` by `signer`.
fn issue_mdoc(s: &Subject, signer: &IssuerKey) -> Vec<u8> {
    mdoc::issue(&s.id, &s.holder_pub, &s.status_ref, s.validity, signer).unwrap()
}

/// Issues an SD-JWT VC of `s` by `signer`.
fn issue_sd_jwt(s: &Subject, signer: &IssuerKey) -> String {
    sdjwt::issue(
        &s.id,
        &s.holder_pub,
        &s.status_ref,
        s.validity,
        "https://id.gpki.go.kr",
        signer,
    )
    .unwrap()
}

/// A 1,000,000-entry list with 1% revoked at random (never the subject's entry), and
/// how many it revoked.
fn revoked_list(keep: u64) -> (StatusList, u32) {
    let mut list = StatusList::new(1_000_000, 1).unwrap();
    let mut revoked = 0;
    while revoked < 10_000 {
        let mut b = [0u8; 4];
        openssl::rand::rand_bytes(&mut b).unwrap();
        let i = u64::from(u32::from_le_bytes(b)) % 1_000_000;
        if i != keep && list.get(i) == Some(0) {
            list.set(i, status::INVALID).unwrap();
            revoked += 1;
        }
    }
    (list, revoked)
}

/// The list's tokens, JWT and CWT, as a warm verifier holds them.
fn warm(list: &StatusList, at: Issued, list_signer: &IssuerKey) -> Warm {
    Warm {
        jwt: status::jwt(list, URI, at, list_signer)
            .unwrap()
            .into_bytes(),
        cwt: status::cwt(list, URI, at, list_signer).unwrap(),
    }
}

/// Presentations of three attributes of each format, for `policy`'s verifier and nonce.
fn presentations(s: &Subject, signer: &IssuerKey, policy: &Policy) -> (Vec<u8>, String) {
    let disclose: Vec<String> = ["name", "institution", "position"]
        .iter()
        .map(|s| s.to_string())
        .collect();
    let mdoc_vp = mdoc::present(
        &issue_mdoc(s, signer),
        &disclose,
        &s.holder,
        policy.verifier,
        policy.nonce,
    )
    .unwrap();
    let sd_vp = sdjwt::present(
        &issue_sd_jwt(s, signer),
        &disclose,
        &s.holder,
        policy.verifier,
        policy.nonce,
        policy.now,
    )
    .unwrap();
    (mdoc_vp, sd_vp)
}

/// Verifications per second of each presentation against the tokens `online` holds.
fn verify_rates(
    secs: f64,
    mdoc_vp: &[u8],
    sd_vp: &str,
    policy: &Policy,
    online: &Warm,
) -> (f64, f64) {
    let mdoc = rate(secs, || {
        verify::verify(mdoc_vp, policy, online).unwrap();
    });
    let sd = rate(secs, || {
        verify::verify(sd_vp.as_bytes(), policy, online).unwrap();
    });
    (mdoc, sd)
}

/// One P-256 signature and verification per second in this process, for the ratio's
/// other side.
fn raw_ecdsa_rates(secs: f64) -> (f64, f64) {
    let ec = openssl::ec::EcKey::generate(
        &openssl::ec::EcGroup::from_curve_name(openssl::nid::Nid::X9_62_PRIME256V1).unwrap(),
    )
    .unwrap();
    let digest = openssl::sha::sha256(b"x");
    let sign = rate(secs, || {
        openssl::ecdsa::EcdsaSig::sign(&digest, &ec).unwrap();
    });
    let sig = openssl::ecdsa::EcdsaSig::sign(&digest, &ec).unwrap();
    let verify = rate(secs, || {
        assert!(sig.verify(&digest, &ec).unwrap());
    });
    (sign, verify)
}

fn main() {
    let secs: f64 = std::env::args()
        .nth(1)
        .map(|s| s.parse().expect("seconds"))
        .unwrap_or(5.0);
    let issuers = issuers();
    let now = gpki_pki::time::now();
    let subject = subject(now);

    // Issuance: build, digest and sign one credential.
    let mdoc_rate = rate(secs, || {
        issue_mdoc(&subject, &issuers.signer);
    });
    if std::env::var("BENCH_ONLY").as_deref() == Ok("issue") {
        println!("issue mdoc {mdoc_rate:.0}/s");
        return;
    }
    let sdjwt_rate = rate(secs, || {
        issue_sd_jwt(&subject, &issuers.signer);
    });

    // The status list: 1,000,000 entries, 1% revoked at random.
    let (list, revoked) = revoked_list(subject.status_ref.idx);
    let at = Issued {
        iat: now,
        exp: now + 86_400,
        ttl: 300,
    };
    let started = Instant::now();
    let compressed = list.compressed().len();
    let compress_ms = started.elapsed().as_secs_f64() * 1e3;
    let started = Instant::now();
    let tokens = warm(&list, at, &issuers.list_signer);
    let sign_both_ms = started.elapsed().as_secs_f64() * 1e3;

    // Verification of presentations of three attributes.
    let anchors = [issuers.ca.clone()];
    let policy = Policy {
        anchors: &anchors,
        verifier: "https://gate.mois.go.kr",
        nonce: "c0ffee-4b1d-9e2a-77f0",
        now,
        skew: 300,
        max_presentation_age: 300,
        offline_status: false,
    };
    let (mdoc_vp, sd_vp) = presentations(&subject, &issuers.signer, &policy);
    for vp in [&mdoc_vp, sd_vp.as_bytes()] {
        verify::verify(vp, &policy, &tokens).expect("a good presentation");
    }
    let (verify_mdoc, verify_sd) = verify_rates(secs, &mdoc_vp, &sd_vp, &policy, &tokens);
    // The same with an 8,192-entry list: what the 1,000,000-entry list's token costs
    // each verification (its inflation and parsing; its signature and chain remain).
    let mut small = StatusList::new(8192, 1).unwrap();
    small.set(0, status::INVALID).unwrap();
    let small_warm = warm(&small, at, &issuers.list_signer);
    let (verify_mdoc_small, verify_sd_small) =
        verify_rates(secs, &mdoc_vp, &sd_vp, &policy, &small_warm);
    let (raw_sign, raw_verify) = raw_ecdsa_rates(secs);

    println!(
        "{}",
        serde_json::json!({
            "issue_mdoc_per_s": mdoc_rate.round(),
            "issue_sd_jwt_per_s": sdjwt_rate.round(),
            "verify_mdoc_per_s": verify_mdoc.round(),
            "verify_sd_jwt_per_s": verify_sd.round(),
            "verify_mdoc_per_s_8192_entry_list": verify_mdoc_small.round(),
            "verify_sd_jwt_per_s_8192_entry_list": verify_sd_small.round(),
            "ecdsa_p256_sign_per_s_in_process": raw_sign.round(),
            "ecdsa_p256_verify_per_s_in_process": raw_verify.round(),
            "presentation_bytes": { "mdoc": mdoc_vp.len(), "sd_jwt": sd_vp.len() },
            "status_list": {
                "entries": 1_000_000, "revoked": revoked,
                "lst_bytes": compressed, "jwt_bytes": tokens.jwt.len(), "cwt_bytes": tokens.cwt.len(),
                "compress_ms": (compress_ms * 10.0).round() / 10.0,
                "sign_jwt_and_cwt_ms": (sign_both_ms * 10.0).round() / 10.0,
            },
        })
    );
}
