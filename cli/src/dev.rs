//! `gpki dev up`: a local hierarchy on the SQLite default, made idempotently. A
//! second run finds what exists and makes only what is missing.

use gpki_ca::{Ca, IssueRequest, KeySource, NewCa};
use gpki_pki::cert::SanEntry;
use gpki_pki::signer::{write_private_file, Passphrase};
use gpki_pki::{KeyType, Result, Signer, SoftwareKey};
use gpki_store::{AuditEvent, NewRa, Store};
use serde_json::json;

use crate::{emit, write_file, Global};

pub const ROOT: &str = "gpki-root";
pub const SUB: &str = "mois";
/// The credential CA: it issues only the signers of mobile credentials (profiles
/// credential-signer and status-list-signer) and its OCSP responder's certificate.
pub const CREDENTIAL_CA: &str = "mobile-id";
/// The mobile ID issuer's identifier: the URI SAN of its signer certificates, an
/// SD-JWT VC's `iss`, and the host of its `did:web` DID.
pub const CREDENTIAL_ISSUER: &str = "https://id.gpki.go.kr";
/// The dev status list of mobile IDs, served by the OCSP responder.
pub const STATUS_LIST: &str = "mpoid-1";
/// The dev RA, its host's CA-service client name and its first administrator.
pub const DEV_RA: &str = "dev-mois";
/// The dev Key Recovery Authority.
pub const DEV_KRA: &str = "dev-kra";
const RA_HOST: &str = "dev-ra-host";
const RA_ADMIN: &str = "dev-admin";
/// The institution the dev RA serves.
const MOIS: &str = "OU=Ministry of the Interior and Safety, O=Government of Korea, C=KR";
/// The names on the CA and RA services' TLS certificates.
pub const CA_SERVER_NAME: &str = "ca.gpki.go.kr";
pub const RA_SERVER_NAME: &str = "ra.gpki.go.kr";

/// The services' TLS server certificates (profile server): (name, subject, SANs).
const SERVICE_TLS: &[(&str, &str, &[&str])] = &[
    (
        "ca-tls",
        "O=Ministry of the Interior and Safety, L=Sejong, C=KR",
        &["dns:ca.gpki.go.kr"],
    ),
    (
        "ra-tls",
        "O=Ministry of the Interior and Safety, L=Sejong, C=KR",
        &["dns:ra.gpki.go.kr"],
    ),
];

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
];

/// The credential CA's certificates, one per profile: the mobile ID's document
/// signer and its status-list signer, both naming the issuer's identifier.
const CREDENTIAL_SIGNERS: &[(&str, KeyType, &str, &[&str])] = &[
    ("credential-signer", KeyType::EcP256, "CN=Mobile Public Official ID Signer 1, OU=credentials, OU=Ministry of the Interior and Safety, O=Government of Korea, C=KR", &["uri:https://id.gpki.go.kr"]),
    ("status-list-signer", KeyType::EcP256, "CN=Mobile Public Official ID Status List 1, OU=credentials, OU=Ministry of the Interior and Safety, O=Government of Korea, C=KR", &["uri:https://id.gpki.go.kr"]),
];

/// Where the dev services listen.
pub struct Listen {
    pub ocsp: String,
    pub tsa: String,
    pub ca: String,
    pub ra: String,
    pub api: String,
    /// The subordinate CA's key type, when it is made.
    pub ca_key_type: KeyType,
}

pub async fn up(g: &Global, serve: bool, at: &Listen) -> Result<()> {
    let listen = at.ocsp.as_str();
    let tsa_listen = at.tsa.as_str();
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
    // The root is offline: its key in a directory of its own under a passphrase of
    // its own, neither of which the CA service's config names.
    let offline_pass_file = match &g.offline_key_pass_file {
        Some(p) => p.clone(),
        None => random_file(dir.join("offline-passphrase"))?,
    };
    let store = Store::open(&g.store_url()).await?;
    let ca = Ca::new(
        store.clone(),
        g.profiles()?,
        dir.join("keys"),
        pass.clone(),
        g.actor(),
    )
    .with_offline_custody(
        g.offline_key_dir(),
        Passphrase::from_file(&offline_pass_file)?,
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
            offline: false,
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
                key_type: at.ca_key_type,
                signature_algorithm: None,
                validity_days: None,
                path_len: Some(0),
                // DNS names only: rustls-webpki refuses every certificate under a
                // permitted directoryName constraint, and the operators' and
                // services' mutual-TLS certificates come from this CA. The RA and
                // CA services enforce the institution's DN subtree instead.
                name_constraints: gpki_pki::cert::name_constraints(
                    &[],
                    &[],
                    &["go.kr".into()],
                    &[],
                )?,
                url_base: url_base(listen),
                offline: false,
            },
            ROOT,
        )
        .await?;
        made.push(format!(
            "subordinate CA {SUB} (Ministry of the Interior and Safety)"
        ));
    } else {
        // An existing CA keeps its key; say so when another type was asked for.
        let kept = store.authority_by_name(SUB).await?.key_type;
        if kept != at.ca_key_type.as_str() {
            found.push(format!(
                "subordinate CA {SUB} (its key stays {kept}: --ca-key-type {} applies only when it is made)",
                at.ca_key_type
            ));
        } else {
            found.push(format!("subordinate CA {SUB}"));
        }
    }
    if store.find_authority(CREDENTIAL_CA).await?.is_none() {
        ca.create_subordinate(
            &NewCa {
                name: CREDENTIAL_CA.into(),
                subject: "CN=GPKI Mobile Credential CA 1, OU=GPKI, O=Government of Korea, C=KR"
                    .into(),
                // ISO/IEC 18013-5 Annex B: the document signer's issuer signs with ECDSA.
                key_type: KeyType::EcP384,
                signature_algorithm: None,
                validity_days: None,
                path_len: Some(0),
                name_constraints: None,
                url_base: url_base(listen),
                offline: false,
            },
            ROOT,
        )
        .await?;
        made.push(format!(
            "credential CA {CREDENTIAL_CA} (mobile credentials)"
        ));
    } else {
        found.push(format!("credential CA {CREDENTIAL_CA}"));
    }
    for name in [ROOT, SUB, CREDENTIAL_CA] {
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
    let dev_certs = DevCerts {
        ca: &ca,
        store: &store,
        ca_name: SUB,
        ca_id: sub.id,
        dir: &certs_dir,
        pass: &signer_pass,
    };
    for (profile, key_type, subject, sans) in END_ENTITIES {
        dev_certs
            .ensure(
                profile, profile, *key_type, subject, sans, &mut made, &mut found,
            )
            .await?;
    }
    let credential_ca = store.authority_by_name(CREDENTIAL_CA).await?;
    let credential_certs = DevCerts {
        ca_name: CREDENTIAL_CA,
        ca_id: credential_ca.id,
        ..dev_certs
    };
    for (profile, key_type, subject, sans) in CREDENTIAL_SIGNERS {
        credential_certs
            .ensure(
                profile, profile, *key_type, subject, sans, &mut made, &mut found,
            )
            .await?;
    }
    let credential_chain = ca
        .chain(CREDENTIAL_CA)
        .await?
        .iter()
        .map(|c| gpki_pki::pem::encode("CERTIFICATE", c))
        .collect::<String>();
    write_file(
        &certs_dir.join(format!("{CREDENTIAL_CA}-chain.pem")),
        credential_chain.as_bytes(),
    )?;
    // Each signer with its chain, leaf first: what goes in x5c / x5chain.
    for (profile, ..) in CREDENTIAL_SIGNERS {
        let leaf =
            std::fs::read_to_string(certs_dir.join(format!("{profile}.crt.pem"))).map_err(|e| {
                gpki_pki::Error::internal(format!("cannot read the {profile} certificate: {e}"))
            })?;
        write_file(
            &certs_dir.join(format!("{profile}-chain.pem")),
            format!("{leaf}{credential_chain}").as_bytes(),
        )?;
    }
    if store
        .status_lists()
        .await?
        .iter()
        .all(|l| l.name != STATUS_LIST)
    {
        store
            .create_status_list(
                STATUS_LIST,
                &format!("http://{listen}/statuslists/{STATUS_LIST}"),
                1,
                1 << 20,
                &AuditEvent::new(
                    &g.actor(),
                    "status-list.create",
                    format!("status-list:{STATUS_LIST}"),
                    json!({ "size": 1 << 20, "bits": 1 }),
                ),
            )
            .await?;
        made.push(format!("status list {STATUS_LIST} (1,048,576 credentials)"));
    } else {
        found.push(format!("status list {STATUS_LIST}"));
    }
    kra_setup(g, &ca, dir, &signer_pass, &mut made, &mut found).await?;
    for (name, subject, sans) in SERVICE_TLS {
        dev_certs
            .ensure(
                name,
                "server",
                KeyType::EcP256,
                subject,
                sans,
                &mut made,
                &mut found,
            )
            .await?;
    }
    let crl_dir = dir.join("crl");
    for name in [ROOT, SUB, CREDENTIAL_CA] {
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
    let tsa_config = tsa_setup(dir, &g.store_url(), &signer_pass_file, &at.tsa)?;
    let api_config = api_setup(dir, &at.api)?;
    let services = services_setup(
        g,
        &store,
        dir,
        &pass_file,
        &signer_pass_file,
        at,
        &mut made,
        &mut found,
    )
    .await?;

    // The audit chain anchored from the start: the audit key and a first signed
    // checkpoint (the CA service then takes one every 300 s).
    let checkpoints = |d: &std::path::Path| std::fs::read_dir(d).map_or(0, |e| e.count());
    let before = checkpoints(&dir.join("audit"));
    let (cp, _) = ca.audit_checkpoint(&dir.join("audit")).await?;
    let what = format!(
        "audit checkpoint of row {} in {}/audit",
        cp.seq,
        dir.display()
    );
    if checkpoints(&dir.join("audit")) > before {
        made.push(what);
    } else {
        found.push(what);
    }
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
            "\nCertificates and keys: {d}/certs/  (keys encrypted; passphrase in {d}/dev-signer-passphrase)\nCA keys: {d}/keys/ (passphrase in {})\nThe offline root's key: {d}/offline/ (passphrase in {d}/offline-passphrase; the CA service never reaches it)\nCRLs: {d}/crl/\n\nTry next:\n  \
             export GPKI_KEY_PASS_FILE={}\n  \
             {gpki} ca list\n  \
             {gpki} cert list --ca {SUB}\n  \
             openssl verify -x509_strict -CAfile {d}/certs/{ROOT}.crt.pem -untrusted {d}/certs/{SUB}.crt.pem {d}/certs/g-ssl.crt.pem\n  \
             {gpki} ocsp query --cert {d}/certs/g-ssl.crt.pem --issuer {d}/certs/{SUB}.crt.pem --ca-file {d}/certs/{ROOT}.crt.pem\n  \
             {gpki} ts stamp --file README.md --url http://{tsa_listen}/ --out README.tsr\n  \
             {gpki} ts verify --file README.md --token README.tsr --ca-file {d}/certs/{ROOT}.crt.pem --untrusted {d}/certs/{SUB}.crt.pem\n  \
             {gpki} cms sign --in README.md --out README.p7s --key {d}/certs/official-sign.key.pem --cert {d}/certs/official-sign.crt.pem --pass-file {d}/dev-signer-passphrase --tsa http://{tsa_listen}/\n  \
             {gpki} cms verify --in README.p7s --ca-file {d}/certs/{ROOT}.crt.pem --untrusted {d}/certs/{SUB}.crt.pem\n  \
             {gpki} cert revoke --ca {SUB} --serial SERIAL --reason keyCompromise\n  \
             {gpki} crl generate --ca {SUB} --out {d}/crl/{SUB}.crl.pem\n  \
             GPKI_OFFLINE_KEY_PASS_FILE={d}/offline-passphrase {gpki} crl generate --ca {ROOT} --out {d}/crl/{ROOT}.crl.pem\n  \
             GPKI_OFFLINE_KEY_PASS_FILE={d}/offline-passphrase {gpki} ocsp renew-signers --config {d}/ocsp.toml\n  \
             {gpki} audit verify\n\n\
             The RA (operator {RA_ADMIN} of RA {DEV_RA}, over mutual TLS; see README \"Issuing through the RA\"):\n  \
             export GPKI_RA_CONFIG={d}/ra-client.toml GPKI_OUT_PASS_FILE={d}/dev-signer-passphrase\n  \
             {gpki} ra whoami\n  \
             {gpki} key new --key-out hong.key.pem --subject \"CN=Hong Gildong(001234567), OU=people, {MOIS}\" --csr-out hong.csr\n  \
             {gpki} ra submit --idempotency-key hong-1 --profile official-sign --subject \"CN=Hong Gildong(001234567), OU=people, {MOIS}\" --csr hong.csr --identity-method face-to-face --identity-document \"ID card 1234\" --out hong.pem\n  \
             {gpki} ra requests",
            pass_file.display(),
            pass_file.display()
        );
            t
        },
    );
    if serve {
        let mut signals = gpki_service::Signals::install();
        let (ca_config, ra_config) = services;
        let running = gpki_ocsp::start(ocsp_config).await?;
        let tsa = gpki_tsa::start(tsa_config).await?;
        // The CA and RA services share this process's store: one pool and one
        // writer, whose groups take both services' writes (on SQLite, two
        // writers would take turns at its one write lock, each sleeping in
        // SQLite's busy handler while the other commits).
        let ca_service = gpki_ca_service::start_on(ca_config, store.clone()).await?;
        let ra_service = gpki_ra::start_on(ra_config, store.clone()).await?;
        let api = gpki_api::server::start(api_config).await?;
        eprintln!(
            "\nOCSP responder on http://{}/ocsp (config {d}/ocsp.toml)\nTSA on http://{}/ (config {d}/tsa.toml)\n\
             CA service on https://{}/ (mutual TLS as {CA_SERVER_NAME}; config {d}/ca.toml)\n\
             RA service on https://{}/ (mutual TLS as {RA_SERVER_NAME}; config {d}/ra.toml)\n\
             Standard API on http://{}/v1/ (certificate login, document verification; config {d}/api.toml)\nCtrl-C stops all five",
            running.local_addr(),
            tsa.local_addr(),
            ca_service.local_addr(),
            ra_service.local_addr(),
            api.local_addr(),
        );
        signals.recv().await;
        api.stop().await;
        // The RA first: its requests in flight still reach the CA service.
        ra_service.stop().await;
        ca_service.stop().await;
        tsa.stop().await;
        running.stop().await;
    }
    Ok(())
}

/// Issues the dev certificates of one CA, each once (request key
/// `dev:NAME`): `certs/NAME.crt.pem` and its encrypted key `certs/NAME.key.pem`.
#[derive(Clone, Copy)]
struct DevCerts<'a> {
    ca: &'a Ca,
    store: &'a Store,
    ca_name: &'static str,
    ca_id: i64,
    dir: &'a std::path::Path,
    pass: &'a Passphrase,
}

impl DevCerts<'_> {
    #[allow(clippy::too_many_arguments)]
    async fn ensure(
        &self,
        name: &str,
        profile: &str,
        key_type: KeyType,
        subject: &str,
        sans: &[&str],
        made: &mut Vec<String>,
        found: &mut Vec<String>,
    ) -> Result<()> {
        let request_key = format!("dev:{name}");
        let cert_path = self.dir.join(format!("{name}.crt.pem"));
        if let Some(existing) = self
            .store
            .certificate_by_request_key(self.ca_id, &request_key)
            .await?
        {
            if let Some(der) = &existing.der {
                write_file(
                    &cert_path,
                    gpki_pki::pem::encode("CERTIFICATE", der).as_bytes(),
                )?;
                found.push(format!("{name} certificate {}", existing.serial));
                return Ok(());
            }
        }
        let key_path = self.dir.join(format!("{name}.key.pem"));
        let key = if key_path.exists() {
            SoftwareKey::read_encrypted(&key_path, self.pass)?
        } else {
            let k = SoftwareKey::generate(key_type)?;
            k.write_encrypted(&key_path, self.pass)?;
            k
        };
        let issued = self
            .ca
            .issue(&IssueRequest {
                ca: self.ca_name.into(),
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
        made.push(format!("{name} certificate {}", issued.record.serial));
        Ok(())
    }
}

/// The CA and RA services: the RA host registered as a client of the CA service
/// (the sample service-client certificate), the RA `dev-mois` for the Ministry of
/// the Interior and Safety with the sample ra-operator certificate as its first
/// administrator, and the configs `ca.toml`, `ra.toml` and `ra-client.toml` (the
/// operator's profile for `gpki ra …`, through `GPKI_RA_CONFIG`).
#[allow(clippy::too_many_arguments)]
async fn services_setup(
    g: &Global,
    store: &Store,
    dir: &std::path::Path,
    ca_pass_file: &std::path::Path,
    signer_pass_file: &std::path::Path,
    at: &Listen,
    made: &mut Vec<String>,
    found: &mut Vec<String>,
) -> Result<(gpki_ca_service::Config, gpki_ra::Config)> {
    let sub = store.authority_by_name(SUB).await?;
    let dev_cert = |name: &'static str| async move {
        store
            .certificate_by_request_key(sub.id, &format!("dev:{name}"))
            .await?
            .ok_or_else(|| {
                gpki_pki::Error::internal(format!("the dev {name} certificate is missing"))
            })
    };
    let host = dev_cert("service-client").await?;
    if store.service_client_by_cert(host.id).await?.is_none() {
        store
            .add_service_client(
                RA_HOST,
                "ra",
                host.id,
                &AuditEvent::new(
                    &g.actor(),
                    "ca.client.add",
                    format!("cert:{SUB}/{}", host.serial),
                    json!({ "name": RA_HOST, "role": "ra" }),
                ),
            )
            .await?;
        made.push(format!("CA service client {RA_HOST} (role ra)"));
    } else {
        found.push(format!("CA service client {RA_HOST}"));
    }
    let ra = match store.ra_by_name(DEV_RA).await {
        Ok(ra) => {
            found.push(format!("RA {DEV_RA}"));
            ra
        }
        Err(e) if e.kind == gpki_pki::ErrorKind::NotFound => {
            let ra = store
                .create_ra(
                    &NewRa {
                        name: DEV_RA.into(),
                        ca_name: SUB.into(),
                        subtrees: vec![MOIS.into()],
                        profiles: [
                            "official-sign",
                            "official-km",
                            "institution-sign",
                            "ra-operator",
                        ]
                        .map(String::from)
                        .to_vec(),
                        dual_control: vec![],
                        // Renewal open at any time, so the walkthrough can renew
                        // what it just issued; production RAs open it 30-60 days
                        // before expiry.
                        renew_window_days: 3650,
                        host: RA_HOST.into(),
                        domains: vec!["mois.go.kr".into()],
                    },
                    &AuditEvent::new(&g.actor(), "ra.create", format!("ra:{DEV_RA}"), json!({})),
                )
                .await?;
            made.push(format!("RA {DEV_RA} (Ministry of the Interior and Safety)"));
            ra
        }
        Err(e) => return Err(e),
    };
    let admin = dev_cert("ra-operator").await?;
    if store
        .operators(ra.id)
        .await?
        .iter()
        .any(|o| o.cert_id == admin.id)
    {
        found.push(format!("RA operator {RA_ADMIN}"));
    } else {
        store
            .add_operator(
                ra.id,
                RA_ADMIN,
                admin.id,
                true,
                &AuditEvent::new(
                    &g.actor(),
                    "ra.operator.enrol",
                    format!("ra:{DEV_RA}"),
                    json!({ "name": RA_ADMIN, "cert_id": admin.id, "admin": true }),
                ),
            )
            .await?;
        made.push(format!(
            "RA operator {RA_ADMIN} (administrator of {DEV_RA})"
        ));
    }

    // A TLS client or server sends its certificate and then the CA's.
    let certs = abs(&dir.join("certs"));
    let sub_pem = std::fs::read(certs.join(format!("{SUB}.crt.pem")))
        .map_err(|e| gpki_pki::Error::internal(format!("{SUB}.crt.pem: {e}")))?;
    for name in ["ca-tls", "ra-tls", "service-client", "ra-operator"] {
        let mut pem = std::fs::read(certs.join(format!("{name}.crt.pem")))
            .map_err(|e| gpki_pki::Error::internal(format!("{name}.crt.pem: {e}")))?;
        pem.extend_from_slice(&sub_pem);
        write_file(&certs.join(format!("{name}.chain.pem")), &pem)?;
    }
    let file = |n: &str| q(certs.join(n).display().to_string());
    let root = file(&format!("{ROOT}.crt.pem"));
    let signer_pass = q(abs(signer_pass_file).display().to_string());
    let store_url = q(absolute_store_url(&g.store_url()));
    let policies = g
        .policies
        .as_ref()
        .map(|p| format!("policies = {}\n", q(abs(p).display().to_string())))
        .unwrap_or_default();
    let ca_toml = format!(
        "# gpki dev: the online CA service (gpki-ca serve --config THIS), the one process\n\
         # that opens the subordinate CA keys. RA services reach it over mutual TLS.\n\
         store = {store_url}\nlisten = {}\nkey_dir = {}\nkey_pass_file = {}\n{policies}\n\
         [tls]\ncert = {}\nkey = {}\nkey_pass_file = {signer_pass}\nclient_ca = {root}\n\n\
         # Mobile IDs for the offers of RA {DEV_RA} (POST /v1/credentials).\n\
         [credentials]\nsigner_key = {}\nsigner_pass_file = {signer_pass}\nsigner_chain = {}\n\
         issuer = {}\nstatus_list = {}\nras = [{}]\n\n\
         # Dual enrolments: officials' km keys, made here and archived to this KRA.\n\
         [km]\nkra = {}\n\n\
         # Signed checkpoints of the audit chain (gpki audit verify reads them).\n\
         [audit]\ncheckpoint_dir = {}\ncheckpoint_interval_secs = 300\n",
        q(at.ca.clone()),
        q(abs(&dir.join("keys")).display().to_string()),
        q(abs(ca_pass_file).display().to_string()),
        file("ca-tls.chain.pem"),
        file("ca-tls.key.pem"),
        file("credential-signer.key.pem"),
        file("credential-signer.crt.pem"),
        q(CREDENTIAL_ISSUER.into()),
        q(STATUS_LIST.into()),
        q(DEV_RA.into()),
        q(DEV_KRA.into()),
        q(abs(&dir.join("audit")).display().to_string()),
    );
    let ra_toml = format!(
        "# gpki dev: the RA service (gpki-ra serve --config THIS) hosting every RA whose\n\
         # host is {RA_HOST}; operators reach it over mutual TLS.\n\
         store = {store_url}\nlisten = {}\nhost = {}\n{policies}\
         credential_issuer = {}\n\n\
         [tls]\ncert = {}\nkey = {}\nkey_pass_file = {signer_pass}\nclient_ca = {root}\n\n\
         # The CA service, as client {RA_HOST}.\n\
         [ca]\nurl = {}\nserver_name = {}\ncert = {}\nkey = {}\nkey_pass_file = {signer_pass}\nca_file = {root}\n",
        q(at.ra.clone()),
        q(RA_HOST.into()),
        q(CREDENTIAL_ISSUER.into()),
        file("ra-tls.chain.pem"),
        file("ra-tls.key.pem"),
        q(format!("https://{}", at.ca)),
        q(CA_SERVER_NAME.into()),
        file("service-client.chain.pem"),
        file("service-client.key.pem"),
    );
    let client_toml = format!(
        "# gpki dev: operator {RA_ADMIN} of RA {DEV_RA}, for `gpki ra …`\n\
         # (export GPKI_RA_CONFIG=THIS, or copy it to ~/.config/gpki/ra.toml).\n\
         url = {}\nserver_name = {}\ncert = {}\nkey = {}\nkey_pass_file = {signer_pass}\nca_file = {root}\n",
        q(format!("https://{}", at.ra)),
        q(RA_SERVER_NAME.into()),
        file("ra-operator.chain.pem"),
        file("ra-operator.key.pem"),
    );
    for (name, text) in [
        ("ca.toml", &ca_toml),
        ("ra.toml", &ra_toml),
        ("ra-client.toml", &client_toml),
    ] {
        write_file(&dir.join(name), text.as_bytes())?;
    }
    Ok((
        gpki_ca_service::Config::load(&dir.join("ca.toml"))?,
        gpki_ra::Config::load(&dir.join("ra.toml"))?,
    ))
}

/// The dev Key Recovery Authority `dev-kra` (2 of its officers release a key),
/// where the CA service archives officials' km keys. Its key would be made on the
/// KRA's own host; in dev that host is `DATA_DIR/kra/` (under the signer
/// passphrase), and the CA sees only its request.
async fn kra_setup(
    g: &Global,
    ca: &Ca,
    dir: &std::path::Path,
    pass: &Passphrase,
    made: &mut Vec<String>,
    found: &mut Vec<String>,
) -> Result<()> {
    if ca.store().kras().await?.iter().any(|k| k.name == DEV_KRA) {
        found.push(format!("KRA {DEV_KRA}"));
        return Ok(());
    }
    let key_path = dir.join("kra").join("kra.key.pem");
    std::fs::create_dir_all(dir.join("kra"))
        .map_err(|e| gpki_pki::Error::internal(format!("cannot create the KRA directory: {e}")))?;
    // A key left by a run that stopped before registering the KRA is used again.
    let key = if key_path.exists() {
        gpki_pki::SoftwareKey::read_encrypted(&key_path, pass)?
    } else {
        let key = gpki_pki::SoftwareKey::generate(KeyType::Rsa3072)?;
        key.write_encrypted(&key_path, pass)?;
        key
    };
    let csr = gpki_pki::csr::build(
        &key,
        &gpki_pki::name::parse(
            "CN=GPKI Key Recovery Authority, OU=GPKI, O=Government of Korea, C=KR",
        )?,
    )?;
    let issued = ca
        .issue(&gpki_ca::IssueRequest {
            ca: SUB.into(),
            profile: "key-recovery".into(),
            subject: None,
            key: gpki_ca::KeySource::Csr(csr),
            sans: vec![],
            validity_days: None,
            request_key: Some(format!("dev:{DEV_KRA}")),
            renewed_from: None,
        })
        .await?;
    write_file(
        &dir.join("certs").join("kra.crt.pem"),
        gpki_pki::pem::encode("CERTIFICATE", &issued.der).as_bytes(),
    )?;
    ca.store()
        .create_kra(
            DEV_KRA,
            issued.record.id,
            2,
            &AuditEvent::new(
                &g.actor(),
                "km.kra.create",
                format!("kra:{DEV_KRA}"),
                json!({ "ca": SUB, "serial": issued.record.serial, "quorum": 2 }),
            ),
        )
        .await?;
    made.push(format!(
        "KRA {DEV_KRA} (2 officers release a key; its key in {})",
        key_path.display()
    ));
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

/// Writes `api.toml`: the standard API trusting the dev root, with the dev CA
/// as a known intermediate, for logins at the audience `http://LISTEN/`.
fn api_setup(dir: &std::path::Path, listen: &str) -> Result<gpki_api::server::Config> {
    let certs = abs(&dir.join("certs"));
    let text = format!(
        "# gpki dev: the standard API (gpki-api serve --config THIS): certificate login\n\
         # and signed-document verification over HTTP for agency systems.\n\
         listen = {}\naudience = {}\nanchors = {}\nintermediates = {}\n\
         [status]\n\
         # A revocation reaches this API within this many seconds (default 300).\n\
         max_cache_secs = 30\n",
        q(listen.to_string()),
        q(format!("http://{listen}/")),
        q(certs.join(format!("{ROOT}.crt.pem")).display().to_string()),
        q(certs.join(format!("{SUB}.crt.pem")).display().to_string()),
    );
    let path = dir.join("api.toml");
    write_file(&path, text.as_bytes())?;
    gpki_api::server::Config::load(&path)
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
    for name in [ROOT, SUB, CREDENTIAL_CA] {
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
    let certs = abs(&dir.join("certs"));
    text += &format!(
        "# The credential status lists, signed by the status-list signer, at\n\
         # http://{listen}/statuslists/NAME (JWT, or CWT for Accept: application/statuslist+cwt).\n\
         [status_lists]\ncert = {}\nkey = {}\nttl_seconds = 300\nvalid_seconds = 86400\n\n",
        q(certs
            .join("status-list-signer-chain.pem")
            .display()
            .to_string()),
        q(certs
            .join("status-list-signer.key.pem")
            .display()
            .to_string())
    );
    text += &format!(
        "# The mobile ID issuer's keys (its credential signers in force), as SD-JWT VC\n\
         # issuer metadata at http://{listen}/.well-known/jwt-vc-issuer and as the DID\n\
         # document of {} at http://{listen}/.well-known/did.json.\n\
         [credential_issuer]\nid = {}\nca = {}\nmax_age_seconds = 300\n\n",
        gpki_ocsp::issuer::IssuerConfig {
            id: CREDENTIAL_ISSUER.into(),
            ca: CREDENTIAL_CA.into(),
            max_age_seconds: 300,
        }
        .paths()?
        .did,
        q(CREDENTIAL_ISSUER.to_string()),
        q(CREDENTIAL_CA.to_string())
    );
    text += "# The responder never opens a CA key. Renew its certificates on the CA side,\n\
             # e.g. daily from a timer: gpki ocsp renew-signers --config THIS\n\
             # It picks up the new files by itself (or on SIGHUP).\n";
    let path = dir.join("ocsp.toml");
    write_file(&path, text.as_bytes())?;
    Ok((gpki_ocsp::Config::load(&path)?, made, found))
}
