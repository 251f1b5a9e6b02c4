//! The OCSP responder as relying parties see it: `openssl ocsp` and curl against a
//! real `gpki-ocsp` process, pkilint on its responses, and a store outage.

mod answers;
mod crl;
mod dev_up;
mod outage;
mod renewal;

use std::process::Command;
use std::time::{Duration, Instant};

use crate::both_backends;
use crate::support::{pkilint, require, Backend, CuttableProxy, Env, Responder};

/// `openssl ocsp` for `certs` issued by mois, against `url`; stdout and stderr.
fn ask(env: &Env, url: &str, certs: &[&str], extra: &[&str]) -> String {
    let mut args = vec![
        "ocsp", "-issuer", "mois.pem", "-url", url, "-CAfile", "root.pem",
    ];
    args.extend(extra);
    for c in certs {
        args.extend(["-cert", c]);
    }
    env.openssl_ok(&args)
}

fn curl(args: &[&str]) -> Vec<u8> {
    let out = Command::new("curl").args(args).output().unwrap();
    assert!(
        out.status.success(),
        "curl {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    out.stdout
}

/// Polls until `check` holds, for at most `limit`; returns how long it took.
fn within(limit: Duration, what: &str, mut check: impl FnMut() -> bool) -> Duration {
    let start = Instant::now();
    while !check() {
        assert!(start.elapsed() < limit, "{what}: not within {limit:?}");
        std::thread::sleep(Duration::from_millis(20));
    }
    start.elapsed()
}

fn setup(env: &Env) -> (String, String) {
    env.hierarchy();
    env.issue_official("a.pem");
    env.issue_official("b.pem");
    let signer = env.json(&["ocsp", "issue-signer", "--ca", "mois"]);
    assert_eq!(signer["ca"], "mois", "{signer}");
    (env.serial_of("a.pem"), env.serial_of("b.pem"))
}

fn tlv(tag: u8, content: &[u8]) -> Vec<u8> {
    let mut out = vec![tag];
    if content.len() < 0x80 {
        out.push(content.len() as u8);
    } else {
        out.extend([0x81, content.len() as u8]);
    }
    out.extend_from_slice(content);
    out
}

/// `request` (a DER OCSPRequest without extensions) with a nonce of `len` octets.
fn with_nonce_of(request: &[u8], len: usize) -> Vec<u8> {
    // OCSPRequest { TBSRequest { requestList } }: take the requestList out.
    let tbs = &request[2..];
    let list = &tbs[2..];
    let nonce_oid = [0x2b, 0x06, 0x01, 0x05, 0x05, 0x07, 0x30, 0x01, 0x02];
    let ext = tlv(
        0x30,
        &[
            tlv(0x06, &nonce_oid),
            tlv(0x04, &tlv(0x04, &vec![0x5a; len])),
        ]
        .concat(),
    );
    let exts = tlv(0xa2, &tlv(0x30, &ext));
    tlv(0x30, &tlv(0x30, &[list, &exts[..]].concat()))
}

/// The host:port of a PostgreSQL URL.
fn pg_host_port(url: &str) -> String {
    let rest = url.split_once("://").unwrap().1;
    let rest = rest.rsplit_once('@').map_or(rest, |(_, h)| h);
    rest.split('/').next().unwrap().to_string()
}

fn get_crl(url: &str, out: &std::path::Path, etag: Option<&str>) -> (String, String) {
    let headers = out.with_extension("headers");
    let mut args = vec![
        "-s".to_string(),
        "-D".into(),
        headers.display().to_string(),
        "-o".into(),
        out.display().to_string(),
        "-w".into(),
        "%{http_code}".into(),
    ];
    if let Some(t) = etag {
        args.extend(["-H".into(), format!("If-None-Match: {t}")]);
    }
    args.push(url.to_string());
    let code =
        String::from_utf8(curl(&args.iter().map(String::as_str).collect::<Vec<_>>())).unwrap();
    (
        code,
        std::fs::read_to_string(headers).unwrap().to_lowercase(),
    )
}

fn header_value(headers: &str, name: &str) -> String {
    headers
        .lines()
        .find_map(|l| l.strip_prefix(&format!("{name}: ")))
        .unwrap_or_else(|| panic!("no {name} in {headers}"))
        .trim()
        .to_string()
}
