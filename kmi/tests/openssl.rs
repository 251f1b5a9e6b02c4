//! OpenSSL's command line judges every file and message this crate makes, and
//! makes the ones it must read.

use std::path::Path;
use std::process::Command;

use gpki_kmi::envelope::{self, Recipient};
use gpki_kmi::keyfile::{self, Pair};
use gpki_pki::signer::Passphrase;
use gpki_pki::ErrorKind;
use openssl::pkey::PKey;

fn openssl(dir: &Path, args: &[&str]) -> Vec<u8> {
    let out = Command::new("openssl")
        .current_dir(dir)
        .args(args)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "openssl {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    out.stdout
}

/// An RSA key and a self-signed certificate for it, made by OpenSSL.
fn rsa_pair(dir: &Path, name: &str) -> (PKey<openssl::pkey::Private>, Vec<u8>) {
    openssl(
        dir,
        &[
            "req",
            "-x509",
            "-newkey",
            "rsa:2048",
            "-nodes",
            "-subj",
            &format!("/CN={name}"),
            "-keyout",
            &format!("{name}.key"),
            "-out",
            &format!("{name}.crt"),
            "-days",
            "1",
        ],
    );
    let key = PKey::private_key_from_pem(&std::fs::read(dir.join(format!("{name}.key"))).unwrap())
        .unwrap();
    let cert =
        openssl::x509::X509::from_pem(&std::fs::read(dir.join(format!("{name}.crt"))).unwrap())
            .unwrap()
            .to_der()
            .unwrap();
    (key, cert)
}

#[test]
fn openssl_opens_what_gpki_seals_to_a_certificate_and_to_a_bare_key() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let (_, kra) = rsa_pair(d, "kra");
    let (_, transport_cert) = rsa_pair(d, "transport");
    let transport_spki = openssl::x509::X509::from_der(&transport_cert)
        .unwrap()
        .public_key()
        .unwrap()
        .public_key_to_der()
        .unwrap();
    let content = b"a key-management private key, say".repeat(10);
    let sealed = envelope::seal(
        &content,
        &[
            Recipient::Certificate(&kra),
            Recipient::PublicKey(&transport_spki),
        ],
    )
    .unwrap();
    std::fs::write(d.join("sealed.der"), &sealed).unwrap();
    // Each recipient opens it, with the certificate (issuer and serial) or the key
    // alone (key identifier).
    let by_cert = openssl(
        d,
        &[
            "cms",
            "-decrypt",
            "-inform",
            "DER",
            "-in",
            "sealed.der",
            "-recip",
            "kra.crt",
            "-inkey",
            "kra.key",
        ],
    );
    assert_eq!(by_cert, content);
    let by_key = openssl(
        d,
        &[
            "cms",
            "-decrypt",
            "-inform",
            "DER",
            "-in",
            "sealed.der",
            "-inkey",
            "transport.key",
        ],
    );
    assert_eq!(by_key, content);
    // OpenSSL reads the key transport as RSAES-OAEP with SHA-256 and the content
    // as AES-256-CBC.
    let shown = String::from_utf8(openssl(
        d,
        &[
            "cms",
            "-cmsout",
            "-print",
            "-inform",
            "DER",
            "-in",
            "sealed.der",
        ],
    ))
    .unwrap();
    assert!(shown.contains("rsaesOaep"), "{shown}");
    assert!(shown.contains("sha256"), "{shown}");
    assert!(shown.contains("aes-256-cbc"), "{shown}");
}

#[test]
fn gpki_opens_what_openssl_seals_with_oaep_and_with_pkcs1() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let (key, cert) = rsa_pair(d, "km");
    let (other, _) = rsa_pair(d, "other");
    std::fs::write(d.join("doc.txt"), b"an official document").unwrap();
    for (name, extra) in [
        (
            "oaep.der",
            vec![
                "-keyopt",
                "rsa_padding_mode:oaep",
                "-keyopt",
                "rsa_oaep_md:sha256",
                "-keyopt",
                "rsa_mgf1_md:sha256",
                "-aes256",
            ],
        ),
        (
            "oaep-sha1.der",
            vec!["-keyopt", "rsa_padding_mode:oaep", "-aes128"],
        ),
        ("pkcs1.der", vec![]),
    ] {
        let mut args = vec![
            "cms", "-encrypt", "-binary", "-in", "doc.txt", "-outform", "DER", "-out", name,
            "-recip", "km.crt",
        ];
        args.extend(extra);
        openssl(d, &args);
        let sealed = std::fs::read(d.join(name)).unwrap();
        assert_eq!(
            &envelope::open(&sealed, &key, Some(&cert)).unwrap()[..],
            b"an official document",
            "{name}"
        );
        assert_eq!(
            &envelope::open(&sealed, &key, None).unwrap()[..],
            b"an official document",
            "{name}"
        );
        // Another key does not open it, and says so.
        let e = envelope::open(&sealed, &other, None).unwrap_err();
        assert!(matches!(e.kind, ErrorKind::BadSignature), "{name}: {e}");
    }
}

#[test]
fn korean_key_files_open_in_openssl_and_openssl_files_open_in_gpki() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let (key, cert) = rsa_pair(d, "km");
    let pass = Passphrase::new(b"s3cret pass".to_vec());
    std::fs::write(d.join("pass"), b"s3cret pass").unwrap();
    let out = d.join("npki");
    let (cert_path, key_path) = keyfile::write_korean(&out, Pair::Km, &key, &cert, &pass).unwrap();
    assert_eq!(cert_path, out.join("kmCert.der"));
    assert_eq!(key_path, out.join("kmPri.key"));
    // OpenSSL names the scheme and opens the file with the legacy provider.
    let parsed = String::from_utf8(openssl(
        d,
        &["asn1parse", "-inform", "DER", "-in", "npki/kmPri.key"],
    ))
    .unwrap();
    assert!(
        parsed.contains("PBES2") && parsed.contains("PBKDF2") && parsed.contains("hmacWithSHA256"),
        "{parsed}"
    );
    assert!(
        parsed.contains("seed-cbc") || parsed.contains("1.2.410.200004.1.4"),
        "{parsed}"
    );
    let pem = openssl(
        d,
        &[
            "pkcs8",
            "-inform",
            "DER",
            "-in",
            "npki/kmPri.key",
            "-passin",
            "file:pass",
            "-provider",
            "legacy",
            "-provider",
            "default",
        ],
    );
    assert!(PKey::private_key_from_pem(&pem).unwrap().public_eq(&key));
    let e = std::process::Command::new("openssl")
        .current_dir(d)
        .args([
            "pkcs8",
            "-inform",
            "DER",
            "-in",
            "npki/kmPri.key",
            "-passin",
            "pass:wrong",
            "-provider",
            "legacy",
            "-provider",
            "default",
        ])
        .output()
        .unwrap();
    assert!(!e.status.success());
    let back = keyfile::read_korean(&out, Pair::Km, &pass).unwrap();
    assert!(back.key.public_eq(&key));
    let e = keyfile::read_korean(&out, Pair::Km, &Passphrase::new(b"wrong".to_vec())).unwrap_err();
    assert_eq!(e.kind, ErrorKind::WrongPassphrase);
    assert!(e.detail.contains("kmPri.key"), "{e}");
    // And the other way: OpenSSL's own SEED-CBC PKCS#8 (PBKDF2-HMAC-SHA-256).
    openssl(
        d,
        &[
            "pkcs8",
            "-topk8",
            "-v2",
            "seed-cbc",
            "-in",
            "km.key",
            "-outform",
            "DER",
            "-out",
            "openssl-pri.key",
            "-passout",
            "file:pass",
            "-provider",
            "legacy",
            "-provider",
            "default",
        ],
    );
    let theirs = std::fs::read(d.join("openssl-pri.key")).unwrap();
    assert!(
        keyfile::from_encrypted_pkcs8(&theirs, &pass, "openssl-pri.key")
            .unwrap()
            .public_eq(&key)
    );
    // A key directory refuses to be written over.
    let e = keyfile::write_korean(&out, Pair::Km, &key, &cert, &pass).unwrap_err();
    assert_eq!(e.kind, ErrorKind::AlreadyExists);
}

#[test]
fn pkcs12_reads_in_openssl_and_names_a_wrong_password() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let (key, cert) = rsa_pair(d, "km");
    let pass = Passphrase::new(b"p12 pass".to_vec());
    let p12 = keyfile::to_pkcs12(&key, &cert, &[], "km", &pass).unwrap();
    std::fs::write(d.join("km.p12"), &p12).unwrap();
    std::fs::write(d.join("pass"), b"p12 pass").unwrap();
    let info = openssl(
        d,
        &[
            "pkcs12",
            "-info",
            "-in",
            "km.p12",
            "-passin",
            "file:pass",
            "-nodes",
        ],
    );
    let info = String::from_utf8(info).unwrap();
    assert!(
        info.contains("BEGIN PRIVATE KEY") && info.contains("BEGIN CERTIFICATE"),
        "{info}"
    );
    // The cost of every other gpki key file, readable without -legacy: OpenSSL
    // names each part's algorithm and rounds (issue 28, point 11).
    let shown = Command::new("openssl")
        .current_dir(d)
        .args([
            "pkcs12",
            "-info",
            "-noout",
            "-in",
            "km.p12",
            "-passin",
            "file:pass",
        ])
        .output()
        .unwrap();
    assert!(shown.status.success(), "{shown:?}");
    let shown = String::from_utf8_lossy(&shown.stderr);
    assert!(shown.contains("MAC: sha256, Iteration 600000"), "{shown}");
    for part in ["PKCS7 Encrypted data", "Shrouded Keybag"] {
        assert!(
            shown.contains(&format!(
                "{part}: PBES2, PBKDF2, AES-256-CBC, Iteration 600000, PRF hmacWithSHA256"
            )),
            "{part}: {shown}"
        );
    }
    let back = keyfile::from_pkcs12(&p12, &pass, "km.p12").unwrap();
    assert!(back.key.public_eq(&key));
    assert_eq!(back.cert_der, cert);
    let e = keyfile::from_pkcs12(&p12, &Passphrase::new(b"nope".to_vec()), "km.p12").unwrap_err();
    assert_eq!(e.kind, ErrorKind::WrongPassphrase);
    // Another key is refused before anything is written.
    let (other, _) = rsa_pair(d, "other");
    assert!(keyfile::to_pkcs12(&other, &cert, &[], "km", &pass).is_err());
}
