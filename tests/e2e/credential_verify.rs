//! `gpki credential verify`: presentations read from a file and from a QR image
//! (zbarimg decodes the same image to the same bytes), checked against a real OCSP
//! responder for the signer, and every kind of tampering refused by its name.

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

#[test]
fn presentations_verify_from_file_and_qr_and_every_tampering_is_refused_by_name() {
    if !require("openssl") || !require("python3") || !require("zbarimg") {
        return;
    }
    let env = Env::new(crate::support::Backend::Sqlite).unwrap();
    setup(&env);
    env.ok(&["ocsp", "issue-signer", "--ca", "mobile-id"]);
    // Another root with the same subject as ours, made by OpenSSL: a look-alike
    // anchor must not be mistaken for the real one.
    env.openssl_ok(&[
        "req",
        "-x509",
        "-newkey",
        "ec",
        "-pkeyopt",
        "ec_paramgen_curve:P-384",
        "-nodes",
        "-keyout",
        "other-root.key",
        "-out",
        "other-root.pem",
        "-days",
        "30",
        "-subj",
        "/C=KR/O=Government of Korea/OU=GPKI/CN=Test Root CA",
    ]);
    let responder = Responder::start(&env, "ocsp", &env.store, &["mobile-id"], "");
    let v = Verifier {
        env: &env,
        ocsp: format!("{}/ocsp", responder.url),
    };
    issue(&env, "mdoc", "id.mdoc", &[]);
    let sdjwt = issue(&env, "sd-jwt", "id.sd-jwt", &[]);
    issue(&env, "sd-jwt", "short.sd-jwt", &["--valid-days", "1"]);
    publish(&env);

    for (format, credential, token) in [
        ("mdoc", "id.mdoc", "list.cwt"),
        ("sd-jwt", "id.sd-jwt", "list.jwt"),
    ] {
        let file = format!("{format}.presentation");
        let png = format!("{format}.png");
        let p = present(
            &env,
            credential,
            "name,institution,position",
            &file,
            &["--qr", &png],
        );
        assert!(p["qr"]["version"].as_i64().unwrap() <= 40, "{p}");

        // From the file and from the image: the same report.
        let report = v
            .run(&["--presentation", &file], token, &[])
            .unwrap_or_else(|e| panic!("{format}: a good presentation is refused: {e}"));
        assert_eq!(report["verified"], true);
        assert_eq!(report["format"], format);
        let disclosed = report["disclosed"].as_object().unwrap();
        let mut names: Vec<&str> = disclosed.keys().map(String::as_str).collect();
        names.sort();
        assert_eq!(names, ["institution", "name", "position"], "{format}");
        assert_eq!(disclosed["name"], "Hong Gildong");
        let made = checks(&report);
        for c in [
            "chain",
            "signer-status",
            "signature",
            "digests",
            "validity",
            "holder-binding",
            "status",
        ] {
            assert!(
                made.iter().any(|m| m == c),
                "{format}: no `{c}` in {made:?}"
            );
        }
        // The status list token's own signer was checked too (chain and OCSP).
        assert!(
            made.iter().filter(|m| *m == "chain").count() == 2,
            "{made:?}"
        );
        let from_qr = v.run(&["--qr", &png], token, &[]).unwrap();
        assert_eq!(from_qr["disclosed"], report["disclosed"]);

        // An independent reader of the image gets the same bytes.
        let bytes = std::fs::read(env.path(&file)).unwrap();
        let read = zbarimg(&env, &png);
        match format {
            "mdoc" => assert_eq!(read, bytes, "zbarimg reads the DeviceResponse"),
            _ => assert_eq!(
                sd_jwt_from_qr_bytes(&read),
                bytes,
                "zbarimg reads the packed SD-JWT"
            ),
        }

        // A wrong nonce.
        let wrong = "another-nonce-0000";
        let reason = if format == "mdoc" {
            "device-auth"
        } else {
            "wrong-nonce"
        };
        let e = v
            .ask(
                &Ask {
                    nonce: wrong,
                    ..Ask::new(Some(token))
                },
                &["--presentation", &file],
                &[],
            )
            .expect_err("a wrong nonce accepted");
        assert!(e.contains(&format!("[{reason}]")), "{format}: {e}");

        // An unknown trust anchor: another government's root.
        let e = v
            .ask(
                &Ask {
                    anchor: "other-root.pem",
                    ..Ask::new(Some(token))
                },
                &["--presentation", &file],
                &[],
            )
            .expect_err("an unknown anchor accepted");
        assert!(
            e.contains("[untrusted-chain]") && e.contains("does not chain to a trust anchor"),
            "{e}"
        );
        // The root above the credential CA is not enough: any CA under it could mint IDs.
        let e = v
            .ask(
                &Ask {
                    anchor: "root.pem",
                    ..Ask::new(Some(token))
                },
                &["--presentation", &file],
                &[],
            )
            .expect_err("a root-only anchor accepted");
        assert!(
            e.contains("[untrusted-chain]") && e.contains("which is not a configured trust anchor"),
            "{e}"
        );
        // Another verifier presenting what was made for this one.
        let reason = if format == "mdoc" {
            "device-auth"
        } else {
            "wrong-verifier"
        };
        let e = v
            .ask(
                &Ask {
                    verifier: "https://elsewhere.go.kr",
                    ..Ask::new(Some(token))
                },
                &["--presentation", &file],
                &[],
            )
            .expect_err("another verifier accepted");
        assert!(e.contains(&format!("[{reason}]")), "{format}: {e}");
    }

    // A status list signed under another CA of the same root: refused, even though it
    // chains and carries the purpose (it could clear anyone's revocation).
    env.ok(&[
        "ca",
        "create",
        "--parent",
        "root",
        "--name",
        "other-ca",
        "--subject",
        "CN=Test Other CA, OU=GPKI, O=Government of Korea, C=KR",
        "--key-type",
        "p256",
        "--out",
        "other-ca.pem",
    ]);
    env.ok(&[
        "cert", "issue", "--ca", "other-ca", "--profile", "status-list-signer", "--subject",
        "CN=Other Status List, OU=credentials, OU=Ministry of the Interior and Safety, O=Government of Korea, C=KR",
        "--generate-key", "--key-out", "other-status.key", "--out", "other-status.pem", "--chain",
    ]);
    env.ok(&[
        "credential",
        "status-list",
        "publish",
        "--name",
        "mpoid-1",
        "--signer-key",
        "other-status.key",
        "--signer-pass-file",
        "outpass",
        "--signer-chain",
        "other-status.pem",
        "--jwt-out",
        "other.jwt",
        "--cwt-out",
        "other.cwt",
    ]);
    let e = v
        .run(
            &["--presentation", "mdoc.presentation"],
            "other.cwt",
            &["--anchor", "other-ca.pem"],
        )
        .expect_err("another CA's status list accepted");
    assert!(
        e.contains("[status-untrusted]") && e.contains("not the credential's CA"),
        "{e}"
    );

    // Tampering with the mdoc, each refused by its name.
    let m = std::fs::read(env.path("mdoc.presentation")).unwrap();
    let write = |name: &str, bytes: &[u8]| std::fs::write(env.path(name), bytes).unwrap();
    let at = |hay: &[u8], needle: &[u8]| {
        hay.windows(needle.len())
            .position(|w| w == needle)
            .expect("present")
    };
    // An attribute's value (same length, so the CBOR stays well formed).
    let mut t = m.clone();
    let i = at(&t, b"Hong Gildong");
    t[i + 11] = b'q';
    write("attr.mdoc", &t);
    let e = v.refuses("attr.mdoc", "list.cwt", &[], "digest-mismatch");
    assert!(e.contains("attribute `name`"), "{e}");
    // A signed digest in the MSO (the first digest runs from 36 to 67 bytes past
    // "valueDigests"): the issuer's signature no longer covers it.
    let mut t = m.clone();
    let i = at(&t, b"valueDigests") + 40;
    t[i] ^= 0x01;
    write("digest.mdoc", &t);
    v.refuses("digest.mdoc", "list.cwt", &[], "bad-signature");
    // Truncated CBOR.
    write("truncated.mdoc", &m[..m.len() / 2]);
    let e = v.refuses("truncated.mdoc", "list.cwt", &[], "malformed");
    assert!(e.contains("truncated or malformed CBOR"), "{e}");

    // Tampering with the SD-JWT.
    let text = std::fs::read_to_string(env.path("sd-jwt.presentation")).unwrap();
    let parts: Vec<&str> = text.split('~').collect();
    // An attribute's disclosure, re-encoded with another value.
    let (k, d) = parts
        .iter()
        .enumerate()
        .filter(|(k, _)| *k > 0 && *k + 1 < parts.len())
        .find(|(_, d)| String::from_utf8_lossy(&b64url_decode(d)).contains("Hong Gildong"))
        .unwrap();
    let forged = String::from_utf8(b64url_decode(d))
        .unwrap()
        .replace("Hong Gildong", "Kim Minsu");
    let mut t = parts.clone();
    let forged = b64url_encode(forged.as_bytes());
    t[k] = &forged;
    write("attr.sd-jwt", t.join("~").as_bytes());
    let e = v.refuses("attr.sd-jwt", "list.jwt", &[], "digest-mismatch");
    assert!(e.contains("attribute `name`"), "{e}");
    // A signed digest in _sd.
    let jws: Vec<&str> = parts[0].split('.').collect();
    let payload = String::from_utf8(b64url_decode(jws[1])).unwrap();
    let i = payload.find("\"_sd\":[\"").unwrap() + 8;
    let mut forged = payload.into_bytes();
    forged[i] = if forged[i] == b'A' { b'B' } else { b'A' };
    let jws_forged = format!("{}.{}.{}", jws[0], b64url_encode(&forged), jws[2]);
    let mut t = parts.clone();
    t[0] = &jws_forged;
    write("digest.sd-jwt", t.join("~").as_bytes());
    v.refuses("digest.sd-jwt", "list.jwt", &[], "bad-signature");
    // A malformed JWT.
    write("malformed.sd-jwt", b"eyJhbGciOiJFUzI1NiJ9.%%%~");
    let e = v.refuses("malformed.sd-jwt", "list.jwt", &[], "malformed");
    assert!(e.contains("malformed JWT"), "{e}");

    // Expired: a one-day credential, verified three days on.
    present(&env, "short.sd-jwt", "name", "short.presentation", &[]);
    let later = String::from_utf8(
        std::process::Command::new("date")
            .args(["-u", "-d", "+3 days", "+%Y-%m-%dT%H:%M:%SZ"])
            .output()
            .unwrap()
            .stdout,
    )
    .unwrap();
    v.run(&["--presentation", "short.presentation"], "list.jwt", &[])
        .expect("valid today");
    let e = v.refuses(
        "short.presentation",
        "list.jwt",
        &["--at", later.trim()],
        "expired",
    );
    assert!(e.contains("the credential expired at"), "{e}");

    // Revoked (lost phone): its bit is set in the next list, and the credential fails.
    let id = sdjwt["id"].as_i64().unwrap().to_string();
    env.ok(&[
        "credential",
        "revoke",
        "--id",
        &id,
        "--reason",
        "lost-device",
    ]);
    publish(&env);
    let e = v.refuses("sd-jwt.presentation", "list.jwt", &[], "credential-revoked");
    assert!(e.contains(&format!("entry {} of", sdjwt["idx"])), "{e}");
    // The other credential on the same list still verifies.
    v.run(&["--presentation", "mdoc.presentation"], "list.cwt", &[])
        .expect("the mdoc is not revoked");

    // The signer certificate revoked: OCSP says so, and nothing it signed verifies.
    let serial = env.serial_of("signer.pem");
    env.ok(&[
        "cert",
        "revoke",
        "--ca",
        "mobile-id",
        "--serial",
        &serial,
        "--reason",
        "keyCompromise",
    ]);
    crate::support::eventually("the revoked signer refused", 10, || {
        match v.run(&["--presentation", "mdoc.presentation"], "list.cwt", &[]) {
            Err(e) if e.contains("[signer-revoked]") => Ok(()),
            other => Err(format!("{other:?}")),
        }
    });
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

#[test]
fn the_responder_serves_status_lists_and_a_verifiers_fetch_names_no_credential() {
    if !require("openssl") || !require("python3") || !require("curl") {
        return;
    }
    let env = Env::new(crate::support::Backend::Sqlite).unwrap();
    setup(&env);
    env.ok(&["ocsp", "issue-signer", "--ca", "mobile-id"]);
    // The responder opens its keys with one passphrase: the status-list signer's key
    // re-encrypted under it.
    env.openssl_ok(&[
        "pkcs8",
        "-topk8",
        "-in",
        "status.key",
        "-passin",
        "file:outpass",
        "-v2",
        "aes-256-cbc",
        "-passout",
        "file:pass",
        "-out",
        "status-responder.key",
    ]);
    let extra = format!(
        "[status_lists]\ncert = \"{}\"\nkey = \"{}\"\nttl_seconds = 10\nvalid_seconds = 60\n",
        env.path("status.pem").display(),
        env.path("status-responder.key").display()
    );
    let responder = Responder::start(&env, "ocsp", &env.store, &["mobile-id"], &extra);
    let recorder = Recorder::start(responder.url.trim_start_matches("http://").to_string());
    let uri = format!("http://127.0.0.1:{}/statuslists/mpoid-2", recorder.port);
    env.ok(&[
        "credential",
        "status-list",
        "create",
        "--name",
        "mpoid-2",
        "--uri",
        &uri,
        "--size",
        "65536",
    ]);
    let v = Verifier {
        env: &env,
        ocsp: format!("{}/ocsp", responder.url),
    };
    let on_list_2 = |format: &str, out: &str| {
        let mut args = crate::credentials::issue_args(format, "attrs.json", out);
        let at = args.iter().position(|a| *a == "mpoid-1").unwrap();
        args[at] = "mpoid-2";
        env.json(&args)
    };
    let a = on_list_2("sd-jwt", "a.sd-jwt");
    let b = on_list_2("sd-jwt", "b.sd-jwt");
    on_list_2("mdoc", "m.mdoc");
    present(&env, "a.sd-jwt", "name", "a.presentation", &[]);
    present(&env, "b.sd-jwt", "name", "b.presentation", &[]);
    present(&env, "m.mdoc", "name", "m.presentation", &[]);

    // Fetched live (no token given): verified, and the list's own check shows it.
    let fetch = |file: &str| v.ask(&Ask::new(None), &["--presentation", file], &[]);
    recorder.take();
    let report = fetch("a.presentation").unwrap_or_else(|e| panic!("{e}"));
    assert!(checks(&report).contains(&"status".to_string()));
    let for_a = recorder.take();
    fetch("b.presentation").unwrap_or_else(|e| panic!("{e}"));
    let for_b = recorder.take();
    fetch("m.presentation").unwrap_or_else(|e| panic!("{e}"));
    let for_m = recorder.take();

    // What the issuer's server saw: the list's path, the media type, nothing else.
    // Two different credentials' checks are the same bytes.
    assert_eq!(for_a.len(), 1, "{for_a:?}");
    assert_eq!(for_a, for_b, "the fetch differs by credential");
    let request = &for_a[0];
    let mut lines = request.split("\r\n");
    assert_eq!(lines.next(), Some("GET /statuslists/mpoid-2 HTTP/1.1"));
    for line in lines.filter(|l| !l.is_empty()) {
        let (name, value) = line.split_once(':').unwrap();
        match name.to_ascii_lowercase().as_str() {
            "host" => assert_eq!(value.trim(), format!("127.0.0.1:{}", recorder.port)),
            "accept" => assert_eq!(value.trim(), "application/statuslist+jwt"),
            "user-agent" => assert!(value.trim().starts_with("ureq/"), "{line}"),
            "accept-encoding" => {}
            other => panic!("the fetch sends `{other}`: {request}"),
        }
    }
    assert!(
        !request.contains('?') && !request.contains("Cookie"),
        "{request}"
    );
    // The mdoc's fetch asks for the CWT of the same list.
    assert!(
        for_m[0].starts_with("GET /statuslists/mpoid-2 HTTP/1.1\r\n")
            && for_m[0].contains("Accept: application/statuslist+cwt"),
        "{for_m:?}"
    );

    // The tokens as served: caching headers, 304 on a matching ETag, and the
    // independent oracle reads them.
    let url = format!("{}/statuslists/mpoid-2", responder.url);
    let (head, jwt) = curl(&[&url]);
    assert!(head.starts_with("HTTP/1.1 200"), "{head}");
    assert_eq!(header(&head, "content-type"), "application/statuslist+jwt");
    assert_eq!(
        header(&head, "cache-control"),
        "max-age=10, public, no-transform"
    );
    let etag = header(&head, "etag").to_string();
    header(&head, "last-modified");
    header(&head, "expires");
    let (head, _) = curl(&[&url, "-H", &format!("If-None-Match: {etag}")]);
    assert!(head.starts_with("HTTP/1.1 304"), "{head}");
    let (head, cwt) = curl(&[&url, "-H", "Accept: application/statuslist+cwt"]);
    assert_eq!(header(&head, "content-type"), "application/statuslist+cwt");
    assert_ne!(
        header(&head, "etag"),
        etag,
        "the CWT has an ETag of its own"
    );
    std::fs::write(env.path("served.jwt"), &jwt).unwrap();
    std::fs::write(env.path("served.cwt"), &cwt).unwrap();
    let (ia, ib) = (a["idx"].to_string(), b["idx"].to_string());
    let oracle = |ia: &str, ib: &str| {
        let out = std::process::Command::new("python3")
            .arg(concat!(
                env!("CARGO_MANIFEST_DIR"),
                "/../tests/e2e/py/status_list_oracle.py"
            ))
            .args(["served.jwt", "served.cwt", "mobile-id.pem", ia, ib])
            .current_dir(env.dir.path())
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        serde_json::from_slice::<Value>(&out.stdout).unwrap()
    };
    let before = oracle(&ia, &ib);
    assert_eq!(before["sub"], uri);
    assert_eq!(before["ttl"], 10);
    assert_eq!(before["set_bits"], 0);
    // An unknown list, and a name that is no name.
    let (head, _) = curl(&[&format!("{}/statuslists/nope", responder.url)]);
    assert!(head.starts_with("HTTP/1.1 404"), "{head}");
    let (head, body) = curl(&[&format!("{}/statuslists/..%2f..%2fetc", responder.url)]);
    assert!(head.starts_with("HTTP/1.1 404"), "{head}");
    assert_eq!(
        String::from_utf8_lossy(&body).trim(),
        "no such status list",
        "refused before the store"
    );

    // Lost phone: revoked, and the next fetch (the responder rereads the list's
    // sequence at most once a second) makes verification fail; the other stays good.
    let id = a["id"].as_i64().unwrap().to_string();
    env.ok(&[
        "credential",
        "revoke",
        "--id",
        &id,
        "--reason",
        "lost-device",
    ]);
    crate::support::eventually("the lost credential refused", 5, || {
        match fetch("a.presentation") {
            Err(e) if e.contains("[credential-revoked]") => Ok(()),
            other => Err(format!("{other:?}")),
        }
    });
    fetch("b.presentation").expect("the other credential is still good");
    let (_, jwt) = curl(&[&url]);
    let (_, cwt) = curl(&[&url, "-H", "Accept: application/statuslist+cwt"]);
    std::fs::write(env.path("served.jwt"), &jwt).unwrap();
    std::fs::write(env.path("served.cwt"), &cwt).unwrap();
    let after = oracle(&ia, &ib);
    assert_eq!(after["statuses"][&ia], 1);
    assert_eq!(after["statuses"][&ib], 0);
    assert_eq!(after["set_bits"], 1);

    // The signer's standing is checked as the CA checks its own (issue 28, point
    // 7): revoked, it signs no further token, the list answers 503 naming why, and
    // /healthz is degraded, saying the same.
    assert_eq!(responder.health()["status_list_signer"], "in force");
    let signer = env.serial_of("status.pem");
    env.ok(&[
        "cert",
        "revoke",
        "--ca",
        "mobile-id",
        "--serial",
        &signer,
        "--reason",
        "keyCompromise",
    ]);
    crate::support::eventually(
        "the status list refused after its signer's revocation",
        5,
        || {
            let (head, body) = curl(&[&url]);
            let body = String::from_utf8_lossy(&body).into_owned();
            (head.starts_with("HTTP/1.1 503")
                && body.contains("signer certificate is not in force"))
            .then_some(())
            .ok_or(format!("{head}{body}"))
        },
    );
    let health = responder.health();
    assert_eq!(health["status"], "degraded", "{health}");
    assert!(
        health["status_list_signer"]
            .as_str()
            .unwrap()
            .contains("not in force"),
        "{health}"
    );
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

#[test]
fn issuer_metadata_and_did_web_name_the_signer_keys_in_force_and_agree_with_x509() {
    if !require("openssl") || !require("python3") || !require("curl") {
        return;
    }
    let env = Env::new(crate::support::Backend::Sqlite).unwrap();
    setup(&env);
    env.ok(&["ocsp", "issue-signer", "--ca", "mobile-id"]);
    // A signer of the same CA for another issuer, and the status-list signer: neither
    // is a key of this issuer.
    env.ok(&[
        "cert",
        "issue",
        "--ca",
        "mobile-id",
        "--profile",
        "credential-signer",
        "--subject",
        "CN=Other Issuer Signer, OU=credentials, OU=Other, O=Government of Korea, C=KR",
        "--san",
        "uri:https://other.gpki.go.kr",
        "--generate-key",
        "--key-out",
        "other.key",
        "--out",
        "other.pem",
    ]);
    let extra = "[credential_issuer]\nid = \"https://id.gpki.go.kr\"\nca = \"mobile-id\"\nmax_age_seconds = 10\n";
    let responder = Responder::start(&env, "ocsp", &env.store, &["mobile-id"], extra);
    let url = responder.url.clone();
    let v = Verifier {
        env: &env,
        ocsp: format!("{url}/ocsp"),
    };
    issue(&env, "sd-jwt", "a.sd-jwt", &[]);
    issue(&env, "mdoc", "a.mdoc", &[]);
    publish(&env);
    present(&env, "a.sd-jwt", "name", "a.presentation", &[]);
    present(&env, "a.mdoc", "name", "am.presentation", &[]);
    // RFC 7638 thumbprints of the signer keys, computed here from the certificates.
    let thumbprint = |pem: &str| -> String {
        let cert = openssl::x509::X509::from_pem(&std::fs::read(env.path(pem)).unwrap()).unwrap();
        let ec = cert.public_key().unwrap().ec_key().unwrap();
        let mut ctx = openssl::bn::BigNumContext::new().unwrap();
        let (mut x, mut y) = (
            openssl::bn::BigNum::new().unwrap(),
            openssl::bn::BigNum::new().unwrap(),
        );
        ec.public_key()
            .affine_coordinates(ec.group(), &mut x, &mut y, &mut ctx)
            .unwrap();
        let canonical = format!(
            r#"{{"crv":"P-256","kty":"EC","x":"{}","y":"{}"}}"#,
            b64url_encode(&x.to_vec_padded(32).unwrap()),
            b64url_encode(&y.to_vec_padded(32).unwrap())
        );
        b64url_encode(&openssl::sha::sha256(canonical.as_bytes()))
    };
    let first = thumbprint("signer.pem");

    // One key: the signer's, with its x5c; the SD-JWT names it as kid; both kinds of
    // verifier accept both credentials, and so does the X.509 verifier.
    let d = discovery(&env, &url, &["a.sd-jwt", "a.mdoc"]);
    assert_eq!(d["keys"], json!([first]), "{d}");
    assert_eq!(d["did_keys"], json!([first]), "{d}");
    assert_eq!(verdict(&d, "a.sd-jwt"), "accept");
    assert_eq!(verdict(&d, "a.mdoc"), "accept");
    v.run(&["--presentation", "a.presentation"], "list.jwt", &[])
        .expect("X.509 accepts the SD-JWT");
    v.run(&["--presentation", "am.presentation"], "list.cwt", &[])
        .expect("X.509 accepts the mdoc");
    // Caching: max-age, an ETag of each document's own, 304 on a match.
    let (head, _) = curl(&[&format!("{url}/.well-known/did.json")]);
    assert_eq!(header(&head, "cache-control"), "max-age=10, public");
    let etag = header(&head, "etag").to_string();
    let (head, _) = curl(&[
        &format!("{url}/.well-known/did.json"),
        "-H",
        &format!("If-None-Match: {etag}"),
    ]);
    assert!(head.starts_with("HTTP/1.1 304"), "{head}");

    // Rotation: a second signer, then the first retired (superseded). The new key
    // joins both documents; the old one leaves both, and everything it signed is
    // refused by all three verifiers alike.
    env.ok(&[
        "cert", "issue", "--ca", "mobile-id", "--profile", "credential-signer", "--subject",
        "CN=Mobile Public Official ID Signer 2, OU=credentials, OU=MOIS, O=Government of Korea, C=KR",
        "--san", "uri:https://id.gpki.go.kr", "--generate-key", "--key-out", "signer2.key",
        "--out", "signer2.pem", "--chain",
    ]);
    let second = thumbprint("signer2.pem");
    let mut args = crate::credentials::issue_args("sd-jwt", "attrs.json", "b.sd-jwt");
    for (from, to) in [
        ("signer.key", "signer2.key"),
        ("signer-chain.pem", "signer2.pem"),
    ] {
        let at = args.iter().position(|a| *a == from).unwrap();
        args[at] = to;
    }
    env.ok(&args);
    present(&env, "b.sd-jwt", "name", "b.presentation", &[]);
    crate::support::eventually("the new key listed", 5, || {
        let d = discovery(&env, &url, &[]);
        let mut both = vec![first.clone(), second.clone()];
        both.sort();
        (d["keys"] == json!(both) && d["did_keys"] == json!(both))
            .then_some(())
            .ok_or(format!("{d}"))
    });
    let serial = env.serial_of("signer.pem");
    env.ok(&[
        "cert",
        "revoke",
        "--ca",
        "mobile-id",
        "--serial",
        &serial,
        "--reason",
        "superseded",
    ]);
    crate::support::eventually("the retired key gone from both", 5, || {
        let d = discovery(&env, &url, &[]);
        (d["keys"] == json!([second]) && d["did_keys"] == json!([second]))
            .then_some(())
            .ok_or(format!("{d}"))
    });
    let d = discovery(&env, &url, &["a.sd-jwt", "a.mdoc", "b.sd-jwt"]);
    assert_eq!(verdict(&d, "a.sd-jwt"), "no-key");
    assert_eq!(verdict(&d, "a.mdoc"), "no-key");
    assert_eq!(verdict(&d, "b.sd-jwt"), "accept");
    crate::support::eventually("X.509 refuses the retired signer", 10, || {
        match v.run(&["--presentation", "a.presentation"], "list.jwt", &[]) {
            Err(e) if e.contains("[signer-revoked]") => Ok(()),
            other => Err(format!("{other:?}")),
        }
    });
    v.refuses("am.presentation", "list.cwt", &[], "signer-revoked");
    v.run(&["--presentation", "b.presentation"], "list.jwt", &[])
        .expect("X.509 accepts the new signer's credential");

    // A kid naming another key than x5c's: the two kinds of verifier would judge
    // different keys, so gpki refuses it.
    let text = std::fs::read_to_string(env.path("b.presentation")).unwrap();
    let (jws, rest) = text.split_once('~').unwrap();
    let mut parts = jws.splitn(2, '.');
    let mut h: Value = serde_json::from_slice(&b64url_decode(parts.next().unwrap())).unwrap();
    h["kid"] = json!(first);
    let forged = format!(
        "{}.{}~{rest}",
        b64url_encode(&serde_json::to_vec(&h).unwrap()),
        parts.next().unwrap()
    );
    std::fs::write(env.path("kid.presentation"), forged).unwrap();
    let e = v.refuses("kid.presentation", "list.jwt", &[], "issuer-mismatch");
    assert!(e.contains("kid"), "{e}");

    // A renewal that keeps the key: one JWK for the key, however many certificates.
    // Then the renewed certificate revoked: the key is withdrawn from both documents
    // although its first certificate is in force, since a verifier selecting by kid
    // cannot tell the two apart.
    env.ok(&[
        "cert",
        "renew",
        "--ca",
        "mobile-id",
        "--serial",
        &env.serial_of("signer2.pem"),
        "--out",
        "signer2-renewed.pem",
    ]);
    std::thread::sleep(std::time::Duration::from_millis(1100));
    let d = discovery(&env, &url, &["b.sd-jwt"]);
    assert_eq!(d["keys"], json!([second]), "{d}");
    assert_eq!(verdict(&d, "b.sd-jwt"), "accept");
    env.ok(&[
        "cert",
        "revoke",
        "--ca",
        "mobile-id",
        "--serial",
        &env.serial_of("signer2-renewed.pem"),
        "--reason",
        "superseded",
    ]);
    crate::support::eventually("a key revoked in one certificate gone", 5, || {
        let d = discovery(&env, &url, &["b.sd-jwt"]);
        (d["keys"] == json!([]) && verdict(&d, "b.sd-jwt") == "no-key")
            .then_some(())
            .ok_or(format!("{d}"))
    });

    // The last key revoked: both documents list none, and the X.509 verifier refuses.
    let serial = env.serial_of("signer2.pem");
    env.ok(&[
        "cert",
        "revoke",
        "--ca",
        "mobile-id",
        "--serial",
        &serial,
        "--reason",
        "keyCompromise",
    ]);
    crate::support::eventually("no key left", 5, || {
        let d = discovery(&env, &url, &["b.sd-jwt"]);
        (d["keys"] == json!([]) && verdict(&d, "b.sd-jwt") == "no-key")
            .then_some(())
            .ok_or(format!("{d}"))
    });
    crate::support::eventually("X.509 refuses the revoked signer", 10, || {
        match v.run(&["--presentation", "b.presentation"], "list.jwt", &[]) {
            Err(e) if e.contains("[signer-revoked]") => Ok(()),
            other => Err(format!("{other:?}")),
        }
    });
}
