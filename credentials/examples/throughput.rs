//! Credentials issued and presentations verified per second, in one process on one
//! thread, and the size of a 1,000,000-entry status list with 1% revoked: the
//! figures of docs/benchmarks.md, beside `openssl speed ecdsap256` (benches/credentials.sh).
//!
//!   cargo run --release -p gpki-credentials --example throughput [SECONDS]
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

fn main() {
    let secs: f64 = std::env::args()
        .nth(1)
        .map(|s| s.parse().expect("seconds"))
        .unwrap_or(5.0);
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
    let holder_key = SoftwareKey::generate(KeyType::EcP256).unwrap();
    let holder_pub = PublicKey::from_spki(holder_key.public_key_der()).unwrap();
    let holder = HolderKey::new(Arc::new(holder_key)).unwrap();
    let id = OfficialId::from_json(ATTRS.as_bytes(), None).unwrap();
    let now = gpki_pki::time::now();
    let validity = Validity {
        signed: now,
        valid_from: now,
        valid_until: now + 365 * 86_400,
    };
    let status_ref = StatusRef {
        uri: URI.into(),
        idx: 4242,
    };

    // Issuance: build, digest and sign one credential.
    let mdoc_rate = rate(secs, || {
        mdoc::issue(&id, &holder_pub, &status_ref, validity, &signer).unwrap();
    });
    if std::env::var("BENCH_ONLY").as_deref() == Ok("issue") {
        println!("issue mdoc {mdoc_rate:.0}/s");
        return;
    }
    let sdjwt_rate = rate(secs, || {
        sdjwt::issue(
            &id,
            &holder_pub,
            &status_ref,
            validity,
            "https://id.gpki.go.kr",
            &signer,
        )
        .unwrap();
    });

    // The status list: 1,000,000 entries, 1% revoked at random.
    let mut list = StatusList::new(1_000_000, 1).unwrap();
    let mut revoked = 0;
    while revoked < 10_000 {
        let mut b = [0u8; 4];
        openssl::rand::rand_bytes(&mut b).unwrap();
        let i = u64::from(u32::from_le_bytes(b)) % 1_000_000;
        if i != status_ref.idx && list.get(i) == Some(0) {
            list.set(i, status::INVALID).unwrap();
            revoked += 1;
        }
    }
    let at = Issued {
        iat: now,
        exp: now + 86_400,
        ttl: 300,
    };
    let started = Instant::now();
    let compressed = list.compressed().len();
    let compress_ms = started.elapsed().as_secs_f64() * 1e3;
    let started = Instant::now();
    let jwt = status::jwt(&list, URI, at, &list_signer).unwrap();
    let cwt = status::cwt(&list, URI, at, &list_signer).unwrap();
    let sign_both_ms = started.elapsed().as_secs_f64() * 1e3;

    // Verification of presentations of three attributes.
    let anchors = [ca.clone()];
    let policy = Policy {
        anchors: &anchors,
        verifier: "https://gate.mois.go.kr",
        nonce: "c0ffee-4b1d-9e2a-77f0",
        now,
        skew: 300,
        max_presentation_age: 300,
        offline_status: false,
    };
    let warm = Warm {
        jwt: jwt.clone().into_bytes(),
        cwt: cwt.clone(),
    };
    let disclose: Vec<String> = ["name", "institution", "position"]
        .iter()
        .map(|s| s.to_string())
        .collect();
    let issued_mdoc = mdoc::issue(&id, &holder_pub, &status_ref, validity, &signer).unwrap();
    let mdoc_vp = mdoc::present(
        &issued_mdoc,
        &disclose,
        &holder,
        policy.verifier,
        policy.nonce,
    )
    .unwrap();
    let issued_sd = sdjwt::issue(
        &id,
        &holder_pub,
        &status_ref,
        validity,
        "https://id.gpki.go.kr",
        &signer,
    )
    .unwrap();
    let sd_vp = sdjwt::present(
        &issued_sd,
        &disclose,
        &holder,
        policy.verifier,
        policy.nonce,
        now,
    )
    .unwrap();
    for vp in [&mdoc_vp, sd_vp.as_bytes()] {
        verify::verify(vp, &policy, &warm).expect("a good presentation");
    }
    let verify_mdoc = rate(secs, || {
        verify::verify(&mdoc_vp, &policy, &warm).unwrap();
    });
    let verify_sd = rate(secs, || {
        verify::verify(sd_vp.as_bytes(), &policy, &warm).unwrap();
    });
    // The same with an 8,192-entry list: what the 1,000,000-entry list's token costs
    // each verification (its inflation and parsing; its signature and chain remain).
    let mut small = StatusList::new(8192, 1).unwrap();
    small.set(0, status::INVALID).unwrap();
    let small_warm = Warm {
        jwt: status::jwt(&small, URI, at, &list_signer)
            .unwrap()
            .into_bytes(),
        cwt: status::cwt(&small, URI, at, &list_signer).unwrap(),
    };
    let verify_mdoc_small = rate(secs, || {
        verify::verify(&mdoc_vp, &policy, &small_warm).unwrap();
    });
    let verify_sd_small = rate(secs, || {
        verify::verify(sd_vp.as_bytes(), &policy, &small_warm).unwrap();
    });
    // One signature with the same key type, in this process, for the ratio's other side.
    let ec = openssl::ec::EcKey::generate(
        &openssl::ec::EcGroup::from_curve_name(openssl::nid::Nid::X9_62_PRIME256V1).unwrap(),
    )
    .unwrap();
    let digest = openssl::sha::sha256(b"x");
    let raw_sign = rate(secs, || {
        openssl::ecdsa::EcdsaSig::sign(&digest, &ec).unwrap();
    });
    let sig = openssl::ecdsa::EcdsaSig::sign(&digest, &ec).unwrap();
    let raw_verify = rate(secs, || {
        assert!(sig.verify(&digest, &ec).unwrap());
    });

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
                "lst_bytes": compressed, "jwt_bytes": jwt.len(), "cwt_bytes": cwt.len(),
                "compress_ms": (compress_ms * 10.0).round() / 10.0,
                "sign_jwt_and_cwt_ms": (sign_both_ms * 10.0).round() / 10.0,
            },
        })
    );
}
