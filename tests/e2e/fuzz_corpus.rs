//! Replays the committed fuzz corpora (`fuzz/corpus/TARGET/`, grown by cargo-fuzz,
//! docs/security.md) through the entry points the fuzz targets call, on the stable
//! toolchain, in every CI run: each input is handled, none panics. Inputs that once
//! crashed a target stay in its corpus as regression tests.

use std::path::PathBuf;

use der::Decode;

fn corpus(target: &str) -> Vec<(PathBuf, Vec<u8>)> {
    let dir = PathBuf::from(concat!(env!("CARGO_MANIFEST_DIR"), "/../fuzz/corpus")).join(target);
    let mut out: Vec<(PathBuf, Vec<u8>)> = std::fs::read_dir(&dir)
        .unwrap_or_else(|e| panic!("{}: {e}", dir.display()))
        .map(|e| {
            let p = e.unwrap().path();
            let bytes = std::fs::read(&p).unwrap();
            (p, bytes)
        })
        .collect();
    out.sort();
    assert!(!out.is_empty(), "the {target} corpus is empty");
    out
}

/// Runs `f` on every input of `target`'s corpus, naming the input that panics.
fn replay(target: &str, f: impl Fn(&[u8]) + std::panic::RefUnwindSafe) -> usize {
    let inputs = corpus(target);
    for (path, bytes) in &inputs {
        if std::panic::catch_unwind(|| f(bytes)).is_err() {
            panic!("{target}: {} panics", path.display());
        }
    }
    inputs.len()
}

#[test]
fn fuzz_corpora_replay_without_panics() {
    let policy = const_oid::ObjectIdentifier::new_unwrap("1.2.410.100001.2.1.5");
    let mut seen = Vec::new();
    seen.push(replay("ocsp_request", |d| {
        let _ = gpki_ocsp::request::parse(d, 16);
    }));
    seen.push(replay("tsa_request", |d| {
        let _ = gpki_tsa::token::check_request(d, &policy);
    }));
    seen.push(replay("csr", |d| {
        let _ = gpki_pki::csr::parse_and_verify(d);
    }));
    seen.push(replay("pem_der", |d| {
        if let Ok(der) = gpki_pki::pem::decode_pem_or_der(d, &["CERTIFICATE", "X509 CRL"]) {
            let _ = gpki_pki::cert::decode(&der);
        }
        let _ = gpki_pki::cert::decode(d);
        let _ = gpki_pki::KeyType::of_spki(d);
    }));
    seen.push(replay("responses", |d| {
        if let Ok(resp) = x509_tsp::TimeStampResp::from_der(d) {
            if let Some(token) = resp.time_stamp_token {
                if let Ok(sd) = token.content.decode_as::<cms::signed_data::SignedData>() {
                    if let Some(e) = sd.encap_content_info.econtent {
                        let _ = x509_tsp::TstInfo::from_der(e.value());
                    }
                }
            }
        }
        let _ = x509_ocsp::OcspResponse::from_der(d);
        let _ = openssl::ocsp::OcspResponse::from_der(d);
        let _ = openssl::x509::X509::from_der(d);
        let _ = openssl::x509::X509Crl::from_der(d);
    }));
    eprintln!("replayed {} inputs", seen.iter().sum::<usize>());
}
