//! The dev services' set-up: the OCSP responder's certificates, the configs of
//! the OCSP responder, the TSA and the standard API, and the CA and RA services
//! with their client, RA and first operator.

use std::path::Path;

use gpki_ca::Ca;
use gpki_pki::signer::Passphrase;
use gpki_pki::{KeyType, Result};
use gpki_store::{AuditEvent, CertificateRecord, NewRa, RaRecord, Store};
use serde_json::json;

use super::up::{Listen, Passphrases};
use super::{
    abs, absolute_store_url, q, Tally, CA_SERVER_NAME, CREDENTIAL_CA, CREDENTIAL_ISSUER, DEV_KRA,
    DEV_RA, MOIS, RA_ADMIN, RA_HOST, RA_SERVER_NAME, ROOT, STATUS_LIST, SUB,
};
use crate::{write_file, Global};

/// The dev services' configs, as written.
pub(super) struct Services {
    pub(super) ocsp: gpki_ocsp::Config,
    pub(super) tsa: gpki_tsa::Config,
    pub(super) api: gpki_api::server::Config,
    pub(super) ca: gpki_ca_service::Config,
    pub(super) ra: gpki_ra::Config,
}

/// Every service set up and its config written: the OCSP responder, the TSA, the
/// standard API, then the CA and RA services.
pub(super) async fn configure(
    g: &Global,
    ca: &Ca,
    store: &Store,
    keys: &Passphrases,
    at: &Listen,
    tally: &mut Tally,
) -> Result<Services> {
    let dir = g.data_dir.as_path();
    let (pass_file, signer_pass_file, signer_pass) =
        (&keys.pass_file, &keys.signer_pass_file, &keys.signer_pass);
    let (ocsp, ocsp_made, ocsp_found) = ocsp_setup(
        ca,
        dir,
        &g.store_url(),
        signer_pass_file,
        signer_pass,
        &at.ocsp,
    )
    .await?;
    tally.made.extend(ocsp_made);
    tally.found.extend(ocsp_found);
    let tsa = tsa_setup(dir, &g.store_url(), signer_pass_file, &at.tsa)?;
    let api = api_setup(dir, &at.api)?;
    let (ca, ra) = services_setup(g, store, dir, pass_file, signer_pass_file, at, tally).await?;
    Ok(Services {
        ocsp,
        tsa,
        api,
        ca,
        ra,
    })
}

/// The CA and RA services: the RA host registered as a client of the CA service
/// (the sample service-client certificate), the RA `dev-mois` for the Ministry of
/// the Interior and Safety with the sample ra-operator certificate as its first
/// administrator, and the configs `ca.toml`, `ra.toml` and `ra-client.toml` (the
/// operator's profile for `gpki ra …`, through `GPKI_RA_CONFIG`).
async fn services_setup(
    g: &Global,
    store: &Store,
    dir: &Path,
    ca_pass_file: &Path,
    signer_pass_file: &Path,
    at: &Listen,
    tally: &mut Tally,
) -> Result<(gpki_ca_service::Config, gpki_ra::Config)> {
    let sub = store.authority_by_name(SUB).await?;
    let host = dev_cert(store, sub.id, "service-client").await?;
    register_ra_host(g, store, &host, tally).await?;
    let ra = ensure_dev_ra(g, store, tally).await?;
    let admin = dev_cert(store, sub.id, "ra-operator").await?;
    ensure_ra_admin(g, store, &ra, &admin, tally).await?;
    write_tls_chains(dir)?;
    let paths = ConfigPaths::new(g, dir, signer_pass_file);
    for (name, text) in [
        ("ca.toml", &ca_toml(&paths, dir, ca_pass_file, at)),
        ("ra.toml", &ra_toml(&paths, at)),
        ("ra-client.toml", &client_toml(&paths, at)),
    ] {
        write_file(&dir.join(name), text.as_bytes())?;
    }
    Ok((
        gpki_ca_service::Config::load(&dir.join("ca.toml"))?,
        gpki_ra::Config::load(&dir.join("ra.toml"))?,
    ))
}

/// The dev certificate `name` of CA `ca_id` (request key `dev:NAME`), made before.
async fn dev_cert(store: &Store, ca_id: i64, name: &str) -> Result<CertificateRecord> {
    store
        .certificate_by_request_key(ca_id, &format!("dev:{name}"))
        .await?
        .ok_or_else(|| gpki_pki::Error::internal(format!("the dev {name} certificate is missing")))
}

/// The RA host, registered as a client of the CA service (role ra) by its
/// service-client certificate.
async fn register_ra_host(
    g: &Global,
    store: &Store,
    host: &CertificateRecord,
    tally: &mut Tally,
) -> Result<()> {
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
        tally
            .made
            .push(format!("CA service client {RA_HOST} (role ra)"));
    } else {
        tally.found.push(format!("CA service client {RA_HOST}"));
    }
    Ok(())
}

/// The RA `dev-mois` for the Ministry of the Interior and Safety, hosted by the
/// RA host.
async fn ensure_dev_ra(g: &Global, store: &Store, tally: &mut Tally) -> Result<RaRecord> {
    match store.ra_by_name(DEV_RA).await {
        Ok(ra) => {
            tally.found.push(format!("RA {DEV_RA}"));
            Ok(ra)
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
            tally
                .made
                .push(format!("RA {DEV_RA} (Ministry of the Interior and Safety)"));
            Ok(ra)
        }
        Err(e) => Err(e),
    }
}

/// The sample ra-operator certificate's holder, the RA's first administrator.
async fn ensure_ra_admin(
    g: &Global,
    store: &Store,
    ra: &RaRecord,
    admin: &CertificateRecord,
    tally: &mut Tally,
) -> Result<()> {
    if store
        .operators(ra.id)
        .await?
        .iter()
        .any(|o| o.cert_id == admin.id)
    {
        tally.found.push(format!("RA operator {RA_ADMIN}"));
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
        tally.made.push(format!(
            "RA operator {RA_ADMIN} (administrator of {DEV_RA})"
        ));
    }
    Ok(())
}

/// `certs/NAME.chain.pem` of each mutual-TLS certificate: a TLS client or server
/// sends its certificate and then the CA's.
fn write_tls_chains(dir: &Path) -> Result<()> {
    let certs = abs(&dir.join("certs"));
    let sub_pem = std::fs::read(certs.join(format!("{SUB}.crt.pem")))
        .map_err(|e| gpki_pki::Error::internal(format!("{SUB}.crt.pem: {e}")))?;
    for name in ["ca-tls", "ra-tls", "service-client", "ra-operator"] {
        let mut pem = std::fs::read(certs.join(format!("{name}.crt.pem")))
            .map_err(|e| gpki_pki::Error::internal(format!("{name}.crt.pem: {e}")))?;
        pem.extend_from_slice(&sub_pem);
        write_file(&certs.join(format!("{name}.chain.pem")), &pem)?;
    }
    Ok(())
}

/// What the CA and RA services' configs name, as TOML strings of absolute paths.
struct ConfigPaths {
    certs: std::path::PathBuf,
    /// The dev root, the trust anchor of every mutual-TLS peer.
    root: String,
    signer_pass: String,
    store_url: String,
    /// A `policies = …` line when profiles come from a directory, else nothing.
    policies: String,
}

impl ConfigPaths {
    fn new(g: &Global, dir: &Path, signer_pass_file: &Path) -> ConfigPaths {
        let certs = abs(&dir.join("certs"));
        let root = q(certs.join(format!("{ROOT}.crt.pem")).display().to_string());
        ConfigPaths {
            certs,
            root,
            signer_pass: q(abs(signer_pass_file).display().to_string()),
            store_url: q(absolute_store_url(&g.store_url())),
            policies: g
                .policies
                .as_ref()
                .map(|p| format!("policies = {}\n", q(abs(p).display().to_string())))
                .unwrap_or_default(),
        }
    }

    /// The file `n` of the certificates directory.
    fn file(&self, n: &str) -> String {
        q(self.certs.join(n).display().to_string())
    }
}

/// `ca.toml`: the online CA service.
fn ca_toml(paths: &ConfigPaths, dir: &Path, ca_pass_file: &Path, at: &Listen) -> String {
    let ConfigPaths {
        root,
        signer_pass,
        store_url,
        policies,
        ..
    } = paths;
    let file = |n: &str| paths.file(n);
    format!(
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
    )
}

/// `ra.toml`: the RA service hosting every RA of the RA host.
fn ra_toml(paths: &ConfigPaths, at: &Listen) -> String {
    let ConfigPaths {
        root,
        signer_pass,
        store_url,
        policies,
        ..
    } = paths;
    let file = |n: &str| paths.file(n);
    format!(
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
    )
}

/// `ra-client.toml`: the dev administrator's operator profile for `gpki ra …`.
fn client_toml(paths: &ConfigPaths, at: &Listen) -> String {
    let ConfigPaths {
        root, signer_pass, ..
    } = paths;
    let file = |n: &str| paths.file(n);
    format!(
        "# gpki dev: operator {RA_ADMIN} of RA {DEV_RA}, for `gpki ra …`\n\
         # (export GPKI_RA_CONFIG=THIS, or copy it to ~/.config/gpki/ra.toml).\n\
         url = {}\nserver_name = {}\ncert = {}\nkey = {}\nkey_pass_file = {signer_pass}\nca_file = {root}\n",
        q(format!("https://{}", at.ra)),
        q(RA_SERVER_NAME.into()),
        file("ra-operator.chain.pem"),
        file("ra-operator.key.pem"),
    )
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
            let issued = crate::ocsp::issue_responder_certificate(
                ca,
                name,
                KeyType::EcP256,
                pass,
                &cert,
                &key,
            )
            .await?;
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
