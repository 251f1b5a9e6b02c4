//! Mobile credentials (the mobile public-official ID): issued by `gpki credential
//! issue` as mdoc and SD-JWT VC, judged by independent Python libraries (pymdoccbor,
//! pycose, cbor2; jwcrypto and the sd-jwt reference library) and OpenSSL; their
//! records, revocation and replacement in the store.

use serde_json::Value;

use crate::support::{require, Backend, Env};

const ORACLES: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/../tests/e2e/py");
const SIGNER_SUBJECT: &str = "CN=Mobile Public Official ID Signer 1, OU=credentials, OU=Ministry of the Interior and Safety, O=Government of Korea, C=KR";
const ISSUER: &str = "https://id.gpki.go.kr";

/// The official the tests issue to.
const ATTRIBUTES: &str = r#"{"name": "Hong Gildong", "employee_number": "001234567",
  "institution": "Ministry of the Interior and Safety", "department": "Digital Government Bureau",
  "position": "Deputy Director", "issue_date": "2026-11-24", "expiry_date": "2031-11-23"}"#;

/// A root, the credential CA `mobile-id` under it, a credential-signer certificate
/// (`signer.pem`, key `signer.key`, chain with the root `signer-chain.pem`), a status
/// list `mpoid-1`, the holder's P-256 key (`holder.key`, `holder.pub`), the
/// attributes and a portrait.
pub(crate) fn setup(env: &Env) {
    env.ok(&[
        "ca",
        "init-root",
        "--name",
        "root",
        "--subject",
        "CN=Test Root CA, OU=GPKI, O=Government of Korea, C=KR",
        "--key-type",
        "p384",
        "--out",
        "root.pem",
    ]);
    env.ok(&[
        "ca",
        "create",
        "--parent",
        "root",
        "--name",
        "mobile-id",
        "--subject",
        "CN=Test Mobile Credential CA, OU=GPKI, O=Government of Korea, C=KR",
        "--key-type",
        "p256",
        "--path-len",
        "0",
        "--out",
        "mobile-id.pem",
    ]);
    env.ok(&[
        "cert",
        "issue",
        "--ca",
        "mobile-id",
        "--profile",
        "credential-signer",
        "--subject",
        SIGNER_SUBJECT,
        "--san",
        "uri:https://id.gpki.go.kr",
        "--generate-key",
        "--key-out",
        "signer.key",
        "--out",
        "signer.pem",
        "--chain",
    ]);
    std::fs::copy(env.path("signer.pem"), env.path("signer-chain.pem")).unwrap();
    env.ok(&[
        "credential",
        "status-list",
        "create",
        "--name",
        "mpoid-1",
        "--uri",
        "http://127.0.0.1:1/statuslists/mpoid-1",
        "--size",
        "4096",
    ]);
    holder_key(env, "holder");
    env.ok(&[
        "cert", "issue", "--ca", "mobile-id", "--profile", "status-list-signer", "--subject",
        "CN=Mobile Public Official ID Status List 1, OU=credentials, OU=Ministry of the Interior and Safety, O=Government of Korea, C=KR",
        "--generate-key", "--key-out", "status.key", "--out", "status.pem", "--chain",
    ]);
    std::fs::write(env.path("attrs.json"), ATTRIBUTES).unwrap();
    // A JPEG's markers around filler: the credential carries the bytes as they are.
    let mut jpeg = vec![0xFF, 0xD8, 0xFF, 0xE0];
    jpeg.extend(b"portrait of Hong Gildong ".repeat(40));
    jpeg.extend([0xFF, 0xD9]);
    std::fs::write(env.path("photo.jpg"), jpeg).unwrap();
}

/// A holder's P-256 key made by `gpki key new` (`NAME.key`, encrypted under
/// `outpass`) and its public key written by OpenSSL (`NAME.pub`).
pub(crate) fn holder_key(env: &Env, name: &str) {
    let key = format!("{name}.key");
    env.ok(&["key", "new", "--key-type", "p256", "--key-out", &key]);
    env.openssl_ok(&[
        "pkey",
        "-in",
        &key,
        "-passin",
        "file:outpass",
        "-pubout",
        "-out",
        &format!("{name}.pub"),
    ]);
}

/// `gpki credential issue` with the set-up's holder key, signer and status list.
pub(crate) fn issue_args<'a>(format: &'a str, attributes: &'a str, out: &'a str) -> Vec<&'a str> {
    vec![
        "credential",
        "issue",
        "--format",
        format,
        "--attributes",
        attributes,
        "--holder-key",
        "holder.pub",
        "--signer-key",
        "signer.key",
        "--signer-pass-file",
        "outpass",
        "--signer-chain",
        "signer-chain.pem",
        "--status-list",
        "mpoid-1",
        "--out",
        out,
    ]
}

pub(crate) fn issue(env: &Env, format: &str, out: &str, extra: &[&str]) -> Value {
    let mut args = issue_args(format, "attrs.json", out);
    args.splice(6..6, ["--portrait", "photo.jpg"]);
    args.extend(extra);
    env.json(&args)
}

pub(crate) fn python(script: &str, args: &[&std::path::Path]) -> Value {
    let out = std::process::Command::new("python3")
        .arg(format!("{ORACLES}/{script}"))
        .args(args)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{script} refuses it:\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    serde_json::from_slice(&out.stdout).unwrap()
}

/// Writes the hex DER certificates (leaf first) as PEM files and has OpenSSL verify
/// the leaf to the root through them.
fn openssl_verifies_chain(env: &Env, hex_chain: &[Value], name: &str) {
    assert_eq!(
        hex_chain.len(),
        2,
        "leaf and the credential CA, no root: {hex_chain:?}"
    );
    let mut files = Vec::new();
    for (i, h) in hex_chain.iter().enumerate() {
        let der = hex::decode(h.as_str().unwrap()).unwrap();
        let path = env.path(&format!("{name}-{i}.der"));
        std::fs::write(&path, der).unwrap();
        let pem = env.path(&format!("{name}-{i}.pem"));
        env.openssl_ok(&[
            "x509",
            "-inform",
            "DER",
            "-in",
            path.to_str().unwrap(),
            "-out",
            pem.to_str().unwrap(),
        ]);
        files.push(pem.display().to_string());
    }
    let out = env.openssl_ok(&[
        "verify",
        "-x509_strict",
        "-CAfile",
        "root.pem",
        "-untrusted",
        &files[1],
        &files[0],
    ]);
    assert!(out.contains(": OK"), "{out}");
}

fn check_issued_credentials(env: &Env) {
    let mdoc = issue(env, "mdoc", "id.mdoc", &[]);
    let sdjwt = issue(env, "sd-jwt", "id.sd-jwt", &[]);
    assert_ne!(mdoc["idx"], sdjwt["idx"]);
    let status_uri = "http://127.0.0.1:1/statuslists/mpoid-1";
    let attrs: Value = serde_json::from_str(ATTRIBUTES).unwrap();
    let jpeg = std::fs::read(env.path("photo.jpg")).unwrap();

    if require("python3") {
        // mdoc: pymdoccbor, pycose and cbor2 all verify; the attributes are ours.
        let m = python(
            "mdoc_oracle.py",
            &[
                &env.path("id.mdoc"),
                &env.path("mobile-id.pem"),
                &env.path("holder.pub"),
            ],
        );
        assert_eq!(m["docType"], "kr.go.gpki.mpoid.1");
        assert_eq!(m["digestAlgorithm"], "SHA-256");
        assert_eq!(m["alg"], -7, "ES256 for a P-256 signer");
        assert_eq!(m["status"]["status_list"]["idx"], mdoc["idx"]);
        assert_eq!(m["status"]["status_list"]["uri"], status_uri);
        for k in [
            "name",
            "employee_number",
            "institution",
            "department",
            "position",
        ] {
            assert_eq!(m["attributes"][k], attrs[k], "{k}");
        }
        assert_eq!(m["attributes"]["issue_date"]["full-date"], "2026-11-24");
        assert_eq!(m["attributes"]["expiry_date"]["full-date"], "2031-11-23");
        assert_eq!(m["attributes"]["portrait"]["bytes"], hex::encode(&jpeg));
        assert!(
            m["validityInfo"]["validUntil"].as_str().unwrap()
                > m["validityInfo"]["validFrom"].as_str().unwrap()
        );
        openssl_verifies_chain(env, m["x5chain"].as_array().unwrap(), "mdoc-x5chain");

        // SD-JWT VC: jwcrypto and the sd-jwt reference library verify it; the
        // digests, recomputed by the oracle, cover exactly the disclosures.
        let s = python(
            "sdjwt_oracle.py",
            &[&env.path("id.sd-jwt"), &env.path("holder.pub")],
        );
        assert_eq!(s["header"]["typ"], "dc+sd-jwt");
        assert_eq!(s["header"]["alg"], "ES256");
        assert_eq!(s["payload"]["iss"], ISSUER);
        assert_eq!(s["payload"]["vct"], "kr.go.gpki.mpoid.1");
        assert_eq!(s["payload"]["status"]["status_list"]["idx"], sdjwt["idx"]);
        assert_eq!(s["sd_count"], 8, "one disclosure per attribute");
        for k in [
            "name",
            "employee_number",
            "institution",
            "department",
            "position",
            "issue_date",
            "expiry_date",
        ] {
            assert_eq!(s["claims"][k], attrs[k], "{k}");
        }
        let data_url = s["claims"]["portrait"].as_str().unwrap();
        let b64 = data_url.strip_prefix("data:image/jpeg;base64,").unwrap();
        assert_eq!(openssl_base64_decode(env, b64), jpeg);
        assert!(s["payload"]["exp"].as_i64().unwrap() > s["payload"]["iat"].as_i64().unwrap());
        openssl_verifies_chain(env, s["x5c"].as_array().unwrap(), "sdjwt-x5c");
    }

    // The store has both, valid, and no holder private key or credential body.
    let list = env.json(&["credential", "list"]);
    let rows = list.as_array().unwrap();
    assert_eq!(rows.len(), 2);
    assert!(rows
        .iter()
        .all(|r| r["status"] == "valid" && r["subject"] == "001234567"));
    assert!(
        !list.to_string().contains("Hong Gildong"),
        "the store keeps no attribute but the subject"
    );
    let lists = env.json(&["credential", "status-list", "list"]);
    assert_eq!(lists[0]["used"], 2);
    // The audit chain holds both issuances and still verifies.
    let log = env.ok(&["audit", "log", "--output", "json"]);
    assert_eq!(log.matches("credential.issue").count(), 2, "{log}");
    env.ok(&["audit", "verify"]);
}

/// Base64 (standard alphabet) decoded by OpenSSL, not by the code under test.
fn openssl_base64_decode(env: &Env, b64: &str) -> Vec<u8> {
    let wrapped: String = b64
        .as_bytes()
        .chunks(64)
        .map(|c| format!("{}\n", std::str::from_utf8(c).unwrap()))
        .collect();
    std::fs::write(env.path("portrait.b64"), wrapped).unwrap();
    env.openssl_ok(&[
        "base64",
        "-d",
        "-in",
        "portrait.b64",
        "-out",
        "portrait.bin",
    ]);
    std::fs::read(env.path("portrait.bin")).unwrap()
}

#[test]
fn credentials_in_both_formats_pass_independent_verifiers() {
    let env = Env::new(Backend::Sqlite).unwrap();
    setup(&env);
    check_issued_credentials(&env);
}

#[test]
fn credentials_in_both_formats_pass_independent_verifiers_postgres() {
    let Some(env) = Env::new(Backend::Postgres) else {
        return;
    };
    setup(&env);
    check_issued_credentials(&env);
}

/// Each bad input is refused by name, and nothing is recorded.
#[test]
fn bad_issuance_input_is_refused_by_name_and_records_nothing() {
    let env = Env::new(Backend::Sqlite).unwrap();
    setup(&env);
    let refused = |extra: &[&str], files: &[(&str, &[u8])], want: &str| {
        for (name, bytes) in files {
            std::fs::write(env.path(name), bytes).unwrap();
        }
        let mut args = issue_args("mdoc", "attrs.json", "x.mdoc");
        // Each case is the good set of flags with one value changed.
        for pair in extra.chunks(2) {
            let at = args.iter().position(|a| *a == pair[0]).unwrap();
            args[at + 1] = pair[1];
        }
        let r = env.fails(&args);
        assert!(r.stderr.contains(want), "want `{want}`:\n{}", r.stderr);
        assert!(!env.path("x.mdoc").exists());
    };
    // An RSA holder key: credentials bind P-256 or P-384 keys only.
    env.openssl_ok(&[
        "genpkey",
        "-algorithm",
        "RSA",
        "-pkeyopt",
        "rsa_keygen_bits:2048",
        "-out",
        "rsa.key",
    ]);
    env.openssl_ok(&["pkey", "-in", "rsa.key", "-pubout", "-out", "rsa.pub"]);
    refused(
        &["--holder-key", "rsa.pub"],
        &[],
        "cannot sign credentials (P-256 or P-384 only)",
    );
    // A holder key file that holds no key.
    refused(
        &["--holder-key", "junk.pub"],
        &[("junk.pub", b"not a key")],
        "holder key",
    );
    // Attributes: an unknown field, an empty name, expiry before issue.
    refused(
        &["--attributes", "a1.json"],
        &[(
            "a1.json",
            ATTRIBUTES.replace("\"position\"", "\"rank\"").as_bytes(),
        )],
        "unknown field `rank`",
    );
    refused(
        &["--attributes", "a2.json"],
        &[(
            "a2.json",
            ATTRIBUTES.replace("Hong Gildong", " ").as_bytes(),
        )],
        "attribute `name` is empty",
    );
    refused(
        &["--attributes", "a3.json"],
        &[(
            "a3.json",
            ATTRIBUTES.replace("2031-11-23", "2020-01-01").as_bytes(),
        )],
        "`expiry_date` is before `issue_date`",
    );
    // A signer chain whose leaf is not the signer key's certificate (the CA's own):
    // refused before anything is signed.
    refused(
        &["--signer-chain", "mobile-id.pem"],
        &[],
        "does not match its certificate",
    );
    // An unknown status list.
    refused(&["--status-list", "nope"], &[], "no status list named nope");
    // A portrait that is not a JPEG.
    let mut args = issue_args("sd-jwt", "attrs.json", "x.mdoc");
    args.splice(6..6, ["--portrait", "notjpeg.png"]);
    std::fs::write(env.path("notjpeg.png"), b"\x89PNG\r\n\x1a\n....").unwrap();
    let r = env.fails(&args);
    assert!(
        r.stderr.contains("the portrait is not a JPEG image"),
        "{}",
        r.stderr
    );

    // A revoked signer certificate: the store says it is not in force.
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
    args[7] = "photo.jpg";
    let r = env.fails(&args);
    assert!(
        r.stderr
            .contains("the credential signer certificate is not in force"),
        "{}",
        r.stderr
    );

    assert_eq!(
        env.json(&["credential", "list"]).as_array().unwrap().len(),
        0
    );
    assert_eq!(
        env.json(&["credential", "status-list", "list"])[0]["used"],
        0
    );
}

#[test]
fn revocation_and_replacement_are_recorded_and_audited() {
    let env = Env::new(Backend::Sqlite).unwrap();
    setup(&env);
    let first = issue(&env, "sd-jwt", "old.sd-jwt", &[]);
    let id = first["id"].as_i64().unwrap().to_string();
    // Unknown reasons and unknown credentials are refused.
    let r = env.fails(&["credential", "revoke", "--id", &id, "--reason", "bored"]);
    assert!(
        r.stderr.contains("unknown revocation reason `bored`"),
        "{}",
        r.stderr
    );
    let r = env.fails(&[
        "credential",
        "revoke",
        "--id",
        "999",
        "--reason",
        "lost-device",
    ]);
    assert!(
        r.stderr.contains("credential 999 is not valid"),
        "{}",
        r.stderr
    );

    // Reissue to a new phone revokes the old credential in the same step.
    let second = issue(&env, "sd-jwt", "new.sd-jwt", &["--replaces", &id]);
    let rows = env.json(&["credential", "list", "--subject", "001234567"]);
    let old = rows
        .as_array()
        .unwrap()
        .iter()
        .find(|r| r["id"] == first["id"])
        .unwrap();
    assert_eq!(old["status"], "revoked");
    assert_eq!(old["reason"], "replaced");
    assert_eq!(old["replaced_by"], second["id"]);
    // A revoked credential cannot be revoked again, nor replaced again.
    let r = env.fails(&[
        "credential",
        "revoke",
        "--id",
        &id,
        "--reason",
        "lost-device",
    ]);
    assert!(r.stderr.contains("is not valid"), "{}", r.stderr);

    let new_id = second["id"].as_i64().unwrap().to_string();
    let r = env.json(&[
        "credential",
        "revoke",
        "--id",
        &new_id,
        "--reason",
        "lost-device",
    ]);
    assert_eq!(r["status"], "revoked");
    assert_eq!(r["reason"], "lost-device");
    let log = env.ok(&["audit", "log", "--output", "json"]);
    // One for the replaced credential, one for the lost phone.
    assert_eq!(log.matches("credential.revoke").count(), 2, "{log}");
    assert_eq!(log.matches("credential.issue").count(), 2, "{log}");
    env.ok(&["audit", "verify"]);
}

/// Runs the presentation oracle: its JSON, or its reason for refusing.
fn judge_presentation(
    env: &Env,
    format: &str,
    file: &str,
    verifier: &str,
    nonce: &str,
) -> Result<Value, String> {
    let out = std::process::Command::new("python3")
        .arg(format!("{ORACLES}/presentation_oracle.py"))
        .args([format, file, "mobile-id.pem", verifier, nonce])
        .current_dir(env.dir.path())
        .output()
        .unwrap();
    if out.status.success() {
        Ok(serde_json::from_slice(&out.stdout).unwrap())
    } else {
        Err(String::from_utf8_lossy(&out.stderr).into_owned())
    }
}

#[test]
fn presentations_disclose_only_what_is_asked_and_are_bound_to_the_verifiers_nonce() {
    let env = Env::new(Backend::Sqlite).unwrap();
    setup(&env);
    let verifier = "https://gate.mois.go.kr";
    let nonce = "7f3a9c0e5b2d4a6f8e1c";
    for (format, file) in [("mdoc", "id.mdoc"), ("sd-jwt", "id.sd-jwt")] {
        issue(&env, format, file, &[]);
        let out = format!("{file}.presentation");
        let p = env.json(&[
            "credential",
            "present",
            "--credential",
            file,
            "--disclose",
            "name,institution",
            "--holder-key",
            "holder.key",
            "--verifier",
            verifier,
            "--nonce",
            nonce,
            "--out",
            &out,
        ]);
        assert_eq!(p["format"], format);
        if require("python3") {
            let v = judge_presentation(&env, format, &out, verifier, nonce).unwrap_or_else(|e| {
                panic!("{format}: the oracle refuses a good presentation: {e}")
            });
            let disclosed = v["disclosed"].as_object().unwrap();
            let mut names: Vec<&String> = disclosed.keys().collect();
            names.sort();
            assert_eq!(
                names,
                ["institution", "name"],
                "{format}: only what was asked"
            );
            assert_eq!(disclosed["name"], "Hong Gildong");
            // The binding is real: another nonce or another verifier is refused, for
            // that reason (the device signature, the key binding JWT's nonce or aud).
            let (bad_nonce, bad_aud) = match format {
                "mdoc" => (
                    "device signature does not verify",
                    "device signature does not verify",
                ),
                _ => ("Invalid nonce in KB-JWT", "Invalid audience in KB-JWT"),
            };
            let e = judge_presentation(&env, format, &out, verifier, "00000000000000000000")
                .expect_err("wrong nonce accepted");
            assert!(e.contains(bad_nonce), "{format}: {e}");
            let e = judge_presentation(&env, format, &out, "https://elsewhere.go.kr", nonce)
                .expect_err("wrong verifier accepted");
            assert!(e.contains(bad_aud), "{format}: {e}");
        }
        // An attribute the credential does not carry, another holder's key, a
        // nonce too short to be fresh: refused by name.
        let base = [
            "credential",
            "present",
            "--credential",
            file,
            "--disclose",
            "name",
            "--holder-key",
            "holder.key",
            "--verifier",
            verifier,
            "--nonce",
            nonce,
            "--out",
            "x.out",
        ];
        let with = |at: usize, v: &'static str| {
            let mut a = base.to_vec();
            a[at] = v;
            env.fails(&a).stderr
        };
        assert!(with(5, "name,rank").contains("attribute `rank` is not in the credential"));
        if !env.path("other.key").exists() {
            holder_key(&env, "other");
        }
        let e = with(7, "other.key");
        assert!(e.contains("holder key is not"), "{e}");
        assert!(with(11, "short").contains("--nonce must be at least 16"));
        assert!(!env.path("x.out").exists());
    }
}

#[test]
fn a_revoked_credentials_bit_is_set_in_the_signed_status_list_jwt_and_cwt() {
    let env = Env::new(Backend::Sqlite).unwrap();
    setup(&env);
    let kept = issue(&env, "mdoc", "kept.mdoc", &[]);
    let lost = issue(&env, "sd-jwt", "lost.sd-jwt", &[]);
    let lost_id = lost["id"].as_i64().unwrap().to_string();
    env.ok(&[
        "credential",
        "revoke",
        "--id",
        &lost_id,
        "--reason",
        "lost-device",
    ]);
    let publish = |signer: &str, key: &str| {
        let mut c = env.command();
        c.args([
            "credential",
            "status-list",
            "publish",
            "--name",
            "mpoid-1",
            "--signer-key",
            key,
            "--signer-pass-file",
            "outpass",
            "--signer-chain",
            signer,
            "--ttl",
            "60",
            "--jwt-out",
            "list.jwt",
            "--cwt-out",
            "list.cwt",
            "--output",
            "json",
        ]);
        c.output().unwrap()
    };
    let out = publish("status.pem", "status.key");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let p: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(p["revoked"], 1);
    if require("python3") {
        let (k, l) = (kept["idx"].to_string(), lost["idx"].to_string());
        let v = python(
            "status_list_oracle.py",
            &[
                &env.path("list.jwt"),
                &env.path("list.cwt"),
                &env.path("mobile-id.pem"),
                std::path::Path::new(&k),
                std::path::Path::new(&l),
            ],
        );
        assert_eq!(v["statuses"][&k], 0, "the kept credential is valid");
        assert_eq!(v["statuses"][&l], 1, "the lost one is invalid");
        assert_eq!(v["set_bits"], 1, "nothing else is set");
        assert_eq!(v["entries"], 4096);
        assert_eq!(v["ttl"], 60);
        assert_eq!(v["sub"], "http://127.0.0.1:1/statuslists/mpoid-1");
    }
    // The credential signer may not sign status lists: its certificate lacks the
    // status-list purpose.
    let out = publish("signer.pem", "signer.key");
    assert!(!out.status.success());
    assert!(
        String::from_utf8_lossy(&out.stderr)
            .contains("does not carry the extended key usage 1.2.410.100001.2.3.1"),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
}

#[test]
fn a_replacement_revokes_only_the_same_officials_credential_and_iss_must_name_the_signer() {
    let env = Env::new(Backend::Sqlite).unwrap();
    setup(&env);
    // Another official's credential.
    std::fs::write(
        env.path("kim.json"),
        ATTRIBUTES
            .replace("001234567", "007654321")
            .replace("Hong Gildong", "Kim Minji"),
    )
    .unwrap();
    let kim = env.json(&issue_args("mdoc", "kim.json", "kim.mdoc"));
    let kim_id = kim["id"].as_i64().unwrap().to_string();
    // Hong's new credential may not revoke Kim's: refused before anything is signed.
    let mut args = issue_args("mdoc", "attrs.json", "hong.mdoc");
    args.extend(["--replaces", &kim_id]);
    let r = env.fails(&args);
    assert!(r.stderr.contains("is not this official's"), "{}", r.stderr);
    assert!(!env.path("hong.mdoc").exists());
    let rows = env.json(&["credential", "list"]);
    assert_eq!(
        rows.as_array().unwrap().len(),
        1,
        "nothing recorded: {rows}"
    );
    assert_eq!(rows[0]["status"], "valid");
    // An SD-JWT's iss must be a URI SAN of the signer certificate.
    args.truncate(args.len() - 2);
    args[3] = "sd-jwt";
    args.extend(["--issuer", "https://other.ministry.go.kr"]);
    let r = env.fails(&args);
    assert!(
        r.stderr
            .contains("is not a URI subjectAltName of the signer certificate"),
        "{}",
        r.stderr
    );
    // A list larger than a verifier will inflate is refused when it is created.
    let r = env.fails(&[
        "credential",
        "status-list",
        "create",
        "--name",
        "huge",
        "--uri",
        "http://127.0.0.1:1/statuslists/huge",
        "--size",
        "134217728",
        "--bits",
        "2",
    ]);
    assert!(
        r.stderr.contains("larger than 16777216 bytes"),
        "{}",
        r.stderr
    );
}
