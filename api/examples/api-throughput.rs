//! The standard API's figures for docs/benchmarks.md (benches/api.sh runs it
//! beside `openssl speed` and `openssl cms`):
//!
//!   api-throughput inproc DATA_DIR SECONDS
//!     logins verified per second in one process on one thread, against the
//!     hierarchy `gpki dev up` made in DATA_DIR and its running OCSP responder:
//!     each login opens a challenge, finds the path (kept since the first login),
//!     checks the signature, spends the challenge and reads the status of the
//!     official's and the CA's certificates from the warm cache. Challenges are
//!     signed before the clock starts (that is the official's work, not the
//!     system's). Then the path built from nothing (a first login), and CMS sign,
//!     verify (down to the signer's status, warm), encrypt and decrypt of 1 KiB
//!     and 1 MiB, beside SHA-256 and AES-256-CBC of the same 1 MiB in process.
//!
//!   api-throughput prepare DATA_DIR API_URL N PREFIX THREADS
//!     N login bodies for wrk (benches/api_login.lua): challenges fetched from the
//!     running gpki-api at API_URL, signed here, written THREADS files
//!     PREFIX.0 … one JSON body a line.

use std::io::Write;
use std::path::Path;
use std::sync::Arc;
use std::time::Instant;

use base64::Engine;
use gpki_api::login::{Login, LoginRequest};
use gpki_api::signed::{self, SignOptions};
use gpki_api::status::StatusPolicy;
use gpki_api::trust::Trust;
use gpki_api::verifier::Verifier;
use gpki_pki::signer::Passphrase;
use gpki_pki::{Signer, SoftwareKey};

fn read(p: &Path) -> Vec<u8> {
    std::fs::read(p).unwrap_or_else(|e| panic!("{}: {e}", p.display()))
}

fn cert_der(p: &Path) -> Vec<u8> {
    gpki_pki::pem::decode(&read(p), "CERTIFICATE").unwrap()
}

/// Calls `f` for `secs` seconds; the calls per second.
fn rate(secs: f64, mut f: impl FnMut()) -> f64 {
    let start = Instant::now();
    let mut n = 0u64;
    while start.elapsed().as_secs_f64() < secs {
        for _ in 0..8 {
            f();
        }
        n += 8;
    }
    n as f64 / start.elapsed().as_secs_f64()
}

fn sign_challenge(key: &SoftwareKey, message: &str) -> Vec<u8> {
    key.sign(message.as_bytes()).unwrap()
}

fn main() {
    let args: Vec<String> = std::env::args().collect();
    let dir = Path::new(args.get(2).expect("DATA_DIR"));
    let certs = dir.join("certs");
    let pass = Passphrase::from_file(&dir.join("dev-signer-passphrase")).unwrap();
    let key = SoftwareKey::read_encrypted(&certs.join("official-sign.key.pem"), &pass).unwrap();
    let cert = cert_der(&certs.join("official-sign.crt.pem"));
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    match args.get(1).map(String::as_str) {
        Some("prepare") => {
            let url = &args[3];
            let n: usize = args[4].parse().unwrap();
            let prefix = &args[5];
            let threads: usize = args[6].parse().unwrap();
            let cert_b64 = base64::engine::general_purpose::STANDARD.encode(&cert);
            let client = reqwest::Client::new();
            let mut files: Vec<_> = (0..threads)
                .map(|t| {
                    std::io::BufWriter::new(std::fs::File::create(format!("{prefix}.{t}")).unwrap())
                })
                .collect();
            runtime.block_on(async {
                for i in 0..n {
                    let ch: serde_json::Value = client
                        .post(format!("{url}/v1/login/challenge"))
                        .send()
                        .await
                        .unwrap()
                        .json()
                        .await
                        .unwrap();
                    let sig = sign_challenge(&key, ch["message"].as_str().unwrap());
                    let body = serde_json::json!({
                        "challenge": ch["challenge"],
                        "certificate": cert_b64,
                        "signature": base64::engine::general_purpose::STANDARD.encode(sig),
                    });
                    writeln!(files[i % threads], "{body}").unwrap();
                }
            });
        }
        Some("inproc") => {
            let secs: f64 = args.get(3).map_or(5.0, |s| s.parse().unwrap());
            inproc(&runtime, dir, secs, &key, &cert);
        }
        _ => panic!(
            "usage: api-throughput inproc DATA_DIR SECONDS | prepare DATA_DIR URL N PREFIX THREADS"
        ),
    }
}

fn inproc(
    runtime: &tokio::runtime::Runtime,
    dir: &Path,
    secs: f64,
    key: &SoftwareKey,
    cert: &[u8],
) {
    let certs = dir.join("certs");
    let anchors = read(&certs.join("gpki-root.crt.pem"));
    let mois = read(&certs.join("mois.crt.pem"));
    let verifier = Arc::new(
        Verifier::new(
            Trust::from_pem(&anchors, &mois).unwrap(),
            StatusPolicy::default(),
        )
        .unwrap(),
    );
    login_rates(runtime, &verifier, secs, key, cert);
    path_and_signature_rates(&anchors, &mois, secs, key, cert);
    let cms = Cms {
        runtime,
        verifier: &verifier,
        key,
        cert,
        km_cert: cert_der(&certs.join("official-km.crt.pem")),
        km_key: SoftwareKey::read_encrypted(
            &certs.join("official-km.key.pem"),
            &Passphrase::from_file(&dir.join("dev-signer-passphrase")).unwrap(),
        )
        .unwrap(),
        chain: vec![gpki_pki::pem::decode(&mois, "CERTIFICATE").unwrap()],
    };
    for size in [1024usize, 1 << 20] {
        cms.rates(size, secs);
    }
}

/// Logins verified per second with the path and statuses warm, after the first
/// login (which fetches them) timed alone.
fn login_rates(
    runtime: &tokio::runtime::Runtime,
    verifier: &Arc<Verifier>,
    secs: f64,
    key: &SoftwareKey,
    cert: &[u8],
) {
    let login = Login::new(verifier.clone(), "https://bench.go.kr/", 3600).unwrap();

    // Challenges signed beforehand: about 1.5 times what the measured rate allows.
    let prepare = |n: usize| -> Vec<LoginRequest> {
        (0..n)
            .map(|_| {
                let c = login.challenge().unwrap();
                LoginRequest {
                    signature: sign_challenge(key, &c.message),
                    challenge: c.challenge,
                    certificate: cert.to_vec(),
                    chain: Vec::new(),
                    algorithm: None,
                }
            })
            .collect()
    };
    // The first login fetches the statuses (the dev OCSP responder and CRLs).
    let first = prepare(1);
    let started = Instant::now();
    runtime.block_on(login.login(&first[0])).unwrap();
    println!(
        "first login (path built, statuses fetched): {:.1} ms",
        started.elapsed().as_secs_f64() * 1e3
    );
    let reqs = prepare(((secs * 40_000.0) as usize).max(1000));
    let mut it = reqs.iter();
    let start = Instant::now();
    let mut n = 0u64;
    while start.elapsed().as_secs_f64() < secs {
        let Some(r) = it.next() else { break };
        runtime.block_on(login.login(r)).unwrap();
        n += 1;
    }
    let logins = n as f64 / start.elapsed().as_secs_f64();
    println!("login verified (warm path and status): {logins:.0}/s ({n} logins)");
}

/// Paths built from nothing per second, and signatures verified with the key
/// decoded each time.
fn path_and_signature_rates(
    anchors: &[u8],
    mois: &[u8],
    secs: f64,
    key: &SoftwareKey,
    cert: &[u8],
) {
    // The path of a certificate seen for the first time: a Trust of its own each
    // time, so nothing is kept.
    let path_cold = rate(secs / 2.0, || {
        let t = Trust::from_pem(anchors, mois).unwrap();
        t.path(cert, &[]).unwrap();
    });
    println!("path built from nothing: {path_cold:.0}/s");
    let spki = key.public_key_der().to_vec();
    let message = b"gpki login v1\naudience: x\nchallenge: y\n";
    let sig = key.sign(message).unwrap();
    let verify = rate(secs / 2.0, || {
        assert!(gpki_pki::signer::verify(&spki, key.algorithm(), message, &sig).unwrap());
    });
    println!("gpki_pki::signer::verify, the key decoded from DER each call: {verify:.0}/s");
}

/// What the CMS measurements use: the official's signing and km keys, the CA's
/// certificate as the chain, and the warm verifier.
struct Cms<'a> {
    runtime: &'a tokio::runtime::Runtime,
    verifier: &'a Verifier,
    key: &'a SoftwareKey,
    cert: &'a [u8],
    km_cert: Vec<u8>,
    km_key: SoftwareKey,
    chain: Vec<Vec<u8>>,
}

impl Cms<'_> {
    /// CMS sign, verify, encrypt and decrypt of a random document of `size` octets
    /// per second, and the SHA-256 and AES-256-CBC of it in process.
    fn rates(&self, size: usize, secs: f64) {
        let (runtime, verifier, key, cert) = (self.runtime, self.verifier, self.key, self.cert);
        let (km_cert, km_key) = (&self.km_cert, &self.km_key);
        let mut doc = vec![0u8; size];
        openssl::rand::rand_bytes(&mut doc).unwrap();
        let label = if size == 1024 { "1 KiB" } else { "1 MiB" };
        let opts = SignOptions {
            detached: false,
            signing_time: gpki_pki::time::now(),
            chain: self.chain.clone(),
        };
        let sign = rate(secs / 2.0, || {
            let s = signed::sign(&doc, key, cert, &opts).unwrap();
            std::hint::black_box(s.to_der(&doc).unwrap());
        });
        let der = signed::sign(&doc, key, cert, &opts)
            .unwrap()
            .to_der(&doc)
            .unwrap();
        runtime.block_on(verifier.signed(&der, None, &[])).unwrap();
        let verify = rate(secs / 2.0, || {
            runtime.block_on(verifier.signed(&der, None, &[])).unwrap();
        });
        let check = rate(secs / 2.0, || {
            signed::check(&der, None, &[]).unwrap();
        });
        let recipients = [gpki_api::envelope::Recipient::Certificate(km_cert)];
        let encrypt = rate(secs / 2.0, || {
            std::hint::black_box(gpki_api::envelope::seal(&doc, &recipients).unwrap());
        });
        let sealed = gpki_api::envelope::seal(&doc, &recipients).unwrap();
        let decrypt = rate(secs / 2.0, || {
            std::hint::black_box(
                gpki_api::envelope::open_document(&sealed, km_key.pkey(), Some(km_cert)).unwrap(),
            );
        });
        println!(
            "CMS {label}: sign {sign:.0}/s, verify (signer's path and status, warm) {verify:.0}/s, \
             signatures only {check:.0}/s, encrypt {encrypt:.0}/s, decrypt {decrypt:.0}/s"
        );
        in_process_rates(label, &doc, secs);
    }
}

/// SHA-256 and AES-256-CBC of `doc` per second in process, beside CMS's figures.
fn in_process_rates(label: &str, doc: &[u8], secs: f64) {
    let sha = rate(secs / 2.0, || {
        std::hint::black_box(openssl::sha::sha256(doc));
    });
    let cek = [7u8; 32];
    let iv = [9u8; 16];
    let cipher = openssl::symm::Cipher::aes_256_cbc();
    let enc = openssl::symm::encrypt(cipher, &cek, Some(&iv), doc).unwrap();
    let aes_enc = rate(secs / 2.0, || {
        std::hint::black_box(openssl::symm::encrypt(cipher, &cek, Some(&iv), doc).unwrap());
    });
    let aes_dec = rate(secs / 2.0, || {
        std::hint::black_box(openssl::symm::decrypt(cipher, &cek, Some(&iv), &enc).unwrap());
    });
    println!(
        "  {label} in process: SHA-256 {sha:.0}/s, AES-256-CBC encrypt {aes_enc:.0}/s, decrypt {aes_dec:.0}/s"
    );
}
