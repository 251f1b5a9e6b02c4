//! `gpki dev up`: a local hierarchy on the SQLite default, made idempotently. A
//! second run finds what exists and makes only what is missing.

use gpki_ca::{Ca, IssueRequest, KeySource, NewCa};
use gpki_pki::cert::SanEntry;
use gpki_pki::signer::{write_private_file, Passphrase};
use gpki_pki::{KeyType, Result, Signer, SoftwareKey};
use gpki_store::Store;
use serde_json::json;

use crate::{emit, write_file, Global};

pub const ROOT: &str = "gpki-root";
pub const SUB: &str = "mois";

/// One development certificate per end-entity profile: (profile, key type, subject, SANs).
const END_ENTITIES: &[(&str, KeyType, &str, &[&str])] = &[
    ("official-sign", KeyType::EcP256, "CN=Hong Gildong(001234567), OU=people, OU=Ministry of the Interior and Safety, O=Government of Korea, C=KR", &["email:gildong.hong@mois.go.kr"]),
    ("official-km", KeyType::Rsa2048, "CN=Hong Gildong(001234567), OU=people, OU=Ministry of the Interior and Safety, O=Government of Korea, C=KR", &["email:gildong.hong@mois.go.kr"]),
    ("institution-sign", KeyType::EcP256, "CN=Ministry of the Interior and Safety, OU=institutions, OU=Ministry of the Interior and Safety, O=Government of Korea, C=KR", &[]),
    ("server", KeyType::EcP256, "O=Ministry of the Interior and Safety, L=Sejong, C=KR", &["dns:docs.mois.go.kr"]),
    ("g-ssl", KeyType::EcP256, "O=Ministry of the Interior and Safety, L=Sejong, C=KR", &["dns:www.mois.go.kr", "dns:mois.go.kr"]),
    ("ocsp-signer", KeyType::EcP256, "CN=MOIS OCSP Responder, OU=GPKI, O=Government of Korea, C=KR", &[]),
    ("tsa", KeyType::EcP256, "CN=GPKI Time Stamping Authority, OU=GPKI, O=Government of Korea, C=KR", &[]),
    ("ra-operator", KeyType::EcP256, "CN=Kim Minji(007654321), OU=RA, OU=Ministry of the Interior and Safety, O=Government of Korea, C=KR", &[]),
    ("service-client", KeyType::EcP256, "CN=dev-ra-host, OU=GPKI services, O=Government of Korea, C=KR", &[]),
    ("credential-signer", KeyType::EcP256, "CN=Mobile Public Official ID Signer 1, OU=credentials, OU=Ministry of the Interior and Safety, O=Government of Korea, C=KR", &[]),
];

pub async fn up(g: &Global, serve: bool, listen: &str, tsa_listen: &str) -> Result<()> {
    let dir = &g.data_dir;
    std::fs::create_dir_all(dir)
        .map_err(|e| gpki_pki::Error::internal(format!("cannot create {}: {e}", dir.display())))?;
    // Development only: random passphrases kept beside the keys, mode 0600. The CA
    // keys have one; every other key (the responders', the TSA's, the sample
    // certificates') has another, so the services' configs never name the CA's.
    let random_file = |p: std::path::PathBuf| -> Result<std::path::PathBuf> {
        if !p.exists() {
            let pass = Passphrase::random()?;
            let mut line = zeroize::Zeroizing::new(pass.expose().to_vec());
            line.push(b'\n');
            write_private_file(&p, &line)?;
        }
        Ok(p)
    };
    let pass_file = match &g.key_pass_file {
        Some(p) => p.clone(),
        None => random_file(dir.join("dev-passphrase"))?,
    };
    let pass = Passphrase::from_file(&pass_file)?;
    let signer_pass_file = random_file(dir.join("dev-signer-passphrase"))?;
    let signer_pass = Passphrase::from_file(&signer_pass_file)?;
    let store = Store::open(&g.store_url()).await?;
    let ca = Ca::new(
        store.clone(),
        g.profiles()?,
        dir.join("keys"),
        pass.clone(),
        g.actor(),
    );
    let mut made = Vec::new();
    let mut found = Vec::new();

    let certs_dir = dir.join("certs");
    if store.find_authority(ROOT).await?.is_none() {
        ca.init_root(&NewCa {
            name: ROOT.into(),
            subject: "CN=GPKI Root CA 1, OU=GPKI, O=Government of Korea, C=KR".into(),
            key_type: KeyType::Rsa4096,
            signature_algorithm: None,
            validity_days: None,
            path_len: Some(1),
            name_constraints: None,
            url_base: url_base(listen),
        })
        .await?;
        made.push(format!("root CA {ROOT}"));
    } else {
        found.push(format!("root CA {ROOT}"));
    }
    if store.find_authority(SUB).await?.is_none() {
        ca.create_subordinate(
            &NewCa {
                name: SUB.into(),
                subject: "CN=GPKI MOIS CA 1, OU=GPKI, O=Government of Korea, C=KR".into(),
                key_type: KeyType::EcP384,
                signature_algorithm: None,
                validity_days: None,
                path_len: Some(0),
                name_constraints: gpki_pki::cert::name_constraints(
                    &["C=KR".into()],
                    &[],
                    &["go.kr".into()],
                    &[],
                )?,
                url_base: url_base(listen),
            },
            ROOT,
        )
        .await?;
        made.push(format!(
            "subordinate CA {SUB} (Ministry of the Interior and Safety)"
        ));
    } else {
        found.push(format!("subordinate CA {SUB}"));
    }
    for name in [ROOT, SUB] {
        let a = store.authority_by_name(name).await?;
        if let Some(der) = &a.cert_der {
            write_file(
                &certs_dir.join(format!("{name}.crt.pem")),
                gpki_pki::pem::encode("CERTIFICATE", der).as_bytes(),
            )?;
        }
    }
    let chain = ca.chain(SUB).await?;
    write_file(
        &certs_dir.join("chain.pem"),
        chain
            .iter()
            .map(|c| gpki_pki::pem::encode("CERTIFICATE", c))
            .collect::<String>()
            .as_bytes(),
    )?;

    let sub = store.authority_by_name(SUB).await?;
    for (profile, key_type, subject, sans) in END_ENTITIES {
        let request_key = format!("dev:{profile}");
        let cert_path = certs_dir.join(format!("{profile}.crt.pem"));
        if let Some(existing) = store
            .certificate_by_request_key(sub.id, &request_key)
            .await?
        {
            if let Some(der) = &existing.der {
                write_file(
                    &cert_path,
                    gpki_pki::pem::encode("CERTIFICATE", der).as_bytes(),
                )?;
                found.push(format!("{profile} certificate {}", existing.serial));
                continue;
            }
        }
        let key_path = certs_dir.join(format!("{profile}.key.pem"));
        let key = if key_path.exists() {
            SoftwareKey::read_encrypted(&key_path, &signer_pass)?
        } else {
            let k = SoftwareKey::generate(*key_type)?;
            k.write_encrypted(&key_path, &signer_pass)?;
            k
        };
        let issued = ca
            .issue(&IssueRequest {
                ca: SUB.into(),
                profile: profile.to_string(),
                subject: Some(subject.to_string()),
                key: KeySource::PublicKey(key.public_key_der().to_vec()),
                sans: sans
                    .iter()
                    .map(|s| s.parse::<SanEntry>())
                    .collect::<Result<Vec<_>>>()?,
                validity_days: None,
                request_key: Some(request_key),
                renewed_from: None,
            })
            .await?;
        write_file(
            &cert_path,
            gpki_pki::pem::encode("CERTIFICATE", &issued.der).as_bytes(),
        )?;
        made.push(format!("{profile} certificate {}", issued.record.serial));
    }
    let crl_dir = dir.join("crl");
    for name in [ROOT, SUB] {
        let crl = match store
            .latest_crl(store.authority_by_name(name).await?.id, true)
            .await?
        {
            Some(c) if c.next_update > gpki_pki::time::now() => c,
            _ => {
                let c = ca.generate_crl(name, false, 24).await?;
                made.push(format!("CRL {} of {name}", c.crl_number));
                c
            }
        };
        write_file(
            &crl_dir.join(format!("{name}.crl.pem")),
            gpki_pki::pem::encode("X509 CRL", &crl.der).as_bytes(),
        )?;
    }

    let (ocsp_config, ocsp_made, ocsp_found) = ocsp_setup(
        &ca,
        dir,
        &g.store_url(),
        &signer_pass_file,
        &signer_pass,
        listen,
    )
    .await?;
    made.extend(ocsp_made);
    found.extend(ocsp_found);
    let tsa_config = tsa_setup(dir, &g.store_url(), &signer_pass_file, tsa_listen)?;

    let d = dir.display();
    emit(
        g.output,
        json!({ "data_dir": d.to_string(), "store": store.display_url(), "made": made, "found": found, "passphrase_file": pass_file.display().to_string() }),
        || {
            let mut t = format!(
                "gpki dev hierarchy in {d} (store {})\n",
                store.display_url()
            );
            for m in &made {
                t += &format!("  made   {m}\n");
            }
            for f in &found {
                t += &format!("  exists {f}\n");
            }
            let gpki = invocation();
            t += &format!(
            "\nCertificates and keys: {d}/certs/  (keys encrypted; passphrase in {d}/dev-signer-passphrase)\nCA keys: {d}/keys/ (passphrase in {})\nCRLs: {d}/crl/\n\nTry next:\n  \
             export GPKI_KEY_PASS_FILE={}\n  \
             {gpki} ca list\n  \
             {gpki} cert list --ca {SUB}\n  \
             openssl verify -x509_strict -CAfile {d}/certs/{ROOT}.crt.pem -untrusted {d}/certs/{SUB}.crt.pem {d}/certs/g-ssl.crt.pem\n  \
             {gpki} ocsp query --cert {d}/certs/g-ssl.crt.pem --issuer {d}/certs/{SUB}.crt.pem --ca-file {d}/certs/{ROOT}.crt.pem\n  \
             {gpki} ts stamp --file README.md --url http://{tsa_listen}/ --out README.tsr\n  \
             {gpki} ts verify --file README.md --token README.tsr --ca-file {d}/certs/{ROOT}.crt.pem --untrusted {d}/certs/{SUB}.crt.pem\n  \
             {gpki} cert revoke --ca {SUB} --serial SERIAL --reason keyCompromise\n  \
             {gpki} crl generate --ca {SUB} --out {d}/crl/{SUB}.crl.pem\n  \
             {gpki} ocsp renew-signers --config {d}/ocsp.toml\n  \
             {gpki} audit verify",
            pass_file.display(),
            pass_file.display()
        );
            t
        },
    );
    if serve {
        let running = gpki_ocsp::start(ocsp_config).await?;
        let tsa = gpki_tsa::start(tsa_config).await?;
        eprintln!(
            "\nOCSP responder on http://{}/ocsp (config {d}/ocsp.toml)\nTSA on http://{}/ (config {d}/tsa.toml)\nCtrl-C stops both",
            running.local_addr(),
            tsa.local_addr()
        );
        gpki_ocsp::wait_for_signal().await;
        tsa.stop().await;
        running.stop().await;
    }
    Ok(())
}

/// How the printed next steps call gpki: `gpki` when that name on PATH is this very
/// binary, else this binary's full path (after `cargo run`, nothing named gpki may
/// be on PATH at all).
fn invocation() -> String {
    let me = std::env::current_exe().and_then(|p| p.canonicalize()).ok();
    let on_path = std::env::var_os("PATH").and_then(|paths| {
        std::env::split_paths(&paths)
            .map(|d| d.join("gpki"))
            .find(|p| p.is_file())
            .and_then(|p| p.canonicalize().ok())
    });
    match me {
        Some(me) if on_path.as_ref() != Some(&me) => me.display().to_string(),
        _ => "gpki".to_string(),
    }
}

/// Where the dev CAs' CRL, OCSP and caIssuers URLs point: the local responder.
fn url_base(listen: &str) -> String {
    std::env::var("GPKI_URL_BASE").unwrap_or_else(|_| format!("http://{listen}"))
}

/// A path made absolute, so a written config works from any directory.
fn abs(p: &std::path::Path) -> std::path::PathBuf {
    std::path::absolute(p).unwrap_or_else(|_| p.to_path_buf())
}

/// A TOML string literal.
fn q(s: String) -> String {
    toml::Value::String(s).to_string()
}

/// The store URL with a SQLite path made absolute.
fn absolute_store_url(store_url: &str) -> String {
    match store_url.strip_prefix("sqlite://") {
        Some(path) => format!("sqlite://{}", abs(std::path::Path::new(path)).display()),
        None => store_url.to_string(),
    }
}

/// Writes `tsa.toml` for the dev TSA certificate (profile tsa, made above).
fn tsa_setup(
    dir: &std::path::Path,
    store_url: &str,
    pass_file: &std::path::Path,
    listen: &str,
) -> Result<gpki_tsa::Config> {
    let store = absolute_store_url(store_url);
    let certs = abs(&dir.join("certs"));
    let text = format!(
        "# gpki dev: the timestamp authority (gpki-tsa serve --config THIS)\n\
         store = {}\nlisten = {}\nname = \"dev-tsa\"\n\
         cert = {}\nkey = {}\nkey_pass_file = {}\n\
         # Development machines rarely run NTP; production keeps the default (true).\n\
         require_clock_sync = false\n",
        q(store),
        q(listen.to_string()),
        q(certs.join("tsa.crt.pem").display().to_string()),
        q(certs.join("tsa.key.pem").display().to_string()),
        q(abs(pass_file).display().to_string()),
    );
    let path = dir.join("tsa.toml");
    write_file(&path, text.as_bytes())?;
    gpki_tsa::Config::load(&path)
}

/// Issues (or renews, within 10 days of expiry) the responder certificate of each
/// dev CA and writes `ocsp.toml` for `gpki-ocsp serve`.
async fn ocsp_setup(
    ca: &Ca,
    dir: &std::path::Path,
    store_url: &str,
    pass_file: &std::path::Path,
    pass: &Passphrase,
    listen: &str,
) -> Result<(gpki_ocsp::Config, Vec<String>, Vec<String>)> {
    let (mut made, mut found) = (Vec::new(), Vec::new());
    let ocsp_dir = abs(&dir.join("ocsp"));
    let store = absolute_store_url(store_url);
    let mut text = format!(
        "# gpki dev: the OCSP responder for the dev CAs (gpki-ocsp serve --config THIS)\n\
         store = {}\nlisten = {}\nkey_pass_file = {}\n\n",
        q(store.clone()),
        q(listen.to_string()),
        q(abs(pass_file).display().to_string())
    );
    for name in [ROOT, SUB] {
        let cert = ocsp_dir.join(format!("{name}.crt.pem"));
        let key = ocsp_dir.join(format!("{name}.key.pem"));
        let current = std::fs::read(&cert)
            .ok()
            .and_then(|pem| gpki_pki::pem::decode(&pem, "CERTIFICATE").ok())
            .and_then(|der| gpki_pki::cert::decode(&der).ok())
            .map(|c| gpki_pki::time::unix_seconds(&c.tbs_certificate.validity.not_after));
        if current.is_some_and(|t| t - gpki_pki::time::now() > 10 * 86_400) && key.exists() {
            found.push(format!("OCSP responder certificate of {name}"));
        } else {
            let issued =
                crate::ocsp::issue_signer(ca, name, KeyType::EcP256, pass, &cert, &key).await?;
            made.push(format!(
                "OCSP responder certificate of {name} {}",
                issued.record.serial
            ));
        }
        text += &format!(
            "[[ca]]
name = {}
cert = {}
key = {}

",
            q(name.to_string()),
            q(cert.display().to_string()),
            q(key.display().to_string())
        );
    }
    text += "# The responder never opens a CA key. Renew its certificates on the CA side,\n\
             # e.g. daily from a timer: gpki ocsp renew-signers --config THIS\n\
             # It picks up the new files by itself (or on SIGHUP).\n";
    let path = dir.join("ocsp.toml");
    write_file(&path, text.as_bytes())?;
    Ok((gpki_ocsp::Config::load(&path)?, made, found))
}
