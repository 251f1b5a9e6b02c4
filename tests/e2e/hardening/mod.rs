//! Trust hardening (issue 9): a CA that is revoked, held or expired signs nothing
//! but CRLs; a key revoked as compromised is never certified again; a recorded
//! tbsCertificate is signed only when it is what a first issuance would plan; the
//! root signs only CA and responder certificates.

mod audit;
mod ca_standing;
mod files;
mod issuance;

use crate::both_backends;
use crate::support::{pkilint, require, Backend, Env};

const OFFICIAL: &str = "CN=Hong Gildong(001234567), OU=people, OU=Ministry of the Interior and Safety, O=Government of Korea, C=KR";

fn ca_state(env: &Env, name: &str) -> serde_json::Value {
    let list = env.json(&["ca", "list"]);
    list.as_array()
        .unwrap()
        .iter()
        .find(|c| c["name"] == name)
        .cloned()
        .unwrap_or_else(|| panic!("no CA {name} in {list}"))
}

/// The libfaketime preload library Debian's `faketime` package installs.
fn faketime_lib() -> String {
    let out = std::process::Command::new("sh")
        .args([
            "-c",
            "ls /usr/lib/*/faketime/libfaketime.so.1 /usr/lib/faketime/libfaketime.so.1 2>/dev/null | head -n1",
        ])
        .output()
        .unwrap();
    let lib = String::from_utf8_lossy(&out.stdout).trim().to_string();
    assert!(!lib.is_empty(), "libfaketime.so.1 not found");
    lib
}

/// The first JSON value of a command's output (a failed batch prints its report,
/// then the error).
fn first_json(stdout: &str) -> serde_json::Value {
    serde_json::Deserializer::from_str(stdout)
        .into_iter::<serde_json::Value>()
        .next()
        .unwrap_or_else(|| panic!("no JSON in {stdout}"))
        .unwrap_or_else(|e| panic!("{e}: {stdout}"))
}

/// The tbsCertificate with the year of its notAfter (the second time in it) moved
/// ten years on: still valid DER, same length.
fn push_not_after(tbs: &[u8]) -> Vec<u8> {
    let mut out = tbs.to_vec();
    let mut seen = 0;
    let mut i = 0;
    while i + 15 <= out.len() {
        // UTCTime YYMMDDHHMMSSZ (tag 0x17, length 13) or GeneralizedTime (0x18, 15).
        if (out[i] == 0x17 && out[i + 1] == 13) || (out[i] == 0x18 && out[i + 1] == 15) {
            seen += 1;
            if seen == 2 {
                let tens = if out[i] == 0x17 { i + 2 } else { i + 4 };
                out[tens] = if out[tens] == b'9' {
                    b'8'
                } else {
                    out[tens] + 1
                };
                return out;
            }
            i += 2 + out[i + 1] as usize;
        } else {
            i += 1;
        }
    }
    panic!("no notAfter found");
}
