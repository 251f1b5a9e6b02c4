//! `gpki credential verify`: presentations read from a file and from a QR image
//! (zbarimg decodes the same image to the same bytes), checked against a real OCSP
//! responder for the signer, and every kind of tampering refused by its name.

mod metadata;
mod presentations;
mod status_lists;

use serde_json::{json, Value};

use crate::credentials::{issue, setup};
use crate::support::{require, Env, Responder};

const VERIFIER: &str = "https://gate.mois.go.kr";
const NONCE: &str = "c0ffee-4b1d-9e2a-77f0";

/// base64url without padding, both ways, through OpenSSL's base64.
fn b64url_decode(s: &str) -> Vec<u8> {
    let mut t: String = s.replace('-', "+").replace('_', "/");
    let pad = (4 - t.len() % 4) % 4;
    t.push_str(&"=".repeat(pad));
    openssl::base64::decode_block(&t).unwrap()
}

fn b64url_encode(b: &[u8]) -> String {
    openssl::base64::encode_block(b)
        .replace('+', "-")
        .replace('/', "_")
        .trim_end_matches('=')
        .to_string()
}

/// What a verification is asked with; [`Ask::new`] is this test verifier's own.
struct Ask<'a> {
    anchor: &'a str,
    verifier: &'a str,
    nonce: &'a str,
    /// A token file, or None to fetch the list.
    token: Option<&'a str>,
}

impl<'a> Ask<'a> {
    fn new(token: Option<&'a str>) -> Ask<'a> {
        Ask {
            anchor: "mobile-id.pem",
            verifier: VERIFIER,
            nonce: NONCE,
            token,
        }
    }
}

struct Verifier<'a> {
    env: &'a Env,
    ocsp: String,
}

impl Verifier<'_> {
    /// Runs `gpki credential verify` on `source` (`--presentation F` or `--qr F`)
    /// with the status list token `token`: the JSON report, or the refusal's stderr.
    fn run(&self, source: &[&str], token: &str, extra: &[&str]) -> Result<Value, String> {
        self.ask(&Ask::new(Some(token)), source, extra)
    }

    /// `gpki credential verify` as `ask` says (anchor, verifier, nonce, token).
    fn ask(&self, ask: &Ask, source: &[&str], extra: &[&str]) -> Result<Value, String> {
        let mut args = vec!["credential", "verify"];
        args.extend(source);
        args.extend([
            "--anchor",
            ask.anchor,
            "--verifier",
            ask.verifier,
            "--nonce",
            ask.nonce,
            "--ocsp-url",
            &self.ocsp,
            "--output",
            "json",
        ]);
        if let Some(t) = ask.token {
            args.extend(["--status-list-token", t]);
        }
        args.extend(extra);
        let r = self.env.run(&args);
        if r.code == 0 {
            Ok(serde_json::from_str(&r.stdout).unwrap())
        } else {
            assert_eq!(r.code, 1, "{}", r.stderr);
            Err(r.stderr)
        }
    }

    /// Insists on a refusal for `reason`; returns the message.
    fn refuses(&self, file: &str, token: &str, extra: &[&str], reason: &str) -> String {
        let e = self
            .run(&["--presentation", file], token, extra)
            .expect_err("accepted");
        assert!(
            e.contains(&format!("presentation refused [{reason}]")),
            "{file}: wanted [{reason}]: {e}"
        );
        e
    }
}

fn present(env: &Env, credential: &str, disclose: &str, out: &str, extra: &[&str]) -> Value {
    let mut args = vec![
        "credential",
        "present",
        "--credential",
        credential,
        "--disclose",
        disclose,
        "--holder-key",
        "holder.key",
        "--verifier",
        VERIFIER,
        "--nonce",
        NONCE,
        "--out",
        out,
    ];
    args.extend(extra);
    env.json(&args)
}

fn publish(env: &Env) {
    env.ok(&[
        "credential",
        "status-list",
        "publish",
        "--name",
        "mpoid-1",
        "--signer-key",
        "status.key",
        "--signer-pass-file",
        "outpass",
        "--signer-chain",
        "status.pem",
        "--jwt-out",
        "list.jwt",
        "--cwt-out",
        "list.cwt",
    ]);
}

/// What zbarimg reads from a QR image, as raw bytes.
fn zbarimg(env: &Env, png: &str) -> Vec<u8> {
    let out = std::process::Command::new("zbarimg")
        .args(["--raw", "-q", "-Sbinary", png])
        .current_dir(env.dir.path())
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "zbarimg: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let mut b = out.stdout;
    // zbarimg ends its output with a newline of its own.
    if b.last() == Some(&b'\n') {
        b.pop();
    }
    b
}

/// The SD-JWT text of a QR code's bytes, decoded by Python (zlib, cbor2, base64)
/// as docs/ARCHITECTURE.md ("QR codes") describes the form: zlib over a CBOR array of arrays of
/// the base64url segments' bytes.
fn sd_jwt_from_qr_bytes(bytes: &[u8]) -> Vec<u8> {
    use std::io::Write;
    let script = "import sys, zlib, cbor2, base64\n\
        parts = cbor2.loads(zlib.decompress(sys.stdin.buffer.read()))\n\
        b64 = lambda b: base64.urlsafe_b64encode(b).rstrip(b'=').decode()\n\
        sys.stdout.write('~'.join('.'.join(b64(s) for s in p) for p in parts))";
    let mut child = std::process::Command::new("python3")
        .args(["-c", script])
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    child.stdin.take().unwrap().write_all(bytes).unwrap();
    let out = child.wait_with_output().unwrap();
    assert!(
        out.status.success(),
        "Python cannot unpack the QR bytes ({} bytes, first {:02x?}): {}",
        bytes.len(),
        &bytes[..bytes.len().min(8)],
        String::from_utf8_lossy(&out.stderr)
    );
    out.stdout
}

fn checks(report: &Value) -> Vec<String> {
    report["checks"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c["check"].as_str().unwrap().to_string())
        .collect()
}

/// A TCP relay to `target` that keeps every byte clients send: what a verifier's
/// status list fetch tells the server.
struct Recorder {
    port: u16,
    sent: std::sync::Arc<std::sync::Mutex<Vec<Vec<u8>>>>,
}

impl Recorder {
    fn start(target: String) -> Recorder {
        use std::io::{Read, Write};
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let port = listener.local_addr().unwrap().port();
        let sent = std::sync::Arc::new(std::sync::Mutex::new(Vec::new()));
        let log = sent.clone();
        std::thread::spawn(move || {
            for client in listener.incoming().flatten() {
                let Ok(server) = std::net::TcpStream::connect(&target) else {
                    continue;
                };
                let (mut from, mut to) = (client.try_clone().unwrap(), server.try_clone().unwrap());
                let log = log.clone();
                std::thread::spawn(move || {
                    let mut seen = Vec::new();
                    let mut buf = [0u8; 4096];
                    while let Ok(n) = from.read(&mut buf) {
                        if n == 0 || to.write_all(&buf[..n]).is_err() {
                            break;
                        }
                        seen.extend_from_slice(&buf[..n]);
                    }
                    log.lock().unwrap().push(seen);
                    let _ = to.shutdown(std::net::Shutdown::Write);
                });
                let (mut back, mut out) = (server, client);
                std::thread::spawn(move || {
                    let _ = std::io::copy(&mut back, &mut out);
                    let _ = out.shutdown(std::net::Shutdown::Both);
                });
            }
        });
        Recorder { port, sent }
    }

    fn take(&self) -> Vec<String> {
        // The relay records a connection when the client closes it.
        std::thread::sleep(std::time::Duration::from_millis(200));
        self.sent
            .lock()
            .unwrap()
            .drain(..)
            .map(|b| String::from_utf8_lossy(&b).into_owned())
            .collect()
    }
}

fn curl(args: &[&str]) -> (String, Vec<u8>) {
    let head = tempfile::NamedTempFile::new().unwrap();
    let out = std::process::Command::new("curl")
        .args(["-s", "-D", head.path().to_str().unwrap()])
        .args(args)
        .output()
        .unwrap();
    assert!(out.status.success(), "curl {args:?}");
    (std::fs::read_to_string(head.path()).unwrap(), out.stdout)
}

fn header<'a>(head: &'a str, name: &str) -> &'a str {
    head.lines()
        .find_map(|l| {
            let (k, v) = l.split_once(':')?;
            k.eq_ignore_ascii_case(name).then(|| v.trim())
        })
        .unwrap_or_else(|| panic!("no {name} in {head}"))
}

/// Runs the issuer-discovery oracle on the documents `responder` serves now and the
/// given credentials: per credential, what a metadata-based and a DID-based
/// verifier decide.
fn discovery(env: &Env, responder: &str, credentials: &[&str]) -> Value {
    let (head, metadata) = curl(&[&format!("{responder}/.well-known/jwt-vc-issuer")]);
    assert!(head.starts_with("HTTP/1.1 200"), "{head}");
    assert_eq!(header(&head, "content-type"), "application/json");
    let (head, did) = curl(&[&format!("{responder}/.well-known/did.json")]);
    assert!(head.starts_with("HTTP/1.1 200"), "{head}");
    assert_eq!(header(&head, "content-type"), "application/did+json");
    std::fs::write(env.path("metadata.json"), metadata).unwrap();
    std::fs::write(env.path("did.json"), did).unwrap();
    let out = std::process::Command::new("python3")
        .arg(concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/../tests/e2e/py/issuer_oracle.py"
        ))
        .args(["metadata.json", "did.json", "https://id.gpki.go.kr"])
        .args(credentials)
        .current_dir(env.dir.path())
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    serde_json::from_slice(&out.stdout).unwrap()
}

/// Both documents' verdicts on `credential`, as one word when they agree.
fn verdict(v: &Value, credential: &str) -> String {
    let (m, d) = (&v[credential]["metadata"], &v[credential]["did"]);
    assert_eq!(m, d, "metadata and DID disagree on {credential}: {v}");
    m.as_str().unwrap().to_string()
}
