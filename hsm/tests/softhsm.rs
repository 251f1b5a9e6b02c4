//! gpki-hsm against a real token: SoftHSM2, with OpenSSL's command line checking
//! signatures and OpenSC's `pkcs11-tool` reading key attributes, neither of them
//! gpki code.
//!
//! Each test process gets its own SoftHSM token directory (SOFTHSM2_CONF is read
//! by the module at C_Initialize, once per process): under `cargo nextest` that is
//! one directory per test. Under `cargo test` the tests of this binary share the
//! process, so they share the directory, and each makes its own token (its own
//! label), which is all they touch.
//!
//! Without SoftHSM the tests print a note and pass, unless CI is set: then they fail.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::{Arc, Mutex, OnceLock};
use std::time::{Duration, Instant};

use gpki_hsm::{keygen, list, Pin, Pkcs11Key, Pkcs11Uri};
use gpki_pki::{ErrorKind, KeyType, SignatureAlgorithm, Signer};

const MODULE: &str = "/usr/lib/softhsm/libsofthsm2.so";
const PIN: &str = "246810";
const SO_PIN: &str = "13579135";

struct Hsm {
    dir: PathBuf,
    conf: PathBuf,
    tokens: PathBuf,
}

/// The process's SoftHSM set-up, or None (after a note) when SoftHSM is absent
/// outside CI.
fn hsm() -> Option<&'static Hsm> {
    static HSM: OnceLock<Option<Hsm>> = OnceLock::new();
    HSM.get_or_init(|| {
        let present = Path::new(MODULE).exists()
            && Command::new("softhsm2-util")
                .arg("--version")
                .output()
                .is_ok_and(|o| o.status.success())
            && Command::new("pkcs11-tool").arg("--help").output().is_ok();
        if !present {
            if std::env::var_os("CI").is_some() {
                panic!(
                    "CI is set and SoftHSM2 (softhsm2-util, {MODULE}) or OpenSC's pkcs11-tool \
                     is not installed"
                );
            }
            eprintln!("note: SoftHSM2 or pkcs11-tool is not installed; skipping the PKCS#11 tests");
            return None;
        }
        let dir = tempfile::tempdir().unwrap().keep();
        let tokens = dir.join("tokens");
        std::fs::create_dir(&tokens).unwrap();
        let conf = dir.join("softhsm2.conf");
        std::fs::write(
            &conf,
            format!(
                "directories.tokendir = {}\nobjectstore.backend = file\nlog.level = ERROR\n",
                tokens.display()
            ),
        )
        .unwrap();
        // Read by the module at C_Initialize; set before the first test touches it.
        std::env::set_var("SOFTHSM2_CONF", &conf);
        Some(Hsm { dir, conf, tokens })
    })
    .as_ref()
}

macro_rules! hsm_or_skip {
    () => {
        match hsm() {
            Some(h) => h,
            None => return,
        }
    };
}

struct Token {
    label: String,
    /// The token's own directory under the token directory.
    dir: PathBuf,
    pin_file: PathBuf,
}

impl Hsm {
    fn run(&self, program: &str, args: &[&str]) -> String {
        let out = Command::new(program)
            .args(args)
            .env("SOFTHSM2_CONF", &self.conf)
            .output()
            .unwrap_or_else(|e| panic!("{program}: {e}"));
        let text = format!(
            "{}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
        assert!(out.status.success(), "{program} {args:?}: {text}");
        text
    }

    /// A fresh token labelled `label`, user PIN [`PIN`].
    fn token(&self, label: &str) -> Token {
        // Token creation is serialised so the new directory is known to be ours.
        static CREATE: Mutex<()> = Mutex::new(());
        let _guard = CREATE.lock().unwrap_or_else(|e| e.into_inner());
        let before = self.token_dirs();
        self.run(
            "softhsm2-util",
            &[
                "--init-token",
                "--free",
                "--label",
                label,
                "--pin",
                PIN,
                "--so-pin",
                SO_PIN,
            ],
        );
        let dir = self
            .token_dirs()
            .into_iter()
            .find(|d| !before.contains(d))
            .expect("softhsm2-util made a token directory");
        let pin_file = self.dir.join(format!("{label}.pin"));
        std::fs::write(&pin_file, format!("{PIN}\n")).unwrap();
        Token {
            label: label.to_string(),
            dir,
            pin_file,
        }
    }

    fn token_dirs(&self) -> Vec<PathBuf> {
        std::fs::read_dir(&self.tokens)
            .unwrap()
            .map(|e| e.unwrap().path())
            .filter(|p| p.is_dir())
            .collect()
    }
}

impl Token {
    fn uri(&self, object: &str) -> Pkcs11Uri {
        Pkcs11Uri::parse(&format!(
            "pkcs11:token={};object={object};type=private?module-path={MODULE}&pin-source=file:{}",
            self.label,
            self.pin_file.display()
        ))
        .unwrap()
    }

    fn token_uri(&self) -> Pkcs11Uri {
        Pkcs11Uri::parse(&format!(
            "pkcs11:token={}?module-path={MODULE}&pin-source=file:{}",
            self.label,
            self.pin_file.display()
        ))
        .unwrap()
    }
}

/// Checks `signature` over `message` with `openssl dgst`, against the SPKI the
/// key reports (converted to PEM by `openssl pkey`).
fn openssl_verifies(
    spki: &[u8],
    alg: SignatureAlgorithm,
    message: &[u8],
    signature: &[u8],
) -> bool {
    let dir = tempfile::tempdir().unwrap();
    let der = dir.path().join("pub.der");
    let pem = dir.path().join("pub.pem");
    let msg = dir.path().join("msg.bin");
    let sig = dir.path().join("sig.bin");
    std::fs::write(&der, spki).unwrap();
    std::fs::write(&msg, message).unwrap();
    std::fs::write(&sig, signature).unwrap();
    let out = Command::new("openssl")
        .args(["pkey", "-pubin", "-inform", "DER", "-in"])
        .arg(&der)
        .arg("-out")
        .arg(&pem)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let digest = match alg {
        SignatureAlgorithm::RsaPkcs1Sha256
        | SignatureAlgorithm::RsaPssSha256
        | SignatureAlgorithm::EcdsaSha256 => "-sha256",
        SignatureAlgorithm::RsaPkcs1Sha384
        | SignatureAlgorithm::RsaPssSha384
        | SignatureAlgorithm::EcdsaSha384 => "-sha384",
        SignatureAlgorithm::RsaPkcs1Sha512 => "-sha512",
    };
    let mut cmd = Command::new("openssl");
    cmd.args(["dgst", digest, "-verify"]).arg(&pem);
    if matches!(
        alg,
        SignatureAlgorithm::RsaPssSha256 | SignatureAlgorithm::RsaPssSha384
    ) {
        // Salt as long as the digest (-1), as gpki's RSASSA-PSS-params say.
        cmd.args([
            "-sigopt",
            "rsa_padding_mode:pss",
            "-sigopt",
            "rsa_pss_saltlen:-1",
        ]);
    }
    let out = cmd.arg("-signature").arg(&sig).arg(&msg).output().unwrap();
    let text = String::from_utf8_lossy(&out.stdout);
    out.status.success() && text.contains("Verified OK")
}

fn pin() -> Pin {
    Pin::new(PIN)
}

fn sign_and_verify(label: &str, key_type: KeyType, alg: SignatureAlgorithm) {
    let hsm = hsm_or_skip!();
    let token = hsm.token(label);
    let uri = keygen(
        &token.token_uri(),
        &pin(),
        key_type,
        "signer",
        &[0x01, 0x02],
    )
    .unwrap();
    assert_eq!(uri.object.as_deref(), Some("signer"));
    let key = Pkcs11Key::open(&uri, uri.read_pin().unwrap())
        .unwrap()
        .with_algorithm(alg)
        .unwrap();
    assert_eq!(key.key_type(), key_type);
    assert_eq!(KeyType::of_spki(key.public_key_der()).unwrap(), key_type);
    let message = format!("tbsCertificate signed by {label}").into_bytes();
    let signature = key.sign(&message).unwrap();
    assert!(
        openssl_verifies(key.public_key_der(), alg, &message, &signature),
        "openssl does not verify the {alg} signature"
    );
    assert!(
        !openssl_verifies(key.public_key_der(), alg, b"another message", &signature),
        "openssl verifies the {alg} signature over another message"
    );

    // The key was made in the token and cannot leave it, as OpenSC reads it.
    let listing = hsm.run(
        "pkcs11-tool",
        &[
            "--module",
            MODULE,
            "--token-label",
            label,
            "--login",
            "--pin",
            PIN,
            "--list-objects",
        ],
    );
    let access = pkcs11_tool_objects(&listing)
        .into_iter()
        .find(|o| o.header.starts_with("Private Key Object") && o.field("label") == Some("signer"))
        .and_then(|o| o.field("Access").map(str::to_string))
        .unwrap_or_else(|| panic!("no private key `signer` with an Access line in:\n{listing}"));
    let flags: Vec<&str> = access.split(',').map(str::trim).collect();
    assert!(flags.contains(&"sensitive"), "{access}");
    assert!(flags.contains(&"never extractable"), "{access}");
    assert!(!flags.contains(&"extractable"), "{access}");
}

/// One object of `pkcs11-tool --list-objects`: a header line
/// (`Private Key Object; EC`) and indented `name: value` lines.
struct ToolObject {
    header: String,
    fields: Vec<(String, String)>,
}

impl ToolObject {
    fn field(&self, name: &str) -> Option<&str> {
        self.fields
            .iter()
            .find(|(n, _)| n == name)
            .map(|(_, v)| v.as_str())
    }
}

fn pkcs11_tool_objects(text: &str) -> Vec<ToolObject> {
    let mut objects: Vec<ToolObject> = Vec::new();
    for line in text.lines() {
        if line.contains(" Object;") && !line.starts_with(' ') {
            objects.push(ToolObject {
                header: line.trim().to_string(),
                fields: Vec::new(),
            });
        } else if let (Some(object), Some((name, value))) =
            (objects.last_mut(), line.trim().split_once(':'))
        {
            if line.starts_with(' ') {
                object
                    .fields
                    .push((name.trim().to_string(), value.trim().to_string()));
            }
        }
    }
    objects
}

#[test]
fn rsa2048_pkcs1_sha256_signs_and_openssl_verifies() {
    sign_and_verify(
        "rsa-pkcs1",
        KeyType::Rsa2048,
        SignatureAlgorithm::RsaPkcs1Sha256,
    );
}

#[test]
fn rsa2048_pss_sha256_signs_and_openssl_verifies() {
    sign_and_verify(
        "rsa-pss",
        KeyType::Rsa2048,
        SignatureAlgorithm::RsaPssSha256,
    );
}

#[test]
fn p256_ecdsa_sha256_signs_and_openssl_verifies() {
    sign_and_verify("p256", KeyType::EcP256, SignatureAlgorithm::EcdsaSha256);
}

#[test]
fn p384_ecdsa_sha384_signs_and_openssl_verifies() {
    sign_and_verify("p384", KeyType::EcP384, SignatureAlgorithm::EcdsaSha384);
}

#[test]
fn wrong_pin_is_unauthorized_naming_the_uri_not_the_pin() {
    let hsm = hsm_or_skip!();
    let token = hsm.token("wrong-pin");
    let uri = keygen(&token.token_uri(), &pin(), KeyType::EcP256, "k", &[7]).unwrap();
    let wrong = "97531864";
    let err = Pkcs11Key::open(&uri, Pin::new(wrong)).unwrap_err();
    assert_eq!(err.kind, ErrorKind::Unauthorized, "{err}");
    assert!(err.detail.contains("token=wrong-pin"), "{err}");
    assert!(err.detail.contains("object=k"), "{err}");
    assert!(!err.to_string().contains(wrong), "{err}");
    assert!(!err.to_string().contains(PIN), "{err}");
}

#[test]
fn unknown_object_is_not_found_naming_the_uri() {
    let hsm = hsm_or_skip!();
    let token = hsm.token("unknown-object");
    keygen(&token.token_uri(), &pin(), KeyType::EcP256, "present", &[1]).unwrap();
    let err = Pkcs11Key::open(&token.uri("absent"), pin()).unwrap_err();
    assert_eq!(err.kind, ErrorKind::NotFound, "{err}");
    assert!(err.detail.contains("object=absent"), "{err}");
    assert!(err.detail.contains("token=unknown-object"), "{err}");
    assert!(!err.to_string().contains(PIN), "{err}");

    let mut no_token = token.uri("present");
    no_token.token = Some("no-such-token".into());
    let err = Pkcs11Key::open(&no_token, pin()).unwrap_err();
    assert_eq!(err.kind, ErrorKind::NotFound, "{err}");
    assert!(err.detail.contains("token=no-such-token"), "{err}");
}

#[test]
fn uri_with_pin_value_is_refused() {
    let err = Pkcs11Uri::parse(&format!(
        "pkcs11:token=t;object=k?module-path={MODULE}&pin-value={PIN}"
    ))
    .unwrap_err();
    assert_eq!(err.kind, ErrorKind::Malformed);
    assert!(err.detail.contains("pin-value"), "{err}");
    assert!(!err.to_string().contains(PIN), "{err}");
}

#[test]
fn keygen_refuses_a_taken_label_and_list_shows_the_keys() {
    let hsm = hsm_or_skip!();
    let token = hsm.token("listing");
    keygen(
        &token.token_uri(),
        &pin(),
        KeyType::Rsa2048,
        "ca-key",
        &[0xca],
    )
    .unwrap();
    keygen(
        &token.token_uri(),
        &pin(),
        KeyType::EcP384,
        "ocsp-key",
        &[0x0c],
    )
    .unwrap();
    let err = keygen(
        &token.token_uri(),
        &pin(),
        KeyType::EcP256,
        "ca-key",
        &[0xdd],
    )
    .unwrap_err();
    assert_eq!(err.kind, ErrorKind::AlreadyExists, "{err}");

    let tokens = list(&token.token_uri(), Some(&pin())).unwrap();
    assert_eq!(tokens.len(), 1);
    let t = &tokens[0];
    assert_eq!(t.label, "listing");
    let private: Vec<_> = t
        .keys
        .iter()
        .filter(|k| k.class == gpki_hsm::ObjectType::Private)
        .map(|k| {
            (
                k.label.as_str(),
                k.id_hex(),
                k.kind.as_str(),
                k.sensitive,
                k.extractable,
            )
        })
        .collect();
    assert_eq!(
        private,
        vec![
            (
                "ca-key",
                "ca".to_string(),
                "rsa2048",
                Some(true),
                Some(false)
            ),
            (
                "ocsp-key",
                "0c".to_string(),
                "p384",
                Some(true),
                Some(false)
            ),
        ]
    );
    // Each listed private key's URI opens it.
    for k in t
        .keys
        .iter()
        .filter(|k| k.class == gpki_hsm::ObjectType::Private)
    {
        Pkcs11Key::open(&k.uri, pin()).unwrap();
    }
    // Without a PIN, private objects are not shown.
    let public_only = list(&token.token_uri(), None).unwrap();
    assert!(public_only[0]
        .keys
        .iter()
        .all(|k| k.class == gpki_hsm::ObjectType::Public));
}

#[test]
fn eight_threads_sign_at_once_through_one_key() {
    let hsm = hsm_or_skip!();
    let token = hsm.token("threads");
    let uri = keygen(&token.token_uri(), &pin(), KeyType::EcP256, "shared", &[8]).unwrap();
    let key = Arc::new(Pkcs11Key::open(&uri, pin()).unwrap());
    let handles: Vec<_> = (0..8)
        .map(|t| {
            let key = key.clone();
            std::thread::spawn(move || {
                (0..4)
                    .map(|i| {
                        let message = format!("thread {t} message {i}").into_bytes();
                        let signature = key.sign(&message).unwrap();
                        (message, signature)
                    })
                    .collect::<Vec<_>>()
            })
        })
        .collect();
    let signed: Vec<_> = handles
        .into_iter()
        .flat_map(|h| h.join().unwrap())
        .collect();
    assert_eq!(signed.len(), 32);
    for (message, signature) in &signed {
        assert!(openssl_verifies(
            key.public_key_der(),
            SignatureAlgorithm::EcdsaSha256,
            message,
            signature
        ));
    }
}

/// Signs until it works or `deadline` passes.
fn sign_until_ok(key: &Pkcs11Key, message: &[u8], deadline: Duration) -> Vec<u8> {
    let start = Instant::now();
    loop {
        match key.sign(message) {
            Ok(sig) => return sig,
            Err(e) => {
                assert_eq!(e.kind, ErrorKind::Unavailable, "{e}");
                assert!(start.elapsed() < deadline, "no recovery: {e}");
                std::thread::sleep(Duration::from_millis(20));
            }
        }
    }
}

#[test]
fn token_removed_is_unavailable_at_once_and_the_key_recovers_when_it_returns() {
    let hsm = hsm_or_skip!();
    let token = hsm.token("removed");
    let uri = keygen(&token.token_uri(), &pin(), KeyType::EcP256, "k", &[5]).unwrap();
    let key = Pkcs11Key::open(&uri, pin())
        .unwrap()
        .with_backoff(Duration::from_millis(50), Duration::from_millis(400));
    key.sign(b"before").unwrap();

    // The token goes away: its files leave the token directory.
    let away = hsm.dir.join("removed-token-away");
    std::fs::rename(&token.dir, &away).unwrap();
    let start = Instant::now();
    let err = key.sign(b"while away").unwrap_err();
    assert_eq!(err.kind, ErrorKind::Unavailable, "{err}");
    assert!(err.detail.contains("token=removed"), "{err}");
    assert!(!err.to_string().contains(PIN), "{err}");
    // A call inside the backoff fails fast too.
    let err = key.sign(b"still away").unwrap_err();
    assert_eq!(err.kind, ErrorKind::Unavailable, "{err}");
    assert!(
        start.elapsed() < Duration::from_secs(2),
        "{:?}",
        start.elapsed()
    );

    // It comes back: the same key object signs again, without being rebuilt.
    std::fs::rename(&away, &token.dir).unwrap();
    let signature = sign_until_ok(&key, b"after", Duration::from_secs(10));
    assert!(openssl_verifies(
        key.public_key_der(),
        SignatureAlgorithm::EcdsaSha256,
        b"after",
        &signature
    ));
}

#[test]
fn a_different_key_under_the_same_name_is_not_signed_with() {
    let hsm = hsm_or_skip!();
    let token = hsm.token("replaced");
    let uri = keygen(&token.token_uri(), &pin(), KeyType::EcP256, "k", &[6]).unwrap();
    let key = Pkcs11Key::open(&uri, pin())
        .unwrap()
        .with_backoff(Duration::from_millis(20), Duration::from_millis(100));
    key.sign(b"before").unwrap();

    // The token is removed and another made with the same label and key name.
    // (Renamed first: the module may be writing its lock files in there.)
    let gone = hsm.dir.join("replaced-token-gone");
    std::fs::rename(&token.dir, &gone).unwrap();
    std::fs::remove_dir_all(&gone).unwrap();
    let err = key.sign(b"gone").unwrap_err();
    assert_eq!(err.kind, ErrorKind::Unavailable, "{err}");
    let again = hsm.token("replaced");
    keygen(&again.token_uri(), &pin(), KeyType::EcP256, "k", &[6]).unwrap();
    let start = Instant::now();
    let err = loop {
        std::thread::sleep(Duration::from_millis(30));
        let err = key.sign(b"after").unwrap_err();
        if err.detail.contains("different key") || start.elapsed() > Duration::from_secs(5) {
            break err;
        }
    };
    assert_eq!(err.kind, ErrorKind::Unavailable, "{err}");
    assert!(err.detail.contains("different key"), "{err}");
    assert!(err.detail.contains("token=replaced"), "{err}");
}

/// A child made by fork(2) signs with the key its parent opened: the module is
/// initialised again in the child (PKCS #11 wants C_Initialize per process), and
/// the parent's key still signs afterwards. SoftHSM also tolerates a child that
/// goes on with its parent's context, so this pins that signing across a fork
/// works, not that the re-initialisation was needed. Forking is safe only in a
/// process with no other test's threads, so the test runs itself again, alone.
#[test]
fn a_forked_child_signs_with_a_context_of_its_own() {
    const ALONE: &str = "GPKI_HSM_TEST_FORK_ALONE";
    let name = "a_forked_child_signs_with_a_context_of_its_own";
    if std::env::var_os(ALONE).is_none() {
        if hsm().is_none() {
            return;
        }
        let out = Command::new(std::env::current_exe().unwrap())
            .args(["--exact", name, "--nocapture", "--test-threads=1"])
            .env(ALONE, "1")
            .output()
            .unwrap();
        let text = String::from_utf8_lossy(&out.stdout).into_owned()
            + &String::from_utf8_lossy(&out.stderr);
        assert!(out.status.success(), "{text}");
        assert!(text.contains("1 passed"), "{text}");
        return;
    }
    let hsm = hsm_or_skip!();
    let token = hsm.token("forked");
    let uri = keygen(&token.token_uri(), &pin(), KeyType::EcP384, "k", &[9]).unwrap();
    let key = Pkcs11Key::open(&uri, pin()).unwrap();
    key.sign(b"parent before").unwrap();
    let out = hsm.dir.join("child.sig");
    // SAFETY: this process runs this one test on one thread (see above), so the
    // child holds no lock another thread took; it leaves by _exit, running no
    // destructor of the parent's state.
    let pid = unsafe { libc::fork() };
    assert!(pid >= 0, "fork failed");
    if pid == 0 {
        let code = match key.sign(b"child") {
            Ok(sig) if std::fs::write(&out, &sig).is_ok() => 0,
            Ok(_) => 2,
            Err(e) => {
                eprintln!("child: {e}");
                1
            }
        };
        // SAFETY: ends the child at once, as fork(2) children should.
        unsafe { libc::_exit(code) };
    }
    let mut status = 0;
    // SAFETY: waits for the child just made.
    let waited = unsafe { libc::waitpid(pid, &mut status, 0) };
    assert_eq!(waited, pid);
    assert!(
        libc::WIFEXITED(status) && libc::WEXITSTATUS(status) == 0,
        "child status {status}"
    );
    let child_sig = std::fs::read(&out).unwrap();
    assert!(openssl_verifies(
        key.public_key_der(),
        SignatureAlgorithm::EcdsaSha384,
        b"child",
        &child_sig
    ));
    let parent_sig = key.sign(b"parent after").unwrap();
    assert!(openssl_verifies(
        key.public_key_der(),
        SignatureAlgorithm::EcdsaSha384,
        b"parent after",
        &parent_sig
    ));
}
